//! The console's rules workflow: the live file, a draft checked as it is
//! typed (the same loader: errors and warnings at line:column, the file's
//! own tests run), a backtest of the draft against the live rules over the
//! journal, publish with a comment, history with diffs, and rollback.
//!
//! Publishing writes the file `--rules` points at (atomically: a temporary
//! file renamed over it) and swaps the rules in at once, as a hot reload
//! would. Every published version is kept next to it, in
//! `<rules file>.history/` (`NNNN.toml` and `NNNN.json`: who, when, the
//! comment, the versions, the backtest summary), and every publish and
//! rollback is an audit event.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, PreEscaped, html};
use serde::{Deserialize, Serialize};

use crate::core::rules::{Diagnostic, RuleSet, schema};
use crate::domain::UnixMillis;
use crate::journal::Filter;
use crate::tools::backtest::{self, Side};

use super::session::{Role, Session};
use super::{Console, checked, html as page, json_answer, json_call, pages, to_sign_in};

/// The largest draft accepted, bytes (the loader's own limit).
const MAX_DRAFT: usize = crate::core::rules::MAX_FILE_BYTES;

/// One version in the history.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Version {
    pub n: u32,
    pub at_ms: i64,
    pub who: String,
    /// `found` (the file as it was before the first publish), `publish`
    /// or `rollback`.
    pub action: String,
    pub comment: String,
    pub version: String,
    /// The backtest summary the publisher saw, when there was one.
    #[serde(default)]
    pub backtest: Option<String>,
}

fn history_dir(rules: &Path) -> PathBuf {
    let mut name = rules.file_name().unwrap_or_default().to_os_string();
    name.push(".history");
    rules.with_file_name(name)
}

/// The history, oldest first.
fn history(rules: &Path) -> Vec<(Version, String)> {
    let dir = history_dir(rules);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<(Version, String)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| {
            let v: Version = serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?;
            let text = std::fs::read_to_string(e.path().with_extension("toml")).ok()?;
            Some((v, text))
        })
        .collect();
    out.sort_by_key(|(v, _)| v.n);
    out
}

/// Writes `contents` to `path` atomically (a temporary file in the same
/// folder, then a rename).
fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)
}

fn record(rules: &Path, v: &Version, text: &str) -> std::io::Result<()> {
    let dir = history_dir(rules);
    std::fs::create_dir_all(&dir)?;
    let base = dir.join(format!("{:04}", v.n));
    write_atomically(&base.with_extension("toml"), text.as_bytes())?;
    let json = serde_json::to_vec_pretty(v).map_err(std::io::Error::other)?;
    write_atomically(&base.with_extension("json"), &json)
}

/// The live rule file's text and where it comes from.
fn live_text(c: &Console) -> (String, String) {
    match &c.rules_path {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => (t, p.display().to_string()),
            Err(e) => (String::new(), format!("{} (unreadable: {e})", p.display())),
        },
        None => (
            crate::core::rules::DEFAULT_RULES_TOML.to_string(),
            "embedded (serve was started without --rules: publishing is off)".to_string(),
        ),
    }
}

#[derive(Serialize)]
struct Diag {
    line: usize,
    column: usize,
    item: Option<String>,
    message: String,
}

impl From<&Diagnostic> for Diag {
    fn from(d: &Diagnostic) -> Self {
        Diag {
            line: d.line,
            column: d.column,
            item: d.item.clone(),
            message: d.message.clone(),
        }
    }
}

/// What the editor shows of a draft.
#[derive(Serialize)]
pub struct Checked {
    ok: bool,
    version: Option<String>,
    rules: usize,
    tests_passed: usize,
    errors: Vec<Diag>,
    warnings: Vec<Diag>,
}

