//! The embedded store: everything in this process, bounded and expiring.
//! The default, so `riskgate serve` needs nothing else installed; state is
//! lost on restart and not shared between replicas (use Redis for that).
//!
//! Every map is a [`BoundedMap`]: values inline under a sharded lock, CLOCK
//! eviction at capacity, idle or live expiry. Values are kept small because
//! a busy deployment holds millions of them (the budget is measured by
//! `cargo bench --bench memory`; see ARCHITECTURE.md):
//!
//! - a profile keeps every dimension's values in one vector of 16-byte
//!   entries, and its last login place in `f32`s;
//! - a velocity counter allocates its rings only once it counts something
//!   (most keys never see a failure) and holds its first distinct user
//!   inline;
//! - a pending decision keeps the facts as 8-byte short keys and, once the
//!   engine has answered, the decision itself (action, score, reason codes
//!   as interned numbers, the id's 8-byte tag): the user's recent decisions
//!   are read from the pending ones, not kept a second time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};

use crate::core::decision_id;
use crate::core::inputs::{Observation, StoreView, VelocityView, Windows};
use crate::core::keys::{Dim, Key, PROFILE_DIMS, counted_globally};
use crate::domain::{Action, Factor, UnixMillis};

use super::bounded::{BoundedMap, Expiry};
use super::profile::{Place, Profile, short_nonzero, tagged};
use super::window::{DistinctSet, LONGEST_MS, SlidingCounter};
use super::{
    DecisionRecord, Forgotten, Mark, OutcomeReport, RecentDecision, ReportEffect, Store,
    StoreError, UserProfile, newest_recent, teaches,
};

/// Limits of the memory store.
#[derive(Clone, Debug)]
pub struct MemoryLimits {
    /// Most user profiles kept (least recently used evicted first).
    pub max_profiles: u64,
    /// A profile unused for this long is dropped.
    pub profile_ttl: Duration,
    /// Most velocity counters kept.
    pub max_counters: u64,
    /// Most pending decisions kept for ReportOutcome.
    pub max_pending: u64,
    /// How long a decision can be reported on.
    pub decision_ttl: Duration,
    /// Most distinct values remembered per user and dimension.
    pub history_per_dim: usize,
}

impl Default for MemoryLimits {
    fn default() -> Self {
        MemoryLimits {
            max_profiles: 1_000_000,
            profile_ttl: super::defaults::PROFILE_TTL,
            max_counters: 1_000_000,
            max_pending: 1_000_000,
            decision_ttl: super::defaults::DECISION_TTL,
            history_per_dim: super::defaults::HISTORY_PER_DIM,
        }
    }
}

/// Reason codes kept per recorded decision; more are cut (acting reasons
/// come rule and guard hits first, then the model's largest contributions).
const RECORDED_REASONS: usize = 8;

/// A decision that can still be reported on, and (once answered) the
/// decision itself for the admin API's recent decisions. 168 bytes.
#[derive(Debug, Clone, Copy)]
struct Pending {
    user: Key,
    /// Short keys of the facts (0 = absent), not 17-byte `Option<Key>`s.
    facts: [u64; PROFILE_DIMS.len()],
    at: i64,
    place: Place,
    /// Whether this decision taught the profile (and so can be untaught).
    taught: bool,
    /// The answer, once recorded: severity of the action (`NOT_RECORDED`
    /// before), score, reason codes (interned; 0 = none), the id's tag.
    action: u8,
    score: f32,
    reasons: [u16; RECORDED_REASONS],
    tag: [u8; 8],
}

const NOT_RECORDED: u8 = u8::MAX;

impl Pending {
    /// (slot, short key) of each fact present.
    fn facts(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.facts
            .iter()
            .enumerate()
            .filter(|(_, k)| **k != 0)
            .map(|(i, k)| (i, *k))
    }

    fn recorded(&self, decision: u128, codes: &Interner) -> Option<RecentDecision> {
        let action = match self.action {
            0 => Action::Allow,
            1 => Action::StepUp,
            2 => Action::Deny,
            _ => return None,
        };
        Some(RecentDecision {
            decision_id: decision_id::from_parts(decision, self.user, action, self.tag),
            at: UnixMillis(self.at),
            action,
            score: f64::from(self.score),
            reasons: self
                .reasons
                .iter()
                .take_while(|c| **c != 0)
                .filter_map(|c| codes.name(*c))
                .collect(),
        })
    }
}

