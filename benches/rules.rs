//! 100 realistic rules over the real `Features` struct: riskgate's compiled
//! CEL subset against the `cel` crate's interpreter, side by side in one run.
//! Both engines must agree on every result before anything is timed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use riskgate::core::features::Features;
use riskgate::core::rules::cel::{Program, Schema, Value, compile};
use riskgate::core::rules::features_from_table;

/// 20 templates × 5 thresholds = 100 rules; `{}` is the threshold.
const TEMPLATES: &[&str] = &[
    "velocity.ip_failures_1h >= {} && !device.known && attempt.channel in ['web', 'api']",
    "velocity.user_failures_1h >= {}",
    "velocity.ip_distinct_users_1h >= {} && velocity.ip_failures_1h >= 5",
    "device.users_24h >= {} && attempt.channel == 'web'",
    "geo.speed_kmh > {}.0 * 100.0 && geo.distance_km > 500.0",
    "user.verified_logins < {} && device.new",
    "(device.is_automation || device.is_crawler) && velocity.ip_attempts_1h > {}",
    "geo.country in ['KP', 'IR', 'SY', 'CU'] && velocity.user_failures_24h > {}",
    "network.new_network && geo.new_country && velocity.user_failures_1h >= {}",
    "attempt.hour_of_week < {} * 10 && behavior.unusual_hour",
    "velocity.network_failures_1h >= {} * 4 && !network.network_known",
    "device.browser == 'UNKNOWN' && velocity.ip_failures_24h > {}",
    "velocity.global_failure_ratio_1m > 0.{} && !device.known",
    "attempt.credential_result == 'invalid' && velocity.device_failures_1h >= {}",
    "geo.tor || (geo.vpn && velocity.ip_distinct_users_1h > {})",
    "device.os.startsWith('Windows') && device.new_user_agent && velocity.user_failures_1h > {}",
    "size(device.browser_version) > {} && device.category == 'crawler'",
    "geo.asn == 6{} && geo.hosting",
    "velocity.ip_failures_1m >= {} || velocity.device_failures_1m >= {}",
    "!behavior.recent_strong_auth && user.verified_logins > {} && geo.new_city && geo.new_asn",
];

fn rules() -> Vec<String> {
    let mut out = Vec::new();
    for t in TEMPLATES {
        for k in 1..=5 {
            out.push(t.replace("{}", &k.to_string()));
        }
    }
    out
}

fn inputs() -> Vec<Features> {
    let attack: toml::Table = toml::from_str(
        r#"
        attempt = { channel = "web", credential_result = "invalid", hour_of_week = 14 }
        user = { verified_logins = 3 }
        device = { new = true, users_24h = 4, is_automation = true, browser = "UNKNOWN", os = "Windows 10", new_user_agent = true }
        network = { new_network = true }
        geo = { country = "IR", new_country = true, new_city = true, new_asn = true, speed_kmh = 1200.0, distance_km = 4500.0, vpn = true, asn = 63, hosting = true }
        velocity = { ip_failures_1h = 40, user_failures_1h = 6, ip_distinct_users_1h = 30, ip_attempts_1h = 45, network_failures_1h = 50, ip_failures_24h = 90, device_failures_1h = 3, ip_failures_1m = 4, global_failure_ratio_1m = 0.45, user_failures_24h = 8 }
        behavior = { unusual_hour = true }
        "#,
    )
    .unwrap();
    let benign: toml::Table = toml::from_str(
        r#"
        attempt = { channel = "mobile_app", hour_of_week = 100 }
        user = { verified_logins = 40 }
        device = { known = true, users_24h = 1, browser = "Safari", os = "iPhone", browser_version = "17.1", category = "smartphone" }
        network = { network_known = true, ip_known = true }
        geo = { country = "SE", asn = 3301 }
        behavior = { recent_strong_auth = true, hour_count = 5 }
        "#,
    )
    .unwrap();
    vec![
        features_from_table(&attack).unwrap(),
        features_from_table(&benign).unwrap(),
    ]
}

/// The same features as nested CEL maps, built from the schema.
fn cel_context(f: &Features) -> cel_crate::Context<'static, 'static> {
    let mut groups: HashMap<String, HashMap<String, cel_crate::Value>> = HashMap::new();
    for field in <Features as Schema>::fields() {
        let (group, name) = field.path.split_once('.').unwrap();
        let v = match (field.get)(f) {
            Value::Bool(b) => cel_crate::Value::Bool(b),
            Value::Int(i) => cel_crate::Value::Int(i),
            Value::Double(d) => cel_crate::Value::Float(d),
            Value::Str(s) => cel_crate::Value::from(s),
        };
        groups
            .entry(group.to_string())
            .or_default()
            .insert(name.to_string(), v);
    }
    let mut ctx = cel_crate::Context::default();
    for (g, m) in groups {
        ctx.add_variable_from_value(g, cel_crate::Value::from(m));
    }
    ctx
}

fn bench(c: &mut Criterion) {
    let sources = rules();
    assert_eq!(sources.len(), 100);
    let ours: Vec<Program<Features>> = sources
        .iter()
        .map(|s| compile::<Features>(s).unwrap_or_else(|e| panic!("{s}: {e:?}")))
        .collect();
    let theirs: Vec<cel_crate::Program> = sources
        .iter()
        .map(|s| cel_crate::Program::compile(s).unwrap_or_else(|e| panic!("{s}: {e:?}")))
        .collect();
    let inputs = inputs();
    let contexts: Vec<_> = inputs.iter().map(cel_context).collect();
    let mut fired = 0;
    for (f, ctx) in inputs.iter().zip(&contexts) {
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            let a = a.eval(f).unwrap();
            let b = b.execute(ctx).unwrap() == cel_crate::Value::Bool(true);
            assert_eq!(a, b, "engines disagree on `{}`", sources[i]);
            fired += usize::from(a);
        }
    }
    eprintln!("100 rules × {} inputs agree; {fired} hits", inputs.len());

    let mut g = c.benchmark_group("100_rules");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    g.bench_function("riskgate_compiled", |b| {
        b.iter(|| {
            let mut n = 0;
            for f in &inputs {
                for p in &ours {
                    n += usize::from(p.eval(black_box(f)).unwrap_or(false));
                }
            }
            n
        })
    });
    g.bench_function("cel_crate_interpreter", |b| {
        b.iter(|| {
            let mut n = 0;
            for ctx in &contexts {
                for p in &theirs {
                    n += usize::from(
                        p.execute(black_box(ctx)).ok() == Some(cel_crate::Value::Bool(true)),
                    );
                }
            }
            n
        })
    });
    g.finish();
    // Per rule = reported time / 200 (100 rules × 2 inputs).
}

criterion_group!(benches, bench);
criterion_main!(benches);
