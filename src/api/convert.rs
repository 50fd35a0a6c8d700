//! Proto ↔ domain. [`attempt_from_proto`], [`ReportRequest`]'s `TryFrom`
//! and the admin helpers here are the one place request fields are read and
//! validated; every failure names its field.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::api::client::Attempt;
use crate::api::pb;
use crate::domain::{
    Action, Channel, CredentialResult, Decision, Degraded, DeviceBinding, Factor, FactorSet,
    LoginAttempt, Outcome, Reason, RiskLevel, UnixMillis,
};
use crate::engine::Candidates;

/// Size limits of request fields, bytes.
pub mod limits {
    pub const USER_ID: usize = 256;
    pub const DEVICE_ID: usize = 256;
    pub const USER_AGENT: usize = 1024;
    pub const REQUEST_ID: usize = 128;
    pub const ATTRIBUTES: usize = 32;
    pub const ATTRIBUTE_KEY: usize = 64;
    pub const ATTRIBUTE_VALUE: usize = 256;
    pub const DECISION_ID: usize = 64;
    /// How far `occurred_at` may lie ahead of the server clock, ms.
    pub const MAX_FUTURE_MS: i64 = 5 * 60_000;
    /// How far `occurred_at` may lie behind the server clock, ms.
    pub const MAX_PAST_MS: i64 = 60 * 60_000;
    /// Most candidate values per kind in GetUserProfile.
    pub const CANDIDATES: usize = 32;
    /// Longest reason accepted for trust and revoke.
    pub const REASON: usize = 512;
}

/// A request field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}`: {problem}")]
pub struct InvalidField {
    pub field: &'static str,
    pub problem: String,
}

fn invalid(field: &'static str, problem: impl Into<String>) -> InvalidField {
    InvalidField {
        field,
        problem: problem.into(),
    }
}

fn bounded(field: &'static str, value: String, max: usize) -> Result<String, InvalidField> {
    if value.len() > max {
        return Err(invalid(
            field,
            format!("is {} bytes; the limit is {max}", value.len()),
        ));
    }
    Ok(value)
}

fn optional(
    field: &'static str,
    value: String,
    max: usize,
) -> Result<Option<String>, InvalidField> {
    let v = bounded(field, value, max)?;
    Ok(if v.is_empty() { None } else { Some(v) })
}

/// Converts an enum number, refusing unknown and `_UNSPECIFIED` values.
fn enum_value<P, D>(
    field: &'static str,
    raw: i32,
    map: impl Fn(P) -> Option<D>,
) -> Result<D, InvalidField>
where
    P: TryFrom<i32>,
{
    match P::try_from(raw) {
        Ok(p) => map(p).ok_or_else(|| invalid(field, "is required (got the UNSPECIFIED value)")),
        Err(_) => Err(invalid(field, format!("`{raw}` is not a known value"))),
    }
}

/// The two directions between a domain enum and its protobuf twin (whose
/// `_UNSPECIFIED` value has no domain value), written once per enum.
macro_rules! enum_map {
    ($from:ident, $to:ident, $pb:ident, $domain:ident { $($v:ident),+ $(,)? }) => {
        fn $from(p: pb::$pb) -> Option<$domain> {
            match p {
                pb::$pb::Unspecified => None,
                $(pb::$pb::$v => Some($domain::$v),)+
            }
        }

        /// The protobuf value of a domain value.
        pub fn $to(d: $domain) -> pb::$pb {
            match d {
                $($domain::$v => pb::$pb::$v,)+
            }
        }
    };
}

enum_map!(
    channel,
    channel_to_proto,
    Channel,
    Channel {
        Web,
        MobileApp,
        CallCenter,
        Kiosk,
        Api
    }
);
enum_map!(
    credential,
    credential_to_proto,
    CredentialResult,
    CredentialResult {
        Valid,
        Invalid,
        NotChecked,
    }
);
enum_map!(
    factor,
    factor_to_proto,
    Factor,
    Factor {
        Webauthn,
        Totp,
        Push,
        SmsOtp,
        EmailOtp,
        KnowledgeCheck,
    }
);
enum_map!(
    outcome,
    outcome_to_proto,
    Outcome,
    Outcome {
        LoginSucceeded,
        StepUpPassed,
        StepUpFailed,
        StepUpAbandoned,
        UserReportedFraud,
        AnalystConfirmedFraud,
        AnalystConfirmedLegit,
    }
);
enum_map!(
    action,
    action_to_proto,
    Action,
    Action {
        Allow,
        StepUp,
        Deny
    }
);
enum_map!(
    level,
    level_to_proto,
    RiskLevel,
    RiskLevel { Low, Medium, High }
);

