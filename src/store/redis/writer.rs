//! The background writer: work that may wait (decisions with their
//! answers, clean-up that needs a read first) queued, bounded, and written in
//! batched pipelines, never on an RPC's path.

use super::*;

/// Work for the background writer.
pub(super) enum Work {
    /// Write a decision and its answer: `record` as the field `field` of
    /// the user's pending decisions `key` ([`super::observe::pending_record`]),
    /// unless a report wrote it first ([`Unwritten`]).
    Decision {
        key: String,
        field: String,
        decision: u128,
        record: Arc<str>,
    },
    /// Delete these fields (buckets that can never count again: deleting
    /// them late, or twice, changes nothing).
    Forget { key: String, fields: Vec<String> },
    /// Upkeep of a velocity hash that needs the value a field holds when
    /// it runs (the upkeep script, atomic: replicas may run it at once):
    /// fold `fold` fields into coarser buckets, (from, into); delete the
    /// `trim` members whose last-seen time is still at most the one read,
    /// (field, ms) — a member seen again since stays.
    Upkeep {
        key: String,
        fold: Vec<(String, String)>,
        trim: Vec<(String, i64)>,
    },
    /// Check a user's pending decisions against the cap; past twice the
    /// cap, drop the oldest.
    PrunePending { key: String },
    /// Answer once everything queued before has been written.
    Flush(oneshot::Sender<()>),
}

impl Work {
    /// Queues this work's plain commands; returns whether one of them is
    /// answered (HLEN: the pending count).
    pub(super) fn commands(&self, pipe: &mut Pipeline, ttl_ms: u64) -> bool {
        match self {
            Work::Decision {
                key, field, record, ..
            } => {
                // A report of this replica may have written it already,
                // taught mark included: never overwritten.
                pipe.cmd("HSETNX")
                    .arg(key)
                    .arg(field)
                    .arg(&**record)
                    .ignore();
                pipe.cmd("PEXPIRE").arg(key).arg(ttl_ms).ignore();
                false
            }
            Work::Forget { key, fields } => {
                pipe.cmd("HDEL").arg(key).arg(fields).ignore();
                false
            }
            Work::PrunePending { key } => {
                pipe.cmd("HLEN").arg(key);
                true
            }
            Work::Upkeep { .. } | Work::Flush(_) => false,
        }
    }
}

/// Writes queued work in batches until the store is dropped.
pub(super) async fn background(
    mut rx: mpsc::Receiver<Work>,
    unwritten: Unwritten,
    conn: Conn,
    upkeep: Script,
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
            match tokio::time::timeout(timeout, write_batch(&conn, &upkeep, &batch, ttl_ms)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(items = n, error = %e, "background store writes failed")
                }
                Err(_) => tracing::warn!(items = n, "background store writes timed out"),
            }
            // Written (or failed: then a report finds it no more than
            // before it was queued).
            unwritten.forget(&batch);
            batch.clear();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

/// The decisions this replica answered whose record is still queued for
/// the background writer, so that a report on this replica can write the
/// record itself instead of waiting for the writer (whose `HSETNX` then
/// leaves it). At most as many as the writer's queue and batch hold.
#[derive(Clone, Default)]
pub(super) struct Unwritten(Arc<Mutex<HashMap<u128, Arc<str>>>>);

impl Unwritten {
    pub(super) fn insert(&self, decision: u128, record: Arc<str>) {
        self.0.lock().insert(decision, record);
    }

    pub(super) fn remove(&self, decision: u128) {
        self.0.lock().remove(&decision);
    }

    /// The queued record of `decision`, if any.
    pub(super) fn get(&self, decision: u128) -> Option<Arc<str>> {
        self.0.lock().get(&decision).cloned()
    }

    /// Forgets the decisions of a batch the writer has done with.
    fn forget(&self, batch: &[Work]) {
        let mut m = self.0.lock();
        for w in batch {
            if let Work::Decision { decision, .. } = w {
                m.remove(decision);
            }
        }
    }
}

/// Drops the oldest pending decisions of `key` down to the cap.
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

