//! One behavioral suite for every `Store`: the same scenarios, with
//! controlled time, against the memory store and the Redis store. Each run
//! returns a transcript of every answer; two stores conform when their
//! transcripts are equal (and the suite's own expectations hold).

use riskgate::domain::{Action, Factor, Outcome, UnixMillis};
use riskgate::store::{
    Dim, Facts, GeoPoint, IdHasher, Observation, OutcomeReport, Store, StoreError, StoreView,
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
    users: std::collections::HashMap<u128, riskgate::store::Key>,
    pub transcript: Vec<String>,
}

impl<'a> Run<'a> {
    fn obs(&mut self, user: &str, device: &str, ip: &str, at: i64, failed: bool) -> Observation {
        let h = &self.h;
        let mut facts = Facts::default();
        if !device.is_empty() {
            facts.set(Dim::Device, Some(h.key(Dim::Device, device.as_bytes())));
        }
        if !ip.is_empty() {
            facts.set(Dim::Ip, Some(h.key(Dim::Ip, ip.as_bytes())));
            let net = ip.rsplit_once('.').map_or(ip, |(n, _)| n);
            facts.set(Dim::Network, Some(h.key(Dim::Network, net.as_bytes())));
        }
        facts.set(Dim::Browser, Some(h.key(Dim::Browser, b"Chrome")));
        self.next += 1;
        self.users
            .insert(self.next, h.key(Dim::User, user.as_bytes()));
        Observation {
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
        }
    }

    /// Observes and records the answer; returns (decision, view).
    pub async fn observe(
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
                user: self
                    .users
                    .get(&decision)
                    .copied()
                    .unwrap_or(riskgate::store::Key([0; 16])),
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
    assert_eq!(v.profile.global_seen(Dim::Device), 1);
    assert_eq!(v.profile.global_users, 1);
    let last = v.profile.last_login.unwrap();
    assert_eq!(last.at, UnixMillis(T0));
    assert_eq!(last.place.unwrap().lat, 59.3293);
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
    assert_eq!(v.profile.global_seen(Dim::Device), 0);
    assert_eq!(v.profile.last_login, None);
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