/// Reason codes as small numbers (the set is bounded: model inputs, guards
/// and rule names). At most `MAX` codes are ever interned; past that a
/// recorded decision keeps only the codes already known.
#[derive(Default)]
struct Interner {
    inner: RwLock<Codes>,
}

/// Code → number, and number − 1 → code.
type Codes = (HashMap<Box<str>, u16>, Vec<Box<str>>);

impl Interner {
    const MAX: usize = 4096;

    fn id(&self, code: &str) -> Option<u16> {
        if let Some(id) = self.inner.read().0.get(code) {
            return Some(*id);
        }
        let mut w = self.inner.write();
        let (map, names) = &mut *w;
        if let Some(id) = map.get(code) {
            return Some(*id);
        }
        if names.len() >= Self::MAX {
            return None;
        }
        names.push(code.into());
        let id = u16::try_from(names.len()).ok()?;
        map.insert(code.into(), id);
        Some(id)
    }

    fn name(&self, id: u16) -> Option<String> {
        let i = usize::from(id).checked_sub(1)?;
        self.inner.read().1.get(i).map(|s| s.to_string())
    }
}

/// Velocity state of one scope key. Rings are allocated on first use: most
/// keys never see a failure, and only IP and global scopes count attempts.
#[derive(Debug, Default)]
struct Counter {
    failures: Option<Box<SlidingCounter<u16>>>,
    attempts: Option<Box<SlidingCounter<u16>>>,
    users: DistinctSet,
}

impl Counter {
    fn add(&mut self, at: UnixMillis, failed: bool, attempts: bool) {
        if attempts {
            self.attempts.get_or_insert_default().add(at);
        }
        if failed {
            self.failures.get_or_insert_default().add(at);
        }
    }

    fn windows(&self, at: UnixMillis) -> VelocityWindows {
        let w = |r: &Option<Box<SlidingCounter<u16>>>| {
            r.as_ref().map(|r| r.windows(at)).unwrap_or_default()
        };
        VelocityWindows {
            failures: w(&self.failures),
            attempts: w(&self.attempts),
        }
    }
}

/// Velocity scopes in the counter map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Scope {
    User = 1,
    Ip = 2,
    Network = 3,
    Device = 4,
}

impl Scope {
    /// Whether attempts (not only failures) are counted: features read
    /// attempts per IP (and deployment-wide) only.
    fn counts_attempts(self) -> bool {
        matches!(self, Scope::Ip)
    }

    /// The counter map's key: the scope in the top 3 bits of the short key.
    fn key(self, short: u64) -> u64 {
        (short & (u64::MAX >> 3)) | ((self as u64) << 61)
    }
}

/// The deployment-wide rings.
#[derive(Default)]
struct Global {
    attempts: SlidingCounter<u32>,
    failures: SlidingCounter<u32>,
}

/// The in-process store.
pub struct MemoryStore {
    limits: MemoryLimits,
    epoch: Instant,
    profiles: BoundedMap<Key, Profile>,
    counters: BoundedMap<u64, Counter>,
    pending: BoundedMap<u128, Pending>,
    global_seen: BoundedMap<u64, u32>,
    global: Mutex<Global>,
    global_distinct: [AtomicU32; PROFILE_DIMS.len()],
    global_logins: AtomicU32,
    global_users: AtomicU32,
    codes: Interner,
}

impl MemoryStore {
    /// A store with these limits, for concurrent use (the server).
    pub fn new(limits: MemoryLimits) -> Self {
        let window = Duration::from_millis(LONGEST_MS.unsigned_abs() + 3_600_000);
        MemoryStore {
            profiles: BoundedMap::new(limits.max_profiles, Expiry::idle(limits.profile_ttl)),
            counters: BoundedMap::new(limits.max_counters, Expiry::idle(window)),
            pending: BoundedMap::new(limits.max_pending, Expiry::live(limits.decision_ttl)),
            global_seen: BoundedMap::new(limits.max_counters, Expiry::idle(limits.profile_ttl)),
            ..Self::base(limits)
        }
    }

