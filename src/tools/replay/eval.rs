//! Detection quality in the published protocol (Wiefling et al., ACM TOPS
//! 2022, doi:10.1145/3546069): for each attacker model and target block rate
//! (true-positive rate) the score threshold that blocks that share of the
//! attacker's attempts, and the re-authentication rate (false-positive rate)
//! of legitimate logins at that threshold, overall and by the user's
//! login-history size; plus the ROC AUC per attacker model.
//!
//! Pure: scores in, figures out. A higher score is riskier for every scorer;
//! a login is challenged ("blocked" for an attacker, "re-authenticated" for a
//! legitimate user) when its score is at or above the threshold.

use serde::Serialize;

/// The target block rates of the published evaluation.
pub const TARGET_BLOCK_RATES: [f64; 3] = [0.99, 0.995, 0.999];

/// Login-history size buckets of the published evaluation (inclusive).
pub const HISTORY_BUCKETS: [(u32, u32, &str); 4] = [
    (1, 4, "1-4"),
    (5, 12, "5-12"),
    (13, 39, "13-39"),
    (40, u32::MAX, "40+"),
];

/// The bucket of a login-history size; `None` for 0 (not evaluated).
pub fn bucket(history: u32) -> Option<u8> {
    HISTORY_BUCKETS
        .iter()
        .position(|(lo, hi, _)| (*lo..=*hi).contains(&history))
        .and_then(|i| u8::try_from(i).ok())
}

/// Scores of one scorer, split by who made the attempt.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    /// Legitimate logins: (score, history bucket).
    pub legit: Vec<(f64, u8)>,
    /// Attacker attempts per label id (index into the label list).
    pub attack: Vec<Vec<f64>>,
}

impl Samples {
    /// Records an attacker attempt of label `label` (1-based label ids are
    /// stored at `label - 1`; id 0 is legitimate).
    pub fn push(&mut self, label: usize, score: f64, bucket: u8) {
        if label == 0 {
            self.legit.push((score, bucket));
        } else {
            if self.attack.len() < label {
                self.attack.resize_with(label, Vec::new);
            }
            if let Some(v) = self.attack.get_mut(label - 1) {
                v.push(score);
            }
        }
    }
}

/// The threshold that blocks at least `target` of `attack_sorted`
/// (ascending): the ⌈target·n⌉-th highest score. `None` if empty.
pub fn threshold_for(attack_sorted: &[f64], target: f64) -> Option<f64> {
    let n = attack_sorted.len();
    if n == 0 {
        return None;
    }
    // ⌈target·n⌉, robust to 0.995·200 = 199.00000000000003.
    let k = ((target * n as f64) - 1e-9).ceil().clamp(1.0, n as f64) as usize;
    attack_sorted.get(n - k).copied()
}

/// Share of `sorted` (ascending) at or above `t`.
pub fn share_at_or_above(sorted: &[f64], t: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let below = sorted.partition_point(|s| *s < t);
    (sorted.len() - below) as f64 / sorted.len() as f64
}

/// ROC AUC of `attack` against `legit` (both ascending): the probability
/// that an attack scores above a legitimate login, ties counting half —
/// the rank-based (Mann–Whitney U) estimate with mid-ranks. `None` if
/// either side is empty.
pub fn auc(legit_sorted: &[f64], attack_sorted: &[f64]) -> Option<f64> {
    if legit_sorted.is_empty() || attack_sorted.is_empty() {
        return None;
    }
    let mut wins = 0.0f64;
    let (mut below, mut upto) = (0usize, 0usize);
    for a in attack_sorted {
        while below < legit_sorted.len() && legit_sorted[below] < *a {
            below += 1;
        }
        upto = upto.max(below);
        while upto < legit_sorted.len() && legit_sorted[upto] <= *a {
            upto += 1;
        }
        wins += below as f64 + 0.5 * (upto - below) as f64;
    }
    Some(wins / (legit_sorted.len() as f64 * attack_sorted.len() as f64))
}

