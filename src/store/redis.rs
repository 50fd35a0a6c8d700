//! The shared store: Redis, so that every replica sees the same velocity
//! counters, profiles and pending decisions.
//!
//! Redis runs commands on one thread, so what a decision costs Redis is
//! what bounds a deployment. Observe — every Evaluate — is therefore a
//! **pipeline of plain commands** in one round trip, not a script: about
//! thirty commands that each cost Redis around a microsecond, where a Lua
//! script doing the same work cost it ten times more (each `redis.call`
//! and table built in Lua costs more than the command it runs). This works
//! because every write of observe commutes:
//!
//! - a **velocity key** is a hash with one field per bucket and window,
//!   `<kind><window>:<bucket>` → events (kind `f` failures, `a` attempts;
//!   buckets as [`super::window::bucket`]), written with `HINCRBY` and read
//!   whole with `HGETALL`; the store counts the windows itself with
//!   [`super::window::window_count`], which answers exactly like the
//!   memory store's rings (a property test checks it). Buckets that can
//!   never count again are deleted afterwards;
//! - a **distinct-user set** is a zset written with `ZADD … GT` and counted
//!   with `ZCOUNT`; a set past its cap of 256 is trimmed afterwards
//!   (counts are capped at 256 meanwhile, as the memory store's are);
//! - the **pending decision** is one field of the user's pending hash,
//!   written with `HSET`; past 512 the oldest are dropped afterwards.
//!
//! "Afterwards" is the store's background writer: maintenance and the
//! recent-decisions records ([`Store::record_decision`]) are queued
//! (bounded) and written in batched pipelines, never on an RPC's path.
//!
//! The deployment-wide attempts and failures are not written per call at
//! all: each replica counts its own at once and merges them into `P:{g}:v`
//! every `global_flush`, reading everyone's back (`GlobalCounts`).
//!
//! Reports read-modify-write the profile (caps, eviction, unteaching), so
//! they are Lua (`redis_report.lua`): on a single node one `EVALSHA`; on a
//! Redis Cluster the user's script and, only when it teaches or unteaches,
//! the global one with the facts the first returned. The admin calls are
//! Lua scripts on one user's slot (`redis_admin.lua`).
//!
//! On a **Redis Cluster** (several URLs or `store.redis_cluster`) observe
//! sends one pipeline per hash tag (user, IP, network, device, global), all
//! at once, so its latency is one round trip to the slowest node. No
//! pipeline or script touches a key outside its own slot.
//!
//! Key layout (`P` is the deployment's key prefix; `<u>` etc. are hex
//! [`Key`]s, never raw identifiers; every key has a TTL):
//!
//! | key | type | content | TTL |
//! |---|---|---|---|
//! | `P:{u:<u>}:v` | hash | user failures per bucket | 25 h |
//! | `P:{u:<u>}:prof` | hash | `v` verified, `d<slot>:<k>` count, `t<slot>:<k>` last seen (s), `n<slot>` distinct, `h<hour>` hour histogram, `la`/`lp` last login time/place, `sa` last strong auth | profile TTL, refreshed on teach |
//! | `P:{u:<u>}:p` | hash | pending decisions: decision hex → `<taught>\|<expires ms>\|<at>\|<hour>\|<place>\|<fact 0>\|…\|<fact 10>`; past 512 the oldest are dropped down to 256 | decision TTL, refreshed on observe |
//! | `P:{u:<u>}:d` | list | recent decisions, oldest first (appended: no shift of the list), ≤ 20: `<at>\|<action>\|<score>\|<codes>\|<decision id>` | decision TTL |
//! | `P:{i:<ip>}:v` | hash | failures and attempts per bucket | 25 h |
//! | `P:{n:<net>}:v`, `P:{dv:<dev>}:v` | hash | failures per bucket (written on a failure only) | 25 h |
//! | `P:{i:<ip>}:users`, `P:{dv:<dev>}:users` | zset | user → last seen ms, ≤ 256 members | 25 h |
//! | `P:{g}:v` | hash | deployment-wide attempts and failures per bucket | 25 h |
//! | `P:{g}:stats` | hash | `n<slot>` global distinct values, `logins`, `users` | profile TTL |
//! | `P:{g}:s:<slot>:<k>` | string | global verified count of one value | profile TTL |
//!
//! The profile hash also holds `tr:<device>` / `rv:<device>` (trusted /
//! revoked by support, ms) for the admin API. Profile and forget first wait
//! for the background writer's queue to be written. Forget erases every
//! `{u:<u>}` key; the global aggregates and the IP/device distinct-user
//! sets (hashed members, 25 h) are left to expire.
//!
//! A report finds its pending decision from the decision id alone: the id
//! carries the user's key (see [`super::decision_id`]), so no cross-slot
//! index is needed.
//!
//! Needs Redis 6.2 or newer (`ZADD … GT`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{FromRedisValue, Pipeline, Script, ScriptInvocation, Value};
use tokio::sync::{mpsc, oneshot};

use crate::domain::{Decision, Factor, Outcome, UnixMillis};

use super::window::{DistinctSet, GEOMETRY, LONGEST_MS, bucket, stale, window_count};
use super::{
    DecisionRecord, DeviceMark, Dim, Forgotten, GeoPoint, Key, LastLogin, Observation,
    OutcomeReport, PROFILE_DIMS, ProfileValue, RECENT_DECISIONS, ReportEffect, Store, StoreError,
    StoreView, UserProfile, VALUE_HASH_MASK, Windows, teaches,
};

macro_rules! script {
    ($parts:literal, $main:literal) => {
        concat!(
            include_str!("redis_common.lua"),
            include_str!($parts),
            "\n",
            $main,
            "\n"
        )
    };
}

