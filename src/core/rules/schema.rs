//! The feature schema rules are checked against: every path a `when`
//! expression may read, its type, and how to read it from [`Features`]. The
//! paths are the same as the dotted keys of a rule test's `features` table.

use crate::core::features::Features;

use super::cel::{FieldDef, Schema, Type, Value};

macro_rules! fields {
    ($($path:literal : $ty:ident = |$f:ident| $get:expr, $doc:literal;)+) => {
        static FIELDS: &[FieldDef<Features>] = &[
            $(FieldDef {
                path: $path,
                ty: Type::$ty,
                get: |$f: &Features| $get,
                doc: $doc,
            }),+
        ];
    };
}

fn int(n: u32) -> Value<'static> {
    Value::Int(i64::from(n))
}

fields! {
    "attempt.channel": String = |f| Value::Str(f.attempt.channel.as_str()), "web, mobile_app, call_center, kiosk or api";
    "attempt.credential_result": String = |f| Value::Str(f.attempt.credential_result.as_str()), "valid, invalid or not_checked";
    "attempt.hour_of_week": Int = |f| Value::Int(i64::from(f.attempt.hour_of_week)), "0 = Monday 00:00 UTC … 167";
    "attempt.ip_version": Int = |f| Value::Int(i64::from(f.attempt.ip_version)), "4 or 6";
    "attempt.has_device_id": Bool = |f| Value::Bool(f.attempt.has_device_id), "a device id was sent";
    "attempt.has_user_agent": Bool = |f| Value::Bool(f.attempt.has_user_agent), "a user agent was sent";
    "user.verified_logins": Int = |f| int(f.user.verified_logins), "verified logins remembered";
    "user.is_new": Bool = |f| Value::Bool(f.user.is_new), "no verified login yet";
    "device.known": Bool = |f| Value::Bool(f.device.known), "device id in the user's history";
    "device.new": Bool = |f| Value::Bool(f.device.new), "device id sent, user has history, device not in it";
    "device.user_agent_known": Bool = |f| Value::Bool(f.device.user_agent_known), "exact UA in history";
    "device.new_user_agent": Bool = |f| Value::Bool(f.device.new_user_agent), "user has history, UA not in it";
    "device.revoked": Bool = |f| Value::Bool(f.device.revoked), "support revoked this device for this user (lost or stolen)";
    "device.key_verified": Bool = |f| Value::Bool(f.device.key_verified), "the login service verified a key bound to this device in this attempt";
    "device.bound": Bool = |f| Value::Bool(f.device.bound), "a verified login showed this device's bound key before";
    "device.binding_missing": Bool = |f| Value::Bool(f.device.binding_missing), "a device that showed its bound key before, without it now (copied id)";
    "device.users_24h": Int = |f| int(f.device.users_24h), "distinct users on this device in 24 h";
    "device.browser": String = |f| Value::Str(&f.device.info.browser), "browser family";
    "device.browser_version": String = |f| Value::Str(&f.device.info.browser_version), "browser version";
    "device.os": String = |f| Value::Str(&f.device.info.os), "operating system";
    "device.os_version": String = |f| Value::Str(&f.device.info.os_version), "OS version";
    "device.category": String = |f| Value::Str(&f.device.info.category), "pc, smartphone, mobilephone, appliance, crawler, misc, UNKNOWN";
    "device.is_crawler": Bool = |f| Value::Bool(f.device.info.is_crawler), "a known crawler";
    "device.is_automation": Bool = |f| Value::Bool(f.device.info.is_automation), "headless browser or HTTP library";
    "network.ip_known": Bool = |f| Value::Bool(f.network.ip_known), "IP in the user's history";
    "network.network_known": Bool = |f| Value::Bool(f.network.network_known), "/24 or /48 in history";
    "network.new_network": Bool = |f| Value::Bool(f.network.new_network), "user has history, network not in it";
    "geo.available": Bool = |f| Value::Bool(f.geo.available), "a GeoIP database answered";
    "geo.country": String = |f| Value::Str(&f.geo.country), "ISO country code or empty";
    "geo.city": String = |f| Value::Str(&f.geo.city), "city name or empty";
    "geo.asn": Int = |f| int(f.geo.asn), "autonomous system number or 0";
    "geo.new_country": Bool = |f| Value::Bool(f.geo.new_country), "country not in history";
    "geo.region": String = |f| Value::Str(&f.geo.region), "first subdivision ISO code or empty";
    "geo.new_region": Bool = |f| Value::Bool(f.geo.new_region), "region not in history";
    "geo.new_city": Bool = |f| Value::Bool(f.geo.new_city), "city not in history";
    "geo.new_asn": Bool = |f| Value::Bool(f.geo.new_asn), "ASN not in history";
    "geo.distance_km": Double = |f| Value::Double(f.geo.distance_km), "km from the last verified login";
    "geo.speed_kmh": Double = |f| Value::Double(f.geo.speed_kmh), "implied speed from the last verified login";
    "geo.minutes_since_last": Double = |f| Value::Double(f.geo.minutes_since_last), "minutes since the last verified login";
    "geo.impossible_travel": Bool = |f| Value::Bool(f.geo.impossible_travel), "speed above the configured limit";
    "geo.anonymous": Bool = |f| Value::Bool(f.geo.anonymous), "any anonymous network";
    "geo.vpn": Bool = |f| Value::Bool(f.geo.vpn), "VPN";
    "geo.tor": Bool = |f| Value::Bool(f.geo.tor), "Tor exit";
    "geo.hosting": Bool = |f| Value::Bool(f.geo.hosting), "hosting provider";
    "geo.proxy": Bool = |f| Value::Bool(f.geo.proxy), "public or residential proxy";
    "velocity.user_failures_1m": Int = |f| int(f.velocity.user_failures_1m), "failures of this user in 1 min";
    "velocity.user_failures_1h": Int = |f| int(f.velocity.user_failures_1h), "failures of this user in 1 h";
    "velocity.user_failures_24h": Int = |f| int(f.velocity.user_failures_24h), "failures of this user in 24 h";
    "velocity.ip_failures_1m": Int = |f| int(f.velocity.ip_failures_1m), "failures from this IP in 1 min";
    "velocity.ip_failures_1h": Int = |f| int(f.velocity.ip_failures_1h), "failures from this IP in 1 h";
    "velocity.ip_failures_24h": Int = |f| int(f.velocity.ip_failures_24h), "failures from this IP in 24 h";
    "velocity.network_failures_1m": Int = |f| int(f.velocity.network_failures_1m), "failures from this network in 1 min";
    "velocity.network_failures_1h": Int = |f| int(f.velocity.network_failures_1h), "failures from this network in 1 h";
    "velocity.network_failures_24h": Int = |f| int(f.velocity.network_failures_24h), "failures from this network in 24 h";
    "velocity.device_failures_1m": Int = |f| int(f.velocity.device_failures_1m), "failures from this device in 1 min";
    "velocity.device_failures_1h": Int = |f| int(f.velocity.device_failures_1h), "failures from this device in 1 h";
    "velocity.device_failures_24h": Int = |f| int(f.velocity.device_failures_24h), "failures from this device in 24 h";
    "velocity.ip_attempts_1m": Int = |f| int(f.velocity.ip_attempts_1m), "attempts from this IP in 1 min";
    "velocity.ip_attempts_1h": Int = |f| int(f.velocity.ip_attempts_1h), "attempts from this IP in 1 h";
    "velocity.ip_attempts_24h": Int = |f| int(f.velocity.ip_attempts_24h), "attempts from this IP in 24 h";
    "velocity.ip_distinct_users_1h": Int = |f| int(f.velocity.ip_distinct_users_1h), "distinct users from this IP in 1 h";
    "velocity.device_distinct_users_24h": Int = |f| int(f.velocity.device_distinct_users_24h), "distinct users on this device in 24 h";
    "velocity.device_distinct_users_1h": Int = |f| int(f.velocity.device_distinct_users_1h), "distinct users on this device in 1 h";
    "velocity.global_failure_ratio_jump": Double = |f| Value::Double(f.velocity.global_failure_ratio_jump), "1 min failure ratio above the 24 h baseline (≥ 20 attempts/min)";
    "velocity.global_failure_ratio_1m": Double = |f| Value::Double(f.velocity.global_failure_ratio_1m), "failed share of all attempts in 1 min";
    "velocity.global_failure_ratio_24h": Double = |f| Value::Double(f.velocity.global_failure_ratio_24h), "failed share of all attempts in 24 h";
    "behavior.hour_count": Int = |f| int(f.behavior.hour_count), "verified logins in this hour of week";
    "behavior.unusual_hour": Bool = |f| Value::Bool(f.behavior.unusual_hour), "≥ 10 logins, none at this hour";
    "behavior.recent_strong_auth": Bool = |f| Value::Bool(f.behavior.recent_strong_auth), "strong factor passed recently";
    "behavior.freeman_score": Double = |f| Value::Double(f.behavior.freeman_score), "Freeman likelihood ratio (lower = familiar), 0 without history";
    "behavior.freeman_risk": Double = |f| Value::Double(f.behavior.freeman_risk), "Freeman ratio mapped to [0, 1]";
    "behavior.freeman_log_lr": Double = |f| Value::Double(f.behavior.freeman_log_lr), "log10 of the Freeman ratio, clamped to [-6, 6]; 0 without history";
    "degraded.store": Bool = |f| Value::Bool(f.degraded.store), "the store did not answer";
    "degraded.geo": Bool = |f| Value::Bool(f.degraded.geo), "no GeoIP answer";
}

