//! The typed feature struct every later stage reads, built by a pure function
//! from the attempt and its signals, and the catalog of model inputs derived
//! from it (name, reason code, value, human sentence).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::domain::{Channel, CredentialResult, Degraded, LoginAttempt, UnixMillis};

use super::freeman;
use super::inputs::{DeviceInfo, GeoInfo, StoreView, VelocityView};
use super::keys::Dim;

/// Facts about the attempt itself.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttemptFeatures {
    pub channel: Channel,
    pub credential_result: CredentialResult,
    pub hour_of_week: u8,
    pub ip_version: u8,
    pub has_device_id: bool,
    pub has_user_agent: bool,
}

/// What riskgate knows about the user.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UserFeatures {
    /// Verified logins remembered for this user.
    pub verified_logins: u32,
    /// No verified login yet: newness of device and network says nothing.
    pub is_new: bool,
}

/// The device and its user agent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeviceFeatures {
    /// The device id was seen in the user's verified logins.
    pub known: bool,
    /// A device id was sent, the user has history, and it is not in it.
    pub new: bool,
    /// The exact user-agent string was seen in the user's verified logins.
    pub user_agent_known: bool,
    /// The user has history and this user agent is not in it.
    pub new_user_agent: bool,
    /// Distinct users seen on this device in the last 24 h (this one included).
    pub users_24h: u32,
    /// Support revoked this device for this user (reported lost or stolen).
    pub revoked: bool,
    /// The login service verified a key bound to this device in this
    /// attempt (`DEVICE_BINDING_KEY_VERIFIED`).
    pub key_verified: bool,
    /// A verified login of this user showed a key bound to this device
    /// before.
    pub bound: bool,
    /// A known device that has shown its key before, presented without it:
    /// what a copied device id looks like (a revoked or forgotten device is
    /// not known, so never this).
    pub binding_missing: bool,
    /// The parsed user agent (`browser`, `os`, `category`, `is_crawler`,
    /// `is_automation`, …).
    #[serde(flatten)]
    pub info: Arc<DeviceInfo>,
}

/// The network the attempt comes from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkFeatures {
    /// This exact IP was seen in the user's verified logins.
    pub ip_known: bool,
    /// The /24 (IPv4) or /48 (IPv6) was seen in the user's verified logins.
    pub network_known: bool,
    /// The user has history and this network is not in it.
    pub new_network: bool,
}

/// Where the attempt comes from, when a GeoIP database answers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeoFeatures {
    /// A GeoIP database answered for this IP.
    pub available: bool,
    /// ISO 3166-1 alpha-2 code, or "" when unknown.
    pub country: String,
    /// First subdivision ISO code, or "" when unknown.
    pub region: String,
    pub city: String,
    pub asn: u32,
    pub new_country: bool,
    pub new_region: bool,
    pub new_city: bool,
    pub new_asn: bool,
    /// Great-circle distance from the last verified login, km (0 if unknown).
    pub distance_km: f64,
    /// Implied speed from the last verified login, km/h (0 if unknown).
    pub speed_kmh: f64,
    /// Minutes since the last verified login (0 if none).
    pub minutes_since_last: f64,
    pub impossible_travel: bool,
    pub anonymous: bool,
    pub vpn: bool,
    pub tor: bool,
    pub hosting: bool,
    pub proxy: bool,
}

