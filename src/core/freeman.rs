//! Freeman et al. (NDSS 2016) login-history likelihood ratio, with the
//! hierarchy weights, smoothing and edge cases evaluated by Wiefling et al.
//! (ACM TOPS 2022, doi:10.1145/3546069).
//!
//! Pure and I/O-free: the caller (a login-history store) supplies counts,
//! this module turns them into a score. Only `std` is used.
//!
//! # Specification
//!
//! The authoritative spec is `shared/data/rba-reference-vectors/freeman_wiefling_reference.json`
//! ("the JSON" below), transcribed from the reference notebook
//! `das-group/rba-algorithm@28fec46` (`rba-algorithm.ipynb`) and the Keystone
//! plugin `das-group/keystone-rba-plugin@0f8d2fa` (`rba/core.py`, `conf/rba.py`).
//! Feature semantics (IP address → ASN → country; user-agent string →
//! browser name+version → OS name+version → device type) follow
//! `shared/data/rba-dataset-docs/README.md`.
//!
//! # Model as implemented
//!
//! ```text
//! score = Π_{k ∈ {ip, ua}} [ G_k / L_k ] · p(u|A) / p(u|L)         (lower = more legitimate)
//!
//! G_k = Σ_{i known} w_i · g_i          global likelihood of the attempt's value
//! L_k = Σ_{i known} w_i · l_i          local likelihood (this user's history)
//!
//! g_f = p0(c_f, N, M_f, smoothing)     f = first (finest) *known* level
//! g_i = p0(c_i, N, 0,   no smoothing)  = c_i / N   for the other known levels
//! l_i = p0(c_i^u, n_u, 0, no smoothing) = c_i^u / n_u
//!
//! p0(c, N, M) = c > 0 ? (c/N)·(1 − M/(N+M))  [= c/(N+M)]
//!                     : (smoothing ? 1/(N+M) : 0)
//! M_i = |distinct values of level i+1| + M_{i+1},  M_last = 1
//!     = 1 + Σ_{j > i, j known} D_j              (D_j = global distinct count of level j)
//!
//! if L_k == 0 { L_k := G_k / 4 }  ⇒  G_k / L_k == 4 exactly    (notebook edge case)
//!
//! p(u|A) = 1 / |users|,   p(u|L) = n_u / N
//! ```
//!
//! with `N` = number of logins in the global history, `n_u` = number of
//! logins of user `u`, `c_i` / `c_i^u` = global / local occurrences of the
//! attempt's value at level `i`, and weights `w` from the JSON
//! (`hierarchy_weights`, see [`ip_weights`], [`ua_weights`]). The feature
//! exponent weights of the JSON are 1 for both features, so the per-feature
//! ratios are multiplied unweighted. There is no per-member attack data:
//! `p(A|x_k) = 1` (the Keystone malicious-netset factor and the RTT feature
//! are out of scope for this module).
//!
//! All counts describe the history *before* the attempt being scored (the
//! notebook scores an attempt first and then adds it to the counts).
//!
//! # Ambiguities in the JSON and the choices made here
//!
//! 1. **How levels combine.** The JSON lists weights but no combination rule.
//!    As in both reference implementations: a weighted *sum* over levels
//!    (`p(x) = Σ w_i p_i`), computed once with global and once with local
//!    counts, using the same weights.
//! 2. **`N` per level.** `N` is the number of logins (global: all logins;
//!    local: the user's logins) for *every* level, not the number of logins
//!    that carry a value at that level (as in the notebook, whose data has no
//!    missing values, and Keystone, which stores `''` for missing values).
//! 3. **Which distinct counts enter `M`.** `M` is only needed for the global
//!    likelihood (local is never smoothed), so `D_j` are the distinct counts
//!    of the *global* history (notebook: `len_unique` of the global table;
//!    Keystone: `len(total_history[next])`), not distinct values conditional
//!    on the attempt's value. Only levels that are known for this attempt
//!    enter the sum (Keystone builds `M` over the configured levels only).
//! 4. **Unknown levels.** The JSON gives `ip_if_only_asn` (0.6/0.4) and
//!    `ip_if_only_country` (0.6/0.4), and Keystone uses `ip: 1.0` when neither
//!    ASN nor country is available. It gives nothing for an unknown IP itself
//!    or for unknown UA levels: there the base weights of the known levels are
//!    renormalised proportionally to sum to 1. "First (finest) level" is read
//!    as "first *known* level": that level is smoothed, which keeps `G > 0`.
//!    A feature with no known level carries no evidence: its ratio is 1.
//! 5. **Edge case.** The JSON quotes two variants: notebook `local := global/4`
//!    (feature ratio becomes exactly 4) and Keystone "divide by 4 instead of
//!    by 0" (ratio becomes `global/4`, i.e. tiny for a new value). The JSON
//!    states the notebook rule and notes Keystone's as a deviation; the
//!    notebook rule is implemented.
//!    Consequence: a value never seen at *any* level of the user's history
//!    always has ratio 4, however rare or common it is globally.
//! 6. **Arithmetic form of p0.** The reference form `(c/N)·(1 − M/(N+M))`
//!    is algebraically `c/(N+M)`; the latter is evaluated (one correctly
//!    rounded division). The literal form cancels catastrophically when
//!    `M ≫ N` (relative error ≈ 1e-16·M/N); in the normal regime `N ≫ M`
//!    both agree to ~1e-15 (tested).
//! 7. **Omitted reference-code factor (not in the JSON).** Both reference
//!    implementations multiply the *global, first-level* term by a second
//!    `p0` evaluated on the sub-history of logins that share the attempt's
//!    first-level value, smoothed: `s = c_0/(c_0 + m)` (`c_0 > 0`, with
//!    `m = 1 + Σ_{j>0} |distinct level-j values co-occurring with this
//!    level-0 value|`, typically 3 for an IP and 4 for a UA string) and
//!    `s = 1` when `c_0 = 0`. (At the other levels and locally that factor
//!    is an indicator `c > 0` and has no effect.) The JSON does not list it,
//!    so — following the brief that the JSON is authoritative — it is *not*
//!    applied. It is one extra counter per finest value if ever wanted. The
//!    notebook moreover computes it on the *whole* data set including rows
//!    after the attempt. Hence the JSON's `golden_test` values are not
//!    reproducible with this model even with the data set, and the data set
//!    itself (`rba-dataset.csv`) is not available offline.
//! 8. **`|users|` and `N` in the prior.** `|users|` = distinct users with at
//!    least one login in the global history before the attempt (notebook:
//!    `len_unique("userid")` of the past table; Keystone: users in history);
//!    `N` in `p(u|L)` is the same global login count as in the likelihoods.
//!
//! # Degenerate inputs (no NaN, no infinity, always `> 0`)
//!
//! The functions accept any `u32` counts, consistent or not:
//! * `p(u|A)` uses `max(|users|, 1)`; `p(u|L)` uses `n_u' = max(n_u, 1)` and
//!   `N' = max(N, n_u')`. A user with no history is therefore scored as if it
//!   had one login (and, all its local likelihoods being 0, both feature
//!   ratios are 4). The notebook never scores such users and Keystone returns
//!   0 and just enrols them; callers should treat `user_logins == 0` as
//!   "enrolment" by policy, the finite score is only a safe fallback.
//! * An unsmoothed `p0` with `N = 0` is 0 (no data), a smoothed one is
//!   `max(c,1)/M` (`M ≥ 1`).
//! * Everything else is finite by construction: the smoothed first known
//!   level has weight > 0 and `p0 ≥ 1/(N+M) > 0`, so `G > 0`; `L` is either
//!   `> 0` or replaced by `G/4`.
//!
//! With all counts zero the score is `4 · 4 · 1 = 16`.
//!
//! # Monotonicity: what the model really guarantees
//!
//! Let `R = G/L` be a feature's ratio, all other inputs fixed.
//! * **True:** while `L > 0`, more local occurrences at any level never raise
//!   `R` (nor the score).
//! * **True:** while `L > 0`, more global occurrences at any level never
//!   lower `R`: a *globally rarer* value is never riskier (Freeman's model
//!   rates values that an attacker is likely to share as risky). When
//!   `L = 0`, `R = 4` regardless of global counts. So "a globally rarer unseen
//!   value never scores less risky than a common one" does **not** hold; the
//!   opposite (non-strict) does.
//! * **False in general:** "a value seen in the user's history never scores
//!   riskier than an unseen one". An unseen value has `R = 4`, a value seen
//!   rarely by this user but common globally can have `R ≫ 4` (e.g. only the
//!   device type seen locally, weight 0.005). **True** under the condition
//!   that, at every known level, the user's frequency is at least the
//!   population's (`c_i^u / n_u ≥ c_i / N`, `c_i ≥ 1`): then `R ≤ 1 < 4`.
//!
//! # What a store must maintain
//!
//! Per feature (IP, UA) and hierarchy level:
//! * global: a counter per value (`c_i`) and the number of distinct values
//!   (`D_i`, incremented when a value's counter goes 0→1, decremented on
//!   1→0 if history is pruned); `D` of the finest level (distinct IPs /
//!   UA strings) is never read and need not be kept;
//! * per user: a counter per value (`c_i^u`).
//!
//! Plus totals: global login count `N`, number of distinct users with at
//! least one login, and per-user login count `n_u`. All are O(1) updates per
//! login (Keystone keeps the same dictionaries in memory). A missing value
//! (failed ASN lookup, unparsable UA) is best not counted as a value and
//! the level reported as `known: false` for such attempts; the notebook
//! drops such rows, Keystone counts `''` as a value.
//! The counts include only successful logins (the notebook filters on
//! `Login Successful`; Keystone records only accepted logins).

