//! Resident memory of the memory store per learned user.
//!
//! Learns 1,000,000 distinct users (each with their own device and home IP,
//! a user agent from a small set) the way the server does: `observe_sync`,
//! then `record_decision` (the answer, for the admin API's recent
//! decisions), then `report_sync` (LOGIN_SUCCEEDED on an ALLOW). Prints the
//! growth of the resident set (`/proc/self/statm`, resident pages × 4 KiB)
//! in two stages: after the observations and records (velocity counters,
//! pending decisions), and after the reports (profiles and global value
//! counts). Run: `cargo bench --bench memory`.
//! Set `RISKGATE_MEMORY_USERS` to measure another count.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use riskgate::core::decision_id::encode as encode_decision_id;
use riskgate::core::inputs::{Facts, Observation};
use riskgate::core::keys::{Dim, IdHasher};
use riskgate::domain::{Action, Outcome, Reason, UnixMillis};
use riskgate::store::memory::{MemoryLimits, MemoryStore};
use riskgate::store::{DecisionRecord, OutcomeReport, Store};

const PAGE: u64 = 4096;
const T0: i64 = 1_767_000_000_000;
const UAS: [&str; 6] = [
    "chrome-win",
    "edge-win",
    "safari-mac",
    "firefox-linux",
    "safari-ios",
    "chrome-android",
];

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm (Linux only)");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * PAGE
}

fn mib(b: i128) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn observation(h: &IdHasher, i: u64) -> Observation {
    let ip = format!("10.{}.{}.{}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
    let net = format!("10.{}.{}.0/24", (i >> 16) & 0xff, (i >> 8) & 0xff);
    let ua = UAS[(i % 6) as usize];
    let mut facts = Facts::default();
    facts.set(
        Dim::Device,
        Some(h.key(Dim::Device, format!("dev-{i}").as_bytes())),
    );
    facts.set(Dim::Ip, Some(h.key(Dim::Ip, ip.as_bytes())));
    facts.set(Dim::Network, Some(h.key(Dim::Network, net.as_bytes())));
    facts.set(Dim::UserAgent, Some(h.key(Dim::UserAgent, ua.as_bytes())));
    facts.set(Dim::Browser, Some(h.key(Dim::Browser, ua.as_bytes())));
    facts.set(Dim::Os, Some(h.key(Dim::Os, ua.as_bytes())));
    facts.set(Dim::DeviceType, Some(h.key(Dim::DeviceType, b"pc")));
    Observation {
        decision: u128::from(i) + 1,
        at: UnixMillis(T0 + i as i64),
        user: h.key(Dim::User, format!("user-{i}").as_bytes()),
        facts,
        place: None,
        failed: false,
        bound: false,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; any filter argument is ignored.
    let users: u64 = std::env::var("RISKGATE_MEMORY_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let h = IdHasher::new(b"memory-bench");
    // Room for everything: each user's IP and device counters (2 per user)
    // and their global value counts (1 new per user: the IP; devices and
    // networks are not counted deployment-wide), with 10 % slack for
    // the per-shard caps, so every user is really learned and nothing is
    // evicted. At the default limits (1M of each) the store would stay
    // within them by evicting instead.
    let room = |n: u64| n + n / 10;
    let limits = MemoryLimits {
        max_profiles: room(users),
        max_counters: room(3 * users),
        max_pending: room(users),
        ..MemoryLimits::default()
    };
    println!(
        "memory store limits: max_profiles {}, max_counters {}, max_pending {}, history_per_dim {}",
        limits.max_profiles, limits.max_counters, limits.max_pending, limits.history_per_dim
    );
    let before = resident_bytes();
    let store = MemoryStore::new(limits);
    let started = Instant::now();

    for i in 0..users {
        let obs = observation(&h, i);
        store.observe_sync(&obs);
        let id = encode_decision_id(&h, obs.decision, obs.user, Action::Allow);
        let reasons = [
            Reason::new("new_user", "no verified login yet for this user", 0.5),
            Reason::new("new_device", "first login from this device", 0.4),
        ];
        let answer = DecisionRecord {
            decision_id: &id,
            at: obs.at,
            action: Action::Allow,
            score: 0.07,
            reasons: &reasons,
        };
        store.record_decision(&obs, &answer).unwrap();
    }
    let observed = resident_bytes();

    let mut taught = 0u64;
    for i in 0..users {
        let e = store
            .report_sync(&OutcomeReport {
                decision: u128::from(i) + 1,
                user: h.key(Dim::User, format!("user-{i}").as_bytes()),
                action: Action::Allow,
                outcome: Outcome::LoginSucceeded,
                factor: None,
                at: UnixMillis(T0 + i as i64 + 1),
            })
            .map(|e| e.profile_updated)
            .unwrap_or(false);
        taught += u64::from(e);
    }
    let profiles = store.profile_count();
    let after = resident_bytes();
    let took = started.elapsed();

    let per = |b: i128| b as f64 / users as f64;
    let obs_growth = i128::from(observed) - i128::from(before);
    let rep_growth = i128::from(after) - i128::from(observed);
    let total = i128::from(after) - i128::from(before);
    println!("users learned: {taught} of {users} (profiles held: {profiles}) in {took:.1?}");
    println!(
        "observe stage (velocity counters, pending decisions): {:+.1} MiB = {:.0} bytes/user",
        mib(obs_growth),
        per(obs_growth)
    );
    println!(
        "report stage (profiles, global value counts):         {:+.1} MiB = {:.0} bytes/user",
        mib(rep_growth),
        per(rep_growth)
    );
    println!(
        "resident growth: {:+.1} MiB = {:.0} bytes/user ({:.2} KiB/user)",
        mib(total),
        per(total),
        per(total) / 1024.0
    );
    drop(store);
}