    /// A store for one thread driving it (replay): the same state and the
    /// same answers as [`MemoryStore::new`], one shard per map and no
    /// wall-clock expiry (a replay's clock is its rows'). Capacities are
    /// enforced the same way.
    pub fn new_local(limits: MemoryLimits) -> Self {
        Self::base(limits)
    }

    fn base(limits: MemoryLimits) -> Self {
        MemoryStore {
            epoch: Instant::now(),
            profiles: BoundedMap::single(limits.max_profiles, Expiry::Never),
            counters: BoundedMap::single(limits.max_counters, Expiry::Never),
            pending: BoundedMap::single(limits.max_pending, Expiry::Never),
            global_seen: BoundedMap::single(limits.max_counters, Expiry::Never),
            global: Mutex::new(Global::default()),
            global_distinct: std::array::from_fn(|_| AtomicU32::new(0)),
            global_logins: AtomicU32::new(0),
            global_users: AtomicU32::new(0),
            codes: Interner::default(),
            limits,
        }
    }

    /// The maps' clock: whole seconds since the store was made.
    fn now(&self) -> u32 {
        u32::try_from(self.epoch.elapsed().as_secs()).unwrap_or(u32::MAX)
    }

    /// Counts a failure (and, for the IP scope, an attempt). A success in a
    /// scope that counts only failures creates nothing.
    fn count(
        &self,
        scope: Scope,
        key: u64,
        at: UnixMillis,
        failed: bool,
        now: u32,
    ) -> VelocityWindows {
        let attempts = scope.counts_attempts();
        let key = scope.key(key);
        if !failed && !attempts {
            return self
                .counters
                .with(&key, now, |c| c.windows(at))
                .unwrap_or_default();
        }
        self.counters.upsert(key, now, Counter::default, |c| {
            c.add(at, failed, attempts);
            c.windows(at)
        })
    }

    /// Counts like [`MemoryStore::count`] and adds `user` to the scope's
    /// distinct users; returns the windows and the distinct users within
    /// `window_ms` and within an hour.
    fn count_with_user(
        &self,
        (scope, key): (Scope, u64),
        user: u64,
        obs: &Observation,
        window_ms: i64,
        now: u32,
    ) -> (VelocityWindows, u32, u32) {
        let (at, failed) = (obs.at, obs.failed);
        self.counters
            .upsert(scope.key(key), now, Counter::default, |c| {
                c.add(at, failed, scope.counts_attempts());
                let users = c.users.add_and_count(user, at, window_ms);
                let users_1h = c.users.count_within(at, HOUR_MS);
                (c.windows(at), users, users_1h)
            })
    }

    /// Profiles currently held (for tests and memory measurements).
    pub fn profile_count(&self) -> u64 {
        self.profiles.len() as u64
    }

    /// The user's recorded decisions among the pending ones, newest first.
    fn recent(&self, user: Key, now: u32) -> Vec<RecentDecision> {
        let mut found: Vec<(i64, u128, RecentDecision)> = Vec::new();
        self.pending.for_each(now, |d, p| {
            if p.user == user
                && let Some(r) = p.recorded(*d, &self.codes)
            {
                found.push((p.at, *d, r));
            }
        });
        newest_recent(found)
    }
}

#[derive(Default)]
struct VelocityWindows {
    failures: Windows,
    attempts: Windows,
}

const HOUR_MS: i64 = 3_600_000;

