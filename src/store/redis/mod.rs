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
//! - a **velocity key** is one hash per entity. An event is one `HINCRBY`
//!   of its 5-second bucket's field, `<kind>1:<bucket>` (kind `f`
//!   failures, `a` attempts; buckets as [`super::window::bucket`]); the
//!   read, `HGETALL`, maps each field up to the coarser windows' buckets
//!   and counts with [`super::window::window_count`], which answers
//!   exactly like the memory store's rings (property tests check both).
//!   Fields that can never count again are deleted afterwards; past
//!   [`FOLD_AT`] fields that have left their own window, the upkeep script
//!   adds them to the coarser field they still count in (`<kind>2:<5-min
//!   bucket>`, `<kind>3:<hour>`), atomically, so a busy key holds a few
//!   dozen fields and replicas folding at once count each event once;
//! - an IP's or device's **distinct users** are fields of the same hash,
//!   `u<user>` → last seen (ms), written with `HSET` and counted from the
//!   same read; past the cap of 256 the stale and then the oldest are
//!   deleted afterwards, by a script that keeps a member seen again since
//!   the read (counts are capped at 256 meanwhile, as the memory store's
//!   are). The last write wins: an attempt reported with an earlier time
//!   than the member's last one (a late `occurred_at`) shortens the
//!   member's stay in the windows by the difference, where the memory
//!   store keeps the later time;
//! - the **pending decision** is not written by observe: it is one field
//!   of the user's pending hash, written with its answer by
//!   [`Store::record_decision`] through the background writer (`HSETNX`);
//!   on one observe in 16 the background writer checks the hash, and past
//!   512 the oldest are dropped.
//!
//! "Afterwards" is the store's background writer: maintenance and the
//! decisions with their answers ([`Store::record_decision`]) are queued
//! (bounded) and written in batched pipelines, never on an RPC's path. A
//! report to the replica that made a decision finds it at once (a record
//! still queued goes with the report, `writer::Unwritten`); a report to
//! another replica of a decision Redis does not have yet, made less than
//! 5 s ago, is answered `Unavailable` (retryable), not unknown.
//!
//! The deployment-wide attempts and failures are not written per call at
//! all: each replica counts its own at once and merges them into `P:{g}:v`
//! every `global_flush`, reading everyone's back (`GlobalCounts`). The
//! deployment's stats (`P:{g}:stats`) are read with each merge, not per
//! observe (after a failed merge, observes read them until one succeeds).
//! What a report teaches of the deployment-wide value counts and
//! stats is not written per report either: the replica keeps it as a
//! numbered batch that the merge applies with one script (`merge.lua`),
//! once per batch however often a failed merge retries it (the replica's
//! marker, `P:{g}:m:<replica>` and field `m:<replica>` of the stats, holds
//! the last batch applied). The marker is read with the value counts (one
//! `MGET`) and with the stats (one `HMGET`), and what this replica taught
//! above it is added, so one replica alone answers exactly like the memory
//! store; another replica's teaching shows within about two
//! intervals. Within one batch the order of a value's changes is not kept
//! (a count never goes below zero either way). What a replica taught in
//! the last interval is lost if it dies before merging it, and so is a
//! report's whose answer was lost after its script ran (the retry finds
//! the decision taught): the deployment-wide counts miss those logins,
//! the user's profile does not.
//!
//! Reports read-modify-write the profile (caps, eviction, unteaching). The
//! profile is one string, [`crate::store::profile::Profile`] encoded (the
//! memory store's own type and rules): a report reads the decision's record
//! and the profile with one pipeline, teaches or unteaches in the replica,
//! and writes both with `write_profile.lua`, which writes only if neither
//! changed since they were read (else the replica reads again; `teach`).
//! Whether a value the report teaches
//! is new deployment-wide (which moves the distinct-value counts) is
//! judged from the value counts the decision's own observe read, kept by
//! the replica for the last [`global::OBSERVED_CAP`] decisions and laid
//! over with what it taught since; a report without them (observed by
//! another replica, or older) is recorded as reported and the merge counts
//! distinct values from Redis's own, so the replica's distinct counts lag
//! by at most one merge. The admin reads and erasure are Lua scripts on
//! one user's slot (`admin.lua`); support's device marks change the profile
//! as a report does.
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
//! | `P:{u:<u>}:w` | hash | user failures per 5-second bucket (folded as below) | 25 h |
//! | `P:{u:<u>}:prof` | string | the profile, [`crate::store::profile::Profile::encode`]: verified, last login (time, place), last strong auth, the hour-of-week histogram, each remembered value (dimension-tagged short key, count, last seen), support's trusted and revoked devices. Earlier versions kept a hash here (`v`, `d<slot>:<k>`, `t<slot>:<k>`, `n<slot>`, `h<hour>`, `la`, `lp`, `sa`, `tr:`/`rv:<device>`): `GET` answers `WRONGTYPE`, and observe reads and converts it | profile TTL, refreshed by teaching and support's marks (unteaching and conversion keep it) |
//! | `P:{u:<u>}:p` | hash | pending decisions with their answers, written once answered, by the background writer (`HSETNX`) or by an earlier report of the same replica: decision hex → `<taught>\|<expires ms>\|<at>\|<hour>\|<place>\|<fact 0>\|…\|<fact 11>\|<action>\|<score>\|<codes>\|<id tag>` (fact 11, the bound device, only when the attempt was key-verified; the id's tag in hex, the rest of the id being the decision, user and action). The newest 20 unexpired are the user's recent decisions. Records of earlier versions have no answer and may have 11 facts (the 12th then reads as absent). Past 512 the oldest are dropped down to 256 | decision TTL, refreshed with every record |
//! | `P:{u:<u>}:d` | list | earlier versions' recent decisions (`<at>\|<action>\|<score>\|<codes>\|<decision id>`, oldest first): no longer written; shown and erased until it expires | decision TTL |
//! | `P:{i:<ip>}:w` | hash | failures and attempts per 5-second bucket (folded: per 5 minutes, per hour), `u<user>` → last seen ms (≤ 256) | 25 h 10 min, refreshed once per 10 minutes per replica (`refresh`) |
//! | `P:{n:<net>}:w` | hash | failures per bucket (written on a failure only) | as the IP's |
//! | `P:{dv:<dev>}:w` | hash | failures per bucket, `u<user>` → last seen ms (≤ 256) | as the IP's |
//! | `P:{g}:v` | hash | deployment-wide attempts and failures per bucket and window (each merge adds to all three) | 25 h |
//! | `P:{g}:stats` | hash | `n<slot>` global distinct values, `logins`, `users`; `m:<replica>` each replica's marker (swept once its marker key has expired, a day after the replica's last batch) | profile TTL |
//! | `P:{g}:s:<slot>:<k>` | string | global verified count of one value, for the dimensions Freeman's ratio reads (`keys::GLOBAL_DIMS`); earlier versions' counts of devices, networks, cities and regions are no longer read and expire | profile TTL |
//! | `P:{g}:m:<replica>` | string | the last of the replica's taught batches applied (the replica's id is random per process) | 24 h |
//!
//! Profile and forget first wait
//! for the background writer's queue to be written. A report finds every
//! decision this replica answered without waiting: a record still queued
//! is used as read and written with the report's mark if Redis lacks it (the
//! writer writes with `HSETNX`, so it never overwrites the taught mark). Forget erases every
//! `{u:<u>}` key; the global aggregates and the IP/device distinct-user
//! fields (hashed members, 25 h) are left to expire.
//!
//! A report finds its pending decision from the decision id alone: the id
//! carries the user's key (see [`super::decision_id`]), so no cross-slot
//! index is needed.
//!
//! Needs Redis 6.2 or newer (tested with 7.0).

