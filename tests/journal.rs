//! The decision journal: one suite on SQLite and on a private PostgreSQL,
//! a real server journaling what it decides and is told, erasure through
//! the admin API, the backtest and the stats commands of the real binary,
//! and a PostgreSQL killed under load.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/journal_suite.rs"]
mod journal_suite;
#[path = "common/postgres.rs"]
mod postgres;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use riskgate::api::pb;
use riskgate::journal::{Filter, Label, Target};

#[test]
fn sqlite_passes_the_journal_suite() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = riskgate::journal::open(&Target::Sqlite(dir.path().join("j.db"))).unwrap();
    journal_suite::run(j.as_mut());
}

#[test]
fn postgresql_passes_the_journal_suite() {
    if !postgres::available() {
        return;
    }
    let pg = postgres::PgServer::start();
    let target = Target::parse(&pg.url()).unwrap();
    let mut j = riskgate::journal::open(&target).unwrap();
    journal_suite::run(j.as_mut());
    // A second replica opening the same database finds the schema.
    let mut again = riskgate::journal::open(&target).unwrap();
    assert_eq!(again.stats().unwrap().decisions, 1);
}

/// A burst of records is written in a few large transactions, not one per
/// record, and without anyone flushing: the writer lingers a little for
/// more records, then writes what it has.
#[test]
fn the_writer_batches_a_burst_and_writes_it_unprompted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.db");
    let metrics = std::sync::Arc::new(riskgate::telemetry::Metrics::new());
    let settings = riskgate::journal::JournalSettings {
        target: Target::Sqlite(path.clone()),
        retention: Duration::from_secs(30 * 86_400),
        queue: 10_000,
    };
    let j = riskgate::journal::Journal::start(&settings, metrics.clone()).unwrap();
    let now = riskgate::domain::UnixMillis::now().0;
    let template = journal_suite::entry(
        1,
        "user",
        riskgate::domain::Channel::Web,
        riskgate::domain::CredentialResult::Valid,
        now,
    );
    for i in 0..1000u128 {
        let mut e = template.clone();
        e.id = i + 1;
        j.decision(e);
    }
    let written = || {
        let mut s = open(&Target::Sqlite(path.clone()));
        s.stats().unwrap().decisions
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while written() < 1000 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(written(), 1000, "the burst reached the file unprompted");
    let text = metrics.render();
    let commits: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("riskgate_journal_write_seconds_count "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(
        commits <= 5.0,
        "1000 records in {commits} transactions:\n{text}"
    );
}

/// Opens a journal from a thread of its own (the PostgreSQL client runs
/// its own runtime, which cannot start inside a test's).
fn open(target: &Target) -> Box<dyn riskgate::journal::JournalStore> {
    let t = target.clone();
    std::thread::spawn(move || riskgate::journal::open(&t).unwrap())
        .join()
        .unwrap()
}

fn journal_config(target: &str) -> riskgate::config::Config {
    let mut c = config();
    c.journal.target = Target::parse(target).unwrap();
    c.store.hmac_key = Some(riskgate::config::Secret::new("journal-test-key-0123456789"));
    c
}

async fn eval(
    s: &mut TestServer,
    user: &str,
    ip: &str,
    device: &str,
    ua: &str,
) -> pb::EvaluateResponse {
    s.client
        .evaluate(pb::EvaluateRequest {
            user_id: user.into(),
            channel: pb::Channel::Web as i32,
            ip_address: ip.into(),
            device: Some(pb::Device {
                device_id: device.into(),
                user_agent: ua.into(),
                binding: 0,
            }),
            credential_result: pb::CredentialResult::Valid as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

async fn report(s: &mut TestServer, id: &str, o: pb::Outcome) {
    s.client
        .report_outcome(pb::ReportOutcomeRequest {
            decision_id: id.into(),
            outcome: o as i32,
            factor: None,
        })
        .await
        .unwrap();
}

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";

#[tokio::test]
async fn a_server_journals_every_decision_and_outcome_without_raw_identifiers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let mut s = start_with(journal_config(path.to_str().unwrap())).await;
    let first = eval(
        &mut s,
        "alice@example.com",
        "198.51.100.77",
        "laptop-serial-4711",
        UA,
    )
    .await;
    report(&mut s, &first.decision_id, pb::Outcome::LoginSucceeded).await;
    let second = eval(
        &mut s,
        "mallory@example.com",
        "203.0.113.99",
        "stolen-device-0815",
        UA,
    )
    .await;
    report(
        &mut s,
        &second.decision_id,
        pb::Outcome::AnalystConfirmedFraud,
    )
    .await;
    let engine = engine(&s);
    engine.flush().await;

    let mut j = riskgate::journal::open(&Target::Sqlite(path.clone())).unwrap();
    let mut records = Vec::new();
    j.scan(&Filter::default(), &mut |r| {
        records.push(r);
        true
    })
    .unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].label, Some(Label::Legit));
    assert_eq!(records[1].label, Some(Label::Fraud));
    let r = &records[0].entry;
    assert_eq!(r.score, first.score);
    assert_eq!(r.policy_version, first.policy_version);
    assert_eq!(r.features.device.info.browser.as_ref(), "Firefox");
    assert!(r.features.user.is_new);
    assert_eq!(
        r.reasons.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
        first
            .reasons
            .iter()
            .filter(|x| !x.shadow)
            .map(|x| x.code.as_str())
            .collect::<Vec<_>>()
    );
    assert_eq!(r.user, engine.user_key("alice@example.com"));
    drop(j);

    // Nothing raw at rest: no user id, IP, device id or user agent in the
    // database file (or its write-ahead log).
    s.running.shutdown().await;
    let mut bytes = std::fs::read(&path).unwrap();
    if let Ok(wal) = std::fs::read(dir.path().join("journal.db-wal")) {
        bytes.extend(wal);
    }
    let text = String::from_utf8_lossy(&bytes);
    for raw in [
        "alice@example.com",
        "mallory",
        "198.51.100.77",
        "203.0.113.99",
        "laptop-serial-4711",
        "stolen-device",
        "Gecko/20100101",
    ] {
        assert!(!text.contains(raw), "`{raw}` is in the journal");
    }
}

#[tokio::test]
async fn forget_user_erases_the_journal_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let mut c = journal_config(path.to_str().unwrap());
    c.admin.listen = Some("127.0.0.1:0".parse().unwrap());
    c.admin.token = Some(riskgate::config::Secret::new(
        "an-admin-token-of-at-least-32-bytes!!",
    ));
    let mut s = start_with(c).await;
    for _ in 0..3 {
        eval(&mut s, "erin", "198.51.100.5", "d1", UA).await;
    }
    eval(&mut s, "frank", "198.51.100.6", "d2", UA).await;
    let addr = s.running.admin_addr.unwrap();
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut admin = pb::risk_admin_client::RiskAdminClient::new(channel);
    let mut req = tonic::Request::new(pb::ForgetUserRequest {
        user_id: "erin".into(),
    });
    req.metadata_mut().insert(
        "authorization",
        "Bearer an-admin-token-of-at-least-32-bytes!!"
            .parse()
            .unwrap(),
    );
    let f = admin.forget_user(req).await.unwrap().into_inner();
    assert_eq!(
        f.journal_decisions, 3,
        "the queued decisions are written, then erased"
    );
    engine(&s).flush().await;
    let mut j = riskgate::journal::open(&Target::Sqlite(path)).unwrap();
    assert_eq!(j.stats().unwrap().decisions, 1);
}