/// Decrements without going below zero; returns the previous value.
fn decrement(c: &AtomicU32) -> u32 {
    match c.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
        Some(v.saturating_sub(1))
    }) {
        Ok(v) | Err(v) => v,
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn observe(&self, obs: &Observation) -> Result<StoreView, StoreError> {
        Ok(self.observe_sync(obs))
    }

    async fn report(&self, report: &OutcomeReport) -> Result<ReportEffect, StoreError> {
        self.report_sync(report)
    }

    fn name(&self) -> &'static str {
        "memory"
    }

    async fn profile(&self, user: Key) -> Result<UserProfile, StoreError> {
        let now = self.now();
        let mut p = self
            .profiles
            .with(&user, now, |p| p.export())
            .unwrap_or_default();
        p.recent = self.recent(user, now);
        Ok(p)
    }

    async fn forget(&self, user: Key) -> Result<Forgotten, StoreError> {
        let now = self.now();
        let mut f = Forgotten::default();
        if let Some(p) = self.profiles.remove(&user, now) {
            p.count_forgotten(&mut f);
        }
        if self
            .counters
            .remove(&Scope::User.key(user.short()), now)
            .is_some()
        {
            f.failure_counters = 1;
        }
        // No per-user index in memory: one pass over the pending decisions.
        self.pending.retain(now, |_, p| {
            if p.user != user {
                return true;
            }
            f.pending_decisions = f.pending_decisions.saturating_add(1);
            if p.action != NOT_RECORDED {
                f.recent_decisions = f.recent_decisions.saturating_add(1);
            }
            false
        });
        Ok(f)
    }

    async fn mark_device(
        &self,
        user: Key,
        device: Key,
        mark: Mark,
        at: UnixMillis,
    ) -> Result<bool, StoreError> {
        let d = short_nonzero(device);
        let cap = self.limits.history_per_dim;
        Ok(self
            .profiles
            .upsert(user, self.now(), Profile::default, |p| {
                p.mark(d, mark, at, cap)
            }))
    }

    fn record_decision(
        &self,
        obs: &Observation,
        answer: &DecisionRecord<'_>,
    ) -> Result<(), StoreError> {
        let (user, decision) = (obs.user, obs.decision);
        let tag = decision_id::tag_of(answer.decision_id)
            .ok_or_else(|| StoreError::Unavailable("record: not a decision id".to_string()))?;
        let mut reasons = [0u16; RECORDED_REASONS];
        let codes = answer.reasons.iter().filter_map(|r| self.codes.id(&r.code));
        for (slot, code) in reasons.iter_mut().zip(codes) {
            *slot = code;
        }
        // Scores are in [0, 1]; f32 is the recorded precision.
        let score = answer.score as f32;
        // A decision evicted or expired before its answer was recorded has
        // nothing to attach to: the record goes with it.
        self.pending.with(&decision, self.now(), |p| {
            if p.user == user {
                p.action = answer.action.severity();
                p.score = score;
                p.reasons = reasons;
                p.tag = tag;
            }
        });
        Ok(())
    }
}

impl MemoryStore {
    /// [`Store::observe`] without the async wrapper (replay uses it).
    pub fn observe_sync(&self, obs: &Observation) -> StoreView {
        let now = self.now();
        let at = obs.at;
        let user = obs.user.short();
        let hour = at.hour_of_week();

        let mut velocity = VelocityView::default();
        let u = self.count(Scope::User, user, at, obs.failed, now);
        velocity.user_failures = u.failures;
        if let Some(ip) = obs.facts.get(Dim::Ip) {
            let (w, users, _) =
                self.count_with_user((Scope::Ip, ip.short()), user, obs, HOUR_MS, now);
            velocity.ip_failures = w.failures;
            velocity.ip_attempts = w.attempts;
            velocity.ip_distinct_users_1h = users;
        }
        if let Some(net) = obs.facts.get(Dim::Network) {
            let w = self.count(Scope::Network, net.short(), at, obs.failed, now);
            velocity.network_failures = w.failures;
        }
        if let Some(dev) = obs.facts.get(Dim::Device) {
            let (w, users, users_1h) =
                self.count_with_user((Scope::Device, dev.short()), user, obs, 24 * HOUR_MS, now);
            velocity.device_failures = w.failures;
            velocity.device_distinct_users_24h = users;
            velocity.device_distinct_users_1h = users_1h;
        }
        {
            let mut g = self.global.lock();
            g.attempts.add(at);
            if obs.failed {
                g.failures.add(at);
            }
            velocity.global_attempts = g.attempts.windows(at);
            velocity.global_failures = g.failures.windows(at);
        }

        let mut profile = self
            .profiles
            .with(&obs.user, now, |p| p.view(&obs.facts, hour))
            .unwrap_or_default();
        for (i, k) in obs.facts.0.iter().enumerate() {
            if !counted_globally(i) {
                continue;
            }
            if let Some(k) = k {
                profile.global_seen[i] = self
                    .global_seen
                    .with(&tagged(i, short_nonzero(*k)), now, |c| *c)
                    .unwrap_or(0);
            }
        }
        for (i, d) in self.global_distinct.iter().enumerate() {
            profile.global_distinct[i] = d.load(Ordering::Relaxed);
        }
        profile.global_logins = self.global_logins.load(Ordering::Relaxed);
        profile.global_users = self.global_users.load(Ordering::Relaxed);

        self.pending.insert(
            obs.decision,
            Pending {
                user: obs.user,
                facts: std::array::from_fn(|slot| obs.taught_fact(slot).map_or(0, short_nonzero)),
                at: at.0,
                place: Place::of(obs.place),
                taught: false,
                action: NOT_RECORDED,
                score: 0.0,
                reasons: [0; RECORDED_REASONS],
                tag: [0; 8],
            },
            now,
        );
        StoreView { profile, velocity }
    }