/// The (block rate, re-authentication rate) curve over every distinct
/// threshold, thinned so consecutive points differ by at least `step` in
/// either rate; starts at (0, 0) and ends at (1, 1).
pub fn curve(legit_sorted: &[f64], attack_sorted: &[f64], step: f64) -> Vec<(f64, f64)> {
    let mut points = vec![(0.0, 0.0)];
    if legit_sorted.is_empty() || attack_sorted.is_empty() {
        return points;
    }
    let (nl, na) = (legit_sorted.len() as f64, attack_sorted.len() as f64);
    // Walk thresholds from the highest attack score down.
    let mut li = legit_sorted.len();
    let mut ai = attack_sorted.len();
    while ai > 0 {
        let t = attack_sorted[ai - 1];
        while ai > 0 && attack_sorted[ai - 1] >= t {
            ai -= 1;
        }
        while li > 0 && legit_sorted[li - 1] >= t {
            li -= 1;
        }
        let p = (
            (attack_sorted.len() - ai) as f64 / na,
            (legit_sorted.len() - li) as f64 / nl,
        );
        let last = points[points.len() - 1];
        if (p.0 - last.0).abs() >= step || (p.1 - last.1).abs() >= step || ai == 0 {
            points.push(p);
        }
    }
    if points[points.len() - 1] != (1.0, 1.0) {
        points.push((1.0, 1.0));
    }
    points
}

/// One history bucket's re-authentication rate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BucketRate {
    pub history: &'static str,
    pub legit_logins: u64,
    /// `None` when the bucket has no legitimate login.
    pub reauth_rate: Option<f64>,
}

/// Legitimate logins in one history bucket.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BucketCount {
    pub history: &'static str,
    pub legit_logins: u64,
}

/// One target block rate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetRow {
    pub target_block_rate: f64,
    /// Challenge at or above this score.
    pub threshold: f64,
    /// The block rate reached at the threshold (≥ the target; ties).
    pub block_rate: f64,
    /// Share of legitimate logins challenged at the threshold.
    pub reauth_rate: f64,
    pub reauth_by_history: Vec<BucketRate>,
}

/// One attacker label under one scorer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LabelEval {
    pub label: String,
    pub attempts: u64,
    pub auc: Option<f64>,
    /// Empty when the label has no evaluated attempt.
    pub targets: Vec<TargetRow>,
    /// (block rate, re-authentication rate) points, for the plot.
    #[serde(skip)]
    pub curve: Vec<(f64, f64)>,
}

/// Everything about one scorer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScorerEval {
    pub scorer: String,
    pub legit_logins: u64,
    pub legit_by_history: Vec<BucketCount>,
    pub labels: Vec<LabelEval>,
}

fn sort(v: &mut [f64]) {
    v.sort_unstable_by(f64::total_cmp);
}

/// Evaluates one scorer's samples. `labels[i]` names attack label id `i+1`.
pub fn evaluate(scorer: &str, samples: &Samples, labels: &[String]) -> ScorerEval {
    let mut legit: Vec<f64> = samples.legit.iter().map(|s| s.0).collect();
    sort(&mut legit);
    let mut by_bucket: Vec<Vec<f64>> = vec![Vec::new(); HISTORY_BUCKETS.len()];
    for (s, b) in &samples.legit {
        if let Some(v) = by_bucket.get_mut(usize::from(*b)) {
            v.push(*s);
        }
    }
    for v in &mut by_bucket {
        sort(v);
    }
    let mut out = Vec::new();
    for (i, name) in labels.iter().enumerate() {
        let mut attack = samples.attack.get(i).cloned().unwrap_or_default();
        sort(&mut attack);
        let targets = TARGET_BLOCK_RATES
            .iter()
            .filter_map(|&target| {
                let t = threshold_for(&attack, target)?;
                Some(TargetRow {
                    target_block_rate: target,
                    threshold: t,
                    block_rate: share_at_or_above(&attack, t),
                    reauth_rate: share_at_or_above(&legit, t),
                    reauth_by_history: HISTORY_BUCKETS
                        .iter()
                        .zip(&by_bucket)
                        .map(|((_, _, name), v)| BucketRate {
                            history: name,
                            legit_logins: v.len() as u64,
                            reauth_rate: (!v.is_empty()).then(|| share_at_or_above(v, t)),
                        })
                        .collect(),
                })
            })
            .collect();
        out.push(LabelEval {
            label: name.clone(),
            attempts: attack.len() as u64,
            auc: auc(&legit, &attack),
            targets,
            curve: curve(&legit, &attack, 0.002),
        });
    }
    ScorerEval {
        scorer: scorer.to_string(),
        legit_logins: legit.len() as u64,
        legit_by_history: HISTORY_BUCKETS
            .iter()
            .zip(&by_bucket)
            .map(|((_, _, name), v)| BucketCount {
                history: name,
                legit_logins: v.len() as u64,
            })
            .collect(),
        labels: out,
    }
}

