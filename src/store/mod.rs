//! State behind the signals: user profiles, velocity counters and pending
//! decisions. One trait, [`Store`], with one call per RPC so that a networked
//! implementation can answer each in a single round trip.
//!
//! Identifiers never reach a store raw: the engine turns them into [`Key`]s
//! with a keyed hash ([`IdHasher`]) first.

pub mod bounded;
pub mod fxhash;
pub mod memory;
mod profile;
pub mod redis;
pub mod window;

use async_trait::async_trait;
use serde::Serialize;

use crate::core::inputs::{LastLogin, Observation, StoreView};
use crate::core::keys::{Dim, Key};
use crate::domain::{Action, Factor, Outcome, Reason, UnixMillis};

/// What every store keeps, and for how long, unless configured otherwise.
pub mod defaults {
    use std::time::Duration;

    /// A profile not taught for this long expires.
    pub const PROFILE_TTL: Duration = Duration::from_secs(90 * 86_400);
    /// How long a decision can be reported on.
    pub const DECISION_TTL: Duration = Duration::from_secs(7 * 86_400);
    /// Most distinct values remembered per user and dimension.
    pub const HISTORY_PER_DIM: usize = 16;
}

/// A ReportOutcome, already decoded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OutcomeReport {
    pub decision: u128,
    /// The user of that decision (carried, authenticated, in its id, so a
    /// store finds the decision in the user's slot without an index).
    pub user: Key,
    /// The action of that decision (carried, authenticated, in its id).
    pub action: Action,
    pub outcome: Outcome,
    pub factor: Option<Factor>,
    pub at: UnixMillis,
}

/// What a report changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportEffect {
    pub profile_updated: bool,
}

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("decision `{0}` is unknown or expired")]
    UnknownDecision(String),
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store call timed out after {0:?}")]
    Timeout(std::time::Duration),
}

/// One remembered value of a profile dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ProfileValue {
    pub dim: Dim,
    /// [`crate::core::keys::value_hash`] of the value's key (the raw value
    /// is never stored).
    pub hash: u64,
    /// Verified logins with this value (1 for a device support trusted).
    pub count: u32,
    /// Last verified login (or trust) with this value, seconds since epoch.
    pub last_seen_secs: u32,
}

/// A device support trusted or revoked, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct DeviceMark {
    /// [`crate::core::keys::value_hash`] of the device's key.
    pub device: u64,
    pub at: UnixMillis,
}

/// A decision as the engine hands it to [`Store::record_decision`]: built
/// once from the answer, borrowing it (the memory store keeps reason codes
/// as small numbers, the Redis store as one string: neither needs copies).
#[derive(Clone, Copy, Debug)]
pub struct DecisionRecord<'a> {
    pub decision_id: &'a str,
    pub at: UnixMillis,
    pub action: Action,
    pub score: f64,
    /// The acting reasons (the decision's shadow reasons are not kept).
    pub reasons: &'a [Reason],
}

/// A decision as the user's recent decisions give it back
/// ([`UserProfile::recent`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecentDecision {
    pub decision_id: String,
    pub at: UnixMillis,
    pub action: Action,
    pub score: f64,
    /// Acting reason codes.
    pub reasons: Vec<String>,
}

/// Most recent decisions kept per user.
pub const RECENT_DECISIONS: usize = 20;

/// A user's recent decisions as every store shows them: newest first, by
/// time then decision id, at most [`RECENT_DECISIONS`]. `found`: (at ms,
/// decision, the decision).
fn newest_recent(mut found: Vec<(i64, u128, RecentDecision)>) -> Vec<RecentDecision> {
    found.sort_by_key(|f| std::cmp::Reverse((f.0, f.1)));
    found
        .into_iter()
        .take(RECENT_DECISIONS)
        .map(|(_, _, r)| r)
        .collect()
}

/// Everything a store holds about one user, for the admin API.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UserProfile {
    pub verified_logins: u32,
    /// Sorted by dimension, then hash.
    pub values: Vec<ProfileValue>,
    /// (hour of week, verified logins), sorted by hour.
    pub hours: Vec<(u8, u32)>,
    pub last_login: Option<LastLogin>,
    pub last_strong_auth: Option<UnixMillis>,
    /// Sorted by device hash.
    pub trusted: Vec<DeviceMark>,
    /// Sorted by device hash.
    pub revoked: Vec<DeviceMark>,
    /// Newest first, at most [`RECENT_DECISIONS`].
    pub recent: Vec<RecentDecision>,
}

