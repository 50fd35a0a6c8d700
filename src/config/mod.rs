//! Configuration: the only place that reads environment variables and the
//! config file.
//!
//! Two phases: [`raw::RawConfig`] mirrors the TOML file (unknown keys
//! rejected); [`Config::resolve`] layers the file, then `RISKGATE_*`
//! variables, then command-line flags, and validates everything at once into
//! typed values. The result is in sections — [`ServerSettings`],
//! [`AdminSettings`], TLS, [`StoreSettings`], the core's
//! [`FeatureSettings`], [`Sources`] (rules and model), [`LogSettings`],
//! GeoIP, [`DeviceSettings`] — each resolved by its own function, with each
//! default written once in the type that owns it. The server and the
//! offline tools read the same sections.

pub mod raw;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::api::admission::Limits;
use crate::core::features::FeatureSettings;
use crate::engine::EngineSettings;
use crate::journal::{JournalSettings, Target};
use crate::signals::geo::GeoPaths;
use crate::store::memory::MemoryLimits;
use crate::store::redis::RedisSettings;
use crate::telemetry::LogFormat;
use crate::tls::TlsPaths;

use raw::RawConfig;

/// A secret: never printed by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Values given on the command line (highest precedence).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub listen: Option<String>,
    pub metrics_listen: Option<String>,
    pub rules: Option<PathBuf>,
    pub model: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    pub drain_delay_ms: Option<u64>,
    pub admin_listen: Option<String>,
    /// The decision journal: a file path, a `postgres://` URL, or `off`.
    pub journal: Option<String>,
}

/// The validated configuration, by section.
#[derive(Clone, Debug)]
pub struct Config {
    pub server: ServerSettings,
    pub admin: AdminSettings,
    /// `Some`: the listeners serve TLS (mutual TLS with a client CA); the
    /// files are watched and reloaded.
    pub tls: Option<TlsPaths>,
    pub store: StoreSettings,
    pub features: FeatureSettings,
    pub sources: Sources,
    pub log: LogSettings,
    /// MaxMind databases; each optional.
    pub geoip: GeoPaths,
    pub device: DeviceSettings,
    pub journal: JournalSettings,
}

/// The decision port and the process around it.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// `None`: no metrics listener.
    pub metrics_listen: Option<SocketAddr>,
    /// Time between health going NOT_SERVING and the listener closing.
    pub drain_delay: Duration,
    /// Deadline for in-flight calls once the listener closed.
    pub shutdown_timeout: Duration,
    pub max_request_bytes: usize,
    /// Evaluate concurrency and queue bounds.
    pub evaluation_limits: Limits,
}

impl ServerSettings {
    /// The default gRPC address.
    pub const LISTEN: &str = "127.0.0.1:50051";
    /// The default metrics address.
    pub const METRICS_LISTEN: &str = "127.0.0.1:9464";
    /// The default shutdown deadline.
    pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
    /// The default request size limit.
    pub const MAX_REQUEST_BYTES: usize = 16 * 1024;
}

/// The admin API's listener and credentials.
#[derive(Clone, Debug)]
pub struct AdminSettings {
    /// `None`: off (the default).
    pub listen: Option<SocketAddr>,
    /// The bearer token; required with `listen`.
    pub token: Option<Secret>,
    /// Who audit events name as the token's holder.
    pub token_name: String,
    /// The console's read-only token (`RISKGATE_CONSOLE_VIEWER_TOKEN`,
    /// `server.console_viewer_token`).
    pub viewer_token: Option<Secret>,
    /// A non-loopback listener may serve without TLS (`server.admin_insecure`).
    pub insecure: bool,
}

impl AdminSettings {
    /// The default name of the token's holder.
    pub const TOKEN_NAME: &str = "admin";
}

/// Where state lives and how identifiers are keyed.
#[derive(Clone, Debug)]
pub struct StoreSettings {
    /// `None`: a random key per process (the memory store only).
    pub hmac_key: Option<Secret>,
    /// Deadline of one store call on the decision path.
    pub timeout: Duration,
    /// The memory store's capacities (also replay's).
    pub memory: MemoryLimits,
    /// `Some`: state in Redis, shared by replicas.
    pub redis: Option<RedisConfig>,
}

