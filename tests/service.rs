//! The service end to end: a real gRPC server on port 0, a real client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use riskgate::api::pb;
use tonic::Code;

async fn report(
    c: &mut pb::risk_service_client::RiskServiceClient<tonic::transport::Channel>,
    decision_id: &str,
    outcome: pb::Outcome,
) -> Result<pb::ReportOutcomeResponse, tonic::Status> {
    c.report_outcome(pb::ReportOutcomeRequest {
        decision_id: decision_id.into(),
        outcome: outcome as i32,
        factor: None,
    })
    .await
    .map(|r| r.into_inner())
}

#[tokio::test]
async fn a_verified_login_teaches_the_profile_and_the_next_scores_lower() {
    let mut s = start().await;
    let first = s
        .client
        .evaluate(attempt("alice", "198.51.100.10", "laptop-1", CHROME))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(action(&first), pb::Action::Allow, "{first:?}");
    assert!(codes(&first).contains(&"new_user".to_string()));
    assert!(!first.decision_id.is_empty());
    assert!(!first.policy_version.is_empty() && !first.model_version.is_empty());

    let r = report(
        &mut s.client,
        &first.decision_id,
        pb::Outcome::LoginSucceeded,
    )
    .await
    .unwrap();
    assert!(r.profile_updated);

    let second = s
        .client
        .evaluate(attempt("alice", "198.51.100.10", "laptop-1", CHROME))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(action(&second), pb::Action::Allow);
    assert!(
        second.score < first.score,
        "known device and network must score lower: {} vs {}",
        second.score,
        first.score
    );
    assert!(!codes(&second).contains(&"new_user".to_string()));

    // The same user from a new device on a new network is challenged.
    let third = s
        .client
        .evaluate(attempt("alice", "192.0.2.200", "phone-9", FIREFOX))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(action(&third), pb::Action::StepUp, "{third:?}");
    let c = codes(&third);
    assert!(
        c.contains(&"new_device".to_string()) && c.contains(&"new_network".to_string()),
        "{c:?}"
    );
    assert!(!third.acceptable_factors.is_empty());
    s.running.shutdown().await;
}