/// Validates and converts a request, with the server clock as `now`.
pub fn attempt_from_proto(
    r: pb::EvaluateRequest,
    now: UnixMillis,
) -> Result<LoginAttempt, InvalidField> {
    let user_id = bounded("user_id", r.user_id, limits::USER_ID)?;
    if user_id.trim().is_empty() {
        return Err(invalid("user_id", "is required"));
    }
    let channel = enum_value("channel", r.channel, channel)?;
    if r.ip_address.is_empty() {
        return Err(invalid("ip_address", "is required"));
    }
    let ip_text = bounded("ip_address", r.ip_address, 64)?;
    let ip: IpAddr = ip_text.parse().map_err(|_| {
        invalid(
            "ip_address",
            format!("`{ip_text}` is not an IPv4 or IPv6 address"),
        )
    })?;
    let device = r.device.unwrap_or_default();
    let device_id = optional("device.device_id", device.device_id, limits::DEVICE_ID)?;
    let user_agent = optional("device.user_agent", device.user_agent, limits::USER_AGENT)?;
    let device_binding = match pb::DeviceBinding::try_from(device.binding) {
        Ok(pb::DeviceBinding::None) => DeviceBinding::None,
        Ok(pb::DeviceBinding::KeyVerified) if device_id.is_some() => DeviceBinding::KeyVerified,
        Ok(pb::DeviceBinding::KeyVerified) => {
            return Err(invalid(
                "device.binding",
                "DEVICE_BINDING_KEY_VERIFIED needs device.device_id",
            ));
        }
        Err(_) => {
            return Err(invalid(
                "device.binding",
                format!("`{}` is not a known value", device.binding),
            ));
        }
    };
    let occurred_at = match r.occurred_at {
        None => now,
        Some(ts) => {
            if !(0..1_000_000_000).contains(&ts.nanos) {
                return Err(invalid("occurred_at", "nanos must be in [0, 1e9)"));
            }
            let ms = ts
                .seconds
                .checked_mul(1000)
                .and_then(|s| s.checked_add(i64::from(ts.nanos / 1_000_000)))
                .ok_or_else(|| invalid("occurred_at", "is out of range"))?;
            if ms > now.0 + limits::MAX_FUTURE_MS {
                return Err(invalid(
                    "occurred_at",
                    "is more than 5 minutes in the future",
                ));
            }
            if ms < now.0 - limits::MAX_PAST_MS {
                return Err(invalid("occurred_at", "is more than 1 hour in the past"));
            }
            UnixMillis(ms)
        }
    };
    let credential_result = enum_value("credential_result", r.credential_result, credential)?;
    if r.attributes.len() > limits::ATTRIBUTES {
        return Err(invalid(
            "attributes",
            format!(
                "has {} entries; the limit is {}",
                r.attributes.len(),
                limits::ATTRIBUTES
            ),
        ));
    }
    let mut attributes = BTreeMap::new();
    for (k, v) in r.attributes {
        if k.is_empty() || k.len() > limits::ATTRIBUTE_KEY {
            return Err(invalid(
                "attributes",
                format!("keys must be 1 to {} bytes", limits::ATTRIBUTE_KEY),
            ));
        }
        if v.len() > limits::ATTRIBUTE_VALUE {
            return Err(invalid(
                "attributes",
                format!(
                    "the value of `{k}` is {} bytes; the limit is {}",
                    v.len(),
                    limits::ATTRIBUTE_VALUE
                ),
            ));
        }
        attributes.insert(k, v);
    }
    let request_id = optional("request_id", r.request_id, limits::REQUEST_ID)?;
    let mut enrolled_factors = FactorSet::EMPTY;
    for f in r.enrolled_factors {
        enrolled_factors.insert(enum_value("enrolled_factors", f, factor)?);
    }
    Ok(LoginAttempt {
        user_id,
        channel,
        ip,
        device_id,
        device_binding,
        user_agent,
        occurred_at,
        credential_result,
        attributes,
        request_id,
        enrolled_factors,
    })
}

