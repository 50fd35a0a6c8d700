//! `riskgate bench` end to end: the real binary against a real server on a
//! free port, briefly. A behavior test: both rows are measured, nothing
//! fails; speed is never asserted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_measures_evaluate_and_the_floor_without_errors() {
    let s = common::start().await;
    let addr = format!("http://{}", s.running.addr);
    let metrics = s.running.metrics_addr.unwrap().to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_riskgate"))
            .args([
                "bench",
                "--metrics-addr",
                &metrics,
                "--addr",
                &addr,
                "--concurrency",
                "4",
                "--duration",
                "2",
                "--warmup",
                "0.5",
                "--users",
                "500",
                "--json",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for row in ["floor", "evaluate"] {
        let r = &v[row];
        assert!(r["calls"].as_u64().unwrap() > 0, "{row}: {r}");
        assert!(r["throughput"].as_f64().unwrap() > 0.0, "{row}: {r}");
        assert!(r["p99_us"].as_u64().unwrap() > 0, "{row}: {r}");
        assert_eq!(r["errors"], serde_json::json!({}), "{row}: {r}");
        // CPU per call, the server's (from its metrics) and the generator's.
        assert!(r["server_cpu_us"].as_f64().unwrap() > 0.0, "{row}: {r}");
        assert!(r["generator_cpu_us"].as_f64().unwrap() > 0.0, "{row}: {r}");
    }
    assert_eq!(v["floor_runs"].as_array().unwrap().len(), 2);
    let actions = v["evaluate"]["actions"].as_object().unwrap();
    assert!(
        actions.get("ALLOW").and_then(|x| x.as_u64()).unwrap_or(0) > 0,
        "{actions:?}"
    );
    assert_eq!(v["evaluate"]["report_errors"], 0);
    // The reports' latency, measured like the Evaluates'.
    let e = &v["evaluate"];
    assert!(e["reports"].as_u64().unwrap() > 0, "{e}");
    let (p50, p99) = (
        e["report_p50_us"].as_u64().unwrap(),
        e["report_p99_us"].as_u64().unwrap(),
    );
    assert!(p50 > 0 && p99 >= p50, "{e}");
    assert!(v["ratios"]["throughput"].as_f64().unwrap() > 0.0);
    s.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_compares_the_redis_store_with_the_memory_store_in_one_run() {
    let redis = common::redis::RedisServer::start();
    let url = redis.url();
    let on_redis = common::start_with(
        riskgate::config::Config::resolve(
            &riskgate::config::Overrides {
                listen: Some("127.0.0.1:0".into()),
                metrics_listen: Some("off".into()),
                ..Default::default()
            },
            move |k| match k {
                "RISKGATE_REDIS_URL" => Some(url.clone()),
                "RISKGATE_HMAC_KEY" => Some("bench-compare-hmac-key".into()),
                _ => None,
            },
        )
        .unwrap(),
    )
    .await;
    let on_memory = common::start().await;
    let addr = format!("http://{}", on_memory.running.addr);
    let other = format!("redis=http://{}", on_redis.running.addr);
    let their_redis = format!("redis={}", redis.url());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_riskgate"))
            .args(["bench", "--addr", &addr, "--compare", &other])
            .args(["--compare-redis", &their_redis])
            .args(["--concurrency", "4", "--duration", "1", "--warmup", "0.3"])
            .args(["--users", "300", "--json"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &v["compare"][0];
    assert_eq!(c["label"], "redis");
    assert!(c["evaluate"]["calls"].as_u64().unwrap() > 0, "{c}");
    assert_eq!(c["evaluate"]["errors"], serde_json::json!({}), "{c}");
    assert_eq!(c["evaluate"]["report_errors"], 0, "{c}");
    assert!(c["evaluate"]["report_p50_us"].as_u64().unwrap() > 0, "{c}");
    assert!(c["throughput_ratio"].as_f64().unwrap() > 0.0, "{c}");
    // Redis's own cost per Evaluate, from its INFO: CPU and commands.
    assert!(c["evaluate"]["redis_cpu_us"].as_f64().unwrap() > 0.0, "{c}");
    assert!(
        c["evaluate"]["redis_commands"].as_f64().unwrap() >= 1.0,
        "{c}"
    );
    assert!(
        v["evaluate"]["redis_commands"].is_null(),
        "no --redis-url: {v}"
    );
    // The Redis server really held the state.
    assert!(
        redis
            .cli(&["DBSIZE"])
            .unwrap()
            .trim()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    on_memory.running.shutdown().await;
    on_redis.running.shutdown().await;
}

#[test]
fn bench_says_clearly_when_no_server_listens() {
    // Bind and drop a listener: the port is free and nothing accepts on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(env!("CARGO_BIN_EXE_riskgate"))
        .args([
            "bench",
            "--addr",
            &format!("http://127.0.0.1:{port}"),
            "--duration",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect to"), "{err}");
}

#[test]
fn bench_refuses_unbounded_runs() {
    let out = Command::new(env!("CARGO_BIN_EXE_riskgate"))
        .args(["bench", "--duration", "100000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--duration"));
}
