//! The HTTP/JSON face on a real server: the same decisions as gRPC in the
//! proto's JSON mapping, errors in the Google API shape with matching HTTP
//! statuses, health and readiness, and the OpenAPI document kept equal to
//! what the proto implies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::http::{Answer, request as http};
use common::*;
use riskgate::api::pb;
use serde_json::{Value, json};

/// The Google API error shape of an answer.
trait GoogleError {
    /// (status name, message); the code must be the HTTP status.
    fn error(&self) -> (String, String);
}

impl GoogleError for Answer {
    fn error(&self) -> (String, String) {
        let v = self.json();
        let e = &v["error"];
        assert_eq!(e["code"], self.status, "{}", self.body);
        (
            e["status"].as_str().unwrap().to_string(),
            e["message"].as_str().unwrap().to_string(),
        )
    }
}

/// Now, as the proto3 JSON mapping writes a timestamp (RFC 3339).
fn now_rfc3339() -> Value {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let v = serde_json::to_value(pbjson_types::Timestamp {
        seconds: secs - 60,
        nanos: 0,
    })
    .unwrap();
    assert!(v.as_str().unwrap().contains('T'), "{v}");
    v
}

const JSON: (&str, &str) = ("content-type", "application/json");

async fn post(addr: SocketAddr, path: &str, body: &Value) -> Answer {
    http(addr, "POST", path, &[JSON], body.to_string().as_bytes()).await
}

