//! Graceful shutdown of the real binary on SIGTERM and SIGINT.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use riskgate::api::pb;
use tonic_health::pb::health_check_response::ServingStatus;

/// `riskgate serve` on a free port, logging `log_format` to a pipe.
fn serve(log_format: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_riskgate"));
    c.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "off",
    ])
    .args(["--log-format", log_format])
    .env_remove("RISKGATE_CONFIG")
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    c
}

struct Server {
    child: Child,
    addr: String,
    log: std::sync::mpsc::Receiver<String>,
}

#[expect(
    clippy::zombie_processes,
    reason = "every test waits for the child in wait_exit"
)]
fn spawn(drain_ms: u64) -> Server {
    let mut child = serve("json")
        .args(["--drain-delay-ms", &drain_ms.to_string()])
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("server did not start");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if v["message"] == "riskgate serving" {
            let addr = v["listen"].as_str().unwrap().to_string();
            return Server {
                child,
                addr,
                log: rx,
            };
        }
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

async fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("server did not exit within {within:?}");
        }
        // Async sleep: the client's connection tasks must keep running to
        // answer the server's GOAWAY/PING handshake.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn request() -> pb::EvaluateRequest {
    pb::EvaluateRequest {
        user_id: "zoe".into(),
        channel: pb::Channel::Web as i32,
        ip_address: "198.51.100.9".into(),
        credential_result: pb::CredentialResult::Valid as i32,
        ..Default::default()
    }
}

#[tokio::test]
async fn sigterm_turns_health_not_serving_drains_and_exits_zero() {
    let mut server = spawn(1500);
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let mut risk = pb::risk_service_client::RiskServiceClient::new(channel);
    risk.evaluate(request()).await.unwrap();

    let mut watch = health
        .watch(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status, ServingStatus::Serving as i32);

    signal(&server.child, "-TERM");
    let next = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .expect("no health change after SIGTERM")
        .unwrap()
        .unwrap();
    assert_eq!(next.status, ServingStatus::NotServing as i32);

    // During the drain delay, calls on the open connection still complete.
    let r = risk.evaluate(request()).await.unwrap().into_inner();
    assert_ne!(r.action, pb::Action::Unspecified as i32);

    // The watch stream ends when the server stops serving health.
    let end = tokio::time::timeout(Duration::from_secs(5), watch.message()).await;
    assert!(
        matches!(end, Ok(Ok(None)) | Ok(Err(_))),
        "watch did not end: {end:?}"
    );
    let status = wait_exit(&mut server.child, Duration::from_secs(8)).await;
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
    let log: Vec<String> = server.log.try_iter().collect();
    assert!(
        log.iter().any(|l| l.contains("shutdown complete")),
        "{log:?}"
    );
    assert!(
        !log.iter().any(|l| l.contains("did not finish in time")),
        "the drain hit the deadline: {log:?}"
    );
}

#[tokio::test]
async fn sigint_exits_zero() {
    let mut server = spawn(0);
    signal(&server.child, "-INT");
    let status = wait_exit(&mut server.child, Duration::from_secs(8)).await;
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_bad_config_exits_64_naming_the_problem() {
    let out = Command::new(env!("CARGO_BIN_EXE_riskgate"))
        .args(["serve", "--listen", "not-an-address"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listen: `not-an-address`"), "{err}");
}

/// Reads JSON log lines until `pred` matches one (or 10 s pass).
fn find_log(server: &Server, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let line = server
            .log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("log line not found");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if pred(&v) {
            return v;
        }
    }
}

#[tokio::test]
async fn every_rpc_logs_inside_a_span_with_its_request_id() {
    let mut server = spawn(0);
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut risk = pb::risk_service_client::RiskServiceClient::new(channel);

    // The request's own field names the request…
    let mut r = request();
    r.request_id = "req-field-1".into();
    risk.evaluate(r).await.unwrap();
    let v = find_log(&server, |v| v["message"] == "decision");
    assert_eq!(v["span"]["name"], "rpc", "{v}");
    assert_eq!(v["span"]["rpc.method"], "Evaluate", "{v}");
    assert_eq!(v["span"]["request.id"], "req-field-1", "{v}");

    // …or, without it, the x-request-id header; ReportOutcome too.
    let mut req = tonic::Request::new(request());
    req.metadata_mut()
        .insert("x-request-id", "req-header-2".parse().unwrap());
    let d = risk.evaluate(req).await.unwrap().into_inner();
    let v = find_log(&server, |v| v["message"] == "decision");
    assert_eq!(v["span"]["request.id"], "req-header-2", "{v}");
    let mut rep = tonic::Request::new(pb::ReportOutcomeRequest {
        decision_id: d.decision_id,
        outcome: pb::Outcome::LoginSucceeded as i32,
        factor: None,
    });
    rep.metadata_mut()
        .insert("x-request-id", "req-report-3".parse().unwrap());
    risk.report_outcome(rep).await.unwrap();
    let v = find_log(&server, |v| v["message"] == "outcome");
    assert_eq!(v["span"]["rpc.method"], "ReportOutcome", "{v}");
    assert_eq!(v["span"]["request.id"], "req-report-3", "{v}");

    signal(&server.child, "-TERM");
    assert!(
        wait_exit(&mut server.child, Duration::from_secs(15))
            .await
            .success()
    );
}

#[tokio::test]
async fn text_logs_into_a_pipe_carry_no_terminal_colours() {
    let mut child = serve("text").spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let serving = line.contains("riskgate serving");
            seen.push(line);
            if serving {
                break;
            }
        }
        seen
    });
    let seen = tokio::task::spawn_blocking(move || reader.join().unwrap())
        .await
        .unwrap();
    signal(&child, "-TERM");
    assert!(
        wait_exit(&mut child, Duration::from_secs(15))
            .await
            .success()
    );
    let last = seen.last().expect("no log line");
    assert!(last.contains("riskgate serving"), "{seen:?}");
    for line in &seen {
        assert!(
            !line.contains('\u{1b}'),
            "escape code in a piped log: {line:?}"
        );
    }
}

/// A fresh `serve` of the shipped configuration starts without a rule-file
/// warning, and says where it listens: gRPC, metrics, the journal.
#[test]
fn the_shipped_configuration_starts_clean_and_says_where_it_listens() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_riskgate"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .args(["--log-format", "json", "--journal"])
        .arg(dir.path().join("journal.db"))
        .env_remove("RISKGATE_CONFIG")
        .env_remove("RISKGATE_RULES")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        let done = line.contains("riskgate serving");
        seen.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = seen.join("\n");
    assert!(!text.contains("rule file warning"), "{text}");
    for said in ["gRPC listening", "metrics listening", "decision journal"] {
        assert!(text.contains(said), "`{said}` missing:\n{text}");
    }
}
