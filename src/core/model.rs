//! Logistic scoring at serve time: a plain dot product over the inputs of
//! [`crate::core::features::INPUTS`] named by the model file.
//!
//! A model file is JSON:
//!
//! ```json
//! { "format": 1, "version": "prior-1",
//!   "features": ["new_device", "ip_failures_1h"],
//!   "weights": [1.2, 0.8], "intercept": -3.0,
//!   "mean": [0.0, 0.0], "scale": [1.0, 1.0] }
//! ```
//!
//! `mean` and `scale` are optional (standardization applied before the
//! weights); any other top-level key (`calibration`, `training`: the data
//! fingerprint and held-out metrics `riskgate train` writes) is kept as
//! free-form metadata. Loading checks every feature name against the
//! catalog, the lengths, and that every number is finite.

use std::path::Path;

use serde::Deserialize;

use crate::core::features::{Features, INPUTS, input};

/// The model shipped in the binary.
pub const DEFAULT_MODEL_JSON: &str = include_str!("../../models/default.json");

/// Contributions below this (in log-odds) are not reported as reasons.
pub const REASON_THRESHOLD: f64 = 0.25;

/// A loaded model.
#[derive(Clone, Debug)]
pub struct Model {
    version: String,
    /// (index into INPUTS, weight / scale): the means are folded into the
    /// intercept, so each term is the input's raw contribution.
    terms: Vec<(usize, f64)>,
    intercept: f64,
}

/// Why a model file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read model file `{path}`: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{origin}:{line}:{column}: {message}")]
    Syntax {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

#[derive(Deserialize)]
struct ModelFile {
    format: u32,
    version: String,
    features: Vec<String>,
    weights: Vec<f64>,
    intercept: f64,
    #[serde(default)]
    mean: Option<Vec<f64>>,
    #[serde(default)]
    scale: Option<Vec<f64>>,
    #[serde(flatten)]
    _metadata: serde_json::Map<String, serde_json::Value>,
}

/// One input's share of a score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Contribution {
    /// Index into [`INPUTS`].
    pub input: usize,
    /// Log-odds added by this input.
    pub log_odds: f64,
}

/// A score with the contributions that explain it.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored {
    pub score: f64,
    /// Contributions at or above [`REASON_THRESHOLD`], largest first.
    pub contributions: Vec<Contribution>,
}

impl Model {
    /// The shipped model.
    pub fn embedded() -> Result<Self, ModelError> {
        Self::parse(DEFAULT_MODEL_JSON, "models/default.json")
    }

