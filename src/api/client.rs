//! The clients of the command line (`eval`, `report`, `health`, `admin`,
//! `bench`): how they reach a server — plain `http://`, or `https://` with a
//! CA to trust and, for mutual TLS, a client certificate and key — and the
//! calls they make, in domain types.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::api::convert::{action_from_proto, attempt_to_proto, decision_from_proto};
use crate::api::pb::risk_admin_client::RiskAdminClient;
use crate::api::pb::risk_service_client::RiskServiceClient;
use crate::api::{code_label, convert, pb};
use crate::cli::eval::UsageError;
use crate::domain::{
    Action, Channel as LoginChannel, CredentialResult, Decision, DeviceBinding, Factor, Outcome,
};

/// TLS options of a client subcommand.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClientTls {
    /// PEM CA certificate(s) to trust for an https:// server.
    #[arg(long, value_name = "FILE", global = true)]
    pub ca: Option<PathBuf>,
    /// PEM client certificate, for a server that requires mutual TLS (with --key).
    #[arg(long, value_name = "FILE", requires = "key", global = true)]
    pub cert: Option<PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, value_name = "FILE", requires = "cert", global = true)]
    pub key: Option<PathBuf>,
}

fn read(what: &str, p: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("cannot read the {what} `{}`", p.display()))
}

/// An endpoint for `addr` with the TLS options applied.
pub fn endpoint(addr: &str, tls: &ClientTls) -> anyhow::Result<Endpoint> {
    let endpoint = Endpoint::from_shared(addr.to_string())
        .map_err(|_| UsageError(format!("`{addr}` is not a URL like http://127.0.0.1:50051")))?;
    let https = addr.starts_with("https://");
    if !https {
        if tls.ca.is_some() || tls.cert.is_some() {
            return Err(UsageError(format!(
                "`--ca`, `--cert` and `--key` need an https:// address, not `{addr}`"
            ))
            .into());
        }
        return Ok(endpoint);
    }
    let Some(ca) = &tls.ca else {
        return Err(UsageError(
            "an https:// address needs `--ca FILE` (no system roots are built in)".into(),
        )
        .into());
    };
    let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read("CA", ca)?));
    if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
        config = config.identity(Identity::from_pem(
            read("certificate", cert)?,
            read("key", key)?,
        ));
    }
    endpoint
        .tls_config(config)
        .context("the TLS options were refused")
}

/// What a client asks about: an attempt as a login service would send it.
/// The server validates; nothing is checked here.
#[derive(Clone, Debug, Default)]
pub struct Attempt {
    pub user_id: String,
    pub channel: LoginChannel,
    pub ip: String,
    pub device_id: Option<String>,
    pub device_binding: DeviceBinding,
    pub user_agent: Option<String>,
    pub credential: CredentialResult,
}

/// A call the server refused, or that failed on the way.
#[derive(Debug, thiserror::Error)]
#[error("server answered {code}: {message}")]
pub struct CallError {
    /// The gRPC code's name (`InvalidArgument`, `Unavailable`, …).
    pub code: &'static str,
    pub message: String,
}

impl From<tonic::Status> for CallError {
    fn from(s: tonic::Status) -> Self {
        CallError {
            code: code_label(s.code()),
            message: s.message().to_string(),
        }
    }
}

/// The decision id and action of an Evaluate answer: what the load
/// generator reads (fields 1 and 2 of `EvaluateResponse`; protobuf skips the
/// others without allocating them).
#[derive(Clone, PartialEq, prost::Message)]
struct Brief {
    #[prost(string, tag = "1")]
    decision_id: String,
    #[prost(int32, tag = "2")]
    action: i32,
}

/// One HTTP/2 connection to a server.
#[derive(Clone, Debug)]
pub struct Connection {
    channel: Channel,
}

