//! `riskgate replay FILE.csv`: past logins through the same core as the
//! server, one or two rule/model variants side by side, the Freeman et al.
//! baseline next to them, and the published evaluation as a table, JSON and
//! an SVG plot. See [`crate::tools::replay`] for what a row becomes.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use serde::Serialize;

use crate::config::Config;
use crate::core::model::Model;
use crate::core::rules::RuleSet;
use crate::signals::device::UaParser;
use crate::signals::geo::GeoResolver;
use crate::store::memory::MemoryLimits;
use crate::tools::replay::eval::ScorerEval;
use crate::tools::replay::reader::RbaReader;
use crate::tools::replay::{self, Replayer, RowOutcome, Settings, Summary, Variant};

use super::eval::UsageError;

/// Which scorers to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scorer {
    Riskgate,
    Freeman,
    Both,
}

/// A published baseline to check against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Baseline {
    /// Freeman et al. (NDSS 2016), as `--scorer freeman` computes it.
    Freeman,
}

/// `riskgate replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Logins in the RBA dataset's CSV format (16 columns, optionally a 17th
    /// `Attacker`), in time order; `-` reads standard input.
    pub file: PathBuf,
    /// Rule file [default: the shipped rules]. Give it twice to compare two.
    #[arg(long)]
    pub rules: Vec<PathBuf>,
    /// A second rule file to compare with the first (same as a second --rules).
    #[arg(long)]
    pub compare_rules: Option<PathBuf>,
    /// Model file [default: the shipped model]. Give it twice to compare two.
    #[arg(long)]
    pub model: Vec<PathBuf>,
    /// A second model to compare with the first (same as a second --model).
    #[arg(long)]
    pub compare_model: Option<PathBuf>,
    /// Which scorers to run.
    #[arg(long, value_enum, default_value = "both")]
    pub scorer: Scorer,
    /// Gate a change on the published baseline: after the report, compare
    /// riskgate with it per attacker label (AUC) and per history bucket
    /// (re-authentication at 99 % and 99.5 % blocked), print every cell
    /// where riskgate is worse, and exit 1 if there is one. Needs
    /// `--scorer both`.
    #[arg(long, value_enum)]
    pub check_against: Option<Baseline>,
    /// Re-authentication points riskgate may be above the baseline in a
    /// cell before it counts as worse (noise).
    #[arg(long, default_value_t = 0.5)]
    pub check_tolerance_points: f64,
    /// Write one line per row: index, label, history, score, action, reasons
    /// (per variant) and the Freeman score.
    #[arg(long)]
    pub scores: Option<PathBuf>,
    /// Write the summary and evaluation as JSON.
    #[arg(long)]
    pub report_json: Option<PathBuf>,
    /// Draw re-authentication rate against block rate per attacker model (SVG).
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Count and skip bad rows (reported in the summary) instead of stopping.
    #[arg(long)]
    pub skip_bad: bool,
    /// Hold back this many rows to put slightly out-of-order rows back in
    /// time order (memory grows with it; 0: the file must be in order).
    #[arg(long, default_value_t = 0)]
    pub reorder_window: usize,
    /// A server config file: its store limits, feature settings, GeoIP
    /// databases, user-agent rules and rule/model paths apply (environment
    /// variables are not read).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// MaxMind City database (adds locations, so impossible travel).
    #[arg(long)]
    pub geoip_city: Option<PathBuf>,
    /// MaxMind ASN database (fills ASNs the rows leave empty).
    #[arg(long)]
    pub geoip_asn: Option<PathBuf>,
    /// MaxMind Anonymous-IP database (VPN, Tor, hosting flags).
    #[arg(long)]
    pub geoip_anon: Option<PathBuf>,
    /// uap-core regexes.yaml: parse user agents with it instead of woothee.
    #[arg(long)]
    pub ua_regexes: Option<PathBuf>,
    /// Logins kept per user by the Freeman baseline (Keystone's default).
    #[arg(long, default_value_t = replay::baseline::KEYSTONE_MAX_USER_HISTORY)]
    pub freeman_user_history: usize,
}

fn origin(p: Option<&PathBuf>) -> String {
    p.map_or_else(|| "shipped".to_string(), |p| p.display().to_string())
}

