//! Scenarios as data (`testdata/scenarios/*.toml`): a short history of
//! attempts and outcomes, then one attempt and the decision expected for it.
//! [`run`] plays a scenario through the pure core — `core::observe` →
//! the memory store → `core::evaluate` — with no server, the way replay
//! does, with each entry's time as the clock.
//!
//! ```toml
//! description = "what the scenario shows"
//! rules = "fail_mode_deny.toml"   # optional, beside the scenario; else the shipped rules
//!
//! [[history]]                     # in time order; `at` is relative to the attempt
//! user = "alice"
//! ip = "198.51.100.10"
//! device = "laptop-1"
//! binding = "key_verified"        # optional: the login service verified a
//!                                 # key bound to the device (default none)
//! user_agent = "chrome_win"       # an alias below, or a full user-agent string
//! at = "-3d"
//! repeat = 12                     # optional: this entry n times, `every` apart;
//!                                 # `{i}` in user, ip or device is the repetition
//! every = "1d"
//! outcome = "verified"            # optional: `verified` reports what a login
//!                                 # service would after the user got in
//!                                 # (ALLOW → login_succeeded, STEP_UP →
//!                                 # step_up_passed, DENY → nothing), or an
//!                                 # outcome name
//! factor = "webauthn"            # optional: the factor the report names
//! geo = { country = "SE", city = "Stockholm", lat = 59.33, lon = 18.07, accuracy_km = 20, asn = 3301 }
//!
//! [[history]]                     # support trusts or revokes a device
//! user = "alice"
//! ip = "0.0.0.0"
//! device = "laptop-1"
//! mark = "revoke"
//!
//! [attempt]                       # the same keys, plus:
//! enrolled = ["sms_otp"]          # the user's enrolled factors
//! store_down = true               # the store fails: empty view, degraded
//!
//! [expect]
//! action = "step_up"
//! reasons = ["new_device"]        # exactly these acting reason codes
//! shadow = []                     # exactly these shadow reason codes
//! level = "medium"                # optional
//! factors = ["webauthn"]          # optional
//! ```

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use riskgate::core::inputs::{GeoInfo, GeoSources, StoreView};
use riskgate::core::keys::IdHasher;
use riskgate::core::model::Model;
use riskgate::core::observe;
use riskgate::core::rules::RuleSet;
use riskgate::core::{self, Evaluated, Inputs};
use riskgate::domain::{
    Action, Channel, CredentialResult, Decision, Degraded, DeviceBinding, Factor, FactorSet,
    LoginAttempt, Outcome, RiskLevel, UnixMillis,
};
use riskgate::signals::device::UaParser;
use riskgate::store::memory::{MemoryLimits, MemoryStore};
use riskgate::store::{Mark, OutcomeReport, Store};

/// 2026-03-02 12:00 UTC, a Monday: the attempt's time.
pub const NOW: i64 = 1_772_452_800_000;

