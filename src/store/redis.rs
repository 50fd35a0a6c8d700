//! The shared store: Redis, so that every replica sees the same velocity
//! counters, profiles and pending decisions.
//!
//! The Lua scripts implement exactly what [`super::memory::MemoryStore`]
//! does: the same bucketed rings as [`super::window::SlidingCounter`], the
//! same capped distinct sets as [`super::window::DistinctSet`], the same
//! history caps. They are written as one function per hash tag and composed
//! two ways (`redis::Script` reloads a script on `NOSCRIPT` either way):
//!
//! - **single node** (one URL): each [`Store`] call is one `EVALSHA` of a
//!   script that calls every function — one round trip;
//! - **Redis Cluster** (several URLs or `store.redis_cluster`): observe
//!   sends one script per hash tag (user, IP, network, device, global), all
//!   at once on the multiplexed cluster connection, so its latency is one
//!   round trip to the slowest node; report runs the user's script and,
//!   only when it teaches or unteaches, the global script with the facts the
//!   first returned (two round trips on that path). No script touches a key
//!   outside its own slot.
//!
//! Key layout (`P` is the deployment's key prefix; `<u>` etc. are hex
//! [`Key`]s, never raw identifiers; every key has a TTL):
//!
//! | key | type | content | TTL |
//! |---|---|---|---|
//! | `P:{u:<u>}:v` | hash | user failure ring | 25 h |
//! | `P:{u:<u>}:prof` | hash | `v` verified, `d<slot>:<k>` count, `t<slot>:<k>` last seen (s), `n<slot>` distinct, `h<hour>` hour histogram, `la`/`lp` last login time/place, `sa` last strong auth | profile TTL, refreshed on teach |
//! | `P:{u:<u>}:p:<decision>` | hash | pending decision: `at`, `hr`, `pl`, `f<slot>` facts, `taught` | decision TTL |
//! | `P:{u:<u>}:pi` | zset | the user's pending decisions: decision hex → expiry ms (written by observe, read by forget) | decision TTL |
//! | `P:{u:<u>}:d` | list | recent decisions, newest first, ≤ 20: `<at>\|<action>\|<score>\|<codes>\|<decision id>` | decision TTL |
//! | `P:{i:<ip>}:v`, `P:{n:<net>}:v`, `P:{dv:<dev>}:v` | hash | failure (`f`) / attempt (`a`) rings | 25 h |
//! | `P:{i:<ip>}:users`, `P:{dv:<dev>}:users` | zset | user → last seen ms, ≤ 256 members | 25 h |
//! | `P:{g}:v` | hash | global attempt and failure rings | 25 h |
//! | `P:{g}:stats` | hash | `n<slot>` global distinct values, `logins`, `users` | profile TTL |
//! | `P:{g}:s:<slot>:<k>` | string | global verified count of one value | profile TTL |
//!
//! The profile hash also holds `tr:<device>` / `rv:<device>` (trusted /
//! revoked by support, ms) for the admin API (redis_admin.lua). The recent
//! decisions are written by [`Store::record_decision`], which the engine
//! calls from a spawned task after the answer is sent: one more script per
//! Evaluate, never on its latency path. Forget erases every `{u:<u>}` key
//! (the pending decisions through the `pi` index, no SCAN); the global
//! aggregates and the IP/device distinct-user sets (hashed members, 25 h)
//! are left to expire.
//!
//! A report finds its pending decision from the decision id alone: the id
//! carries the user's key (see [`crate::engine::encode_decision_id`]), so no
//! cross-slot index is needed.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{FromRedisValue, Script, ScriptInvocation, Value};

use crate::domain::{Factor, Outcome, UnixMillis};

