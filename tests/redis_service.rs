//! The service on the Redis store: faults (Redis killed, Redis slow) and
//! several replicas sharing one Redis.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::redis::RedisServer;
use common::*;
use riskgate::api::pb;
use riskgate::config::{Config, Overrides};

const HMAC: &str = "shared-hmac-key-for-all-replicas";
const STORE_TIMEOUT_MS: u64 = 200;

fn redis_config(redis: &RedisServer) -> Config {
    let url = redis.url();
    Config::resolve(
        &Overrides {
            listen: Some("127.0.0.1:0".into()),
            metrics_listen: Some("off".into()),
            ..Overrides::default()
        },
        move |k| match k {
            "RISKGATE_REDIS_URL" => Some(url.clone()),
            "RISKGATE_HMAC_KEY" => Some(HMAC.into()),
            "RISKGATE_STORE_TIMEOUT_MS" => Some(STORE_TIMEOUT_MS.to_string()),
            _ => None,
        },
    )
    .unwrap()
}

fn store_errors(s: &TestServer) -> u64 {
    let text = engine(s).metrics().render();
    text.lines()
        .filter(|l| l.starts_with("riskgate_store_errors_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

async fn eval(s: &mut TestServer, r: pb::EvaluateRequest) -> (pb::EvaluateResponse, Duration) {
    let started = Instant::now();
    let resp = s.client.evaluate(r).await.unwrap().into_inner();
    (resp, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluate_degrades_when_redis_dies_and_recovers_when_it_returns() {
    let mut redis = RedisServer::start();
    let mut s = start_with(redis_config(&redis)).await;
    let a = || attempt("ivan", "198.51.100.50", "dev-i", CHROME);

    let (ok, _) = eval(&mut s, a()).await;
    assert!(
        !ok.degraded_signals.contains(&"store".to_string()),
        "{ok:?}"
    );
    assert_eq!(store_errors(&s), 0);

    redis.kill();
    for i in 0..3 {
        let (r, took) = eval(&mut s, a()).await;
        assert!(
            r.degraded_signals.contains(&"store".to_string()),
            "{i}: {r:?}"
        );
        assert!(
            codes(&r).contains(&"store_unavailable".to_string()),
            "{r:?}"
        );
        assert_eq!(action(&r), pb::Action::StepUp, "{r:?}");
        assert!(
            took < Duration::from_millis(STORE_TIMEOUT_MS + 800),
            "answered in {took:?}"
        );
    }
    assert!(store_errors(&s) >= 3, "{}", engine(&s).metrics().render());

    // Back on the same port: the service recovers without a restart.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (r, _) = eval(&mut s, a()).await;
        if !r.degraded_signals.contains(&"store".to_string()) {
            break;
        }
        assert!(Instant::now() < deadline, "never recovered: {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_redis_hits_the_store_deadline_instead_of_stalling() {
    let redis = RedisServer::start();
    let mut s = start_with(redis_config(&redis)).await;
    let a = || attempt("judy", "198.51.100.60", "dev-j", CHROME);
    let (ok, _) = eval(&mut s, a()).await;
    assert!(
        !ok.degraded_signals.contains(&"store".to_string()),
        "{ok:?}"
    );

    // Redis stops answering for two seconds.
    let port = redis.port.to_string();
    let sleeper = std::thread::spawn(move || {
        std::process::Command::new("redis-cli")
            .args(["-p", &port, "DEBUG", "SLEEP", "2"])
            .output()
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (r, took) = eval(&mut s, a()).await;
    assert!(r.degraded_signals.contains(&"store".to_string()), "{r:?}");
    assert!(
        took < Duration::from_millis(STORE_TIMEOUT_MS + 500),
        "answered in {took:?}"
    );
    sleeper.join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (r, _) = eval(&mut s, a()).await;
        if !r.degraded_signals.contains(&"store".to_string()) {
            break;
        }
        assert!(Instant::now() < deadline, "never recovered: {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_one_redis_share_velocity_and_profiles() {
    let redis = RedisServer::start();
    let mut a = start_with(redis_config(&redis)).await;
    let mut b = start_with(redis_config(&redis)).await;

    // A spray from one IP, alternating between the replicas.
    let mut last = None;
    for i in 0..30 {
        let mut r = attempt(
            &format!("victim{i}"),
            "203.0.113.66",
            "",
            "python-requests/2.31",
        );
        r.channel = pb::Channel::Api as i32;
        r.credential_result = pb::CredentialResult::Invalid as i32;
        let s = if i % 2 == 0 { &mut a } else { &mut b };
        let (resp, _) = eval(s, r).await;
        assert!(
            resp.degraded_signals.iter().all(|d| d != "store"),
            "{resp:?}"
        );
        last = Some(resp);
    }
    let last = last.unwrap();
    let c = codes(&last);
    assert!(c.contains(&"ip_failure_burst".to_string()), "{c:?}");
    assert!(c.contains(&"password_spray_source".to_string()), "{c:?}");
    assert_eq!(action(&last), pb::Action::Deny, "{last:?}");

    // A device learned through A is known to B.
    let (first, _) = eval(
        &mut a,
        attempt("kate", "198.51.100.70", "kate-laptop", CHROME),
    )
    .await;
    assert!(codes(&first).contains(&"new_user".to_string()));
    let rep = b
        .client
        .report_outcome(pb::ReportOutcomeRequest {
            decision_id: first.decision_id.clone(),
            outcome: pb::Outcome::LoginSucceeded as i32,
            factor: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(rep.profile_updated, "B verifies and applies A's decision");
    let (second, _) = eval(
        &mut b,
        attempt("kate", "198.51.100.70", "kate-laptop", CHROME),
    )
    .await;
    assert!(
        !codes(&second).contains(&"new_user".to_string()),
        "{second:?}"
    );
    assert!(
        !codes(&second).contains(&"new_device".to_string()),
        "{second:?}"
    );
    assert!(second.score < first.score);
    let (third, _) = eval(&mut a, attempt("kate", "192.0.2.9", "kate-phone", FIREFOX)).await;
    assert!(
        codes(&third).contains(&"new_device".to_string()),
        "{third:?}"
    );

    a.running.shutdown().await;
    b.running.shutdown().await;
}
