//! One behavioural suite for every journal database: the same appends,
//! reads, labels, retention and erasure against SQLite and PostgreSQL.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use riskgate::core::inputs::{DeviceInfo, StoreView};
use riskgate::core::keys::{IdHasher, Key};
use riskgate::core::model::Model;
use riskgate::core::rules::RuleSet;
use riskgate::core::{self, Inputs};
use riskgate::domain::{
    Action, Channel, CredentialResult, Degraded, Factor, FactorSet, LoginAttempt, Outcome,
    UnixMillis,
};
use riskgate::journal::{DecisionEntry, Entry, Filter, JournalStore, Label, OutcomeEntry};

pub const T0: i64 = 1_772_452_800_000;
const MIN: i64 = 60_000;

/// A decision the core really made, journaled as the engine would.
pub fn entry(
    id: u128,
    user: &str,
    channel: Channel,
    credential: CredentialResult,
    at: i64,
) -> DecisionEntry {
    let attempt = LoginAttempt {
        user_id: user.into(),
        channel,
        ip: "198.51.100.7".parse().unwrap(),
        device_id: Some("laptop-1".into()),
        device_binding: riskgate::domain::DeviceBinding::None,
        user_agent: Some("python-requests/2.31.0".into()),
        occurred_at: UnixMillis(at),
        credential_result: credential,
        attributes: BTreeMap::new(),
        request_id: None,
        enrolled_factors: [Factor::Totp].into_iter().collect::<FactorSet>(),
    };
    let e = core::evaluate(
        Inputs {
            attempt: &attempt,
            device: Arc::new(DeviceInfo {
                is_automation: channel == Channel::Web,
                ..DeviceInfo::unknown()
            }),
            geo: None,
            view: &StoreView::default(),
            degraded: Degraded {
                store: false,
                geo: true,
            },
        },
        &Default::default(),
        &Model::embedded().unwrap(),
        &RuleSet::embedded().unwrap(),
    );
    let key =
        IdHasher::new(b"journal-suite-key").key(riskgate::core::keys::Dim::User, user.as_bytes());
    DecisionEntry::new(id, key, attempt.enrolled_factors, e.features, &e.decision)
}

fn user_key(user: &str) -> Key {
    IdHasher::new(b"journal-suite-key").key(riskgate::core::keys::Dim::User, user.as_bytes())
}

fn all(j: &mut dyn JournalStore, f: &Filter) -> Vec<riskgate::journal::Record> {
    let mut out = Vec::new();
    j.scan(f, &mut |r| {
        out.push(r);
        true
    })
    .unwrap();
    out
}

fn outcome(decision: u128, at: i64, o: Outcome) -> Entry {
    Entry::Outcome(OutcomeEntry {
        decision,
        at: UnixMillis(at),
        outcome: o,
        factor: None,
    })
}

