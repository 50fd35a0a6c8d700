//! The analyst's tools: `riskgate rules check` and `riskgate rules explain`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

fn riskgate(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_riskgate"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_shipped_rules_check_clean() {
    let (code, out, _) = riskgate(&["rules", "check", "rules/default.toml"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("ok —") && out.contains("tests passed"),
        "{out}"
    );
}

#[test]
fn a_broken_file_reports_every_error_with_positions_and_exits_nonzero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let text = riskgate::core::rules::DEFAULT_RULES_TOML.to_string()
        + "\n[[rule]]\nname = \"typo\"\nwhen = \"geo.contry == 'SE'\"\neffect = \"deny\"\n"
        + "\n[[rule]]\nname = \"mismatch\"\nwhen = \"velocity.user_failures_1h > '3'\"\neffect = \"deny\"\n";
    std::fs::write(&path, &text).unwrap();
    let typo_line = text.lines().position(|l| l.contains("geo.contry")).unwrap() + 1;
    let (code, _, err) = riskgate(&["rules", "check", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("bad.toml:{typo_line}:9: `typo`")),
        "position of the typo missing: {err}"
    );
    assert!(err.contains("did you mean `geo.country`"), "{err}");
    assert!(err.contains("`mismatch`"), "{err}");
    assert!(err.contains("2 error(s)"), "{err}");
}

#[test]
fn explain_shows_which_rules_fire_and_the_fields_they_read() {
    let (code, out, err) = riskgate(&[
        "rules",
        "explain",
        "rules/default.toml",
        "--features",
        r#"{"velocity": {"ip_distinct_users_1h": 40, "ip_failures_1h": 38}}"#,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("action deny"), "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("password_spray_source"))
        .unwrap();
    assert!(line.contains("FIRES"), "{line}");
    assert!(line.contains("velocity.ip_distinct_users_1h=40"), "{line}");
    let (code, _, err) = riskgate(&[
        "rules",
        "explain",
        "rules/default.toml",
        "--features",
        r#"{"velocity": {"ip_failure_1h": 3}}"#,
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("did you mean `velocity.ip_failures_1h`"),
        "{err}"
    );
}