    /// [`Store::report`] without the async wrapper.
    pub fn report_sync(&self, report: &OutcomeReport) -> Result<ReportEffect, StoreError> {
        let now = self.now();
        // The pending decision stays locked while the report applies, so two
        // reports of one decision cannot both teach.
        self.pending
            .with(&report.decision, now, |p| self.apply(p, report, now))
            .ok_or_else(|| StoreError::UnknownDecision(format!("{:032x}", report.decision)))
    }

    fn apply(&self, p: &mut Pending, report: &OutcomeReport, now: u32) -> ReportEffect {
        let mut effect = ReportEffect::default();
        if report.outcome == crate::domain::Outcome::StepUpFailed {
            self.count(Scope::User, p.user.short(), report.at, true, now);
        }
        let cap = self.limits.history_per_dim;
        if teaches(report.action, report.outcome) && !p.taught {
            let strong = matches!(report.factor, Some(Factor::Webauthn | Factor::Totp))
                && report.outcome == crate::domain::Outcome::StepUpPassed;
            self.profiles
                .upsert(p.user, now, Profile::default, |profile| {
                    if profile.verified == 0 {
                        self.global_users.fetch_add(1, Ordering::Relaxed);
                    }
                    profile.learn(&p.facts, p.at, p.place, cap);
                    if strong {
                        profile.last_strong_auth = report.at.0.max(p.at);
                    }
                });
            for (i, short) in p.facts().filter(|(i, _)| counted_globally(*i)) {
                let before = self.global_seen.upsert(
                    tagged(i, short),
                    now,
                    || 0,
                    |c| {
                        let before = *c;
                        *c = c.saturating_add(1);
                        before
                    },
                );
                if before == 0 {
                    self.global_distinct[i].fetch_add(1, Ordering::Relaxed);
                }
            }
            self.global_logins.fetch_add(1, Ordering::Relaxed);
            p.taught = true;
            effect.profile_updated = true;
        } else if report.outcome.is_fraud() && p.taught {
            self.profiles
                .with(&p.user, now, |profile| profile.unlearn(&p.facts, p.at));
            for (i, short) in p.facts().filter(|(i, _)| counted_globally(*i)) {
                let was = self.global_seen.with(&tagged(i, short), now, |c| {
                    let before = *c;
                    *c = c.saturating_sub(1);
                    before
                });
                if was == Some(1) {
                    decrement(&self.global_distinct[i]);
                }
            }
            decrement(&self.global_logins);
            p.taught = false;
            effect.profile_updated = true;
        }
        effect
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::inputs::Facts;
    use crate::core::keys::IdHasher;
    use crate::domain::{Action, Outcome};

    const T0: i64 = 1_700_000_000_000;

    fn obs(
        h: &IdHasher,
        decision: u128,
        user: &str,
        device: &str,
        ip: &str,
        at: i64,
        failed: bool,
    ) -> Observation {
        let mut facts = Facts::default();
        facts.set(Dim::Device, Some(h.key(Dim::Device, device.as_bytes())));
        facts.set(Dim::Ip, Some(h.key(Dim::Ip, ip.as_bytes())));
        facts.set(Dim::Network, Some(h.key(Dim::Network, ip.as_bytes())));
        Observation {
            decision,
            at: UnixMillis(at),
            user: h.key(Dim::User, user.as_bytes()),
            facts,
            place: None,
            failed,
            bound: false,
        }
    }

    fn report(decision: u128, action: Action, outcome: Outcome, at: i64) -> OutcomeReport {
        OutcomeReport {
            decision,
            user: Key([0; 16]),
            action,
            outcome,
            factor: None,
            at: UnixMillis(at),
        }
    }

    #[test]
    fn verified_success_teaches_and_fraud_unteaches() {
        let h = IdHasher::random();
        let s = MemoryStore::new(MemoryLimits::default());
        let v = s.observe_sync(&obs(&h, 1, "alice", "d1", "1.2.3.4", T0, false));
        assert_eq!(v.profile.seen(Dim::Device), 0);
        let e = s
            .report_sync(&report(1, Action::Allow, Outcome::LoginSucceeded, T0 + 1))
            .unwrap();
        assert!(e.profile_updated);
        // Reporting twice teaches once.
        let e = s
            .report_sync(&report(1, Action::Allow, Outcome::LoginSucceeded, T0 + 2))
            .unwrap();
        assert!(!e.profile_updated);
        let v = s.observe_sync(&obs(&h, 2, "alice", "d1", "1.2.3.4", T0 + 10, false));
        assert_eq!(v.profile.seen(Dim::Device), 1);
        assert_eq!(v.profile.verified_logins, 1);
        // Counted deployment-wide: the IP, not the device (GLOBAL_DIMS).
        assert_eq!(v.profile.global_seen(Dim::Ip), 1);
        assert_eq!(v.profile.global_seen(Dim::Device), 0);

        let e = s
            .report_sync(&report(
                1,
                Action::Allow,
                Outcome::AnalystConfirmedFraud,
                T0 + 20,
            ))
            .unwrap();
        assert!(e.profile_updated);
        let v = s.observe_sync(&obs(&h, 3, "alice", "d1", "1.2.3.4", T0 + 30, false));
        assert_eq!(v.profile.seen(Dim::Device), 0);
        assert_eq!(v.profile.verified_logins, 0);
        assert_eq!(v.profile.last_login, None);
    }

    #[test]
    fn unverified_outcomes_never_teach() {
        let h = IdHasher::random();
        let s = MemoryStore::new(MemoryLimits::default());
        s.observe_sync(&obs(&h, 1, "bob", "d1", "1.2.3.4", T0, false));
        for (action, outcome) in [
            (Action::Deny, Outcome::LoginSucceeded),
            (Action::StepUp, Outcome::LoginSucceeded),
            (Action::StepUp, Outcome::StepUpFailed),
            (Action::StepUp, Outcome::StepUpAbandoned),
            (Action::Allow, Outcome::UserReportedFraud),
        ] {
            let e = s.report_sync(&report(1, action, outcome, T0 + 1)).unwrap();
            assert!(!e.profile_updated, "{action:?} {outcome:?}");
        }
        let v = s.observe_sync(&obs(&h, 2, "bob", "d1", "1.2.3.4", T0 + 10, false));
        assert_eq!(v.profile.verified_logins, 0);
    }

    #[test]
    fn unknown_decision_is_an_error() {
        let s = MemoryStore::new(MemoryLimits::default());
        let r = s.report_sync(&report(99, Action::Allow, Outcome::LoginSucceeded, T0));
        assert!(matches!(r, Err(StoreError::UnknownDecision(_))));
    }

    #[test]
    fn failures_count_per_ip_and_distinct_users() {
        let h = IdHasher::random();
        let s = MemoryStore::new(MemoryLimits::default());
        let mut last = StoreView::default();
        for i in 0..20u128 {
            let user = format!("user{i}");
            last = s.observe_sync(&obs(
                &h,
                i,
                &user,
                "x",
                "9.9.9.9",
                T0 + i as i64 * 1000,
                true,
            ));
        }
        assert_eq!(last.velocity.ip_failures.m1, 20);
        assert_eq!(last.velocity.ip_distinct_users_1h, 20);
        assert_eq!(last.velocity.user_failures.h1, 1);
        assert_eq!(last.velocity.global_failures.h1, 20);
        assert_eq!(last.velocity.device_distinct_users_1h, 20);
        assert_eq!(last.velocity.device_distinct_users_24h, 20);
    }

    #[test]
    fn the_hour_of_week_histogram_counts_verified_logins() {
        let h = IdHasher::random();
        let s = MemoryStore::new(MemoryLimits::default());
        const WEEK: i64 = 7 * 24 * 3_600_000;
        // Twelve verified logins, each a week apart at the same hour.
        for i in 0..12u128 {
            let at = T0 + i as i64 * WEEK;
            s.observe_sync(&obs(&h, i, "hana", "d", "1.1.1.1", at, false));
            s.report_sync(&report(i, Action::Allow, Outcome::LoginSucceeded, at))
                .unwrap();
        }
        let same_hour =
            s.observe_sync(&obs(&h, 100, "hana", "d", "1.1.1.1", T0 + 12 * WEEK, false));
        assert_eq!(same_hour.profile.hour_count, 12);
        let night = s.observe_sync(&obs(
            &h,
            101,
            "hana",
            "d",
            "1.1.1.1",
            T0 + 12 * WEEK + 6 * 3_600_000,
            false,
        ));
        assert_eq!(night.profile.hour_count, 0);
        assert_eq!(night.profile.verified_logins, 12);
    }

    #[test]
    fn history_per_dimension_is_capped() {
        let h = IdHasher::random();
        let limits = MemoryLimits {
            history_per_dim: 4,
            ..MemoryLimits::default()
        };
        let s = MemoryStore::new(limits);
        for i in 0..10u128 {
            let dev = format!("dev{i}");
            s.observe_sync(&obs(&h, i, "carol", &dev, "1.1.1.1", T0 + i as i64, false));
            s.report_sync(&report(
                i,
                Action::Allow,
                Outcome::LoginSucceeded,
                T0 + i as i64,
            ))
            .unwrap();
        }
        let v = s.observe_sync(&obs(&h, 100, "carol", "dev9", "1.1.1.1", T0 + 100, false));
        assert_eq!(v.profile.distinct(Dim::Device), 4);
        assert_eq!(v.profile.seen(Dim::Device), 1);
        assert_eq!(v.profile.seen(Dim::Ip), 10);
    }

    #[test]
    fn the_local_store_answers_like_the_shared_one() {
        let h = IdHasher::random();
        let limits = MemoryLimits {
            history_per_dim: 4,
            ..MemoryLimits::default()
        };
        let shared = MemoryStore::new(limits.clone());
        let local = MemoryStore::new_local(limits);
        for i in 0..400u128 {
            let user = format!("u{}", i % 7);
            let dev = format!("d{}", i % 5);
            let ip = format!("10.0.{}.{}", i % 3, i % 11);
            let at = T0 + i as i64 * 37_000;
            let o = obs(&h, i, &user, &dev, &ip, at, i % 6 == 0);
            assert_eq!(shared.observe_sync(&o), local.observe_sync(&o), "{i}");
            let (action, outcome) = match i % 5 {
                0 => (Action::Allow, Outcome::LoginSucceeded),
                1 => (Action::StepUp, Outcome::StepUpPassed),
                2 => (Action::StepUp, Outcome::StepUpFailed),
                3 if i % 4 == 0 => (Action::Allow, Outcome::UserReportedFraud),
                _ => continue,
            };
            let back = if outcome.is_fraud() { i - 3 } else { i };
            let r = report(back, action, outcome, at + 1);
            assert_eq!(
                shared.report_sync(&r).map(|e| e.profile_updated).ok(),
                local.report_sync(&r).map(|e| e.profile_updated).ok(),
                "{i}"
            );
        }
        assert_eq!(shared.profile_count(), local.profile_count());
    }
}
