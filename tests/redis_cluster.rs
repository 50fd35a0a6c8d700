//! The Redis store on a private 3-master Redis Cluster: the shared
//! behavioral suite, commands per call, slots spread over the nodes, and the
//! service end to end on the cluster.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::conformance::{self, CAP};
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
        // the user's slot and in the global counts.
        bound: true,
    }
}

#[tokio::test]
async fn on_a_cluster_observe_is_one_pipeline_per_slot_and_report_at_most_two_scripts() {
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
        store
            .observe(&observation(
                &h,
                i + 1,
                &user,
                &format!("192.0.2.{i}"),
                &user,
            ))
            .await
            .unwrap();
        store
            .report(&OutcomeReport {
                decision: i + 1,
                user: h.key(Dim::User, user.as_bytes()),
                action: Action::Allow,
                outcome: Outcome::LoginSucceeded,
                factor: None,
                at: UnixMillis::now(),
            })
            .await
            .unwrap();
    }

    const N: u64 = 20;
    let trips = store.round_trips();
    let before = cluster.command_calls();
    for i in 0..N {
        let user = format!("u{i}");
        store
            .observe(&observation(
                &h,
                100 + u128::from(i),
                &user,
                "198.51.100.7",
                "d",
            ))
            .await
            .unwrap();
    }
    let mid = cluster.command_calls();
    let observe_trips = store.round_trips() - trips;
    for i in 0..N {
        // Half teach (user script + global script), half do not (user only).
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
    let calls =
        |a: &std::collections::BTreeMap<String, u64>,
         b: &std::collections::BTreeMap<String, u64>,
         cmd: &str| { b.get(cmd).copied().unwrap_or(0) - a.get(cmd).copied().unwrap_or(0) };
    let report_trips = store.round_trips() - trips - observe_trips;
    // User, IP, network, device and global: five pipelines, sent at once
    // (one round trip to the slowest node), each read once.
    assert_eq!(observe_trips, N);
    assert_eq!(calls(&before, &mid, "evalsha"), 0);
    assert_eq!(calls(&before, &mid, "hgetall"), 4 * N);
    // A report is the user's script, and the global one when it teaches.
    assert_eq!(calls(&mid, &after, "evalsha"), N + N / 2);
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
