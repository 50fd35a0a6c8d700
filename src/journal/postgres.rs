//! The journal in PostgreSQL, shared by replicas: one schema (created under
//! an advisory lock, so replicas starting together do not race), decisions
//! and outcomes appended with binary `COPY`, indexes for the explorer's
//! filters (time, action, reason code, user hash, decision id).

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use postgres::{Client, NoTls};

use crate::core::keys::Key;
use crate::domain::UnixMillis;

use super::{
    AuditRecord, Entry, Filter, JournalError, JournalStore, Label, OutcomeEntry, Overview, RawRow,
    Record, Stats, action_code, action_of, channel_code, codec, degraded_code, factor_code,
    factor_of, level_code, outcome_code, outcome_of,
};

/// Held while the schema is created (any constant: riskgate's own).
const SCHEMA_LOCK: i64 = 0x7269_736b_6761_7465;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS journal_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO journal_meta (key, value) VALUES ('schema', '1') ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS decisions (
    id BYTEA PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    user_key BYTEA NOT NULL,
    channel SMALLINT NOT NULL,
    action SMALLINT NOT NULL,
    level SMALLINT NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    codes TEXT[] NOT NULL,
    shadow_codes TEXT[] NOT NULL,
    degraded SMALLINT NOT NULL,
    policy_version TEXT NOT NULL,
    model_version TEXT NOT NULL,
    label SMALLINT,
    label_rank SMALLINT NOT NULL DEFAULT 0,
    body BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_at ON decisions (at_ms);
CREATE INDEX IF NOT EXISTS decisions_user ON decisions (user_key);
CREATE INDEX IF NOT EXISTS decisions_action_at ON decisions (action, at_ms);
CREATE INDEX IF NOT EXISTS decisions_codes ON decisions USING GIN (codes);
CREATE INDEX IF NOT EXISTS decisions_shadow_codes ON decisions USING GIN (shadow_codes);
CREATE TABLE IF NOT EXISTS outcomes (
    decision BYTEA NOT NULL,
    at_ms BIGINT NOT NULL,
    outcome SMALLINT NOT NULL,
    factor SMALLINT NOT NULL
);
CREATE INDEX IF NOT EXISTS outcomes_decision ON outcomes (decision);
CREATE INDEX IF NOT EXISTS outcomes_at ON outcomes (at_ms);
CREATE TABLE IF NOT EXISTS audit (
    id BIGSERIAL PRIMARY KEY,
    at_ms BIGINT NOT NULL,
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

fn db(e: postgres::Error) -> JournalError {
    // The error's text names the server's complaint, never the URL.
    JournalError::Database(e.to_string())
}

fn small(n: i64) -> i16 {
    i16::try_from(n).unwrap_or(i16::MAX)
}

/// A journal in a PostgreSQL database.
pub struct PgJournal {
    client: Client,
}

impl PgJournal {
    /// Connects to `url` and creates the schema when missing.
    pub fn open(url: &str) -> Result<Self, JournalError> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|_| JournalError::Database("not a valid postgres:// URL".into()))?;
        config.connect_timeout(std::time::Duration::from_secs(5));
        config.application_name("riskgate");
        let mut client = config.connect(NoTls).map_err(db)?;
        client
            .execute("SELECT pg_advisory_lock($1)", &[&SCHEMA_LOCK])
            .map_err(db)?;
        let created = client.batch_execute(SCHEMA).map_err(db);
        client
            .execute("SELECT pg_advisory_unlock($1)", &[&SCHEMA_LOCK])
            .map_err(db)?;
        created?;
        Ok(PgJournal { client })
    }
}

fn codes(rs: &[super::CodeWeight]) -> Vec<&str> {
    rs.iter().map(|r| r.0.as_str()).collect()
}

