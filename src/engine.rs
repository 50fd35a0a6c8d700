//! The decision pipeline: validate (done by the caller) → signals → features
//! → score → rules → policy → decision, and outcome reports.
//!
//! [`decide`] is the pure core (no I/O, no clock); [`Engine`] wraps it with
//! the store, the parsers, the hot-swappable rules and model, and telemetry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::domain::{Action, Decision, Factor, LoginAttempt, Outcome, Reason, UnixMillis};
use crate::features::{self, DegradedFeatures, FeatureSettings, Features, INPUTS};
use crate::model::Model;
use crate::policy::{self, Context};
use crate::rules::RuleSet;
use crate::signals::geo::GeoResolver;
use crate::signals::{self, device::UaParser};
use crate::store::{IdHasher, Key, OutcomeReport, ReportEffect, Store, StoreError, StoreView};
use crate::telemetry::Metrics;

/// Settings of the engine.
#[derive(Clone, Debug)]
pub struct EngineSettings {
    /// Deadline of one store call; past it the store counts as degraded.
    pub store_timeout: Duration,
    pub features: FeatureSettings,
    /// Distinct user agents kept parsed.
    pub ua_cache: u64,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            store_timeout: Duration::from_millis(50),
            features: FeatureSettings::default(),
            ua_cache: 10_000,
        }
    }
}

/// The result of the pure core.
pub struct CoreResult {
    pub features: Features,
    pub action: Action,
    pub score: f64,
    pub level: crate::domain::RiskLevel,
    pub reasons: Vec<Reason>,
    pub factors: Vec<Factor>,
    /// Rules that failed at run time: (rule, error).
    pub rule_errors: Vec<(String, String)>,
}

/// The pure core: features → model → rules → policy.
pub fn decide(
    features: Features,
    attempt: &LoginAttempt,
    model: &Model,
    rules: &RuleSet,
) -> CoreResult {
    let scored = model.score(&features);
    let ev = rules.evaluate(&features);
    let ctx = Context {
        channel: attempt.channel,
        credential: attempt.credential_result,
        enrolled: attempt.enrolled_factors,
        store_degraded: features.degraded.store,
    };
    let verdict = policy::decide(&rules.policy, scored.score, &ev.hits, &ctx);

    // Rule and guard reasons first (they decide), then the model's.
    let mut reasons = Vec::with_capacity(verdict.reasons.len() + scored.contributions.len());
    let (shadow, acting): (Vec<Reason>, Vec<Reason>) =
        verdict.reasons.into_iter().partition(|r| r.shadow);
    reasons.extend(acting);
    for c in &scored.contributions {
        let input = &INPUTS[c.input];
        reasons.push(Reason::new(
            input.code,
            (input.explain)(&features),
            c.log_odds,
        ));
    }
    reasons.extend(shadow);
    let rule_errors = ev
        .errors
        .iter()
        .map(|(n, e)| (n.to_string(), e.to_string()))
        .collect();
    CoreResult {
        features,
        action: verdict.action,
        score: verdict.score,
        level: verdict.level,
        reasons,
        factors: verdict.factors,
        rule_errors,
    }
}

