//! The analyst console, served by `riskgate serve` on the admin listener
//! under `/console/` (under the same TLS). Server-rendered HTML (maud), one
//! small script (sortable tables), charts as SVG (plotters). Everything it
//! reads comes from the decision journal, on blocking tasks of its own: a
//! console request never delays an Evaluate.
//!
//! Sign-in takes the admin token (an editor: sees and labels) or the
//! viewer token (`RISKGATE_CONSOLE_VIEWER_TOKEN`: sees only). Sessions,
//! CSRF and the failed sign-in limiter are in [`session`]; every sign-in,
//! sign-out and label is an audit event (target `riskgate::audit`).

pub mod chart;
pub mod pages;
pub mod rules;
pub mod session;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Form, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::Markup;
use parking_lot::Mutex;

use crate::api::audit;
use crate::api::auth::TokenAuth;
use crate::core::keys::Key;
use crate::domain::{Action, Channel, Outcome, UnixMillis};
use crate::engine::Engine;
use crate::journal::{self, Filter, JournalError, Label, Record, Target};

use pages::{ExplorerQuery, ShownReason};
use session::{Limiter, Role, Session, Sessions};

/// The explorer shows at most this many decisions.
const EXPLORER_LIMIT: u64 = 500;

/// What the console serves with.
pub struct Console {
    engine: Arc<Engine>,
    journal: Target,
    editor: TokenAuth,
    editor_name: String,
    viewer: Option<TokenAuth>,
    /// The rule file publishing writes (`--rules`); `None`: embedded rules,
    /// nothing to publish to.
    rules_path: Option<std::path::PathBuf>,
    /// Cookies are marked Secure (the listener is under TLS).
    secure: bool,
    sessions: Mutex<Sessions>,
    limiter: Mutex<Limiter>,
    /// The console's own journal connection (never the writer's).
    connection: Arc<Mutex<Option<Box<dyn journal::JournalStore>>>>,
}

impl Console {
    pub fn new(
        engine: Arc<Engine>,
        editor: TokenAuth,
        editor_name: &str,
        viewer: Option<TokenAuth>,
        rules_path: Option<std::path::PathBuf>,
        secure: bool,
    ) -> Self {
        let journal = engine.journal().map_or(Target::Off, |j| j.target().clone());
        Console {
            engine,
            journal,
            editor,
            editor_name: editor_name.to_string(),
            viewer,
            rules_path,
            secure,
            sessions: Mutex::new(Sessions::default()),
            limiter: Mutex::new(Limiter::default()),
            connection: Arc::new(Mutex::new(None)),
        }
    }

    /// The signed-in session of a request.
    fn session(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let id = headers
            .get(header::COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(session::cookie_value)?
            .to_string();
        let s = self.sessions.lock().get(&id)?;
        Some((id, s))
    }

    /// Records a console action: an audit event in the log (target
    /// `riskgate::audit`) and, with the journal on, a row the audit page
    /// shows.
    async fn audit(
        &self,
        who: &str,
        action: &'static str,
        target: &str,
        detail: &str,
        result: &str,
        user: Option<Key>,
    ) {
        audit::record(&audit::Event {
            who,
            method: action,
            user,
            device: None,
            reason: detail,
            result,
        });
        if matches!(self.journal, Target::Off) {
            return;
        }
        let r = journal::AuditRecord {
            at: UnixMillis::now(),
            who: who.to_string(),
            action: action.to_string(),
            target: target.to_string(),
            detail: detail.to_string(),
            result: result.to_string(),
        };
        if let Err(e) = self.read(move |j| j.record_audit(&r)).await {
            tracing::warn!(error = %e, "console: the audit record could not be kept in the journal");
        }
    }

    /// Runs `f` on the journal, on a blocking task.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn journal::JournalStore) -> Result<T, JournalError> + Send + 'static,
    ) -> Result<T, String> {
        let target = self.journal.clone();
        if matches!(target, Target::Off) {
            return Err(
                "The decision journal is off (`--journal off`): the console has nothing to show."
                    .into(),
            );
        }
        let connection = self.connection.clone();
        tokio::task::spawn_blocking(move || {
            // One connection, opened on first use (schema check included)
            // and kept; console reads take turns on it. A failed call
            // drops it, so the next one reconnects.
            let mut slot = connection.lock();
            let j = match slot.as_mut() {
                Some(j) => j,
                None => slot.insert(journal::open(&target)?),
            };
            let r = f(j.as_mut());
            if r.is_err() {
                *slot = None;
            }
            r
        })
        .await
        .map_err(|e| format!("the journal read failed: {e}"))?
        .map_err(|e| {
            tracing::warn!(error = %e, "console: journal read failed");
            format!("The journal could not be read: {e}")
        })
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        // The PostgreSQL client owns a runtime of its own, which must not be
        // dropped on an async thread (the console ends with the server).
        if let Some(c) = self.connection.lock().take() {
            let _ = std::thread::Builder::new()
                .name("riskgate-console-close".into())
                .spawn(move || drop(c));
        }
    }
}

