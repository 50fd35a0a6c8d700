//! The embedded store: everything in this process, bounded and TTL'd with
//! moka. The default, so `riskgate serve` needs nothing else installed; state
//! is lost on restart and not shared between replicas (use Redis for that).

use std::collections::VecDeque;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use moka::sync::Cache;
use parking_lot::Mutex;

use crate::domain::{Factor, UnixMillis};

use super::fxhash::FxHashMap;
use super::window::{DistinctSet, LONGEST_MS, SlidingCounter};
use super::{
    DecisionRecord, DeviceMark, Dim, Facts, Forgotten, GeoPoint, Key, LastLogin, Observation,
    OutcomeReport, PROFILE_DIMS, ProfileValue, ProfileView, RECENT_DECISIONS, ReportEffect, Store,
    StoreError, StoreView, UserProfile, VALUE_HASH_MASK, VelocityView, teaches,
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
            profile_ttl: Duration::from_secs(90 * 86_400),
            max_counters: 1_000_000,
            max_pending: 1_000_000,
            decision_ttl: Duration::from_secs(7 * 86_400),
            history_per_dim: 16,
        }
    }
}

/// One remembered value: (dimension-tagged short key, count, last seen in
/// seconds). 16 bytes.
type Seen = (u64, u32, u32);

/// A fact's short key with its dimension slot in the top 4 bits, so one
/// vector holds every dimension of a profile (11 vectors would cost 24-byte
/// headers and a minimum allocation each: ~700 bytes per user).
fn tagged(slot: usize, k: u64) -> u64 {
    (k & (u64::MAX >> 4)) | ((slot as u64) << 60)
}

fn slot_of(tagged: u64) -> usize {
    (tagged >> 60) as usize
}

#[derive(Debug, Default)]
struct Profile {
    verified: u32,
    /// Every remembered value of every dimension, at most `history_per_dim`
    /// per dimension; grown one element at a time (`reserve_exact`).
    seen: Vec<Seen>,
    /// Sparse hour-of-week histogram: (hour, count).
    hours: Vec<(u8, u16)>,
    last_login: Option<LastLogin>,
    last_strong_auth: Option<UnixMillis>,
    /// Devices support trusted or revoked; boxed because almost no profile
    /// has any (8 bytes per profile instead of two vector headers).
    marks: Option<Box<Marks>>,
}

/// Devices marked by support: (device short key, when).
#[derive(Debug, Default)]
struct Marks {
    trusted: Vec<(u64, UnixMillis)>,
    revoked: Vec<(u64, UnixMillis)>,
}

fn secs(at: UnixMillis) -> u32 {
    u32::try_from(at.0.max(0) / 1000).unwrap_or(u32::MAX)
}

impl Profile {
    fn view(&self, facts: &Facts, hour: u8) -> ProfileView {
        let mut v = ProfileView {
            verified_logins: self.verified,
            last_login: self.last_login,
            last_strong_auth: self.last_strong_auth,
            ..ProfileView::default()
        };
        for s in &self.seen {
            let slot = slot_of(s.0);
            if let Some(d) = v.distinct.get_mut(slot) {
                *d = d.saturating_add(1);
            }
            if facts
                .0
                .get(slot)
                .copied()
                .flatten()
                .map(|k| tagged(slot, short_nonzero(k)))
                == Some(s.0)
            {
                v.seen[slot] = s.1;
            }
        }
        v.device_revoked = match (&self.marks, facts.get(Dim::Device)) {
            (Some(m), Some(d)) => m.revoked.iter().any(|r| r.0 == short_nonzero(d)),
            _ => false,
        };
        v.hour_count = self
            .hours
            .iter()
            .find(|(h, _)| *h == hour)
            .map_or(0, |(_, c)| u32::from(*c));
        v
    }

