//! The shape of the code, checked: the pure core imports nothing of the
//! crate but itself and `domain`, and only the edge (`src/api/`) names
//! tonic or protobuf types (ARCHITECTURE.md, "Invariants").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Each code line (comments left out) of every `.rs` file under `dir`,
/// with its file and line number.
fn code_lines(dir: &Path) -> Vec<(String, usize, String)> {
    let mut files = Vec::new();
    rust_files(dir, &mut files);
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let name = f.strip_prefix(src()).unwrap().display().to_string();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if !code.trim().is_empty() {
                out.push((name.clone(), i + 1, code.to_string()));
            }
        }
    }
    out
}

/// The crate paths a line names: `crate::x` for each `crate::` in it.
fn crate_paths(line: &str) -> Vec<String> {
    line.match_indices("crate::")
        .map(|(i, _)| {
            line[i + 7..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

#[test]
fn the_core_imports_only_itself_and_the_domain() {
    let mut offenders = Vec::new();
    for (file, n, line) in code_lines(&src().join("core")) {
        for module in crate_paths(&line) {
            if module != "core" && module != "domain" {
                offenders.push(format!("src/{file}:{n}: crate::{module}"));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "src/core/ may use only crate::core and crate::domain:\n  {}",
        offenders.join("\n  ")
    );
}

#[test]
fn only_the_edge_names_tonic_or_protobuf_types() {
    let mut offenders = Vec::new();
    for (file, n, line) in code_lines(&src()) {
        if file.starts_with("api/") {
            continue;
        }
        // `.with_tonic()` (the OTLP exporter's transport) names no type.
        for needle in ["tonic::", "tonic_", "use tonic", "pb::", "prost"] {
            if line.contains(needle) {
                offenders.push(format!("src/{file}:{n}: {}", line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "tonic and protobuf types belong to src/api/:\n  {}",
        offenders.join("\n  ")
    );
}

#[test]
fn the_checks_see_what_they_guard() {
    // The guards above would pass vacuously if they found no code.
    assert!(code_lines(&src().join("core")).len() > 1000);
    assert_eq!(
        crate_paths("use crate::store::X; crate::core::y"),
        ["store", "core"]
    );
}