fn check_text(text: &str) -> (Checked, Option<RuleSet>) {
    if text.len() > MAX_DRAFT {
        return (
            Checked {
                ok: false,
                version: None,
                rules: 0,
                tests_passed: 0,
                errors: vec![Diag {
                    line: 1,
                    column: 1,
                    item: None,
                    message: format!("the draft is larger than {MAX_DRAFT} bytes"),
                }],
                warnings: Vec::new(),
            },
            None,
        );
    }
    match RuleSet::parse(text, "draft") {
        Ok(r) => (
            Checked {
                ok: true,
                version: Some(r.version.clone()),
                rules: r.rules.len(),
                tests_passed: r.tests_passed,
                errors: Vec::new(),
                warnings: r.warnings.iter().map(Diag::from).collect(),
            },
            Some(r),
        ),
        Err(e) => (
            Checked {
                ok: false,
                version: None,
                rules: 0,
                tests_passed: 0,
                errors: e.errors.iter().map(Diag::from).collect(),
                warnings: e.warnings.iter().map(Diag::from).collect(),
            },
            None,
        ),
    }
}

/// What the what-if form starts from: a journaled decision's features and
/// enrolled factors, or defaults to fill in.
pub struct WhatIfStart {
    pub features: String,
    pub enrolled: String,
    pub from: Option<String>,
}

impl Default for WhatIfStart {
    fn default() -> Self {
        WhatIfStart {
            features: serde_json::to_string_pretty(&crate::core::features::Features::default())
                .unwrap_or_default(),
            enrolled: String::new(),
            from: None,
        }
    }
}

fn editor(c: &Console, s: &Session, draft: &str, checked_now: &Checked) -> Markup {
    editor_with(c, s, draft, checked_now, &WhatIfStart::default())
}

fn editor_with(
    c: &Console,
    s: &Session,
    draft: &str,
    checked_now: &Checked,
    whatif: &WhatIfStart,
) -> Markup {
    let live = c.engine.rules();
    let (_, origin) = live_text(c);
    let can_publish = s.role == Role::Editor && c.rules_path.is_some();
    html! {
        dl class="meta" {
            dt { "live version" } dd { code id="live-version" { (live.version) } }
            dt { "file" } dd { (origin) }
        }
        form method="post" action="/console/rules/backtest" id="draft-form" {
            input type="hidden" name="csrf" value=(s.csrf);
            div class="editor" {
                pre class="gutter" id="gutter" aria-hidden="true" {}
                textarea id="draft" name="text" spellcheck="false" wrap="off" data-check="/console/rules/check" { (draft) }
            }
            ul id="complete" class="complete" title="field names: Tab takes the first" {}
            div id="diagnostics" class="diagnostics" { (diagnostics(checked_now)) }
            div class="actions" {
                label for="hours" { "Backtest over" }
                select id="hours" name="hours" {
                    option value="1" { "the last hour" }
                    option value="24" selected { "the last 24 hours" }
                    option value="168" { "the last 7 days" }
                }
                button type="submit" id="backtest" { "Backtest the draft" }
                @if can_publish {
                    input id="comment" name="comment" placeholder="why (kept in the history)" size="40";
                    button type="submit" id="publish" formaction="/console/rules/publish" class="danger" { "Publish" }
                }
            }
        }
        section class="whatif" id="whatif" {
            h2 { "What if" }
            p class="muted" {
                @if let Some(from) = &whatif.from {
                    "The features of decision " a href={ "/console/decisions/" (from) } { code { (from) } } " as the rules saw them; "
                } @else {
                    "Features to decide on (open a decision and choose " em { "What if…" } " to start from real ones); "
                }
                "edit them and compare the live rules with the draft above."
            }
            textarea id="whatif-features" spellcheck="false" wrap="off" rows="14" data-whatif="/console/rules/whatif" { (whatif.features) }
            div class="actions" {
                label for="whatif-enrolled" { "Enrolled factors" }
                input id="whatif-enrolled" value=(whatif.enrolled) placeholder="totp, webauthn (empty: any)" size="30";
                button type="button" id="whatif-run" { "Decide: live vs draft" }
            }
            div id="whatif-result" class="columns" {}
        }
        details class="fields" {
            summary { "Fields rules can read (click to insert)" }
            table id="fields" {
                thead { tr { th { "field" } th { "type" } th { "meaning" } } }
                tbody {
                    @for (path, ty, doc) in schema::catalogue() {
                        tr { td { code class="insert" { (path) } } td { (ty) } td { (doc) } }
                    }
                }
            }
        }
    }
}

