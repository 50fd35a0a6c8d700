//! User-agent parsing, with two backends and one cache.
//!
//! - **woothee** (the default, [`UaParser::new`]): its rules are compiled
//!   in, so it needs no files. Fast (a few microseconds a string) but its
//!   database is small and old.
//! - **uap-core** ([`UaParser::from_regexes`]): the `ua-parser` crate (the
//!   official Rust port of uap-core) driven by a `regexes.yaml` read at
//!   start-up. Far wider and current coverage, but 10–20 µs a string
//!   (about 150 µs for an 8 KiB header), which is why results are cached by
//!   UA string either way.
//!
//! Both fill the same [`DeviceInfo`]; the automation flag comes from the
//! same marker list whichever backend runs. The names differ between the
//! backends (see [`DeviceInfo`] and "uap-core mapping" below), so rules
//! written against browser or OS *names* are backend-specific; `category`,
//! `is_crawler` and `is_automation` share one vocabulary.
//!
//! # uap-core mapping
//!
//! uap answers three independent questions — user agent, OS, device —
//! each with a family ("Other" when nothing matched) and version parts or
//! brand/model. They become a [`DeviceInfo`] as follows:
//!
//! | `DeviceInfo`      | from uap                                                          |
//! |-------------------|-------------------------------------------------------------------|
//! | `browser`         | user-agent family verbatim ("Chrome Mobile", "Mobile Safari", "IE", "Googlebot"); "Other" → "UNKNOWN" |
//! | `browser_version` | major, minor, patch, patch_minor joined with "." up to the first missing part ("120.0.6099"); "" if none |
//! | `os`              | OS family verbatim ("Windows", "Mac OS X", "iOS", "Android"); "Other" → "UNKNOWN" |
//! | `os_version`      | OS major…patch_minor joined the same way ("10", "17.1")           |
//! | `is_crawler`      | device family is "Spider" (uap's convention for bots)            |
//! | `category`        | see below                                                         |
//! | `is_automation`   | the automation marker list, as for woothee                        |
//!
//! `category` keeps woothee's vocabulary (`pc`, `smartphone`,
//! `mobilephone`, `appliance`, `crawler`, `misc`, `UNKNOWN`) so rules and
//! profile keys do not depend on the backend. The first rule that applies
//! wins:
//!
//! 1. device "Spider" → `crawler`;
//! 2. a TV, console, streaming stick, watch or car — by device family
//!    (PlayStation…, Nintendo…, Xbox…, Chromecast, AppleTV, HbbTV, NetCast…,
//!    Inettv, Apple Watch, Tesla…) or by OS (tvOS, Roku, GoogleTV, WatchOS,
//!    Chromecast…, webOS TVs "Web0S", FireHbbTV, …) → `appliance`;
//! 3. device "Generic Feature Phone", or a feature-phone OS (Symbian…,
//!    Nokia Series 30/40, BREW, KaiOS, Windows Mobile, Bada, …) →
//!    `mobilephone`;
//! 4. device iPhone / iPad / iPod / "Generic Smartphone" / "Generic
//!    Tablet" / Kindle…, or a smartphone OS (iOS, Android, Windows Phone,
//!    BlackBerry…, Firefox OS, Tizen, Sailfish, HarmonyOS, …), or a mobile
//!    browser build (a family with "Mobile" in it: "IE Mobile" on Windows
//!    CE, "Opera Mobile", …) → `smartphone` (tablets included: woothee has
//!    no tablet class either);
//! 5. device "Mac", or no named device on a desktop OS (Windows, Mac OS X,
//!    Linux distributions, Chrome OS, the BSDs, Solaris, …) → `pc`;
//! 6. any other named device (uap's device rules are almost all handsets:
//!    "Nokia N95", "Motorola V300", an HTC on Windows CE) → `mobilephone`;
//! 7. nothing recognised at all (user agent, OS and device all "Other") →
//!    `UNKNOWN`; otherwise (a recognised client on no known platform: HTTP
//!    libraries, feed readers, apps) → `misc`.

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use moka::sync::Cache;

use crate::core::inputs::DeviceInfo;

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

