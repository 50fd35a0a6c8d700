//! Compiled-closure CEL subset vs the `cel` crate (tree-walking interpreter)
//! on 100 realistic risk rules.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use riskgate::rules::cel::{FieldDef, Program, Schema, Type, Value, compile};

#[derive(Clone)]
struct Features {
    channel: String,
    method: String,
    hour: i64,
    user_agent: String,
    known: bool,
    users_24h: i64,
    age_days: i64,
    fingerprint_score: f64,
    emulator: bool,
    os: String,
    ip_failures_1h: i64,
    user_failures_1h: i64,
    ip_success_1h: i64,
    user_attempts_24h: i64,
    distinct_ips_24h: i64,
    country: String,
    speed_kmh: f64,
    asn_risk: f64,
    distance_km: f64,
    is_tor: bool,
    email_domain: String,
    account_age_days: i64,
    mfa_enabled: bool,
    risk_score: f64,
}

macro_rules! f {
    ($path:literal, $ty:ident, $var:ident, $field:ident) => {
        FieldDef {
            path: $path,
            ty: Type::$ty,
            get: |x| Value::$var(x.$field),
            doc: "",
        }
    };
    ($path:literal, str, $field:ident) => {
        FieldDef {
            path: $path,
            ty: Type::String,
            get: |x| Value::Str(&x.$field),
            doc: "",
        }
    };
}

static FIELDS: &[FieldDef<Features>] = &[
    f!("attempt.channel", str, channel),
    f!("attempt.method", str, method),
    f!("attempt.hour", Int, Int, hour),
    f!("attempt.user_agent", str, user_agent),
    f!("device.known", Bool, Bool, known),
    f!("device.users_24h", Int, Int, users_24h),
    f!("device.age_days", Int, Int, age_days),
    f!(
        "device.fingerprint_score",
        Double,
        Double,
        fingerprint_score
    ),
    f!("device.emulator", Bool, Bool, emulator),
    f!("device.os", str, os),
    f!("velocity.ip_failures_1h", Int, Int, ip_failures_1h),
    f!("velocity.user_failures_1h", Int, Int, user_failures_1h),
    f!("velocity.ip_success_1h", Int, Int, ip_success_1h),
    f!("velocity.user_attempts_24h", Int, Int, user_attempts_24h),
    f!("velocity.distinct_ips_24h", Int, Int, distinct_ips_24h),
    f!("geo.country", str, country),
    f!("geo.speed_kmh", Double, Double, speed_kmh),
    f!("geo.asn_risk", Double, Double, asn_risk),
    f!("geo.distance_km", Double, Double, distance_km),
    f!("geo.is_tor", Bool, Bool, is_tor),
    f!("user.email_domain", str, email_domain),
    f!("user.account_age_days", Int, Int, account_age_days),
    f!("user.mfa_enabled", Bool, Bool, mfa_enabled),
    f!("user.risk_score", Double, Double, risk_score),
];

impl Schema for Features {
    fn fields() -> &'static [FieldDef<Self>] {
        FIELDS
    }
}

