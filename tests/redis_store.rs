//! The Redis store against a private `redis-server`: conformance with the
//! memory store, one round trip per call, TTLs and privacy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::conformance::{self, CAP, login_succeeded, observe_and_record, record_allow};
use common::redis::RedisServer;
use riskgate::core::inputs::{Facts, Observation};
use riskgate::core::keys::{Dim, IdHasher};
use riskgate::domain::UnixMillis;
use riskgate::store::Store;
use riskgate::store::memory::{MemoryLimits, MemoryStore};
use riskgate::store::redis::{RedisSettings, RedisStore};

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

/// A key of `user`'s slot as the store names it: `<prefix>:{u:<hex>}:<suffix>`.
fn user_key(prefix: &str, user: riskgate::core::keys::Key, suffix: &str) -> String {
    let hex: String = user.0.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}:{{u:{hex}}}:{suffix}")
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
        bound: false,
    }
}

#[tokio::test]
async fn observe_is_one_pipeline_and_report_one_read_and_one_write() {
    let server = RedisServer::start();
    // No merge of the deployment-wide counts during the count.
    let store = RedisStore::new(RedisSettings {
        key_prefix: "rt".into(),
        history_per_dim: CAP,
        global_flush: std::time::Duration::from_secs(3600),
        connections: 2,
        ..RedisSettings::new(server.url())
    })
    .unwrap();
    let h = IdHasher::random();
    // Warm up: connect (HELLO/CLIENT SETINFO) and load the profile write
    // script (EVALSHA, NOSCRIPT, SCRIPT LOAD, EVALSHA).
    observe_and_record(&store, &observation(&h, 1, "warm", "192.0.2.1", "w")).await;
    let report = |d: u128, user: &str| login_succeeded(h.key(Dim::User, user.as_bytes()), d);
    store.report(&report(1, "warm")).await.unwrap();
    // The first merge (at start) and the warm-up's records are written.
    store.flush().await;

    const N: u64 = 25;
    let trips = store.round_trips();
    let before = server.command_calls();
    let mut observed = Vec::new();
    for i in 0..N {
        let d = 100 + u128::from(i);
        let o = observation(&h, d, &format!("u{i}"), "192.0.2.7", "dev");
        store.observe(&o).await.unwrap();
        observed.push(o);
    }
    let mid = server.command_calls();
    let observe_trips = store.round_trips() - trips;
    // Each answer is written with its pending decision by the background
    // writer, in batches.
    for o in &observed {
        record_allow(&store, o);
    }
    store.flush().await;
    let recorded = server.command_calls();
    for i in 0..N {
        store
            .report(&report(100 + u128::from(i), &format!("u{i}")))
            .await
            .unwrap();
    }
    let after = server.command_calls();
    let report_trips = store.round_trips() - trips - observe_trips;
    // `info` is ours.
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
    let records = delta(&mid, &recorded);
    let reports = delta(&recorded, &after);
    eprintln!("observe x{N}: {observes:?}\nrecord x{N}: {records:?}\nreport x{N}: {reports:?}");
    // One round trip per observe, two per report (a read, then the
    // write), by the store's own count.
    assert_eq!(observe_trips, N);
    assert_eq!(report_trips, 2 * N);
    // Observe is plain commands: every read once per call (user, IP,
    // network and device velocity hashes, the IP's and device's distinct
    // users among their fields; profile; the global value counts), no
    // script. The deployment-wide velocity is merged in the
    // background instead.
    let per = |cmd: &str| observes.get(cmd).copied().unwrap_or(0);
    assert_eq!(per("evalsha"), 0, "{observes:?}");
    assert_eq!(per("hgetall"), 4 * N);
    // The profile, one string; the global stats are read by the merges.
    assert_eq!(per("get"), N);
    assert_eq!(per("hmget"), 0);
    assert_eq!(per("mget"), N);
    assert_eq!((per("zadd"), per("zcount")), (0, 0));
    assert_eq!(per("hset"), 2 * N, "the IP's and device's user");
    // The pending decisions' count is checked in the background, for one
    // decision id in 16 (here 112).
    // (The background writer may run it after the count.)
    assert!(per("hlen") <= 1, "{observes:?}");
    // Half the attempts fail: one bucket increment for a success (the IP's
    // attempts), five for a failure (and the user's, IP's, network's and
    // device's failures).
    assert_eq!(per("hincrby"), 12 + 13 * 5);
    // TTLs: the user's failures' with every failure; the IP's, network's
    // and device's (the same for all 25) once: this replica refreshed them
    // in the current period (twice should the 25 calls straddle two
    // 10-minute periods).
    let skipped = 2 * N + 13 - 3;
    let straddled = u64::from(per("pexpire") == 13 + 6);
    assert_eq!(per("pexpire"), 13 + 3 + 3 * straddled, "{observes:?}");
    // So 11 commands for a success and 17 for a failure with a refresh
    // per key written, less the refreshes skipped.
    let total: u64 = observes.values().sum::<u64>() - per("hlen");
    assert_eq!(
        total,
        12 * 11 + 13 * 17 - skipped + 3 * straddled,
        "{observes:?}"
    );
    // Recording an answer writes the pending decision with it: one HSETNX
    // and its TTL, nothing else. (The flush also merged the deployment-wide
    // velocity: HINCRBYs, one PEXPIRE and the read back; and the background
    // pending check may have run.)
    let rec = |cmd: &str| records.get(cmd).copied().unwrap_or(0);
    assert_eq!((rec("hsetnx"), rec("pexpire")), (N, N + 1), "{records:?}");
    for cmd in records.keys() {
        assert!(
            [
                "hsetnx", "pexpire", "hincrby", "hgetall", "hmget", "hlen", "hkeys"
            ]
            .contains(&cmd.as_str()),
            "{records:?}"
        );
    }
    // A report reads the decision's record and the profile (HGET, GET),
    // teaches the profile in the replica and writes it back with one
    // script that checks both are unchanged (GET, HGET) before it writes
    // them (SET, HSET). Teaching, it neither reads nor writes the
    // global counts of the login's values: whether each is new was read by
    // the decision's observe, and what it changes there is merged per
    // replica, every `global_flush` (none runs here).
    let rep = |cmd: &str| reports.get(cmd).copied().unwrap_or(0);
    assert_eq!(
        [
            rep("evalsha"),
            rep("get"),
            rep("hget"),
            rep("type"),
            rep("set"),
            rep("hset")
        ],
        [N, 2 * N, 2 * N, 0, N, N],
        "{reports:?}"
    );
    for cmd in ["mget", "hmget", "hincrby", "pexpire"] {
        assert_eq!(reports.get(cmd), None, "{reports:?}");
    }
    for (cmd, calls) in reports.iter() {
        assert!(
            cmd == "evalsha" || !["client", "hello", "script", "eval"].contains(&cmd.as_str()),
            "unexpected client command {cmd} x{calls}"
        );
    }
    // The store's two connections, no reconnects (the background writer
    // shares them).
    let clients = server.cli(&["CLIENT", "LIST"]).unwrap();
    assert_eq!(
        clients
            .lines()
            .filter(|l| !l.contains("cmd=client"))
            .count(),
        2,
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
                observe_and_record(&store, &observation(&h, d, u, ip, dev)).await;
                store
                    .report(&login_succeeded(h.key(Dim::User, u.as_bytes()), d))
                    .await
                    .unwrap();
            }
        }
    }
    // The global counts the reports taught, merged.
    store.flush().await;
    let keys = server.cli(&["--scan", "--pattern", "*"]).unwrap();
    let keys: Vec<&str> = keys.lines().filter(|l| !l.is_empty()).collect();
    assert!(keys.len() > 10, "{keys:?}");
    assert!(keys.iter().any(|k| k.contains(":{g}:s:")), "{keys:?}");
    assert!(keys.iter().any(|k| k.contains(":{g}:m:")), "{keys:?}");
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
    // IP, network and device hashes: 25 h after their last write at least
    // (the counters' longest window and a bucket) however long ago in the
    // 10-minute period this replica refreshed them: 25 h 10 min when set.
    for k in keys
        .iter()
        .filter(|k| k.contains("{i:") || k.contains("{n:") || k.contains("{dv:"))
    {
        let ttl: u64 = server.cli(&["PTTL", k]).unwrap().trim().parse().unwrap();
        assert!(
            ttl > 25 * 3_600_000 + 540_000 && ttl <= 25 * 3_600_000 + 600_000,
            "{k}: {ttl}"
        );
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

#[tokio::test]
async fn replicas_see_each_others_deployment_wide_counts_after_a_merge() {
    let server = RedisServer::start();
    let settings = RedisSettings {
        key_prefix: "glob".into(),
        global_flush: std::time::Duration::from_millis(20),
        ..RedisSettings::new(server.url())
    };
    let a = RedisStore::new(settings.clone()).unwrap();
    let b = RedisStore::new(settings).unwrap();
    let h = IdHasher::random();
    // Replica A sees 10 failures (its own) at once.
    let mut last = None;
    for d in 0..10u128 {
        let mut o = observation(&h, 2 * d, &format!("a{d}"), "192.0.2.9", "x");
        o.failed = true;
        last = Some(observe_and_record(&a, &o).await);
    }
    let v = last.unwrap().velocity;
    assert_eq!((v.global_attempts.m1, v.global_failures.m1), (10, 10));
    // Replica B sees them (and its own attempt) once A has merged and B
    // has read back: within a few flush intervals.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut d = 1000u128;
    loop {
        d += 2;
        let mut o = observation(&h, d + 1, "b", "198.51.100.1", "y");
        o.failed = false;
        let v = b.observe(&o).await.unwrap().velocity;
        if v.global_failures.m1 == 10 {
            assert!(v.global_attempts.m1 >= 11, "{v:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "B never saw A's failures: {v:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // A flush (graceful shutdown) writes what a replica still holds.
    let c = RedisStore::new(RedisSettings {
        key_prefix: "glob".into(),
        global_flush: std::time::Duration::from_secs(3600),
        ..RedisSettings::new(server.url())
    })
    .unwrap();
    let mut o = observation(&h, 5001, "c", "203.0.113.3", "z");
    o.failed = true;
    c.observe(&o).await.unwrap();
    c.flush().await;
    let raw = server.cli(&["HGETALL", "glob:{g}:v"]).unwrap();
    let failures_1m: u64 = raw
        .lines()
        .collect::<Vec<_>>()
        .chunks(2)
        .filter(|kv| kv[0].starts_with("f1:"))
        .map(|kv| kv[1].trim().parse::<u64>().unwrap())
        .sum();
    assert_eq!(failures_1m, 11);

    // The deployment's stats and value counts: a teaching report shows in
    // its replica's next observe at once (laid over what it reads until it
    // has merged it: T merges only when flushed), in B's after T's merge
    // and B's.
    let t = RedisStore::new(RedisSettings {
        key_prefix: "glob".into(),
        global_flush: std::time::Duration::from_secs(3600),
        ..RedisSettings::new(server.url())
    })
    .unwrap();
    let before = b
        .observe(&observation(&h, 7001, "b", "198.51.100.1", "y"))
        .await
        .unwrap()
        .profile
        .global_logins;
    // A's answers (and with them its pending decisions) are written by
    // its background writer within milliseconds; here, at once.
    a.flush().await;
    t.report(&login_succeeded(h.key(Dim::User, b"a1"), 2))
        .await
        .unwrap();
    // T did not observe that decision (A did): it cannot tell whether the
    // IP is new deployment-wide, so the distinct IPs show once T has
    // merged (the merge counts them from Redis's own counts).
    let seen_by = |p: riskgate::core::inputs::ProfileView| {
        (
            p.global_logins,
            p.global_seen(Dim::Ip),
            p.global_distinct(Dim::Ip),
        )
    };
    let at_t = t
        .observe(&observation(&h, 7003, "a2", "192.0.2.9", "x"))
        .await
        .unwrap();
    let (logins, seen, _) = seen_by(at_t.profile);
    assert_eq!((logins, seen), (before + 1, 1));
    // Not in Redis yet.
    assert_eq!(
        server
            .cli(&["HGET", "glob:{g}:stats", "logins"])
            .unwrap()
            .trim(),
        ""
    );
    t.flush().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut d = 8001u128;
    loop {
        d += 2;
        let v = b
            .observe(&observation(&h, d, "b", "192.0.2.9", "y"))
            .await
            .unwrap();
        if seen_by(v.profile) == (before + 1, 1, 1) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "B never saw A's teaching"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let v = t
        .observe(&observation(&h, 9001, "a2", "192.0.2.9", "x"))
        .await
        .unwrap();
    assert_eq!(seen_by(v.profile), (before + 1, 1, 1));
}

#[tokio::test]
async fn a_busy_ip_is_folded_and_still_counts_like_the_memory_store() {
    let server = RedisServer::start();
    let redis = redis_store(&server, "fold");
    // Its 5-second buckets leave the one-minute window and are folded into
    // 5-minute ones.
    conformance::busy_ip_counts_like_the_memory_store(&redis).await;
    redis.flush().await;
    let key = server
        .cli(&["--scan", "--pattern", "fold:{i:*}:w"])
        .unwrap()
        .trim()
        .to_string();
    let fields = server.cli(&["HKEYS", &key]).unwrap();
    let fields: Vec<&str> = fields.lines().filter(|l| !l.is_empty()).collect();
    assert!(
        fields.iter().any(|f| f.starts_with("f2:")),
        "folded into 5-minute buckets: {fields:?}"
    );
    // 40 minutes of 5-second buckets would be 480 per kind.
    assert!(fields.len() < 100, "{} fields: {fields:?}", fields.len());
}

#[tokio::test]
async fn recent_decisions_are_the_recorded_pending_ones_and_show_the_newest() {
    let server = RedisServer::start();
    let store = redis_store(&server, "recent");
    let user = IdHasher::random().key(Dim::User, b"busy");
    conformance::many_recent_decisions_show_the_newest(&store, user).await;
    // One key holds the decisions with their answers; no list.
    let keys = server.cli(&["--scan", "--pattern", "recent:{u:*"]).unwrap();
    let keys: Vec<&str> = keys.lines().filter(|l| !l.is_empty()).collect();
    assert!(keys.iter().all(|k| !k.ends_with(":d")), "{keys:?}");
    let pending = keys.iter().find(|k| k.ends_with(":p")).unwrap();
    let len: usize = server
        .cli(&["HLEN", pending])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(len, 100);
    let f = store.forget(user).await.unwrap();
    assert_eq!((f.pending_decisions, f.recent_decisions), (100, 100));
}

#[tokio::test]
async fn forget_also_erases_failures_kept_in_the_earlier_layout() {
    let server = RedisServer::start();
    let store = redis_store(&server, "legacy");
    let h = IdHasher::random();
    let user = h.key(Dim::User, b"upgraded");
    // What a replica of the earlier version left: failures per window.
    let legacy = user_key("legacy", user, "v");
    server
        .cli(&["HSET", &legacy, "f1:1", "2", "f2:1", "2", "f3:1", "2"])
        .unwrap();
    server.cli(&["PEXPIRE", &legacy, "90000000"]).unwrap();
    let forgotten = store.forget(user).await.unwrap();
    assert_eq!(forgotten.failure_counters, 1);
    assert_eq!(server.cli(&["EXISTS", &legacy]).unwrap().trim(), "0");
}

/// A decision observed by an earlier version is still taught by a report
/// after an upgrade: the record of the version before answers were kept
/// with their decision (12 facts, no answer), and of the one before that
/// (11 facts: a profile dimension was added since). A report reads every
/// shape (`PendingRecord::parse`); the admin view shows no answer for them.
#[tokio::test]
async fn a_pending_decision_of_an_earlier_version_still_teaches() {
    let server = RedisServer::start();
    let store = redis_store(&server, "older");
    let h = IdHasher::random();
    let mut taught = Vec::new();
    for (d, name, fields) in [
        (1u128, "current", 0),
        (2, "previous", 17),
        (3, "oldest", 16),
    ] {
        observe_and_record(&store, &observation(&h, d, name, "192.0.2.7", "phone")).await;
        store.flush().await;
        let user = h.key(Dim::User, name.as_bytes());
        let key = user_key("older", user, "p");
        let field = format!("{d:032x}");
        let record = server.cli(&["HGET", &key, &field]).unwrap();
        let record = record.trim();
        // Taught, expires, at, hour, place, 12 facts; the answer's action,
        // score, codes and decision id.
        assert_eq!(record.matches('|').count(), 4 + 12 + 4, "{record}");
        assert!(record.ends_with("|allow|0||0000000000000000"), "{record}");
        if fields > 0 {
            let earlier: Vec<&str> = record.split('|').take(fields).collect();
            server
                .cli(&["HSET", &key, &field, &earlier.join("|")])
                .unwrap();
        }
        store.report(&login_succeeded(user, d)).await.unwrap();
        taught.push(store.profile(user).await.unwrap());
    }
    let (current, previous, oldest) = (&taught[0], &taught[1], &taught[2]);
    for p in &taught {
        assert_eq!(p.verified_logins, 1);
    }
    assert_eq!(current.recent.len(), 1);
    assert!(previous.recent.is_empty() && oldest.recent.is_empty());
    // Every value is taught, but the oldest's missing fact.
    let dims =
        |p: &riskgate::store::UserProfile| p.values.iter().map(|v| v.dim).collect::<Vec<_>>();
    assert!(!current.values.is_empty());
    assert_eq!(dims(previous), dims(current));
    let last = *riskgate::core::keys::PROFILE_DIMS.last().unwrap();
    let mut expected = dims(current);
    expected.retain(|d| *d != last);
    assert_eq!(dims(oldest), expected);
}

/// An earlier version's recent-decisions list is still shown (merged with
/// the decisions recorded since, newest first) and erased by forget until
/// it expires.
#[tokio::test]
async fn an_earlier_versions_recent_decisions_are_shown_and_forgotten() {
    let server = RedisServer::start();
    let store = redis_store(&server, "recent");
    let h = IdHasher::random();
    let user = h.key(Dim::User, b"carl");
    let list = user_key("recent", user, "d");
    let now = UnixMillis::now().0;
    for (at, action, id) in [
        (now - 3000, "deny", "old-1"),
        (now - 2000, "step_up", "old-2"),
    ] {
        server
            .cli(&[
                "RPUSH",
                &list,
                &format!("{at}|{action}|0.5|rule_a,rule_b|{id}"),
            ])
            .unwrap();
    }
    server.cli(&["PEXPIRE", &list, "90000000"]).unwrap();
    let o = observation(&h, 1, "carl", "192.0.2.7", "phone");
    observe_and_record(&store, &o).await;
    let p = store.profile(user).await.unwrap();
    let ids: Vec<&str> = p.recent.iter().map(|r| r.decision_id.as_str()).collect();
    let new =
        riskgate::core::decision_id::from_parts(1, user, riskgate::domain::Action::Allow, [0; 8]);
    assert_eq!(ids, [new.as_str(), "old-2", "old-1"]);
    assert_eq!(p.recent[1].action, riskgate::domain::Action::StepUp);
    assert_eq!(p.recent[1].reasons, ["rule_a", "rule_b"]);
    let forgotten = store.forget(user).await.unwrap();
    assert_eq!(
        (forgotten.pending_decisions, forgotten.recent_decisions),
        (1, 3)
    );
    assert_eq!(server.cli(&["EXISTS", &list]).unwrap().trim(), "0");
    assert!(store.profile(user).await.unwrap().recent.is_empty());
}

/// A report sent right after the answer (the decision's record may still
/// be queued for the background writer) teaches at once, without waiting
/// for the writer, and exactly once: the writer's later write leaves the
/// report's taught mark.
#[tokio::test]
async fn a_report_right_after_the_answer_teaches_once_without_waiting_for_the_writer() {
    let server = RedisServer::start();
    let store = redis_store(&server, "soon");
    let h = IdHasher::random();
    // Warm: scripts loaded, connections up.
    observe_and_record(&store, &observation(&h, 1, "warm", "192.0.2.1", "w")).await;
    store.flush().await;
    const N: u128 = 40;
    let before = server.command_calls();
    for d in 0..N {
        let name = format!("soon{d}");
        let o = observation(&h, 2 * d + 11, &name, "192.0.2.7", "phone");
        store.observe(&o).await.unwrap();
        record_allow(&store, &o);
        let effect = store.report(&login_succeeded(o.user, o.decision)).await;
        assert!(effect.unwrap().profile_updated, "{d}");
    }
    store.flush().await;
    let after = server.command_calls();
    let calls = |c: &str| after.get(c).unwrap_or(&0) - before.get(c).unwrap_or(&0);
    // The writer wrote every record with HSETNX; a report that found its
    // record still queued wrote it marked and gave the pending hash its
    // TTL (one PEXPIRE more than the writer's one per record and the IP's
    // and device's first refresh). How many do depends on when the writer
    // runs (a report reads before it writes); the script's test covers
    // that path on its own.
    let wrote = calls("pexpire").saturating_sub(N as u64 + 2);
    eprintln!("reports that wrote their decision's record: {wrote}");
    assert_eq!(calls("hsetnx"), N as u64);
    for d in 0..N {
        let name = format!("soon{d}");
        let user = h.key(Dim::User, name.as_bytes());
        let p = store.profile(user).await.unwrap();
        assert_eq!(p.verified_logins, 1, "{name}");
        assert_eq!(p.recent.len(), 1, "{name}");
        let record = server
            .cli(&[
                "HGET",
                &user_key("soon", user, "p"),
                &format!("{:032x}", 2 * d + 11),
            ])
            .unwrap();
        assert!(record.starts_with("1|"), "{name}: {record}");
        // Taught once: a second report changes nothing.
        let again = store
            .report(&login_succeeded(user, 2 * d + 11))
            .await
            .unwrap();
        assert!(!again.profile_updated);
    }
}

/// A report of a decision Redis does not know is retryable while the
/// decision is seconds old (the replica that made it may not have written
/// it yet), and unknown after.
#[tokio::test]
async fn a_report_of_a_decision_just_made_elsewhere_is_retryable() {
    let server = RedisServer::start();
    let store = redis_store(&server, "fresh");
    let user = IdHasher::random().key(Dim::User, b"elsewhere");
    let v7 = |ms: i64| (u128::from(u64::try_from(ms).unwrap()) << 80) | 0x7000_u128 << 64 | 42;
    let now = UnixMillis::now().0;
    let fresh = store.report(&login_succeeded(user, v7(now - 100))).await;
    assert!(
        matches!(fresh, Err(riskgate::store::StoreError::Unavailable(_))),
        "{fresh:?}"
    );
    let old = store.report(&login_succeeded(user, v7(now - 60_000))).await;
    assert!(
        matches!(old, Err(riskgate::store::StoreError::UnknownDecision(_))),
        "{old:?}"
    );
}

/// The profile is written only if it is still what the replica read (a
/// string, none, or an earlier version's hash), and a report's decision
/// mark only if the record is still as read (a record from the replica's
/// queue may be absent: then it is written, with the decision TTL).
#[test]
fn a_profile_is_written_only_if_unchanged_since_it_was_read() {
    let server = RedisServer::start();
    let script = include_str!("../src/store/redis/write_profile.lua");
    let (kprof, kpend, field) = ("s:{u:1}:prof", "s:{u:1}:p", "2a");
    let write = |was: &str, new: &str, ttl: &str, record: Option<(&str, &str, &str)>| {
        let mut args = vec!["EVAL", script];
        match record {
            None => args.extend(["1", kprof, was, new, ttl]),
            Some((read, marked, queued)) => args.extend([
                "2", kprof, kpend, was, new, ttl, field, read, marked, "60000", queued,
            ]),
        }
        server.cli(&args).unwrap().trim().to_string()
    };
    // None read, none there: written with its TTL.
    assert_eq!(write("", "one", "90000000", None), "1");
    let pttl = |k: &str| -> i64 { server.cli(&["PTTL", k]).unwrap().trim().parse().unwrap() };
    assert!(pttl(kprof) > 60_000_000);
    // Read as none, but written meanwhile: nothing.
    assert_eq!(write("", "two", "90000000", None), "0");
    assert_eq!(server.cli(&["GET", kprof]).unwrap().trim(), "one");
    // A queued record, absent from Redis: profile and mark written, the
    // pending hash given the decision TTL; the TTL of the profile kept.
    assert_eq!(write("one", "two", "keep", Some(("0|r", "1|r", "1"))), "1");
    assert_eq!(server.cli(&["HGET", kpend, field]).unwrap().trim(), "1|r");
    assert!(pttl(kpend) > 0 && pttl(kpend) <= 60_000);
    assert!(pttl(kprof) > 60_000_000);
    // The same queued record again: Redis's copy is marked, so nothing.
    assert_eq!(
        write("two", "three", "keep", Some(("0|r", "1|r", "1"))),
        "0"
    );
    // Read from Redis as marked: unmarking writes; an empty profile
    // leaves the profile as it is.
    assert_eq!(write("two", "", "keep", Some(("1|r", "0|r", "0"))), "1");
    assert_eq!(server.cli(&["GET", kprof]).unwrap().trim(), "two");
    assert_eq!(server.cli(&["HGET", kpend, field]).unwrap().trim(), "0|r");
    // An earlier version's hash, read as 2 fields and v = 3: replaced by
    // the string, its TTL kept; a hash changed since is not.
    server.cli(&["DEL", kprof]).unwrap();
    server.cli(&["HSET", kprof, "v", "3", "la", "1"]).unwrap();
    server.cli(&["PEXPIRE", kprof, "5000000"]).unwrap();
    assert_eq!(write("hash:2:2", "new", "keep", None), "0");
    assert_eq!(write("hash:2:3", "new", "keep", None), "1");
    assert_eq!(server.cli(&["GET", kprof]).unwrap().trim(), "new");
    assert!(pttl(kprof) > 4_000_000 && pttl(kprof) <= 5_000_000);
}

/// The merge script applies a replica's batch of taught global counts once,
/// however often a failed merge sends it again, and never counts below zero.
#[test]
fn a_retried_merge_applies_each_batch_once() {
    let server = RedisServer::start();
    let script = concat!(
        include_str!("../src/store/redis/common.lua"),
        include_str!("../src/store/redis/merge.lua")
    );
    let eval = |args: &[&str]| {
        let mut all = vec![
            "EVAL",
            script,
            "3",
            "m:{g}:stats",
            "m:{g}:m:1",
            "m:{g}:s:3:ab",
        ];
        all.extend_from_slice(&["60000", "60000", "m:1"]);
        all.extend_from_slice(args);
        server.cli(&all).unwrap().trim().to_string()
    };
    let state = || {
        let stats = server
            .cli(&["HMGET", "m:{g}:stats", "logins", "users", "n3", "m:1"])
            .unwrap();
        let count = server.cli(&["GET", "m:{g}:s:3:ab"]).unwrap();
        format!(
            "{} | {}",
            stats.split_whitespace().collect::<Vec<_>>().join(" "),
            count.trim()
        )
    };
    // Batch 1 teaches a login of a new user with value `ab` in slot 3.
    let teach = ["1", "1", "1", "1", "1", "3", "1"];
    assert_eq!(eval(&teach), "1");
    assert_eq!(state(), "1 1 1 1 | 1");
    // Sent again (its merge's answer was lost): nothing changes.
    assert_eq!(eval(&teach), "1");
    assert_eq!(state(), "1 1 1 1 | 1");
    // Batch 2 untaught it; batch 3 untaught it again (another replica
    // already had): never below zero, distinct only once.
    assert_eq!(
        eval(&[
            "2", "-1", "0", "1", "1", "3", "-1", "3", "-1", "0", "1", "1", "3", "-1"
        ]),
        "3"
    );
    assert_eq!(state(), "0 1 0 3 | 0");
    // Every key it writes has a TTL.
    for k in ["m:{g}:stats", "m:{g}:m:1", "m:{g}:s:3:ab"] {
        let ttl: i64 = server.cli(&["PTTL", k]).unwrap().trim().parse().unwrap();
        assert!(ttl > 0, "{k}: {ttl}");
    }
}

/// Each process is a new replica with its own marker field in the stats:
/// the fields of replicas gone for a day (marker key expired) are swept,
/// so restarts do not grow the stats hash; a live replica's stays.
#[tokio::test]
async fn gone_replicas_markers_are_swept() {
    let server = RedisServer::start();
    server
        .cli(&[
            "HSET",
            "sw:{g}:stats",
            "logins",
            "3",
            "m:dead",
            "9",
            "m:alive",
            "4",
        ])
        .unwrap();
    server
        .cli(&["SET", "sw:{g}:m:alive", "4", "PX", "60000"])
        .unwrap();
    let store = RedisStore::new(RedisSettings {
        key_prefix: "sw".into(),
        ..RedisSettings::new(server.url())
    })
    .unwrap();
    // The first merge sweeps.
    let fields = server.fields_once_swept("sw:{g}:stats").await;
    assert!(
        fields.contains("m:alive") && fields.contains("logins"),
        "{fields}"
    );
    drop(store);
}

/// A profile an earlier version kept (a hash under the same key) is read as
/// it was: observe answers from it and converts it to the string at once,
/// keeping its TTL; reports teach it further; the admin view and forget
/// count it.
#[tokio::test]
async fn an_earlier_versions_profile_hash_is_read_and_converted() {
    let server = RedisServer::start();
    let store = redis_store(&server, "conv");
    let h = IdHasher::random();
    let o = observation(&h, 1, "hilda", "192.0.2.7", "phone");
    let hex = |b: &[u8]| -> String { b.iter().map(|b| format!("{b:02x}")).collect() };
    let key = user_key("conv", o.user, "prof");
    let secs = (o.at.0 / 1000).to_string();
    let mut fields: Vec<String> = ["v", "2", "la", &o.at.0.to_string(), "lp", ""]
        .map(String::from)
        .to_vec();
    fields.extend([format!("h{}", o.at.hour_of_week()), "2".into()]);
    let mut present = Vec::new();
    for slot in 0..riskgate::core::keys::PROFILE_DIMS.len() {
        if let Some(k) = o.taught_fact(slot) {
            let f = hex(&k.0[..8]);
            fields.extend([format!("d{slot}:{f}"), "2".into()]);
            fields.extend([format!("t{slot}:{f}"), secs.clone()]);
            fields.extend([format!("n{slot}"), "1".into()]);
            present.push(slot);
        }
    }
    // A device support revoked.
    fields.extend(["rv:00000000000000aa".into(), o.at.0.to_string()]);
    let mut args = vec!["HSET", key.as_str()];
    args.extend(fields.iter().map(String::as_str));
    server.cli(&args).unwrap();
    server.cli(&["PEXPIRE", &key, "5000000"]).unwrap();

    let view = store.observe(&o).await.unwrap().profile;
    record_allow(&store, &o);
    assert_eq!(view.verified_logins, 2);
    assert_eq!(view.hour_count, 2);
    assert_eq!(view.last_login.map(|l| l.at), Some(o.at));
    assert!(!present.is_empty());
    for slot in 0..view.seen.len() {
        let expected = u32::from(present.contains(&slot));
        assert_eq!(
            (view.seen[slot], view.distinct[slot]),
            (2 * expected, expected)
        );
    }
    // Converted: one string now, with the hash's TTL.
    assert_eq!(server.cli(&["TYPE", &key]).unwrap().trim(), "string");
    let pttl: i64 = server.cli(&["PTTL", &key]).unwrap().trim().parse().unwrap();
    assert!(pttl > 4_000_000 && pttl <= 5_000_000, "{pttl}");
    // Read from the string, the same.
    let o3 = Observation {
        decision: 3,
        ..o.clone()
    };
    let again = store.observe(&o3).await.unwrap().profile;
    assert_eq!(
        (
            again.verified_logins,
            again.seen,
            again.distinct,
            again.hour_count
        ),
        (
            view.verified_logins,
            view.seen,
            view.distinct,
            view.hour_count
        )
    );
    assert_eq!(again.last_login, view.last_login);
    let p = store.profile(o.user).await.unwrap();
    assert_eq!((p.verified_logins, p.values.len()), (2, present.len()));
    assert_eq!(p.revoked.len(), 1);
    // Support trusts the device the hash had revoked (its key's first 8
    // bytes, as the hash field named it): the revocation is lifted, not
    // kept beside the trust.
    let mut device = riskgate::core::keys::Key([0; 16]);
    device.0[7] = 0xaa;
    let at = UnixMillis::now();
    store
        .mark_device(o.user, device, riskgate::store::Mark::Trust, at)
        .await
        .unwrap();
    let p = store.profile(o.user).await.unwrap();
    assert!(p.revoked.is_empty(), "{:?}", p.revoked);
    assert_eq!(p.trusted.len(), 1);
    let device_o = Observation {
        decision: 5,
        facts: {
            let mut f = o.facts;
            f.set(Dim::Device, Some(device));
            f
        },
        ..o.clone()
    };
    assert!(
        !store
            .observe(&device_o)
            .await
            .unwrap()
            .profile
            .device_revoked
    );
    // Taught further.
    store.flush().await;
    let taught = store.report(&login_succeeded(o.user, 1)).await.unwrap();
    assert!(taught.profile_updated);
    let f = store.forget(o.user).await.unwrap();
    // The trusted device is remembered as a value too.
    assert_eq!(
        (
            f.verified_logins,
            f.profile_values,
            f.trusted_devices,
            f.revoked_devices
        ),
        (3, u32::try_from(present.len()).unwrap() + 1, 1, 0)
    );
    assert_eq!(server.cli(&["EXISTS", &key]).unwrap().trim(), "0");
}

/// Forget counts an earlier version's profile hash as it did.
#[tokio::test]
async fn forget_counts_an_earlier_versions_profile_hash() {
    let server = RedisServer::start();
    let store = redis_store(&server, "oldf");
    let user = IdHasher::random().key(Dim::User, b"ivar");
    let key = user_key("oldf", user, "prof");
    server
        .cli(&[
            "HSET",
            &key,
            "v",
            "4",
            "d0:00000000000000ab",
            "4",
            "t0:00000000000000ab",
            "1",
            "d1:00000000000000cd",
            "1",
            "tr:00000000000000ab",
            "5",
            "n0",
            "1",
            "n1",
            "1",
        ])
        .unwrap();
    let f = store.forget(user).await.unwrap();
    assert_eq!(
        (
            f.verified_logins,
            f.profile_values,
            f.trusted_devices,
            f.revoked_devices
        ),
        (4, 2, 1, 0)
    );
    assert_eq!(server.cli(&["EXISTS", &key]).unwrap().trim(), "0");
}

/// Reports of one user's decisions sent at once to two replicas all teach:
/// a replica writes the profile only if nobody changed it since it read it,
/// and reads again otherwise. Each decision teaches once however many
/// times it is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reports_on_two_replicas_each_teach_once() {
    let server = RedisServer::start();
    let a = std::sync::Arc::new(redis_store(&server, "race"));
    let b = std::sync::Arc::new(redis_store(&server, "race"));
    let h = IdHasher::random();
    const N: u128 = 24;
    let user = h.key(Dim::User, b"jo");
    for d in 0..N {
        // Odd decisions: successes.
        let o = observation(&h, 2 * d + 1, "jo", "192.0.2.7", &format!("dev{}", d % 3));
        observe_and_record(&*a, &o).await;
    }
    a.flush().await;
    let mut tasks = Vec::new();
    for d in 0..N {
        for store in [&a, &b] {
            let store = std::sync::Arc::clone(store);
            tasks.push(tokio::spawn(async move {
                store.report(&login_succeeded(user, 2 * d + 1)).await
            }));
        }
    }
    let mut taught = 0;
    for t in tasks {
        if t.await.unwrap().unwrap().profile_updated {
            taught += 1;
        }
    }
    assert_eq!(taught, N);
    let p = a.profile(user).await.unwrap();
    assert_eq!(p.verified_logins, u32::try_from(N).unwrap());
    let devices = p
        .values
        .iter()
        .filter(|v| v.dim == Dim::Device)
        .map(|v| v.count)
        .collect::<Vec<_>>();
    assert_eq!(
        devices.iter().sum::<u32>(),
        u32::try_from(N).unwrap(),
        "{devices:?}"
    );
}

/// An observe whose writes Redis refuses (here out of memory; after a
/// failover, a read-only replica) fails, so the engine answers degraded,
/// even though every read in its pipeline was answered: the counts it
/// could not write would otherwise be missing without a trace.
#[tokio::test]
async fn an_observe_whose_writes_are_refused_fails() {
    let server = RedisServer::start();
    let store = redis_store(&server, "oom");
    let h = IdHasher::random();
    let o = observation(&h, 1, "kim", "192.0.2.9", "phone");
    store.observe(&o).await.unwrap();
    server.cli(&["CONFIG", "SET", "maxmemory", "1"]).unwrap();
    let refused = store
        .observe(&Observation {
            decision: 3,
            ..o.clone()
        })
        .await;
    assert!(
        matches!(&refused, Err(riskgate::store::StoreError::Unavailable(e)) if e.contains("OOM")),
        "{refused:?}"
    );
    server.cli(&["CONFIG", "SET", "maxmemory", "0"]).unwrap();
    store
        .observe(&Observation {
            decision: 5,
            ..o.clone()
        })
        .await
        .unwrap();
}

/// Forget counts the pending decisions that could still be reported on:
/// an expired record Redis still holds (its hash lives as long as its
/// newest record) is erased but not counted, as the memory store has
/// dropped it.
#[tokio::test]
async fn forget_does_not_count_expired_pending_decisions() {
    let server = RedisServer::start();
    let store = redis_store(&server, "exp");
    let h = IdHasher::random();
    let o = observation(&h, 1, "lou", "192.0.2.7", "phone");
    observe_and_record(&store, &o).await;
    store.flush().await;
    let key = user_key("exp", o.user, "p");
    let live = server
        .cli(&["HGET", &key, &format!("{:032x}", 1)])
        .unwrap()
        .trim()
        .to_string();
    // The same record, expired an hour ago.
    let mut parts: Vec<String> = live.split('|').map(String::from).collect();
    parts[1] = (UnixMillis::now().0 - 3_600_000).to_string();
    server
        .cli(&["HSET", &key, &format!("{:032x}", 3), &parts.join("|")])
        .unwrap();
    let f = store.forget(o.user).await.unwrap();
    assert_eq!((f.pending_decisions, f.recent_decisions), (1, 1));
    assert_eq!(server.cli(&["EXISTS", &key]).unwrap().trim(), "0");
}
