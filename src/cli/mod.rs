//! The command line: `serve`, `eval`, `report`, `rules check`, `rules explain`,
//! `bench`, `replay`, `simulate`, `train`.

pub mod admin;

pub mod eval;
pub mod journal;
pub mod replay;
pub mod rules;
pub mod serve;
pub mod simulate;
pub mod train;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::telemetry::LogFormat;

/// Risk-based adaptive authentication: ALLOW, STEP_UP or DENY for every login.
#[derive(Debug, Parser)]
#[command(name = "riskgate", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gRPC decision service.
    Serve(ServeArgs),
    /// Ask a running server for a decision, as a login service would.
    Eval(eval::EvalArgs),
    /// Report the outcome of a decision to a running server.
    Report(eval::ReportArgs),
    /// Check a running server's gRPC health (exit 0 when SERVING).
    Health {
        /// Server address.
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        addr: String,
        #[command(flatten)]
        tls: crate::api::client::ClientTls,
    },
    /// Check and explain rule files.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Support and privacy operations on a running server's admin API.
    Admin(admin::AdminArgs),
    /// Load-test a running server: a realistic Evaluate mix against the
    /// health-check floor, side by side (bounded; stops by itself).
    Bench(crate::tools::bench::BenchArgs),
    /// Replay past logins (RBA dataset CSV) through the decision core, next
    /// to the Freeman et al. baseline, and measure detection quality.
    Replay(replay::ReplayArgs),
    /// Write synthetic logins (legitimate users and labelled attackers) as
    /// CSV in the RBA dataset's columns plus `Attacker`.
    Simulate(simulate::SimulateArgs),
    /// Fit the logistic model on labelled logins (RBA dataset CSV replayed
    /// through the core, or the decision journal); write models/<name>.json
    /// with its held-out metrics.
    Train(train::TrainArgs),
    /// Re-decide journaled decisions with a candidate rule file or model
    /// next to the serving ones, and report what would change.
    Backtest(journal::BacktestArgs),
    /// The decision journal.
    #[command(subcommand)]
    Journal(journal::JournalCommand),
    /// Print the OpenAPI 3.1 document of the HTTP/JSON face, derived from
    /// the proto (the repository keeps it in
    /// proto/riskgate/v1/riskgate.openapi.json).
    Openapi,
}

/// `riskgate serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Config file (TOML). Also RISKGATE_CONFIG.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// gRPC address [default: 127.0.0.1:50051]. Also RISKGATE_LISTEN.
    #[arg(long)]
    pub listen: Option<String>,
    /// Prometheus metrics address, or `off` [default: 127.0.0.1:9464]. Also RISKGATE_METRICS_LISTEN.
    #[arg(long)]
    pub metrics_listen: Option<String>,
    /// Rule file (watched and hot-reloaded) [default: the shipped rules]. Also RISKGATE_RULES.
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Model file (watched and hot-reloaded) [default: the shipped model]. Also RISKGATE_MODEL.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Log format [default: text]. Also RISKGATE_LOG_FORMAT.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Milliseconds between health going NOT_SERVING and the listener closing [default: 0].
    #[arg(long)]
    pub drain_delay_ms: Option<u64>,
    /// Admin API address, or `off` [default: off]; needs an admin token. Also RISKGATE_ADMIN_LISTEN.
    #[arg(long)]
    pub admin_listen: Option<String>,
    /// Decision journal: a SQLite file path, a postgres:// URL, or `off` [default: riskgate-journal.db]. Also RISKGATE_JOURNAL.
    #[arg(long)]
    pub journal: Option<String>,
    /// Validate the configuration, print it resolved (secrets redacted) and exit.
    #[arg(long)]
    pub print_config: bool,
}

/// `riskgate rules …`.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Validate a rule file and run its tests; exit 1 with every error.
    Check {
        /// The rule file.
        file: PathBuf,
    },
    /// Show which rules fire for a feature struct, and why.
    Explain {
        /// The rule file.
        file: PathBuf,
        /// Features as JSON (a partial struct; unset fields take defaults), or @FILE.
        #[arg(long)]
        features: String,
        /// The model score to assume.
        #[arg(long, default_value_t = 0.0)]
        score: f64,
    },
}
