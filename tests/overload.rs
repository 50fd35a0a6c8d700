//! Overload protection against a real slow dependency: a private
//! `redis-server` stalled with `DEBUG SLEEP`. With 2 evaluations running
//! and 4 queued, a flood of 200 concurrent callers gets RESOURCE_EXHAUSTED
//! at once for everything beyond, the admitted calls finish within a bound
//! set by the store deadline, refused calls do no work, a queued call whose
//! gRPC deadline passes is answered DEADLINE_EXCEEDED, and the real
//! binary's memory stays flat over repeated floods.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::redis::RedisServer;
use common::*;
use riskgate::api::pb::risk_service_client::RiskServiceClient;
use riskgate::config::{Config, Overrides};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use tonic::transport::Channel;

const HMAC: &str = "overload-test-hmac-key-0123456789";
const STORE_TIMEOUT_MS: u64 = 300;
const CALLERS: usize = 200;

fn limited_config(redis: &RedisServer, concurrent: usize, queued: usize) -> Config {
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
            "RISKGATE_MAX_CONCURRENT_EVALUATIONS" => Some(concurrent.to_string()),
            "RISKGATE_MAX_QUEUED_EVALUATIONS" => Some(queued.to_string()),
            _ => None,
        },
    )
    .unwrap()
}

/// Redis stops answering for `seconds` (a thread runs `DEBUG SLEEP`);
/// returns once a PING goes unanswered, so the stall has begun.
async fn stall(redis: &RedisServer, seconds: f64) -> std::thread::JoinHandle<()> {
    let port = redis.port.to_string();
    let sleeper = std::thread::spawn(move || {
        let out = Command::new("redis-cli")
            .args(["-p", &port, "DEBUG", "SLEEP", &seconds.to_string()])
            .output()
            .unwrap();
        assert!(out.status.success());
    });
    // A PING unanswered for 200 ms: the stall has begun (a busy machine
    // does not delay a PING that long).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "redis never stalled");
        let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", redis.port))
            .await
            .unwrap();
        conn.write_all(b"PING\r\n").await.unwrap();
        let mut buf = [0u8; 16];
        if tokio::time::timeout(Duration::from_millis(200), conn.read(&mut buf))
            .await
            .is_err()
        {
            return sleeper;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn channels(addr: &str, n: usize) -> Vec<Channel> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(
            Channel::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect()
                .await
                .unwrap(),
        );
    }
    v
}

struct Flood {
    ok: Vec<Duration>,
    exhausted: Vec<Duration>,
    other: Vec<(Code, String)>,
}