impl Schema for Features {
    fn fields() -> &'static [FieldDef<Self>] {
        FIELDS
    }
}

/// Every field rules may read: (path, type, description), for editors.
pub fn catalogue() -> Vec<(&'static str, String, &'static str)> {
    FIELDS
        .iter()
        .map(|f| (f.path, format!("{:?}", f.ty).to_lowercase(), f.doc))
        .collect()
}

/// True if `path` names a schema field.
pub fn is_settable(path: &str) -> bool {
    FIELDS.iter().any(|f| f.path == path)
}

/// The closest schema path to `path`, if any is close.
pub fn suggest(path: &str) -> Option<&'static str> {
    FIELDS
        .iter()
        .map(|f| (distance(path, f.path), f.path))
        .filter(|(d, p)| *d <= 3.max(p.len() / 5))
        .min_by_key(|(d, _)| *d)
        .map(|(_, p)| p)
}

/// The value of `path` in `f`, rendered for humans.
pub fn render(f: &Features, path: &str) -> String {
    match FIELDS.iter().find(|d| d.path == path).map(|d| (d.get)(f)) {
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Int(i)) => i.to_string(),
        Some(Value::Double(x)) => x.to_string(),
        Some(Value::Str(s)) => format!("{s:?}"),
        None => "?".into(),
    }
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_a_serde_path() {
        // Each schema path, set in a test table, must deserialize into
        // Features and read back through the schema getter.
        for field in FIELDS {
            let (section, name) = field.path.split_once('.').unwrap();
            let value = match field.ty {
                Type::Bool => "true".to_string(),
                Type::Int => "7".to_string(),
                Type::Double => "7.5".to_string(),
                Type::String if field.path == "attempt.credential_result" => {
                    "\"invalid\"".to_string()
                }
                Type::String => "\"web\"".to_string(),
                #[allow(unreachable_patterns)]
                _ => continue,
            };
            let table: toml::Table = toml::from_str(&format!("[{section}]\n{name} = {value}\n"))
                .unwrap_or_else(|e| panic!("{}: {e}", field.path));
            let f = crate::core::rules::features_from_table(&table)
                .unwrap_or_else(|e| panic!("{}: {e}", field.path));
            let rendered = render(&f, field.path);
            assert_eq!(
                rendered.trim_matches('"'),
                value.trim_matches('"'),
                "{} did not round-trip",
                field.path
            );
        }
    }

    #[test]
    fn suggests_close_paths() {
        assert_eq!(suggest("geo.contry"), Some("geo.country"));
        assert_eq!(suggest("zzz"), None);
    }
}