/// Weights of the IP hierarchy `[ip, asn, country]` (JSON `hierarchy_weights.ip`).
pub const IP_WEIGHTS: [f64; 3] = [0.6, 0.3, 0.1];
/// `[ip, asn]` weights when the country is unknown (JSON `ip_if_only_asn`).
pub const IP_WEIGHTS_IF_ONLY_ASN: [f64; 2] = [0.6, 0.4];
/// `[ip, country]` weights when the ASN is unknown (JSON `ip_if_only_country`).
pub const IP_WEIGHTS_IF_ONLY_COUNTRY: [f64; 2] = [0.6, 0.4];
/// Weights of the UA hierarchy `[ua_string, browser_name_version,
/// os_name_version, device_type]` (JSON `hierarchy_weights.user_agent`).
pub const UA_WEIGHTS: [f64; 4] = [
    0.5386653840551359,
    0.2680451498625666,
    0.18818295100109536,
    0.0051065150812021525,
];
/// Divisor of the edge case "local likelihood 0 → local := global / 4".
pub const UNSEEN_LOCAL_DIVISOR: f64 = 4.0;

/// What is known about one hierarchy level for this attempt's value.
///
/// All counts are over the history *before* the attempt.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LevelCounts {
    /// `c_i`: logins in the global history (all users) whose value at this
    /// level equals the attempt's value.
    pub global_count: u32,
    /// `D_i`: number of distinct values *of this level* in the global
    /// history (not of the next level: `M` of a level is a suffix sum
    /// `1 + Σ_{j>i} D_j`, so one distinct counter per level suffices).
    /// Only read for levels coarser than the first known one; the finest
    /// level's value is ignored.
    pub global_distinct: u32,
    /// `c_i^u`: logins in this user's history with this value at this level.
    pub local_count: u32,
    /// The attempt has a value at this level (e.g. the ASN lookup succeeded).
    /// Unknown levels are dropped from the hierarchy (weights and `M`).
    pub known: bool,
}

impl LevelCounts {
    /// A known level with the given counts.
    pub const fn known(global_count: u32, global_distinct: u32, local_count: u32) -> Self {
        Self {
            global_count,
            global_distinct,
            local_count,
            known: true,
        }
    }
    /// A level for which the attempt has no value.
    pub const UNKNOWN: Self = Self {
        global_count: 0,
        global_distinct: 0,
        local_count: 0,
        known: false,
    };
}

/// Counts for every level of one feature's hierarchy, finest first:
/// IP `[ip, asn, country]`, UA `[ua_string, browser, os, device_type]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FeatureCounts<const L: usize> {
    /// One entry per hierarchy level, finest first.
    pub levels: [LevelCounts; L],
}

/// History-wide totals (before the attempt).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Totals {
    /// `N`: logins in the global history.
    pub global_logins: u32,
    /// `|users|`: distinct users with at least one login in the global history.
    pub global_users: u32,
    /// `n_u`: logins of the attempt's user.
    pub user_logins: u32,
}

/// Intermediate values of one feature, for explanations and tests.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FeatureLikelihoods {
    /// `G`: hierarchical global likelihood `p(x)`.
    pub global: f64,
    /// `L`: hierarchical local likelihood `p(x|u)` as used, i.e. after the
    /// edge-case replacement `G/4` when it was 0.
    pub local: f64,
    /// The local likelihood was 0 (value unseen at every known level of the
    /// user's history) and was replaced by `G/4`.
    pub local_unseen: bool,
    /// `G / L` (1 when no level is known).
    pub ratio: f64,
}

/// The reference `p0(c, N, M)` (JSON `smoothing."p0(c, N, M)"`), made total:
/// `c > 0`: `(c/N)·(1 − M/(N+M)) = c/(N+M)` (evaluated as the latter; pass
/// `M = 0` when not smoothing; 0 if `N + M = 0`); `c = 0`: `1/(N+M)` if
/// smoothing (0 if `N + M = 0`), else 0.
pub fn p0(c: u32, n: u64, m: u64, smoothing: bool) -> f64 {
    if n + m == 0 {
        0.0
    } else if c > 0 {
        f64::from(c) / (n + m) as f64
    } else if smoothing {
        1.0 / (n + m) as f64
    } else {
        0.0
    }
}

