//! The listeners: the decision port (`RiskService` over gRPC and
//! HTTP/JSON, standard health, reflection), the admin port (`RiskAdmin`), and the metrics port
//! (Prometheus text). TLS, when configured, is terminated by [`crate::tls`]
//! and fed to tonic as a stream of connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::api::admin::AdminService;
use crate::api::admission::Limits;
use crate::api::auth::TokenAuth;
use crate::api::http;
use crate::api::pb;
use crate::api::pb::risk_admin_server::RiskAdminServer;
use crate::api::pb::risk_service_server::RiskServiceServer;
use crate::api::risk::RiskService;
use crate::engine::Engine;
use crate::telemetry::Metrics;
use crate::tls;

/// Why a listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("reflection: {0}")]
    Reflection(String),
    #[error("cannot read the listener's address: {0}")]
    Address(std::io::Error),
}

type ServeTask = JoinHandle<Result<(), tonic::transport::Error>>;

/// What the decision port serves with.
pub struct GrpcSettings {
    pub limits: Limits,
    pub max_request_bytes: usize,
    /// Terminate TLS with this (rotating) configuration.
    pub tls: Option<Arc<tls::Current>>,
}

/// The decision port, serving.
pub struct GrpcServer {
    pub addr: SocketAddr,
    health: HealthReporter,
    /// What `GET /readyz` answers: true while health says SERVING.
    ready: Arc<AtomicBool>,
    stop: oneshot::Sender<()>,
    task: ServeTask,
    /// The TLS accept loop, when TLS is on.
    acceptor: Option<JoinHandle<()>>,
}

fn spawn_serve<S>(
    router: tonic::transport::server::Router,
    listener: TcpListener,
    tls: Option<&Arc<tls::Current>>,
    metrics: &Arc<Metrics>,
    stopped: S,
) -> (ServeTask, Option<JoinHandle<()>>)
where
    S: Future<Output = ()> + Send + 'static,
{
    match tls {
        // TCP_NODELAY: tonic ignores its own nodelay setting on this path,
        // and with Nagle on, small responses stall ~40 ms on delayed ACKs.
        None => (
            tokio::spawn(router.serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                stopped,
            )),
            None,
        ),
        Some(current) => {
            let (incoming, acceptor) = tls::incoming(listener, current.clone(), metrics.clone());
            (
                tokio::spawn(router.serve_with_incoming_shutdown(incoming, stopped)),
                Some(acceptor),
            )
        }
    }
}

/// Serves `RiskService`, health (SERVING) and reflection on `listener`.
pub async fn serve_grpc(
    listener: TcpListener,
    engine: Arc<Engine>,
    settings: GrpcSettings,
) -> Result<GrpcServer, ListenError> {
    let addr = listener.local_addr().map_err(ListenError::Address)?;
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
        .map_err(|e| ListenError::Reflection(e.to_string()))?;
    let reflection_alpha = reflection_builder()
        .build_v1alpha()
        .map_err(|e| ListenError::Reflection(e.to_string()))?;
    let metrics = engine.metrics().clone();
    let service = Arc::new(RiskService::with_limits(engine, settings.limits));
    let risk = RiskServiceServer::from_arc(service.clone())
        .max_decoding_message_size(settings.max_request_bytes);
    // The HTTP/JSON face shares the port: its paths are not gRPC paths, and
    // anything else gets gRPC's UNIMPLEMENTED or a JSON 404 by content type.
    let ready = Arc::new(AtomicBool::new(true));
    let routes = tonic::service::Routes::new(health_service)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(risk)
        .into_axum_router()
        .merge(http::routes(
            service,
            ready.clone(),
            settings.max_request_bytes,
        ))
        .fallback(http::fallback);
    let router = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .accept_http1(true)
        .add_routes(tonic::service::Routes::from(routes));
    let (stop, stopped) = oneshot::channel::<()>();
    let (task, acceptor) = spawn_serve(router, listener, settings.tls.as_ref(), &metrics, async {
        let _ = stopped.await;
    });
    Ok(GrpcServer {
        addr,
        health,
        ready,
        stop,
        task,
        acceptor,
    })
}

impl GrpcServer {
    /// Health turns NOT_SERVING (the first step of a graceful shutdown).
    pub async fn not_serving(&self) {
        self.ready.store(false, Ordering::Relaxed);
        self.health
            .set_not_serving::<RiskServiceServer<RiskService>>()
            .await;
        self.health
            .set_service_status("", ServingStatus::NotServing)
            .await;
    }

    /// Ends the health Watch streams (they would otherwise hold the server
    /// open until the deadline), stops accepting, and waits up to
    /// `deadline` for in-flight calls. False if they did not finish.
    pub async fn stop(mut self, deadline: Duration) -> bool {
        let risk_name = <RiskServiceServer<RiskService> as tonic::server::NamedService>::NAME;
        self.health.clear_service_status(risk_name).await;
        self.health.clear_service_status("").await;
        let _ = self.stop.send(());
        let finished = match tokio::time::timeout(deadline, self.task).await {
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
                tracing::warn!(timeout = ?deadline, "in-flight calls did not finish in time");
                false
            }
        };
        if let Some(a) = self.acceptor {
            a.abort();
        }
        finished
    }
}

/// The admin listener, running.
pub struct AdminServer {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: ServeTask,
    acceptor: Option<JoinHandle<()>>,
}

impl AdminServer {
    /// Stops accepting and waits up to `deadline` for in-flight calls.
    pub async fn shutdown(self, deadline: Duration) {
        let _ = self.stop.send(());
        if tokio::time::timeout(deadline, self.task).await.is_err() {
            tracing::warn!("admin calls did not finish in time");
        }
        if let Some(a) = self.acceptor {
            a.abort();
        }
    }
}

/// Serves the admin API and the analyst console on `listener` (its own
/// port, never the decision port), under `tls` when given.
pub fn serve_admin(
    listener: TcpListener,
    engine: Arc<Engine>,
    auth: TokenAuth,
    console: Arc<crate::console::Console>,
    max_request_bytes: usize,
    tls: Option<&Arc<tls::Current>>,
) -> Result<AdminServer, ListenError> {
    let addr = listener.local_addr().map_err(ListenError::Address)?;
    let metrics = engine.metrics().clone();
    let service = RiskAdminServer::new(AdminService::new(engine, auth))
        .max_decoding_message_size(max_request_bytes);
    // The analyst console shares the admin port (HTTP/1.1 and HTTP/2, the
    // same TLS); gRPC calls are told apart by path.
    let routes = tonic::service::Routes::new(service)
        .into_axum_router()
        .merge(crate::console::routes(console))
        .fallback(http::fallback);
    let router = tonic::transport::Server::builder()
        .accept_http1(true)
        .add_routes(tonic::service::Routes::from(routes));
    let (stop, stopped) = oneshot::channel::<()>();
    let (task, acceptor) = spawn_serve(router, listener, tls, &metrics, async {
        let _ = stopped.await;
    });
    Ok(AdminServer {
        addr,
        stop,
        task,
        acceptor,
    })
}

/// Serves `/metrics` (Prometheus text) and `/healthz` on `listener`.
pub async fn serve_metrics(listener: TcpListener, metrics: Arc<Metrics>) {
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        metrics.render(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }));
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "metrics listener failed");
    }
}
