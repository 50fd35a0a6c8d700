//! The I/O around the pure core: an attempt's user agent is parsed and its
//! address looked up, the store is asked under a deadline, then
//! [`core::evaluate`] decides; the engine issues the decision id, counts and
//! logs the decision, and records it. It also applies outcome reports and
//! offers the operations the admin API needs (profile, forget, trust and
//! revoke a device), so nothing outside holds its store or its keys.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::core::features::FeatureSettings;
use crate::core::inputs::{Observation, StoreView};
use crate::core::keys::{Dim, IdHasher, Key, value_hash};
use crate::core::model::Model;
use crate::core::observe::{self, canonical, network_of};
use crate::core::rules::RuleSet;
use crate::core::{self, Inputs, decision_id};
use crate::domain::{Decision, Degraded, Factor, LoginAttempt, Outcome, UnixMillis};
use crate::journal::{DecisionEntry, Journal, JournalError, OutcomeEntry};
use crate::signals::device::UaParser;
use crate::signals::geo::GeoResolver;
use crate::store::{
    DecisionRecord, Forgotten, Mark, OutcomeReport, ReportEffect, Store, StoreError, UserProfile,
};
use crate::telemetry::Metrics;

/// Settings of the engine.
#[derive(Clone, Debug)]
pub struct EngineSettings {
    /// Deadline of one store call on the decision path; past it the store
    /// counts as degraded.
    pub store_timeout: Duration,
    pub features: FeatureSettings,
    /// Distinct user agents kept parsed.
    pub ua_cache: u64,
}

impl EngineSettings {
    /// The default store deadline.
    pub const STORE_TIMEOUT: Duration = Duration::from_millis(50);
    /// The default size of the parsed user-agent cache.
    pub const UA_CACHE: u64 = 10_000;
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            store_timeout: Self::STORE_TIMEOUT,
            features: FeatureSettings::default(),
            ua_cache: Self::UA_CACHE,
        }
    }
}

/// Deadline of one admin store call (forget walks every pending decision of
/// the memory store, so it gets more than the decision path's deadline).
pub const ADMIN_STORE_DEADLINE: Duration = Duration::from_secs(5);

/// Why an admin operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// Why a report was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("`decision_id`: not a decision id issued by this deployment")]
    BadDecisionId,
    #[error("`decision_id`: {0}")]
    Store(StoreError),
}

/// Raw values an admin asks about: does the user's profile know them?
#[derive(Clone, Debug, Default)]
pub struct Candidates {
    pub device_ids: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub user_agents: Vec<String>,
}

/// Whether a user's profile knows one raw value.
#[derive(Clone, Debug, PartialEq)]
pub struct CandidateMatch {
    pub dim: Dim,
    /// The value as the caller gave it (the store holds no raw value).
    pub value: String,
    /// [`value_hash`] of the value's key.
    pub hash: u64,
    pub known: bool,
    pub count: u32,
    pub last_seen_secs: Option<u32>,
    pub trusted: bool,
    pub revoked: bool,
}

/// A user's profile as the admin API shows it.
#[derive(Clone, Debug)]
pub struct ProfileReport {
    pub user: Key,
    pub profile: UserProfile,
    pub candidates: Vec<CandidateMatch>,
}

/// The decision service.
pub struct Engine {
    store: Arc<dyn Store>,
    hasher: IdHasher,
    ua: UaParser,
    rules: ArcSwap<RuleSet>,
    model: ArcSwap<Model>,
    geo: Option<Arc<GeoResolver>>,
    settings: EngineSettings,
    metrics: Arc<Metrics>,
    journal: Option<Arc<Journal>>,
    /// Held while the rules file is written and its rules swapped in (a
    /// console publish) or checked and swapped in (a reload): a reload that
    /// read the file before a publish never installs the older rules.
    rules_file: std::sync::Mutex<()>,
}

impl Engine {
    /// An engine over `store`.
    pub fn new(
        store: Arc<dyn Store>,
        hasher: IdHasher,
        rules: RuleSet,
        model: Model,
        geo: Option<Arc<GeoResolver>>,
        settings: EngineSettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        metrics.set_versions(&rules.version, model.version());
        metrics.rules_loaded(rules.rules.iter().map(|r| (r.name.as_str(), r.shadow)));
        Engine {
            store,
            hasher,
            ua: UaParser::new(settings.ua_cache),
            rules: ArcSwap::from_pointee(rules),
            model: ArcSwap::from_pointee(model),
            geo: geo.filter(|g| !g.is_empty()),
            settings,
            metrics,
            journal: None,
            rules_file: std::sync::Mutex::new(()),
        }
    }

