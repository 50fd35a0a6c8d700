//! The Grafana dashboard and the Prometheus alerts reference only metrics a
//! real server exposes: start one, exercise every metric family (decisions,
//! reports, a failing store, a rejected request, a rule that errors at run
//! time, a rejected reload), fetch /metrics over HTTP, and run
//! `deploy/check.py` on it — and `promtool check rules` where installed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::*;
use riskgate::api::pb;
use riskgate::core::inputs::{Observation, StoreView};
use riskgate::core::keys::{Dim, IdHasher, Key};
use riskgate::core::model::Model;
use riskgate::core::rules::RuleSet;
use riskgate::domain::UnixMillis;
use riskgate::engine::{Engine, EngineSettings};
use riskgate::server;
use riskgate::store::memory::{MemoryLimits, MemoryStore};
use riskgate::store::{
    DecisionRecord, Forgotten, Mark, OutcomeReport, ReportEffect, Store, StoreError, UserProfile,
};
use riskgate::telemetry::Metrics;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The memory store, except that it is down for one user.
struct FlakyStore {
    inner: MemoryStore,
    down_for: Key,
}

#[async_trait]
impl Store for FlakyStore {
    async fn observe(&self, obs: &Observation) -> Result<StoreView, StoreError> {
        if obs.user == self.down_for {
            return Err(StoreError::Unavailable("down for this test".into()));
        }
        self.inner.observe(obs).await
    }

    async fn report(&self, report: &OutcomeReport) -> Result<ReportEffect, StoreError> {
        self.inner.report(report).await
    }

    fn name(&self) -> &'static str {
        "flaky"
    }

    async fn profile(&self, user: Key) -> Result<UserProfile, StoreError> {
        self.inner.profile(user).await
    }

    async fn forget(&self, user: Key) -> Result<Forgotten, StoreError> {
        self.inner.forget(user).await
    }

    async fn mark_device(
        &self,
        user: Key,
        device: Key,
        mark: Mark,
        at: UnixMillis,
    ) -> Result<bool, StoreError> {
        self.inner.mark_device(user, device, mark, at).await
    }

    fn record_decision(
        &self,
        obs: &Observation,
        answer: &DecisionRecord<'_>,
    ) -> Result<(), StoreError> {
        self.inner.record_decision(obs, answer)
    }
}

/// A shadow rule that fails at run time whenever the user has no failure in
/// the last minute (division by zero), so rule errors are counted.
const ERRING_RULE: &str = r#"
[[rule]]
name = "deploy_check_division"
description = "fails at run time when the user has no failure in the last minute"
when = "velocity.ip_attempts_1h / velocity.user_failures_1m > 100"
effect = "step_up"
mode = "shadow"
"#;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

async fn fetch_metrics(addr: std::net::SocketAddr) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: riskgate\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("chunked"),
        "unexpected chunked body"
    );
    body.to_string()
}

fn check(metrics: &Path) -> std::process::Output {
    check_with(metrics, &[])
}

fn check_with(metrics: &Path, extra: &[&str]) -> std::process::Output {
    Command::new("python3")
        .arg(repo("deploy/check.py"))
        .args(extra)
        .arg("--metrics")
        .arg(metrics)
        .arg("--dashboard")
        .arg(repo("deploy/grafana/riskgate.json"))
        .arg("--alerts")
        .arg(repo("deploy/prometheus/alerts.yml"))
        .output()
        .expect("python3 is needed to check deploy/")
}