fn load_rules(p: Option<&PathBuf>) -> anyhow::Result<RuleSet> {
    let r = match p {
        Some(p) => RuleSet::load(p),
        None => RuleSet::embedded(),
    };
    r.map_err(|e| anyhow::anyhow!("{e}"))
}

fn load_model(p: Option<&PathBuf>) -> anyhow::Result<Model> {
    let m = match p {
        Some(p) => Model::load(p),
        None => Model::embedded(),
    };
    m.map_err(|e| anyhow::anyhow!("{e}"))
}

/// The rule and model variants the flags ask for (one or two).
fn variants(a: &ReplayArgs, config: Option<&Config>) -> anyhow::Result<Vec<Variant>> {
    let too_many = |given: &[PathBuf], compare: &Option<PathBuf>| {
        given.len() + usize::from(compare.is_some()) > 2 || (given.len() == 2 && compare.is_some())
    };
    if too_many(&a.rules, &a.compare_rules) || too_many(&a.model, &a.compare_model) {
        return Err(
            UsageError("at most two rule files and two models can be compared".into()).into(),
        );
    }
    let rules_a = a
        .rules
        .first()
        .cloned()
        .or_else(|| config.and_then(|c| c.sources.rules.clone()));
    let model_a = a
        .model
        .first()
        .cloned()
        .or_else(|| config.and_then(|c| c.sources.model.clone()));
    let mut out = vec![Variant {
        name: "riskgate".into(),
        rules_origin: origin(rules_a.as_ref()),
        model_origin: origin(model_a.as_ref()),
        rules: load_rules(rules_a.as_ref())?,
        model: load_model(model_a.as_ref())?,
    }];
    let rules_b = a.rules.get(1).cloned().or_else(|| a.compare_rules.clone());
    let model_b = a.model.get(1).cloned().or_else(|| a.compare_model.clone());
    if rules_b.is_some() || model_b.is_some() {
        let r = rules_b.or(rules_a);
        let m = model_b.or(model_a);
        out.push(Variant {
            name: "riskgate_b".into(),
            rules_origin: origin(r.as_ref()),
            model_origin: origin(m.as_ref()),
            rules: load_rules(r.as_ref())?,
            model: load_model(m.as_ref())?,
        });
    }
    Ok(out)
}

/// The JSON report: the summary plus what was run.
#[derive(Serialize)]
struct Report<'a> {
    format: u32,
    input: String,
    protocol: &'static str,
    #[serde(flatten)]
    summary: &'a Summary,
}

const PROTOCOL: &str = "Wiefling et al., ACM TOPS 2022 (doi:10.1145/3546069): per attacker label and target block rate, the score threshold blocking that share of the label's attempts and the re-authentication rate of legitimate logins at it (overall and by login-history size); evaluated rows: correct password, user with >= 1 prior verified login. riskgate score = severity(action) + policy score; freeman = raw Freeman et al. likelihood ratio.";