mod global;
mod observe;
mod profile;
mod refresh;
mod teach;
mod values;
mod writer;

use std::collections::HashMap;
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

use crate::core::inputs::{GeoPoint, LastLogin, Observation, ProfileView, StoreView, Windows};
use crate::core::keys::{Dim, GLOBAL_SLOTS, Key, PROFILE_DIMS, VALUE_HASH_MASK, counted_globally};
use crate::domain::{Factor, Outcome, UnixMillis};
use crate::store::profile::Profile;

use super::window::{DistinctSet, GEOMETRY, LONGEST_MS, bucket, stale, window_count};
use super::{
    DecisionRecord, DeviceMark, Forgotten, Mark, OutcomeReport, ProfileValue, RecentDecision,
    ReportEffect, Store, StoreError, UserProfile, defaults, newest_recent, teaches,
};

use global::*;
use observe::*;
use profile::*;
use refresh::*;
use teach::{decode_profile, profile_hash};
use values::*;
use writer::*;

macro_rules! script {
    ($parts:literal, $main:literal) => {
        concat!(
            include_str!("common.lua"),
            include_str!($parts),
            "\n",
            $main,
            "\n"
        )
    };
}

/// The conditional write of a profile (and a report's decision mark): see
/// `write_profile.lua`.
const WRITE_PROFILE: &str = include_str!("write_profile.lua");
/// The merge of taught global counts (see `merge.lua`).
const MERGE_TAUGHT: &str = concat!(include_str!("common.lua"), include_str!("merge.lua"));

