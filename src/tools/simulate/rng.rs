//! Seeded randomness and the few distributions the generator needs.
//!
//! ChaCha8 from `rand_chacha`: its output for a seed is fixed by the
//! algorithm, so a seed reproduces the same bytes across rand versions
//! (rand's `StdRng` makes no such promise).

use rand::{Rng as _, SeedableRng as _};

/// The generator's random source.
pub type Rng = rand_chacha::ChaCha8Rng;

/// A generator for `seed`.
pub fn seeded(seed: u64) -> Rng {
    Rng::seed_from_u64(seed)
}

/// Uniform in [0, 1).
pub fn unit(r: &mut Rng) -> f64 {
    r.random::<f64>()
}

/// True with probability `p`.
pub fn chance(r: &mut Rng, p: f64) -> bool {
    unit(r) < p
}

/// Uniform integer in [lo, hi) (`lo` when the range is empty).
pub fn range(r: &mut Rng, lo: u64, hi: u64) -> u64 {
    if hi <= lo { lo } else { r.random_range(lo..hi) }
}

/// Uniform index below `n` (0 when `n` is 0).
pub fn index(r: &mut Rng, n: usize) -> usize {
    if n == 0 { 0 } else { r.random_range(0..n) }
}

/// Standard normal (Box–Muller, one value per call).
pub fn normal(r: &mut Rng) -> f64 {
    let u1 = 1.0 - unit(r); // (0, 1]
    let u2 = unit(r);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Log-normal with the given median and log-space sigma.
pub fn lognormal(r: &mut Rng, median: f64, sigma: f64) -> f64 {
    median * (sigma * normal(r)).exp()
}

/// Exponential with the given mean.
pub fn exponential(r: &mut Rng, mean: f64) -> f64 {
    -mean * (1.0 - unit(r)).ln()
}

/// Poisson with mean `lambda` (Knuth below 30, a rounded normal above).
pub fn poisson(r: &mut Rng, lambda: f64) -> u32 {
    if lambda <= 0.0 {
        return 0;
    }
    if lambda > 30.0 {
        let x = lambda + lambda.sqrt() * normal(r);
        return x.round().max(0.0) as u32;
    }
    let limit = (-lambda).exp();
    let mut k = 0u32;
    let mut p = unit(r);
    while p > limit {
        k += 1;
        p *= unit(r);
    }
    k
}

/// Failures before the first success with per-trial probability `p`.
pub fn geometric(r: &mut Rng, p: f64) -> u64 {
    if p >= 1.0 {
        return 0;
    }
    let u = 1.0 - unit(r);
    (u.ln() / (1.0 - p).ln()).floor().clamp(0.0, 1e12) as u64
}

/// Cumulative sums of `weights`, for [`pick`].
pub fn cumulative(weights: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut total = 0.0;
    weights
        .into_iter()
        .map(|w| {
            total += w.max(0.0);
            total
        })
        .collect()
}

/// An index drawn in proportion to the weights behind `cum`.
pub fn pick(r: &mut Rng, cum: &[f64]) -> usize {
    let total = cum.last().copied().unwrap_or(0.0);
    pick_at(cum, unit(r) * total)
}

/// The index whose cumulative interval holds `x` (for hashing-based picks).
pub fn pick_at(cum: &[f64], x: f64) -> usize {
    cum.partition_point(|&c| c <= x)
        .min(cum.len().saturating_sub(1))
}

/// SplitMix64: a fixed, seed-free mixing function, used where a value must
/// be a pure function of its input (an IP block's city, a quirk flag).
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// [`mix`] mapped to [0, 1).
pub fn mix_unit(x: u64) -> f64 {
    (mix(x) >> 11) as f64 / (1u64 << 53) as f64
}
