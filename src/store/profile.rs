//! A user's profile as both stores keep it: what verified logins taught
//! (values per dimension, hours, last login), strong authentication and the
//! devices support marked. The memory store holds [`Profile`]s in its map;
//! the Redis store holds each as one compact binary string
//! ([`Profile::encode`]) read with one `GET` and written by the report that
//! changes it. One type, one set of teaching rules: the two stores cannot
//! drift apart.

use crate::core::inputs::{Facts, GeoPoint, LastLogin, ProfileView};
use crate::core::keys::{Dim, Key, PROFILE_DIMS, VALUE_HASH_MASK};
use crate::domain::UnixMillis;

use super::{DeviceMark, Forgotten, Mark, ProfileValue, UserProfile};

/// A login's facts as short keys ([`short_nonzero`]), by profile slot; 0
/// marks an absent fact.
pub(crate) type Facts12 = [u64; PROFILE_DIMS.len()];

/// (slot, short key) of each fact present.
fn present(facts: &Facts12) -> impl Iterator<Item = (usize, u64)> + '_ {
    facts
        .iter()
        .enumerate()
        .filter(|(_, k)| **k != 0)
        .map(|(i, k)| (i, *k))
}

/// One remembered value: (dimension-tagged short key, count, last seen in
/// seconds). 16 bytes.
pub(crate) type Seen = (u64, u32, u32);

/// A fact's short key with its dimension slot in the top 4 bits, so one
/// vector holds every dimension of a profile (12 vectors would cost 24-byte
/// headers and a minimum allocation each: ~700 bytes per user).
pub(crate) fn tagged(slot: usize, k: u64) -> u64 {
    (k & (u64::MAX >> 4)) | ((slot as u64) << 60)
}

pub(crate) fn slot_of(tagged: u64) -> usize {
    (tagged >> 60) as usize
}

/// A place at `f32` precision (about a metre): 12 bytes instead of a
/// 32-byte `Option<GeoPoint>`; `lat` NaN means none. Both stores keep
/// places at this precision ([`GeoPoint::stored`]), so they agree.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Place {
    lat: f32,
    lon: f32,
    accuracy_km: f32,
}

impl Place {
    pub(crate) const NONE: Place = Place {
        lat: f32::NAN,
        lon: f32::NAN,
        accuracy_km: f32::NAN,
    };
    // f32 precision is the stored precision (GeoPoint::stored).
    pub(crate) fn of(p: Option<GeoPoint>) -> Place {
        match p {
            Some(p) => Place {
                lat: p.lat as f32,
                lon: p.lon as f32,
                accuracy_km: p.accuracy_km as f32,
            },
            None => Place::NONE,
        }
    }

    pub(crate) fn get(self) -> Option<GeoPoint> {
        (!self.lat.is_nan()).then(|| GeoPoint {
            lat: f64::from(self.lat),
            lon: f64::from(self.lon),
            accuracy_km: f64::from(self.accuracy_km),
        })
    }
}

/// "No time" in the compact `i64` time fields.
pub(crate) const NEVER: i64 = i64::MIN;

pub(crate) fn time(t: i64) -> Option<UnixMillis> {
    (t != NEVER).then_some(UnixMillis(t))
}

#[derive(Clone, Debug)]
pub(crate) struct Profile {
    pub(crate) verified: u32,
    /// Every remembered value of every dimension, at most `history_per_dim`
    /// per dimension; grown one element at a time (`reserve_exact`).
    pub(crate) seen: Vec<Seen>,
    /// Sparse hour-of-week histogram: (hour, count).
    pub(crate) hours: Vec<(u8, u16)>,
    /// The last verified login: when (`NEVER`: none) and where.
    pub(crate) last_at: i64,
    pub(crate) last_place: Place,
    /// The last time a strong factor was passed (`NEVER`: never).
    pub(crate) last_strong_auth: i64,
    /// Devices support trusted or revoked; boxed because almost no profile
    /// has any (8 bytes per profile instead of two vector headers).
    pub(crate) marks: Option<Box<Marks>>,
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            verified: 0,
            seen: Vec::new(),
            hours: Vec::new(),
            last_at: NEVER,
            last_place: Place::NONE,
            last_strong_auth: NEVER,
            marks: None,
        }
    }
}

