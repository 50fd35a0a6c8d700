//! Audit events of the admin API: one per call, on the log target
//! `riskgate::audit` (route it apart from the decision log with
//! `RUST_LOG`/a log shipper filter on the target). Who (the caller's
//! identity name), what (the method and the user's keyed hash — never the
//! raw user id), when (the event's timestamp, plus `audit.at_ms`), and the
//! result (`ok` or the gRPC code).

use crate::core::keys::Key;
use crate::domain::UnixMillis;

/// The log target of audit events.
pub const TARGET: &str = "riskgate::audit";

/// One audit event.
pub struct Event<'a> {
    /// The caller (`unauthenticated` when the credentials were refused).
    pub who: &'a str,
    pub method: &'a str,
    /// The user's keyed hash, when the request named a user.
    pub user: Option<Key>,
    /// The device's keyed hash, for trust and revoke.
    pub device: Option<Key>,
    /// The reason support gave, for trust and revoke.
    pub reason: &'a str,
    /// `ok`, or the gRPC code of the failure.
    pub result: &'a str,
}

/// Writes `e` to the audit target.
pub fn record(e: &Event<'_>) {
    tracing::event!(
        target: "riskgate::audit",
        tracing::Level::INFO,
        audit.who = e.who,
        audit.method = e.method,
        audit.user = ?e.user,
        audit.device = ?e.device,
        audit.reason = e.reason,
        audit.result = e.result,
        audit.at_ms = UnixMillis::now().0,
        "admin call"
    );
}