/// The block rates a check against a baseline compares at (issue: 99 %
/// and 99.5 % blocked).
pub const CHECKED_BLOCK_RATES: [f64; 2] = [0.99, 0.995];

/// The cells where `ours` is worse than `baseline`: per attacker label, a
/// lower AUC, or — at each checked block rate and history bucket — a
/// re-authentication rate more than `tolerance` (a share: 0.005 is half a
/// point) above the baseline's. Cells either side cannot measure (no
/// attempt of the label, no legitimate login in the bucket) are skipped.
pub fn worse_cells(ours: &ScorerEval, baseline: &ScorerEval, tolerance: f64) -> Vec<String> {
    let mut out = Vec::new();
    for l in &ours.labels {
        let Some(b) = baseline.labels.iter().find(|b| b.label == l.label) else {
            continue;
        };
        if let (Some(a), Some(ba)) = (l.auc, b.auc)
            && a < ba
        {
            out.push(format!(
                "{}: AUC {a:.4} < {} {ba:.4}",
                l.label, baseline.scorer
            ));
        }
        for rate in CHECKED_BLOCK_RATES {
            let row = |e: &LabelEval| {
                e.targets
                    .iter()
                    .find(|t| (t.target_block_rate - rate).abs() < 1e-9)
                    .cloned()
            };
            let (Some(mine), Some(theirs)) = (row(l), row(b)) else {
                continue;
            };
            for (m, t) in mine.reauth_by_history.iter().zip(&theirs.reauth_by_history) {
                if let (Some(x), Some(y)) = (m.reauth_rate, t.reauth_rate)
                    && x > y + tolerance
                {
                    out.push(format!(
                        "{}, {:.1} % blocked, history {}: re-auth {:.2} % > {} {:.2} % (+{:.1} point)",
                        l.label,
                        100.0 * rate,
                        m.history,
                        100.0 * x,
                        baseline.scorer,
                        100.0 * y,
                        100.0 * tolerance
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_check_against_a_baseline_names_every_worse_cell() {
        // Legit logins in the 40+ bucket (index 3) and 1-4 (index 0); one
        // attacker label. `ours` challenges more of the 40+ bucket.
        let mut ours = Samples::default();
        let mut base = Samples::default();
        for i in 0..1000 {
            let s = f64::from(i) / 1000.0;
            ours.push(0, s * 0.5, 0);
            base.push(0, s * 0.5, 0);
            ours.push(0, if i < 100 { 0.95 } else { s * 0.5 }, 3);
            base.push(0, s * 0.5, 3);
            ours.push(1, 0.9 + s * 0.1, 0);
            base.push(1, 0.9 + s * 0.1, 0);
        }
        let labels = vec!["naive".to_string()];
        let a = evaluate("riskgate", &ours, &labels);
        let b = evaluate("freeman", &base, &labels);
        let cells = worse_cells(&a, &b, 0.005);
        assert!(cells.iter().any(|c| c.contains("history 40+")), "{cells:?}");
        assert!(
            cells.iter().all(|c| !c.contains("history 1-4")),
            "{cells:?}"
        );
        assert!(
            cells.iter().any(|c| c.contains("99.5 % blocked")),
            "{cells:?}"
        );
        assert!(worse_cells(&b, &b, 0.005).is_empty());
        assert!(
            worse_cells(&b, &a, 0.005).is_empty(),
            "the baseline is not worse than ours"
        );
    }

    #[test]
    fn thresholds_and_reauth_on_a_hand_computed_example() {
        // 10 attacks 0.1..1.0; 4 legit logins.
        let attack: Vec<f64> = (1..=10).map(|i| f64::from(i) / 10.0).collect();
        let legit = [0.05, 0.15, 0.25, 0.95];
        // 99% of 10 → ⌈9.9⌉ = 10 attacks blocked → threshold = lowest = 0.1.
        assert_eq!(threshold_for(&attack, 0.99), Some(0.1));
        // Legit at or above 0.1: 0.15, 0.25, 0.95 → 3/4.
        assert_eq!(share_at_or_above(&legit, 0.1), 0.75);
        // 80% → 8 highest → threshold 0.3 → legit 0.95 only.
        assert_eq!(threshold_for(&attack, 0.8), Some(0.3));
        assert_eq!(share_at_or_above(&legit, 0.3), 0.25);
        assert_eq!(share_at_or_above(&attack, 0.3), 0.8);
        // 0.995 × 200 must not round up to 200 blocked + 1.
        let many: Vec<f64> = (0..200).map(f64::from).collect();
        assert_eq!(threshold_for(&many, 0.995), Some(1.0));
        assert_eq!(threshold_for(&[], 0.99), None);
    }

    #[test]
    fn evaluate_splits_by_history() {
        let mut s = Samples::default();
        for (score, b) in [(0.05, 0), (0.15, 0), (0.25, 1), (0.95, 3)] {
            s.push(0, score, b);
        }
        for i in 1..=10 {
            s.push(1, f64::from(i) / 10.0, 0);
        }
        let e = evaluate("x", &s, &["ato".to_string()]);
        assert_eq!(e.legit_logins, 4);
        let l = &e.labels[0];
        assert_eq!(l.attempts, 10);
        assert_eq!(l.targets.len(), 3);
        let t = &l.targets[0];
        assert_eq!((t.threshold, t.block_rate, t.reauth_rate), (0.1, 1.0, 0.75));
        let rates: Vec<Option<f64>> = t.reauth_by_history.iter().map(|b| b.reauth_rate).collect();
        assert_eq!(rates, vec![Some(0.5), Some(1.0), None, Some(1.0)]);
        // AUC: pairs (attack > legit) + ties/2 over 40 pairs.
        // legit 0.05: 10 wins; 0.15: 9; 0.25: 8; 0.95: 1 → 28/40.
        assert_eq!(l.auc, Some(28.0 / 40.0));
    }

    #[test]
    fn auc_handles_ties_as_half() {
        assert_eq!(auc(&[1.0], &[1.0]), Some(0.5));
        assert_eq!(auc(&[0.0, 1.0], &[1.0, 2.0]), Some((1.5 + 2.0) / 4.0));
        assert_eq!(auc(&[0.0], &[1.0]), Some(1.0));
        assert_eq!(auc(&[1.0], &[0.0]), Some(0.0));
        assert_eq!(auc(&[], &[0.0]), None);
    }

    #[test]
    fn history_buckets() {
        let b: Vec<Option<u8>> = [0, 1, 4, 5, 12, 13, 39, 40, 1000]
            .into_iter()
            .map(bucket)
            .collect();
        assert_eq!(
            b,
            vec![
                None,
                Some(0),
                Some(0),
                Some(1),
                Some(1),
                Some(2),
                Some(2),
                Some(3),
                Some(3)
            ]
        );
    }

    fn naive_auc(l: &[f64], a: &[f64]) -> f64 {
        let mut w = 0.0;
        for x in a {
            for y in l {
                w += if x > y {
                    1.0
                } else if x == y {
                    0.5
                } else {
                    0.0
                };
            }
        }
        w / (l.len() * a.len()) as f64
    }

    proptest! {
        #[test]
        fn auc_matches_pairwise_counting(
            mut l in proptest::collection::vec(0u8..8, 1..40),
            mut a in proptest::collection::vec(0u8..8, 1..40),
        ) {
            l.sort_unstable();
            a.sort_unstable();
            let l: Vec<f64> = l.into_iter().map(f64::from).collect();
            let a: Vec<f64> = a.into_iter().map(f64::from).collect();
            let got = auc(&l, &a).unwrap();
            prop_assert!((got - naive_auc(&l, &a)).abs() < 1e-12);
        }

        #[test]
        fn threshold_blocks_at_least_the_target(
            mut a in proptest::collection::vec(0u16..100, 1..300),
            target in 0.5f64..1.0,
        ) {
            a.sort_unstable();
            let a: Vec<f64> = a.into_iter().map(f64::from).collect();
            let t = threshold_for(&a, target).unwrap();
            prop_assert!(share_at_or_above(&a, t) >= target - 1e-9);
            // And the next higher distinct score would not.
            if let Some(next) = a.iter().find(|s| **s > t) {
                prop_assert!(share_at_or_above(&a, *next) < target - 1e-9);
            }
        }

        #[test]
        fn curve_is_monotone_and_bounded(
            mut l in proptest::collection::vec(0u8..20, 0..50),
            mut a in proptest::collection::vec(0u8..20, 0..50),
        ) {
            l.sort_unstable();
            a.sort_unstable();
            let l: Vec<f64> = l.into_iter().map(f64::from).collect();
            let a: Vec<f64> = a.into_iter().map(f64::from).collect();
            let c = curve(&l, &a, 0.0);
            prop_assert_eq!(c[0], (0.0, 0.0));
            for w in c.windows(2) {
                prop_assert!(w[1].0 >= w[0].0 && w[1].1 >= w[0].1);
            }
        }
    }
}
