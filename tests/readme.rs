//! The README's "Try it" is executed, not just read: every `cargo run -q --`
//! command of its code block runs (as the built binary) against a real
//! server, in order, and each answer must be what the comment under the
//! command shows — the first line (action and score, or the report's
//! line) and every reason line with its weight.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A command and the lines its comment says it prints.
struct Step {
    args: Vec<String>,
    expect: Vec<String>,
}

/// Splits a shell line into words: single and double quotes, backslash
/// continuations already joined.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn steps() -> Vec<Step> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme.find("## Try it").expect("a Try it section")..];
    let start = section.find("```sh\n").unwrap() + 6;
    let block = &section[start..start + section[start..].find("```").unwrap()];
    let mut steps: Vec<Step> = Vec::new();
    let mut pending = String::new();
    // After a command, the comment lines up to the next blank line show its
    // output; comments after a blank line describe the next command.
    let mut collecting = false;
    for line in block.lines() {
        if !pending.is_empty() || line.starts_with("cargo run -q -- ") {
            pending.push_str(line.trim_end_matches('\\'));
            pending.push(' ');
            if line.ends_with('\\') {
                continue;
            }
            let w = words(pending.trim());
            assert_eq!(&w[..4], ["cargo", "run", "-q", "--"]);
            steps.push(Step {
                args: w[4..].to_vec(),
                expect: Vec::new(),
            });
            pending.clear();
            collecting = true;
        } else if line.trim().is_empty() {
            collecting = false;
        } else if let (true, Some(c), Some(s)) =
            (collecting, line.strip_prefix("# "), steps.last_mut())
        {
            s.expect.push(c.to_string());
        }
    }
    steps
}

fn reason_line(l: &str) -> Option<(String, String)> {
    let l = l.trim_start();
    let mut parts = l.split_whitespace();
    let code = parts.next()?;
    let weight = parts.next()?;
    (weight.starts_with('+') || weight.starts_with('-'))
        .then(|| (code.to_string(), weight.to_string()))
}

#[test]
fn the_try_it_section_runs_as_written() {
    let steps = steps();
    assert!(steps.len() >= 4, "{} commands found", steps.len());
    let bin = env!("CARGO_BIN_EXE_riskgate");
    let mut server = Command::new(bin)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "off",
        ])
        .args(["--log-format", "json", "--journal", "off"])
        .env_remove("RISKGATE_CONFIG")
        .env_remove("RISKGATE_RULES")
        .env_remove("RISKGATE_MODEL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = server.stderr.take().unwrap();
    let mut addr = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    for line in BufReader::new(stderr).lines() {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap_or_default();
        if v["message"] == "riskgate serving" {
            addr = format!("http://{}", v["listen"].as_str().unwrap());
            break;
        }
        assert!(Instant::now() < deadline, "the server did not start");
    }
    let mut last_decision = String::new();
    let mut failures = Vec::new();
    for step in &steps {
        let args: Vec<String> = step
            .args
            .iter()
            .map(|a| {
                if a == "AaIH…" {
                    last_decision.clone()
                } else {
                    a.clone()
                }
            })
            .collect();
        let out = Command::new(bin)
            .args(&args)
            .args(["--addr", &addr])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if let Some(id) = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("decision "))
        {
            last_decision = id.to_string();
        }
        let shown = step.args.join(" ");
        if !out.status.success() {
            failures.push(format!(
                "`{shown}` failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let first = text.lines().next().unwrap_or("").trim();
        let expected_first = step.expect.first().map(|s| s.trim()).unwrap_or("");
        if first != expected_first {
            failures.push(format!(
                "`{shown}`: the README says `{expected_first}`, the server answered `{first}`"
            ));
        }
        let got: Vec<(String, String)> = text.lines().filter_map(reason_line).collect();
        for e in step.expect.iter().skip(1).filter_map(|l| reason_line(l)) {
            if !got.contains(&e) {
                failures.push(format!(
                    "`{shown}`: the README shows {} {}, the answer has {got:?}",
                    e.0, e.1
                ));
            }
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        failures.is_empty(),
        "README drifted:\n  {}",
        failures.join("\n  ")
    );
}
