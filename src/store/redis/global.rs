//! The deployment-wide counts, kept per replica and merged into Redis on an
//! interval: attempts and failures, and what reports teach of the global
//! value counts and stats.

use super::*;

/// The deployment's verified logins, users and distinct values per slot
/// (`P:{g}:stats`), read with one HMGET of these fields and of this
/// replica's marker there (the last of its batches applied: the same
/// snapshot).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct GlobalStats {
    pub logins: u32,
    pub users: u32,
    pub distinct: [u32; GLOBAL_SLOTS],
}

impl GlobalStats {
    /// Queues the HMGET that [`GlobalStats::parse`] reads.
    pub(super) fn read(pipe: &mut Pipeline, merge: &Merge) {
        let hmget = pipe.cmd("HMGET").arg(&merge.stats);
        hmget.arg("logins").arg("users");
        hmget.arg(&DISTINCT_FIELDS[..GLOBAL_SLOTS]);
        hmget.arg(&merge.marker_field);
    }

    /// The stats and the marker from the HMGET's answer (`Value`s in field
    /// order).
    pub(super) fn parse(s: &[Value]) -> (GlobalStats, u64) {
        let mut out = GlobalStats {
            logins: u32_of(s.first()),
            users: u32_of(s.get(1)),
            ..GlobalStats::default()
        };
        for (slot, d) in out.distinct.iter_mut().enumerate() {
            *d = u32_of(s.get(2 + slot));
        }
        let marker = u64::try_from(int(s.get(2 + GLOBAL_SLOTS))).unwrap_or(0);
        (out, marker)
    }
}

/// One kind and window of the deployment-wide counts: (bucket, events).
pub(super) type BucketCounts = Vec<(u32, u64)>;

pub(super) fn bump(v: &mut BucketCounts, b: u32, n: u64) {
    match v.iter_mut().find(|e| e.0 == b) {
        Some(e) => e.1 = e.1.saturating_add(n),
        None => v.push((b, n)),
    }
}

/// Kinds of the deployment-wide counts, by index.
pub(super) const GLOBAL_KINDS: [char; 2] = ['a', 'f'];

/// The deployment-wide attempts and failures (`P:{g}:v`), counted here at
/// once and merged into Redis every `global_flush` by [`merge_global`],
/// which reads everyone's counts back. Every Evaluate of every replica
/// would otherwise write and read the one `{g}` key — on a cluster, one
/// node. A replica sees its own attempts at once and the others' within
/// about two flush intervals; one replica alone answers exactly like the
/// memory store.
///
/// The global value counts and stats that reports teach are kept the same
/// way: [`Taught`] batches, applied by the merge script (`merge.lua`) and
/// laid over what observes read until Redis has them (see [`Taught`]).
#[derive(Default)]
pub(super) struct GlobalCounts {
    /// The deployment's stats (`P:{g}:stats`) as last read, and the last
    /// of this replica's batches they include; `None` until first read.
    pub(super) stats: Option<(GlobalStats, u64)>,
    /// The last merge failed: the cached stats are not kept fresh, so
    /// observes read them again until a merge succeeds.
    pub(super) stale: bool,
    /// A report's value counts were dropped for the cap (logged once).
    over_cap: bool,
    /// When a merge last swept gone replicas' marker fields.
    last_sweep: Option<std::time::Instant>,
    /// Events counted here and not merged yet, by kind and window.
    pending: [[BucketCounts; 3]; 2],
    /// The deployment's counts as last read, plus `pending`.
    known: [[BucketCounts; 3]; 2],
    /// Taught here since the last merge began (its `seq` is 0).
    open: Taught,
    /// Sent by a merge, oldest first: unconfirmed (the merge failed or is
    /// in flight), or confirmed lately — kept a while for the observes
    /// whose reads were in flight meanwhile (they lay them over what they
    /// read, by the marker they read).
    sent: Vec<Taught>,
    /// The last batch number handed out.
    last_seq: u64,
    /// The highest batch number no longer kept: a read of the value counts
    /// with an older marker would miss it.
    dropped: u64,
    /// The value counts each recent decision's observe read, for the report
    /// that teaches it ([`ObservedCounts`]).
    observed: ObservedCounts,
}