/// The upkeep of a velocity hash that needs a field's value when it runs.
/// KEYS: 1 the hash; ARGV: 1 the number of folds, then that many (from,
/// into) field pairs — a folded field's events are added to the coarser
/// one and it is deleted — then (member, ms) pairs: a member is deleted if
/// its last-seen time is still at most `ms`. Atomic, so replicas running
/// it at once count every event once and keep a member seen again.
const UPKEEP: &str = r#"local folds = tonumber(ARGV[1])
local i = 2
while i < 2 + 2 * folds do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if v then
    redis.call('HINCRBY', KEYS[1], ARGV[i + 1], v)
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
  i = i + 2
end
while i < #ARGV do
  local seen = redis.call('HGET', KEYS[1], ARGV[i])
  if seen and tonumber(seen) <= tonumber(ARGV[i + 1]) then
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
  i = i + 2
end
return 1"#;

/// Admin scripts, all on one user's slot. KEYS: 1 profile, 2 pending, 3
/// the earlier versions' recent-decisions list.
const ADMIN_PROFILE: &str = script!("admin.lua", "return adm_profile(KEYS[1], KEYS[2], KEYS[3])");
/// KEYS: 1 user velocity, 2 profile, 3 pending, 4 the earlier versions'
/// recent-decisions list, 5 the user's velocity of the earlier layout;
/// ARGV: 1 now (ms).
const ADMIN_FORGET: &str = script!(
    "admin.lua",
    "return adm_forget(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], tonumber(ARGV[1]))"
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
    /// failure counts, and what its reports taught of the global value
    /// counts and stats, into Redis and reads everyone's back.
    pub global_flush: Duration,
    /// Connections to a single node, used in turn (each is multiplexed;
    /// more than one lets the answers of concurrent calls be read in
    /// parallel). Cluster mode keeps its own per-node connections.
    pub connections: usize,
}

impl RedisSettings {
    /// The default key prefix.
    pub const KEY_PREFIX: &str = "riskgate";
    /// How often deployment-wide counts are merged by default.
    pub const GLOBAL_FLUSH: Duration = Duration::from_millis(100);

