//! The Redis store on a private 3-master Redis Cluster: the shared
//! behavioral suite, commands per call, slots spread over the nodes, and the
//! service end to end on the cluster.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::conformance::{self, CAP, login_succeeded, observe_and_record, record_allow};
use common::redis::RedisCluster;
use common::*;
use riskgate::api::pb;
use riskgate::config::{Config, Overrides};
use riskgate::core::inputs::{Facts, Observation};
use riskgate::core::keys::{Dim, IdHasher};
use riskgate::domain::{Action, Outcome, UnixMillis};
use riskgate::store::memory::{MemoryLimits, MemoryStore};
use riskgate::store::redis::{RedisSettings, RedisStore};
use riskgate::store::{OutcomeReport, Store};

fn cluster_store(cluster: &RedisCluster, prefix: &str) -> RedisStore {
    RedisStore::new(RedisSettings {
        key_prefix: prefix.into(),
        history_per_dim: CAP,
        ..RedisSettings::cluster(cluster.urls())
    })
    .unwrap()
}

#[tokio::test]
async fn a_cluster_answers_exactly_like_the_memory_store() {
    let cluster = RedisCluster::start(3);
    let memory = MemoryStore::new(MemoryLimits {
        history_per_dim: CAP,
        ..MemoryLimits::default()
    });
    let expected = conformance::run_all(&memory).await;
    let store = cluster_store(&cluster, "conf");
    let got = conformance::run_all(&store).await;
    assert_eq!(expected.len(), got.len());
    for (e, g) in expected.iter().zip(&got) {
        assert_eq!(e, g);
    }
    // The suite's keys landed on every master: the scripts really ran on
    // different slots, and none of them failed (no CROSSSLOT).
    for node in &cluster.nodes {
        let keys: u64 = node.cli(&["DBSIZE"]).unwrap().trim().parse().unwrap();
        assert!(keys > 0, "node {} holds no key", node.port);
        let errors = node.cli(&["INFO", "errorstats"]).unwrap();
        assert!(!errors.contains("errorstat_CROSSSLOT"), "{errors}");
    }
    // The merges of what the suite taught ran on the `{g}` slot's master
    // (its stats hold this replica's marker) and no script failed there.
    store.flush().await;
    let marked = cluster.nodes.iter().any(|n| {
        n.cli(&["HKEYS", "conf:{g}:stats"])
            .is_ok_and(|k| k.lines().any(|f| f.starts_with("m:")))
    });
    assert!(marked, "no merge marker in the stats");
    // (Scripts that failed count as failed EVALSHA calls; the first call
    // of each script on a node fails with NOSCRIPT and is sent again.)
    for node in &cluster.nodes {
        let count = |text: &str, key: &str| -> u64 {
            text.split(key)
                .nth(1)
                .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        let errors = node.cli(&["INFO", "errorstats"]).unwrap();
        let commands = node.cli(&["INFO", "commandstats"]).unwrap();
        let evalsha = commands
            .lines()
            .find(|l| l.starts_with("cmdstat_evalsha:"))
            .unwrap_or_default();
        assert_eq!(
            count(evalsha, "failed_calls="),
            count(&errors, "errorstat_NOSCRIPT:count="),
            "{errors} {evalsha}"
        );
    }

    // The background writer on a cluster (one pipeline per item, answers
    // read per item): a busy IP's buckets are folded and still count like
    // the memory store's; decisions are written with their answers.
    let store = cluster_store(&cluster, "bg");
    conformance::busy_ip_counts_like_the_memory_store(&store).await;
    let user = IdHasher::random().key(Dim::User, b"busy");
    conformance::many_recent_decisions_show_the_newest(&store, user).await;
    // Each key lives on one master.
    let on_its_node =
        |pattern: &str, read: &dyn Fn(&common::redis::RedisServer, &str) -> String| {
            cluster
                .nodes
                .iter()
                .find_map(|n| {
                    let keys = n.cli(&["--scan", "--pattern", pattern]).unwrap();
                    let key = keys.lines().find(|l| !l.is_empty())?.to_string();
                    Some(read(n, &key))
                })
                .unwrap_or_else(|| panic!("no key {pattern}"))
        };
    let len: usize = on_its_node("bg:{u:*}:p", &|n, k| n.cli(&["HLEN", k]).unwrap())
        .trim()
        .parse()
        .unwrap();
    assert_eq!(len, 100);
    let fields = on_its_node("bg:{i:*}:w", &|n, k| n.cli(&["HKEYS", k]).unwrap());
    assert!(fields.lines().any(|f| f.starts_with("f2:")), "{fields}");
    assert!(fields.lines().count() < 100, "{fields}");
}

fn observation(h: &IdHasher, decision: u128, user: &str, ip: &str, device: &str) -> Observation {
    let mut facts = Facts::default();
    facts.set(Dim::Ip, Some(h.key(Dim::Ip, ip.as_bytes())));
    facts.set(Dim::Network, Some(h.key(Dim::Network, ip.as_bytes())));
    let d = h.key(Dim::Device, device.as_bytes());
    facts.set(Dim::Device, Some(d));
    facts.set(Dim::BoundDevice, Some(d));
    Observation {
        decision,
        at: UnixMillis::now(),
        user: h.key(Dim::User, user.as_bytes()),
        facts,
        place: None,
        failed: false,
        // Key-verified: a taught login writes the bound-device fact too, on
        // the user's slot (never in the global counts).
        bound: true,
    }
}

/// Calls of `cmd` between two `command_calls` readings.
fn calls_of(
    a: &std::collections::BTreeMap<String, u64>,
    b: &std::collections::BTreeMap<String, u64>,
    cmd: &str,
) -> u64 {
    b.get(cmd).copied().unwrap_or(0) - a.get(cmd).copied().unwrap_or(0)
}

#[tokio::test]
async fn on_a_cluster_observe_is_one_pipeline_per_slot_and_report_on_the_users_slot() {
    let cluster = RedisCluster::start(3);
    // No merge of the deployment-wide counts during the count.
    let store = RedisStore::new(RedisSettings {
        key_prefix: "rt".into(),
        history_per_dim: CAP,
        global_flush: std::time::Duration::from_secs(3600),
        ..RedisSettings::cluster(cluster.urls())
    })
    .unwrap();
    let h = IdHasher::random();
    // Warm up: connect, learn the slots, load the scripts on every node.
    for i in 0..20u128 {
        let user = format!("warm{i}");
        let o = observation(&h, i + 1, &user, &format!("192.0.2.{i}"), &user);
        observe_and_record(&store, &o).await;
        store
            .report(&login_succeeded(h.key(Dim::User, user.as_bytes()), i + 1))
            .await
            .unwrap();
    }

    // The warm-up's teaching merged and its records written.
    store.flush().await;

    const N: u64 = 20;
    let trips = store.round_trips();
    let before = cluster.command_calls();
    let mut observed = Vec::new();
    for i in 0..N {
        let user = format!("u{i}");
        let o = observation(&h, 100 + u128::from(i), &user, "198.51.100.7", "d");
        store.observe(&o).await.unwrap();
        observed.push(o);
    }
    let observed_at = cluster.command_calls();
    let observe_trips = store.round_trips() - trips;
    // The answers, written with their pending decisions in the background.
    for o in &observed {
        record_allow(&store, o);
    }
    store.flush().await;
    let mid = cluster.command_calls();
    assert_eq!(calls_of(&observed_at, &mid, "hsetnx"), N);
    assert_eq!(calls_of(&observed_at, &mid, "rpush"), 0);
    for i in 0..N {
        // Half teach (a read, then the write), half do not (the read).
        let outcome = if i % 2 == 0 {
            Outcome::LoginSucceeded
        } else {
            // Not a teaching outcome for an ALLOW.
            Outcome::StepUpPassed
        };
        store
            .report(&OutcomeReport {
                decision: 100 + u128::from(i),
                user: h.key(Dim::User, format!("u{i}").as_bytes()),
                action: Action::Allow,
                outcome,
                factor: None,
                at: UnixMillis::now(),
            })
            .await
            .unwrap();
    }
    let after = cluster.command_calls();
    let calls = calls_of;
    let report_trips = store.round_trips() - trips - observe_trips;
    // User, IP, network, device and global: five pipelines, sent at once
    // (one round trip to the slowest node), each read once.
    assert_eq!(observe_trips, N);
    assert_eq!(calls(&before, &observed_at, "evalsha"), 0);
    assert_eq!(calls(&before, &observed_at, "hgetall"), 4 * N);
    // A report reads and writes the user's slot only: whether a taught
    // value is new deployment-wide was read by the decision's observe, and
    // what it changes of the global counts is merged later, per replica
    // (no merge runs here). No report touches the `{g}` slot. Teaching
    // writes the profile (SET) with the user's script; a report that
    // teaches nothing only reads.
    assert_eq!(calls(&mid, &after, "evalsha"), N / 2);
    assert_eq!(calls(&mid, &after, "set"), N / 2);
    assert_eq!(calls(&mid, &after, "mget"), 0);
    assert_eq!(calls(&mid, &after, "hincrby"), 0);
    assert_eq!(report_trips, N + N / 2);
    // No plain EVAL, no script reload once warm (INFO counts the scripts'
    // inner commands too, so only client-only commands are checked).
    for cmd in ["eval", "script|load"] {
        assert_eq!(calls(&before, &after, cmd), 0, "{cmd}");
    }
}

#[tokio::test]
async fn the_service_on_a_cluster_detects_a_spray_and_learns_devices() {
    let cluster = RedisCluster::start(3);
    let urls = cluster.urls().join(",");
    let config = Config::resolve(
        &Overrides {
            listen: Some("127.0.0.1:0".into()),
            metrics_listen: Some("off".into()),
            ..Overrides::default()
        },
        move |k| match k {
            "RISKGATE_REDIS_URL" => Some(urls.clone()),
            "RISKGATE_HMAC_KEY" => Some("cluster-hmac-key-0123456789".into()),
            "RISKGATE_STORE_TIMEOUT_MS" => Some("500".into()),
            _ => None,
        },
    )
    .unwrap();
    assert!(config.store.redis.as_ref().unwrap().cluster);
    let mut s = start_with(config).await;

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
        let resp = s.client.evaluate(r).await.unwrap().into_inner();
        assert!(
            resp.degraded_signals.is_empty() || resp.degraded_signals == ["geo"],
            "{resp:?}"
        );
        last = Some(resp);
    }
    let last = last.unwrap();
    let c = codes(&last);
    assert!(c.contains(&"password_spray_source".to_string()), "{c:?}");
    assert_eq!(action(&last), pb::Action::Deny, "{last:?}");

    let first = s
        .client
        .evaluate(attempt("kate", "198.51.100.70", "kate-laptop", CHROME))
        .await
        .unwrap()
        .into_inner();
    assert!(codes(&first).contains(&"new_user".to_string()), "{first:?}");
    let rep = s
        .client
        .report_outcome(pb::ReportOutcomeRequest {
            decision_id: first.decision_id.clone(),
            outcome: pb::Outcome::LoginSucceeded as i32,
            factor: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(rep.profile_updated);
    let second = s
        .client
        .evaluate(attempt("kate", "198.51.100.70", "kate-laptop", CHROME))
        .await
        .unwrap()
        .into_inner();
    assert!(
        !codes(&second).contains(&"new_user".to_string()),
        "{second:?}"
    );
    assert!(
        !codes(&second).contains(&"new_device".to_string()),
        "{second:?}"
    );
    assert!(second.score < first.score, "{first:?} {second:?}");
    s.running.shutdown().await;
}

/// The keys of 10,000 users spread over the three masters within ±20 % of
/// an even share: their `{u:…}` tags hash to slots all over the ring.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_users_spread_evenly_over_three_masters() {
    let cluster = RedisCluster::start(3);
    let store = std::sync::Arc::new(
        RedisStore::new(RedisSettings {
            key_prefix: "sp".into(),
            history_per_dim: CAP,
            global_flush: std::time::Duration::from_secs(3600),
            ..RedisSettings::cluster(cluster.urls())
        })
        .unwrap(),
    );
    let h = std::sync::Arc::new(IdHasher::random());
    const USERS: u32 = 10_000;
    const TASKS: u32 = 32;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (store, h) = (store.clone(), h.clone());
        tasks.push(tokio::spawn(async move {
            for i in (t..USERS).step_by(TASKS as usize) {
                let user = format!("user{i}");
                let ip = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
                let decision = u128::from(i) + 1;
                observe_and_record(&*store, &observation(&h, decision, &user, &ip, &user)).await;
                if i % 2 == 0 {
                    store
                        .report(&login_succeeded(
                            h.key(Dim::User, user.as_bytes()),
                            decision,
                        ))
                        .await
                        .unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    store.flush().await;
    let user_keys: Vec<u64> = cluster
        .nodes
        .iter()
        .map(|n| {
            let mut count = 0u64;
            let mut cursor = "0".to_string();
            loop {
                let out = n
                    .cli(&["SCAN", &cursor, "MATCH", "sp:{u:*", "COUNT", "1000"])
                    .unwrap();
                let mut lines = out.lines();
                cursor = lines.next().unwrap_or("0").trim().to_string();
                count += lines.filter(|l| !l.trim().is_empty()).count() as u64;
                if cursor == "0" {
                    break count;
                }
            }
        })
        .collect();
    let total: u64 = user_keys.iter().sum();
    // A pending-decisions hash for every user, a profile for the taught half.
    assert_eq!(
        total,
        u64::from(USERS) + u64::from(USERS) / 2,
        "{user_keys:?}"
    );
    let even = total as f64 / 3.0;
    for (node, k) in cluster.nodes.iter().zip(&user_keys) {
        let off = (*k as f64 - even) / even;
        assert!(
            off.abs() <= 0.20,
            "node {} holds {k} of {total} user keys ({:+.1} % from even): {user_keys:?}",
            node.port,
            100.0 * off
        );
    }
    eprintln!("user keys per master: {user_keys:?} (even share {even:.0})");
}

/// The sweep of gone replicas' marker fields runs on the cluster's `{g}`
/// slot (one script, every key declared): a dead replica's field goes, a
/// live one's stays.
#[tokio::test]
async fn gone_replicas_markers_are_swept_on_a_cluster() {
    let cluster = RedisCluster::start(3);
    // Plant them on the master that owns the slot.
    let owner = cluster
        .nodes
        .iter()
        .find(|n| {
            n.cli(&["HSET", "sw:{g}:stats", "m:dead", "9", "m:alive", "4"])
                .is_ok_and(|o| !o.contains("MOVED"))
        })
        .expect("a master owns {g}");
    owner
        .cli(&["SET", "sw:{g}:m:alive", "4", "PX", "60000"])
        .unwrap();
    let store = cluster_store(&cluster, "sw");
    // The first merge sweeps.
    let fields = owner.fields_once_swept("sw:{g}:stats").await;
    assert!(fields.contains("m:alive"), "{fields}");
    drop(store);
}
