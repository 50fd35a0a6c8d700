//! `riskgate backtest` and `riskgate journal stats`: the decision journal
//! from the command line (the console calls the same library code).

use std::path::PathBuf;

use anyhow::Context as _;

use crate::core::model::Model;
use crate::core::rules::RuleSet;
use crate::domain::{Channel, UnixMillis};
use crate::journal::{self, Filter, Target};
use crate::tools::backtest::{self, Side};

use super::eval::UsageError;

/// Where the journal is and which decisions to read.
#[derive(Debug, Clone, clap::Args)]
pub struct JournalArgs {
    /// The journal: a SQLite file path or a postgres:// URL [default:
    /// riskgate-journal.db]. Also RISKGATE_JOURNAL.
    #[arg(long, env = "RISKGATE_JOURNAL", hide_env_values = true)]
    pub journal: Option<String>,
}

/// A time window.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct WindowArgs {
    /// The last N days, hours or minutes (`7d`, `24h`, `30m`).
    #[arg(long, conflicts_with = "from")]
    pub since: Option<String>,
    /// From this time (`2026-12-04`, `2026-12-04T10:00:00Z`, or ms since the epoch).
    #[arg(long)]
    pub from: Option<String>,
    /// To this time (exclusive; same forms).
    #[arg(long)]
    pub to: Option<String>,
    /// Only this channel (web, mobile_app, call_center, kiosk, api).
    #[arg(long)]
    pub channel: Option<String>,
}