/// The diagnostics block (also rendered by the page's script from the
/// check endpoint's JSON, in the same shape).
fn diagnostics(c: &Checked) -> Markup {
    html! {
        @if c.ok {
            p class="ok" { "✓ valid: " (c.rules) " rules, " (c.tests_passed) " tests passed — " code { (c.version.as_deref().unwrap_or("")) } }
        }
        ul {
            @for d in &c.errors {
                li class="error" data-line=(d.line) { "line " (d.line) ", column " (d.column) ": " @if let Some(i) = &d.item { "`" (i) "`: " } (d.message) }
            }
            @for d in &c.warnings {
                li class="warning" data-line=(d.line) { "warning, line " (d.line) ", column " (d.column) ": " (d.message) }
            }
        }
    }
}

#[derive(Deserialize, Default)]
pub struct RulesQuery {
    /// A journaled decision whose features start the what-if.
    #[serde(default)]
    from: Option<String>,
}

pub async fn page_rules(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    Query(q): Query<RulesQuery>,
) -> Response {
    let Some((_, s)) = c.session(&headers) else {
        return to_sign_in();
    };
    let (text, _) = live_text(&c);
    let (now, _) = check_text(&text);
    let mut start = WhatIfStart::default();
    if let Some(uuid) = q.from.as_deref().and_then(super::parse_decision) {
        let found = c.read(move |j| super::find(j, uuid)).await;
        if let Ok(Some(r)) = found {
            start = WhatIfStart {
                features: serde_json::to_string_pretty(&r.entry.features).unwrap_or_default(),
                enrolled: r
                    .entry
                    .enrolled
                    .iter()
                    .map(|f| f.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                from: Some(format!("{uuid:032x}")),
            };
        }
    }
    page(
        StatusCode::OK,
        pages::layout(
            "Rules",
            &s,
            "rules",
            editor_with(&c, &s, &text, &now, &start),
        ),
    )
}

#[derive(Deserialize)]
pub struct WhatIfBody {
    text: String,
    features: String,
    #[serde(default)]
    enrolled: String,
}

#[derive(Serialize)]
struct Decided {
    rules: String,
    action: &'static str,
    level: &'static str,
    score: f64,
    reasons: Vec<crate::domain::Reason>,
}

fn decided(d: crate::domain::Decision) -> Decided {
    Decided {
        rules: d.policy_version.clone(),
        action: d.action.as_str(),
        level: d.level.as_str(),
        score: d.score,
        reasons: d.all_reasons().cloned().collect(),
    }
}

/// `POST /console/rules/whatif`: one attempt's features decided by the
/// live rules and by the draft (JSON in and out; CSRF in `x-csrf-token`).
pub async fn whatif(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let b: WhatIfBody = match json_call(
        &c,
        &headers,
        &body,
        "the body is {\"text\", \"features\", \"enrolled\"}",
    ) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let live = c.engine.rules();
    let model = c.engine.model();
    let out = tokio::task::spawn_blocking(move || -> serde_json::Value {
        let features: crate::core::features::Features = match serde_json::from_str(&b.features) {
            Ok(f) => f,
            Err(e) => return serde_json::json!({ "error": format!("the features: {e}") }),
        };
        let mut enrolled = crate::domain::FactorSet::EMPTY;
        for name in b.enrolled.split([',', ' ']).filter(|n| !n.is_empty()) {
            match crate::domain::Factor::parse(name) {
                Some(f) => enrolled = enrolled.iter().chain([f]).collect(),
                None => return serde_json::json!({ "error": format!("no factor `{name}`") }),
            }
        }
        let (checked_draft, draft) = check_text(&b.text);
        let live_d = crate::core::decide(&features, enrolled, &model, &live);
        let draft_d = draft.map(|d| decided(crate::core::decide(&features, enrolled, &model, &d)));
        serde_json::json!({
            "live": decided(live_d),
            "draft": draft_d,
            "draft_errors": checked_draft.errors,
        })
    })
    .await;
    match out {
        Ok(v) => json_answer(v.to_string()),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "the what-if failed").into_response(),
    }
}

