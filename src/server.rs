//! Running riskgate: the engine from a [`Config`], the gRPC server (risk
//! service, standard health, reflection), the metrics listener, file reloads,
//! and graceful shutdown in a fixed order: health NOT_SERVING → drain delay →
//! stop accepting → in-flight calls finish under a deadline → exit.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::config::Config;
use crate::engine::{Engine, EngineSettings};
use crate::features::FeatureSettings;
use crate::grpc::pb::risk_service_server::RiskServiceServer;
use crate::grpc::{pb, service::RiskService};
use crate::model::Model;
use crate::rules::RuleSet;
use crate::signals::device::UaParser;
use crate::signals::geo::GeoResolver;
use crate::store::memory::{MemoryLimits, MemoryStore};
use crate::store::redis::{RedisSettings, RedisStore};
use crate::store::{IdHasher, Store};
use crate::telemetry::Metrics;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("rules: {0}")]
    Rules(#[from] crate::rules::LoadError),
    #[error("model: {0}")]
    Model(#[from] crate::model::ModelError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("reflection: {0}")]
    Reflection(String),
    #[error("geoip: {0}")]
    Geo(#[from] crate::signals::geo::GeoError),
    #[error("user agents: {0}")]
    UserAgents(#[from] crate::signals::device::UaError),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("tls: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("the admin listener needs an admin token")]
    AdminWithoutToken,
}

/// Builds the engine the configuration describes.
pub fn build_engine(config: &Config, metrics: Arc<Metrics>) -> Result<Engine, StartError> {
    let rules = match &config.rules_path {
        Some(p) => RuleSet::load(p)?,
        None => RuleSet::embedded()?,
    };
    for w in &rules.warnings {
        tracing::warn!(rules.warning = %w, "rule file warning");
    }
    let model = match &config.model_path {
        Some(p) => Model::load(p)?,
        None => Model::embedded()?,
    };
    let hasher = match &config.hmac_key {
        Some(k) => IdHasher::new(k.expose().as_bytes()),
        None => IdHasher::random(),
    };
    let store: Arc<dyn Store> = match config.redis_urls.first() {
        Some(url) => {
            let base = if config.redis_cluster {
                RedisSettings::cluster(config.redis_urls.iter().map(|u| u.expose().to_string()))
            } else {
                RedisSettings::new(url.expose())
            };
            let store = RedisStore::new(RedisSettings {
                key_prefix: config.key_prefix.clone(),
                profile_ttl: config.profile_ttl,
                history_per_dim: config.history_per_dim,
                global_flush: config.global_flush,
                // The client gives up shortly after the engine's deadline.
                response_timeout: config.store_timeout + Duration::from_millis(50),
                ..base
            })?;
            tracing::info!(
                store = "redis",
                redis.cluster = config.redis_cluster,
                key_prefix = %config.key_prefix,
                "state kept in Redis"
            );
            Arc::new(store)
        }
        None => Arc::new(MemoryStore::new(MemoryLimits {
            max_profiles: config.max_profiles,
            history_per_dim: config.history_per_dim,
            ..MemoryLimits::default()
        })),
    };
    let g = &config.geoip;
    let geo = if g.city.is_none() && g.asn.is_none() && g.anonymous.is_none() {
        tracing::warn!("no GeoIP database configured: geo signals are degraded in every decision");
        None
    } else {
        let resolver = GeoResolver::open(g)?;
        for (kind, info) in resolver.databases() {
            tracing::info!(geoip.kind = %kind, geoip.database = %info, "GeoIP database loaded");
        }
        Some(Arc::new(resolver))
    };
    let settings = EngineSettings {
        store_timeout: config.store_timeout,
        features: FeatureSettings {
            strong_auth_window_ms: i64::try_from(config.strong_auth_window.as_millis())
                .unwrap_or(i64::MAX),
            impossible_travel_kmh: config.impossible_travel_kmh,
            impossible_travel_min_km: config.impossible_travel_min_km,
        },
        ..EngineSettings::default()
    };
    let engine = Engine::new(store, hasher, rules, model, geo, settings, metrics);
    Ok(match &config.ua_regexes {
        Some(path) => {
            let ua = UaParser::from_regexes(path, EngineSettings::default().ua_cache)?;
            tracing::info!(path = %path.display(), "user agents parsed with uap-core rules");
            engine.with_ua_parser(ua)
        }
        None => engine,
    })
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    pub engine: Arc<Engine>,
    health: HealthReporter,
    stop: oneshot::Sender<()>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
    background: Vec<JoinHandle<()>>,
    drain_delay: Duration,
    shutdown_timeout: Duration,
    /// The admin API listener's address, when `admin_listen` is set.
    pub admin_addr: Option<SocketAddr>,
    admin: Option<crate::admin::AdminServer>,
}

/// Starts everything the configuration describes.
pub async fn start(config: &Config) -> Result<Running, StartError> {
    let metrics = Arc::new(Metrics::new());
    let engine = Arc::new(build_engine(config, metrics.clone())?);
    start_with_engine(config, engine).await
}

/// Starts the listeners around an existing engine.
pub async fn start_with_engine(
    config: &Config,
    engine: Arc<Engine>,
) -> Result<Running, StartError> {
    // Certificates first: a bad file fails the start before anything listens.
    let tls = match &config.tls {
        Some(paths) => Some(Arc::new(crate::tls::Current::load(paths.clone())?)),
        None => None,
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;

    let mut background = Vec::new();
    let metrics_addr = match config.metrics_listen {
        Some(m) => {
            let l = TcpListener::bind(m)
                .await
                .map_err(|source| StartError::Bind { addr: m, source })?;
            let bound = l
                .local_addr()
                .map_err(|source| StartError::Bind { addr: m, source })?;
            background.push(tokio::spawn(serve_metrics(l, engine.clone())));
            Some(bound)
        }
        None => None,
    };
    if let Some(p) = &config.rules_path {
        background.push(tokio::spawn(watch(
            p.clone(),
            config.reload_interval,
            engine.clone(),
            Kind::Rules,
        )));
    }
    if let Some(geo) = engine.geo() {
        background.push(tokio::spawn(watch_geo(
            geo.clone(),
            config.reload_interval.max(Duration::from_secs(1)),
            engine.clone(),
        )));
    }
    if let Some(p) = &config.model_path {
        background.push(tokio::spawn(watch(
            p.clone(),
            config.reload_interval,
            engine.clone(),
            Kind::Model,
        )));
    }

    let admin = match (config.admin_listen, &config.admin_token) {
        (None, _) => None,
        (Some(_), None) => return Err(StartError::AdminWithoutToken),
        (Some(a), Some(token)) => {
            let bind = |source| StartError::Bind { addr: a, source };
            let l = TcpListener::bind(a).await.map_err(bind)?;
            let auth = crate::admin::auth::TokenAuth::new(token, &config.admin_token_name);
            Some(
                crate::admin::serve(l, engine.clone(), auth, config.max_request_bytes)
                    .map_err(bind)?,
            )
        }
    };

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<RiskServiceServer<RiskService>>().await;
    health.set_service_status("", ServingStatus::Serving).await;
    // Reflection v1 and the older v1alpha (still what many clients ask for).
    let reflection_builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection = reflection_builder()
        .build_v1()
        .map_err(|e| StartError::Reflection(e.to_string()))?;
    let reflection_alpha = reflection_builder()
        .build_v1alpha()
        .map_err(|e| StartError::Reflection(e.to_string()))?;
    let risk = RiskServiceServer::new(RiskService::with_limits(
        engine.clone(),
        config.evaluation_limits,
    ))
    .max_decoding_message_size(config.max_request_bytes);

    let (stop, stopped) = oneshot::channel::<()>();
    let router = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(risk);
    let stopped = async {
        let _ = stopped.await;
    };
    let server = match &tls {
        // TCP_NODELAY: tonic ignores its own nodelay setting on this path,
        // and with Nagle on, small responses stall ~40 ms on delayed ACKs.
        None => tokio::spawn(router.serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            stopped,
        )),
        Some(current) => {
            let (incoming, acceptor) =
                crate::tls::incoming(listener, current.clone(), engine.metrics().clone());
            background.push(acceptor);
            background.push(tokio::spawn(crate::tls::watch(
                current.clone(),
                config.reload_interval,
                engine.metrics().clone(),
            )));
            tokio::spawn(router.serve_with_incoming_shutdown(incoming, stopped))
        }
    };
    tracing::info!(
        listen = %addr,
        tls = match &tls {
            None => "off",
            Some(t) if t.mutual() => "mutual",
            Some(_) => "on",
        },
        metrics = %metrics_addr.map(|a| a.to_string()).unwrap_or_else(|| "off".into()),
        rules.version = %engine.rules().version,
        limits.max_concurrent_evaluations = config.evaluation_limits.max_concurrent,
        limits.max_queued_evaluations = config.evaluation_limits.max_queued,
        "riskgate serving"
    );
    Ok(Running {
        addr,
        metrics_addr,
        engine,
        health,
        stop,
        server,
        background,
        drain_delay: config.drain_delay,
        shutdown_timeout: config.shutdown_timeout,
        admin_addr: admin.as_ref().map(|a| a.addr),
        admin,
    })
}

impl Running {
    /// Shuts down in order. Returns false if in-flight calls did not finish
    /// within the shutdown timeout.
    pub async fn shutdown(mut self) -> bool {
        tracing::info!("shutting down: health NOT_SERVING");
        self.health
            .set_not_serving::<RiskServiceServer<RiskService>>()
            .await;
        self.health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        tokio::time::sleep(self.drain_delay).await;
        // End health Watch streams (they would otherwise hold the server open
        // until the deadline), then stop accepting.
        let risk_name = <RiskServiceServer<RiskService> as tonic::server::NamedService>::NAME;
        self.health.clear_service_status(risk_name).await;
        self.health.clear_service_status("").await;
        tracing::info!("shutting down: closing the listener");
        let _ = self.stop.send(());
        let finished = match tokio::time::timeout(self.shutdown_timeout, self.server).await {
            Ok(Ok(Ok(()))) => true,
            Ok(Ok(Err(e))) => {
                tracing::error!(error = %e, "server error during shutdown");
                true
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "server task failed");
                true
            }
            Err(_) => {
                tracing::warn!(timeout = ?self.shutdown_timeout, "in-flight calls did not finish in time");
                false
            }
        };
        if let Some(admin) = self.admin {
            admin.shutdown(self.shutdown_timeout).await;
        }
        // Writes the store still holds (recent decisions, a replica's
        // unmerged deployment-wide counts), bounded by the store's timeout.
        self.engine.store().flush().await;
        for b in self.background {
            b.abort();
        }
        tracing::info!("shutdown complete");
        finished
    }
}

async fn serve_metrics(listener: TcpListener, engine: Arc<Engine>) {
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let engine = engine.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        engine.metrics().render(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }));
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "metrics listener failed");
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Rules,
    Model,
}

