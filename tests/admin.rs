//! The admin API over a real server on port 0, with the memory store and
//! with a private redis-server: profile, trust, revoke, forget, auth, audit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::redis::RedisServer;
use common::*;
use riskgate::api::pb;
use riskgate::api::pb::risk_admin_client::RiskAdminClient;
use riskgate::config::{Config, Overrides};
use riskgate::core::keys::{Dim, IdHasher};
use tonic::transport::Channel;

const TOKEN: &str = "an-admin-token-for-tests-0123456789abcdef";
const HMAC: &str = "admin-test-hmac-key-0123456789";

/// Every log line of this test process (one global subscriber).
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = Buf(buf.clone());
        tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .init();
        buf
    })
    .clone()
}

#[derive(Clone)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn config(redis: Option<&RedisServer>) -> Config {
    let url = redis.map(RedisServer::url);
    Config::resolve(
        &Overrides {
            listen: Some("127.0.0.1:0".into()),
            metrics_listen: Some("off".into()),
            admin_listen: Some("127.0.0.1:0".into()),
            ..Overrides::default()
        },
        move |k| match k {
            "RISKGATE_REDIS_URL" => url.clone(),
            "RISKGATE_HMAC_KEY" => Some(HMAC.into()),
            "RISKGATE_ADMIN_TOKEN" => Some(TOKEN.into()),
            _ => None,
        },
    )
    .unwrap()
}

async fn admin(s: &TestServer) -> RiskAdminClient<Channel> {
    let addr = s.running.admin_addr.expect("admin listener");
    let ch = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    RiskAdminClient::new(ch)
}

fn authed<T>(msg: T) -> tonic::Request<T> {
    with_token(msg, Some(TOKEN))
}

