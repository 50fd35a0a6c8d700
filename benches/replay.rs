//! Replay throughput: rows of the RBA dataset's CSV format per second
//! through the reader, the decision core (shipped rules and model, the
//! single-owner memory store) and the Freeman baseline, as
//! `riskgate replay` runs them. The file is generated in memory (50 000 rows
//! of 5 000 users, Zipf-like activity, 5% wrong passwords, a spray from an
//! attack IP); for the 1M-row CLI measurement see `benches/gen_rba_csv.py`.
//! Target: ≥ 100 000 rows/s with both scorers on one core.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use riskgate::core::features::FeatureSettings;
use riskgate::core::model::Model;
use riskgate::core::rules::RuleSet;
use riskgate::signals::device::UaParser;
use riskgate::store::memory::MemoryLimits;
use riskgate::tools::replay::reader::{COLUMNS, RbaReader};
use riskgate::tools::replay::{Replayer, Settings, Variant};

const ROWS: usize = 50_000;

const UAS: [(&str, &str, &str, &str); 4] = [
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/80.0.3987.163 Safari/537.36",
        "Chrome 80.0.3987",
        "Windows 10",
        "desktop",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 13_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0.5 Mobile/15E148 Safari/604.1",
        "Mobile Safari 13.0.5",
        "iOS 13.3",
        "mobile",
    ),
    (
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:73.0) Gecko/20100101 Firefox/73.0",
        "Firefox 73.0",
        "Ubuntu",
        "desktop",
    ),
    (
        "python-requests/2.23.0",
        "Python Requests 2.23",
        "Other",
        "bot",
    ),
];

/// A deterministic xorshift generator (no dependency for a bench fixture).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn generate(rows: usize) -> Vec<u8> {
    let mut rng = Rng(0x5eed_cafe);
    let users = (rows / 10) as u64;
    let mut out = COLUMNS.join(",");
    out.push('\n');
    let mut t: i64 = 1_580_716_800_000;
    for i in 0..rows {
        t += 1 + rng.below(2000) as i64;
        // Zipf-like: square a uniform draw to favour low user numbers.
        let r = rng.below(users);
        let user = r * r / users;
        let (mut ip, mut ok, mut attack) = (
            format!("81.{}.{}.7", user % 250, user / 250 % 250),
            rng.below(20) != 0,
            false,
        );
        let mut ua = UAS[(user % 3) as usize];
        if rng.below(100) == 0 {
            ip = "185.220.101.4".into();
            ok = rng.below(50) == 0;
            attack = true;
            ua = UAS[3];
        }
        let rtt = if rng.below(3) == 0 { "120" } else { "" };
        let _ = writeln!(
            out,
            "{i},{t},{user},{rtt},{ip},NO,Oslo,-,2119,\"{}\",{},{},{},{},{},False",
            ua.0,
            ua.1,
            ua.2,
            ua.3,
            if ok { "True" } else { "False" },
            if attack { "True" } else { "False" },
        );
    }
    out.into_bytes()
}

fn settings(riskgate: bool, freeman: bool) -> Settings {
    let variants = if riskgate {
        vec![Variant {
            name: "riskgate".into(),
            rules_origin: "shipped".into(),
            model_origin: "shipped".into(),
            rules: RuleSet::embedded().unwrap(),
            model: Model::embedded().unwrap(),
        }]
    } else {
        Vec::new()
    };
    Settings {
        variants,
        freeman,
        skip_bad: false,
        reorder_window: 0,
        limits: MemoryLimits::default(),
        features: FeatureSettings::default(),
        geo: None,
        freeman_user_history: 100,
    }
}

fn bench(c: &mut Criterion) {
    let csv = generate(ROWS);
    let mut g = c.benchmark_group("replay");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.sample_size(10);
    for (name, riskgate, freeman) in [
        ("both", true, true),
        ("riskgate", true, false),
        ("freeman", false, true),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || Replayer::new(settings(riskgate, freeman), UaParser::new(100_000)),
                |r| {
                    let reader = RbaReader::new(csv.as_slice()).unwrap();
                    let s = r.run(reader, |_| Ok(())).unwrap();
                    assert_eq!(s.rows_replayed, ROWS as u64);
                    s
                },
                BatchSize::PerIteration,
            );
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