/// Devices marked by support: (device short key, when).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Marks {
    pub(crate) trusted: Vec<(u64, UnixMillis)>,
    pub(crate) revoked: Vec<(u64, UnixMillis)>,
}

pub(crate) fn secs(at: UnixMillis) -> u32 {
    u32::try_from(at.0.max(0) / 1000).unwrap_or(u32::MAX)
}

impl Profile {
    pub(crate) fn last_login(&self) -> Option<LastLogin> {
        time(self.last_at).map(|at| LastLogin {
            at,
            place: self.last_place.get(),
        })
    }

    pub(crate) fn view(&self, facts: &Facts, hour: u8) -> ProfileView {
        let mut v = ProfileView {
            verified_logins: self.verified,
            last_login: self.last_login(),
            last_strong_auth: time(self.last_strong_auth),
            ..ProfileView::default()
        };
        for s in &self.seen {
            let slot = slot_of(s.0);
            if let Some(d) = v.distinct.get_mut(slot) {
                *d = d.saturating_add(1);
            }
            if facts
                .0
                .get(slot)
                .copied()
                .flatten()
                .map(|k| tagged(slot, short_nonzero(k)))
                == Some(s.0)
            {
                v.seen[slot] = s.1;
            }
        }
        v.device_revoked = match (&self.marks, facts.get(Dim::Device)) {
            (Some(m), Some(d)) => {
                let d = short_nonzero(d) & VALUE_HASH_MASK;
                m.revoked.iter().any(|r| r.0 & VALUE_HASH_MASK == d)
            }
            _ => false,
        };
        v.hour_count = self
            .hours
            .iter()
            .find(|(h, _)| *h == hour)
            .map_or(0, |(_, c)| u32::from(*c));
        v
    }

