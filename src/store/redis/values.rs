//! How values are laid out in Redis: velocity hash fields per bucket (and,
//! for IPs and devices, per distinct user), their parsing into window and
//! distinct counts and the upkeep they need, and places as text.

use super::*;

/// A velocity hash field: `<kind><window>:<bucket>`.
pub(super) fn field(kind: char, window: usize, at: UnixMillis) -> String {
    format!("{kind}{}:{}", window + 1, bucket(at, GEOMETRY[window].0))
}

/// The profile's (and the global stats') distinct-value count fields, one
/// per dimension slot: `n<slot>`.
pub(super) const DISTINCT_FIELDS: [&str; PROFILE_DIMS.len()] = [
    "n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9", "n10", "n11",
];

/// Counts one event of `kind` at `at` in the velocity hash `key`: one
/// increment of its 5-second bucket (the coarser windows' counts are read
/// from the same fields, see [`Buckets::windows`]).
pub(super) fn count_event(pipe: &mut Pipeline, key: &str, kind: char, at: UnixMillis) {
    pipe.cmd("HINCRBY").arg(key).arg(field(kind, 0, at)).arg(1);
}

/// Bucket `b` of window `from`'s width as a bucket of window `to`'s
/// (`to` ≥ `from`; bucket numbers are 1-based, see [`bucket`]).
pub(super) fn coarser(b: u32, from: usize, to: usize) -> u32 {
    let ratio = (GEOMETRY[to].0 / GEOMETRY[from].0).max(1);
    (b.saturating_sub(1)) / u32::try_from(ratio).unwrap_or(u32::MAX) + 1
}

/// Fields of a velocity hash to fold into a coarser bucket before they are
/// deleted: past this many, the background writer folds them.
pub(super) const FOLD_AT: usize = 12;

/// What a velocity hash needs done to it after a read: fields to delete
/// (they can never count again) and fields to fold, (from, into).
#[derive(Debug, Default, PartialEq)]
pub(super) struct Upkeep {
    pub delete: Vec<String>,
    pub fold: Vec<(String, String)>,
}

/// The field of a distinct member (a user) in a velocity hash:
/// `u<hex16 of the member>`, valued with its last-seen time (ms).
pub(super) fn member_field(member: Key) -> String {
    format!("u{}", hex16(member))
}

/// A velocity hash as read: (kind, window, bucket, events) per bucket
/// field, and (field, last seen ms) per distinct member.
pub(super) struct Buckets {
    fields: Vec<(char, usize, u32, u64)>,
    members: Vec<(String, i64)>,
}

impl Buckets {
    pub(super) fn parse(v: Value) -> Buckets {
        let pairs: Vec<(String, u64)> = match v {
            Value::Map(m) => m
                .into_iter()
                .filter_map(|(k, v)| {
                    Some((
                        String::from_redis_value(k).ok()?,
                        u64::from_redis_value(v).ok()?,
                    ))
                })
                .collect(),
            other => FromRedisValue::from_redis_value(other).unwrap_or_default(),
        };
        Buckets::from_pairs(pairs)
    }

    /// A velocity hash from its (field, value) pairs.
    pub(super) fn from_pairs(pairs: Vec<(String, u64)>) -> Buckets {
        let mut members = Vec::new();
        let fields = pairs
            .into_iter()
            .filter_map(|(name, n)| {
                if name.starts_with('u') {
                    members.push((name, i64::try_from(n).unwrap_or(i64::MAX)));
                    return None;
                }
                let mut chars = name.chars();
                let kind = chars.next()?;
                let window = chars.next()?.to_digit(10)?.checked_sub(1)? as usize;
                let b = name.get(3..)?.parse::<u32>().ok()?;
                (window < GEOMETRY.len() && name.as_bytes().get(2) == Some(&b':'))
                    .then_some((kind, window, b, n))
            })
            .collect();
        Buckets { fields, members }
    }

    /// Distinct members seen within `window_ms` before `at`, at most the
    /// cap (as [`DistinctSet::count_within`]).
    pub(super) fn members_within(&self, at: UnixMillis, window_ms: i64) -> u32 {
        let since = at.0 - window_ms;
        let n = self.members.iter().filter(|(_, t)| *t > since).count();
        u32::try_from(n).unwrap_or(u32::MAX).min(CAP)
    }

