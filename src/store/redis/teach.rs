//! The user's profile as one string: read with one `GET`, changed by the
//! replica ([`Profile`], the memory store's own rules) and written back by a
//! small script only if nobody changed it since it was read
//! (`write_profile.lua`). Reports and support's device marks do this;
//! observe only reads.
//!
//! Profiles of earlier versions are hashes under the same key: a `GET` of
//! one answers `WRONGTYPE`, the hash is read and converted, and the first
//! write replaces it with the string (observe converts it at once, so each
//! user pays two more round trips once).

use super::*;
use crate::store::profile::{Facts12, Place, Profile};

/// Attempts of a read-modify-write before a report or mark gives up as
/// `Unavailable` (each failed attempt means another call changed the same
/// user's profile or decision in between).
const WRITE_ATTEMPTS: usize = 8;

/// A user's profile as read, with what it was read as: the write must find
/// it so (`write_profile.lua`, ARGV 1).
pub(super) struct Read {
    pub profile: Option<Profile>,
    /// The string read; empty for none; `hash:<fields>:<v>` for an earlier
    /// version's hash.
    pub was: Vec<u8>,
}

/// A pending decision's record ([`super::observe::pending_record`]) as a
/// report reads it; earlier versions' records (no answer; 12 or 11 facts)
/// too.
#[derive(Debug, PartialEq)]
pub(super) struct PendingRecord<'a> {
    pub taught: bool,
    pub expires: i64,
    pub at: i64,
    pub place: Option<GeoPoint>,
    /// Each fact as stored (hex of the key's first 8 bytes), `""` absent.
    pub facts: [&'a str; PROFILE_DIMS.len()],
}

impl<'a> PendingRecord<'a> {
    pub(super) fn parse(record: &'a str) -> Option<Self> {
        let mut it = record.split('|');
        let taught = match it.next()? {
            "0" => false,
            "1" => true,
            _ => return None,
        };
        let expires = it.next()?.parse().ok()?;
        let at = it.next()?.parse().ok()?;
        let _hour = it.next()?;
        let place = parse_place(it.next()?);
        let mut facts = [""; PROFILE_DIMS.len()];
        for (i, f) in facts.iter_mut().enumerate() {
            match it.next() {
                Some(v) => *f = v,
                // Records of the earliest version have 11 facts.
                None if i + 1 == PROFILE_DIMS.len() => {}
                None => return None,
            }
        }
        Some(PendingRecord {
            taught,
            expires,
            at,
            place,
            facts,
        })
    }

    /// The facts as the profile keys them (short keys, 0 absent).
    pub(super) fn shorts(&self) -> Facts12 {
        self.facts.map(|f| short_of_hex(f).unwrap_or(0))
    }
}

/// The short key ([`Key::short`], never 0) of a fact stored as hex.
fn short_of_hex(h: &str) -> Option<u64> {
    let mut b = [0u8; 8];
    hex::decode_to_slice(h, &mut b).ok()?;
    Some(u64::from_le_bytes(b).max(1))
}

/// A stored profile string, decoded. Another format (a newer version's,
/// read during a rollback) is neither read as empty nor overwritten.
pub(super) fn decode_profile(bytes: &[u8], key: &str) -> Result<Profile, StoreError> {
    Profile::decode(bytes).ok_or_else(|| {
        StoreError::Unavailable(format!(
            "redis: the profile at {key} is of an unknown format"
        ))
    })
}

/// An earlier version's profile hash, as `HGETALL` answered it.
pub(super) fn profile_hash(v: Value) -> Result<Vec<(String, String)>, StoreError> {
    FromRedisValue::from_redis_value(v)
        .map_err(|e| StoreError::Unavailable(format!("redis: profile hash: {e}")))
}

/// Whether a command's answer is Redis's `WRONGTYPE` (the profile is an
/// earlier version's hash).
fn wrong_type(v: &Value) -> bool {
    matches!(v, Value::ServerError(e) if e.code() == "WRONGTYPE")
}