#[tokio::test]
async fn evaluate_over_http_answers_as_grpc_does() {
    let mut s = start().await;
    let addr = s.running.addr;
    // Two new users with the same attempt from unrelated networks and
    // devices (so one does not count against the other): one over gRPC, one over HTTP.
    let grpc = s
        .client
        .evaluate(attempt("grpc-user", "198.51.100.7", "laptop-1", CHROME))
        .await
        .unwrap()
        .into_inner();
    let a = post(
        addr,
        "/v1/evaluate",
        &json!({
            "userId": "http-user",
            "channel": "CHANNEL_WEB",
            "ipAddress": "203.0.113.9",
            "device": {"deviceId": "laptop-2", "userAgent": CHROME},
            "credentialResult": "CREDENTIAL_RESULT_VALID",
            "occurredAt": now_rfc3339(),
        }),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.headers["content-type"], "application/json");
    let v = a.json();
    // The canonical JSON mapping: lowerCamelCase names, enums by name.
    assert!(v["action"].as_str().unwrap().starts_with("ACTION_"), "{v}");
    assert!(v["decisionId"].as_str().is_some_and(|d| !d.is_empty()));
    assert!(v.get("decision_id").is_none());
    let http: pb::EvaluateResponse = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(http.action, grpc.action);
    assert_eq!(http.level, grpc.level);
    assert!(
        (http.score - grpc.score).abs() < 1e-9,
        "http {http:?}\ngrpc {grpc:?}"
    );
    assert_eq!(codes(&http), codes(&grpc));
    assert_eq!(http.acceptable_factors, grpc.acceptable_factors);
    assert_eq!(http.policy_version, grpc.policy_version);

    // The proto's own field names are accepted too, and the outcome of the
    // decision is reported over HTTP.
    let b = post(
        addr,
        "/v1/evaluate",
        &json!({
            "user_id": "snake-user",
            "channel": "CHANNEL_WEB",
            "ip_address": "198.51.100.7",
            "credential_result": "CREDENTIAL_RESULT_VALID",
        }),
    )
    .await;
    assert_eq!(b.status, 200, "{}", b.body);
    let id = b.json()["decisionId"].as_str().unwrap().to_string();
    let o = post(
        addr,
        "/v1/outcomes",
        &json!({"decisionId": id, "outcome": "OUTCOME_LOGIN_SUCCEEDED"}),
    )
    .await;
    assert_eq!(o.status, 200, "{}", o.body);
    let o = post(
        addr,
        "/v1/outcomes",
        &json!({"decisionId": "not-an-id", "outcome": "OUTCOME_LOGIN_SUCCEEDED"}),
    )
    .await;
    assert_eq!(o.status, 400);
    assert!(o.error().1.contains("`decision_id`"), "{}", o.body);
    s.running.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_the_google_error_shape_with_the_matching_status() {
    let s = start().await;
    let addr = s.running.addr;
    let valid = r#"{"userId":"alice","channel":"CHANNEL_WEB","ipAddress":"198.51.100.7","credentialResult":"CREDENTIAL_RESULT_VALID"}"#;

    // A field the validator refuses: named, as over gRPC.
    let a = post(
        addr,
        "/v1/evaluate",
        &json!({"userId": "alice", "channel": "CHANNEL_WEB", "ipAddress": "nope", "credentialResult": "CREDENTIAL_RESULT_VALID"}),
    )
    .await;
    assert_eq!(a.status, 400);
    let (status, message) = a.error();
    assert_eq!(status, "INVALID_ARGUMENT");
    assert!(message.starts_with("`ip_address`"), "{message}");

    // No content type, a wrong one, malformed JSON, a wrong type, an
    // unknown enum value, an unknown field: 400 saying what is wrong.
    for (headers, body, says) in [
        (vec![], valid, "content-type: application/json"),
        (
            vec![("content-type", "text/plain")],
            valid,
            "content-type: application/json",
        ),
        (vec![JSON], "{\"userId\": ", "line 1 column"),
        (vec![JSON], "{\"userId\": 7}", "invalid type"),
        (
            vec![JSON],
            "{\"channel\": \"CHANNEL_TELEX\"}",
            "CHANNEL_TELEX",
        ),
        (vec![JSON], "{\"userName\": \"alice\"}", "userName"),
        (vec![JSON], "[]", "EvaluateRequest"),
    ] {
        let a = http(addr, "POST", "/v1/evaluate", &headers, body.as_bytes()).await;
        assert_eq!(a.status, 400, "{body}: {}", a.body);
        let (status, message) = a.error();
        assert_eq!(status, "INVALID_ARGUMENT");
        assert!(message.contains(says), "{body}: {message}");
    }

    // Larger than the server accepts: 413.
    let big = format!("{{\"userId\": \"{}\"}}", "a".repeat(40_000));
    let a = http(addr, "POST", "/v1/evaluate", &[JSON], big.as_bytes()).await;
    assert_eq!(a.status, 413, "{}", a.body);
    a.error();

    // A deadline that has passed: 504, no work done.
    let a = http(
        addr,
        "POST",
        "/v1/evaluate",
        &[JSON, ("grpc-timeout", "0n")],
        valid.as_bytes(),
    )
    .await;
    assert_eq!(a.status, 504, "{}", a.body);
    assert_eq!(a.error().0, "DEADLINE_EXCEEDED");

    // Unknown paths and methods.
    let a = http(addr, "GET", "/v2/evaluate", &[], b"").await;
    assert_eq!(a.status, 404);
    assert_eq!(a.error().0, "NOT_FOUND");
    let a = http(addr, "GET", "/v1/evaluate", &[], b"").await;
    assert_eq!(a.status, 405);
    assert_eq!(a.headers["allow"], "POST");

    // Nothing of this was a server error.
    let metrics = engine(&s).metrics().render();
    assert!(!metrics.contains("code=\"Internal\"} 1"), "{metrics}");
    s.running.shutdown().await;
}

#[tokio::test]
async fn readiness_follows_the_grpc_health_through_shutdown() {
    let mut config = config();
    config.server.drain_delay = Duration::from_millis(1500);
    let s = start_with(config).await;
    let addr = s.running.addr;
    for path in ["/healthz", "/readyz"] {
        let a = http(addr, "GET", path, &[], b"").await;
        assert_eq!(a.status, 200, "{path}");
        assert_eq!(a.json()["status"], "SERVING");
    }
    let stopping = tokio::spawn(s.running.shutdown());
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    let mut seen = 0;
    while std::time::Instant::now() < deadline {
        let a = http(addr, "GET", "/readyz", &[], b"").await;
        if a.status == 503 {
            assert_eq!(a.json()["status"], "NOT_SERVING");
            seen = a.status;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen, 503, "readyz turned 503 during the drain");
    // Liveness holds while draining.
    assert_eq!(http(addr, "GET", "/healthz", &[], b"").await.status, 200);
    assert!(stopping.await.unwrap());
}

/// The document in the repository is what the proto implies, the server
/// serves it, and every field a real answer carries is in its schema.
#[tokio::test]
async fn the_openapi_document_matches_the_proto_and_is_served() {
    let kept = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/proto/riskgate/v1/riskgate.openapi.json"
    ))
    .unwrap();
    let derived = riskgate::api::openapi::render().unwrap();
    assert!(
        kept == derived,
        "proto/riskgate/v1/riskgate.openapi.json is stale: run `riskgate openapi > proto/riskgate/v1/riskgate.openapi.json`"
    );
    let doc: Value = serde_json::from_str(&kept).unwrap();
    let schemas = &doc["components"]["schemas"];

    // Every field and enum value of the proto, by the generated types' own
    // JSON names: a full answer serialized with every field set.
    let full = pb::EvaluateResponse {
        decision_id: "d".into(),
        action: pb::Action::StepUp as i32,
        score: 0.5,
        level: pb::RiskLevel::High as i32,
        reasons: vec![pb::Reason {
            code: "c".into(),
            message: "m".into(),
            weight: 1.0,
            shadow: true,
        }],
        acceptable_factors: vec![pb::Factor::Totp as i32],
        policy_version: "p".into(),
        model_version: "m".into(),
        degraded_signals: vec!["geo".into()],
    };
    let check = |name: &str, v: Value| {
        let props = schemas[name]["properties"].as_object().unwrap();
        for k in v.as_object().unwrap().keys() {
            assert!(props.contains_key(k), "{name}.{k} is not in the document");
        }
        assert_eq!(props.len(), v.as_object().unwrap().len(), "{name}: {v}");
    };
    check("EvaluateResponse", serde_json::to_value(&full).unwrap());
    check("Reason", serde_json::to_value(&full.reasons[0]).unwrap());
    let request = pb::EvaluateRequest {
        user_id: "u".into(),
        channel: 1,
        ip_address: "198.51.100.7".into(),
        device: Some(pb::Device {
            device_id: "d".into(),
            user_agent: "a".into(),
            binding: pb::DeviceBinding::KeyVerified as i32,
        }),
        occurred_at: Some(pbjson_types::Timestamp {
            seconds: 1,
            nanos: 0,
        }),
        credential_result: 1,
        attributes: [("k".to_string(), "v".to_string())].into(),
        request_id: "r".into(),
        enrolled_factors: vec![1],
    };
    check("EvaluateRequest", serde_json::to_value(&request).unwrap());
    let values = |name: &str| -> Vec<String> {
        schemas[name]["anyOf"][0]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    for a in [pb::Action::Allow, pb::Action::StepUp, pb::Action::Deny] {
        assert!(values("Action").contains(&a.as_str_name().to_string()));
    }
    for o in 0..=8 {
        if let Ok(o) = pb::Outcome::try_from(o) {
            assert!(values("Outcome").contains(&o.as_str_name().to_string()));
        }
    }

    let s = start().await;
    let a = http(s.running.addr, "GET", "/v1/openapi.json", &[], b"").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body, kept);
    s.running.shutdown().await;
}

