//! State behind the signals: user profiles, velocity counters and pending
//! decisions. One trait, [`Store`], with one call per RPC so that a networked
//! implementation can answer each in a single round trip.
//!
//! Identifiers never reach a store raw: the engine turns them into [`Key`]s
//! with a keyed hash ([`IdHasher`]) first.

pub mod bounded;
pub mod decision_id;
pub mod fxhash;
pub mod memory;
pub mod redis;
pub mod window;

use std::fmt;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::domain::{Action, Decision, Factor, Outcome, UnixMillis};

/// A keyed hash (HMAC-SHA256, truncated to 128 bits) of an identifier.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(pub [u8; 16]);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0[..6]))
    }
}

impl Key {
    /// The first 8 bytes, for compact sets.
    pub fn short(self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(b)
    }
}

/// Turns raw identifiers into [`Key`]s. The secret never leaves this type
/// and is not printed by `Debug`.
#[derive(Clone)]
pub struct IdHasher {
    kind: HasherKind,
}

#[derive(Clone)]
enum HasherKind {
    Hmac(Box<Hmac<Sha256>>),
    /// SipHash-2-4 under two fixed seeds: not a MAC, for keys that never
    /// leave the process (replay).
    Local([u64; 2]),
}

impl fmt::Debug for IdHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdHasher(<redacted>)")
    }
}

impl IdHasher {
    /// A hasher keyed with `secret` (any length).
    pub fn new(secret: &[u8]) -> Self {
        // HMAC accepts keys of any length, so this never fails.
        // HMAC takes keys of any length, so the error branch is dead; it
        // falls back to a zero key of block size rather than panic.
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
            .unwrap_or_else(|_| <Hmac<Sha256> as hmac::digest::KeyInit>::new(&Default::default()));
        IdHasher {
            kind: HasherKind::Hmac(Box::new(mac)),
        }
    }

    /// A fast hasher for one process that keeps no state outside itself
    /// (replay): keys are SipHash-2-4 under fixed seeds, so they are stable
    /// and as collision-free as HMAC keys, but guessable — never use it where
    /// keys are stored or leave the process. [`IdHasher::tag`] is not a MAC
    /// under it either.
    pub fn local() -> Self {
        IdHasher {
            kind: HasherKind::Local([0x6e_6f74_6d61_6321, 0x7265_706c_6179_2121]),
        }
    }

    fn sip(seed: u64, parts: &[&[u8]]) -> u64 {
        use std::hash::Hasher as _;
        #[expect(deprecated, reason = "std's only SipHash with explicit keys")]
        let mut h = std::hash::SipHasher::new_with_keys(seed, !seed);
        for p in parts {
            h.write(p);
        }
        h.finish()
    }

    /// A hasher with a random secret: keys are stable for this process only.
    pub fn random() -> Self {
        let secret: [u8; 32] = rand::random();
        Self::new(&secret)
    }

    /// The key of `value` in the identifier space `domain` ("user", "ip", …).
    pub fn key(&self, domain: Dim, value: &[u8]) -> Key {
        let mac = match &self.kind {
            HasherKind::Hmac(mac) => mac,
            HasherKind::Local(seeds) => {
                let parts: [&[u8]; 3] = [domain.as_str().as_bytes(), &[0], value];
                let mut k = [0u8; 16];
                k[..8].copy_from_slice(&Self::sip(seeds[0], &parts).to_le_bytes());
                k[8..].copy_from_slice(&Self::sip(seeds[1], &parts).to_le_bytes());
                return Key(k);
            }
        };
        let mut mac = (**mac).clone();
        mac.update(domain.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(value);
        let out = mac.finalize().into_bytes();
        let mut k = [0u8; 16];
        k.copy_from_slice(&out[..16]);
        Key(k)
    }

    /// A MAC over `data`, for decision ids.
    pub fn tag(&self, data: &[u8]) -> [u8; 8] {
        let mac = match &self.kind {
            HasherKind::Hmac(mac) => mac,
            HasherKind::Local(seeds) => {
                return Self::sip(seeds[0], &[b"decision-id\0", data]).to_le_bytes();
            }
        };
        let mut mac = (**mac).clone();
        mac.update(b"decision-id\0");
        mac.update(data);
        let out = mac.finalize().into_bytes();
        let mut t = [0u8; 8];
        t.copy_from_slice(&out[..8]);
        t
    }
}

/// The kinds of identifier and attribute a profile remembers. The first
/// three also name velocity scopes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dim {
    User,
    Device,
    Ip,
    /// The /24 (IPv4) or /48 (IPv6) network.
    Network,
    Asn,
    Country,
    City,
    UserAgent,
    Browser,
    Os,
    DeviceType,
    /// Country and first subdivision ("SE/E").
    Region,
}

