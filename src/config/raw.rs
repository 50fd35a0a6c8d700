//! The config file as written: one struct per `[section]`, unknown keys
//! rejected. [`super::Config::resolve`] layers environment variables and
//! flags over it and validates.

use std::path::PathBuf;

use serde::Deserialize;

use crate::telemetry::LogFormat;

use super::Secret;

/// The config file as written.
#[derive(Clone, Debug, Default, Deserialize)]
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
    pub journal: RawJournal,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawJournal {
    /// A file path (SQLite), a `postgres://` URL, or `off`.
    pub url: Option<Secret>,
    /// Decisions older than this many days are pruned (default 30).
    pub retention_days: Option<u64>,
    /// Records that may wait for the writer (default 65536).
    pub queue: Option<usize>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawDevice {
    /// A uap-core `regexes.yaml`: parse user agents with it instead of the
    /// embedded woothee rules.
    pub ua_regexes: Option<PathBuf>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawGeoip {
    pub city_db: Option<PathBuf>,
    pub asn_db: Option<PathBuf>,
    pub anonymous_db: Option<PathBuf>,
}

#[derive(Clone, Debug, Default, Deserialize)]
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
    /// The analyst console's read-only token (at least 32 bytes; optional).
    pub console_viewer_token: Option<Secret>,
    /// The name audit events give the token's holder (default `admin`).
    pub admin_token_name: Option<String>,
    /// Serve the admin API in plain text on a non-loopback address (the
    /// bearer token then crosses the network in clear). Off by default.
    pub admin_insecure: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize)]
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

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawPath {
    pub path: Option<PathBuf>,
    pub reload_interval_ms: Option<u64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawLog {
    pub format: Option<LogFormat>,
    /// OpenTelemetry collector (OTLP/gRPC) for the per-RPC spans; needs a
    /// build with the `otlp` feature.
    pub otlp_endpoint: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawFeatures {
    pub strong_auth_window_minutes: Option<u64>,
    pub impossible_travel_kmh: Option<f64>,
    pub impossible_travel_min_km: Option<f64>,
}