/// The suite; `j` must be empty.
pub fn run(j: &mut dyn JournalStore) {
    let a = entry(1, "alice", Channel::Web, CredentialResult::Valid, T0);
    let b = entry(
        2,
        "bob",
        Channel::MobileApp,
        CredentialResult::Valid,
        T0 + MIN,
    );
    let c = entry(
        3,
        "alice",
        Channel::CallCenter,
        CredentialResult::Invalid,
        T0 + 2 * MIN,
    );
    let old = entry(
        4,
        "carol",
        Channel::Web,
        CredentialResult::Valid,
        T0 - 40 * 86_400_000,
    );
    j.append(&[
        Entry::Decision(Box::new(a.clone())),
        Entry::Decision(Box::new(b.clone())),
        Entry::Decision(Box::new(c.clone())),
        Entry::Decision(Box::new(old.clone())),
    ])
    .unwrap();

    // Read back exactly as written, features included, oldest first.
    let every = all(j, &Filter::default());
    assert_eq!(every.len(), 4);
    assert_eq!(every[0].entry, old);
    assert_eq!(every[1].entry, a);
    assert_eq!(every[2].entry, b);
    assert_eq!(every[3].entry, c);
    assert!(every.iter().all(|r| r.label.is_none()));
    // The decision re-decided from its journaled features is the one made.
    let again = core::decide(
        &a.features,
        a.enrolled,
        &Model::embedded().unwrap(),
        &RuleSet::embedded().unwrap(),
    );
    assert_eq!((again.action, again.score), (a.action, a.score));
    assert_eq!(a.action, Action::Deny, "a headless browser on the web");

    // Outcomes label; an analyst beats a user, who beats the login flow.
    j.append(&[
        outcome(2, T0 + 2 * MIN, Outcome::LoginSucceeded),
        outcome(3, T0 + 3 * MIN, Outcome::StepUpFailed),
        outcome(1, T0 + 3 * MIN, Outcome::UserReportedFraud),
        outcome(1, T0 + 4 * MIN, Outcome::StepUpPassed),
        outcome(99, T0, Outcome::LoginSucceeded),
    ])
    .unwrap();
    let labels: Vec<Option<Label>> = all(j, &Filter::default()).iter().map(|r| r.label).collect();
    assert_eq!(
        labels,
        vec![
            None,
            Some(Label::Fraud),
            Some(Label::Legit),
            Some(Label::Suspicious)
        ]
    );
    j.append(&[outcome(1, T0 + 5 * MIN, Outcome::AnalystConfirmedLegit)])
        .unwrap();
    let o = j.outcomes(1).unwrap();
    assert_eq!(
        o.iter().map(|o| o.outcome).collect::<Vec<_>>(),
        vec![
            Outcome::UserReportedFraud,
            Outcome::StepUpPassed,
            Outcome::AnalystConfirmedLegit
        ]
    );
    let ids = |f: Filter, j: &mut dyn JournalStore| -> Vec<u128> {
        all(j, &f).iter().map(|r| r.entry.id).collect()
    };
    assert_eq!(
        ids(
            Filter {
                label: Some(Some(Label::Legit)),
                ..Filter::default()
            },
            j
        ),
        vec![1, 2]
    );
    assert_eq!(
        ids(
            Filter {
                label: Some(None),
                ..Filter::default()
            },
            j
        ),
        vec![4]
    );

    // Newest first, bounded: the explorer's page.
    assert_eq!(
        ids(
            Filter {
                newest_first: true,
                limit: Some(2),
                ..Filter::default()
            },
            j
        ),
        vec![3, 2]
    );

    // The overview of the window from T0: hourly counts by action and
    // channel, reason counts, labels by action.
    let o = j.overview(UnixMillis(T0)).unwrap();
    let hour = UnixMillis(T0 - T0 % 3_600_000);
    let total: u64 = o.hourly.iter().map(|h| h.3).sum();
    assert_eq!(total, 3, "{o:?}");
    assert!(o.hourly.iter().all(|h| h.0 == hour), "{o:?}");
    assert!(
        o.hourly
            .iter()
            .any(|h| h.2 == Channel::MobileApp && h.1 == b.action && h.3 == 1),
        "{o:?}"
    );
    let count = |code: &str, shadow: bool| {
        o.reasons
            .iter()
            .find(|r| r.0 == code && r.1 == shadow)
            .map_or(0, |r| r.2)
    };
    for e in [&a, &b, &c] {
        for r in &e.reasons {
            let expected = [&a, &b, &c]
                .iter()
                .filter(|x| x.reasons.iter().any(|y| y.0 == r.0))
                .count() as u64;
            assert_eq!(count(&r.0, false), expected, "{}: {o:?}", r.0);
        }
    }
    assert!(
        o.reasons.windows(2).all(|w| w[0].2 >= w[1].2),
        "most frequent first"
    );
    let labelled: u64 = o.labelled.iter().map(|l| l.2).sum();
    assert_eq!(labelled, 3, "{o:?}");
    assert!(o.labelled.contains(&(Label::Legit, a.action, 1)), "{o:?}");

    // Audit records: kept, read back newest first.
    for (i, action) in ["console.sign_in", "console.publish", "console.rollback"]
        .iter()
        .enumerate()
    {
        j.record_audit(&riskgate::journal::AuditRecord {
            at: UnixMillis(T0 + i as i64),
            who: "admin".into(),
            action: (*action).into(),
            target: format!("#{i}"),
            detail: "why".into(),
            result: "ok".into(),
        })
        .unwrap();
    }
    let log = j.audit_log(2).unwrap();
    assert_eq!(
        log.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(),
        vec!["console.rollback", "console.publish"]
    );
    assert_eq!(log[0].target, "#2");

    // Filters.
    assert_eq!(
        ids(
            Filter {
                from: Some(UnixMillis(T0)),
                to: Some(UnixMillis(T0 + 2 * MIN)),
                ..Filter::default()
            },
            j
        ),
        vec![1, 2]
    );
    assert_eq!(
        ids(
            Filter {
                channel: Some(Channel::MobileApp),
                ..Filter::default()
            },
            j
        ),
        vec![2]
    );
    assert_eq!(
        ids(
            Filter {
                action: Some(Action::Deny),
                ..Filter::default()
            },
            j
        ),
        vec![4, 1, 3]
    );
    let code = a.reasons[0].0.clone();
    assert!(
        ids(
            Filter {
                reason: Some(code),
                ..Filter::default()
            },
            j
        )
        .contains(&1)
    );
    assert!(
        ids(
            Filter {
                reason: Some("no_such_code".into()),
                ..Filter::default()
            },
            j
        )
        .is_empty()
    );
    assert_eq!(
        ids(
            Filter {
                user: Some(user_key("alice")),
                ..Filter::default()
            },
            j
        ),
        vec![1, 3]
    );
    assert_eq!(
        ids(
            Filter {
                decision: Some(3),
                ..Filter::default()
            },
            j
        ),
        vec![3]
    );

    let s = j.stats().unwrap();
    assert_eq!((s.decisions, s.outcomes), (4, 6));
    assert_eq!(s.oldest, Some(old.at));
    assert_eq!(s.newest, Some(c.at));
    assert!(s.bytes > 0);
    let per_day: u64 = s.by_day.iter().map(|d| d.2).sum();
    assert_eq!(per_day, 4);

    // Erasure: every decision of the user and its outcomes.
    assert_eq!(j.forget(user_key("alice")).unwrap(), 2);
    assert_eq!(ids(Filter::default(), j), vec![4, 2]);
    assert!(j.outcomes(1).unwrap().is_empty());
    assert_eq!(j.forget(user_key("alice")).unwrap(), 0);

    // Retention.
    assert_eq!(j.prune(UnixMillis(T0 - 86_400_000)).unwrap(), 1);
    assert_eq!(ids(Filter::default(), j), vec![2]);
    let s = j.stats().unwrap();
    assert_eq!(s.decisions, 1);
}
