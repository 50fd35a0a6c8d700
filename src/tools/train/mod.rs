//! Training: fit the logistic model of [`crate::core::model`] on labelled logins
//! (the RBA dataset's CSV, optionally with the `Attacker` column).
//!
//! Features come from the same core the server runs: every row is replayed
//! by [`Replayer`] with the shipped rules and the shipped (prior) model,
//! which decides what a row teaches, and the row's [`Features`] are read
//! through the [`INPUTS`] extractors, exactly as [`Model::score`] reads them
//! at serve time.
//!
//! Procedure:
//! - **Label.** An attack row (any attacker label, account takeover or
//!   attack IP, as [`crate::tools::replay`] labels them) is 1, a legitimate row 0.
//!   Every replayed row is a training example (wrong passwords too: the
//!   server scores them).
//! - **Split by user.** A user's rows all go to training or all to the
//!   held-out set: SHA-256 of the seed and the user id, first 8 bytes as a
//!   fraction below `holdout` → held out. Deterministic from the seed.
//! - **Inputs.** Every input of [`INPUTS`] that varies in the training rows,
//!   standardized by its training mean and standard deviation. An input
//!   constant in the data (say `tor_exit` without a GeoIP database) carries
//!   no information: it keeps the prior model's weight, unstandardized, and
//!   is listed under `training.carried_from_prior`; so do inputs named in
//!   `keep_prior` (one the shipped model gives no weight is left out) and, with `sign_from_prior`, inputs whose learned weight
//!   has the opposite sign to the prior's (collinear inputs can trade
//!   weight; the fit is repeated without them, `training.sign_conflicts`).
//! - **Fit.** L2-regularized logistic regression (linfa-logistic, L-BFGS);
//!   the penalty `alpha/2·‖w‖²` is added to the summed log loss.
//! - **Calibration.** Platt scaling fitted on the held-out users' scores and
//!   folded into the weights and intercept, so serving stays one dot
//!   product: `sigmoid(a·z + b)`.
//! - **Operating point.** Platt-calibrated scores are probabilities at the
//!   training data's attack base rate, which says nothing about where the
//!   shipped policy's `medium` threshold (STEP_UP) should fall. The
//!   intercept is shifted (a prior-odds shift: ranking and reasons are
//!   unchanged) so that `medium` challenges `reauth_budget` of the held-out
//!   legitimate logins with a correct password and history.
//! - **Held-out metrics.** ROC AUC and log loss over every held-out row, and
//!   in the published protocol (rows with a correct password by users with a
//!   prior verified login) the AUC and the re-authentication rate of
//!   legitimate logins at the threshold blocking 99.5 % of each attacker
//!   label, on the model score alone.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::Path;

use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::core::features::INPUTS;
use crate::core::model::{Model, sigmoid};
use crate::core::rules::RuleSet;
use crate::signals::device::UaParser;
use crate::store::memory::MemoryLimits;
use crate::tools::replay::eval::{auc, share_at_or_above, threshold_for};
use crate::tools::replay::reader::{RbaReader, ReadError};
use crate::tools::replay::{LEGIT, ReplayError, Replayer, Settings, Variant};

/// The linfa version the trainer is built against (recorded in the model).
pub const LINFA_VERSION: &str = "0.8";

/// The block rate at which held-out re-authentication is reported.
pub const BLOCK_RATE: f64 = 0.995;

/// Training settings.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// Model name; the version is `trained-<name>-<date>`.
    pub name: String,
    /// Share of users held out (0 < holdout < 1).
    pub holdout: f64,
    pub seed: u64,
    /// L2 penalty weight (linfa's `alpha`).
    pub alpha: f64,
    pub max_iterations: u64,
    /// Share of legitimate logins (correct password, with history) the
    /// shipped policy's `medium` threshold should challenge.
    pub reauth_budget: f64,
    /// Inputs not learned, keeping the shipped model's weight.
    pub keep_prior: Vec<String>,
    /// Carry (instead of learn) inputs whose learned weight has the
    /// opposite sign to the shipped model's.
    pub sign_from_prior: bool,
    /// Date for the version string, `YYYY-MM-DD`.
    pub date: String,
    /// Fit and calibrate on rows with a correct password only.
    pub correct_password_only: bool,
    /// The prior model's JSON (default: the shipped model): it decides what
    /// replayed rows teach and gives carried inputs their weight and the
    /// sign learned weights must keep.
    pub prior: Option<String>,
}