fn with_token<T>(msg: T, token: Option<&str>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    if let Some(t) = token {
        r.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    r
}

/// One verified login from `device`.
async fn teach(s: &mut TestServer, user: &str, device: &str) -> pb::EvaluateResponse {
    let d = s
        .client
        .evaluate(attempt(user, "198.51.100.7", device, CHROME))
        .await
        .unwrap()
        .into_inner();
    let outcome = match action(&d) {
        pb::Action::Allow => pb::Outcome::LoginSucceeded,
        pb::Action::StepUp => pb::Outcome::StepUpPassed,
        pb::Action::Deny | pb::Action::Unspecified => panic!("denied: {:?}", codes(&d)),
    };
    let r = s
        .client
        .report_outcome(pb::ReportOutcomeRequest {
            decision_id: d.decision_id.clone(),
            outcome: outcome as i32,
            factor: Some(pb::Factor::Totp as i32),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.profile_updated);
    d
}

async fn profile(
    a: &mut RiskAdminClient<Channel>,
    user: &str,
    devices: &[&str],
) -> pb::GetUserProfileResponse {
    a.get_user_profile(authed(pb::GetUserProfileRequest {
        user_id: user.into(),
        device_ids: devices.iter().map(|d| d.to_string()).collect(),
        ip_addresses: vec!["198.51.100.7".into()],
        user_agents: vec![],
    }))
    .await
    .unwrap()
    .into_inner()
}

/// The profile once its recent decisions (written after each answer, off
/// the latency path) include `n` entries.
async fn profile_with_recent(
    a: &mut RiskAdminClient<Channel>,
    user: &str,
    n: usize,
) -> pb::GetUserProfileResponse {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let p = profile(a, user, &[]).await;
        if p.recent_decisions.len() >= n || Instant::now() > deadline {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn scenario(redis: Option<&RedisServer>, user: &str) {
    let logs = logs();
    let mut s = start_with(config(redis)).await;
    let mut a = admin(&s).await;

    // A learned device shows in the profile, by hash and as a candidate.
    teach(&mut s, user, "laptop-1").await;
    teach(&mut s, user, "laptop-1").await;
    let p = profile(&mut a, user, &["laptop-1", "never-seen"]).await;
    assert_eq!(p.verified_logins, 2);
    let laptop = &p.candidates[0];
    assert!(laptop.known && laptop.count == 2, "{p:?}");
    assert!(!p.candidates[1].known);
    assert!(p.candidates.iter().any(|c| c.dimension == "ip" && c.known));
    assert!(p.candidates.iter().any(|c| c.dimension == "net" && c.known));
    assert!(
        p.values
            .iter()
            .any(|v| v.dimension == "device" && v.hash == laptop.hash && v.count == 2)
    );
    assert!(p.last_login.is_some());
    assert_eq!(p.hours.iter().map(|h| h.count).sum::<u32>(), 2);
    let p = profile_with_recent(&mut a, user, 2).await;
    assert_eq!(p.recent_decisions.len(), 2, "{p:?}");
    assert!(p.recent_decisions[0].at.is_some());

    // A device support trusted is a known device: no `new_device`.
    let fresh = s
        .client
        .evaluate(attempt(user, "198.51.100.7", "phone-2", CHROME))
        .await
        .unwrap()
        .into_inner();
    assert!(codes(&fresh).contains(&"new_device".to_string()));
    let t = a
        .trust_device(authed(pb::TrustDeviceRequest {
            user_id: user.into(),
            device_id: "phone-2".into(),
            reason: "ticket 4711: verified by video call".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(!t.was_known);
    let trusted = s
        .client
        .evaluate(attempt(user, "198.51.100.7", "phone-2", CHROME))
        .await
        .unwrap()
        .into_inner();
    assert!(
        !codes(&trusted).contains(&"new_device".to_string()),
        "{:?}",
        codes(&trusted)
    );
    assert!(
        trusted.score <= fresh.score,
        "{} > {}",
        trusted.score,
        fresh.score
    );

    // A revoked device is denied, with the reason.
    let r = a
        .revoke_device(authed(pb::RevokeDeviceRequest {
            user_id: user.into(),
            device_id: "laptop-1".into(),
            reason: "ticket 4712: reported stolen".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(r.was_known);
    let stolen = s
        .client
        .evaluate(attempt(user, "198.51.100.7", "laptop-1", CHROME))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(action(&stolen), pb::Action::Deny);
    assert!(
        codes(&stolen).contains(&"revoked_device".to_string()),
        "{:?}",
        codes(&stolen)
    );
    let p = profile_with_recent(&mut a, user, 5).await;
    assert_eq!(p.trusted_devices.len(), 1);
    assert_eq!(p.revoked_devices.len(), 1);
    assert_eq!(p.recent_decisions.len(), 5);
    let newest = &p.recent_decisions[0];
    assert_eq!(newest.action, pb::Action::Deny as i32);
    assert!(newest.reason_codes.contains(&"revoked_device".to_string()));

    // Forget erases everything under the user.
    let f = a
        .forget_user(authed(pb::ForgetUserRequest {
            user_id: user.into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(f.verified_logins, 2);
    assert_eq!(f.pending_decisions, 5);
    assert_eq!(f.recent_decisions, 5);
    assert_eq!((f.trusted_devices, f.revoked_devices), (1, 1));
    if let Some(redis) = redis {
        let key = IdHasher::new(HMAC.as_bytes()).key(Dim::User, user.as_bytes());
        let pattern = format!("*{{u:{}}}*", hex::encode(key.0));
        let left = redis.cli(&["--scan", "--pattern", &pattern]).unwrap();
        assert!(left.trim().is_empty(), "keys left: {left}");
        let all = redis.cli(&["--scan", "--pattern", "*{u:*"]).unwrap();
        assert!(all.trim().is_empty(), "keys left: {all}");
    }
    let p = profile(&mut a, user, &["laptop-1"]).await;
    assert_eq!(p.verified_logins, 0);
    assert!(p.values.is_empty() && p.recent_decisions.is_empty());
    let again = s
        .client
        .evaluate(attempt(user, "198.51.100.7", "laptop-1", CHROME))
        .await
        .unwrap()
        .into_inner();
    assert!(
        codes(&again).contains(&"new_user".to_string()),
        "{:?}",
        codes(&again)
    );
    assert_ne!(
        action(&again),
        pb::Action::Deny,
        "the revocation is gone too"
    );

    // No token and a wrong token look the same.
    let req = || pb::ForgetUserRequest {
        user_id: user.into(),
    };
    let none = a.forget_user(with_token(req(), None)).await.unwrap_err();
    let wrong = a
        .forget_user(with_token(
            req(),
            Some("an-admin-token-for-tests-0123456789abcdeX"),
        ))
        .await
        .unwrap_err();
    assert_eq!(none.code(), tonic::Code::Unauthenticated);
    assert_eq!(wrong.code(), tonic::Code::Unauthenticated);
    assert_eq!(none.message(), wrong.message());
    // The decision port does not serve the admin API.
    let mut on_decision_port = RiskAdminClient::new(channel(&s.running).await);
    let e = on_decision_port
        .forget_user(authed(req()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unimplemented);

    // Audit events: one per call, by the token's name, with the user's
    // hash and never the raw id.
    let user_hash = f.user_hash.clone();
    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    let audit: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "riskgate::audit")
        .collect();
    let mine = |method: &str, result: &str| {
        audit.iter().any(|v| {
            let f = &v["fields"];
            f["audit.method"] == method
                && f["audit.result"] == result
                && f["audit.who"] == "admin"
                && f["audit.user"] == format!("Some({user_hash})")
        })
    };
    for m in [
        "GetUserProfile",
        "TrustDevice",
        "RevokeDevice",
        "ForgetUser",
    ] {
        assert!(mine(m, "ok"), "no audit event for {m}: {audit:?}");
    }
    assert!(audit.iter().any(|v| {
        v["fields"]["audit.who"] == "unauthenticated" && v["fields"]["audit.method"] == "ForgetUser"
    }));
    assert!(!text.contains(user), "the raw user id reached the log");
    s.running.shutdown().await;
}

#[tokio::test]
async fn admin_api_on_the_memory_store() {
    scenario(None, "mem-user.7f3a@example.com").await;
}

#[tokio::test]
async fn admin_api_on_redis() {
    let redis = RedisServer::start();
    scenario(Some(&redis), "redis-user.91bc@example.com").await;
}

#[test]
fn the_admin_listener_needs_a_long_enough_token() {
    let resolve = |token: Option<&'static str>| {
        Config::resolve(
            &Overrides {
                admin_listen: Some("127.0.0.1:0".into()),
                ..Overrides::default()
            },
            move |k| match k {
                "RISKGATE_ADMIN_TOKEN" => token.map(str::to_string),
                _ => None,
            },
        )
    };
    let e = resolve(None).unwrap_err().to_string();
    assert!(e.contains("admin_token"), "{e}");
    let e = resolve(Some("short")).unwrap_err().to_string();
    assert!(e.contains("at least 32 bytes"), "{e}");
    let c = resolve(Some(TOKEN)).unwrap();
    assert!(c.admin.listen.is_some());
    assert!(!format!("{c:?}").contains(TOKEN));
    // Off by default.
    let c = Config::resolve(&Overrides::default(), |_| None).unwrap();
    assert!(c.admin.listen.is_none());
}