/// Failure and attempt counts in sliding windows (this attempt included).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VelocityFeatures {
    pub user_failures_1m: u32,
    pub user_failures_1h: u32,
    pub user_failures_24h: u32,
    pub ip_failures_1m: u32,
    pub ip_failures_1h: u32,
    pub ip_failures_24h: u32,
    pub network_failures_1m: u32,
    pub network_failures_1h: u32,
    pub network_failures_24h: u32,
    pub device_failures_1m: u32,
    pub device_failures_1h: u32,
    pub device_failures_24h: u32,
    pub ip_attempts_1m: u32,
    pub ip_attempts_1h: u32,
    pub ip_attempts_24h: u32,
    /// Distinct users tried from this IP in the last hour (this one included).
    pub ip_distinct_users_1h: u32,
    /// Distinct users seen on this device in the last 1 h / 24 h (this one included).
    pub device_distinct_users_1h: u32,
    pub device_distinct_users_24h: u32,
    /// Deployment-wide failed share of attempts in the last minute / 24 h.
    pub global_failure_ratio_1m: f64,
    pub global_failure_ratio_24h: f64,
    /// How far the last minute's failure ratio is above the 24 h baseline
    /// (credential stuffing across many IPs); 0 with fewer than 20 attempts
    /// in the last minute.
    pub global_failure_ratio_jump: f64,
}

fn ratio(failures: u32, attempts: u32) -> f64 {
    if attempts == 0 {
        0.0
    } else {
        f64::from(failures) / f64::from(attempts)
    }
}

impl From<&VelocityView> for VelocityFeatures {
    fn from(v: &VelocityView) -> Self {
        let r1m = ratio(v.global_failures.m1, v.global_attempts.m1);
        let r24h = ratio(v.global_failures.h24, v.global_attempts.h24);
        VelocityFeatures {
            user_failures_1m: v.user_failures.m1,
            user_failures_1h: v.user_failures.h1,
            user_failures_24h: v.user_failures.h24,
            ip_failures_1m: v.ip_failures.m1,
            ip_failures_1h: v.ip_failures.h1,
            ip_failures_24h: v.ip_failures.h24,
            network_failures_1m: v.network_failures.m1,
            network_failures_1h: v.network_failures.h1,
            network_failures_24h: v.network_failures.h24,
            device_failures_1m: v.device_failures.m1,
            device_failures_1h: v.device_failures.h1,
            device_failures_24h: v.device_failures.h24,
            ip_attempts_1m: v.ip_attempts.m1,
            ip_attempts_1h: v.ip_attempts.h1,
            ip_attempts_24h: v.ip_attempts.h24,
            ip_distinct_users_1h: v.ip_distinct_users_1h,
            device_distinct_users_1h: v.device_distinct_users_1h,
            device_distinct_users_24h: v.device_distinct_users_24h,
            global_failure_ratio_1m: r1m,
            global_failure_ratio_24h: r24h,
            global_failure_ratio_jump: if v.global_attempts.m1 >= 20 {
                (r1m - r24h).max(0.0)
            } else {
                0.0
            },
        }
    }
}

/// Behavior compared with the user's own history.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BehaviorFeatures {
    /// Verified logins of this user in this hour of the week.
    pub hour_count: u32,
    /// The user has at least 10 verified logins and none in this hour of the
    /// week.
    pub unusual_hour: bool,
    /// A strong factor (WebAuthn, TOTP) passed within the configured window.
    pub recent_strong_auth: bool,
    /// The Freeman et al. likelihood ratio over IP→ASN→country and
    /// UA→browser→OS→device type (lower = more familiar); 0 for a user with
    /// no history.
    pub freeman_score: f64,
    /// `freeman_score` mapped monotonically to [0, 1] (s / (1 + s)).
    pub freeman_risk: f64,
    /// `log10(freeman_score)` clamped to [-6, 6]: monotone and bounded, and
    /// unlike `freeman_risk` it separates familiar attempts (typical scores
    /// 1e-5..1e-2) from each other; 0 for a user with no history.
    pub freeman_log_lr: f64,
}

/// Everything the model, the rules and the policy see about one attempt.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Features {
    pub at: UnixMillis,
    pub attempt: AttemptFeatures,
    pub user: UserFeatures,
    pub device: DeviceFeatures,
    pub network: NetworkFeatures,
    pub geo: GeoFeatures,
    pub velocity: VelocityFeatures,
    pub behavior: BehaviorFeatures,
    /// Which signal sources could not answer.
    pub degraded: Degraded,
}

