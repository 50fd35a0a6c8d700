//! Geo signals end to end, with MaxMind's official test databases.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use riskgate::api::pb;

fn maxmind() -> Option<PathBuf> {
    let base = std::env::var_os("RISKGATE_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    let dir = base.join("maxmind/test-data");
    if dir.join("GeoIP2-City-Test.mmdb").exists() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "shared MaxMind test data missing at {} (set RISKGATE_SHARED_DATA)",
        dir.display()
    );
    eprintln!("skipping: no shared MaxMind test data at {}", dir.display());
    None
}

/// A server on the test databases. MaxMind's Anonymous-IP test database
/// flags the London test block (81.2.69.0/24) as every kind of anonymous
/// network, so the travel test runs without it.
async fn geo_server(anonymous: bool) -> Option<TestServer> {
    let dir = maxmind()?;
    let mut c = config();
    c.geoip.city = Some(dir.join("GeoIP2-City-Test.mmdb"));
    c.geoip.asn = Some(dir.join("GeoLite2-ASN-Test.mmdb"));
    if anonymous {
        c.geoip.anonymous = Some(dir.join("GeoIP2-Anonymous-IP-Test.mmdb"));
    }
    Some(start_with(c).await)
}

fn minutes_ago(m: i64) -> pbjson_types::Timestamp {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    pbjson_types::Timestamp {
        seconds: now - m * 60,
        nanos: 0,
    }
}

#[tokio::test]
async fn london_then_linkoping_ten_minutes_later_is_impossible_travel() {
    let Some(mut s) = geo_server(false).await else {
        return;
    };
    let mut a = attempt("olga", "81.2.69.142", "dev-o", CHROME);
    a.occurred_at = Some(minutes_ago(30));
    let first = s.client.evaluate(a).await.unwrap().into_inner();
    assert!(
        first.degraded_signals.is_empty(),
        "{:?}",
        first.degraded_signals
    );
    assert_eq!(action(&first), pb::Action::Allow, "{first:#?}");
    s.client
        .report_outcome(pb::ReportOutcomeRequest {
            decision_id: first.decision_id,
            outcome: pb::Outcome::LoginSucceeded as i32,
            factor: None,
        })
        .await
        .unwrap();

    let mut b = attempt("olga", "89.160.20.128", "dev-o", CHROME);
    b.occurred_at = Some(minutes_ago(20));
    let r = s.client.evaluate(b).await.unwrap().into_inner();
    let c = codes(&r);
    assert!(c.contains(&"impossible_travel".to_string()), "{r:#?}");
    assert!(c.contains(&"new_country".to_string()), "{c:?}");
    let travel = r
        .reasons
        .iter()
        .find(|x| x.code == "impossible_travel" && x.weight > 0.0)
        .unwrap();
    assert!(
        travel.message.contains("km/h") && travel.message.contains("10 minutes ago"),
        "{}",
        travel.message
    );
    let country = r.reasons.iter().find(|x| x.code == "new_country").unwrap();
    assert!(country.message.contains("SE"), "{}", country.message);
    assert_eq!(action(&r), pb::Action::StepUp, "{r:?}");

    // The same trip over a day is ordinary travel.
    let mut later = attempt("paul", "81.2.69.142", "dev-p", CHROME);
    later.occurred_at = Some(minutes_ago(59));
    let first = s.client.evaluate(later).await.unwrap().into_inner();
    s.client
        .report_outcome(pb::ReportOutcomeRequest {
            decision_id: first.decision_id,
            outcome: pb::Outcome::LoginSucceeded as i32,
            factor: None,
        })
        .await
        .unwrap();
    let r = s
        .client
        .evaluate(attempt("paul", "81.2.69.142", "dev-p", CHROME))
        .await
        .unwrap()
        .into_inner();
    assert!(
        !codes(&r).contains(&"impossible_travel".to_string()),
        "{r:?}"
    );
    s.running.shutdown().await;
}

#[tokio::test]
async fn anonymous_networks_are_named() {
    let Some(mut s) = geo_server(true).await else {
        return;
    };
    let r = s
        .client
        .evaluate(attempt("quinn", "65.4.3.2", "dev-q", CHROME))
        .await
        .unwrap()
        .into_inner();
    assert!(codes(&r).contains(&"tor_exit_node".to_string()), "{r:?}");
    let r = s
        .client
        .evaluate(attempt("rita", "1.2.3.4", "dev-r", CHROME))
        .await
        .unwrap()
        .into_inner();
    let vpn = r
        .reasons
        .iter()
        .find(|x| x.code == "anonymous_ip")
        .expect("anonymous_ip reason");
    assert!(vpn.message.contains("VPN"), "{}", vpn.message);
    s.running.shutdown().await;
}

#[tokio::test]
async fn a_bad_geoip_database_refuses_to_start() {
    let Some(dir) = maxmind() else { return };
    let mut c = config();
    // An ASN database in the City slot.
    c.geoip.city = Some(dir.join("GeoLite2-ASN-Test.mmdb"));
    let e = riskgate::server::start(&c)
        .await
        .err()
        .expect("must refuse");
    assert!(e.to_string().contains("city database"), "{e}");
}
