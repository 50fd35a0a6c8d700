//! The memory store's map: concurrent, bounded, expiring, and cheap per
//! entry.
//!
//! A [`BoundedMap`] is a power-of-two number of shards, each a mutex over
//! an `IndexMap` whose values are stored inline (no `Arc`, no per-entry
//! lock, no allocation beyond the map's own). Callers work on a value in
//! place under its shard's lock through closures, so a read-modify-write is
//! one lookup.
//!
//! - **Bounded**: each shard holds at most `capacity / shards` entries. A
//!   full shard evicts with CLOCK (second chance): a hand walks the entries
//!   in index order, an entry read since the hand last passed survives one
//!   more round, and the first cold (or expired) entry is removed with
//!   `swap_remove` (O(1)).
//! - **Expiring**: [`Expiry::Idle`] drops an entry not read or written for
//!   its TTL, [`Expiry::Live`] one older than its TTL. Expired entries are
//!   never returned; they are removed when met by a lookup, by the hand, or
//!   by the two-entry sweep each insert makes, so idle memory is reclaimed
//!   while the map is in use.
//! - **Keys are already keyed hashes** (HMAC [`super::Key`]s, our own
//!   UUIDs): the map hashes them with the unkeyed word hash
//!   ([`super::fxhash`]), which a caller cannot steer without the HMAC
//!   secret.
//!
//! Time is whole seconds on the caller's clock (the memory store's: seconds
//! since it was made), read once per store call and passed in.

use std::hash::{BuildHasher, Hash};

use indexmap::IndexMap;
use parking_lot::Mutex;

use super::fxhash::FxBuildHasher;

/// When an entry stops counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// Entries live until evicted (replay: its clock is its rows').
    Never,
    /// Dropped after this many seconds without a read or write.
    Idle(u32),
    /// Dropped this many seconds after insertion.
    Live(u32),
}

impl Expiry {
    /// `Idle`/`Live` for a duration, in whole seconds (at least 1).
    pub fn idle(d: std::time::Duration) -> Self {
        Expiry::Idle(secs(d))
    }

    /// See [`Expiry::idle`].
    pub fn live(d: std::time::Duration) -> Self {
        Expiry::Live(secs(d))
    }
}

fn secs(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX).max(1)
}

struct Slot<V> {
    value: V,
    /// Last access (idle) or insertion (live), seconds since the map's epoch.
    stamp: u32,
    /// Read since the CLOCK hand last passed.
    hot: bool,
}

struct Shard<K, V> {
    map: IndexMap<K, Slot<V>, FxBuildHasher>,
    cap: usize,
    hand: usize,
}

/// A bounded, expiring, sharded map (see the module docs).
pub struct BoundedMap<K, V> {
    shards: Box<[Mutex<Shard<K, V>>]>,
    mask: u64,
    expiry: Expiry,
}

/// Shards for a capacity: enough to spread two cores' worth of callers,
/// few enough that each holds a useful share of a small capacity.
fn shard_count(capacity: usize) -> usize {
    let wanted = (capacity / 1024).clamp(1, 64);
    // The largest power of two not above `wanted`.
    1 << (usize::BITS - 1 - wanted.leading_zeros())
}

impl<K: Hash + Eq + Copy, V> BoundedMap<K, V> {
    /// A map of at most `capacity` entries (at least 1) for concurrent use.
    pub fn new(capacity: u64, expiry: Expiry) -> Self {
        let capacity = usize::try_from(capacity).unwrap_or(usize::MAX).max(1);
        Self::with_shards(capacity, shard_count(capacity), expiry)
    }

    /// A map with one shard, for a single thread driving it (replay).
    pub fn single(capacity: u64, expiry: Expiry) -> Self {
        let capacity = usize::try_from(capacity).unwrap_or(usize::MAX).max(1);
        Self::with_shards(capacity, 1, expiry)
    }

    fn with_shards(capacity: usize, shards: usize, expiry: Expiry) -> Self {
        let cap = (capacity / shards).max(1);
        BoundedMap {
            shards: (0..shards)
                .map(|_| {
                    Mutex::new(Shard {
                        map: IndexMap::with_hasher(FxBuildHasher::default()),
                        cap,
                        hand: 0,
                    })
                })
                .collect(),
            mask: shards as u64 - 1,
            expiry,
        }
    }

    fn shard(&self, k: &K) -> &Mutex<Shard<K, V>> {
        // Bits 40.. pick the shard: hashbrown uses the low bits for the
        // bucket and the top seven as tags, so these stay independent.
        let h = FxBuildHasher::default().hash_one(k);
        let i = usize::try_from((h >> 40) & self.mask).unwrap_or(0);
        &self.shards[i]
    }

