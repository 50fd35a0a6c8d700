//! The console's pages, server-rendered (maud escapes every value).

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::domain::{Action, Channel, UnixMillis};
use crate::journal::{Label, OutcomeEntry, Overview, Record};

use super::session::{Role, Session};

/// `YYYY-MM-DD HH:MM:SS` UTC.
pub fn time(at: UnixMillis) -> String {
    let secs = at.0.div_euclid(1000);
    let (y, m, d) = crate::domain::civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

fn action_class(a: Action) -> &'static str {
    match a {
        Action::Allow => "allow",
        Action::StepUp => "step-up",
        Action::Deny => "deny",
    }
}

fn action_badge(a: Action) -> Markup {
    html! { span class={ "badge " (action_class(a)) } { (a.as_str().to_uppercase()) } }
}

fn label_name(l: Option<Label>) -> &'static str {
    l.map_or("—", Label::as_str)
}

/// The frame of every signed-in page.
pub fn layout(title: &str, session: &Session, nav: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · riskgate" }
                link rel="stylesheet" href="/console/static/console.css";
                script src="/console/static/console.js" defer {}
            }
            body {
                header {
                    span class="brand" { "riskgate" }
                    nav {
                        a href="/console/" class=[(nav == "overview").then_some("on")] { "Overview" }
                        a href="/console/decisions" class=[(nav == "decisions").then_some("on")] { "Decisions" }
                        a href="/console/rules" class=[(nav == "rules").then_some("on")] { "Rules" }
                        a href="/console/rules/history" class=[(nav == "history").then_some("on")] { "History" }
                        a href="/console/audit" class=[(nav == "audit").then_some("on")] { "Audit" }
                    }
                    span class="who" { (session.who) " · " (session.role.as_str()) }
                    form method="post" action="/console/logout" class="inline" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        button type="submit" class="link" { "Sign out" }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

/// The sign-in page.
pub fn sign_in(problem: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Sign in · riskgate" }
                link rel="stylesheet" href="/console/static/console.css";
            }
            body class="sign-in" {
                form method="post" action="/console/login" class="card" {
                    h1 { "riskgate console" }
                    p { "Sign in with the admin token (editor) or the viewer token." }
                    @if let Some(p) = problem { p class="error" id="problem" { (p) } }
                    label for="token" { "Token" }
                    input type="password" id="token" name="token" autocomplete="current-password" required autofocus;
                    button type="submit" id="sign-in" { "Sign in" }
                }
            }
        }
    }
}

/// A message page (the journal is off or failed).
pub fn notice(text: &str) -> Markup {
    html! { p class="notice" { (text) } }
}

/// The overview's body.
pub fn overview(window_hours: usize, o: &Overview, charts: &[String]) -> Markup {
    let total: u64 = o.hourly.iter().map(|h| h.3).sum();
    let by_action = |a: Action| -> u64 { o.hourly.iter().filter(|h| h.1 == a).map(|h| h.3).sum() };
    let labelled = |l: Label, a: Option<Action>| -> u64 {
        o.labelled
            .iter()
            .filter(|x| x.0 == l && a.is_none_or(|a| x.1 == a))
            .map(|x| x.2)
            .sum()
    };
    let legit = labelled(Label::Legit, None);
    let challenged =
        labelled(Label::Legit, Some(Action::StepUp)) + labelled(Label::Legit, Some(Action::Deny));
    let fraud = labelled(Label::Fraud, None);
    let fraud_allowed = labelled(Label::Fraud, Some(Action::Allow));
    let pct = |n: u64, d: u64| {
        if d == 0 {
            "—".to_string()
        } else {
            format!("{:.1} %", 100.0 * n as f64 / d as f64)
        }
    };
    html! {
        form method="get" action="/console/" class="filters" {
            label for="window" { "Window" }
            select id="window" name="hours" data-autosubmit {
                option value="24" selected[window_hours == 24] { "last 24 hours" }
                option value="168" selected[window_hours == 168] { "last 7 days" }
            }
        }
        section class="tiles" {
            div class="tile" { span class="n" id="total" { (total) } span { "decisions" } }
            div class="tile" { span class="n" { (by_action(Action::Allow)) } span { "allowed" } }
            div class="tile" { span class="n" { (by_action(Action::StepUp)) } span { "stepped up" } }
            div class="tile" { span class="n" { (by_action(Action::Deny)) } span { "denied" } }
            div class="tile" { span class="n" { (pct(challenged, legit)) } span { "of " (legit) " verified-legit logins challenged" } }
            div class="tile" { span class="n" { (fraud) } span { "labelled fraud, " (fraud_allowed) " of them allowed" } }
        }
        @for c in charts { figure class="chart" { (PreEscaped(c)) } }
        section class="columns" {
            div {
                h2 { "Top reasons (enforced)" }
                (reasons_table(o, false))
            }
            div {
                h2 { "Top reasons (shadow)" }
                (reasons_table(o, true))
            }
        }
    }
}

