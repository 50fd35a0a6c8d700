//! The journal in a local SQLite file: the embedded default. WAL mode, so
//! readers (the backtest, the console) never block the writer.

use std::path::Path;

use rusqlite::{Connection, params, params_from_iter};

use crate::core::keys::Key;
use crate::domain::UnixMillis;

use super::{
    AuditRecord, Entry, Filter, JournalError, JournalStore, Label, OutcomeEntry, Overview, RawRow,
    Record, Stats, action_code, action_of, channel_code, codec, codes_text, degraded_code,
    factor_code, factor_of, level_code, outcome_code, outcome_of,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS journal_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO journal_meta (key, value) VALUES ('schema', '1');
CREATE TABLE IF NOT EXISTS decisions (
    id BLOB NOT NULL UNIQUE,
    at_ms INTEGER NOT NULL,
    user_key BLOB NOT NULL,
    channel INTEGER NOT NULL,
    action INTEGER NOT NULL,
    level INTEGER NOT NULL,
    score REAL NOT NULL,
    codes TEXT NOT NULL,
    shadow_codes TEXT NOT NULL,
    degraded INTEGER NOT NULL,
    policy_version TEXT NOT NULL,
    model_version TEXT NOT NULL,
    label INTEGER,
    label_rank INTEGER NOT NULL DEFAULT 0,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_at ON decisions (at_ms);
CREATE INDEX IF NOT EXISTS decisions_user ON decisions (user_key);
CREATE TABLE IF NOT EXISTS outcomes (
    decision BLOB NOT NULL,
    at_ms INTEGER NOT NULL,
    outcome INTEGER NOT NULL,
    factor INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outcomes_decision ON outcomes (decision);
CREATE INDEX IF NOT EXISTS outcomes_at ON outcomes (at_ms);
CREATE TABLE IF NOT EXISTS audit (
    at_ms INTEGER NOT NULL,
    who TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL,
    result TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at_ms);
";

const COLUMNS: &str = "id, at_ms, user_key, channel, action, level, score, degraded, \
                       policy_version, model_version, label, body";

fn db(e: rusqlite::Error) -> JournalError {
    JournalError::Database(e.to_string())
}

/// A journal in one SQLite file.
pub struct SqliteJournal {
    conn: Connection,
}

impl SqliteJournal {
    /// Opens `path`, creating the file and the schema when missing.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
            && !dir.exists()
        {
            return Err(JournalError::Database(format!(
                "the folder of `{}` does not exist",
                path.display()
            )));
        }
        let conn = Connection::open(path)
            .map_err(|e| JournalError::Database(format!("`{}`: {e}", path.display())))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db)?;
        // 8 MiB of page cache: the user-hash index is written at random
        // places, and with SQLite's 2 MiB default most inserts read a page
        // back from the kernel first. Larger is slower: every commit walks
        // the cache (pcache1TruncateUnsafe was 13 % of the writer at 64 MiB).
        conn.pragma_update(None, "cache_size", -8192).map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        Ok(SqliteJournal { conn })
    }
}

/// The `WHERE` clause and parameters of a filter.
fn where_clause(f: &Filter) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value;
    let mut clauses: Vec<&str> = Vec::new();
    let mut params: Vec<Value> = Vec::new();
    if let Some(from) = f.from {
        clauses.push("at_ms >= ?");
        params.push(Value::Integer(from.0));
    }
    if let Some(to) = f.to {
        clauses.push("at_ms < ?");
        params.push(Value::Integer(to.0));
    }
    if let Some(c) = f.channel {
        clauses.push("channel = ?");
        params.push(Value::Integer(channel_code(c)));
    }
    if let Some(a) = f.action {
        clauses.push("action = ?");
        params.push(Value::Integer(action_code(a)));
    }
    if let Some(r) = &f.reason {
        clauses.push("(instr(codes, ?) > 0 OR instr(shadow_codes, ?) > 0)");
        let needle = format!(",{r},");
        params.push(Value::Text(needle.clone()));
        params.push(Value::Text(needle));
    }
    match f.label {
        Some(Some(l)) => {
            clauses.push("label = ?");
            params.push(Value::Integer(l.code()));
        }
        Some(None) => clauses.push("label IS NULL"),
        None => {}
    }
    if let Some(u) = f.user {
        clauses.push("user_key = ?");
        params.push(Value::Blob(u.0.to_vec()));
    }
    if let Some(d) = f.decision {
        clauses.push("id = ?");
        params.push(Value::Blob(d.to_be_bytes().to_vec()));
    }
    let sql = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    (sql, params)
}