    /// Teaches one verified login: its facts (short keys, 0 absent), when
    /// and where.
    pub(crate) fn learn(&mut self, facts: &Facts12, at: i64, place: Place, cap: usize) {
        self.verified = self.verified.saturating_add(1);
        let t = secs(UnixMillis(at));
        for (slot, short) in present(facts) {
            let key = tagged(slot, short);
            if let Some(s) = self.seen.iter_mut().find(|s| s.0 == key) {
                s.1 = s.1.saturating_add(1);
                s.2 = s.2.max(t);
            } else {
                let same_dim = || {
                    self.seen
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| slot_of(s.0) == slot)
                };
                if same_dim().count() >= cap {
                    // Forget the least recently seen value of this dimension.
                    if let Some(pos) = same_dim().min_by_key(|(_, s)| s.2).map(|(pos, _)| pos) {
                        self.seen.swap_remove(pos);
                    }
                }
                self.seen.reserve_exact(1);
                self.seen.push((key, 1, t));
            }
        }
        let hour = UnixMillis(at).hour_of_week();
        match self.hours.iter_mut().find(|(h, _)| *h == hour) {
            Some(e) => e.1 = e.1.saturating_add(1),
            None => {
                self.hours.reserve_exact(1);
                self.hours.push((hour, 1));
            }
        }
        if self.last_at == NEVER || self.last_at <= at {
            self.last_at = at;
            self.last_place = place;
        }
    }

    /// Remembers `device` (count 1 if new, evicting the least recently seen
    /// device at the cap); returns whether it was remembered already.
    pub(crate) fn remember_device(&mut self, device: u64, at: UnixMillis, cap: usize) -> bool {
        let slot = 0;
        let key = tagged(slot, device);
        let t = secs(at);
        if let Some(s) = self.seen.iter_mut().find(|s| s.0 == key) {
            s.2 = s.2.max(t);
            return true;
        }
        let same_dim = || {
            self.seen
                .iter()
                .enumerate()
                .filter(|(_, s)| slot_of(s.0) == slot)
        };
        if same_dim().count() >= cap
            && let Some(pos) = same_dim().min_by_key(|(_, s)| s.2).map(|(pos, _)| pos)
        {
            self.seen.swap_remove(pos);
        }
        self.seen.push((key, 1, t));
        false
    }

    /// Drops `device` from the remembered values; returns whether it was there.
    pub(crate) fn drop_device(&mut self, device: u64) -> bool {
        let key = tagged(0, device);
        match self.seen.iter().position(|s| s.0 == key) {
            Some(pos) => {
                self.seen.swap_remove(pos);
                true
            }
            None => false,
        }
    }

    pub(crate) fn export(&self) -> UserProfile {
        let mut values: Vec<ProfileValue> = self
            .seen
            .iter()
            .map(|s| ProfileValue {
                dim: PROFILE_DIMS[slot_of(s.0).min(PROFILE_DIMS.len() - 1)],
                hash: s.0 & VALUE_HASH_MASK,
                count: s.1,
                last_seen_secs: s.2,
            })
            .collect();
        values.sort();
        let mut hours: Vec<(u8, u32)> = self
            .hours
            .iter()
            .map(|(h, c)| (*h, u32::from(*c)))
            .collect();
        hours.sort();
        let marks = |l: &[(u64, UnixMillis)]| {
            let mut v: Vec<DeviceMark> = l
                .iter()
                .map(|(d, at)| DeviceMark {
                    device: d & VALUE_HASH_MASK,
                    at: *at,
                })
                .collect();
            v.sort();
            v
        };
        UserProfile {
            verified_logins: self.verified,
            values,
            hours,
            last_login: self.last_login(),
            last_strong_auth: time(self.last_strong_auth),
            trusted: self
                .marks
                .as_ref()
                .map(|m| marks(&m.trusted))
                .unwrap_or_default(),
            revoked: self
                .marks
                .as_ref()
                .map(|m| marks(&m.revoked))
                .unwrap_or_default(),
            recent: Vec::new(),
        }
    }

    /// Unteaches a login taught by [`Profile::learn`] (reported as fraud).
    pub(crate) fn unlearn(&mut self, facts: &Facts12, at: i64) {
        self.verified = self.verified.saturating_sub(1);
        for (slot, short) in present(facts) {
            let key = tagged(slot, short);
            if let Some(pos) = self.seen.iter().position(|s| s.0 == key) {
                self.seen[pos].1 = self.seen[pos].1.saturating_sub(1);
                if self.seen[pos].1 == 0 {
                    self.seen.swap_remove(pos);
                }
            }
        }
        let hour = UnixMillis(at).hour_of_week();
        if let Some(pos) = self.hours.iter().position(|(h, _)| *h == hour) {
            self.hours[pos].1 = self.hours[pos].1.saturating_sub(1);
            if self.hours[pos].1 == 0 {
                self.hours.swap_remove(pos);
            }
        }
        if self.last_at == at {
            // The fraudulent login must not anchor impossible travel.
            self.last_at = NEVER;
            self.last_place = Place::NONE;
        }
    }
}

/// The short key of a fact, never 0 (0 marks an absent fact in `Pending`).
pub(crate) fn short_nonzero(k: Key) -> u64 {
    k.short().max(1)
}

impl Profile {
    /// Marks `device` (a short key) as support decided: trust remembers it
    /// and lifts a revocation, revoke drops it and ends a trust. Returns
    /// whether the device was remembered before.
    pub(crate) fn mark(&mut self, device: u64, mark: Mark, at: UnixMillis, cap: usize) -> bool {
        let known = match mark {
            Mark::Trust => self.remember_device(device, at, cap),
            Mark::Revoke => self.drop_device(device),
        };
        // Marks are kept as 60-bit value hashes ([`VALUE_HASH_MASK`]), as
        // the admin view shows them and an earlier version's hash held them.
        let device = device & VALUE_HASH_MASK;
        let marks = self.marks.get_or_insert_default();
        marks.trusted.retain(|r| r.0 & VALUE_HASH_MASK != device);
        marks.revoked.retain(|r| r.0 & VALUE_HASH_MASK != device);
        match mark {
            Mark::Trust => marks.trusted.push((device, at)),
            Mark::Revoke => marks.revoked.push((device, at)),
        }
        known
    }

    /// Counts what forgetting this profile erases into `f`: verified
    /// logins, remembered values, trusted and revoked devices.
    pub(crate) fn count_forgotten(&self, f: &mut Forgotten) {
        let len = |l: usize| u32::try_from(l).unwrap_or(u32::MAX);
        let marks = self.marks.as_deref();
        f.verified_logins = self.verified;
        f.profile_values = len(self.seen.len());
        f.trusted_devices = len(marks.map_or(0, |m| m.trusted.len()));
        f.revoked_devices = len(marks.map_or(0, |m| m.revoked.len()));
    }

