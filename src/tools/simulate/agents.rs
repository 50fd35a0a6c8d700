//! User agents: where they come from, how their browser/OS/device columns
//! are derived (riskgate's own [`UaParser`], so the columns agree with what
//! the service would parse), and how a browser upgrades.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::Path;

use serde::Deserialize;

use super::SimError;
use super::rng::{self, Rng};
use crate::core::inputs::DeviceInfo;
use crate::signals::device::UaParser;

/// A device's form factor, as the corpora label it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Desktop or laptop.
    Desktop,
    /// Phone.
    Mobile,
    /// Tablet.
    Tablet,
}

/// One distinct user agent and its derived columns.
#[derive(Debug)]
pub struct Agent {
    /// The string.
    pub ua: Box<str>,
    /// "Browser Name and Version".
    pub browser: Box<str>,
    /// "OS Name and Version".
    pub os: Box<str>,
    /// "Device Type": mobile, desktop, tablet, bot, unknown, or empty when
    /// nothing in the string was recognised.
    pub device_type: &'static str,
    /// Browser family alone (for the targeted attacker's match).
    pub browser_family: Box<str>,
    /// OS family alone.
    pub os_family: Box<str>,
}

/// Hand-written fallback browser strings (desktop, mobile, tablet), used
/// when the corpora are missing.
const BUILTIN_DESKTOP: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
];
const BUILTIN_MOBILE: &[&str] = &[
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
];
const BUILTIN_TABLET: &[&str] = &[
    "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
];
/// Scripts and headless browsers, as credential-stuffing tools send them.
const AUTOMATION: &[&str] = &[
    "python-requests/2.31.0",
    "python-requests/2.28.1",
    "curl/8.5.0",
    "Go-http-client/1.1",
    "okhttp/4.12.0",
    "axios/1.6.7",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.6099.109 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/119.0.0.0 Safari/537.36",
];
/// Strings no parser recognises, as in the public dataset's few
/// unparsable rows.
const GARBAGE: &[&str] = &[
    "Mozilla/5.0",
    "-",
    "Mozilla/4.0 (compatible;",
    "null",
    "'\"--",
    "Mozilla/5.0 (",
];

/// Weighted pools of corpus strings by kind (interned on first use).
#[derive(Debug, Default)]
struct Pool {
    uas: Vec<Box<str>>,
    cum: Vec<f64>,
}

impl Pool {
    fn from(items: Vec<(Box<str>, f64)>) -> Pool {
        let cum = rng::cumulative(items.iter().map(|i| i.1));
        Pool {
            uas: items.into_iter().map(|i| i.0).collect(),
            cum,
        }
    }

    fn draw(&self, r: &mut Rng) -> Option<&str> {
        (!self.uas.is_empty()).then(|| &*self.uas[rng::pick(r, &self.cum)])
    }
}

#[derive(Deserialize)]
struct IntoliRecord {
    #[serde(rename = "userAgent")]
    user_agent: String,
    weight: f64,
    #[serde(rename = "deviceCategory")]
    device_category: String,
}

/// The user-agent catalogue and the interned agents.
pub struct Agents {
    parser: UaParser,
    list: Vec<Agent>,
    index: HashMap<Box<str>, u32>,
    desktop: Pool,
    mobile: Pool,
    tablet: Pool,
    /// Common strings (attackers blend in with these).
    common: Vec<u32>,
    automation: Vec<u32>,
    garbage: Vec<u32>,
    /// (browser family, OS family) → common strings.
    by_family: HashMap<(Box<str>, Box<str>), Vec<u32>>,
    /// OS family → common strings.
    by_os: HashMap<Box<str>, Vec<u32>>,
}

