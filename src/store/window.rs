//! Sliding-window counters, bucketed.
//!
//! Each window is a ring of fixed-width buckets: 1 minute as 12 × 5 s,
//! 1 hour as 12 × 5 min, 24 hours as 24 × 1 h. A count covers the bucket of
//! the current time and the ones before it in the ring, so it includes every
//! event of the last window length and at most one bucket width more
//! (bounded error: ≤ 5 s, 5 min, 1 h). Events older than the ring are dropped;
//! events that arrive out of order are counted in their own bucket while it is
//! still in the ring. Every store buckets the same way, so they agree.

use crate::domain::UnixMillis;

use crate::core::inputs::Windows;

/// Bucket width and bucket count of each window.
pub const GEOMETRY: [(i64, usize); 3] = [(5_000, 12), (300_000, 12), (3_600_000, 24)];

/// The length of the longest window, for TTLs.
pub const LONGEST_MS: i64 = 24 * 3_600_000;

/// A count a ring slot holds, saturating at its maximum. Per-key rings use
/// `u16` (a key with more than 65,535 events in one bucket is far past every
/// threshold), the deployment-wide ring `u32`.
pub trait Count: Copy + Default + std::fmt::Debug {
    fn incr(self) -> Self;
    fn decr(self) -> Self;
    fn get(self) -> u32;
}

impl Count for u16 {
    fn incr(self) -> Self {
        self.saturating_add(1)
    }
    fn decr(self) -> Self {
        self.saturating_sub(1)
    }
    fn get(self) -> u32 {
        u32::from(self)
    }
}

impl Count for u32 {
    fn incr(self) -> Self {
        self.saturating_add(1)
    }
    fn decr(self) -> Self {
        self.saturating_sub(1)
    }
    fn get(self) -> u32 {
        self
    }
}

/// A bucketed counter over the three windows: per window the newest bucket
/// seen (the head) and one count per bucket of the ring. 108 bytes with
/// `u16` counts, 204 with `u32`.
#[derive(Clone, Debug, Default)]
pub struct SlidingCounter<C: Count = u16> {
    m1: Ring<C, 12>,
    h1: Ring<C, 12>,
    h24: Ring<C, 24>,
}

impl<C: Count> SlidingCounter<C> {
    /// Counts one event at `at`.
    pub fn add(&mut self, at: UnixMillis) {
        self.m1.add(bucket(at, GEOMETRY[0].0));
        self.h1.add(bucket(at, GEOMETRY[1].0));
        self.h24.add(bucket(at, GEOMETRY[2].0));
    }

    /// The counts as of `at`.
    pub fn windows(&self, at: UnixMillis) -> Windows {
        Windows {
            m1: self.m1.count(bucket(at, GEOMETRY[0].0)),
            h1: self.h1.count(bucket(at, GEOMETRY[1].0)),
            h24: self.h24.count(bucket(at, GEOMETRY[2].0)),
        }
    }
}

/// One window: `slots[b % N]` counts bucket `b` for every `b` in
/// `(head − N, head]`; slots of buckets the head skipped over are cleared as
/// it advances. An event older than the ring (`b ≤ head − N`) is dropped; one
/// out of order but inside the ring is counted in its own bucket.
#[derive(Clone, Copy, Debug)]
struct Ring<C: Count, const N: usize> {
    /// The newest bucket counted (1-based; 0: nothing yet).
    head: u32,
    slots: [C; N],
}

impl<C: Count, const N: usize> Default for Ring<C, N> {
    fn default() -> Self {
        Ring {
            head: 0,
            slots: [C::default(); N],
        }
    }
}

/// The bucket index of `at` (1-based so that 0 marks "nothing yet").
pub fn bucket(at: UnixMillis, width: i64) -> u32 {
    u32::try_from(at.0.div_euclid(width).max(0) + 1).unwrap_or(u32::MAX)
}

impl<C: Count, const N: usize> Ring<C, N> {
    const LEN: u32 = N as u32;

    fn slot(&mut self, b: u32) -> &mut C {
        &mut self.slots[b as usize % N]
    }

    fn add(&mut self, b: u32) {
        if self.head == 0 || b > self.head {
            if self.head == 0 || b - self.head >= Self::LEN {
                self.slots = [C::default(); N];
            } else {
                for skipped in self.head + 1..=b {
                    *self.slot(skipped) = C::default();
                }
            }
            self.head = b;
        } else if b + Self::LEN <= self.head {
            return; // older than the ring
        }
        let s = self.slot(b);
        *s = s.incr();
    }

    /// Events in the buckets `[now − N + 1, now]` that the ring still holds.
    fn count(&self, now: u32) -> u32 {
        if self.head == 0 {
            return 0;
        }
        let lo = now
            .saturating_sub(Self::LEN - 1)
            .max(self.head.saturating_sub(Self::LEN - 1))
            .max(1);
        let hi = now.min(self.head);
        (lo..=hi)
            .map(|b| self.slots[b as usize % N].get())
            .fold(0u32, u32::saturating_add)
    }
}