/// Tunables of feature extraction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FeatureSettings {
    /// How long a passed strong factor counts as recent, ms.
    pub strong_auth_window_ms: i64,
    /// Implied speed above which travel is impossible, km/h.
    pub impossible_travel_kmh: f64,
    /// Travel shorter than this, after subtracting both accuracy radii,
    /// never counts as impossible (CGNAT, mobile networks), km.
    pub impossible_travel_min_km: f64,
}

impl Default for FeatureSettings {
    fn default() -> Self {
        FeatureSettings {
            strong_auth_window_ms: 15 * 60_000,
            impossible_travel_kmh: 1000.0,
            impossible_travel_min_km: 300.0,
        }
    }
}

/// Builds the features. Pure: everything comes in as arguments.
pub fn build(
    attempt: &LoginAttempt,
    device: Arc<DeviceInfo>,
    view: &StoreView,
    geo: GeoFeatures,
    degraded: Degraded,
    settings: &FeatureSettings,
) -> Features {
    let p = &view.profile;
    let has_history = p.verified_logins > 0;
    let has_device_id = attempt.device_id.is_some();
    let has_user_agent = attempt.user_agent.is_some();
    let device_known = has_device_id && p.seen(Dim::Device) > 0;
    let key_verified =
        has_device_id && attempt.device_binding == crate::domain::DeviceBinding::KeyVerified;
    let device_bound = has_device_id && p.seen(Dim::BoundDevice) > 0;
    let ua_known = has_user_agent && p.seen(Dim::UserAgent) > 0;
    let network_known = p.seen(Dim::Network) > 0;
    let at = attempt.occurred_at;
    let hour = at.hour_of_week();
    let recent_strong_auth = p
        .last_strong_auth
        .is_some_and(|t| at.0 - t.0 <= settings.strong_auth_window_ms && at.0 >= t.0);

    let freeman_score = if has_history {
        freeman_score(view, has_user_agent, !geo.country.is_empty(), geo.asn != 0)
    } else {
        0.0
    };

    Features {
        at,
        attempt: AttemptFeatures {
            channel: attempt.channel,
            credential_result: attempt.credential_result,
            hour_of_week: hour,
            ip_version: if attempt.ip.is_ipv4() { 4 } else { 6 },
            has_device_id,
            has_user_agent,
        },
        user: UserFeatures {
            verified_logins: p.verified_logins,
            is_new: !has_history && !degraded.store,
        },
        device: DeviceFeatures {
            known: device_known,
            new: has_device_id && has_history && !device_known,
            user_agent_known: ua_known,
            new_user_agent: has_user_agent && has_history && !ua_known,
            users_24h: view.velocity.device_distinct_users_24h,
            revoked: has_device_id && p.device_revoked,
            key_verified,
            bound: device_bound,
            binding_missing: device_known && device_bound && !key_verified,
            info: device,
        },
        network: NetworkFeatures {
            ip_known: p.seen(Dim::Ip) > 0,
            network_known,
            new_network: has_history && !network_known,
        },
        geo,
        velocity: VelocityFeatures::from(&view.velocity),
        behavior: BehaviorFeatures {
            hour_count: p.hour_count,
            unusual_hour: p.verified_logins >= 10 && p.hour_count == 0,
            recent_strong_auth,
            freeman_score,
            freeman_risk: freeman::risk_01(freeman_score),
            freeman_log_lr: if has_history {
                freeman::log_lr(freeman_score)
            } else {
                0.0
            },
        },
        degraded,
    }
}

/// Great-circle distance in km (haversine, mean Earth radius).
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * 6371.0088 * h.sqrt().clamp(0.0, 1.0).asin()
}