/// The Redis store's settings as configured.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// Never printed: may hold a password.
    pub urls: Vec<Secret>,
    /// Redis Cluster mode (more than one URL, or `store.redis_cluster`).
    pub cluster: bool,
    pub key_prefix: String,
    /// Lifetime of an untaught profile.
    pub profile_ttl: Duration,
    /// How often deployment-wide counts are merged.
    pub global_flush: Duration,
}

impl StoreSettings {
    /// The Redis store's settings, when Redis is configured; `history` is
    /// the memory limits' per-dimension history (one setting for both).
    pub fn redis_settings(&self) -> Option<RedisSettings> {
        let r = self.redis.as_ref()?;
        let urls = r.urls.iter().map(|u| u.expose().to_string());
        let base = if r.cluster {
            RedisSettings::cluster(urls)
        } else {
            RedisSettings {
                urls: urls.collect(),
                ..RedisSettings::new(String::new())
            }
        };
        Some(RedisSettings {
            key_prefix: r.key_prefix.clone(),
            profile_ttl: r.profile_ttl,
            history_per_dim: self.memory.history_per_dim,
            global_flush: r.global_flush,
            // The client gives up shortly after the engine's deadline.
            response_timeout: self.timeout + Duration::from_millis(50),
            ..base
        })
    }
}

/// The rule file and the model file (`None`: the shipped ones).
#[derive(Clone, Debug)]
pub struct Sources {
    pub rules: Option<PathBuf>,
    pub model: Option<PathBuf>,
    /// How often both (and TLS files) are polled for changes.
    pub reload_interval: Duration,
}

impl Sources {
    /// The default poll interval.
    pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);
}

/// Logging and tracing export.
#[derive(Clone, Debug)]
pub struct LogSettings {
    pub format: LogFormat,
    /// OTLP/gRPC collector for the per-RPC spans (`otlp` builds only).
    pub otlp_endpoint: Option<String>,
}

/// How user agents are parsed.
#[derive(Clone, Debug, Default)]
pub struct DeviceSettings {
    /// uap-core rules (`None`: the embedded woothee rules).
    pub ua_regexes: Option<PathBuf>,
}

/// Every problem found in the configuration.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  {}", .0.join("\n  "))]
pub struct ConfigError(pub Vec<String>);

/// The layers under resolution: flags, environment, file; and the problems
/// found so far.
struct Layers<'a, E> {
    o: &'a Overrides,
    env: E,
    problems: Vec<String>,
}

impl<E: Fn(&str) -> Option<String>> Layers<'_, E> {
    fn env(&self, var: &str) -> Option<String> {
        (self.env)(var)
    }

    fn problem(&mut self, p: impl Into<String>) {
        self.problems.push(p.into());
    }

    /// Flag, else variable, else file.
    fn text(&self, flag: &Option<String>, var: &str, file: Option<String>) -> Option<String> {
        flag.clone().or_else(|| self.env(var)).or(file)
    }

    /// A whole number from the variable, else the file.
    fn number(&mut self, var: &str, file: Option<u64>) -> Option<u64> {
        match self.env(var) {
            Some(v) => match v.parse() {
                Ok(n) => Some(n),
                Err(_) => {
                    self.problem(format!("{var}: `{v}` is not a whole number"));
                    None
                }
            },
            None => file,
        }
    }

    /// A path from the variable, else the file.
    fn path(&self, var: &str, file: Option<PathBuf>) -> Option<PathBuf> {
        self.env(var).map(PathBuf::from).or(file)
    }

    /// A listen address; empty or `off` is none.
    fn address(&mut self, what: &str, text: &str, example: &str) -> Option<SocketAddr> {
        if text.is_empty() || text == "off" {
            return None;
        }
        match text.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                self.problem(format!(
                    "{what}: `{text}` is not an address like {example} (or `off`)"
                ));
                None
            }
        }
    }
}

impl Config {
    /// Resolves the configuration from the process environment.
    pub fn from_env(o: &Overrides) -> Result<Config, ConfigError> {
        Self::resolve(o, |k| std::env::var(k).ok())
    }

