//! A fast, unkeyed hash for maps whose keys are already hashes or come
//! from trusted input (replay's single-owner store, the Freeman baseline):
//! the multiply-rotate word hash used by rustc ("FxHash"). Not resistant to
//! chosen collisions: never for maps fed by network input.

use std::hash::{BuildHasherDefault, Hasher};

/// [`FxHasher`] as a `HashMap` hasher.
pub type FxBuildHasher = BuildHasherDefault<FxHasher>;

/// A `HashMap` with [`FxHasher`].
pub type FxHashMap<K, V> = std::collections::HashMap<K, V, FxBuildHasher>;

const K: u64 = 0xf135_7aea_2e62_a9c5;

/// The hasher.
#[derive(Clone, Copy, Debug, Default)]
pub struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(26) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // hashbrown takes its control bits from the top: mix them in.
        self.hash ^ (self.hash >> 29)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn distinguishes_lengths_and_spreads_small_keys() {
        let b = FxBuildHasher::default();
        assert_ne!(b.hash_one("ab"), b.hash_one("ab\0"));
        assert_ne!(b.hash_one(1u64), b.hash_one(2u64));
        let mut top: std::collections::HashSet<u64> = std::collections::HashSet::new();
        for i in 0..1000u64 {
            top.insert(b.hash_one(i) >> 57);
        }
        assert!(top.len() > 100, "{}", top.len());
    }
}