/// The `WHERE` clause and parameters of a filter.
fn where_clause(f: &Filter) -> (String, Vec<Box<dyn ToSql + Sync>>) {
    let mut clauses: Vec<String> = Vec::new();
    let mut params: Vec<Box<dyn ToSql + Sync>> = Vec::new();
    // Every `?` of a clause names the one parameter it brings.
    let push = |clause: &str,
                p: Box<dyn ToSql + Sync>,
                params: &mut Vec<Box<dyn ToSql + Sync>>,
                clauses: &mut Vec<String>| {
        params.push(p);
        clauses.push(clause.replace('?', &format!("${}", params.len())));
    };
    if let Some(from) = f.from {
        push("at_ms >= ?", Box::new(from.0), &mut params, &mut clauses);
    }
    if let Some(to) = f.to {
        push("at_ms < ?", Box::new(to.0), &mut params, &mut clauses);
    }
    if let Some(c) = f.channel {
        push(
            "channel = ?",
            Box::new(small(channel_code(c))),
            &mut params,
            &mut clauses,
        );
    }
    if let Some(a) = f.action {
        push(
            "action = ?",
            Box::new(small(action_code(a))),
            &mut params,
            &mut clauses,
        );
    }
    if let Some(r) = &f.reason {
        // Both placeholders name the one parameter.
        push(
            "(codes @> ?::text[] OR shadow_codes @> ?::text[])",
            Box::new(vec![r.clone()]),
            &mut params,
            &mut clauses,
        );
    }
    match f.label {
        Some(Some(l)) => push(
            "label = ?",
            Box::new(small(l.code())),
            &mut params,
            &mut clauses,
        ),
        Some(None) => clauses.push("label IS NULL".into()),
        None => {}
    }
    if let Some(u) = f.user {
        push(
            "user_key = ?",
            Box::new(u.0.to_vec()),
            &mut params,
            &mut clauses,
        );
    }
    if let Some(d) = f.decision {
        push(
            "id = ?",
            Box::new(d.to_be_bytes().to_vec()),
            &mut params,
            &mut clauses,
        );
    }
    let sql = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    (sql, params)
}

