//! One behavioral suite for every `Store`: the same scenarios, with
//! controlled time, against the memory store and the Redis store. Each run
//! returns a transcript of every answer; two stores conform when their
//! transcripts are equal (and the suite's own expectations hold).

use riskgate::core::decision_id::encode as encode_decision_id;
use riskgate::core::inputs::{Facts, GeoPoint, Observation, StoreView};
use riskgate::core::keys::{Dim, IdHasher, Key, value_hash};
use riskgate::domain::{Action, Factor, Outcome, Reason, UnixMillis};
use riskgate::store::{
    DecisionRecord, Forgotten, Mark, OutcomeReport, Store, StoreError, UserProfile,
};

pub const T0: i64 = 1_700_000_000_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;
/// The history cap the suite's stores must be built with.
pub const CAP: usize = 4;

pub fn hasher() -> IdHasher {
    IdHasher::new(b"conformance-suite-key")
}

pub struct Run<'a> {
    store: &'a dyn Store,
    h: IdHasher,
    next: u128,
    /// Each observed decision's observation.
    users: std::collections::HashMap<u128, Observation>,
    /// The next observation was key-verified (`DEVICE_BINDING_KEY_VERIFIED`).
    bound: bool,
    pub transcript: Vec<String>,
}

impl<'a> Run<'a> {
    fn obs(&mut self, user: &str, device: &str, ip: &str, at: i64, failed: bool) -> Observation {
        let h = &self.h;
        let mut facts = Facts::default();
        if !device.is_empty() {
            let k = h.key(Dim::Device, device.as_bytes());
            facts.set(Dim::Device, Some(k));
            facts.set(Dim::BoundDevice, Some(k));
        }
        if !ip.is_empty() {
            facts.set(Dim::Ip, Some(h.key(Dim::Ip, ip.as_bytes())));
            let net = ip.rsplit_once('.').map_or(ip, |(n, _)| n);
            facts.set(Dim::Network, Some(h.key(Dim::Network, net.as_bytes())));
        }
        facts.set(Dim::Browser, Some(h.key(Dim::Browser, b"Chrome")));
        self.next += 1;
        let o = Observation {
            decision: self.next,
            at: UnixMillis(at),
            user: h.key(Dim::User, user.as_bytes()),
            facts,
            place: Some(GeoPoint {
                lat: 59.3293,
                lon: 18.0686,
                accuracy_km: 20.0,
            }),
            failed,
            bound: std::mem::take(&mut self.bound) && !device.is_empty(),
        };
        self.users.insert(self.next, o.clone());
        o
    }

    /// Observes a key-verified attempt (the login service verified a key
    /// bound to `device`).
    pub async fn observe_bound(
        &mut self,
        user: &str,
        device: &str,
        ip: &str,
        at: i64,
    ) -> (u128, StoreView) {
        self.bound = true;
        let o = self.obs(user, device, ip, at, false);
        let v = self.store.observe(&o).await.unwrap();
        self.transcript
            .push(format!("observe bound {user} {device} {ip} {at} -> {v:?}"));
        self.record(o.decision, Action::Allow, 0.0).await;
        (o.decision, v)
    }

    /// Observes and records the answer (an ALLOW), as the engine does;
    /// returns (decision, view).
    pub async fn observe(
        &mut self,
        user: &str,
        device: &str,
        ip: &str,
        at: i64,
        failed: bool,
    ) -> (u128, StoreView) {
        let (d, v) = self.observe_unrecorded(user, device, ip, at, failed).await;
        self.record(d, Action::Allow, 0.0).await;
        (d, v)
    }

    /// Observes without recording an answer (the caller records its own).
    pub async fn observe_unrecorded(
        &mut self,
        user: &str,
        device: &str,
        ip: &str,
        at: i64,
        failed: bool,
    ) -> (u128, StoreView) {
        let o = self.obs(user, device, ip, at, failed);
        let v = self.store.observe(&o).await.unwrap();
        self.transcript.push(format!(
            "observe {user} {device} {ip} {at} {failed} -> {v:?}"
        ));
        (o.decision, v)
    }

