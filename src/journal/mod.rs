//! The decision journal: every Evaluate's decision with the features the
//! rules saw, and every ReportOutcome's outcome linked to it, in a real
//! database — a local SQLite file ([`sqlite`]) or PostgreSQL shared by
//! replicas ([`postgres`]) — behind one trait, [`JournalStore`].
//!
//! Never in the way of a decision: [`Journal::decision`] and
//! [`Journal::outcome`] put a record on a bounded queue and return; a
//! background thread ([`writer`]) batches the queue into one transaction.
//! A full queue drops the record and counts it
//! (`riskgate_journal_dropped_total{reason="queue_full"}`); a database that
//! fails drops the batch, counts it, logs a warning, and is reconnected with
//! backoff. Shutdown flushes what is queued.
//!
//! What is kept (see [`DecisionEntry`]): the decision's uuid, time, channel,
//! the user's keyed hash (the store's [`Key`], never the raw id), the
//! [`Features`] as the rules saw them (derived values such as country, ASN
//! and browser family; no IP, device id or user agent), score, action,
//! level, the acting and shadow reason codes with their weights, rule
//! errors, degraded sources, enrolled and acceptable factors, and the
//! policy and model versions. Outcomes label the decision ([`Label`]).

pub mod codec;
pub mod postgres;
pub mod sqlite;
pub mod writer;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::core::features::Features;
use crate::core::keys::Key;
use crate::domain::{
    Action, Channel, Decision, Degraded, Factor, FactorSet, Outcome, RiskLevel, RuleError,
    UnixMillis,
};

pub use writer::Journal;

/// Where the journal lives: `journal.url` / `--journal` /
/// `RISKGATE_JOURNAL`.
#[derive(Clone, PartialEq, Eq)]
pub enum Target {
    /// No journal.
    Off,
    /// A local SQLite file (created when missing).
    Sqlite(PathBuf),
    /// A PostgreSQL database, shared by replicas (`postgres://…`). Never
    /// printed: the URL may hold a password.
    Postgres(String),
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Off => f.write_str("Off"),
            Target::Sqlite(p) => write!(f, "Sqlite({})", p.display()),
            Target::Postgres(_) => f.write_str("Postgres(<redacted>)"),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Off => f.write_str("off"),
            Target::Sqlite(p) => write!(f, "sqlite {}", p.display()),
            Target::Postgres(url) => {
                // Host and database only: the URL may hold a password.
                let rest = url.split_once('@').map_or(url.as_str(), |(_, r)| r);
                let rest = rest
                    .trim_start_matches("postgres://")
                    .trim_start_matches("postgresql://");
                let rest = rest.split('?').next().unwrap_or("");
                write!(f, "postgresql {rest}")
            }
        }
    }
}

impl Target {
    /// The default journal file of `serve`.
    pub const DEFAULT_FILE: &str = "riskgate-journal.db";

    /// Parses `off`, a `postgres://` / `postgresql://` URL, or a file path.
    pub fn parse(s: &str) -> Result<Target, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err(
                "the journal setting is empty (use a file path, a postgres:// URL or `off`)".into(),
            );
        }
        if s == "off" {
            return Ok(Target::Off);
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            if s.parse::<::postgres::Config>().is_err() {
                // The URL may hold a password: not echoed.
                return Err("not a valid postgres:// URL".into());
            }
            return Ok(Target::Postgres(s.to_string()));
        }
        if s.contains("://") {
            return Err(format!(
                "`{}` is neither a file path nor a postgres:// URL",
                s.split("://").next().unwrap_or("")
            ));
        }
        Ok(Target::Sqlite(PathBuf::from(s)))
    }
}

/// What an outcome says about its decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    /// LOGIN_SUCCEEDED, STEP_UP_PASSED, ANALYST_CONFIRMED_LEGIT.
    Legit,
    /// STEP_UP_FAILED, STEP_UP_ABANDONED.
    Suspicious,
    /// USER_REPORTED_FRAUD, ANALYST_CONFIRMED_FRAUD.
    Fraud,
}

