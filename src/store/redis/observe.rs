//! Observe as one pipeline of plain commands: what an Evaluate asks
//! ([`ObservePlan`]) and how the answers are read back ([`Answers`]).

use super::*;

/// The answers of one observe pipeline, read in the order the commands
/// were queued.
pub(super) struct Answers {
    values: std::vec::IntoIter<Value>,
}

impl Answers {
    pub(super) fn new(values: Vec<Value>) -> Self {
        Answers {
            values: values.into_iter(),
        }
    }

    /// The next read's answer; a command's error (in a pipeline that
    /// carries errors as answers), a write's included, fails the call.
    pub(super) fn next(&mut self) -> Result<Value, StoreError> {
        match self.raw()? {
            Value::ServerError(e) => Err(StoreError::Unavailable(format!("redis: {e:?}"))),
            v => Ok(v),
        }
    }

    /// The next read's answer as it came, errors included. Observe's
    /// writes are answered too (not ignored: a pipeline that carries errors
    /// as answers drops an ignored command's error) and come before their
    /// key's read: their acknowledgements (integers, `OK`) are passed over
    /// here, their errors returned. No read of observe answers an integer.
    pub(super) fn raw(&mut self) -> Result<Value, StoreError> {
        loop {
            match self.values.next() {
                Some(Value::Int(_) | Value::Okay) => continue,
                Some(v) => return Ok(v),
                None => {
                    return Err(StoreError::Unavailable(
                        "redis: answered too few values".into(),
                    ));
                }
            }
        }
    }

    pub(super) fn list(&mut self) -> Result<Vec<Value>, StoreError> {
        match self.next()? {
            Value::Array(a) => Ok(a),
            Value::Nil => Ok(Vec::new()),
            other => Err(StoreError::Unavailable(format!(
                "redis: expected a list, got {other:?}"
            ))),
        }
    }
}

/// What an observe asks, built once and queued into one pipeline (single
/// node) or one per slot (cluster).
pub(super) struct ObservePlan<'a> {
    store: &'a RedisStore,
    obs: &'a Observation,
    /// hex16 of each fact counted deployment-wide ([`counted_globally`]),
    /// if present: the keys of its global count.
    facts: [Option<String>; PROFILE_DIMS.len()],
    user: String,
    /// The user's profile key.
    profile: String,
    ip: Option<String>,
    network: Option<String>,
    device: Option<String>,
    /// Whether the deployment's stats are cached and kept fresh by the
    /// merges (if not, they are read).
    stats_cached: bool,
    /// The IP's, network's and device's refresh tickets, and whether this
    /// replica refreshed their TTL in the current period ([`Refreshed`]).
    ip_ttl: Option<(Ticket, bool)>,
    network_ttl: Option<(Ticket, bool)>,
    device_ttl: Option<(Ticket, bool)>,
}

impl<'a> ObservePlan<'a> {
    /// `stats_cached`: whether the deployment's stats are cached (if not,
    /// they are read).
    pub(super) fn new(store: &'a RedisStore, obs: &'a Observation, stats_cached: bool) -> Self {
        let scoped = |tag: &str, dim: Dim| {
            obs.facts
                .get(dim)
                .map(|k| format!("{}:{{{tag}:{}}}", store.settings.key_prefix, hex32(k)))
        };
        let ttl = |entity: Entity, dim: Dim| {
            obs.facts.get(dim).map(|k| {
                let t = store.refreshed.ticket(entity, k);
                (t, store.refreshed.fresh(t))
            })
        };
        ObservePlan {
            ip_ttl: ttl(Entity::Ip, Dim::Ip),
            // A network's hash is written (and refreshed) on a failure only.
            network_ttl: if obs.failed {
                ttl(Entity::Network, Dim::Network)
            } else {
                None
            },
            device_ttl: ttl(Entity::Device, Dim::Device),
            store,
            obs,
            facts: std::array::from_fn(|slot| {
                obs.facts.0[slot]
                    .filter(|_| counted_globally(slot))
                    .map(hex16)
            }),
            user: format!("{}:{{u:{}}}", store.settings.key_prefix, hex32(obs.user)),
            profile: format!(
                "{}:{{u:{}}}:prof",
                store.settings.key_prefix,
                hex32(obs.user)
            ),
            ip: scoped("i", Dim::Ip),
            network: scoped("n", Dim::Network),
            device: scoped("dv", Dim::Device),
            stats_cached,
        }
    }