/// A device whose verified logins showed its bound key: with the key it is
/// strong evidence, without it (a copied id) it is challenged and says why;
/// a binding without a device id is refused.
#[tokio::test]
async fn a_bound_device_without_its_key_is_challenged() {
    let mut s = start().await;
    let bound = |user: &str, ip: &str| {
        let mut a = attempt(user, ip, "phone-1", CHROME);
        if let Some(d) = a.device.as_mut() {
            d.binding = pb::DeviceBinding::KeyVerified as i32;
        }
        a
    };
    for _ in 0..5 {
        let d = s
            .client
            .evaluate(bound("dana", "198.51.100.30"))
            .await
            .unwrap()
            .into_inner();
        let r = report(&mut s.client, &d.decision_id, pb::Outcome::LoginSucceeded)
            .await
            .unwrap();
        assert!(r.profile_updated, "{d:?}");
    }
    let with_key = s
        .client
        .evaluate(bound("dana", "198.51.100.30"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(action(&with_key), pb::Action::Allow, "{with_key:?}");
    assert!(codes(&with_key).is_empty(), "{with_key:?}");

    // The same id, network and browser, without the key.
    let copied = s
        .client
        .evaluate(attempt("dana", "198.51.100.30", "phone-1", CHROME))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(action(&copied), pb::Action::Allow, "{copied:?}");
    assert!(
        codes(&copied).contains(&"device_binding_missing".to_string()),
        "{copied:?}"
    );
    assert!(copied.score > with_key.score);

    // A device that never showed a key is not suspicious without one.
    let plain = s
        .client
        .evaluate(attempt("erin", "198.51.100.31", "laptop-2", CHROME))
        .await
        .unwrap()
        .into_inner();
    report(
        &mut s.client,
        &plain.decision_id,
        pb::Outcome::LoginSucceeded,
    )
    .await
    .unwrap();
    let again = s
        .client
        .evaluate(attempt("erin", "198.51.100.31", "laptop-2", CHROME))
        .await
        .unwrap()
        .into_inner();
    assert!(!codes(&again).contains(&"device_binding_missing".to_string()));

    // A binding needs a device id.
    let mut no_id = bound("dana", "198.51.100.30");
    if let Some(d) = no_id.device.as_mut() {
        d.device_id.clear();
    }
    let e = s.client.evaluate(no_id).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("`device.binding`"), "{}", e.message());
    s.running.shutdown().await;
}

#[tokio::test]
async fn outcomes_that_are_not_verified_successes_never_teach() {
    let mut s = start().await;
    let first = s
        .client
        .evaluate(attempt("bob", "198.51.100.20", "dev-b", CHROME))
        .await
        .unwrap()
        .into_inner();
    for outcome in [
        pb::Outcome::StepUpFailed,
        pb::Outcome::StepUpAbandoned,
        pb::Outcome::UserReportedFraud,
    ] {
        let r = report(&mut s.client, &first.decision_id, outcome)
            .await
            .unwrap();
        assert!(!r.profile_updated, "{outcome:?} taught the profile");
    }
    let again = s
        .client
        .evaluate(attempt("bob", "198.51.100.20", "dev-b", CHROME))
        .await
        .unwrap()
        .into_inner();
    assert!(codes(&again).contains(&"new_user".to_string()));
    s.running.shutdown().await;
}

#[tokio::test]
async fn a_fraud_report_removes_what_the_decision_taught() {
    let mut s = start().await;
    let first = s
        .client
        .evaluate(attempt("carol", "198.51.100.30", "dev-c", CHROME))
        .await
        .unwrap()
        .into_inner();
    assert!(
        report(
            &mut s.client,
            &first.decision_id,
            pb::Outcome::LoginSucceeded
        )
        .await
        .unwrap()
        .profile_updated
    );
    let fraud = report(
        &mut s.client,
        &first.decision_id,
        pb::Outcome::AnalystConfirmedFraud,
    )
    .await
    .unwrap();
    assert!(fraud.profile_updated);
    let again = s
        .client
        .evaluate(attempt("carol", "198.51.100.30", "dev-c", CHROME))
        .await
        .unwrap()
        .into_inner();
    assert!(codes(&again).contains(&"new_user".to_string()), "{again:?}");
    s.running.shutdown().await;
}

#[tokio::test]
async fn a_burst_of_invalid_credentials_from_one_ip_against_many_users_is_denied() {
    let mut s = start().await;
    let mut last = None;
    for i in 0..30 {
        let mut a = attempt(
            &format!("victim{i}"),
            "203.0.113.66",
            "",
            "python-requests/2.31",
        );
        a.channel = pb::Channel::Api as i32;
        a.credential_result = pb::CredentialResult::Invalid as i32;
        let r = s.client.evaluate(a).await.unwrap().into_inner();
        assert_ne!(action(&r), pb::Action::Allow, "attempt {i}: {r:?}");
        last = Some(r);
    }
    let last = last.unwrap();
    assert_eq!(action(&last), pb::Action::Deny, "{last:?}");
    let c = codes(&last);
    assert!(c.contains(&"password_spray_source".to_string()), "{c:?}");
    assert!(c.contains(&"ip_failure_burst".to_string()), "{c:?}");

    // The sprayer's one correct guess is not let through either.
    let mut hit = attempt("victim99", "203.0.113.66", "", "python-requests/2.31");
    hit.channel = pb::Channel::Web as i32;
    let r = s.client.evaluate(hit).await.unwrap().into_inner();
    assert_eq!(action(&r), pb::Action::Deny, "{r:?}");

    // A user elsewhere is unaffected.
    let r = s
        .client
        .evaluate(attempt("dave", "198.51.100.40", "dev-d", CHROME))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(action(&r), pb::Action::Allow, "{r:?}");
    s.running.shutdown().await;
}

async fn expect_invalid(s: &mut TestServer, r: pb::EvaluateRequest, field: &str) {
    let e = s.client.evaluate(r).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(
        e.message().contains(&format!("`{field}`")),
        "{field}: {}",
        e.message()
    );
}

#[tokio::test]
async fn bad_input_is_invalid_argument_naming_the_field() {
    let mut s = start().await;
    let ok = attempt("erin", "198.51.100.50", "dev-e", CHROME);
    expect_invalid(
        &mut s,
        pb::EvaluateRequest {
            user_id: "".into(),
            ..ok.clone()
        },
        "user_id",
    )
    .await;
    expect_invalid(
        &mut s,
        pb::EvaluateRequest {
            user_id: "u".repeat(300),
            ..ok.clone()
        },
        "user_id",
    )
    .await;
    expect_invalid(
        &mut s,
        pb::EvaluateRequest {
            ip_address: "300.1.2.3".into(),
            ..ok.clone()
        },
        "ip_address",
    )
    .await;
    expect_invalid(
        &mut s,
        pb::EvaluateRequest {
            ip_address: "".into(),
            ..ok.clone()
        },
        "ip_address",
    )
    .await;
    expect_invalid(
        &mut s,
        pb::EvaluateRequest {
            channel: 0,
            ..ok.clone()
        },
        "channel",
    )
    .await;
    expect_invalid(
        &mut s,
        pb::EvaluateRequest {
            channel: 77,
            ..ok.clone()
        },
        "channel",
    )
    .await;
    expect_invalid(
        &mut s,
        pb::EvaluateRequest {
            credential_result: 0,
            ..ok.clone()
        },
        "credential_result",
    )
    .await;
    expect_invalid(
        &mut s,
        pb::EvaluateRequest {
            enrolled_factors: vec![99],
            ..ok.clone()
        },
        "enrolled_factors",
    )
    .await;
    expect_invalid(
        &mut s,
        pb::EvaluateRequest {
            device: Some(pb::Device {
                device_id: "d".into(),
                user_agent: "x".repeat(5000),
                binding: 0,
            }),
            ..ok.clone()
        },
        "device.user_agent",
    )
    .await;
    expect_invalid(
        &mut s,
        pb::EvaluateRequest {
            occurred_at: Some(pbjson_types::Timestamp {
                seconds: 4_000_000_000,
                nanos: 0,
            }),
            ..ok.clone()
        },
        "occurred_at",
    )
    .await;

    // Above the request size limit the call is refused before decoding.
    let huge = pb::EvaluateRequest {
        attributes: (0..8)
            .map(|i| (format!("k{i}"), "v".repeat(4000)))
            .collect(),
        ..ok.clone()
    };
    let e = s.client.evaluate(huge).await.unwrap_err();
    assert_ne!(e.code(), Code::Ok);
    assert!(
        matches!(
            e.code(),
            Code::OutOfRange | Code::ResourceExhausted | Code::InvalidArgument
        ),
        "{e:?}"
    );

    // Reports: unknown, malformed and forged decision ids.
    let e = report(&mut s.client, "nope", pb::Outcome::LoginSucceeded)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("`decision_id`"));
    let e = s
        .client
        .report_outcome(pb::ReportOutcomeRequest {
            decision_id: "x".into(),
            outcome: 0,
            factor: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("`outcome`"), "{}", e.message());

    // The server still answers well-formed requests.
    assert!(s.client.evaluate(ok).await.is_ok());
    s.running.shutdown().await;
}

#[tokio::test]
async fn health_reflection_and_metrics_are_served() {
    let s = start().await;
    let ch = channel(&s.running).await;

    let mut health = tonic_health::pb::health_client::HealthClient::new(ch.clone());
    for service in ["", "riskgate.v1.RiskService"] {
        let r = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
    }

    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut refl = ServerReflectionClient::new(ch);
    let req = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = refl
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let msg = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = msg.message_response else {
        panic!("unexpected reflection answer {msg:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"riskgate.v1.RiskService".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_string()),
        "{names:?}"
    );

    let mut c = s.client.clone();
    c.evaluate(attempt("frank", "198.51.100.60", "dev-f", CHROME))
        .await
        .unwrap();
    let metrics_addr = s.running.metrics_addr.unwrap();
    let body = http_get(metrics_addr, "/metrics").await;
    assert!(
        body.contains("riskgate_decisions_total{action=\"allow\",level=\"low\",channel=\"web\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("riskgate_request_duration_seconds_bucket"),
        "{body}"
    );
    s.running.shutdown().await;
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    conn.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn a_rule_file_change_is_hot_reloaded_and_a_bad_one_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.toml");
    let base = riskgate::core::rules::DEFAULT_RULES_TOML;
    std::fs::write(&path, base).unwrap();
    let mut config = config();
    config.sources.rules = Some(path.clone());
    config.sources.reload_interval = std::time::Duration::from_millis(100);
    let mut s = start_with(config).await;
    let before = s
        .client
        .evaluate(attempt("gina", "198.51.100.70", "dev-g", CHROME))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(action(&before), pb::Action::Allow);

    // A valid new file with a rule that denies this user's network.
    let deny = format!(
        "{base}\n[[rule]]\nname = \"block_test_net\"\ndescription = \"test\"\nwhen = \"attempt.channel == 'web' && user.is_new\"\neffect = \"deny\"\n"
    )
    .replace("version = \"default-2026.12.1\"", "version = \"reloaded\"");
    std::fs::write(&path, &deny).unwrap();
    let mut reloaded = None;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let r = s
            .client
            .evaluate(attempt("hank", "198.51.100.71", "dev-h", CHROME))
            .await
            .unwrap()
            .into_inner();
        if r.policy_version.starts_with("reloaded@") {
            reloaded = Some(r);
            break;
        }
    }
    let r = reloaded.expect("the new rule file was not picked up");
    assert_eq!(action(&r), pb::Action::Deny);
    assert!(codes(&r).contains(&"block_test_net".to_string()));

    // A broken file is rejected; the previous rules keep serving.
    std::fs::write(
        &path,
        format!(
            "{deny}\n[[rule]]\nname = \"oops\"\nwhen = \"geo.contry == 'SE'\"\neffect = \"deny\"\n"
        ),
    )
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let r = s
        .client
        .evaluate(attempt("ivan", "198.51.100.72", "dev-i", CHROME))
        .await
        .unwrap()
        .into_inner();
    assert!(
        r.policy_version.starts_with("reloaded@"),
        "{}",
        r.policy_version
    );
    let body = http_get(s.running.metrics_addr.unwrap(), "/metrics").await;
    assert!(
        body.contains("riskgate_reloads_total{kind=\"rules\",result=\"failure\"}"),
        "{body}"
    );
    s.running.shutdown().await;
}
