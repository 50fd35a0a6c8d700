//! `riskgate rules check` and `riskgate rules explain`.

use std::path::Path;

use anyhow::Context as _;

use crate::core::rules::{RuleSet, features_from_table};

/// Validates a rule file and runs its tests. Returns whether it passed.
pub fn check(file: &Path) -> bool {
    match RuleSet::load(file) {
        Ok(set) => {
            for w in &set.warnings {
                eprintln!("warning: {w}");
            }
            println!(
                "{}: ok — {} rules ({} shadow), {} tests passed, version {}",
                file.display(),
                set.rules.len(),
                set.rules.iter().filter(|r| r.shadow).count(),
                set.tests_passed,
                set.version
            );
            true
        }
        Err(e) => {
            for w in &e.warnings {
                eprintln!("warning: {w}");
            }
            for d in &e.errors {
                eprintln!("error: {d}");
            }
            eprintln!("{}: {} error(s)", file.display(), e.errors.len());
            false
        }
    }
}

/// Explains which rules fire for the given features.
pub fn explain(file: &Path, features: &str, score: f64) -> anyhow::Result<()> {
    let set = RuleSet::load(file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let text = match features.strip_prefix('@') {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("cannot read `{path}`"))?
        }
        None => features.to_string(),
    };
    let json: serde_json::Value =
        serde_json::from_str(&text).context("--features is not valid JSON")?;
    let table: toml::Table =
        serde_json::from_value(json).context("--features must be a JSON object")?;
    let f = features_from_table(&table).map_err(|e| anyhow::anyhow!("{e}"))?;
    let ex = set.explain(&f, score);
    println!("action {} (score {:.3})", ex.action, ex.score);
    for r in &ex.rules {
        let state = match (r.applies, r.fired, &r.error) {
            (false, _, _) => "n/a  ".to_string(),
            (_, _, Some(e)) => format!("ERROR {e}"),
            (_, true, _) => "FIRES".to_string(),
            (_, false, _) => "-    ".to_string(),
        };
        let fields: Vec<String> = r.fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!(
            "  {state} {}{}  [{}]",
            r.name,
            if r.shadow { " (shadow)" } else { "" },
            fields.join(", ")
        );
    }
    Ok(())
}
