//! The admin API (`riskgate.v1.RiskAdmin`): what riskgate knows about a
//! user, erasure, and devices support trusts or revokes. Served on its own
//! listener ([`serve`]), authenticated ([`auth`]) and audited ([`audit`]).
//! Identifiers are hashed with the engine's [`IdHasher`] before they reach
//! the store or a log, exactly like on the decision path.

pub mod audit;
pub mod auth;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use crate::domain::UnixMillis;
use crate::engine::Engine;
use crate::grpc::convert::{action_to_proto, limits};
use crate::grpc::pb;
use crate::grpc::pb::risk_admin_server::{RiskAdmin, RiskAdminServer};
use crate::signals::{canonical, network_of};
use crate::store::{Dim, Key, StoreError, UserProfile, value_hash};

use auth::{Identity, TokenAuth};

/// Deadline of one admin store call (forget walks every pending decision of
/// the memory store, so it gets more than the decision path's deadline).
const STORE_DEADLINE: Duration = Duration::from_secs(5);
/// Most candidate values per kind in GetUserProfile.
const MAX_CANDIDATES: usize = 32;
/// Longest reason accepted for trust and revoke.
const MAX_REASON: usize = 512;

/// What an admin call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("`{0}`: {1}")]
    Invalid(&'static str, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<AdminError> for Status {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Invalid(..) => Status::invalid_argument(e.to_string()),
            AdminError::Store(e) => {
                tracing::warn!(error = %e, "admin call failed: store unavailable");
                Status::unavailable("the store is unavailable; retry later")
            }
        }
    }
}

fn required(field: &'static str, v: &str, max: usize) -> Result<(), AdminError> {
    if v.trim().is_empty() {
        return Err(AdminError::Invalid(field, "is required".into()));
    }
    if v.len() > max {
        return Err(AdminError::Invalid(
            field,
            format!("is {} bytes; the limit is {max}", v.len()),
        ));
    }
    Ok(())
}