/// Most decisions whose observed value counts are kept for their report.
/// At 10,000 Evaluates a second a replica keeps the last ~3 s: a report
/// for an older decision (or one observed by another replica) is taught
/// without them (see [`GlobalCounts::observed_counts`]).
pub(super) const OBSERVED_CAP: usize = 32_768;

/// The deployment-wide value counts (by slot; 0 where the decision had no
/// fact) and the marker an observe read, by decision, oldest first out.
/// A report teaching the decision needs to know whether each value is new
/// deployment-wide (to count distinct values): reading them again would
/// be a second request to the `{g}` slot per report.
#[derive(Default)]
struct ObservedCounts {
    by_decision: HashMap<u128, ([u32; GLOBAL_SLOTS], u64)>,
    /// Insertion order, for eviction.
    order: std::collections::VecDeque<u128>,
}

/// Global value counts and stats taught by this replica's reports and not
/// yet known to be in Redis. A merge numbers the open batch and sends it
/// with any earlier unconfirmed ones; the merge script applies only the
/// batches numbered above this replica's marker (`P:{g}:m:<replica>`), sets
/// the marker to the highest, atomically, so a retried batch is applied
/// once. An observe reads the marker with the value counts (one MGET) and
/// adds the batches above it: what this replica taught shows at once,
/// exactly, and other replicas' within about two flush intervals.
#[derive(Clone, Debug, Default)]
pub(super) struct Taught {
    pub(super) seq: u64,
    /// When a merge confirmed it.
    confirmed_at: Option<std::time::Instant>,
    /// Change of each value count, by (slot, value: the fact's hex16 as
    /// a number).
    pub(super) values: HashMap<(usize, u64), i64>,
    pub(super) logins: i64,
    pub(super) users: i64,
    /// Change of the distinct values per slot, as this replica saw it (the
    /// merge script counts them from Redis's own counts).
    pub(super) distinct: [i64; GLOBAL_SLOTS],
}

impl Taught {
    fn is_empty(&self) -> bool {
        self.values.is_empty() && self.logins == 0 && self.users == 0
    }
}

/// Most value counts held here unmerged (the merge failing for long): past
/// it a report's value counts are not taught (its logins still are).
const TAUGHT_CAP: usize = 65_536;
/// Most batches sent and unconfirmed: past it the open batch keeps growing
/// (it is laid over every read) instead of a new one being numbered.
const UNCONFIRMED_CAP: usize = 8;
/// Most batches kept in all (confirmed ones included).
const SENT_CAP: usize = 64;

/// A report that taught (mode 1) or untaught (mode -1) a login, for
/// [`GlobalCounts::teach`].
pub(super) struct Teaching {
    pub(super) mode: i64,
    pub(super) new_user: bool,
    /// (slot, value, count in Redis — `None` when it could not be read) of
    /// each global fact.
    pub(super) facts: Vec<(usize, u64, Option<i64>)>,
    /// This replica's marker, read with the counts.
    pub(super) marker: u64,
}

impl GlobalCounts {
    /// Counts an attempt (and a failure); returns attempts and failures as
    /// of `at`, this attempt included.
    pub(super) fn count(&mut self, at: UnixMillis, failed: bool) -> (Windows, Windows) {
        for (k, on) in [(0, true), (1, failed)] {
            if on {
                for (w, (width, _)) in GEOMETRY.iter().enumerate() {
                    let b = bucket(at, *width);
                    bump(&mut self.pending[k][w], b, 1);
                    bump(&mut self.known[k][w], b, 1);
                }
            }
        }
        (self.windows(0, at), self.windows(1, at))
    }

    pub(super) fn windows(&self, k: usize, at: UnixMillis) -> Windows {
        let count = |w: usize| {
            let (width, len) = GEOMETRY[w];
            window_count(
                bucket(at, width),
                len as u32,
                GLOBAL_BUCKET_MAX,
                self.known[k][w].iter().copied(),
            )
        };
        Windows {
            m1: count(0),
            h1: count(1),
            h24: count(2),
        }
    }

    /// The batches not in Redis as of `marker`, in the order the merge
    /// applies them (the open one, always, last).
    fn above(&self, marker: u64) -> impl Iterator<Item = &Taught> {
        self.sent
            .iter()
            .filter(move |t| t.seq > marker)
            .chain(std::iter::once(&self.open))
    }

