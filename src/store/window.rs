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

use super::Windows;

/// Bucket width and bucket count of each window.
pub const GEOMETRY: [(i64, usize); 3] = [(5_000, 12), (300_000, 12), (3_600_000, 24)];

/// The length of the longest window, for TTLs.
pub const LONGEST_MS: i64 = 24 * 3_600_000;

/// A bucketed counter over the three windows. 384 bytes.
#[derive(Clone, Debug, Default)]
pub struct SlidingCounter {
    m1: Ring<12>,
    h1: Ring<12>,
    h24: Ring<24>,
}

impl SlidingCounter {
    /// Counts one event at `at`.
    pub fn add(&mut self, at: UnixMillis) {
        self.m1.add(at, GEOMETRY[0].0);
        self.h1.add(at, GEOMETRY[1].0);
        self.h24.add(at, GEOMETRY[2].0);
    }

    /// The counts as of `at`.
    pub fn windows(&self, at: UnixMillis) -> Windows {
        Windows {
            m1: self.m1.count(at, GEOMETRY[0].0),
            h1: self.h1.count(at, GEOMETRY[1].0),
            h24: self.h24.count(at, GEOMETRY[2].0),
        }
    }

    /// Removes one event at `at`, if its bucket is still in the ring.
    pub fn remove(&mut self, at: UnixMillis) {
        self.m1.remove(at, GEOMETRY[0].0);
        self.h1.remove(at, GEOMETRY[1].0);
        self.h24.remove(at, GEOMETRY[2].0);
    }
}

#[derive(Clone, Copy, Debug)]
struct Ring<const N: usize> {
    /// (bucket index + 1, count); index 0 means empty.
    slots: [(u32, u32); N],
}

impl<const N: usize> Default for Ring<N> {
    fn default() -> Self {
        Ring { slots: [(0, 0); N] }
    }
}

/// The bucket index of `at` (1-based so that 0 marks an empty slot).
pub fn bucket(at: UnixMillis, width: i64) -> u32 {
    u32::try_from(at.0.div_euclid(width).max(0) + 1).unwrap_or(u32::MAX)
}

impl<const N: usize> Ring<N> {
    fn slot(b: u32) -> usize {
        (b as usize) % N
    }

    fn add(&mut self, at: UnixMillis, width: i64) {
        let b = bucket(at, width);
        let slot = &mut self.slots[Self::slot(b)];
        if slot.0 == b {
            slot.1 = slot.1.saturating_add(1);
        } else if slot.0 < b {
            *slot = (b, 1);
        }
        // else: an event older than the ring holds; dropped.
    }

    fn remove(&mut self, at: UnixMillis, width: i64) {
        let b = bucket(at, width);
        let slot = &mut self.slots[Self::slot(b)];
        if slot.0 == b {
            slot.1 = slot.1.saturating_sub(1);
        }
    }

    fn count(&self, at: UnixMillis, width: i64) -> u32 {
        let now = bucket(at, width);
        let oldest = now.saturating_sub(N as u32 - 1);
        self.slots
            .iter()
            .filter(|(b, _)| *b >= oldest && *b <= now && *b != 0)
            .map(|(_, c)| *c)
            .fold(0u32, u32::saturating_add)
    }
}

/// Distinct members (by 64-bit key) seen within a window, bounded: at most
/// `CAP` members are tracked, so counts saturate at `CAP`.
#[derive(Clone, Debug, Default)]
pub struct DistinctSet {
    members: Vec<(u64, i64)>,
}

impl DistinctSet {
    /// The most members tracked.
    pub const CAP: usize = 256;

    /// Records `member` at `at` and returns the distinct count within
    /// `window_ms` before `at`.
    pub fn add_and_count(&mut self, member: u64, at: UnixMillis, window_ms: i64) -> u32 {
        let since = at.0 - window_ms;
        if let Some(m) = self.members.iter_mut().find(|(k, _)| *k == member) {
            m.1 = m.1.max(at.0);
        } else {
            if self.members.len() >= Self::CAP {
                self.members.retain(|(_, t)| *t > since);
            }
            if self.members.len() >= Self::CAP {
                // Still full of live members: replace the oldest.
                if let Some(oldest) = self.members.iter_mut().min_by_key(|(_, t)| *t) {
                    *oldest = (member, at.0);
                }
            } else {
                self.members.push((member, at.0));
            }
        }
        self.count_within(at, window_ms)
    }

    /// Distinct members seen within `window_ms` before `at`.
    pub fn count_within(&self, at: UnixMillis, window_ms: i64) -> u32 {
        let since = at.0 - window_ms;
        let n = self.members.iter().filter(|(_, t)| *t > since).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const T0: i64 = 1_700_000_000_000;

    #[test]
    fn counts_fall_out_of_each_window() {
        let mut c = SlidingCounter::default();
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
        let mut c = SlidingCounter::default();
        c.add(UnixMillis(T0));
        // 60 s later the event is still counted only if it shares the ring's
        // oldest bucket; 65 s later it never is.
        assert_eq!(c.windows(UnixMillis(T0 + 65_000)).m1, 0);
        assert_eq!(c.windows(UnixMillis(T0 + 54_000)).m1, 1);
    }

    #[test]
    fn ring_reuse_resets_slots() {
        let mut c = SlidingCounter::default();
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
        assert!(d.members.len() <= DistinctSet::CAP);
    }
}
