//! `riskgate admin profile|forget|trust|revoke`: a terminal client of the
//! admin API. The token is read from an environment variable named by
//! `--token-env`, never from a flag (flags show in `ps`). Prints JSON.

use crate::api::client::{self, AdminRequest, ClientTls};

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
    #[command(flatten)]
    pub tls: ClientTls,
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

/// Runs `admin`.
pub async fn run(a: AdminArgs) -> anyhow::Result<()> {
    let token = std::env::var(&a.token_env).map_err(|_| {
        UsageError(format!(
            "the admin token is read from `{}`, which is not set",
            a.token_env
        ))
    })?;
    let request = match a.action {
        AdminAction::Profile { user, devices, ips } => AdminRequest::Profile { user, devices, ips },
        AdminAction::Forget { user } => AdminRequest::Forget { user },
        AdminAction::Trust {
            user,
            device,
            reason,
        } => AdminRequest::Trust {
            user,
            device,
            reason,
        },
        AdminAction::Revoke {
            user,
            device,
            reason,
        } => AdminRequest::Revoke {
            user,
            device,
            reason,
        },
    };
    let out = client::admin(&a.addr, &a.tls, &token, request).await?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
