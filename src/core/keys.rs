//! Identifiers as keys: a keyed hash ([`IdHasher`]) turns every raw value
//! (user, device, IP, …) into a [`Key`] before it reaches a store, a log or
//! the journal. [`Dim`] names the kind of value, and so the key space.

use std::fmt;

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

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
    /// A device that showed a key bound to it (`DEVICE_BINDING_KEY_VERIFIED`)
    /// in a verified login. Its fact is the device's own key: looked up on
    /// every attempt with a device id, taught only by key-verified ones.
    BoundDevice,
}

/// The profile dimensions, in [`Facts`] order (every [`Dim`] but `User`).
pub const PROFILE_DIMS: [Dim; 12] = [
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
    Dim::BoundDevice,
];

/// The slots that may be counted deployment-wide (the size of the stores'
/// per-slot global arrays): every slot but the last, [`Dim::BoundDevice`],
/// which only the user's own profile needs. Which are counted is
/// [`GLOBAL_DIMS`].
pub const GLOBAL_SLOTS: usize = PROFILE_DIMS.len() - 1;

/// The dimensions whose values are counted deployment-wide: the ones
/// Freeman's ratio reads (`features::freeman_score`: the IP, its ASN and
/// country; the user agent and its browser, OS and device type). The
/// others (device, network, city, region) would cost a key per value and a
/// read per Evaluate for a count nothing reads.
pub const GLOBAL_DIMS: [Dim; 7] = [
    Dim::Ip,
    Dim::Asn,
    Dim::Country,
    Dim::UserAgent,
    Dim::Browser,
    Dim::Os,
    Dim::DeviceType,
];

/// Whether the values of profile slot `slot` are counted deployment-wide
/// ([`GLOBAL_DIMS`]).
pub fn counted_globally(slot: usize) -> bool {
    PROFILE_DIMS
        .get(slot)
        .is_some_and(|d| GLOBAL_DIMS.contains(d))
}

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
            Dim::BoundDevice => "bound_device",
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
            Dim::BoundDevice => Some(11),
        }
    }
}

/// Bits of a profile value's hash that both stores keep: the first 8 bytes
/// of its [`Key`] (little endian) without the top 4 bits (the memory store
/// tags the dimension there).
pub const VALUE_HASH_MASK: u64 = u64::MAX >> 4;

/// The comparable hash of a profile value, as the admin API reports it.
pub fn value_hash(k: Key) -> u64 {
    k.short().max(1) & VALUE_HASH_MASK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_device_is_past_the_global_slots_and_never_counted() {
        assert_eq!(Dim::BoundDevice.slot(), Some(GLOBAL_SLOTS));
        assert_eq!(PROFILE_DIMS.len(), GLOBAL_SLOTS + 1);
        assert!(!counted_globally(GLOBAL_SLOTS));
        // Every counted dimension has a slot among the global ones.
        for d in GLOBAL_DIMS {
            assert!(d.slot().is_some_and(|s| s < GLOBAL_SLOTS), "{d:?}");
        }
    }

    #[test]
    fn keys_depend_on_secret_and_domain() {
        let a = IdHasher::new(b"one");
        let b = IdHasher::new(b"two");
        assert_ne!(a.key(Dim::User, b"alice"), b.key(Dim::User, b"alice"));
        assert_ne!(a.key(Dim::User, b"alice"), a.key(Dim::Device, b"alice"));
        assert_eq!(a.key(Dim::User, b"alice"), a.key(Dim::User, b"alice"));
        assert!(!format!("{a:?}").contains("one"));
    }
}