/// The console's routes (merged into the admin listener's router).
pub fn routes(console: Arc<Console>) -> Router {
    let metrics = console.engine.metrics().clone();
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(overview))
        .route("/console/login", get(sign_in_page).post(sign_in))
        .route("/console/logout", post(sign_out))
        .route("/console/decisions", get(explorer))
        .route("/console/decisions/{id}", get(decision))
        .route("/console/decisions/{id}/label", post(label))
        .route("/console/rules", get(rules::page_rules))
        .route("/console/rules/check", post(rules::check))
        .route("/console/rules/whatif", post(rules::whatif))
        .route("/console/rules/backtest", post(rules::run_backtest))
        .route("/console/rules/edit", post(rules::edit))
        .route("/console/rules/publish", post(rules::publish))
        .route("/console/rules/history", get(rules::page_history))
        .route("/console/rules/rollback", post(rules::rollback))
        .route("/console/audit", get(audit_page))
        .route("/console/static/console.css", get(css))
        .route("/console/static/console.js", get(js))
        .layer(axum::middleware::from_fn(move |req: Request, next: Next| {
            let metrics = metrics.clone();
            async move {
                let page = req
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or("other", |p| page_name(p.as_str()))
                    .to_string();
                let started = Instant::now();
                let mut r = next.run(req).await;
                metrics.console_request(&page, r.status().as_u16(), started.elapsed());
                let h = r.headers_mut();
                h.insert("x-frame-options", HeaderValue::from_static("DENY"));
                h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
                h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
                h.insert(
                    "content-security-policy",
                    HeaderValue::from_static(
                        "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
                    ),
                );
                h.entry(header::CACHE_CONTROL)
                    .or_insert(HeaderValue::from_static("no-store"));
                r
            }
        }))
        .with_state(console)
}

fn page_name(path: &str) -> &'static str {
    match path {
        "/console/" | "/console" => "overview",
        "/console/login" => "login",
        "/console/logout" => "logout",
        "/console/decisions" => "explorer",
        "/console/decisions/{id}" => "decision",
        "/console/decisions/{id}/label" => "label",
        "/console/rules" | "/console/rules/edit" => "rules",
        "/console/rules/check" => "rules_check",
        "/console/rules/whatif" => "whatif",
        "/console/rules/backtest" => "backtest",
        "/console/rules/publish" => "publish",
        "/console/rules/history" => "history",
        "/console/rules/rollback" => "rollback",
        "/console/audit" => "audit",
        _ if path.starts_with("/console/static/") => "static",
        _ => "other",
    }
}

fn html(status: StatusCode, m: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        m.into_string(),
    )
        .into_response()
}

fn to_sign_in() -> Response {
    Redirect::to("/console/login").into_response()
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        pages::CSS,
    )
        .into_response()
}

async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        pages::JS,
    )
        .into_response()
}

async fn sign_in_page(State(c): State<Arc<Console>>, headers: HeaderMap) -> Response {
    if c.session(&headers).is_some() {
        return Redirect::to("/console/").into_response();
    }
    html(StatusCode::OK, pages::sign_in(None))
}

#[derive(serde::Deserialize)]
struct SignInForm {
    #[serde(default)]
    token: String,
}