fn stamp(p: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(p).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Polls a file and swaps in a new version when it changes and loads
/// cleanly; a bad version is logged and counted, the old one keeps serving.
async fn watch(path: PathBuf, every: Duration, engine: Arc<Engine>, kind: Kind) {
    let mut last = stamp(&path);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let now = stamp(&path);
        if now == last || now.is_none() {
            continue;
        }
        last = now;
        let p = path.clone();
        let loaded = tokio::task::spawn_blocking(move || match kind {
            Kind::Rules => RuleSet::load(&p)
                .map(Loaded::Rules)
                .map_err(|e| e.to_string()),
            Kind::Model => Model::load(&p)
                .map(Loaded::Model)
                .map_err(|e| e.to_string()),
        })
        .await;
        let name = match kind {
            Kind::Rules => "rules",
            Kind::Model => "model",
        };
        match loaded {
            Ok(Ok(Loaded::Rules(r))) => {
                tracing::info!(rules.version = %r.version, path = %path.display(), "rules reloaded");
                engine.swap_rules(r);
                engine.metrics().reload(name, true);
            }
            Ok(Ok(Loaded::Model(m))) => {
                tracing::info!(model.version = %m.version(), path = %path.display(), "model reloaded");
                engine.swap_model(m);
                engine.metrics().reload(name, true);
            }
            Ok(Err(e)) => {
                tracing::error!(kind = name, path = %path.display(), errors = %e, "reload rejected; previous version keeps serving");
                engine.metrics().reload(name, false);
            }
            Err(e) => {
                tracing::error!(kind = name, error = %e, "reload task failed");
                engine.metrics().reload(name, false);
            }
        }
    }
}

/// Polls the GeoIP databases; a changed file that validates is swapped in,
/// a bad one is logged and counted while the previous one keeps serving.
async fn watch_geo(geo: Arc<GeoResolver>, every: Duration, engine: Arc<Engine>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let g = geo.clone();
        let Ok(results) = tokio::task::spawn_blocking(move || g.reload_changed()).await else {
            continue;
        };
        for r in results {
            match r.outcome {
                Ok(info) => {
                    tracing::info!(geoip.kind = %r.kind, path = %r.path.display(), geoip.database = %info, "GeoIP database reloaded");
                    engine.metrics().reload("geoip", true);
                }
                Err(e) => {
                    tracing::error!(geoip.kind = %r.kind, error = %e, "GeoIP reload rejected; previous database keeps serving");
                    engine.metrics().reload("geoip", false);
                }
            }
        }
    }
}

enum Loaded {
    Rules(RuleSet),
    Model(Model),
}