/// A validated ReportOutcome request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRequest {
    pub decision_id: String,
    pub outcome: Outcome,
    pub factor: Option<Factor>,
}

impl TryFrom<pb::ReportOutcomeRequest> for ReportRequest {
    type Error = InvalidField;

    fn try_from(r: pb::ReportOutcomeRequest) -> Result<Self, InvalidField> {
        if r.decision_id.is_empty() {
            return Err(invalid("decision_id", "is required"));
        }
        let decision_id = bounded("decision_id", r.decision_id, limits::DECISION_ID)?;
        let outcome = enum_value("outcome", r.outcome, outcome)?;
        let factor = match r.factor {
            None => None,
            Some(f) => Some(enum_value("factor", f, factor)?),
        };
        Ok(ReportRequest {
            decision_id,
            outcome,
            factor,
        })
    }
}

/// A required text field of at most `max` bytes.
fn required(field: &'static str, v: &str, max: usize) -> Result<(), InvalidField> {
    if v.trim().is_empty() {
        return Err(invalid(field, "is required"));
    }
    if v.len() > max {
        return Err(invalid(
            field,
            format!("is {} bytes; the limit is {max}", v.len()),
        ));
    }
    Ok(())
}

/// The user id of an admin request (required, bounded).
pub fn admin_user_id(user_id: &str) -> Result<(), InvalidField> {
    required("user_id", user_id, limits::USER_ID)
}

/// The raw values a GetUserProfile request asks about.
pub fn candidates_from_proto(r: &pb::GetUserProfileRequest) -> Result<Candidates, InvalidField> {
    for (field, n) in [
        ("device_ids", r.device_ids.len()),
        ("ip_addresses", r.ip_addresses.len()),
        ("user_agents", r.user_agents.len()),
    ] {
        if n > limits::CANDIDATES {
            return Err(invalid(
                field,
                format!("has {n} values; the limit is {}", limits::CANDIDATES),
            ));
        }
    }
    let mut c = Candidates::default();
    for d in &r.device_ids {
        required("device_ids", d, limits::DEVICE_ID)?;
        c.device_ids.push(d.clone());
    }
    for ip in &r.ip_addresses {
        let parsed: IpAddr = ip.trim().parse().map_err(|_| {
            invalid(
                "ip_addresses",
                format!("`{ip}` is not an IPv4 or IPv6 address"),
            )
        })?;
        c.ips.push(parsed);
    }
    for ua in &r.user_agents {
        required("user_agents", ua, limits::USER_AGENT)?;
        c.user_agents.push(ua.clone());
    }
    Ok(c)
}

/// The fields of a TrustDevice or RevokeDevice request.
pub fn device_request(user_id: &str, device_id: &str, reason: &str) -> Result<(), InvalidField> {
    required("user_id", user_id, limits::USER_ID)?;
    required("device_id", device_id, limits::DEVICE_ID)?;
    required("reason", reason, limits::REASON)
}

/// The protobuf value of a device binding.
pub fn device_binding_to_proto(b: DeviceBinding) -> pb::DeviceBinding {
    match b {
        DeviceBinding::None => pb::DeviceBinding::None,
        DeviceBinding::KeyVerified => pb::DeviceBinding::KeyVerified,
    }
}

/// The action of a protobuf number (`None`: unknown or unspecified).
pub fn action_from_proto(n: i32) -> Option<Action> {
    pb::Action::try_from(n).ok().and_then(action)
}

/// An attempt as a client sends it (nothing is validated here: the
/// server does that).
pub fn attempt_to_proto(a: Attempt) -> pb::EvaluateRequest {
    pb::EvaluateRequest {
        user_id: a.user_id,
        channel: channel_to_proto(a.channel) as i32,
        ip_address: a.ip,
        device: Some(pb::Device {
            device_id: a.device_id.unwrap_or_default(),
            user_agent: a.user_agent.unwrap_or_default(),
            binding: device_binding_to_proto(a.device_binding) as i32,
        }),
        credential_result: credential_to_proto(a.credential) as i32,
        ..Default::default()
    }
}