    pub(super) fn failed(&self) -> bool {
        self.obs.failed
    }

    /// The user's failures and profile (the pending decision is written
    /// with its answer, [`pending_record`]). The profile is one string; an
    /// earlier version's hash answers `WRONGTYPE`, which the pipeline
    /// carries as an answer ([`Pipeline::ignore_errors`]).
    pub(super) fn user(&self, pipe: &mut Pipeline) {
        let (u, at) = (&self.user, self.obs.at);
        let v = format!("{u}:{VELOCITY}");
        if self.failed() {
            count_event(pipe, &v, 'f', at);
            pipe.cmd("PEXPIRE").arg(&v).arg(COUNTER_TTL_MS);
        }
        pipe.cmd("HGETALL").arg(&v);
        pipe.cmd("GET").arg(&self.profile);
    }

    /// Reads the user's failures, and returns the profile's answer for
    /// [`RedisStore::read_profile`].
    pub(super) fn read_user(
        &self,
        a: &mut Answers,
        view: &mut StoreView,
        work: &mut Vec<Work>,
    ) -> Result<Value, StoreError> {
        let failures = Buckets::parse(a.next()?);
        view.velocity.user_failures = failures.windows('f', self.obs.at, KEY_BUCKET_MAX);
        forget_stale(
            work,
            || format!("{}:{VELOCITY}", self.user),
            &failures,
            None,
        );
        // The pending decisions' count is checked in the background, on
        // one observe in PRUNE_SAMPLE (decision ids end in random bits).
        if self.obs.decision % PRUNE_SAMPLE == 0 {
            work.push(Work::PrunePending {
                key: format!("{}:p", self.user),
            });
        }
        a.raw()
    }

    /// The profile key of the user.
    pub(super) fn profile_key(&self) -> &str {
        &self.profile
    }

    /// Adds the user to the distinct users of a velocity hash (a field per
    /// user, valued with its last-seen time: read back with the hash).
    pub(super) fn member(&self, pipe: &mut Pipeline, v: &str) {
        pipe.cmd("HSET")
            .arg(v)
            .arg(member_field(self.obs.user))
            .arg(self.obs.at.0);
    }

    pub(super) fn ip(&self, pipe: &mut Pipeline) {
        let Some(k) = &self.ip else { return };
        let v = format!("{k}:{VELOCITY}");
        count_event(pipe, &v, 'a', self.obs.at);
        if self.failed() {
            count_event(pipe, &v, 'f', self.obs.at);
        }
        self.member(pipe, &v);
        refresh(pipe, &v, self.ip_ttl);
        pipe.cmd("HGETALL").arg(&v);
    }

    /// Marks the key's refresh as done once its pipeline was answered.
    fn refreshed(&self, ttl: Option<(Ticket, bool)>) {
        if let Some((t, false)) = ttl {
            self.store.refreshed.mark(t);
        }
    }

    pub(super) fn read_ip(
        &self,
        a: &mut Answers,
        view: &mut StoreView,
        work: &mut Vec<Work>,
    ) -> Result<(), StoreError> {
        let Some(k) = &self.ip else { return Ok(()) };
        let b = Buckets::parse(a.next()?);
        self.refreshed(self.ip_ttl);
        view.velocity.ip_failures = b.windows('f', self.obs.at, KEY_BUCKET_MAX);
        view.velocity.ip_attempts = b.windows('a', self.obs.at, KEY_BUCKET_MAX);
        view.velocity.ip_distinct_users_1h = b.members_within(self.obs.at, HOUR_MS);
        forget_stale(
            work,
            || format!("{k}:{VELOCITY}"),
            &b,
            Some((self.obs.at, HOUR_MS)),
        );
        Ok(())
    }

