//! Configuration: the only place that reads environment variables and the
//! config file.
//!
//! Two phases: [`RawConfig`] mirrors the TOML file (unknown keys rejected);
//! [`Config::resolve`] layers the file, then `RISKGATE_*` variables, then
//! command-line flags, and validates everything at once into typed values.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::telemetry::LogFormat;

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

/// The config file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    pub server: RawServer,
    pub store: RawStore,
    pub rules: RawPath,
    pub model: RawPath,
    pub log: RawLog,
    pub features: RawFeatures,
    pub geoip: RawGeoip,
    pub device: RawDevice,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawDevice {
    /// A uap-core `regexes.yaml`: parse user agents with it instead of the
    /// embedded woothee rules.
    pub ua_regexes: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawGeoip {
    pub city_db: Option<PathBuf>,
    pub asn_db: Option<PathBuf>,
    pub anonymous_db: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<String>,
    pub metrics_listen: Option<String>,
    pub drain_delay_ms: Option<u64>,
    pub shutdown_timeout_ms: Option<u64>,
    pub max_request_bytes: Option<usize>,
    /// PEM certificate chain: serve gRPC over TLS (with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates: clients must present a certificate they signed.
    pub client_ca: Option<PathBuf>,
    /// Evaluate calls running at once (default 64 per core).
    pub max_concurrent_evaluations: Option<u64>,
    /// Evaluate calls waiting for a slot; beyond, RESOURCE_EXHAUSTED
    /// (default 4 per slot).
    pub max_queued_evaluations: Option<u64>,
    /// The admin API's own listener (off when unset).
    pub admin_listen: Option<String>,
    /// The admin API's bearer token (at least 32 bytes).
    pub admin_token: Option<Secret>,
    /// The name audit events give the token's holder (default `admin`).
    pub admin_token_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawStore {
    pub hmac_key: Option<Secret>,
    pub timeout_ms: Option<u64>,
    pub max_profiles: Option<u64>,
    pub history_per_dim: Option<usize>,
    /// `redis://…`: keep state in Redis (shared by replicas). A
    /// comma-separated list selects cluster mode.
    pub redis_url: Option<String>,
    /// Treat `redis_url` as a Redis Cluster.
    pub redis_cluster: Option<bool>,
    /// Prepended to every Redis key (default `riskgate`).
    pub key_prefix: Option<String>,
    /// A Redis profile not taught for this many days expires (default 90).
    pub profile_ttl_days: Option<u64>,
    /// How often each replica merges its deployment-wide attempt and
    /// failure counts into Redis and reads everyone's back (default 100).
    pub global_flush_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawPath {
    pub path: Option<PathBuf>,
    pub reload_interval_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawLog {
    pub format: Option<LogFormat>,
    /// OpenTelemetry collector (OTLP/gRPC) for the per-RPC spans; needs a
    /// build with the `otlp` feature.
    pub otlp_endpoint: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawFeatures {
    pub strong_auth_window_minutes: Option<u64>,
    pub impossible_travel_kmh: Option<f64>,
    pub impossible_travel_min_km: Option<f64>,
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
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    /// `None`: no metrics listener.
    pub metrics_listen: Option<SocketAddr>,
    /// Time between health going NOT_SERVING and the listener closing.
    pub drain_delay: Duration,
    /// Deadline for in-flight calls once the listener closed.
    pub shutdown_timeout: Duration,
    pub max_request_bytes: usize,
    /// `Some`: the gRPC listener serves TLS (mutual TLS with a client CA);
    /// the files are watched and reloaded.
    pub tls: Option<crate::tls::TlsPaths>,
    /// Evaluate concurrency and queue bounds.
    pub evaluation_limits: crate::grpc::admission::Limits,
    pub hmac_key: Option<Secret>,
    pub store_timeout: Duration,
    pub max_profiles: u64,
    pub history_per_dim: usize,
    /// Redis URLs (empty: the memory store). Never printed: may hold a password.
    pub redis_urls: Vec<Secret>,
    /// Redis Cluster mode (more than one URL, or `store.redis_cluster`).
    pub redis_cluster: bool,
    /// Prefix of every Redis key.
    pub key_prefix: String,
    /// Lifetime of an untaught Redis profile.
    pub profile_ttl: Duration,
    /// Redis: how often deployment-wide counts are merged.
    pub global_flush: Duration,
    /// `None`: the shipped rules.
    pub rules_path: Option<PathBuf>,
    /// `None`: the shipped model.
    pub model_path: Option<PathBuf>,
    pub reload_interval: Duration,
    pub log_format: LogFormat,
    /// OTLP/gRPC collector for the per-RPC spans (`otlp` builds only).
    pub otlp_endpoint: Option<String>,
    pub strong_auth_window: Duration,
    /// MaxMind databases; each optional.
    pub geoip: crate::signals::geo::GeoPaths,
    /// uap-core rules for user agents (`None`: embedded woothee).
    pub ua_regexes: Option<PathBuf>,
    /// Speed above which travel between verified logins is impossible, km/h.
    pub impossible_travel_kmh: f64,
    /// Below this distance (after accuracy radii), travel never fires, km.
    pub impossible_travel_min_km: f64,
    /// The admin API listener (`None`: off, the default).
    pub admin_listen: Option<SocketAddr>,
    /// The admin API's bearer token; required with `admin_listen`.
    pub admin_token: Option<Secret>,
    /// Who audit events name as the token's holder.
    pub admin_token_name: String,
}

/// Every problem found in the configuration.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  {}", .0.join("\n  "))]
pub struct ConfigError(pub Vec<String>);

/// The default gRPC address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// The default metrics address.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";

impl Config {
    /// Resolves the configuration from the process environment.
    pub fn from_env(o: &Overrides) -> Result<Config, ConfigError> {
        Self::resolve(o, |k| std::env::var(k).ok())
    }

    /// Layers defaults, the config file, `env` and the overrides, and
    /// validates the result.
    pub fn resolve(
        o: &Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        let file_path = o
            .config_file
            .clone()
            .or_else(|| env("RISKGATE_CONFIG").map(PathBuf::from));
        let raw = match &file_path {
            Some(p) => match read_file(p) {
                Ok(r) => r,
                Err(e) => return Err(ConfigError(vec![e])),
            },
            None => RawConfig::default(),
        };

        let pick = |flag: &Option<String>, var: &str, file: &Option<String>, default: &str| {
            flag.clone()
                .or_else(|| env(var))
                .or_else(|| file.clone())
                .unwrap_or_else(|| default.to_string())
        };
        let listen_text = pick(
            &o.listen,
            "RISKGATE_LISTEN",
            &raw.server.listen,
            DEFAULT_LISTEN,
        );
        let listen = match listen_text.parse() {
            Ok(a) => a,
            Err(_) => {
                problems.push(format!(
                    "listen: `{listen_text}` is not an address like 127.0.0.1:50051"
                ));
                SocketAddr::from(([127, 0, 0, 1], 50051))
            }
        };
        let metrics_text = pick(
            &o.metrics_listen,
            "RISKGATE_METRICS_LISTEN",
            &raw.server.metrics_listen,
            DEFAULT_METRICS_LISTEN,
        );
        let metrics_listen = if metrics_text.is_empty() || metrics_text == "off" {
            None
        } else {
            match metrics_text.parse() {
                Ok(a) => Some(a),
                Err(_) => {
                    problems.push(format!(
                        "metrics_listen: `{metrics_text}` is not an address like 127.0.0.1:9464 (or `off`)"
                    ));
                    None
                }
            }
        };

        let num = |var: &str, file: Option<u64>, problems: &mut Vec<String>| -> Option<u64> {
            match env(var) {
                Some(v) => match v.parse() {
                    Ok(n) => Some(n),
                    Err(_) => {
                        problems.push(format!("{var}: `{v}` is not a whole number"));
                        None
                    }
                },
                None => file,
            }
        };
        let drain_ms = o
            .drain_delay_ms
            .or_else(|| {
                num(
                    "RISKGATE_DRAIN_DELAY_MS",
                    raw.server.drain_delay_ms,
                    &mut problems,
                )
            })
            .unwrap_or(0);
        let shutdown_ms = num(
            "RISKGATE_SHUTDOWN_TIMEOUT_MS",
            raw.server.shutdown_timeout_ms,
            &mut problems,
        )
        .unwrap_or(10_000);
        let store_timeout_ms = num(
            "RISKGATE_STORE_TIMEOUT_MS",
            raw.store.timeout_ms,
            &mut problems,
        )
        .unwrap_or(50);
        if store_timeout_ms == 0 || store_timeout_ms > 10_000 {
            problems.push("store.timeout_ms must be between 1 and 10000".into());
        }
        let max_request_bytes = raw.server.max_request_bytes.unwrap_or(16 * 1024);
        if !(1024..=4 * 1024 * 1024).contains(&max_request_bytes) {
            problems.push("server.max_request_bytes must be between 1024 and 4194304".into());
        }
        let max_profiles = raw.store.max_profiles.unwrap_or(1_000_000);
        if max_profiles == 0 {
            problems.push("store.max_profiles must be at least 1".into());
        }
        let history_per_dim = raw.store.history_per_dim.unwrap_or(16);
        if !(1..=256).contains(&history_per_dim) {
            problems.push("store.history_per_dim must be between 1 and 256".into());
        }
        let defaults = crate::grpc::admission::Limits::for_this_machine();
        let max_concurrent = num(
            "RISKGATE_MAX_CONCURRENT_EVALUATIONS",
            raw.server.max_concurrent_evaluations,
            &mut problems,
        )
        .map_or(defaults.max_concurrent, |n| {
            usize::try_from(n).unwrap_or(usize::MAX)
        });
        if !(1..=1_000_000).contains(&max_concurrent) {
            problems.push("server.max_concurrent_evaluations must be between 1 and 1000000".into());
        }
        let max_queued = num(
            "RISKGATE_MAX_QUEUED_EVALUATIONS",
            raw.server.max_queued_evaluations,
            &mut problems,
        )
        .map_or(
            crate::grpc::admission::Limits::QUEUED_PER_SLOT.saturating_mul(max_concurrent),
            |n| usize::try_from(n).unwrap_or(usize::MAX),
        );
        if max_queued > 10_000_000 {
            problems.push("server.max_queued_evaluations must be at most 10000000".into());
        }
        let tls_path =
            |var: &str, file: &Option<PathBuf>| env(var).map(PathBuf::from).or(file.clone());
        let tls = match (
            tls_path("RISKGATE_TLS_CERT", &raw.server.tls_cert),
            tls_path("RISKGATE_TLS_KEY", &raw.server.tls_key),
            tls_path("RISKGATE_TLS_CLIENT_CA", &raw.server.client_ca),
        ) {
            (Some(cert), Some(key), client_ca) => Some(crate::tls::TlsPaths {
                cert,
                key,
                client_ca,
            }),
            (None, None, None) => None,
            (None, None, Some(_)) => {
                problems.push(
                    "server.client_ca (RISKGATE_TLS_CLIENT_CA) needs server.tls_cert (RISKGATE_TLS_CERT) and server.tls_key (RISKGATE_TLS_KEY)"
                        .into(),
                );
                None
            }
            _ => {
                problems.push(
                    "server.tls_cert (RISKGATE_TLS_CERT) and server.tls_key (RISKGATE_TLS_KEY) must be given together"
                        .into(),
                );
                None
            }
        };
        let hmac_key = env("RISKGATE_HMAC_KEY")
            .map(Secret::new)
            .or(raw.store.hmac_key);
        if let Some(k) = &hmac_key
            && k.expose().len() < 16
        {
            problems.push("store.hmac_key must be at least 16 bytes".into());
        }
        let redis_urls: Vec<Secret> = env("RISKGATE_REDIS_URL")
            .or(raw.store.redis_url)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .map(Secret::new)
                    .collect()
            })
            .unwrap_or_default();
        let redis_cluster = match env("RISKGATE_REDIS_CLUSTER").as_deref() {
            Some("true" | "1") => true,
            Some("false" | "0") => false,
            Some(other) => {
                problems.push(format!(
                    "RISKGATE_REDIS_CLUSTER must be `true` or `false`, not `{other}`"
                ));
                false
            }
            None => raw.store.redis_cluster.unwrap_or(false),
        } || redis_urls.len() > 1;
        for u in &redis_urls {
            if redis::Client::open(u.expose()).is_err() {
                // The URL may hold a password: not echoed.
                problems.push("store.redis_url: not a valid redis:// URL".into());
            }
        }
        if !redis_urls.is_empty() && hmac_key.is_none() {
            problems.push(
                "store.hmac_key (RISKGATE_HMAC_KEY) is required with store.redis_url: replicas must hash identifiers alike"
                    .into(),
            );
        }
        if redis_cluster && redis_urls.is_empty() {
            problems.push("store.redis_cluster needs store.redis_url (the seed nodes)".into());
        }
        let key_prefix = raw.store.key_prefix.unwrap_or_else(|| "riskgate".into());
        if key_prefix.is_empty() || key_prefix.len() > 64 || key_prefix.contains(['{', '}', ' ']) {
            problems.push(
                "store.key_prefix must be 1 to 64 characters without braces or spaces".into(),
            );
        }
        let global_flush_ms = raw.store.global_flush_ms.unwrap_or(100);
        if !(10..=10_000).contains(&global_flush_ms) {
            problems.push("store.global_flush_ms must be between 10 and 10000".into());
        }
        let profile_ttl_days = raw.store.profile_ttl_days.unwrap_or(90);
        if !(1..=3650).contains(&profile_ttl_days) {
            problems.push("store.profile_ttl_days must be between 1 and 3650".into());
        }
        let rules_path = o
            .rules
            .clone()
            .or_else(|| env("RISKGATE_RULES").map(PathBuf::from))
            .or(raw.rules.path);
        let model_path = o
            .model
            .clone()
            .or_else(|| env("RISKGATE_MODEL").map(PathBuf::from))
            .or(raw.model.path);
        let reload_ms = raw
            .rules
            .reload_interval_ms
            .or(raw.model.reload_interval_ms)
            .unwrap_or(1000);
        if reload_ms < 100 {
            problems.push("reload_interval_ms must be at least 100".into());
        }
        let log_format = match (o.log_format, env("RISKGATE_LOG_FORMAT")) {
            (Some(f), _) => f,
            (None, Some(v)) => match v.as_str() {
                "json" => LogFormat::Json,
                "text" => LogFormat::Text,
                _ => {
                    problems.push(format!(
                        "RISKGATE_LOG_FORMAT: `{v}` is not `text` or `json`"
                    ));
                    LogFormat::Text
                }
            },
            (None, None) => raw.log.format.unwrap_or(LogFormat::Text),
        };
        let otlp_endpoint = env("RISKGATE_OTLP_ENDPOINT").or(raw.log.otlp_endpoint);
        if let Some(e) = &otlp_endpoint {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                problems.push(format!(
                    "log.otlp_endpoint: `{e}` is not an http:// or https:// URL"
                ));
            } else if !cfg!(feature = "otlp") {
                problems.push(
                    "log.otlp_endpoint: this build has no OTLP export (rebuild with `--features otlp`)"
                        .into(),
                );
            }
        }
        let strong_minutes = raw.features.strong_auth_window_minutes.unwrap_or(15);
        let geo_path = |var: &str, file: Option<PathBuf>| env(var).map(PathBuf::from).or(file);
        let geoip = crate::signals::geo::GeoPaths {
            city: geo_path("RISKGATE_GEOIP_CITY_DB", raw.geoip.city_db),
            asn: geo_path("RISKGATE_GEOIP_ASN_DB", raw.geoip.asn_db),
            anonymous: geo_path("RISKGATE_GEOIP_ANONYMOUS_DB", raw.geoip.anonymous_db),
        };
        let impossible_travel_kmh = raw.features.impossible_travel_kmh.unwrap_or(1000.0);
        if !(impossible_travel_kmh.is_finite() && impossible_travel_kmh > 0.0) {
            problems.push("features.impossible_travel_kmh must be a positive number".into());
        }
        let impossible_travel_min_km = raw.features.impossible_travel_min_km.unwrap_or(300.0);
        if !(impossible_travel_min_km.is_finite() && impossible_travel_min_km >= 0.0) {
            problems.push("features.impossible_travel_min_km must be zero or more".into());
        }

        let admin = resolve_admin(
            o,
            &env,
            raw.server.admin_listen,
            raw.server.admin_token,
            raw.server.admin_token_name,
            &mut problems,
        );

        if !problems.is_empty() {
            return Err(ConfigError(problems));
        }
        let (admin_listen, admin_token, admin_token_name) = admin;
        Ok(Config {
            listen,
            metrics_listen,
            drain_delay: Duration::from_millis(drain_ms),
            shutdown_timeout: Duration::from_millis(shutdown_ms),
            max_request_bytes,
            tls,
            evaluation_limits: crate::grpc::admission::Limits {
                max_concurrent,
                max_queued,
            },
            hmac_key,
            store_timeout: Duration::from_millis(store_timeout_ms),
            max_profiles,
            history_per_dim,
            redis_urls,
            redis_cluster,
            key_prefix,
            profile_ttl: Duration::from_secs(profile_ttl_days * 86_400),
            global_flush: Duration::from_millis(global_flush_ms),
            rules_path,
            model_path,
            reload_interval: Duration::from_millis(reload_ms),
            log_format,
            otlp_endpoint,
            strong_auth_window: Duration::from_secs(strong_minutes * 60),
            geoip,
            ua_regexes: env("RISKGATE_UA_REGEXES")
                .map(PathBuf::from)
                .or(raw.device.ua_regexes),
            impossible_travel_kmh,
            impossible_travel_min_km,
            admin_listen,
            admin_token,
            admin_token_name,
        })
    }
}

/// The admin API settings: listener (flag, `RISKGATE_ADMIN_LISTEN`,
/// `server.admin_listen`; off by default), token (`RISKGATE_ADMIN_TOKEN`,
/// `server.admin_token`; at least 32 bytes, required with the listener) and
/// the token holder's name for audit events.
fn resolve_admin(
    o: &Overrides,
    env: &impl Fn(&str) -> Option<String>,
    file_listen: Option<String>,
    file_token: Option<Secret>,
    file_name: Option<String>,
    problems: &mut Vec<String>,
) -> (Option<SocketAddr>, Option<Secret>, String) {
    let text = o
        .admin_listen
        .clone()
        .or_else(|| env("RISKGATE_ADMIN_LISTEN"))
        .or(file_listen)
        .unwrap_or_default();
    let listen = if text.is_empty() || text == "off" {
        None
    } else {
        match text.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                problems.push(format!(
                    "admin_listen: `{text}` is not an address like 127.0.0.1:50052 (or `off`)"
                ));
                None
            }
        }
    };
    let token = env("RISKGATE_ADMIN_TOKEN").map(Secret::new).or(file_token);
    if let Some(t) = &token
        && t.expose().len() < 32
    {
        problems.push("server.admin_token must be at least 32 bytes".into());
    }
    if listen.is_some() && token.is_none() {
        problems.push(
            "server.admin_listen needs server.admin_token (RISKGATE_ADMIN_TOKEN): the admin API is never served without authentication"
                .into(),
        );
    }
    let name = file_name.unwrap_or_else(|| "admin".into());
    if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_graphic()) {
        problems.push("server.admin_token_name must be 1 to 64 printable ASCII characters".into());
    }
    (listen, token, name)
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
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(
            c.metrics_listen.map(|a| a.to_string()).as_deref(),
            Some(DEFAULT_METRICS_LISTEN)
        );
        assert!(c.rules_path.is_none() && c.hmac_key.is_none());
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
        assert_eq!(c.listen.port(), 1);
        assert!(c.metrics_listen.is_none());
        let c = Config::resolve(&o, env(&[("RISKGATE_LISTEN", "127.0.0.1:2")])).unwrap();
        assert_eq!(c.listen.port(), 2);
        let o2 = Overrides {
            listen: Some("127.0.0.1:3".into()),
            ..o
        };
        let c = Config::resolve(&o2, env(&[("RISKGATE_LISTEN", "127.0.0.1:2")])).unwrap();
        assert_eq!(c.listen.port(), 3);
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
        assert_eq!(c.redis_urls.len(), 1);
        assert_eq!(c.key_prefix, "riskgate");
        assert_eq!(c.profile_ttl, Duration::from_secs(90 * 86_400));
        assert!(!format!("{c:?}").contains("7000"));
        let c = Config::resolve(
            &Overrides::default(),
            env(&[
                ("RISKGATE_REDIS_URL", "redis://a:1, redis://b:2"),
                ("RISKGATE_HMAC_KEY", "0123456789abcdef0123"),
            ]),
        )
        .unwrap();
        assert!(c.redis_cluster, "several seed nodes select cluster mode");
        assert_eq!(c.redis_urls.len(), 2);
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
        assert_eq!(
            c.evaluation_limits,
            crate::grpc::admission::Limits::for_this_machine()
        );
        let c = Config::resolve(
            &Overrides::default(),
            env(&[("RISKGATE_MAX_CONCURRENT_EVALUATIONS", "3")]),
        )
        .unwrap();
        assert_eq!(c.evaluation_limits.max_concurrent, 3);
        assert_eq!(c.evaluation_limits.max_queued, 12);
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
                c.evaluation_limits.max_concurrent,
                c.evaluation_limits.max_queued
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
