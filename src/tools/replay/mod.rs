//! Replay: run past logins (the RBA dataset's CSV format) through the same
//! pure core the server uses, and measure detection quality in the published
//! protocol next to the Freeman et al. baseline.
//!
//! Every row goes through what `Engine::evaluate` does, minus the async
//! store call, the clock and telemetry:
//! [`observe::facts`] / [`observe::observation`] → [`MemoryStore::observe_sync`]
//! → [`core::evaluate`], with the row's own `Login Timestamp` as the clock and a fresh in-memory
//! store per rule/model variant ([`MemoryStore::new_local`]: the serving
//! store's state and answers in single-owner maps with the same caps). The outcome report is
//! [`MemoryStore::report_sync`], as `ReportOutcome` would send it.
//!
//! # Choices (how a row becomes an attempt)
//!
//! - **Attempt.** User id, IP and user agent from the row; channel `web`; the
//!   device id and binding from the `Device ID` / `Device Binding` columns
//!   when the file has them (synthetic data does; the public dataset has
//!   none, so there `no_device_id` applies to every row alike); no enrolled
//!   factors given. `Login Successful = False` is
//!   `credential_result = INVALID` (failure velocity counts it, the policy
//!   never allows it); `True` is `VALID`.
//! - **Geo.** From the row's `Country`, `Region`, `City` and `ASN` (`-` and
//!   empty are unknown): a [`GeoInfo`] whose city and ASN sources answered
//!   when the column had a value. The dataset has no coordinates, so there
//!   is no travel signal, unless MaxMind databases are given: then the
//!   resolver's answer for the row's IP adds location and the
//!   anonymous-network flags, and fills columns the row left unknown (the
//!   row's own values win, so the riskgate and Freeman scorers see the same
//!   place). Placeholder IPs (10.0.0.0/8) and ASNs (≥ 500 000) are kept as
//!   identifiers, as the dataset's authors intend, and counted.
//! - **User agent.** Parsed by the same [`UaParser`] as the server (cached);
//!   the dataset's browser/OS/device-type columns are only used by the
//!   Freeman baseline, which the published study computed on them.
//! - **Teaching.** A row teaches when it is a legitimate, verified login:
//!   `Login Successful = True` and no attacker label (see below: not an
//!   account takeover, not from an attack IP, no `Attacker`). It is reported
//!   as the login service would after the user got in: `LOGIN_SUCCEEDED`
//!   for an ALLOW, `STEP_UP_PASSED` (no factor named) for a STEP_UP. A
//!   **DENY on a legitimate login teaches nothing** — the server never
//!   learns from a denied login (see [`crate::store::teaches`]), so replay
//!   does not either; such rows are counted (`legit_denied`) because they are
//!   users locked out, and their next login still looks unfamiliar. Attack
//!   rows never teach (as if their fraud report had removed what they
//!   taught). The Freeman baseline learns every teaching row whatever its
//!   score, as in the published study.
//! - **Time and TTLs.** Velocity windows follow the row timestamps. The
//!   memory store's profile and decision TTLs are wall-clock based, so over a
//!   replay nothing expires by age; only the capacity caps apply.
//!
//! # Evaluation (see [`eval`])
//!
//! Labels: the `Attacker` column when present and not empty; otherwise
//! `ato` for `Is Account Takeover = True`, `attack_ip` for
//! `Is Attack IP = True`; otherwise legitimate. As in the published protocol
//! (whose attackers know the password, and which scores only users with a
//! prior login) the evaluation takes the attempts with a correct password
//! (`Login Successful = True`) of users with at least one prior verified
//! login; the rest are counted, and the per-action tables cover every row.
//!
//! Scores compared: riskgate's rank score `severity(action) + score` (every
//! DENY above every STEP_UP above every ALLOW, then the policy score, so the
//! threshold sweep below 1 is "lower the medium threshold to t" and rule
//! verdicts count) and the raw Freeman score.

pub mod baseline;
pub mod eval;
pub mod plot;
pub mod reader;

