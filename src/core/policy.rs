//! Score + rule verdicts → action, level and acceptable factors. Pure.
//!
//! Order of precedence, fixed and documented in the shipped rule file:
//! 1. the score (after `add_score` rules) gives the level; at or above the
//!    `deny` threshold the action is DENY, else LOW → ALLOW, MEDIUM/HIGH →
//!    STEP_UP;
//! 2. an enforced `allow` rule (an allow-list) lowers the action to ALLOW;
//! 3. an enforced `step_up` rule raises it to at least STEP_UP (and may ask
//!    for a minimum factor strength); an enforced `deny` rule raises it to DENY;
//! 4. guards that no rule can lift: a wrong credential is never ALLOW, and a
//!    degraded store applies the configured fail mode;
//! 5. a STEP_UP with no acceptable factor left (level × channel × enrolled ×
//!    minimum strength) escalates to DENY — never a silent downgrade.

use serde::{Deserialize, Serialize};

use crate::domain::{Action, Channel, CredentialResult, Factor, FactorSet, Reason, RiskLevel};

use super::features::Features;

/// The reason codes the policy itself adds (beside rule names): a score
/// at the deny threshold, the wrong-credential guard, the fail mode of a
/// degraded store, a step-up no factor on the channel can satisfy.
pub const GUARD_CODES: [&str; 4] = [
    "score_above_deny_threshold",
    "invalid_credential_guard",
    "store_unavailable",
    "no_acceptable_factor",
];

/// What to answer when the store cannot be reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    /// Ask for a second factor (the default).
    #[default]
    StepUp,
    /// Decide on the signals that remain.
    Allow,
    /// Refuse every login until the store is back.
    Deny,
}

/// The policy part of a rule file, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// Scores at or above are MEDIUM.
    pub medium: f64,
    /// Scores at or above are HIGH.
    pub high: f64,
    /// Scores at or above are denied outright (None: never by score alone).
    pub deny: Option<f64>,
    /// Factors that satisfy a STEP_UP at MEDIUM (and at LOW, when a rule asks).
    pub medium_factors: FactorSet,
    /// Factors that satisfy a STEP_UP at HIGH.
    pub high_factors: FactorSet,
    /// Factors each channel can perform, indexed by `Channel as usize`.
    pub channel_factors: [FactorSet; Channel::ALL.len()],
    pub fail_mode: FailMode,
}

impl Policy {
    /// The level of a score.
    pub fn level(&self, score: f64) -> RiskLevel {
        if score >= self.high {
            RiskLevel::High
        } else if score >= self.medium {
            RiskLevel::Medium
        } else {
            RiskLevel::Low
        }
    }

    /// The factors one channel can perform.
    pub fn channel(&self, c: Channel) -> FactorSet {
        self.channel_factors[c as usize]
    }
}

/// What a firing rule asks for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Effect {
    Deny,
    /// At least STEP_UP, with factors of at least this strength.
    StepUp {
        min_strength: u8,
    },
    Allow,
    /// Adds to the score (clamped to [0, 1]).
    AddScore(f64),
}

/// A rule that fired.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub effect: Effect,
    pub shadow: bool,
}

/// Inputs of the policy besides the rule hits.
#[derive(Clone, Copy, Debug)]
pub struct Context {
    pub channel: Channel,
    pub credential: CredentialResult,
    pub enrolled: FactorSet,
    pub store_degraded: bool,
}

impl Context {
    /// The context of an attempt's features; `enrolled` is the attempt's
    /// enrolled factors (empty: unknown).
    pub fn of(f: &Features, enrolled: FactorSet) -> Context {
        Context {
            channel: f.attempt.channel,
            credential: f.attempt.credential_result,
            enrolled,
            store_degraded: f.degraded.store,
        }
    }
}

/// The policy's verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub action: Action,
    pub score: f64,
    pub level: RiskLevel,
    pub factors: Vec<Factor>,
    /// Reasons the policy itself adds (enforced rule hits, guards), in the
    /// order they were applied.
    pub reasons: Vec<Reason>,
    /// Shadow rules that fired: reported, never acted on.
    pub shadow_reasons: Vec<Reason>,
}

