//! `riskgate admin profile|forget|trust|revoke`: a terminal client of the
//! admin API. The token is read from an environment variable named by
//! `--token-env`, never from a flag (flags show in `ps`). Prints JSON.

use anyhow::Context as _;
use serde_json::{Value, json};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use crate::grpc::pb;
use crate::grpc::pb::risk_admin_client::RiskAdminClient;

use super::eval::UsageError;

/// `riskgate admin`.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub action: AdminAction,
    /// Admin API address.
    #[arg(long, global = true, default_value = "http://127.0.0.1:50052")]
    pub addr: String,
    /// The environment variable holding the admin token.
    #[arg(long, global = true, default_value = "RISKGATE_ADMIN_TOKEN")]
    pub token_env: String,
}

/// The admin operations.
#[derive(Debug, clap::Subcommand)]
pub enum AdminAction {
    /// Show what riskgate knows about a user.
    Profile {
        #[arg(long)]
        user: String,
        /// Device ids to look up in the profile (repeatable).
        #[arg(long = "device")]
        devices: Vec<String>,
        /// IP addresses to look up in the profile (repeatable).
        #[arg(long = "ip")]
        ips: Vec<String>,
    },
    /// Erase everything stored about a user.
    Forget {
        #[arg(long)]
        user: String,
    },
    /// Trust a device after out-of-band verification.
    Trust {
        #[arg(long)]
        user: String,
        #[arg(long)]
        device: String,
        /// Why (ticket, verification done); written to the audit log.
        #[arg(long)]
        reason: String,
    },
    /// Revoke a lost or stolen device: later attempts from it are denied.
    Revoke {
        #[arg(long)]
        user: String,
        #[arg(long)]
        device: String,
        /// Why (ticket, "reported stolen"); written to the audit log.
        #[arg(long)]
        reason: String,
    },
}

fn ts(t: Option<&prost_types::Timestamp>) -> Value {
    t.map_or(Value::Null, |t| {
        json!(t.seconds * 1000 + i64::from(t.nanos / 1_000_000))
    })
}

fn request<T>(msg: T, token: &MetadataValue<tonic::metadata::Ascii>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert("authorization", token.clone());
    r
}

/// Runs `admin`.
pub async fn run(a: AdminArgs) -> anyhow::Result<()> {
    let token = std::env::var(&a.token_env).map_err(|_| {
        UsageError(format!(
            "the admin token is read from `{}`, which is not set",
            a.token_env
        ))
    })?;
    let token = MetadataValue::try_from(format!("Bearer {token}"))
        .map_err(|_| UsageError(format!("`{}` is not a valid token", a.token_env)))?;
    let channel = Channel::from_shared(a.addr.clone())
        .map_err(|_| {
            UsageError(format!(
                "`{}` is not a URL like http://127.0.0.1:50052",
                a.addr
            ))
        })?
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| format!("cannot connect to {}", a.addr))?;
    let mut client = RiskAdminClient::new(channel);
    let out = match a.action {
        AdminAction::Profile { user, devices, ips } => {
            let p = client
                .get_user_profile(request(
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
        AdminAction::Forget { user } => {
            let f = client
                .forget_user(request(pb::ForgetUserRequest { user_id: user }, &token))
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
                },
            })
        }
        AdminAction::Trust {
            user,
            device,
            reason,
        } => {
            let r = client
                .trust_device(request(
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
        AdminAction::Revoke {
            user,
            device,
            reason,
        } => {
            let r = client
                .revoke_device(request(
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
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
