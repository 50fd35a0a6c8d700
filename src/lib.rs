//! riskgate — a risk-based adaptive authentication decision service.
//!
//! The serving path, in reading order:
//! - [`domain`]: the attempt, the decision and the enums they speak.
//! - [`core`]: the pure decision — inputs as plain data, features, the
//!   Freeman et al. ratio, the model, CEL rules, the policy;
//!   [`core::evaluate`] → [`domain::Decision`]. Imports only `domain`.
//! - [`signals`]: the I/O that fills the core's inputs — user-agent parsing,
//!   GeoIP lookups.
//! - [`store`]: the `Store` trait, the embedded memory store, Redis.
//! - [`journal`]: the decision journal (SQLite or PostgreSQL): what was
//!   decided, with the features and the outcomes, written off the hot path.
//! - [`engine`]: I/O orchestration around [`core::evaluate`]: parse, look
//!   up, the store call under its deadline, metrics, the decision log; the
//!   operations the admin API needs.
//! - [`api`]: the edge — gRPC services (risk, admin), conversion, admission,
//!   auth and audit, clients, and the single error → `Status` table. The
//!   only code that names tonic or protobuf types.
//! - [`config`]: the only place that reads env and config files, in sections.
//! - [`telemetry`]: tracing and Prometheus metrics.
//! - [`tls`]: TLS and mutual TLS for the listeners, certificates reloaded on change.
//! - [`server`]: start everything a [`config::Config`] describes; reloads;
//!   graceful shutdown.
//!
//! Offline tools, on the same core:
//! - [`tools`]: `replay` (past logins through the core, next to the Freeman
//!   baseline), `simulate` (synthetic logins), `train` (fit the model),
//!   `bench` (load generator).
//! - [`cli`]: command-line parsing and the subcommands' output.

pub mod api;
pub mod cli;
pub mod config;
pub mod console;
pub mod core;
pub mod domain;
pub mod engine;
pub mod journal;
pub mod server;
pub mod signals;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod tools;
