//! Domain types: a validated login attempt, the decision, and the small enums
//! both speak. No protobuf or tonic types appear here (see `grpc::convert`).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch. The core never reads a clock: time comes
/// in as this value.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct UnixMillis(pub i64);

impl UnixMillis {
    /// The current wall-clock time. Only the I/O boundary calls this.
    pub fn now() -> Self {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        UnixMillis(i64::try_from(ms).unwrap_or(i64::MAX))
    }

    /// Hour of the week in UTC, 0 = Monday 00:00–00:59 … 167 = Sunday 23:00.
    pub fn hour_of_week(self) -> u8 {
        let hours = self.0.div_euclid(3_600_000);
        // 1970-01-01 was a Thursday: hour 0 of the epoch is hour 72 of its week.
        let how = (hours + 72).rem_euclid(168);
        u8::try_from(how).unwrap_or(0)
    }
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian
/// calendar (H. Hinnant's `civil_from_days`).
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

macro_rules! named_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable lowercase name used in rule files, logs and metrics.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the lowercase name.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum!(
    /// The channel a login attempt arrives on.
    Channel {
        Web => "web",
        MobileApp => "mobile_app",
        CallCenter => "call_center",
        Kiosk => "kiosk",
        Api => "api",
    }
);

named_enum!(
    /// The result of the primary credential check.
    CredentialResult {
        Valid => "valid",
        Invalid => "invalid",
        NotChecked => "not_checked",
    }
);

named_enum!(
    /// What the login service must do.
    Action {
        Allow => "allow",
        StepUp => "step_up",
        Deny => "deny",
    }
);

named_enum!(
    /// The score band.
    RiskLevel {
        Low => "low",
        Medium => "medium",
        High => "high",
    }
);

named_enum!(
    /// A second factor.
    Factor {
        Webauthn => "webauthn",
        Totp => "totp",
        Push => "push",
        SmsOtp => "sms_otp",
        EmailOtp => "email_otp",
        KnowledgeCheck => "knowledge_check",
    }
);

named_enum!(
    /// What happened after a decision.
    Outcome {
        LoginSucceeded => "login_succeeded",
        StepUpPassed => "step_up_passed",
        StepUpFailed => "step_up_failed",
        StepUpAbandoned => "step_up_abandoned",
        UserReportedFraud => "user_reported_fraud",
        AnalystConfirmedFraud => "analyst_confirmed_fraud",
        AnalystConfirmedLegit => "analyst_confirmed_legit",
    }
);

named_enum!(
    /// How the login service knows the device: an identifier it was sent,
    /// or a key bound to the device that it verified in this attempt.
    DeviceBinding {
        None => "none",
        KeyVerified => "key_verified",
    }
);

#[expect(clippy::derivable_impls, reason = "the enum is declared by a macro")]
impl Default for DeviceBinding {
    fn default() -> Self {
        DeviceBinding::None
    }
}

#[expect(clippy::derivable_impls, reason = "the enum is declared by a macro")]
impl Default for Channel {
    fn default() -> Self {
        Channel::Web
    }
}

#[expect(clippy::derivable_impls, reason = "the enum is declared by a macro")]
impl Default for CredentialResult {
    fn default() -> Self {
        CredentialResult::Valid
    }
}

impl Action {
    /// Severity order: a rule may only move the action up this order.
    pub const fn severity(self) -> u8 {
        match self {
            Action::Allow => 0,
            Action::StepUp => 1,
            Action::Deny => 2,
        }
    }
}

impl Factor {
    /// Assurance strength: 4 phishing-resistant, 3 possession (app), 2
    /// possession (message), 1 knowledge.
    pub const fn strength(self) -> u8 {
        match self {
            Factor::Webauthn => 4,
            Factor::Totp | Factor::Push => 3,
            Factor::SmsOtp | Factor::EmailOtp => 2,
            Factor::KnowledgeCheck => 1,
        }
    }

    const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl Outcome {
    /// True for outcomes that prove the user was present and verified.
    pub const fn is_verified_success(self) -> bool {
        matches!(self, Outcome::LoginSucceeded | Outcome::StepUpPassed)
    }

    /// True for outcomes that mark the decision's attempt as fraud.
    pub const fn is_fraud(self) -> bool {
        matches!(
            self,
            Outcome::UserReportedFraud | Outcome::AnalystConfirmedFraud
        )
    }
}

/// A small set of factors, ordered strongest first when iterated.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FactorSet(u8);

impl FactorSet {
    /// No factor.
    pub const EMPTY: FactorSet = FactorSet(0);

    /// Every factor.
    pub fn all() -> Self {
        Factor::ALL.iter().copied().collect()
    }

    /// Adds a factor.
    pub fn insert(&mut self, f: Factor) {
        self.0 |= f.bit();
    }

    /// True if the factor is in the set.
    pub fn contains(self, f: Factor) -> bool {
        self.0 & f.bit() != 0
    }

