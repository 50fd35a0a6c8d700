//! The analyst console on a real server: sign-in, sessions and CSRF over
//! plain HTTP, and a real headless Chromium (Debian `chromium` +
//! `chromium-driver`, driven over the WebDriver protocol) that signs in,
//! explores the journal, opens a decision, labels it, and signs out;
//! screenshots of each page go to `target/console-screenshots/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::http::{Answer, request};
use common::*;
use riskgate::config::{Config, Overrides};
use riskgate::journal::{Filter, Label, Target};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const EDITOR: &str = "console-editor-token-0123456789abcdef";
const VIEWER: &str = "console-viewer-token-0123456789abcdef";

fn console_config(journal: &Path) -> Config {
    let journal = journal.display().to_string();
    let mut c = Config::resolve(
        &Overrides {
            listen: Some("127.0.0.1:0".into()),
            metrics_listen: Some("off".into()),
            admin_listen: Some("127.0.0.1:0".into()),
            journal: Some(journal),
            ..Overrides::default()
        },
        move |k| match k {
            "RISKGATE_HMAC_KEY" => Some("console-test-hmac-key-0123456789".into()),
            "RISKGATE_ADMIN_TOKEN" => Some(EDITOR.into()),
            "RISKGATE_CONSOLE_VIEWER_TOKEN" => Some(VIEWER.into()),
            _ => None,
        },
    )
    .unwrap();
    c.sources.reload_interval = Duration::from_millis(200);
    c
}

/// A console request: the session cookie and a form body when given.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: Option<&str>,
) -> Answer {
    let cookie = cookie.map(|c| format!("riskgate_console={c}"));
    let mut headers = Vec::new();
    if form.is_some() {
        headers.push(("content-type", "application/x-www-form-urlencoded"));
    }
    if let Some(c) = &cookie {
        headers.push(("cookie", c.as_str()));
    }
    request(addr, method, path, &headers, form.unwrap_or("").as_bytes()).await
}

/// An editor page's JSON fetch (the CSRF token in `x-csrf-token`).
async fn fetch(
    addr: SocketAddr,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
    body: &Value,
) -> Answer {
    let cookie = format!("riskgate_console={cookie}");
    let mut headers = vec![
        ("content-type", "application/json"),
        ("cookie", cookie.as_str()),
    ];
    if let Some(c) = csrf {
        headers.push(("x-csrf-token", c));
    }
    request(addr, "POST", path, &headers, body.to_string().as_bytes()).await
}

async fn sign_in(addr: SocketAddr, token: &str) -> String {
    let a = http(
        addr,
        "POST",
        "/console/login",
        None,
        Some(&format!("token={token}")),
    )
    .await;
    assert_eq!(a.status, 303, "{}", a.body);
    let cookie = &a.headers["set-cookie"];
    cookie
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("riskgate_console=")
        .unwrap()
        .to_string()
}

fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    page[at..at + 64].to_string()
}

/// Some decisions to look at: logins that are allowed, stepped up and
/// denied, one reported as a success.
async fn traffic(s: &mut TestServer) -> String {
    let mut last = String::new();
    for i in 0..6 {
        let r = s
            .client
            .evaluate(attempt(
                &format!("carla{i}"),
                "198.51.100.30",
                "laptop-c",
                CHROME,
            ))
            .await
            .unwrap()
            .into_inner();
        last = r.decision_id.clone();
    }
    let mut bad = attempt("mallory", "203.0.113.66", "", "curl/8.4.0");
    bad.credential_result = riskgate::api::pb::CredentialResult::Invalid as i32;
    s.client.evaluate(bad).await.unwrap();
    engine(s).flush().await;
    last
}

/// The oldest journaled decision (carla0's first login on the web).
fn first_decision(path: &Path) -> riskgate::journal::Record {
    let mut j = riskgate::journal::open(&Target::Sqlite(path.to_path_buf())).unwrap();
    let mut first = None;
    j.scan(&Filter::default(), &mut |r| {
        first = Some(r);
        false
    })
    .unwrap();
    first.unwrap()
}