    /// Reads a config file alone (no environment, no flags), as the offline
    /// tools take `--config`.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        Self::resolve(
            &Overrides {
                config_file: Some(path.to_path_buf()),
                ..Overrides::default()
            },
            |_| None,
        )
    }

    /// Layers defaults, the config file, `env` and the overrides, and
    /// validates the result.
    pub fn resolve(
        o: &Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let file_path = o
            .config_file
            .clone()
            .or_else(|| env("RISKGATE_CONFIG").map(PathBuf::from));
        let raw = match &file_path {
            Some(p) => read_file(p).map_err(|e| ConfigError(vec![e]))?,
            None => RawConfig::default(),
        };
        let mut l = Layers {
            o,
            env,
            problems: Vec::new(),
        };
        let server = resolve_server(&mut l, raw.server.clone());
        let tls = resolve_tls(&mut l, &raw.server);
        let admin = resolve_admin(&mut l, &raw.server);
        if let Some(a) = admin.listen
            && !a.ip().is_loopback()
            && tls.is_none()
            && !admin.insecure
        {
            l.problem(format!(
                "server.admin_listen `{a}` is not a loopback address and TLS is off: the admin token would cross the network in clear (set server.tls_cert and server.tls_key, or server.admin_insecure = true to accept that)"
            ));
        }
        let store = resolve_store(&mut l, raw.store);
        let sources = resolve_sources(&mut l, raw.rules, raw.model);
        let log = resolve_log(&mut l, raw.log);
        let features = resolve_features(&mut l, raw.features);
        let geoip = GeoPaths {
            city: l.path("RISKGATE_GEOIP_CITY_DB", raw.geoip.city_db),
            asn: l.path("RISKGATE_GEOIP_ASN_DB", raw.geoip.asn_db),
            anonymous: l.path("RISKGATE_GEOIP_ANONYMOUS_DB", raw.geoip.anonymous_db),
        };
        let device = DeviceSettings {
            ua_regexes: l.path("RISKGATE_UA_REGEXES", raw.device.ua_regexes),
        };
        let journal = resolve_journal(&mut l, raw.journal);
        if !l.problems.is_empty() {
            return Err(ConfigError(l.problems));
        }
        Ok(Config {
            server,
            admin,
            tls,
            store,
            features,
            sources,
            log,
            geoip,
            device,
            journal,
        })
    }
}

/// The decision journal: `--journal` / `RISKGATE_JOURNAL` / `journal.url`
/// (default: the SQLite file [`Target::DEFAULT_FILE`] in the working
/// directory), retention and queue bound.
fn resolve_journal<E: Fn(&str) -> Option<String>>(
    l: &mut Layers<'_, E>,
    raw: raw::RawJournal,
) -> JournalSettings {
    let text =
        l.o.journal
            .clone()
            .or_else(|| l.env("RISKGATE_JOURNAL"))
            .or(raw.url.map(|s| s.expose().to_string()))
            .unwrap_or_else(|| Target::DEFAULT_FILE.to_string());
    let target = match Target::parse(&text) {
        Ok(t) => t,
        Err(e) => {
            l.problem(format!("journal.url: {e}"));
            Target::Off
        }
    };
    let days = raw
        .retention_days
        .unwrap_or(JournalSettings::RETENTION_DAYS);
    if !(1..=3650).contains(&days) {
        l.problem("journal.retention_days must be between 1 and 3650");
    }
    let queue = raw.queue.unwrap_or(JournalSettings::QUEUE);
    if !(1..=10_000_000).contains(&queue) {
        l.problem("journal.queue must be between 1 and 10000000");
    }
    JournalSettings {
        target,
        retention: Duration::from_secs(days.saturating_mul(86_400)),
        queue,
    }
}