#[derive(Deserialize)]
pub struct CheckBody {
    text: String,
}

/// `POST /console/rules/check`: JSON in, diagnostics out; the CSRF token
/// in the `x-csrf-token` header.
pub async fn check(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let b: CheckBody = match json_call(&c, &headers, &body, "the body is {\"text\": …}") {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let out = tokio::task::spawn_blocking(move || check_text(&b.text).0).await;
    match out.map(|x| serde_json::to_string(&x)) {
        Ok(Ok(json)) => json_answer(json),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "the check failed").into_response(),
    }
}

#[derive(Deserialize)]
pub struct DraftForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    hours: Option<u32>,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    backtest: Option<String>,
}

pub async fn run_backtest(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    Form(f): Form<DraftForm>,
) -> Response {
    let (_, s) = match checked(&c, &headers, &f.csrf) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let (checked_now, draft) = check_text(&f.text);
    let Some(draft) = draft else {
        return page(
            StatusCode::BAD_REQUEST,
            pages::layout("Rules", &s, "rules", editor(&c, &s, &f.text, &checked_now)),
        );
    };
    let hours = i64::from(f.hours.unwrap_or(24).clamp(1, 24 * 31));
    let live = c.engine.rules();
    let model = c.engine.model();
    let filter = Filter {
        from: Some(UnixMillis(UnixMillis::now().0 - hours * 3_600_000)),
        ..Filter::default()
    };
    let name = c.journal.to_string();
    let report = c
        .read(move |j| {
            let baseline = Side {
                origin: "live".into(),
                rules: live,
                model: model.clone(),
            };
            let candidate = Side {
                origin: "draft".into(),
                rules: Arc::new(draft),
                model,
            };
            backtest::run(j, &name, &filter, &baseline, &candidate, 50)
        })
        .await;
    let body = match report {
        Err(e) => pages::notice(&e),
        Ok(r) => backtest_page(&c, &s, &f.text, hours, &r),
    };
    page(StatusCode::OK, pages::layout("Backtest", &s, "rules", body))
}

fn backtest_summary(r: &backtest::Report) -> String {
    format!(
        "{} decisions over {}: {} change; legit challenged {:.1} % → {:.1} %; fraud caught {:.1} % → {:.1} %",
        r.decisions,
        r.journal,
        r.changed,
        100.0 * r.reauth_before,
        100.0 * r.reauth_after,
        100.0 * r.fraud_caught_before,
        100.0 * r.fraud_caught_after
    )
}