fn timestamp(at: UnixMillis) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.0.div_euclid(1000),
        nanos: i32::try_from(at.0.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

fn hash_hex(h: u64) -> String {
    format!("{h:016x}")
}

/// The admin service over an engine's store and hasher.
pub struct AdminService {
    engine: Arc<Engine>,
    auth: TokenAuth,
}

impl AdminService {
    /// A service over `engine`, accepting callers `auth` identifies.
    pub fn new(engine: Arc<Engine>, auth: TokenAuth) -> Self {
        AdminService { engine, auth }
    }

    fn user_key(&self, user_id: &str) -> Key {
        self.engine.hasher().key(Dim::User, user_id.as_bytes())
    }

    /// Identifies the caller; a refusal is audited before it is returned.
    fn identify<T>(&self, method: &str, request: &Request<T>) -> Result<Identity, Status> {
        self.auth.identify(request.metadata()).inspect_err(|s| {
            audit::record(&audit::Event {
                who: "unauthenticated",
                method,
                user: None,
                device: None,
                reason: "",
                result: code_name(s.code()),
            });
        })
    }

    async fn with_deadline<T>(
        &self,
        f: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, AdminError> {
        match tokio::time::timeout(STORE_DEADLINE, f).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(StoreError::Timeout(STORE_DEADLINE).into()),
        }
    }

    fn candidates(
        &self,
        r: &pb::GetUserProfileRequest,
        p: &UserProfile,
    ) -> Result<Vec<pb::CandidateMatch>, AdminError> {
        for (field, n) in [
            ("device_ids", r.device_ids.len()),
            ("ip_addresses", r.ip_addresses.len()),
            ("user_agents", r.user_agents.len()),
        ] {
            if n > MAX_CANDIDATES {
                return Err(AdminError::Invalid(
                    field,
                    format!("has {n} values; the limit is {MAX_CANDIDATES}"),
                ));
            }
        }
        let mut wanted: Vec<(Dim, String)> = Vec::new();
        for d in &r.device_ids {
            required("device_ids", d, limits::DEVICE_ID)?;
            wanted.push((Dim::Device, d.clone()));
        }
        for ip in &r.ip_addresses {
            let parsed: std::net::IpAddr = ip.trim().parse().map_err(|_| {
                AdminError::Invalid(
                    "ip_addresses",
                    format!("`{ip}` is not an IPv4 or IPv6 address"),
                )
            })?;
            let ip = canonical(parsed);
            wanted.push((Dim::Ip, ip.to_string()));
            wanted.push((Dim::Network, network_of(ip)));
        }
        for ua in &r.user_agents {
            required("user_agents", ua, limits::USER_AGENT)?;
            wanted.push((Dim::UserAgent, ua.clone()));
        }
        let h = self.engine.hasher();
        Ok(wanted
            .into_iter()
            .map(|(dim, value)| {
                let hash = value_hash(h.key(dim, value.as_bytes()));
                let seen = p.values.iter().find(|v| v.dim == dim && v.hash == hash);
                let is_device = dim == Dim::Device;
                pb::CandidateMatch {
                    dimension: dim.as_str().into(),
                    // Echoed as the caller gave it: the store holds no raw value.
                    value,
                    hash: hash_hex(hash),
                    known: seen.is_some(),
                    count: seen.map_or(0, |v| v.count),
                    last_seen: seen
                        .map(|v| timestamp(UnixMillis(i64::from(v.last_seen_secs) * 1000))),
                    trusted: is_device && p.trusted.iter().any(|m| m.device == hash),
                    revoked: is_device && p.revoked.iter().any(|m| m.device == hash),
                }
            })
            .collect())
    }

    async fn profile(
        &self,
        r: pb::GetUserProfileRequest,
    ) -> Result<pb::GetUserProfileResponse, AdminError> {
        let user = self.user_key(&r.user_id);
        let p = self
            .with_deadline(self.engine.store().profile(user))
            .await?;
        let candidates = self.candidates(&r, &p)?;
        let mark = |m: &crate::store::DeviceMark| pb::DeviceMark {
            hash: hash_hex(m.device),
            at: Some(timestamp(m.at)),
        };
        Ok(pb::GetUserProfileResponse {
            user_hash: format!("{user:?}"),
            verified_logins: p.verified_logins,
            values: p
                .values
                .iter()
                .map(|v| pb::ProfileValue {
                    dimension: v.dim.as_str().into(),
                    hash: hash_hex(v.hash),
                    count: v.count,
                    last_seen: Some(timestamp(UnixMillis(i64::from(v.last_seen_secs) * 1000))),
                })
                .collect(),
            hours: p
                .hours
                .iter()
                .map(|(h, c)| pb::HourCount {
                    hour_of_week: u32::from(*h),
                    count: *c,
                })
                .collect(),
            last_login: p.last_login.map(|l| timestamp(l.at)),
            last_strong_auth: p.last_strong_auth.map(timestamp),
            trusted_devices: p.trusted.iter().map(mark).collect(),
            revoked_devices: p.revoked.iter().map(mark).collect(),
            candidates,
            recent_decisions: p
                .recent
                .iter()
                .map(|d| pb::RecentDecision {
                    decision_id: d.decision_id.clone(),
                    at: Some(timestamp(d.at)),
                    action: action_to_proto(d.action) as i32,
                    score: d.score,
                    reason_codes: d.reasons.clone(),
                })
                .collect(),
        })
    }
}

fn code_name(c: tonic::Code) -> &'static str {
    match c {
        tonic::Code::Ok => "ok",
        tonic::Code::InvalidArgument => "invalid_argument",
        tonic::Code::Unauthenticated => "unauthenticated",
        tonic::Code::Unavailable => "unavailable",
        _ => "error",
    }
}

/// Audits the outcome of an authenticated call and converts its error.
fn finish<T>(
    who: &Identity,
    method: &str,
    user: Option<Key>,
    device: Option<Key>,
    reason: &str,
    r: Result<T, AdminError>,
) -> Result<Response<T>, Status> {
    let r = r.map_err(Status::from);
    audit::record(&audit::Event {
        who: who.name(),
        method,
        user,
        device,
        reason,
        result: match &r {
            Ok(_) => "ok",
            Err(s) => code_name(s.code()),
        },
    });
    r.map(Response::new)
}

#[tonic::async_trait]
impl RiskAdmin for AdminService {
    async fn get_user_profile(
        &self,
        request: Request<pb::GetUserProfileRequest>,
    ) -> Result<Response<pb::GetUserProfileResponse>, Status> {
        const M: &str = "GetUserProfile";
        let who = self.identify(M, &request)?;
        let r = request.into_inner();
        let user = (!r.user_id.is_empty()).then(|| self.user_key(&r.user_id));
        let result = match required("user_id", &r.user_id, limits::USER_ID) {
            Ok(()) => self.profile(r).await,
            Err(e) => Err(e),
        };
        finish(&who, M, user, None, "", result)
    }

