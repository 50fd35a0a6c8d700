//! Fewer TTL refreshes: which IP, network and device velocity hashes this
//! replica gave a TTL in the current period, so that observe sends their
//! `PEXPIRE` once per key and period instead of with every write.
//!
//! Why this is safe: a refresh at `r` sets the TTL to the counters' 25 h
//! plus one period, and a write at `t` skips it only if this replica
//! refreshed the key in the same period (`t - r` under one period, on the
//! process's monotonic clock), so the key lives at least 25 h after its
//! last write, as with a refresh per write. A slot is marked only after
//! the pipeline that refreshed the key was answered, so a refresh that may
//! not have run is sent again. Any failed call to Redis forgets every mark
//! (a restarted server has lost its keys). Otherwise the key cannot
//! disappear within the period and come back without a TTL: these hashes
//! are never erased (forget erases a user's keys only), the background
//! writer never deletes a hash's newest field (folds move it, stale
//! deletes spare it), and they expire 25 h after `r` at the earliest. The
//! exceptions are eviction under `maxmemory` and writes a failover loses
//! after answering them (Redis replicates asynchronously): a hash gone that
//! way and written again within the period gets its TTL from the next
//! write in a later period.
//!
//! The table is direct-mapped by the entity's keyed hash (uniform, never
//! chosen by a caller who lacks the deployment's key): a collision costs
//! one more `PEXPIRE`, nothing else.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::core::keys::Key;

/// How long a refresh counts for.
pub(super) const REFRESH_PERIOD_MS: i64 = 10 * 60 * 1000;
const PERIOD: Duration = Duration::from_secs(600);
/// Slots of the table (8 bytes each).
const SLOTS: usize = 1 << 16;

/// The entity kinds of the table.
#[derive(Clone, Copy)]
pub(super) enum Entity {
    Ip = 1,
    Network = 2,
    Device = 3,
}

/// Keys refreshed in the current period, one slot per entity hash.
pub(super) struct Refreshed {
    slots: Box<[AtomicU64]>,
    /// Periods are counted from here (monotonic: a wall-clock step cannot
    /// stretch one).
    start: Instant,
    /// Bumped to forget every mark at once.
    generation: AtomicU64,
}

impl Default for Refreshed {
    fn default() -> Self {
        Refreshed {
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            start: Instant::now(),
            generation: AtomicU64::new(0),
        }
    }
}

/// One key in one period: where it lives in the table and what it holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Ticket {
    slot: usize,
    tag: u64,
}

impl Refreshed {
    /// `key`'s ticket for the current period.
    pub(super) fn ticket(&self, entity: Entity, key: Key) -> Ticket {
        let period = u64::try_from(self.start.elapsed().as_millis() / PERIOD.as_millis())
            .unwrap_or(u64::MAX);
        self.ticket_in(entity, key, period)
    }

    fn ticket_in(&self, entity: Entity, key: Key, period: u64) -> Ticket {
        let mut w = [0u8; 8];
        w.copy_from_slice(&key.0[..8]);
        let w = u64::from_le_bytes(w);
        let epoch = period ^ self.generation.load(Ordering::Relaxed).rotate_left(32);
        let tag =
            (w ^ (entity as u64).rotate_right(8) ^ epoch.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1;
        Ticket {
            slot: (w as usize) & (SLOTS - 1),
            tag,
        }
    }

    /// Whether the key was refreshed in the ticket's period.
    pub(super) fn fresh(&self, t: Ticket) -> bool {
        self.slots[t.slot].load(Ordering::Relaxed) == t.tag
    }

    /// Records that the key was refreshed in the ticket's period.
    pub(super) fn mark(&self, t: Ticket) {
        self.slots[t.slot].store(t.tag, Ordering::Relaxed);
    }

    /// Forgets every mark (a call to Redis failed: it may have restarted
    /// and lost its keys).
    pub(super) fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_counts_for_its_key_kind_and_period_only() {
        let r = Refreshed::default();
        let k = Key([7; 16]);
        assert_eq!(r.ticket(Entity::Ip, k), r.ticket_in(Entity::Ip, k, 0));
        let t = r.ticket_in(Entity::Ip, k, 5);
        assert!(!r.fresh(t));
        r.mark(t);
        assert!(r.fresh(t));
        // The next period, another kind: refreshed again.
        assert!(!r.fresh(r.ticket_in(Entity::Ip, k, 6)));
        assert!(!r.fresh(r.ticket_in(Entity::Device, k, 5)));
        // Another key in the same slot takes it over: the first is
        // refreshed again, never skipped.
        let mut other = [7u8; 16];
        other[7] = 9;
        let o = r.ticket_in(Entity::Ip, Key(other), 5);
        assert_eq!(o.slot, t.slot);
        assert!(!r.fresh(o));
        r.mark(o);
        assert!(!r.fresh(t));
        // A failed call forgets every mark.
        assert!(r.fresh(o));
        r.forget_all();
        assert!(!r.fresh(r.ticket_in(Entity::Ip, Key(other), 5)));
    }
}