    pub(super) fn network(&self, pipe: &mut Pipeline) {
        let Some(k) = &self.network else { return };
        let v = format!("{k}:{VELOCITY}");
        if self.failed() {
            count_event(pipe, &v, 'f', self.obs.at);
            refresh(pipe, &v, self.network_ttl);
        }
        pipe.cmd("HGETALL").arg(&v);
    }

    pub(super) fn read_network(
        &self,
        a: &mut Answers,
        view: &mut StoreView,
        work: &mut Vec<Work>,
    ) -> Result<(), StoreError> {
        if let Some(k) = &self.network {
            let b = Buckets::parse(a.next()?);
            self.refreshed(self.network_ttl);
            view.velocity.network_failures = b.windows('f', self.obs.at, KEY_BUCKET_MAX);
            forget_stale(work, || format!("{k}:{VELOCITY}"), &b, None);
        }
        Ok(())
    }

    pub(super) fn device(&self, pipe: &mut Pipeline) {
        let Some(k) = &self.device else { return };
        let v = format!("{k}:{VELOCITY}");
        if self.failed() {
            count_event(pipe, &v, 'f', self.obs.at);
        }
        self.member(pipe, &v);
        refresh(pipe, &v, self.device_ttl);
        pipe.cmd("HGETALL").arg(&v);
    }

    pub(super) fn read_device(
        &self,
        a: &mut Answers,
        view: &mut StoreView,
        work: &mut Vec<Work>,
    ) -> Result<(), StoreError> {
        let Some(k) = &self.device else { return Ok(()) };
        let b = Buckets::parse(a.next()?);
        self.refreshed(self.device_ttl);
        let at = self.obs.at;
        view.velocity.device_failures = b.windows('f', at, KEY_BUCKET_MAX);
        view.velocity.device_distinct_users_1h = b.members_within(at, HOUR_MS);
        view.velocity.device_distinct_users_24h = b.members_within(at, 24 * HOUR_MS);
        forget_stale(
            work,
            || format!("{k}:{VELOCITY}"),
            &b,
            Some((at, 24 * HOUR_MS)),
        );
        Ok(())
    }

    /// The global value counts and stats (the global velocity is counted
    /// here and merged by [`merge_global`]), and this replica's marker: what
    /// it taught above the marker is not in Redis yet.
    pub(super) fn global(&self, pipe: &mut Pipeline) {
        if self.global_facts().next().is_some() {
            let mget = pipe.cmd("MGET");
            for (slot, f) in self.global_facts() {
                mget.arg(value_count_key(&self.store.settings.key_prefix, slot, f));
            }
            mget.arg(&self.store.merge.marker);
        }
        // Read from Redis only until a merge has (every `global_flush`).
        if !self.stats_cached {
            GlobalStats::read(pipe, &self.store.merge);
        }
    }

    /// The facts counted deployment-wide, with their slots.
    fn global_facts(&self) -> impl Iterator<Item = (usize, &String)> {
        self.facts
            .iter()
            .enumerate()
            .take(GLOBAL_SLOTS)
            .filter(|(slot, _)| counted_globally(*slot))
            .filter_map(|(slot, f)| Some((slot, f.as_ref()?)))
    }