/// Why a uap-core `regexes.yaml` could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum UaError {
    /// The file could not be opened or read.
    #[error("cannot read uap-core regexes `{}`: {source}", .path.display())]
    Read {
        /// The configured file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a uap-core `regexes.yaml` (bad YAML or wrong shape).
    #[error("invalid uap-core regexes `{}`: {source}", .path.display())]
    Format {
        /// The configured file.
        path: PathBuf,
        /// The YAML error, with its position.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// One of the three rule lists is empty, so every answer would be
    /// "Other": almost certainly the wrong file.
    #[error("uap-core regexes `{}` have no {section}", .path.display())]
    Empty {
        /// The configured file.
        path: PathBuf,
        /// The empty list: `user_agent_parsers`, `os_parsers` or
        /// `device_parsers`.
        section: &'static str,
    },
    /// A rule's regex or replacement template is invalid.
    #[error("cannot compile uap-core regexes `{}`: {source}", .path.display())]
    Compile {
        /// The configured file.
        path: PathBuf,
        /// The `ua-parser` error.
        #[source]
        source: ua_parser::Error,
    },
}

/// The raw uap-core answers for one user agent, before the mapping to
/// [`DeviceInfo`]: what uap-core's golden tests are written against. A
/// part that no rule matched has family "Other" and nothing else, as the
/// uap specification says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UapParts {
    /// Browser (user-agent) family and version parts.
    pub user_agent: ua_parser::user_agent::Value,
    /// OS family and version parts.
    pub os: ua_parser::os::Value,
    /// Device family, brand and model.
    pub device: ua_parser::device::Value,
}

/// uap's name for "no rule matched".
const OTHER: &str = "Other";
/// [`DeviceInfo`]'s name for an unrecognised browser, OS or class.
const UNKNOWN: &str = "UNKNOWN";

enum Backend {
    Woothee(woothee::parser::Parser),
    Uap(Box<ua_parser::Extractor<'static>>),
}

/// Parses user agents with a bounded cache.
pub struct UaParser {
    backend: Backend,
    cache: Cache<Box<str>, Arc<DeviceInfo>>,
    unknown: Arc<DeviceInfo>,
}

impl UaParser {
    /// A woothee parser caching up to `capacity` distinct user agents.
    pub fn new(capacity: u64) -> Self {
        Self::with_backend(Backend::Woothee(woothee::parser::Parser::new()), capacity)
    }

    /// A uap-core parser using the rules in `path` (uap-core's
    /// `regexes.yaml`), caching up to `capacity` distinct user agents.
    ///
    /// Compiling the full rule set takes a while (about 150 ms optimised,
    /// 1.5 s unoptimised): do it once at start-up.
    ///
    /// # Errors
    ///
    /// [`UaError`], naming `path`, if the file cannot be read, is not a
    /// uap-core rule file, has an empty rule list, or has a rule that does
    /// not compile.
    pub fn from_regexes(path: &Path, capacity: u64) -> Result<Self, UaError> {
        Self::load_regexes(path, capacity)
    }

    /// The parser the configuration names: the uap-core rules at `regexes`,
    /// or the embedded woothee rules.
    ///
    /// # Errors
    /// As [`UaParser::from_regexes`].
    pub fn configured(regexes: Option<&Path>, capacity: u64) -> Result<Self, UaError> {
        match regexes {
            Some(p) => Self::from_regexes(p, capacity),
            None => Ok(Self::new(capacity)),
        }
    }