    /// A value count as Redis will hold it once this replica's batches
    /// above `marker` are merged: `count` (read with `marker`) changed by
    /// each in turn, never below zero, as the merge script applies them.
    pub(super) fn value_view(&self, slot: usize, value: u64, count: i64, marker: u64) -> i64 {
        self.above(marker)
            .filter_map(|t| t.values.get(&(slot, value)))
            .fold(count.max(0), |c, d| (c + d).max(0))
    }

    /// Keeps the value counts and marker an observe of `decision` read
    /// (at most [`OBSERVED_CAP`] decisions, the oldest forgotten first).
    pub(super) fn observed(&mut self, decision: u128, counts: [u32; GLOBAL_SLOTS], marker: u64) {
        let o = &mut self.observed;
        if let Some(kept) = o.by_decision.get_mut(&decision) {
            *kept = (counts, marker);
            return;
        }
        while o.by_decision.len() >= OBSERVED_CAP {
            let Some(old) = o.order.pop_front() else {
                break;
            };
            o.by_decision.remove(&old);
        }
        o.by_decision.insert(decision, (counts, marker));
        o.order.push_back(decision);
    }

    /// The value counts and marker the observe of `decision` read, if kept
    /// and still exact: every batch of this replica above that marker is
    /// still here to be laid over them ([`Self::value_view`]).
    pub(super) fn observed_counts(&self, decision: u128) -> Option<([u32; GLOBAL_SLOTS], u64)> {
        self.observed
            .by_decision
            .get(&decision)
            .copied()
            .filter(|(_, marker)| *marker >= self.dropped)
    }

    /// Whether something taught here waits for a number (a merge).
    pub(super) fn has_open(&self) -> bool {
        !self.open.is_empty()
    }

    /// Whether nothing taught here could be missing from what Redis
    /// answers.
    pub(super) fn all_merged(&self) -> bool {
        self.open.is_empty() && self.sent.is_empty()
    }

    /// The deployment's stats as this replica knows them: as read, plus
    /// what it taught since; `None` until read.
    pub(super) fn stats_view(&self) -> Option<GlobalStats> {
        let (mut s, marker) = self.stats?;
        let add = |v: &mut u32, d: i64| {
            *v = u32::try_from((i64::from(*v) + d).max(0)).unwrap_or(u32::MAX);
        };
        for t in self.above(marker) {
            add(&mut s.logins, t.logins);
            add(&mut s.users, t.users);
            for (d, n) in s.distinct.iter_mut().zip(t.distinct) {
                add(d, n);
            }
        }
        Some(s)
    }

    /// Records a report's change of the global counts, as the merge script
    /// will apply it: a count never goes below zero; a value is distinct
    /// while its count is above zero.
    pub(super) fn teach(&mut self, t: &Teaching) {
        let logins = self.stats_view().map(|s| s.logins);
        let held: usize =
            self.open.values.len() + self.sent.iter().map(|b| b.values.len()).sum::<usize>();
        let room = held + t.facts.len() <= TAUGHT_CAP;
        let mut changes = Vec::with_capacity(t.facts.len());
        for &(slot, value, count) in &t.facts {
            if !room {
                break;
            }
            let Some(count) = count else {
                // Unknown: the change as reported (the merge script
                // floors it and counts distinct values from Redis's own).
                changes.push((slot, value, t.mode.signum(), 0));
                continue;
            };
            let now = self.value_view(slot, value, count, t.marker);
            if t.mode > 0 {
                changes.push((slot, value, 1, i64::from(now == 0)));
            } else if now > 0 {
                changes.push((slot, value, -1, -i64::from(now == 1)));
            }
        }
        if !room && !self.over_cap {
            tracing::warn!(
                "global value counts not merged for long: reports' value counts are dropped until a merge succeeds"
            );
        }
        self.over_cap = !room;
        let open = &mut self.open;
        for (slot, value, d, distinct) in changes {
            *open.values.entry((slot, value)).or_insert(0) += d;
            open.distinct[slot] += distinct;
        }
        if t.mode > 0 {
            open.logins += 1;
            open.users += i64::from(t.new_user);
        } else if logins != Some(0) {
            open.logins -= 1;
        }
    }