/// CALLERS concurrent Evaluate calls, 8 per connection; every call's code
/// and latency. Bounded: the whole flood must end within 30 s.
async fn flood(channels: &[Channel]) -> Flood {
    let mut tasks = Vec::new();
    for i in 0..CALLERS {
        let mut client = RiskServiceClient::new(channels[i % channels.len()].clone());
        tasks.push(tokio::spawn(async move {
            let user = format!("flood-user-{}", i % 20);
            let started = Instant::now();
            let r = client
                .evaluate(attempt(&user, "198.51.100.77", "dev-flood", CHROME))
                .await;
            (
                r.map(|_| ())
                    .map_err(|s| (s.code(), s.message().to_string())),
                started.elapsed(),
            )
        }));
    }
    let mut f = Flood {
        ok: Vec::new(),
        exhausted: Vec::new(),
        other: Vec::new(),
    };
    let all = async {
        for t in tasks {
            match t.await.unwrap() {
                (Ok(()), took) => f.ok.push(took),
                (Err((Code::ResourceExhausted, _)), took) => f.exhausted.push(took),
                (Err(e), _) => f.other.push(e),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), all)
        .await
        .expect("the flood did not end");
    f
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn sum_of(text: &str, prefix: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_beyond_the_limits_is_refused_fast_and_admitted_calls_stay_bounded() {
    let redis = RedisServer::start();
    let s = start_with(limited_config(&redis, 2, 4)).await;
    let chans = channels(&s.running.addr.to_string(), CALLERS / 8).await;
    let sleeper = stall(&redis, 2.5).await;
    let mut f = flood(&chans).await;
    sleeper.join().unwrap();

    assert!(f.other.is_empty(), "unexpected answers: {:?}", f.other);
    assert_eq!(f.ok.len() + f.exhausted.len(), CALLERS);
    // The first 2 + 4 arrivals are admitted whatever the timing; the rest
    // arrive while the slots wait on the stalled store.
    assert!(f.ok.len() >= 6, "{} admitted", f.ok.len());
    assert!(
        f.exhausted.len() >= CALLERS / 2,
        "only {} of {CALLERS} refused",
        f.exhausted.len()
    );
    let ok_max = *f.ok.iter().max().unwrap();
    let refused_median = median(&mut f.exhausted);
    eprintln!(
        "flood: {} admitted (slowest {ok_max:?}), {} refused (median {refused_median:?}, slowest {:?})",
        f.ok.len(),
        f.exhausted.len(),
        f.exhausted.last().unwrap()
    );
    // A refusal does not wait for the store; an admitted call waits at most
    // for its queue turn and its own store deadline (3 rounds of 300 ms).
    // Every admitted call waits out the store deadline; refusals must not.
    let ok_min = *f.ok.iter().min().unwrap();
    assert!(
        ok_min >= Duration::from_millis(STORE_TIMEOUT_MS),
        "{ok_min:?}"
    );
    assert!(
        refused_median < ok_min,
        "refusals took {refused_median:?}, the fastest admitted call {ok_min:?}"
    );
    assert!(
        ok_max < Duration::from_secs(3),
        "admitted call took {ok_max:?}"
    );

    // Refused calls did no work: one decision per admitted call.
    let text = engine(&s).metrics().render();
    assert_eq!(
        sum_of(&text, "riskgate_decisions_total{"),
        f.ok.len() as u64
    );
    assert_eq!(
        sum_of(
            &text,
            r#"riskgate_rejected_requests_total{method="Evaluate",code="ResourceExhausted"}"#
        ),
        f.exhausted.len() as u64
    );
    assert!(text.contains("riskgate_queued_evaluations 0"), "{text}");
    s.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_call_past_its_deadline_gets_deadline_exceeded_and_does_no_work() {
    let redis = RedisServer::start();
    let s = start_with(limited_config(&redis, 1, 4)).await;
    let client = connect(&s.running).await;
    let sleeper = stall(&redis, 2.0).await;

    // One call holds the only slot for the store deadline.
    let mut c = client.clone();
    let holder = tokio::spawn(async move {
        c.evaluate(attempt("holder", "198.51.100.80", "dev-h", CHROME))
            .await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;

    let mut c = client.clone();
    // 200 ms: the server gives up 20 ms early, before the holder's store
    // call times out (300 ms) and frees the slot.
    let mut r = tonic::Request::new(attempt("hurried", "198.51.100.81", "dev-u", CHROME));
    r.set_timeout(Duration::from_millis(200));
    let started = Instant::now();
    let e = c.evaluate(r).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
    assert!(
        took < Duration::from_millis(STORE_TIMEOUT_MS),
        "took {took:?}"
    );

    // A queued call with time to spare is served after the holder.
    let mut r = tonic::Request::new(attempt("patient", "198.51.100.82", "dev-p", CHROME));
    r.set_timeout(Duration::from_secs(5));
    c.evaluate(r).await.unwrap();
    holder.await.unwrap().unwrap();
    sleeper.join().unwrap();

    let text = engine(&s).metrics().render();
    assert_eq!(sum_of(&text, "riskgate_decisions_total{"), 2, "{text}");
    assert_eq!(
        sum_of(
            &text,
            r#"riskgate_rejected_requests_total{method="Evaluate",code="DeadlineExceeded"}"#
        ),
        1
    );
    s.running.shutdown().await;
}

struct ServerProcess {
    child: Child,
    addr: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_server(redis: &RedisServer) -> ServerProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_riskgate"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "off",
        ])
        .args(["--log-format", "json"])
        .env_remove("RISKGATE_CONFIG")
        .env("RUST_LOG", "info")
        .env("RISKGATE_REDIS_URL", redis.url())
        .env("RISKGATE_HMAC_KEY", HMAC)
        .env("RISKGATE_STORE_TIMEOUT_MS", "100")
        .env("RISKGATE_MAX_CONCURRENT_EVALUATIONS", "2")
        .env("RISKGATE_MAX_QUEUED_EVALUATIONS", "4")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    // Drains the log for the whole run (store warnings during stalls).
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if v["message"] == "riskgate serving" {
                let _ = tx.send(v["listen"].as_str().unwrap().to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("server did not start");
    ServerProcess { child, addr }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_s_memory_stays_flat_over_repeated_floods() {
    let redis = RedisServer::start();
    let server = spawn_server(&redis);
    let chans = channels(&server.addr, CALLERS / 8).await;
    let mut rss = Vec::new();
    for round in 0..6 {
        let sleeper = stall(&redis, 1.5).await;
        let f = flood(&chans).await;
        sleeper.join().unwrap();
        assert!(f.other.is_empty(), "round {round}: {:?}", f.other);
        assert!(
            !f.exhausted.is_empty(),
            "round {round}: nothing refused ({} admitted)",
            f.ok.len()
        );
        rss.push(rss_kib(server.child.id()));
    }
    eprintln!("VmRSS after each flood, KiB: {rss:?}");
    // Allocator pools settle in the first rounds; after that, floods must
    // not add up.
    let settled = rss[2];
    let last = *rss.last().unwrap();
    assert!(
        last < settled + 16 * 1024,
        "RSS grew from {settled} KiB to {last} KiB: {rss:?}"
    );
}
