//! The cost of one attempt without the network: the pure core
//! (`core::decide` on built features, and `core::evaluate`, which builds
//! them first, with the shipped rules and model),
//! the memory store's `observe_sync` on a warm profile, and the whole
//! `Engine::evaluate` on a current-thread runtime.
//!
//! Features come from a real `MemoryStore` that has learned the user, so the
//! profile and velocity sections are what a repeat login, a new device on a
//! new network, and a password-spray attempt really see.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use riskgate::core::features::{self, Features};
use riskgate::core::inputs::StoreView;
use riskgate::core::keys::{Dim, IdHasher};
use riskgate::core::model::Model;
use riskgate::core::observe;
use riskgate::core::rules::RuleSet;
use riskgate::core::{self, Inputs};
use riskgate::domain::{
    Action, Channel, CredentialResult, Degraded, FactorSet, LoginAttempt, Outcome, UnixMillis,
};
use riskgate::engine::{Engine, EngineSettings};
use riskgate::signals::device::UaParser;
use riskgate::store::OutcomeReport;
use riskgate::store::memory::{MemoryLimits, MemoryStore};
use riskgate::telemetry::Metrics;

const T0: i64 = 1_767_000_000_000;
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const SAFARI_IOS: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1";

fn attempt(
    user: &str,
    ip: &str,
    device: Option<&str>,
    ua: &str,
    ok: bool,
    at: i64,
) -> LoginAttempt {
    LoginAttempt {
        user_id: user.into(),
        channel: Channel::Web,
        ip: ip.parse().unwrap(),
        device_id: device.map(str::to_string),
        device_binding: riskgate::domain::DeviceBinding::None,
        user_agent: Some(ua.into()),
        occurred_at: UnixMillis(at),
        credential_result: if ok {
            CredentialResult::Valid
        } else {
            CredentialResult::Invalid
        },
        attributes: BTreeMap::new(),
        request_id: None,
        enrolled_factors: FactorSet::EMPTY,
    }
}

struct World {
    hasher: IdHasher,
    ua: UaParser,
    store: MemoryStore,
    next_decision: AtomicU64,
}

impl World {
    /// A store where `alice` has 20 verified logins from her laptop at home,
    /// and one IP has sprayed 40 users in the last minutes.
    fn new() -> Self {
        let w = World {
            hasher: IdHasher::new(b"bench-key"),
            ua: UaParser::new(10_000),
            store: MemoryStore::new(MemoryLimits::default()),
            next_decision: AtomicU64::new(1),
        };
        for i in 0..20 {
            let a = attempt(
                "alice",
                "198.51.100.10",
                Some("laptop-1"),
                CHROME,
                true,
                T0 - (20 - i) * 86_400_000,
            );
            let d = w.observe(&a).0;
            w.store
                .report_sync(&OutcomeReport {
                    decision: d,
                    user: w.hasher.key(Dim::User, a.user_id.as_bytes()),
                    action: Action::Allow,
                    outcome: Outcome::LoginSucceeded,
                    factor: None,
                    at: a.occurred_at,
                })
                .unwrap();
        }
        for i in 0..40 {
            let a = attempt(
                &format!("victim{i}"),
                "203.0.113.66",
                None,
                "python-requests/2.31.0",
                false,
                T0 - 600_000 + i * 1000,
            );
            w.observe(&a);
        }
        w
    }

    fn observe(&self, a: &LoginAttempt) -> (u128, StoreView) {
        let decision = u128::from(self.next_decision.fetch_add(1, Ordering::Relaxed));
        let device = self.ua.parse(a.user_agent.as_deref());
        let facts = observe::facts(&self.hasher, a, &device, None);
        let obs = observe::observation(&self.hasher, decision, a, facts, None);
        (decision, self.store.observe_sync(&obs))
    }

    fn features(&self, a: &LoginAttempt) -> (StoreView, Features) {
        let view = self.observe(a).1;
        let f = features::build(
            a,
            self.ua.parse(a.user_agent.as_deref()),
            &view,
            Default::default(),
            NO_GEO,
            &Default::default(),
        );
        (view, f)
    }
}

/// Without GeoIP, like the default server.
const NO_GEO: Degraded = Degraded {
    store: false,
    geo: true,
};

fn evaluate(
    ua: &UaParser,
    a: &LoginAttempt,
    view: &StoreView,
    model: &Model,
    rules: &RuleSet,
) -> core::Evaluated {
    core::evaluate(
        Inputs {
            attempt: a,
            device: ua.parse(a.user_agent.as_deref()),
            geo: None,
            view,
            degraded: NO_GEO,
        },
        &Default::default(),
        model,
        rules,
    )
}

fn bench(c: &mut Criterion) {
    let rules = RuleSet::embedded().unwrap();
    let model = Model::embedded().unwrap();
    let world = World::new();

    let cases = [
        (
            "repeat_login",
            attempt("alice", "198.51.100.10", Some("laptop-1"), CHROME, true, T0),
        ),
        (
            "new_device_new_network",
            attempt(
                "alice",
                "192.0.2.200",
                Some("phone-9"),
                SAFARI_IOS,
                true,
                T0,
            ),
        ),
        (
            "password_spray",
            attempt(
                "victim99",
                "203.0.113.66",
                None,
                "python-requests/2.31.0",
                false,
                T0,
            ),
        ),
    ];

    let mut g = c.benchmark_group("core");
    g.sample_size(50)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for (name, a) in &cases {
        let (view, feats) = world.features(a);
        // Sanity: the three cases really decide differently.
        let d = core::decide(&feats, FactorSet::EMPTY, &model, &rules);
        eprintln!("{name}: {} score {:.3}", d.action, d.score);
        g.bench_function(format!("decide/{name}"), |b| {
            b.iter(|| core::decide(black_box(&feats), FactorSet::EMPTY, &model, &rules))
        });
        g.bench_function(format!("evaluate/{name}"), |b| {
            b.iter(|| evaluate(&world.ua, black_box(a), black_box(&view), &model, &rules))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("store");
    g.sample_size(50)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    let warm = &cases[0].1;
    let device = world.ua.parse(warm.user_agent.as_deref());
    let facts = observe::facts(&world.hasher, warm, &device, None);
    let mut obs = observe::observation(&world.hasher, 0, warm, facts, None);
    g.bench_function("memory_observe_sync/warm_profile", |b| {
        b.iter(|| {
            obs.decision = u128::from(world.next_decision.fetch_add(1, Ordering::Relaxed));
            world.store.observe_sync(black_box(&obs))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("engine");
    g.sample_size(50)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(3));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let engine = Engine::new(
        Arc::new(MemoryStore::new(MemoryLimits::default())),
        IdHasher::new(b"bench-key"),
        RuleSet::embedded().unwrap(),
        Model::embedded().unwrap(),
        None,
        EngineSettings::default(),
        Arc::new(Metrics::new()),
    );
    // Teach the engine's own store the repeat login first.
    let first = rt.block_on(engine.evaluate(warm.clone()));
    rt.block_on(engine.report(&first.decision_id, Outcome::LoginSucceeded, None))
        .unwrap();
    g.bench_function("evaluate/repeat_login", |b| {
        b.iter(|| rt.block_on(engine.evaluate(black_box(warm.clone()))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