/// Runs the replay.
pub fn run(a: ReplayArgs) -> anyhow::Result<()> {
    let config = match &a.config {
        Some(path) => Some(Config::from_file(path).map_err(|e| UsageError(e.to_string()))?),
        None => None,
    };
    let variants = if a.scorer == Scorer::Freeman {
        Vec::new()
    } else {
        variants(&a, config.as_ref())?
    };
    let compare = variants.len() == 2;
    if a.check_against.is_some() && a.scorer != Scorer::Both {
        return Err(UsageError("`--check-against freeman` needs `--scorer both`".into()).into());
    }
    if !(0.0..=100.0).contains(&a.check_tolerance_points) {
        return Err(UsageError("`--check-tolerance-points` must be 0 to 100".into()).into());
    }

    let mut geo_paths = config.as_ref().map(|c| c.geoip.clone()).unwrap_or_default();
    geo_paths.city = a.geoip_city.clone().or(geo_paths.city);
    geo_paths.asn = a.geoip_asn.clone().or(geo_paths.asn);
    geo_paths.anonymous = a.geoip_anon.clone().or(geo_paths.anonymous);
    let geo = GeoResolver::configured(&geo_paths)
        .context("cannot open the GeoIP databases")?
        .map(Arc::new);
    const UA_CACHE: u64 = 100_000;
    let regexes = a
        .ua_regexes
        .clone()
        .or_else(|| config.as_ref().and_then(|c| c.device.ua_regexes.clone()));
    let ua = UaParser::configured(regexes.as_deref(), UA_CACHE)?;
    let limits = config
        .as_ref()
        .map_or_else(MemoryLimits::default, |c| c.store.memory.clone());
    let features = config
        .as_ref()
        .map_or_else(Default::default, |c| c.features);
    let settings = Settings {
        variants,
        freeman: a.scorer != Scorer::Riskgate,
        skip_bad: a.skip_bad,
        reorder_window: a.reorder_window,
        limits,
        features,
        geo,
        freeman_user_history: a.freeman_user_history,
    };

    let input: Box<dyn Read> = if a.file.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(
            File::open(&a.file).with_context(|| format!("cannot open `{}`", a.file.display()))?,
        )
    };
    let reader = RbaReader::new(io::BufReader::with_capacity(1 << 16, input))
        .with_context(|| format!("`{}`", a.file.display()))?;

    let mut scores = match &a.scores {
        Some(p) => Some(ScoresWriter::create(
            p,
            settings.variants.len(),
            settings.freeman,
        )?),
        None => None,
    };
    let replayer = Replayer::new(settings, ua);
    let summary = replayer
        .run(reader, |o| match &mut scores {
            Some(w) => w.write(o),
            None => Ok(()),
        })
        .with_context(|| format!("`{}`", a.file.display()))?;
    if let Some(w) = scores {
        w.finish()
            .with_context(|| format!("cannot write `{}`", origin(a.scores.as_ref())))?;
    }

    let mut out = io::stdout().lock();
    print_summary(&mut out, &summary, compare)?;
    if let Some(p) = &a.report_json {
        let report = Report {
            format: 1,
            input: a.file.display().to_string(),
            protocol: PROTOCOL,
            summary: &summary,
        };
        let f = File::create(p).with_context(|| format!("cannot create `{}`", p.display()))?;
        let mut w = BufWriter::new(f);
        serde_json::to_writer_pretty(&mut w, &report)?;
        w.write_all(b"\n")?;
        w.flush()
            .with_context(|| format!("cannot write `{}`", p.display()))?;
    }
    if let Some(p) = &a.plot {
        let title = format!("re-authentication vs block rate — {}", file_name(&a.file));
        std::fs::write(p, replay::plot::svg(&title, &summary.evaluation))
            .with_context(|| format!("cannot write `{}`", p.display()))?;
    }
    if a.check_against == Some(Baseline::Freeman) {
        let base = summary.evaluation.iter().find(|e| e.scorer == "freeman");
        let ours = summary.evaluation.iter().filter(|e| e.scorer != "freeman");
        let Some(base) = base else {
            anyhow::bail!("the Freeman baseline was not evaluated");
        };
        let mut worse = Vec::new();
        for e in ours {
            for cell in replay::eval::worse_cells(e, base, a.check_tolerance_points / 100.0) {
                worse.push(format!("{}: {cell}", e.scorer));
            }
        }
        if worse.is_empty() {
            writeln!(
                out,
                "check against freeman: no cell worse (AUC per label; re-auth at 99 % and 99.5 % blocked per history bucket, +{} point)",
                a.check_tolerance_points
            )?;
        } else {
            writeln!(out, "check against freeman: {} cells worse:", worse.len())?;
            for w in &worse {
                writeln!(out, "  {w}")?;
            }
            out.flush()?;
            anyhow::bail!(
                "riskgate is worse than the Freeman baseline in {} cells",
                worse.len()
            );
        }
    }
    Ok(())
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// `--scores`: one CSV line per replayed row.
struct ScoresWriter {
    w: csv::Writer<BufWriter<File>>,
    reasons: String,
}

impl ScoresWriter {
    fn create(path: &Path, variants: usize, freeman: bool) -> anyhow::Result<Self> {
        let f =
            File::create(path).with_context(|| format!("cannot create `{}`", path.display()))?;
        let mut w = csv::Writer::from_writer(BufWriter::with_capacity(1 << 16, f));
        let mut header = vec!["index", "label", "history"];
        if variants >= 1 {
            header.extend(["score", "action", "reasons"]);
        }
        if variants >= 2 {
            header.extend(["score_b", "action_b", "reasons_b"]);
        }
        if freeman {
            header.extend(["freeman_score", "freeman_action"]);
        }
        w.write_record(&header)?;
        Ok(ScoresWriter {
            w,
            reasons: String::new(),
        })
    }