fn journal_label(path: &Path, uuid: u128) -> Option<Label> {
    let mut j = riskgate::journal::open(&Target::Sqlite(path.to_path_buf())).unwrap();
    let mut label = None;
    j.scan(
        &Filter {
            decision: Some(uuid),
            ..Filter::default()
        },
        &mut |r| {
            label = r.label;
            false
        },
    )
    .unwrap();
    label
}

#[tokio::test]
async fn sign_in_sessions_and_csrf_guard_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j.db");
    let mut s = start_with(console_config(&journal)).await;
    traffic(&mut s).await;
    let addr = s.running.admin_addr.unwrap();

    // Without a session: the sign-in page.
    let a = http(addr, "GET", "/console/", None, None).await;
    assert_eq!(a.status, 303);
    assert_eq!(a.headers["location"], "/console/login");
    let a = http(addr, "GET", "/console/login", None, None).await;
    assert_eq!(a.status, 200);
    assert!(a.headers["content-security-policy"].contains("default-src 'none'"));

    // A wrong token: 401; the editor's token: a strict session cookie.
    let a = http(
        addr,
        "POST",
        "/console/login",
        None,
        Some("token=not-the-token"),
    )
    .await;
    assert_eq!(a.status, 401);
    let a = http(
        addr,
        "POST",
        "/console/login",
        None,
        Some(&format!("token={EDITOR}")),
    )
    .await;
    let cookie = &a.headers["set-cookie"];
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP here: {cookie}");
    let editor = sign_in(addr, EDITOR).await;
    let page = http(addr, "GET", "/console/decisions", Some(&editor), None).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("class=\"decision\""), "{}", page.body);
    let uuid = {
        let at = page.body.find("/console/decisions/").unwrap() + "/console/decisions/".len();
        page.body[at..at + 32].to_string()
    };
    let decision_page = http(
        addr,
        "GET",
        &format!("/console/decisions/{uuid}"),
        Some(&editor),
        None,
    )
    .await;
    assert_eq!(decision_page.status, 200);
    let csrf = csrf_of(&decision_page.body);
    let label_path = format!("/console/decisions/{uuid}/label");

    // No cookie: 401. A cookie without the CSRF token, or a wrong one: 403.
    let a = http(
        addr,
        "POST",
        &label_path,
        None,
        Some(&format!("csrf={csrf}&label=fraud")),
    )
    .await;
    assert_eq!(a.status, 401);
    let a = http(
        addr,
        "POST",
        &label_path,
        Some(&editor),
        Some("label=fraud"),
    )
    .await;
    assert_eq!(a.status, 403);
    let a = http(
        addr,
        "POST",
        &label_path,
        Some(&editor),
        Some(&format!("csrf={}&label=fraud", "0".repeat(64))),
    )
    .await;
    assert_eq!(a.status, 403);
    let id = u128::from_str_radix(&uuid, 16).unwrap();
    assert_eq!(journal_label(&journal, id), None, "nothing was labelled");

    // A viewer sees, but cannot label (and gets no buttons).
    let viewer = sign_in(addr, VIEWER).await;
    let page = http(
        addr,
        "GET",
        &format!("/console/decisions/{uuid}"),
        Some(&viewer),
        None,
    )
    .await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("label-fraud"));
    let vcsrf = csrf_of(&page.body);
    let a = http(
        addr,
        "POST",
        &label_path,
        Some(&viewer),
        Some(&format!("csrf={vcsrf}&label=fraud")),
    )
    .await;
    assert_eq!(a.status, 403);

    // The editor labels: the journal has it.
    let a = http(
        addr,
        "POST",
        &label_path,
        Some(&editor),
        Some(&format!("csrf={csrf}&label=fraud")),
    )
    .await;
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(journal_label(&journal, id), Some(Label::Fraud));

    // The label is in the audit trail, with the decision.
    let audit = http(addr, "GET", "/console/audit", Some(&editor), None).await;
    assert!(
        audit.body.contains("console.label") && audit.body.contains(&format!("decision {uuid}")),
        "{}",
        audit.body
    );

    // Signing out ends the session.
    let a = http(
        addr,
        "POST",
        "/console/logout",
        Some(&editor),
        Some(&format!("csrf={csrf}")),
    )
    .await;
    assert_eq!(a.status, 303);
    let a = http(addr, "GET", "/console/", Some(&editor), None).await;
    assert_eq!(a.status, 303, "the session is over");

    // Failed sign-ins are limited: after five a minute, 429.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            http(addr, "POST", "/console/login", None, Some("token=guess"))
                .await
                .status,
        );
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert_eq!(
        http(
            addr,
            "POST",
            "/console/login",
            None,
            Some(&format!("token={EDITOR}"))
        )
        .await
        .status,
        429,
        "even the right token waits out the minute"
    );

    // The console's own metrics.
    let m = engine(&s).metrics().render();
    assert!(
        m.contains("riskgate_console_requests_total{page=\"decision\",code=\"200\"}"),
        "{m}"
    );
    assert!(
        m.contains("riskgate_console_request_duration_seconds_count{page=\"explorer\"}"),
        "{m}"
    );
    s.running.shutdown().await;
}