impl TrainOptions {
    /// Defaults for a model name.
    pub fn new(name: &str, date: &str) -> Self {
        TrainOptions {
            name: name.into(),
            holdout: 0.2,
            seed: 1,
            alpha: 1.0,
            max_iterations: 200,
            reauth_budget: 0.02,
            keep_prior: Vec::new(),
            sign_from_prior: false,
            date: date.into(),
            correct_password_only: false,
            prior: None,
        }
    }
}

/// Why training failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Replay(#[from] ReplayError),
    #[error("cannot load the shipped rules or model: {0}")]
    Shipped(String),
    #[error("invalid options: {0}")]
    Options(String),
    #[error("cannot train: {0}")]
    Data(String),
    #[error("the solver failed: {0}")]
    Fit(String),
    #[error("the trained model does not load: {0}")]
    Model(String),
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
}

/// Replayed examples: one row per replayed login.
#[derive(Clone, Debug, Default)]
pub struct Examples {
    /// Values of every [`INPUTS`] entry, row-major (`INPUTS.len()` per row).
    pub x: Vec<f64>,
    pub attack: Vec<bool>,
    /// Label id per row (0 legitimate), into `labels`.
    pub label: Vec<u16>,
    /// Held out (by user).
    pub held_out: Vec<bool>,
    /// Correct password by a user with history: counted in the published protocol.
    pub evaluated: Vec<bool>,
    pub labels: Vec<String>,
    pub users: usize,
}

impl Examples {
    /// Rows.
    pub fn len(&self) -> usize {
        self.attack.len()
    }

    /// No rows.
    pub fn is_empty(&self) -> bool {
        self.attack.is_empty()
    }

    fn row(&self, i: usize) -> &[f64] {
        let n = INPUTS.len();
        &self.x[i * n..(i + 1) * n]
    }
}