    fn write(&mut self, o: &RowOutcome<'_>) -> io::Result<()> {
        self.w.write_field(o.row.index.to_string())?;
        self.w.write_field(o.label)?;
        self.w.write_field(o.history.to_string())?;
        for e in o.decisions {
            let d = &e.decision;
            self.w.write_field(format!("{:.6}", d.score))?;
            self.w.write_field(d.action.as_str())?;
            self.reasons.clear();
            for r in d.all_reasons() {
                if !self.reasons.is_empty() {
                    self.reasons.push(';');
                }
                if r.shadow {
                    self.reasons.push_str("shadow:");
                }
                self.reasons.push_str(&r.code);
            }
            self.w.write_field(&self.reasons)?;
        }
        if let Some(s) = o.freeman {
            self.w.write_field(format!("{s:.6e}"))?;
            self.w
                .write_field(replay::baseline::FreemanHistory::keystone_action(s).as_str())?;
        }
        self.w.write_record(None::<&[u8]>)?;
        Ok(())
    }

    fn finish(mut self) -> io::Result<()> {
        self.w.flush()
    }
}

fn pct(n: u64, d: u64) -> String {
    if d == 0 {
        "-".into()
    } else {
        format!("{:.2}%", 100.0 * n as f64 / d as f64)
    }
}

fn when(ms: Option<i64>) -> String {
    let Some(ms) = ms else { return "-".into() };
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = crate::domain::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn threshold(t: f64) -> String {
    if t == 0.0 || (1e-3..1e4).contains(&t.abs()) {
        format!("{t:.4}")
    } else {
        format!("{t:.3e}")
    }
}

/// The human summary.
pub fn print_summary(out: &mut impl Write, s: &Summary, compare: bool) -> io::Result<()> {
    writeln!(
        out,
        "replayed {} rows ({} read, {} bad skipped), {} .. {} UTC; {} users with a verified login; attacker column: {}",
        s.rows_replayed,
        s.rows_read,
        s.bad_rows,
        when(s.first_at),
        when(s.last_at),
        s.users_with_history,
        if s.attacker_column { "yes" } else { "no" }
    )?;
    for e in &s.bad_examples {
        writeln!(out, "  bad row: {e}")?;
    }
    let q = &s.quirks;
    writeln!(
        out,
        "quirks: {} empty RTT, {} unknown country, {} unknown region, {} unknown city, {} without ASN, {} placeholder IPs (10/8), {} placeholder ASNs (>= 500000), {} without user agent, {} without device type",
        q.empty_rtt,
        q.unknown_country,
        q.unknown_region,
        q.unknown_city,
        q.no_asn,
        q.placeholder_ip,
        q.placeholder_asn,
        q.no_user_agent,
        q.no_device_type
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<12} {:>9} {:>11} {:>11}",
        "label", "attempts", "password ok", "no history"
    )?;
    for (label, c) in &s.labels {
        writeln!(
            out,
            "{label:<12} {:>9} {:>11} {:>11}",
            c.attempts, c.password_ok, c.no_history
        )?;
    }

    writeln!(out)?;
    writeln!(
        out,
        "decisions (password ok: allow/step_up/deny | password wrong: allow/step_up/deny)"
    )?;
    for a in &s.actions {
        writeln!(
            out,
            "{} — {}; taught {}, legitimate logins denied {}",
            a.scorer, a.source, a.taught, a.legit_denied
        )?;
        for (label, c) in &a.by_label {
            let (o, w) = (&c.password_ok, &c.password_wrong);
            writeln!(
                out,
                "  {label:<12} {:>7} {:>7} {:>7} | {:>7} {:>7} {:>7}   challenged {}",
                o.allow,
                o.step_up,
                o.deny,
                w.allow,
                w.step_up,
                w.deny,
                pct(o.challenged(), o.total())
            )?;
        }
        for (rule, n) in &a.rule_errors {
            writeln!(out, "  rule `{rule}` failed {n} times")?;
        }
    }

    writeln!(out)?;
    print_evaluation(out, &s.evaluation)?;

    if compare && let [a, b, ..] = s.actions.as_slice() {
        writeln!(out)?;
        print_delta(out, a, b)?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "timing: {} rows in {:.3} s = {:.0} rows/s",
        s.rows_replayed, s.seconds, s.rows_per_second
    )?;
    Ok(())
}

