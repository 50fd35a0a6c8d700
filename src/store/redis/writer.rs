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
    /// Fold these fields of a velocity hash into coarser buckets, (from,
    /// into), atomically (the fold script: replicas may fold at once).
    Fold {
        key: String,
        pairs: Vec<(String, String)>,
    },
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
            | Work::Fold { key, .. }
            | Work::PrunePending { key } => Some(key),
            Work::Flush(_) => None,
        }
    }

    pub(super) fn commands(&self, pipe: &mut Pipeline, ttl_ms: u64) {
        match self {
            Work::Record { key, entry } => {
                // Appended (a push at the head would shift the whole list
                // each time); its length, answered, tells when to trim.
                pipe.cmd("RPUSH").arg(key).arg(entry);
                pipe.cmd("PEXPIRE").arg(key).arg(ttl_ms).ignore();
            }
            Work::Forget { key, fields } => {
                pipe.cmd("HDEL").arg(key).arg(fields).ignore();
            }
            Work::Fold { .. } | Work::PrunePending { .. } | Work::Flush(_) => {}
        }
    }
}

/// Writes queued work in batches until the store is dropped.
pub(super) async fn background(
    mut rx: mpsc::Receiver<Work>,
    conn: Conn,
    fold: Script,
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
            match tokio::time::timeout(timeout, write_batch(&conn, &fold, &batch, ttl_ms)).await {
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
    let mut len = redis::pipe();
    len.cmd("HLEN").arg(key);
    let n: usize = match query(conn, &len).await?.pop() {
        Some(v) => FromRedisValue::from_redis_value(v)?,
        None => 0,
    };
    if n <= 2 * PENDING_CAP {
        return Ok(());
    }
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
    fold: &Script,
    batch: &[Work],
    ttl_ms: u64,
) -> redis::RedisResult<()> {
    for w in batch {
        match w {
            Work::PrunePending { key } => prune_pending(conn, key).await?,
            Work::Fold { key, pairs } => {
                let mut inv = fold.prepare_invoke();
                inv.key(key);
                for (from, into) in pairs {
                    inv.arg(from).arg(into);
                }
                let _: i64 = match conn {
                    Conn::Single(c) => inv.invoke_async(&mut c.pick()).await?,
                    Conn::Cluster(c) => inv.invoke_async(&mut c.clone()).await?,
                };
            }
            _ => {}
        }
    }
    // The recent-decision lists that grew past twice what is shown.
    let mut long = Vec::new();
    let mut note = |w: &Work, answer: Option<Value>| {
        if let (Work::Record { key, .. }, Some(v)) = (w, answer) {
            if usize::from_redis_value(v).is_ok_and(|n| n > 2 * RECENT_DECISIONS) {
                long.push(key.clone());
            }
        }
    };
    match conn {
        Conn::Single(_) => {
            // One pipeline, one round trip, for the whole batch. Only
            // RPUSH is answered, once per record, in order.
            let mut pipe = redis::pipe();
            for w in batch {
                w.commands(&mut pipe, ttl_ms);
            }
            let mut answers = query(conn, &pipe).await?.into_iter();
            for w in batch.iter().filter(|w| matches!(w, Work::Record { .. })) {
                note(w, answers.next());
            }
        }
        Conn::Cluster(_) => {
            // One small pipeline per item (its keys share a slot), all in
            // flight at once.
            let mut calls = tokio::task::JoinSet::new();
            for (i, w) in batch.iter().enumerate().filter(|(_, w)| w.key().is_some()) {
                let mut pipe = redis::pipe();
                w.commands(&mut pipe, ttl_ms);
                let conn = conn.clone();
                calls.spawn(async move { (i, query(&conn, &pipe).await) });
            }
            let mut result = Ok(());
            while let Some(r) = calls.join_next().await {
                match r {
                    Ok((i, Ok(v))) => note(&batch[i], v.into_iter().next()),
                    Ok((_, Err(e))) => result = Err(e),
                    Err(_) => {}
                }
            }
            result?;
        }
    }
    if long.is_empty() {
        return Ok(());
    }
    let trim = |pipe: &mut Pipeline, key: &str| {
        let keep = -i64::try_from(RECENT_DECISIONS).unwrap_or(20);
        pipe.cmd("LTRIM").arg(key).arg(keep).arg(-1).ignore();
    };
    if let Conn::Single(_) = conn {
        let mut all = redis::pipe();
        for key in &long {
            trim(&mut all, key);
        }
        return query(conn, &all).await.map(|_| ());
    }
    for key in &long {
        let mut one = redis::pipe();
        trim(&mut one, key);
        query(conn, &one).await?;
    }
    Ok(())
}

/// Queues the deletion of a velocity hash's fields that can never count
/// again, and of its distinct members past the cap (`members`: the
/// observation's time and the longest window the members are counted in).
pub(super) fn forget_stale(
    work: &mut Vec<Work>,
    key: impl FnOnce() -> String,
    b: &Buckets,
    members: Option<(UnixMillis, i64)>,
) {
    let Upkeep {
        delete: mut fields,
        fold,
    } = b.upkeep();
    if let Some((at, window)) = members {
        fields.extend(b.members_past_cap(at, window));
    }
    if fields.is_empty() && fold.is_empty() {
        return;
    }
    let key = key();
    if !fold.is_empty() {
        work.push(Work::Fold {
            key: key.clone(),
            pairs: fold,
        });
    }
    if !fields.is_empty() {
        work.push(Work::Forget { key, fields });
    }
}
