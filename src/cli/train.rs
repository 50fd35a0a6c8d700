//! `riskgate train FILE.csv --name NAME`: fit the logistic model on labelled
//! logins replayed through the core, and write `models/<name>.json`. See
//! [`crate::tools::train`] for the procedure.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::tools::train::{self, TrainOptions};

use super::eval::UsageError;

/// `riskgate train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Labelled logins in the RBA dataset's CSV format (the `Attacker`
    /// column or `Is Account Takeover` / `Is Attack IP` give the label), in
    /// time order. Or `--journal`.
    #[arg(required_unless_present = "journal", conflicts_with = "journal")]
    pub file: Option<PathBuf>,
    /// Train on the decision journal instead (a SQLite file or a
    /// postgres:// URL): decisions labelled verified legitimate or fraud by
    /// their outcomes, with the features they were decided on.
    #[arg(long)]
    pub journal: Option<String>,
    #[command(flatten)]
    pub window: super::journal::WindowArgs,
    /// Model name: the version becomes `trained-<name>-<date>`.
    #[arg(long)]
    pub name: String,
    /// Where to write the model [default: models/<name>.json].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Share of users held out for calibration and metrics.
    #[arg(long, default_value_t = 0.2)]
    pub holdout: f64,
    /// Seed of the user split.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// L2 penalty (linfa's alpha, on the summed log loss of standardized inputs).
    #[arg(long, default_value_t = 1.0)]
    pub l2: f64,
    /// Share of legitimate logins (correct password, user with history) the
    /// shipped policy's STEP_UP threshold should challenge: sets the intercept.
    #[arg(long, default_value_t = 0.02)]
    pub reauth_budget: f64,
    /// Inputs not to learn: they keep the shipped model's weight, or are left
    /// out when it gives them none (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub keep_prior: Vec<String>,
    /// Carry, instead of learning, inputs whose learned weight has the
    /// opposite sign to the shipped model's, and refit without them.
    #[arg(long)]
    pub sign_from_prior: bool,
    /// The prior model file [default: the shipped model]: it decides what
    /// replayed rows teach, gives carried inputs their weight and, with
    /// `--sign-from-prior`, the signs learned weights must keep.
    #[arg(long)]
    pub prior: Option<PathBuf>,
    /// Fit and calibrate on rows with a correct password only (the policy
    /// never allows a wrong one, whatever the score).
    #[arg(long)]
    pub correct_password_only: bool,
    /// Solver iterations (L-BFGS).
    #[arg(long, default_value_t = 200)]
    pub max_iterations: u64,
}

fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let (y, m, d) = crate::domain::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Runs the training.
pub fn run(a: TrainArgs) -> anyhow::Result<()> {
    if a.name.is_empty()
        || !a
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(UsageError(format!(
            "`--name` must be letters, digits, `-`, `_` or `.`, got `{}`",
            a.name
        ))
        .into());
    }
    let prior = match &a.prior {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read `{}`", p.display()))?;
            crate::core::model::Model::parse(&text, &p.display().to_string())
                .map_err(|e| UsageError(e.to_string()))?;
            Some(text)
        }
        None => None,
    };
    let opts = TrainOptions {
        prior,
        correct_password_only: a.correct_password_only,
        holdout: a.holdout,
        seed: a.seed,
        alpha: a.l2,
        max_iterations: a.max_iterations,
        reauth_budget: a.reauth_budget,
        keep_prior: a.keep_prior.clone(),
        sign_from_prior: a.sign_from_prior,
        ..TrainOptions::new(&a.name, &today())
    };
    let started = std::time::Instant::now();
    let (trained, source) = match (&a.file, &a.journal) {
        (Some(file), _) => (train::train_file(file, &opts), file.display().to_string()),
        (None, Some(j)) => {
            let target = super::journal::JournalArgs {
                journal: Some(j.clone()),
            }
            .target()?;
            let filter = a.window.filter()?;
            let mut store =
                crate::journal::open(&target).with_context(|| format!("journal {target}"))?;
            (
                train::train_journal(store.as_mut(), &filter, &opts),
                format!("journal {target}"),
            )
        }
        (None, None) => {
            return Err(UsageError("give a CSV file or `--journal`".into()).into());
        }
    };
    let model = trained.map_err(|e| match e {
        train::TrainError::Options(m) => anyhow::Error::new(UsageError(m)),
        e => anyhow::Error::new(e).context(source.clone()),
    })?;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("models/{}.json", a.name)));
    std::fs::write(&out, model.to_json())
        .with_context(|| format!("cannot write `{}`", out.display()))?;
    let t = &model.training;
    let m = &t.held_out;
    let f = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.4}"));
    println!(
        "trained `{}` on {} rows ({} users; {} train / {} held out) in {:.1} s → {}",
        model.version,
        t.data.rows,
        t.data.users,
        t.data.train_rows,
        t.data.held_out_rows,
        started.elapsed().as_secs_f64(),
        out.display()
    );
    println!(
        "held out: AUC {}, log loss {:.4} (uncalibrated {:.4}); Platt a = {:.3}, b = {:.3}; operating-point shift {:+.3} (STEP_UP at {} for {:.1}% of legitimate logins)",
        f(m.auc),
        m.log_loss,
        m.log_loss_uncalibrated,
        model.calibration.a,
        model.calibration.b,
        model.calibration.shift,
        model.calibration.medium_threshold,
        100.0 * model.calibration.reauth_budget
    );
    println!(
        "{:<12} {:>8} {:>8} {:>14}   (held-out users, correct password, with history; {} legitimate)",
        "label", "attempts", "AUC", "re-auth@99.5%", m.evaluated_legit
    );
    for (label, l) in &m.by_label {
        println!(
            "{label:<12} {:>8} {:>8} {:>14}",
            l.attempts,
            f(l.auc),
            l.reauth_at_99_5
                .map_or("-".to_string(), |r| format!("{:.2}%", 100.0 * r))
        );
    }
    if !t.carried_from_prior.is_empty() {
        println!(
            "not learned, prior weight kept: {}",
            t.carried_from_prior.join(", ")
        );
    }
    if !t.sign_conflicts.is_empty() {
        println!(
            "learned against the prior's sign, so carried: {}",
            t.sign_conflicts.join(", ")
        );
    }
    println!("weights (log-odds per standard deviation; carried inputs per unit):");
    for ((name, w), s) in model.features.iter().zip(&model.weights).zip(&model.scale) {
        println!("  {name:<24} {w:>8.3}  (sd {s:.3})");
    }
    Ok(())
}