/// Proportional renormalisation of `base` over the known levels (all 0 if
/// none is known).
fn renormalise<const L: usize>(base: [f64; L], known: [bool; L]) -> [f64; L] {
    let total: f64 = (0..L).filter(|&i| known[i]).map(|i| base[i]).sum();
    let mut w = [0.0; L];
    if total > 0.0 {
        for i in 0..L {
            if known[i] {
                w[i] = base[i] / total;
            }
        }
    }
    w
}

/// Effective IP weights `[ip, asn, country]` given which levels are known
/// (0 for unknown levels): the JSON tables when the IP is known
/// (`ip`, `ip_if_only_asn`, `ip_if_only_country`, and Keystone's `ip: 1.0`),
/// proportional renormalisation of [`IP_WEIGHTS`] otherwise.
pub fn ip_weights(known: [bool; 3]) -> [f64; 3] {
    match known {
        [true, true, true] => IP_WEIGHTS,
        [true, true, false] => [IP_WEIGHTS_IF_ONLY_ASN[0], IP_WEIGHTS_IF_ONLY_ASN[1], 0.0],
        [true, false, true] => [
            IP_WEIGHTS_IF_ONLY_COUNTRY[0],
            0.0,
            IP_WEIGHTS_IF_ONLY_COUNTRY[1],
        ],
        [true, false, false] => [1.0, 0.0, 0.0],
        other => renormalise(IP_WEIGHTS, other),
    }
}

/// Effective UA weights given which levels are known: [`UA_WEIGHTS`] when
/// all are known, proportional renormalisation otherwise (the JSON has no
/// UA fallback table).
pub fn ua_weights(known: [bool; 4]) -> [f64; 4] {
    if known == [true; 4] {
        UA_WEIGHTS
    } else {
        renormalise(UA_WEIGHTS, known)
    }
}

fn known_mask<const L: usize>(f: &FeatureCounts<L>) -> [bool; L] {
    f.levels.map(|l| l.known)
}

/// Core: `G`, `L` and `G/L` for one hierarchical feature. `weights` must be
/// finite and > 0 for every known level (guaranteed by [`ip_weights`] /
/// [`ua_weights`]).
fn feature_likelihoods<const L: usize>(
    f: &FeatureCounts<L>,
    weights: &[f64; L],
    totals: &Totals,
) -> FeatureLikelihoods {
    let Some(first) = f.levels.iter().position(|l| l.known) else {
        return FeatureLikelihoods {
            global: 0.0,
            local: 0.0,
            local_unseen: false,
            ratio: 1.0,
        };
    };
    let n = u64::from(totals.global_logins);
    let n_u = u64::from(totals.user_logins);
    // M of the first known level: 1 + Σ distinct counts of coarser known levels.
    let m_first: u64 = 1 + f.levels[first + 1..]
        .iter()
        .filter(|l| l.known)
        .map(|l| u64::from(l.global_distinct))
        .sum::<u64>();

    let mut global = 0.0;
    let mut local = 0.0;
    for (i, level) in f.levels.iter().enumerate() {
        if !level.known {
            continue;
        }
        let w = weights[i];
        // Global: smoothed only at the first (finest known) level.
        let g = if i == first {
            p0(level.global_count, n, m_first, true)
        } else {
            p0(level.global_count, n, 0, false)
        };
        global += w * g;
        // Local: never smoothed.
        local += w * p0(level.local_count, n_u, 0, false);
    }
    let local_unseen = local == 0.0;
    if local_unseen {
        local = global / UNSEEN_LOCAL_DIVISOR;
    }
    let ratio = if local_unseen {
        UNSEEN_LOCAL_DIVISOR
    } else {
        global / local
    };
    FeatureLikelihoods {
        global,
        local,
        local_unseen,
        ratio,
    }
}

/// `G`, `L` and `G/L` of the IP feature (`[ip, asn, country]`).
pub fn ip_likelihoods(ip: &FeatureCounts<3>, totals: &Totals) -> FeatureLikelihoods {
    feature_likelihoods(ip, &ip_weights(known_mask(ip)), totals)
}

/// `G`, `L` and `G/L` of the UA feature (`[ua_string, browser_name_version,
/// os_name_version, device_type]`).
pub fn ua_likelihoods(ua: &FeatureCounts<4>, totals: &Totals) -> FeatureLikelihoods {
    feature_likelihoods(ua, &ua_weights(known_mask(ua)), totals)
}

/// `p(x)/p(x|u)` for the IP feature. Finite and > 0 for any input.
pub fn ip_likelihood_ratio(ip: &FeatureCounts<3>, totals: &Totals) -> f64 {
    ip_likelihoods(ip, totals).ratio
}

/// `p(x)/p(x|u)` for the UA feature. Finite and > 0 for any input.
pub fn ua_likelihood_ratio(ua: &FeatureCounts<4>, totals: &Totals) -> f64 {
    ua_likelihoods(ua, totals).ratio
}

/// `p(u|A)/p(u|L) = (1/|users|) / (n_u/N)`, with `|users|, n_u ≥ 1` and
/// `N ≥ n_u` enforced (see the module docs on degenerate inputs).
pub fn user_prior_ratio(totals: &Totals) -> f64 {
    let users = f64::from(totals.global_users.max(1));
    let n_u = totals.user_logins.max(1);
    let n = f64::from(totals.global_logins.max(n_u));
    let p_u_given_a = 1.0 / users;
    let p_u_given_l = f64::from(n_u) / n;
    p_u_given_a / p_u_given_l
}

/// The full Freeman score `Π_k G_k/L_k · p(u|A)/p(u|L)` over IP and UA.
/// Lower = more legitimate; finite and > 0 for any input.
pub fn score(ip: &FeatureCounts<3>, ua: &FeatureCounts<4>, totals: &Totals) -> f64 {
    // Same order of operations as the notebook: features first, then prior.
    let mut s = 1.0;
    s *= ip_likelihood_ratio(ip, totals);
    s *= ua_likelihood_ratio(ua, totals);
    s * user_prior_ratio(totals)
}

/// Monotone map of a score in `[0, ∞]` to `[0, 1]`: `s / (1 + s)`.
///
/// Score 1 (likelihood ratio even) ↦ 0.5; the Keystone plugin's raw-score
/// thresholds 0.4 (step-up) and 0.9 (deny) map to 2/7 ≈ 0.286 and
/// 9/19 ≈ 0.474. Non-decreasing everywhere (strictly increasing until it
/// rounds to 1.0 near s ≈ 1e16). Inputs outside the model's range are
/// clamped: `s ≤ 0` ↦ 0, `+∞` ↦ 1, NaN ↦ 1 (fail closed). Note that typical
/// legitimate scores are 1e-5..1e-2, so a downstream model may prefer
/// `ln(score)` as a feature; this map is linear there.
pub fn risk_01(score: f64) -> f64 {
    if score.is_nan() || score == f64::INFINITY {
        1.0
    } else if score <= 0.0 {
        0.0
    } else {
        score / (1.0 + score)
    }
}