fn resolve_server<E: Fn(&str) -> Option<String>>(
    l: &mut Layers<'_, E>,
    raw: raw::RawServer,
) -> ServerSettings {
    let listen_text = l
        .text(&l.o.listen, "RISKGATE_LISTEN", raw.listen)
        .unwrap_or_else(|| ServerSettings::LISTEN.to_string());
    let listen = match listen_text.parse() {
        Ok(a) => a,
        Err(_) => {
            l.problem(format!(
                "listen: `{listen_text}` is not an address like 127.0.0.1:50051"
            ));
            SocketAddr::from(([127, 0, 0, 1], 50051))
        }
    };
    let metrics_text = l
        .text(
            &l.o.metrics_listen,
            "RISKGATE_METRICS_LISTEN",
            raw.metrics_listen,
        )
        .unwrap_or_else(|| ServerSettings::METRICS_LISTEN.to_string());
    let metrics_listen = l.address("metrics_listen", &metrics_text, "127.0.0.1:9464");
    let drain_ms = match l.o.drain_delay_ms {
        Some(ms) => Some(ms),
        None => l.number("RISKGATE_DRAIN_DELAY_MS", raw.drain_delay_ms),
    }
    .unwrap_or(0);
    let shutdown_timeout = l
        .number("RISKGATE_SHUTDOWN_TIMEOUT_MS", raw.shutdown_timeout_ms)
        .map_or(ServerSettings::SHUTDOWN_TIMEOUT, Duration::from_millis);
    let max_request_bytes = raw
        .max_request_bytes
        .unwrap_or(ServerSettings::MAX_REQUEST_BYTES);
    if !(1024..=4 * 1024 * 1024).contains(&max_request_bytes) {
        l.problem("server.max_request_bytes must be between 1024 and 4194304");
    }
    let defaults = Limits::for_this_machine();
    let max_concurrent = l
        .number(
            "RISKGATE_MAX_CONCURRENT_EVALUATIONS",
            raw.max_concurrent_evaluations,
        )
        .map_or(defaults.max_concurrent, |n| {
            usize::try_from(n).unwrap_or(usize::MAX)
        });
    if !(1..=1_000_000).contains(&max_concurrent) {
        l.problem("server.max_concurrent_evaluations must be between 1 and 1000000");
    }
    let max_queued = l
        .number(
            "RISKGATE_MAX_QUEUED_EVALUATIONS",
            raw.max_queued_evaluations,
        )
        .map_or(
            Limits::QUEUED_PER_SLOT.saturating_mul(max_concurrent),
            |n| usize::try_from(n).unwrap_or(usize::MAX),
        );
    if max_queued > 10_000_000 {
        l.problem("server.max_queued_evaluations must be at most 10000000");
    }
    ServerSettings {
        listen,
        metrics_listen,
        drain_delay: Duration::from_millis(drain_ms),
        shutdown_timeout,
        max_request_bytes,
        evaluation_limits: Limits {
            max_concurrent,
            max_queued,
        },
    }
}

fn resolve_tls<E: Fn(&str) -> Option<String>>(
    l: &mut Layers<'_, E>,
    raw: &raw::RawServer,
) -> Option<TlsPaths> {
    match (
        l.path("RISKGATE_TLS_CERT", raw.tls_cert.clone()),
        l.path("RISKGATE_TLS_KEY", raw.tls_key.clone()),
        l.path("RISKGATE_TLS_CLIENT_CA", raw.client_ca.clone()),
    ) {
        (Some(cert), Some(key), client_ca) => Some(TlsPaths {
            cert,
            key,
            client_ca,
        }),
        (None, None, None) => None,
        (None, None, Some(_)) => {
            l.problem(
                "server.client_ca (RISKGATE_TLS_CLIENT_CA) needs server.tls_cert (RISKGATE_TLS_CERT) and server.tls_key (RISKGATE_TLS_KEY)",
            );
            None
        }
        _ => {
            l.problem(
                "server.tls_cert (RISKGATE_TLS_CERT) and server.tls_key (RISKGATE_TLS_KEY) must be given together",
            );
            None
        }
    }
}

