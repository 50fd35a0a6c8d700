//! `riskgate train`: the trained model file loads as serving loads it and
//! ranks attacks above legitimate logins on data it has not seen.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use riskgate::core::model::Model;
use riskgate::core::rules::RuleSet;
use riskgate::signals::device::UaParser;
use riskgate::store::memory::MemoryLimits;
use riskgate::tools::replay::reader::RbaReader;
use riskgate::tools::replay::{LEGIT, Replayer, Settings, Variant, eval};
use riskgate::tools::simulate::{self, SimConfig, Sources};
use riskgate::tools::train::{self, TrainOptions};

fn simulated(seed: u64) -> Vec<u8> {
    let mut cfg = SimConfig::new(seed, 300, 21);
    cfg.attack_rate = 0.1;
    let mut out = Vec::new();
    simulate::run(&cfg, &mut Sources::builtin().unwrap(), &mut out).unwrap();
    out
}

/// (score, is attack) of every row of `csv` replayed with `model`.
fn scores(csv: &[u8], model: Model) -> Vec<(f64, bool)> {
    let settings = Settings {
        variants: vec![Variant {
            name: "riskgate".into(),
            rules_origin: "shipped".into(),
            model_origin: "trained".into(),
            rules: RuleSet::embedded().unwrap(),
            model,
        }],
        freeman: false,
        skip_bad: false,
        reorder_window: 0,
        limits: MemoryLimits::default(),
        features: Default::default(),
        geo: None,
        freeman_user_history: 100,
    };
    let mut out = Vec::new();
    Replayer::new(settings, UaParser::new(1000))
        .run(RbaReader::new(csv).unwrap(), |o| {
            out.push((o.decisions[0].decision.score, o.label != LEGIT));
            Ok(())
        })
        .unwrap();
    out
}

#[test]
fn trained_model_loads_and_ranks_unseen_attacks_above_legitimate_logins() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.csv");
    std::fs::write(&path, simulated(11)).unwrap();
    let model = train::train_file(&path, &TrainOptions::new("t", "2026-01-01")).unwrap();
    let json = model.to_json();
    let out = dir.path().join("t.json");
    std::fs::write(&out, &json).unwrap();

    // Loads as serving loads it, with the schema and metadata.
    let loaded = Model::load(&out).unwrap();
    assert_eq!(loaded.version(), "trained-t-2026-01-01");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    for key in [
        "format",
        "version",
        "features",
        "weights",
        "intercept",
        "mean",
        "scale",
        "calibration",
        "training",
    ] {
        assert!(v.get(key).is_some(), "missing `{key}`");
    }
    let n = v["features"].as_array().unwrap().len();
    assert!(n > 5);
    for key in ["weights", "mean", "scale"] {
        let xs = v[key].as_array().unwrap();
        assert_eq!(xs.len(), n, "{key}");
        assert!(xs.iter().all(|x| x.as_f64().unwrap().is_finite()), "{key}");
    }
    assert_eq!(loaded.feature_names().count(), n);
    let t = &v["training"];
    assert_eq!(t["data"]["sha256"].as_str().unwrap().len(), 64);
    assert!(t["data"]["labels"]["legit"].as_u64().unwrap() > 0);
    assert!(t["held_out"]["auc"].as_f64().unwrap() > 0.5);

    // Ranks attacks above legitimate logins on another seed.
    let s = scores(&simulated(12), loaded);
    let mut legit: Vec<f64> = s.iter().filter(|(_, a)| !a).map(|(s, _)| *s).collect();
    let mut attack: Vec<f64> = s.iter().filter(|(_, a)| *a).map(|(s, _)| *s).collect();
    legit.sort_by(f64::total_cmp);
    attack.sort_by(f64::total_cmp);
    assert!(attack.len() > 20, "{} attack rows", attack.len());
    let auc = eval::auc(&legit, &attack).unwrap();
    assert!(auc > 0.7, "held-out seed AUC {auc}");
}

#[test]
fn holdout_outside_zero_one_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.csv");
    std::fs::write(&path, simulated(13)).unwrap();
    let mut opts = TrainOptions::new("t", "2026-01-01");
    opts.holdout = 1.5;
    let e = train::train_file(&path, &opts).unwrap_err().to_string();
    assert!(e.contains("`--holdout` must be between 0 and 1"), "{e}");
}

#[test]
fn inputs_kept_from_the_prior_or_against_its_sign_are_not_learned() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.csv");
    std::fs::write(&path, simulated(14)).unwrap();
    let mut opts = TrainOptions::new("k", "2026-01-01");
    opts.keep_prior = vec!["new_user".into()];
    opts.sign_from_prior = true;
    let m = train::train_file(&path, &opts).unwrap();
    let prior: serde_json::Value =
        serde_json::from_str(riskgate::core::model::DEFAULT_MODEL_JSON).unwrap();
    let prior_weight = |name: &str| prior_weight_or_zero(&prior, name);
    let t = &m.training;
    assert!(t.carried_from_prior.contains(&"new_user".to_string()));
    for (i, name) in m.features.iter().enumerate() {
        if t.carried_from_prior.contains(name) {
            // The prior's weight, rescaled by Platt's a only.
            let expected = m.calibration.a * prior_weight(name);
            assert!((m.weights[i] - expected).abs() < 1e-9, "{name}");
        } else {
            // Every learned input agrees in sign with the prior.
            let pw = prior_weight_or_zero(&prior, name);
            assert!(m.weights[i] * pw >= 0.0, "{name}: {} vs {pw}", m.weights[i]);
        }
    }
    for name in &t.sign_conflicts {
        assert!(t.carried_from_prior.contains(name), "{name}");
    }
    let e = train::train_file(
        &path,
        &TrainOptions {
            keep_prior: vec!["new_devcie".into()],
            ..TrainOptions::new("k", "2026-01-01")
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("unknown input `new_devcie`"), "{e}");
}

/// The prior's weight per raw unit of the input (a trained prior stores
/// weight per standard deviation, with its `scale`).
fn prior_weight_or_zero(prior: &serde_json::Value, name: &str) -> f64 {
    let names = prior["features"].as_array().unwrap();
    names.iter().position(|n| n == name).map_or(0.0, |i| {
        let scale = prior["scale"]
            .get(i)
            .and_then(|s| s.as_f64())
            .unwrap_or(1.0);
        prior["weights"][i].as_f64().unwrap() / scale
    })
}