    /// Numbers the open batch (if anything was taught) and returns every
    /// unconfirmed batch, for a merge; forgets batches confirmed more than
    /// `keep` ago.
    fn close(&mut self, keep: Duration) -> Vec<Taught> {
        // A confirmed batch the cached stats do not include yet is still
        // laid over them.
        let cached = self.stats.map_or(0, |(_, m)| m);
        let mut dropped = self.dropped;
        self.sent.retain(|t| {
            let kept = t.seq > cached || t.confirmed_at.is_none_or(|at| at.elapsed() <= keep);
            if !kept {
                dropped = dropped.max(t.seq);
            }
            kept
        });
        // Bounded should the stats stay unread for long.
        while self.sent.len() > SENT_CAP && self.sent[0].confirmed_at.is_some() {
            dropped = dropped.max(self.sent.remove(0).seq);
        }
        self.dropped = dropped;
        let unconfirmed = self
            .sent
            .iter()
            .filter(|t| t.confirmed_at.is_none())
            .count();
        if !self.open.is_empty() && unconfirmed < UNCONFIRMED_CAP {
            self.last_seq += 1;
            let mut t = std::mem::take(&mut self.open);
            t.seq = self.last_seq;
            self.sent.push(t);
        }
        self.sent
            .iter()
            .filter(|t| t.confirmed_at.is_none())
            .cloned()
            .collect()
    }

    /// Caches stats read with this replica's marker, unless those cached
    /// are of a later marker (a read that was overtaken).
    pub(super) fn read_stats(&mut self, read: (GlobalStats, u64)) {
        if self.stats.is_none_or(|(_, m)| m <= read.1) {
            self.stats = Some(read);
        }
    }

    /// Records that Redis has every batch up to `marker`.
    fn confirm(&mut self, marker: u64) {
        let now = std::time::Instant::now();
        for t in &mut self.sent {
            if t.seq <= marker && t.confirmed_at.is_none() {
                t.confirmed_at = Some(now);
            }
        }
    }
}

/// What a merge writes and reads.
pub(super) struct Merge {
    /// `P:{g}:v`.
    pub(super) counts: String,
    /// `P:{g}:stats`.
    pub(super) stats: String,
    /// `P:{g}:m:<replica>`, read with the value counts.
    pub(super) marker: String,
    /// `m:<replica>`, the same marker in the stats hash, read with them.
    pub(super) marker_field: String,
    /// The key prefix (value counts are `P:{g}:s:<slot>:<value>`).
    pub(super) prefix: String,
    pub(super) script: Script,
    /// [`SWEEP_MARKERS`].
    pub(super) sweep: Script,
    pub(super) profile_ttl_ms: u64,
    pub(super) timeout: Duration,
    /// How long a confirmed batch is kept for reads in flight: longer than
    /// a read can take (a cluster's request may be retried once).
    pub(super) keep: Duration,
}

/// The marker lives this long after the last batch it counts (a replica's
/// batches are retried within seconds).
const MARKER_TTL_MS: i64 = 24 * HOUR_MS;
/// How often a merge sweeps the marker fields of replicas gone for a day.
const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// KEYS: 1 the stats hash, then the marker keys of the fields in ARGV: a
/// field whose key has expired is deleted.
pub(super) const SWEEP_MARKERS: &str = r#"local n = 0
for i = 1, #ARGV do
  if redis.call('EXISTS', KEYS[i + 1]) == 0 then
    n = n + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return n"#;

/// Merges this replica's deployment-wide counts every `every` until the
/// store is dropped.
pub(super) async fn merge_global(
    state: std::sync::Weak<Mutex<GlobalCounts>>,
    conn: Conn,
    merge: Arc<Merge>,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        let Some(state) = state.upgrade() else {
            return;
        };
        match merge_once(&state, &conn, &merge).await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("deployment-wide counts merged again");
            }
            Ok(()) => {}
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "deployment-wide counts not merged; kept for the next try");
            }
            Err(_) => {}
        }
    }
}

/// Deletes the stats' marker fields of replicas gone for a day (their
/// marker keys have expired), so restarts do not grow the stats hash. One
/// script with every key it checks declared (a cluster's `{g}` slot).
async fn sweep_markers(conn: &Conn, merge: &Merge) -> Result<(), StoreError> {
    let mut read = redis::pipe();
    read.cmd("HKEYS").arg(&merge.stats);
    let fields: Vec<String> = match query(conn, &read).await.map_err(unavailable)?.pop() {
        Some(v) => FromRedisValue::from_redis_value(v)
            .map_err(|e| StoreError::Unavailable(format!("redis: the stats' fields: {e}")))?,
        None => Vec::new(),
    };
    let others: Vec<&str> = fields
        .iter()
        .filter(|f| f.starts_with("m:") && **f != merge.marker_field)
        .map(String::as_str)
        .collect();
    if others.is_empty() {
        return Ok(());
    }
    let mut inv = merge.sweep.prepare_invoke();
    inv.key(&merge.stats);
    for f in &others {
        inv.key(format!("{}:{{g}}:{f}", merge.prefix)).arg(*f);
    }
    invoke::<i64>(conn, &inv).await.map(|_| ())
}

