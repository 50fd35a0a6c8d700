//! Test harness: a real riskgate server on a free port, and clients.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use riskgate::api::pb;
use riskgate::api::pb::risk_service_client::RiskServiceClient;
use riskgate::config::{Config, Overrides};
use riskgate::server::{self, Running};
use tonic::transport::Channel;

pub struct TestServer {
    pub running: Running,
    pub client: RiskServiceClient<Channel>,
}

pub fn config() -> Config {
    Config::resolve(
        &Overrides {
            listen: Some("127.0.0.1:0".into()),
            metrics_listen: Some("127.0.0.1:0".into()),
            // The journal has its own tests; elsewhere it stays out of the
            // working directory.
            journal: Some("off".into()),
            ..Overrides::default()
        },
        |_| None,
    )
    .unwrap()
}

pub async fn start() -> TestServer {
    start_with(config()).await
}

pub async fn start_with(config: Config) -> TestServer {
    let running = server::start(&config).await.unwrap();
    let client = connect(&running).await;
    TestServer { running, client }
}

pub async fn connect(running: &Running) -> RiskServiceClient<Channel> {
    RiskServiceClient::new(channel(running).await)
}

pub async fn channel(running: &Running) -> Channel {
    Channel::from_shared(format!("http://{}", running.addr))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

pub fn engine(s: &TestServer) -> Arc<riskgate::engine::Engine> {
    s.running.engine.clone()
}

pub const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
pub const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";

pub fn attempt(user: &str, ip: &str, device: &str, ua: &str) -> pb::EvaluateRequest {
    pb::EvaluateRequest {
        user_id: user.into(),
        channel: pb::Channel::Web as i32,
        ip_address: ip.into(),
        device: Some(pb::Device {
            device_id: device.into(),
            user_agent: ua.into(),
            binding: pb::DeviceBinding::None as i32,
        }),
        credential_result: pb::CredentialResult::Valid as i32,
        ..Default::default()
    }
}

pub fn codes(r: &pb::EvaluateResponse) -> Vec<String> {
    r.reasons.iter().map(|x| x.code.clone()).collect()
}

pub fn action(r: &pb::EvaluateResponse) -> pb::Action {
    pb::Action::try_from(r.action).unwrap()
}

pub mod conformance;
pub mod http;
pub mod pki;
pub mod redis;