/// The count [`SlidingCounter`] gives for one window, from the events kept
/// per bucket instead of in a ring: `buckets` are (bucket, events) pairs
/// (the bucket numbers of [`bucket`], in any order, at most one pair per
/// bucket), `len` the window's bucket count, `max` a bucket's saturation.
/// The newest bucket plays the ring's head: buckets more than a ring older
/// never count (a ring would have dropped or overwritten them). The Redis
/// store keeps velocity this way (one hash field per bucket) and counts
/// with this function, so both stores answer alike.
pub fn window_count(
    now: u32,
    len: u32,
    max: u32,
    buckets: impl Iterator<Item = (u32, u64)> + Clone,
) -> u32 {
    let Some(head) = buckets.clone().map(|(b, _)| b).max() else {
        return 0;
    };
    let lo = now
        .saturating_sub(len - 1)
        .max(head.saturating_sub(len - 1))
        .max(1);
    let hi = now.min(head);
    buckets
        .filter(|(b, _)| *b >= lo && *b <= hi)
        .map(|(_, n)| u32::try_from(n).unwrap_or(u32::MAX).min(max))
        .fold(0u32, u32::saturating_add)
}

/// Whether bucket `b` can never count again in a window of `len` buckets
/// whose newest bucket is `head` (see [`window_count`]).
pub fn stale(b: u32, head: u32, len: u32) -> bool {
    b + len <= head
}

/// Distinct members (by 64-bit key) seen within a window, bounded: at most
/// `CAP` members are tracked, so counts saturate at `CAP`. One member is
/// held inline (most IPs and devices see one user): 32 bytes until a
/// second member arrives.
#[derive(Clone, Debug, Default)]
pub struct DistinctSet {
    members: Members,
}

#[derive(Clone, Debug, Default)]
enum Members {
    #[default]
    Empty,
    One((u64, i64)),
    Many(Vec<(u64, i64)>),
}

impl DistinctSet {
    /// The most members tracked.
    pub const CAP: usize = 256;

    fn as_slice(&self) -> &[(u64, i64)] {
        match &self.members {
            Members::Empty => &[],
            Members::One(m) => std::slice::from_ref(m),
            Members::Many(v) => v,
        }
    }

    /// Records `member` at `at` and returns the distinct count within
    /// `window_ms` before `at`.
    pub fn add_and_count(&mut self, member: u64, at: UnixMillis, window_ms: i64) -> u32 {
        let since = at.0 - window_ms;
        match &mut self.members {
            Members::Empty => self.members = Members::One((member, at.0)),
            Members::One(m) if m.0 == member => m.1 = m.1.max(at.0),
            Members::One(m) => {
                let first = *m;
                self.members = Members::Many(vec![first, (member, at.0)]);
            }
            Members::Many(v) => {
                if let Some(m) = v.iter_mut().find(|(k, _)| *k == member) {
                    m.1 = m.1.max(at.0);
                } else {
                    if v.len() >= Self::CAP {
                        v.retain(|(_, t)| *t > since);
                    }
                    if v.len() >= Self::CAP {
                        // Still full of live members: replace the oldest.
                        if let Some(oldest) = v.iter_mut().min_by_key(|(_, t)| *t) {
                            *oldest = (member, at.0);
                        }
                    } else {
                        v.push((member, at.0));
                    }
                }
            }
        }
        self.count_within(at, window_ms)
    }

