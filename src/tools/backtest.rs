//! Backtest: re-decide journaled decisions with the pure core — the
//! baseline rules and model (what serves) next to a candidate — on the
//! features each decision was made on, and report what would change:
//! actions before → after, per label, per rule, the decisions that change,
//! and the re-authentication rate of verified-legitimate logins.
//!
//! What a backtest cannot know is said in every report ([`CAVEAT`]): the
//! features that depend on earlier decisions (a profile taught by an ALLOW
//! that would now be a STEP_UP, velocity counted from attempts that would
//! now be denied) are replayed as recorded.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

use crate::core::model::Model;
use crate::core::rules::RuleSet;
use crate::core::{self};
use crate::domain::{Action, Decision};
use crate::journal::{Filter, JournalError, JournalStore, Label, Record};

/// Records handed from the reading thread to the deciding one at a time.
const CHUNK: usize = 1024;

/// Said once in every report.
pub const CAVEAT: &str = "features that depend on earlier decisions (a profile taught by an ALLOW that would now be a STEP_UP, velocity counted from attempts that would now be denied) are replayed as recorded";

/// One side of the comparison.
pub struct Side {
    /// Where the rules and model came from ("shipped", a path).
    pub origin: String,
    pub rules: std::sync::Arc<RuleSet>,
    pub model: std::sync::Arc<Model>,
}

/// Counts of actions (replay's tally).
pub type Actions = crate::tools::replay::Tally;

/// Share of `t` challenged (STEP_UP or DENY).
fn challenged(t: &Actions) -> f64 {
    share(t.challenged(), t.total())
}

/// Share of `t` denied.
fn denied(t: &Actions) -> f64 {
    share(t.deny, t.total())
}

fn share(n: u64, d: u64) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

/// One label's actions before and after.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LabelRow {
    pub label: String,
    pub before: Actions,
    pub after: Actions,
}

/// One rule's hits before and after (enforced and shadow together).
#[derive(Clone, Debug, Default, Serialize)]
pub struct RuleRow {
    pub rule: String,
    pub before: u64,
    pub after: u64,
    /// Decisions where the rule fired on one side only.
    pub changed: u64,
    /// Mode in the candidate (`enforce`, `shadow`, or `absent`).
    pub mode: String,
}

/// A decision whose action changes.
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    /// The decision's uuid, hex.
    pub id: String,
    pub at_ms: i64,
    pub channel: String,
    pub label: Option<Label>,
    pub before: Action,
    pub after: Action,
    pub score_before: f64,
    pub score_after: f64,
    pub reasons_before: Vec<String>,
    pub reasons_after: Vec<String>,
}

/// The report.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub journal: String,
    pub baseline: String,
    pub candidate: String,
    pub decisions: u64,
    pub first_at_ms: Option<i64>,
    pub last_at_ms: Option<i64>,
    /// Re-decided with the baseline, the action differs from the recorded
    /// one (the serving rules or model changed since).
    pub baseline_differs_from_recorded: u64,
    /// `matrix[before][after]`, actions ordered ALLOW, STEP_UP, DENY.
    pub matrix: [[u64; 3]; 3],
    pub by_label: Vec<LabelRow>,
    pub rules: Vec<RuleRow>,
    /// Decisions whose action changes.
    pub changed: u64,
    /// The first of them (up to the limit asked for).
    pub changes: Vec<Change>,
    /// Share of verified-legitimate decisions challenged, before and after.
    pub reauth_before: f64,
    pub reauth_after: f64,
    /// Share of fraud-labelled decisions challenged or denied.
    pub fraud_caught_before: f64,
    pub fraud_caught_after: f64,
    pub caveat: &'static str,
    pub seconds: f64,
    pub decisions_per_second: f64,
}

fn idx(a: Action) -> usize {
    usize::from(a.severity())
}

fn codes(d: &Decision) -> Vec<String> {
    d.all_reasons()
        .map(|r| {
            if r.shadow {
                format!("shadow:{}", r.code)
            } else {
                r.code.clone()
            }
        })
        .collect()
}