/// The admin API: listener (flag, `RISKGATE_ADMIN_LISTEN`,
/// `server.admin_listen`; off by default), token (`RISKGATE_ADMIN_TOKEN`,
/// `server.admin_token`; at least 32 bytes, required with the listener) and
/// the token holder's name for audit events.
fn resolve_admin<E: Fn(&str) -> Option<String>>(
    l: &mut Layers<'_, E>,
    raw: &raw::RawServer,
) -> AdminSettings {
    let text = l
        .text(
            &l.o.admin_listen,
            "RISKGATE_ADMIN_LISTEN",
            raw.admin_listen.clone(),
        )
        .unwrap_or_default();
    let listen = l.address("admin_listen", &text, "127.0.0.1:50052");
    let token = l
        .env("RISKGATE_ADMIN_TOKEN")
        .map(Secret::new)
        .or(raw.admin_token.clone());
    if let Some(t) = &token
        && t.expose().len() < 32
    {
        l.problem("server.admin_token must be at least 32 bytes");
    }
    if listen.is_some() && token.is_none() {
        l.problem(
            "server.admin_listen needs server.admin_token (RISKGATE_ADMIN_TOKEN): the admin API is never served without authentication",
        );
    }
    let viewer_token = l
        .env("RISKGATE_CONSOLE_VIEWER_TOKEN")
        .map(Secret::new)
        .or(raw.console_viewer_token.clone());
    if let Some(v) = &viewer_token {
        if v.expose().len() < 32 {
            l.problem("server.console_viewer_token must be at least 32 bytes");
        }
        if token.as_ref().is_some_and(|t| t.expose() == v.expose()) {
            l.problem("server.console_viewer_token must differ from the admin token");
        }
    }
    let token_name = raw
        .admin_token_name
        .clone()
        .unwrap_or_else(|| AdminSettings::TOKEN_NAME.into());
    if token_name.is_empty()
        || token_name.len() > 64
        || !token_name.bytes().all(|b| b.is_ascii_graphic())
    {
        l.problem("server.admin_token_name must be 1 to 64 printable ASCII characters");
    }
    let insecure = match l.env("RISKGATE_ADMIN_INSECURE").as_deref() {
        Some("true" | "1") => true,
        Some("false" | "0") => false,
        Some(other) => {
            l.problem(format!(
                "RISKGATE_ADMIN_INSECURE must be `true` or `false`, not `{other}`"
            ));
            false
        }
        None => raw.admin_insecure.unwrap_or(false),
    };
    AdminSettings {
        listen,
        token,
        token_name,
        viewer_token,
        insecure,
    }
}

fn resolve_store<E: Fn(&str) -> Option<String>>(
    l: &mut Layers<'_, E>,
    raw: raw::RawStore,
) -> StoreSettings {
    let defaults = MemoryLimits::default();
    let timeout_ms = l
        .number("RISKGATE_STORE_TIMEOUT_MS", raw.timeout_ms)
        .unwrap_or(EngineSettings::STORE_TIMEOUT.as_millis() as u64);
    if timeout_ms == 0 || timeout_ms > 10_000 {
        l.problem("store.timeout_ms must be between 1 and 10000");
    }
    let max_profiles = raw.max_profiles.unwrap_or(defaults.max_profiles);
    if max_profiles == 0 {
        l.problem("store.max_profiles must be at least 1");
    }
    let history_per_dim = raw.history_per_dim.unwrap_or(defaults.history_per_dim);
    if !(1..=256).contains(&history_per_dim) {
        l.problem("store.history_per_dim must be between 1 and 256");
    }
    let hmac_key = l
        .env("RISKGATE_HMAC_KEY")
        .map(Secret::new)
        .or(raw.hmac_key.clone());
    if let Some(k) = &hmac_key
        && k.expose().len() < 16
    {
        l.problem("store.hmac_key must be at least 16 bytes");
    }
    let redis = resolve_redis(l, &raw, hmac_key.is_some(), &defaults);
    StoreSettings {
        hmac_key,
        timeout: Duration::from_millis(timeout_ms),
        memory: MemoryLimits {
            max_profiles,
            history_per_dim,
            ..defaults
        },
        redis,
    }
}

