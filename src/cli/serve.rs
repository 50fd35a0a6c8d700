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
        admin_listen: a.admin_listen.clone(),
        journal: a.journal.clone(),
    }
}

/// Runs the server until SIGTERM or SIGINT, then shuts down gracefully.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let telemetry = telemetry::init(config.log.format, config.log.otlp_endpoint.as_deref())
        .context("cannot start telemetry")?;
    // Handlers go in before the server announces itself, so a signal sent
    // as soon as it is up is never the default (fatal) one.
    let signals = Signals::install().context("cannot install signal handlers")?;
    let running = server::start(&config).await.context("cannot start")?;
    signals.wait().await;
    // A shutdown cut short by the deadline is still an orderly exit: the
    // server logged which calls were abandoned.
    running.shutdown().await;
    telemetry.shutdown();
    Ok(())
}

#[cfg(unix)]
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => tracing::info!("SIGTERM received"),
            _ = self.int.recv() => tracing::info!("SIGINT received"),
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> std::io::Result<Self> {
        Ok(Signals)
    }

    async fn wait(self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
