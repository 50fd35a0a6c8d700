//! `riskgate eval` and `riskgate report`: a terminal client of a running
//! server, using the generated gRPC client.

use anyhow::Context as _;
use tonic::transport::Channel;

use crate::cli::client::{ClientTls, endpoint};
use crate::domain;
use crate::grpc::pb;
use crate::grpc::pb::risk_service_client::RiskServiceClient;

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

async fn connect(addr: &str, tls: &ClientTls) -> anyhow::Result<RiskServiceClient<Channel>> {
    let endpoint = endpoint(addr, tls)?
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(10));
    let channel = endpoint
        .connect()
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    Ok(RiskServiceClient::new(channel))
}

/// Runs `eval`.
pub async fn run_eval(a: EvalArgs) -> anyhow::Result<()> {
    let channel = parse(
        "channel",
        &a.channel,
        domain::Channel::parse,
        &names(domain::Channel::ALL, domain::Channel::as_str),
    )?;
    let cred = parse(
        "credential result",
        &a.credential,
        domain::CredentialResult::parse,
        &names(
            domain::CredentialResult::ALL,
            domain::CredentialResult::as_str,
        ),
    )?;
    let request = pb::EvaluateRequest {
        user_id: a.user,
        channel: channel_to_proto(channel) as i32,
        ip_address: a.ip,
        device: Some(pb::Device {
            device_id: a.device_id.unwrap_or_default(),
            user_agent: a.user_agent.unwrap_or_default(),
        }),
        occurred_at: None,
        credential_result: match cred {
            domain::CredentialResult::Valid => pb::CredentialResult::Valid,
            domain::CredentialResult::Invalid => pb::CredentialResult::Invalid,
            domain::CredentialResult::NotChecked => pb::CredentialResult::NotChecked,
        } as i32,
        ..Default::default()
    };
    let mut client = connect(&a.addr, &a.tls).await?;
    let r = client
        .evaluate(request)
        .await
        .map_err(status_error)?
        .into_inner();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&response_json(&r))?);
    } else {
        print!("{}", render(&r));
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
    let mut client = connect(&a.addr, &a.tls).await?;
    let r = client
        .report_outcome(pb::ReportOutcomeRequest {
            decision_id: a.decision,
            outcome: outcome_to_proto(outcome) as i32,
            factor: factor.map(|f| crate::grpc::convert::factor_to_proto(f) as i32),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    println!("recorded; profile updated: {}", r.profile_updated);
    Ok(())
}

fn status_error(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("server answered {:?}: {}", s.code(), s.message())
}

fn channel_to_proto(c: domain::Channel) -> pb::Channel {
    match c {
        domain::Channel::Web => pb::Channel::Web,
        domain::Channel::MobileApp => pb::Channel::MobileApp,
        domain::Channel::CallCenter => pb::Channel::CallCenter,
        domain::Channel::Kiosk => pb::Channel::Kiosk,
        domain::Channel::Api => pb::Channel::Api,
    }
}

fn outcome_to_proto(o: domain::Outcome) -> pb::Outcome {
    match o {
        domain::Outcome::LoginSucceeded => pb::Outcome::LoginSucceeded,
        domain::Outcome::StepUpPassed => pb::Outcome::StepUpPassed,
        domain::Outcome::StepUpFailed => pb::Outcome::StepUpFailed,
        domain::Outcome::StepUpAbandoned => pb::Outcome::StepUpAbandoned,
        domain::Outcome::UserReportedFraud => pb::Outcome::UserReportedFraud,
        domain::Outcome::AnalystConfirmedFraud => pb::Outcome::AnalystConfirmedFraud,
        domain::Outcome::AnalystConfirmedLegit => pb::Outcome::AnalystConfirmedLegit,
    }
}

fn action_name(a: i32) -> &'static str {
    match pb::Action::try_from(a) {
        Ok(pb::Action::Allow) => "ALLOW",
        Ok(pb::Action::StepUp) => "STEP_UP",
        Ok(pb::Action::Deny) => "DENY",
        _ => "UNSPECIFIED",
    }
}

fn level_name(l: i32) -> &'static str {
    match pb::RiskLevel::try_from(l) {
        Ok(pb::RiskLevel::Low) => "low",
        Ok(pb::RiskLevel::Medium) => "medium",
        Ok(pb::RiskLevel::High) => "high",
        _ => "unspecified",
    }
}

fn factor_name(f: i32) -> &'static str {
    pb::Factor::try_from(f).map_or("unknown", |f| f.as_str_name())
}

/// The response as JSON with readable enum names.
pub fn response_json(r: &pb::EvaluateResponse) -> serde_json::Value {
    serde_json::json!({
        "decision_id": r.decision_id,
        "action": action_name(r.action),
        "score": r.score,
        "level": level_name(r.level),
        "reasons": r.reasons.iter().map(|x| serde_json::json!({
            "code": x.code, "message": x.message, "weight": x.weight, "shadow": x.shadow,
        })).collect::<Vec<_>>(),
        "acceptable_factors": r.acceptable_factors.iter().map(|f| factor_name(*f)).collect::<Vec<_>>(),
        "policy_version": r.policy_version,
        "model_version": r.model_version,
        "degraded_signals": r.degraded_signals,
    })
}

/// The response for a terminal.
pub fn render(r: &pb::EvaluateResponse) -> String {
    let mut out = format!(
        "{}  score {:.3} ({} risk)\n",
        action_name(r.action),
        r.score,
        level_name(r.level)
    );
    if !r.acceptable_factors.is_empty() {
        let fs: Vec<&str> = r
            .acceptable_factors
            .iter()
            .map(|f| factor_name(*f))
            .collect();
        out.push_str(&format!("  factors: {}\n", fs.join(", ")));
    }
    for reason in &r.reasons {
        out.push_str(&format!(
            "  {}{:<28} {:+.2}  {}\n",
            if reason.shadow { "(shadow) " } else { "" },
            reason.code,
            reason.weight,
            reason.message
        ));
    }
    if !r.degraded_signals.is_empty() {
        out.push_str(&format!("  degraded: {}\n", r.degraded_signals.join(", ")));
    }
    out.push_str(&format!(
        "  decision {}\n  policy {}  model {}\n",
        r.decision_id, r.policy_version, r.model_version
    ));
    out
}

/// Runs `health`: exit 0 when the server reports SERVING.
pub async fn run_health(addr: &str, tls: &ClientTls) -> anyhow::Result<()> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let endpoint = endpoint(addr, tls)?
        .connect_timeout(std::time::Duration::from_secs(3))
        .timeout(std::time::Duration::from_secs(3));
    let channel = endpoint
        .connect()
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    let r = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    let status = ServingStatus::try_from(r.status).unwrap_or(ServingStatus::Unknown);
    println!("{}", status.as_str_name());
    if status == ServingStatus::Serving {
        Ok(())
    } else {
        anyhow::bail!("not serving")
    }
}