    pub async fn report(
        &mut self,
        decision: u128,
        action: Action,
        outcome: Outcome,
        factor: Option<Factor>,
        at: i64,
    ) -> Result<bool, StoreError> {
        let r = self
            .store
            .report(&OutcomeReport {
                decision,
                user: self.users.get(&decision).map_or(Key([0; 16]), |o| o.user),
                action,
                outcome,
                factor,
                at: UnixMillis(at),
            })
            .await
            .map(|e| e.profile_updated);
        let shown = match &r {
            Ok(b) => format!("Ok({b})"),
            Err(StoreError::UnknownDecision(_)) => "UnknownDecision".to_string(),
            Err(e) => format!("Err({e})"),
        };
        self.transcript.push(format!(
            "report {decision} {action:?} {outcome:?} {at} -> {shown}"
        ));
        r
    }

    pub async fn profile(&mut self, user: &str) -> UserProfile {
        let p = self
            .store
            .profile(self.h.key(Dim::User, user.as_bytes()))
            .await
            .unwrap();
        self.transcript.push(format!("profile {user} -> {p:?}"));
        p
    }

    pub async fn forget(&mut self, user: &str) -> Forgotten {
        let f = self
            .store
            .forget(self.h.key(Dim::User, user.as_bytes()))
            .await
            .unwrap();
        self.transcript.push(format!("forget {user} -> {f:?}"));
        f
    }

    pub async fn trust(&mut self, user: &str, device: &str, at: i64) -> bool {
        let k = self
            .store
            .mark_device(
                self.h.key(Dim::User, user.as_bytes()),
                self.h.key(Dim::Device, device.as_bytes()),
                Mark::Trust,
                UnixMillis(at),
            )
            .await
            .unwrap();
        self.transcript
            .push(format!("trust {user} {device} {at} -> {k}"));
        k
    }

    pub async fn revoke(&mut self, user: &str, device: &str, at: i64) -> bool {
        let k = self
            .store
            .mark_device(
                self.h.key(Dim::User, user.as_bytes()),
                self.h.key(Dim::Device, device.as_bytes()),
                Mark::Revoke,
                UnixMillis(at),
            )
            .await
            .unwrap();
        self.transcript
            .push(format!("revoke {user} {device} {at} -> {k}"));
        k
    }

    /// Records the answer to an observed decision; returns its id.
    pub async fn record(&mut self, decision: u128, action: Action, score: f64) -> String {
        let o = self.users[&decision].clone();
        let (user, at) = (o.user, o.at.0);
        // The engine records the acting reasons only (shadow hits are not
        // part of a user's recent decisions).
        let id = encode_decision_id(&self.h, decision, user, action);
        let reasons = [
            Reason::new("new_device", "first login from this device", 0.4),
            Reason::new("rule_x", "rule x fired", 0.0),
        ];
        let answer = DecisionRecord {
            decision_id: &id,
            at: UnixMillis(at),
            action,
            score,
            reasons: &reasons,
        };
        self.store.record_decision(&o, &answer).unwrap();
        self.transcript
            .push(format!("record {decision} {}", answer.decision_id));
        id
    }

    fn device_hash(&self, device: &str) -> u64 {
        value_hash(self.h.key(Dim::Device, device.as_bytes()))
    }

    async fn teach(&mut self, user: &str, device: &str, ip: &str, at: i64) -> StoreView {
        let (d, v) = self.observe(user, device, ip, at, false).await;
        assert!(
            self.report(d, Action::Allow, Outcome::LoginSucceeded, None, at)
                .await
                .unwrap()
        );
        v
    }
}

