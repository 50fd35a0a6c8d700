//! The body of a journaled decision: what the database does not filter on
//! — the features as the rules saw them, the reasons with their weights,
//! rule errors and factors — as one MessagePack value (structs as arrays,
//! so field names are not repeated in every row). Columns hold what the
//! explorer and the backtest filter on.

use serde::{Deserialize, Serialize};

use crate::core::features::Features;
use crate::domain::{Factor, FactorSet, RuleError};

use super::CodeWeight;

/// The body's layout version, the first element of every body. 2 added
/// `behavior.freeman_log_lr` and the device binding features; version 1
/// bodies still decode (the new values from their defaults, the ratio's
/// log from the stored ratio). An older binary refuses a version 2 body by
/// its version rather than by a length mismatch.
pub const VERSION: u8 = 2;

#[derive(Serialize)]
struct BodyRef<'a> {
    version: u8,
    features: &'a Features,
    reasons: &'a [CodeWeight],
    shadow: &'a [CodeWeight],
    rule_errors: &'a [RuleError],
    enrolled: Vec<Factor>,
    factors: &'a [Factor],
}

/// A decoded body.
#[derive(Deserialize)]
pub struct Body {
    pub version: u8,
    pub features: Features,
    pub reasons: Vec<CodeWeight>,
    pub shadow: Vec<CodeWeight>,
    pub rule_errors: Vec<RuleError>,
    pub enrolled: Vec<Factor>,
    pub factors: Vec<Factor>,
}

/// Encodes the body of `e`.
pub fn encode(e: &super::DecisionEntry) -> Result<Vec<u8>, String> {
    rmp_serde::to_vec(&BodyRef {
        version: VERSION,
        features: &e.features,
        reasons: &e.reasons,
        shadow: &e.shadow,
        rule_errors: &e.rule_errors,
        enrolled: e.enrolled.iter().collect(),
        factors: &e.factors,
    })
    .map_err(|e| e.to_string())
}

/// Decodes a body.
pub fn decode(bytes: &[u8]) -> Result<Body, String> {
    let mut b: Body = rmp_serde::from_slice(bytes).map_err(|e| e.to_string())?;
    if !(1..=VERSION).contains(&b.version) {
        return Err(format!(
            "body version {} is not one this build reads (1 to {VERSION})",
            b.version
        ));
    }
    // Bodies written before `freeman_log_lr` existed lack it (it decodes
    // as 0): it is a function of the stored ratio, so a backtest or a
    // training run over old decisions sees what the server would have.
    let behavior = &mut b.features.behavior;
    if behavior.freeman_log_lr == 0.0 && b.features.user.verified_logins > 0 {
        behavior.freeman_log_lr = crate::core::freeman::log_lr(behavior.freeman_score);
    }
    Ok(b)
}

impl Body {
    /// The enrolled factors as a set.
    pub fn enrolled_set(&self) -> FactorSet {
        self.enrolled.iter().copied().collect()
    }
}