    fn learn(&mut self, p: &Pending, cap: usize) {
        self.verified = self.verified.saturating_add(1);
        let t = secs(p.at);
        for (slot, short) in p.facts() {
            let key = tagged(slot, short);
            if let Some(s) = self.seen.iter_mut().find(|s| s.0 == key) {
                s.1 = s.1.saturating_add(1);
                s.2 = s.2.max(t);
            } else {
                let same_dim = || {
                    self.seen
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| slot_of(s.0) == slot)
                };
                if same_dim().count() >= cap {
                    // Forget the least recently seen value of this dimension.
                    if let Some(pos) = same_dim().min_by_key(|(_, s)| s.2).map(|(pos, _)| pos) {
                        self.seen.swap_remove(pos);
                    }
                }
                self.seen.reserve_exact(1);
                self.seen.push((key, 1, t));
            }
        }
        let hour = p.at.hour_of_week();
        match self.hours.iter_mut().find(|(h, _)| *h == hour) {
            Some(e) => e.1 = e.1.saturating_add(1),
            None => self.hours.push((hour, 1)),
        }
        if self.last_login.is_none_or(|l| l.at <= p.at) {
            self.last_login = Some(LastLogin {
                at: p.at,
                place: p.place,
            });
        }
    }

    /// Remembers `device` (count 1 if new, evicting the least recently seen
    /// device at the cap); returns whether it was remembered already.
    fn remember_device(&mut self, device: u64, at: UnixMillis, cap: usize) -> bool {
        let slot = 0;
        let key = tagged(slot, device);
        let t = secs(at);
        if let Some(s) = self.seen.iter_mut().find(|s| s.0 == key) {
            s.2 = s.2.max(t);
            return true;
        }
        let same_dim = || {
            self.seen
                .iter()
                .enumerate()
                .filter(|(_, s)| slot_of(s.0) == slot)
        };
        if same_dim().count() >= cap
            && let Some(pos) = same_dim().min_by_key(|(_, s)| s.2).map(|(pos, _)| pos)
        {
            self.seen.swap_remove(pos);
        }
        self.seen.push((key, 1, t));
        false
    }

    /// Drops `device` from the remembered values; returns whether it was there.
    fn drop_device(&mut self, device: u64) -> bool {
        let key = tagged(0, device);
        match self.seen.iter().position(|s| s.0 == key) {
            Some(pos) => {
                self.seen.swap_remove(pos);
                true
            }
            None => false,
        }
    }

    fn export(&self) -> UserProfile {
        let mut values: Vec<ProfileValue> = self
            .seen
            .iter()
            .map(|s| ProfileValue {
                dim: PROFILE_DIMS[slot_of(s.0).min(PROFILE_DIMS.len() - 1)],
                hash: s.0 & VALUE_HASH_MASK,
                count: s.1,
                last_seen_secs: s.2,
            })
            .collect();
        values.sort();
        let mut hours: Vec<(u8, u32)> = self
            .hours
            .iter()
            .map(|(h, c)| (*h, u32::from(*c)))
            .collect();
        hours.sort();
        let marks = |l: &[(u64, UnixMillis)]| {
            let mut v: Vec<DeviceMark> = l
                .iter()
                .map(|(d, at)| DeviceMark {
                    device: d & VALUE_HASH_MASK,
                    at: *at,
                })
                .collect();
            v.sort();
            v
        };
        UserProfile {
            verified_logins: self.verified,
            values,
            hours,
            last_login: self.last_login,
            last_strong_auth: self.last_strong_auth,
            trusted: self
                .marks
                .as_ref()
                .map(|m| marks(&m.trusted))
                .unwrap_or_default(),
            revoked: self
                .marks
                .as_ref()
                .map(|m| marks(&m.revoked))
                .unwrap_or_default(),
            recent: Vec::new(),
        }
    }

    fn unlearn(&mut self, p: &Pending) {
        self.verified = self.verified.saturating_sub(1);
        for (slot, short) in p.facts() {
            let key = tagged(slot, short);
            if let Some(pos) = self.seen.iter().position(|s| s.0 == key) {
                self.seen[pos].1 = self.seen[pos].1.saturating_sub(1);
                if self.seen[pos].1 == 0 {
                    self.seen.swap_remove(pos);
                }
            }
        }
        let hour = p.at.hour_of_week();
        if let Some(pos) = self.hours.iter().position(|(h, _)| *h == hour) {
            self.hours[pos].1 = self.hours[pos].1.saturating_sub(1);
            if self.hours[pos].1 == 0 {
                self.hours.swap_remove(pos);
            }
        }
        if self.last_login.is_some_and(|l| l.at == p.at) {
            // The fraudulent login must not anchor impossible travel.
            self.last_login = None;
        }
    }
}

/// A decision that can still be reported on. ~150 bytes: the facts as
/// short keys (0 = absent), not as 17-byte `Option<Key>`s.
#[derive(Debug)]
struct Pending {
    user: Key,
    facts: [u64; PROFILE_DIMS.len()],
    place: Option<GeoPoint>,
    at: UnixMillis,
    /// Whether this decision taught the profile (and so can be untaught).
    taught: Mutex<bool>,
}