/// Runs every scenario against `store` (built with history cap [`CAP`])
/// and returns the transcript.
pub async fn run_all(store: &dyn Store) -> Vec<String> {
    let mut r = Run {
        store,
        h: hasher(),
        next: 0,
        users: Default::default(),
        bound: false,
        transcript: Vec::new(),
    };
    teaching_double_report_and_fraud(&mut r).await;
    unverified_outcomes_never_teach(&mut r).await;
    unknown_decision(&mut r).await;
    failures_across_windows(&mut r).await;
    distinct_users(&mut r).await;
    history_cap(&mut r).await;
    step_up_outcomes(&mut r).await;
    hour_histogram_and_out_of_order(&mut r).await;
    profile_and_recent_decisions(&mut r).await;
    trust_and_revoke(&mut r).await;
    trust_at_the_history_cap(&mut r).await;
    bound_devices(&mut r).await;
    forget_erases_the_user(&mut r).await;
    r.transcript
}

async fn teaching_double_report_and_fraud(r: &mut Run<'_>) {
    let (d, v) = r.observe("alice", "d1", "1.2.3.4", T0, false).await;
    assert_eq!(v.profile.seen(Dim::Device), 0);
    assert!(
        r.report(d, Action::Allow, Outcome::LoginSucceeded, None, T0 + 1)
            .await
            .unwrap()
    );
    // Twice teaches once.
    assert!(
        !r.report(d, Action::Allow, Outcome::LoginSucceeded, None, T0 + 2)
            .await
            .unwrap()
    );
    let (_, v) = r.observe("alice", "d1", "1.2.3.4", T0 + 10, false).await;
    assert_eq!(v.profile.seen(Dim::Device), 1);
    assert_eq!(v.profile.verified_logins, 1);
    assert_eq!(v.profile.global_seen(Dim::Ip), 1);
    // Devices are not counted deployment-wide (`GLOBAL_DIMS`).
    assert_eq!(v.profile.global_seen(Dim::Device), 0);
    assert_eq!(v.profile.global_users, 1);
    let last = v.profile.last_login.unwrap();
    assert_eq!(last.at, UnixMillis(T0));
    // Places are kept at f32 precision by every store.
    assert_eq!(last.place.unwrap().lat, f64::from(59.3293f32));
    // Fraud unteaches; twice unteaches once.
    assert!(
        r.report(
            d,
            Action::Allow,
            Outcome::AnalystConfirmedFraud,
            None,
            T0 + 20
        )
        .await
        .unwrap()
    );
    assert!(
        !r.report(d, Action::Allow, Outcome::UserReportedFraud, None, T0 + 21)
            .await
            .unwrap()
    );
    let (_, v) = r.observe("alice", "d1", "1.2.3.4", T0 + 30, false).await;
    assert_eq!(v.profile.seen(Dim::Device), 0);
    assert_eq!(v.profile.verified_logins, 0);
    assert_eq!(v.profile.global_seen(Dim::Ip), 0);
    assert_eq!(v.profile.last_login, None);
}

/// A device is remembered as bound only by a verified login that showed its
/// key; an attempt without the key neither teaches nor clears it; fraud
/// unteaches it like every other fact.
async fn bound_devices(r: &mut Run<'_>) {
    let t = T0 + 40 * HOUR;
    // A verified login without the key: a known device, not a bound one.
    let (d, _) = r.observe("bea", "phone", "5.6.7.8", t, false).await;
    r.report(d, Action::Allow, Outcome::LoginSucceeded, None, t + 1)
        .await
        .unwrap();
    let (d, v) = r.observe_bound("bea", "phone", "5.6.7.8", t + MIN).await;
    assert_eq!(v.profile.seen(Dim::Device), 1);
    assert_eq!(v.profile.seen(Dim::BoundDevice), 0);
    // A key-verified attempt that is never verified teaches nothing.
    let (_, v) = r
        .observe_bound("bea", "phone", "5.6.7.8", t + 2 * MIN)
        .await;
    assert_eq!(v.profile.seen(Dim::BoundDevice), 0);
    // The verified one does.
    assert!(
        r.report(d, Action::Allow, Outcome::LoginSucceeded, None, t + 3 * MIN)
            .await
            .unwrap()
    );
    let (d2, v) = r
        .observe("bea", "phone", "5.6.7.8", t + 4 * MIN, false)
        .await;
    assert_eq!(v.profile.seen(Dim::Device), 2);
    assert_eq!(v.profile.seen(Dim::BoundDevice), 1);
    assert_eq!(v.profile.distinct(Dim::BoundDevice), 1);
    // A verified login without the key does not make the device unbound.
    r.report(
        d2,
        Action::Allow,
        Outcome::LoginSucceeded,
        None,
        t + 5 * MIN,
    )
    .await
    .unwrap();
    let (_, v) = r
        .observe("bea", "phone", "5.6.7.8", t + 6 * MIN, false)
        .await;
    assert_eq!(v.profile.seen(Dim::Device), 3);
    assert_eq!(v.profile.seen(Dim::BoundDevice), 1);
    // Another device of the same user is not bound by this one's key.
    let (_, v) = r
        .observe("bea", "laptop", "5.6.7.8", t + 7 * MIN, false)
        .await;
    assert_eq!(v.profile.seen(Dim::BoundDevice), 0);
    // Fraud on the key-verified login unteaches the binding.
    assert!(
        r.report(
            d,
            Action::Allow,
            Outcome::AnalystConfirmedFraud,
            None,
            t + 8 * MIN
        )
        .await
        .unwrap()
    );
    let (_, v) = r
        .observe("bea", "phone", "5.6.7.8", t + 9 * MIN, false)
        .await;
    assert_eq!(v.profile.seen(Dim::BoundDevice), 0);
    assert_eq!(v.profile.seen(Dim::Device), 2);
    r.profile("bea").await;
}

