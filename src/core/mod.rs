//! The pure decision: an attempt and what the signals found become one
//! [`Decision`]. No I/O, no clock, no runtime — time comes in as a field —
//! so the same code decides for the server, a replay of a million rows, a
//! backtest over the journal, training and the benches.
//!
//! `core` imports nothing of this crate but [`crate::domain`] (a test in
//! `tests/layout.rs` fails otherwise). Its two entry points:
//!
//! - [`observe::observation`]: what the store records and answers for an
//!   attempt (the identifiers as keyed hashes, never raw);
//! - [`evaluate`]: the store's answer, the parsed device and the GeoIP
//!   answer → [`features`] → [`model`] score → [`rules`] → [`policy`] →
//!   [`Decision`]. [`decide`] is its second half, for callers that already
//!   hold the features (a backtest re-deciding journaled features).

pub mod decision_id;
pub mod features;
pub mod freeman;
pub mod inputs;
pub mod keys;
pub mod model;
pub mod observe;
pub mod policy;
pub mod rules;

use std::sync::Arc;

use crate::domain::{Decision, Degraded, FactorSet, LoginAttempt, Reason};

use features::{FeatureSettings, Features, INPUTS};
use inputs::{DeviceInfo, GeoInfo, StoreView};
use model::Model;
use policy::Context;
use rules::RuleSet;

/// What the core reads about one attempt, as plain data.
pub struct Inputs<'a> {
    pub attempt: &'a LoginAttempt,
    /// The parsed user agent.
    pub device: Arc<DeviceInfo>,
    /// The GeoIP answer, when a database is configured.
    pub geo: Option<&'a GeoInfo>,
    /// The store's answer (empty when the store is degraded).
    pub view: &'a StoreView,
    pub degraded: Degraded,
}

/// A decision with the features it was made on (what the journal keeps).
pub struct Evaluated {
    pub features: Features,
    pub decision: Decision,
}

/// Decides on an attempt: features, then [`decide`].
pub fn evaluate(
    inputs: Inputs<'_>,
    settings: &FeatureSettings,
    model: &Model,
    rules: &RuleSet,
) -> Evaluated {
    let geo = features::geo_features(
        inputs.geo,
        inputs.view,
        inputs.attempt.occurred_at,
        settings,
    );
    let features = features::build(
        inputs.attempt,
        inputs.device,
        inputs.view,
        geo,
        inputs.degraded,
        settings,
    );
    let decision = decide(&features, inputs.attempt.enrolled_factors, model, rules);
    Evaluated { features, decision }
}

/// Decides on features: model score → rules → policy. `enrolled` is the
/// attempt's enrolled factors (empty: unknown).
pub fn decide(
    features: &Features,
    enrolled: FactorSet,
    model: &Model,
    rules: &RuleSet,
) -> Decision {
    let scored = model.score(features);
    let evaluation = rules.evaluate(features);
    let verdict = policy::decide(
        &rules.policy,
        scored.score,
        &evaluation.hits,
        &Context::of(features, enrolled),
    );
    // Rule and guard reasons first (they decide), then the model's.
    let mut reasons = verdict.reasons;
    reasons.reserve(scored.contributions.len());
    for c in &scored.contributions {
        let input = &INPUTS[c.input];
        reasons.push(Reason::new(
            input.code,
            (input.explain)(features),
            c.log_odds,
        ));
    }
    Decision {
        decision_id: String::new(),
        action: verdict.action,
        score: verdict.score,
        level: verdict.level,
        reasons,
        shadow_reasons: verdict.shadow_reasons,
        rule_errors: evaluation
            .errors
            .iter()
            .map(|(rule, e)| crate::domain::RuleError {
                rule: (*rule).to_string(),
                message: e.to_string(),
            })
            .collect(),
        acceptable_factors: verdict.factors,
        policy_version: rules.version.clone(),
        model_version: model.version().to_string(),
        degraded: features.degraded,
    }
}