impl RedisStore {
    /// Waits for this replica's turn at `user`'s profile.
    async fn user_turn(&self, user: Key) -> tokio::sync::MutexGuard<'_, ()> {
        let i = usize::try_from(user.short() % self.user_turns.len().max(1) as u64).unwrap_or(0);
        self.user_turns[i].lock().await
    }

    /// Before attempt `n` (from 1) of a write that found the profile
    /// changed: a random pause, its ceiling doubling per attempt (1 ms
    /// before the second attempt), so replicas writing the same profile
    /// stop colliding.
    async fn back_off(n: usize) {
        let ceiling = 500u64 << n.min(8);
        tokio::time::sleep(Duration::from_micros(rand::random::<u64>() % ceiling)).await;
    }

    /// Reads the profile from its `GET` answer (`got`); an earlier
    /// version's hash costs one more round trip.
    pub(super) async fn read_profile(&self, key: &str, got: Value) -> Result<Read, StoreError> {
        match got {
            Value::Nil => Ok(Read {
                profile: None,
                was: Vec::new(),
            }),
            Value::BulkString(b) => Ok(Read {
                profile: Some(decode_profile(&b, key)?),
                was: b,
            }),
            v if wrong_type(&v) => {
                let mut pipe = redis::pipe();
                pipe.cmd("HGETALL").arg(key);
                self.trip();
                let got = query(&self.conn, &pipe).await.map_err(unavailable)?;
                let hash = match got.into_iter().next() {
                    Some(v) => profile_hash(v)?,
                    None => Vec::new(),
                };
                let v = hash
                    .iter()
                    .find(|(f, _)| f == "v")
                    .map_or("", |(_, v)| v.as_str());
                let was = format!("hash:{}:{v}", hash.len()).into_bytes();
                let profile =
                    (!hash.is_empty()).then(|| Profile::from_export(&parse_profile_hash(&hash)));
                Ok(Read { profile, was })
            }
            other => Err(StoreError::Unavailable(format!(
                "redis: profile read answered {other:?}"
            ))),
        }
    }

    /// Converts an earlier version's profile hash to the string (observe
    /// calls it when it read one). Best effort: if the profile changed
    /// meanwhile, the next read converts it.
    pub(super) async fn convert_profile(&self, read: &Read, key: &str) {
        let Some(p) = &read.profile else { return };
        let mut inv = self.scripts.write_profile.prepare_invoke();
        inv.key(key).arg(&read.was[..]).arg(p.encode()).arg("keep");
        if let Err(e) = invoke::<i64>(&self.conn, &inv).await {
            tracing::debug!(error = %e, "profile conversion deferred");
        }
    }

    /// [`Store::report`]: reads the decision's record and the profile (one
    /// pipeline), teaches or unteaches the profile here, and writes both
    /// back with one script if neither changed since (else reads again).
    pub(super) async fn report_profile(
        &self,
        report: &OutcomeReport,
    ) -> Result<ReportEffect, StoreError> {
        let [kv, kprof, kpend] = self.user_keys(report.user);
        let field = format!("{:032x}", report.decision);
        let cap = self.settings.history_per_dim;
        let _turn = self.user_turn(report.user).await;
        for attempt in 0..WRITE_ATTEMPTS {
            if attempt > 0 {
                Self::back_off(attempt).await;
            }
            // Taken before the read: once the writer has written a record,
            // it forgets it.
            let queued = self.unwritten.get(report.decision);
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            pipe.cmd("HGET").arg(&kpend).arg(&field);
            pipe.cmd("GET").arg(&kprof);
            self.trip();
            let mut a = Answers::new(query(&self.conn, &pipe).await.map_err(unavailable)?);
            let (stored, got) = (a.next()?, a.raw()?);
            let (record, queued): (String, bool) = match stored {
                Value::BulkString(b) => (String::from_utf8_lossy(&b).into_owned(), false),
                _ => match queued {
                    Some(q) => (q.to_string(), true),
                    None if self.just_made(report.decision) => {
                        // Another replica's writer may not have written it.
                        return Err(StoreError::Unavailable(format!(
                            "decision {field} is not written yet: retry"
                        )));
                    }
                    None => return Err(StoreError::UnknownDecision(field)),
                },
            };
            let Some(pending) = PendingRecord::parse(&record) else {
                return Err(StoreError::UnknownDecision(field));
            };
            if pending.expires < report.at.0 {
                return Err(StoreError::UnknownDecision(field));
            }
            let teach = teaches(report.action, report.outcome) && !pending.taught;
            let untaught = report.outcome.is_fraud() && pending.taught;
            if !teach && !untaught {
                self.count_step_up_failure(report, &kv).await?;
                return Ok(ReportEffect::default());
            }
            let mut read = self.read_profile(&kprof, got).await?;
            let facts = pending.shorts();
            let mut new_user = false;
            let (profile, ttl) = if teach {
                let mut p = read.profile.take().unwrap_or_default();
                new_user = p.verified == 0;
                p.learn(&facts, pending.at, Place::of(pending.place), cap);
                let strong = report.outcome == Outcome::StepUpPassed
                    && matches!(report.factor, Some(Factor::Webauthn | Factor::Totp));
                if strong {
                    p.last_strong_auth = report.at.0.max(pending.at);
                }
                (Some(p), millis(self.settings.profile_ttl).to_string())
            } else {
                // Unteaching leaves the TTL: a fraud report is no login.
                let p = read.profile.take().map(|mut p| {
                    p.unlearn(&facts, pending.at);
                    p
                });
                (p, "keep".to_string())
            };
            let marked = format!("{}{}", if teach { '1' } else { '0' }, &record[1..]);
            let mut inv = self.scripts.write_profile.prepare_invoke();
            inv.key(&kprof)
                .key(&kpend)
                .arg(&read.was[..])
                .arg(profile.map(|p| p.encode()).unwrap_or_default())
                .arg(ttl)
                .arg(&field)
                .arg(&record)
                .arg(&marked)
                .arg(millis(self.settings.decision_ttl))
                .arg(u8::from(queued));
            self.trip();
            let written: i64 = invoke(&self.conn, &inv).await?;
            if written != 1 {
                continue;
            }
            // Recorded for the merge before anything else can fail: the
            // decision is marked in Redis now.
            let facts: Vec<&str> = pending.facts[..GLOBAL_SLOTS].to_vec();
            self.taught(
                report.decision,
                if teach { 1 } else { -1 },
                new_user,
                &facts,
            );
            self.count_step_up_failure(report, &kv).await?;
            return Ok(ReportEffect {
                profile_updated: true,
            });
        }
        Err(StoreError::Unavailable(format!(
            "the profile of decision {field} kept changing: retry"
        )))
    }

    /// A failed step-up counts as a failure of the user.
    async fn count_step_up_failure(
        &self,
        report: &OutcomeReport,
        kv: &str,
    ) -> Result<(), StoreError> {
        if report.outcome != Outcome::StepUpFailed {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        count_event(&mut pipe, kv, 'f', report.at);
        pipe.cmd("PEXPIRE").arg(kv).arg(COUNTER_TTL_MS).ignore();
        self.trip();
        query(&self.conn, &pipe).await.map_err(unavailable)?;
        Ok(())
    }

    /// [`Store::mark_device`]: the profile read, marked and written back if
    /// unchanged (else read again).
    pub(super) async fn mark_profile(
        &self,
        user: Key,
        device: Key,
        mark: Mark,
        at: UnixMillis,
    ) -> Result<bool, StoreError> {
        let kprof = self.user_key(user, "prof");
        let d = crate::store::profile::short_nonzero(device);
        let _turn = self.user_turn(user).await;
        for attempt in 0..WRITE_ATTEMPTS {
            if attempt > 0 {
                Self::back_off(attempt).await;
            }
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            pipe.cmd("GET").arg(&kprof);
            let mut a = Answers::new(query(&self.conn, &pipe).await.map_err(unavailable)?);
            let mut read = self.read_profile(&kprof, a.raw()?).await?;
            let mut p = read.profile.take().unwrap_or_default();
            let known = p.mark(d, mark, at, self.settings.history_per_dim);
            let mut inv = self.scripts.write_profile.prepare_invoke();
            inv.key(&kprof)
                .arg(&read.was[..])
                .arg(p.encode())
                .arg(millis(self.settings.profile_ttl));
            let written: i64 = invoke(&self.conn, &inv).await?;
            if written == 1 {
                return Ok(known);
            }
        }
        Err(StoreError::Unavailable(
            "the profile kept changing: retry".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_version_of_a_pending_record_is_read() {
        let facts: Vec<String> = (0..PROFILE_DIMS.len())
            .map(|i| {
                if i == 2 {
                    String::new()
                } else {
                    format!("{i:016x}")
                }
            })
            .collect();
        let base = format!(
            "1|1700000009000|1700000000000|42|48.85,2.35,20|{}",
            facts.join("|")
        );
        let answered = format!("{base}|ALLOW|0.25|NEW_DEVICE|0011223344556677");
        let eleven = format!(
            "0|1700000009000|1700000000000|42||{}",
            facts[..PROFILE_DIMS.len() - 1].join("|")
        );
        for r in [&base, &answered] {
            let p = PendingRecord::parse(r).expect("parses");
            assert!(p.taught);
            assert_eq!((p.expires, p.at), (1_700_000_009_000, 1_700_000_000_000));
            assert_eq!(p.place.map(|g| g.lat as f32), Some(48.85));
            assert_eq!(p.facts[2], "");
            assert_eq!(p.facts[11], facts[11]);
            assert_eq!(p.shorts()[1], u64::from_le_bytes(1u64.to_be_bytes()));
            assert_eq!(p.shorts()[2], 0);
        }
        let p = PendingRecord::parse(&eleven).expect("parses");
        assert!(!p.taught && p.place.is_none());
        assert_eq!(p.facts[11], "");
        for bad in ["", "2|1|1|1||", "0|x|1|1|", "0|1|1|1|"] {
            assert!(PendingRecord::parse(bad).is_none(), "{bad}");
        }
    }
}