/// The profile dimensions, in [`Facts`] order (every [`Dim`] but `User`).
pub const PROFILE_DIMS: [Dim; 11] = [
    Dim::Device,
    Dim::Ip,
    Dim::Network,
    Dim::Asn,
    Dim::Country,
    Dim::City,
    Dim::UserAgent,
    Dim::Browser,
    Dim::Os,
    Dim::DeviceType,
    Dim::Region,
];

impl Dim {
    /// Stable name, used in key derivation and storage.
    pub const fn as_str(self) -> &'static str {
        match self {
            Dim::User => "user",
            Dim::Device => "device",
            Dim::Ip => "ip",
            Dim::Network => "net",
            Dim::Asn => "asn",
            Dim::Country => "country",
            Dim::City => "city",
            Dim::UserAgent => "ua",
            Dim::Browser => "browser",
            Dim::Os => "os",
            Dim::DeviceType => "devtype",
            Dim::Region => "region",
        }
    }

    /// Index into [`Facts`] for profile dimensions.
    pub const fn slot(self) -> Option<usize> {
        match self {
            Dim::User => None,
            Dim::Device => Some(0),
            Dim::Ip => Some(1),
            Dim::Network => Some(2),
            Dim::Asn => Some(3),
            Dim::Country => Some(4),
            Dim::City => Some(5),
            Dim::UserAgent => Some(6),
            Dim::Browser => Some(7),
            Dim::Os => Some(8),
            Dim::DeviceType => Some(9),
            Dim::Region => Some(10),
        }
    }
}

/// The attempt's value in each profile dimension (`None` where unknown).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Facts(pub [Option<Key>; PROFILE_DIMS.len()]);

impl Facts {
    /// The value in `dim`.
    pub fn get(&self, dim: Dim) -> Option<Key> {
        dim.slot().and_then(|i| self.0[i])
    }

    /// Sets the value in `dim` (no-op for `Dim::User`).
    pub fn set(&mut self, dim: Dim, key: Option<Key>) {
        if let Some(i) = dim.slot() {
            self.0[i] = key;
        }
    }
}

/// A place with its uncertainty, from GeoIP.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
    pub accuracy_km: f64,
}

impl GeoPoint {
    /// The point as stores keep it: each coordinate at `f32` precision
    /// (about a metre at the equator; GeoIP answers are far coarser), so the
    /// memory store can keep a place in 12 bytes and every store returns the
    /// same value.
    // rounding to f32 precision is the point.
    pub fn stored(self) -> GeoPoint {
        let r = |x: f64| f64::from(x as f32);
        GeoPoint {
            lat: r(self.lat),
            lon: r(self.lon),
            accuracy_km: r(self.accuracy_km),
        }
    }
}

/// Everything a store needs to know about an attempt, already hashed.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// The decision this attempt will get; ReportOutcome names it.
    pub decision: u128,
    pub at: UnixMillis,
    pub user: Key,
    pub facts: Facts,
    pub place: Option<GeoPoint>,
    /// The primary credential was wrong.
    pub failed: bool,
}

/// Counts over the three sliding windows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Windows {
    pub m1: u32,
    pub h1: u32,
    pub h24: u32,
}

/// Velocity as of this attempt (the attempt itself included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VelocityView {
    pub user_failures: Windows,
    pub ip_failures: Windows,
    pub network_failures: Windows,
    pub device_failures: Windows,
    pub ip_attempts: Windows,
    /// Distinct users seen from this IP in the last hour.
    pub ip_distinct_users_1h: u32,
    /// Distinct users seen on this device in the last hour and 24 hours.
    pub device_distinct_users_1h: u32,
    pub device_distinct_users_24h: u32,
    /// All attempts and failures across the deployment.
    pub global_attempts: Windows,
    pub global_failures: Windows,
}

/// The user's last verified login.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct LastLogin {
    pub at: UnixMillis,
    pub place: Option<GeoPoint>,
}

/// What the user's verified history says about this attempt's values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ProfileView {
    /// Verified logins remembered (capped by the history size).
    pub verified_logins: u32,
    /// How often this attempt's value was seen, per profile dimension.
    pub seen: [u32; PROFILE_DIMS.len()],
    /// How many distinct values the user has, per profile dimension.
    pub distinct: [u32; PROFILE_DIMS.len()],
    /// Verified logins in this attempt's hour of the week.
    pub hour_count: u32,
    pub last_login: Option<LastLogin>,
    /// The last time the user passed a strong factor (WebAuthn, TOTP).
    pub last_strong_auth: Option<UnixMillis>,
    /// Global frequency of this attempt's values across all users' verified
    /// logins, per profile dimension, and the global total.
    pub global_seen: [u32; PROFILE_DIMS.len()],
    /// Distinct values seen globally, per profile dimension.
    pub global_distinct: [u32; PROFILE_DIMS.len()],
    pub global_logins: u32,
    /// Distinct users with a verified login.
    pub global_users: u32,
    /// Support revoked this attempt's device for this user
    /// ([`Store::revoke_device`]).
    pub device_revoked: bool,
}