fn resolve_redis<E: Fn(&str) -> Option<String>>(
    l: &mut Layers<'_, E>,
    raw: &raw::RawStore,
    has_hmac_key: bool,
    defaults: &MemoryLimits,
) -> Option<RedisConfig> {
    let urls: Vec<Secret> = l
        .env("RISKGATE_REDIS_URL")
        .or(raw.redis_url.clone())
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(Secret::new)
                .collect()
        })
        .unwrap_or_default();
    let cluster = match l.env("RISKGATE_REDIS_CLUSTER").as_deref() {
        Some("true" | "1") => true,
        Some("false" | "0") => false,
        Some(other) => {
            l.problem(format!(
                "RISKGATE_REDIS_CLUSTER must be `true` or `false`, not `{other}`"
            ));
            false
        }
        None => raw.redis_cluster.unwrap_or(false),
    } || urls.len() > 1;
    for u in &urls {
        if redis::Client::open(u.expose()).is_err() {
            // The URL may hold a password: not echoed.
            l.problem("store.redis_url: not a valid redis:// URL");
        }
    }
    if !urls.is_empty() && !has_hmac_key {
        l.problem(
            "store.hmac_key (RISKGATE_HMAC_KEY) is required with store.redis_url: replicas must hash identifiers alike",
        );
    }
    if cluster && urls.is_empty() {
        l.problem("store.redis_cluster needs store.redis_url (the seed nodes)");
    }
    let key_prefix = raw
        .key_prefix
        .clone()
        .unwrap_or_else(|| RedisSettings::KEY_PREFIX.into());
    if key_prefix.is_empty() || key_prefix.len() > 64 || key_prefix.contains(['{', '}', ' ']) {
        l.problem("store.key_prefix must be 1 to 64 characters without braces or spaces");
    }
    let global_flush_ms = raw
        .global_flush_ms
        .unwrap_or(RedisSettings::GLOBAL_FLUSH.as_millis() as u64);
    if !(10..=10_000).contains(&global_flush_ms) {
        l.problem("store.global_flush_ms must be between 10 and 10000");
    }
    let profile_ttl_days = raw
        .profile_ttl_days
        .unwrap_or(defaults.profile_ttl.as_secs() / 86_400);
    if !(1..=3650).contains(&profile_ttl_days) {
        l.problem("store.profile_ttl_days must be between 1 and 3650");
    }
    (!urls.is_empty()).then(|| RedisConfig {
        urls,
        cluster,
        key_prefix,
        profile_ttl: Duration::from_secs(profile_ttl_days * 86_400),
        global_flush: Duration::from_millis(global_flush_ms),
    })
}

fn resolve_sources<E: Fn(&str) -> Option<String>>(
    l: &mut Layers<'_, E>,
    rules: raw::RawPath,
    model: raw::RawPath,
) -> Sources {
    let reload_ms = rules
        .reload_interval_ms
        .or(model.reload_interval_ms)
        .unwrap_or(Sources::RELOAD_INTERVAL.as_millis() as u64);
    if reload_ms < 100 {
        l.problem("reload_interval_ms must be at least 100");
    }
    Sources {
        rules: l
            .o
            .rules
            .clone()
            .or_else(|| l.path("RISKGATE_RULES", rules.path)),
        model: l
            .o
            .model
            .clone()
            .or_else(|| l.path("RISKGATE_MODEL", model.path)),
        reload_interval: Duration::from_millis(reload_ms),
    }
}

fn resolve_log<E: Fn(&str) -> Option<String>>(
    l: &mut Layers<'_, E>,
    raw: raw::RawLog,
) -> LogSettings {
    let format = match (l.o.log_format, l.env("RISKGATE_LOG_FORMAT")) {
        (Some(f), _) => f,
        (None, Some(v)) => match v.as_str() {
            "json" => LogFormat::Json,
            "text" => LogFormat::Text,
            _ => {
                l.problem(format!(
                    "RISKGATE_LOG_FORMAT: `{v}` is not `text` or `json`"
                ));
                LogFormat::Text
            }
        },
        (None, None) => raw.format.unwrap_or(LogFormat::Text),
    };
    let otlp_endpoint = l.env("RISKGATE_OTLP_ENDPOINT").or(raw.otlp_endpoint);
    if let Some(e) = &otlp_endpoint {
        if !(e.starts_with("http://") || e.starts_with("https://")) {
            l.problem(format!(
                "log.otlp_endpoint: `{e}` is not an http:// or https:// URL"
            ));
        } else if !cfg!(feature = "otlp") {
            l.problem(
                "log.otlp_endpoint: this build has no OTLP export (rebuild with `--features otlp`)",
            );
        }
    }
    LogSettings {
        format,
        otlp_endpoint,
    }
}