    /// True if the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The factors in both sets.
    pub fn intersect(self, other: FactorSet) -> FactorSet {
        FactorSet(self.0 & other.0)
    }

    /// The factors of at least `strength`.
    pub fn at_least(self, strength: u8) -> FactorSet {
        self.iter().filter(|f| f.strength() >= strength).collect()
    }

    /// The factors, strongest first (ties in declaration order).
    pub fn iter(self) -> impl Iterator<Item = Factor> {
        let mut v: Vec<Factor> = Factor::ALL
            .iter()
            .copied()
            .filter(|f| self.contains(*f))
            .collect();
        v.sort_by_key(|f| std::cmp::Reverse(f.strength()));
        v.into_iter()
    }
}

impl FromIterator<Factor> for FactorSet {
    fn from_iter<I: IntoIterator<Item = Factor>>(iter: I) -> Self {
        let mut s = FactorSet::EMPTY;
        for f in iter {
            s.insert(f);
        }
        s
    }
}

impl fmt::Debug for FactorSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// A validated login attempt: every field here has passed the checks in
/// `grpc::convert` (or the replay reader).
#[derive(Clone, Debug, PartialEq)]
pub struct LoginAttempt {
    pub user_id: String,
    pub channel: Channel,
    pub ip: IpAddr,
    pub device_id: Option<String>,
    /// How the login service knows `device_id` (always `None` without one).
    pub device_binding: DeviceBinding,
    pub user_agent: Option<String>,
    pub occurred_at: UnixMillis,
    pub credential_result: CredentialResult,
    pub attributes: BTreeMap<String, String>,
    pub request_id: Option<String>,
    /// Empty means "unknown": every factor the channel can perform counts.
    pub enrolled_factors: FactorSet,
}

/// Why a decision came out as it did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub code: String,
    pub message: String,
    pub weight: f64,
    pub shadow: bool,
}

impl Reason {
    /// A reason that acts (not shadow).
    pub fn new(code: impl Into<String>, message: impl Into<String>, weight: f64) -> Self {
        Reason {
            code: code.into(),
            message: message.into(),
            weight,
            shadow: false,
        }
    }
}

/// A rule that failed at run time (overflow, division by zero): it was
/// treated as not firing, and the decision says so.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleError {
    pub rule: String,
    pub message: String,
}

/// The signal sources that could not answer for a decision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Degraded {
    /// The profile and velocity store failed or timed out.
    pub store: bool,
    /// No GeoIP database answered (none configured, or none loaded).
    pub geo: bool,
}

impl Degraded {
    /// The degraded sources by name (`store`, `geo`), in that order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        [("store", self.store), ("geo", self.geo)]
            .into_iter()
            .filter_map(|(n, on)| on.then_some(n))
    }

    /// True when every source answered.
    pub fn is_empty(self) -> bool {
        !self.store && !self.geo
    }
}

/// The answer to an attempt, with its explanation: the reasons that acted,
/// the shadow rules that fired without acting (separated once, by the
/// policy), the rules that failed, and the sources that could not answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Empty until the engine issues the id (the pure core has no keys).
    pub decision_id: String,
    pub action: Action,
    pub score: f64,
    pub level: RiskLevel,
    /// Acting reasons: rule and guard reasons first (they decide), then the
    /// model's contributions, strongest first.
    pub reasons: Vec<Reason>,
    /// Shadow rules that fired: reported and counted, never acted on.
    pub shadow_reasons: Vec<Reason>,
    pub rule_errors: Vec<RuleError>,
    pub acceptable_factors: Vec<Factor>,
    pub policy_version: String,
    pub model_version: String,
    pub degraded: Degraded,
}

impl Decision {
    /// Every reason in answer order: the acting ones, then the shadow ones.
    pub fn all_reasons(&self) -> impl Iterator<Item = &Reason> {
        self.reasons.iter().chain(&self.shadow_reasons)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hour_of_week_starts_monday() {
        // 2024-01-01T00:00:00Z was a Monday.
        assert_eq!(UnixMillis(1_704_067_200_000).hour_of_week(), 0);
        // 2024-01-07T23:30:00Z, Sunday.
        assert_eq!(UnixMillis(1_704_670_200_000).hour_of_week(), 167);
        assert_eq!(UnixMillis(0).hour_of_week(), 72);
    }

    #[test]
    fn civil_dates_round_trip() {
        for days in [-719_468, -1, 0, 59, 11_016, 20_514, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn factor_set_orders_strongest_first() {
        let s: FactorSet = [Factor::SmsOtp, Factor::Webauthn, Factor::Totp]
            .into_iter()
            .collect();
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            vec![Factor::Webauthn, Factor::Totp, Factor::SmsOtp]
        );
        assert_eq!(s.at_least(3).iter().count(), 2);
        assert!(!s.contains(Factor::Push));
    }

    #[test]
    fn enum_names_round_trip() {
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()), Some(*c));
        }
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(*o));
        }
    }
}