/// What support says of a device: it is the user's (trust) or it must not
/// be accepted for the user any more (revoke: reported lost or stolen).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    Trust,
    Revoke,
}

/// What [`Store::forget`] erased, per kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Forgotten {
    /// Verified logins the profile counted (0: there was no profile).
    pub verified_logins: u32,
    /// Remembered values across every dimension.
    pub profile_values: u32,
    pub trusted_devices: u32,
    pub revoked_devices: u32,
    /// Decisions that could still have been reported on.
    pub pending_decisions: u32,
    pub recent_decisions: u32,
    /// The user's failure counter (0 or 1).
    pub failure_counters: u32,
    /// Journaled decisions erased with their outcomes (set by the engine,
    /// which also erases the user from the journal).
    pub journal_decisions: u32,
}

/// The state every replica shares (or, for the memory store, this process).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Records the attempt (velocity counters; the memory store also its
    /// pending decision) and returns the profile and velocity as of this
    /// attempt. One round trip.
    async fn observe(&self, obs: &Observation) -> Result<StoreView, StoreError>;

    /// Applies an outcome: verified successes teach the profile, fraud
    /// reports remove what the decision taught. One round trip.
    async fn report(&self, report: &OutcomeReport) -> Result<ReportEffect, StoreError>;

    /// A short name for logs and `degraded_signals`.
    fn name(&self) -> &'static str;

    /// Everything held about `user` (an empty profile for an unknown user).
    async fn profile(&self, user: Key) -> Result<UserProfile, StoreError>;

    /// Erases everything held under `user`: profile, failure counter,
    /// pending and recent decisions, trusted and revoked devices. Global
    /// aggregates (which hold no identifier) are left to expire.
    async fn forget(&self, user: Key) -> Result<Forgotten, StoreError>;

    /// Marks `device` for `user`. [`Mark::Trust`] makes it a known device
    /// (count 1 if it was not remembered) and lifts a revocation;
    /// [`Mark::Revoke`] removes it from the profile and marks it revoked, so
    /// later observations from it report
    /// [`crate::core::inputs::ProfileView::device_revoked`]. Returns whether
    /// the device was remembered before.
    async fn mark_device(
        &self,
        user: Key,
        device: Key,
        mark: Mark,
        at: UnixMillis,
    ) -> Result<bool, StoreError>;

    /// Writes what the store holds back to be written later (the Redis
    /// store's queued records and unmerged deployment-wide counts), bounded
    /// by the store's own timeout. Graceful shutdown calls it last.
    async fn flush(&self) {}

    /// Adds `record`, the answer to `obs`'s decision, to the user's recent
    /// decisions (at most [`RECENT_DECISIONS`] are shown, expiring with the
    /// decision TTL). The engine calls it once, right after observing and
    /// deciding. Never waits: the memory store writes in place (its pending
    /// decision was written by observe), the Redis store queues the pending
    /// decision and its answer as one record for a background writer that
    /// batches them (a full queue refuses it with an error, which the
    /// engine counts). Reads through [`Store::profile`] and reports through
    /// [`Store::report`] see every record this process made before them and
    /// did not fail to write (a report without waiting for the writer);
    /// another replica sees it once the writer has written it, normally
    /// within milliseconds (until then its report is `Unavailable`).
    fn record_decision(
        &self,
        obs: &Observation,
        record: &DecisionRecord<'_>,
    ) -> Result<(), StoreError>;
}

/// Whether an outcome teaches the profile, given the decision's action.
pub fn teaches(action: Action, outcome: Outcome) -> bool {
    match outcome {
        Outcome::LoginSucceeded => action == Action::Allow,
        Outcome::StepUpPassed => action == Action::StepUp,
        Outcome::AnalystConfirmedLegit => action != Action::Deny,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_verified_successes_teach() {
        assert!(teaches(Action::Allow, Outcome::LoginSucceeded));
        assert!(!teaches(Action::StepUp, Outcome::LoginSucceeded));
        assert!(!teaches(Action::Deny, Outcome::LoginSucceeded));
        assert!(teaches(Action::StepUp, Outcome::StepUpPassed));
        assert!(!teaches(Action::Allow, Outcome::StepUpFailed));
        assert!(!teaches(Action::Allow, Outcome::UserReportedFraud));
    }
}