impl Agents {
    /// The catalogue from the data directory where it has the corpora and
    /// uap-core's rules, the built-in strings and woothee otherwise.
    /// Returns it with a description of each source used.
    ///
    /// # Errors
    ///
    /// [`SimError`] if a corpus file exists but cannot be read or parsed.
    pub fn load(dir: Option<&Path>) -> Result<(Agents, Vec<String>), SimError> {
        let mut used = Vec::new();
        let regexes = dir.map(|d| d.join("uap-core/regexes.yaml"));
        let parser = match regexes.as_deref().filter(|p| p.is_file()) {
            Some(p) => {
                used.push(format!("uap-core rules {}", p.display()));
                UaParser::from_regexes(p, 1).map_err(SimError::Ua)?
            }
            None => {
                used.push("woothee user-agent parser (built in)".to_string());
                UaParser::new(1)
            }
        };
        let mut desktop = Vec::new();
        let mut mobile = Vec::new();
        let mut tablet = Vec::new();
        let intoli = dir.map(|d| d.join("ua-corpora/intoli-user-agents/user-agents.json.gz"));
        if let Some(path) = intoli.as_deref().filter(|p| p.is_file()) {
            let records = read_intoli(path)?;
            used.push(format!(
                "{} browser profiles from {}",
                records.len(),
                path.display()
            ));
            for r in records {
                let item = (r.user_agent.into_boxed_str(), r.weight);
                match r.device_category.as_str() {
                    "mobile" => mobile.push(item),
                    "tablet" => tablet.push(item),
                    _ => desktop.push(item),
                }
            }
        }
        let builtin = |list: &[&str]| -> Vec<(Box<str>, f64)> {
            list.iter().map(|s| (Box::<str>::from(*s), 1.0)).collect()
        };
        if desktop.is_empty() {
            desktop = builtin(BUILTIN_DESKTOP);
        }
        if mobile.is_empty() {
            mobile = builtin(BUILTIN_MOBILE);
        }
        if tablet.is_empty() {
            tablet = builtin(BUILTIN_TABLET);
        }
        let top = dir.map(|d| d.join("ua-corpora/top-user-agents/index.json"));
        let common: Vec<String> = match top.as_deref().filter(|p| p.is_file()) {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| SimError::Read {
                    path: p.to_path_buf(),
                    source,
                })?;
                let list: Vec<String> =
                    serde_json::from_str(&text).map_err(|source| SimError::Json {
                        path: p.to_path_buf(),
                        source,
                    })?;
                used.push(format!(
                    "{} common strings from {}",
                    list.len(),
                    p.display()
                ));
                list
            }
            None => {
                used.push("built-in browser strings (no corpora)".to_string());
                BUILTIN_DESKTOP
                    .iter()
                    .chain(BUILTIN_MOBILE)
                    .map(|s| (*s).to_string())
                    .collect()
            }
        };
        let mut agents = Agents {
            parser,
            list: Vec::new(),
            index: HashMap::new(),
            desktop: Pool::from(desktop),
            mobile: Pool::from(mobile),
            tablet: Pool::from(tablet),
            common: Vec::new(),
            automation: Vec::new(),
            garbage: Vec::new(),
            by_family: HashMap::new(),
            by_os: HashMap::new(),
        };
        for ua in &common {
            let id = agents.intern(ua);
            agents.common.push(id);
            let a = &agents.list[id as usize];
            let fam = (a.browser_family.clone(), a.os_family.clone());
            let os = a.os_family.clone();
            agents.by_family.entry(fam).or_default().push(id);
            agents.by_os.entry(os).or_default().push(id);
        }
        agents.automation = AUTOMATION.iter().map(|s| agents.intern(s)).collect();
        agents.garbage = GARBAGE.iter().map(|s| agents.intern(s)).collect();
        Ok((agents, used))
    }

    /// The agent with id `id`.
    pub fn get(&self, id: u32) -> &Agent {
        &self.list[id as usize]
    }

    /// Distinct strings interned so far.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether nothing is interned (never true after [`Agents::load`]).
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The id of `ua`, parsing it the first time.
    pub fn intern(&mut self, ua: &str) -> u32 {
        if let Some(&id) = self.index.get(ua) {
            return id;
        }
        let info = self.parser.parse_uncached(ua);
        let agent = agent_from(ua, &info, self.parser.backend_name() == "woothee");
        let id = self.list.len() as u32;
        self.list.push(agent);
        self.index.insert(ua.into(), id);
        id
    }

    /// A device's browser string, drawn by real-world weight.
    pub fn draw_device(&mut self, r: &mut Rng, kind: Kind) -> u32 {
        let pool = match kind {
            Kind::Desktop => &self.desktop,
            Kind::Mobile => &self.mobile,
            Kind::Tablet => &self.tablet,
        };
        let ua: Box<str> = pool.draw(r).unwrap_or(BUILTIN_DESKTOP[0]).into();
        self.intern(&ua)
    }

    /// A common string.
    pub fn draw_common(&self, r: &mut Rng) -> u32 {
        self.common[rng::index(r, self.common.len())]
    }

    /// An automation string.
    pub fn draw_automation(&self, r: &mut Rng) -> u32 {
        self.automation[rng::index(r, self.automation.len())]
    }

    /// An unparsable string.
    pub fn draw_garbage(&self, r: &mut Rng) -> u32 {
        self.garbage[rng::index(r, self.garbage.len())]
    }

    /// A common string with the browser and OS family of `victim` (the
    /// targeted attacker's guess): same families, else same OS, else the
    /// victim's own string (a rare platform the attacker reproduces).
    pub fn draw_like(&self, r: &mut Rng, victim: u32) -> u32 {
        let v = &self.list[victim as usize];
        let key = (v.browser_family.clone(), v.os_family.clone());
        let pool = self
            .by_family
            .get(&key)
            .or_else(|| self.by_os.get(&v.os_family))
            .filter(|p| !p.is_empty());
        match pool {
            Some(p) => p[rng::index(r, p.len())],
            None => victim,
        }
    }

    /// The same string one browser major version later (Chrome, Edge,
    /// Firefox), or None when it names no such version.
    pub fn upgrade(&mut self, id: u32) -> Option<u32> {
        let bumped = bump_versions(&self.list[id as usize].ua)?;
        Some(self.intern(&bumped))
    }
}