async fn sign_in(State(c): State<Arc<Console>>, req: Request) -> Response {
    let client = crate::api::http::client_ip(req.extensions());
    let Ok(bytes) = axum::body::to_bytes(req.into_body(), 8 * 1024).await else {
        return html(
            StatusCode::BAD_REQUEST,
            pages::sign_in(Some("The form could not be read.")),
        );
    };
    let form: SignInForm = serde_urlencoded::from_bytes(&bytes).unwrap_or(SignInForm {
        token: String::new(),
    });
    if !c.limiter.lock().allows(client) {
        c.audit(
            "unauthenticated",
            "console.sign_in",
            "",
            "too many failed sign-ins",
            "resource_exhausted",
            None,
        )
        .await;
        let mut r = html(
            StatusCode::TOO_MANY_REQUESTS,
            pages::sign_in(Some(
                "Too many failed sign-ins: wait a minute and try again.",
            )),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        return r;
    }
    let role = if c.editor.matches(&form.token) {
        Some((Role::Editor, c.editor_name.clone()))
    } else if c.viewer.as_ref().is_some_and(|v| v.matches(&form.token)) {
        Some((Role::Viewer, "viewer".to_string()))
    } else {
        None
    };
    let Some((role, who)) = role else {
        c.limiter.lock().failed(client);
        c.audit(
            "unauthenticated",
            "console.sign_in",
            "",
            "",
            "unauthenticated",
            None,
        )
        .await;
        return html(
            StatusCode::UNAUTHORIZED,
            pages::sign_in(Some("That token is not valid for this console.")),
        );
    };
    let id = c.sessions.lock().start(role, &who);
    c.audit(&who, "console.sign_in", "", role.as_str(), "ok", None)
        .await;
    let mut r = Redirect::to("/console/").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&id, c.secure)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[derive(serde::Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    label: String,
}

/// The session of a state-changing request, when its CSRF token matches.
fn checked(
    c: &Console,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<(String, Session), (StatusCode, &'static str)> {
    let Some((id, s)) = c.session(headers) else {
        return Err((StatusCode::UNAUTHORIZED, "sign in first"));
    };
    if csrf.is_empty() || !session::same(csrf, &s.csrf) {
        return Err((
            StatusCode::FORBIDDEN,
            "the form's CSRF token is missing or wrong: reload the page",
        ));
    }
    Ok((id, s))
}

/// The journaled decision `uuid`, if the journal holds it.
fn find(j: &mut dyn journal::JournalStore, uuid: u128) -> Result<Option<Record>, JournalError> {
    let mut found = None;
    j.scan(
        &Filter {
            decision: Some(uuid),
            ..Filter::default()
        },
        &mut |r| {
            found = Some(r);
            false
        },
    )?;
    Ok(found)
}

/// The JSON body of an editor page's fetch, once its session and the CSRF
/// token in `x-csrf-token` are checked; `shape` says what the body is.
fn json_call<T: serde::de::DeserializeOwned>(
    c: &Console,
    headers: &HeaderMap,
    body: &[u8],
    shape: &'static str,
) -> Result<T, (StatusCode, &'static str)> {
    let csrf = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    checked(c, headers, csrf)?;
    serde_json::from_slice(body).map_err(|_| (StatusCode::BAD_REQUEST, shape))
}

/// A JSON answer to an editor page's fetch.
fn json_answer(json: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], json).into_response()
}

async fn sign_out(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let (id, s) = match checked(&c, &headers, &f.csrf) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    c.sessions.lock().end(&id);
    c.audit(&s.who, "console.sign_out", "", "", "ok", None)
        .await;
    let mut r = Redirect::to("/console/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie("", c.secure)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[derive(serde::Deserialize)]
struct OverviewQuery {
    #[serde(default)]
    hours: Option<usize>,
}

async fn overview(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    Query(q): Query<OverviewQuery>,
) -> Response {
    let Some((_, s)) = c.session(&headers) else {
        return to_sign_in();
    };
    let hours = if q.hours == Some(168) { 168 } else { 24 };
    let now = UnixMillis::now().0;
    let this_hour = now - now.rem_euclid(3_600_000);
    let from = UnixMillis(this_hour - (hours as i64 - 1) * 3_600_000);
    let body = match c.read(move |j| j.overview(from)).await {
        Err(e) => pages::notice(&e),
        Ok(o) => {
            let bucket = |at: UnixMillis| ((at.0 - from.0) / 3_600_000) as usize;
            let mut by_action: Vec<chart::Series<'_>> = Action::ALL
                .iter()
                .map(|a| chart::Series {
                    name: a.as_str(),
                    color: chart::action_color(*a),
                    counts: vec![0; hours],
                })
                .collect();
            let mut by_channel: Vec<chart::Series<'_>> = Channel::ALL
                .iter()
                .zip(chart::CHANNEL_COLORS)
                .map(|(ch, color)| chart::Series {
                    name: ch.as_str(),
                    color,
                    counts: vec![0; hours],
                })
                .collect();
            for (at, action, channel, n) in &o.hourly {
                let b = bucket(*at).min(hours - 1);
                if let Some(i) = Action::ALL.iter().position(|a| a == action) {
                    by_action[i].counts[b] += n;
                }
                if let Some(i) = Channel::ALL.iter().position(|x| x == channel) {
                    by_channel[i].counts[b] += n;
                }
            }
            by_channel.retain(|s| s.counts.iter().any(|n| *n > 0));
            let charts = [
                chart::hourly("Decisions per hour by action", &by_action, hours),
                chart::hourly("Decisions per hour by channel", &by_channel, hours),
            ];
            pages::overview(hours, &o, &charts)
        }
    };
    html(
        StatusCode::OK,
        pages::layout("Overview", &s, "overview", body),
    )
}

/// The journal filter a query asks for, or what is wrong with it.
fn filter_of(c: &Console, q: &ExplorerQuery) -> Result<Filter, String> {
    let nonempty = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let hours = i64::from(q.hours.unwrap_or(24).clamp(1, 24 * 366));
    let mut f = Filter {
        from: Some(UnixMillis(UnixMillis::now().0 - hours * 3_600_000)),
        newest_first: true,
        limit: Some(EXPLORER_LIMIT),
        ..Filter::default()
    };
    if let Some(a) = nonempty(&q.action) {
        f.action = Some(Action::parse(&a).ok_or(format!("no action `{a}`"))?);
    }
    if let Some(ch) = nonempty(&q.channel) {
        f.channel = Some(Channel::parse(&ch).ok_or(format!("no channel `{ch}`"))?);
    }
    if let Some(l) = nonempty(&q.label) {
        f.label = Some(if l == "none" {
            None
        } else {
            Some(Label::parse(&l).ok_or(format!("no label `{l}`"))?)
        });
    }
    if let Some(r) = nonempty(&q.reason) {
        if r.len() > 64 || !r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!(
                "`{r}` is not a reason code (letters, digits and _)"
            ));
        }
        f.reason = Some(r);
    }
    if let Some(u) = nonempty(&q.user) {
        // Hashed with the deployment key, as the store and journal key it.
        f.user = Some(c.engine.user_key(&u));
    }
    if let Some(d) = nonempty(&q.decision) {
        f.decision = Some(parse_decision(&d).ok_or(format!("`{d}` is not a decision id"))?);
        f.from = None;
    }
    Ok(f)
}

/// A decision as the console names it (32 hex digits), or as the API
/// answered it (the signed id: its first 16 bytes are the uuid).
fn parse_decision(s: &str) -> Option<u128> {
    if s.len() == 32 {
        return u128::from_str_radix(s, 16).ok();
    }
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()?;
    let uuid: [u8; 16] = bytes.get(..16)?.try_into().ok()?;
    Some(u128::from_be_bytes(uuid))
}

async fn explorer(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    Query(q): Query<ExplorerQuery>,
) -> Response {
    let Some((_, s)) = c.session(&headers) else {
        return to_sign_in();
    };
    let body = match filter_of(&c, &q) {
        Err(problem) => pages::explorer(&q, &[], EXPLORER_LIMIT as usize, Some(&problem)),
        Ok(f) => match c
            .read(move |j| {
                let mut out = Vec::new();
                j.scan(&f, &mut |r| {
                    out.push(r);
                    true
                })?;
                Ok(out)
            })
            .await
        {
            Ok(records) => pages::explorer(&q, &records, EXPLORER_LIMIT as usize, None),
            Err(e) => pages::notice(&e),
        },
    };
    html(
        StatusCode::OK,
        pages::layout("Decisions", &s, "decisions", body),
    )
}

#[derive(serde::Deserialize, Default)]
struct DecisionQuery {
    #[serde(default)]
    labelled: Option<String>,
}

async fn decision(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<DecisionQuery>,
) -> Response {
    let Some((_, s)) = c.session(&headers) else {
        return to_sign_in();
    };
    let Some(uuid) = parse_decision(&id) else {
        return html(
            StatusCode::NOT_FOUND,
            pages::layout(
                "Decision",
                &s,
                "decisions",
                pages::notice("No such decision."),
            ),
        );
    };
    let found = c
        .read(move |j| {
            let record = find(j, uuid)?;
            let outcomes = if record.is_some() {
                j.outcomes(uuid)?
            } else {
                Vec::new()
            };
            Ok(record.map(|r| (r, outcomes)))
        })
        .await;
    let (record, outcomes) = match found {
        Err(e) => {
            return html(
                StatusCode::OK,
                pages::layout("Decision", &s, "decisions", pages::notice(&e)),
            );
        }
        Ok(None) => {
            return html(
                StatusCode::NOT_FOUND,
                pages::layout(
                    "Decision",
                    &s,
                    "decisions",
                    pages::notice(
                        "No such decision in the journal (it may have been pruned or erased).",
                    ),
                ),
            );
        }
        Ok(Some(x)) => x,
    };
    // Sentences are rebuilt by re-deciding the journaled features with the
    // live rules and model (the journal keeps codes and weights).
    let rules = c.engine.rules();
    let model = c.engine.model();
    let again = crate::core::decide(
        &record.entry.features,
        record.entry.enrolled,
        &model,
        &rules,
    );
    let sentence = |code: &str| {
        again
            .reasons
            .iter()
            .chain(again.shadow_reasons.iter())
            .find(|r| r.code == code)
            .map(|r| r.message.clone())
    };
    let mut shown: Vec<ShownReason> = record
        .entry
        .reasons
        .iter()
        .map(|r| ShownReason {
            code: r.0.clone(),
            weight: r.1,
            sentence: sentence(&r.0),
            shadow: false,
        })
        .collect();
    shown.extend(record.entry.shadow.iter().map(|r| ShownReason {
        code: r.0.clone(),
        weight: r.1,
        sentence: sentence(&r.0),
        shadow: true,
    }));
    let features = serde_json::to_string_pretty(&record.entry.features).unwrap_or_default();
    let flash = q
        .labelled
        .as_deref()
        .and_then(Label::parse)
        .map(|l| format!("Labelled {}.", l.as_str()));
    let body = pages::decision(
        &record,
        &shown,
        &features,
        &outcomes,
        &s,
        (&rules.version, model.version()),
        flash.as_deref(),
    );
    html(
        StatusCode::OK,
        pages::layout("Decision", &s, "decisions", body),
    )
}

async fn label(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let (_, s) = match checked(&c, &headers, &f.csrf) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    if s.role != Role::Editor {
        c.audit(
            &s.who,
            "console.label",
            &id,
            &f.label,
            "permission_denied",
            None,
        )
        .await;
        return (StatusCode::FORBIDDEN, "viewers cannot label decisions").into_response();
    }
    let (outcome, label) = match f.label.as_str() {
        "fraud" => (Outcome::AnalystConfirmedFraud, Label::Fraud),
        "legit" => (Outcome::AnalystConfirmedLegit, Label::Legit),
        _ => return (StatusCode::BAD_REQUEST, "the label is `fraud` or `legit`").into_response(),
    };
    let Some(uuid) = parse_decision(&id) else {
        return (StatusCode::NOT_FOUND, "no such decision").into_response();
    };
    let found = c
        .read(move |j| Ok(find(j, uuid)?.map(|r| (r.entry.user, r.entry.action))))
        .await;
    let (user, action) = match found {
        Ok(Some(x)) => x,
        Ok(None) => {
            return (StatusCode::NOT_FOUND, "no such decision in the journal").into_response();
        }
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e).into_response(),
    };
    // The same path as ReportOutcome's analyst outcomes: the store
    // unteaches (fraud) and the journal labels.
    let decision_id = c.engine.decision_id(uuid, user, action);
    let result = c.engine.report(&decision_id, outcome, None).await;
    let code = match &result {
        Ok(_)
        | Err(crate::engine::ReportError::Store(crate::store::StoreError::UnknownDecision(_))) => {
            "ok"
        }
        Err(_) => "unavailable",
    };
    c.audit(
        &s.who,
        "console.label",
        &format!("decision {uuid:032x}"),
        label.as_str(),
        code,
        Some(user),
    )
    .await;
    if code != "ok" {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the store is unavailable; try again",
        )
            .into_response();
    }
    // The journal writer lingers before it writes: wait for this label.
    if let Some(j) = c.engine.journal() {
        j.flush(std::time::Duration::from_secs(5)).await;
    }
    Redirect::to(&format!(
        "/console/decisions/{uuid:032x}?labelled={}",
        label.as_str()
    ))
    .into_response()
}

async fn audit_page(State(c): State<Arc<Console>>, headers: HeaderMap) -> Response {
    let Some((_, s)) = c.session(&headers) else {
        return to_sign_in();
    };
    let body = match c.read(|j| j.audit_log(500)).await {
        Err(e) => pages::notice(&e),
        Ok(rows) => pages::audit(&rows),
    };
    html(StatusCode::OK, pages::layout("Audit", &s, "audit", body))
}