use super::window::{GEOMETRY, LONGEST_MS};
use super::{
    DecisionRecord, DeviceMark, Dim, Forgotten, GeoPoint, Key, LastLogin, Observation,
    OutcomeReport, PROFILE_DIMS, ProfileValue, ProfileView, RECENT_DECISIONS, ReportEffect, Store,
    StoreError, StoreView, UserProfile, VALUE_HASH_MASK, VelocityView, Windows, teaches,
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

/// Observe on one node. KEYS: 1 user velocity, 2 profile, 3 pending, 4 ip
/// velocity, 5 ip users, 6 network velocity, 7 device velocity, 8 device
/// users, 9 global velocity, 10 global stats, 11..21 global seen per slot,
/// 22 the user's pending index.
/// ARGV 19..21: has ip, has network, has device.
const OBSERVE_ALL: &str = script!(
    "redis_observe.lua",
    r#"local out = {obs_user(KEYS[1], KEYS[2], KEYS[3], KEYS[22]), {}, {}, {},
  obs_global(KEYS[9], KEYS[10], function(i) return KEYS[11 + i] end)}
if ARGV[19] == '1' then out[2] = obs_ip(KEYS[4], KEYS[5]) end
if ARGV[20] == '1' then out[3] = obs_network(KEYS[6]) end
if ARGV[21] == '1' then out[4] = obs_device(KEYS[7], KEYS[8]) end
return out"#
);
const OBSERVE_USER: &str = script!(
    "redis_observe.lua",
    "return obs_user(KEYS[1], KEYS[2], KEYS[3], KEYS[4])"
);
const OBSERVE_IP: &str = script!("redis_observe.lua", "return obs_ip(KEYS[1], KEYS[2])");
const OBSERVE_NETWORK: &str = script!("redis_observe.lua", "return obs_network(KEYS[1])");
const OBSERVE_DEVICE: &str = script!("redis_observe.lua", "return obs_device(KEYS[1], KEYS[2])");
/// KEYS: 1 global velocity, 2 global stats, 3..13 global seen per slot.
const OBSERVE_GLOBAL: &str = script!(
    "redis_observe.lua",
    "return obs_global(KEYS[1], KEYS[2], function(i) return KEYS[3 + i] end)"
);
/// Report on one node. KEYS: 1 user velocity, 2 profile, 3 pending, 4
/// global stats; ARGV[9] the key prefix (the global seen keys of the
/// pending facts, all in the `{g}` slot, are named from it).
const REPORT_ALL: &str = script!(
    "redis_report.lua",
    r#"local r = rep_user(KEYS[1], KEYS[2], KEYS[3])
if r[2] ~= 0 then
  rep_global(KEYS[4], function(i) return ARGV[9] .. ':{g}:s:' .. i .. ':' .. r[4 + i] end,
    r[2], r[3] == 1, function(i) return r[4 + i] end)
end
return {r[1]}"#
);
const REPORT_USER: &str = script!(
    "redis_report.lua",
    "return rep_user(KEYS[1], KEYS[2], KEYS[3])"
);
/// KEYS: 1 global stats, 2..12 global seen per slot; ARGV 10 mode, 11 new
/// user, 12..22 facts.
const REPORT_GLOBAL: &str = script!(
    "redis_report.lua",
    r#"rep_global(KEYS[1], function(i) return KEYS[2 + i] end, tonumber(ARGV[10]),
  ARGV[11] == '1', function(i) return ARGV[12 + i] end)
return {1}"#
);

/// Admin scripts, all on one user's slot. KEYS: 1 profile, 2 recent.
const ADMIN_PROFILE: &str = script!("redis_admin.lua", "return adm_profile(KEYS[1], KEYS[2])");
/// KEYS: 1 user velocity, 2 profile, 3 pending index, 4 recent.
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
/// KEYS: 1 recent; ARGV: entry, cap, ttl (ms).
const ADMIN_RECORD: &str = script!(
    "redis_admin.lua",
    "return adm_record(KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3])"
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
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

struct Scripts {
    observe_all: Script,
    observe_user: Script,
    observe_ip: Script,
    observe_network: Script,
    observe_device: Script,
    observe_global: Script,
    report_all: Script,
    report_user: Script,
    report_global: Script,
    admin_profile: Script,
    admin_forget: Script,
    admin_trust: Script,
    admin_revoke: Script,
    admin_record: Script,
}

/// The Redis store (single node or cluster).
pub struct RedisStore {
    conn: Conn,
    settings: RedisSettings,
    scripts: Scripts,
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
        Conn::Single(c) => on(c.clone(), inv).await,
        Conn::Cluster(c) => on(c.clone(), inv).await,
    }
    .map_err(unavailable)
}

/// The script's answer when `present`, an empty part otherwise.
async fn invoke_if(
    conn: &Conn,
    present: bool,
    inv: &ScriptInvocation<'_>,
) -> Result<Vec<Value>, StoreError> {
    if present {
        invoke(conn, inv).await
    } else {
        Ok(Vec::new())
    }
}