    /// Loads a model file.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses model JSON; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ModelError> {
        let file: ModelFile = serde_json::from_str(text).map_err(|e| ModelError::Syntax {
            origin: origin.into(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        let invalid = |message: String| ModelError::Invalid {
            origin: origin.into(),
            message,
        };
        if file.format != 1 {
            return Err(invalid(format!(
                "unsupported model format `{}`",
                file.format
            )));
        }
        let n = file.features.len();
        if file.weights.len() != n {
            return Err(invalid(format!(
                "{} features but {} weights",
                n,
                file.weights.len()
            )));
        }
        let mean = file.mean.unwrap_or_else(|| vec![0.0; n]);
        let scale = file.scale.unwrap_or_else(|| vec![1.0; n]);
        if mean.len() != n || scale.len() != n {
            return Err(invalid(
                "`mean` and `scale` must have one entry per feature".into(),
            ));
        }
        if !file.intercept.is_finite() {
            return Err(invalid("`intercept` is not a finite number".into()));
        }
        let mut terms: Vec<(usize, f64)> = Vec::with_capacity(n);
        let mut intercept = file.intercept;
        let mut problems = Vec::new();
        for (i, name) in file.features.iter().enumerate() {
            let Some((idx, _)) = input(name) else {
                let known: Vec<&str> = INPUTS.iter().map(|i| i.name).collect();
                let (line, column) = locate(text, name);
                problems.push(format!(
                    "unknown feature `{name}` at line {line}, column {column} (known: {})",
                    known.join(", ")
                ));
                continue;
            };
            if terms.iter().any(|(j, _)| *j == idx) {
                problems.push(format!("feature `{name}` listed twice"));
            }
            let (w, m, s) = (file.weights[i], mean[i], scale[i]);
            if !w.is_finite() || !m.is_finite() || !s.is_finite() || s <= 0.0 {
                problems.push(format!(
                    "feature `{name}`: weight, mean and scale must be finite and scale > 0"
                ));
                continue;
            }
            // w·(x − m)/s = (w/s)·x − (w/s)·m: the constant joins the
            // intercept, so a reason is what the input adds against its
            // absence (x = 0), not against the training mean — an absent
            // input with a negative weight is no reason.
            terms.push((idx, w / s));
            intercept -= w / s * m;
        }
        if !intercept.is_finite() {
            return Err(invalid("the means fold into a non-finite intercept".into()));
        }
        if !problems.is_empty() {
            return Err(invalid(problems.join("; ")));
        }
        Ok(Model {
            version: file.version,
            terms,
            intercept,
        })
    }

    /// The model's version string.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The names of the inputs this model reads, in file order.
    pub fn feature_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.terms.iter().map(|(i, _)| INPUTS[*i].name)
    }

    /// Scores the features. Pure and allocation-light: one small vector for
    /// the reasons.
    pub fn score(&self, f: &Features) -> Scored {
        let mut z = self.intercept;
        let mut contributions = Vec::new();
        for &(idx, w) in &self.terms {
            let c = w * (INPUTS[idx].value)(f);
            z += c;
            if c >= REASON_THRESHOLD {
                contributions.push(Contribution {
                    input: idx,
                    log_odds: c,
                });
            }
        }
        contributions.sort_by(|a, b| b.log_odds.total_cmp(&a.log_odds));
        Scored {
            score: sigmoid(z),
            contributions,
        }
    }
}

/// Line and column (1-based) of the string `"name"` in `text`, after the
/// `"features"` key when there is one; (0, 0) when not found.
fn locate(text: &str, name: &str) -> (usize, usize) {
    let quoted = format!("\"{name}\"");
    let from = text.find("\"features\"").unwrap_or(0);
    let Some(at) = text[from..].find(&quoted).map(|i| i + from) else {
        return (0, 0);
    };
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(at, |nl| at - nl - 1) + 1;
    (line, column)
}

/// The logistic function, clamped to [0, 1] for any input.
pub fn sigmoid(z: f64) -> f64 {
    if z.is_nan() {
        return 0.5;
    }
    (1.0 / (1.0 + (-z).exp())).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::features::fixtures;

    #[test]
    fn embedded_model_loads_and_scores_in_range() {
        let m = Model::embedded().unwrap();
        let s = m.score(&fixtures::features());
        assert!((0.0..=1.0).contains(&s.score));
        assert!(m.feature_names().count() > 5);
    }

    #[test]
    fn rejects_unknown_feature_and_bad_lengths() {
        let e = Model::parse(
            r#"{"format":1,"version":"x","features":["new_devcie"],"weights":[1.0],"intercept":0}"#,
            "m.json",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("unknown feature `new_devcie`"),
            "{e}"
        );
        let e = Model::parse(
            r#"{"format":1,"version":"x","features":["new_device"],"weights":[],"intercept":0}"#,
            "m.json",
        )
        .unwrap_err();
        assert!(e.to_string().contains("1 features but 0 weights"), "{e}");
    }

    #[test]
    fn unknown_feature_error_points_at_the_name() {
        let text = "{\"format\": 1, \"version\": \"x\",\n \"features\": [\"new_device\",\n   \"new_devcie\"],\n \"weights\": [1.0, 1.0], \"intercept\": 0,\n \"training\": {\"rows\": 3}}";
        let e = Model::parse(text, "m.json").unwrap_err().to_string();
        assert!(
            e.starts_with("m.json: unknown feature `new_devcie` at line 3, column 4"),
            "{e}"
        );
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let e = Model::parse("{\n  \"format\": 1,\n  oops\n}", "m.json").unwrap_err();
        assert!(e.to_string().starts_with("m.json:3:"), "{e}");
    }

    #[test]
    fn an_absent_input_with_a_negative_weight_is_no_reason() {
        // Centred on a mean of 0.4: absent (0) would be +0.8 against the
        // mean, but it adds nothing against its own absence.
        let m = Model::parse(
            r#"{"format":1,"version":"x","features":["recent_strong_auth","new_device"],
                "weights":[-2.0,1.0],"intercept":0,"mean":[0.4,0.0],"scale":[1.0,0.5]}"#,
            "m.json",
        )
        .unwrap();
        let s = m.score(&fixtures::features());
        assert!(s.contributions.is_empty(), "{:?}", s.contributions);
        // The score is unchanged by the folding: sigmoid(-2·(0 − 0.4)).
        assert!((s.score - sigmoid(0.8)).abs() < 1e-12, "{}", s.score);
    }

    #[test]
    fn sigmoid_is_bounded() {
        assert_eq!(sigmoid(f64::INFINITY), 1.0);
        assert_eq!(sigmoid(f64::NEG_INFINITY), 0.0);
        assert_eq!(sigmoid(f64::NAN), 0.5);
    }
}