/// Writes a batch: its plain commands in one pipeline (single node) or one
/// per item, all at once (cluster); then what their answers call for
/// (pending past twice the cap) and the upkeep
/// scripts, one per key. Only a failure of the plain commands fails the
/// batch; a failed follow-up is logged and asked for again by a later read.
pub(super) async fn write_batch(
    conn: &Conn,
    upkeep: &Script,
    batch: &[Work],
    ttl_ms: u64,
) -> redis::RedisResult<()> {
    // (item, its answer) for the items whose command is answered.
    let mut answers: Vec<(usize, Value)> = Vec::new();
    match conn {
        Conn::Single(_) => {
            let mut pipe = redis::pipe();
            let mut answered = Vec::new();
            for (i, w) in batch.iter().enumerate() {
                if w.commands(&mut pipe, ttl_ms) {
                    answered.push(i);
                }
            }
            if pipe.cmd_iter().next().is_some() {
                let values = query(conn, &pipe).await?;
                answers.extend(answered.into_iter().zip(values));
            }
        }
        Conn::Cluster(_) => {
            // One small pipeline per item (its keys share a slot).
            let mut calls = tokio::task::JoinSet::new();
            for (i, w) in batch.iter().enumerate() {
                let mut pipe = redis::pipe();
                w.commands(&mut pipe, ttl_ms);
                if pipe.cmd_iter().next().is_none() {
                    continue;
                }
                let conn = conn.clone();
                calls.spawn(async move { (i, query(&conn, &pipe).await) });
            }
            let mut result = Ok(());
            while let Some(r) = calls.join_next().await {
                match r {
                    Ok((i, Ok(v))) => {
                        if let Some(v) = v.into_iter().next() {
                            answers.push((i, v));
                        }
                    }
                    Ok((_, Err(e))) => result = Err(e),
                    Err(_) => {}
                }
            }
            result?;
        }
    }
    let mut crowded = std::collections::BTreeSet::new();
    for (i, v) in answers {
        let n = usize::from_redis_value(v).unwrap_or(0);
        if let Work::PrunePending { key } = &batch[i]
            && n > 2 * PENDING_CAP
        {
            crowded.insert(key.as_str());
        }
    }
    for key in crowded {
        if let Err(e) = prune_pending(conn, key).await {
            tracing::warn!(error = %e, "pending decisions were not pruned");
        }
    }
    // One upkeep per key: the last read's (it saw the most).
    let mut upkeeps: std::collections::BTreeMap<&str, &Work> = Default::default();
    for w in batch {
        if let Work::Upkeep { key, .. } = w {
            upkeeps.insert(key.as_str(), w);
        }
    }
    for w in upkeeps.into_values() {
        let Work::Upkeep { key, fold, trim } = w else {
            continue;
        };
        let mut inv = upkeep.prepare_invoke();
        inv.key(key).arg(fold.len());
        for (from, into) in fold {
            inv.arg(from).arg(into);
        }
        for (member, seen) in trim {
            inv.arg(member).arg(*seen);
        }
        let done: redis::RedisResult<i64> = match conn {
            Conn::Single(c) => inv.invoke_async(&mut c.pick()).await,
            Conn::Cluster(c) => inv.invoke_async(&mut c.clone()).await,
        };
        if let Err(e) = done {
            tracing::warn!(error = %e, "velocity upkeep failed");
        }
    }
    Ok(())
}

/// Queues the upkeep of a velocity hash after a read: fields that can never
/// count again are deleted; past [`FOLD_AT`], fields that left their own
/// window are folded; past the cap, distinct members (`members`: the
/// observation's time and the longest window they are counted in) are
/// trimmed.
pub(super) fn forget_stale(
    work: &mut Vec<Work>,
    key: impl FnOnce() -> String,
    b: &Buckets,
    members: Option<(UnixMillis, i64)>,
) {
    let Upkeep { delete, fold } = b.upkeep();
    let trim = members.map_or_else(Vec::new, |(at, window)| b.members_past_cap(at, window));
    if delete.is_empty() && fold.is_empty() && trim.is_empty() {
        return;
    }
    let key = key();
    if !fold.is_empty() || !trim.is_empty() {
        work.push(Work::Upkeep {
            key: key.clone(),
            fold,
            trim,
        });
    }
    if !delete.is_empty() {
        work.push(Work::Forget {
            key,
            fields: delete,
        });
    }
}