/// Runs the backtest over the journal decisions `filter` selects.
pub fn run(
    journal: &mut dyn JournalStore,
    journal_name: &str,
    filter: &Filter,
    baseline: &Side,
    candidate: &Side,
    max_changes: usize,
) -> Result<Report, JournalError> {
    let started = Instant::now();
    let mut r = Report {
        journal: journal_name.to_string(),
        baseline: format!(
            "rules {} ({}), model {}",
            baseline.rules.version,
            baseline.origin,
            baseline.model.version()
        ),
        candidate: format!(
            "rules {} ({}), model {}",
            candidate.rules.version,
            candidate.origin,
            candidate.model.version()
        ),
        caveat: CAVEAT,
        ..Report::default()
    };
    let mut labels: BTreeMap<String, LabelRow> = BTreeMap::new();
    let mut rules: BTreeMap<String, RuleRow> = BTreeMap::new();
    for rule in &baseline.rules.rules {
        rules.entry(rule.name.clone()).or_default();
    }
    for rule in &candidate.rules.rules {
        rules.entry(rule.name.clone()).or_default().mode =
            if rule.shadow { "shadow" } else { "enforce" }.into();
    }
    let mut fired_before: Vec<String> = Vec::new();
    let mut fired_after: Vec<String> = Vec::new();
    let mut each = |rec: Record| {
        let e = &rec.entry;
        let f = &e.features;
        let before = core::decide(f, e.enrolled, &baseline.model, &baseline.rules);
        let after = core::decide(f, e.enrolled, &candidate.model, &candidate.rules);
        r.decisions += 1;
        r.first_at_ms.get_or_insert(e.at.0);
        r.last_at_ms = Some(e.at.0);
        if before.action != e.action {
            r.baseline_differs_from_recorded += 1;
        }
        r.matrix[idx(before.action)][idx(after.action)] += 1;
        let label = rec.label.map_or("unlabelled", Label::as_str);
        let row = labels.entry(label.to_string()).or_insert_with(|| LabelRow {
            label: label.to_string(),
            ..LabelRow::default()
        });
        row.before.add(before.action);
        row.after.add(after.action);
        fired_before.clear();
        fired_after.clear();
        fired_before.extend(
            baseline
                .rules
                .evaluate(f)
                .hits
                .iter()
                .map(|h| h.name.to_string()),
        );
        fired_after.extend(
            candidate
                .rules
                .evaluate(f)
                .hits
                .iter()
                .map(|h| h.name.to_string()),
        );
        for name in &fired_before {
            let row = rules.entry(name.clone()).or_default();
            row.before += 1;
            if !fired_after.contains(name) {
                row.changed += 1;
            }
        }
        for name in &fired_after {
            let row = rules.entry(name.clone()).or_default();
            row.after += 1;
            if !fired_before.contains(name) {
                row.changed += 1;
            }
        }
        if before.action != after.action {
            r.changed += 1;
            if r.changes.len() < max_changes {
                r.changes.push(Change {
                    id: format!("{:032x}", e.id),
                    at_ms: e.at.0,
                    channel: e.channel.as_str().into(),
                    label: rec.label,
                    before: before.action,
                    after: after.action,
                    score_before: before.score,
                    score_after: after.score,
                    reasons_before: codes(&before),
                    reasons_after: codes(&after),
                });
            }
        }
        true
    };
    // The database is read and the rows decoded on one thread while this
    // one re-decides them: the two halves cost about the same.
    std::thread::scope(|scope| -> Result<(), JournalError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Record>>(4);
        let reader = scope.spawn(move || {
            let mut chunk = Vec::with_capacity(CHUNK);
            let r = journal.scan(filter, &mut |rec| {
                chunk.push(rec);
                if chunk.len() >= CHUNK {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                    return tx.send(full).is_ok();
                }
                true
            });
            if !chunk.is_empty() {
                let _ = tx.send(chunk);
            }
            r
        });
        for chunk in rx {
            for rec in chunk {
                each(rec);
            }
        }
        reader
            .join()
            .unwrap_or_else(|_| Err(JournalError::Database("the reader thread failed".into())))
    })?;
    for (name, row) in &mut rules {
        row.rule.clone_from(name);
        if row.mode.is_empty() {
            row.mode = "absent".into();
        }
    }
    let legit = labels.get("legit");
    r.reauth_before = legit.map_or(0.0, |l| challenged(&l.before));
    r.reauth_after = legit.map_or(0.0, |l| challenged(&l.after));
    let fraud = labels.get("fraud");
    r.fraud_caught_before = fraud.map_or(0.0, |l| challenged(&l.before));
    r.fraud_caught_after = fraud.map_or(0.0, |l| challenged(&l.after));
    r.by_label = labels.into_values().collect();
    r.rules = rules.into_values().collect();
    r.seconds = started.elapsed().as_secs_f64();
    r.decisions_per_second = if r.seconds > 0.0 {
        r.decisions as f64 / r.seconds
    } else {
        0.0
    };
    Ok(r)
}