/// The short key of a fact, never 0 (0 marks an absent fact in `Pending`).
fn short_nonzero(k: Key) -> u64 {
    k.short().max(1)
}

impl Pending {
    /// (slot, short key) of each fact present.
    fn facts(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.facts
            .iter()
            .enumerate()
            .filter(|(_, k)| **k != 0)
            .map(|(i, k)| (i, *k))
    }
}

/// Velocity state of one scope key. Rings are allocated on first use: most
/// keys never see a failure, and only IP and global scopes count attempts.
#[derive(Debug, Default)]
struct Counter {
    failures: Option<Box<SlidingCounter>>,
    attempts: Option<Box<SlidingCounter>>,
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
        let w =
            |r: &Option<Box<SlidingCounter>>| r.as_ref().map(|r| r.windows(at)).unwrap_or_default();
        VelocityWindows {
            failures: w(&self.failures),
            attempts: w(&self.attempts),
        }
    }
}

/// Velocity scopes in the counter map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Scope {
    User,
    Ip,
    Network,
    Device,
    Global,
}

impl Scope {
    /// Whether attempts (not only failures) are counted: features read
    /// attempts per IP and deployment-wide only.
    fn counts_attempts(self) -> bool {
        matches!(self, Scope::Ip | Scope::Global)
    }
}

/// A bounded map with second-chance (CLOCK) eviction: an entry read since
/// the hand last passed it survives one more round. For a single owner.
struct ClockMap<K, V> {
    cap: usize,
    map: FxHashMap<K, (V, bool)>,
    ring: VecDeque<K>,
}

impl<K: Hash + Eq + Copy, V: Clone> ClockMap<K, V> {
    fn new(cap: u64) -> Self {
        ClockMap {
            cap: usize::try_from(cap).unwrap_or(usize::MAX).max(1),
            map: FxHashMap::default(),
            ring: VecDeque::new(),
        }
    }

    fn get(&mut self, k: &K) -> Option<V> {
        self.map.get_mut(k).map(|e| {
            e.1 = true;
            e.0.clone()
        })
    }

    fn insert(&mut self, k: K, v: V) {
        if let Some(e) = self.map.get_mut(&k) {
            *e = (v, true);
            return;
        }
        while self.map.len() >= self.cap {
            let Some(old) = self.ring.pop_front() else {
                break;
            };
            match self.map.get_mut(&old) {
                Some(e) if e.1 => {
                    e.1 = false;
                    self.ring.push_back(old);
                }
                Some(_) => {
                    self.map.remove(&old);
                }
                None => {}
            }
        }
        self.map.insert(k, (v, false));
        self.ring.push_back(k);
    }
}

/// One of the store's maps: a concurrent moka cache (serving), or a
/// [`ClockMap`] behind an uncontended lock (one thread driving the store,
/// as replay does).
enum Map<K, V> {
    Shared(Cache<K, V>),
    Local(Mutex<ClockMap<K, V>>),
}

impl<K, V> Map<K, V>
where
    K: Hash + Eq + Copy + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn get(&self, k: &K) -> Option<V> {
        match self {
            Map::Shared(c) => c.get(k),
            Map::Local(m) => m.lock().get(k),
        }
    }

    fn get_with(&self, k: K, init: impl FnOnce() -> V) -> V {
        match self {
            Map::Shared(c) => c.get_with(k, init),
            Map::Local(m) => {
                let mut m = m.lock();
                if let Some(v) = m.get(&k) {
                    return v;
                }
                let v = init();
                m.insert(k, v.clone());
                v
            }
        }
    }

    fn insert(&self, k: K, v: V) {
        match self {
            Map::Shared(c) => c.insert(k, v),
            Map::Local(m) => m.lock().insert(k, v),
        }
    }

    fn remove(&self, k: &K) -> Option<V> {
        match self {
            Map::Shared(c) => c.remove(k),
            // The ring keeps the key; eviction skips keys no longer mapped.
            Map::Local(m) => m.lock().map.remove(k).map(|e| e.0),
        }
    }

    /// A snapshot of every entry (admin erasure walks pending decisions).
    fn entries(&self) -> Vec<(K, V)> {
        match self {
            Map::Shared(c) => c.iter().map(|(k, v)| (*k, v)).collect(),
            Map::Local(m) => m
                .lock()
                .map
                .iter()
                .map(|(k, (v, _))| (*k, v.clone()))
                .collect(),
        }
    }

    fn len(&self) -> u64 {
        match self {
            Map::Shared(c) => {
                c.run_pending_tasks();
                c.entry_count()
            }
            Map::Local(m) => m.lock().map.len() as u64,
        }
    }
}

