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
//! - [`telemetry`]: tracing and Prometheus metrics.
//! - [`server`]: listeners, health, reflection, reloads, graceful shutdown.
//! - [`simulate`]: synthetic login data in the RBA dataset's CSV layout.
//! - [`cli`]: `serve`, `eval`, `report`, `health`, `bench` (load generator), `rules check|explain`.

pub mod cli;
pub mod config;
pub mod domain;
pub mod engine;
pub mod features;
pub mod grpc;
pub mod model;
pub mod policy;
pub mod rules;
pub mod server;
pub mod signals;
pub mod simulate;
pub mod store;
pub mod telemetry;
