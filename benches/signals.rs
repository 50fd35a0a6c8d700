//! Signal extraction + features for one attempt against a warm in-memory
//! profile (everything on the Evaluate path except the gRPC layer and the
//! model/rules/policy core), and its parts: UA parse (cached), identifier
//! hashing, the memory store round trip, GeoIP lookup, `features::build`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use riskgate::core::features::{self, FeatureSettings};
use riskgate::core::keys::{Dim, IdHasher};
use riskgate::core::observe;
use riskgate::domain::{
    Action, Channel, CredentialResult, Degraded, FactorSet, LoginAttempt, Outcome, UnixMillis,
};
use riskgate::signals::{device::UaParser, geo};
use riskgate::store::OutcomeReport;
use riskgate::store::memory::{MemoryLimits, MemoryStore};

const UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

fn attempt(at: i64) -> LoginAttempt {
    LoginAttempt {
        user_id: "bench-user".into(),
        channel: Channel::Web,
        ip: "81.2.69.142".parse().unwrap(),
        device_id: Some("bench-device".into()),
        device_binding: riskgate::domain::DeviceBinding::None,
        user_agent: Some(UA.into()),
        occurred_at: UnixMillis(1_700_000_000_000 + at),
        credential_result: CredentialResult::Valid,
        attributes: BTreeMap::new(),
        request_id: None,
        enrolled_factors: FactorSet::EMPTY,
    }
}

fn resolver() -> Option<geo::GeoResolver> {
    let base = std::env::var_os("RISKGATE_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    let dir = base.join("maxmind/test-data");
    let paths = geo::GeoPaths {
        city: Some(dir.join("GeoIP2-City-Test.mmdb")),
        asn: Some(dir.join("GeoLite2-ASN-Test.mmdb")),
        anonymous: Some(dir.join("GeoIP2-Anonymous-IP-Test.mmdb")),
    };
    match geo::GeoResolver::open(&paths) {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("no GeoIP test databases ({e}); geo left out of the bench");
            None
        }
    }
}

fn bench(c: &mut Criterion) {
    let hasher = IdHasher::new(b"bench-secret-bench-secret");
    let parser = UaParser::new(1024);
    let store = MemoryStore::new(MemoryLimits::default());
    let geo = resolver();
    let settings = FeatureSettings::default();

    // Warm profile: 50 verified logins from this device and network.
    for i in 0..50u128 {
        let a = attempt(i as i64 * 60_000);
        let info = parser.parse(a.user_agent.as_deref());
        let g = geo.as_ref().map(|r| r.lookup(a.ip));
        let facts = observe::facts(&hasher, &a, &info, g.as_deref());
        store.observe_sync(&observe::observation(
            &hasher,
            i,
            &a,
            facts,
            observe::place(g.as_deref()),
        ));
        store
            .report_sync(&OutcomeReport {
                decision: i,
                user: hasher.key(Dim::User, a.user_id.as_bytes()),
                action: Action::Allow,
                outcome: Outcome::LoginSucceeded,
                factor: None,
                at: a.occurred_at,
            })
            .unwrap();
    }

    let mut g = c.benchmark_group("signals");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let mut n = 1_000u128;
    g.bench_function("signals_and_features_warm_profile", |b| {
        b.iter(|| {
            n += 1;
            let a = attempt(3_600_000 + n as i64);
            let info = parser.parse(a.user_agent.as_deref());
            let geo_info = geo.as_ref().map(|r| r.lookup(a.ip));
            let facts = observe::facts(&hasher, &a, &info, geo_info.as_deref());
            let obs =
                observe::observation(&hasher, n, &a, facts, observe::place(geo_info.as_deref()));
            let view = store.observe_sync(&obs);
            let gf = features::geo_features(geo_info.as_deref(), &view, a.occurred_at, &settings);
            black_box(features::build(
                &a,
                info,
                &view,
                gf,
                Degraded::default(),
                &settings,
            ))
        })
    });
    let a = attempt(0);
    g.bench_function("ua_parse_cached", |b| {
        b.iter(|| parser.parse(black_box(Some(UA))))
    });
    g.bench_function("ua_parse_uncached_woothee", |b| {
        b.iter(|| parser.parse_uncached(black_box(UA)))
    });
    let info = parser.parse(Some(UA));
    g.bench_function("hash_identifiers", |b| {
        b.iter(|| observe::facts(&hasher, black_box(&a), &info, None))
    });
    if let Some(r) = &geo {
        let ip = "81.2.69.142".parse().unwrap();
        g.bench_function("geoip_city_asn_anonymous_uncached", |b| {
            b.iter(|| r.lookup_uncached(black_box(ip)))
        });
        g.bench_function("geoip_cached", |b| b.iter(|| r.lookup(black_box(ip))));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