/// The in-process store.
pub struct MemoryStore {
    limits: MemoryLimits,
    profiles: Map<Key, Arc<Mutex<Profile>>>,
    counters: Map<(Scope, u64), Arc<Mutex<Counter>>>,
    pending: Map<u128, Arc<Pending>>,
    global_seen: Map<(Dim, u64), Arc<AtomicU32>>,
    global_distinct: [AtomicU32; PROFILE_DIMS.len()],
    global_logins: AtomicU32,
    global_users: AtomicU32,
    /// Each user's recent decisions, newest first.
    recent: Cache<Key, Arc<Mutex<std::collections::VecDeque<DecisionRecord>>>>,
}

impl MemoryStore {
    /// A store with these limits.
    pub fn new(limits: MemoryLimits) -> Self {
        let window = Duration::from_millis(LONGEST_MS.unsigned_abs() + 3_600_000);
        MemoryStore {
            profiles: Map::Shared(
                Cache::builder()
                    .max_capacity(limits.max_profiles)
                    .time_to_idle(limits.profile_ttl)
                    .build(),
            ),
            counters: Map::Shared(
                Cache::builder()
                    .max_capacity(limits.max_counters)
                    .time_to_idle(window)
                    .build(),
            ),
            pending: Map::Shared(
                Cache::builder()
                    .max_capacity(limits.max_pending)
                    .time_to_live(limits.decision_ttl)
                    .build(),
            ),
            global_seen: Map::Shared(
                Cache::builder()
                    .max_capacity(limits.max_counters)
                    .time_to_idle(limits.profile_ttl)
                    .build(),
            ),
            global_distinct: std::array::from_fn(|_| AtomicU32::new(0)),
            global_logins: AtomicU32::new(0),
            global_users: AtomicU32::new(0),
            recent: Cache::builder()
                .max_capacity(limits.max_profiles)
                .time_to_live(limits.decision_ttl)
                .build(),
            limits,
        }
    }

    /// A store for one thread driving it (replay): the same state and the
    /// same answers as [`MemoryStore::new`], kept in plain maps bounded by
    /// the same capacities (second-chance eviction instead of moka's
    /// TinyLFU, so the two may forget different entries once a cap is
    /// reached) and without wall-clock TTLs (a replay's clock is its rows').
    /// Each call costs a fraction of the concurrent caches'.
    pub fn new_local(limits: MemoryLimits) -> Self {
        MemoryStore {
            profiles: Map::Local(Mutex::new(ClockMap::new(limits.max_profiles))),
            counters: Map::Local(Mutex::new(ClockMap::new(limits.max_counters))),
            pending: Map::Local(Mutex::new(ClockMap::new(limits.max_pending))),
            global_seen: Map::Local(Mutex::new(ClockMap::new(limits.max_counters))),
            global_distinct: std::array::from_fn(|_| AtomicU32::new(0)),
            global_logins: AtomicU32::new(0),
            global_users: AtomicU32::new(0),
            recent: Cache::builder()
                .max_capacity(limits.max_profiles)
                .time_to_live(limits.decision_ttl)
                .build(),
            limits,
        }
    }

    fn counter(&self, scope: Scope, key: u64) -> Arc<Mutex<Counter>> {
        self.counters
            .get_with((scope, key), || Arc::new(Mutex::new(Counter::default())))
    }

    /// Counts a failure (and, for IP and global scopes, an attempt). A
    /// success in a scope that counts only failures creates nothing.
    fn count(&self, scope: Scope, key: u64, at: UnixMillis, failed: bool) -> VelocityWindows {
        let attempts = scope.counts_attempts();
        if !failed && !attempts {
            return match self.counters.get(&(scope, key)) {
                Some(c) => c.lock().windows(at),
                None => VelocityWindows::default(),
            };
        }
        let c = self.counter(scope, key);
        let mut c = c.lock();
        c.add(at, failed, attempts);
        c.windows(at)
    }

    fn count_with_user(
        &self,
        scope: Scope,
        key: u64,
        user: u64,
        at: UnixMillis,
        failed: bool,
        window_ms: i64,
    ) -> (VelocityWindows, u32, u32) {
        let c = self.counter(scope, key);
        let mut c = c.lock();
        c.add(at, failed, scope.counts_attempts());
        let users = c.users.add_and_count(user, at, window_ms);
        let users_1h = c.users.count_within(at, HOUR_MS);
        (c.windows(at), users, users_1h)
    }