async fn unverified_outcomes_never_teach(r: &mut Run<'_>) {
    let (d, _) = r.observe("bob", "d1", "1.2.3.4", T0, false).await;
    for (action, outcome) in [
        (Action::Deny, Outcome::LoginSucceeded),
        (Action::StepUp, Outcome::LoginSucceeded),
        (Action::StepUp, Outcome::StepUpFailed),
        (Action::StepUp, Outcome::StepUpAbandoned),
        (Action::Allow, Outcome::UserReportedFraud),
        (Action::Deny, Outcome::AnalystConfirmedLegit),
    ] {
        assert!(!r.report(d, action, outcome, None, T0 + 1).await.unwrap());
    }
    let (_, v) = r.observe("bob", "d1", "1.2.3.4", T0 + 10, false).await;
    assert_eq!(v.profile.verified_logins, 0);
}

async fn unknown_decision(r: &mut Run<'_>) {
    let e = r
        .report(
            u128::MAX - 7,
            Action::Allow,
            Outcome::LoginSucceeded,
            None,
            T0,
        )
        .await;
    assert!(matches!(e, Err(StoreError::UnknownDecision(_))), "{e:?}");
}

async fn failures_across_windows(r: &mut Run<'_>) {
    let t = T0 + 10 * HOUR;
    let mut last = StoreView::default();
    for i in 0..20 {
        let user = format!("victim{i}");
        last = r
            .observe(&user, "kit", "9.9.9.9", t + i * 1000, true)
            .await
            .1;
    }
    let v = last.velocity;
    assert_eq!(v.ip_failures.m1, 20);
    assert_eq!(v.ip_attempts.m1, 20);
    assert_eq!(v.network_failures.h1, 20);
    assert_eq!(v.device_failures.h24, 20);
    assert_eq!(v.user_failures.h1, 1);
    assert_eq!(v.ip_distinct_users_1h, 20);
    // The same user failing repeatedly.
    for i in 0..5 {
        last = r
            .observe("mallory", "m", "8.8.4.4", t + i * 1000, true)
            .await
            .1;
    }
    assert_eq!(last.velocity.user_failures.m1, 5);
    // Windows expire at their own pace.
    let (_, v) = r
        .observe("victim0", "kit", "9.9.9.9", t + 2 * MIN, false)
        .await;
    assert_eq!(v.velocity.ip_failures.m1, 0);
    assert_eq!(v.velocity.ip_failures.h1, 20);
    assert_eq!(v.velocity.ip_attempts.m1, 1);
    let (_, v) = r
        .observe("victim0", "kit", "9.9.9.9", t + 70 * MIN, false)
        .await;
    assert_eq!(
        (v.velocity.ip_failures.h1, v.velocity.ip_failures.h24),
        (0, 20)
    );
    let (_, v) = r
        .observe("victim0", "kit", "9.9.9.9", t + 26 * HOUR, false)
        .await;
    assert_eq!(v.velocity.ip_failures.h24, 0);
    // A failure without IP or device still counts for the user.
    let (_, v) = r.observe("mallory", "", "", t + 6000, true).await;
    assert_eq!(v.velocity.user_failures.m1, 6);
    assert_eq!(v.velocity.ip_failures, Default::default());
}

