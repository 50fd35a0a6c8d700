//! The background writer: work that may wait (recent-decision records,
//! clean-up that needs a read first) queued, bounded, and written in
//! batched pipelines, never on an RPC's path.

use super::*;

/// Work for the background writer.
pub(super) enum Work {
    /// Push `entry` on the recent-decisions list `key`.
    Record { key: String, entry: String },
    /// Delete these fields (buckets that can never count again).
    Forget { key: String, fields: Vec<String> },
    /// Trim a distinct-user set past its cap, like `DistinctSet`: members
    /// not seen after `since`, then the oldest beyond the cap.
    Trim { key: String, since: i64 },
    /// Drop the oldest pending decisions of a user past the cap.
    PrunePending { key: String },
    /// Answer once everything queued before has been written.
    Flush(oneshot::Sender<()>),
}

impl Work {
    /// The key whose slot the work touches (cluster routing).
    pub(super) fn key(&self) -> Option<&str> {
        match self {
            Work::Record { key, .. }
            | Work::Forget { key, .. }
            | Work::Trim { key, .. }
            | Work::PrunePending { key } => Some(key),
            Work::Flush(_) => None,
        }
    }

    pub(super) fn commands(&self, pipe: &mut Pipeline, ttl_ms: u64) {
        match self {
            Work::Record { key, entry } => {
                // Appended, then the oldest trimmed: a push at the head would
                // shift the whole list each time.
                pipe.cmd("RPUSH").arg(key).arg(entry).ignore();
                pipe.cmd("LTRIM")
                    .arg(key)
                    .arg(-i64::try_from(RECENT_DECISIONS).unwrap_or(20))
                    .arg(-1)
                    .ignore();
                pipe.cmd("PEXPIRE").arg(key).arg(ttl_ms).ignore();
            }
            Work::Forget { key, fields } => {
                pipe.cmd("HDEL").arg(key).arg(fields).ignore();
            }
            Work::Trim { key, since } => {
                pipe.cmd("ZREMRANGEBYSCORE")
                    .arg(key)
                    .arg("-inf")
                    .arg(*since)
                    .ignore();
                pipe.cmd("ZREMRANGEBYRANK")
                    .arg(key)
                    .arg(0)
                    .arg(-(i64::from(CAP) + 1))
                    .ignore();
            }
            Work::PrunePending { .. } | Work::Flush(_) => {}
        }
    }
}

/// Writes queued work in batches until the store is dropped.
pub(super) async fn background(
    mut rx: mpsc::Receiver<Work>,
    conn: Conn,
    ttl_ms: u64,
    timeout: Duration,
) {
    let mut batch: Vec<Work> = Vec::with_capacity(BACKGROUND_BATCH);
    let mut flushes = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(w) = next.take() {
            match w {
                Work::Flush(done) => flushes.push(done),
                other => batch.push(other),
            }
            if batch.len() < BACKGROUND_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            let n = batch.len();
            match tokio::time::timeout(timeout, write_batch(&conn, &batch, ttl_ms)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(items = n, error = %e, "background store writes failed")
                }
                Err(_) => tracing::warn!(items = n, "background store writes timed out"),
            }
            batch.clear();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

pub(super) async fn prune_pending(conn: &Conn, key: &str) -> redis::RedisResult<()> {
    let mut read = redis::pipe();
    read.cmd("HKEYS").arg(key);
    let mut ids: Vec<String> = match query(conn, &read).await?.pop() {
        Some(v) => FromRedisValue::from_redis_value(v)?,
        None => Vec::new(),
    };
    if ids.len() <= PENDING_CAP {
        return Ok(());
    }
    ids.sort();
    let mut del = redis::pipe();
    del.cmd("HDEL")
        .arg(key)
        .arg(&ids[..ids.len() - PENDING_CAP])
        .ignore();
    query(conn, &del).await.map(|_| ())
}

pub(super) async fn write_batch(
    conn: &Conn,
    batch: &[Work],
    ttl_ms: u64,
) -> redis::RedisResult<()> {
    for w in batch {
        if let Work::PrunePending { key } = w {
            prune_pending(conn, key).await?;
        }
    }
    match conn {
        Conn::Single(_) => {
            // One pipeline, one round trip, for the whole batch.
            let mut pipe = redis::pipe();
            for w in batch {
                w.commands(&mut pipe, ttl_ms);
            }
            query(conn, &pipe).await.map(|_| ())
        }
        Conn::Cluster(_) => {
            // One small pipeline per item (its keys share a slot), all in
            // flight at once.
            let mut calls = tokio::task::JoinSet::new();
            for w in batch.iter().filter(|w| w.key().is_some()) {
                let mut pipe = redis::pipe();
                w.commands(&mut pipe, ttl_ms);
                let conn = conn.clone();
                calls.spawn(async move { query(&conn, &pipe).await });
            }
            let mut result = Ok(());
            while let Some(r) = calls.join_next().await {
                if let Ok(Err(e)) = r {
                    result = Err(e);
                }
            }
            result
        }
    }
}

pub(super) fn forget_stale(work: &mut Vec<Work>, key: impl FnOnce() -> String, b: &Buckets) {
    let fields = b.stale();
    if !fields.is_empty() {
        work.push(Work::Forget { key: key(), fields });
    }
}