/// The bound of [`log_lr`]: six orders of magnitude either way.
pub const LOG_LR_BOUND: f64 = 6.0;

/// `log10(score)` clamped to `[-LOG_LR_BOUND, LOG_LR_BOUND]`: a monotone,
/// bounded form of the likelihood ratio for a linear model. `score ≤ 0` ↦
/// the lower bound, `+∞` and NaN ↦ the upper bound (fail closed).
pub fn log_lr(score: f64) -> f64 {
    if score.is_nan() {
        LOG_LR_BOUND
    } else if score <= 0.0 {
        -LOG_LR_BOUND
    } else {
        score.log10().clamp(-LOG_LR_BOUND, LOG_LR_BOUND)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    // ------------------------------------------------------------------
    // Tiny in-memory reference: raw login tuples → counts.
    // ------------------------------------------------------------------

    /// One recorded login: user, IP levels `[ip, asn, country]`, UA levels
    /// `[ua, browser, os, device]`; `None` = value missing.
    #[derive(Clone, Debug)]
    struct Login {
        user: String,
        ip: [Option<String>; 3],
        ua: [Option<String>; 4],
    }

    /// Records logins as tuples and derives the counts the module consumes.
    #[derive(Clone, Debug, Default)]
    struct History {
        logins: Vec<Login>,
    }

    fn opt<const L: usize>(v: [&str; L]) -> [Option<String>; L] {
        v.map(|s| {
            if s.is_empty() {
                None
            } else {
                Some(s.to_string())
            }
        })
    }

    impl History {
        /// Record a login; `""` marks a missing value.
        fn add(&mut self, user: &str, ip: [&str; 3], ua: [&str; 4]) {
            self.logins.push(Login {
                user: user.to_string(),
                ip: opt(ip),
                ua: opt(ua),
            });
        }

        fn level_counts<const L: usize>(
            &self,
            user: &str,
            attempt: &[Option<String>; L],
            pick: impl Fn(&Login) -> &[Option<String>; L],
        ) -> FeatureCounts<L> {
            let levels = std::array::from_fn(|i| {
                let distinct: HashSet<&String> = self
                    .logins
                    .iter()
                    .filter_map(|l| pick(l)[i].as_ref())
                    .collect();
                match &attempt[i] {
                    None => LevelCounts::UNKNOWN,
                    Some(v) => LevelCounts {
                        global_count: self
                            .logins
                            .iter()
                            .filter(|l| pick(l)[i].as_ref() == Some(v))
                            .count() as u32,
                        global_distinct: distinct.len() as u32,
                        local_count: self
                            .logins
                            .iter()
                            .filter(|l| l.user == user && pick(l)[i].as_ref() == Some(v))
                            .count() as u32,
                        known: true,
                    },
                }
            });
            FeatureCounts { levels }
        }

        fn ip_counts(&self, user: &str, ip: [&str; 3]) -> FeatureCounts<3> {
            self.level_counts(user, &opt(ip), |l| &l.ip)
        }

        fn ua_counts(&self, user: &str, ua: [&str; 4]) -> FeatureCounts<4> {
            self.level_counts(user, &opt(ua), |l| &l.ua)
        }

        fn totals(&self, user: &str) -> Totals {
            let users: HashSet<&String> = self.logins.iter().map(|l| &l.user).collect();
            Totals {
                global_logins: self.logins.len() as u32,
                global_users: users.len() as u32,
                user_logins: self.logins.iter().filter(|l| l.user == user).count() as u32,
            }
        }

        fn score(&self, user: &str, ip: [&str; 3], ua: [&str; 4]) -> f64 {
            score(
                &self.ip_counts(user, ip),
                &self.ua_counts(user, ua),
                &self.totals(user),
            )
        }

        /// Independent, literal evaluation of the model straight from the
        /// login list (fractions by filtering), for cross-checking the
        /// counts plumbing. Only for histories without missing values and
        /// users with history.
        fn direct_score(&self, user: &str, ip: [&str; 3], ua: [&str; 4]) -> f64 {
            fn feature<const L: usize>(
                h: &History,
                user: &str,
                x: [&str; L],
                w: [f64; L],
                pick: impl Fn(&Login) -> &[Option<String>; L],
            ) -> f64 {
                let all: Vec<&Login> = h.logins.iter().collect();
                let mine: Vec<&Login> = all.iter().copied().filter(|l| l.user == user).collect();
                let frac = |set: &[&Login], i: usize| {
                    set.iter()
                        .filter(|l| pick(l)[i].as_deref() == Some(x[i]))
                        .count() as f64
                };
                let n = all.len() as f64;
                // M_0 = Σ_{j≥1} |distinct level-j values| + 1
                let m0: f64 = 1.0
                    + (1..L)
                        .map(|j| {
                            all.iter()
                                .filter_map(|l| pick(l)[j].clone())
                                .collect::<HashSet<_>>()
                                .len() as f64
                        })
                        .sum::<f64>();
                let mut g = 0.0;
                let mut loc = 0.0;
                for (i, wi) in w.iter().enumerate() {
                    let c = frac(&all, i);
                    g += wi * if i == 0 { c.max(1.0) / (n + m0) } else { c / n };
                    loc += wi * frac(&mine, i) / mine.len() as f64;
                }
                if loc == 0.0 { 4.0 } else { g / loc }
            }
            let t = self.totals(user);
            feature(self, user, ip, IP_WEIGHTS, |l| &l.ip)
                * feature(self, user, ua, UA_WEIGHTS, |l| &l.ua)
                * (1.0 / t.global_users as f64)
                / (t.user_logins as f64 / t.global_logins as f64)
        }
    }

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * a.abs().max(b.abs())
    }

    // ------------------------------------------------------------------
    // Hand-computed example
    // ------------------------------------------------------------------
    //
    // Global history (6 logins, 3 users), before the attempt:
    //
    //  #  user  ip       asn  cc | ua  browser     os          device
    //  1  A     1.1.1.1  AS1  NO | U1  Chrome 100  Windows 10  desktop
    //  2  A     1.1.1.1  AS1  NO | U1  Chrome 100  Windows 10  desktop
    //  3  A     2.2.2.2  AS2  NO | U2  Safari 15   iOS 15      mobile
    //  4  B     3.3.3.3  AS1  NO | U1  Chrome 100  Windows 10  desktop
    //  5  B     4.4.4.4  AS3  DE | U3  Firefox 99  Linux       desktop
    //  6  C     3.3.3.3  AS1  NO | U2  Safari 15   iOS 15      mobile
    //
    // N = 6, |users| = 3, n_A = 3.
    // Distinct: ASN {AS1,AS2,AS3} = 3, country {NO,DE} = 2,
    //           browser 3, os 3, device {desktop,mobile} = 2.
    // M_ip = 3 + 2 + 1 = 6;  M_ua = 3 + 3 + 2 + 1 = 9.
    //
    // Attempt 1: user A from 3.3.3.3/AS1/NO with U3/Firefox 99/Linux/desktop.
    //   IP global: ip  c=2 smoothed: (2/6)(1-6/12) = 2/12 = 1/6
    //              asn c=4: 4/6 = 2/3;  cc c=5: 5/6
    //              G_ip = 0.6·1/6 + 0.3·2/3 + 0.1·5/6 = 0.1 + 0.2 + 1/12 = 23/60
    //   IP local (A: 1.1.1.1×2, 2.2.2.2; AS1×2, AS2; NO×3):
    //              ip 0/3, asn 2/3, cc 3/3
    //              L_ip = 0 + 0.3·2/3 + 0.1·1 = 0.3
    //   R_ip = (23/60)/0.3 = 23/18 ≈ 1.277778
    //   UA global: U3 c=1 smoothed: 1/(6+9) = 1/15; Firefox 1/6; Linux 1/6;
    //              desktop 4/6
    //              G_ua = w0/15 + w1/6 + w2/6 + w3·2/3 ≈ 0.1153533858
    //   UA local (A: U1×2, U2; desktop×2, mobile): only device seen, 2/3
    //              L_ua = w3·2/3 ≈ 0.0034043434
    //   R_ua = G_ua/L_ua ≈ 33.88418  (> 4: seen-at-a-coarse-level is riskier
    //                                 than completely unseen — see module docs)
    //   p(u|A)/p(u|L) = (1/3)/(3/6) = 2/3
    //   score = 23/18 · R_ua · 2/3 ≈ 28.8643019016
    //
    // Attempt 2: user C from 4.4.4.4/AS3/DE with U1/Chrome 100/Windows 10/desktop.
    //   C's history (3.3.3.3/AS1/NO, U2/Safari/iOS/mobile) shares no value at
    //   any level: L_ip = L_ua = 0 → both ratios 4 (edge case).
    //   G_ip = 0.6·1/12 + 0.3·1/6 + 0.1·1/6 = 7/60 (irrelevant for R).
    //   p(u|A)/p(u|L) = (1/3)/(1/6) = 2;  score = 4·4·2 = 32.
    //
    // Attempt 3: user A from 1.1.1.1/AS1/NO with U1/Chrome 100/Windows 10/desktop.
    //   G_ip = 0.6·2/12 + 0.3·4/6 + 0.1·5/6 = 23/60
    //   L_ip = 0.6·2/3 + 0.3·2/3 + 0.1·3/3 = 0.7        R_ip = 23/42
    //   G_ua = w0·3/15 + w1·3/6 + w2·3/6 + w3·4/6;  L_ua = (w0+w1+w2+w3)·2/3
    //          ≈ 0.3392514706 / 0.6666666667;  R_ua ≈ 0.5088772059
    //   score = 23/42 · G_ua/L_ua · 2/3  ≈ 0.1857805672  (familiar → low)

    fn example_history() -> History {
        let mut h = History::default();
        let u1 = ["U1", "Chrome 100", "Windows 10", "desktop"];
        let u2 = ["U2", "Safari 15", "iOS 15", "mobile"];
        let u3 = ["U3", "Firefox 99", "Linux", "desktop"];
        h.add("A", ["1.1.1.1", "AS1", "NO"], u1);
        h.add("A", ["1.1.1.1", "AS1", "NO"], u1);
        h.add("A", ["2.2.2.2", "AS2", "NO"], u2);
        h.add("B", ["3.3.3.3", "AS1", "NO"], u1);
        h.add("B", ["4.4.4.4", "AS3", "DE"], u3);
        h.add("C", ["3.3.3.3", "AS1", "NO"], u2);
        h
    }

    #[test]
    fn hand_computed_example_attempt_1() {
        let h = example_history();
        let ip = h.ip_counts("A", ["3.3.3.3", "AS1", "NO"]);
        let ua = h.ua_counts("A", ["U3", "Firefox 99", "Linux", "desktop"]);
        let t = h.totals("A");
        assert_eq!(
            t,
            Totals {
                global_logins: 6,
                global_users: 3,
                user_logins: 3
            }
        );
        assert_eq!(ip.levels[0], LevelCounts::known(2, 4, 0));
        assert_eq!(ip.levels[1], LevelCounts::known(4, 3, 2));
        assert_eq!(ip.levels[2], LevelCounts::known(5, 2, 3));

        let [w0, w1, w2, w3] = UA_WEIGHTS;
        let ipl = ip_likelihoods(&ip, &t);
        assert!(close(ipl.global, 23.0 / 60.0, 1e-12));
        assert!(close(ipl.local, 0.3, 1e-12));
        assert!(close(ipl.ratio, 23.0 / 18.0, 1e-12));

        let g_ua = w0 / 15.0 + w1 / 6.0 + w2 / 6.0 + w3 * 2.0 / 3.0;
        let l_ua = w3 * 2.0 / 3.0;
        let ual = ua_likelihoods(&ua, &t);
        assert!(close(ual.global, g_ua, 1e-12));
        assert!(close(ual.global, 0.11535338580175417, 1e-12));
        assert!(close(ual.local, l_ua, 1e-12));
        assert!(close(ual.ratio, 33.88418049318623, 1e-12));
        assert!(!ual.local_unseen);

        assert!(close(user_prior_ratio(&t), 2.0 / 3.0, 1e-12));
        let s = score(&ip, &ua, &t);
        assert!(close(s, 23.0 / 18.0 * (g_ua / l_ua) * 2.0 / 3.0, 1e-12));
        assert!(close(s, 28.864301901603078, 1e-12));
        assert!(close(
            s,
            h.direct_score(
                "A",
                ["3.3.3.3", "AS1", "NO"],
                ["U3", "Firefox 99", "Linux", "desktop"]
            ),
            1e-12
        ));
    }

    #[test]
    fn hand_computed_example_attempt_2_fully_unseen() {
        let h = example_history();
        let ip = h.ip_counts("C", ["4.4.4.4", "AS3", "DE"]);
        let ua = h.ua_counts("C", ["U1", "Chrome 100", "Windows 10", "desktop"]);
        let t = h.totals("C");
        let ipl = ip_likelihoods(&ip, &t);
        assert!(ipl.local_unseen);
        assert!(close(ipl.global, 7.0 / 60.0, 1e-12));
        assert!(close(ipl.local, 7.0 / 240.0, 1e-12));
        assert_eq!(ipl.ratio, 4.0);
        assert_eq!(ua_likelihood_ratio(&ua, &t), 4.0);
        assert!(close(user_prior_ratio(&t), 2.0, 1e-12));
        assert!(close(score(&ip, &ua, &t), 32.0, 1e-12));
    }

    #[test]
    fn hand_computed_example_attempt_3_familiar() {
        let h = example_history();
        let ipx = ["1.1.1.1", "AS1", "NO"];
        let uax = ["U1", "Chrome 100", "Windows 10", "desktop"];
        let [w0, w1, w2, w3] = UA_WEIGHTS;
        let g_ua = w0 * 3.0 / 15.0 + w1 * 3.0 / 6.0 + w2 * 3.0 / 6.0 + w3 * 4.0 / 6.0;
        let l_ua = (w0 + w1 + w2 + w3) * 2.0 / 3.0;
        let expected = 23.0 / 42.0 * (g_ua / l_ua) * 2.0 / 3.0;
        let s = h.score("A", ipx, uax);
        assert!(close(s, expected, 1e-12), "{s} vs {expected}");
        assert!(close(s, 0.1857805672499406, 1e-12), "{s}");
        assert!(close(s, h.direct_score("A", ipx, uax), 1e-12));
    }

    // ------------------------------------------------------------------
    // Constants, weights, p0, unknown levels, degenerate inputs
    // ------------------------------------------------------------------

    /// Checks the constants against the reference JSON when it is reachable
    /// (it lives outside the crate; skipped if absent).
    #[test]
    fn constants_match_reference_json() {
        let rel = "data/rba-reference-vectors/freeman_wiefling_reference.json";
        let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let candidates = [
            manifest.join("../shared").join(rel),
            manifest.join("shared").join(rel),
            std::path::Path::new("/work/shared").join(rel),
        ];
        let Some(text) = candidates
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
        else {
            eprintln!("reference JSON not found; skipping");
            return;
        };
        let j: serde_json::Value = serde_json::from_str(&text).unwrap();
        let hw = &j["hierarchy_weights"];
        let f = |v: &serde_json::Value| v.as_f64().unwrap();
        assert_eq!(
            IP_WEIGHTS,
            [
                f(&hw["ip"]["ip"]),
                f(&hw["ip"]["asn"]),
                f(&hw["ip"]["country"])
            ]
        );
        assert_eq!(
            IP_WEIGHTS_IF_ONLY_ASN,
            [
                f(&hw["ip_if_only_asn"]["ip"]),
                f(&hw["ip_if_only_asn"]["asn"])
            ]
        );
        assert_eq!(
            IP_WEIGHTS_IF_ONLY_COUNTRY,
            [
                f(&hw["ip_if_only_country"]["ip"]),
                f(&hw["ip_if_only_country"]["country"])
            ]
        );
        let ua = &hw["user_agent"];
        assert_eq!(
            UA_WEIGHTS,
            [
                f(&ua["ua_string"]),
                f(&ua["browser_name_version"]),
                f(&ua["os_name_version"]),
                f(&ua["device_type"])
            ]
        );
        assert_eq!(f(&j["feature_exponent_weights"]["ip"]), 1.0);
        assert_eq!(f(&j["feature_exponent_weights"]["user_agent"]), 1.0);
    }

    #[test]
    fn weights_sum_to_one_for_every_known_pattern() {
        for mask in 1u8..8 {
            let k = [mask & 1 != 0, mask & 2 != 0, mask & 4 != 0];
            let w = ip_weights(k);
            assert!(close(w.iter().sum(), 1.0, 1e-12), "{k:?}");
            for i in 0..3 {
                assert_eq!(w[i] > 0.0, k[i], "{k:?}");
            }
        }
        for mask in 1u8..16 {
            let k = std::array::from_fn(|i| mask & (1 << i) != 0);
            let w = ua_weights(k);
            assert!(close(w.iter().sum(), 1.0, 1e-12), "{k:?}");
            for i in 0..4 {
                assert_eq!(w[i] > 0.0, k[i], "{k:?}");
            }
        }
        assert_eq!(ip_weights([true, true, false]), [0.6, 0.4, 0.0]);
        assert_eq!(ip_weights([true, false, true]), [0.6, 0.0, 0.4]);
        assert_eq!(ip_weights([true, false, false]), [1.0, 0.0, 0.0]);
        assert_eq!(ip_weights([false; 3]), [0.0; 3]);
    }

    #[test]
    fn p0_reference_cases() {
        assert_eq!(p0(0, 10, 3, true), 1.0 / 13.0);
        assert_eq!(p0(0, 10, 3, false), 0.0);
        assert!(close(p0(4, 10, 3, true), 4.0 / 13.0, 1e-15));
        assert_eq!(p0(4, 10, 0, false), 0.4);
        assert_eq!(p0(4, 0, 0, false), 0.0);
        assert_eq!(p0(4, 0, 2, true), 2.0);
        assert_eq!(p0(0, 0, 0, true), 0.0);
    }

    #[test]
    fn unknown_asn_uses_two_level_weights_and_excludes_asn_from_m() {
        let mut h = example_history();
        // Attempt without ASN: hierarchy ip → country, weights 0.6/0.4,
        // M = |countries| + 1 = 3.
        let ip = h.ip_counts("A", ["3.3.3.3", "", "NO"]);
        let t = h.totals("A");
        assert!(!ip.levels[1].known);
        let l = ip_likelihoods(&ip, &t);
        assert!(close(l.global, 0.6 * 2.0 / 9.0 + 0.4 * 5.0 / 6.0, 1e-12));
        assert!(close(l.local, 0.4 * 1.0, 1e-12));
        // Unknown finest level: ASN becomes the smoothed level.
        h.add(
            "B",
            ["", "AS9", "NO"],
            ["U1", "Chrome 100", "Windows 10", "desktop"],
        );
        let ip = h.ip_counts("A", ["", "AS9", "NO"]);
        let t = h.totals("A");
        let l = ip_likelihoods(&ip, &t);
        // c(AS9)=1, N=7, M = |countries| + 1 = 3 → 1/10; NO: 6/7
        assert!(close(l.global, 0.75 * 0.1 + 0.25 * 6.0 / 7.0, 1e-12));
        assert!(close(l.local, 0.25 * 1.0, 1e-12));
    }

    #[test]
    fn no_known_level_is_neutral() {
        let f = FeatureCounts {
            levels: [LevelCounts::UNKNOWN; 4],
        };
        let t = Totals {
            global_logins: 10,
            global_users: 2,
            user_logins: 5,
        };
        assert_eq!(ua_likelihood_ratio(&f, &t), 1.0);
    }

    #[test]
    fn all_zero_counts_score_sixteen() {
        let ip = FeatureCounts {
            levels: [LevelCounts::known(0, 0, 0); 3],
        };
        let ua = FeatureCounts {
            levels: [LevelCounts::known(0, 0, 0); 4],
        };
        let t = Totals::default();
        assert_eq!(ip_likelihood_ratio(&ip, &t), 4.0);
        assert_eq!(ua_likelihood_ratio(&ua, &t), 4.0);
        assert_eq!(user_prior_ratio(&t), 1.0);
        assert_eq!(score(&ip, &ua, &t), 16.0);
        // Default (all unknown) counts: neutral features.
        let ip = FeatureCounts {
            levels: [LevelCounts::default(); 3],
        };
        let ua = FeatureCounts {
            levels: [LevelCounts::default(); 4],
        };
        assert_eq!(score(&ip, &ua, &t), 1.0);
    }

    #[test]
    fn new_user_is_scored_as_one_login() {
        let mut h = example_history();
        h.add(
            "B",
            ["3.3.3.3", "AS1", "NO"],
            ["U1", "Chrome 100", "Windows 10", "desktop"],
        );
        let ipx = ["3.3.3.3", "AS1", "NO"];
        let uax = ["U1", "Chrome 100", "Windows 10", "desktop"];
        let t = h.totals("Z");
        assert_eq!(t.user_logins, 0);
        // 4 · 4 · (1/3)/(1/7)
        assert!(close(h.score("Z", ipx, uax), 16.0 * 7.0 / 3.0, 1e-12));
    }

    #[test]
    fn extreme_counts_stay_finite() {
        let big = LevelCounts::known(u32::MAX, u32::MAX, u32::MAX);
        let tiny = LevelCounts::known(0, u32::MAX, 1);
        let totals = [
            Totals {
                global_logins: 0,
                global_users: 0,
                user_logins: u32::MAX,
            },
            Totals {
                global_logins: u32::MAX,
                global_users: u32::MAX,
                user_logins: u32::MAX,
            },
            Totals {
                global_logins: u32::MAX,
                global_users: u32::MAX,
                user_logins: 1,
            },
            Totals {
                global_logins: 1,
                global_users: u32::MAX,
                user_logins: 0,
            },
        ];
        for t in &totals {
            for a in [big, tiny] {
                for b in [big, tiny] {
                    let ip = FeatureCounts { levels: [a, b, b] };
                    let ua = FeatureCounts {
                        levels: [b, a, a, b],
                    };
                    let s = score(&ip, &ua, t);
                    assert!(s.is_finite() && s > 0.0, "{s} {t:?}");
                }
            }
        }
    }

    #[test]
    fn seen_can_be_riskier_than_unseen_counterexample() {
        // A user with 1000 logins, once from a carrier-NAT IP that carries
        // 10% of all logins: the seen IP scores far above the unseen-value
        // ratio of 4. So "seen never riskier than unseen" is not a property
        // of this model (see module docs); it is not asserted.
        let t = Totals {
            global_logins: 100_000,
            global_users: 5_000,
            user_logins: 1000,
        };
        let seen = FeatureCounts {
            levels: [
                LevelCounts::known(10_000, 0, 1),
                LevelCounts::known(20_000, 500, 1),
                LevelCounts::known(90_000, 50, 1),
            ],
        };
        let mut unseen = seen;
        for l in &mut unseen.levels {
            l.local_count = 0;
        }
        assert!(ip_likelihood_ratio(&seen, &t) > 100.0);
        assert_eq!(ip_likelihood_ratio(&unseen, &t), 4.0);
    }

    #[test]
    fn risk_01_values() {
        assert_eq!(risk_01(0.0), 0.0);
        assert_eq!(risk_01(1.0), 0.5);
        assert_eq!(risk_01(-3.0), 0.0);
        assert_eq!(risk_01(f64::INFINITY), 1.0);
        assert_eq!(risk_01(f64::NAN), 1.0);
        assert!(close(risk_01(0.4), 2.0 / 7.0, 1e-15));
        assert!(close(risk_01(0.9), 9.0 / 19.0, 1e-15));
    }

    #[test]
    fn log_lr_values() {
        assert_eq!(log_lr(1.0), 0.0);
        assert!(close(log_lr(1e-3), -3.0, 1e-12));
        assert_eq!(log_lr(1e-30), -LOG_LR_BOUND);
        assert_eq!(log_lr(0.0), -LOG_LR_BOUND);
        assert_eq!(log_lr(f64::INFINITY), LOG_LR_BOUND);
        assert_eq!(log_lr(f64::NAN), LOG_LR_BOUND);
    }

    // ------------------------------------------------------------------
    // Property tests
    // ------------------------------------------------------------------

    fn any_level() -> impl Strategy<Value = LevelCounts> {
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<bool>()).prop_map(|(g, d, l, k)| {
            LevelCounts {
                global_count: g,
                global_distinct: d,
                local_count: l,
                known: k,
            }
        })
    }

    /// Mix of tiny and full-range values, so zeros and edge cases are hit often.
    fn small_or_any() -> impl Strategy<Value = u32> {
        prop_oneof![0u32..4, any::<u32>()]
    }

    fn mixed_level() -> impl Strategy<Value = LevelCounts> {
        (
            small_or_any(),
            small_or_any(),
            small_or_any(),
            any::<bool>(),
        )
            .prop_map(|(g, d, l, k)| LevelCounts {
                global_count: g,
                global_distinct: d,
                local_count: l,
                known: k,
            })
    }

    fn any_totals() -> impl Strategy<Value = Totals> {
        (small_or_any(), small_or_any(), small_or_any()).prop_map(|(n, u, nu)| Totals {
            global_logins: n,
            global_users: u,
            user_logins: nu,
        })
    }

    /// Consistent counts: local ≤ global ≤ N, n_u ≤ N, all levels known.
    fn consistent<const L: usize>() -> impl Strategy<Value = (FeatureCounts<L>, Totals)> {
        (1u32..10_000, 1u32..1000).prop_flat_map(|(n, users)| {
            (0..=n).prop_flat_map(move |n_u| {
                let level = (0..=n, 1u32..5000).prop_flat_map(move |(c, d)| {
                    (0..=c.min(n_u)).prop_map(move |l| LevelCounts::known(c, d, l))
                });
                proptest::array::uniform::<_, L>(level).prop_map(move |levels| {
                    (
                        FeatureCounts { levels },
                        Totals {
                            global_logins: n,
                            global_users: users,
                            user_logins: n_u,
                        },
                    )
                })
            })
        })
    }

    fn ratio<const L: usize>(f: &FeatureCounts<L>, t: &Totals) -> FeatureLikelihoods {
        // Dispatch on L to the public functions.
        if L == 3 {
            let f3 = FeatureCounts {
                levels: std::array::from_fn(|i| f.levels[i]),
            };
            ip_likelihoods(&f3, t)
        } else {
            let f4 = FeatureCounts {
                levels: std::array::from_fn(|i| f.levels[i]),
            };
            ua_likelihoods(&f4, t)
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn finite_and_positive_for_any_counts(
            ip in proptest::array::uniform3(any_level()),
            ua in proptest::array::uniform4(any_level()),
            ip2 in proptest::array::uniform3(mixed_level()),
            ua2 in proptest::array::uniform4(mixed_level()),
            t in any_totals(),
        ) {
            for (ip, ua) in [(ip, ua), (ip2, ua2)] {
                let ip = FeatureCounts { levels: ip };
                let ua = FeatureCounts { levels: ua };
                for r in [ip_likelihood_ratio(&ip, &t), ua_likelihood_ratio(&ua, &t), user_prior_ratio(&t)] {
                    prop_assert!(r.is_finite() && r > 0.0, "{r}");
                }
                let s = score(&ip, &ua, &t);
                prop_assert!(s.is_finite() && s > 0.0, "{s}");
                let r = risk_01(s);
                prop_assert!((0.0..=1.0).contains(&r));
            }
        }

        #[test]
        fn p0_matches_literal_reference_form_when_n_dominates(
            c in 1u32.., n in 1u64..=u64::from(u32::MAX), m_frac in 0.0f64..=1.0,
        ) {
            let m = (n as f64 * m_frac) as u64; // M ≤ N, the normal regime
            let (cf, nf, mf) = (f64::from(c), n as f64, m as f64);
            let literal = cf / nf * (1.0 - mf / (nf + mf));
            prop_assert!(close(p0(c, n, m, true), literal, 1e-14));
            prop_assert_eq!(p0(c, n, 0, false), cf / nf);
        }

        /// More local occurrences at any level never raise the ratio (or the
        /// score) while the local likelihood is non-zero.
        #[test]
        fn more_local_occurrences_never_raise_ratio(
            (f, t) in consistent::<4>(), i in 0usize..4, extra in 1u32..100,
        ) {
            let before = ratio(&f, &t);
            let mut g = f;
            g.levels[i].local_count += extra;
            let after = ratio(&g, &t);
            if !before.local_unseen {
                prop_assert!(after.ratio <= before.ratio * (1.0 + 1e-12), "{before:?} {after:?}");
            } else if t.user_logins > 0 {
                // From "unseen" (ratio 4) anything may happen: not monotone.
                prop_assert!(!after.local_unseen);
            }
        }

        #[test]
        fn more_local_occurrences_never_raise_score_ip(
            (f, t) in consistent::<3>(), i in 0usize..3, extra in 1u32..100,
        ) {
            let ua = FeatureCounts { levels: [LevelCounts::known(1, 1, 1); 4] };
            let before = ip_likelihoods(&f, &t);
            let mut g = f;
            g.levels[i].local_count += extra;
            if !before.local_unseen {
                prop_assert!(score(&g, &ua, &t) <= score(&f, &ua, &t) * (1.0 + 1e-12));
            }
        }

        /// A globally rarer value never scores riskier (local counts fixed,
        /// L > 0); with L = 0 global counts do not matter at all (ratio 4).
        #[test]
        fn globally_rarer_never_riskier(
            (f, t) in consistent::<4>(), i in 0usize..4, extra in 1u32..100,
        ) {
            let before = ratio(&f, &t);
            let mut g = f;
            g.levels[i].global_count += extra;
            let after = ratio(&g, &t);
            prop_assert!(after.ratio >= before.ratio * (1.0 - 1e-12), "{before:?} {after:?}");
            if before.local_unseen {
                prop_assert_eq!(before.ratio, 4.0);
                prop_assert_eq!(after.ratio, 4.0);
            }
        }

        /// Value never seen at any level of the user's history: ratio exactly 4.
        #[test]
        fn fully_unseen_is_exactly_four((f, t) in consistent::<3>()) {
            let mut g = f;
            for l in &mut g.levels { l.local_count = 0; }
            prop_assert_eq!(ip_likelihood_ratio(&g, &t), 4.0);
        }

        /// Seen at least as often by the user as by the population at every
        /// level ⇒ ratio ≤ 1 < 4 (never riskier than unseen).
        #[test]
        fn user_frequency_at_least_population_is_never_riskier_than_unseen(
            n in 1u32..100_000, nu_frac in 0.0f64..1.0, cs in proptest::array::uniform3(0.0f64..1.0),
            ds in proptest::array::uniform3(0u32..1000),
        ) {
            let n_u = ((f64::from(n) * nu_frac) as u32).max(1);
            let t = Totals { global_logins: n, global_users: 7, user_logins: n_u };
            let levels = std::array::from_fn(|i| {
                let c = ((f64::from(n) * cs[i]) as u32).clamp(1, n);
                // l ≥ c·n_u/N (ceil), ≤ n_u
                let l = ((u64::from(c) * u64::from(n_u)).div_ceil(u64::from(n))) as u32;
                LevelCounts::known(c, ds[i], l)
            });
            let f = FeatureCounts { levels };
            let r = ip_likelihood_ratio(&f, &t);
            prop_assert!(r <= 1.0 + 1e-12, "{r} {f:?}");
            let mut unseen = f;
            for l in &mut unseen.levels { l.local_count = 0; }
            prop_assert!(r < ip_likelihood_ratio(&unseen, &t));
        }

        #[test]
        fn risk_01_is_monotone(a in 0.0f64..1e12, b in 0.0f64..1e12) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(risk_01(lo) <= risk_01(hi));
            prop_assert!((0.0..1.0).contains(&risk_01(lo)));
        }

        #[test]
        fn log_lr_is_monotone_and_bounded(a in 0.0f64..1e300, b in 0.0f64..1e300) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(log_lr(lo) <= log_lr(hi));
            prop_assert!(log_lr(lo).abs() <= LOG_LR_BOUND);
        }

        /// Counts derived from raw login lists agree with a literal,
        /// list-filtering evaluation of the model.
        #[test]
        fn history_counts_match_direct_evaluation(
            logins in proptest::collection::vec((0u8..4, proptest::array::uniform3(0u8..4), proptest::array::uniform4(0u8..3)), 1..40),
            attempt_ip in proptest::array::uniform3(0u8..5),
            attempt_ua in proptest::array::uniform4(0u8..4),
            user in any::<proptest::sample::Index>(),
        ) {
            let mut h = History::default();
            let s = |prefix: &str, v: u8| format!("{prefix}{v}");
            for (u, ip, ua) in &logins {
                let ip = [s("ip", ip[0]), s("as", ip[1]), s("cc", ip[2])];
                let ua = [s("ua", ua[0]), s("br", ua[1]), s("os", ua[2]), s("dt", ua[3])];
                h.add(&s("u", *u), ip.each_ref().map(|x| x.as_str()), ua.each_ref().map(|x| x.as_str()));
            }
            // Score a user that has history (the notebook skips the others).
            let user = s("u", logins[user.index(logins.len())].0);
            let ip = [s("ip", attempt_ip[0]), s("as", attempt_ip[1]), s("cc", attempt_ip[2])];
            let ua = [s("ua", attempt_ua[0]), s("br", attempt_ua[1]), s("os", attempt_ua[2]), s("dt", attempt_ua[3])];
            let ip = ip.each_ref().map(|x| x.as_str());
            let ua = ua.each_ref().map(|x| x.as_str());
            let a = h.score(&user, ip, ua);
            let b = h.direct_score(&user, ip, ua);
            prop_assert!(close(a, b, 1e-12), "{a} vs {b}");
        }
    }
}