/// A fresh server, before any traffic, already exports a sample of every
/// series the dashboard and the alerts query (at zero), so `increase()`
/// sees the first event and no panel says "No data".
#[tokio::test]
async fn a_fresh_server_exports_every_series_deploy_queries() {
    let s = start().await;
    let text = fetch_metrics(s.running.metrics_addr.unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metrics.txt");
    std::fs::write(&file, &text).unwrap();
    let out = check_with(&file, &["--samples"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for series in [
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "riskgate_rejected_requests_total{",
        "riskgate_reloads_total{",
        "riskgate_rule_evaluation_errors_total{",
        "riskgate_store_errors_total{",
    ] {
        assert!(
            text.contains(series),
            "{series} missing from a fresh server"
        );
    }
}

#[tokio::test]
async fn dashboard_and_alerts_reference_only_exposed_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let rules_path = dir.path().join("rules.toml");
    let shipped = std::fs::read_to_string(repo("rules/default.toml")).unwrap();
    std::fs::write(&rules_path, format!("{shipped}\n{ERRING_RULE}")).unwrap();

    let mut config = config();
    config.sources.rules = Some(rules_path.clone());
    config.sources.reload_interval = Duration::from_millis(100);
    let hasher = IdHasher::new(b"deploy-test");
    let store = FlakyStore {
        inner: MemoryStore::new(MemoryLimits::default()),
        down_for: hasher.key(Dim::User, b"store-down"),
    };
    let engine = Engine::new(
        Arc::new(store),
        hasher,
        RuleSet::load(&rules_path).unwrap(),
        Model::embedded().unwrap(),
        None,
        EngineSettings::default(),
        Arc::new(Metrics::new()),
    );
    let running = server::start_with_engine(&config, Arc::new(engine))
        .await
        .unwrap();
    let mut client = connect(&running).await;

    // Decisions and a verified success (Evaluate, ReportOutcome, both store ops).
    for user in ["ann", "ben", "cat"] {
        let r = client
            .evaluate(attempt(user, "198.51.100.10", "laptop-1", CHROME))
            .await
            .unwrap()
            .into_inner();
        client
            .report_outcome(pb::ReportOutcomeRequest {
                decision_id: r.decision_id,
                outcome: pb::Outcome::LoginSucceeded as i32,
                factor: None,
            })
            .await
            .unwrap();
    }
    // A store failure: degraded, counted, still answered.
    let r = client
        .evaluate(attempt("store-down", "198.51.100.11", "laptop-2", CHROME))
        .await
        .unwrap()
        .into_inner();
    assert!(r.degraded_signals.contains(&"store".to_string()), "{r:?}");
    // A request refused before evaluation.
    let e = client
        .evaluate(attempt("", "198.51.100.12", "laptop-3", CHROME))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    // A rejected reload: the previous rules keep serving, the failure is counted.
    std::fs::write(&rules_path, "this is [not a rule file").unwrap();
    let metrics_addr = running.metrics_addr.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = fetch_metrics(metrics_addr).await;
        if text.contains(r#"riskgate_reloads_total{kind="rules",result="failure"}"#) {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the bad rule file was not rejected in time:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for family in [
        "riskgate_store_errors_total",
        "riskgate_rule_evaluation_errors_total",
        "riskgate_rejected_requests_total",
        "riskgate_degraded_decisions_total{signal=\"store\"}",
    ] {
        assert!(text.contains(family), "{family} missing:\n{text}");
    }

    let file = dir.path().join("metrics.txt");
    std::fs::write(&file, &text).unwrap();
    let out = check(&file);
    assert!(
        out.status.success(),
        "deploy/check.py failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    match Command::new("promtool")
        .arg("check")
        .arg("rules")
        .arg(repo("deploy/prometheus/alerts.yml"))
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "promtool check rules failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => eprintln!("promtool not installed: skipped `promtool check rules`"),
    }
    running.shutdown().await;
}

#[test]
fn the_check_fails_on_a_metric_the_server_does_not_expose() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metrics.txt");
    std::fs::write(
        &file,
        "# HELP riskgate_in_flight_requests RPCs being served.\n\
         # TYPE riskgate_in_flight_requests gauge\n\
         riskgate_in_flight_requests 0\n# EOF\n",
    )
    .unwrap();
    let out = check(&file);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`riskgate_decisions_total` is not exposed"),
        "{err}"
    );
}