impl Label {
    /// Every label.
    pub const ALL: [Label; 3] = [Label::Legit, Label::Suspicious, Label::Fraud];

    /// The label an outcome gives, and its rank: a decision keeps the label
    /// of its highest-ranked outcome, the latest among equals. An analyst's
    /// word (rank 3) beats a user's fraud report (2), which beats what the
    /// login flow saw (1).
    pub fn of(o: Outcome) -> (Label, u8) {
        match o {
            Outcome::LoginSucceeded | Outcome::StepUpPassed => (Label::Legit, 1),
            Outcome::StepUpFailed | Outcome::StepUpAbandoned => (Label::Suspicious, 1),
            Outcome::UserReportedFraud => (Label::Fraud, 2),
            Outcome::AnalystConfirmedLegit => (Label::Legit, 3),
            Outcome::AnalystConfirmedFraud => (Label::Fraud, 3),
        }
    }

    /// The stored number.
    pub const fn code(self) -> i64 {
        match self {
            Label::Legit => 1,
            Label::Suspicious => 2,
            Label::Fraud => 3,
        }
    }

    /// From the stored number.
    pub fn from_code(n: i64) -> Option<Label> {
        Label::ALL.into_iter().find(|l| l.code() == n)
    }

    /// The name used in reports (`legit`, `suspicious`, `fraud`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Label::Legit => "legit",
            Label::Suspicious => "suspicious",
            Label::Fraud => "fraud",
        }
    }

    /// Parses the name.
    pub fn parse(s: &str) -> Option<Label> {
        Label::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

/// A reason as journaled: its code and weight (sentences are rebuilt from
/// the features and the rule file when shown).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CodeWeight(pub String, pub f64);

/// One journaled decision.
#[derive(Clone, Debug, PartialEq)]
pub struct DecisionEntry {
    /// The decision's uuid (time-ordered; inside its id).
    pub id: u128,
    pub at: UnixMillis,
    /// The user's keyed hash, as in the store.
    pub user: Key,
    pub channel: Channel,
    pub action: Action,
    pub level: RiskLevel,
    pub score: f64,
    pub reasons: Vec<CodeWeight>,
    pub shadow: Vec<CodeWeight>,
    pub rule_errors: Vec<RuleError>,
    pub degraded: Degraded,
    /// The attempt's enrolled factors (empty: unknown).
    pub enrolled: FactorSet,
    pub factors: Vec<Factor>,
    pub policy_version: String,
    pub model_version: String,
    /// The features as the rules saw them.
    pub features: Features,
}

impl DecisionEntry {
    /// The entry of a decision the engine made.
    pub fn new(id: u128, user: Key, enrolled: FactorSet, features: Features, d: &Decision) -> Self {
        let codes = |rs: &[crate::domain::Reason]| {
            rs.iter()
                .map(|r| CodeWeight(r.code.clone(), r.weight))
                .collect()
        };
        DecisionEntry {
            id,
            at: features.at,
            user,
            channel: features.attempt.channel,
            action: d.action,
            level: d.level,
            score: d.score,
            reasons: codes(&d.reasons),
            shadow: codes(&d.shadow_reasons),
            rule_errors: d.rule_errors.clone(),
            degraded: d.degraded,
            enrolled,
            factors: d.acceptable_factors.clone(),
            policy_version: d.policy_version.clone(),
            model_version: d.model_version.clone(),
            features,
        }
    }
}

/// One journaled outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutcomeEntry {
    /// The decision's uuid.
    pub decision: u128,
    pub at: UnixMillis,
    pub outcome: Outcome,
    pub factor: Option<Factor>,
}

/// What the writer appends.
#[derive(Clone, Debug)]
pub enum Entry {
    Decision(Box<DecisionEntry>),
    Outcome(OutcomeEntry),
}

/// A journaled decision as read back, with its label.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub entry: DecisionEntry,
    pub label: Option<Label>,
}

