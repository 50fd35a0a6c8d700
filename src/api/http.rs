//! The HTTP/JSON face of `RiskService`, on the decision port next to gRPC
//! (requests are told apart by path and content type): `POST /v1/evaluate`
//! and `POST /v1/outcomes` in the proto's canonical JSON mapping (generated
//! by pbjson: lowerCamelCase names, the proto names accepted too, enums by
//! name, timestamps as RFC 3339), `GET /healthz`, `GET /readyz` and the
//! OpenAPI document at `GET /v1/openapi.json`.
//!
//! Each call goes through the gRPC service itself — the same validation,
//! limits, admission control, deadline (`grpc-timeout` header) and engine
//! call — and errors come back in the Google API error shape,
//! `{"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": …}}`,
//! with the HTTP status that matches the gRPC code.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tonic::Code;
use tonic::metadata::MetadataMap;

use crate::api::pb;
use crate::api::pb::risk_service_server::RiskService as _;
use crate::api::risk::RiskService;

/// The OpenAPI 3.1 document of this face, as kept in the repository
/// (`riskgate openapi` prints what the proto implies; a test keeps the two
/// equal).
pub const OPENAPI: &str = include_str!("../../proto/riskgate/v1/riskgate.openapi.json");

struct Face {
    risk: Arc<RiskService>,
    ready: Arc<AtomicBool>,
}

/// The HTTP routes, to be merged into the decision port's router.
/// `ready` is true while the gRPC health says SERVING.
pub fn routes(risk: Arc<RiskService>, ready: Arc<AtomicBool>, max_request_bytes: usize) -> Router {
    let face = Arc::new(Face { risk, ready });
    Router::new()
        .route("/v1/evaluate", post(evaluate))
        .route("/v1/outcomes", post(outcomes))
        .route("/v1/openapi.json", get(openapi))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .layer(DefaultBodyLimit::max(max_request_bytes))
        .with_state(face)
}

/// The client's address of a request served by one of our listeners
/// (tonic records it per connection, plain or TLS).
pub fn client_ip(extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    extensions
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|c| c.get_ref().remote_addr())
        })
        .map(|a| a.ip())
}

/// What answers a path nothing else serves: gRPC's UNIMPLEMENTED for a
/// gRPC call, a JSON 404 for anything else.
pub async fn fallback(headers: HeaderMap) -> Response {
    let grpc = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if grpc {
        return tonic::Status::unimplemented("").into_http::<axum::body::Body>();
    }
    error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "no such path; the API is POST /v1/evaluate and POST /v1/outcomes (see /v1/openapi.json)",
    )
}

/// What is wrong with a request body: the HTTP status, the Google API
/// status name, and a message.
struct Problem(StatusCode, &'static str, String);

impl Problem {
    fn answer(&self) -> Response {
        error(self.0, self.1, &self.2)
    }
}

/// The body as a `T`, or the 400/413 that says what is wrong with it.
fn parse<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    what: &str,
) -> Result<T, Problem> {
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "OUT_OF_RANGE",
                "the request body is larger than the server accepts (`server.max_request_bytes`)"
                    .into(),
            )
        } else {
            Problem(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                format!("the request body could not be read: {r}"),
            )
        }
    })?;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(Problem(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "the request body must be JSON, sent with `content-type: application/json`".into(),
        ));
    }
    serde_json::from_slice(&body).map_err(|e| {
        Problem(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            format!("the body is not a valid {what}: {e}"),
        )
    })
}

/// A gRPC request carrying the HTTP headers as metadata (`grpc-timeout`,
/// `x-request-id`).
fn request<T>(headers: HeaderMap, message: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    *r.metadata_mut() = MetadataMap::from_headers(headers);
    r
}

async fn evaluate(
    State(face): State<Arc<Face>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let message: pb::EvaluateRequest = match parse(&headers, body, "EvaluateRequest") {
        Ok(m) => m,
        Err(p) => return p.answer(),
    };
    match face.risk.evaluate(request(headers, message)).await {
        Ok(r) => ok(r.get_ref()),
        Err(s) => status(&s),
    }
}

async fn outcomes(
    State(face): State<Arc<Face>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let message: pb::ReportOutcomeRequest = match parse(&headers, body, "ReportOutcomeRequest") {
        Ok(m) => m,
        Err(p) => return p.answer(),
    };
    match face.risk.report_outcome(request(headers, message)).await {
        Ok(r) => ok(r.get_ref()),
        Err(s) => status(&s),
    }
}

async fn openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI,
    )
        .into_response()
}

async fn healthz() -> Response {
    ok(&serde_json::json!({"status": "SERVING"}))
}

async fn readyz(State(face): State<Arc<Face>>) -> Response {
    if face.ready.load(Ordering::Relaxed) {
        ok(&serde_json::json!({"status": "SERVING"}))
    } else {
        let mut r = (
            StatusCode::SERVICE_UNAVAILABLE,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            serde_json::json!({"status": "NOT_SERVING"}).to_string(),
        )
            .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        r
    }
}

fn ok<T: serde::Serialize>(body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            &format!("the answer could not be written as JSON: {e}"),
        ),
    }
}

/// The HTTP status and the Google API status name of a gRPC code
/// (google.rpc.Code's mapping).
pub fn http_of(code: Code) -> (StatusCode, &'static str) {
    match code {
        Code::Ok => (StatusCode::OK, "OK"),
        Code::Cancelled => (
            StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            "CANCELLED",
        ),
        Code::Unknown => (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN"),
        Code::InvalidArgument => (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"),
        Code::DeadlineExceeded => (StatusCode::GATEWAY_TIMEOUT, "DEADLINE_EXCEEDED"),
        Code::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
        Code::AlreadyExists => (StatusCode::CONFLICT, "ALREADY_EXISTS"),
        Code::PermissionDenied => (StatusCode::FORBIDDEN, "PERMISSION_DENIED"),
        Code::ResourceExhausted => (StatusCode::TOO_MANY_REQUESTS, "RESOURCE_EXHAUSTED"),
        Code::FailedPrecondition => (StatusCode::BAD_REQUEST, "FAILED_PRECONDITION"),
        Code::Aborted => (StatusCode::CONFLICT, "ABORTED"),
        Code::OutOfRange => (StatusCode::BAD_REQUEST, "OUT_OF_RANGE"),
        Code::Unimplemented => (StatusCode::NOT_IMPLEMENTED, "UNIMPLEMENTED"),
        Code::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
        Code::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
        Code::DataLoss => (StatusCode::INTERNAL_SERVER_ERROR, "DATA_LOSS"),
        Code::Unauthenticated => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
    }
}

/// A gRPC status as an HTTP answer; overload and unavailability say when
/// to retry.
fn status(s: &tonic::Status) -> Response {
    let (code, name) = http_of(s.code());
    let mut r = error(code, name, s.message());
    if matches!(s.code(), Code::ResourceExhausted | Code::Unavailable) {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

/// The Google API error shape.
fn error(code: StatusCode, status: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "error": {"code": code.as_u16(), "status": status, "message": message}
    });
    (
        code,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}