/// Short names for common user agents.
pub const AGENTS: &[(&str, &str)] = &[
    (
        "chrome_win",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    ),
    (
        "chrome_win_121",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36",
    ),
    (
        "firefox_linux",
        "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    ),
    (
        "safari_ios",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    ),
    (
        "headless",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
    ),
    ("python", "python-requests/2.31.0"),
    ("curl", "curl/8.4.0"),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub description: String,
    #[serde(default)]
    pub rules: Option<String>,
    #[serde(default)]
    pub history: Vec<Entry>,
    pub attempt: Entry,
    pub expect: Expect,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub user: String,
    pub ip: String,
    #[serde(default)]
    pub device: Option<String>,
    /// How the login service knows `device` (`none` or `key_verified`).
    #[serde(default)]
    pub binding: Option<DeviceBinding>,
    #[serde(default)]
    pub user_agent: Option<String>,
    #[serde(default)]
    pub channel: Option<Channel>,
    #[serde(default)]
    pub credential: Option<CredentialResult>,
    /// Relative to the attempt: `-3d`, `-2h`, `-10m`, `-30s` (default 0).
    #[serde(default)]
    pub at: Option<String>,
    #[serde(default)]
    pub repeat: Option<u32>,
    #[serde(default)]
    pub every: Option<String>,
    #[serde(default)]
    pub outcome: Option<String>,
    /// The factor the outcome report names (a passed WebAuthn or TOTP
    /// step-up is recent strong authentication).
    #[serde(default)]
    pub factor: Option<Factor>,
    /// Instead of an attempt: support trusts or revokes `device` for `user`.
    #[serde(default)]
    pub mark: Option<Mark>,
    #[serde(default)]
    pub geo: Option<Geo>,
    #[serde(default)]
    pub enrolled: Vec<Factor>,
    #[serde(default)]
    pub store_down: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Geo {
    pub country: Option<String>,
    pub region: Option<String>,
    pub city: Option<String>,
    pub asn: Option<u32>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub accuracy_km: Option<f64>,
    #[serde(default)]
    pub anonymous: bool,
    #[serde(default)]
    pub vpn: bool,
    #[serde(default)]
    pub tor: bool,
    #[serde(default)]
    pub hosting: bool,
    #[serde(default)]
    pub proxy: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub action: Action,
    pub reasons: Vec<String>,
    #[serde(default)]
    pub shadow: Vec<String>,
    #[serde(default)]
    pub level: Option<RiskLevel>,
    #[serde(default)]
    pub factors: Option<Vec<Factor>>,
}

impl Geo {
    fn info(&self) -> GeoInfo {
        let anonymous_db = self.anonymous || self.vpn || self.tor || self.hosting || self.proxy;
        GeoInfo {
            country: self.country.clone(),
            region: self.region.clone(),
            city: self.city.clone(),
            location: match (self.lat, self.lon) {
                (Some(lat), Some(lon)) => Some((lat, lon, self.accuracy_km.unwrap_or(20.0))),
                _ => None,
            },
            asn: self.asn,
            asn_org: None,
            anonymous: self.anonymous || self.vpn || self.tor || self.proxy,
            vpn: self.vpn,
            tor: self.tor,
            hosting: self.hosting,
            public_proxy: self.proxy,
            residential_proxy: false,
            sources: GeoSources {
                city: self.country.is_some() || self.city.is_some(),
                asn: self.asn.is_some(),
                anonymous: anonymous_db,
            },
        }
    }
}

/// `-3d` → milliseconds.
fn offset(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a time like -3d, -2h, -10m, -30s"))?;
    let ms = match unit {
        "d" => 86_400_000,
        "h" => 3_600_000,
        "m" => 60_000,
        "s" => 1000,
        _ => return Err(format!("`{s}`: the unit is one of d, h, m, s")),
    };
    Ok(n * ms)
}

fn agent(s: &str) -> String {
    AGENTS
        .iter()
        .find(|(k, _)| *k == s)
        .map_or_else(|| s.to_string(), |(_, v)| v.to_string())
}

/// Plays the scenario and returns the attempt's evaluation.
pub fn run(dir: &Path, s: &Scenario) -> Result<Evaluated, String> {
    let rules = match &s.rules {
        Some(f) => RuleSet::load(&dir.join(f)).map_err(|e| e.to_string())?,
        None => RuleSet::embedded().map_err(|e| e.to_string())?,
    };
    let model = Model::embedded().map_err(|e| e.to_string())?;
    // GeoIP is "configured" when any entry says where it comes from.
    let geo_configured = s.attempt.geo.is_some() || s.history.iter().any(|h| h.geo.is_some());
    let mut player = Player {
        hasher: IdHasher::new(b"scenario-corpus-key"),
        ua: UaParser::new(64),
        store: MemoryStore::new_local(MemoryLimits::default()),
        rules,
        model,
        geo_configured,
        seq: 0,
    };
    for h in &s.history {
        let start = offset(h.at.as_deref().unwrap_or("0s"))?;
        let every = offset(h.every.as_deref().unwrap_or("1d"))?;
        let n = h.repeat.unwrap_or(1).max(1);
        for i in 0..n {
            let at = NOW + start + i64::from(i) * every;
            if let Some(mark) = h.mark {
                player.mark(h, mark, at)?;
                continue;
            }
            let numbered = |s: &str| s.replace("{i}", &i.to_string());
            let entry = Entry {
                user: numbered(&h.user),
                ip: numbered(&h.ip),
                device: h.device.as_deref().map(numbered),
                binding: h.binding,
                user_agent: h.user_agent.clone(),
                channel: h.channel,
                credential: h.credential,
                geo: h.geo.clone(),
                enrolled: h.enrolled.clone(),
                store_down: h.store_down,
                ..Entry::default()
            };
            let (e, decision, user) = player.play(&entry, at)?;
            if let Some(o) = &h.outcome {
                let outcome = match o.as_str() {
                    "verified" => match e.decision.action {
                        Action::Allow => Some(Outcome::LoginSucceeded),
                        Action::StepUp => Some(Outcome::StepUpPassed),
                        Action::Deny => None,
                    },
                    name => Some(
                        Outcome::parse(name).ok_or_else(|| format!("unknown outcome `{name}`"))?,
                    ),
                };
                if let Some(outcome) = outcome {
                    player
                        .store
                        .report_sync(&OutcomeReport {
                            decision,
                            user,
                            action: e.decision.action,
                            outcome,
                            factor: h.factor,
                            at: UnixMillis(at),
                        })
                        .map_err(|e| e.to_string())?;
                }
            }
        }
    }
    let at = NOW + offset(s.attempt.at.as_deref().unwrap_or("0s"))?;
    Ok(player.play(&s.attempt, at)?.0)
}

struct Player {
    hasher: IdHasher,
    ua: UaParser,
    store: MemoryStore,
    rules: RuleSet,
    model: Model,
    geo_configured: bool,
    seq: u128,
}

impl Player {
    fn mark(&self, e: &Entry, mark: Mark, at: i64) -> Result<(), String> {
        use riskgate::core::keys::Dim;
        let device = e.device.as_deref().ok_or("a mark needs `device`")?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|e| e.to_string())?;
        runtime
            .block_on(self.store.mark_device(
                self.hasher.key(Dim::User, e.user.as_bytes()),
                self.hasher.key(Dim::Device, device.as_bytes()),
                mark,
                UnixMillis(at),
            ))
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    fn play(
        &mut self,
        e: &Entry,
        at: i64,
    ) -> Result<(Evaluated, u128, riskgate::core::keys::Key), String> {
        let attempt = LoginAttempt {
            user_id: e.user.clone(),
            channel: e.channel.unwrap_or(Channel::Web),
            ip: e
                .ip
                .parse()
                .map_err(|_| format!("`{}` is not an IP address", e.ip))?,
            device_id: e.device.clone(),
            device_binding: e.binding.unwrap_or_default(),
            user_agent: e.user_agent.as_deref().map(agent),
            occurred_at: UnixMillis(at),
            credential_result: e.credential.unwrap_or(CredentialResult::Valid),
            attributes: BTreeMap::new(),
            request_id: None,
            enrolled_factors: e.enrolled.iter().copied().collect::<FactorSet>(),
        };
        let device = self.ua.parse(attempt.user_agent.as_deref());
        let geo = self
            .geo_configured
            .then(|| e.geo.as_ref().map(Geo::info).unwrap_or_default());
        let facts = observe::facts(&self.hasher, &attempt, &device, geo.as_ref());
        self.seq += 1;
        let obs = observe::observation(
            &self.hasher,
            self.seq,
            &attempt,
            facts,
            observe::place(geo.as_ref()),
        );
        // A failing store still counts nothing and answers nothing.
        let view = if e.store_down {
            StoreView::default()
        } else {
            self.store.observe_sync(&obs)
        };
        let evaluated = core::evaluate(
            Inputs {
                attempt: &attempt,
                device: Arc::clone(&device),
                geo: geo.as_ref(),
                view: &view,
                degraded: Degraded {
                    store: e.store_down,
                    geo: !self.geo_configured,
                },
            },
            &Default::default(),
            &self.model,
            &self.rules,
        );
        Ok((evaluated, self.seq, obs.user))
    }
}

fn codes(rs: &[riskgate::domain::Reason]) -> BTreeSet<String> {
    rs.iter().map(|r| r.code.clone()).collect()
}

/// Every way `d` differs from what the scenario expects.
pub fn check(e: &Expect, d: &Decision) -> Vec<String> {
    let mut problems = Vec::new();
    if d.action != e.action {
        problems.push(format!(
            "action: expected {}, got {} (score {:.3})",
            e.action, d.action, d.score
        ));
    }
    let (want, got) = (
        e.reasons.iter().cloned().collect::<BTreeSet<_>>(),
        codes(&d.reasons),
    );
    if want != got {
        problems.push(format!("reasons: expected {want:?}, got {got:?}"));
    }
    let (want, got) = (
        e.shadow.iter().cloned().collect::<BTreeSet<_>>(),
        codes(&d.shadow_reasons),
    );
    if want != got {
        problems.push(format!("shadow reasons: expected {want:?}, got {got:?}"));
    }
    if let Some(level) = e.level
        && level != d.level
    {
        problems.push(format!("level: expected {level}, got {}", d.level));
    }
    if let Some(f) = &e.factors
        && *f != d.acceptable_factors
    {
        problems.push(format!(
            "factors: expected {f:?}, got {:?}",
            d.acceptable_factors
        ));
    }
    problems
}