/// Geo features from a GeoIP answer and the user's history. Pure.
///
/// Impossible travel compares with the last verified login: the distance
/// minus both accuracy radii must be at least `impossible_travel_min_km`,
/// and that distance over the elapsed time (at least one minute) must exceed
/// `impossible_travel_kmh`. So CGNAT and mobile IPs, whose radius is large,
/// and short hops never fire it.
pub fn geo_features(
    geo: Option<&GeoInfo>,
    view: &StoreView,
    at: UnixMillis,
    settings: &FeatureSettings,
) -> GeoFeatures {
    let Some(g) = geo else {
        return GeoFeatures::default();
    };
    let p = &view.profile;
    let history = p.verified_logins > 0;
    let mut f = GeoFeatures {
        available: g.sources.city || g.sources.asn || g.sources.anonymous,
        country: g.country.clone().unwrap_or_default(),
        region: g.region.clone().unwrap_or_default(),
        city: g.city.clone().unwrap_or_default(),
        asn: g.asn.unwrap_or(0),
        new_country: history && g.country.is_some() && p.seen(Dim::Country) == 0,
        new_region: history && g.region.is_some() && p.seen(Dim::Region) == 0,
        new_city: history && g.city.is_some() && p.seen(Dim::City) == 0,
        new_asn: history && g.asn.is_some() && p.seen(Dim::Asn) == 0,
        anonymous: g.anonymous || g.vpn || g.tor || g.public_proxy || g.residential_proxy,
        vpn: g.vpn,
        tor: g.tor,
        hosting: g.hosting,
        proxy: g.public_proxy || g.residential_proxy,
        ..GeoFeatures::default()
    };
    if let (Some((lat, lon, acc)), Some(last)) = (g.location, p.last_login)
        && let Some(prev) = last.place
    {
        let d = distance_km((lat, lon), (prev.lat, prev.lon));
        let minutes = ((at.0 - last.at.0) as f64 / 60_000.0).max(0.0);
        let effective = (d - acc - prev.accuracy_km).max(0.0);
        let speed = effective / (minutes.max(1.0) / 60.0);
        f.distance_km = d;
        f.minutes_since_last = minutes;
        f.speed_kmh = speed;
        f.impossible_travel = effective >= settings.impossible_travel_min_km
            && speed > settings.impossible_travel_kmh;
    }
    f
}

/// The Freeman likelihood ratio from the store's counts (before this attempt).
fn freeman_score(view: &StoreView, has_ua: bool, has_country: bool, has_asn: bool) -> f64 {
    let p = &view.profile;
    let level = |d: Dim, known: bool| {
        if known {
            freeman::LevelCounts::known(p.global_seen(d), p.global_distinct(d), p.seen(d))
        } else {
            freeman::LevelCounts::UNKNOWN
        }
    };
    let ip = freeman::FeatureCounts {
        levels: [
            level(Dim::Ip, true),
            level(Dim::Asn, has_asn),
            level(Dim::Country, has_country),
        ],
    };
    let ua = freeman::FeatureCounts {
        levels: [
            level(Dim::UserAgent, has_ua),
            level(Dim::Browser, has_ua),
            level(Dim::Os, has_ua),
            level(Dim::DeviceType, has_ua),
        ],
    };
    let totals = freeman::Totals {
        global_logins: p.global_logins,
        global_users: p.global_users,
        user_logins: p.verified_logins,
    };
    freeman::score(&ip, &ua, &totals)
}

/// One numeric model input: how to compute it and how to explain it.
pub struct Input {
    /// The name models use for it (stable; part of the model file schema).
    pub name: &'static str,
    /// The reason code reported when it raises the score.
    pub code: &'static str,
    pub value: fn(&Features) -> f64,
    pub explain: fn(&Features) -> String,
}

fn b(v: bool) -> f64 {
    if v { 1.0 } else { 0.0 }
}

fn ln1p(n: u32) -> f64 {
    f64::from(n).ln_1p()
}