    /// Journals every decision and outcome in `journal`.
    pub fn with_journal(mut self, journal: Arc<Journal>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// The decision journal, when it is on.
    pub fn journal(&self) -> Option<&Arc<Journal>> {
        self.journal.as_ref()
    }

    /// Replaces the user-agent parser (for example with the uap-core one).
    pub fn with_ua_parser(mut self, ua: UaParser) -> Self {
        self.ua = ua;
        self
    }

    /// The GeoIP resolver, when databases are configured.
    pub fn geo(&self) -> Option<&Arc<GeoResolver>> {
        self.geo.as_ref()
    }

    /// The metrics this engine records into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The rule set now serving.
    pub fn rules(&self) -> Arc<RuleSet> {
        self.rules.load_full()
    }

    /// The model now serving.
    pub fn model(&self) -> Arc<Model> {
        self.model.load_full()
    }

    /// Swaps in a new, already validated rule set.
    pub fn swap_rules(&self, rules: RuleSet) {
        self.metrics
            .set_versions(&rules.version, self.model.load().version());
        self.metrics
            .rules_loaded(rules.rules.iter().map(|r| (r.name.as_str(), r.shadow)));
        self.rules.store(Arc::new(rules));
    }

    /// Swaps in rules a reload read from their file, unless `still_current`
    /// says the file changed since (a publish wrote it meanwhile: the next
    /// reload reads it). Returns whether it swapped.
    pub fn swap_reloaded_rules(
        &self,
        rules: RuleSet,
        still_current: impl FnOnce() -> bool,
    ) -> bool {
        let _file = self.rules_file.lock().unwrap_or_else(|e| e.into_inner());
        if !still_current() {
            return false;
        }
        self.swap_rules(rules);
        true
    }

    /// Writes the rules file with `write` and swaps in `rules`, as one step
    /// for [`Engine::swap_reloaded_rules`].
    pub fn publish_rules<E>(
        &self,
        rules: RuleSet,
        write: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        let _file = self.rules_file.lock().unwrap_or_else(|e| e.into_inner());
        write()?;
        self.swap_rules(rules);
        Ok(())
    }

    /// Swaps in a new, already validated model.
    pub fn swap_model(&self, model: Model) {
        self.metrics
            .set_versions(&self.rules.load().version, model.version());
        self.model.store(Arc::new(model));
    }

    /// The name of the store (`memory`, `redis`).
    pub fn store_name(&self) -> &'static str {
        self.store.name()
    }

    /// The keyed hash a user id gets in stores, logs and audit events.
    pub fn user_key(&self, user_id: &str) -> Key {
        self.hasher.key(Dim::User, user_id.as_bytes())
    }

    /// The id a journaled decision was answered with (its uuid, user and
    /// action, signed with the deployment key), so an analyst's label is
    /// reported as ReportOutcome would.
    pub fn decision_id(&self, decision: u128, user: Key, action: crate::domain::Action) -> String {
        decision_id::encode(&self.hasher, decision, user, action)
    }

    /// The keyed hash a device id gets.
    pub fn device_key(&self, device_id: &str) -> Key {
        self.hasher.key(Dim::Device, device_id.as_bytes())
    }

    /// Decides on an attempt. Never fails: a failing store degrades.
    pub async fn evaluate(&self, attempt: LoginAttempt) -> Decision {
        let started = Instant::now();
        // A time-ordered (v7) id from the thread's random generator: no
        // system call per decision (`Uuid::now_v7` asks the OS each time).
        let decision = uuid::Builder::from_unix_timestamp_millis(
            u64::try_from(UnixMillis::now().0).unwrap_or(0),
            &rand::random::<[u8; 10]>(),
        )
        .into_uuid()
        .as_u128();
        let device = self.ua.parse(attempt.user_agent.as_deref());
        let geo = self.geo.as_ref().map(|g| g.lookup(attempt.ip));
        let facts = observe::facts(&self.hasher, &attempt, &device, geo.as_deref());
        let obs = observe::observation(
            &self.hasher,
            decision,
            &attempt,
            facts,
            observe::place(geo.as_deref()),
        );

        let store_started = Instant::now();
        let view = match tokio::time::timeout(self.settings.store_timeout, self.store.observe(&obs))
            .await
        {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(StoreError::Timeout(self.settings.store_timeout)),
        };
        self.metrics
            .observe_store("observe", store_started.elapsed(), view.is_ok());
        let mut degraded = Degraded {
            store: false,
            // Without a GeoIP database every decision is made without geo.
            geo: self.geo.is_none(),
        };
        let view = view.unwrap_or_else(|e| {
            tracing::warn!(store = self.store.name(), error = %e, "store degraded");
            degraded.store = true;
            StoreView::default()
        });

        let rules = self.rules.load();
        let model = self.model.load();
        let evaluated = core::evaluate(
            Inputs {
                attempt: &attempt,
                device,
                geo: geo.as_deref(),
                view: &view,
                degraded,
            },
            &self.settings.features,
            &model,
            &rules,
        );
        let mut d = evaluated.decision;
        d.decision_id = decision_id::encode(&self.hasher, decision, obs.user, d.action);
        for e in &d.rule_errors {
            tracing::warn!(rule.name = %e.rule, rule.error = %e.message, "rule evaluation failed");
            self.metrics.rule_error(&e.rule);
        }
        self.metrics.observe_decision(attempt.channel, &d);
        tracing::trace!(took_us = started.elapsed().as_micros() as u64, "evaluated");
        log_decision(obs.user, &attempt, &d);
        self.record(&obs, attempt.occurred_at, &d);
        if let Some(j) = &self.journal {
            j.decision(DecisionEntry::new(
                decision,
                obs.user,
                attempt.enrolled_factors,
                evaluated.features,
                &d,
            ));
        }
        d
    }

