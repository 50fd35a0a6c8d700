//! GeoIP lookup benchmarks against the official MaxMind test databases
//! (`$RISKGATE_SHARED_DATA/maxmind/test-data`, default `../shared/data`).

use std::hint::black_box;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use riskgate::signals::geo::{GeoPaths, GeoResolver};

fn test_data() -> Option<PathBuf> {
    let base = std::env::var_os("RISKGATE_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    let dir = base.join("maxmind/test-data");
    dir.is_dir().then_some(dir)
}

fn bench(c: &mut Criterion) {
    let Some(td) = test_data() else {
        eprintln!("note: geo bench skipped, shared MaxMind test data not found");
        return;
    };
    let Ok(all) = GeoResolver::open(&GeoPaths {
        city: Some(td.join("GeoIP2-City-Test.mmdb")),
        asn: Some(td.join("GeoLite2-ASN-Test.mmdb")),
        anonymous: Some(td.join("GeoIP2-Anonymous-IP-Test.mmdb")),
    }) else {
        eprintln!("note: geo bench skipped, official test databases did not open");
        return;
    };
    let london: IpAddr = IpAddr::from([81, 2, 69, 142]); // city + anonymous hit
    let telstra: IpAddr = IpAddr::from([1, 128, 0, 0]); // asn hit
    let v6: IpAddr = IpAddr::from([0x2001, 0x218, 0, 0, 0, 0, 0, 1]); // city + asn hit

    let mut g = c.benchmark_group("geo");
    g.bench_function("uncached_city_asn_anon/81.2.69.142", |b| {
        b.iter(|| all.lookup_uncached(black_box(london)))
    });
    g.bench_function("uncached_city_asn_anon/1.128.0.0", |b| {
        b.iter(|| all.lookup_uncached(black_box(telstra)))
    });
    g.bench_function("uncached_city_asn_anon/2001:218::1", |b| {
        b.iter(|| all.lookup_uncached(black_box(v6)))
    });
    g.bench_function("cached/81.2.69.142", |b| {
        b.iter(|| all.lookup(black_box(london)))
    });
    for (name, paths) in [
        (
            "uncached_city_only/81.2.69.142",
            GeoPaths {
                city: Some(td.join("GeoIP2-City-Test.mmdb")),
                ..GeoPaths::default()
            },
        ),
        (
            "uncached_asn_only/81.2.69.142",
            GeoPaths {
                asn: Some(td.join("GeoLite2-ASN-Test.mmdb")),
                ..GeoPaths::default()
            },
        ),
        (
            "uncached_anon_only/81.2.69.142",
            GeoPaths {
                anonymous: Some(td.join("GeoIP2-Anonymous-IP-Test.mmdb")),
                ..GeoPaths::default()
            },
        ),
    ] {
        if let Ok(r) = GeoResolver::open(&paths) {
            g.bench_function(name, |b| b.iter(|| r.lookup_uncached(black_box(london))));
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