fn backtest_page(
    c: &Console,
    s: &Session,
    draft: &str,
    hours: i64,
    r: &backtest::Report,
) -> Markup {
    const ACTIONS: [&str; 3] = ["ALLOW", "STEP_UP", "DENY"];
    let summary = backtest_summary(r);
    let can_publish = s.role == Role::Editor && c.rules_path.is_some();
    html! {
        p id="backtest-summary" class="summary-line" { (summary) }
        p class="muted" { "Over the last " (hours) " hours of the journal, re-decided with the live rules and with the draft (" (format!("{:.2}", r.seconds)) " s). " (r.caveat) "." }
        div class="columns" {
            div {
                h2 { "Actions: live (rows) → draft (columns)" }
                table id="matrix" {
                    thead { tr { th {} @for a in ACTIONS { th class="num" { (a) } } } }
                    tbody {
                        @for (i, row) in r.matrix.iter().enumerate() {
                            tr { th { (ACTIONS[i]) } @for n in row { td class="num" { (n) } } }
                        }
                    }
                }
                h2 { "By label" }
                table {
                    thead { tr { th { "label" } th class="num" { "decisions" } th class="num" { "challenged, live" } th class="num" { "challenged, draft" } } }
                    tbody {
                        @for l in &r.by_label {
                            tr {
                                td { (l.label) }
                                td class="num" { (l.before.total()) }
                                td class="num" { (l.before.challenged()) }
                                td class="num" { (l.after.challenged()) }
                            }
                        }
                    }
                }
            }
            div {
                h2 { "Rule hits" }
                table class="sortable" id="rule-hits" {
                    thead { tr { th { "rule" } th { "draft mode" } th class="num" { "live" } th class="num" { "draft" } th class="num" { "changed" } } }
                    tbody {
                        @for x in &r.rules {
                            tr { td { code { (x.rule) } } td { (x.mode) } td class="num" { (x.before) } td class="num" { (x.after) } td class="num" { (x.changed) } }
                        }
                    }
                }
            }
        }
        figure class="chart" { (PreEscaped(r.svg("live vs draft"))) }
        h2 { "Decisions that change (" (r.changed) ")" }
        table class="sortable" id="changes" {
            thead { tr { th { "time (UTC)" } th { "live" } th { "draft" } th { "label" } th { "reasons, draft" } } }
            tbody {
                @for ch in &r.changes {
                    tr {
                        td class="nowrap" { a href={ "/console/decisions/" (ch.id) } { (pages::time(UnixMillis(ch.at_ms))) } }
                        td { (ch.before.as_str()) }
                        td { (ch.after.as_str()) }
                        td { (ch.label.map_or("—", |l| l.as_str())) }
                        td class="codes" { @for code in &ch.reasons_after { code { (code) } " " } }
                    }
                }
            }
        }
        form method="post" action="/console/rules/publish" id="publish-form" {
            input type="hidden" name="csrf" value=(s.csrf);
            input type="hidden" name="backtest" value=(summary);
            textarea name="text" hidden { (draft) }
            @if can_publish {
                input id="comment" name="comment" placeholder="why (kept in the history)" size="50" required;
                button type="submit" id="publish" class="danger" { "Publish this draft" }
            }
            " "
            button type="submit" formaction="/console/rules/edit" { "Back to the editor" }
        }
    }
}

/// `POST /console/rules/edit`: the editor with a draft (back from a
/// backtest).
pub async fn edit(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    Form(f): Form<DraftForm>,
) -> Response {
    let (_, s) = match checked(&c, &headers, &f.csrf) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let (now, _) = check_text(&f.text);
    page(
        StatusCode::OK,
        pages::layout("Rules", &s, "rules", editor(&c, &s, &f.text, &now)),
    )
}

/// Publishes `text`: checks it (tests included), writes it atomically,
/// swaps it in, records the version; returns its number.
fn publish_text(
    c: &Console,
    who: &str,
    text: &str,
    action: &str,
    comment: &str,
    backtest: Option<String>,
) -> Result<u32, String> {
    let Some(path) = &c.rules_path else {
        return Err("serve was started without --rules: there is no file to publish to".into());
    };
    let rules = RuleSet::parse(text, &path.display().to_string()).map_err(|e| e.to_string())?;
    let mut past = history(path);
    if past.is_empty() {
        // Keep the file as found, so the first publish can be rolled back.
        let (found, _) = live_text(c);
        let v = Version {
            n: 1,
            at_ms: UnixMillis::now().0,
            who: "riskgate".into(),
            action: "found".into(),
            comment: "the file before the first publish from the console".into(),
            version: c.engine.rules().version.clone(),
            backtest: None,
        };
        record(path, &v, &found).map_err(|e| format!("the history could not be written: {e}"))?;
        past.push((v, found));
    }
    let n = past.last().map_or(1, |(v, _)| v.n + 1);
    let v = Version {
        n,
        at_ms: UnixMillis::now().0,
        who: who.to_string(),
        action: action.to_string(),
        comment: comment.to_string(),
        version: rules.version.clone(),
        backtest,
    };
    let version = rules.version.clone();
    c.engine.publish_rules(rules, || {
        write_atomically(path, text.as_bytes())
            .map_err(|e| format!("`{}` could not be written: {e}", path.display()))?;
        record(path, &v, text).map_err(|e| format!("the history could not be written: {e}"))
    })?;
    tracing::info!(rules.version = %version, path = %path.display(), "rules published from the console");
    Ok(n)
}

async fn refuse_viewer(c: &Console, s: &Session, method: &'static str) -> Option<Response> {
    if s.role == Role::Editor {
        return None;
    }
    c.audit(&s.who, method, "", "", "permission_denied", None)
        .await;
    Some((StatusCode::FORBIDDEN, "viewers cannot change the rules").into_response())
}

