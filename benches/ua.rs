//! User-agent parsing cost: uncached and cached, for both backends
//! (woothee, compiled in; uap-core, from
//! `$RISKGATE_SHARED_DATA/uap-core/regexes.yaml`, default `../shared/data`),
//! plus the uap worst case (an 8 KiB header) and its rule compilation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use riskgate::signals::device::UaParser;

/// A mix of what a login endpoint sees: desktop and mobile browsers, a
/// crawler, an HTTP library, and noise.
const AGENTS: &[(&str, &str)] = &[
    (
        "chrome_windows",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    ),
    (
        "safari_iphone",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    ),
    (
        "chrome_android",
        "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36",
    ),
    (
        "googlebot",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    ),
    ("curl", "curl/8.4.0"),
    ("garbage", "zz\u{ffff} not a user agent"),
];

fn uap_rules() -> Option<PathBuf> {
    let base = std::env::var_os("RISKGATE_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    let path = base.join("uap-core/regexes.yaml");
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "no uap-core rules at `{}`; uap left out of the bench",
            path.display()
        );
        None
    }
}

fn bench_parser(c: &mut Criterion, name: &str, parser: &UaParser) {
    let mut g = c.benchmark_group(format!("ua_{name}"));
    for (label, ua) in AGENTS {
        g.bench_function(format!("uncached/{label}"), |b| {
            b.iter(|| parser.parse_uncached(black_box(ua)))
        });
    }
    g.bench_function("uncached/mix", |b| {
        b.iter(|| {
            for (_, ua) in AGENTS {
                black_box(parser.parse_uncached(black_box(ua)));
            }
        })
    });
    g.bench_function("cached/mix", |b| {
        for (_, ua) in AGENTS {
            parser.parse(Some(ua));
        }
        b.iter(|| {
            for (_, ua) in AGENTS {
                black_box(parser.parse(Some(black_box(ua))));
            }
        })
    });
    // The worst case a client controls: a long header that no rule
    // matches early (about 8 KiB, a common header-size limit).
    let long = format!("Mozilla/5.0 ({}) Gecko/20100101", "x; ".repeat(2700));
    g.bench_function("uncached/8KiB", |b| {
        b.iter(|| parser.parse_uncached(black_box(&long)))
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    bench_parser(c, "woothee", &UaParser::new(1024));
    let Some(rules) = uap_rules() else {
        return;
    };
    let uap = UaParser::from_regexes(&rules, 1024).unwrap();
    bench_parser(c, "uap", &uap);

    let mut g = c.benchmark_group("ua_uap_load");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("from_regexes", |b| {
        b.iter(|| UaParser::from_regexes(black_box(&rules), 16).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