use std::collections::{BTreeMap, BinaryHeap};
use std::io;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::core::features::FeatureSettings;
use crate::core::inputs::{DeviceInfo, GeoInfo};
use crate::core::keys::IdHasher;
use crate::core::model::Model;
use crate::core::observe;
use crate::core::rules::RuleSet;
use crate::core::{self, Evaluated, Inputs};
use crate::domain::{
    Action, Channel, CredentialResult, Degraded, DeviceBinding, FactorSet, LoginAttempt, Outcome,
    UnixMillis,
};
use crate::signals::device::UaParser;
use crate::signals::geo::GeoResolver;
use crate::store::OutcomeReport;
use crate::store::fxhash::FxHashMap;
use crate::store::memory::{MemoryLimits, MemoryStore};

use baseline::FreemanHistory;
use eval::{Samples, ScorerEval};
use reader::{RbaReader, ReadError, Row};

/// Decisions kept for reporting in replay's stores.
const PENDING_CAP: u64 = 1024;
/// Parsed user agents remembered in front of the parser's own cache.
const UA_MEMO: usize = 100_000;

/// The name of the legitimate label.
pub const LEGIT: &str = "legit";

/// One rules + model combination to replay.
pub struct Variant {
    /// Short name for reports ("riskgate", "riskgate_b").
    pub name: String,
    /// Where the rules came from (a path, or "shipped").
    pub rules_origin: String,
    pub model_origin: String,
    pub rules: RuleSet,
    pub model: Model,
}

/// How to replay.
pub struct Settings {
    /// riskgate pipelines to run side by side (none: riskgate is not run).
    pub variants: Vec<Variant>,
    /// Run the Freeman baseline.
    pub freeman: bool,
    /// Count and skip bad rows instead of stopping at the first.
    pub skip_bad: bool,
    /// Rows held back to put slightly out-of-order rows back in time order
    /// (0: the file must already be in order).
    pub reorder_window: usize,
    pub limits: MemoryLimits,
    pub features: FeatureSettings,
    pub geo: Option<Arc<GeoResolver>>,
    /// Logins kept per user by the Freeman baseline.
    pub freeman_user_history: usize,
}

/// What happened to one row, for `--scores`.
pub struct RowOutcome<'a> {
    pub row: &'a Row<'a>,
    pub label: &'a str,
    /// Verified logins of the user before this row.
    pub history: u32,
    /// One per variant, in order, with the features it was made on.
    pub decisions: &'a [Evaluated],
    pub freeman: Option<f64>,
}

/// Counts of the dataset's quirks met.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Quirks {
    pub empty_rtt: u64,
    pub unknown_country: u64,
    pub unknown_region: u64,
    pub unknown_city: u64,
    pub no_asn: u64,
    pub placeholder_ip: u64,
    pub placeholder_asn: u64,
    pub no_user_agent: u64,
    pub no_device_type: u64,
}

/// Rows per label.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LabelCounts {
    pub attempts: u64,
    /// Attempts with a correct password.
    pub password_ok: u64,
    /// Of those, by users with no prior verified login (not evaluated).
    pub no_history: u64,
}

/// How many attempts got each action.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub allow: u64,
    pub step_up: u64,
    pub deny: u64,
}

impl Tally {
    /// Counts one action.
    pub fn add(&mut self, a: Action) {
        match a {
            Action::Allow => self.allow += 1,
            Action::StepUp => self.step_up += 1,
            Action::Deny => self.deny += 1,
        }
    }

    /// All attempts counted.
    pub fn total(&self) -> u64 {
        self.allow + self.step_up + self.deny
    }

    /// Attempts challenged or refused (not allowed).
    pub fn challenged(&self) -> u64 {
        self.step_up + self.deny
    }
}

/// Actions taken, by password result.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ActionCounts {
    /// Attempts with a correct password.
    pub password_ok: Tally,
    /// Attempts with a wrong password.
    pub password_wrong: Tally,
}

/// One scorer's decisions.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ScorerActions {
    pub scorer: String,
    /// Where the rules and model came from (riskgate variants), or the
    /// thresholds used (Freeman: Keystone's 0.4 / 0.9).
    pub source: String,
    pub by_label: BTreeMap<String, ActionCounts>,
    /// Legitimate logins that taught the profile.
    pub taught: u64,
    /// Legitimate verified logins that were denied (and so taught nothing).
    pub legit_denied: u64,
    /// Rules that failed at run time, by rule.
    pub rule_errors: BTreeMap<String, u64>,
}