fn reasons_table(o: &Overview, shadow: bool) -> Markup {
    let rows: Vec<&(String, bool, u64)> = o
        .reasons
        .iter()
        .filter(|r| r.1 == shadow)
        .take(15)
        .collect();
    html! {
        @if rows.is_empty() { p class="muted" { "none in this window" } } @else {
            table class="sortable" {
                thead { tr { th { "reason" } th class="num" { "decisions" } } }
                tbody {
                    @for r in rows {
                        tr {
                            td { a href={ "/console/decisions?reason=" (r.0) } { code { (r.0) } } }
                            td class="num" { (r.2) }
                        }
                    }
                }
            }
        }
    }
}

/// The explorer's filter values, as typed.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct ExplorerQuery {
    #[serde(default)]
    pub hours: Option<u32>,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub decision: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
}

fn select(name: &str, current: Option<&str>, options: &[(&str, &str)]) -> Markup {
    html! {
        select id=(name) name=(name) {
            option value="" { "any" }
            @for (value, text) in options {
                option value=(value) selected[current == Some(*value)] { (text) }
            }
        }
    }
}

/// The explorer's body.
pub fn explorer(
    q: &ExplorerQuery,
    records: &[Record],
    limit: usize,
    problem: Option<&str>,
) -> Markup {
    let actions: Vec<(&str, &str)> = Action::ALL
        .iter()
        .map(|a| (a.as_str(), a.as_str()))
        .collect();
    let channels: Vec<(&str, &str)> = Channel::ALL
        .iter()
        .map(|c| (c.as_str(), c.as_str()))
        .collect();
    let labels: Vec<(&str, &str)> = Label::ALL
        .iter()
        .map(|l| (l.as_str(), l.as_str()))
        .chain([("none", "unlabelled")])
        .collect();
    let hours = q.hours.unwrap_or(24);
    html! {
        form method="get" action="/console/decisions" class="filters" id="filters" {
            label for="hours" { "Window" }
            select id="hours" name="hours" {
                @for (h, text) in [(1u32, "last hour"), (24, "last 24 hours"), (168, "last 7 days"), (720, "last 30 days")] {
                    option value=(h) selected[hours == h] { (text) }
                }
            }
            label for="action" { "Action" } (select("action", q.action.as_deref(), &actions))
            label for="channel" { "Channel" } (select("channel", q.channel.as_deref(), &channels))
            label for="label" { "Label" } (select("label", q.label.as_deref(), &labels))
            label for="reason" { "Reason" }
            input id="reason" name="reason" value=[q.reason.as_deref()] placeholder="new_device" size="16";
            label for="user" { "User id" }
            input id="user" name="user" value=[q.user.as_deref()] placeholder="hashed on the server" size="16" autocomplete="off";
            label for="decision" { "Decision" }
            input id="decision" name="decision" value=[q.decision.as_deref()] placeholder="id" size="16";
            button type="submit" { "Filter" }
        }
        @if let Some(p) = problem { p class="error" id="problem" { (p) } }
        p class="muted" id="count" {
            (records.len()) @if records.len() == 1 { " decision" } @else { " decisions" }
            @if records.len() >= limit { " (the newest " (limit) ")" }
        }
        table class="sortable" id="decisions" {
            thead {
                tr {
                    th { "time (UTC)" } th { "action" } th { "level" } th class="num" { "score" }
                    th { "channel" } th { "reasons" } th { "label" }
                }
            }
            tbody {
                @for r in records {
                    @let e = &r.entry;
                    tr {
                        td class="nowrap" { a href={ "/console/decisions/" (format!("{:032x}", e.id)) } class="decision" { (time(e.at)) } }
                        td { (action_badge(e.action)) }
                        td { (e.level.as_str()) }
                        td class="num" { (format!("{:.3}", e.score)) }
                        td { (e.channel.as_str()) }
                        td class="codes" {
                            @for c in &e.reasons { code { (c.0) } " " }
                            @for c in &e.shadow { code class="shadow" title="shadow" { (c.0) } " " }
                        }
                        td { (label_name(r.label)) }
                    }
                }
            }
        }
    }
}