    /// Profiles currently held (for tests and memory measurements).
    pub fn profile_count(&self) -> u64 {
        self.profiles.len()
    }
}

#[derive(Default)]
struct VelocityWindows {
    failures: super::Windows,
    attempts: super::Windows,
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
        let mut p = match self.profiles.get(&user) {
            Some(p) => p.lock().export(),
            None => UserProfile::default(),
        };
        if let Some(r) = self.recent.get(&user) {
            p.recent = r.lock().iter().cloned().collect();
        }
        Ok(p)
    }

    async fn forget(&self, user: Key) -> Result<Forgotten, StoreError> {
        let mut f = Forgotten::default();
        if let Some(p) = self.profiles.remove(&user) {
            let p = p.lock();
            f.verified_logins = p.verified;
            f.profile_values = u32::try_from(p.seen.len()).unwrap_or(u32::MAX);
            if let Some(m) = &p.marks {
                f.trusted_devices = u32::try_from(m.trusted.len()).unwrap_or(u32::MAX);
                f.revoked_devices = u32::try_from(m.revoked.len()).unwrap_or(u32::MAX);
            }
        }
        if self.counters.remove(&(Scope::User, user.short())).is_some() {
            f.failure_counters = 1;
        }
        if let Some(r) = self.recent.remove(&user) {
            f.recent_decisions = u32::try_from(r.lock().len()).unwrap_or(u32::MAX);
        }
        // No per-user index in memory: one pass over the pending decisions.
        let mine: Vec<u128> = self
            .pending
            .entries()
            .into_iter()
            .filter(|(_, p)| p.user == user)
            .map(|(d, _)| d)
            .collect();
        for d in mine {
            if self.pending.remove(&d).is_some() {
                f.pending_decisions = f.pending_decisions.saturating_add(1);
            }
        }
        Ok(f)
    }

    async fn trust_device(
        &self,
        user: Key,
        device: Key,
        at: UnixMillis,
    ) -> Result<bool, StoreError> {
        let d = short_nonzero(device);
        let profile = self
            .profiles
            .get_with(user, || Arc::new(Mutex::new(Profile::default())));
        let mut p = profile.lock();
        let known = p.remember_device(d, at, self.limits.history_per_dim);
        let marks = p.marks.get_or_insert_default();
        marks.revoked.retain(|r| r.0 != d);
        marks.trusted.retain(|r| r.0 != d);
        marks.trusted.push((d, at));
        Ok(known)
    }

    async fn revoke_device(
        &self,
        user: Key,
        device: Key,
        at: UnixMillis,
    ) -> Result<bool, StoreError> {
        let d = short_nonzero(device);
        let profile = self
            .profiles
            .get_with(user, || Arc::new(Mutex::new(Profile::default())));
        let mut p = profile.lock();
        let known = p.drop_device(d);
        let marks = p.marks.get_or_insert_default();
        marks.trusted.retain(|r| r.0 != d);
        marks.revoked.retain(|r| r.0 != d);
        marks.revoked.push((d, at));
        Ok(known)
    }

    async fn record_decision(&self, user: Key, record: &DecisionRecord) -> Result<(), StoreError> {
        let list = self.recent.get_with(user, Default::default);
        let mut list = list.lock();
        list.push_front(record.clone());
        list.truncate(RECENT_DECISIONS);
        Ok(())
    }
}