async fn distinct_users(r: &mut Run<'_>) {
    let t = T0 + 100 * HOUR;
    for i in 0..5 {
        r.observe(
            &format!("shared{i}"),
            "kiosk",
            "10.0.0.1",
            t + i * MIN,
            false,
        )
        .await;
    }
    let (_, v) = r
        .observe("shared9", "kiosk", "10.0.0.2", t + 3 * HOUR, false)
        .await;
    assert_eq!(v.velocity.device_distinct_users_1h, 1);
    assert_eq!(v.velocity.device_distinct_users_24h, 6);
    assert_eq!(v.velocity.ip_distinct_users_1h, 1);
    // The set saturates at its cap.
    let t = T0 + 200 * HOUR;
    let mut last = StoreView::default();
    for i in 0..300 {
        last = r
            .observe(&format!("spray{i}"), "", "10.9.9.9", t + i, true)
            .await
            .1;
    }
    assert_eq!(last.velocity.ip_distinct_users_1h, 256);
}

async fn history_cap(r: &mut Run<'_>) {
    let t = T0 + 300 * HOUR;
    for i in 0..10 {
        r.teach("carol", &format!("dev{i}"), "1.1.1.1", t + i * 10_000)
            .await;
    }
    let (_, v) = r.observe("carol", "dev9", "1.1.1.1", t + HOUR, false).await;
    assert_eq!(v.profile.distinct(Dim::Device), CAP as u32);
    assert_eq!(v.profile.seen(Dim::Device), 1);
    assert_eq!(v.profile.seen(Dim::Ip), 10);
    assert_eq!(v.profile.verified_logins, 10);
    let (_, v) = r.observe("carol", "dev0", "1.1.1.1", t + HOUR, false).await;
    assert_eq!(
        v.profile.seen(Dim::Device),
        0,
        "the oldest device is forgotten"
    );
    // Re-seeing a value refreshes it: dev6 survives the next eviction.
    r.teach("carol", "dev6", "1.1.1.1", t + 2 * HOUR).await;
    r.teach("carol", "dev10", "1.1.1.1", t + 3 * HOUR).await;
    let (_, v) = r
        .observe("carol", "dev6", "1.1.1.1", t + 4 * HOUR, false)
        .await;
    assert_eq!(v.profile.seen(Dim::Device), 2);
    let (_, v) = r
        .observe("carol", "dev7", "1.1.1.1", t + 4 * HOUR, false)
        .await;
    assert_eq!(v.profile.seen(Dim::Device), 0);
}

async fn step_up_outcomes(r: &mut Run<'_>) {
    let t = T0 + 400 * HOUR;
    let (d, _) = r.observe("erin", "e", "2.2.2.2", t, false).await;
    assert!(
        r.report(d, Action::StepUp, Outcome::StepUpFailed, None, t + 1000)
            .await
            .is_ok()
    );
    let (d2, v) = r.observe("erin", "e", "2.2.2.2", t + 2000, false).await;
    assert_eq!(v.velocity.user_failures.m1, 1, "a failed step-up counts");
    assert!(
        r.report(
            d2,
            Action::StepUp,
            Outcome::StepUpPassed,
            Some(Factor::Totp),
            t + 5000
        )
        .await
        .unwrap()
    );
    let (_, v) = r.observe("erin", "e", "2.2.2.2", t + 6000, false).await;
    assert_eq!(v.profile.last_strong_auth, Some(UnixMillis(t + 5000)));
    assert_eq!(v.profile.verified_logins, 1);
}