    /// What [`UserProfile`] (the admin view, or an earlier Redis version's
    /// profile hash read into one) holds, as a profile. Value hashes are
    /// 60-bit ([`VALUE_HASH_MASK`]), as [`tagged`] keeps them.
    pub(crate) fn from_export(p: &UserProfile) -> Profile {
        let slot = |dim: Dim| PROFILE_DIMS.iter().position(|d| *d == dim);
        let mark = |m: &[DeviceMark]| m.iter().map(|d| (d.device, d.at)).collect::<Vec<_>>();
        let (trusted, revoked) = (mark(&p.trusted), mark(&p.revoked));
        Profile {
            verified: p.verified_logins,
            seen: p
                .values
                .iter()
                .filter_map(|v| Some((tagged(slot(v.dim)?, v.hash), v.count, v.last_seen_secs)))
                .collect(),
            hours: p
                .hours
                .iter()
                .map(|(h, c)| (*h, u16::try_from(*c).unwrap_or(u16::MAX)))
                .collect(),
            last_at: p.last_login.map_or(NEVER, |l| l.at.0),
            last_place: Place::of(p.last_login.and_then(|l| l.place)),
            last_strong_auth: p.last_strong_auth.map_or(NEVER, |t| t.0),
            marks: (!trusted.is_empty() || !revoked.is_empty())
                .then(|| Box::new(Marks { trusted, revoked })),
        }
    }
}

/// The first byte of an encoded profile: its format. A Redis store that
/// reads another is answered `None` by [`Profile::decode`].
const FORMAT: u8 = 1;

impl Profile {
    /// The profile as one compact string (little-endian, fixed widths):
    /// format, verified, last login (ms, lat, lon, accuracy as `f32`), last
    /// strong auth (ms), then the hours (count `u8`; hour, count `u16`),
    /// the values (count `u16`; tagged key, count, last seen s) and the
    /// trusted and revoked devices (count `u16`; device, ms). About 16
    /// bytes per remembered value.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let marks = self.marks.as_deref();
        let (trusted, revoked) = marks.map_or((&[][..], &[][..]), |m| (&m.trusted, &m.revoked));
        let mut out = Vec::with_capacity(
            40 + 3 * self.hours.len() + 16 * self.seen.len() + 16 * (trusted.len() + revoked.len()),
        );
        out.push(FORMAT);
        out.extend_from_slice(&self.verified.to_le_bytes());
        out.extend_from_slice(&self.last_at.to_le_bytes());
        for f in [
            self.last_place.lat,
            self.last_place.lon,
            self.last_place.accuracy_km,
        ] {
            out.extend_from_slice(&f.to_le_bytes());
        }
        out.extend_from_slice(&self.last_strong_auth.to_le_bytes());
        // At most 168 hours of the week; the caps below are far above the
        // history cap, and a list past them is cut, never wrapped.
        let hours = &self.hours[..self.hours.len().min(usize::from(u8::MAX))];
        out.push(hours.len() as u8);
        for (h, c) in hours {
            out.push(*h);
            out.extend_from_slice(&c.to_le_bytes());
        }
        let seen = &self.seen[..self.seen.len().min(usize::from(u16::MAX))];
        out.extend_from_slice(&(seen.len() as u16).to_le_bytes());
        for (k, c, t) in seen {
            out.extend_from_slice(&k.to_le_bytes());
            out.extend_from_slice(&c.to_le_bytes());
            out.extend_from_slice(&t.to_le_bytes());
        }
        for list in [trusted, revoked] {
            let list = &list[..list.len().min(usize::from(u16::MAX))];
            out.extend_from_slice(&(list.len() as u16).to_le_bytes());
            for (d, at) in list {
                out.extend_from_slice(&d.to_le_bytes());
                out.extend_from_slice(&at.0.to_le_bytes());
            }
        }
        out
    }

    /// Reads [`Profile::encode`]'s string back; `None` if it is not one
    /// (another format, cut short, or trailing bytes).
    pub(crate) fn decode(bytes: &[u8]) -> Option<Profile> {
        let mut r = Reader(bytes);
        if r.u8()? != FORMAT {
            return None;
        }
        let verified = r.u32()?;
        let last_at = r.i64()?;
        let last_place = Place {
            lat: f32::from_bits(r.u32()?),
            lon: f32::from_bits(r.u32()?),
            accuracy_km: f32::from_bits(r.u32()?),
        };
        let last_strong_auth = r.i64()?;
        let n = usize::from(r.u8()?);
        let mut hours = Vec::with_capacity(n);
        for _ in 0..n {
            hours.push((r.u8()?, r.u16()?));
        }
        let n = r.count(16)?;
        let mut seen = Vec::with_capacity(n);
        for _ in 0..n {
            seen.push((r.u64()?, r.u32()?, r.u32()?));
        }
        let mut marks = Marks::default();
        for list in [&mut marks.trusted, &mut marks.revoked] {
            let n = r.count(16)?;
            list.reserve_exact(n);
            for _ in 0..n {
                list.push((r.u64()?, UnixMillis(r.i64()?)));
            }
        }
        if !r.0.is_empty() {
            return None;
        }
        let marks =
            (!marks.trusted.is_empty() || !marks.revoked.is_empty()).then(|| Box::new(marks));
        Some(Profile {
            verified,
            seen,
            hours,
            last_at,
            last_place,
            last_strong_auth,
            marks,
        })
    }
}