fn riskgate_bin() -> &'static str {
    env!("CARGO_BIN_EXE_riskgate")
}

#[tokio::test]
async fn backtest_and_stats_read_a_servers_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let mut s = start_with(journal_config(path.to_str().unwrap())).await;
    // Users with history, then each on a new device.
    for i in 0..6 {
        let (user, ip) = (format!("user{i}"), format!("198.51.100.{}", 10 + i));
        let d = eval(&mut s, &user, &ip, &format!("home-{i}"), UA).await;
        report(&mut s, &d.decision_id, pb::Outcome::LoginSucceeded).await;
        eval(&mut s, &user, &ip, &format!("new-{i}"), UA).await;
    }
    engine(&s).flush().await;
    s.running.shutdown().await;

    let candidate = dir.path().join("candidate.toml");
    let shipped =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/default.toml"))
            .unwrap();
    std::fs::write(
        &candidate,
        format!(
            "{shipped}\n[[rule]]\nname = \"new_device_steps_up\"\ndescription = \"a new device proves possession\"\nwhen = \"device.new\"\neffect = \"step_up\"\n"
        ),
    )
    .unwrap();
    let out = Command::new(riskgate_bin())
        .args(["backtest", "--journal"])
        .arg(&path)
        .arg("--rules")
        .arg(&candidate)
        .args(["--json", "--plot"])
        .arg(dir.path().join("bt.svg"))
        .env_remove("RISKGATE_RULES")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["decisions"], 12);
    assert_eq!(r["baseline_differs_from_recorded"], 0);
    // The six new-device logins move from ALLOW to STEP_UP.
    assert_eq!(r["matrix"][0][1], 6, "{r}");
    assert_eq!(r["changed"], 6);
    let rule = r["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["rule"] == "new_device_steps_up")
        .unwrap();
    assert_eq!(
        (rule["before"].as_u64(), rule["after"].as_u64()),
        (Some(0), Some(6))
    );
    let legit = r["by_label"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["label"] == "legit")
        .unwrap();
    assert_eq!(legit["before"]["allow"], 6);
    assert!(
        r["caveat"]
            .as_str()
            .unwrap()
            .contains("replayed as recorded")
    );
    let svg = std::fs::read_to_string(dir.path().join("bt.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("legit"));

    let out = Command::new(riskgate_bin())
        .args(["journal", "stats", "--json", "--journal"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["decisions"], 12);
    assert_eq!(st["outcomes"], 6);
}

#[tokio::test]
async fn killing_postgresql_under_load_loses_no_decision_and_recovers() {
    if !postgres::available() {
        return;
    }
    let mut pg = postgres::PgServer::start();
    let mut s = start_with(journal_config(&pg.url())).await;
    let load = |s: &mut TestServer, n: usize, tag: &'static str| {
        let client = s.client.clone();
        async move {
            let mut c = client;
            for i in 0..n {
                let r = c
                    .evaluate(pb::EvaluateRequest {
                        user_id: format!("{tag}-{i}"),
                        channel: pb::Channel::Web as i32,
                        ip_address: "198.51.100.1".into(),
                        credential_result: pb::CredentialResult::Valid as i32,
                        ..Default::default()
                    })
                    .await;
                assert!(
                    r.is_ok(),
                    "an Evaluate failed while the journal was down: {r:?}"
                );
            }
        }
    };
    load(&mut s, 50, "before").await;
    engine(&s).flush().await;
    pg.kill();
    load(&mut s, 200, "down").await;
    engine(&s).flush().await;
    pg.restart();
    // The writer reconnects by itself (backoff at most a few seconds here).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut after = 0;
    while std::time::Instant::now() < deadline {
        load(&mut s, 20, "after").await;
        engine(&s).flush().await;
        let j = open(&Target::parse(&pg.url()).unwrap());
        let t = std::thread::spawn(move || {
            let mut j = j;
            let mut n = 0;
            j.scan(&Filter::default(), &mut |_| {
                n += 1;
                true
            })
            .unwrap();
            n
        });
        after = t.join().unwrap();
        if after > 50 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        after > 50,
        "the journal did not recover: {after} records\n{}",
        engine(&s).metrics().render()
    );
    let metrics = engine(&s).metrics().render();
    let dropped: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("riskgate_journal_dropped_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(dropped >= 1.0, "drops while down are counted:\n{metrics}");
}

/// Simulated logins (`riskgate simulate`'s generator) sent to a server as a
/// login service would, outcomes reported as it and its analysts would;
/// then `train --journal` on what the server journaled.
#[tokio::test]
async fn a_model_trained_on_a_servers_journal_ranks_held_out_attacks_above_legit_logins() {
    use riskgate::tools::replay::reader::RbaReader;
    use riskgate::tools::simulate::{self, SimConfig, Sources};

    let mut cfg = SimConfig::new(5, 200, 14);
    cfg.attack_rate = 0.15;
    let mut csv = Vec::new();
    simulate::run(&cfg, &mut Sources::builtin().unwrap(), &mut csv).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let mut s = start_with(journal_config(path.to_str().unwrap())).await;
    let mut reader = RbaReader::new(&csv[..]).unwrap();
    let mut record = csv::ByteRecord::new();
    let (mut sent, mut attacks) = (0, 0);
    while reader.read(&mut record).unwrap() {
        let row = reader.parse(&record).unwrap();
        let attack = row.attacker.is_some() || row.account_takeover || row.attack_ip;
        let d = s
            .client
            .evaluate(pb::EvaluateRequest {
                user_id: row.user.into(),
                channel: pb::Channel::Web as i32,
                ip_address: row.ip.to_string(),
                device: Some(pb::Device {
                    device_id: String::new(),
                    user_agent: row.user_agent.unwrap_or("").into(),
                    binding: 0,
                }),
                credential_result: if row.success {
                    pb::CredentialResult::Valid
                } else {
                    pb::CredentialResult::Invalid
                } as i32,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        sent += 1;
        let outcome = if attack {
            attacks += 1;
            Some(pb::Outcome::AnalystConfirmedFraud)
        } else if !row.success {
            None
        } else if d.action == pb::Action::Allow as i32 {
            Some(pb::Outcome::LoginSucceeded)
        } else if d.action == pb::Action::StepUp as i32 {
            Some(pb::Outcome::StepUpPassed)
        } else {
            None
        };
        if let Some(o) = outcome {
            report(&mut s, &d.decision_id, o).await;
        }
    }
    engine(&s).flush().await;
    s.running.shutdown().await;
    assert!(attacks > 50 && sent > 500, "{attacks} attacks of {sent}");

    let out = Command::new(riskgate_bin())
        .args(["train", "--name", "journal-test", "--journal"])
        .arg(&path)
        .arg("--out")
        .arg(dir.path().join("m.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let model: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("m.json")).unwrap()).unwrap();
    let auc = model["training"]["held_out"]["auc"].as_f64().unwrap();
    assert!(auc > 0.9, "held-out AUC {auc}");
    // It loads as serving loads it.
    riskgate::core::model::Model::load(&dir.path().join("m.json")).unwrap();
}