async fn hour_histogram_and_out_of_order(r: &mut Run<'_>) {
    const WEEK: i64 = 7 * 24 * HOUR;
    let t = T0 + 500 * HOUR;
    for i in 0..3 {
        r.teach("hana", "h", "3.3.3.3", t + i * WEEK).await;
    }
    let (_, v) = r.observe("hana", "h", "3.3.3.3", t + 3 * WEEK, false).await;
    assert_eq!(v.profile.hour_count, 3);
    let (_, v) = r
        .observe("hana", "h", "3.3.3.3", t + 3 * WEEK + 6 * HOUR, false)
        .await;
    assert_eq!(v.profile.hour_count, 0);
    // An older login taught late does not move the last login back.
    r.teach("hana", "h", "3.3.3.3", t + WEEK + HOUR).await;
    let (_, v) = r
        .observe("hana", "h", "3.3.3.3", t + 3 * WEEK + 7 * HOUR, false)
        .await;
    assert_eq!(v.profile.last_login.unwrap().at, UnixMillis(t + 2 * WEEK));
    // Events out of order land in their own bucket, or are dropped.
    r.observe("ooo", "o", "4.4.4.4", t + 3 * HOUR, true).await;
    r.observe("ooo", "o", "4.4.4.4", t + HOUR, true).await;
    let (_, v) = r
        .observe("ooo", "o", "4.4.4.4", t + 3 * HOUR + 1, true)
        .await;
    assert_eq!(v.velocity.ip_failures.h24, 3);
    assert_eq!(v.velocity.ip_failures.h1, 2);
}

async fn profile_and_recent_decisions(r: &mut Run<'_>) {
    let t = T0 + 500 * HOUR;
    assert_eq!(r.profile("nobody").await, UserProfile::default());
    r.teach("gina", "g1", "5.5.5.5", t).await;
    r.teach("gina", "g1", "5.5.5.6", t + MIN).await;
    r.teach("gina", "g2", "5.5.5.6", t + 2 * MIN).await;
    let mut ids = Vec::new();
    for i in 0..25 {
        let action = [Action::Allow, Action::StepUp, Action::Deny][i % 3];
        let (d, _) = r
            .observe_unrecorded("gina", "g2", "5.5.5.6", t + 3 * MIN + i as i64, false)
            .await;
        ids.push(r.record(d, action, 0.125 * (i % 8) as f64).await);
    }
    let p = r.profile("gina").await;
    assert_eq!(p.verified_logins, 3);
    let g1 = r.device_hash("g1");
    let dev = |p: &UserProfile, h: u64| {
        p.values
            .iter()
            .find(|v| v.dim == Dim::Device && v.hash == h)
            .map(|v| v.count)
    };
    assert_eq!(dev(&p, g1), Some(2));
    assert_eq!(p.values.iter().filter(|v| v.dim == Dim::Ip).count(), 2);
    assert_eq!(p.hours.iter().map(|h| h.1).sum::<u32>(), 3);
    assert_eq!(p.last_login.map(|l| l.at), Some(UnixMillis(t + 2 * MIN)));
    assert_eq!(p.recent.len(), 20, "capped");
    assert_eq!(p.recent[0].decision_id, ids[24], "newest first");
    assert_eq!(p.recent[19].decision_id, ids[5]);
    assert_eq!(p.recent[0].action, Action::Allow);
    assert_eq!(p.recent[0].score, 0.0);
    assert_eq!(p.recent[1].score, 0.875);
    assert_eq!(
        p.recent[0].reasons,
        ["new_device", "rule_x"],
        "shadow reasons are not recorded"
    );
    assert!(p.trusted.is_empty() && p.revoked.is_empty());
}