/// An Evaluate answer as a client reads it: reasons marked `shadow` go to
/// `shadow_reasons`, unknown enum values and signal names are left out.
pub fn decision_from_proto(r: pb::EvaluateResponse) -> Decision {
    let (shadow_reasons, reasons): (Vec<Reason>, Vec<Reason>) = r
        .reasons
        .into_iter()
        .map(|x| Reason {
            code: x.code,
            message: x.message,
            weight: x.weight,
            shadow: x.shadow,
        })
        .partition(|x| x.shadow);
    let degraded = Degraded {
        store: r.degraded_signals.iter().any(|s| s == "store"),
        geo: r.degraded_signals.iter().any(|s| s == "geo"),
    };
    Decision {
        decision_id: r.decision_id,
        action: action_from_proto(r.action).unwrap_or(Action::Deny),
        score: r.score,
        level: pb::RiskLevel::try_from(r.level)
            .ok()
            .and_then(level)
            .unwrap_or(RiskLevel::High),
        reasons,
        shadow_reasons,
        rule_errors: Vec::new(),
        acceptable_factors: r
            .acceptable_factors
            .into_iter()
            .filter_map(|f| pb::Factor::try_from(f).ok().and_then(factor))
            .collect(),
        policy_version: r.policy_version,
        model_version: r.model_version,
        degraded,
    }
}