/// Whether `user` is held out under `seed`.
pub fn held_out(seed: u64, user: &str, holdout: f64) -> bool {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(user.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    let fraction = (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64;
    fraction < holdout
}

impl TrainOptions {
    /// The prior model's JSON: `prior`, else the shipped model's.
    fn prior_json(&self) -> &str {
        self.prior
            .as_deref()
            .unwrap_or(crate::core::model::DEFAULT_MODEL_JSON)
    }

    fn prior_model(&self) -> Result<Model, TrainError> {
        Model::parse(self.prior_json(), "the prior model")
            .map_err(|e| TrainError::Shipped(e.to_string()))
    }
}

/// Replays `input` through the core (shipped rules and the prior `model`)
/// and collects the features and labels of every row.
pub fn collect<R: io::Read>(
    input: R,
    seed: u64,
    holdout: f64,
    model: Model,
) -> Result<Examples, TrainError> {
    let reader = RbaReader::new(io::BufReader::with_capacity(1 << 16, input))?;
    let rules = RuleSet::embedded().map_err(|e| TrainError::Shipped(e.to_string()))?;
    let settings = Settings {
        variants: vec![Variant {
            name: "riskgate".into(),
            rules_origin: "shipped".into(),
            model_origin: "shipped".into(),
            rules,
            model,
        }],
        freeman: false,
        skip_bad: false,
        reorder_window: 0,
        limits: MemoryLimits::default(),
        features: crate::core::features::FeatureSettings::default(),
        geo: None,
        freeman_user_history: crate::tools::replay::baseline::KEYSTONE_MAX_USER_HISTORY,
    };
    let replayer = Replayer::new(settings, UaParser::new(100_000));
    let mut ex = Examples {
        labels: vec![LEGIT.to_string()],
        ..Examples::default()
    };
    let mut users: HashSet<Box<str>> = HashSet::new();
    replayer.run(reader, |o| {
        let Some(d) = o.decisions.first() else {
            return Ok(());
        };
        ex.x.extend(INPUTS.iter().map(|i| (i.value)(&d.features)));
        let label = match ex.labels.iter().position(|l| l == o.label) {
            Some(p) => p,
            None => {
                ex.labels.push(o.label.to_string());
                ex.labels.len() - 1
            }
        };
        ex.label.push(u16::try_from(label).unwrap_or(u16::MAX));
        ex.attack.push(o.label != LEGIT);
        ex.held_out.push(held_out(seed, o.row.user, holdout));
        ex.evaluated.push(o.row.success && o.history > 0);
        if !users.contains(o.row.user) {
            users.insert(o.row.user.into());
        }
        Ok(())
    })?;
    ex.users = users.len();
    Ok(ex)
}

/// Rows, users and label counts of the training file.
#[derive(Clone, Debug, Serialize)]
pub struct DataFingerprint {
    pub sha256: String,
    pub rows: usize,
    pub users: usize,
    pub labels: BTreeMap<String, usize>,
    pub train_rows: usize,
    pub held_out_rows: usize,
}

/// Held-out figures for one attacker label (published protocol rows).
#[derive(Clone, Debug, Serialize)]
pub struct LabelMetrics {
    pub attempts: usize,
    pub auc: Option<f64>,
    /// Re-authentication rate of legitimate logins at 99.5 % blocked.
    pub reauth_at_99_5: Option<f64>,
}

/// Held-out metrics.
#[derive(Clone, Debug, Serialize)]
pub struct Metrics {
    pub rows: usize,
    pub auc: Option<f64>,
    pub log_loss_uncalibrated: f64,
    pub log_loss: f64,
    pub evaluated_legit: usize,
    pub by_label: BTreeMap<String, LabelMetrics>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Calibration {
    pub method: &'static str,
    pub a: f64,
    pub b: f64,
    pub fitted_on: &'static str,
    pub folded_into_weights: bool,
    /// Log-odds added to the intercept after calibration (operating point).
    pub shift: f64,
    /// The policy `medium` threshold the shift aims at.
    pub medium_threshold: f64,
    pub reauth_budget: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Training {
    pub data: DataFingerprint,
    pub held_out: Metrics,
    pub split: String,
    /// Which rows were fitted and calibrated on.
    pub rows: String,
    pub seed: u64,
    pub holdout: f64,
    pub library: String,
    pub regularization: String,
    /// Inputs not learned: the prior's weight (times Platt's `a`), centred
    /// on the training mean.
    pub carried_from_prior: Vec<String>,
    /// Inputs whose learned weight had the opposite sign to the prior's, so
    /// were carried instead.
    pub sign_conflicts: Vec<String>,
    pub features_replayed_with: String,
}

/// The model file written by `riskgate train` (format 1 plus metadata).
#[derive(Clone, Debug, Serialize)]
pub struct TrainedModel {
    pub format: u32,
    pub version: String,
    pub description: String,
    pub features: Vec<String>,
    pub weights: Vec<f64>,
    pub intercept: f64,
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
    pub calibration: Calibration,
    pub training: Training,
}

impl TrainedModel {
    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

fn log_loss(p: &[f64], y: &[bool]) -> f64 {
    if p.is_empty() {
        return 0.0;
    }
    let s: f64 = p
        .iter()
        .zip(y)
        .map(|(p, y)| {
            let p = p.clamp(1e-12, 1.0 - 1e-12);
            if *y { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum();
    s / p.len() as f64
}

/// Fits a 1-feature or n-feature logistic regression; returns (weights,
/// intercept) for P(attack).
fn fit_logistic(
    x: Array2<f64>,
    y: Vec<bool>,
    alpha: f64,
    max_iterations: u64,
) -> Result<(Vec<f64>, f64), TrainError> {
    let data = Dataset::new(x, Array1::from(y));
    let fitted = LogisticRegression::default()
        .alpha(alpha)
        .max_iterations(max_iterations)
        .fit(&data)
        .map_err(|e| TrainError::Fit(e.to_string()))?;
    // linfa's positive class is the larger one; we want P(attack).
    let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
    let w = fitted.params().iter().map(|w| sign * w).collect();
    Ok((w, sign * fitted.intercept()))
}

/// The standardized `cols` of `rows`.
fn matrix(ex: &Examples, rows: &[usize], cols: &[usize], mean: &[f64], sd: &[f64]) -> Array2<f64> {
    let mut m = Array2::<f64>::zeros((rows.len(), cols.len()));
    for (r, &i) in rows.iter().enumerate() {
        let row = ex.row(i);
        for (c, &j) in cols.iter().enumerate() {
            m[[r, c]] = (row[j] - mean[j]) / sd[j];
        }
    }
    m
}

/// Trains on collected examples.
pub fn fit(
    ex: &Examples,
    fingerprint_sha256: &str,
    opts: &TrainOptions,
) -> Result<TrainedModel, TrainError> {
    if !(opts.holdout > 0.0 && opts.holdout < 1.0) {
        return Err(TrainError::Options(format!(
            "`--holdout` must be between 0 and 1, got `{}`",
            opts.holdout
        )));
    }
    if !(opts.reauth_budget > 0.0 && opts.reauth_budget < 1.0) {
        return Err(TrainError::Options(format!(
            "the re-authentication budget must be between 0 and 1, got `{}`",
            opts.reauth_budget
        )));
    }
    if !(opts.alpha.is_finite() && opts.alpha >= 0.0) {
        return Err(TrainError::Options(format!(
            "the L2 penalty must be finite and >= 0, got `{}`",
            opts.alpha
        )));
    }
    let n_in = INPUTS.len();
    // With `correct_password_only`, rows with a wrong password are left out
    // (the policy never allows them whatever the score, and attacks on
    // accounts that do not exist would otherwise teach that every new user
    // is an attack); `credential_invalid` is then constant and carried.
    let invalid = INPUTS.iter().position(|i| i.name == "credential_invalid");
    let kept_row =
        |i: usize| !opts.correct_password_only || invalid.is_none_or(|j| ex.row(i)[j] == 0.0);
    let train: Vec<usize> = (0..ex.len())
        .filter(|i| !ex.held_out[*i] && kept_row(*i))
        .collect();
    let test: Vec<usize> = (0..ex.len())
        .filter(|i| ex.held_out[*i] && kept_row(*i))
        .collect();
    let count =
        |rows: &[usize], attack: bool| rows.iter().filter(|i| ex.attack[**i] == attack).count();
    for (what, rows) in [("training", &train), ("held-out", &test)] {
        if count(rows, true) == 0 || count(rows, false) == 0 {
            return Err(TrainError::Data(format!(
                "the {what} users have {} attack and {} legitimate rows; both are needed (more users or another --holdout)",
                count(rows, true),
                count(rows, false)
            )));
        }
    }

    // Standardization from the training rows; constant inputs are carried.
    let nt = train.len() as f64;
    let mut mean = vec![0.0; n_in];
    let mut sd = vec![0.0; n_in];
    for &i in &train {
        for (j, v) in ex.row(i).iter().enumerate() {
            mean[j] += v;
        }
    }
    mean.iter_mut().for_each(|m| *m /= nt);
    for &i in &train {
        for (j, v) in ex.row(i).iter().enumerate() {
            sd[j] += (v - mean[j]).powi(2);
        }
    }
    sd.iter_mut().for_each(|s| *s = (*s / nt).sqrt());
    let prior = opts.prior_model()?;
    let prior_json: serde_json::Value =
        serde_json::from_str(opts.prior_json()).map_err(|e| TrainError::Shipped(e.to_string()))?;
    // Per raw unit of the input: a standardized prior (a trained model)
    // stores weight per standard deviation, so its weight is divided by its
    // scale.
    let prior_weight = |name: &str| -> Option<f64> {
        let names = prior_json.get("features")?.as_array()?;
        let pos = names.iter().position(|n| n.as_str() == Some(name))?;
        let w = prior_json.get("weights")?.as_array()?.get(pos)?.as_f64()?;
        let scale = match prior_json.get("scale") {
            Some(s) => s.as_array()?.get(pos)?.as_f64()?,
            None => 1.0,
        };
        Some(w / scale)
    };
    // Inputs not learned: constant in the data, asked for, or (with
    // `sign_from_prior`) learned against the prior's sign. They keep the
    // prior's weight, centred on their training mean.
    let mut kept: Vec<usize> = Vec::new();
    for name in &opts.keep_prior {
        let Some(j) = INPUTS.iter().position(|i| i.name == name) else {
            return Err(TrainError::Options(format!("unknown input `{name}`")));
        };
        // An input the shipped model gives no weight keeps none: it is
        // left out of the model.
        kept.push(j);
    }
    let mut sign_conflicts = Vec::new();
    let labels = |rows: &[usize]| rows.iter().map(|i| ex.attack[*i]).collect::<Vec<_>>();
    let (used, w, b0) = loop {
        let used: Vec<usize> = (0..n_in)
            .filter(|j| sd[*j] > 1e-9 && !kept.contains(j))
            .collect();
        let x = matrix(ex, &train, &used, &mean, &sd);
        let (w, b0) = fit_logistic(x, labels(&train), opts.alpha, opts.max_iterations)?;
        // One at a time, the largest conflict first: carrying one input
        // changes what the others learn.
        let worst = used
            .iter()
            .zip(&w)
            .filter(|(j, w)| {
                opts.sign_from_prior
                    && prior_weight(INPUTS[**j].name).is_some_and(|pw| pw * **w < 0.0)
            })
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .map(|(j, _)| *j);
        let Some(j) = worst else {
            break (used, w, b0);
        };
        sign_conflicts.push(INPUTS[j].name.to_string());
        kept.push(j);
    };
    // Every input the file carries from the prior (constant or kept).
    let carried: Vec<(usize, f64)> = (0..n_in)
        .filter(|j| !used.contains(j))
        .filter_map(|j| prior_weight(INPUTS[j].name).map(|pw| (j, pw)))
        .collect();

    // Held-out margins (learned and carried terms), then Platt scaling.
    let xt = matrix(ex, &test, &used, &mean, &sd);
    let z: Vec<f64> = xt
        .rows()
        .into_iter()
        .zip(&test)
        .map(|(r, &i)| {
            let row = ex.row(i);
            b0 + r.iter().zip(&w).map(|(x, w)| x * w).sum::<f64>()
                + carried
                    .iter()
                    .map(|(j, pw)| pw * (row[*j] - mean[*j]))
                    .sum::<f64>()
        })
        .collect();
    let yt = labels(&test);
    let p_raw: Vec<f64> = z.iter().map(|z| sigmoid(*z)).collect();
    let zcol = Array2::from_shape_vec((z.len(), 1), z.clone())
        .map_err(|e| TrainError::Data(e.to_string()))?;
    let (pa, pb) = fit_logistic(zcol, yt.clone(), 1e-6, 100)?;
    let a = pa.first().copied().unwrap_or(1.0);
    if !(a.is_finite() && a > 0.0 && pb.is_finite()) {
        return Err(TrainError::Fit(format!(
            "Platt scaling gave a = {a}, b = {pb}; the model does not separate the held-out users"
        )));
    }
    let p_cal: Vec<f64> = z.iter().map(|z| sigmoid(a * z + pb)).collect();

    // Operating point: the (1 - budget) quantile of the calibrated held-out
    // legitimate margins lands on the policy's `medium` threshold.
    let rules = RuleSet::embedded().map_err(|e| TrainError::Shipped(e.to_string()))?;
    let medium = rules.policy.medium;
    let mut legit_margins: Vec<f64> = test
        .iter()
        .zip(&z)
        .filter(|(i, _)| !ex.attack[**i] && ex.evaluated[**i])
        .map(|(_, z)| a * z + pb)
        .collect();
    legit_margins.sort_by(f64::total_cmp);
    let shift = match legit_margins.len() {
        0 => 0.0,
        n => {
            let k = (((1.0 - opts.reauth_budget) * n as f64).floor() as usize).min(n - 1);
            let logit_medium = (medium / (1.0 - medium)).ln();
            logit_medium - legit_margins[k]
        }
    };

    // Metrics on the held-out rows.
    let sorted = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v
    };
    let legit_all = sorted(
        test.iter()
            .zip(&p_cal)
            .filter(|(i, _)| !ex.attack[**i])
            .map(|(_, p)| *p)
            .collect(),
    );
    let attack_all = sorted(
        test.iter()
            .zip(&p_cal)
            .filter(|(i, _)| ex.attack[**i])
            .map(|(_, p)| *p)
            .collect(),
    );
    let legit_eval = sorted(
        test.iter()
            .zip(&p_cal)
            .filter(|(i, _)| !ex.attack[**i] && ex.evaluated[**i])
            .map(|(_, p)| *p)
            .collect(),
    );
    let mut by_label = BTreeMap::new();
    for (id, name) in ex.labels.iter().enumerate().skip(1) {
        let scores = sorted(
            test.iter()
                .zip(&p_cal)
                .filter(|(i, _)| usize::from(ex.label[**i]) == id && ex.evaluated[**i])
                .map(|(_, p)| *p)
                .collect(),
        );
        let reauth = threshold_for(&scores, BLOCK_RATE)
            .filter(|_| !legit_eval.is_empty())
            .map(|t| share_at_or_above(&legit_eval, t));
        by_label.insert(
            name.clone(),
            LabelMetrics {
                attempts: scores.len(),
                auc: auc(&legit_eval, &scores),
                reauth_at_99_5: reauth,
            },
        );
    }
    let metrics = Metrics {
        rows: test.len(),
        auc: auc(&legit_all, &attack_all),
        log_loss_uncalibrated: log_loss(&p_raw, &yt),
        log_loss: log_loss(&p_cal, &yt),
        evaluated_legit: legit_eval.len(),
        by_label,
    };

    // The file: calibrated, standardized inputs first, carried ones after.
    let mut features = Vec::new();
    let (mut weights, mut means, mut scales) = (Vec::new(), Vec::new(), Vec::new());
    for (c, &j) in used.iter().enumerate() {
        features.push(INPUTS[j].name.to_string());
        weights.push(a * w[c]);
        means.push(mean[j]);
        scales.push(sd[j]);
    }
    for &(j, pw) in &carried {
        features.push(INPUTS[j].name.to_string());
        weights.push(a * pw);
        means.push(mean[j]);
        scales.push(1.0);
    }
    let carried: Vec<String> = carried
        .iter()
        .map(|(j, _)| INPUTS[*j].name.to_string())
        .collect();
    let mut label_counts = BTreeMap::new();
    for l in &ex.label {
        let name = ex.labels.get(usize::from(*l)).cloned().unwrap_or_default();
        *label_counts.entry(name).or_insert(0) += 1;
    }
    let model = TrainedModel {
        format: 1,
        version: format!("trained-{}-{}", opts.name, opts.date),
        description: format!(
            "Logistic model trained by `riskgate train` on {} rows ({} users) of `{}`-fingerprinted data; see MODEL_CARD.md.",
            ex.len(),
            ex.users,
            &fingerprint_sha256[..fingerprint_sha256.len().min(12)]
        ),
        features,
        weights,
        intercept: a * b0 + pb + shift,
        mean: means,
        scale: scales,
        calibration: Calibration {
            method: "platt",
            a,
            b: pb,
            fitted_on: "held-out users",
            folded_into_weights: true,
            shift,
            medium_threshold: medium,
            reauth_budget: opts.reauth_budget,
        },
        training: Training {
            data: DataFingerprint {
                sha256: fingerprint_sha256.to_string(),
                rows: ex.len(),
                users: ex.users,
                labels: label_counts,
                train_rows: train.len(),
                held_out_rows: test.len(),
            },
            held_out: metrics,
            rows: if opts.correct_password_only {
                "rows with a correct password".into()
            } else {
                "every replayed row".into()
            },
            split: "by user: sha256(seed_le || user_id), first 8 bytes as a fraction < holdout"
                .into(),
            seed: opts.seed,
            holdout: opts.holdout,
            library: format!("linfa {LINFA_VERSION}, linfa-logistic {LINFA_VERSION} (L-BFGS)"),
            regularization: format!(
                "L2, alpha = {} on the summed log loss over standardized inputs",
                opts.alpha
            ),
            carried_from_prior: carried,
            sign_conflicts,
            features_replayed_with: format!(
                "shipped rules and prior model `{}` (they decide what each row teaches)",
                prior.version()
            ),
        },
    };
    // The file must load as serving loads it.
    Model::parse(&model.to_json(), "trained model")
        .map_err(|e| TrainError::Model(e.to_string()))?;
    Ok(model)
}

/// Reads, fingerprints, replays and trains on a file.
pub fn train_file(path: &Path, opts: &TrainOptions) -> Result<TrainedModel, TrainError> {
    let bytes = std::fs::read(path)
        .map_err(|e| TrainError::Data(format!("cannot read `{}`: {e}", path.display())))?;
    let sha = hex::encode(Sha256::digest(&bytes));
    let ex = collect(&bytes[..], opts.seed, opts.holdout, opts.prior_model()?)?;
    fit(&ex, &sha, opts)
}

/// The examples of a decision journal: every decision labelled by its
/// outcomes as verified legitimate (0) or fraud (1), with the features it
/// was decided on; suspicious and unlabelled decisions are left out. Users
/// (their keyed hashes) are split as for a file. Returns the examples and a
/// SHA-256 over the decisions read (their ids and labels), as the data's
/// fingerprint.
pub fn collect_journal(
    journal: &mut dyn crate::journal::JournalStore,
    filter: &crate::journal::Filter,
    seed: u64,
    holdout: f64,
) -> Result<(Examples, String), TrainError> {
    use crate::domain::CredentialResult;
    use crate::journal::Label;
    let mut ex = Examples {
        labels: vec![LEGIT.to_string(), "fraud".to_string()],
        ..Examples::default()
    };
    let mut users: HashSet<[u8; 16]> = HashSet::new();
    let mut sha = Sha256::new();
    journal.scan(filter, &mut |r| {
        let attack = match r.label {
            Some(Label::Legit) => false,
            Some(Label::Fraud) => true,
            Some(Label::Suspicious) | None => return true,
        };
        let f = &r.entry.features;
        sha.update(r.entry.id.to_be_bytes());
        sha.update([u8::from(attack)]);
        ex.x.extend(INPUTS.iter().map(|i| (i.value)(f)));
        ex.label.push(u16::from(attack));
        ex.attack.push(attack);
        let user = hex::encode(r.entry.user.0);
        ex.held_out.push(held_out(seed, &user, holdout));
        ex.evaluated.push(
            f.attempt.credential_result == CredentialResult::Valid && f.user.verified_logins > 0,
        );
        users.insert(r.entry.user.0);
        true
    })?;
    ex.users = users.len();
    Ok((ex, hex::encode(sha.finalize())))
}

/// Trains on a decision journal (see [`collect_journal`]).
pub fn train_journal(
    journal: &mut dyn crate::journal::JournalStore,
    filter: &crate::journal::Filter,
    opts: &TrainOptions,
) -> Result<TrainedModel, TrainError> {
    let (ex, sha) = collect_journal(journal, filter, opts.seed, opts.holdout)?;
    fit(&ex, &sha, opts)
}