async fn trust_and_revoke(r: &mut Run<'_>) {
    let t = T0 + 600 * HOUR;
    r.teach("ivan", "i1", "6.6.6.6", t).await;
    r.teach("ivan", "i2", "6.6.6.6", t + MIN).await;
    // A trusted device is a known device.
    assert!(!r.trust("ivan", "i3", t + 2 * MIN).await);
    let (_, v) = r.observe("ivan", "i3", "6.6.6.6", t + 3 * MIN, false).await;
    assert_eq!(v.profile.seen(Dim::Device), 1);
    assert_eq!(v.profile.distinct(Dim::Device), 3);
    assert!(!v.profile.device_revoked);
    assert!(r.trust("ivan", "i1", t + 3 * MIN).await, "already known");
    // A revoked device is forgotten and flagged, for this user only.
    assert!(r.revoke("ivan", "i1", t + 4 * MIN).await);
    let (_, v) = r.observe("ivan", "i1", "6.6.6.6", t + 5 * MIN, false).await;
    assert_eq!(v.profile.seen(Dim::Device), 0);
    assert!(v.profile.device_revoked);
    let (_, v) = r.observe("ivan", "i2", "6.6.6.6", t + 5 * MIN, false).await;
    assert!(!v.profile.device_revoked);
    let (_, v) = r.observe("judy", "i1", "6.6.6.6", t + 5 * MIN, false).await;
    assert!(!v.profile.device_revoked);
    assert!(!r.revoke("ivan", "never-seen", t + 6 * MIN).await);
    let p = r.profile("ivan").await;
    assert_eq!(p.revoked.len(), 2);
    assert_eq!(p.trusted.len(), 1, "revoking i1 ended its trust");
    assert_eq!(p.trusted[0].device, r.device_hash("i3"));
    // Trusting again lifts the revocation.
    assert!(!r.trust("ivan", "i1", t + 7 * MIN).await);
    let (_, v) = r.observe("ivan", "i1", "6.6.6.6", t + 8 * MIN, false).await;
    assert!(!v.profile.device_revoked);
    assert_eq!(v.profile.seen(Dim::Device), 1);
    r.revoke("ivan", "i3", t + 9 * MIN).await;
    r.profile("ivan").await;
}

async fn trust_at_the_history_cap(r: &mut Run<'_>) {
    let t = T0 + 700 * HOUR;
    for i in 0..CAP as i64 {
        r.teach("kim", &format!("k{i}"), "7.7.7.7", t + i * MIN)
            .await;
    }
    assert!(!r.trust("kim", "k-new", t + HOUR).await);
    let (_, v) = r.observe("kim", "k0", "7.7.7.7", t + 2 * HOUR, false).await;
    assert_eq!(
        v.profile.seen(Dim::Device),
        0,
        "the oldest device made room"
    );
    assert_eq!(v.profile.distinct(Dim::Device), CAP as u32);
    let (_, v) = r
        .observe("kim", "k-new", "7.7.7.7", t + 2 * HOUR, false)
        .await;
    assert_eq!(v.profile.seen(Dim::Device), 1);
}

async fn forget_erases_the_user(r: &mut Run<'_>) {
    let t = T0 + 800 * HOUR;
    r.teach("lena", "l1", "8.8.8.8", t).await;
    r.teach("lena", "l2", "8.8.8.8", t + MIN).await;
    let (pending, _) = r.observe("lena", "l1", "8.8.8.8", t + 2 * MIN, true).await;
    r.trust("lena", "l3", t + 3 * MIN).await;
    r.revoke("lena", "l2", t + 4 * MIN).await;
    // Someone else's state stays.
    r.teach("mia", "m1", "8.8.8.9", t).await;

    let f = r.forget("lena").await;
    assert_eq!(
        f,
        Forgotten {
            verified_logins: 2,
            // l1, l3, one IP, one network, the browser.
            profile_values: 5,
            trusted_devices: 1,
            revoked_devices: 1,
            pending_decisions: 3,
            recent_decisions: 3,
            failure_counters: 1,
            journal_decisions: 0,
        }
    );
    assert_eq!(r.profile("lena").await, UserProfile::default());
    let unknown = r
        .report(
            pending,
            Action::Allow,
            Outcome::LoginSucceeded,
            None,
            t + 5 * MIN,
        )
        .await;
    assert!(matches!(unknown, Err(StoreError::UnknownDecision(_))));
    // A later attempt finds a new user: no history, no failures, no revocation.
    let (_, v) = r.observe("lena", "l2", "8.8.8.8", t + 6 * MIN, false).await;
    assert_eq!(v.profile.verified_logins, 0);
    assert_eq!(v.profile.seen(Dim::Device), 0);
    assert!(!v.profile.device_revoked);
    assert_eq!(v.velocity.user_failures.h1, 0);
    assert_eq!(r.forget("nobody").await, Forgotten::default());
    assert_eq!(r.profile("mia").await.verified_logins, 1);
}