/// A rule that steps up a new user's first login on the web.
const NEW_RULE: &str = "\n[[rule]]\nname = \"new_users_on_web_step_up\"\ndescription = \"a first login on the web proves a second factor\"\nwhen = \"user.is_new && attempt.channel == 'web'\"\neffect = \"step_up\"\n";

fn rules_config(dir: &Path) -> (Config, PathBuf) {
    let rules = dir.join("rules.toml");
    std::fs::write(&rules, riskgate::core::rules::DEFAULT_RULES_TOML).unwrap();
    let mut c = console_config(&dir.join("j.db"));
    c.sources.rules = Some(rules.clone());
    (c, rules)
}

async fn shadow_codes_for_a_new_web_user(
    s: &mut TestServer,
    user: &str,
) -> (Vec<String>, Vec<String>) {
    let r = s
        .client
        .evaluate(attempt(user, "192.0.2.77", &format!("{user}-dev"), CHROME))
        .await
        .unwrap()
        .into_inner();
    let acting = r
        .reasons
        .iter()
        .filter(|x| !x.shadow)
        .map(|x| x.code.clone())
        .collect();
    let shadow = r
        .reasons
        .iter()
        .filter(|x| x.shadow)
        .map(|x| x.code.clone())
        .collect();
    (acting, shadow)
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let enc: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={enc}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

async fn check(addr: SocketAddr, cookie: &str, csrf: Option<&str>, text: &str) -> (u16, Value) {
    let a = fetch(
        addr,
        "/console/rules/check",
        cookie,
        csrf,
        &json!({ "text": text }),
    )
    .await;
    (
        a.status,
        serde_json::from_str(&a.body).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn rules_are_checked_backtested_published_in_shadow_promoted_and_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let (config, rules_path) = rules_config(dir.path());
    let base = riskgate::core::rules::DEFAULT_RULES_TOML;
    let mut s = start_with(config).await;
    traffic(&mut s).await;
    let addr = s.running.admin_addr.unwrap();
    let editor = sign_in(addr, EDITOR).await;
    let page = http(addr, "GET", "/console/rules", Some(&editor), None).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("new_device") || page.body.contains("[policy]"));
    let csrf = csrf_of(&page.body);

    // Checked as typed: a typo is an error at its line, with a suggestion;
    // without the CSRF header the check is refused.
    let typo = format!("{base}{}", NEW_RULE.replace("user.is_new", "user.is_neww"));
    let (status, _) = check(addr, &editor, None, &typo).await;
    assert_eq!(status, 403);
    let (status, v) = check(addr, &editor, Some(&csrf), &typo).await;
    assert_eq!(status, 200);
    assert_eq!(v["ok"], false, "{v}");
    let when_line = base.lines().count() + 5;
    assert_eq!(v["errors"][0]["line"], when_line, "{v}");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `user.is_new`"),
        "{v}"
    );
    let shadow_draft = format!("{base}{NEW_RULE}mode = \"shadow\"\n");
    let (_, v) = check(addr, &editor, Some(&csrf), &shadow_draft).await;
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["tests_passed"].as_u64().unwrap() > 0);

    // Backtest the enforcing draft: some of the journaled decisions change.
    let enforce_draft = format!("{base}{NEW_RULE}");
    let bt = http(
        addr,
        "POST",
        "/console/rules/backtest",
        Some(&editor),
        Some(&form(&[
            ("csrf", &csrf),
            ("text", &enforce_draft),
            ("hours", "1"),
        ])),
    )
    .await;
    assert_eq!(bt.status, 200, "{}", bt.body);
    assert!(bt.body.contains("id=\"backtest-summary\""));
    assert!(
        bt.body.contains("/console/decisions/"),
        "changed decisions are linked"
    );

    // What if: a journaled first login on the web, decided by the live
    // rules and by the draft.
    let first = first_decision(&dir.path().join("j.db"));
    let page = http(
        addr,
        "GET",
        &format!("/console/rules?from={:032x}", first.entry.id),
        Some(&editor),
        None,
    )
    .await;
    assert!(
        page.body.contains("&quot;is_new&quot;: true") || page.body.contains("\"is_new\": true"),
        "the decision's features fill the form"
    );
    let w = fetch(
        addr,
        "/console/rules/whatif",
        &editor,
        Some(&csrf),
        &json!({
            "text": enforce_draft,
            "features": serde_json::to_string(&first.entry.features).unwrap(),
            "enrolled": "totp",
        }),
    )
    .await
    .json();
    let codes = |side: &str| -> Vec<String> {
        w[side]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["code"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(
        codes("draft").contains(&"new_users_on_web_step_up".to_string()),
        "{w}"
    );
    assert!(
        !codes("live").contains(&"new_users_on_web_step_up".to_string()),
        "{w}"
    );
    assert_eq!(w["draft"]["action"], "step_up", "{w}");

    // A viewer cannot publish; a publish needs a comment.
    let viewer = sign_in(addr, VIEWER).await;
    let vpage = http(addr, "GET", "/console/rules", Some(&viewer), None).await;
    assert!(!vpage.body.contains("id=\"publish\""));
    let vcsrf = csrf_of(&vpage.body);
    let a = http(
        addr,
        "POST",
        "/console/rules/publish",
        Some(&viewer),
        Some(&form(&[
            ("csrf", &vcsrf),
            ("text", &shadow_draft),
            ("comment", "x"),
        ])),
    )
    .await;
    assert_eq!(a.status, 403);
    let a = http(
        addr,
        "POST",
        "/console/rules/publish",
        Some(&editor),
        Some(&form(&[
            ("csrf", &csrf),
            ("text", &shadow_draft),
            ("comment", ""),
        ])),
    )
    .await;
    assert_eq!(a.status, 400);
    assert_eq!(
        std::fs::read_to_string(&rules_path).unwrap(),
        base,
        "nothing written"
    );

    // Publish in shadow: written, swapped in at once, a shadow hit.
    let a = http(
        addr,
        "POST",
        "/console/rules/publish",
        Some(&editor),
        Some(&form(&[
            ("csrf", &csrf),
            ("text", &shadow_draft),
            ("comment", "shadow first"),
        ])),
    )
    .await;
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(std::fs::read_to_string(&rules_path).unwrap(), shadow_draft);
    let (acting, shadow) = shadow_codes_for_a_new_web_user(&mut s, "nina").await;
    assert!(
        shadow.contains(&"new_users_on_web_step_up".to_string()),
        "{shadow:?}"
    );
    assert!(!acting.contains(&"new_users_on_web_step_up".to_string()));

    // Promote it: enforce.
    let a = http(
        addr,
        "POST",
        "/console/rules/publish",
        Some(&editor),
        Some(&form(&[
            ("csrf", &csrf),
            ("text", &enforce_draft),
            ("comment", "promote"),
        ])),
    )
    .await;
    assert_eq!(a.status, 303);
    let (acting, _) = shadow_codes_for_a_new_web_user(&mut s, "otto").await;
    assert!(
        acting.contains(&"new_users_on_web_step_up".to_string()),
        "{acting:?}"
    );

    // History: found, shadow, promote, with diffs; roll back to the file as
    // found.
    let h = http(addr, "GET", "/console/rules/history", Some(&editor), None).await;
    assert!(
        h.body.contains("shadow first") && h.body.contains("promote"),
        "{}",
        h.body
    );
    assert!(h.body.contains("class=\"add\""), "a diff is shown");
    let a = http(
        addr,
        "POST",
        "/console/rules/rollback",
        Some(&editor),
        Some(&form(&[("csrf", &csrf), ("n", "1")])),
    )
    .await;
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(std::fs::read_to_string(&rules_path).unwrap(), base);
    let (acting, shadow) = shadow_codes_for_a_new_web_user(&mut s, "paula").await;
    assert!(
        !acting
            .iter()
            .chain(&shadow)
            .any(|c| c == "new_users_on_web_step_up")
    );
    let h = http(addr, "GET", "/console/rules/history", Some(&editor), None).await;
    assert!(h.body.contains("roll back to #1"), "{}", h.body);

    // The audit trail shows each step, the refused one included.
    let a = http(addr, "GET", "/console/audit", Some(&viewer), None).await;
    assert_eq!(a.status, 200);
    let rows: Vec<&str> = a.body.split("<tr>").skip(2).collect();
    let row = |action: &str, detail: &str| {
        rows.iter()
            .any(|r| r.contains(&format!("<code>{action}</code>")) && r.contains(detail))
    };
    assert!(
        row("console.sign_in", "editor") && row("console.sign_in", "viewer"),
        "{}",
        a.body
    );
    assert!(row("console.publish", "shadow first"), "{}", a.body);
    assert!(row("console.publish", "promote"));
    assert!(
        row("console.publish", "permission_denied"),
        "the viewer's try"
    );
    assert!(row("console.rollback", "roll back to #1"));
    let newest = rows.first().unwrap();
    assert!(
        newest.contains("console.rollback"),
        "newest first: {newest}"
    );
    s.running.shutdown().await;
}

// ---------------------------------------------------------------------------
// A real browser.

/// A chromedriver on a free port, killed on drop.
struct Driver {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names
        .iter()
        .flat_map(|n| std::env::split_paths(&path).map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

/// One browser at a time: two Chromiums on two shared cores make each
/// other's commands time out.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn start_driver() -> Option<Driver> {
    let driver = find(&["chromedriver"])?;
    find(&["chromium", "chromium-browser", "google-chrome"])?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    Some(Driver {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    })
}

/// A WebDriver session (W3C protocol over plain HTTP/1.1).
struct Browser {
    driver: SocketAddr,
    session: String,
    shots: PathBuf,
}

async fn wd_once(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> Option<Value> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return None;
    };
    s.write_all(
        format!(
            "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .ok()?;
    // chromedriver keeps the connection open: read the headers, then the
    // body by its length (or chunks up to the last one).
    let read = async {
        let mut raw: Vec<u8> = Vec::new();
        let mut buf = [0u8; 16384];
        loop {
            // A reset connection is an unanswered command (retried).
            let n = s.read(&mut buf).await.unwrap_or(0);
            raw.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&raw).to_string();
            if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                let lower = head.to_ascii_lowercase();
                let length = lower
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                let done = match length {
                    Some(len) => rest.len() >= len,
                    None => rest.ends_with("0\r\n\r\n"),
                };
                if done || n == 0 {
                    return (head.to_string(), rest.to_string());
                }
            } else if n == 0 {
                return (text, String::new());
            }
        }
    };
    let (head, rest) = tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the driver answered");
    if head.is_empty() {
        // The driver closed the connection without an answer.
        return None;
    }
    // Chunked or not, the JSON is between the first { and the last }.
    let json_start = rest.find('{').unwrap_or(0);
    let json_end = rest.rfind('}').map_or(rest.len(), |i| i + 1);
    let v: Value = serde_json::from_str(&rest[json_start..json_end])
        .unwrap_or_else(|e| panic!("{e}: {head}\n{rest}"));
    Some(v["value"].clone())
}

/// One WebDriver command; a connection the driver drops unanswered is
/// retried.
async fn wd(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> Value {
    for _ in 0..5 {
        if let Some(v) = wd_once(addr, method, path, body.clone()).await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the driver did not answer {method} {path}");
}

/// A driver and a browser session for one test, screenshots going to
/// `target/console-screenshots/`; `None` (the test skips) where Chromium is
/// not installed, which CI does not allow.
async fn browser() -> Option<(Driver, Browser)> {
    let Some(driver) = start_driver() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs chromium and chromium-driver for the console's browser tests"
        );
        eprintln!("skipped: no chromium/chromedriver (apt-get install chromium chromium-driver)");
        return None;
    };
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    let b = Browser::start(&driver, shots)
        .await
        .expect("chromedriver did not start a session");
    Some((driver, b))
}

impl Browser {
    async fn start(driver: &Driver, shots: PathBuf) -> Option<Browser> {
        for _ in 0..50 {
            if tokio::net::TcpStream::connect(driver.addr).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let v = wd(
            driver.addr,
            "POST",
            "/session",
            Some(json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--window-size=1280,1000"
                ]}
            }}})),
        )
        .await;
        let session = v["sessionId"].as_str()?.to_string();
        std::fs::create_dir_all(&shots).unwrap();
        Some(Browser {
            driver: driver.addr,
            session,
            shots,
        })
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        wd(
            self.driver,
            method,
            &format!("/session/{}{path}", self.session),
            body,
        )
        .await
    }

    async fn go(&self, url: &str) {
        self.call("POST", "/url", Some(json!({"url": url}))).await;
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .call(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element `{css}`: {v}"))
            .to_string()
    }

    async fn exists(&self, css: &str) -> bool {
        let v = self
            .call(
                "POST",
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v.as_array().is_some_and(|a| !a.is_empty())
    }

    async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.call("GET", &format!("/element/{e}/text"), None)
            .await
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.call("POST", &format!("/element/{e}/click"), Some(json!({})))
            .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.call(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// Waits (up to 10 s) until `css`'s text contains `text`: a click that
    /// submits a form returns before the next page has loaded.
    async fn wait_text(&self, css: &str, text: &str) -> String {
        let mut seen = String::new();
        for _ in 0..100 {
            if self.exists(css).await {
                seen = self.text(css).await;
                if seen.contains(text) {
                    return seen;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("`{css}` never said `{text}` (last: `{seen}`)");
    }

    /// Waits (up to 10 s) until the address ends with `end`.
    async fn wait_url(&self, end: &str) -> String {
        let mut url = String::new();
        for _ in 0..100 {
            url = self.url().await;
            if url.ends_with(end) {
                return url;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the browser never reached `…{end}` (at {url})");
    }

    /// Runs `script` in the page (the test's stand-in for pasting).
    async fn run(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    async fn url(&self) -> String {
        self.call("GET", "/url", None)
            .await
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    async fn screenshot(&self, name: &str) {
        use base64::Engine as _;
        let v = self.call("GET", "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or(""))
            .unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    async fn quit(self) {
        wd(
            self.driver,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        )
        .await;
    }
}

#[tokio::test]
async fn an_analyst_signs_in_finds_a_decision_and_labels_it_in_a_real_browser() {
    let _one = ONE_BROWSER.lock().await;
    let Some((_driver, b)) = browser().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j.db");
    let mut s = start_with(console_config(&journal)).await;
    traffic(&mut s).await;
    let base = format!("http://{}", s.running.admin_addr.unwrap());

    // Sign in: a wrong token is refused on the page, the right one enters.
    b.go(&format!("{base}/console/")).await;
    assert!(b.url().await.ends_with("/console/login"));
    b.screenshot("1-sign-in").await;
    b.type_into("#token", "wrong-token").await;
    b.click("#sign-in").await;
    b.wait_text("#problem", "not valid").await;
    b.type_into("#token", EDITOR).await;
    b.click("#sign-in").await;
    b.wait_url("/console/").await;
    assert_eq!(b.wait_text("#total", "7").await, "7");
    assert!(
        b.exists("figure.chart svg").await,
        "the overview draws its charts"
    );
    b.screenshot("2-overview").await;

    // The explorer: denied decisions only, then the first one opened.
    b.go(&format!("{base}/console/decisions?action=deny")).await;
    assert!(
        b.wait_text("#count", "decision")
            .await
            .starts_with("1 decision"),
        "{}",
        b.text("#count").await
    );
    b.screenshot("3-explorer").await;
    b.click("a.decision").await;
    b.wait_text("#reasons", "invalid_credential").await;
    assert!(b.text("#features").await.contains("\"credential_result\""));
    b.screenshot("4-decision").await;

    // Label it as fraud: the page says so and the journal has it.
    b.click("#label-fraud").await;
    b.wait_text("#flash", "Labelled fraud").await;
    assert_eq!(b.text("#label").await, "fraud");
    let url = b.url().await;
    let uuid = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    assert_eq!(
        journal_label(&journal, u128::from_str_radix(uuid, 16).unwrap()),
        Some(Label::Fraud)
    );

    // Sign out; a viewer sees the same page without the buttons.
    b.click("header button.link").await;
    b.wait_url("/console/login").await;
    b.type_into("#token", VIEWER).await;
    b.click("#sign-in").await;
    b.wait_url("/console/").await;
    b.go(&url).await;
    assert_eq!(b.wait_text("#label", "fraud").await, "fraud");
    assert!(!b.exists("#label-fraud").await, "viewers cannot label");
    eprintln!("screenshots in {}", b.shots.display());
    b.quit().await;
    s.running.shutdown().await;
}

#[tokio::test]
async fn an_analyst_edits_backtests_publishes_and_rolls_back_a_rule_in_a_real_browser() {
    let _one = ONE_BROWSER.lock().await;
    let Some((_driver, b)) = browser().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (config, rules_path) = rules_config(dir.path());
    let base_text = riskgate::core::rules::DEFAULT_RULES_TOML;
    let mut s = start_with(config).await;
    traffic(&mut s).await;
    let base = format!("http://{}", s.running.admin_addr.unwrap());
    b.go(&format!("{base}/console/login")).await;
    b.type_into("#token", EDITOR).await;
    b.click("#sign-in").await;
    b.wait_url("/console/").await;

    // The editor: a typo is flagged at its line as it is typed.
    b.go(&format!("{base}/console/rules")).await;
    b.wait_text("#diagnostics", "valid").await;
    b.run(
        "var d = document.getElementById('draft'); d.focus(); d.setSelectionRange(d.value.length, d.value.length);",
        json!([]),
    )
    .await;
    b.type_into("#draft", &NEW_RULE.replace("user.is_new", "user.is_neww"))
        .await;
    let line = base_text.lines().count() + 5;
    let said = b.wait_text("#diagnostics", &format!("line {line}")).await;
    assert!(said.contains("did you mean"), "{said}");
    assert!(
        b.exists("#gutter .bad").await,
        "the line is marked in the gutter"
    );
    b.screenshot("5-rules-error").await;

    // Field names complete: `velocity.ip_fa` offers `velocity.ip_failures_1h`.
    b.type_into("#draft", "\n# velocity.ip_fa").await;
    b.wait_text("#complete", "velocity.ip_failures_1h").await;

    // Fixed (in shadow), checked, backtested, published.
    b.run(
        "var d = document.getElementById('draft'); d.value = arguments[0]; d.dispatchEvent(new Event('input'));",
        json!([format!("{base_text}{NEW_RULE}mode = \"shadow\"\n")]),
    )
    .await;
    b.wait_text("#diagnostics", "tests passed").await;

    // What if, from a journaled first login: the shadow rule shows on the
    // draft's side only.
    let first = first_decision(&dir.path().join("j.db"));
    b.go(&format!("{base}/console/decisions/{:032x}", first.entry.id))
        .await;
    b.click("#whatif-link").await;
    b.wait_text("#whatif", "The features of decision").await;
    b.run(
        "var d = document.getElementById('draft'); d.value = arguments[0]; d.dispatchEvent(new Event('input'));",
        json!([format!("{base_text}{NEW_RULE}mode = \"shadow\"\n")]),
    )
    .await;
    b.click("#whatif-run").await;
    b.wait_text("#whatif-draft", "new_users_on_web_step_up")
        .await;
    assert!(
        !b.text("#whatif-live")
            .await
            .contains("new_users_on_web_step_up")
    );
    b.screenshot("6-whatif").await;
    b.wait_text("#diagnostics", "tests passed").await;
    b.click("#backtest").await;
    b.wait_text("#backtest-summary", "decisions").await;
    b.screenshot("7-backtest").await;
    b.type_into("#comment", "new web users: shadow first").await;
    b.click("#publish").await;
    b.wait_text("#flash", "is live").await;
    b.screenshot("8-history").await;
    assert!(
        std::fs::read_to_string(&rules_path)
            .unwrap()
            .contains("new_users_on_web_step_up")
    );
    let (_, shadow) = shadow_codes_for_a_new_web_user(&mut s, "quinn").await;
    assert!(
        shadow.contains(&"new_users_on_web_step_up".to_string()),
        "{shadow:?}"
    );

    // Promote: the same rule, enforced.
    b.go(&format!("{base}/console/rules")).await;
    b.wait_text("#diagnostics", "valid").await;
    b.run(
        "var d = document.getElementById('draft'); d.value = arguments[0]; d.dispatchEvent(new Event('input'));",
        json!([format!("{base_text}{NEW_RULE}")]),
    )
    .await;
    b.wait_text("#diagnostics", "tests passed").await;
    b.type_into("#comment", "promote: enforce").await;
    b.click("#publish").await;
    b.wait_text("#flash", "#3 is live").await;
    let (acting, _) = shadow_codes_for_a_new_web_user(&mut s, "quentin").await;
    assert!(
        acting.contains(&"new_users_on_web_step_up".to_string()),
        "{acting:?}"
    );

    // Roll back to the file as found, in one click.
    b.click("button.rollback[data-n='1']").await;
    b.wait_text("#flash", "#4 is live").await;
    assert_eq!(std::fs::read_to_string(&rules_path).unwrap(), base_text);
    let (acting, shadow) = shadow_codes_for_a_new_web_user(&mut s, "rosa").await;
    assert!(
        !acting
            .iter()
            .chain(&shadow)
            .any(|c| c == "new_users_on_web_step_up")
    );
    b.quit().await;
    s.running.shutdown().await;
}