impl From<Decision> for pb::EvaluateResponse {
    fn from(d: Decision) -> Self {
        pb::EvaluateResponse {
            decision_id: d.decision_id,
            action: action_to_proto(d.action) as i32,
            score: d.score,
            level: level_to_proto(d.level) as i32,
            // The acting reasons, then the shadow ones (`shadow` set).
            reasons: d
                .reasons
                .into_iter()
                .chain(d.shadow_reasons)
                .map(|r| pb::Reason {
                    code: r.code,
                    message: r.message,
                    weight: r.weight,
                    shadow: r.shadow,
                })
                .collect(),
            acceptable_factors: d
                .acceptable_factors
                .into_iter()
                .map(|f| factor_to_proto(f) as i32)
                .collect(),
            policy_version: d.policy_version,
            model_version: d.model_version,
            degraded_signals: d.degraded.names().map(str::to_string).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixMillis = UnixMillis(1_700_000_000_000);

    fn valid() -> pb::EvaluateRequest {
        pb::EvaluateRequest {
            user_id: "alice".into(),
            channel: pb::Channel::Web as i32,
            ip_address: "203.0.113.7".into(),
            credential_result: pb::CredentialResult::Valid as i32,
            ..Default::default()
        }
    }

    fn field_of(r: pb::EvaluateRequest) -> &'static str {
        attempt_from_proto(r, NOW).unwrap_err().field
    }

    #[test]
    fn valid_request_converts() {
        let a = attempt_from_proto(valid(), NOW).unwrap();
        assert_eq!(a.channel, Channel::Web);
        assert_eq!(a.occurred_at, NOW);
        assert_eq!(a.device_id, None);
    }

    #[test]
    fn each_bad_field_is_named() {
        assert_eq!(
            field_of(pb::EvaluateRequest {
                user_id: "".into(),
                ..valid()
            }),
            "user_id"
        );
        assert_eq!(
            field_of(pb::EvaluateRequest {
                user_id: "x".repeat(257),
                ..valid()
            }),
            "user_id"
        );
        assert_eq!(
            field_of(pb::EvaluateRequest {
                channel: 0,
                ..valid()
            }),
            "channel"
        );
        assert_eq!(
            field_of(pb::EvaluateRequest {
                channel: 99,
                ..valid()
            }),
            "channel"
        );
        assert_eq!(
            field_of(pb::EvaluateRequest {
                ip_address: "10.0.0.999".into(),
                ..valid()
            }),
            "ip_address"
        );
        assert_eq!(
            field_of(pb::EvaluateRequest {
                ip_address: "".into(),
                ..valid()
            }),
            "ip_address"
        );
        assert_eq!(
            field_of(pb::EvaluateRequest {
                credential_result: 7,
                ..valid()
            }),
            "credential_result"
        );
        assert_eq!(
            field_of(pb::EvaluateRequest {
                device: Some(pb::Device {
                    device_id: "d".repeat(300),
                    user_agent: "".into(),
                    binding: 0,
                }),
                ..valid()
            }),
            "device.device_id"
        );
        assert_eq!(
            field_of(pb::EvaluateRequest {
                device: Some(pb::Device {
                    device_id: "".into(),
                    user_agent: "u".repeat(2000),
                    binding: 0,
                }),
                ..valid()
            }),
            "device.user_agent"
        );
        // A binding needs a device id, and must be a known value.
        assert_eq!(
            field_of(pb::EvaluateRequest {
                device: Some(pb::Device {
                    device_id: "".into(),
                    user_agent: "".into(),
                    binding: pb::DeviceBinding::KeyVerified as i32,
                }),
                ..valid()
            }),
            "device.binding"
        );
        assert_eq!(
            field_of(pb::EvaluateRequest {
                device: Some(pb::Device {
                    device_id: "d".into(),
                    user_agent: "".into(),
                    binding: 9,
                }),
                ..valid()
            }),
            "device.binding"
        );
        let a = attempt_from_proto(
            pb::EvaluateRequest {
                device: Some(pb::Device {
                    device_id: "d".into(),
                    user_agent: "".into(),
                    binding: pb::DeviceBinding::KeyVerified as i32,
                }),
                ..valid()
            },
            NOW,
        )
        .unwrap();
        assert_eq!(a.device_binding, DeviceBinding::KeyVerified);
        assert_eq!(
            field_of(pb::EvaluateRequest {
                occurred_at: Some(pbjson_types::Timestamp {
                    seconds: 1_700_000_000 + 3600,
                    nanos: 0
                }),
                ..valid()
            }),
            "occurred_at"
        );
        assert_eq!(
            field_of(pb::EvaluateRequest {
                occurred_at: Some(pbjson_types::Timestamp {
                    seconds: i64::MAX,
                    nanos: 0
                }),
                ..valid()
            }),
            "occurred_at"
        );
        assert_eq!(
            field_of(pb::EvaluateRequest {
                enrolled_factors: vec![0],
                ..valid()
            }),
            "enrolled_factors"
        );
        let many = (0..40)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect();
        assert_eq!(
            field_of(pb::EvaluateRequest {
                attributes: many,
                ..valid()
            }),
            "attributes"
        );
    }

    #[test]
    fn report_requests_are_validated() {
        let ok = pb::ReportOutcomeRequest {
            decision_id: "abc".into(),
            outcome: pb::Outcome::LoginSucceeded as i32,
            factor: None,
        };
        assert!(ReportRequest::try_from(ok.clone()).is_ok());
        let e = ReportRequest::try_from(pb::ReportOutcomeRequest {
            outcome: 0,
            ..ok.clone()
        })
        .unwrap_err();
        assert_eq!(e.field, "outcome");
        let e = ReportRequest::try_from(pb::ReportOutcomeRequest {
            factor: Some(42),
            ..ok.clone()
        })
        .unwrap_err();
        assert_eq!(e.field, "factor");
        let e = ReportRequest::try_from(pb::ReportOutcomeRequest {
            decision_id: "".into(),
            ..ok
        })
        .unwrap_err();
        assert_eq!(e.field, "decision_id");
    }

    proptest::proptest! {
        #[test]
        fn conversion_never_panics(
            user in ".{0,300}", ip in ".{0,70}", ch in proptest::num::i32::ANY,
            cr in proptest::num::i32::ANY, secs in proptest::num::i64::ANY, nanos in proptest::num::i32::ANY,
            ua in ".{0,50}", factors in proptest::collection::vec(proptest::num::i32::ANY, 0..4),
        ) {
            let r = pb::EvaluateRequest {
                user_id: user, channel: ch, ip_address: ip, credential_result: cr,
                occurred_at: Some(pbjson_types::Timestamp { seconds: secs, nanos }),
                device: Some(pb::Device { device_id: "d".into(), user_agent: ua, binding: cr }),
                enrolled_factors: factors,
                ..Default::default()
            };
            let _ = attempt_from_proto(r, NOW);
        }
    }
}