fn read_intoli(path: &Path) -> Result<Vec<IntoliRecord>, SimError> {
    let file = std::fs::File::open(path).map_err(|source| SimError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .map_err(|source| SimError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    serde_json::from_str(&text).map_err(|source| SimError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Adds one to the major version after each browser token.
fn bump_versions(ua: &str) -> Option<String> {
    const TOKENS: &[&str] = &["Chrome/", "CriOS/", "Firefox/", "FxiOS/", "Edg/", "rv:"];
    let mut out = ua.to_string();
    let mut changed = false;
    for token in TOKENS {
        let Some(pos) = out.find(token) else { continue };
        let start = pos + token.len();
        let digits = out[start..].bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            continue;
        }
        let Ok(major) = out[start..start + digits].parse::<u32>() else {
            continue;
        };
        out.replace_range(start..start + digits, &(major + 1).to_string());
        changed = true;
    }
    changed.then_some(out)
}

fn joined(name: &str, version: &str) -> Box<str> {
    if version.is_empty() || version == "UNKNOWN" {
        name.into()
    } else {
        format!("{name} {version}").into()
    }
}

fn agent_from(ua: &str, info: &DeviceInfo, woothee: bool) -> Agent {
    // woothee names Windows by release ("Windows 10") and gives the NT
    // version separately; the dataset writes "Windows 10".
    let os = if woothee && info.os.starts_with("Windows") {
        info.os.clone()
    } else {
        joined(&info.os, &info.os_version)
    };
    Agent {
        ua: ua.into(),
        browser: joined(&info.browser, &info.browser_version),
        os,
        device_type: device_type(info, ua),
        browser_family: info.browser.clone(),
        os_family: info.os.clone(),
    }
}

/// The dataset's device classes from riskgate's categories. riskgate (like
/// woothee) has no tablet class, so tablets are told apart by the string:
/// an iPad, or Android without "Mobile".
fn device_type(info: &DeviceInfo, ua: &str) -> &'static str {
    match &*info.category {
        "crawler" => "bot",
        "pc" if ua.contains("iPad") => "tablet",
        "pc" => "desktop",
        "smartphone" | "mobilephone" => {
            let android_tablet = ua.contains("Android") && !ua.contains("Mobile");
            if ua.contains("iPad") || ua.contains("Tablet") || android_tablet {
                "tablet"
            } else {
                "mobile"
            }
        }
        "UNKNOWN" => "",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bump_raises_each_browser_major() {
        let ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0";
        assert_eq!(
            bump_versions(ua).unwrap(),
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:134.0) Gecko/20100101 Firefox/134.0"
        );
        assert!(bump_versions("curl/8.5.0").is_none());
    }

    #[test]
    fn builtin_strings_parse_to_dataset_columns() {
        let (mut a, _) = Agents::load(None).unwrap();
        let d = a.intern(BUILTIN_DESKTOP[0]);
        assert_eq!(a.get(d).device_type, "desktop");
        assert!(a.get(d).browser.starts_with("Chrome"), "{:?}", a.get(d));
        let m = a.intern(BUILTIN_MOBILE[0]);
        assert_eq!(a.get(m).device_type, "mobile");
        let t = a.intern(BUILTIN_TABLET[0]);
        assert_eq!(a.get(t).device_type, "tablet");
        let g = a.intern("Mozilla/5.0 (");
        assert_eq!(a.get(g).device_type, "");
    }
}