impl MemoryStore {
    /// [`Store::observe`] without the async wrapper (replay uses it).
    pub fn observe_sync(&self, obs: &Observation) -> StoreView {
        let at = obs.at;
        let user = obs.user.short();
        let hour = at.hour_of_week();

        let mut velocity = VelocityView::default();
        let u = self.count(Scope::User, user, at, obs.failed);
        velocity.user_failures = u.failures;
        if let Some(ip) = obs.facts.get(Dim::Ip) {
            let (w, users, _) =
                self.count_with_user(Scope::Ip, ip.short(), user, at, obs.failed, HOUR_MS);
            velocity.ip_failures = w.failures;
            velocity.ip_attempts = w.attempts;
            velocity.ip_distinct_users_1h = users;
        }
        if let Some(net) = obs.facts.get(Dim::Network) {
            let w = self.count(Scope::Network, net.short(), at, obs.failed);
            velocity.network_failures = w.failures;
        }
        if let Some(dev) = obs.facts.get(Dim::Device) {
            let (w, users, users_1h) = self.count_with_user(
                Scope::Device,
                dev.short(),
                user,
                at,
                obs.failed,
                24 * HOUR_MS,
            );
            velocity.device_failures = w.failures;
            velocity.device_distinct_users_24h = users;
            velocity.device_distinct_users_1h = users_1h;
        }
        let g = self.count(Scope::Global, 0, at, obs.failed);
        velocity.global_attempts = g.attempts;
        velocity.global_failures = g.failures;

        let mut profile = match self.profiles.get(&obs.user) {
            Some(p) => p.lock().view(&obs.facts, hour),
            None => ProfileView::default(),
        };
        for (i, dim) in PROFILE_DIMS.iter().enumerate() {
            if let Some(k) = obs.facts.0[i] {
                profile.global_seen[i] = self
                    .global_seen
                    .get(&(*dim, short_nonzero(k)))
                    .map_or(0, |c| c.load(Ordering::Relaxed));
            }
        }
        for (i, d) in self.global_distinct.iter().enumerate() {
            profile.global_distinct[i] = d.load(Ordering::Relaxed);
        }
        profile.global_logins = self.global_logins.load(Ordering::Relaxed);
        profile.global_users = self.global_users.load(Ordering::Relaxed);

        self.pending.insert(
            obs.decision,
            Arc::new(Pending {
                user: obs.user,
                facts: obs.facts.0.map(|k| k.map_or(0, short_nonzero)),
                place: obs.place,
                at,
                taught: Mutex::new(false),
            }),
        );
        StoreView { profile, velocity }
    }

    /// [`Store::report`] without the async wrapper.
    pub fn report_sync(&self, report: &OutcomeReport) -> Result<ReportEffect, StoreError> {
        let Some(p) = self.pending.get(&report.decision) else {
            return Err(StoreError::UnknownDecision(format!(
                "{:032x}",
                report.decision
            )));
        };
        let mut taught = p.taught.lock();
        let mut effect = ReportEffect::default();

        if report.outcome == crate::domain::Outcome::StepUpFailed {
            self.count(Scope::User, p.user.short(), report.at, true);
        }

        if teaches(report.action, report.outcome) && !*taught {
            let profile = self
                .profiles
                .get_with(p.user, || Arc::new(Mutex::new(Profile::default())));
            let mut profile = profile.lock();
            if profile.verified == 0 {
                self.global_users.fetch_add(1, Ordering::Relaxed);
            }
            profile.learn(&p, self.limits.history_per_dim);
            if matches!(report.factor, Some(Factor::Webauthn | Factor::Totp))
                && report.outcome == crate::domain::Outcome::StepUpPassed
            {
                profile.last_strong_auth = Some(report.at.max(p.at));
            }
            for (i, short) in p.facts() {
                {
                    let before = self
                        .global_seen
                        .get_with((PROFILE_DIMS[i], short), || Arc::new(AtomicU32::new(0)))
                        .fetch_add(1, Ordering::Relaxed);
                    if before == 0 {
                        self.global_distinct[i].fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            self.global_logins.fetch_add(1, Ordering::Relaxed);
            *taught = true;
            effect.profile_updated = true;
        } else if report.outcome.is_fraud() && *taught {
            if let Some(profile) = self.profiles.get(&p.user) {
                profile.lock().unlearn(&p);
            }
            for (i, short) in p.facts() {
                if let Some(c) = self.global_seen.get(&(PROFILE_DIMS[i], short))
                    && decrement(&c) == 1
                {
                    decrement(&self.global_distinct[i]);
                }
            }
            decrement(&self.global_logins);
            *taught = false;
            effect.profile_updated = true;
        }
        Ok(effect)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Action, Outcome};
    use crate::store::IdHasher;

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
        assert_eq!(v.profile.global_seen(Dim::Device), 1);

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
    fn the_clock_map_is_bounded_and_gives_read_entries_a_second_chance() {
        let mut m: ClockMap<u32, u32> = ClockMap::new(3);
        for k in 0..3 {
            m.insert(k, k * 10);
        }
        // 0 is read, so the hand passes it over and evicts 1.
        assert_eq!(m.get(&0), Some(0));
        m.insert(3, 30);
        assert_eq!(m.map.len(), 3);
        assert_eq!(m.get(&1), None);
        assert_eq!(m.get(&0), Some(0));
        for k in 4..100 {
            m.insert(k, k);
            assert!(m.map.len() <= 3);
        }
        // Re-inserting an existing key replaces it in place.
        m.insert(99, 7);
        assert_eq!(m.get(&99), Some(7));
        assert!(m.ring.len() <= 3 + 1);
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
