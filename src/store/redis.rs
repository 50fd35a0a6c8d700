//! The shared store: Redis, so that every replica sees the same velocity
//! counters, profiles and pending decisions.
//!
//! Each [`Store`] call is one `EVALSHA` of a Lua script (one round trip;
//! `redis::Script` reloads the script on `NOSCRIPT`), and the scripts
//! implement exactly what [`super::memory::MemoryStore`] does: the same
//! bucketed rings as [`super::window::SlidingCounter`], the same capped
//! distinct sets as [`super::window::DistinctSet`], the same history caps.
//!
//! Key layout (`P` is the deployment's key prefix; `<u>` etc. are hex
//! [`Key`]s, never raw identifiers; every key has a TTL):
//!
//! | key | type | content | TTL |
//! |---|---|---|---|
//! | `P:{u:<u>}:v` | hash | user failure ring | 25 h |
//! | `P:{u:<u>}:prof` | hash | `v` verified, `d<slot>:<k>` count, `t<slot>:<k>` last seen (s), `n<slot>` distinct, `h<hour>` hour histogram, `la`/`lp` last login time/place, `sa` last strong auth | profile TTL, refreshed on teach |
//! | `P:{u:<u>}:p:<decision>` | hash | pending decision: `at`, `hr`, `u`, `pl`, `f<slot>` facts, `taught` | decision TTL |
//! | `P:d:<decision>` | string | the user of a pending decision | decision TTL |
//! | `P:{i:<ip>}:v`, `P:{n:<net>}:v`, `P:{dv:<dev>}:v` | hash | failure (`f`) / attempt (`a`) rings | 25 h |
//! | `P:{i:<ip>}:users`, `P:{dv:<dev>}:users` | zset | user → last seen ms, ≤ 256 members | 25 h |
//! | `P:{g}:v` | hash | global attempt and failure rings | 25 h |
//! | `P:{g}:stats` | hash | `n<slot>` global distinct values, `logins`, `users` | profile TTL |
//! | `P:{g}:s:<slot>:<k>` | string | global verified count of one value | profile TTL |
//!
//! The scripts touch keys of several hash tags, so this store needs a single
//! Redis node (or a primary with replicas); Redis Cluster is not supported.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Script, Value};

use crate::domain::{Factor, Outcome};

use super::window::{GEOMETRY, LONGEST_MS};
use super::{
    Dim, GeoPoint, Key, LastLogin, Observation, OutcomeReport, PROFILE_DIMS, ProfileView,
    ReportEffect, Store, StoreError, StoreView, VelocityView, Windows, teaches,
};

const OBSERVE_LUA: &str = concat!(
    include_str!("redis_common.lua"),
    include_str!("redis_observe.lua")
);
const REPORT_LUA: &str = concat!(
    include_str!("redis_common.lua"),
    include_str!("redis_report.lua")
);

/// Settings of the Redis store.
#[derive(Clone, Debug)]
pub struct RedisSettings {
    /// `redis://host:port/db` (or `rediss://`, `redis+unix://`).
    pub url: String,
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
}

impl RedisSettings {
    /// Defaults for `url`, matching the memory store's limits.
    pub fn new(url: impl Into<String>) -> Self {
        RedisSettings {
            url: url.into(),
            key_prefix: "riskgate".into(),
            profile_ttl: Duration::from_secs(90 * 86_400),
            decision_ttl: Duration::from_secs(7 * 86_400),
            history_per_dim: 16,
            connect_timeout: Duration::from_millis(500),
            response_timeout: Duration::from_secs(1),
        }
    }
}

/// The Redis store (single node).
pub struct RedisStore {
    conn: ConnectionManager,
    settings: RedisSettings,
    observe: Script,
    report: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: not printed.
        f.debug_struct("RedisStore")
            .field("key_prefix", &self.settings.key_prefix)
            .finish_non_exhaustive()
    }
}

/// Velocity keys live one bucket longer than the longest window.
const COUNTER_TTL_MS: i64 = LONGEST_MS + GEOMETRY[2].0;

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

impl RedisStore {
    /// A store for `settings`. Connects lazily: a server that is down at
    /// start degrades decisions until it is up, it does not stop startup.
    pub fn new(settings: RedisSettings) -> Result<Self, StoreError> {
        let client = redis::Client::open(settings.url.as_str())
            .map_err(|e| StoreError::Unavailable(format!("bad redis url: {:?}", e.kind())))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.connect_timeout))
            .set_response_timeout(Some(settings.response_timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(unavailable)?;
        Ok(RedisStore {
            conn,
            settings,
            observe: Script::new(OBSERVE_LUA),
            report: Script::new(REPORT_LUA),
        })
    }

    /// The key prefix of this deployment.
    pub fn key_prefix(&self) -> &str {
        &self.settings.key_prefix
    }

    fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.settings.key_prefix)
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