/// A cursor over an encoded profile.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take::<1>()?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_le_bytes)
    }
    /// A list's length, if that many entries of `size` bytes can follow.
    fn count(&mut self, size: usize) -> Option<usize> {
        let n = usize::from(self.u16()?);
        (n.checked_mul(size)? <= self.0.len()).then_some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Profile {
        let mut p = Profile::default();
        let mut facts = [0u64; PROFILE_DIMS.len()];
        facts[0] = 0xfeed_0000_0000_0001;
        facts[3] = 42;
        let place = Place::of(Some(GeoPoint {
            lat: 48.85,
            lon: 2.35,
            accuracy_km: 20.0,
        }));
        p.learn(&facts, 1_700_000_000_000, place, 16);
        p.learn(&facts, 1_700_000_100_000, place, 16);
        p.last_strong_auth = 1_700_000_100_500;
        p.mark(7, Mark::Revoke, UnixMillis(1_700_000_200_000), 16);
        p.mark(9, Mark::Trust, UnixMillis(1_700_000_300_000), 16);
        p
    }

    fn same(a: &Profile, b: &Profile) -> bool {
        // NaN places compare by bits.
        let place = |p: &Place| [p.lat, p.lon, p.accuracy_km].map(f32::to_bits);
        a.verified == b.verified
            && a.seen == b.seen
            && a.hours == b.hours
            && a.last_at == b.last_at
            && place(&a.last_place) == place(&b.last_place)
            && a.last_strong_auth == b.last_strong_auth
            && a.marks == b.marks
    }

    #[test]
    fn a_profile_reads_back_as_it_was_written() {
        for p in [Profile::default(), sample()] {
            let bytes = p.encode();
            let back = Profile::decode(&bytes).expect("decodes");
            assert!(same(&p, &back), "{p:?} != {back:?}");
            assert_eq!(back.export(), p.export());
        }
        // Four values, two hours, two marks: about 16 bytes per entry.
        assert!(sample().encode().len() < 160, "{}", sample().encode().len());
    }

    #[test]
    fn anything_else_is_not_a_profile() {
        let bytes = sample().encode();
        for bad in [
            &b""[..],
            &bytes[..bytes.len() - 1],
            &[bytes.clone(), vec![0]].concat()[..],
            &[&[FORMAT + 1][..], &bytes[1..]].concat()[..],
            b"hash",
        ] {
            assert!(Profile::decode(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn the_admin_view_converts_back_to_the_profile() {
        let p = sample();
        let back = Profile::from_export(&p.export());
        assert_eq!(back.export(), p.export());
        let facts = Facts(std::array::from_fn(|_| None));
        assert_eq!(back.view(&facts, 0), p.view(&facts, 0));
    }
}