/// A decision row as a backend reads it, before decoding.
pub struct RawRow<'a> {
    pub id: &'a [u8],
    pub at: i64,
    pub user: &'a [u8],
    pub channel: i64,
    pub action: i64,
    pub level: i64,
    pub score: f64,
    pub degraded: i64,
    pub policy_version: String,
    pub model_version: String,
    pub label: Option<i64>,
    pub body: &'a [u8],
}

impl RawRow<'_> {
    /// The record the row holds.
    pub fn record(self) -> Result<Record, JournalError> {
        let id = <[u8; 16]>::try_from(self.id)
            .map(u128::from_be_bytes)
            .map_err(|_| JournalError::Database("a decision id is not 16 bytes".into()))?;
        let corrupt = |problem: String| JournalError::Corrupt { id, problem };
        let user = <[u8; 16]>::try_from(self.user)
            .map(Key)
            .map_err(|_| corrupt("the user key is not 16 bytes".into()))?;
        let body = codec::decode(self.body).map_err(corrupt)?;
        Ok(Record {
            entry: DecisionEntry {
                id,
                at: UnixMillis(self.at),
                user,
                channel: channel_of(self.channel).ok_or_else(|| corrupt("channel".into()))?,
                action: action_of(self.action).ok_or_else(|| corrupt("action".into()))?,
                level: level_of(self.level).ok_or_else(|| corrupt("level".into()))?,
                score: self.score,
                enrolled: body.enrolled_set(),
                reasons: body.reasons,
                shadow: body.shadow,
                rule_errors: body.rule_errors,
                degraded: degraded_of(self.degraded),
                factors: body.factors,
                policy_version: self.policy_version,
                model_version: self.model_version,
                features: body.features,
            },
            label: self.label.and_then(Label::from_code),
        })
    }
}

/// Which decisions to read.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// From this time (inclusive).
    pub from: Option<UnixMillis>,
    /// To this time (exclusive).
    pub to: Option<UnixMillis>,
    pub channel: Option<Channel>,
    pub action: Option<Action>,
    /// An acting or shadow reason code.
    pub reason: Option<String>,
    /// `Some(None)`: unlabelled only.
    pub label: Option<Option<Label>>,
    pub user: Option<Key>,
    pub decision: Option<u128>,
    /// Newest first (the explorer) instead of oldest first.
    pub newest_first: bool,
    /// At most this many decisions.
    pub limit: Option<u64>,
}

impl Filter {
    /// The `ORDER BY … LIMIT …` both backends use.
    pub fn order_sql(&self) -> String {
        let order = if self.newest_first {
            "ORDER BY at_ms DESC, id DESC"
        } else {
            "ORDER BY at_ms, id"
        };
        match self.limit {
            Some(n) => format!("{order} LIMIT {n}"),
            None => order.to_string(),
        }
    }
}

/// One audit record kept in the journal database: a state-changing console
/// action (sign-in, label, publish, rollback), who did it, when, on what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    pub at: UnixMillis,
    pub who: String,
    /// `console.sign_in`, `console.label`, `console.publish`, …
    pub action: String,
    /// What it acted on (a decision, a rule version), or empty.
    pub target: String,
    /// The comment, the label, the reason.
    pub detail: String,
    /// `ok` or why not.
    pub result: String,
}

/// What the console's overview shows of a time window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overview {
    /// (hour start, action, channel, decisions), by hour.
    pub hourly: Vec<(UnixMillis, Action, Channel, u64)>,
    /// (reason code, shadow, decisions that carry it), most frequent first.
    pub reasons: Vec<(String, bool, u64)>,
    /// (label, action, decisions) of the labelled decisions.
    pub labelled: Vec<(Label, Action, u64)>,
}

impl Overview {
    /// Sorts the reason counts, most frequent first.
    pub fn sort(&mut self) {
        self.hourly
            .sort_by_key(|h| (h.0, action_code(h.1), channel_code(h.2)));
        self.reasons.sort_by(|a, b| {
            b.2.cmp(&a.2)
                .then_with(|| a.0.cmp(&b.0))
                .then(a.1.cmp(&b.1))
        });
        self.labelled
            .sort_by_key(|l| (l.0.code(), action_code(l.1)));
    }
}