    /// Distinct members seen within `window_ms` before `at`.
    pub fn count_within(&self, at: UnixMillis, window_ms: i64) -> u32 {
        let since = at.0 - window_ms;
        let n = self.as_slice().iter().filter(|(_, t)| *t > since).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Members tracked (live or not).
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Whether no member is tracked.
    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const T0: i64 = 1_700_000_000_000;

    #[test]
    fn counts_fall_out_of_each_window() {
        let mut c = SlidingCounter::<u32>::default();
        for i in 0..5 {
            c.add(UnixMillis(T0 + i * 1000));
        }
        let w = c.windows(UnixMillis(T0 + 5000));
        assert_eq!((w.m1, w.h1, w.h24), (5, 5, 5));
        let w = c.windows(UnixMillis(T0 + 2 * MIN));
        assert_eq!((w.m1, w.h1, w.h24), (0, 5, 5));
        let w = c.windows(UnixMillis(T0 + 70 * MIN));
        assert_eq!((w.m1, w.h1, w.h24), (0, 0, 5));
        let w = c.windows(UnixMillis(T0 + 26 * 60 * MIN));
        assert_eq!((w.m1, w.h1, w.h24), (0, 0, 0));
    }

    #[test]
    fn error_is_at_most_one_bucket() {
        let mut c = SlidingCounter::<u16>::default();
        c.add(UnixMillis(T0));
        // 60 s later the event is still counted only if it shares the ring's
        // oldest bucket; 65 s later it never is.
        assert_eq!(c.windows(UnixMillis(T0 + 65_000)).m1, 0);
        assert_eq!(c.windows(UnixMillis(T0 + 54_000)).m1, 1);
    }

    #[test]
    fn ring_reuse_resets_slots() {
        let mut c = SlidingCounter::<u16>::default();
        c.add(UnixMillis(T0));
        c.add(UnixMillis(T0 + 60_000 * 60 * 2));
        assert_eq!(c.windows(UnixMillis(T0 + 60_000 * 60 * 2)).h1, 1);
        assert_eq!(c.windows(UnixMillis(T0 + 60_000 * 60 * 2)).h24, 2);
    }

    #[test]
    fn distinct_set_counts_members_once_and_expires() {
        let mut d = DistinctSet::default();
        assert_eq!(d.add_and_count(1, UnixMillis(T0), 60 * MIN), 1);
        assert_eq!(d.add_and_count(1, UnixMillis(T0 + 1), 60 * MIN), 1);
        assert_eq!(d.add_and_count(2, UnixMillis(T0 + 2), 60 * MIN), 2);
        assert_eq!(d.add_and_count(3, UnixMillis(T0 + 61 * MIN), 60 * MIN), 1);
    }

    #[test]
    fn distinct_set_is_bounded() {
        let mut d = DistinctSet::default();
        let mut last = 0;
        for i in 0..10_000u64 {
            last = d.add_and_count(i, UnixMillis(T0 + i as i64), 60 * MIN);
        }
        assert_eq!(last as usize, DistinctSet::CAP);
        assert!(d.len() <= DistinctSet::CAP);
    }

    #[test]
    fn out_of_order_events_count_in_their_bucket_or_are_dropped() {
        let mut r = Ring::<u16, 12>::default();
        r.add(100);
        r.add(95); // inside the ring
        r.add(88); // older than the ring (100 − 12)
        assert_eq!(r.count(100), 2);
        assert_eq!(r.count(95), 1);
        r.add(105); // the head moves; buckets 101..=104 are cleared
        assert_eq!(r.count(105), 3);
        assert_eq!(r.count(112), 1, "100 and 95 fell out");
        r.add(200); // far ahead: everything cleared
        assert_eq!(r.count(200), 1);
    }

    #[test]
    fn per_key_counts_saturate() {
        let mut r = Ring::<u16, 12>::default();
        for _ in 0..70_000 {
            r.add(5);
        }
        assert_eq!(r.count(5), u32::from(u16::MAX));
    }

    proptest::proptest! {
        /// Per-bucket events counted with `window_count` answer exactly
        /// like the ring, whatever the order of events and queries.
        #[test]
        fn bucket_counts_answer_like_the_ring(
            events in proptest::collection::vec((1u32..80, proptest::bool::ANY), 1..150),
        ) {
            let mut ring = Ring::<u16, 12>::default();
            let mut per_bucket: std::collections::BTreeMap<u32, u64> = Default::default();
            for (b, query) in events {
                if query {
                    let got = window_count(b, 12, u32::from(u16::MAX), per_bucket.iter().map(|(b, n)| (*b, *n)));
                    proptest::prop_assert_eq!(ring.count(b), got);
                } else {
                    ring.add(b);
                    *per_bucket.entry(b).or_default() += 1;
                    // Stale buckets may be dropped at any time without changing a count.
                    let head = *per_bucket.keys().max().unwrap_or(&0);
                    per_bucket.retain(|k, _| !stale(*k, head, 12) || *k % 2 == 0);
                }
            }
        }

        /// The ring counts exactly what a list of every accepted event
        /// would: an event is accepted when it is newer than the ring's
        /// oldest bucket at its arrival, and counted while its bucket is in
        /// both the queried window and the ring.
        #[test]
        fn the_ring_matches_a_list_of_events(
            events in proptest::collection::vec((1u32..80, proptest::bool::ANY), 1..120),
        ) {
            let mut ring = Ring::<u32, 12>::default();
            let mut accepted: Vec<u32> = Vec::new();
            let mut head = 0u32;
            for (b, query) in events {
                if query {
                    let want = accepted
                        .iter()
                        .filter(|e| **e + 12 > b && **e <= b && **e + 12 > head)
                        .count() as u32;
                    proptest::prop_assert_eq!(ring.count(b), want);
                } else {
                    if head == 0 || b + 12 > head {
                        accepted.push(b);
                        head = head.max(b);
                    }
                    ring.add(b);
                }
            }
        }
    }
}