/// Connects to `addr` with the TLS options; every call gives up after
/// `call_timeout`.
pub async fn connect(
    addr: &str,
    tls: &ClientTls,
    connect_timeout: Duration,
    call_timeout: Duration,
) -> anyhow::Result<Connection> {
    let channel = endpoint(addr, tls)?
        .connect_timeout(connect_timeout)
        .timeout(call_timeout)
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    Ok(Connection { channel })
}

impl Connection {
    /// The calls of one user of this connection (cheap; one per worker).
    pub fn caller(&self) -> Caller {
        Caller {
            risk: RiskServiceClient::new(self.channel.clone()),
            grpc: tonic::client::Grpc::new(self.channel.clone()),
            health: HealthClient::new(self.channel.clone()),
        }
    }
}

/// Calls on one connection.
pub struct Caller {
    risk: RiskServiceClient<Channel>,
    grpc: tonic::client::Grpc<Channel>,
    health: HealthClient<Channel>,
}

impl Caller {
    /// The standard gRPC health check of the whole server: its status name
    /// (`SERVING`, `NOT_SERVING`, …).
    pub async fn health(&mut self) -> Result<&'static str, CallError> {
        let r = self
            .health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await?
            .into_inner();
        Ok(ServingStatus::try_from(r.status)
            .unwrap_or(ServingStatus::Unknown)
            .as_str_name())
    }

    /// Evaluate, the whole answer.
    pub async fn evaluate(&mut self, a: Attempt) -> Result<Decision, CallError> {
        let r = self.risk.evaluate(attempt_to_proto(a)).await?.into_inner();
        Ok(decision_from_proto(r))
    }

    /// Evaluate, reading only the decision id and the action (`None`: the
    /// server sent an unknown action).
    pub async fn evaluate_brief(
        &mut self,
        a: Attempt,
    ) -> Result<(String, Option<Action>), CallError> {
        self.grpc.ready().await.map_err(|e| CallError {
            code: "Unavailable",
            message: format!("channel not ready: {e}"),
        })?;
        let codec = tonic_prost::ProstCodec::<pb::EvaluateRequest, Brief>::default();
        let path = tonic::codegen::http::uri::PathAndQuery::from_static(
            "/riskgate.v1.RiskService/Evaluate",
        );
        let r = self
            .grpc
            .unary(tonic::Request::new(attempt_to_proto(a)), path, codec)
            .await?
            .into_inner();
        Ok((r.decision_id, action_from_proto(r.action)))
    }

    /// ReportOutcome; whether the profile changed.
    pub async fn report(
        &mut self,
        decision_id: String,
        outcome: Outcome,
        factor: Option<Factor>,
    ) -> Result<bool, CallError> {
        let r = self
            .risk
            .report_outcome(pb::ReportOutcomeRequest {
                decision_id,
                outcome: convert::outcome_to_proto(outcome) as i32,
                factor: factor.map(|f| convert::factor_to_proto(f) as i32),
            })
            .await?
            .into_inner();
        Ok(r.profile_updated)
    }
}

/// An admin API operation.
#[derive(Clone, Debug)]
pub enum AdminRequest {
    Profile {
        user: String,
        devices: Vec<String>,
        ips: Vec<String>,
    },
    Forget {
        user: String,
    },
    Trust {
        user: String,
        device: String,
        reason: String,
    },
    Revoke {
        user: String,
        device: String,
        reason: String,
    },
}

fn ts(t: Option<&pbjson_types::Timestamp>) -> Value {
    t.map_or(Value::Null, |t| {
        json!(t.seconds * 1000 + i64::from(t.nanos / 1_000_000))
    })
}

fn with_token<T>(msg: T, token: &MetadataValue<Ascii>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert("authorization", token.clone());
    r
}

