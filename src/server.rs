//! Running riskgate: the engine from a [`Config`], the gRPC server (risk
//! service, standard health, reflection), the metrics listener, file reloads,
//! and graceful shutdown in a fixed order: health NOT_SERVING → drain delay →
//! stop accepting → in-flight calls finish under a deadline → exit.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::api::listen::{self, AdminServer, GrpcServer, GrpcSettings, ListenError};
use crate::config::Config;
use crate::core::keys::IdHasher;
use crate::core::model::Model;
use crate::core::rules::RuleSet;
use crate::engine::{Engine, EngineSettings};
use crate::journal::{Journal, Target};
use crate::signals::device::UaParser;
use crate::signals::geo::GeoResolver;
use crate::store::Store;
use crate::store::memory::MemoryStore;
use crate::store::redis::RedisStore;
use crate::telemetry::Metrics;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("rules: {0}")]
    Rules(#[from] crate::core::rules::LoadError),
    #[error("model: {0}")]
    Model(#[from] crate::core::model::ModelError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Listen(#[from] ListenError),
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
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
}

/// Builds the engine the configuration describes.
pub fn build_engine(config: &Config, metrics: Arc<Metrics>) -> Result<Engine, StartError> {
    let rules = match &config.sources.rules {
        Some(p) => RuleSet::load(p)?,
        None => RuleSet::embedded()?,
    };
    for w in &rules.warnings {
        tracing::warn!(rules.warning = %w, "rule file warning");
    }
    let model = match &config.sources.model {
        Some(p) => Model::load(p)?,
        None => Model::embedded()?,
    };
    let hasher = match &config.store.hmac_key {
        Some(k) => IdHasher::new(k.expose().as_bytes()),
        None => IdHasher::random(),
    };
    let store: Arc<dyn Store> = match config.store.redis_settings() {
        Some(settings) => {
            tracing::info!(
                store = "redis",
                redis.cluster = settings.cluster,
                key_prefix = %settings.key_prefix,
                "state kept in Redis"
            );
            Arc::new(RedisStore::new(settings)?)
        }
        None => Arc::new(MemoryStore::new(config.store.memory.clone())),
    };
    let geo = match GeoResolver::configured(&config.geoip)? {
        None => {
            tracing::warn!(
                "no GeoIP database configured: geo signals are degraded in every decision"
            );
            None
        }
        Some(resolver) => {
            for (kind, info) in resolver.databases() {
                tracing::info!(geoip.kind = %kind, geoip.database = %info, "GeoIP database loaded");
            }
            Some(Arc::new(resolver))
        }
    };
    let settings = EngineSettings {
        store_timeout: config.store.timeout,
        features: config.features,
        ..EngineSettings::default()
    };
    let ua = UaParser::configured(config.device.ua_regexes.as_deref(), settings.ua_cache)?;
    if let Some(path) = &config.device.ua_regexes {
        tracing::info!(path = %path.display(), "user agents parsed with uap-core rules");
    }
    let engine =
        Engine::new(store, hasher, rules, model, geo, settings, metrics.clone()).with_ua_parser(ua);
    let journal = &config.journal;
    if journal.target == Target::Off {
        tracing::info!("decision journal off");
        return Ok(engine);
    }
    if let Target::Sqlite(p) = &journal.target {
        let shown = std::path::absolute(p).unwrap_or_else(|_| p.clone());
        tracing::info!(journal = %shown.display(), "decision journal: SQLite file");
    } else {
        tracing::info!(journal = %journal.target, "decision journal: PostgreSQL");
    }
    if config.store.hmac_key.is_none() {
        tracing::warn!(
            "no RISKGATE_HMAC_KEY: the journal keys users with a random per-process key, so a user's decisions cannot be found across restarts"
        );
    }
    let j = Journal::start(journal, metrics)?;
    Ok(engine.with_journal(Arc::new(j)))
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    /// The admin API listener's address, when `admin.listen` is set.
    pub admin_addr: Option<SocketAddr>,
    pub engine: Arc<Engine>,
    grpc: GrpcServer,
    admin: Option<AdminServer>,
    background: Vec<JoinHandle<()>>,
    drain_delay: Duration,
    shutdown_timeout: Duration,
}

/// Starts everything the configuration describes.
pub async fn start(config: &Config) -> Result<Running, StartError> {
    let metrics = Arc::new(Metrics::new());
    let engine = Arc::new(build_engine(config, metrics.clone())?);
    start_with_engine(config, engine).await
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

fn local(l: &TcpListener, addr: SocketAddr) -> Result<SocketAddr, StartError> {
    l.local_addr()
        .map_err(|source| StartError::Bind { addr, source })
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
    let server = &config.server;
    let listener = bind(server.listen).await?;
    let interval = config.sources.reload_interval;

    let mut background = Vec::new();
    let metrics_addr = match server.metrics_listen {
        Some(m) => {
            let l = bind(m).await?;
            let bound = local(&l, m)?;
            background.push(tokio::spawn(listen::serve_metrics(
                l,
                engine.metrics().clone(),
            )));
            tracing::info!(metrics.listen = %bound, "metrics listening: http://{bound}/metrics");
            Some(bound)
        }
        None => None,
    };
    if let Some(p) = &config.sources.rules {
        background.push(tokio::spawn(watch(
            p.clone(),
            interval,
            engine.clone(),
            Kind::Rules,
        )));
    }
    if let Some(geo) = engine.geo() {
        background.push(tokio::spawn(watch_geo(
            geo.clone(),
            interval.max(Duration::from_secs(1)),
            engine.clone(),
        )));
    }
    if let Some(p) = &config.sources.model {
        background.push(tokio::spawn(watch(
            p.clone(),
            interval,
            engine.clone(),
            Kind::Model,
        )));
    }

    let admin = match (config.admin.listen, &config.admin.token) {
        (None, _) => None,
        (Some(_), None) => return Err(StartError::AdminWithoutToken),
        (Some(a), Some(token)) => {
            let l = bind(a).await?;
            let auth = crate::api::auth::TokenAuth::new(token, &config.admin.token_name);
            let console = Arc::new(crate::console::Console::new(
                engine.clone(),
                auth.clone(),
                &config.admin.token_name,
                config
                    .admin
                    .viewer_token
                    .as_ref()
                    .map(|v| crate::api::auth::TokenAuth::new(v, "viewer")),
                config.sources.rules.clone(),
                tls.is_some(),
            ));
            // Under the same TLS (and client CA) as the decision port.
            let admin = listen::serve_admin(
                l,
                engine.clone(),
                auth,
                console,
                server.max_request_bytes,
                tls.as_ref(),
            )?;
            tracing::info!(
                admin.listen = %admin.addr,
                tls = match &tls {
                    None => "off",
                    Some(t) if t.mutual() => "mutual",
                    Some(_) => "on",
                },
                "admin API serving"
            );
            Some(admin)
        }
    };

    let grpc = listen::serve_grpc(
        listener,
        engine.clone(),
        GrpcSettings {
            limits: server.evaluation_limits,
            max_request_bytes: server.max_request_bytes,
            tls: tls.clone(),
        },
    )
    .await?;
    if let Some(current) = &tls {
        background.push(tokio::spawn(crate::tls::watch(
            current.clone(),
            interval,
            engine.metrics().clone(),
        )));
    }
    tracing::info!(
        listen = %grpc.addr,
        "gRPC listening: {}{}",
        grpc.addr,
        match &tls {
            None => " (plain text)",
            Some(t) if t.mutual() => " (TLS, client certificates required)",
            Some(_) => " (TLS)",
        }
    );
    tracing::info!(
        listen = %grpc.addr,
        tls = match &tls {
            None => "off",
            Some(t) if t.mutual() => "mutual",
            Some(_) => "on",
        },
        metrics = %metrics_addr.map(|a| a.to_string()).unwrap_or_else(|| "off".into()),
        rules.version = %engine.rules().version,
        limits.max_concurrent_evaluations = server.evaluation_limits.max_concurrent,
        limits.max_queued_evaluations = server.evaluation_limits.max_queued,
        "riskgate serving"
    );
    Ok(Running {
        addr: grpc.addr,
        metrics_addr,
        admin_addr: admin.as_ref().map(|a| a.addr),
        engine,
        grpc,
        admin,
        background,
        drain_delay: server.drain_delay,
        shutdown_timeout: server.shutdown_timeout,
    })
}

impl Running {
    /// Shuts down in order. Returns false if in-flight calls did not finish
    /// within the shutdown timeout.
    pub async fn shutdown(self) -> bool {
        tracing::info!("shutting down: health NOT_SERVING");
        self.grpc.not_serving().await;
        tokio::time::sleep(self.drain_delay).await;
        tracing::info!("shutting down: closing the listener");
        let finished = self.grpc.stop(self.shutdown_timeout).await;
        if let Some(admin) = self.admin {
            admin.shutdown(self.shutdown_timeout).await;
        }
        // Writes the store still holds (recent decisions, a replica's
        // unmerged deployment-wide counts), bounded by the store's timeout.
        self.engine.flush().await;
        for b in self.background {
            b.abort();
        }
        tracing::info!("shutdown complete");
        finished
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
                let version = r.version.clone();
                // A console publish may have written the file while it was
                // read: then this text is older, and the next tick reads the
                // new one.
                if engine.swap_reloaded_rules(r, || stamp(&path) == now) {
                    tracing::info!(rules.version = %version, path = %path.display(), "rules reloaded");
                    engine.metrics().reload(name, true);
                } else {
                    last = None;
                }
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