/// 20 templates × 5 thresholds = 100 rules, valid in both engines (double
/// fields are compared with double literals, since standard CEL has no
/// implicit int→double conversion in arithmetic).
fn rules() -> Vec<String> {
    const TEMPLATES: &[&str] = &[
        "velocity.ip_failures_1h >= {n} && device.known == false && attempt.channel in ['web', 'api']",
        "geo.speed_kmh > {d} && user.account_age_days < {n}",
        "device.users_24h > {n} || velocity.distinct_ips_24h > {n}",
        "user.email_domain.endsWith('.ru') && !user.mfa_enabled && velocity.user_failures_1h > {n}",
        "geo.country in ['NG', 'RU', 'KP', 'IR', 'BY'] && velocity.user_failures_1h > {n}",
        "attempt.hour < 6 && geo.distance_km > {d}",
        "device.emulator || device.fingerprint_score < {d} / 100.0",
        "(velocity.ip_failures_1h + velocity.user_failures_1h) * 2 > {n}",
        "user.risk_score > {d} / 100.0 && attempt.method == 'password'",
        "geo.is_tor && attempt.channel != 'internal' && device.age_days < {n}",
        "device.os.startsWith('Android') && device.age_days < {n}",
        "size(attempt.user_agent) < {n} || attempt.user_agent.contains('curl')",
        "velocity.ip_success_1h > 0 ? velocity.ip_failures_1h / velocity.ip_success_1h > {n} : velocity.ip_failures_1h > {n}",
        "!(geo.country in ['US', 'CA', 'GB']) && user.account_age_days < {n} && device.known == false",
        "geo.asn_risk >= {d} / 100.0 && velocity.user_attempts_24h > {n}",
        "attempt.method in ['sms_otp', 'email_link'] && device.users_24h >= {n}",
        "user.email_domain in ['mailinator.com', 'guerrillamail.com', '10minutemail.com', 'tempmail.net', 'yopmail.com', 'trashmail.com', 'sharklasers.com', 'getnada.com', 'dispostable.com', 'maildrop.cc', 'fakeinbox.com', 'throwawaymail.com'] && user.account_age_days < {n}",
        "geo.distance_km / 1000.0 > {d} / 100.0 && attempt.hour >= 22",
        "device.known && device.age_days > {n} && user.mfa_enabled && geo.country == 'US'",
        "velocity.user_attempts_24h - velocity.user_failures_1h < {n} && velocity.user_failures_1h % 3 == 0",
    ];
    let mut out = Vec::new();
    for t in TEMPLATES {
        for i in 0..5i64 {
            let n = 3 + i * 4;
            let d = format!("{:.1}", 50.0 + i as f64 * 150.0);
            out.push(t.replace("{n}", &n.to_string()).replace("{d}", &d));
        }
    }
    out
}

fn inputs() -> Vec<Features> {
    let base = Features {
        channel: "web".into(),
        method: "password".into(),
        hour: 3,
        user_agent: "Mozilla/5.0 (X11; Linux x86_64)".into(),
        known: false,
        users_24h: 4,
        age_days: 2,
        fingerprint_score: 0.4,
        emulator: false,
        os: "Android 14".into(),
        ip_failures_1h: 22,
        user_failures_1h: 6,
        ip_success_1h: 2,
        user_attempts_24h: 14,
        distinct_ips_24h: 9,
        country: "NG".into(),
        speed_kmh: 1200.0,
        asn_risk: 0.8,
        distance_km: 4500.0,
        is_tor: true,
        email_domain: "yopmail.com".into(),
        account_age_days: 5,
        mfa_enabled: false,
        risk_score: 0.7,
    };
    let benign = Features {
        channel: "ios".into(),
        known: true,
        users_24h: 1,
        age_days: 400,
        ip_failures_1h: 0,
        user_failures_1h: 0,
        ip_success_1h: 0,
        user_attempts_24h: 2,
        distinct_ips_24h: 1,
        country: "US".into(),
        speed_kmh: 0.0,
        asn_risk: 0.05,
        distance_km: 3.0,
        is_tor: false,
        email_domain: "gmail.com".into(),
        account_age_days: 2000,
        mfa_enabled: true,
        risk_score: 0.02,
        hour: 14,
        ..base.clone()
    };
    vec![base, benign]
}