/// Applies the unconfirmed [`Taught`] batches with the merge script;
/// returns this replica's marker after it.
async fn merge_taught(conn: &Conn, merge: &Merge, batches: &[Taught]) -> Result<u64, StoreError> {
    let mut keys: Vec<String> = Vec::new();
    let mut index: HashMap<(usize, u64), usize> = HashMap::new();
    let mut inv = merge.script.prepare_invoke();
    inv.key(&merge.stats).key(&merge.marker);
    inv.arg(merge.profile_ttl_ms)
        .arg(MARKER_TTL_MS)
        .arg(&merge.marker_field);
    for b in batches {
        // A value taught and untaught within the batch changes nothing.
        let changed = b.values.iter().filter(|(_, d)| **d != 0);
        inv.arg(b.seq)
            .arg(b.logins)
            .arg(b.users)
            .arg(changed.clone().count());
        for ((slot, value), d) in changed {
            let i = *index.entry((*slot, *value)).or_insert_with(|| {
                keys.push(value_count_key(
                    &merge.prefix,
                    *slot,
                    format!("{value:016x}"),
                ));
                keys.len()
            });
            inv.arg(i).arg(*slot).arg(*d);
        }
    }
    inv.key(&keys[..]);
    let top = within(merge.timeout, invoke::<i64>(conn, &inv)).await?;
    Ok(u64::try_from(top).unwrap_or(0))
}

/// `call`'s answer, or a timeout once `timeout` has passed.
async fn within<T>(
    timeout: Duration,
    call: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or(Err(StoreError::Timeout(timeout)))
}