impl RedisStore {
    /// A store for `settings`. Connects lazily: a server that is down at
    /// start degrades decisions until it is up, it does not stop startup.
    /// In cluster mode it must be called within a Tokio runtime.
    pub fn new(settings: RedisSettings) -> Result<Self, StoreError> {
        let bad_url = |e: redis::RedisError| {
            // The URL may hold a password: only the kind is reported.
            StoreError::Unavailable(format!("bad redis url: {:?}", e.kind()))
        };
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
            Conn::Single(
                ConnectionManager::new_lazy_with_config(client, config).map_err(unavailable)?,
            )
        };
        Ok(RedisStore {
            conn,
            settings,
            scripts: Scripts {
                observe_all: Script::new(OBSERVE_ALL),
                observe_user: Script::new(OBSERVE_USER),
                observe_ip: Script::new(OBSERVE_IP),
                observe_network: Script::new(OBSERVE_NETWORK),
                observe_device: Script::new(OBSERVE_DEVICE),
                observe_global: Script::new(OBSERVE_GLOBAL),
                report_all: Script::new(REPORT_ALL),
                report_user: Script::new(REPORT_USER),
                report_global: Script::new(REPORT_GLOBAL),
                admin_profile: Script::new(ADMIN_PROFILE),
                admin_forget: Script::new(ADMIN_FORGET),
                admin_trust: Script::new(ADMIN_TRUST),
                admin_revoke: Script::new(ADMIN_REVOKE),
                admin_record: Script::new(ADMIN_RECORD),
            },
        })
    }

    /// The key prefix of this deployment.
    pub fn key_prefix(&self) -> &str {
        &self.settings.key_prefix
    }

    fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.settings.key_prefix)
    }

    fn user_keys(&self, user: Key, decision: u128) -> [String; 3] {
        let u = hex32(user);
        [
            self.key(&format!("{{u:{u}}}:v")),
            self.key(&format!("{{u:{u}}}:prof")),
            self.key(&format!("{{u:{u}}}:p:{decision:032x}")),
        ]
    }

    /// A key of the user's slot: `P:{u:<u>}:<suffix>`.
    fn user_key(&self, user: Key, suffix: &str) -> String {
        self.key(&format!("{{u:{}}}:{suffix}", hex32(user)))
    }

    /// The global seen-count key of each fact (a placeholder in the same
    /// slot where there is none).
    fn seen_keys(&self, facts: &[Option<String>; PROFILE_DIMS.len()]) -> Vec<String> {
        facts
            .iter()
            .enumerate()
            .map(|(slot, f)| match f {
                Some(k) => self.key(&format!("{{g}}:s:{slot}:{k}")),
                None => self.key("{g}:none"),
            })
            .collect()
    }

    fn scoped(&self, obs: &Observation, tag: &str, dim: Dim, suffix: &str) -> Option<String> {
        obs.facts
            .get(dim)
            .map(|k| self.key(&format!("{{{tag}:{}}}:{suffix}", hex32(k))))
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

fn windows(v: &[Value], i: usize) -> Windows {
    Windows {
        m1: u32_of(v.get(i)),
        h1: u32_of(v.get(i + 1)),
        h24: u32_of(v.get(i + 2)),
    }
}

fn parts(v: Value) -> Result<Vec<Value>, StoreError> {
    match v {
        Value::Array(a) => Ok(a),
        other => Err(StoreError::Unavailable(format!(
            "redis: observe answered {other:?}, expected an array"
        ))),
    }
}

const USER_LEN: usize = 3 + 1 + 22 + 1 + 3 + 1;
const GLOBAL_LEN: usize = 6 + 22 + 2;

/// Reads the observe functions' answers (see redis_observe.lua); an empty
/// part is a dimension the attempt does not have.
fn parse_view(
    user: &[Value],
    ip: &[Value],
    network: &[Value],
    device: &[Value],
    global: &[Value],
) -> Result<StoreView, StoreError> {
    let bad = |part: &str, len: usize, want: usize| {
        StoreError::Unavailable(format!(
            "redis: observe answered {len} values for the {part} part, expected {want}"
        ))
    };
    let check = |part: &str, v: &[Value], want: usize, optional: bool| {
        if v.len() == want || (optional && v.is_empty()) {
            Ok(())
        } else {
            Err(bad(part, v.len(), want))
        }
    };
    check("user", user, USER_LEN, false)?;
    check("ip", ip, 7, true)?;
    check("network", network, 3, true)?;
    check("device", device, 5, true)?;
    check("global", global, GLOBAL_LEN, false)?;
    let velocity = VelocityView {
        user_failures: windows(user, 0),
        ip_failures: windows(ip, 0),
        ip_attempts: windows(ip, 3),
        ip_distinct_users_1h: u32_of(ip.get(6)),
        network_failures: windows(network, 0),
        device_failures: windows(device, 0),
        device_distinct_users_1h: u32_of(device.get(3)),
        device_distinct_users_24h: u32_of(device.get(4)),
        global_attempts: windows(global, 0),
        global_failures: windows(global, 3),
    };
    let mut profile = ProfileView {
        verified_logins: u32_of(user.get(3)),
        ..ProfileView::default()
    };
    for s in 0..PROFILE_DIMS.len() {
        profile.seen[s] = u32_of(user.get(4 + s));
        profile.distinct[s] = u32_of(user.get(15 + s));
        profile.global_seen[s] = u32_of(global.get(6 + s));
        profile.global_distinct[s] = u32_of(global.get(17 + s));
    }
    profile.hour_count = u32_of(user.get(26));
    let last_at = text(user.get(27)).and_then(|s| s.parse::<i64>().ok());
    let last_place = text(user.get(28)).and_then(parse_place);
    profile.last_login = last_at.map(|at| LastLogin {
        at: crate::domain::UnixMillis(at),
        place: last_place,
    });
    profile.last_strong_auth = text(user.get(29))
        .and_then(|s| s.parse::<i64>().ok())
        .map(crate::domain::UnixMillis);
    profile.device_revoked = int(user.get(30)) == 1;
    profile.global_logins = u32_of(global.get(28));
    profile.global_users = u32_of(global.get(29));
    Ok(StoreView { profile, velocity })
}

#[async_trait]
impl Store for RedisStore {
    async fn observe(&self, obs: &Observation) -> Result<StoreView, StoreError> {
        let facts: [Option<String>; PROFILE_DIMS.len()] = obs.facts.0.map(|k| k.map(hex16));
        let user_keys = self.user_keys(obs.user, obs.decision);
        let seen = self.seen_keys(&facts);
        let (gv, gstats) = (self.key("{g}:v"), self.key("{g}:stats"));
        let ip = self
            .scoped(obs, "i", Dim::Ip, "v")
            .zip(self.scoped(obs, "i", Dim::Ip, "users"));
        let network = self.scoped(obs, "n", Dim::Network, "v");
        let device = self.scoped(obs, "dv", Dim::Device, "v").zip(self.scoped(
            obs,
            "dv",
            Dim::Device,
            "users",
        ));
        let args = |inv: &mut ScriptInvocation<'_>| {
            inv.arg(obs.at.0)
                .arg(u8::from(obs.failed))
                .arg(hex16(obs.user))
                .arg(obs.at.hour_of_week())
                .arg(millis(self.settings.decision_ttl))
                .arg(COUNTER_TTL_MS)
                .arg(obs.place.as_ref().map(place_text).unwrap_or_default());
            for f in &facts {
                inv.arg(f.as_deref().unwrap_or_default());
            }
        };

        if let Conn::Single(_) = self.conn {
            // Absent dimensions: keys of the user's slot the script skips.
            let none = || self.key(&format!("{{u:{}}}:none", hex32(obs.user)));
            let mut inv = self.scripts.observe_all.prepare_invoke();
            inv.key(&user_keys[..]);
            match &ip {
                Some((v, u)) => inv.key(v).key(u),
                None => inv.key(none()).key(none()),
            };
            inv.key(network.clone().unwrap_or_else(none));
            match &device {
                Some((v, u)) => inv.key(v).key(u),
                None => inv.key(none()).key(none()),
            };
            inv.key(&gv).key(&gstats).key(&seen[..]);
            inv.key(self.user_key(obs.user, "pi"));
            args(&mut inv);
            inv.arg(u8::from(ip.is_some()))
                .arg(u8::from(network.is_some()))
                .arg(u8::from(device.is_some()));
            let answer: Vec<Value> = invoke(&self.conn, &inv).await?;
            let mut it = answer.into_iter().map(parts);
            let mut next = || {
                it.next().unwrap_or_else(|| {
                    Err(StoreError::Unavailable(
                        "redis: observe answered too few parts".into(),
                    ))
                })
            };
            let (u, i, n, d, g) = (next()?, next()?, next()?, next()?, next()?);
            return parse_view(&u, &i, &n, &d, &g);
        }

        // Cluster: one script per slot, all in flight at once.
        let mut user = self.scripts.observe_user.prepare_invoke();
        user.key(&user_keys[..]).key(self.user_key(obs.user, "pi"));
        args(&mut user);
        let mut global = self.scripts.observe_global.prepare_invoke();
        global.key(&gv).key(&gstats).key(&seen[..]);
        args(&mut global);
        let mut ip_inv = self.scripts.observe_ip.prepare_invoke();
        if let Some((v, u)) = &ip {
            ip_inv.key(v).key(u);
            args(&mut ip_inv);
        }
        let mut net_inv = self.scripts.observe_network.prepare_invoke();
        if let Some(v) = &network {
            net_inv.key(v);
            args(&mut net_inv);
        }
        let mut dev_inv = self.scripts.observe_device.prepare_invoke();
        if let Some((v, u)) = &device {
            dev_inv.key(v).key(u);
            args(&mut dev_inv);
        }
        let c = &self.conn;
        let (u, i, n, d, g) = tokio::join!(
            invoke::<Vec<Value>>(c, &user),
            invoke_if(c, ip.is_some(), &ip_inv),
            invoke_if(c, network.is_some(), &net_inv),
            invoke_if(c, device.is_some(), &dev_inv),
            invoke::<Vec<Value>>(c, &global),
        );
        parse_view(&u?, &i?, &n?, &d?, &g?)
    }

    async fn report(&self, report: &OutcomeReport) -> Result<ReportEffect, StoreError> {
        let strong = report.outcome == Outcome::StepUpPassed
            && matches!(report.factor, Some(Factor::Webauthn | Factor::Totp));
        let user_keys = self.user_keys(report.user, report.decision);
        let args = |inv: &mut ScriptInvocation<'_>| {
            inv.arg(u8::from(teaches(report.action, report.outcome)))
                .arg(u8::from(report.outcome.is_fraud()))
                .arg(u8::from(report.outcome == Outcome::StepUpFailed))
                .arg(u8::from(strong))
                .arg(report.at.0)
                .arg(self.settings.history_per_dim)
                .arg(millis(self.settings.profile_ttl))
                .arg(COUNTER_TTL_MS);
        };
        let effect = |code: Option<i64>| match code {
            Some(-1) => Err(StoreError::UnknownDecision(format!(
                "{:032x}",
                report.decision
            ))),
            Some(1) => Ok(ReportEffect {
                profile_updated: true,
            }),
            _ => Ok(ReportEffect::default()),
        };

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
            let facts: [Option<String>; PROFILE_DIMS.len()] =
                std::array::from_fn(|i| text(values.get(3 + i)).map(str::to_string));
            let mut global = self.scripts.report_global.prepare_invoke();
            global
                .key(self.key("{g}:stats"))
                .key(&self.seen_keys(&facts)[..]);
            args(&mut global);
            global.arg("").arg(mode).arg(int(values.get(2)));
            for f in &facts {
                global.arg(f.as_deref().unwrap_or_default());
            }
            let _: Vec<i64> = invoke(&self.conn, &global).await?;
        }
        effect(Some(int(values.first())))
    }

    fn name(&self) -> &'static str {
        "redis"
    }

    async fn profile(&self, user: Key) -> Result<UserProfile, StoreError> {
        let mut inv = self.scripts.admin_profile.prepare_invoke();
        inv.key(self.user_key(user, "prof"))
            .key(self.user_key(user, "d"));
        let (hash, recent): (Vec<(String, String)>, Vec<String>) = invoke(&self.conn, &inv).await?;
        Ok(parse_profile(&hash, &recent))
    }

    async fn forget(&self, user: Key) -> Result<Forgotten, StoreError> {
        let mut inv = self.scripts.admin_forget.prepare_invoke();
        inv.key(self.user_key(user, "v"))
            .key(self.user_key(user, "prof"))
            .key(self.user_key(user, "pi"))
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

    async fn record_decision(&self, user: Key, record: &DecisionRecord) -> Result<(), StoreError> {
        let entry = format!(
            "{}|{}|{}|{}|{}",
            record.at.0,
            record.action.as_str(),
            record.score,
            record.reasons.join(","),
            record.decision_id
        );
        let mut inv = self.scripts.admin_record.prepare_invoke();
        inv.key(self.user_key(user, "d"))
            .arg(entry)
            .arg(RECENT_DECISIONS)
            .arg(millis(self.settings.decision_ttl));
        let _: i64 = invoke(&self.conn, &inv).await?;
        Ok(())
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
            let score = it.next()?.parse().ok()?;
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
