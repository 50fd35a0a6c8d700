//! `riskgate eval`, `report` and `health`: a terminal client of a running
//! server ([`crate::api::client`]).

use std::time::Duration;

use crate::api::client::{self, Attempt, Caller, ClientTls};
use crate::domain;

/// `riskgate eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Server address.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub addr: String,
    /// The account.
    #[arg(long)]
    pub user: String,
    /// The client IP address.
    #[arg(long)]
    pub ip: String,
    #[arg(long)]
    pub user_agent: Option<String>,
    #[arg(long)]
    pub device_id: Option<String>,
    /// How the login service knows the device: none (an identifier it was
    /// sent) or key_verified (it verified a key bound to the device).
    #[arg(long, default_value = "none", requires = "device_id")]
    pub device_binding: String,
    /// web, mobile_app, call_center, kiosk or api.
    #[arg(long, default_value = "web")]
    pub channel: String,
    /// valid, invalid or not_checked.
    #[arg(long, default_value = "valid")]
    pub credential: String,
    /// Print the response as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub tls: ClientTls,
}

/// `riskgate report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub addr: String,
    /// The decision id printed by `eval`.
    #[arg(long)]
    pub decision: String,
    /// login_succeeded, step_up_passed, step_up_failed, step_up_abandoned,
    /// user_reported_fraud, analyst_confirmed_fraud, analyst_confirmed_legit.
    #[arg(long)]
    pub outcome: String,
    /// The factor used (webauthn, totp, push, sms_otp, email_otp, knowledge_check).
    #[arg(long)]
    pub factor: Option<String>,
    #[command(flatten)]
    pub tls: ClientTls,
}

/// A usage error (exit 64).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn parse<T>(what: &str, s: &str, f: fn(&str) -> Option<T>, all: &[&str]) -> Result<T, UsageError> {
    f(s).ok_or_else(|| UsageError(format!("unknown {what} `{s}` (one of: {})", all.join(", "))))
}

fn names<T: Copy>(all: &[T], f: fn(T) -> &'static str) -> Vec<&'static str> {
    all.iter().map(|x| f(*x)).collect()
}

async fn caller(addr: &str, tls: &ClientTls) -> anyhow::Result<Caller> {
    Ok(
        client::connect(addr, tls, Duration::from_secs(5), Duration::from_secs(10))
            .await?
            .caller(),
    )
}

/// Runs `eval`.
pub async fn run_eval(a: EvalArgs) -> anyhow::Result<()> {
    let channel = parse(
        "channel",
        &a.channel,
        domain::Channel::parse,
        &names(domain::Channel::ALL, domain::Channel::as_str),
    )?;
    let credential = parse(
        "credential result",
        &a.credential,
        domain::CredentialResult::parse,
        &names(
            domain::CredentialResult::ALL,
            domain::CredentialResult::as_str,
        ),
    )?;
    let device_binding = parse(
        "device binding",
        &a.device_binding,
        domain::DeviceBinding::parse,
        &names(domain::DeviceBinding::ALL, domain::DeviceBinding::as_str),
    )?;
    let attempt = Attempt {
        user_id: a.user,
        channel,
        ip: a.ip,
        device_id: a.device_id,
        device_binding,
        user_agent: a.user_agent,
        credential,
    };
    let d = caller(&a.addr, &a.tls).await?.evaluate(attempt).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&decision_json(&d))?);
    } else {
        print!("{}", render(&d));
    }
    Ok(())
}

/// Runs `report`.
pub async fn run_report(a: ReportArgs) -> anyhow::Result<()> {
    let outcome = parse(
        "outcome",
        &a.outcome,
        domain::Outcome::parse,
        &names(domain::Outcome::ALL, domain::Outcome::as_str),
    )?;
    let factor = match &a.factor {
        Some(f) => Some(parse(
            "factor",
            f,
            domain::Factor::parse,
            &names(domain::Factor::ALL, domain::Factor::as_str),
        )?),
        None => None,
    };
    let updated = caller(&a.addr, &a.tls)
        .await?
        .report(a.decision, outcome, factor)
        .await?;
    println!("recorded; profile updated: {updated}");
    Ok(())
}

fn action_name(a: domain::Action) -> String {
    a.as_str().to_ascii_uppercase()
}

fn factor_name(f: domain::Factor) -> String {
    format!("FACTOR_{}", f.as_str().to_ascii_uppercase())
}

/// A decision as JSON with readable enum names (the proto's names).
pub fn decision_json(d: &domain::Decision) -> serde_json::Value {
    serde_json::json!({
        "decision_id": d.decision_id,
        "action": action_name(d.action),
        "score": d.score,
        "level": d.level.as_str(),
        "reasons": d.all_reasons().map(|x| serde_json::json!({
            "code": x.code, "message": x.message, "weight": x.weight, "shadow": x.shadow,
        })).collect::<Vec<_>>(),
        "acceptable_factors": d.acceptable_factors.iter().map(|f| factor_name(*f)).collect::<Vec<_>>(),
        "policy_version": d.policy_version,
        "model_version": d.model_version,
        "degraded_signals": d.degraded.names().collect::<Vec<_>>(),
    })
}

/// A decision for a terminal.
pub fn render(d: &domain::Decision) -> String {
    let mut out = format!(
        "{}  score {:.3} ({} risk)\n",
        action_name(d.action),
        d.score,
        d.level
    );
    if !d.acceptable_factors.is_empty() {
        let fs: Vec<String> = d
            .acceptable_factors
            .iter()
            .map(|f| factor_name(*f))
            .collect();
        out.push_str(&format!("  factors: {}\n", fs.join(", ")));
    }
    for reason in d.all_reasons() {
        out.push_str(&format!(
            "  {}{:<28} {:+.2}  {}\n",
            if reason.shadow { "(shadow) " } else { "" },
            reason.code,
            reason.weight,
            reason.message
        ));
    }
    if !d.degraded.is_empty() {
        let names: Vec<&str> = d.degraded.names().collect();
        out.push_str(&format!("  degraded: {}\n", names.join(", ")));
    }
    out.push_str(&format!(
        "  decision {}\n  policy {}  model {}\n",
        d.decision_id, d.policy_version, d.model_version
    ));
    out
}

/// Runs `health`: exit 0 when the server reports SERVING.
pub async fn run_health(addr: &str, tls: &ClientTls) -> anyhow::Result<()> {
    let status = client::connect(addr, tls, Duration::from_secs(3), Duration::from_secs(3))
        .await?
        .caller()
        .health()
        .await?;
    println!("{status}");
    if status == "SERVING" {
        Ok(())
    } else {
        anyhow::bail!("not serving")
    }
}
