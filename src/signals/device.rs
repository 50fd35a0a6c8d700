//! User-agent parsing. The embedded default is `woothee` (its rules are
//! compiled in, so it needs no files); results are cached by UA string.

use std::sync::Arc;

use moka::sync::Cache;
use serde::{Deserialize, Serialize};

/// What a user agent says about the device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceInfo {
    /// Browser family ("Chrome", "Firefox", …) or "UNKNOWN".
    pub browser: Box<str>,
    pub browser_version: Box<str>,
    /// Operating system ("Windows 10", "iPhone", "Android", …) or "UNKNOWN".
    pub os: Box<str>,
    pub os_version: Box<str>,
    /// Device class: "pc", "smartphone", "mobilephone", "appliance",
    /// "crawler", "misc" or "UNKNOWN".
    pub category: Box<str>,
    /// A known crawler or bot.
    pub is_crawler: bool,
    /// A headless browser or an HTTP library rather than a person's browser.
    pub is_automation: bool,
}

impl Default for DeviceInfo {
    fn default() -> Self {
        Self::unknown()
    }
}

impl DeviceInfo {
    /// The answer for an absent user agent.
    pub fn unknown() -> Self {
        DeviceInfo {
            browser: "UNKNOWN".into(),
            browser_version: "".into(),
            os: "UNKNOWN".into(),
            os_version: "".into(),
            category: "UNKNOWN".into(),
            is_crawler: false,
            is_automation: false,
        }
    }
}

/// Markers of automation that user-agent databases classify as ordinary
/// browsers or do not know: headless browser builds and HTTP client
/// libraries. Plain substring checks, case-insensitive.
const AUTOMATION_MARKERS: &[&str] = &[
    "headlesschrome",
    "phantomjs",
    "slimerjs",
    "selenium",
    "webdriver",
    "puppeteer",
    "playwright",
    "python-requests",
    "python-urllib",
    "aiohttp",
    "curl/",
    "wget/",
    "go-http-client",
    "libwww-perl",
    "scrapy",
    "node-fetch",
    "axios/",
    "httpclient",
    "okhttp/2",
];

/// Parses user agents with a bounded cache.
pub struct UaParser {
    parser: woothee::parser::Parser,
    cache: Cache<Box<str>, Arc<DeviceInfo>>,
    unknown: Arc<DeviceInfo>,
}

impl UaParser {
    /// A parser caching up to `capacity` distinct user agents.
    pub fn new(capacity: u64) -> Self {
        UaParser {
            parser: woothee::parser::Parser::new(),
            cache: Cache::builder().max_capacity(capacity).build(),
            unknown: Arc::new(DeviceInfo::unknown()),
        }
    }

    /// Parses `ua` (cached).
    pub fn parse(&self, ua: Option<&str>) -> Arc<DeviceInfo> {
        let Some(ua) = ua.filter(|s| !s.is_empty()) else {
            return self.unknown.clone();
        };
        if let Some(hit) = self.cache.get(ua) {
            return hit;
        }
        let info = Arc::new(self.parse_uncached(ua));
        self.cache.insert(ua.into(), info.clone());
        info
    }

    /// Parses `ua` without the cache.
    pub fn parse_uncached(&self, ua: &str) -> DeviceInfo {
        let lower = ua.to_ascii_lowercase();
        let is_automation = AUTOMATION_MARKERS.iter().any(|m| lower.contains(m));
        match self.parser.parse(ua) {
            Some(r) => DeviceInfo {
                browser: r.name.into(),
                browser_version: r.version.into(),
                os: r.os.into(),
                os_version: r.os_version.as_ref().into(),
                category: r.category.into(),
                is_crawler: r.category == "crawler",
                is_automation,
            },
            None => DeviceInfo {
                is_automation,
                ..DeviceInfo::unknown()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_browsers() {
        let p = UaParser::new(16);
        let chrome = p.parse(Some(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        ));
        assert_eq!(&*chrome.browser, "Chrome");
        assert_eq!(&*chrome.category, "pc");
        assert!(!chrome.is_crawler && !chrome.is_automation);

        let iphone = p.parse(Some(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
        ));
        assert_eq!(&*iphone.category, "smartphone");
        assert_eq!(&*iphone.os, "iPhone");
    }

    #[test]
    fn flags_crawlers_and_automation() {
        let p = UaParser::new(16);
        let bot = p.parse(Some(
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        ));
        assert!(bot.is_crawler);
        let headless = p.parse(Some(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
        ));
        assert!(headless.is_automation);
        assert!(p.parse(Some("python-requests/2.31.0")).is_automation);
        assert!(p.parse(Some("curl/8.4.0")).is_automation);
    }

    #[test]
    fn absent_or_garbage_is_unknown() {
        let p = UaParser::new(16);
        assert_eq!(&*p.parse(None).browser, "UNKNOWN");
        assert_eq!(&*p.parse(Some("")).category, "UNKNOWN");
        assert_eq!(&*p.parse(Some("\u{0}\u{ffff}zz")).browser, "UNKNOWN");
    }
}
