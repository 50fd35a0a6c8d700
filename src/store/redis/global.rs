//! The deployment-wide attempts and failures, counted per replica and
//! merged into Redis on an interval.

use super::*;

/// The deployment's verified logins, users and distinct values per slot
/// (`P:{g}:stats`), read with one HMGET of these fields.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct GlobalStats {
    pub logins: u32,
    pub users: u32,
    pub distinct: [u32; GLOBAL_SLOTS],
}

impl GlobalStats {
    /// Queues the HMGET that [`GlobalStats::parse`] reads.
    pub(super) fn read(pipe: &mut Pipeline, key: &str) {
        let hmget = pipe.cmd("HMGET").arg(key);
        hmget.arg("logins").arg("users");
        hmget.arg(&DISTINCT_FIELDS[..GLOBAL_SLOTS]);
    }

    /// The stats from the HMGET's answer (`Value`s in field order).
    pub(super) fn parse(s: &[Value]) -> GlobalStats {
        let mut out = GlobalStats {
            logins: u32_of(s.first()),
            users: u32_of(s.get(1)),
            ..GlobalStats::default()
        };
        for (slot, d) in out.distinct.iter_mut().enumerate() {
            *d = u32_of(s.get(2 + slot));
        }
        out
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
#[derive(Default)]
pub(super) struct GlobalCounts {
    /// The deployment's stats (`P:{g}:stats`) as last read by a merge or
    /// written by this replica's reports; `None` until first read.
    pub(super) stats: Option<GlobalStats>,
    /// Bumped by every report that writes the stats, so that a merge that
    /// read them before does not put back an older copy.
    pub(super) stats_version: u64,
    /// Events counted here and not merged yet, by kind and window.
    pending: [[BucketCounts; 3]; 2],
    /// The deployment's counts as last read, plus `pending`.
    known: [[BucketCounts; 3]; 2],
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
}

/// Merges this replica's deployment-wide counts every `every` until the
/// store is dropped.
pub(super) async fn merge_global(
    state: std::sync::Weak<Mutex<GlobalCounts>>,
    conn: Conn,
    key: String,
    every: Duration,
    timeout: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        let Some(state) = state.upgrade() else {
            return;
        };
        match merge_once(&state, &conn, &key, timeout).await {
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

/// One merge: adds the pending counts to Redis, reads the deployment's
/// back, and drops buckets that can never count again. On failure the
/// pending counts are kept for the next merge.
pub(super) async fn merge_once(
    state: &Mutex<GlobalCounts>,
    conn: &Conn,
    key: &str,
    timeout: Duration,
) -> Result<(), StoreError> {
    let (deltas, version) = {
        let mut s = state.lock();
        (std::mem::take(&mut s.pending), s.stats_version)
    };
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
    let stats_key = format!("{}:stats", key.strip_suffix(":v").unwrap_or(key));
    GlobalStats::read(&mut pipe, &stats_key);
    let answer = match tokio::time::timeout(timeout, query(conn, &pipe)).await {
        Ok(Ok(v)) => match <[Value; 2]>::try_from(v) {
            Ok([counts, Value::Array(stats)]) => Ok((counts, GlobalStats::parse(&stats))),
            _ => Err(StoreError::Unavailable(
                "redis: the merge answered unexpected values".into(),
            )),
        },
        Ok(Err(e)) => Err(unavailable(e)),
        Err(_) => Err(StoreError::Timeout(timeout)),
    };
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            // Not written: count them again next time. The cached stats
            // can no longer be kept fresh: observes read them again.
            let mut s = state.lock();
            s.stats = None;
            s.stats_version += 1;
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
        if s.stats_version == version {
            s.stats = Some(stats);
        }
    }
    if !stale.is_empty() {
        let mut del = redis::pipe();
        del.cmd("HDEL").arg(key).arg(stale).ignore();
        let _ = tokio::time::timeout(timeout, query(conn, &del)).await;
    }
    Ok(())
}