/// Calls the admin API at `addr` with the bearer `token`; the answer as
/// JSON with readable names.
pub async fn admin(
    addr: &str,
    tls: &ClientTls,
    token: &str,
    request: AdminRequest,
) -> anyhow::Result<Value> {
    let token = MetadataValue::try_from(format!("Bearer {token}"))
        .map_err(|_| UsageError("the admin token is not a valid header value".into()))?;
    let endpoint = endpoint(addr, tls).map_err(|e| {
        if e.downcast_ref::<UsageError>().is_some() {
            e
        } else {
            UsageError(format!("`{addr}` is not a URL like http://127.0.0.1:50052")).into()
        }
    })?;
    let channel = endpoint
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    let mut client = RiskAdminClient::new(channel);
    Ok(match request {
        AdminRequest::Profile { user, devices, ips } => {
            let p = client
                .get_user_profile(with_token(
                    pb::GetUserProfileRequest {
                        user_id: user,
                        device_ids: devices,
                        ip_addresses: ips,
                        user_agents: Vec::new(),
                    },
                    &token,
                ))
                .await
                .context("GetUserProfile")?
                .into_inner();
            let marks = |m: &[pb::DeviceMark]| -> Vec<Value> {
                m.iter()
                    .map(|m| json!({"hash": m.hash, "at_ms": ts(m.at.as_ref())}))
                    .collect()
            };
            json!({
                "user_hash": p.user_hash,
                "verified_logins": p.verified_logins,
                "values": p.values.iter().map(|v| json!({
                    "dimension": v.dimension, "hash": v.hash, "count": v.count,
                    "last_seen_ms": ts(v.last_seen.as_ref()),
                })).collect::<Vec<_>>(),
                "hours": p.hours.iter().map(|h| json!([h.hour_of_week, h.count])).collect::<Vec<_>>(),
                "last_login_ms": ts(p.last_login.as_ref()),
                "last_strong_auth_ms": ts(p.last_strong_auth.as_ref()),
                "trusted_devices": marks(&p.trusted_devices),
                "revoked_devices": marks(&p.revoked_devices),
                "candidates": p.candidates.iter().map(|c| json!({
                    "dimension": c.dimension, "value": c.value, "hash": c.hash,
                    "known": c.known, "count": c.count, "last_seen_ms": ts(c.last_seen.as_ref()),
                    "trusted": c.trusted, "revoked": c.revoked,
                })).collect::<Vec<_>>(),
                "recent_decisions": p.recent_decisions.iter().map(|d| json!({
                    "decision_id": d.decision_id, "at_ms": ts(d.at.as_ref()),
                    "action": pb::Action::try_from(d.action).map_or("unknown", |a| a.as_str_name()),
                    "score": d.score, "reasons": d.reason_codes,
                })).collect::<Vec<_>>(),
            })
        }
        AdminRequest::Forget { user } => {
            let f = client
                .forget_user(with_token(pb::ForgetUserRequest { user_id: user }, &token))
                .await
                .context("ForgetUser")?
                .into_inner();
            json!({
                "user_hash": f.user_hash,
                "forgotten": {
                    "verified_logins": f.verified_logins,
                    "profile_values": f.profile_values,
                    "trusted_devices": f.trusted_devices,
                    "revoked_devices": f.revoked_devices,
                    "pending_decisions": f.pending_decisions,
                    "recent_decisions": f.recent_decisions,
                    "failure_counters": f.failure_counters,
                    "journal_decisions": f.journal_decisions,
                },
            })
        }
        AdminRequest::Trust {
            user,
            device,
            reason,
        } => {
            let r = client
                .trust_device(with_token(
                    pb::TrustDeviceRequest {
                        user_id: user,
                        device_id: device,
                        reason,
                    },
                    &token,
                ))
                .await
                .context("TrustDevice")?
                .into_inner();
            json!({"device_hash": r.device_hash, "was_known": r.was_known})
        }
        AdminRequest::Revoke {
            user,
            device,
            reason,
        } => {
            let r = client
                .revoke_device(with_token(
                    pb::RevokeDeviceRequest {
                        user_id: user,
                        device_id: device,
                        reason,
                    },
                    &token,
                ))
                .await
                .context("RevokeDevice")?
                .into_inner();
            json!({"device_hash": r.device_hash, "was_known": r.was_known})
        }
    })
}