/// Counts for SREs (`riskgate journal stats`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Stats {
    pub decisions: u64,
    pub outcomes: u64,
    pub oldest: Option<UnixMillis>,
    pub newest: Option<UnixMillis>,
    /// Bytes the database takes (file size, or the tables' size).
    pub bytes: u64,
    /// (UTC day `YYYY-MM-DD`, action, decisions), oldest first.
    pub by_day: Vec<(String, Action, u64)>,
    /// (label or `unlabelled`, decisions).
    pub by_label: Vec<(String, u64)>,
}

/// Why a journal call failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal database: {0}")]
    Database(String),
    #[error("journal record `{id:032x}` cannot be read: {problem}")]
    Corrupt { id: u128, problem: String },
    #[error("the journal is off")]
    Off,
    #[error("the journal writer stopped")]
    Stopped,
    #[error("the journal did not answer within {0:?}")]
    Timeout(Duration),
}

/// One journal database. Every method runs on the caller's thread and
/// blocks: the server calls it from the writer thread or a blocking task.
pub trait JournalStore: Send {
    /// `sqlite` or `postgresql`.
    fn kind(&self) -> &'static str;

    /// Appends decisions and outcomes in one transaction; an outcome also
    /// labels its decision (see [`Label::of`]).
    fn append(&mut self, batch: &[Entry]) -> Result<(), JournalError>;

    /// Deletes decisions (and their outcomes) made before `before`;
    /// returns how many decisions.
    fn prune(&mut self, before: UnixMillis) -> Result<u64, JournalError>;

    /// Deletes every decision of `user` and their outcomes; returns how
    /// many decisions.
    fn forget(&mut self, user: Key) -> Result<u64, JournalError>;

    /// Counts by day, action and label, size, oldest and newest record.
    fn stats(&mut self) -> Result<Stats, JournalError>;

    /// Calls `each` with every decision `filter` selects, oldest first,
    /// until it returns false.
    fn scan(
        &mut self,
        filter: &Filter,
        each: &mut dyn FnMut(Record) -> bool,
    ) -> Result<(), JournalError>;

    /// The outcomes of one decision, oldest first.
    fn outcomes(&mut self, decision: u128) -> Result<Vec<OutcomeEntry>, JournalError>;

    /// Decisions per hour by action and channel, reason counts and labels
    /// of the decisions made at or after `from`.
    fn overview(&mut self, from: UnixMillis) -> Result<Overview, JournalError>;

    /// Keeps an audit record (never pruned by retention).
    fn record_audit(&mut self, r: &AuditRecord) -> Result<(), JournalError>;

    /// The newest `limit` audit records, newest first.
    fn audit_log(&mut self, limit: u64) -> Result<Vec<AuditRecord>, JournalError>;
}

/// Opens (creating the schema when missing) the journal at `target`.
pub fn open(target: &Target) -> Result<Box<dyn JournalStore>, JournalError> {
    match target {
        Target::Off => Err(JournalError::Off),
        Target::Sqlite(path) => Ok(Box::new(sqlite::SqliteJournal::open(path)?)),
        Target::Postgres(url) => Ok(Box::new(postgres::PgJournal::open(url)?)),
    }
}

/// The journal's settings.
#[derive(Clone, Debug)]
pub struct JournalSettings {
    pub target: Target,
    /// Decisions older than this are pruned.
    pub retention: Duration,
    /// Records that may wait for the writer; beyond, they are dropped.
    pub queue: usize,
}

impl JournalSettings {
    /// The default retention.
    pub const RETENTION_DAYS: u64 = 30;
    /// The default queue bound.
    pub const QUEUE: usize = 65_536;
}