/// Applies the policy.
pub fn decide(policy: &Policy, model_score: f64, hits: &[Hit<'_>], ctx: &Context) -> Verdict {
    let mut reasons = Vec::new();
    let mut shadow = Vec::new();

    let added: f64 = hits
        .iter()
        .filter(|h| !h.shadow)
        .filter_map(|h| match h.effect {
            Effect::AddScore(x) => Some(x),
            _ => None,
        })
        .sum();
    let score = (model_score + added).clamp(0.0, 1.0);
    let level = policy.level(score);

    let mut action = match (policy.deny, level) {
        (Some(d), _) if score >= d => {
            reasons.push(Reason::new(
                "score_above_deny_threshold",
                format!("risk score {score:.2} is at or above the deny threshold {d:.2}"),
                0.0,
            ));
            Action::Deny
        }
        (_, RiskLevel::Low) => Action::Allow,
        _ => Action::StepUp,
    };
    let mut min_strength = 0u8;

    let enforced = hits.iter().filter(|h| !h.shadow);
    if enforced.clone().any(|h| h.effect == Effect::Allow) && action != Action::Deny {
        action = Action::Allow;
    }
    if let Some(h) = enforced.clone().find(|h| h.effect == Effect::Allow) {
        reasons.push(rule_reason(h, 0.0));
    }
    for h in enforced.clone() {
        match h.effect {
            Effect::StepUp { min_strength: s } => {
                if action != Action::Deny {
                    action = Action::StepUp;
                }
                min_strength = min_strength.max(s);
                reasons.push(rule_reason(h, 0.0));
            }
            Effect::Deny => {
                action = Action::Deny;
                reasons.push(rule_reason(h, 0.0));
            }
            Effect::AddScore(x) => reasons.push(rule_reason(h, x)),
            Effect::Allow => {}
        }
    }
    for h in hits.iter().filter(|h| h.shadow) {
        let w = match h.effect {
            Effect::AddScore(x) => x,
            _ => 0.0,
        };
        shadow.push(rule_reason(h, w));
    }

    if ctx.credential == CredentialResult::Invalid && action == Action::Allow {
        action = Action::StepUp;
        reasons.push(Reason::new(
            "invalid_credential_guard",
            "a wrong credential is never allowed",
            0.0,
        ));
    }
    if ctx.store_degraded {
        reasons.push(Reason::new(
            "store_unavailable",
            "the profile and velocity store did not answer; the configured fail mode applies",
            0.0,
        ));
        match policy.fail_mode {
            FailMode::StepUp if action == Action::Allow => action = Action::StepUp,
            FailMode::Deny => action = Action::Deny,
            _ => {}
        }
    }

    let mut factors = Vec::new();
    if action == Action::StepUp {
        let by_level = if level == RiskLevel::High {
            policy.high_factors
        } else {
            policy.medium_factors
        };
        let mut set = by_level.intersect(policy.channel(ctx.channel));
        if !ctx.enrolled.is_empty() {
            set = set.intersect(ctx.enrolled);
        }
        set = set.at_least(min_strength);
        if set.is_empty() {
            action = Action::Deny;
            reasons.push(Reason::new(
                "no_acceptable_factor",
                format!(
                    "a step-up is required but no acceptable factor is available on the {} channel{}",
                    ctx.channel,
                    if ctx.enrolled.is_empty() {
                        ""
                    } else {
                        " among the user's enrolled factors"
                    }
                ),
                0.0,
            ));
        } else {
            factors = set.iter().collect();
        }
    }
    Verdict {
        action,
        score,
        level,
        factors,
        reasons,
        shadow_reasons: shadow,
    }
}

fn rule_reason(h: &Hit<'_>, weight: f64) -> Reason {
    Reason {
        code: h.name.to_string(),
        message: h.description.to_string(),
        weight,
        shadow: h.shadow,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn policy() -> Policy {
        let all = FactorSet::all();
        let mut channel_factors = [all; Channel::ALL.len()];
        channel_factors[Channel::CallCenter as usize] = [Factor::KnowledgeCheck, Factor::SmsOtp]
            .into_iter()
            .collect();
        Policy {
            medium: 0.3,
            high: 0.7,
            deny: Some(0.95),
            medium_factors: all,
            high_factors: [Factor::Webauthn].into_iter().collect(),
            channel_factors,
            fail_mode: FailMode::StepUp,
        }
    }

    fn ctx(channel: Channel) -> Context {
        Context {
            channel,
            credential: CredentialResult::Valid,
            enrolled: FactorSet::EMPTY,
            store_degraded: false,
        }
    }

    #[test]
    fn levels_and_actions_follow_thresholds() {
        let p = policy();
        assert_eq!(
            decide(&p, 0.1, &[], &ctx(Channel::Web)).action,
            Action::Allow
        );
        let v = decide(&p, 0.5, &[], &ctx(Channel::Web));
        assert_eq!((v.action, v.level), (Action::StepUp, RiskLevel::Medium));
        assert_eq!(v.factors.first(), Some(&Factor::Webauthn));
        let v = decide(&p, 0.8, &[], &ctx(Channel::Web));
        assert_eq!(v.factors, vec![Factor::Webauthn]);
        assert_eq!(
            decide(&p, 0.97, &[], &ctx(Channel::Web)).action,
            Action::Deny
        );
    }

    #[test]
    fn high_risk_on_a_channel_without_webauthn_escalates_to_deny() {
        let v = decide(&policy(), 0.8, &[], &ctx(Channel::CallCenter));
        assert_eq!(v.action, Action::Deny);
        assert!(v.reasons.iter().any(|r| r.code == "no_acceptable_factor"));
    }

    #[test]
    fn enrolled_factors_limit_the_offer() {
        let mut c = ctx(Channel::Web);
        c.enrolled = [Factor::SmsOtp].into_iter().collect();
        let v = decide(&policy(), 0.5, &[], &c);
        assert_eq!(v.factors, vec![Factor::SmsOtp]);
        let v = decide(&policy(), 0.8, &[], &c);
        assert_eq!(v.action, Action::Deny);
    }

    #[test]
    fn shadow_rules_never_act() {
        let hit = Hit {
            name: "r",
            description: "d",
            effect: Effect::Deny,
            shadow: true,
        };
        let v = decide(&policy(), 0.1, &[hit], &ctx(Channel::Web));
        assert_eq!(v.action, Action::Allow);
        assert!(v.reasons.is_empty());
        assert!(v.shadow_reasons.iter().any(|r| r.code == "r" && r.shadow));
    }

    #[test]
    fn rules_raise_and_allow_lists_lower() {
        let deny = Hit {
            name: "d",
            description: "",
            effect: Effect::Deny,
            shadow: false,
        };
        let allow = Hit {
            name: "a",
            description: "",
            effect: Effect::Allow,
            shadow: false,
        };
        let step = Hit {
            name: "s",
            description: "",
            effect: Effect::StepUp { min_strength: 3 },
            shadow: false,
        };
        let p = policy();
        let c = ctx(Channel::Web);
        assert_eq!(
            decide(&p, 0.5, std::slice::from_ref(&allow), &c).action,
            Action::Allow
        );
        assert_eq!(
            decide(&p, 0.1, &[allow.clone(), deny.clone()], &c).action,
            Action::Deny
        );
        let v = decide(&p, 0.1, &[step], &c);
        assert_eq!(v.action, Action::StepUp);
        assert!(v.factors.iter().all(|f| f.strength() >= 3));
        let add = Hit {
            name: "x",
            description: "",
            effect: Effect::AddScore(0.5),
            shadow: false,
        };
        assert_eq!(decide(&p, 0.1, &[add], &c).level, RiskLevel::Medium);
    }

    #[test]
    fn guards_hold() {
        let p = policy();
        let mut c = ctx(Channel::Web);
        c.credential = CredentialResult::Invalid;
        assert_eq!(decide(&p, 0.01, &[], &c).action, Action::StepUp);
        let mut c = ctx(Channel::Web);
        c.store_degraded = true;
        let v = decide(&p, 0.01, &[], &c);
        assert_eq!(v.action, Action::StepUp);
        assert!(v.reasons.iter().any(|r| r.code == "store_unavailable"));
        let mut p2 = p.clone();
        p2.fail_mode = FailMode::Allow;
        assert_eq!(decide(&p2, 0.01, &[], &c).action, Action::Allow);
        p2.fail_mode = FailMode::Deny;
        assert_eq!(decide(&p2, 0.01, &[], &c).action, Action::Deny);
    }
}