pub async fn publish(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    Form(f): Form<DraftForm>,
) -> Response {
    let (_, s) = match checked(&c, &headers, &f.csrf) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    if let Some(r) = refuse_viewer(&c, &s, "console.publish").await {
        return r;
    }
    let comment = f.comment.trim().to_string();
    if comment.is_empty() || comment.len() > 500 {
        let (now, _) = check_text(&f.text);
        let mut body = editor(&c, &s, &f.text, &now);
        body = html! { p class="error" id="problem" { "Say why in the comment (1 to 500 characters): it is kept in the history." } (body) };
        return page(
            StatusCode::BAD_REQUEST,
            pages::layout("Rules", &s, "rules", body),
        );
    }
    let c2 = c.clone();
    let who = s.who.clone();
    let text = f.text.clone();
    let backtest = f.backtest.clone();
    let comment2 = comment.clone();
    let done = tokio::task::spawn_blocking(move || {
        publish_text(&c2, &who, &text, "publish", &comment2, backtest)
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    let target = match &done {
        Ok(n) => format!("rules version #{n}"),
        Err(_) => String::new(),
    };
    c.audit(
        &s.who,
        "console.publish",
        &target,
        &comment,
        if done.is_ok() {
            "ok"
        } else {
            "invalid_argument"
        },
        None,
    )
    .await;
    match done {
        Ok(n) => Redirect::to(&format!("/console/rules/history?published={n}")).into_response(),
        Err(problem) => {
            let (now, _) = check_text(&f.text);
            let body = html! { p class="error" id="problem" { (problem) } (editor(&c, &s, &f.text, &now)) };
            page(
                StatusCode::BAD_REQUEST,
                pages::layout("Rules", &s, "rules", body),
            )
        }
    }
}

#[derive(Deserialize)]
pub struct RollbackForm {
    #[serde(default)]
    csrf: String,
    n: u32,
}

pub async fn rollback(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    Form(f): Form<RollbackForm>,
) -> Response {
    let (_, s) = match checked(&c, &headers, &f.csrf) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    if let Some(r) = refuse_viewer(&c, &s, "console.rollback").await {
        return r;
    }
    let Some(path) = c.rules_path.clone() else {
        return (StatusCode::CONFLICT, "serve was started without --rules").into_response();
    };
    let c2 = c.clone();
    let who = s.who.clone();
    let n = f.n;
    let done = tokio::task::spawn_blocking(move || {
        let past = history(&path);
        let (_, text) = past
            .into_iter()
            .find(|(v, _)| v.n == n)
            .ok_or(format!("there is no version #{n}"))?;
        publish_text(
            &c2,
            &who,
            &text,
            "rollback",
            &format!("roll back to #{n}"),
            None,
        )
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    let reason = format!("roll back to #{}", f.n);
    let target = match &done {
        Ok(m) => format!("rules version #{m}"),
        Err(_) => String::new(),
    };
    c.audit(
        &s.who,
        "console.rollback",
        &target,
        &reason,
        if done.is_ok() {
            "ok"
        } else {
            "failed_precondition"
        },
        None,
    )
    .await;
    match done {
        Ok(m) => Redirect::to(&format!("/console/rules/history?published={m}")).into_response(),
        Err(problem) => (StatusCode::BAD_REQUEST, problem).into_response(),
    }
}

#[derive(Deserialize, Default)]
pub struct HistoryQuery {
    #[serde(default)]
    published: Option<u32>,
}

pub async fn page_history(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    Query(q): Query<HistoryQuery>,
) -> Response {
    let Some((_, s)) = c.session(&headers) else {
        return to_sign_in();
    };
    let Some(path) = c.rules_path.clone() else {
        return page(
            StatusCode::OK,
            pages::layout(
                "History",
                &s,
                "history",
                pages::notice(
                    "serve was started without --rules: there is no rule file and no history.",
                ),
            ),
        );
    };
    let past = tokio::task::spawn_blocking(move || history(&path))
        .await
        .unwrap_or_default();
    let live = c.engine.rules().version.clone();
    let body = html! {
        @if let Some(n) = q.published { p class="flash" id="flash" { "Version #" (n) " is live." } }
        @if past.is_empty() { p class="muted" { "Nothing published from the console yet." } }
        table id="history" {
            thead { tr { th class="num" { "#" } th { "time (UTC)" } th { "who" } th { "what" } th { "version" } th { "comment" } th {} } }
            tbody {
                @for (i, (v, text)) in past.iter().enumerate().rev() {
                    tr {
                        td class="num" { (v.n) }
                        td class="nowrap" { (pages::time(UnixMillis(v.at_ms))) }
                        td { (v.who) }
                        td { (v.action) }
                        td { code { (v.version) } @if v.version == live { " " span class="tag" { "live" } } }
                        td {
                            (v.comment)
                            @if let Some(b) = &v.backtest { br; span class="muted" { "backtest: " (b) } }
                            @if i > 0 {
                                details {
                                    summary { "diff from #" (past[i - 1].0.n) }
                                    pre class="diff" { (diff_markup(&past[i - 1].1, text)) }
                                }
                            }
                        }
                        td {
                            @if s.role == Role::Editor && v.version != live {
                                form method="post" action="/console/rules/rollback" class="inline" {
                                    input type="hidden" name="csrf" value=(s.csrf);
                                    input type="hidden" name="n" value=(v.n);
                                    button type="submit" class="rollback" data-n=(v.n) { "Roll back to this" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page(
        StatusCode::OK,
        pages::layout("Rule history", &s, "history", body),
    )
}

/// A line diff (longest common subsequence), as `+`/`-`/` ` lines, with
/// unchanged runs longer than six lines folded.
pub fn diff(a: &str, b: &str) -> Vec<(char, String)> {
    let x: Vec<&str> = a.lines().collect();
    let y: Vec<&str> = b.lines().collect();
    let (n, m) = (x.len(), y.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if x[i] == y[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && x[i] == y[j] {
            out.push((' ', x[i].to_string()));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(('+', y[j].to_string()));
            j += 1;
        } else {
            out.push(('-', x[i].to_string()));
            i += 1;
        }
    }
    // Fold long unchanged runs, keeping three lines of context each side.
    let mut folded = Vec::new();
    let mut k = 0;
    while k < out.len() {
        if out[k].0 != ' ' {
            folded.push(out[k].clone());
            k += 1;
            continue;
        }
        let start = k;
        while k < out.len() && out[k].0 == ' ' {
            k += 1;
        }
        let run = &out[start..k];
        if run.len() > 6 {
            if start > 0 {
                folded.extend_from_slice(&run[..3]);
            }
            folded.push((
                '…',
                format!(
                    "{} unchanged lines",
                    run.len() - if start > 0 { 6 } else { 3 }
                ),
            ));
            if k < out.len() {
                folded.extend_from_slice(&run[run.len() - 3..]);
            }
        } else {
            folded.extend_from_slice(run);
        }
    }
    folded
}

fn diff_markup(a: &str, b: &str) -> Markup {
    html! {
        @for (tag, line) in diff(a, b) {
            @match tag {
                '+' => span class="add" { "+ " (line) "\n" },
                '-' => span class="del" { "- " (line) "\n" },
                '…' => span class="fold" { "  … " (line) "\n" },
                _ => { "  " (line) "\n" },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_diff_shows_what_changed_and_folds_the_rest() {
        let a = (1..=20).map(|i| format!("line {i}\n")).collect::<String>();
        let b = a.replace("line 10\n", "line ten\n") + "line 21\n";
        let d = diff(&a, &b);
        assert!(d.contains(&('-', "line 10".into())));
        assert!(d.contains(&('+', "line ten".into())));
        assert!(d.contains(&('+', "line 21".into())));
        assert!(d.iter().any(|(t, _)| *t == '…'), "{d:?}");
        assert!(d.len() < 20);
        assert!(diff("same\n", "same\n").iter().all(|(t, _)| *t == ' '));
    }
}