    fn load_regexes(path: &Path, capacity: u64) -> Result<Self, UaError> {
        let text = std::fs::read_to_string(path).map_err(|source| UaError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let regexes: ua_parser::Regexes<'static> =
            serde_yaml_ng::from_str(&text).map_err(|source| UaError::Format {
                path: path.to_path_buf(),
                source,
            })?;
        let empty = [
            ("user_agent_parsers", regexes.user_agent_parsers.is_empty()),
            ("os_parsers", regexes.os_parsers.is_empty()),
            ("device_parsers", regexes.device_parsers.is_empty()),
        ]
        .into_iter()
        .find_map(|(section, empty)| empty.then_some(section));
        if let Some(section) = empty {
            return Err(UaError::Empty {
                path: path.to_path_buf(),
                section,
            });
        }
        let extractor =
            ua_parser::Extractor::try_from(regexes).map_err(|source| UaError::Compile {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self::with_backend(
            Backend::Uap(Box::new(extractor)),
            capacity,
        ))
    }

    fn with_backend(backend: Backend, capacity: u64) -> Self {
        UaParser {
            backend,
            cache: Cache::builder().max_capacity(capacity).build(),
            unknown: Arc::new(DeviceInfo::unknown()),
        }
    }

    /// The backend's name, for logs: "woothee" or "uap-core".
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Woothee(_) => "woothee",
            Backend::Uap(_) => "uap-core",
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
        match &self.backend {
            Backend::Woothee(parser) => woothee_info(parser, ua, is_automation),
            Backend::Uap(extractor) => uap_info(extractor, ua, is_automation),
        }
    }

    /// The raw uap-core answers for `ua` (not cached), or `None` with the
    /// woothee backend. For tests against uap-core's golden cases and for
    /// diagnosing the [mapping](self#uap-core-mapping).
    pub fn parse_uap_raw(&self, ua: &str) -> Option<UapParts> {
        let Backend::Uap(x) = &self.backend else {
            return None;
        };
        Some(UapParts {
            user_agent: x.ua.extract(ua).map_or_else(
                || ua_parser::user_agent::Value {
                    family: OTHER.into(),
                    ..Default::default()
                },
                ua_parser::user_agent::ValueRef::into_owned,
            ),
            os: x.os.extract(ua).map_or_else(
                || ua_parser::os::Value {
                    os: OTHER.into(),
                    ..Default::default()
                },
                ua_parser::os::ValueRef::into_owned,
            ),
            device: x.dev.extract(ua).map_or_else(
                || ua_parser::device::Value {
                    device: OTHER.into(),
                    ..Default::default()
                },
                ua_parser::device::ValueRef::into_owned,
            ),
        })
    }
}

fn woothee_info(parser: &woothee::parser::Parser, ua: &str, is_automation: bool) -> DeviceInfo {
    match parser.parse(ua) {
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

fn uap_info(x: &ua_parser::Extractor<'_>, ua: &str, is_automation: bool) -> DeviceInfo {
    let browser = x.ua.extract(ua);
    let os = x.os.extract(ua);
    let device = x.dev.extract(ua);

    let browser_family = browser.as_ref().map_or(OTHER, |b| &*b.family);
    let os_family = os.as_ref().map_or(OTHER, |o| &*o.os);
    let device_family = device.as_ref().map_or(OTHER, |d| &*d.device);
    let browser_version = browser.as_ref().map_or_else(String::new, |b| {
        join_version([b.major, b.minor, b.patch, b.patch_minor])
    });
    let os_version = os.as_ref().map_or_else(String::new, |o| {
        join_version([
            o.major.as_deref(),
            o.minor.as_deref(),
            o.patch.as_deref(),
            o.patch_minor.as_deref(),
        ])
    });
    let category = uap_category(browser_family, os_family, device_family);
    DeviceInfo {
        browser: known(browser_family).into(),
        browser_version: browser_version.into(),
        os: known(os_family).into(),
        os_version: os_version.into(),
        category: category.into(),
        is_crawler: category == "crawler",
        is_automation,
    }
}

/// uap's "Other" (and an empty family) as [`DeviceInfo`]'s "UNKNOWN".
fn known(family: &str) -> &str {
    if family.is_empty() || family == OTHER {
        UNKNOWN
    } else {
        family
    }
}

/// Version parts joined with "." up to the first missing or empty one.
fn join_version(parts: [Option<&str>; 4]) -> String {
    let mut out = String::new();
    for part in parts {
        match part {
            Some(p) if !p.is_empty() => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(p);
            }
            _ => break,
        }
    }
    out
}

/// Device families (exact) of TVs, consoles, players, watches and cars.
const APPLIANCE_DEVICES: &[&str] = &[
    "AppleTV",
    "Apple TV",
    "Apple Watch",
    "Chromecast",
    "HbbTV",
    "Inettv",
    "Quest",
    "Roku",
];
/// Device-family prefixes of the same.
const APPLIANCE_DEVICE_PREFIXES: &[&str] = &[
    "NetCast",
    "Nintendo",
    "PlayStation",
    "Sega ",
    "Tesla",
    "Xbox",
];
/// OS families (exact) of the same.
const APPLIANCE_OS: &[&str] = &[
    "ATV OS X",
    "FireHbbTV",
    "GoogleTV",
    "Roku",
    "tvOS",
    "WatchOS",
    "Web0S",
    "WebTV",
];
/// OS-family prefixes of the same.
const APPLIANCE_OS_PREFIXES: &[&str] = &["Chromecast", "PlayStation", "Nintendo", "Xbox"];

/// Feature-phone OS families (exact).
const FEATURE_PHONE_OS: &[&str] = &["Bada", "BREW", "Brew MP", "KaiOS", "VRE", "Windows Mobile"];
/// Feature-phone OS-family prefixes.
const FEATURE_PHONE_OS_PREFIXES: &[&str] = &["Nokia Series", "Symbian"];

/// Smartphone and tablet device families (exact).
const SMARTPHONE_DEVICES: &[&str] = &[
    "Generic Smartphone",
    "Generic Tablet",
    "iOS-Device",
    "iPad",
    "iPhone",
    "iPod",
];
/// Smartphone and tablet device-family prefixes.
const SMARTPHONE_DEVICE_PREFIXES: &[&str] = &["Kindle"];
/// Smartphone and tablet OS families (exact).
const SMARTPHONE_OS: &[&str] = &[
    "Android",
    "BlackBerry OS",
    "BlackBerry Tablet OS",
    "Firefox OS",
    "HarmonyOS",
    "iOS",
    "Maemo",
    "MeeGo",
    "Sailfish",
    "Tizen",
    "Ubuntu Touch",
    "WeTab",
    "Windows Phone",
    "webOS",
];

/// Desktop OS families (exact).
const PC_OS: &[&str] = &[
    "Arch Linux",
    "BSD",
    "CentOS",
    "Chrome OS",
    "Debian",
    "Fedora",
    "FreeBSD",
    "Gentoo",
    "Haiku",
    "Kubuntu",
    "Linux",
    "Linux Mint",
    "Mac OS",
    "Mac OS X",
    "Mandriva",
    "NetBSD",
    "OpenBSD",
    "openSUSE",
    "Red Hat",
    "SerenityOS",
    "Slackware",
    "Solaris",
    "SUSE",
    "Ubuntu",
    "Windows",
];

/// uap's device "Other" (nothing matched) or an empty family.
fn unnamed(device: &str) -> bool {
    device.is_empty() || device == OTHER
}

fn is_in(value: &str, exact: &[&str], prefixes: &[&str]) -> bool {
    exact.contains(&value) || prefixes.iter().any(|p| value.starts_with(p))
}

/// The device class for a uap answer; see the
/// [module documentation](self#uap-core-mapping) for the rules.
fn uap_category(browser: &str, os: &str, device: &str) -> &'static str {
    if device == "Spider" {
        "crawler"
    } else if is_in(device, APPLIANCE_DEVICES, APPLIANCE_DEVICE_PREFIXES)
        || is_in(os, APPLIANCE_OS, APPLIANCE_OS_PREFIXES)
    {
        "appliance"
    } else if device == "Generic Feature Phone"
        || is_in(os, FEATURE_PHONE_OS, FEATURE_PHONE_OS_PREFIXES)
    {
        "mobilephone"
    } else if is_in(device, SMARTPHONE_DEVICES, SMARTPHONE_DEVICE_PREFIXES)
        || SMARTPHONE_OS.contains(&os)
        || browser.contains("Mobile")
    {
        "smartphone"
    } else if device == "Mac" || (unnamed(device) && PC_OS.contains(&os)) {
        "pc"
    } else if !unnamed(device) {
        "mobilephone"
    } else if known(browser) == UNKNOWN && known(os) == UNKNOWN {
        UNKNOWN
    } else {
        "misc"
    }
}
