//! riskgate — a risk-based adaptive authentication decision service.
//!
//! Modules in reading order:
//! - [`domain`]: the attempt, the decision and the enums they speak.
//! - [`config`]: the only place that reads env and config files.
//! - [`grpc`]: the only code that knows tonic/prost (proto ↔ domain, errors → `Status`).
//! - [`signals`]: the I/O boundary — device parsing, identifier hashing, the store call.
//! - [`store`]: the `Store` trait and the embedded memory store.
//! - [`features`]: the typed feature struct and the catalog of model inputs.
//! - [`model`]: logistic scoring with weights from a JSON file.
//! - [`rules`]: rule files — CEL rules type-checked and compiled, the policy, tests.
//! - [`policy`]: score + rule hits → action, level and acceptable factors.
//! - [`engine`]: the pipeline; [`engine::decide`] is the pure core.
//! - [`replay`]: past logins (RBA dataset CSV) through the same core, and the
//!   published evaluation next to the Freeman et al. baseline.
//! - [`telemetry`]: tracing and Prometheus metrics.
//! - [`tls`]: TLS and mutual TLS for the gRPC listener, certificates reloaded on change.
//! - [`server`]: listeners, health, reflection, reloads, graceful shutdown.
//! - [`simulate`]: synthetic login data in the RBA dataset's CSV layout.
//! - [`train`]: fit the logistic model on labelled logins replayed through the core (linfa; not on the serving path).
//! - [`admin`]: the admin API (profile, forget, trust/revoke a device) on its own listener, with token auth and audit events.
//! - [`cli`]: `serve`, `eval`, `report`, `health`, `bench` (load generator), `replay`,
//!   `simulate`, `train`, `admin`, `rules check|explain`.

pub mod admin;
pub mod cli;
pub mod config;
pub mod domain;
pub mod engine;
pub mod features;
pub mod grpc;
pub mod model;
pub mod policy;
pub mod replay;
pub mod rules;
pub mod server;
pub mod signals;
pub mod simulate;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod train;