    fn expired(&self, stamp: u32, now: u32) -> bool {
        match self.expiry {
            Expiry::Never => false,
            Expiry::Idle(ttl) | Expiry::Live(ttl) => now.saturating_sub(stamp) >= ttl,
        }
    }

    /// Runs `f` on the value of `k`, if present and not expired; counts as
    /// a read (refreshes an idle entry, gives it a second chance).
    pub fn with<R>(&self, k: &K, now: u32, f: impl FnOnce(&mut V) -> R) -> Option<R> {
        let mut shard = self.shard(k).lock();
        let (i, _, slot) = shard.map.get_full_mut(k)?;
        if self.expired(slot.stamp, now) {
            shard.map.swap_remove_index(i);
            return None;
        }
        slot.hot = true;
        if matches!(self.expiry, Expiry::Idle(_)) {
            slot.stamp = now;
        }
        Some(f(&mut slot.value))
    }

    /// Runs `f` on the value of `k`, inserting `init()` first if `k` is
    /// absent or expired (evicting at capacity).
    pub fn upsert<R>(
        &self,
        k: K,
        now: u32,
        init: impl FnOnce() -> V,
        f: impl FnOnce(&mut V) -> R,
    ) -> R {
        let mut guard = self.shard(&k).lock();
        let shard = &mut *guard;
        if let Some(i) = shard.map.get_index_of(&k) {
            let expired = shard
                .map
                .get_index(i)
                .is_some_and(|(_, s)| self.expired(s.stamp, now));
            if expired {
                shard.map.swap_remove_index(i);
            } else if let Some((_, slot)) = shard.map.get_index_mut(i) {
                slot.hot = true;
                if matches!(self.expiry, Expiry::Idle(_)) {
                    slot.stamp = now;
                }
                return f(&mut slot.value);
            }
        }
        self.make_room(shard, now);
        let slot = shard.map.entry(k).or_insert(Slot {
            value: init(),
            stamp: now,
            hot: false,
        });
        f(&mut slot.value)
    }

    /// Inserts or replaces `k`.
    pub fn insert(&self, k: K, v: V, now: u32) {
        let mut guard = self.shard(&k).lock();
        let shard = &mut *guard;
        if let Some(slot) = shard.map.get_mut(&k) {
            *slot = Slot {
                value: v,
                stamp: now,
                hot: true,
            };
            return;
        }
        self.make_room(shard, now);
        // Growth: a shard starts empty and doubles (IndexMap's entry vector
        // and table), so a store still filling up shows the reallocation
        // and the kernel zeroing fresh pages in a profile (the memory store
        // adds a pending decision per Evaluate). It is amortized O(1) per
        // insert and stops at the steady size (pending decisions: rate ×
        // decision TTL, at most the bound). Reserving the bound up front
        // would cost every deployment its worst-case memory at start.
        shard.map.insert(
            k,
            Slot {
                value: v,
                stamp: now,
                hot: false,
            },
        );
    }

    /// Sweeps two entries for expiry and, at capacity, evicts one.
    fn make_room(&self, shard: &mut Shard<K, V>, now: u32) {
        if self.expiry != Expiry::Never {
            for _ in 0..2 {
                if shard.map.is_empty() {
                    break;
                }
                if shard.hand >= shard.map.len() {
                    shard.hand = 0;
                }
                let expired = shard
                    .map
                    .get_index(shard.hand)
                    .is_some_and(|(_, s)| self.expired(s.stamp, now));
                if expired {
                    shard.map.swap_remove_index(shard.hand);
                } else {
                    shard.hand += 1;
                }
            }
        }
        if shard.map.len() < shard.cap {
            return;
        }
        // One round clears every hot bit, so two rounds always find a victim.
        for _ in 0..=2 * shard.map.len() {
            if shard.hand >= shard.map.len() {
                shard.hand = 0;
            }
            let Some((_, slot)) = shard.map.get_index_mut(shard.hand) else {
                return;
            };
            if slot.hot && !self.expired(slot.stamp, now) {
                slot.hot = false;
                shard.hand += 1;
            } else {
                shard.map.swap_remove_index(shard.hand);
                return;
            }
        }
    }

    /// Removes `k`, returning its value if it was present and not expired.
    pub fn remove(&self, k: &K, now: u32) -> Option<V> {
        let slot = self.shard(k).lock().map.swap_remove(k)?;
        (!self.expired(slot.stamp, now)).then_some(slot.value)
    }