/// The audit page's body: the newest records first.
pub fn audit(rows: &[crate::journal::AuditRecord]) -> Markup {
    html! {
        p class="muted" { "Every state-changing console action, newest first (the last 500), as kept in the journal database; the same events go to the log target " code { "riskgate::audit" } "." }
        table class="sortable" id="audit" {
            thead { tr { th { "time (UTC)" } th { "who" } th { "action" } th { "on" } th { "detail" } th { "result" } } }
            tbody {
                @for r in rows {
                    tr {
                        td class="nowrap" { (time(r.at)) }
                        td { (r.who) }
                        td { code { (r.action) } }
                        td { (r.target) }
                        td { (r.detail) }
                        td { (r.result) }
                    }
                }
            }
        }
    }
}

/// What the decision page shows of a reason: code, weight, sentence.
pub struct ShownReason {
    pub code: String,
    pub weight: f64,
    pub sentence: Option<String>,
    pub shadow: bool,
}

/// A decision's page.
pub fn decision(
    r: &Record,
    reasons: &[ShownReason],
    features: &str,
    outcomes: &[OutcomeEntry],
    session: &Session,
    live_versions: (&str, &str),
    flash: Option<&str>,
) -> Markup {
    let e = &r.entry;
    let id = format!("{:032x}", e.id);
    html! {
        @if let Some(f) = flash { p class="flash" id="flash" { (f) } }
        section class="summary" {
            (action_badge(e.action))
            span class="score" { "score " (format!("{:.3}", e.score)) " · " (e.level.as_str()) " risk" }
            span { "channel " (e.channel.as_str()) }
            span { (time(e.at)) " UTC" }
            span { "label: " strong id="label" { (label_name(r.label)) } }
        }
        dl class="meta" {
            dt { "decision" } dd { code { (id) } }
            dt { "user (keyed hash)" } dd { code { (hex::encode(&e.user.0[..8])) "…" } }
            dt { "policy" } dd { (e.policy_version) @if e.policy_version != live_versions.0 { span class="muted" { " (live: " (live_versions.0) ")" } } }
            dt { "model" } dd { (e.model_version) @if e.model_version != live_versions.1 { span class="muted" { " (live: " (live_versions.1) ")" } } }
            dt { "factors offered" } dd { @if e.factors.is_empty() { "—" } @for f in &e.factors { code { (f.as_str()) } " " } }
            dt { "degraded" } dd { @if !e.degraded.store && !e.degraded.geo { "—" } @if e.degraded.store { "store " } @if e.degraded.geo { "geo" } }
        }
        h2 { "Reasons" }
        table id="reasons" {
            thead { tr { th { "reason" } th class="num" { "weight" } th { "why" } } }
            tbody {
                @for x in reasons {
                    tr class=[x.shadow.then_some("shadow")] {
                        td { code { (x.code) } @if x.shadow { " " span class="tag" { "shadow" } } }
                        td class="num" { (format!("{:+.2}", x.weight)) }
                        td { (x.sentence.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
        @if !e.rule_errors.is_empty() {
            h2 { "Rule errors" }
            ul { @for re in &e.rule_errors { li { code { (re.rule) } ": " (re.message) } } }
        }
        h2 { "Outcomes" }
        @if outcomes.is_empty() { p class="muted" { "none reported" } } @else {
            table id="outcomes" {
                thead { tr { th { "time (UTC)" } th { "outcome" } th { "factor" } } }
                tbody {
                    @for o in outcomes {
                        tr { td { (time(o.at)) } td { (o.outcome.as_str()) } td { (o.factor.map_or("—", |f| f.as_str())) } }
                    }
                }
            }
        }
        @if session.role == Role::Editor {
            form method="post" action={ "/console/decisions/" (id) "/label" } class="label-form" {
                input type="hidden" name="csrf" value=(session.csrf);
                button type="submit" name="label" value="fraud" id="label-fraud" class="danger" { "Confirm fraud" }
                button type="submit" name="label" value="legit" id="label-legit" { "Confirm legit" }
            }
        }
        p { a href={ "/console/rules?from=" (id) "#whatif" } id="whatif-link" { "What if… (decide these features with a draft of the rules)" } }
        h2 { "Features as the rules saw them" }
        pre class="features" id="features" { (features) }
    }
}

/// The stylesheet.
pub const CSS: &str = r#"
:root { --fg:#1d2330; --muted:#6b7280; --line:#e5e7eb; --bg:#f7f8fa; --accent:#1565c0; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--fg); background:var(--bg); }
header { display:flex; gap:1.5rem; align-items:center; padding:.6rem 1.5rem; background:#fff; border-bottom:1px solid var(--line); }
header .brand { font-weight:700; letter-spacing:.02em; }
header nav a { margin-right:1rem; color:var(--fg); text-decoration:none; padding:.2rem 0; }
header nav a.on { border-bottom:2px solid var(--accent); }
header .who { margin-left:auto; color:var(--muted); }
main { max-width:1200px; margin:0 auto; padding:1rem 1.5rem 3rem; }
h1 { font-size:1.35rem; margin:.4rem 0 1rem; } h2 { font-size:1.05rem; margin:1.6rem 0 .5rem; }
table { border-collapse:collapse; width:100%; background:#fff; border:1px solid var(--line); }
th, td { padding:.35rem .6rem; border-bottom:1px solid var(--line); text-align:left; vertical-align:top; }
th { font-weight:600; background:#fafafa; cursor:default; white-space:nowrap; }
table.sortable th { cursor:pointer; } table.sortable th:hover { background:#f0f0f0; }
.num { text-align:right; font-variant-numeric:tabular-nums; }
.nowrap { white-space:nowrap; }
code { font:12.5px ui-monospace,SFMono-Regular,Menlo,monospace; background:#f1f3f5; padding:0 .25rem; border-radius:3px; }
code.shadow, tr.shadow code { background:#fff4e0; }
.badge { display:inline-block; padding:.05rem .45rem; border-radius:3px; font-size:12px; font-weight:600; color:#fff; }
.badge.allow { background:#2e7d32; } .badge.step-up { background:#e68c00; } .badge.deny { background:#c62828; }
.filters { display:flex; flex-wrap:wrap; gap:.4rem .6rem; align-items:center; margin-bottom:1rem; }
.filters label { color:var(--muted); }
input, select, button { font:inherit; padding:.3rem .5rem; border:1px solid #cbd2d9; border-radius:4px; background:#fff; }
button { background:var(--accent); color:#fff; border-color:var(--accent); cursor:pointer; }
button.danger { background:#c62828; border-color:#c62828; }
button.link { background:none; border:none; color:var(--accent); padding:0; }
form.inline { display:inline; }
.tiles { display:grid; grid-template-columns:repeat(auto-fit,minmax(150px,1fr)); gap:.75rem; margin-bottom:1rem; }
.tile { background:#fff; border:1px solid var(--line); border-radius:6px; padding:.7rem .9rem; }
.tile .n { display:block; font-size:1.4rem; font-weight:600; font-variant-numeric:tabular-nums; }
.tile span:last-child { color:var(--muted); }
figure.chart { margin:0 0 1rem; background:#fff; border:1px solid var(--line); border-radius:6px; padding:.4rem; overflow-x:auto; }
.columns { display:grid; grid-template-columns:1fr 1fr; gap:1.5rem; }
.summary { display:flex; gap:1.2rem; align-items:center; flex-wrap:wrap; background:#fff; border:1px solid var(--line); border-radius:6px; padding:.7rem 1rem; }
.summary .score { font-weight:600; }
dl.meta { display:grid; grid-template-columns:max-content 1fr; gap:.25rem 1rem; }
dl.meta dt { color:var(--muted); }
dl.meta dd { margin:0; }
pre.features { background:#fff; border:1px solid var(--line); padding:.8rem; overflow:auto; max-height:32rem; font-size:12.5px; }
.label-form { margin:1rem 0; display:flex; gap:.6rem; }
.tag { font-size:11px; color:#8a5a00; }
.editor { display:flex; border:1px solid #cbd2d9; border-radius:4px; background:#fff; height:30rem; overflow:hidden; }
.editor .gutter { margin:0; padding:.5rem .4rem; min-width:3.2rem; text-align:right; color:#9aa3ad; background:#f6f7f9; border-right:1px solid var(--line); font:12.5px/1.5 ui-monospace,SFMono-Regular,Menlo,monospace; overflow:hidden; user-select:none; }
.editor .gutter .bad { color:#fff; background:#c62828; } .editor .gutter .warn { background:#ffe9b3; }
.editor textarea { flex:1; border:none; border-radius:0; resize:none; padding:.5rem; font:12.5px/1.5 ui-monospace,SFMono-Regular,Menlo,monospace; white-space:pre; overflow:auto; outline:none; }
ul.complete { list-style:none; margin:.3rem 0 0; padding:0; display:flex; flex-wrap:wrap; gap:.3rem; min-height:1.6rem; }
ul.complete li { cursor:pointer; } ul.complete li:first-child code { background:#dbe9fb; }
.diagnostics { margin:.5rem 0; } .diagnostics ul { margin:.3rem 0; padding-left:1.2rem; }
.diagnostics .ok { color:#2e7d32; } .diagnostics .warning { color:#8a5a00; }
.actions { display:flex; flex-wrap:wrap; gap:.5rem; align-items:center; margin:.6rem 0 1rem; }
details.fields { margin-top:1rem; } code.insert { cursor:pointer; }
pre.diff { font-size:12px; background:#fff; border:1px solid var(--line); padding:.5rem; overflow:auto; max-height:24rem; }
pre.diff .add { background:#e6ffec; display:block; } pre.diff .del { background:#ffebe9; display:block; } pre.diff .fold { color:var(--muted); display:block; }
.summary-line { font-weight:600; }
.whatif textarea { width:100%; font:12.5px/1.45 ui-monospace,SFMono-Regular,Menlo,monospace; }
.whatif h3 { font-size:.95rem; margin:.6rem 0 .3rem; }
.muted { color:var(--muted); }
.error { color:#b71c1c; } .flash { background:#e8f5e9; border:1px solid #a5d6a7; padding:.5rem .8rem; border-radius:4px; }
.notice { background:#fff; border:1px solid var(--line); padding:1rem; }
body.sign-in { display:flex; min-height:100vh; align-items:center; justify-content:center; }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:1.5rem 2rem; width:min(420px,92vw); display:flex; flex-direction:column; gap:.6rem; }
"#;

/// The console's script: sortable tables, selects that submit their form,
/// and the rule editor (line numbers, a check as you type, field
/// insertion). Nothing else runs in the page (the CSP allows no inline
/// script).
pub const JS: &str = r#"
(function () {
  var draft = document.getElementById('draft');
  if (!draft) { return; }
  var gutter = document.getElementById('gutter');
  var out = document.getElementById('diagnostics');
  var csrf = document.querySelector('input[name=csrf]').value;
  var marks = {};
  function numbers() {
    var n = draft.value.split('\n').length, html = '';
    for (var i = 1; i <= n; i++) {
      var cls = marks[i] ? ' class="' + marks[i] + '"' : '';
      html += '<span' + cls + '>' + i + '</span>\n';
    }
    gutter.innerHTML = html;
    gutter.scrollTop = draft.scrollTop;
  }
  function esc(s) { var d = document.createElement('div'); d.textContent = s; return d.innerHTML; }
  function show(r) {
    marks = {};
    var html = '';
    if (r.ok) {
      html += '<p class="ok">✓ valid: ' + r.rules + ' rules, ' + r.tests_passed + ' tests passed — <code>' + esc(r.version || '') + '</code></p>';
    }
    html += '<ul>';
    r.errors.forEach(function (d) {
      marks[d.line] = 'bad';
      html += '<li class="error" data-line="' + d.line + '">line ' + d.line + ', column ' + d.column + ': ' + (d.item ? '`' + esc(d.item) + '`: ' : '') + esc(d.message) + '</li>';
    });
    r.warnings.forEach(function (d) {
      if (!marks[d.line]) { marks[d.line] = 'warn'; }
      html += '<li class="warning" data-line="' + d.line + '">warning, line ' + d.line + ', column ' + d.column + ': ' + esc(d.message) + '</li>';
    });
    out.innerHTML = html + '</ul>';
    numbers();
  }
  var timer = null, seq = 0;
  function check() {
    var mine = ++seq;
    fetch(draft.dataset.check, {
      method: 'POST', credentials: 'same-origin',
      headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
      body: JSON.stringify({ text: draft.value })
    }).then(function (r) { return r.json(); }).then(function (r) { if (mine === seq) { show(r); } });
  }
  draft.addEventListener('input', function () { numbers(); clearTimeout(timer); timer = setTimeout(check, 300); });
  draft.addEventListener('scroll', function () { gutter.scrollTop = draft.scrollTop; });
  out.addEventListener('click', function (e) {
    var line = e.target.dataset && e.target.dataset.line;
    if (!line) { return; }
    var lines = draft.value.split('\n'), pos = 0;
    for (var i = 0; i < line - 1; i++) { pos += lines[i].length + 1; }
    draft.focus(); draft.setSelectionRange(pos, pos + (lines[line - 1] || '').length);
  });
  // Completion of field names: the word before the caret against the
  // field table below the editor; Tab or a click takes the first match.
  var fields = Array.prototype.map.call(document.querySelectorAll('code.insert'), function (c) { return c.textContent; });
  var list = document.getElementById('complete');
  function word() {
    var before = draft.value.slice(0, draft.selectionStart);
    var m = before.match(/[a-z_][a-z0-9_.]*$/);
    return m ? m[0] : '';
  }
  function take(f) {
    var w = word(), a = draft.selectionStart - w.length, b = draft.selectionStart;
    draft.value = draft.value.slice(0, a) + f + draft.value.slice(b);
    draft.setSelectionRange(a + f.length, a + f.length);
    list.innerHTML = ''; draft.focus();
    draft.dispatchEvent(new Event('input'));
  }
  function suggest() {
    var w = word();
    var hits = w.length < 2 ? [] : fields.filter(function (f) { return f.indexOf(w) === 0 && f !== w; }).slice(0, 8);
    list.innerHTML = hits.map(function (f) { return '<li><code>' + esc(f) + '</code></li>'; }).join('');
  }
  if (list) {
    draft.addEventListener('keyup', function (e) { if (e.key !== 'Tab') { suggest(); } });
    draft.addEventListener('keydown', function (e) {
      if (e.key === 'Tab' && list.firstChild) { e.preventDefault(); take(list.firstChild.textContent); }
      if (e.key === 'Escape') { list.innerHTML = ''; }
    });
    list.addEventListener('mousedown', function (e) {
      var li = e.target.closest('li'); if (li) { e.preventDefault(); take(li.textContent); }
    });
  }
  document.querySelectorAll('code.insert').forEach(function (c) {
    c.addEventListener('click', function () {
      var a = draft.selectionStart, b = draft.selectionEnd;
      draft.value = draft.value.slice(0, a) + c.textContent + draft.value.slice(b);
      draft.focus(); draft.setSelectionRange(a + c.textContent.length, a + c.textContent.length);
      draft.dispatchEvent(new Event('input'));
    });
  });
  var run = document.getElementById('whatif-run');
  if (run) {
    run.addEventListener('click', function () {
      var box = document.getElementById('whatif-result');
      fetch(document.getElementById('whatif-features').dataset.whatif, {
        method: 'POST', credentials: 'same-origin',
        headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
        body: JSON.stringify({ text: draft.value, features: document.getElementById('whatif-features').value,
                               enrolled: document.getElementById('whatif-enrolled').value })
      }).then(function (r) { return r.json(); }).then(function (r) {
        if (r.error) { box.innerHTML = '<p class="error">' + esc(r.error) + '</p>'; return; }
        function side(id, title, d) {
          if (!d) { return '<div id="' + id + '"><h3>' + title + '</h3><p class="error">the draft has errors</p></div>'; }
          var html = '<div id="' + id + '"><h3>' + title + '</h3><p><span class="badge ' + d.action.replace('_', '-') + '">' +
            esc(d.action.toUpperCase()) + '</span> score ' + d.score.toFixed(3) + ' · ' + esc(d.level) + '</p><ul>';
          d.reasons.forEach(function (x) {
            html += '<li><code' + (x.shadow ? ' class="shadow"' : '') + '>' + esc(x.code) + '</code>' + (x.shadow ? ' (shadow)' : '') + ' ' + esc(x.message) + '</li>';
          });
          return html + '</ul><p class="muted">' + esc(d.rules) + '</p></div>';
        }
        box.innerHTML = side('whatif-live', 'Live rules', r.live) + side('whatif-draft', 'Draft', r.draft);
      });
    });
  }
  document.querySelectorAll('.diagnostics li[data-line]').forEach(function (li) { marks[li.dataset.line] = li.classList.contains('error') ? 'bad' : 'warn'; });
  numbers();
})();
document.querySelectorAll('select[data-autosubmit]').forEach(function (s) {
  s.addEventListener('change', function () { s.form.submit(); });
});
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var asc = th.dataset.order !== 'asc';
      table.querySelectorAll('th').forEach(function (h) { delete h.dataset.order; });
      th.dataset.order = asc ? 'asc' : 'desc';
      var num = th.classList.contains('num');
      rows.sort(function (a, b) {
        var x = a.cells[col].textContent.trim(), y = b.cells[col].textContent.trim();
        var c = num ? (parseFloat(x) || 0) - (parseFloat(y) || 0) : x.localeCompare(y);
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"#;