    pub(super) fn read_global(
        &self,
        a: &mut Answers,
        view: &mut StoreView,
    ) -> Result<(), StoreError> {
        let n = self.global_facts().count();
        let seen = if n > 0 { a.list()? } else { Vec::new() };
        let read = if self.stats_cached {
            None
        } else {
            Some(GlobalStats::parse(&a.list()?))
        };
        let mut g = self.store.global.lock();
        if let Some(s) = read {
            // The marker came in the same HMGET: exact.
            g.read_stats(s);
        }
        let merged = g.all_merged();
        let marker = u64::try_from(int(seen.get(n))).unwrap_or(0);
        let mut read = [0u32; GLOBAL_SLOTS];
        for (i, (slot, f)) in self.global_facts().enumerate() {
            let mut count = int(seen.get(i)).max(0);
            read[slot] = u32::try_from(count).unwrap_or(u32::MAX);
            if !merged && let Some(v) = value_of(f) {
                count = g.value_view(slot, v, count, marker);
            }
            view.profile.global_seen[slot] = u32::try_from(count).unwrap_or(u32::MAX);
        }
        if n > 0 {
            // For the report that teaches this decision.
            g.observed(self.obs.decision, read, marker);
        }
        let stats = g.stats_view().unwrap_or_default();
        drop(g);
        view.profile.global_logins = stats.logins;
        view.profile.global_users = stats.users;
        view.profile.global_distinct[..GLOBAL_SLOTS].copy_from_slice(&stats.distinct);
        // Slots no longer counted keep what an earlier version counted:
        // read as none, like the memory store.
        for (slot, d) in view.profile.global_distinct.iter_mut().enumerate() {
            if !counted_globally(slot) {
                *d = 0;
            }
        }
        Ok(())
    }
}

/// The pending decision of `obs` as a report reads it ([`super::teach`]; see the
/// key table in [`super`]), followed by its answer: `<taught>|<expires
/// ms>|<at>|<hour>|<place>|<fact 0>|…|<fact 11>|<action>|<score>|<codes>|
/// <tag>`. Only the facts a report may teach are kept; of the decision id,
/// only its tag (hex): the rest is the decision, the user and the action.
/// `None` for an id that is not one.
pub(super) fn pending_record(
    store: &RedisStore,
    obs: &Observation,
    answer: &DecisionRecord<'_>,
) -> Option<String> {
    let tag = crate::core::decision_id::tag_of(answer.decision_id)?;
    use std::fmt::Write;
    let ttl = millis(store.settings.decision_ttl);
    let expires = UnixMillis::now()
        .0
        .saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX));
    let at = obs.at;
    let mut r = String::with_capacity(400);
    let _ = write!(
        r,
        "0|{expires}|{}|{}|{}",
        at.0,
        at.hour_of_week(),
        obs.place.as_ref().map(place_text).unwrap_or_default()
    );
    for slot in 0..PROFILE_DIMS.len() {
        r.push('|');
        if let Some(k) = obs.taught_fact(slot) {
            push_hex(&mut r, &k.0[..8]);
        }
    }
    // Scores are recorded at f32 precision, like the memory store.
    let _ = write!(r, "|{}|{}|", answer.action.as_str(), answer.score as f32);
    for (i, reason) in answer.reasons.iter().enumerate() {
        if i > 0 {
            r.push(',');
        }
        r.push_str(&reason.code);
    }
    r.push('|');
    push_hex(&mut r, &tag);
    Some(r)
}

/// Appends 8 bytes in hex (as [`hex16`] writes a key), without allocating.
fn push_hex(out: &mut String, bytes: &[u8]) {
    let mut buf = [0u8; 16];
    if hex::encode_to_slice(bytes, &mut buf).is_ok()
        && let Ok(h) = std::str::from_utf8(&buf)
    {
        out.push_str(h);
    }
}

/// Queues the TTL refresh of an IP's, network's or device's hash unless
/// this replica refreshed it in the current period: one period longer than
/// the counters need, so a skipped refresh loses nothing ([`Refreshed`]).
fn refresh(pipe: &mut Pipeline, key: &str, ttl: Option<(Ticket, bool)>) {
    if !matches!(ttl, Some((_, true))) {
        pipe.cmd("PEXPIRE")
            .arg(key)
            .arg(COUNTER_TTL_MS + REFRESH_PERIOD_MS);
    }
}