fn resolve_features<E: Fn(&str) -> Option<String>>(
    l: &mut Layers<'_, E>,
    raw: raw::RawFeatures,
) -> FeatureSettings {
    let defaults = FeatureSettings::default();
    let strong_auth_window_ms = raw
        .strong_auth_window_minutes
        .map_or(defaults.strong_auth_window_ms, |m| {
            i64::try_from(m.saturating_mul(60_000)).unwrap_or(i64::MAX)
        });
    let impossible_travel_kmh = raw
        .impossible_travel_kmh
        .unwrap_or(defaults.impossible_travel_kmh);
    if !(impossible_travel_kmh.is_finite() && impossible_travel_kmh > 0.0) {
        l.problem("features.impossible_travel_kmh must be a positive number");
    }
    let impossible_travel_min_km = raw
        .impossible_travel_min_km
        .unwrap_or(defaults.impossible_travel_min_km);
    if !(impossible_travel_min_km.is_finite() && impossible_travel_min_km >= 0.0) {
        l.problem("features.impossible_travel_min_km must be zero or more");
    }
    FeatureSettings {
        strong_auth_window_ms,
        impossible_travel_kmh,
        impossible_travel_min_km,
    }
}

fn read_file(p: &Path) -> Result<RawConfig, String> {
    let text = std::fs::read_to_string(p)
        .map_err(|e| format!("cannot read config file `{}`: {e}", p.display()))?;
    toml::from_str(&text).map_err(|e| {
        let (line, col) = e.span().map_or((1, 1), |s| {
            let before = &text[..s.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            (line, col)
        });
        format!("{}:{line}:{col}: {}", p.display(), e.message().trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn defaults_need_nothing() {
        let c = Config::resolve(&Overrides::default(), env(&[])).unwrap();
        assert_eq!(c.server.listen.to_string(), ServerSettings::LISTEN);
        assert_eq!(
            c.server.metrics_listen.map(|a| a.to_string()).as_deref(),
            Some(ServerSettings::METRICS_LISTEN)
        );
        assert!(c.sources.rules.is_none() && c.store.hmac_key.is_none());
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[server]\nlisten = \"127.0.0.1:1\"\nmetrics_listen = \"off\"\n",
        )
        .unwrap();
        let o = Overrides {
            config_file: Some(file.clone()),
            ..Overrides::default()
        };
        let c = Config::resolve(&o, env(&[])).unwrap();
        assert_eq!(c.server.listen.port(), 1);
        assert!(c.server.metrics_listen.is_none());
        let c = Config::resolve(&o, env(&[("RISKGATE_LISTEN", "127.0.0.1:2")])).unwrap();
        assert_eq!(c.server.listen.port(), 2);
        let o2 = Overrides {
            listen: Some("127.0.0.1:3".into()),
            ..o
        };
        let c = Config::resolve(&o2, env(&[("RISKGATE_LISTEN", "127.0.0.1:2")])).unwrap();
        assert_eq!(c.server.listen.port(), 3);
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        let e = Config::resolve(
            &Overrides::default(),
            env(&[
                ("RISKGATE_LISTEN", "nope"),
                ("RISKGATE_HMAC_KEY", "short"),
                ("RISKGATE_LOG_FORMAT", "xml"),
            ]),
        )
        .unwrap_err();
        assert_eq!(e.0.len(), 3, "{e}");
        assert!(!e.to_string().contains("short"), "the secret leaked: {e}");
    }

    #[test]
    fn unknown_file_keys_are_rejected_with_position() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[server]\nlisten = \"127.0.0.1:1\"\nlisten_typo = 3\n",
        )
        .unwrap();
        let e = Config::resolve(
            &Overrides {
                config_file: Some(file),
                ..Overrides::default()
            },
            env(&[]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("c.toml:3:1"), "{e}");
    }

    #[test]
    fn the_redis_store_needs_a_hmac_key_and_a_valid_url() {
        let e = Config::resolve(
            &Overrides::default(),
            env(&[("RISKGATE_REDIS_URL", "redis://:pw-secret@127.0.0.1:7000/")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("store.hmac_key"), "{e}");
        assert!(!e.to_string().contains("pw-secret"), "{e}");
        let c = Config::resolve(
            &Overrides::default(),
            env(&[
                ("RISKGATE_REDIS_URL", "redis://127.0.0.1:7000/"),
                ("RISKGATE_HMAC_KEY", "0123456789abcdef0123"),
            ]),
        )
        .unwrap();
        let r = c.store.redis.as_ref().unwrap();
        assert_eq!(r.urls.len(), 1);
        assert_eq!(r.key_prefix, "riskgate");
        assert_eq!(r.profile_ttl, Duration::from_secs(90 * 86_400));
        assert!(!format!("{c:?}").contains("7000"));
        let c = Config::resolve(
            &Overrides::default(),
            env(&[
                ("RISKGATE_REDIS_URL", "redis://a:1, redis://b:2"),
                ("RISKGATE_HMAC_KEY", "0123456789abcdef0123"),
            ]),
        )
        .unwrap();
        let r = c.store.redis.as_ref().unwrap();
        assert!(r.cluster, "several seed nodes select cluster mode");
        assert_eq!(r.urls.len(), 2);
        let e = Config::resolve(
            &Overrides::default(),
            env(&[("RISKGATE_REDIS_CLUSTER", "true")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("redis_cluster"), "{e}");
        let e = Config::resolve(
            &Overrides::default(),
            env(&[
                ("RISKGATE_REDIS_URL", "http://nope"),
                ("RISKGATE_HMAC_KEY", "0123456789abcdef0123"),
            ]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("not a valid redis"), "{e}");
    }

    #[test]
    fn tls_needs_a_certificate_and_its_key() {
        let e = Config::resolve(
            &Overrides::default(),
            env(&[("RISKGATE_TLS_CERT", "/etc/riskgate/cert.pem")]),
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("server.tls_cert") && text.contains("server.tls_key"),
            "{e}"
        );
        let e = Config::resolve(
            &Overrides::default(),
            env(&[("RISKGATE_TLS_CLIENT_CA", "/etc/riskgate/ca.pem")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("server.client_ca"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[server]\ntls_cert = \"file-cert.pem\"\ntls_key = \"file-key.pem\"\n",
        )
        .unwrap();
        let o = Overrides {
            config_file: Some(file),
            ..Overrides::default()
        };
        let c = Config::resolve(&o, env(&[("RISKGATE_TLS_CLIENT_CA", "ca.pem")])).unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(tls.cert, PathBuf::from("file-cert.pem"));
        assert_eq!(tls.key, PathBuf::from("file-key.pem"));
        assert_eq!(tls.client_ca, Some(PathBuf::from("ca.pem")));
        let c = Config::resolve(&o, env(&[("RISKGATE_TLS_CERT", "env-cert.pem")])).unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(tls.cert, PathBuf::from("env-cert.pem"));
        assert_eq!(tls.client_ca, None);
    }

    #[test]
    fn evaluation_limits_default_per_core_and_can_be_set() {
        let c = Config::resolve(&Overrides::default(), env(&[])).unwrap();
        assert_eq!(c.server.evaluation_limits, Limits::for_this_machine());
        let c = Config::resolve(
            &Overrides::default(),
            env(&[("RISKGATE_MAX_CONCURRENT_EVALUATIONS", "3")]),
        )
        .unwrap();
        assert_eq!(c.server.evaluation_limits.max_concurrent, 3);
        assert_eq!(c.server.evaluation_limits.max_queued, 12);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[server]\nmax_concurrent_evaluations = 2\nmax_queued_evaluations = 0\n",
        )
        .unwrap();
        let o = Overrides {
            config_file: Some(file),
            ..Overrides::default()
        };
        let c = Config::resolve(&o, env(&[])).unwrap();
        assert_eq!(
            (
                c.server.evaluation_limits.max_concurrent,
                c.server.evaluation_limits.max_queued
            ),
            (2, 0)
        );
        let e =
            Config::resolve(&o, env(&[("RISKGATE_MAX_CONCURRENT_EVALUATIONS", "0")])).unwrap_err();
        assert!(e.to_string().contains("max_concurrent_evaluations"), "{e}");
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2-hunter2-hunter2");
        assert_eq!(format!("{s:?}"), "<redacted>");
    }
}