/// Report on one node. KEYS: 1 user velocity, 2 profile, 3 pending, 4
/// global stats; ARGV[10] the key prefix (the global counts of the pending
/// facts, all in the `{g}` slot, are named from it).
const REPORT_ALL: &str = script!(
    "redis_report.lua",
    r#"local r = rep_user(KEYS[1], KEYS[2], KEYS[3])
if r[2] ~= 0 then
  local kseen, slots = {}, {}
  for i = 0, 10 do
    if r[4 + i] ~= '' then
      kseen[#kseen + 1] = ARGV[10] .. ':{g}:s:' .. i .. ':' .. r[4 + i]
      slots[#slots + 1] = i
    end
  end
  rep_global(KEYS[4], kseen, slots, r[2], r[3] == 1)
end
return {r[1]}"#
);
const REPORT_USER: &str = script!(
    "redis_report.lua",
    "return rep_user(KEYS[1], KEYS[2], KEYS[3])"
);
/// KEYS: 1 global stats, 2.. global counts of the facts; ARGV 10 mode, 11
/// new user, 12.. the slot of each count key.
const REPORT_GLOBAL: &str = script!(
    "redis_report.lua",
    r#"local kseen, slots = {}, {}
for i = 2, #KEYS do
  kseen[#kseen + 1] = KEYS[i]
  slots[#slots + 1] = ARGV[10 + i]
end
rep_global(KEYS[1], kseen, slots, tonumber(ARGV[10]), ARGV[11] == '1')
return {1}"#
);

/// Admin scripts, all on one user's slot. KEYS: 1 profile, 2 recent.
const ADMIN_PROFILE: &str = script!("redis_admin.lua", "return adm_profile(KEYS[1], KEYS[2])");
/// KEYS: 1 user velocity, 2 profile, 3 pending, 4 recent.
const ADMIN_FORGET: &str = script!(
    "redis_admin.lua",
    "return adm_forget(KEYS[1], KEYS[2], KEYS[3], KEYS[4])"
);
/// KEYS: 1 profile; ARGV: device, now (ms), cap, profile ttl (ms).
const ADMIN_TRUST: &str = script!(
    "redis_admin.lua",
    "return adm_trust(KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4])"
);
/// KEYS: 1 profile; ARGV: device, now (ms), profile ttl (ms).
const ADMIN_REVOKE: &str = script!(
    "redis_admin.lua",
    "return adm_revoke(KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3])"
);

/// Settings of the Redis store.
#[derive(Clone, Debug)]
pub struct RedisSettings {
    /// `redis://host:port/db` (or `rediss://`, `redis+unix://`); for a
    /// cluster, one or more seed nodes.
    pub urls: Vec<String>,
    /// Redis Cluster mode.
    pub cluster: bool,
    /// Prepended to every key, so deployments can share a server.
    pub key_prefix: String,
    /// A profile not taught for this long expires.
    pub profile_ttl: Duration,
    /// How long a decision can be reported on.
    pub decision_ttl: Duration,
    /// Most distinct values remembered per user and dimension.
    pub history_per_dim: usize,
    /// Bound on establishing a connection.
    pub connect_timeout: Duration,
    /// Bound on one command's answer (the engine's deadline is usually
    /// shorter; this keeps the client itself from waiting forever).
    pub response_timeout: Duration,
    /// How often this replica merges its deployment-wide attempt and
    /// failure counts into Redis and reads everyone's back.
    pub global_flush: Duration,
    /// Connections to a single node, used in turn (each is multiplexed;
    /// more than one lets the answers of concurrent calls be read in
    /// parallel). Cluster mode keeps its own per-node connections.
    pub connections: usize,
}

impl RedisSettings {
    /// Defaults for one node at `url`, matching the memory store's limits.
    pub fn new(url: impl Into<String>) -> Self {
        RedisSettings {
            urls: vec![url.into()],
            cluster: false,
            key_prefix: "riskgate".into(),
            profile_ttl: Duration::from_secs(90 * 86_400),
            decision_ttl: Duration::from_secs(7 * 86_400),
            history_per_dim: 16,
            connect_timeout: Duration::from_millis(500),
            response_timeout: Duration::from_secs(1),
            global_flush: Duration::from_millis(100),
            connections: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    /// Defaults for a Redis Cluster reached through these seed nodes.
    pub fn cluster<S: Into<String>>(urls: impl IntoIterator<Item = S>) -> Self {
        RedisSettings {
            urls: urls.into_iter().map(Into::into).collect(),
            cluster: true,
            ..Self::new(String::new())
        }
    }
}

#[derive(Clone)]
enum Conn {
    Single(Arc<Connections>),
    Cluster(ClusterConnection),
}

/// Connections to a single node, used in turn. One multiplexed connection
/// is read by one task, which parses every answer; with one per core the
/// answers of concurrent calls are parsed in parallel.
struct Connections {
    all: Vec<ConnectionManager>,
    next: AtomicUsize,
}

impl Connections {
    fn pick(&self) -> ConnectionManager {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.all.len().max(1);
        self.all[i].clone()
    }
}

struct Scripts {
    report_all: Script,
    report_user: Script,
    report_global: Script,
    admin_profile: Script,
    admin_forget: Script,
    admin_trust: Script,
    admin_revoke: Script,
}

/// The Redis store (single node or cluster).
pub struct RedisStore {
    conn: Conn,
    settings: RedisSettings,
    scripts: Scripts,
    background: mpsc::Sender<Work>,
    round_trips: AtomicU64,
    global: Arc<Mutex<GlobalCounts>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: not printed.
        f.debug_struct("RedisStore")
            .field("key_prefix", &self.settings.key_prefix)
            .field("cluster", &self.settings.cluster)
            .finish_non_exhaustive()
    }
}

/// Velocity keys live one bucket longer than the longest window.
const COUNTER_TTL_MS: i64 = LONGEST_MS + GEOMETRY[2].0;

/// Work that may wait for the background writer.
const BACKGROUND_QUEUE: usize = 16_384;
/// Most items written in one pipeline.
const BACKGROUND_BATCH: usize = 256;
/// Pending decisions kept per user: past twice this many, the oldest are
/// dropped down to this many (decision ids are time-ordered UUIDs).
const PENDING_CAP: usize = 256;
/// Per-key counts saturate like the memory store's `u16` rings; the
/// deployment-wide ones like its `u32` rings.
const KEY_BUCKET_MAX: u32 = u16::MAX as u32;
const GLOBAL_BUCKET_MAX: u32 = u32::MAX;
const HOUR_MS: i64 = 3_600_000;
const CAP: u32 = DistinctSet::CAP as u32;

fn unavailable(e: redis::RedisError) -> StoreError {
    if e.is_timeout() {
        StoreError::Unavailable(format!("redis timed out: {:?}", e.kind()))
    } else {
        StoreError::Unavailable(format!("redis: {e}"))
    }
}

fn hex32(k: Key) -> String {
    hex::encode(k.0)
}

fn hex16(k: Key) -> String {
    hex::encode(&k.0[..8])
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

async fn invoke<T: FromRedisValue>(
    conn: &Conn,
    inv: &ScriptInvocation<'_>,
) -> Result<T, StoreError> {
    async fn on<T: FromRedisValue, C: ConnectionLike>(
        mut c: C,
        inv: &ScriptInvocation<'_>,
    ) -> redis::RedisResult<T> {
        inv.invoke_async(&mut c).await
    }
    match conn {
        Conn::Single(c) => on(c.pick(), inv).await,
        Conn::Cluster(c) => on(c.clone(), inv).await,
    }
    .map_err(unavailable)
}

async fn query(conn: &Conn, pipe: &Pipeline) -> redis::RedisResult<Vec<Value>> {
    match conn {
        Conn::Single(c) => pipe.query_async(&mut c.pick()).await,
        Conn::Cluster(c) => pipe.query_async(&mut c.clone()).await,
    }
}

/// Work for the background writer.
enum Work {
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
    fn key(&self) -> Option<&str> {
        match self {
            Work::Record { key, .. }
            | Work::Forget { key, .. }
            | Work::Trim { key, .. }
            | Work::PrunePending { key } => Some(key),
            Work::Flush(_) => None,
        }
    }

    fn commands(&self, pipe: &mut Pipeline, ttl_ms: u64) {
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
async fn background(mut rx: mpsc::Receiver<Work>, conn: Conn, ttl_ms: u64, timeout: Duration) {
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

async fn prune_pending(conn: &Conn, key: &str) -> redis::RedisResult<()> {
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

async fn write_batch(conn: &Conn, batch: &[Work], ttl_ms: u64) -> redis::RedisResult<()> {
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

/// A velocity hash field: `<kind><window>:<bucket>`.
fn field(kind: char, window: usize, at: UnixMillis) -> String {
    format!("{kind}{}:{}", window + 1, bucket(at, GEOMETRY[window].0))
}

/// Counts one event of `kind` at `at` in the velocity hash `key`.
/// The profile's (and the global stats') distinct-value count fields, one
/// per dimension slot: `n<slot>`.
const DISTINCT_FIELDS: [&str; PROFILE_DIMS.len()] = [
    "n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9", "n10",
];

fn count_event(pipe: &mut Pipeline, key: &str, kind: char, at: UnixMillis) {
    for w in 0..GEOMETRY.len() {
        pipe.cmd("HINCRBY")
            .arg(key)
            .arg(field(kind, w, at))
            .arg(1)
            .ignore();
    }
}

/// A velocity hash as read: (kind, window, bucket, events) per field.
struct Buckets {
    fields: Vec<(char, usize, u32, u64)>,
}

impl Buckets {
    fn parse(v: Value) -> Buckets {
        let pairs: Vec<(String, u64)> = match v {
            Value::Map(m) => m
                .into_iter()
                .filter_map(|(k, v)| {
                    Some((
                        String::from_redis_value(k).ok()?,
                        u64::from_redis_value(v).ok()?,
                    ))
                })
                .collect(),
            other => FromRedisValue::from_redis_value(other).unwrap_or_default(),
        };
        let fields = pairs
            .into_iter()
            .filter_map(|(name, n)| {
                let mut chars = name.chars();
                let kind = chars.next()?;
                let window = chars.next()?.to_digit(10)?.checked_sub(1)? as usize;
                let b = name.get(3..)?.parse::<u32>().ok()?;
                (window < GEOMETRY.len() && name.as_bytes().get(2) == Some(&b':'))
                    .then_some((kind, window, b, n))
            })
            .collect();
        Buckets { fields }
    }

    fn of(&self, kind: char, window: usize) -> impl Iterator<Item = (u32, u64)> + Clone + '_ {
        self.fields
            .iter()
            .filter(move |f| f.0 == kind && f.1 == window)
            .map(|f| (f.2, f.3))
    }

    fn windows(&self, kind: char, at: UnixMillis, max: u32) -> Windows {
        let count = |w: usize| {
            let (width, len) = GEOMETRY[w];
            window_count(bucket(at, width), len as u32, max, self.of(kind, w))
        };
        Windows {
            m1: count(0),
            h1: count(1),
            h24: count(2),
        }
    }

    /// Fields that can never count again.
    fn stale(&self) -> Vec<String> {
        let mut out = Vec::new();
        for kind in ['f', 'a'] {
            for (w, (_, len)) in GEOMETRY.iter().enumerate() {
                let Some(head) = self.of(kind, w).map(|(b, _)| b).max() else {
                    continue;
                };
                for (b, _) in self.of(kind, w) {
                    if stale(b, head, *len as u32) {
                        out.push(format!("{kind}{}:{b}", w + 1));
                    }
                }
            }
        }
        out
    }
}

fn int(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::Int(i)) => *i,
        Some(Value::BulkString(b)) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

fn u32_of(v: Option<&Value>) -> u32 {
    u32::try_from(int(v).max(0)).unwrap_or(u32::MAX)
}

fn text(v: Option<&Value>) -> Option<&str> {
    match v {
        Some(Value::BulkString(b)) if !b.is_empty() => std::str::from_utf8(b).ok(),
        _ => None,
    }
}

/// A place as stored: at [`GeoPoint::stored`] precision, so it reads back
/// exactly as the memory store keeps it.
fn place_text(p: &GeoPoint) -> String {
    let p = p.stored();
    format!("{},{},{}", p.lat, p.lon, p.accuracy_km)
}

fn parse_place(s: &str) -> Option<GeoPoint> {
    let mut it = s.split(',').map(str::parse::<f64>);
    let (Some(Ok(lat)), Some(Ok(lon)), Some(Ok(accuracy_km)), None) =
        (it.next(), it.next(), it.next(), it.next())
    else {
        return None;
    };
    Some(GeoPoint {
        lat,
        lon,
        accuracy_km,
    })
}

/// The answers of one observe pipeline, read in the order the commands
/// were queued.
struct Answers {
    values: std::vec::IntoIter<Value>,
}

impl Answers {
    fn next(&mut self) -> Result<Value, StoreError> {
        self.values
            .next()
            .ok_or_else(|| StoreError::Unavailable("redis: observe answered too few values".into()))
    }

    fn list(&mut self) -> Result<Vec<Value>, StoreError> {
        match self.next()? {
            Value::Array(a) => Ok(a),
            Value::Nil => Ok(Vec::new()),
            other => Err(StoreError::Unavailable(format!(
                "redis: expected a list, got {other:?}"
            ))),
        }
    }

    fn count(&mut self) -> Result<u32, StoreError> {
        Ok(u32_of(Some(&self.next()?)))
    }
}

/// What an observe asks, built once and queued into one pipeline (single
/// node) or one per slot (cluster).
struct ObservePlan<'a> {
    store: &'a RedisStore,
    obs: &'a Observation,
    /// hex16 of each fact, if present.
    facts: [Option<String>; PROFILE_DIMS.len()],
    user: String,
    ip: Option<String>,
    network: Option<String>,
    device: Option<String>,
}

impl<'a> ObservePlan<'a> {
    fn new(store: &'a RedisStore, obs: &'a Observation) -> Self {
        let scoped = |tag: &str, dim: Dim| {
            obs.facts
                .get(dim)
                .map(|k| format!("{}:{{{tag}:{}}}", store.settings.key_prefix, hex32(k)))
        };
        ObservePlan {
            store,
            obs,
            facts: obs.facts.0.map(|k| k.map(hex16)),
            user: format!("{}:{{u:{}}}", store.settings.key_prefix, hex32(obs.user)),
            ip: scoped("i", Dim::Ip),
            network: scoped("n", Dim::Network),
            device: scoped("dv", Dim::Device),
        }
    }

    fn failed(&self) -> bool {
        self.obs.failed
    }

    /// The user's failures, profile and pending decision.
    fn user(&self, pipe: &mut Pipeline) {
        let (u, at) = (&self.user, self.obs.at);
        let v = format!("{u}:v");
        if self.failed() {
            count_event(pipe, &v, 'f', at);
            pipe.cmd("PEXPIRE").arg(&v).arg(COUNTER_TTL_MS).ignore();
        }
        pipe.cmd("HGETALL").arg(&v);
        let hmget = pipe.cmd("HMGET").arg(format!("{u}:prof"));
        hmget.arg("v").arg("la").arg("lp").arg("sa");
        hmget.arg(format!("h{}", at.hour_of_week()));
        hmget.arg(format!("rv:{}", self.facts[0].as_deref().unwrap_or("")));
        hmget.arg(&DISTINCT_FIELDS[..]);
        for (slot, f) in self.facts.iter().enumerate() {
            if let Some(f) = f {
                hmget.arg(format!("d{slot}:{f}"));
            }
        }
        let ttl = millis(self.store.settings.decision_ttl);
        let expires = UnixMillis::now()
            .0
            .saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX));
        let mut pending = format!(
            "0|{expires}|{}|{}|{}",
            at.0,
            at.hour_of_week(),
            self.obs.place.as_ref().map(place_text).unwrap_or_default()
        );
        for f in &self.facts {
            pending.push('|');
            pending.push_str(f.as_deref().unwrap_or_default());
        }
        let p = format!("{u}:p");
        pipe.cmd("HSET")
            .arg(&p)
            .arg(format!("{:032x}", self.obs.decision))
            .arg(pending)
            .ignore();
        pipe.cmd("PEXPIRE").arg(&p).arg(ttl).ignore();
        pipe.cmd("HLEN").arg(&p);
    }

    fn read_user(
        &self,
        a: &mut Answers,
        view: &mut StoreView,
        work: &mut Vec<Work>,
    ) -> Result<(), StoreError> {
        let failures = Buckets::parse(a.next()?);
        view.velocity.user_failures = failures.windows('f', self.obs.at, KEY_BUCKET_MAX);
        forget_stale(work, || format!("{}:v", self.user), &failures);
        let p = a.list()?;
        let prof = &mut view.profile;
        prof.verified_logins = u32_of(p.first());
        let last_at = text(p.get(1)).and_then(|s| s.parse::<i64>().ok());
        let last_place = text(p.get(2)).and_then(parse_place);
        prof.last_login = last_at.map(|at| LastLogin {
            at: UnixMillis(at),
            place: last_place,
        });
        prof.last_strong_auth = text(p.get(3))
            .and_then(|s| s.parse::<i64>().ok())
            .map(UnixMillis);
        prof.hour_count = u32_of(p.get(4));
        prof.device_revoked =
            self.facts[0].is_some() && !matches!(p.get(5), None | Some(Value::Nil));
        let n = PROFILE_DIMS.len();
        for slot in 0..n {
            prof.distinct[slot] = u32_of(p.get(6 + slot));
        }
        let mut i = 6 + n;
        for (slot, f) in self.facts.iter().enumerate() {
            if f.is_some() {
                prof.seen[slot] = u32_of(p.get(i));
                i += 1;
            }
        }
        if a.count()? as usize > 2 * PENDING_CAP {
            work.push(Work::PrunePending {
                key: format!("{}:p", self.user),
            });
        }
        Ok(())
    }

    /// A distinct-user set: add the user, then its size and counts.
    fn distinct(&self, pipe: &mut Pipeline, key: &str, windows: &[i64]) {
        let at = self.obs.at.0;
        pipe.cmd("ZADD")
            .arg(key)
            .arg("GT")
            .arg(at)
            .arg(hex16(self.obs.user))
            .ignore();
        pipe.cmd("PEXPIRE").arg(key).arg(COUNTER_TTL_MS).ignore();
        pipe.cmd("ZCARD").arg(key);
        for w in windows {
            pipe.cmd("ZCOUNT")
                .arg(key)
                .arg(format!("({}", at - w))
                .arg("+inf");
        }
    }

    fn read_distinct(
        &self,
        a: &mut Answers,
        key: String,
        window: i64,
        work: &mut Vec<Work>,
    ) -> Result<(), StoreError> {
        if a.count()? > CAP {
            work.push(Work::Trim {
                key,
                since: self.obs.at.0 - window,
            });
        }
        Ok(())
    }

    fn ip(&self, pipe: &mut Pipeline) {
        let Some(k) = &self.ip else { return };
        let v = format!("{k}:v");
        count_event(pipe, &v, 'a', self.obs.at);
        if self.failed() {
            count_event(pipe, &v, 'f', self.obs.at);
        }
        pipe.cmd("PEXPIRE").arg(&v).arg(COUNTER_TTL_MS).ignore();
        pipe.cmd("HGETALL").arg(&v);
        self.distinct(pipe, &format!("{k}:users"), &[HOUR_MS]);
    }

    fn read_ip(
        &self,
        a: &mut Answers,
        view: &mut StoreView,
        work: &mut Vec<Work>,
    ) -> Result<(), StoreError> {
        let Some(k) = &self.ip else { return Ok(()) };
        let b = Buckets::parse(a.next()?);
        view.velocity.ip_failures = b.windows('f', self.obs.at, KEY_BUCKET_MAX);
        view.velocity.ip_attempts = b.windows('a', self.obs.at, KEY_BUCKET_MAX);
        forget_stale(work, || format!("{k}:v"), &b);
        self.read_distinct(a, format!("{k}:users"), HOUR_MS, work)?;
        view.velocity.ip_distinct_users_1h = a.count()?.min(CAP);
        Ok(())
    }

    /// A failures-only scope (network, device).
    fn failures(&self, pipe: &mut Pipeline, k: &str) {
        let v = format!("{k}:v");
        if self.failed() {
            count_event(pipe, &v, 'f', self.obs.at);
            pipe.cmd("PEXPIRE").arg(&v).arg(COUNTER_TTL_MS).ignore();
        }
        pipe.cmd("HGETALL").arg(&v);
    }

    fn read_failures(
        &self,
        a: &mut Answers,
        k: &str,
        work: &mut Vec<Work>,
    ) -> Result<Windows, StoreError> {
        let b = Buckets::parse(a.next()?);
        forget_stale(work, || format!("{k}:v"), &b);
        Ok(b.windows('f', self.obs.at, KEY_BUCKET_MAX))
    }

    fn network(&self, pipe: &mut Pipeline) {
        if let Some(k) = &self.network {
            self.failures(pipe, k);
        }
    }

    fn read_network(
        &self,
        a: &mut Answers,
        view: &mut StoreView,
        work: &mut Vec<Work>,
    ) -> Result<(), StoreError> {
        if let Some(k) = &self.network {
            view.velocity.network_failures = self.read_failures(a, k, work)?;
        }
        Ok(())
    }

    fn device(&self, pipe: &mut Pipeline) {
        if let Some(k) = &self.device {
            self.failures(pipe, k);
            self.distinct(pipe, &format!("{k}:users"), &[HOUR_MS, 24 * HOUR_MS]);
        }
    }

    fn read_device(
        &self,
        a: &mut Answers,
        view: &mut StoreView,
        work: &mut Vec<Work>,
    ) -> Result<(), StoreError> {
        let Some(k) = &self.device else { return Ok(()) };
        view.velocity.device_failures = self.read_failures(a, k, work)?;
        self.read_distinct(a, format!("{k}:users"), 24 * HOUR_MS, work)?;
        view.velocity.device_distinct_users_1h = a.count()?.min(CAP);
        view.velocity.device_distinct_users_24h = a.count()?.min(CAP);
        Ok(())
    }

    /// The global value counts and stats (the global velocity is counted
    /// here and merged by [`merge_global`]).
    fn global(&self, pipe: &mut Pipeline) {
        if self.facts.iter().any(Option::is_some) {
            let mget = pipe.cmd("MGET");
            for (slot, f) in self.facts.iter().enumerate() {
                if let Some(f) = f {
                    mget.arg(self.store.key(&format!("{{g}}:s:{slot}:{f}")));
                }
            }
        }
        let hmget = pipe.cmd("HMGET").arg(self.store.key("{g}:stats"));
        hmget.arg("logins").arg("users");
        hmget.arg(&DISTINCT_FIELDS[..]);
    }

    fn read_global(&self, a: &mut Answers, view: &mut StoreView) -> Result<(), StoreError> {
        if self.facts.iter().any(Option::is_some) {
            let seen = a.list()?;
            let mut i = 0;
            for (slot, f) in self.facts.iter().enumerate() {
                if f.is_some() {
                    view.profile.global_seen[slot] = u32_of(seen.get(i));
                    i += 1;
                }
            }
        }
        let s = a.list()?;
        view.profile.global_logins = u32_of(s.first());
        view.profile.global_users = u32_of(s.get(1));
        for slot in 0..PROFILE_DIMS.len() {
            view.profile.global_distinct[slot] = u32_of(s.get(2 + slot));
        }
        Ok(())
    }
}

/// One kind and window of the deployment-wide counts: (bucket, events).
type BucketCounts = Vec<(u32, u64)>;

fn bump(v: &mut BucketCounts, b: u32, n: u64) {
    match v.iter_mut().find(|e| e.0 == b) {
        Some(e) => e.1 = e.1.saturating_add(n),
        None => v.push((b, n)),
    }
}

/// Kinds of the deployment-wide counts, by index.
const GLOBAL_KINDS: [char; 2] = ['a', 'f'];

/// The deployment-wide attempts and failures (`P:{g}:v`), counted here at
/// once and merged into Redis every `global_flush` by [`merge_global`],
/// which reads everyone's counts back. Every Evaluate of every replica
/// would otherwise write and read the one `{g}` key — on a cluster, one
/// node. A replica sees its own attempts at once and the others' within
/// about two flush intervals; one replica alone answers exactly like the
/// memory store.
#[derive(Default)]
struct GlobalCounts {
    /// Events counted here and not merged yet, by kind and window.
    pending: [[BucketCounts; 3]; 2],
    /// The deployment's counts as last read, plus `pending`.
    known: [[BucketCounts; 3]; 2],
}

impl GlobalCounts {
    /// Counts an attempt (and a failure); returns attempts and failures as
    /// of `at`, this attempt included.
    fn count(&mut self, at: UnixMillis, failed: bool) -> (Windows, Windows) {
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

    fn windows(&self, k: usize, at: UnixMillis) -> Windows {
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
async fn merge_global(
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
async fn merge_once(
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
    let stale = read.stale();
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

fn forget_stale(work: &mut Vec<Work>, key: impl FnOnce() -> String, b: &Buckets) {
    let fields = b.stale();
    if !fields.is_empty() {
        work.push(Work::Forget { key: key(), fields });
    }
}

impl RedisStore {
    /// A store for `settings`. Connects lazily: a server that is down at
    /// start degrades decisions until it is up, it does not stop startup.
    /// Must be called within a Tokio runtime (the background writer runs
    /// on it).
    pub fn new(settings: RedisSettings) -> Result<Self, StoreError> {
        let bad_url = |e: redis::RedisError| {
            // The URL may hold a password: only the kind is reported.
            StoreError::Unavailable(format!("bad redis url: {:?}", e.kind()))
        };
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            StoreError::Unavailable("the redis store must be made within a Tokio runtime".into())
        })?;
        let conn = if settings.cluster {
            let client = ClusterClient::builder(settings.urls.iter().map(String::as_str))
                .connection_timeout(settings.connect_timeout)
                .response_timeout(settings.response_timeout)
                .retries(1)
                .build()
                .map_err(bad_url)?;
            let config = ClusterConfig::new()
                .set_connection_timeout(settings.connect_timeout)
                .set_response_timeout(settings.response_timeout);
            Conn::Cluster(client.get_pending_async_connection_with_config(config))
        } else {
            let url = match settings.urls.as_slice() {
                [one] => one.as_str(),
                _ => {
                    return Err(StoreError::Unavailable(
                        "redis: one URL for a single node, or cluster mode".into(),
                    ));
                }
            };
            let client = redis::Client::open(url).map_err(bad_url)?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(settings.connect_timeout))
                .set_response_timeout(Some(settings.response_timeout))
                .set_number_of_retries(1)
                .set_min_delay(Duration::from_millis(10))
                .set_max_delay(Duration::from_millis(200));
            let n = settings.connections.max(1);
            let all = (0..n)
                .map(|_| ConnectionManager::new_lazy_with_config(client.clone(), config.clone()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            Conn::Single(Arc::new(Connections {
                all,
                next: AtomicUsize::new(0),
            }))
        };
        let (tx, rx) = mpsc::channel(BACKGROUND_QUEUE);
        runtime.spawn(background(
            rx,
            conn.clone(),
            millis(settings.decision_ttl),
            settings.response_timeout,
        ));
        let global = Arc::new(Mutex::new(GlobalCounts::default()));
        runtime.spawn(merge_global(
            Arc::downgrade(&global),
            conn.clone(),
            format!("{}:{{g}}:v", settings.key_prefix),
            settings.global_flush,
            settings.response_timeout,
        ));
        Ok(RedisStore {
            conn,
            settings,
            background: tx,
            round_trips: AtomicU64::new(0),
            global,
            scripts: Scripts {
                report_all: Script::new(REPORT_ALL),
                report_user: Script::new(REPORT_USER),
                report_global: Script::new(REPORT_GLOBAL),
                admin_profile: Script::new(ADMIN_PROFILE),
                admin_forget: Script::new(ADMIN_FORGET),
                admin_trust: Script::new(ADMIN_TRUST),
                admin_revoke: Script::new(ADMIN_REVOKE),
            },
        })
    }

    /// The key prefix of this deployment.
    pub fn key_prefix(&self) -> &str {
        &self.settings.key_prefix
    }

    /// Round trips this store has made for observe and report calls (a
    /// cluster's per-slot requests, sent at once, count as one). The
    /// background writer's batches are not counted: they are on no call's
    /// path.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    fn trip(&self) {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
    }

    fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.settings.key_prefix)
    }

    /// A key of the user's slot: `P:{u:<u>}:<suffix>`.
    fn user_key(&self, user: Key, suffix: &str) -> String {
        self.key(&format!("{{u:{}}}:{suffix}", hex32(user)))
    }

    /// The user's failures, profile and pending decisions.
    fn user_keys(&self, user: Key) -> [String; 3] {
        let u = format!("{}:{{u:{}}}", self.settings.key_prefix, hex32(user));
        [format!("{u}:v"), format!("{u}:prof"), format!("{u}:p")]
    }

    /// The global count key of each fact present, and its slot.
    fn seen_keys<'a>(
        &self,
        facts: impl IntoIterator<Item = (usize, &'a str)>,
    ) -> (Vec<String>, Vec<usize>) {
        facts
            .into_iter()
            .map(|(slot, k)| (self.key(&format!("{{g}}:s:{slot}:{k}")), slot))
            .unzip()
    }

    /// Queues maintenance for the background writer; dropped when the
    /// queue is full (it is asked for again by the next read that needs it).
    fn maintain(&self, work: Vec<Work>) {
        for w in work {
            if self.background.try_send(w).is_err() {
                return;
            }
        }
    }

    /// Waits until everything queued before for the background writer has
    /// been written (or the store's response timeout passes).
    async fn flush_background(&self) {
        let (done, written) = oneshot::channel();
        let wait = async {
            if self.background.send(Work::Flush(done)).await.is_ok() {
                let _ = written.await;
            }
        };
        let _ = tokio::time::timeout(self.settings.response_timeout, wait).await;
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn observe(&self, obs: &Observation) -> Result<StoreView, StoreError> {
        let plan = ObservePlan::new(self, obs);
        let mut view = StoreView::default();
        let mut work = Vec::new();
        (view.velocity.global_attempts, view.velocity.global_failures) =
            self.global.lock().count(obs.at, obs.failed);
        self.trip();
        if let Conn::Single(_) = self.conn {
            let mut pipe = redis::pipe();
            plan.user(&mut pipe);
            plan.ip(&mut pipe);
            plan.network(&mut pipe);
            plan.device(&mut pipe);
            plan.global(&mut pipe);
            let values = query(&self.conn, &pipe).await.map_err(unavailable)?;
            let mut a = Answers {
                values: values.into_iter(),
            };
            plan.read_user(&mut a, &mut view, &mut work)?;
            plan.read_ip(&mut a, &mut view, &mut work)?;
            plan.read_network(&mut a, &mut view, &mut work)?;
            plan.read_device(&mut a, &mut view, &mut work)?;
            plan.read_global(&mut a, &mut view)?;
        } else {
            // Cluster: one pipeline per slot, all in flight at once.
            let part = |build: &dyn Fn(&mut Pipeline)| {
                let mut pipe = redis::pipe();
                build(&mut pipe);
                pipe
            };
            let pipes = [
                part(&|p| plan.user(p)),
                part(&|p| plan.ip(p)),
                part(&|p| plan.network(p)),
                part(&|p| plan.device(p)),
                part(&|p| plan.global(p)),
            ];
            async fn run(c: &Conn, p: &Pipeline) -> Result<Vec<Value>, StoreError> {
                if p.cmd_iter().next().is_none() {
                    return Ok(Vec::new());
                }
                query(c, p).await.map_err(unavailable)
            }
            let c = &self.conn;
            let (u, i, n, d, g) = tokio::join!(
                run(c, &pipes[0]),
                run(c, &pipes[1]),
                run(c, &pipes[2]),
                run(c, &pipes[3]),
                run(c, &pipes[4]),
            );
            let answers = |v: Vec<Value>| Answers {
                values: v.into_iter(),
            };
            plan.read_user(&mut answers(u?), &mut view, &mut work)?;
            plan.read_ip(&mut answers(i?), &mut view, &mut work)?;
            plan.read_network(&mut answers(n?), &mut view, &mut work)?;
            plan.read_device(&mut answers(d?), &mut view, &mut work)?;
            plan.read_global(&mut answers(g?), &mut view)?;
        }
        self.maintain(work);
        Ok(view)
    }

    async fn report(&self, report: &OutcomeReport) -> Result<ReportEffect, StoreError> {
        let strong = report.outcome == Outcome::StepUpPassed
            && matches!(report.factor, Some(Factor::Webauthn | Factor::Totp));
        let user_keys = self.user_keys(report.user);
        let decision = format!("{:032x}", report.decision);
        let args = |inv: &mut ScriptInvocation<'_>| {
            inv.arg(u8::from(teaches(report.action, report.outcome)))
                .arg(u8::from(report.outcome.is_fraud()))
                .arg(u8::from(report.outcome == Outcome::StepUpFailed))
                .arg(u8::from(strong))
                .arg(report.at.0)
                .arg(self.settings.history_per_dim)
                .arg(millis(self.settings.profile_ttl))
                .arg(COUNTER_TTL_MS)
                .arg(&decision);
        };
        let effect = |code: Option<i64>| match code {
            Some(-1) => Err(StoreError::UnknownDecision(decision.clone())),
            Some(1) => Ok(ReportEffect {
                profile_updated: true,
            }),
            _ => Ok(ReportEffect::default()),
        };
        self.trip();

        if let Conn::Single(_) = self.conn {
            let mut inv = self.scripts.report_all.prepare_invoke();
            inv.key(&user_keys[..]).key(self.key("{g}:stats"));
            args(&mut inv);
            inv.arg(&self.settings.key_prefix);
            let values: Vec<i64> = invoke(&self.conn, &inv).await?;
            return effect(values.first().copied());
        }

        let mut inv = self.scripts.report_user.prepare_invoke();
        inv.key(&user_keys[..]);
        args(&mut inv);
        let values: Vec<Value> = invoke(&self.conn, &inv).await?;
        let mode = int(values.get(1));
        if mode != 0 {
            self.trip();
            let facts = (0..PROFILE_DIMS.len())
                .filter_map(|slot| text(values.get(3 + slot)).map(|f| (slot, f)));
            let (seen, slots) = self.seen_keys(facts);
            let mut global = self.scripts.report_global.prepare_invoke();
            global.key(self.key("{g}:stats")).key(&seen[..]);
            args(&mut global);
            global.arg(mode).arg(int(values.get(2)));
            for slot in slots {
                global.arg(slot);
            }
            let _: Vec<i64> = invoke(&self.conn, &global).await?;
        }
        effect(Some(int(values.first())))
    }

    fn name(&self) -> &'static str {
        "redis"
    }

    async fn flush(&self) {
        let key = self.key("{g}:v");
        let merged = merge_once(
            &self.global,
            &self.conn,
            &key,
            self.settings.response_timeout,
        );
        if let Err(e) = merged.await {
            tracing::warn!(error = %e, "deployment-wide counts not merged at shutdown");
        }
        self.flush_background().await;
    }

    async fn profile(&self, user: Key) -> Result<UserProfile, StoreError> {
        self.flush_background().await;
        let mut inv = self.scripts.admin_profile.prepare_invoke();
        inv.key(self.user_key(user, "prof"))
            .key(self.user_key(user, "d"));
        let (hash, mut recent): (Vec<(String, String)>, Vec<String>) =
            invoke(&self.conn, &inv).await?;
        // Stored oldest first.
        recent.reverse();
        Ok(parse_profile(&hash, &recent))
    }

    async fn forget(&self, user: Key) -> Result<Forgotten, StoreError> {
        self.flush_background().await;
        let mut inv = self.scripts.admin_forget.prepare_invoke();
        inv.key(&self.user_keys(user)[..])
            .key(self.user_key(user, "d"));
        let c: Vec<i64> = invoke(&self.conn, &inv).await?;
        let n = |i: usize| u32::try_from(c.get(i).copied().unwrap_or(0).max(0)).unwrap_or(u32::MAX);
        Ok(Forgotten {
            verified_logins: n(0),
            profile_values: n(1),
            trusted_devices: n(2),
            revoked_devices: n(3),
            pending_decisions: n(4),
            recent_decisions: n(5),
            failure_counters: n(6),
        })
    }

    async fn trust_device(
        &self,
        user: Key,
        device: Key,
        at: UnixMillis,
    ) -> Result<bool, StoreError> {
        let mut inv = self.scripts.admin_trust.prepare_invoke();
        inv.key(self.user_key(user, "prof"))
            .arg(hex16(device))
            .arg(at.0)
            .arg(self.settings.history_per_dim)
            .arg(millis(self.settings.profile_ttl));
        let known: i64 = invoke(&self.conn, &inv).await?;
        Ok(known == 1)
    }

    async fn revoke_device(
        &self,
        user: Key,
        device: Key,
        at: UnixMillis,
    ) -> Result<bool, StoreError> {
        let mut inv = self.scripts.admin_revoke.prepare_invoke();
        inv.key(self.user_key(user, "prof"))
            .arg(hex16(device))
            .arg(at.0)
            .arg(millis(self.settings.profile_ttl));
        let known: i64 = invoke(&self.conn, &inv).await?;
        Ok(known == 1)
    }

    fn record_decision(
        &self,
        user: Key,
        _decision: u128,
        at: UnixMillis,
        answer: &Decision,
    ) -> Result<(), StoreError> {
        let mut codes = String::new();
        for r in answer.reasons.iter().filter(|r| !r.shadow) {
            if !codes.is_empty() {
                codes.push(',');
            }
            codes.push_str(&r.code);
        }
        // Scores are recorded at f32 precision, like the memory store.
        let entry = format!(
            "{}|{}|{}|{codes}|{}",
            at.0,
            answer.action.as_str(),
            answer.score as f32,
            answer.decision_id
        );
        let key = self.user_key(user, "d");
        self.background
            .try_send(Work::Record { key, entry })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => {
                    StoreError::Unavailable("the background write queue is full".into())
                }
                mpsc::error::TrySendError::Closed(_) => {
                    StoreError::Unavailable("the background writer stopped".into())
                }
            })
    }
}

/// The comparable hash ([`super::value_hash`]) of a stored hex16 value.
fn hash_of_hex(h: &str) -> Option<u64> {
    let bytes = hex::decode(h).ok()?;
    let b: [u8; 8] = bytes.try_into().ok()?;
    Some(u64::from_le_bytes(b).max(1) & VALUE_HASH_MASK)
}

/// Reads a profile hash and recent-decisions list (see redis_admin.lua).
fn parse_profile(hash: &[(String, String)], recent: &[String]) -> UserProfile {
    let mut p = UserProfile::default();
    let mut values: std::collections::BTreeMap<(usize, u64), (u32, u32)> = Default::default();
    let mut la = None;
    let mut lp = None;
    for (field, value) in hash {
        let n = || value.parse::<i64>().unwrap_or(0);
        let n32 = || u32::try_from(n().max(0)).unwrap_or(u32::MAX);
        let mark = |rest: &str| {
            hash_of_hex(rest).map(|device| DeviceMark {
                device,
                at: UnixMillis(n()),
            })
        };
        if let Some(rest) = field.strip_prefix("tr:") {
            p.trusted.extend(mark(rest));
        } else if let Some(rest) = field.strip_prefix("rv:") {
            p.revoked.extend(mark(rest));
        } else if field == "v" {
            p.verified_logins = n32();
        } else if field == "la" {
            la = Some(UnixMillis(n()));
        } else if field == "lp" {
            lp = parse_place(value);
        } else if field == "sa" {
            p.last_strong_auth = Some(UnixMillis(n()));
        } else if let Some(hour) = field.strip_prefix('h') {
            if let Ok(h) = hour.parse::<u8>() {
                p.hours.push((h, n32()));
            }
        } else if let Some((kind, rest)) = field.split_at_checked(1)
            && (kind == "d" || kind == "t")
            && let Some((slot, hex)) = rest.split_once(':')
            && let (Ok(slot), Some(hash)) = (slot.parse::<usize>(), hash_of_hex(hex))
        {
            let e = values.entry((slot, hash)).or_default();
            if kind == "d" {
                e.0 = n32();
            } else {
                e.1 = n32();
            }
        }
    }
    p.values = values
        .into_iter()
        .filter(|(_, (count, _))| *count > 0)
        .filter_map(|((slot, hash), (count, last_seen_secs))| {
            Some(ProfileValue {
                dim: *PROFILE_DIMS.get(slot)?,
                hash,
                count,
                last_seen_secs,
            })
        })
        .collect();
    p.values.sort();
    p.hours.sort();
    p.trusted.sort();
    p.revoked.sort();
    p.last_login = la.map(|at| LastLogin { at, place: lp });
    p.recent = recent
        .iter()
        .filter_map(|e| {
            let mut it = e.splitn(5, '|');
            let at = it.next()?.parse().ok()?;
            let action = crate::domain::Action::parse(it.next()?)?;
            // Scores are recorded at f32 precision, like the memory store.
            let score = f64::from(it.next()?.parse::<f32>().ok()?);
            let codes = it.next()?;
            let decision_id = it.next()?.to_string();
            Some(DecisionRecord {
                decision_id,
                at: UnixMillis(at),
                action,
                score,
                reasons: codes
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect();
    p
}