fn pct(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

fn when(ms: Option<i64>) -> String {
    ms.map_or("-".into(), |ms| {
        let day = crate::journal::day_of(crate::domain::UnixMillis(ms));
        let s = ms.div_euclid(1000).rem_euclid(86_400);
        format!("{day} {:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    })
}

impl Report {
    /// The report for a terminal.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "backtest  {}  {} → {}  {} decisions",
            self.journal,
            when(self.first_at_ms),
            when(self.last_at_ms),
            self.decisions
        );
        let _ = writeln!(o, "baseline   {}", self.baseline);
        let _ = writeln!(o, "candidate  {}", self.candidate);
        let _ = writeln!(
            o,
            "re-decided with the baseline: {} of {} differ from the recorded action (the serving rules or model changed since)",
            self.baseline_differs_from_recorded, self.decisions
        );
        let _ = writeln!(o, "\nactions, baseline → candidate");
        let _ = writeln!(
            o,
            "{:<10} {:>10} {:>10} {:>10}",
            "", "ALLOW", "STEP_UP", "DENY"
        );
        for (i, name) in ["ALLOW", "STEP_UP", "DENY"].iter().enumerate() {
            let m = &self.matrix[i];
            let _ = writeln!(o, "{name:<10} {:>10} {:>10} {:>10}", m[0], m[1], m[2]);
        }
        let _ = writeln!(
            o,
            "\n{:<12} {:>9}  {:>24}  {:>22}",
            "label", "decisions", "challenged before → after", "denied before → after"
        );
        for l in &self.by_label {
            let _ = writeln!(
                o,
                "{:<12} {:>9}  {:>24}  {:>22}",
                l.label,
                l.before.total(),
                format!(
                    "{} → {}",
                    pct(challenged(&l.before)),
                    pct(challenged(&l.after))
                ),
                format!("{} → {}", pct(denied(&l.before)), pct(denied(&l.after)))
            );
        }
        let _ = writeln!(
            o,
            "\nre-authentication of verified-legit logins: {} → {} ({:+.2} points); fraud challenged or denied: {} → {}",
            pct(self.reauth_before),
            pct(self.reauth_after),
            100.0 * (self.reauth_after - self.reauth_before),
            pct(self.fraud_caught_before),
            pct(self.fraud_caught_after)
        );
        let _ = writeln!(
            o,
            "\n{:<48} {:>8} {:>10} {:>10}",
            "rule (candidate mode)", "hits", "→ hits", "changed"
        );
        for r in &self.rules {
            let _ = writeln!(
                o,
                "{:<48} {:>8} {:>10} {:>10}",
                format!("{} ({})", r.rule, r.mode),
                r.before,
                r.after,
                r.changed
            );
        }
        let _ = writeln!(
            o,
            "\n{} decisions change action{}",
            self.changed,
            if self.changes.is_empty() {
                String::new()
            } else {
                format!(" (the first {}):", self.changes.len())
            }
        );
        for c in &self.changes {
            let _ = writeln!(
                o,
                "  {}  {}  {:<11} {:<10} {} → {}  [{}] → [{}]",
                c.id,
                when(Some(c.at_ms)),
                c.channel,
                c.label.map_or("unlabelled", Label::as_str),
                c.before.as_str().to_ascii_uppercase(),
                c.after.as_str().to_ascii_uppercase(),
                c.reasons_before.join(","),
                c.reasons_after.join(",")
            );
        }
        let _ = writeln!(o, "\nnote: {}.", self.caveat);
        let _ = writeln!(
            o,
            "timing: {:.2} s, {:.0} decisions/s",
            self.seconds, self.decisions_per_second
        );
        o
    }

    /// Challenged share per label before and after, as an SVG bar chart
    /// (the same numbers as the label table).
    pub fn svg(&self, title: &str) -> String {
        let (w, h, left, top, bottom) = (720.0, 360.0, 70.0, 40.0, 60.0);
        let plot_h = h - top - bottom;
        let n = self.by_label.len().max(1) as f64;
        let group = (w - left - 20.0) / n;
        let bar = (group / 3.0).min(60.0);
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">\n<title>{}</title>\n<text x=\"{left}\" y=\"22\" font-size=\"14\">{}</text>\n",
            escape(title),
            escape(title)
        );
        for t in 0..=4 {
            let y = top + plot_h * (1.0 - f64::from(t) / 4.0);
            s.push_str(&format!(
                "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}%</text>\n",
                w - 20.0,
                left - 6.0,
                y + 4.0,
                t * 25
            ));
        }
        for (i, l) in self.by_label.iter().enumerate() {
            let x0 = left + group * i as f64 + (group - 2.0 * bar) / 2.0;
            for (j, (v, color, name)) in [
                (challenged(&l.before), "#8a9bb0", "baseline"),
                (challenged(&l.after), "#d9822b", "candidate"),
            ]
            .into_iter()
            .enumerate()
            {
                let bh = plot_h * v;
                let x = x0 + bar * j as f64;
                s.push_str(&format!(
                    "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{color}\"><title>{} {}: {}</title></rect>\n",
                    top + plot_h - bh,
                    bar - 2.0,
                    escape(&l.label),
                    name,
                    pct(v)
                ));
            }
            s.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{} ({})</text>\n",
                x0 + bar,
                h - bottom + 18.0,
                escape(&l.label),
                l.before.total()
            ));
        }
        s.push_str(&format!(
            "<rect x=\"{left}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"#8a9bb0\"/><text x=\"{:.1}\" y=\"{:.1}\">baseline, challenged</text><rect x=\"{:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"#d9822b\"/><text x=\"{:.1}\" y=\"{:.1}\">candidate, challenged</text>\n</svg>\n",
            h - 24.0,
            left + 16.0,
            h - 14.0,
            left + 180.0,
            h - 24.0,
            left + 196.0,
            h - 14.0
        ));
        s
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