    /// Member fields to delete to keep the set within its cap, as
    /// [`DistinctSet`] does: past the cap, those not seen within
    /// `window_ms` before `at`, then the oldest.
    pub(super) fn members_past_cap(&self, at: UnixMillis, window_ms: i64) -> Vec<(String, i64)> {
        let cap = CAP as usize;
        if self.members.len() <= cap {
            return Vec::new();
        }
        let since = at.0 - window_ms;
        let mut by_age: Vec<&(String, i64)> = self.members.iter().collect();
        // Newest first; ties broken by field so every replica agrees.
        by_age.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        by_age
            .iter()
            .enumerate()
            .filter(|(i, (_, t))| *i >= cap || *t <= since)
            .map(|(_, (f, t))| (f.clone(), *t))
            .collect()
    }

    pub(super) fn of(
        &self,
        kind: char,
        window: usize,
    ) -> impl Iterator<Item = (u32, u64)> + Clone + '_ {
        self.fields
            .iter()
            .filter(move |f| f.0 == kind && f.1 == window)
            .map(|f| (f.2, f.3))
    }

    /// The events of `kind` per bucket of window `w`: every field of
    /// window `w` or finer, mapped to `w`'s buckets and summed.
    fn at_window(&self, kind: char, w: usize) -> Vec<(u32, u64)> {
        let mut out: Vec<(u32, u64)> = Vec::new();
        for f in self.fields.iter().filter(|f| f.0 == kind && f.1 <= w) {
            let b = coarser(f.2, f.1, w);
            match out.iter_mut().find(|e| e.0 == b) {
                Some(e) => e.1 = e.1.saturating_add(f.3),
                None => out.push((b, f.3)),
            }
        }
        out
    }

    /// The newest bucket of window `w` holding events of `kind` (the ring's
    /// head), from every field of window `w` or finer.
    fn head(&self, kind: char, w: usize) -> Option<u32> {
        self.fields
            .iter()
            .filter(|f| f.0 == kind && f.1 <= w)
            .map(|f| coarser(f.2, f.1, w))
            .max()
    }

    /// The window counts of an entity's velocity hash, whose events are
    /// written to 5-second buckets and folded into coarser ones once they
    /// no longer count in the finer window (see [`Buckets::upkeep`]).
    /// Answers exactly like the memory store's rings (a property test
    /// checks it).
    pub(super) fn windows(&self, kind: char, at: UnixMillis, max: u32) -> Windows {
        let count = |w: usize| {
            let (width, len) = GEOMETRY[w];
            let per = self.at_window(kind, w);
            window_count(bucket(at, width), len as u32, max, per.into_iter())
        };
        Windows {
            m1: count(0),
            h1: count(1),
            h24: count(2),
        }
    }

    /// Fields of an entity's velocity hash that can never count again (to
    /// delete), and fields that no longer count in their own window (to
    /// fold into the coarsest window they still count in), once there are
    /// [`FOLD_AT`] of those. Folding keeps every count (see
    /// [`Buckets::windows`]) and bounds a busy key's fields.
    pub(super) fn upkeep(&self) -> Upkeep {
        self.upkeep_past(FOLD_AT)
    }

    fn upkeep_past(&self, fold_at: usize) -> Upkeep {
        let mut out = Upkeep::default();
        let last = GEOMETRY.len() - 1;
        for kind in ['f', 'a'] {
            let heads = [0, 1, 2].map(|w| self.head(kind, w));
            let stale_at = |b: u32, from: usize, w: usize| {
                heads[w].is_some_and(|h| stale(coarser(b, from, w), h, GEOMETRY[w].1 as u32))
            };
            for f in self.fields.iter().filter(|f| f.0 == kind) {
                let (g, b) = (f.1, f.2);
                if stale_at(b, g, last) {
                    out.delete.push(format!("{kind}{}:{b}", g + 1));
                } else if g < last && stale_at(b, g, g) {
                    // The finest window it still counts in.
                    let into = (g + 1..=last).find(|w| !stale_at(b, g, *w)).unwrap_or(last);
                    out.fold.push((
                        format!("{kind}{}:{b}", g + 1),
                        format!("{kind}{}:{}", into + 1, coarser(b, g, into)),
                    ));
                }
            }
        }
        if out.fold.len() < fold_at {
            out.fold.clear();
        }
        out
    }

    /// Fields that can never count again in a hash that counts each event
    /// in every window (the deployment-wide counts).
    pub(super) fn stale_per_window(&self) -> Vec<String> {
        let mut out = Vec::new();
        for kind in ['f', 'a'] {
            for (w, (_, len)) in GEOMETRY.iter().enumerate() {
                let Some(head) = self.of(kind, w).map(|(b, _)| b).max() else {
                    continue;
                };
                for (b, _) in self.of(kind, w) {
                    if stale(b, head, *len as u32) {
                        out.push(format!("{kind}{}:{b}", w + 1));
                    }
                }
            }
        }
        out
    }
}