/// Why a report was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("`decision_id`: not a decision id issued by this deployment")]
    BadDecisionId,
    #[error("`decision_id`: {0}")]
    Store(StoreError),
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
        Engine {
            store,
            hasher,
            ua: UaParser::new(settings.ua_cache),
            rules: ArcSwap::from_pointee(rules),
            model: ArcSwap::from_pointee(model),
            geo: geo.filter(|g| !g.is_empty()),
            settings,
            metrics,
        }
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

    /// Swaps in a new, already validated rule set.
    pub fn swap_rules(&self, rules: RuleSet) {
        self.metrics
            .set_versions(&rules.version, self.model.load().version());
        self.rules.store(Arc::new(rules));
    }

    /// Swaps in a new, already validated model.
    pub fn swap_model(&self, model: Model) {
        self.metrics
            .set_versions(&self.rules.load().version, model.version());
        self.model.store(Arc::new(model));
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
        let facts = signals::facts(&self.hasher, &attempt, &device, geo.as_deref());
        let obs = signals::observation(
            &self.hasher,
            decision,
            &attempt,
            facts,
            signals::place(geo.as_deref()),
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
        let mut degraded = DegradedFeatures {
            store: false,
            // Without a GeoIP database every decision is made without geo.
            geo: self.geo.is_none(),
        };
        let view = view.unwrap_or_else(|e| {
            tracing::warn!(store = self.store.name(), error = %e, "store degraded");
            degraded.store = true;
            StoreView::default()
        });

        let feats = features::build(
            &attempt,
            device,
            &view,
            features::geo_features(
                geo.as_deref(),
                &view,
                attempt.occurred_at,
                &self.settings.features,
            ),
            degraded,
            &self.settings.features,
        );
        let rules = self.rules.load();
        let model = self.model.load();
        let core = decide(feats, &attempt, &model, &rules);

        let mut degraded_signals = Vec::new();
        if degraded.store {
            degraded_signals.push("store".to_string());
        }
        if degraded.geo {
            degraded_signals.push("geo".to_string());
        }
        let decision_id = encode_decision_id(&self.hasher, decision, obs.user, core.action);
        let d = Decision {
            decision_id,
            action: core.action,
            score: core.score,
            level: core.level,
            reasons: core.reasons,
            acceptable_factors: core.factors,
            policy_version: rules.version.clone(),
            model_version: model.version().to_string(),
            degraded_signals,
        };
        for (rule, e) in &core.rule_errors {
            tracing::warn!(rule.name = %rule, rule.error = %e, "rule evaluation failed");
            self.metrics.rule_error(rule);
        }
        self.metrics.observe_decision(&attempt, &d);
        tracing::trace!(took_us = started.elapsed().as_micros() as u64, "evaluated");
        log_decision(obs.user, &attempt, &d);
        self.record(obs.user, decision, attempt.occurred_at, &d);
        d
    }

    /// Adds the decision to the user's recent decisions (see
    /// [`Store::record_decision`]: in place, or queued for a background
    /// writer; never a wait on I/O). A refusal is counted and logged only:
    /// the answer stands.
    fn record(&self, user: Key, decision: u128, at: UnixMillis, d: &Decision) {
        if let Err(e) = self.store.record_decision(user, decision, at, d) {
            self.metrics.store_failed("record");
            tracing::debug!(error = %e, "recent decision not recorded");
        }
    }

    /// The store behind the engine (the admin API reads and erases in it).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The keyed hasher that turns identifiers into store keys.
    pub fn hasher(&self) -> &IdHasher {
        &self.hasher
    }

    /// The deadline of one store call.
    pub fn store_timeout(&self) -> Duration {
        self.settings.store_timeout
    }

    /// Applies an outcome report.
    pub async fn report(
        &self,
        decision_id: &str,
        outcome: Outcome,
        factor: Option<Factor>,
    ) -> Result<ReportEffect, ReportError> {
        let (decision, user, action) =
            decode_decision_id(&self.hasher, decision_id).ok_or(ReportError::BadDecisionId)?;
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
}

/// The decision's audit line (target `riskgate::engine`, level INFO). It is
/// the most expensive step of an Evaluate after the store (about 8 % of the
/// server's CPU in a `riskgate bench` profile, formatting included): kept
/// because it is the only per-decision record an operator can search, and
/// switched off with the rest of INFO (`RUST_LOG=warn`) where metrics are
/// enough.
fn log_decision(user: Key, a: &LoginAttempt, d: &Decision) {
    let codes: Vec<&str> = d
        .reasons
        .iter()
        .filter(|r| !r.shadow)
        .map(|r| r.code.as_str())
        .collect();
    let shadow: Vec<&str> = d
        .reasons
        .iter()
        .filter(|r| r.shadow)
        .map(|r| r.code.as_str())
        .collect();
    tracing::info!(
        decision.id = %d.decision_id,
        decision.action = d.action.as_str(),
        decision.score = d.score,
        decision.level = d.level.as_str(),
        decision.reasons = %codes.join(","),
        decision.shadow_reasons = %shadow.join(","),
        decision.degraded = %d.degraded_signals.join(","),
        attempt.channel = a.channel.as_str(),
        attempt.user = ?user,
        attempt.request_id = a.request_id.as_deref().unwrap_or(""),
        policy.version = %d.policy_version,
        "decision"
    );
}

/// `base64url(uuid ‖ user key ‖ action ‖ tag)`: see [`crate::store::decision_id`].
pub use crate::store::decision_id::{decode as decode_decision_id, encode as encode_decision_id};