impl JournalStore for PgJournal {
    fn kind(&self) -> &'static str {
        "postgresql"
    }

    fn append(&mut self, batch: &[Entry]) -> Result<(), JournalError> {
        let mut tx = self.client.transaction().map_err(db)?;
        let decisions: Vec<&super::DecisionEntry> = batch
            .iter()
            .filter_map(|e| match e {
                Entry::Decision(d) => Some(d.as_ref()),
                Entry::Outcome(_) => None,
            })
            .collect();
        if !decisions.is_empty() {
            let sink = tx
                .copy_in(
                    "COPY decisions (id, at_ms, user_key, channel, action, level, score, codes, \
                     shadow_codes, degraded, policy_version, model_version, body) \
                     FROM STDIN BINARY",
                )
                .map_err(db)?;
            let types = [
                Type::BYTEA,
                Type::INT8,
                Type::BYTEA,
                Type::INT2,
                Type::INT2,
                Type::INT2,
                Type::FLOAT8,
                Type::TEXT_ARRAY,
                Type::TEXT_ARRAY,
                Type::INT2,
                Type::TEXT,
                Type::TEXT,
                Type::BYTEA,
            ];
            let mut w = BinaryCopyInWriter::new(sink, &types);
            for d in decisions {
                let body = codec::encode(d).map_err(|p| JournalError::Corrupt {
                    id: d.id,
                    problem: p,
                })?;
                w.write(&[
                    &&d.id.to_be_bytes()[..],
                    &d.at.0,
                    &&d.user.0[..],
                    &small(channel_code(d.channel)),
                    &small(action_code(d.action)),
                    &small(level_code(d.level)),
                    &d.score,
                    &codes(&d.reasons),
                    &codes(&d.shadow),
                    &small(degraded_code(d.degraded)),
                    &d.policy_version,
                    &d.model_version,
                    &body,
                ])
                .map_err(db)?;
            }
            w.finish().map_err(db)?;
        }
        let outcomes: Vec<&OutcomeEntry> = batch
            .iter()
            .filter_map(|e| match e {
                Entry::Outcome(o) => Some(o),
                Entry::Decision(_) => None,
            })
            .collect();
        if !outcomes.is_empty() {
            let insert = tx
                .prepare(
                    "INSERT INTO outcomes (decision, at_ms, outcome, factor) VALUES ($1, $2, $3, $4)",
                )
                .map_err(db)?;
            let label = tx
                .prepare(
                    "UPDATE decisions SET label = $1, label_rank = $2 \
                     WHERE id = $3 AND label_rank <= $2",
                )
                .map_err(db)?;
            for o in outcomes {
                let id = o.decision.to_be_bytes();
                tx.execute(
                    &insert,
                    &[
                        &&id[..],
                        &o.at.0,
                        &small(outcome_code(o.outcome)),
                        &small(factor_code(o.factor)),
                    ],
                )
                .map_err(db)?;
                let (l, rank) = Label::of(o.outcome);
                tx.execute(&label, &[&small(l.code()), &i16::from(rank), &&id[..]])
                    .map_err(db)?;
            }
        }
        tx.commit().map_err(db)
    }

    fn prune(&mut self, before: UnixMillis) -> Result<u64, JournalError> {
        let mut tx = self.client.transaction().map_err(db)?;
        tx.execute(
            "DELETE FROM outcomes WHERE at_ms < $1 \
             OR decision IN (SELECT id FROM decisions WHERE at_ms < $1)",
            &[&before.0],
        )
        .map_err(db)?;
        let n = tx
            .execute("DELETE FROM decisions WHERE at_ms < $1", &[&before.0])
            .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(n)
    }

    fn forget(&mut self, user: Key) -> Result<u64, JournalError> {
        let mut tx = self.client.transaction().map_err(db)?;
        let key = &user.0[..];
        tx.execute(
            "DELETE FROM outcomes WHERE decision IN (SELECT id FROM decisions WHERE user_key = $1)",
            &[&key],
        )
        .map_err(db)?;
        let n = tx
            .execute("DELETE FROM decisions WHERE user_key = $1", &[&key])
            .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(n)
    }

    fn stats(&mut self) -> Result<Stats, JournalError> {
        let c = &mut self.client;
        let row = c
            .query_one(
                "SELECT COUNT(*), MIN(at_ms), MAX(at_ms) FROM decisions",
                &[],
            )
            .map_err(db)?;
        let decisions: i64 = row.get(0);
        let oldest: Option<i64> = row.get(1);
        let newest: Option<i64> = row.get(2);
        let outcomes: i64 = c
            .query_one("SELECT COUNT(*) FROM outcomes", &[])
            .map_err(db)?
            .get(0);
        let bytes: i64 = c
            .query_one(
                "SELECT pg_total_relation_size('decisions') + pg_total_relation_size('outcomes')",
                &[],
            )
            .map_err(db)?
            .get(0);
        let mut by_day = Vec::new();
        for r in c
            .query(
                "SELECT at_ms / 86400000 AS day, action, COUNT(*) FROM decisions \
                 GROUP BY day, action ORDER BY day, action",
                &[],
            )
            .map_err(db)?
        {
            let (day, action, n): (i64, i16, i64) = (r.get(0), r.get(1), r.get(2));
            if let Some(a) = action_of(i64::from(action)) {
                by_day.push((super::day_of(UnixMillis(day * 86_400_000)), a, n as u64));
            }
        }
        let mut by_label = Vec::new();
        for r in c
            .query(
                "SELECT label, COUNT(*) FROM decisions GROUP BY label ORDER BY label",
                &[],
            )
            .map_err(db)?
        {
            let (label, n): (Option<i16>, i64) = (r.get(0), r.get(1));
            let name = label
                .and_then(|l| Label::from_code(i64::from(l)))
                .map_or("unlabelled", Label::as_str);
            by_label.push((name.to_string(), n as u64));
        }
        Ok(Stats {
            decisions: decisions as u64,
            outcomes: outcomes as u64,
            oldest: oldest.map(UnixMillis),
            newest: newest.map(UnixMillis),
            bytes: bytes as u64,
            by_day,
            by_label,
        })
    }

    fn scan(
        &mut self,
        filter: &Filter,
        each: &mut dyn FnMut(Record) -> bool,
    ) -> Result<(), JournalError> {
        use postgres::fallible_iterator::FallibleIterator as _;
        let (clause, params) = where_clause(filter);
        let sql = format!(
            "SELECT {COLUMNS} FROM decisions {clause} {}",
            filter.order_sql()
        );
        let mut rows = self
            .client
            .query_raw(&sql, params.iter().map(|p| p.as_ref()))
            .map_err(db)?;
        while let Some(r) = rows.next().map_err(db)? {
            let raw = RawRow {
                id: r.try_get(0).map_err(db)?,
                at: r.try_get(1).map_err(db)?,
                user: r.try_get(2).map_err(db)?,
                channel: i64::from(r.try_get::<_, i16>(3).map_err(db)?),
                action: i64::from(r.try_get::<_, i16>(4).map_err(db)?),
                level: i64::from(r.try_get::<_, i16>(5).map_err(db)?),
                score: r.try_get(6).map_err(db)?,
                degraded: i64::from(r.try_get::<_, i16>(7).map_err(db)?),
                policy_version: r.try_get(8).map_err(db)?,
                model_version: r.try_get(9).map_err(db)?,
                label: r.try_get::<_, Option<i16>>(10).map_err(db)?.map(i64::from),
                body: r.try_get(11).map_err(db)?,
            };
            if !each(raw.record()?) {
                break;
            }
        }
        Ok(())
    }

    fn outcomes(&mut self, decision: u128) -> Result<Vec<OutcomeEntry>, JournalError> {
        let id = decision.to_be_bytes();
        let rows = self
            .client
            .query(
                "SELECT at_ms, outcome, factor FROM outcomes WHERE decision = $1 ORDER BY at_ms",
                &[&&id[..]],
            )
            .map_err(db)?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let (at, outcome, factor): (i64, i16, i16) = (r.get(0), r.get(1), r.get(2));
                outcome_of(i64::from(outcome)).map(|outcome| OutcomeEntry {
                    decision,
                    at: UnixMillis(at),
                    outcome,
                    factor: factor_of(i64::from(factor)),
                })
            })
            .collect())
    }

    fn overview(&mut self, from: UnixMillis) -> Result<Overview, JournalError> {
        let mut o = Overview::default();
        for r in self
            .client
            .query(
                "SELECT at_ms / 3600000, action, channel, COUNT(*) FROM decisions \
                 WHERE at_ms >= $1 GROUP BY 1, 2, 3",
                &[&from.0],
            )
            .map_err(db)?
        {
            let hour: i64 = r.try_get(0).map_err(db)?;
            let action = i64::from(r.try_get::<_, i16>(1).map_err(db)?);
            let channel = i64::from(r.try_get::<_, i16>(2).map_err(db)?);
            let n: i64 = r.try_get(3).map_err(db)?;
            if let (Some(a), Some(ch)) = (action_of(action), super::channel_of(channel)) {
                o.hourly
                    .push((UnixMillis(hour * 3_600_000), a, ch, n as u64));
            }
        }
        for r in self
            .client
            .query(
                "SELECT code, false, COUNT(*) FROM decisions, unnest(codes) AS code \
                 WHERE at_ms >= $1 GROUP BY code \
                 UNION ALL \
                 SELECT code, true, COUNT(*) FROM decisions, unnest(shadow_codes) AS code \
                 WHERE at_ms >= $1 GROUP BY code",
                &[&from.0],
            )
            .map_err(db)?
        {
            let code: String = r.try_get(0).map_err(db)?;
            let shadow: bool = r.try_get(1).map_err(db)?;
            let n: i64 = r.try_get(2).map_err(db)?;
            o.reasons.push((code, shadow, n as u64));
        }
        for r in self
            .client
            .query(
                "SELECT label, action, COUNT(*) FROM decisions \
                 WHERE at_ms >= $1 AND label IS NOT NULL GROUP BY 1, 2",
                &[&from.0],
            )
            .map_err(db)?
        {
            let label = i64::from(r.try_get::<_, i16>(0).map_err(db)?);
            let action = i64::from(r.try_get::<_, i16>(1).map_err(db)?);
            let n: i64 = r.try_get(2).map_err(db)?;
            if let (Some(l), Some(a)) = (Label::from_code(label), action_of(action)) {
                o.labelled.push((l, a, n as u64));
            }
        }
        o.sort();
        Ok(o)
    }

    fn record_audit(&mut self, r: &AuditRecord) -> Result<(), JournalError> {
        self.client
            .execute(
                "INSERT INTO audit (at_ms, who, action, target, detail, result) VALUES ($1, $2, $3, $4, $5, $6)",
                &[&r.at.0, &r.who, &r.action, &r.target, &r.detail, &r.result],
            )
            .map_err(db)?;
        Ok(())
    }

    fn audit_log(&mut self, limit: u64) -> Result<Vec<AuditRecord>, JournalError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .client
            .query(
                "SELECT at_ms, who, action, target, detail, result FROM audit \
                 ORDER BY at_ms DESC, id DESC LIMIT $1",
                &[&limit],
            )
            .map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(AuditRecord {
                    at: UnixMillis(r.try_get(0).map_err(db)?),
                    who: r.try_get(1).map_err(db)?,
                    action: r.try_get(2).map_err(db)?,
                    target: r.try_get(3).map_err(db)?,
                    detail: r.try_get(4).map_err(db)?,
                    result: r.try_get(5).map_err(db)?,
                })
            })
            .collect()
    }
}
