//! Fewer TTL refreshes: which IP, network and device velocity hashes this
//! replica gave a TTL in the current period, so that observe sends their
//! `PEXPIRE` once per key and period instead of with every write.
//!
//! Why this is safe: a refresh at `r` sets the TTL to the counters' 25 h
//! plus one period, and a write at `t` skips it only if this replica
//! refreshed the key in the same period (`t - r` under one period), so the
//! key lives at least 25 h after its last write, as with a refresh per
//! write. A slot is marked only after the pipeline that refreshed the key
//! was answered, so a refresh that may not have run is sent again. The key
//! cannot disappear meanwhile and come back without a TTL: these hashes
//! are never erased (forget erases a user's keys only), the background
//! writer deletes only fields that can never count again (the write at
//! `r` keeps a field for 24 h), and they expire 25 h after `r` at the
//! earliest. The one exception is eviction under `maxmemory`: a hash
//! evicted and written again within the period gets its TTL from the next
//! write in a later period.
//!
//! The table is direct-mapped by the entity's keyed hash (uniform, never
//! chosen by a caller who lacks the deployment's key): a collision costs
//! one more `PEXPIRE`, nothing else.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::core::keys::Key;

/// How long a refresh counts for.
pub(super) const REFRESH_PERIOD_MS: i64 = 10 * 60 * 1000;
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
}

impl Default for Refreshed {
    fn default() -> Self {
        Refreshed {
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
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
    /// `key`'s ticket for the period of `now_ms`.
    pub(super) fn ticket(entity: Entity, key: Key, now_ms: i64) -> Ticket {
        let mut w = [0u8; 8];
        w.copy_from_slice(&key.0[..8]);
        let w = u64::from_le_bytes(w);
        let period = u64::try_from(now_ms.div_euclid(REFRESH_PERIOD_MS)).unwrap_or(0);
        let tag =
            (w ^ (entity as u64).rotate_right(8) ^ period.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_counts_for_its_key_kind_and_period_only() {
        let r = Refreshed::default();
        let k = Key([7; 16]);
        let t0 = 1_700_000_000_000 - 1_700_000_000_000 % REFRESH_PERIOD_MS;
        let t = Refreshed::ticket(Entity::Ip, k, t0);
        assert!(!r.fresh(t));
        r.mark(t);
        assert!(r.fresh(t));
        assert!(r.fresh(Refreshed::ticket(Entity::Ip, k, t0 + REFRESH_PERIOD_MS - 1)));
        // The next period, another kind, another key: refreshed again.
        assert!(!r.fresh(Refreshed::ticket(Entity::Ip, k, t0 + REFRESH_PERIOD_MS)));
        assert!(!r.fresh(Refreshed::ticket(Entity::Device, k, t0)));
        // Another key in the same slot takes it over: the first is
        // refreshed again, never skipped.
        let mut other = [7u8; 16];
        other[7] = 9;
        let o = Refreshed::ticket(Entity::Ip, Key(other), t0);
        assert_eq!(o.slot, t.slot);
        assert!(!r.fresh(o));
        r.mark(o);
        assert!(!r.fresh(t));
    }
}
