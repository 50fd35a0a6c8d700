//! `riskgate serve`.

use anyhow::Context as _;

use crate::config::{Config, Overrides};
use crate::server;
use crate::telemetry;

use super::ServeArgs;

/// Builds the overrides from the flags.
pub fn overrides(a: &ServeArgs) -> Overrides {
    Overrides {
        config_file: a.config.clone(),
        listen: a.listen.clone(),
        metrics_listen: a.metrics_listen.clone(),
        rules: a.rules.clone(),
        model: a.model.clone(),
        log_format: a.log_format,
        drain_delay_ms: a.drain_delay_ms,
    }
}

/// Runs the server until SIGTERM or SIGINT, then shuts down gracefully.
pub async fn run(config: Config) -> anyhow::Result<()> {
    telemetry::init_logging(config.log_format);
    let running = server::start(&config).await.context("cannot start")?;
    shutdown_signal().await;
    // A shutdown cut short by the deadline is still an orderly exit: the
    // server logged which calls were abandoned.
    running.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; SIGINT only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
