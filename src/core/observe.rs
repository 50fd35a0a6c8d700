//! The observation to store: an attempt's identifiers and attributes as
//! keyed hashes per profile dimension ([`facts`]), and everything a store
//! needs to record and answer it ([`observation`]). Pure: the keyed hash is
//! computation, not I/O; the store call happens outside `core`.

use std::net::IpAddr;

use crate::domain::{CredentialResult, DeviceBinding, LoginAttempt};

use super::inputs::{DeviceInfo, Facts, GeoInfo, GeoPoint, Observation};
use super::keys::{Dim, IdHasher};

/// The network an address belongs to for velocity and profiles: the /24 of
/// an IPv4 address, the /48 of an IPv6 one. IPv4-mapped IPv6 counts as IPv4.
pub fn network_of(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

/// IPv4-mapped IPv6 addresses as IPv4; everything else unchanged.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

/// The attempt's hashed facts per profile dimension.
pub fn facts(
    h: &IdHasher,
    attempt: &LoginAttempt,
    info: &DeviceInfo,
    geo: Option<&GeoInfo>,
) -> Facts {
    let mut f = Facts::default();
    let ip = canonical(attempt.ip);
    f.set(Dim::Ip, Some(h.key(Dim::Ip, ip.to_string().as_bytes())));
    f.set(
        Dim::Network,
        Some(h.key(Dim::Network, network_of(ip).as_bytes())),
    );
    if let Some(d) = &attempt.device_id {
        let k = h.key(Dim::Device, d.as_bytes());
        f.set(Dim::Device, Some(k));
        // The same key: the slot keeps the dimensions apart in both stores,
        // and one keyed hash per device is enough.
        f.set(Dim::BoundDevice, Some(k));
    }
    if let Some(ua) = &attempt.user_agent {
        f.set(Dim::UserAgent, Some(h.key(Dim::UserAgent, ua.as_bytes())));
        let browser = format!("{} {}", info.browser, info.browser_version);
        f.set(Dim::Browser, Some(h.key(Dim::Browser, browser.as_bytes())));
        let os = format!("{} {}", info.os, info.os_version);
        f.set(Dim::Os, Some(h.key(Dim::Os, os.as_bytes())));
        f.set(
            Dim::DeviceType,
            Some(h.key(Dim::DeviceType, info.category.as_bytes())),
        );
    }
    if let Some(g) = geo {
        if let Some(asn) = g.asn {
            f.set(Dim::Asn, Some(h.key(Dim::Asn, asn.to_string().as_bytes())));
        }
        if let Some(country) = &g.country {
            f.set(Dim::Country, Some(h.key(Dim::Country, country.as_bytes())));
            if let Some(region) = &g.region {
                let place = format!("{country}/{region}");
                f.set(Dim::Region, Some(h.key(Dim::Region, place.as_bytes())));
            }
            if let Some(city) = &g.city {
                let place = format!("{country}/{}/{city}", g.region.as_deref().unwrap_or(""));
                f.set(Dim::City, Some(h.key(Dim::City, place.as_bytes())));
            }
        }
    }
    f
}

/// The place of a GeoIP answer, for travel.
pub fn place(geo: Option<&GeoInfo>) -> Option<GeoPoint> {
    geo.and_then(|g| g.location)
        .map(|(lat, lon, accuracy_km)| GeoPoint {
            lat,
            lon,
            accuracy_km,
        })
}

/// The store observation for an attempt.
pub fn observation(
    h: &IdHasher,
    decision: u128,
    attempt: &LoginAttempt,
    facts: Facts,
    place: Option<GeoPoint>,
) -> Observation {
    Observation {
        decision,
        at: attempt.occurred_at,
        user: h.key(Dim::User, attempt.user_id.as_bytes()),
        facts,
        place,
        failed: attempt.credential_result == CredentialResult::Invalid,
        bound: attempt.device_id.is_some() && attempt.device_binding == DeviceBinding::KeyVerified,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_slash_24_and_slash_48() {
        assert_eq!(
            network_of("203.0.113.77".parse().unwrap()),
            "203.0.113.0/24"
        );
        assert_eq!(
            network_of("::ffff:203.0.113.77".parse().unwrap()),
            "203.0.113.0/24"
        );
        assert_eq!(
            network_of("2001:db8:abcd:12::1".parse().unwrap()),
            "2001:db8:abcd::/48"
        );
    }
}