/// The result of a replay.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub rows_read: u64,
    pub rows_replayed: u64,
    pub bad_rows: u64,
    /// The first few bad-row errors.
    pub bad_examples: Vec<String>,
    pub first_at: Option<i64>,
    pub last_at: Option<i64>,
    /// Users with at least one verified login.
    pub users_with_history: u64,
    pub attacker_column: bool,
    pub quirks: Quirks,
    pub labels: BTreeMap<String, LabelCounts>,
    pub actions: Vec<ScorerActions>,
    pub evaluation: Vec<ScorerEval>,
    pub seconds: f64,
    pub rows_per_second: f64,
}

struct RunVariant {
    v: Variant,
    store: MemoryStore,
    actions: ScorerActions,
    /// Per label id.
    by_label: Vec<ActionCounts>,
    samples: Samples,
}

/// The entry for label `i`, created on first use.
fn at<T: Default>(v: &mut Vec<T>, i: usize) -> &mut T {
    if v.len() <= i {
        v.resize_with(i + 1, T::default);
    }
    &mut v[i]
}

fn by_name<T: Clone>(labels: &[String], v: &[T]) -> BTreeMap<String, T> {
    labels.iter().cloned().zip(v.iter().cloned()).collect()
}

/// A replay in progress.
pub struct Replayer {
    settings_features: FeatureSettings,
    skip_bad: bool,
    reorder_window: usize,
    geo: Option<Arc<GeoResolver>>,
    variants: Vec<RunVariant>,
    freeman: Option<(FreemanHistory, ScorerActions, Vec<ActionCounts>, Samples)>,
    /// Per label id.
    label_counts: Vec<LabelCounts>,
    ua: UaParser,
    ua_memo: FxHashMap<Box<str>, Arc<DeviceInfo>>,
    hasher: IdHasher,
    /// Verified logins per user.
    users: FxHashMap<Box<str>, u32>,
    /// Label names; id 0 is legitimate.
    labels: Vec<String>,
    summary: Summary,
    last: Option<(i64, u64)>,
    seq: u128,
    // Reused per row.
    attempt: LoginAttempt,
    geo_info: GeoInfo,
    results: Vec<Evaluated>,
}

#[derive(PartialEq, Eq)]
struct Held {
    at: i64,
    seq: u64,
    record: csv::ByteRecord,
}

impl Ord for Held {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Min-heap on (time, file order).
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

fn set_opt(slot: &mut Option<String>, v: Option<&str>) {
    match (slot.as_mut(), v) {
        (Some(s), Some(v)) => {
            s.clear();
            s.push_str(v);
        }
        (None, Some(v)) => *slot = Some(v.to_string()),
        (_, None) => *slot = None,
    }
}

impl Replayer {
    /// A replayer; `ua` parses user agents for every variant.
    pub fn new(settings: Settings, ua: UaParser) -> Self {
        let variants = settings
            .variants
            .into_iter()
            .map(|v| RunVariant {
                store: MemoryStore::new_local(MemoryLimits {
                    // Every report follows its observation at once: the
                    // decision to report on is always the newest.
                    max_pending: PENDING_CAP.min(settings.limits.max_pending),
                    ..settings.limits.clone()
                }),
                actions: ScorerActions {
                    scorer: v.name.clone(),
                    source: format!(
                        "rules {} ({}), model {} ({})",
                        v.rules_origin,
                        v.rules.version,
                        v.model_origin,
                        v.model.version()
                    ),
                    ..ScorerActions::default()
                },
                by_label: Vec::new(),
                samples: Samples::default(),
                v,
            })
            .collect();
        let freeman = settings.freeman.then(|| {
            (
                FreemanHistory::new(settings.freeman_user_history),
                ScorerActions {
                    scorer: "freeman".into(),
                    source: format!(
                        "Keystone thresholds: step up at {}, deny at {}",
                        baseline::KEYSTONE_REQUEST_THRESHOLD,
                        baseline::KEYSTONE_REJECT_THRESHOLD
                    ),
                    ..ScorerActions::default()
                },
                Vec::new(),
                Samples::default(),
            )
        });
        Replayer {
            settings_features: settings.features,
            skip_bad: settings.skip_bad,
            reorder_window: settings.reorder_window,
            geo: settings.geo.filter(|g| !g.is_empty()),
            variants,
            freeman,
            ua,
            ua_memo: FxHashMap::default(),
            // Keys never leave the process: the fast unkeyed hasher gives
            // the same decisions as HMAC keys without two SHA-256 blocks a key.
            hasher: IdHasher::local(),
            users: FxHashMap::default(),
            labels: vec![LEGIT.to_string()],
            label_counts: Vec::new(),
            summary: Summary::default(),
            last: None,
            seq: 0,
            attempt: LoginAttempt {
                user_id: String::new(),
                channel: Channel::Web,
                ip: std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                device_id: None,
                device_binding: DeviceBinding::None,
                user_agent: None,
                occurred_at: UnixMillis(0),
                credential_result: CredentialResult::Valid,
                attributes: BTreeMap::new(),
                request_id: None,
                enrolled_factors: FactorSet::EMPTY,
            },
            geo_info: GeoInfo::default(),
            results: Vec::new(),
        }
    }

