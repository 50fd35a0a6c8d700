//! The published baseline: the Freeman et al. likelihood ratio alone, over
//! replay's own login history, with the defaults of the reference
//! implementations (`shared/data/rba-reference-vectors/freeman_wiefling_reference.json`).
//!
//! Features are the dataset's own columns, as in the published study:
//! IP (`IP Address` → `ASN` → `Country`) and user agent (`User Agent String`
//! → `Browser Name and Version` → `OS Name and Version` → `Device Type`).
//! The math is [`crate::core::freeman`]; this module only keeps the
//! counts it needs:
//!
//! - global: logins `N`, users with a login `|users|`, and per hierarchy
//!   level a count per value and the number of distinct values — over every
//!   login ever added (the notebook's global table grows without bound);
//! - per user: the last [`KEYSTONE_MAX_USER_HISTORY`] logins (the Keystone
//!   plugin's `max_user_history_size`), from which the local counts and
//!   `n_u` are taken.
//!
//! Values are interned to `u32` ids per level, so a user's history costs 28
//! bytes a login. A user with no history scores 0 (Keystone's enrolment),
//! like the `behavior.freeman_score` feature.

use std::collections::VecDeque;

use crate::core::freeman::{self, FeatureCounts, LevelCounts, Totals};
use crate::domain::Action;
use crate::store::fxhash::FxHashMap;

/// Keystone's `max_user_history_size` default.
pub const KEYSTONE_MAX_USER_HISTORY: usize = 100;
/// Keystone's `request_threshold`: a raw score at or above asks for a
/// second factor.
pub const KEYSTONE_REQUEST_THRESHOLD: f64 = 0.4;
/// Keystone's `reject_threshold`: a raw score at or above is rejected.
pub const KEYSTONE_REJECT_THRESHOLD: f64 = 0.9;

/// Levels, finest first: ip, asn, country, ua, browser, os, device type.
const LEVELS: usize = 7;
const UNKNOWN: u32 = u32::MAX;

/// One login's values at each level (`None` = unknown).
pub type Values<'a> = [Option<&'a str>; LEVELS];

#[derive(Default)]
struct Level {
    ids: FxHashMap<Box<str>, u32>,
    counts: Vec<u32>,
}

impl Level {
    fn id(&self, v: Option<&str>) -> u32 {
        v.and_then(|v| self.ids.get(v).copied()).unwrap_or(UNKNOWN)
    }

    fn intern(&mut self, v: &str) -> u32 {
        if let Some(id) = self.ids.get(v) {
            return *id;
        }
        // Ids stop below the two sentinels (4 billion values per level).
        let id = u32::try_from(self.counts.len())
            .unwrap_or(UNKNOWN - 2)
            .min(UNKNOWN - 2);
        self.ids.insert(v.into(), id);
        self.counts.push(0);
        id
    }

    fn count(&self, id: u32) -> u32 {
        self.counts.get(id as usize).copied().unwrap_or(0)
    }

    /// Distinct values with at least one login (ids are only created by
    /// [`Level::intern`] on add, so every id has a count ≥ 1).
    fn distinct(&self) -> u32 {
        u32::try_from(self.counts.len()).unwrap_or(u32::MAX)
    }
}

/// The Freeman history of one replay.
pub struct FreemanHistory {
    levels: [Level; LEVELS],
    logins: u32,
    users: FxHashMap<Box<str>, VecDeque<[u32; LEVELS]>>,
    max_user_history: usize,
}

impl FreemanHistory {
    /// An empty history keeping at most `max_user_history` logins per user.
    pub fn new(max_user_history: usize) -> Self {
        FreemanHistory {
            levels: Default::default(),
            logins: 0,
            users: FxHashMap::default(),
            max_user_history: max_user_history.max(1),
        }
    }