pub(super) fn int(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::Int(i)) => *i,
        Some(Value::BulkString(b)) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

pub(super) fn u32_of(v: Option<&Value>) -> u32 {
    u32::try_from(int(v).max(0)).unwrap_or(u32::MAX)
}

/// A place as stored: at [`GeoPoint::stored`] precision, so it reads back
/// exactly as the memory store keeps it.
pub(super) fn place_text(p: &GeoPoint) -> String {
    let p = p.stored();
    format!("{},{},{}", p.lat, p.lon, p.accuracy_km)
}

pub(super) fn parse_place(s: &str) -> Option<GeoPoint> {
    let mut it = s.split(',').map(str::parse::<f64>);
    let (Some(Ok(lat)), Some(Ok(lon)), Some(Ok(accuracy_km)), None) =
        (it.next(), it.next(), it.next(), it.next())
    else {
        return None;
    };
    Some(GeoPoint {
        lat,
        lon,
        accuracy_km,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::window::SlidingCounter;
    use std::collections::BTreeMap;

    const T0: i64 = 1_700_000_000_000;

    fn read(hash: &BTreeMap<String, u64>) -> Buckets {
        Buckets::from_pairs(hash.iter().map(|(k, v)| (k.clone(), *v)).collect())
    }

    /// Applies an upkeep the way Redis does: folds add to the coarser
    /// field and delete the finer one; deletes delete.
    fn apply(hash: &mut BTreeMap<String, u64>, u: Upkeep) {
        for (from, into) in u.fold {
            if let Some(n) = hash.remove(&from) {
                *hash.entry(into).or_default() += n;
            }
        }
        for f in u.delete {
            hash.remove(&f);
        }
    }

    #[test]
    fn buckets_map_to_coarser_windows() {
        // 5 s bucket 1 covers [0, 5 s): 5-minute bucket 1, hour 1.
        assert_eq!(coarser(1, 0, 1), 1);
        assert_eq!(coarser(60, 0, 1), 1);
        assert_eq!(coarser(61, 0, 1), 2);
        assert_eq!(coarser(720, 0, 2), 1);
        assert_eq!(coarser(721, 0, 2), 2);
        assert_eq!(coarser(13, 1, 2), 2);
        let at = UnixMillis(T0);
        assert_eq!(
            coarser(bucket(at, GEOMETRY[0].0), 0, 2),
            bucket(at, GEOMETRY[2].0)
        );
    }

    #[test]
    fn a_busy_key_is_folded_and_keeps_its_counts() {
        let mut hash = BTreeMap::new();
        let mut ring = SlidingCounter::<u16>::default();
        // One event every 5 s for 3 hours.
        for i in 0..(3 * 720) {
            let at = UnixMillis(T0 + i * 5_000);
            *hash.entry(field('f', 0, at)).or_default() += 1;
            ring.add(at);
            let b = read(&hash);
            assert_eq!(b.windows('f', at, u32::from(u16::MAX)), ring.windows(at));
            apply(&mut hash, b.upkeep());
        }
        // Folded: at most FOLD_AT fields left unfolded, the 12 of the last
        // minute, the last hour's 5-minute buckets and the hours.
        assert!(hash.len() <= FOLD_AT + 12 + 12 + 24, "{}", hash.len());
    }

    proptest::proptest! {
        /// Events written to 5-second fields, read through every window and
        /// kept up (folded, deleted) at any time, answer exactly like the
        /// memory store's rings — whatever the order of events and reads.
        #[test]
        fn folded_fields_answer_like_the_rings(
            ops in proptest::collection::vec((0i64..30 * 3600, 0u8..6), 1..300),
        ) {
            let mut hash = BTreeMap::new();
            let mut ring = SlidingCounter::<u16>::default();
            // A read whose upkeep is applied later (a slow background
            // writer, or another replica's): still safe.
            let mut snapshot: Option<Buckets> = None;
            for (secs, op) in ops {
                let at = UnixMillis(T0 + secs * 1000);
                match op {
                    0 | 1 => {
                        *hash.entry(field('f', 0, at)).or_default() += 1;
                        ring.add(at);
                    }
                    2 => {
                        let b = read(&hash);
                        proptest::prop_assert_eq!(
                            b.windows('f', at, u32::from(u16::MAX)),
                            ring.windows(at)
                        );
                    }
                    3 => {
                        let u = read(&hash).upkeep_past(1);
                        apply(&mut hash, u);
                    }
                    4 => snapshot = Some(read(&hash)),
                    _ => {
                        if let Some(old) = snapshot.take() {
                            apply(&mut hash, old.upkeep_past(1));
                        }
                    }
                }
            }
        }
    }
}