    /// Keeps the live entries for which `keep` is true; drops expired ones.
    pub fn retain(&self, now: u32, mut keep: impl FnMut(&K, &mut V) -> bool) {
        for shard in self.shards.iter() {
            shard
                .lock()
                .map
                .retain(|k, s| !self.expired(s.stamp, now) && keep(k, &mut s.value));
        }
    }

    /// Calls `f` on every live entry (shard by shard; not a snapshot).
    pub fn for_each(&self, now: u32, mut f: impl FnMut(&K, &V)) {
        for shard in self.shards.iter() {
            for (k, s) in shard.lock().map.iter() {
                if !self.expired(s.stamp, now) {
                    f(k, &s.value);
                }
            }
        }
    }

    /// Entries held (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map.len()).sum()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most entries the map holds.
    pub fn capacity(&self) -> usize {
        self.shards.iter().map(|s| s.lock().cap).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(m: &BoundedMap<u32, u32>, k: u32, now: u32) -> Option<u32> {
        m.with(&k, now, |v| *v)
    }

    #[test]
    fn a_full_map_evicts_cold_entries_and_gives_read_ones_a_second_chance() {
        let m: BoundedMap<u32, u32> = BoundedMap::single(3, Expiry::Never);
        for k in 0..3 {
            m.insert(k, k * 10, 0);
        }
        // 0 is read, so the hand passes it over and evicts 1.
        assert_eq!(get(&m, 0, 0), Some(0));
        m.insert(3, 30, 0);
        assert_eq!(m.len(), 3);
        assert_eq!(get(&m, 1, 0), None);
        assert_eq!(get(&m, 0, 0), Some(0));
        for k in 4..100 {
            m.insert(k, k, 0);
            assert!(m.len() <= 3);
        }
        // Re-inserting an existing key replaces it in place.
        m.insert(99, 7, 0);
        assert_eq!(get(&m, 99, 0), Some(7));
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn upsert_inserts_once_then_updates_in_place() {
        let m: BoundedMap<u32, u32> = BoundedMap::new(100, Expiry::Never);
        for _ in 0..5 {
            m.upsert(7, 0, || 100, |v| *v += 1);
        }
        assert_eq!(get(&m, 7, 0), Some(105));
        assert_eq!(m.len(), 1);
        assert_eq!(m.remove(&7, 0), Some(105));
        assert!(m.is_empty());
    }

    #[test]
    fn idle_entries_expire_unless_touched_and_live_ones_expire_regardless() {
        let idle: BoundedMap<u32, u32> = BoundedMap::single(10, Expiry::Idle(60));
        idle.insert(1, 1, 0);
        idle.insert(2, 2, 0);
        assert_eq!(get(&idle, 1, 50), Some(1)); // touched at 50
        assert_eq!(get(&idle, 2, 60), None, "idle for 60 s");
        assert_eq!(get(&idle, 1, 109), Some(1));
        assert_eq!(get(&idle, 1, 170), None);

        let live: BoundedMap<u32, u32> = BoundedMap::single(10, Expiry::Live(60));
        live.insert(1, 1, 0);
        assert_eq!(get(&live, 1, 50), Some(1));
        assert_eq!(get(&live, 1, 59), Some(1));
        assert_eq!(get(&live, 1, 60), None, "reads do not extend a live TTL");
        // An expired entry is replaced by upsert's init.
        live.insert(2, 5, 0);
        assert_eq!(live.upsert(2, 100, || 0, |v| *v), 0);
    }

    #[test]
    fn inserts_sweep_expired_entries_before_the_map_is_full() {
        let m: BoundedMap<u32, u32> = BoundedMap::single(1000, Expiry::Live(10));
        for k in 0..100 {
            m.insert(k, k, 0);
        }
        // Each insert sweeps two entries at the hand: a few hundred later
        // inserts reclaim every expired entry without any lookup of them.
        for k in 100..400 {
            m.insert(k, k, 20);
        }
        assert_eq!(m.len(), 300);
        let mut live = 0;
        m.for_each(20, |k, _| live += u32::from(*k >= 100));
        assert_eq!(live, 300);
    }

    #[test]
    fn sharded_maps_stay_within_their_capacity() {
        let m: BoundedMap<u64, u64> = BoundedMap::new(10_000, Expiry::Never);
        assert!(m.capacity() <= 10_000);
        for k in 0..100_000u64 {
            m.insert(k.wrapping_mul(0x9E37_79B9_7F4A_7C15), k, 0);
        }
        assert!(m.len() <= m.capacity());
        assert!(m.len() > 9_000, "{}", m.len());
        m.retain(0, |_, v| *v % 2 == 0);
        let mut odd = 0;
        m.for_each(0, |_, v| odd += *v % 2);
        assert_eq!(odd, 0);
    }
}