    /// The score of a login by `user` with `values`, from the history
    /// before it; 0 when the user has no history.
    pub fn score(&self, user: &str, values: &Values<'_>) -> f64 {
        let ids: [u32; LEVELS] = std::array::from_fn(|i| self.levels[i].id(values[i]));
        let history = self.users.get(user);
        self.score_ids(history, values, &ids)
    }

    fn score_ids(
        &self,
        history: Option<&VecDeque<[u32; LEVELS]>>,
        values: &Values<'_>,
        ids: &[u32; LEVELS],
    ) -> f64 {
        let Some(history) = history.filter(|h| !h.is_empty()) else {
            return 0.0;
        };
        // Local counts of every level in one branch-free pass over the
        // user's window; an unknown value probes with an id no login has.
        let probe = ids.map(|id| if id == UNKNOWN { UNKNOWN - 1 } else { id });
        let mut local = [0u32; LEVELS];
        let (a, b) = history.as_slices();
        for h in a.iter().chain(b) {
            for i in 0..LEVELS {
                local[i] += u32::from(h[i] == probe[i]);
            }
        }
        let level = |i: usize| {
            if values[i].is_none() {
                return LevelCounts::UNKNOWN;
            }
            LevelCounts::known(
                self.levels[i].count(ids[i]),
                self.levels[i].distinct(),
                local[i],
            )
        };
        let ip = FeatureCounts {
            levels: [level(0), level(1), level(2)],
        };
        let ua = FeatureCounts {
            levels: [level(3), level(4), level(5), level(6)],
        };
        let totals = Totals {
            global_logins: self.logins,
            global_users: u32::try_from(self.users.len()).unwrap_or(u32::MAX),
            user_logins: u32::try_from(history.len()).unwrap_or(u32::MAX),
        };
        freeman::score(&ip, &ua, &totals)
    }

    /// Adds a login to the history.
    pub fn add(&mut self, user: &str, values: &Values<'_>) {
        let ids: [u32; LEVELS] = std::array::from_fn(|i| self.levels[i].id(values[i]));
        self.add_ids(user, values, ids);
    }

    fn add_ids(&mut self, user: &str, values: &Values<'_>, mut ids: [u32; LEVELS]) {
        for (i, id) in ids.iter_mut().enumerate() {
            let Some(v) = values[i] else { continue };
            if *id == UNKNOWN {
                *id = self.levels[i].intern(v);
            }
            if let Some(c) = self.levels[i].counts.get_mut(*id as usize) {
                *c = c.saturating_add(1);
            }
        }
        self.logins = self.logins.saturating_add(1);
        let history = match self.users.get_mut(user) {
            Some(h) => h,
            None => self.users.entry(user.into()).or_default(),
        };
        if history.len() >= self.max_user_history {
            history.pop_front();
        }
        history.push_back(ids);
    }

    /// [`FreemanHistory::score`], then [`FreemanHistory::add`] if `learn`,
    /// looking every value up once.
    pub fn observe(&mut self, user: &str, values: &Values<'_>, learn: bool) -> f64 {
        let ids: [u32; LEVELS] = std::array::from_fn(|i| self.levels[i].id(values[i]));
        let score = self.score_ids(self.users.get(user), values, &ids);
        if learn {
            self.add_ids(user, values, ids);
        }
        score
    }