    async fn forget_user(
        &self,
        request: Request<pb::ForgetUserRequest>,
    ) -> Result<Response<pb::ForgetUserResponse>, Status> {
        const M: &str = "ForgetUser";
        let who = self.identify(M, &request)?;
        let r = request.into_inner();
        let user = self.user_key(&r.user_id);
        let result = match required("user_id", &r.user_id, limits::USER_ID) {
            Ok(()) => self
                .with_deadline(self.engine.store().forget(user))
                .await
                .map(|f| pb::ForgetUserResponse {
                    user_hash: format!("{user:?}"),
                    verified_logins: f.verified_logins,
                    profile_values: f.profile_values,
                    trusted_devices: f.trusted_devices,
                    revoked_devices: f.revoked_devices,
                    pending_decisions: f.pending_decisions,
                    recent_decisions: f.recent_decisions,
                    failure_counters: f.failure_counters,
                }),
            Err(e) => Err(e),
        };
        finish(&who, M, Some(user), None, "", result)
    }

    async fn trust_device(
        &self,
        request: Request<pb::TrustDeviceRequest>,
    ) -> Result<Response<pb::TrustDeviceResponse>, Status> {
        const M: &str = "TrustDevice";
        let who = self.identify(M, &request)?;
        let r = request.into_inner();
        let user = self.user_key(&r.user_id);
        let device = self
            .engine
            .hasher()
            .key(Dim::Device, r.device_id.as_bytes());
        let reason = truncated(&r.reason);
        let result = match self.check_device_request(&r.user_id, &r.device_id, &r.reason) {
            Ok(()) => self
                .with_deadline(
                    self.engine
                        .store()
                        .trust_device(user, device, UnixMillis::now()),
                )
                .await
                .map(|was_known| pb::TrustDeviceResponse {
                    device_hash: hash_hex(value_hash(device)),
                    was_known,
                }),
            Err(e) => Err(e),
        };
        finish(&who, M, Some(user), Some(device), reason, result)
    }

    async fn revoke_device(
        &self,
        request: Request<pb::RevokeDeviceRequest>,
    ) -> Result<Response<pb::RevokeDeviceResponse>, Status> {
        const M: &str = "RevokeDevice";
        let who = self.identify(M, &request)?;
        let r = request.into_inner();
        let user = self.user_key(&r.user_id);
        let device = self
            .engine
            .hasher()
            .key(Dim::Device, r.device_id.as_bytes());
        let reason = truncated(&r.reason);
        let result = match self.check_device_request(&r.user_id, &r.device_id, &r.reason) {
            Ok(()) => self
                .with_deadline(
                    self.engine
                        .store()
                        .revoke_device(user, device, UnixMillis::now()),
                )
                .await
                .map(|was_known| pb::RevokeDeviceResponse {
                    device_hash: hash_hex(value_hash(device)),
                    was_known,
                }),
            Err(e) => Err(e),
        };
        finish(&who, M, Some(user), Some(device), reason, result)
    }
}

impl AdminService {
    fn check_device_request(
        &self,
        user_id: &str,
        device_id: &str,
        reason: &str,
    ) -> Result<(), AdminError> {
        required("user_id", user_id, limits::USER_ID)?;
        required("device_id", device_id, limits::DEVICE_ID)?;
        required("reason", reason, MAX_REASON)
    }
}

/// At most [`MAX_REASON`] bytes of `s`, on a character boundary (an
/// oversized reason is refused, but still audited in part).
fn truncated(s: &str) -> &str {
    let mut end = s.len().min(MAX_REASON);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The admin listener, running.
pub struct AdminServer {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl AdminServer {
    /// Stops accepting and waits up to `deadline` for in-flight calls.
    pub async fn shutdown(self, deadline: Duration) {
        let _ = self.stop.send(());
        if tokio::time::timeout(deadline, self.task).await.is_err() {
            tracing::warn!("admin calls did not finish in time");
        }
    }
}

/// Serves the admin API on `listener` (its own port, never the decision
/// port).
pub fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    auth: TokenAuth,
    max_request_bytes: usize,
) -> std::io::Result<AdminServer> {
    let addr = listener.local_addr()?;
    let service = RiskAdminServer::new(AdminService::new(engine, auth))
        .max_decoding_message_size(max_request_bytes);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                async {
                    let _ = stopped.await;
                },
            ),
    );
    tracing::info!(admin.listen = %addr, "admin API serving");
    Ok(AdminServer { addr, stop, task })
}
