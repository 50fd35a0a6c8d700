//! `riskgate.v1.RiskAdmin`: what riskgate knows about a user, erasure, and
//! devices support trusts or revokes — over the engine's admin operations.
//! Every call is authenticated ([`super::auth`]) and audited
//! ([`super::audit`]); identifiers reach logs only as the engine's keyed
//! hashes.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::api::auth::{Identity, TokenAuth};
use crate::api::convert::{
    action_to_proto, admin_user_id, candidates_from_proto, device_request, limits,
};
use crate::api::{ApiError, audit, code_audit_name, pb};
use crate::core::keys::{Key, value_hash};
use crate::domain::UnixMillis;
use crate::engine::{Engine, ProfileReport};
use crate::store::{DeviceMark, Mark};

fn timestamp(at: UnixMillis) -> pbjson_types::Timestamp {
    pbjson_types::Timestamp {
        seconds: at.0.div_euclid(1000),
        nanos: i32::try_from(at.0.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

fn secs(s: u32) -> pbjson_types::Timestamp {
    timestamp(UnixMillis(i64::from(s) * 1000))
}

fn hash_hex(h: u64) -> String {
    format!("{h:016x}")
}

/// The admin service over an engine.
pub struct AdminService {
    engine: Arc<Engine>,
    auth: TokenAuth,
}

impl AdminService {
    /// A service over `engine`, accepting callers `auth` identifies.
    pub fn new(engine: Arc<Engine>, auth: TokenAuth) -> Self {
        AdminService { engine, auth }
    }

    /// Identifies the caller; a refusal is audited before it is returned.
    fn identify<T>(&self, method: &str, request: &Request<T>) -> Result<Identity, Status> {
        self.auth.identify(request.metadata()).map_err(|e| {
            audit::record(&audit::Event {
                who: "unauthenticated",
                method,
                user: None,
                device: None,
                reason: "",
                result: code_audit_name(e.code()),
            });
            Status::from(e)
        })
    }

    /// Trusts or revokes a device: the request is checked, the engine
    /// marks, the call is audited.
    async fn mark(
        &self,
        method: &str,
        who: &Identity,
        user_id: &str,
        device_id: &str,
        reason: &str,
        mark: Mark,
    ) -> Result<(String, bool), Status> {
        let user = self.engine.user_key(user_id);
        let device = self.engine.device_key(device_id);
        let result = match device_request(user_id, device_id, reason) {
            Ok(()) => self
                .engine
                .mark_device(user_id, device_id, mark)
                .await
                .map(|was_known| (hash_hex(value_hash(device)), was_known))
                .map_err(ApiError::from),
            Err(e) => Err(e.into()),
        };
        finish(
            who,
            method,
            Some(user),
            Some(device),
            truncated(reason),
            result,
        )
        .map(Response::into_inner)
    }
}

fn profile_to_proto(r: ProfileReport) -> pb::GetUserProfileResponse {
    let p = r.profile;
    let mark = |m: &DeviceMark| pb::DeviceMark {
        hash: hash_hex(m.device),
        at: Some(timestamp(m.at)),
    };
    pb::GetUserProfileResponse {
        user_hash: format!("{:?}", r.user),
        verified_logins: p.verified_logins,
        values: p
            .values
            .iter()
            .map(|v| pb::ProfileValue {
                dimension: v.dim.as_str().into(),
                hash: hash_hex(v.hash),
                count: v.count,
                last_seen: Some(secs(v.last_seen_secs)),
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
        candidates: r
            .candidates
            .into_iter()
            .map(|c| pb::CandidateMatch {
                dimension: c.dim.as_str().into(),
                value: c.value,
                hash: hash_hex(c.hash),
                known: c.known,
                count: c.count,
                last_seen: c.last_seen_secs.map(secs),
                trusted: c.trusted,
                revoked: c.revoked,
            })
            .collect(),
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
    }
}

/// Audits the outcome of an authenticated call and converts its error.
fn finish<T>(
    who: &Identity,
    method: &str,
    user: Option<Key>,
    device: Option<Key>,
    reason: &str,
    r: Result<T, ApiError>,
) -> Result<Response<T>, Status> {
    audit::record(&audit::Event {
        who: who.name(),
        method,
        user,
        device,
        reason,
        result: match &r {
            Ok(_) => "ok",
            Err(e) => code_audit_name(e.code()),
        },
    });
    r.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl pb::risk_admin_server::RiskAdmin for AdminService {
    async fn get_user_profile(
        &self,
        request: Request<pb::GetUserProfileRequest>,
    ) -> Result<Response<pb::GetUserProfileResponse>, Status> {
        const M: &str = "GetUserProfile";
        let who = self.identify(M, &request)?;
        let r = request.into_inner();
        let user = (!r.user_id.is_empty()).then(|| self.engine.user_key(&r.user_id));
        let checked = admin_user_id(&r.user_id).and_then(|()| candidates_from_proto(&r));
        let result = match checked {
            Ok(candidates) => self
                .engine
                .profile(&r.user_id, &candidates)
                .await
                .map(profile_to_proto)
                .map_err(ApiError::from),
            Err(e) => Err(e.into()),
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
        let user = self.engine.user_key(&r.user_id);
        let result = match admin_user_id(&r.user_id) {
            Ok(()) => self
                .engine
                .forget(&r.user_id)
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
                    journal_decisions: f.journal_decisions,
                })
                .map_err(ApiError::from),
            Err(e) => Err(e.into()),
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
        self.mark(M, &who, &r.user_id, &r.device_id, &r.reason, Mark::Trust)
            .await
            .map(|(device_hash, was_known)| {
                Response::new(pb::TrustDeviceResponse {
                    device_hash,
                    was_known,
                })
            })
    }

    async fn revoke_device(
        &self,
        request: Request<pb::RevokeDeviceRequest>,
    ) -> Result<Response<pb::RevokeDeviceResponse>, Status> {
        const M: &str = "RevokeDevice";
        let who = self.identify(M, &request)?;
        let r = request.into_inner();
        self.mark(M, &who, &r.user_id, &r.device_id, &r.reason, Mark::Revoke)
            .await
            .map(|(device_hash, was_known)| {
                Response::new(pb::RevokeDeviceResponse {
                    device_hash,
                    was_known,
                })
            })
    }
}

/// At most [`limits::REASON`] bytes of `s`, on a character boundary (an
/// oversized reason is refused, but still audited in part).
fn truncated(s: &str) -> &str {
    let mut end = s.len().min(limits::REASON);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