/// `YYYY-MM-DD` of a UTC time.
pub fn day_of(at: UnixMillis) -> String {
    let days = at.0.div_euclid(86_400_000);
    let (y, m, d) = crate::domain::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The stored number of an action.
pub const fn action_code(a: Action) -> i64 {
    a.severity() as i64
}

/// The action of a stored number.
pub fn action_of(n: i64) -> Option<Action> {
    Action::ALL.iter().copied().find(|a| action_code(*a) == n)
}

/// The stored number of a channel.
pub fn channel_code(c: Channel) -> i64 {
    Channel::ALL.iter().position(|x| *x == c).unwrap_or(0) as i64
}

/// The channel of a stored number.
pub fn channel_of(n: i64) -> Option<Channel> {
    usize::try_from(n)
        .ok()
        .and_then(|i| Channel::ALL.get(i).copied())
}

/// The stored number of a level.
pub fn level_code(l: RiskLevel) -> i64 {
    RiskLevel::ALL.iter().position(|x| *x == l).unwrap_or(0) as i64
}

/// The level of a stored number.
pub fn level_of(n: i64) -> Option<RiskLevel> {
    usize::try_from(n)
        .ok()
        .and_then(|i| RiskLevel::ALL.get(i).copied())
}

/// The stored number of an outcome.
pub fn outcome_code(o: Outcome) -> i64 {
    Outcome::ALL.iter().position(|x| *x == o).unwrap_or(0) as i64
}

/// The outcome of a stored number.
pub fn outcome_of(n: i64) -> Option<Outcome> {
    usize::try_from(n)
        .ok()
        .and_then(|i| Outcome::ALL.get(i).copied())
}

/// The stored number of a factor (`-1`: none).
pub fn factor_code(f: Option<Factor>) -> i64 {
    f.map_or(-1, |f| {
        Factor::ALL.iter().position(|x| *x == f).unwrap_or(0) as i64
    })
}

/// The factor of a stored number.
pub fn factor_of(n: i64) -> Option<Factor> {
    usize::try_from(n)
        .ok()
        .and_then(|i| Factor::ALL.get(i).copied())
}

/// The stored bits of the degraded sources.
pub fn degraded_code(d: Degraded) -> i64 {
    i64::from(d.store) | (i64::from(d.geo) << 1)
}

/// The degraded sources of stored bits.
pub fn degraded_of(n: i64) -> Degraded {
    Degraded {
        store: n & 1 != 0,
        geo: n & 2 != 0,
    }
}

/// Codes as stored for filtering: `,a,b,` (empty: `,`).
pub fn codes_text(rs: &[CodeWeight]) -> String {
    let mut s = String::from(",");
    for r in rs {
        s.push_str(&r.0);
        s.push(',');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_never_print_a_password() {
        assert_eq!(Target::parse("off").unwrap(), Target::Off);
        assert_eq!(
            Target::parse("/var/lib/riskgate/j.db").unwrap(),
            Target::Sqlite("/var/lib/riskgate/j.db".into())
        );
        let pg = Target::parse("postgres://rg:s3cret@db.internal:5432/riskgate").unwrap();
        assert!(!format!("{pg:?}").contains("s3cret"));
        assert!(!pg.to_string().contains("s3cret"));
        assert_eq!(pg.to_string(), "postgresql db.internal:5432/riskgate");
        assert!(Target::parse("mysql://x").is_err());
        assert!(Target::parse("").is_err());
    }

    #[test]
    fn labels_rank_analysts_over_users_over_the_login_flow() {
        assert_eq!(Label::of(Outcome::LoginSucceeded), (Label::Legit, 1));
        assert_eq!(Label::of(Outcome::StepUpAbandoned), (Label::Suspicious, 1));
        assert!(Label::of(Outcome::UserReportedFraud).1 > Label::of(Outcome::StepUpPassed).1);
        assert!(
            Label::of(Outcome::AnalystConfirmedLegit).1 > Label::of(Outcome::UserReportedFraud).1
        );
        for l in Label::ALL {
            assert_eq!(Label::from_code(l.code()), Some(l));
            assert_eq!(Label::parse(l.as_str()), Some(l));
        }
    }

    #[test]
    fn days_are_utc_calendar_days() {
        assert_eq!(day_of(UnixMillis(0)), "1970-01-01");
        assert_eq!(day_of(UnixMillis(1_772_452_800_000)), "2026-03-02");
        assert_eq!(day_of(UnixMillis(951_782_400_000)), "2000-02-29");
    }
}
