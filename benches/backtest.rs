//! `cargo bench --bench backtest`: a backtest over a generated journal of
//! 1,000,000 decisions (SQLite, in a temp dir), re-deciding every one with
//! the shipped rules and a candidate that adds a rule. The target is ≤ 5 s
//! on the 2-core build machine (issue: the decision journal).
//!
//! The journal is made of decisions the core really made on a mix of
//! attempts (repeat logins, new devices, failures, automation), each
//! written with its own id, user and time; `RISKGATE_BENCH_DECISIONS`
//! changes the count.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use riskgate::core::inputs::StoreView;
use riskgate::core::keys::{Dim, IdHasher};
use riskgate::core::model::Model;
use riskgate::core::rules::RuleSet;
use riskgate::core::{self, Inputs};
use riskgate::domain::{
    Channel, CredentialResult, Degraded, FactorSet, LoginAttempt, Outcome, UnixMillis,
};
use riskgate::journal::{self, DecisionEntry, Entry, Filter, OutcomeEntry, Target};
use riskgate::signals::device::UaParser;
use riskgate::tools::backtest::{self, Side};

const T0: i64 = 1_772_452_800_000;

/// The binary's allocator, so the bench measures what `riskgate backtest`
/// does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let n: u64 = std::env::var("RISKGATE_BENCH_DECISIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench-journal.db");
    let target = Target::Sqlite(path.clone());
    let rules = RuleSet::embedded().unwrap();
    let model = Model::embedded().unwrap();
    let ua = UaParser::new(64);
    let hasher = IdHasher::new(b"bench-journal-key");

    // A few real decisions over different views, as templates.
    let agents = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
        "python-requests/2.31.0",
    ];
    let mut templates = Vec::new();
    for (i, agent) in agents.iter().enumerate() {
        for (known, failures, ok) in [
            (true, 0, true),
            (false, 0, true),
            (true, 6, true),
            (false, 3, false),
        ] {
            let mut view = StoreView::default();
            view.profile.verified_logins = 12;
            if known {
                view.profile.seen = [3; riskgate::core::keys::PROFILE_DIMS.len()];
            }
            view.velocity.user_failures.h1 = failures;
            let attempt = LoginAttempt {
                user_id: "template".into(),
                channel: Channel::ALL[i % 2],
                ip: "198.51.100.7".parse().unwrap(),
                device_id: Some("d".into()),
                device_binding: riskgate::domain::DeviceBinding::None,
                user_agent: Some(agent.to_string()),
                occurred_at: UnixMillis(T0),
                credential_result: if ok {
                    CredentialResult::Valid
                } else {
                    CredentialResult::Invalid
                },
                attributes: BTreeMap::new(),
                request_id: None,
                enrolled_factors: FactorSet::EMPTY,
            };
            let e = core::evaluate(
                Inputs {
                    attempt: &attempt,
                    device: ua.parse(Some(agent)),
                    geo: None,
                    view: &view,
                    degraded: Degraded {
                        store: false,
                        geo: true,
                    },
                },
                &Default::default(),
                &model,
                &rules,
            );
            templates.push(Arc::new(DecisionEntry::new(
                0,
                hasher.key(Dim::User, b"template"),
                FactorSet::EMPTY,
                e.features,
                &e.decision,
            )));
        }
    }

    // The body encoding alone, for the writer's cost per record.
    let started = Instant::now();
    let mut bytes = 0;
    for t in templates.iter().cycle().take(200_000) {
        bytes += journal::codec::encode(t).unwrap().len();
    }
    eprintln!(
        "body encoding alone: {:.2} µs per record, {} bytes on average",
        started.elapsed().as_secs_f64() * 1e6 / 200_000.0,
        bytes / 200_000
    );

    let started = Instant::now();
    let mut j = journal::open(&target).unwrap();
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..n {
        let t = &templates[(i % templates.len() as u64) as usize];
        let mut e = (**t).clone();
        e.id = u128::from(i) + 1;
        e.at = UnixMillis(T0 + i as i64 * 10);
        e.features.at = e.at;
        e.user = hasher.key(Dim::User, format!("user{}", i % 50_000).as_bytes());
        batch.push(Entry::Decision(Box::new(e)));
        if i % 7 == 0 {
            batch.push(Entry::Outcome(OutcomeEntry {
                decision: u128::from(i) + 1,
                at: UnixMillis(T0 + i as i64 * 10 + 5),
                outcome: Outcome::LoginSucceeded,
                factor: None,
            }));
        }
        if batch.len() >= 10_000 {
            j.append(&batch).unwrap();
            batch.clear();
        }
    }
    j.append(&batch).unwrap();
    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    eprintln!(
        "wrote {n} decisions in {:.1} s ({:.0} bytes per decision on disk)",
        started.elapsed().as_secs_f64(),
        bytes as f64 / n as f64
    );

    let mut candidate_text = riskgate::core::rules::DEFAULT_RULES_TOML.to_string();
    candidate_text.push_str(
        "\n[[rule]]\nname = \"new_device_steps_up\"\ndescription = \"a new device proves possession\"\nwhen = \"device.new || attempt.channel == 'mobile_app'\"\neffect = \"step_up\"\n",
    );
    let baseline = Side {
        origin: "shipped".into(),
        rules: Arc::new(RuleSet::embedded().unwrap()),
        model: Arc::new(Model::embedded().unwrap()),
    };
    let candidate = Side {
        origin: "candidate".into(),
        rules: Arc::new(RuleSet::parse(&candidate_text, "candidate.toml").unwrap()),
        model: Arc::new(Model::embedded().unwrap()),
    };
    for run in 1..=3 {
        let mut j = journal::open(&target).unwrap();
        let r = backtest::run(
            j.as_mut(),
            "bench",
            &Filter::default(),
            &baseline,
            &candidate,
            20,
        )
        .unwrap();
        assert_eq!(r.decisions, n);
        println!(
            "backtest run {run}: {} decisions in {:.2} s ({:.0}/s), {} change",
            r.decisions, r.seconds, r.decisions_per_second, r.changed
        );
    }
}
