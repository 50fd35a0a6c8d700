//! The deployment-wide attempts and failures, counted per replica and
//! merged into Redis on an interval.

use super::*;

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
    let deltas = std::mem::take(&mut state.lock().pending);
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
    let answer = match tokio::time::timeout(timeout, query(conn, &pipe)).await {
        Ok(Ok(mut v)) => v
            .pop()
            .ok_or_else(|| StoreError::Unavailable("redis: the merge answered nothing".into())),
        Ok(Err(e)) => Err(unavailable(e)),
        Err(_) => Err(StoreError::Timeout(timeout)),
    };
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            // Not written: count them again next time.
            let mut s = state.lock();
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
    }
    if !stale.is_empty() {
        let mut del = redis::pipe();
        del.cmd("HDEL").arg(key).arg(stale).ignore();
        let _ = tokio::time::timeout(timeout, query(conn, &del)).await;
    }
    Ok(())
}