    /// Adds the decision to the user's recent decisions (see
    /// [`Store::record_decision`]: in place, or queued for a background
    /// writer; never a wait on I/O). A refusal is counted and logged only:
    /// the answer stands (on the Redis store the decision then cannot be
    /// reported on).
    fn record(&self, obs: &Observation, at: UnixMillis, d: &Decision) {
        let record = DecisionRecord {
            decision_id: &d.decision_id,
            at,
            action: d.action,
            score: d.score,
            reasons: &d.reasons,
        };
        if let Err(e) = self.store.record_decision(obs, &record) {
            self.metrics.store_failed("record");
            tracing::debug!(error = %e, "recent decision not recorded");
        }
    }

    /// Applies an outcome report.
    pub async fn report(
        &self,
        decision_id: &str,
        outcome: Outcome,
        factor: Option<Factor>,
    ) -> Result<ReportEffect, ReportError> {
        let (decision, user, action) =
            decision_id::decode(&self.hasher, decision_id).ok_or(ReportError::BadDecisionId)?;
        let report = OutcomeReport {
            decision,
            user,
            action,
            outcome,
            factor,
            at: UnixMillis::now(),
        };
        let started = Instant::now();
        let r = match tokio::time::timeout(self.settings.store_timeout, self.store.report(&report))
            .await
        {
            Ok(r) => r,
            Err(_) => Err(StoreError::Timeout(self.settings.store_timeout)),
        };
        self.metrics.observe_store(
            "report",
            started.elapsed(),
            !matches!(r, Err(StoreError::Unavailable(_) | StoreError::Timeout(_))),
        );
        // The journal keeps every outcome the deployment was told of that
        // names one of its decisions, even one the store has let expire; a
        // report refused for an unavailable store is retried by the caller.
        if let (Some(j), Ok(_) | Err(StoreError::UnknownDecision(_))) = (&self.journal, &r) {
            j.outcome(OutcomeEntry {
                decision,
                at: report.at,
                outcome,
                factor,
            });
        }
        let effect = r.map_err(ReportError::Store)?;
        tracing::info!(
            decision.id = decision_id,
            outcome = outcome.as_str(),
            factor = factor.map(Factor::as_str),
            profile.updated = effect.profile_updated,
            "outcome"
        );
        Ok(effect)
    }

    /// A store call of the admin API, under [`ADMIN_STORE_DEADLINE`].
    async fn admin_call<T>(
        &self,
        f: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(ADMIN_STORE_DEADLINE, f)
            .await
            .unwrap_or(Err(StoreError::Timeout(ADMIN_STORE_DEADLINE)))
    }

    /// Everything held about `user_id`, and whether its profile knows each
    /// of `candidates`.
    pub async fn profile(
        &self,
        user_id: &str,
        candidates: &Candidates,
    ) -> Result<ProfileReport, StoreError> {
        let user = self.user_key(user_id);
        let profile = self.admin_call(self.store.profile(user)).await?;
        let mut wanted: Vec<(Dim, String)> = Vec::new();
        for d in &candidates.device_ids {
            wanted.push((Dim::Device, d.clone()));
        }
        for ip in &candidates.ips {
            let ip = canonical(*ip);
            wanted.push((Dim::Ip, ip.to_string()));
            wanted.push((Dim::Network, network_of(ip)));
        }
        for ua in &candidates.user_agents {
            wanted.push((Dim::UserAgent, ua.clone()));
        }
        let candidates = wanted
            .into_iter()
            .map(|(dim, value)| {
                let hash = value_hash(self.hasher.key(dim, value.as_bytes()));
                let seen = profile
                    .values
                    .iter()
                    .find(|v| v.dim == dim && v.hash == hash);
                let is_device = dim == Dim::Device;
                CandidateMatch {
                    dim,
                    value,
                    hash,
                    known: seen.is_some(),
                    count: seen.map_or(0, |v| v.count),
                    last_seen_secs: seen.map(|v| v.last_seen_secs),
                    trusted: is_device && profile.trusted.iter().any(|m| m.device == hash),
                    revoked: is_device && profile.revoked.iter().any(|m| m.device == hash),
                }
            })
            .collect();
        Ok(ProfileReport {
            user,
            profile,
            candidates,
        })
    }