    /// Defaults for one node at `url`, matching the memory store's limits.
    pub fn new(url: impl Into<String>) -> Self {
        RedisSettings {
            urls: vec![url.into()],
            cluster: false,
            key_prefix: Self::KEY_PREFIX.into(),
            profile_ttl: defaults::PROFILE_TTL,
            decision_ttl: defaults::DECISION_TTL,
            history_per_dim: defaults::HISTORY_PER_DIM,
            connect_timeout: Duration::from_millis(500),
            response_timeout: Duration::from_secs(1),
            global_flush: Self::GLOBAL_FLUSH,
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
    write_profile: Script,
    admin_profile: Script,
    admin_forget: Script,
}

/// The Redis store (single node or cluster).
pub struct RedisStore {
    conn: Conn,
    settings: RedisSettings,
    scripts: Scripts,
    background: mpsc::Sender<Work>,
    /// Answered decisions whose record the writer has not written yet.
    unwritten: Unwritten,
    round_trips: AtomicU64,
    global: Arc<Mutex<GlobalCounts>>,
    merge: Arc<Merge>,
    /// IP, network and device hashes given a TTL lately.
    refreshed: Refreshed,
    /// Reports and marks of one user on this replica take turns (by stripe
    /// of the user's key): a profile is read, changed and written back only
    /// if unchanged, so turns within a replica spare the retries.
    user_turns: Box<[tokio::sync::Mutex<()>]>,
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

/// The suffix of an entity's velocity hash (user, IP, network, device):
/// `w`, the 5-second layout with folding. Hashes of the earlier layout (one
/// field per window, suffix `v`) are never read and expire within 25 h; the
/// deployment-wide `{g}:v` keeps that layout.
const VELOCITY: &str = "w";
/// The earlier layout's suffix, still erased by forget until it expires.
const LEGACY_VELOCITY: &str = "v";
/// The recent-decisions list of earlier versions (each answer now lives
/// in its pending decision's record): still shown and erased until it
/// expires, a decision TTL after the upgrade.
const LEGACY_RECENT: &str = "d";

/// Velocity keys live one bucket longer than the longest window.
const COUNTER_TTL_MS: i64 = LONGEST_MS + GEOMETRY[2].0;

/// Stripes of [`RedisStore::user_turns`].
const USER_TURNS: usize = 256;

/// Work that may wait for the background writer.
const BACKGROUND_QUEUE: usize = 16_384;
/// A report of a decision unknown to Redis but made less than this long
/// ago is answered as retryable (`Unavailable`): the replica that made it
/// may not have written it yet.
const JUST_MADE_MS: i64 = 5_000;
/// Most items written in one pipeline.
const BACKGROUND_BATCH: usize = 256;
/// Pending decisions kept per user: past twice this many, the oldest are
/// dropped down to this many (decision ids are time-ordered UUIDs).
const PENDING_CAP: usize = 256;
/// One observe in this many (by decision id) has the background writer
/// check the user's pending decisions against the cap.
const PRUNE_SAMPLE: u128 = 16;
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

/// The deployment-wide count of one value, `P:{g}:s:<slot>:<value>`
/// (`value` as [`hex16`] writes it).
fn value_count_key(prefix: &str, slot: usize, value: impl std::fmt::Display) -> String {
    format!("{prefix}:{{g}}:s:{slot}:{value}")
}

/// A fact's value as [`hex16`] wrote it, as a number.
fn value_of(hex16: &str) -> Option<u64> {
    u64::from_str_radix(hex16, 16).ok()
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
        let unwritten = Unwritten::default();
        runtime.spawn(background(
            rx,
            unwritten.clone(),
            conn.clone(),
            Script::new(UPKEEP),
            millis(settings.decision_ttl),
            settings.response_timeout,
        ));
        let global = Arc::new(Mutex::new(GlobalCounts::default()));
        // Random per process: a restarted replica's batches start over.
        let replica = rand::random::<u64>();
        let merge = Arc::new(Merge {
            counts: format!("{}:{{g}}:v", settings.key_prefix),
            stats: format!("{}:{{g}}:stats", settings.key_prefix),
            marker: format!("{}:{{g}}:m:{replica:016x}", settings.key_prefix),
            marker_field: format!("m:{replica:016x}"),
            prefix: settings.key_prefix.clone(),
            script: Script::new(MERGE_TAUGHT),
            sweep: Script::new(SWEEP_MARKERS),
            profile_ttl_ms: millis(settings.profile_ttl),
            timeout: settings.response_timeout,
            keep: settings.response_timeout * 2 + settings.connect_timeout,
        });
        runtime.spawn(merge_global(
            Arc::downgrade(&global),
            conn.clone(),
            Arc::clone(&merge),
            settings.global_flush,
        ));
        Ok(RedisStore {
            conn,
            settings,
            background: tx,
            unwritten,
            round_trips: AtomicU64::new(0),
            global,
            merge,
            refreshed: Refreshed::default(),
            user_turns: (0..USER_TURNS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            scripts: Scripts {
                write_profile: Script::new(WRITE_PROFILE),
                admin_profile: Script::new(ADMIN_PROFILE),
                admin_forget: Script::new(ADMIN_FORGET),
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
        [
            format!("{u}:{VELOCITY}"),
            format!("{u}:prof"),
            format!("{u}:p"),
        ]
    }

    /// Records what a report that taught or untaught `decision` changes of
    /// the global counts. `mode`: 1 taught, -1 untaught; `facts`: the
    /// decision's facts as its record keeps them. Whether a value is new
    /// deployment-wide is judged from the counts the decision's observe
    /// read, laid over with this replica's batches since; without them
    /// (another replica observed it, or it is old) the change is recorded
    /// as reported, and the merge script counts distinct values from
    /// Redis's own.
    fn taught(&self, decision: u128, mode: i64, new_user: bool, facts: &[&str]) {
        let mut g = self.global.lock();
        let observed = g.observed_counts(decision);
        let teaching = Teaching {
            mode,
            new_user,
            facts: facts
                .iter()
                .enumerate()
                .take(GLOBAL_SLOTS)
                .filter(|(slot, _)| counted_globally(*slot))
                .filter_map(|(slot, f)| {
                    let value = value_of(f)?;
                    Some((slot, value, observed.map(|(c, _)| i64::from(c[slot]))))
                })
                .collect(),
            marker: observed.map_or(0, |(_, m)| m),
        };
        g.teach(&teaching);
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
    /// Whether `decision` (a time-ordered v7 id) was made so recently that
    /// the replica that made it may still hold its record queued for its
    /// background writer: within [`JUST_MADE_MS`], or four response
    /// timeouts if longer (a batch that times out is not retried).
    fn just_made(&self, decision: u128) -> bool {
        let made = i64::try_from(decision >> 80).unwrap_or(0);
        let window = JUST_MADE_MS.max(
            i64::try_from(self.settings.response_timeout.as_millis().saturating_mul(4))
                .unwrap_or(i64::MAX),
        );
        let age = UnixMillis::now().0.saturating_sub(made);
        (-window..=window).contains(&age)
    }

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

impl RedisStore {
    async fn observe_once(&self, obs: &Observation) -> Result<StoreView, StoreError> {
        let mut view = StoreView::default();
        let stats = {
            let mut g = self.global.lock();
            (view.velocity.global_attempts, view.velocity.global_failures) =
                g.count(obs.at, obs.failed);
            g.stats.is_some() && !g.stale
        };
        let plan = ObservePlan::new(self, obs, stats);
        let mut work = Vec::new();
        self.trip();
        if let Conn::Single(_) = self.conn {
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            plan.user(&mut pipe);
            plan.ip(&mut pipe);
            plan.network(&mut pipe);
            plan.device(&mut pipe);
            plan.global(&mut pipe);
            let values = query(&self.conn, &pipe).await.map_err(unavailable)?;
            let mut a = Answers::new(values);
            let got = plan.read_user(&mut a, &mut view, &mut work)?;
            view.profile = self.profile_view(obs, &plan, got).await?;
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
                part(&|p| {
                    p.ignore_errors();
                    plan.user(p)
                }),
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
            let answers = Answers::new;
            let got = plan.read_user(&mut answers(u?), &mut view, &mut work)?;
            view.profile = self.profile_view(obs, &plan, got).await?;
            plan.read_ip(&mut answers(i?), &mut view, &mut work)?;
            plan.read_network(&mut answers(n?), &mut view, &mut work)?;
            plan.read_device(&mut answers(d?), &mut view, &mut work)?;
            plan.read_global(&mut answers(g?), &mut view)?;
        }
        self.maintain(work);
        Ok(view)
    }

    /// The profile's part of the view, from its `GET` answer. An earlier
    /// version's hash is read and converted at once.
    async fn profile_view(
        &self,
        obs: &Observation,
        plan: &ObservePlan<'_>,
        got: Value,
    ) -> Result<ProfileView, StoreError> {
        let legacy = !matches!(got, Value::Nil | Value::BulkString(_));
        let key = plan.profile_key();
        let read = self.read_profile(key, got).await?;
        if legacy {
            self.convert_profile(&read, key).await;
        }
        Ok(read
            .profile
            .map(|p| p.view(&obs.facts, obs.at.hour_of_week()))
            .unwrap_or_default())
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn observe(&self, obs: &Observation) -> Result<StoreView, StoreError> {
        let view = self.observe_once(obs).await;
        if view.is_err() {
            // Redis may have restarted and lost its keys: every TTL is
            // refreshed again.
            self.refreshed.forget_all();
        }
        view
    }

    async fn report(&self, report: &OutcomeReport) -> Result<ReportEffect, StoreError> {
        self.report_profile(report).await
    }

    fn name(&self) -> &'static str {
        "redis"
    }

    async fn flush(&self) {
        // Twice if need be: past the cap of unconfirmed batches the first
        // merge confirms them and the second numbers the open one.
        for _ in 0..2 {
            if let Err(e) = merge_once(&self.global, &self.conn, &self.merge).await {
                tracing::warn!(error = %e, "deployment-wide counts not merged at shutdown");
                break;
            }
            if !self.global.lock().has_open() {
                break;
            }
        }
        self.flush_background().await;
    }

    async fn profile(&self, user: Key) -> Result<UserProfile, StoreError> {
        self.flush_background().await;
        let mut inv = self.scripts.admin_profile.prepare_invoke();
        inv.key(self.user_key(user, "prof"))
            .key(self.user_key(user, "p"))
            .key(self.user_key(user, LEGACY_RECENT));
        let (stored, pending, legacy): (Value, Vec<(String, String)>, Vec<String>) =
            invoke(&self.conn, &inv).await?;
        let mut p = match stored {
            Value::Nil => UserProfile::default(),
            Value::BulkString(b) => decode_profile(&b, &self.user_key(user, "prof"))?.export(),
            other => parse_profile_hash(&profile_hash(other)?),
        };
        p.recent = recent(user, &pending, &legacy, UnixMillis::now());
        Ok(p)
    }

    async fn forget(&self, user: Key) -> Result<Forgotten, StoreError> {
        self.flush_background().await;
        let mut inv = self.scripts.admin_forget.prepare_invoke();
        inv.key(&self.user_keys(user)[..])
            .key(self.user_key(user, LEGACY_RECENT))
            .key(self.user_key(user, LEGACY_VELOCITY))
            .arg(UnixMillis::now().0);
        let c: Vec<Value> = invoke(&self.conn, &inv).await?;
        let n = |i: usize| u32::try_from(int(c.get(i)).max(0)).unwrap_or(u32::MAX);
        // An earlier version's hash is counted by the script; the string
        // comes back to be counted here.
        let mut f = Forgotten {
            verified_logins: n(0),
            profile_values: n(1),
            trusted_devices: n(2),
            revoked_devices: n(3),
            pending_decisions: n(4),
            recent_decisions: n(5),
            failure_counters: n(6),
            journal_decisions: 0,
        };
        if let Some(Value::BulkString(b)) = c.get(7)
            && let Some(p) = Profile::decode(b)
        {
            p.count_forgotten(&mut f);
        }
        Ok(f)
    }

    async fn mark_device(
        &self,
        user: Key,
        device: Key,
        mark: Mark,
        at: UnixMillis,
    ) -> Result<bool, StoreError> {
        self.mark_profile(user, device, mark, at).await
    }

    fn record_decision(
        &self,
        obs: &Observation,
        answer: &DecisionRecord<'_>,
    ) -> Result<(), StoreError> {
        let record = observe::pending_record(self, obs, answer)
            .ok_or_else(|| StoreError::Unavailable("record: not a decision id".into()))?;
        let record: Arc<str> = record.into();
        self.unwritten.insert(obs.decision, Arc::clone(&record));
        let work = Work::Decision {
            key: self.user_key(obs.user, "p"),
            field: format!("{:032x}", obs.decision),
            decision: obs.decision,
            record,
        };
        self.background.try_send(work).map_err(|e| {
            self.unwritten.remove(obs.decision);
            match e {
                mpsc::error::TrySendError::Full(_) => {
                    StoreError::Unavailable("the background write queue is full".into())
                }
                mpsc::error::TrySendError::Closed(_) => {
                    StoreError::Unavailable("the background writer stopped".into())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RECENT_DECISIONS;

    #[test]
    fn the_scripts_know_as_many_facts_as_there_are_profile_dimensions() {
        for line in [
            format!("local NFACTS = {}\n", PROFILE_DIMS.len()),
            format!("local RECENT = {RECENT_DECISIONS}\n"),
        ] {
            assert!(include_str!("common.lua").contains(&line), "{line}");
        }
        assert_eq!(DISTINCT_FIELDS.len(), PROFILE_DIMS.len());
        // The literal prefix tables name every slot as the store does.
        let table = |name: &str, items: Vec<String>| {
            let quoted: Vec<String> = items.iter().map(|s| format!("'{s}'")).collect();
            format!("local {name} = {{{}}}", quoted.join(", "))
        };
        let common = include_str!("common.lua");
        let slots = 0..PROFILE_DIMS.len();
        for line in [
            table("DP", slots.clone().map(|i| format!("d{i}:")).collect()),
            table("TP", slots.clone().map(|i| format!("t{i}:")).collect()),
            table("NP", slots.map(|i| format!("n{i}")).collect()),
        ] {
            assert!(common.contains(&line), "{line}");
        }
    }
}