    /// The action the Keystone plugin's default thresholds would take
    /// (request a second factor → STEP_UP, reject → DENY).
    pub fn keystone_action(score: f64) -> Action {
        if score >= KEYSTONE_REJECT_THRESHOLD {
            Action::Deny
        } else if score >= KEYSTONE_REQUEST_THRESHOLD {
            Action::StepUp
        } else {
            Action::Allow
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v<'a>(ip: &'a str, asn: &'a str, cc: &'a str, ua: &'a str) -> Values<'a> {
        [
            Some(ip),
            Some(asn),
            Some(cc),
            Some(ua),
            Some("Chrome 80"),
            Some("Windows 10"),
            Some("desktop"),
        ]
    }

    #[test]
    fn agrees_with_the_pure_math_on_a_hand_built_history() {
        let mut h = FreemanHistory::new(100);
        assert_eq!(h.score("a", &v("1.1.1.1", "1", "NO", "U1")), 0.0);
        h.add("a", &v("1.1.1.1", "1", "NO", "U1"));
        h.add("a", &v("1.1.1.1", "1", "NO", "U1"));
        h.add("b", &v("2.2.2.2", "2", "NO", "U2"));
        // The same IP and UA again: N=3, users=2, n_a=2.
        let s = h.score("a", &v("1.1.1.1", "1", "NO", "U1"));
        let t = Totals {
            global_logins: 3,
            global_users: 2,
            user_logins: 2,
        };
        let ip = FeatureCounts {
            levels: [
                LevelCounts::known(2, 2, 2),
                LevelCounts::known(2, 2, 2),
                LevelCounts::known(3, 1, 2),
            ],
        };
        let ua = FeatureCounts {
            levels: [
                LevelCounts::known(2, 2, 2),
                LevelCounts::known(3, 1, 2),
                LevelCounts::known(3, 1, 2),
                LevelCounts::known(3, 1, 2),
            ],
        };
        assert_eq!(s, freeman::score(&ip, &ua, &t));
        // Values never seen in a's history: both ratios are exactly 4.
        let unseen: Values<'_> = [
            Some("9.9.9.9"),
            Some("9"),
            Some("SE"),
            Some("U9"),
            Some("Firefox 70"),
            Some("Linux"),
            Some("mobile"),
        ];
        assert_eq!(h.score("a", &unseen), 16.0 * freeman::user_prior_ratio(&t));
        // An unknown level is dropped, not counted as a value.
        let mut no_asn = v("1.1.1.1", "1", "NO", "U1");
        no_asn[1] = None;
        assert_ne!(
            h.score("a", &no_asn),
            h.score("a", &v("1.1.1.1", "1", "NO", "U1"))
        );
    }

    #[test]
    fn the_user_history_is_capped() {
        let mut h = FreemanHistory::new(2);
        h.add("a", &v("1.1.1.1", "1", "NO", "U1"));
        h.add("a", &v("2.2.2.2", "1", "NO", "U1"));
        h.add("a", &v("3.3.3.3", "1", "NO", "U1"));
        // 1.1.1.1 fell out of a's window: unseen locally at the IP level,
        // still counted globally.
        let hist = &h.users["a"];
        assert_eq!(hist.len(), 2);
        assert_eq!(h.logins, 3);
        assert!(hist.iter().all(|e| e[0] != h.levels[0].id(Some("1.1.1.1"))));
        assert_eq!(h.levels[0].count(h.levels[0].id(Some("1.1.1.1"))), 1);
    }

    #[test]
    fn observe_is_score_then_add() {
        let mut a = FreemanHistory::new(3);
        let mut b = FreemanHistory::new(3);
        let logins = [
            ("a", v("1.1.1.1", "1", "NO", "U1")),
            ("b", v("2.2.2.2", "1", "NO", "U2")),
            ("a", v("1.1.1.1", "1", "NO", "U2")),
            ("a", v("3.3.3.3", "2", "SE", "U1")),
            ("a", v("1.1.1.1", "1", "NO", "U1")),
            ("b", v("1.1.1.1", "1", "NO", "U1")),
            ("a", v("2.2.2.2", "1", "NO", "U2")),
        ];
        for (i, (user, values)) in logins.iter().enumerate() {
            let learn = i % 3 != 2;
            let want = a.score(user, values);
            if learn {
                a.add(user, values);
            }
            assert_eq!(b.observe(user, values, learn), want, "{i}");
        }
    }

    #[test]
    fn keystone_thresholds() {
        assert_eq!(FreemanHistory::keystone_action(0.39), Action::Allow);
        assert_eq!(FreemanHistory::keystone_action(0.4), Action::StepUp);
        assert_eq!(FreemanHistory::keystone_action(0.9), Action::Deny);
    }
}