fn cel_context(x: &Features) -> cel_crate::Context<'static, 'static> {
    fn group(kv: Vec<(&str, cel_crate::Value)>) -> cel_crate::Value {
        let m: HashMap<String, cel_crate::Value> =
            kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        cel_crate::Value::from(m)
    }
    let s = |v: &str| cel_crate::Value::from(v);
    let mut ctx = cel_crate::Context::default();
    ctx.add_variable_from_value(
        "attempt",
        group(vec![
            ("channel", s(&x.channel)),
            ("method", s(&x.method)),
            ("hour", cel_crate::Value::Int(x.hour)),
            ("user_agent", s(&x.user_agent)),
        ]),
    );
    ctx.add_variable_from_value(
        "device",
        group(vec![
            ("known", cel_crate::Value::Bool(x.known)),
            ("users_24h", cel_crate::Value::Int(x.users_24h)),
            ("age_days", cel_crate::Value::Int(x.age_days)),
            (
                "fingerprint_score",
                cel_crate::Value::Float(x.fingerprint_score),
            ),
            ("emulator", cel_crate::Value::Bool(x.emulator)),
            ("os", s(&x.os)),
        ]),
    );
    ctx.add_variable_from_value(
        "velocity",
        group(vec![
            ("ip_failures_1h", cel_crate::Value::Int(x.ip_failures_1h)),
            (
                "user_failures_1h",
                cel_crate::Value::Int(x.user_failures_1h),
            ),
            ("ip_success_1h", cel_crate::Value::Int(x.ip_success_1h)),
            (
                "user_attempts_24h",
                cel_crate::Value::Int(x.user_attempts_24h),
            ),
            (
                "distinct_ips_24h",
                cel_crate::Value::Int(x.distinct_ips_24h),
            ),
        ]),
    );
    ctx.add_variable_from_value(
        "geo",
        group(vec![
            ("country", s(&x.country)),
            ("speed_kmh", cel_crate::Value::Float(x.speed_kmh)),
            ("asn_risk", cel_crate::Value::Float(x.asn_risk)),
            ("distance_km", cel_crate::Value::Float(x.distance_km)),
            ("is_tor", cel_crate::Value::Bool(x.is_tor)),
        ]),
    );
    ctx.add_variable_from_value(
        "user",
        group(vec![
            ("email_domain", s(&x.email_domain)),
            (
                "account_age_days",
                cel_crate::Value::Int(x.account_age_days),
            ),
            ("mfa_enabled", cel_crate::Value::Bool(x.mfa_enabled)),
            ("risk_score", cel_crate::Value::Float(x.risk_score)),
        ]),
    );
    ctx
}

fn bench(c: &mut Criterion) {
    let srcs = rules();
    assert_eq!(srcs.len(), 100);
    let ours: Vec<Program<Features>> = srcs
        .iter()
        .map(|s| compile::<Features>(s).unwrap_or_else(|d| panic!("{s}: {d:?}")))
        .collect();
    let theirs: Vec<cel_crate::Program> = srcs
        .iter()
        .map(|s| cel_crate::Program::compile(s).unwrap_or_else(|e| panic!("{s}: {e:?}")))
        .collect();
    let inputs = inputs();
    let ctxs: Vec<_> = inputs.iter().map(cel_context).collect();

    // Both engines must agree on every rule and input.
    let mut fired = 0;
    for (x, ctx) in inputs.iter().zip(&ctxs) {
        for ((src, o), t) in srcs.iter().zip(&ours).zip(&theirs) {
            let a = o.eval(x).unwrap_or_else(|e| panic!("{src}: {e}"));
            let b = match t.execute(ctx) {
                Ok(cel_crate::Value::Bool(b)) => b,
                other => panic!("{src}: cel returned {other:?}"),
            };
            assert_eq!(a, b, "engines disagree on {src}");
            fired += usize::from(a);
        }
    }
    eprintln!("rules fired: {fired} of {}", srcs.len() * inputs.len());

    let mut g = c.benchmark_group("100_rules");
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g.bench_function("ours", |b| {
        b.iter(|| {
            let mut n = 0u32;
            for x in &inputs {
                for p in &ours {
                    n += u32::from(p.eval(black_box(x)) == Ok(true));
                }
            }
            n
        })
    });
    g.bench_function("cel_crate", |b| {
        b.iter(|| {
            let mut n = 0u32;
            for ctx in &ctxs {
                for p in &theirs {
                    n += u32::from(matches!(
                        p.execute(black_box(ctx)),
                        Ok(cel_crate::Value::Bool(true))
                    ));
                }
            }
            n
        })
    });
    g.bench_function("cel_crate_context_build", |b| {
        b.iter(|| {
            for x in &inputs {
                black_box(cel_context(black_box(x)));
            }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("typical_rule");
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let x = &inputs[0];
    g.bench_function("ours", |b| b.iter(|| ours[0].eval(black_box(x))));
    g.bench_function("cel_crate", |b| {
        b.iter(|| theirs[0].execute(black_box(&ctxs[0])))
    });
    g.bench_function("ours_compile", |b| {
        b.iter(|| compile::<Features>(black_box(&srcs[0])))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