impl JournalStore for SqliteJournal {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn append(&mut self, batch: &[Entry]) -> Result<(), JournalError> {
        let tx = self.conn.transaction().map_err(db)?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO decisions (id, at_ms, user_key, channel, action, level, \
                     score, codes, shadow_codes, degraded, policy_version, model_version, body) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .map_err(db)?;
            let mut outcome = tx
                .prepare_cached(
                    "INSERT INTO outcomes (decision, at_ms, outcome, factor) VALUES (?, ?, ?, ?)",
                )
                .map_err(db)?;
            let mut label = tx
                .prepare_cached(
                    "UPDATE decisions SET label = ?, label_rank = ? WHERE id = ? AND label_rank <= ?",
                )
                .map_err(db)?;
            for e in batch {
                match e {
                    Entry::Decision(d) => {
                        let body = codec::encode(d).map_err(|p| JournalError::Corrupt {
                            id: d.id,
                            problem: p,
                        })?;
                        insert
                            .execute(params![
                                &d.id.to_be_bytes()[..],
                                d.at.0,
                                &d.user.0[..],
                                channel_code(d.channel),
                                action_code(d.action),
                                level_code(d.level),
                                d.score,
                                codes_text(&d.reasons),
                                codes_text(&d.shadow),
                                degraded_code(d.degraded),
                                d.policy_version,
                                d.model_version,
                                body,
                            ])
                            .map_err(db)?;
                    }
                    Entry::Outcome(o) => {
                        let id = o.decision.to_be_bytes();
                        outcome
                            .execute(params![
                                &id[..],
                                o.at.0,
                                outcome_code(o.outcome),
                                factor_code(o.factor)
                            ])
                            .map_err(db)?;
                        let (l, rank) = Label::of(o.outcome);
                        label
                            .execute(params![l.code(), rank, &id[..], rank])
                            .map_err(db)?;
                    }
                }
            }
        }
        tx.commit().map_err(db)
    }

    fn prune(&mut self, before: UnixMillis) -> Result<u64, JournalError> {
        let tx = self.conn.transaction().map_err(db)?;
        tx.execute(
            "DELETE FROM outcomes WHERE at_ms < ?1 \
             OR decision IN (SELECT id FROM decisions WHERE at_ms < ?1)",
            params![before.0],
        )
        .map_err(db)?;
        let n = tx
            .execute("DELETE FROM decisions WHERE at_ms < ?", params![before.0])
            .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(n as u64)
    }

    fn forget(&mut self, user: Key) -> Result<u64, JournalError> {
        let tx = self.conn.transaction().map_err(db)?;
        tx.execute(
            "DELETE FROM outcomes WHERE decision IN (SELECT id FROM decisions WHERE user_key = ?)",
            params![&user.0[..]],
        )
        .map_err(db)?;
        let n = tx
            .execute(
                "DELETE FROM decisions WHERE user_key = ?",
                params![&user.0[..]],
            )
            .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(n as u64)
    }

    fn stats(&mut self) -> Result<Stats, JournalError> {
        let c = &self.conn;
        let (decisions, oldest, newest): (i64, Option<i64>, Option<i64>) = c
            .query_row(
                "SELECT COUNT(*), MIN(at_ms), MAX(at_ms) FROM decisions",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(db)?;
        let outcomes: i64 = c
            .query_row("SELECT COUNT(*) FROM outcomes", [], |r| r.get(0))
            .map_err(db)?;
        let pages: i64 = c
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .map_err(db)?;
        let page_size: i64 = c
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(db)?;
        let mut by_day = Vec::new();
        let mut q = c
            .prepare(
                "SELECT at_ms / 86400000 AS day, action, COUNT(*) FROM decisions \
                 GROUP BY day, action ORDER BY day, action",
            )
            .map_err(db)?;
        let rows = q
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(db)?;
        for row in rows {
            let (day, action, n) = row.map_err(db)?;
            if let Some(a) = action_of(action) {
                by_day.push((super::day_of(UnixMillis(day * 86_400_000)), a, n as u64));
            }
        }
        let mut by_label = Vec::new();
        let mut q = c
            .prepare("SELECT label, COUNT(*) FROM decisions GROUP BY label ORDER BY label")
            .map_err(db)?;
        let rows = q
            .query_map([], |r| {
                Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(db)?;
        for row in rows {
            let (label, n) = row.map_err(db)?;
            let name = label
                .and_then(Label::from_code)
                .map_or("unlabelled", Label::as_str);
            by_label.push((name.to_string(), n as u64));
        }
        Ok(Stats {
            decisions: decisions as u64,
            outcomes: outcomes as u64,
            oldest: oldest.map(UnixMillis),
            newest: newest.map(UnixMillis),
            bytes: (pages * page_size) as u64,
            by_day,
            by_label,
        })
    }

    fn scan(
        &mut self,
        filter: &Filter,
        each: &mut dyn FnMut(Record) -> bool,
    ) -> Result<(), JournalError> {
        let (clause, params) = where_clause(filter);
        let sql = format!(
            "SELECT {COLUMNS} FROM decisions {clause} {}",
            filter.order_sql()
        );
        let mut q = self.conn.prepare(&sql).map_err(db)?;
        let mut rows = q.query(params_from_iter(params)).map_err(db)?;
        while let Some(r) = rows.next().map_err(db)? {
            let raw = RawRow {
                id: r
                    .get_ref(0)
                    .map_err(db)?
                    .as_blob()
                    .map_err(|e| JournalError::Database(e.to_string()))?,
                at: r.get(1).map_err(db)?,
                user: r
                    .get_ref(2)
                    .map_err(db)?
                    .as_blob()
                    .map_err(|e| JournalError::Database(e.to_string()))?,
                channel: r.get(3).map_err(db)?,
                action: r.get(4).map_err(db)?,
                level: r.get(5).map_err(db)?,
                score: r.get(6).map_err(db)?,
                degraded: r.get(7).map_err(db)?,
                policy_version: r.get(8).map_err(db)?,
                model_version: r.get(9).map_err(db)?,
                label: r.get(10).map_err(db)?,
                body: r
                    .get_ref(11)
                    .map_err(db)?
                    .as_blob()
                    .map_err(|e| JournalError::Database(e.to_string()))?,
            };
            if !each(raw.record()?) {
                break;
            }
        }
        Ok(())
    }

    fn outcomes(&mut self, decision: u128) -> Result<Vec<OutcomeEntry>, JournalError> {
        let mut q = self
            .conn
            .prepare(
                "SELECT at_ms, outcome, factor FROM outcomes WHERE decision = ? ORDER BY at_ms, rowid",
            )
            .map_err(db)?;
        let rows = q
            .query_map(params![&decision.to_be_bytes()[..]], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(db)?;
        let mut out = Vec::new();
        for row in rows {
            let (at, outcome, factor) = row.map_err(db)?;
            if let Some(outcome) = outcome_of(outcome) {
                out.push(OutcomeEntry {
                    decision,
                    at: UnixMillis(at),
                    outcome,
                    factor: factor_of(factor),
                });
            }
        }
        Ok(out)
    }

    fn overview(&mut self, from: UnixMillis) -> Result<Overview, JournalError> {
        let mut o = Overview::default();
        let c = &self.conn;
        let mut q = c
            .prepare(
                "SELECT at_ms / 3600000, action, channel, COUNT(*) FROM decisions \
                 WHERE at_ms >= ? GROUP BY 1, 2, 3",
            )
            .map_err(db)?;
        let rows = q
            .query_map(params![from.0], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(db)?;
        for row in rows {
            let (hour, action, channel, n) = row.map_err(db)?;
            if let (Some(a), Some(ch)) = (action_of(action), super::channel_of(channel)) {
                o.hourly
                    .push((UnixMillis(hour * 3_600_000), a, ch, n as u64));
            }
        }
        // Reason codes live in one text column per kind (`,a,b,`).
        let mut counts: std::collections::HashMap<(String, bool), u64> = Default::default();
        let mut q = c
            .prepare("SELECT codes, shadow_codes FROM decisions WHERE at_ms >= ?")
            .map_err(db)?;
        let mut rows = q.query(params![from.0]).map_err(db)?;
        while let Some(r) = rows.next().map_err(db)? {
            for (col, shadow) in [(0, false), (1, true)] {
                let text = r
                    .get_ref(col)
                    .map_err(db)?
                    .as_str()
                    .map_err(|e| JournalError::Database(e.to_string()))?;
                for code in text.split(',').filter(|c| !c.is_empty()) {
                    *counts.entry((code.to_string(), shadow)).or_default() += 1;
                }
            }
        }
        o.reasons = counts.into_iter().map(|((c, s), n)| (c, s, n)).collect();
        let mut q = c
            .prepare(
                "SELECT label, action, COUNT(*) FROM decisions \
                 WHERE at_ms >= ? AND label IS NOT NULL GROUP BY 1, 2",
            )
            .map_err(db)?;
        let rows = q
            .query_map(params![from.0], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(db)?;
        for row in rows {
            let (label, action, n) = row.map_err(db)?;
            if let (Some(l), Some(a)) = (Label::from_code(label), action_of(action)) {
                o.labelled.push((l, a, n as u64));
            }
        }
        o.sort();
        Ok(o)
    }

    fn record_audit(&mut self, r: &AuditRecord) -> Result<(), JournalError> {
        self.conn
            .execute(
                "INSERT INTO audit (at_ms, who, action, target, detail, result) VALUES (?, ?, ?, ?, ?, ?)",
                params![r.at.0, r.who, r.action, r.target, r.detail, r.result],
            )
            .map_err(db)?;
        Ok(())
    }

    fn audit_log(&mut self, limit: u64) -> Result<Vec<AuditRecord>, JournalError> {
        let mut q = self
            .conn
            .prepare(
                "SELECT at_ms, who, action, target, detail, result FROM audit \
                 ORDER BY at_ms DESC, rowid DESC LIMIT ?",
            )
            .map_err(db)?;
        let rows = q
            .query_map(params![i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                Ok(AuditRecord {
                    at: UnixMillis(r.get(0)?),
                    who: r.get(1)?,
                    action: r.get(2)?,
                    target: r.get(3)?,
                    detail: r.get(4)?,
                    result: r.get(5)?,
                })
            })
            .map_err(db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db)
    }
}
