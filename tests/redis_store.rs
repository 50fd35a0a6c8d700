//! The Redis store against a private `redis-server`: conformance with the
//! memory store, one round trip per call, TTLs and privacy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::conformance::{self, CAP};
use common::redis::RedisServer;
use riskgate::domain::{Action, Outcome, UnixMillis};
use riskgate::store::memory::{MemoryLimits, MemoryStore};
use riskgate::store::redis::{RedisSettings, RedisStore};
use riskgate::store::{Dim, Facts, IdHasher, Observation, OutcomeReport, Store};

fn redis_store(server: &RedisServer, prefix: &str) -> RedisStore {
    RedisStore::new(RedisSettings {
        key_prefix: prefix.into(),
        history_per_dim: CAP,
        ..RedisSettings::new(server.url())
    })
    .unwrap()
}

#[tokio::test]
async fn the_redis_store_answers_exactly_like_the_memory_store() {
    let server = RedisServer::start();
    let memory = MemoryStore::new(MemoryLimits {
        history_per_dim: CAP,
        ..MemoryLimits::default()
    });
    let expected = conformance::run_all(&memory).await;
    let redis = redis_store(&server, "conf");
    let got = conformance::run_all(&redis).await;
    assert_eq!(expected.len(), got.len());
    for (e, g) in expected.iter().zip(&got) {
        assert_eq!(e, g);
    }
}

fn observation(h: &IdHasher, decision: u128, user: &str, ip: &str, device: &str) -> Observation {
    let mut facts = Facts::default();
    facts.set(Dim::Ip, Some(h.key(Dim::Ip, ip.as_bytes())));
    facts.set(Dim::Network, Some(h.key(Dim::Network, ip.as_bytes())));
    facts.set(Dim::Device, Some(h.key(Dim::Device, device.as_bytes())));
    facts.set(Dim::UserAgent, Some(h.key(Dim::UserAgent, b"curl/8.4.0")));
    Observation {
        decision,
        at: UnixMillis::now(),
        user: h.key(Dim::User, user.as_bytes()),
        facts,
        place: None,
        failed: decision % 2 == 0,
    }
}

#[tokio::test]
async fn observe_and_report_are_one_evalsha_each() {
    let server = RedisServer::start();
    let store = redis_store(&server, "rt");
    let h = IdHasher::random();
    // Warm up: the first call loads the script (EVALSHA, NOSCRIPT, SCRIPT
    // LOAD, EVALSHA) and connects (HELLO/CLIENT SETINFO).
    store
        .observe(&observation(&h, 1, "warm", "192.0.2.1", "w"))
        .await
        .unwrap();
    let report = |d: u128, user: &str| OutcomeReport {
        decision: d,
        user: h.key(Dim::User, user.as_bytes()),
        action: Action::Allow,
        outcome: Outcome::LoginSucceeded,
        factor: None,
        at: UnixMillis::now(),
    };
    store.report(&report(1, "warm")).await.unwrap();

    const N: u64 = 25;
    let before = server.command_calls();
    for i in 0..N {
        let d = 100 + u128::from(i);
        store
            .observe(&observation(&h, d, &format!("u{i}"), "192.0.2.7", "dev"))
            .await
            .unwrap();
    }
    let mid = server.command_calls();
    for i in 0..N {
        store
            .report(&report(100 + u128::from(i), &format!("u{i}")))
            .await
            .unwrap();
    }
    let after = server.command_calls();
    // Only client-issued commands count (scripts' inner calls are listed
    // separately by INFO and are not round trips); `info` is ours.
    let delta = |a: &std::collections::BTreeMap<String, u64>,
                 b: &std::collections::BTreeMap<String, u64>| {
        let mut d = std::collections::BTreeMap::new();
        for (k, v) in b {
            let was = a.get(k).copied().unwrap_or(0);
            if *v > was && k != "info" {
                d.insert(k.clone(), v - was);
            }
        }
        d
    };
    let observes = delta(&before, &mid);
    let reports = delta(&mid, &after);
    eprintln!("observe x{N}: {observes:?}\nreport x{N}: {reports:?}");
    assert_eq!(observes.get("evalsha"), Some(&N), "{observes:?}");
    assert_eq!(reports.get("evalsha"), Some(&N), "{reports:?}");
    for d in [&observes, &reports] {
        for (cmd, calls) in d.iter() {
            assert!(
                cmd == "evalsha" || !["client", "hello", "script", "eval"].contains(&cmd.as_str()),
                "unexpected client command {cmd} x{calls}"
            );
        }
    }
    // And every client connection issued exactly those EVALSHAs: one
    // connection, no reconnects.
    let clients = server.cli(&["CLIENT", "LIST"]).unwrap();
    assert_eq!(
        clients
            .lines()
            .filter(|l| !l.contains("cmd=client"))
            .count(),
        1,
        "{clients}"
    );
}

#[tokio::test]
async fn no_raw_identifier_reaches_redis_and_every_key_expires() {
    let server = RedisServer::start();
    let store = redis_store(&server, "priv");
    let h = IdHasher::new(b"a-deployment-hmac-key");
    let users = ["alice@example.com", "bob-the-user"];
    let ips = ["198.51.100.77", "203.0.113.9"];
    let devices = ["laptop-serial-XYZ123", "phone-imei-356938035643809"];
    let mut d = 0u128;
    for u in users {
        for ip in ips {
            for dev in devices {
                d += 1;
                store
                    .observe(&observation(&h, d, u, ip, dev))
                    .await
                    .unwrap();
                store
                    .report(&OutcomeReport {
                        decision: d,
                        user: h.key(Dim::User, u.as_bytes()),
                        action: Action::Allow,
                        outcome: Outcome::LoginSucceeded,
                        factor: None,
                        at: UnixMillis::now(),
                    })
                    .await
                    .unwrap();
            }
        }
    }
    let keys = server.cli(&["--scan", "--pattern", "*"]).unwrap();
    let keys: Vec<&str> = keys.lines().filter(|l| !l.is_empty()).collect();
    assert!(keys.len() > 10, "{keys:?}");
    let mut dump = String::new();
    for k in &keys {
        assert!(k.starts_with("priv:"), "key without the prefix: {k}");
        let ttl: i64 = server.cli(&["PTTL", k]).unwrap().trim().parse().unwrap();
        assert!(ttl > 0, "{k} has no TTL ({ttl})");
        let ty = server.cli(&["TYPE", k]).unwrap();
        let content = match ty.trim() {
            "hash" => server.cli(&["HGETALL", k]).unwrap(),
            "zset" => server.cli(&["ZRANGE", k, "0", "-1", "WITHSCORES"]).unwrap(),
            "string" => server.cli(&["GET", k]).unwrap(),
            other => panic!("unexpected type {other} for {k}"),
        };
        dump.push_str(k);
        dump.push('\n');
        dump.push_str(&content);
        // The raw serialized form too.
        dump.push_str(&server.cli(&["DUMP", k]).unwrap());
    }
    let profile_ttl = RedisSettings::new("").profile_ttl;
    for k in keys.iter().filter(|k| k.ends_with(":prof")) {
        let ttl: u64 = server.cli(&["PTTL", k]).unwrap().trim().parse().unwrap();
        assert!(ttl <= profile_ttl.as_millis() as u64 && ttl > 0);
    }
    for raw in users.iter().chain(&ips).chain(&devices).chain(&["curl"]) {
        assert!(!dump.contains(raw), "raw identifier {raw} found in Redis");
    }
}
