//! What the core reads about one attempt, as plain data: the attempt's
//! hashed [`Facts`], the store's answer ([`StoreView`]: profile and
//! velocity), the parsed user agent ([`DeviceInfo`]) and the GeoIP answer
//! ([`GeoInfo`]). The I/O that produces them — the store, the user-agent
//! parser, the MaxMind databases — lives outside `core` and fills these in.

use serde::{Deserialize, Serialize};

use crate::domain::UnixMillis;

use super::keys::{Dim, Key, PROFILE_DIMS};

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
    /// The login service verified a key bound to the device: only then may
    /// a verified login teach the [`Dim::BoundDevice`] fact.
    pub bound: bool,
}

impl Observation {
    /// The fact of `slot` as a pending decision keeps it (what a verified
    /// login would teach): [`Dim::BoundDevice`] only when `bound`.
    pub fn taught_fact(&self, slot: usize) -> Option<Key> {
        if Dim::BoundDevice.slot() == Some(slot) && !self.bound {
            None
        } else {
            self.facts.0.get(slot).copied().flatten()
        }
    }
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

/// What a user agent says about the device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceInfo {
    /// Browser family or "UNKNOWN". woothee: "Chrome", "Firefox",
    /// "Internet Explorer", "Safari", "Googlebot", …; uap-core: "Chrome",
    /// "Chrome Mobile", "Mobile Safari", "IE", "Googlebot", ….
    pub browser: Box<str>,
    /// Browser version as the backend reports it ("120.0.0.0"); when there
    /// is none, "UNKNOWN" from woothee and "" from uap-core.
    pub browser_version: Box<str>,
    /// Operating system or "UNKNOWN". woothee: "Windows 10", "iPhone",
    /// "Android", "Mac OSX", …; uap-core: "Windows", "iOS", "Android",
    /// "Mac OS X", ….
    pub os: Box<str>,
    /// OS version ("10", "17.1"; woothee says "NT 10.0" for Windows); when
    /// there is none, "UNKNOWN" from woothee and "" from uap-core.
    pub os_version: Box<str>,
    /// Device class: "pc", "smartphone", "mobilephone", "appliance",
    /// "crawler", "misc" or "UNKNOWN" (the same vocabulary for both
    /// backends).
    pub category: Box<str>,
    /// A known crawler or bot.
    pub is_crawler: bool,
    /// A headless browser or an HTTP library rather than a person's browser.
    pub is_automation: bool,
}

impl Default for DeviceInfo {
    fn default() -> Self {
        Self::unknown()
    }
}

impl DeviceInfo {
    /// The answer for an absent user agent.
    pub fn unknown() -> Self {
        DeviceInfo {
            browser: "UNKNOWN".into(),
            browser_version: "".into(),
            os: "UNKNOWN".into(),
            os_version: "".into(),
            category: "UNKNOWN".into(),
            is_crawler: false,
            is_automation: false,
        }
    }
}

/// Accuracy radius (km) reported when a record has coordinates but no
/// `accuracy_radius`: MaxMind's largest radius, i.e. "country-level".
pub const DEFAULT_ACCURACY_RADIUS_KM: f64 = 1000.0;

/// Which databases had a record for the looked-up address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GeoSources {
    /// The city database answered.
    pub city: bool,
    /// The ASN database answered.
    pub asn: bool,
    /// The Anonymous-IP database answered.
    pub anonymous: bool,
}

/// Everything the configured databases know about one address.
///
/// Fields of a database that is not configured, or has no record for the
/// address, are `None` / `false`; [`GeoInfo::sources`] tells which databases
/// answered.
#[derive(Clone, Debug, PartialEq, Default, Serialize)]
pub struct GeoInfo {
    /// Country, ISO 3166-1 alpha-2 (e.g. `GB`).
    pub country: Option<String>,
    /// First (largest) subdivision's ISO 3166-2 code without the country
    /// prefix (e.g. `ENG`).
    pub region: Option<String>,
    /// City name in English.
    pub city: Option<String>,
    /// `(latitude, longitude, accuracy_radius_km)`; present only when both
    /// coordinates are present, finite and in range. A missing radius is
    /// reported as [`DEFAULT_ACCURACY_RADIUS_KM`].
    pub location: Option<(f64, f64, f64)>,
    /// Autonomous system number.
    pub asn: Option<u32>,
    /// Autonomous system organisation.
    pub asn_org: Option<String>,
    /// `is_anonymous`: any kind of anonymising network.
    pub anonymous: bool,
    /// `is_anonymous_vpn`.
    pub vpn: bool,
    /// `is_tor_exit_node`.
    pub tor: bool,
    /// `is_hosting_provider`.
    pub hosting: bool,
    /// `is_public_proxy`.
    pub public_proxy: bool,
    /// `is_residential_proxy`.
    pub residential_proxy: bool,
    /// Which databases had a record for the address.
    pub sources: GeoSources,
}