impl ProfileView {
    /// Times the attempt's value in `dim` was seen in the user's history.
    pub fn seen(&self, dim: Dim) -> u32 {
        dim.slot().map_or(0, |i| self.seen[i])
    }

    /// Distinct values in `dim` in the user's history.
    pub fn distinct(&self, dim: Dim) -> u32 {
        dim.slot().map_or(0, |i| self.distinct[i])
    }

    /// Global count of the attempt's value in `dim`.
    pub fn global_seen(&self, dim: Dim) -> u32 {
        dim.slot().map_or(0, |i| self.global_seen[i])
    }

    /// Distinct values of `dim` seen globally.
    pub fn global_distinct(&self, dim: Dim) -> u32 {
        dim.slot().map_or(0, |i| self.global_distinct[i])
    }
}

/// The store's answer to an observation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct StoreView {
    pub profile: ProfileView,
    pub velocity: VelocityView,
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

/// Bits of a profile value's hash that both stores keep: the first 8 bytes
/// of its [`Key`] (little endian) without the top 4 bits (the memory store
/// tags the dimension there).
pub const VALUE_HASH_MASK: u64 = u64::MAX >> 4;

/// The comparable hash of a profile value, as [`UserProfile`] reports it.
pub fn value_hash(k: Key) -> u64 {
    k.short().max(1) & VALUE_HASH_MASK
}

/// One remembered value of a profile dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ProfileValue {
    pub dim: Dim,
    /// [`value_hash`] of the value's key (the raw value is never stored).
    pub hash: u64,
    /// Verified logins with this value (1 for a device support trusted).
    pub count: u32,
    /// Last verified login (or trust) with this value, seconds since epoch.
    pub last_seen_secs: u32,
}

/// A device support trusted or revoked, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct DeviceMark {
    /// [`value_hash`] of the device's key.
    pub device: u64,
    pub at: UnixMillis,
}

/// A decision as kept in the user's recent-decisions list.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DecisionRecord {
    pub decision_id: String,
    pub at: UnixMillis,
    pub action: Action,
    pub score: f64,
    /// Acting reason codes (shadow reasons left out).
    pub reasons: Vec<String>,
}

/// Most recent decisions kept per user.
pub const RECENT_DECISIONS: usize = 20;

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
    pub recent: Vec<DecisionRecord>,
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
}

/// The state every replica shares (or, for the memory store, this process).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Records the attempt (velocity counters, pending decision) and returns
    /// the profile and velocity as of this attempt. One round trip.
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

    /// Makes `device` a known device of `user` (count 1 if it was not
    /// remembered) and lifts a revocation. Returns whether it was already
    /// remembered.
    async fn trust_device(
        &self,
        user: Key,
        device: Key,
        at: UnixMillis,
    ) -> Result<bool, StoreError>;

    /// Removes `device` from the user's profile and marks it revoked: later
    /// observations from it report [`ProfileView::device_revoked`]. Returns
    /// whether it was remembered.
    async fn revoke_device(
        &self,
        user: Key,
        device: Key,
        at: UnixMillis,
    ) -> Result<bool, StoreError>;

    /// Writes what the store holds back to be written later (the Redis
    /// store's queued records and unmerged deployment-wide counts), bounded
    /// by the store's own timeout. Graceful shutdown calls it last.
    async fn flush(&self) {}

    /// Adds the answer to `decision` (observed for `user`) to the user's
    /// recent decisions (at most [`RECENT_DECISIONS`] are shown, expiring
    /// with the decision TTL). Never waits: the memory store writes in
    /// place, the Redis store queues the record for a background writer
    /// that batches them (a full queue refuses it with an error, which
    /// the engine counts). `decision` was observed at `at`; `answer.decision_id` is the id issued
    /// for it. Reads through [`Store::profile`] see every record made
    /// before them by this process. Shadow reasons are not recorded.
    fn record_decision(
        &self,
        user: Key,
        decision: u128,
        at: UnixMillis,
        answer: &Decision,
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
    fn keys_depend_on_secret_and_domain() {
        let a = IdHasher::new(b"one");
        let b = IdHasher::new(b"two");
        assert_ne!(a.key(Dim::User, b"alice"), b.key(Dim::User, b"alice"));
        assert_ne!(a.key(Dim::User, b"alice"), a.key(Dim::Device, b"alice"));
        assert_eq!(a.key(Dim::User, b"alice"), a.key(Dim::User, b"alice"));
        assert!(!format!("{a:?}").contains("one"));
    }

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
