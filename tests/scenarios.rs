//! The scenario corpus (`testdata/scenarios/*.toml`) through the pure core,
//! with no server: each file is a short history and an attempt with the
//! decision expected for it (see `common/scenario.rs` for the format).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/scenario.rs"]
mod scenario;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use riskgate::core::features::{Features, INPUTS};
use riskgate::core::model::Model;
use riskgate::core::policy::GUARD_CODES;
use riskgate::core::rules::RuleSet;
use riskgate::core::rules::cel::{Schema, Type};

use scenario::Scenario;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/scenarios")
}

fn corpus() -> Vec<(String, Scenario)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "toml")
                && !p
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("rules_")
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&p).unwrap();
            let s: Scenario = toml::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, s)
        })
        .collect()
}

#[test]
fn every_scenario_decides_as_expected() {
    let corpus = corpus();
    assert!(corpus.len() >= 25, "only {} scenarios", corpus.len());
    let mut failures = Vec::new();
    for (name, s) in &corpus {
        match scenario::run(&dir(), s) {
            Ok(e) => {
                let problems = scenario::check(&s.expect, &e.decision);
                if !problems.is_empty() {
                    failures.push(format!(
                        "{name} ({}):\n    {}",
                        s.description,
                        problems.join("\n    ")
                    ));
                }
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n  {}",
        failures.len(),
        corpus.len(),
        failures.join("\n  ")
    );
}

/// Features with every count at 1000 and the booleans as `on` says.
fn extreme(on: impl Fn(&str) -> bool) -> Features {
    let mut t = toml::Table::new();
    for f in Features::fields() {
        let (section, name) = f.path.split_once('.').unwrap();
        let v = match f.ty {
            Type::Bool => toml::Value::Boolean(on(f.path)),
            Type::Int if f.path == "attempt.hour_of_week" => toml::Value::Integer(3),
            Type::Int if f.path == "attempt.ip_version" => toml::Value::Integer(4),
            Type::Int => toml::Value::Integer(1000),
            Type::Double => toml::Value::Float(1000.0),
            Type::String => continue,
        };
        t.entry(section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .unwrap()
            .insert(name.to_string(), v);
    }
    riskgate::core::rules::features_from_table(&t).unwrap()
}

/// Every reason code the shipped rules and model can put in a decision:
/// the rules' names, the policy's guards, and each model input whose
/// contribution can reach the reporting threshold (tried on features with
/// every flag on, every flag off, and each flag alone).
fn emittable() -> BTreeSet<String> {
    let rules = RuleSet::embedded().unwrap();
    let model = Model::embedded().unwrap();
    let mut codes: BTreeSet<String> = rules.rules.iter().map(|r| r.name.clone()).collect();
    codes.extend(GUARD_CODES.iter().map(|c| c.to_string()));
    let bools: Vec<&str> = Features::fields()
        .iter()
        .filter(|f| f.ty == Type::Bool)
        .map(|f| f.path)
        .collect();
    let mut candidates = vec![extreme(|_| true), extreme(|_| false)];
    for b in &bools {
        candidates.push(extreme(|p| p == *b));
    }
    for f in &candidates {
        for c in model.score(f).contributions {
            codes.insert(INPUTS[c.input].code.to_string());
        }
    }
    codes
}

#[test]
fn the_corpus_covers_every_code_the_shipped_rules_and_model_can_emit() {
    let mut covered = BTreeSet::new();
    for (_, s) in corpus() {
        covered.extend(s.expect.reasons.iter().cloned());
        covered.extend(s.expect.shadow.iter().cloned());
    }
    let missing: Vec<String> = emittable().difference(&covered).cloned().collect();
    assert!(missing.is_empty(), "no scenario expects: {missing:?}");
}

#[test]
fn the_corpus_covers_both_downgrades_every_fail_mode_and_shadow_rules() {
    let corpus = corpus();
    let has = |f: &dyn Fn(&Scenario) -> bool| corpus.iter().any(|(_, s)| f(s));
    for channel in ["call_center", "api"] {
        assert!(
            has(
                &|s| s.attempt.channel.is_some_and(|c| c.as_str() == channel)
                    && s.expect.reasons.iter().any(|r| r == "no_acceptable_factor")
            ),
            "no downgrade-to-deny scenario on {channel}"
        );
    }
    for rules in [
        None,
        Some("rules_fail_allow.toml"),
        Some("rules_fail_deny.toml"),
    ] {
        assert!(
            has(&|s| s.attempt.store_down && s.rules.as_deref() == rules),
            "no store-down scenario under {rules:?}"
        );
    }
    assert!(has(&|s| !s.expect.shadow.is_empty()));
}

/// A scenario from text, for the checks below.
fn scenario(text: &str) -> Scenario {
    toml::from_str(text).unwrap()
}

#[test]
fn freeman_scores_a_familiar_ip_and_browser_lower() {
    let history = r#"
        [[history]]
        user = "u1"
        ip = "198.51.100.1"
        user_agent = "firefox_linux"
        at = "-4d"
        repeat = 2
        outcome = "verified"
        [[history]]
        user = "u2"
        ip = "203.0.113.9"
        user_agent = "chrome_win"
        at = "-2d"
        outcome = "verified"
        [[history]]
        user = "u3"
        ip = "192.0.2.5"
        user_agent = "chrome_win"
        at = "-1d"
        outcome = "verified"
    "#;
    let probe = |user: &str, ip: &str, ua: &str| {
        let s = scenario(&format!(
            "description = \"probe\"\n{history}\n[attempt]\nuser = \"{user}\"\nip = \"{ip}\"\nuser_agent = \"{ua}\"\n[expect]\naction = \"allow\"\nreasons = []\n"
        ));
        scenario::run(&dir(), &s).unwrap().features
    };
    let familiar = probe("u1", "198.51.100.1", "firefox_linux");
    let strange = probe("u1", "203.0.113.77", "chrome_win");
    assert!(familiar.behavior.freeman_score > 0.0);
    assert!(
        familiar.behavior.freeman_score < strange.behavior.freeman_score,
        "{} vs {}",
        familiar.behavior.freeman_score,
        strange.behavior.freeman_score
    );
    assert!((0.0..=1.0).contains(&strange.behavior.freeman_risk));
    // A user without history has no Freeman score (enrolment).
    let new = probe("u9", "198.51.100.1", "firefox_linux");
    assert_eq!(new.behavior.freeman_score, 0.0);
}