fn place_text(p: &GeoPoint) -> String {
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

/// Reads the observe script's flat answer.
fn parse_view(values: &[Value]) -> Result<StoreView, StoreError> {
    const LEN: usize = 15 + 3 + 6 + 1 + 11 + 11 + 1 + 3 + 11 + 11 + 2;
    if values.len() != LEN {
        return Err(StoreError::Unavailable(format!(
            "redis: observe answered {} values, expected {LEN}",
            values.len()
        )));
    }
    let w = |i: usize| Windows {
        m1: u32_of(values.get(i)),
        h1: u32_of(values.get(i + 1)),
        h24: u32_of(values.get(i + 2)),
    };
    let velocity = VelocityView {
        user_failures: w(0),
        ip_failures: w(3),
        network_failures: w(6),
        device_failures: w(9),
        ip_attempts: w(12),
        ip_distinct_users_1h: u32_of(values.get(15)),
        device_distinct_users_1h: u32_of(values.get(16)),
        device_distinct_users_24h: u32_of(values.get(17)),
        global_attempts: w(18),
        global_failures: w(21),
    };
    let mut i = 24;
    let mut profile = ProfileView {
        verified_logins: u32_of(values.get(i)),
        ..ProfileView::default()
    };
    i += 1;
    for s in 0..PROFILE_DIMS.len() {
        profile.seen[s] = u32_of(values.get(i + s));
        profile.distinct[s] = u32_of(values.get(i + 11 + s));
    }
    i += 22;
    profile.hour_count = u32_of(values.get(i));
    let last_at = text(values.get(i + 1)).and_then(|s| s.parse::<i64>().ok());
    let last_place = text(values.get(i + 2)).and_then(parse_place);
    profile.last_login = last_at.map(|at| LastLogin {
        at: crate::domain::UnixMillis(at),
        place: last_place,
    });
    profile.last_strong_auth = text(values.get(i + 3))
        .and_then(|s| s.parse::<i64>().ok())
        .map(crate::domain::UnixMillis);
    i += 4;
    for s in 0..PROFILE_DIMS.len() {
        profile.global_seen[s] = u32_of(values.get(i + s));
        profile.global_distinct[s] = u32_of(values.get(i + 11 + s));
    }
    i += 22;
    profile.global_logins = u32_of(values.get(i));
    profile.global_users = u32_of(values.get(i + 1));
    Ok(StoreView { profile, velocity })
}

#[async_trait]
impl Store for RedisStore {
    async fn observe(&self, obs: &Observation) -> Result<StoreView, StoreError> {
        let user = hex32(obs.user);
        let decision = format!("{:032x}", obs.decision);
        let scoped = |tag: &str, dim: Dim, suffix: &str| match obs.facts.get(dim) {
            Some(k) => self.key(&format!("{{{tag}:{}}}:{suffix}", hex32(k))),
            // Not touched by the script; a key of the user's tag keeps the
            // key list well-formed.
            None => self.key(&format!("{{u:{user}}}:none")),
        };
        let mut inv = self.observe.prepare_invoke();
        inv.key(self.key(&format!("{{u:{user}}}:v")))
            .key(self.key(&format!("{{u:{user}}}:prof")))
            .key(self.key(&format!("{{u:{user}}}:p:{decision}")))
            .key(self.key(&format!("d:{decision}")))
            .key(scoped("i", Dim::Ip, "v"))
            .key(scoped("i", Dim::Ip, "users"))
            .key(scoped("n", Dim::Network, "v"))
            .key(scoped("dv", Dim::Device, "v"))
            .key(scoped("dv", Dim::Device, "users"))
            .key(self.key("{g}:v"))
            .key(self.key("{g}:stats"));
        for (slot, k) in obs.facts.0.iter().enumerate() {
            match k {
                Some(k) => inv.key(self.key(&format!("{{g}}:s:{slot}:{}", hex16(*k)))),
                None => inv.key(self.key("{g}:none")),
            };
        }
        inv.arg(obs.at.0)
            .arg(u8::from(obs.failed))
            .arg(hex16(obs.user))
            .arg(obs.at.hour_of_week())
            .arg(&user)
            .arg(millis(self.settings.decision_ttl))
            .arg(COUNTER_TTL_MS)
            .arg(u8::from(obs.facts.get(Dim::Ip).is_some()))
            .arg(u8::from(obs.facts.get(Dim::Network).is_some()))
            .arg(u8::from(obs.facts.get(Dim::Device).is_some()))
            .arg(obs.place.as_ref().map(place_text).unwrap_or_default());
        for k in &obs.facts.0 {
            inv.arg(k.map(hex16).unwrap_or_default());
        }
        let mut conn = self.conn.clone();
        let values: Vec<Value> = inv.invoke_async(&mut conn).await.map_err(unavailable)?;
        parse_view(&values)
    }

    async fn report(&self, report: &OutcomeReport) -> Result<ReportEffect, StoreError> {
        let decision = format!("{:032x}", report.decision);
        let strong = report.outcome == Outcome::StepUpPassed
            && matches!(report.factor, Some(Factor::Webauthn | Factor::Totp));
        let mut inv = self.report.prepare_invoke();
        inv.key(self.key(&format!("d:{decision}")))
            .arg(&self.settings.key_prefix)
            .arg(&decision)
            .arg(u8::from(teaches(report.action, report.outcome)))
            .arg(u8::from(report.outcome.is_fraud()))
            .arg(u8::from(report.outcome == Outcome::StepUpFailed))
            .arg(u8::from(strong))
            .arg(report.at.0)
            .arg(self.settings.history_per_dim)
            .arg(millis(self.settings.profile_ttl))
            .arg(COUNTER_TTL_MS);
        let mut conn = self.conn.clone();
        let values: Vec<i64> = inv.invoke_async(&mut conn).await.map_err(unavailable)?;
        match values.first() {
            Some(-1) => Err(StoreError::UnknownDecision(decision)),
            Some(1) => Ok(ReportEffect {
                profile_updated: true,
            }),
            _ => Ok(ReportEffect::default()),
        }
    }

    fn name(&self) -> &'static str {
        "redis"
    }
}