/// A verified login's report: `decision` of `user`, allowed, succeeded.
/// Observes `o` and records an ALLOW for it, as the engine does: a decision
/// can be reported on once its answer is recorded.
pub async fn observe_and_record(store: &dyn Store, o: &Observation) -> StoreView {
    let v = store.observe(o).await.unwrap();
    record_allow(store, o);
    v
}

/// Records an ALLOW, scored 0, as the answer to `o`'s decision (its id
/// tagged with zeros).
pub fn record_allow(store: &dyn Store, o: &Observation) {
    let id = riskgate::core::decision_id::from_parts(o.decision, o.user, Action::Allow, [0; 8]);
    let answer = DecisionRecord {
        decision_id: &id,
        at: o.at,
        action: Action::Allow,
        score: 0.0,
        reasons: &[],
    };
    store.record_decision(o, &answer).unwrap();
}

pub fn login_succeeded(user: Key, decision: u128) -> OutcomeReport {
    OutcomeReport {
        decision,
        user,
        action: Action::Allow,
        outcome: Outcome::LoginSucceeded,
        factor: None,
        at: UnixMillis::now(),
    }
}

/// An IP failing every 5 seconds for 40 minutes (no device): `store`
/// answers every attempt like a fresh memory store, however its background
/// upkeep runs meanwhile. Leaves the IP `192.0.2.99`'s key for the caller
/// to inspect.
pub async fn busy_ip_counts_like_the_memory_store(store: &dyn Store) {
    use riskgate::store::memory::{MemoryLimits, MemoryStore};
    let memory = MemoryStore::new(MemoryLimits::default());
    let h = IdHasher::random();
    let ip = h.key(Dim::Ip, b"192.0.2.99");
    for i in 0..480i64 {
        let mut facts = Facts::default();
        facts.set(Dim::Ip, Some(ip));
        let obs = Observation {
            decision: 1000 + i as u128,
            at: UnixMillis(T0 + i * 5_000),
            user: h.key(Dim::User, format!("u{}", i % 7).as_bytes()),
            facts,
            place: None,
            failed: true,
            bound: false,
        };
        let want = memory.observe(&obs).await.unwrap().velocity;
        let got = store.observe(&obs).await.unwrap().velocity;
        assert_eq!(want, got, "attempt {i}");
    }
}

/// Observes and records 100 decisions for `user` (letting the background
/// writer see each ten): the profile shows the newest 20, newest first.
pub async fn many_recent_decisions_show_the_newest(store: &dyn Store, user: Key) {
    let mut ids = Vec::new();
    for i in 0..100u32 {
        let obs = Observation {
            decision: u128::from(i) + 1,
            at: UnixMillis(T0 + i64::from(i)),
            user,
            facts: Facts::default(),
            place: None,
            failed: false,
            bound: false,
        };
        store.observe(&obs).await.unwrap();
        let id = encode_decision_id(&hasher(), obs.decision, user, Action::Allow);
        let record = DecisionRecord {
            decision_id: &id,
            at: obs.at,
            action: Action::Allow,
            score: 0.1,
            reasons: &[],
        };
        store.record_decision(&obs, &record).unwrap();
        ids.push(id);
        if i % 10 == 9 {
            store.flush().await;
        }
    }
    let recent = store.profile(user).await.unwrap().recent;
    let shown: Vec<&str> = recent.iter().map(|r| r.decision_id.as_str()).collect();
    assert_eq!(shown.len(), 20);
    assert_eq!(
        (shown[0], shown[19]),
        (&*ids[99], &*ids[80]),
        "newest first"
    );
}