/// The README's `curl` session, sent as written (the decision id
/// substituted): the answers have the shape the README shows.
#[tokio::test]
async fn the_readme_curl_session_answers_as_shown() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme.find("## HTTP/JSON").unwrap()..];
    let bodies: Vec<&str> = section
        .lines()
        .take_while(|l| !l.starts_with("```") || !l.is_empty())
        .filter_map(|l| l.trim().strip_prefix("-d '")?.strip_suffix('\''))
        .take(2)
        .collect();
    assert_eq!(bodies.len(), 2, "the README's curl commands moved");
    let s = start().await;
    let a = http(
        s.running.addr,
        "POST",
        "/v1/evaluate",
        &[JSON],
        bodies[0].as_bytes(),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let v = a.json();
    assert_eq!(v["action"], "ACTION_ALLOW", "{v}");
    assert_eq!(v["level"], "RISK_LEVEL_LOW", "{v}");
    let reasons = serde_json::to_string(&v["reasons"]).unwrap();
    assert!(
        section.contains(&format!(r#""reasons":{reasons},"#)),
        "the README shows other reasons than {reasons}"
    );
    assert!(section.contains(&format!(
        r#""modelVersion":"{}""#,
        v["modelVersion"].as_str().unwrap()
    )));
    let id = v["decisionId"].as_str().unwrap();
    let o = http(
        s.running.addr,
        "POST",
        "/v1/outcomes",
        &[JSON],
        bodies[1].replace("AaJD…", id).as_bytes(),
    )
    .await;
    assert_eq!(o.status, 200, "{}", o.body);
    assert_eq!(o.body, r#"{"profileUpdated":true}"#);
    assert!(section.contains(r#"# {"profileUpdated":true}"#));
    s.running.shutdown().await;
}
