//! The uap-core user-agent backend, selected by configuration.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;

use common::*;
use riskgate::api::pb;

fn regexes() -> Option<PathBuf> {
    let base = std::env::var_os("RISKGATE_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    let p = base.join("uap-core/regexes.yaml");
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "uap-core missing at {}",
        p.display()
    );
    eprintln!("skipping: no uap-core at {}", p.display());
    None
}

#[tokio::test]
async fn a_server_on_uap_core_rules_flags_crawlers() {
    let Some(path) = regexes() else { return };
    let mut c = config();
    c.device.ua_regexes = Some(path);
    let mut s = start_with(c).await;
    let bot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
    let r = s
        .client
        .evaluate(attempt("sam", "198.51.100.80", "dev-s", bot))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(action(&r), pb::Action::Deny, "{r:?}");
    assert!(
        codes(&r).contains(&"automation_on_interactive_channel".to_string()),
        "{r:?}"
    );
    let r = s
        .client
        .evaluate(attempt("tess", "198.51.100.81", "dev-t", CHROME))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(action(&r), pb::Action::Allow, "{r:?}");
    s.running.shutdown().await;
}

#[tokio::test]
async fn a_missing_rules_file_refuses_to_start_naming_it() {
    let mut c = config();
    c.device.ua_regexes = Some(PathBuf::from("/nonexistent/regexes.yaml"));
    let e = riskgate::server::start(&c)
        .await
        .err()
        .expect("must refuse");
    assert!(e.to_string().contains("/nonexistent/regexes.yaml"), "{e}");
}