/// `riskgate backtest`.
#[derive(Debug, clap::Args)]
pub struct BacktestArgs {
    #[command(flatten)]
    pub journal: JournalArgs,
    #[command(flatten)]
    pub window: WindowArgs,
    /// The candidate rule file [default: the baseline's].
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// The candidate model [default: the baseline's].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// The rules that serve [default: the shipped rules]. Also RISKGATE_RULES.
    #[arg(long, env = "RISKGATE_RULES")]
    pub baseline_rules: Option<PathBuf>,
    /// The model that serves [default: the shipped model]. Also RISKGATE_MODEL.
    #[arg(long, env = "RISKGATE_MODEL")]
    pub baseline_model: Option<PathBuf>,
    /// Changed decisions listed.
    #[arg(long, default_value_t = 20)]
    pub changes: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write an SVG chart of the challenged share per label.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// `riskgate journal …`.
#[derive(Debug, clap::Subcommand)]
pub enum JournalCommand {
    /// Counts by day, action and label, size, oldest and newest record.
    Stats {
        #[command(flatten)]
        journal: JournalArgs,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

impl JournalArgs {
    /// The journal to read.
    pub fn target(&self) -> Result<Target, UsageError> {
        let text = self.journal.as_deref().unwrap_or(Target::DEFAULT_FILE);
        match Target::parse(text) {
            Ok(Target::Off) => Err(UsageError(
                "`--journal off`: there is nothing to read".into(),
            )),
            Ok(t) => Ok(t),
            Err(e) => Err(UsageError(format!("`--journal`: {e}"))),
        }
    }
}

/// A time: `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS]Z`, or milliseconds.
pub fn parse_time(s: &str) -> Result<UnixMillis, UsageError> {
    let bad = || {
        UsageError(format!(
            "`{s}` is not a time like 2026-12-04, 2026-12-04T10:00:00Z or milliseconds since the epoch"
        ))
    };
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(UnixMillis(ms));
    }
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z').ok_or_else(bad)?)),
        None => (s, None),
    };
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (Some(Ok(y)), Some(Ok(m)), Some(Ok(day)), None) = (d.next(), d.next(), d.next(), d.next())
    else {
        return Err(bad());
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return Err(bad());
    }
    let mut secs = crate::domain::days_from_civil(y, m, day) * 86_400;
    if let Some(t) = time {
        let mut parts = t.split(':').map(|p| p.parse::<i64>());
        let h = parts.next().ok_or_else(bad)?.map_err(|_| bad())?;
        let min = parts.next().ok_or_else(bad)?.map_err(|_| bad())?;
        let sec = parts.next().transpose().map_err(|_| bad())?.unwrap_or(0);
        if h > 23 || min > 59 || sec > 60 {
            return Err(bad());
        }
        secs += h * 3600 + min * 60 + sec;
    }
    Ok(UnixMillis(secs * 1000))
}

/// `7d`, `24h`, `30m` → milliseconds.
pub fn parse_span(s: &str) -> Result<i64, UsageError> {
    let bad = || UsageError(format!("`{s}` is not a span like 7d, 24h or 30m"));
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = n.parse().map_err(|_| bad())?;
    let ms = match unit {
        "d" => 86_400_000,
        "h" => 3_600_000,
        "m" => 60_000,
        _ => return Err(bad()),
    };
    if n <= 0 {
        return Err(bad());
    }
    Ok(n * ms)
}

impl WindowArgs {
    /// The filter the window describes.
    pub fn filter(&self) -> Result<Filter, UsageError> {
        let mut f = Filter::default();
        if let Some(s) = &self.since {
            f.from = Some(UnixMillis(UnixMillis::now().0 - parse_span(s)?));
        }
        if let Some(s) = &self.from {
            f.from = Some(parse_time(s)?);
        }
        if let Some(s) = &self.to {
            f.to = Some(parse_time(s)?);
        }
        if let Some(c) = &self.channel {
            f.channel = Some(Channel::parse(c).ok_or_else(|| {
                UsageError(format!(
                    "unknown channel `{c}` (web, mobile_app, call_center, kiosk, api)"
                ))
            })?);
        }
        Ok(f)
    }
}

fn side(rules: Option<&PathBuf>, model: Option<&PathBuf>) -> anyhow::Result<Side> {
    let origin = |p: Option<&PathBuf>| p.map_or("shipped".to_string(), |p| p.display().to_string());
    Ok(Side {
        origin: format!("{} / {}", origin(rules), origin(model)),
        rules: std::sync::Arc::new(
            match rules {
                Some(p) => RuleSet::load(p),
                None => RuleSet::embedded(),
            }
            .map_err(|e| anyhow::anyhow!("{e}"))?,
        ),
        model: std::sync::Arc::new(
            match model {
                Some(p) => Model::load(p),
                None => Model::embedded(),
            }
            .map_err(|e| anyhow::anyhow!("{e}"))?,
        ),
    })
}

/// Runs `backtest`.
pub fn run_backtest(a: BacktestArgs) -> anyhow::Result<()> {
    let target = a.journal.target()?;
    let filter = a.window.filter()?;
    let baseline = side(a.baseline_rules.as_ref(), a.baseline_model.as_ref())?;
    let candidate = side(
        a.rules.as_ref().or(a.baseline_rules.as_ref()),
        a.model.as_ref().or(a.baseline_model.as_ref()),
    )?;
    let mut store = journal::open(&target).with_context(|| format!("journal {target}"))?;
    let report = backtest::run(
        store.as_mut(),
        &target.to_string(),
        &filter,
        &baseline,
        &candidate,
        a.changes,
    )?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    if let Some(p) = &a.plot {
        std::fs::write(
            p,
            report.svg("challenged share per label: baseline vs candidate"),
        )
        .with_context(|| format!("cannot write `{}`", p.display()))?;
    }
    Ok(())
}

/// Runs `journal stats`.
pub fn run_stats(journal: &JournalArgs, json: bool) -> anyhow::Result<()> {
    let target = journal.target()?;
    let mut store = journal::open(&target).with_context(|| format!("journal {target}"))?;
    let s = store.stats()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    let when = |t: Option<UnixMillis>| t.map_or("-".to_string(), journal::day_of);
    println!(
        "journal {target} ({}): {} decisions, {} outcomes, {:.1} MB, oldest {}, newest {}",
        store.kind(),
        s.decisions,
        s.outcomes,
        s.bytes as f64 / 1e6,
        when(s.oldest),
        when(s.newest)
    );
    if s.decisions > 0 {
        println!(
            "bytes per decision (with its outcomes and indexes): {:.0}",
            s.bytes as f64 / s.decisions as f64
        );
    }
    println!(
        "{:<12} {:>10} {:>10} {:>10}",
        "day", "allow", "step_up", "deny"
    );
    let mut days: Vec<(String, [u64; 3])> = Vec::new();
    for (day, action, n) in &s.by_day {
        if days.last().is_none_or(|d| d.0 != *day) {
            days.push((day.clone(), [0; 3]));
        }
        if let Some(d) = days.last_mut() {
            d.1[usize::from(action.severity())] += n;
        }
    }
    for (day, n) in days {
        println!("{day:<12} {:>10} {:>10} {:>10}", n[0], n[1], n[2]);
    }
    for (label, n) in &s.by_label {
        println!("{label:<12} {n:>10}");
    }
    Ok(())
}