    /// Erases everything the store holds under `user_id`, and the user's
    /// journaled decisions.
    pub async fn forget(&self, user_id: &str) -> Result<Forgotten, AdminError> {
        let user = self.user_key(user_id);
        let mut f = self.admin_call(self.store.forget(user)).await?;
        if let Some(j) = &self.journal {
            f.journal_decisions = u32::try_from(j.forget(user).await?).unwrap_or(u32::MAX);
        }
        Ok(f)
    }

    /// Trusts or revokes `device_id` for `user_id` (see [`Store::mark_device`]);
    /// returns whether the profile knew the device.
    pub async fn mark_device(
        &self,
        user_id: &str,
        device_id: &str,
        mark: Mark,
    ) -> Result<bool, StoreError> {
        let (user, device) = (self.user_key(user_id), self.device_key(device_id));
        self.admin_call(
            self.store
                .mark_device(user, device, mark, UnixMillis::now()),
        )
        .await
    }

    /// Writes what the store and the journal still hold back (graceful
    /// shutdown, last).
    pub async fn flush(&self) {
        self.store.flush().await;
        if let Some(j) = &self.journal {
            j.flush(Duration::from_secs(10)).await;
        }
    }
}

/// The decision's audit line (target `riskgate::engine`, level INFO). After
/// the store it is the dearest step of an Evaluate (formatting included):
/// kept because it is the only per-decision record an operator can search,
/// and switched off with the rest of INFO (`RUST_LOG=warn`) where metrics
/// are enough.
fn log_decision(user: Key, a: &LoginAttempt, d: &Decision) {
    let codes: Vec<&str> = d.reasons.iter().map(|r| r.code.as_str()).collect();
    let shadow: Vec<&str> = d.shadow_reasons.iter().map(|r| r.code.as_str()).collect();
    let degraded: Vec<&str> = d.degraded.names().collect();
    tracing::info!(
        decision.id = %d.decision_id,
        decision.action = d.action.as_str(),
        decision.score = d.score,
        decision.level = d.level.as_str(),
        decision.reasons = %codes.join(","),
        decision.shadow_reasons = %shadow.join(","),
        decision.degraded = %degraded.join(","),
        attempt.channel = a.channel.as_str(),
        attempt.user = ?user,
        attempt.request_id = a.request_id.as_deref().unwrap_or(""),
        policy.version = %d.policy_version,
        "decision"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::{MemoryLimits, MemoryStore};

    fn rules(name: &str) -> RuleSet {
        let text: Vec<String> = crate::core::rules::DEFAULT_RULES_TOML
            .lines()
            .map(|l| {
                if l.starts_with("version = ") {
                    format!("version = \"{name}\"")
                } else {
                    l.to_string()
                }
            })
            .collect();
        let text = text.join("\n");
        RuleSet::parse(&text, name).unwrap()
    }

    /// A reload that read the file before a console publish must not put
    /// the older rules back: it checks the file under the publish's lock.
    #[test]
    fn a_reload_older_than_a_publish_is_not_installed() {
        let engine = Engine::new(
            Arc::new(MemoryStore::new(MemoryLimits::default())),
            IdHasher::random(),
            rules("found"),
            Model::embedded().unwrap(),
            None,
            EngineSettings::default(),
            Arc::new(Metrics::new()),
        );
        let read_before_publish = rules("promoted");
        engine
            .publish_rules(rules("rolled-back"), || Ok::<(), ()>(()))
            .unwrap();
        // The file changed since the reload read it.
        assert!(!engine.swap_reloaded_rules(read_before_publish, || false));
        assert!(engine.rules().version.starts_with("rolled-back"));
        // A reload of the current file is installed.
        assert!(engine.swap_reloaded_rules(rules("edited"), || true));
        assert!(engine.rules().version.starts_with("edited"));
    }
}