fn plural(n: u32, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The sentence of both forms of the Freeman ratio.
fn unfamiliar_history(f: &Features) -> String {
    format!(
        "this network and browser are unusual for this user (history likelihood ratio {:.2})",
        f.behavior.freeman_score
    )
}

/// Every input a model may use, in canonical order.
pub const INPUTS: &[Input] = &[
    Input {
        name: "new_user",
        code: "new_user",
        value: |f| b(f.user.is_new),
        explain: |_| "no verified login yet for this user".into(),
    },
    Input {
        name: "new_device",
        code: "new_device",
        value: |f| b(f.device.new),
        explain: |_| "first login from this device for this user".into(),
    },
    Input {
        name: "bound_device",
        code: "bound_device",
        value: |f| b(f.device.known && f.device.key_verified),
        explain: |_| "a known device proved possession of its bound key".into(),
    },
    Input {
        name: "device_binding_missing",
        code: "device_binding_missing",
        value: |f| b(f.device.binding_missing),
        explain: |_| {
            "this device proved possession of a bound key before, and not this time: a copied device id looks like this".into()
        },
    },
    Input {
        name: "no_device_id",
        code: "no_device_id",
        value: |f| b(!f.attempt.has_device_id),
        explain: |_| "the channel sent no device identifier".into(),
    },
    Input {
        name: "new_network",
        code: "new_network",
        value: |f| b(f.network.new_network),
        explain: |_| "first login from this network for this user".into(),
    },
    Input {
        name: "new_user_agent",
        code: "new_user_agent",
        value: |f| b(f.device.new_user_agent),
        explain: |f| {
            format!(
                "first login with this browser version for this user ({} on {})",
                f.device.info.browser, f.device.info.os
            )
        },
    },
    Input {
        name: "automation_user_agent",
        code: "automation_user_agent",
        value: |f| b(f.device.info.is_crawler || f.device.info.is_automation),
        explain: |_| "the user agent is a bot, crawler, headless browser or HTTP library".into(),
    },
    Input {
        name: "credential_invalid",
        code: "invalid_credential",
        value: |f| b(f.attempt.credential_result == CredentialResult::Invalid),
        explain: |_| "the primary credential was wrong".into(),
    },
    Input {
        name: "user_failures_1h",
        code: "user_failure_burst",
        value: |f| ln1p(f.velocity.user_failures_1h),
        explain: |f| {
            format!(
                "{} for this user in the last hour",
                plural(f.velocity.user_failures_1h, "failed login", "failed logins")
            )
        },
    },
    Input {
        name: "ip_failures_1h",
        code: "ip_failure_burst",
        value: |f| ln1p(f.velocity.ip_failures_1h),
        explain: |f| {
            format!(
                "{} from this IP address in the last hour",
                plural(f.velocity.ip_failures_1h, "failed login", "failed logins")
            )
        },
    },
    Input {
        name: "network_failures_1h",
        code: "network_failure_burst",
        value: |f| ln1p(f.velocity.network_failures_1h),
        explain: |f| {
            format!(
                "{} from this network in the last hour",
                plural(
                    f.velocity.network_failures_1h,
                    "failed login",
                    "failed logins"
                )
            )
        },
    },
    Input {
        name: "device_failures_1h",
        code: "device_failure_burst",
        value: |f| ln1p(f.velocity.device_failures_1h),
        explain: |f| {
            format!(
                "{} from this device in the last hour",
                plural(
                    f.velocity.device_failures_1h,
                    "failed login",
                    "failed logins"
                )
            )
        },
    },
    Input {
        name: "ip_other_users_1h",
        code: "password_spray",
        value: |f| ln1p(f.velocity.ip_distinct_users_1h.saturating_sub(1)),
        explain: |f| {
            format!(
                "{} tried from this IP address in the last hour",
                plural(
                    f.velocity.ip_distinct_users_1h,
                    "account",
                    "different accounts"
                )
            )
        },
    },
    Input {
        name: "device_other_users_24h",
        code: "shared_device",
        value: |f| ln1p(f.device.users_24h.saturating_sub(1)),
        explain: |f| {
            format!(
                "{} used this device in the last 24 hours",
                plural(f.device.users_24h, "account", "different accounts")
            )
        },
    },
    Input {
        name: "unusual_hour",
        code: "unusual_hour",
        value: |f| b(f.behavior.unusual_hour),
        explain: |f| {
            format!(
                "no verified login by this user at this hour of the week (hour {})",
                f.attempt.hour_of_week
            )
        },
    },
    Input {
        name: "new_country",
        code: "new_country",
        value: |f| b(f.geo.new_country),
        explain: |f| format!("first login from country {} for this user", f.geo.country),
    },
    Input {
        name: "new_city",
        code: "new_city",
        value: |f| b(f.geo.new_city),
        explain: |f| format!("first login from {} for this user", f.geo.city),
    },
    Input {
        name: "new_asn",
        code: "new_asn",
        value: |f| b(f.geo.new_asn),
        explain: |f| {
            format!(
                "first login from network operator AS{} for this user",
                f.geo.asn
            )
        },
    },
    Input {
        name: "impossible_travel",
        code: "impossible_travel",
        value: |f| b(f.geo.impossible_travel),
        explain: |f| {
            format!(
                "{:.0} km from the last login {:.0} minutes ago: {:.0} km/h",
                f.geo.distance_km, f.geo.minutes_since_last, f.geo.speed_kmh
            )
        },
    },
    Input {
        name: "anonymous_network",
        code: "anonymous_ip",
        value: |f| b(f.geo.anonymous && !f.geo.tor),
        explain: |f| {
            let kind = if f.geo.vpn {
                "a VPN"
            } else if f.geo.proxy {
                "a proxy"
            } else {
                "an anonymizing network"
            };
            format!("the IP address belongs to {kind}")
        },
    },
    Input {
        name: "tor_exit",
        code: "tor_exit_node",
        value: |f| b(f.geo.tor),
        explain: |_| "the IP address is a Tor exit node".into(),
    },
    Input {
        name: "hosting_provider",
        code: "hosting_ip",
        value: |f| b(f.geo.hosting),
        explain: |_| "the IP address belongs to a hosting provider, not a consumer network".into(),
    },
    Input {
        name: "freeman_risk",
        code: "unfamiliar_history",
        value: |f| f.behavior.freeman_risk,
        explain: unfamiliar_history,
    },
    Input {
        name: "freeman_log_lr",
        code: "unfamiliar_history",
        value: |f| f.behavior.freeman_log_lr,
        explain: unfamiliar_history,
    },
    Input {
        name: "recent_strong_auth",
        code: "recent_strong_auth",
        value: |f| b(f.behavior.recent_strong_auth),
        explain: |_| "the user recently passed a strong second factor".into(),
    },
];

/// The input named `name`, if any.
pub fn input(name: &str) -> Option<(usize, &'static Input)> {
    INPUTS.iter().enumerate().find(|(_, i)| i.name == name)
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Features for unit tests of later stages.
    use super::*;
    use crate::domain::FactorSet;
    use std::collections::BTreeMap;

    pub fn attempt() -> LoginAttempt {
        LoginAttempt {
            user_id: "alice".into(),
            channel: Channel::Web,
            ip: "203.0.113.7".parse().unwrap(),
            device_id: Some("dev-1".into()),
            device_binding: crate::domain::DeviceBinding::None,
            user_agent: Some("Mozilla/5.0".into()),
            occurred_at: UnixMillis(1_700_000_000_000),
            credential_result: CredentialResult::Valid,
            attributes: BTreeMap::new(),
            request_id: None,
            enrolled_factors: FactorSet::EMPTY,
        }
    }

    pub fn features() -> Features {
        build(
            &attempt(),
            Arc::new(DeviceInfo::unknown()),
            &StoreView::default(),
            GeoFeatures::default(),
            Degraded::default(),
            &FeatureSettings::default(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stores count deployment-wide only the dimensions Freeman's
    /// ratio reads (`GLOBAL_DIMS`): counts of any other leave it as is.
    #[test]
    fn freeman_reads_global_counts_of_the_global_dims_only() {
        let mut view = StoreView::default();
        view.profile.global_logins = 1_000;
        view.profile.global_users = 100;
        view.profile.verified_logins = 10;
        for (slot, dim) in crate::core::keys::PROFILE_DIMS.iter().enumerate() {
            if crate::core::keys::GLOBAL_DIMS.contains(dim) {
                view.profile.global_seen[slot] = 50;
                view.profile.global_distinct[slot] = 20;
                view.profile.seen[slot] = 3;
            }
        }
        let base = freeman_score(&view, true, true, true);
        let mut more = view;
        let mut counted = view;
        for slot in 0..more.profile.global_seen.len() {
            if crate::core::keys::counted_globally(slot) {
                counted.profile.global_seen[slot] += 400;
            } else {
                more.profile.global_seen[slot] = 999;
                more.profile.global_distinct[slot] = 77;
            }
        }
        assert_eq!(freeman_score(&more, true, true, true), base);
        // And each counted dimension is read.
        assert_ne!(freeman_score(&counted, true, true, true), base);
    }

    #[test]
    fn new_user_newness_is_not_counted_as_new_device() {
        let f = fixtures::features();
        assert!(f.user.is_new);
        assert!(!f.device.new);
        assert!(!f.network.new_network);
    }

    fn geo_at(lat: f64, lon: f64, acc: f64) -> GeoInfo {
        GeoInfo {
            country: Some("SE".into()),
            location: Some((lat, lon, acc)),
            ..GeoInfo::default()
        }
    }

    fn after_login_at(lat: f64, lon: f64, acc: f64) -> StoreView {
        let mut v = StoreView::default();
        v.profile.verified_logins = 3;
        v.profile.last_login = Some(crate::core::inputs::LastLogin {
            at: UnixMillis(0),
            place: Some(crate::core::inputs::GeoPoint {
                lat,
                lon,
                accuracy_km: acc,
            }),
        });
        v
    }

    #[test]
    fn great_circle_distance_matches_known_pairs() {
        // London – Linköping ≈ 1,260 km; Paris – New York ≈ 5,837 km.
        let d = distance_km((51.5074, -0.1278), (58.4108, 15.6214));
        assert!((d - 1260.0).abs() < 15.0, "{d}");
        let d = distance_km((48.8566, 2.3522), (40.7128, -74.0060));
        assert!((d - 5837.0).abs() < 15.0, "{d}");
        assert_eq!(distance_km((10.0, 10.0), (10.0, 10.0)), 0.0);
    }

    #[test]
    fn impossible_travel_needs_speed_and_distance_beyond_the_accuracy_radii() {
        let s = FeatureSettings::default();
        let view = after_login_at(51.5074, -0.1278, 10.0);
        // Linköping 20 minutes later: ~4,200 km/h.
        let f = geo_features(
            Some(&geo_at(58.4108, 15.6214, 50.0)),
            &view,
            UnixMillis(20 * 60_000),
            &s,
        );
        assert!(f.impossible_travel, "{f:?}");
        assert!((f.minutes_since_last - 20.0).abs() < 1e-9);
        assert!(f.speed_kmh > 3000.0, "{}", f.speed_kmh);
        // The same trip a day later is ordinary.
        let f = geo_features(
            Some(&geo_at(58.4108, 15.6214, 50.0)),
            &view,
            UnixMillis(86_400_000),
            &s,
        );
        assert!(!f.impossible_travel);
        // A mobile/CGNAT answer with a 1,000 km radius never fires it.
        let f = geo_features(
            Some(&geo_at(58.4108, 15.6214, 1000.0)),
            &view,
            UnixMillis(60_000),
            &s,
        );
        assert!(!f.impossible_travel, "{f:?}");
        // A short hop under the minimum distance never fires it either.
        let f = geo_features(
            Some(&geo_at(51.75, -1.25, 5.0)),
            &view,
            UnixMillis(60_000),
            &s,
        );
        assert!(!f.impossible_travel, "{f:?}");
    }

    #[test]
    fn an_hour_never_seen_is_unusual_only_with_enough_history() {
        let s = FeatureSettings::default();
        let mut v = StoreView::default();
        v.profile.verified_logins = 12;
        v.profile.hour_count = 0;
        let f = build(
            &fixtures::attempt(),
            Arc::new(DeviceInfo::unknown()),
            &v,
            GeoFeatures::default(),
            Degraded::default(),
            &s,
        );
        assert!(f.behavior.unusual_hour);
        v.profile.hour_count = 3;
        let f = build(
            &fixtures::attempt(),
            Arc::new(DeviceInfo::unknown()),
            &v,
            GeoFeatures::default(),
            Degraded::default(),
            &s,
        );
        assert!(!f.behavior.unusual_hour);
        v.profile.verified_logins = 4;
        v.profile.hour_count = 0;
        let f = build(
            &fixtures::attempt(),
            Arc::new(DeviceInfo::unknown()),
            &v,
            GeoFeatures::default(),
            Degraded::default(),
            &s,
        );
        assert!(!f.behavior.unusual_hour);
    }

    #[test]
    fn newness_of_geo_needs_history() {
        let s = FeatureSettings::default();
        let fresh = StoreView::default();
        let f = geo_features(Some(&geo_at(1.0, 1.0, 1.0)), &fresh, UnixMillis(0), &s);
        assert!(!f.new_country && !f.available && f.country == "SE");
        let f = geo_features(
            Some(&geo_at(1.0, 1.0, 1.0)),
            &after_login_at(1.0, 1.0, 1.0),
            UnixMillis(0),
            &s,
        );
        assert!(f.new_country);
    }

    #[test]
    fn a_bound_device_without_its_key_is_binding_missing() {
        let s = FeatureSettings::default();
        let mut v = StoreView::default();
        v.profile.verified_logins = 8;
        v.profile.seen[Dim::Device.slot().unwrap()] = 8;
        let build_with = |v: &StoreView, binding| {
            let mut a = fixtures::attempt();
            a.device_binding = binding;
            build(
                &a,
                Arc::new(DeviceInfo::unknown()),
                v,
                GeoFeatures::default(),
                Degraded::default(),
                &s,
            )
        };
        let value = |f: &Features, name| (input(name).unwrap().1.value)(f);
        use crate::domain::DeviceBinding::{KeyVerified, None};
        // Never bound: no binding, nothing missing.
        let f = build_with(&v, None);
        assert!(f.device.known && !f.device.bound && !f.device.binding_missing);
        let f = build_with(&v, KeyVerified);
        assert!(f.device.key_verified && !f.device.binding_missing);
        assert_eq!(value(&f, "bound_device"), 1.0);
        // Bound before: with the key it is possession, without it a copy.
        v.profile.seen[Dim::BoundDevice.slot().unwrap()] = 3;
        let f = build_with(&v, KeyVerified);
        assert!(f.device.bound && !f.device.binding_missing);
        let f = build_with(&v, None);
        assert!(f.device.binding_missing);
        assert_eq!(value(&f, "device_binding_missing"), 1.0);
        assert_eq!(value(&f, "bound_device"), 0.0);
        // A device the profile no longer knows (revoked, evicted) is not
        // "missing" its binding: it is new.
        v.profile.seen[Dim::Device.slot().unwrap()] = 0;
        let f = build_with(&v, None);
        assert!(f.device.bound && !f.device.binding_missing && f.device.new);
    }

    #[test]
    fn input_names_are_unique() {
        for (i, a) in INPUTS.iter().enumerate() {
            for b in &INPUTS[i + 1..] {
                assert_ne!(a.name, b.name);
            }
        }
    }
}