fn print_evaluation(out: &mut impl Write, evals: &[ScorerEval]) -> io::Result<()> {
    writeln!(
        out,
        "evaluation (attempts with a correct password by users with >= 1 verified login; challenge at score >= threshold)"
    )?;
    for e in evals {
        let buckets: Vec<String> = e
            .legit_by_history
            .iter()
            .map(|b| format!("{} {}", b.history, b.legit_logins))
            .collect();
        writeln!(
            out,
            "  {}: {} legitimate logins (history {})",
            e.scorer,
            e.legit_logins,
            buckets.join(", ")
        )?;
    }
    writeln!(
        out,
        "{:<12} {:<11} {:>6} {:>7} {:>6} {:>11} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "label",
        "scorer",
        "n",
        "AUC",
        "target",
        "threshold",
        "blocked",
        "re-auth",
        "1-4",
        "5-12",
        "13-39",
        "40+"
    )?;
    let labels: Vec<&str> = evals
        .first()
        .map(|e| e.labels.iter().map(|l| l.label.as_str()).collect())
        .unwrap_or_default();
    for label in labels {
        for e in evals {
            let Some(l) = e.labels.iter().find(|l| l.label == label) else {
                continue;
            };
            let auc = l.auc.map_or("-".to_string(), |a| format!("{a:.4}"));
            if l.targets.is_empty() {
                writeln!(
                    out,
                    "{label:<12} {:<11} {:>6} {auc:>7}   (no evaluated attempt)",
                    e.scorer, l.attempts
                )?;
            }
            for t in &l.targets {
                let rate =
                    |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{:.2}%", 100.0 * r));
                let b: Vec<String> = t
                    .reauth_by_history
                    .iter()
                    .map(|b| rate(b.reauth_rate))
                    .collect();
                writeln!(
                    out,
                    "{label:<12} {:<11} {:>6} {auc:>7} {:>6} {:>11} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
                    e.scorer,
                    l.attempts,
                    t.target_block_rate,
                    threshold(t.threshold),
                    format!("{:.2}%", 100.0 * t.block_rate),
                    format!("{:.2}%", 100.0 * t.reauth_rate),
                    b[0],
                    b[1],
                    b[2],
                    b[3]
                )?;
            }
        }
    }
    writeln!(
        out,
        "(riskgate thresholds: severity(action) + score — below 1 challenges ALLOWs scoring at least that, 1.x STEP_UPs, 2.x DENYs)"
    )?;
    Ok(())
}

fn print_delta(
    out: &mut impl Write,
    a: &replay::ScorerActions,
    b: &replay::ScorerActions,
) -> io::Result<()> {
    let legit = |x: &replay::ScorerActions| {
        x.by_label
            .get(replay::LEGIT)
            .map(|c| c.password_ok)
            .unwrap_or_default()
    };
    let (la, lb) = (legit(a), legit(b));
    let rate = |t: replay::Tally| {
        if t.total() == 0 {
            0.0
        } else {
            100.0 * t.challenged() as f64 / t.total() as f64
        }
    };
    let mut parts = Vec::new();
    for (label, ca) in &a.by_label {
        if label == replay::LEGIT {
            continue;
        }
        let cb = b
            .by_label
            .get(label)
            .map(|c| c.password_ok)
            .unwrap_or_default();
        let (sa, sb) = (ca.password_ok.challenged(), cb.challenged());
        let diff = sb as i64 - sa as i64;
        let word = if diff >= 0 { "more" } else { "fewer" };
        parts.push(format!(
            "stop {} {word} `{label}` attempts ({sa} → {sb} of {})",
            diff.unsigned_abs(),
            ca.password_ok.total()
        ));
    }
    writeln!(
        out,
        "{} vs {}: {} would challenge {:+.2}% of legitimate logins ({:.2}% → {:.2}%){}{}",
        b.scorer,
        a.scorer,
        b.scorer,
        rate(lb) - rate(la),
        rate(la),
        rate(lb),
        if parts.is_empty() { "" } else { " and " },
        parts.join(", ")
    )?;
    Ok(())
}