    /// Replays every row of `reader`, calling `sink` once per replayed row,
    /// and returns the summary with the evaluation.
    pub fn run<R: io::Read>(
        mut self,
        mut reader: RbaReader<R>,
        mut sink: impl FnMut(&RowOutcome<'_>) -> io::Result<()>,
    ) -> Result<Summary, ReplayError> {
        let started = Instant::now();
        self.summary.attacker_column = reader.has_attacker_column();
        let mut record = csv::ByteRecord::new();
        let mut held: BinaryHeap<Held> = BinaryHeap::new();
        let mut seq = 0u64;
        while reader.read(&mut record)? {
            self.summary.rows_read += 1;
            seq += 1;
            let row = match reader.parse(&record) {
                Ok(r) => r,
                Err(e) => {
                    self.bad(e)?;
                    continue;
                }
            };
            if self.reorder_window == 0 {
                self.process(&row, &mut sink)?;
                continue;
            }
            held.push(Held {
                at: row.at.0,
                seq,
                record: record.clone(),
            });
            if held.len() > self.reorder_window
                && let Some(h) = held.pop()
            {
                let row = reader.parse(&h.record)?;
                self.process(&row, &mut sink)?;
            }
        }
        while let Some(h) = held.pop() {
            let row = reader.parse(&h.record)?;
            self.process(&row, &mut sink)?;
        }
        Ok(self.finish(started))
    }

    fn bad(&mut self, e: ReadError) -> Result<(), ReplayError> {
        if self.skip_bad && e.is_row_error() {
            self.summary.bad_rows += 1;
            if self.summary.bad_examples.len() < 5 {
                self.summary.bad_examples.push(e.to_string());
            }
            Ok(())
        } else {
            Err(e.into())
        }
    }

    fn label_id(&mut self, row: &Row<'_>) -> usize {
        let name = match row.attacker {
            Some(a) => a,
            None if row.account_takeover => "ato",
            None if row.attack_ip => "attack_ip",
            None => return 0,
        };
        if let Some(i) = self
            .labels
            .iter()
            .position(|l| l.eq_ignore_ascii_case(name))
        {
            return i;
        }
        self.labels.push(name.to_ascii_lowercase());
        self.labels.len() - 1
    }

    fn process(
        &mut self,
        row: &Row<'_>,
        sink: &mut impl FnMut(&RowOutcome<'_>) -> io::Result<()>,
    ) -> Result<(), ReplayError> {
        if let Some((prev, prev_line)) = self.last
            && row.at.0 < prev
        {
            return self.bad(ReadError::OutOfOrder {
                line: row.line,
                at: row.at.0,
                previous: prev,
                previous_line: prev_line,
            });
        }
        self.last = Some((row.at.0, row.line));
        self.count_quirks(row);
        let s = &mut self.summary;
        s.rows_replayed += 1;
        s.first_at.get_or_insert(row.at.0);
        s.last_at = Some(row.at.0);

        let label = self.label_id(row);
        let teach = row.success && label == 0;
        let history = self.users.get(row.user).copied().unwrap_or(0);
        let bucket = eval::bucket(history);
        let evaluated = row.success && bucket.is_some();
        {
            let c = at(&mut self.label_counts, label);
            c.attempts += 1;
            if row.success {
                c.password_ok += 1;
                if bucket.is_none() {
                    c.no_history += 1;
                }
            }
        }

        self.results.clear();
        if !self.variants.is_empty() {
            self.decide(row, teach);
        }
        for (rv, e) in self.variants.iter_mut().zip(&self.results) {
            let d = &e.decision;
            let counts = at(&mut rv.by_label, label);
            let slot = if row.success {
                &mut counts.password_ok
            } else {
                &mut counts.password_wrong
            };
            slot.add(d.action);
            for err in &d.rule_errors {
                *rv.actions.rule_errors.entry(err.rule.clone()).or_default() += 1;
            }
            if let (true, Some(b)) = (evaluated, bucket) {
                let rank = f64::from(d.action.severity()) + d.score;
                rv.samples.push(label, rank, b);
            }
        }

        let freeman = match &mut self.freeman {
            Some((history_db, actions, by_label, samples)) => {
                let ip_text = row.ip_text;
                let values: baseline::Values<'_> = [
                    Some(ip_text),
                    row.asn_text,
                    row.country,
                    row.user_agent,
                    row.browser,
                    row.os,
                    row.device_type,
                ];
                let score = history_db.observe(row.user, &values, teach);
                let counts = at(by_label, label);
                let slot = if row.success {
                    &mut counts.password_ok
                } else {
                    &mut counts.password_wrong
                };
                slot.add(FreemanHistory::keystone_action(score));
                if let (true, Some(b)) = (evaluated, bucket) {
                    samples.push(label, score, b);
                }
                if teach {
                    actions.taught += 1;
                }
                Some(score)
            }
            None => None,
        };

        if teach {
            match self.users.get_mut(row.user) {
                Some(n) => *n = n.saturating_add(1),
                None => {
                    self.users.insert(row.user.into(), 1);
                }
            }
        }
        sink(&RowOutcome {
            row,
            label: &self.labels[label],
            history,
            decisions: &self.results,
            freeman,
        })?;
        Ok(())
    }

    fn count_quirks(&mut self, row: &Row<'_>) {
        let q = &mut self.summary.quirks;
        q.empty_rtt += u64::from(row.rtt_ms.is_none());
        q.unknown_country += u64::from(row.country.is_none());
        q.unknown_region += u64::from(row.region.is_none());
        q.unknown_city += u64::from(row.city.is_none());
        q.no_asn += u64::from(row.asn.is_none());
        q.placeholder_ip += u64::from(row.placeholder_ip());
        q.placeholder_asn += u64::from(row.placeholder_asn());
        q.no_user_agent += u64::from(row.user_agent.is_none());
        q.no_device_type += u64::from(row.device_type.is_none());
    }

    /// The riskgate path for every variant; results land in `self.results`.
    fn decide(&mut self, row: &Row<'_>, teach: bool) {
        let a = &mut self.attempt;
        a.user_id.clear();
        a.user_id.push_str(row.user);
        a.ip = row.ip;
        set_opt(&mut a.user_agent, row.user_agent);
        set_opt(&mut a.device_id, row.device_id);
        a.device_binding = if row.key_verified {
            DeviceBinding::KeyVerified
        } else {
            DeviceBinding::None
        };
        a.occurred_at = row.at;
        a.credential_result = if row.success {
            CredentialResult::Valid
        } else {
            CredentialResult::Invalid
        };

        let g = &mut self.geo_info;
        match &self.geo {
            Some(resolver) => {
                let r = resolver.lookup(row.ip);
                g.clone_from(&r);
                if row.country.is_some() {
                    set_opt(&mut g.country, row.country);
                    g.sources.city = true;
                }
                if row.region.is_some() {
                    set_opt(&mut g.region, row.region);
                }
                if row.city.is_some() {
                    set_opt(&mut g.city, row.city);
                }
                if row.asn.is_some() {
                    g.asn = row.asn;
                    g.sources.asn = true;
                }
            }
            None => {
                set_opt(&mut g.country, row.country);
                set_opt(&mut g.region, row.region);
                set_opt(&mut g.city, row.city);
                g.asn = row.asn;
                g.sources.city = row.country.is_some();
                g.sources.asn = row.asn.is_some();
            }
        }

        let g: &GeoInfo = &self.geo_info;
        let a: &LoginAttempt = &self.attempt;
        // The parser caches too, behind a concurrent cache; this plain map
        // in front of it saves most of a lookup's cost per row.
        let device = match a.user_agent.as_deref() {
            Some(u) if !u.is_empty() => match self.ua_memo.get(u) {
                Some(d) => d.clone(),
                None => {
                    let d = self.ua.parse(Some(u));
                    if self.ua_memo.len() >= UA_MEMO {
                        self.ua_memo.clear();
                    }
                    self.ua_memo.insert(u.into(), d.clone());
                    d
                }
            },
            other => self.ua.parse(other),
        };
        let facts = observe::facts(&self.hasher, a, &device, Some(g));
        self.seq += 1;
        let obs = observe::observation(&self.hasher, self.seq, a, facts, observe::place(Some(g)));
        for rv in &mut self.variants {
            let view = rv.store.observe_sync(&obs);
            let evaluated = core::evaluate(
                Inputs {
                    attempt: a,
                    device: device.clone(),
                    geo: Some(g),
                    view: &view,
                    degraded: Degraded::default(),
                },
                &self.settings_features,
                &rv.v.model,
                &rv.v.rules,
            );
            let action = evaluated.decision.action;
            if teach {
                let outcome = match action {
                    Action::Allow => Some(Outcome::LoginSucceeded),
                    Action::StepUp => Some(Outcome::StepUpPassed),
                    Action::Deny => None,
                };
                match outcome {
                    Some(outcome) => {
                        let effect = rv.store.report_sync(&OutcomeReport {
                            decision: self.seq,
                            user: obs.user,
                            action,
                            outcome,
                            factor: None,
                            at: row.at,
                        });
                        // The decision was inserted just above; only an
                        // eviction under a tiny `max_pending` loses it.
                        if matches!(effect, Ok(e) if e.profile_updated) {
                            rv.actions.taught += 1;
                        }
                    }
                    None => rv.actions.legit_denied += 1,
                }
            }
            self.results.push(evaluated);
        }
    }

    fn finish(mut self, started: Instant) -> Summary {
        let attack_labels: Vec<String> = self.labels[1..].to_vec();
        let mut evaluation = Vec::new();
        let mut actions = Vec::new();
        for rv in &self.variants {
            evaluation.push(eval::evaluate(&rv.v.name, &rv.samples, &attack_labels));
            let mut a = rv.actions.clone();
            a.by_label = by_name(&self.labels, &rv.by_label);
            actions.push(a);
        }
        if let Some((_, a, by_label, samples)) = &self.freeman {
            evaluation.push(eval::evaluate("freeman", samples, &attack_labels));
            let mut a = a.clone();
            a.by_label = by_name(&self.labels, by_label);
            actions.push(a);
        }
        let mut s = std::mem::take(&mut self.summary);
        s.labels = by_name(&self.labels, &self.label_counts);
        s.users_with_history = self.users.len() as u64;
        s.evaluation = evaluation;
        s.actions = actions;
        s.seconds = started.elapsed().as_secs_f64();
        s.rows_per_second = if s.seconds > 0.0 {
            s.rows_replayed as f64 / s.seconds
        } else {
            0.0
        };
        // Freeing millions of profiles and counters takes seconds: let a
        // helper thread do it while the caller prints (inline if no thread).
        if let Err(e) = std::thread::Builder::new()
            .name("replay-drop".into())
            .spawn(move || drop(self))
        {
            drop(e);
        }
        s
    }
}

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("cannot write the scores: {0}")]
    Sink(#[from] io::Error),
}