/// One merge: applies what this replica taught, adds the pending counts
/// to Redis, reads the deployment's back, and drops buckets that can never
/// count again. On failure the pending counts and taught batches are kept
/// for the next merge.
pub(super) async fn merge_once(
    state: &Mutex<GlobalCounts>,
    conn: &Conn,
    merge: &Merge,
) -> Result<(), StoreError> {
    let (batches, sweep) = {
        let mut s = state.lock();
        let sweep = s.last_sweep.is_none_or(|at| at.elapsed() >= SWEEP_EVERY);
        if sweep {
            s.last_sweep = Some(std::time::Instant::now());
        }
        (s.close(merge.keep), sweep)
    };
    if sweep {
        // Best effort: swept again next time.
        if let Err(e) = within(merge.timeout, sweep_markers(conn, merge)).await {
            tracing::warn!(error = %e, "gone replicas' marker fields not swept; again in 10 minutes");
        }
    }
    let mut failed = None;
    if !batches.is_empty() {
        match merge_taught(conn, merge, &batches).await {
            Ok(marker) => state.lock().confirm(marker),
            // Kept for the next merge; the attempts and failures are
            // merged all the same.
            Err(e) => failed = Some(e),
        }
    }
    let deltas = std::mem::take(&mut state.lock().pending);
    let key = &merge.counts;
    let mut pipe = redis::pipe();
    let mut any = false;
    for (k, kind) in GLOBAL_KINDS.iter().enumerate() {
        for (w, counts) in deltas[k].iter().enumerate() {
            for (b, n) in counts {
                pipe.cmd("HINCRBY")
                    .arg(key)
                    .arg(format!("{kind}{}:{b}", w + 1))
                    .arg(*n)
                    .ignore();
                any = true;
            }
        }
    }
    if any {
        pipe.cmd("PEXPIRE").arg(key).arg(COUNTER_TTL_MS).ignore();
    }
    pipe.cmd("HGETALL").arg(key);
    GlobalStats::read(&mut pipe, merge);
    let read = async { query(conn, &pipe).await.map_err(unavailable) };
    let answer = within(merge.timeout, read)
        .await
        .and_then(|v| match <[Value; 2]>::try_from(v) {
            Ok([counts, Value::Array(stats)]) => Ok((counts, GlobalStats::parse(&stats))),
            _ => Err(StoreError::Unavailable(
                "redis: the merge answered unexpected values".into(),
            )),
        });
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            // Not written: count them again next time. The cached stats
            // are no longer kept fresh: observes read them again.
            let mut s = state.lock();
            s.stale = true;
            for (pending, deltas) in s.pending.iter_mut().zip(&deltas) {
                for (counts, deltas) in pending.iter_mut().zip(deltas) {
                    for (b, n) in deltas {
                        bump(counts, *b, *n);
                    }
                }
            }
            return Err(e);
        }
    };
    let (answer, stats) = answer;
    let read = Buckets::parse(answer);
    let stale = read.stale_per_window();
    {
        let mut s = state.lock();
        let mut known: [[BucketCounts; 3]; 2] = Default::default();
        for (k, kind) in GLOBAL_KINDS.iter().enumerate() {
            for (w, counts) in known[k].iter_mut().enumerate() {
                counts.extend(read.of(*kind, w));
                // Counted here since the merge began.
                for (b, n) in &s.pending[k][w] {
                    bump(counts, *b, *n);
                }
            }
        }
        s.known = known;
        // With the marker read in the same HMGET: the batches above it
        // are laid over these stats.
        s.read_stats(stats);
        s.stale = false;
    }
    if !stale.is_empty() {
        let mut del = redis::pipe();
        del.cmd("HDEL").arg(key).arg(stale).ignore();
        let _ = tokio::time::timeout(merge.timeout, query(conn, &del)).await;
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn teaching(mode: i64, count: i64, marker: u64) -> Teaching {
        Teaching {
            mode,
            new_user: mode > 0,
            facts: vec![(4, 0xab, Some(count))],
            marker,
        }
    }

    fn cached(logins: u32) -> GlobalCounts {
        GlobalCounts {
            stats: Some((
                GlobalStats {
                    logins,
                    ..GlobalStats::default()
                },
                0,
            )),
            ..GlobalCounts::default()
        }
    }

    #[test]
    fn taught_counts_show_at_once_and_once_merged_not_twice() {
        let mut g = cached(10);
        // A new value: its count and the slot's distinct values go up.
        g.teach(&teaching(1, 0, 0));
        assert_eq!(g.value_view(4, 0xab, 0, 0), 1);
        let s = g.stats_view().unwrap();
        assert_eq!((s.logins, s.users, s.distinct[4]), (11, 1, 1));
        // A merge sends it as batch 1 and Redis confirms it.
        let sent = g.close(Duration::from_secs(1));
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].seq, 1);
        g.confirm(1);
        // A read that was in flight (marker 0) still adds it; one after
        // the merge (marker 1) has it already.
        assert_eq!(g.value_view(4, 0xab, 0, 0), 1);
        assert_eq!(g.value_view(4, 0xab, 1, 1), 1);
        // Confirmed batches are not sent again…
        assert!(g.close(Duration::from_secs(1)).is_empty());
        assert!(!g.all_merged());
        // …and, once the cached stats include them, forgotten when no
        // read can be in flight.
        g.close(Duration::ZERO);
        assert!(!g.all_merged());
        g.read_stats((g.stats.unwrap().0, 1));
        g.close(Duration::ZERO);
        assert!(g.all_merged());
        assert_eq!(g.value_view(4, 0xab, 0, 0), 0);
    }

    #[test]
    fn untaught_counts_never_go_below_zero() {
        let mut g = cached(0);
        // Redis says 0 and nothing is taught here: nothing to untaught.
        g.teach(&teaching(-1, 0, 0));
        assert_eq!(g.value_view(4, 0xab, 0, 0), 0);
        let s = g.stats_view().unwrap();
        assert_eq!((s.logins, s.distinct[4]), (0, 0));
        // Taught then untaught before a merge: back where it was.
        g.teach(&teaching(1, 0, 0));
        g.teach(&teaching(-1, 0, 0));
        assert_eq!(g.value_view(4, 0xab, 0, 0), 0);
        let s = g.stats_view().unwrap();
        assert_eq!((s.logins, s.users, s.distinct[4]), (0, 1, 0));
        // A failed merge keeps the batch for the next one, numbered.
        let first = g.close(Duration::from_secs(1));
        assert_eq!(first.len(), 1);
        g.teach(&teaching(1, 5, 0));
        let second = g.close(Duration::from_secs(1));
        assert_eq!(second.iter().map(|t| t.seq).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(second[1].values.get(&(4, 0xab)), Some(&1));
    }

    #[test]
    fn batches_are_laid_over_in_the_order_the_merge_applies_them() {
        // Stats read at zero; a login taught and sent (not confirmed),
        // then untaught: the merge applies +1 then -1, so 0, as the
        // memory store has it.
        let mut g = cached(0);
        g.teach(&teaching(1, 0, 0));
        g.close(Duration::from_secs(1));
        // (Its read: Redis still at 0, marker 0.)
        g.teach(&teaching(-1, 0, 0));
        let s = g.stats_view().unwrap();
        assert_eq!((s.logins, s.distinct[4]), (0, 0));
        assert_eq!(g.value_view(4, 0xab, 0, 0), 0);
    }

    #[test]
    fn value_counts_are_laid_over_batch_by_batch_never_below_zero() {
        // Untaught here while Redis said 1 (sent, not confirmed); another
        // replica's unteaching then took Redis to 0; taught here again.
        let mut g = cached(5);
        g.teach(&teaching(-1, 1, 0));
        g.close(Duration::from_secs(1));
        g.teach(&teaching(1, 0, 0));
        // The merge applies -1 (floored at 0), then +1: 1, not 0.
        assert_eq!(g.value_view(4, 0xab, 0, 0), 1);
    }

    #[test]
    fn a_report_whose_counts_were_not_read_still_changes_them() {
        let mut g = cached(3);
        let unknown = |mode| Teaching {
            mode,
            new_user: false,
            facts: vec![(4, 0xab, None)],
            marker: 0,
        };
        g.teach(&unknown(-1));
        assert_eq!(g.open.values.get(&(4, 0xab)), Some(&-1));
        assert_eq!(g.stats_view().unwrap().logins, 2);
        g.teach(&unknown(1));
        assert_eq!(g.open.values.get(&(4, 0xab)), Some(&0));
    }

    #[test]
    fn a_decisions_observed_counts_serve_its_report_while_exact() {
        let mut g = cached(0);
        let mut read = [0u32; GLOBAL_SLOTS];
        read[4] = 7;
        g.observed(1, read, 0);
        assert_eq!(g.observed_counts(1), Some((read, 0)));
        assert_eq!(g.observed_counts(2), None, "never observed here");
        // A batch above the marker read is dropped (merged, confirmed,
        // included in the stats, kept past `keep`): a read at marker 0
        // would miss it, so the counts no longer serve.
        g.teach(&teaching(1, 0, 0));
        g.close(Duration::from_secs(1));
        g.confirm(1);
        g.read_stats((g.stats.unwrap().0, 1));
        assert_eq!(g.observed_counts(1), Some((read, 0)), "still laid over");
        g.close(Duration::ZERO);
        assert_eq!(g.observed_counts(1), None);
        // Observed after it: exact again.
        g.observed(3, read, 1);
        assert_eq!(g.observed_counts(3), Some((read, 1)));
    }

    #[test]
    fn observed_counts_are_bounded_and_forget_the_oldest() {
        let mut g = GlobalCounts::default();
        let n = OBSERVED_CAP as u128;
        for d in 0..n + 10 {
            g.observed(d, [0; GLOBAL_SLOTS], 0);
        }
        assert_eq!(g.observed.by_decision.len(), OBSERVED_CAP);
        assert_eq!(g.observed.order.len(), OBSERVED_CAP);
        assert_eq!(g.observed_counts(9), None);
        assert!(g.observed_counts(10).is_some());
        assert!(g.observed_counts(n + 9).is_some());
        // The same decision observed again (a retried call) is kept once.
        g.observed(n + 9, [1; GLOBAL_SLOTS], 0);
        assert_eq!(g.observed.order.len(), OBSERVED_CAP);
    }

    #[test]
    fn merges_failing_for_long_stop_numbering_batches() {
        let mut g = cached(0);
        for _ in 0..3 * UNCONFIRMED_CAP {
            g.teach(&teaching(1, 0, 0));
            g.close(Duration::from_secs(60));
        }
        assert_eq!(g.sent.len(), UNCONFIRMED_CAP);
        // What came after is in the open batch, still laid over reads.
        assert_eq!(g.stats_view().unwrap().logins, 3 * UNCONFIRMED_CAP as u32);
    }
}
