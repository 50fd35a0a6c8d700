//! TLS and mutual TLS on the gRPC listener, with certificates made here by
//! a private CA: good clients are served, clients without a certificate
//! from the client CA and plain-text clients are refused, and rotated
//! certificate files are picked up without a restart (a broken file keeps
//! the previous certificate serving).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::pki::{Ca, Leaf};
use common::*;
use riskgate::api::pb;
use riskgate::api::pb::risk_service_client::RiskServiceClient;
use riskgate::server::{self, Running};
use riskgate::tls::TlsPaths;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

struct Files {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
    server_ca: PathBuf,
    client_ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

/// Replaces a file the way a deployment tool does: write aside, rename.
fn replace(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

struct Pki {
    server_ca: Ca,
    client_ca: Ca,
    server: Leaf,
    client: Leaf,
}

fn pki() -> Pki {
    let server_ca = Ca::new("riskgate test server CA");
    let client_ca = Ca::new("riskgate test client CA");
    let server = server_ca.leaf(&["riskgate.test", "127.0.0.1"], 1, false);
    let client = client_ca.leaf(&["login-service.test"], 2, true);
    Pki {
        server_ca,
        client_ca,
        server,
        client,
    }
}

fn files(p: &Pki) -> Files {
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n);
    let f = Files {
        cert: path("server.pem"),
        key: path("server-key.pem"),
        server_ca: path("server-ca.pem"),
        client_ca: path("client-ca.pem"),
        client_cert: path("client.pem"),
        client_key: path("client-key.pem"),
        _dir: dir,
    };
    replace(&f.cert, &p.server.cert);
    replace(&f.key, &p.server.key);
    replace(&f.server_ca, &p.server_ca.pem);
    replace(&f.client_ca, &p.client_ca.pem);
    replace(&f.client_cert, &p.client.cert);
    replace(&f.client_key, &p.client.key);
    f
}

async fn serve(f: &Files, mutual: bool) -> Running {
    let mut config = config();
    config.sources.reload_interval = Duration::from_millis(100);
    config.tls = Some(TlsPaths {
        cert: f.cert.clone(),
        key: f.key.clone(),
        client_ca: mutual.then(|| f.client_ca.clone()),
    });
    server::start(&config).await.unwrap()
}

fn tls_config(ca: &str, identity: Option<&Leaf>) -> ClientTlsConfig {
    let c = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
    match identity {
        Some(l) => c.identity(Identity::from_pem(&l.cert, &l.key)),
        None => c,
    }
}

/// One Evaluate over a fresh connection.
async fn evaluate(addr: SocketAddr, tls: Option<ClientTlsConfig>) -> Result<(), String> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint = Channel::from_shared(format!("{scheme}://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5));
    if let Some(t) = tls {
        endpoint = endpoint.tls_config(t).unwrap();
    }
    let channel = endpoint.connect().await.map_err(|e| format!("{e:?}"))?;
    let r = RiskServiceClient::new(channel)
        .evaluate(attempt("tls-user", "198.51.100.7", "laptop", CHROME))
        .await
        .map_err(|s| format!("{s:?}"))?
        .into_inner();
    assert_ne!(r.action, pb::Action::Unspecified as i32);
    Ok(())
}

/// The certificate the server presents to a new connection (a bare TLS
/// handshake with rustls; the client authenticates when given a leaf).
async fn presented(addr: SocketAddr, ca: &str, client: Option<&Leaf>) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let mut config = match client {
        Some(l) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(l.cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(l.key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    let (_, session) = tls.get_ref();
    assert_eq!(session.alpn_protocol(), Some(&b"h2"[..]));
    session.peer_certificates().unwrap()[0].to_vec()
}

fn counter(running: &Running, sample: &str) -> u64 {
    let text = running.engine.metrics().render();
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

const HANDSHAKE_FAILURES: &str = "riskgate_tls_handshake_failures_total ";
const TLS_RELOAD_OK: &str = r#"riskgate_reloads_total{kind="tls",result="success"} "#;
const TLS_RELOAD_FAILED: &str = r#"riskgate_reloads_total{kind="tls",result="failure"} "#;

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(Instant::now() < deadline, "{what} did not happen in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn tls_serves_good_clients_and_refuses_plain_text() {
    let p = pki();
    let f = files(&p);
    let running = serve(&f, false).await;
    evaluate(running.addr, Some(tls_config(&p.server_ca.pem, None)))
        .await
        .unwrap();
    assert_eq!(
        presented(running.addr, &p.server_ca.pem, None).await,
        p.server.der
    );
    // Plain text on the TLS port gets no answer.
    let e = evaluate(running.addr, None).await.unwrap_err();
    assert!(!e.is_empty());
    // A client that trusts another CA refuses the server.
    let other = Ca::new("someone else");
    assert!(
        evaluate(running.addr, Some(tls_config(&other.pem, None)))
            .await
            .is_err()
    );
    running.shutdown().await;
}

/// The HTTP/JSON face is under the same TLS: a plain HTTP/1.1 client
/// (ALPN `http/1.1`) gets its answer; plain text gets none.
#[tokio::test]
async fn the_http_face_is_served_under_tls_to_http1_clients() {
    use rustls::pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let p = pki();
    let f = files(&p);
    let running = serve(&f, false).await;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(p.server_ca.pem.as_bytes()).unwrap())
        .unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    let body = r#"{"userId":"alice","channel":"CHANNEL_WEB","ipAddress":"198.51.100.7","credentialResult":"CREDENTIAL_RESULT_VALID"}"#;
    tls.write_all(
        format!(
            "POST /v1/evaluate HTTP/1.1\r\nhost: riskgate\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""action":"ACTION_"#), "{answer}");

    // The same request in plain text on the TLS port gets no HTTP answer.
    let mut plain = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: riskgate\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut got)).await;
    assert!(!got.starts_with(b"HTTP/1.1 200"), "plain text was served");
    running.shutdown().await;
}

#[tokio::test]
async fn mutual_tls_refuses_clients_without_a_certificate_from_the_client_ca() {
    let p = pki();
    let f = files(&p);
    let running = serve(&f, true).await;
    evaluate(
        running.addr,
        Some(tls_config(&p.server_ca.pem, Some(&p.client))),
    )
    .await
    .unwrap();
    assert_eq!(counter(&running, HANDSHAKE_FAILURES), 0);

    // No client certificate.
    let e = evaluate(running.addr, Some(tls_config(&p.server_ca.pem, None)))
        .await
        .unwrap_err();
    assert!(!e.is_empty());
    // A client certificate from a foreign CA (same names, same serial).
    let foreign = Ca::new("riskgate test client CA").leaf(&["login-service.test"], 2, true);
    let e = evaluate(
        running.addr,
        Some(tls_config(&p.server_ca.pem, Some(&foreign))),
    )
    .await
    .unwrap_err();
    assert!(!e.is_empty());
    // Both were refused at the handshake, not by the service.
    eventually("two refused handshakes", async || {
        counter(&running, HANDSHAKE_FAILURES) >= 2
    })
    .await;
    // Plain text is refused too.
    assert!(evaluate(running.addr, None).await.is_err());
    // The good client still works.
    evaluate(
        running.addr,
        Some(tls_config(&p.server_ca.pem, Some(&p.client))),
    )
    .await
    .unwrap();
    running.shutdown().await;
}

#[tokio::test]
async fn rotated_certificates_are_served_without_restart_and_garbage_is_ignored() {
    let p = pki();
    let f = files(&p);
    let running = serve(&f, true).await;
    let client = Some(&p.client);
    assert_eq!(
        presented(running.addr, &p.server_ca.pem, client).await,
        p.server.der
    );

    // A new leaf from the same CA: another serial, another name.
    let rotated = p
        .server_ca
        .leaf(&["rotated.riskgate.test", "127.0.0.1"], 99, false);
    assert_ne!(rotated.der, p.server.der);
    replace(&f.key, &rotated.key);
    replace(&f.cert, &rotated.cert);
    eventually("the rotated certificate", async || {
        presented(running.addr, &p.server_ca.pem, client).await == rotated.der
    })
    .await;
    assert!(counter(&running, TLS_RELOAD_OK) >= 1);
    evaluate(
        running.addr,
        Some(tls_config(&p.server_ca.pem, Some(&p.client))),
    )
    .await
    .unwrap();

    // Garbage in the certificate file: rejected, counted, the rotated
    // certificate keeps serving.
    let failures = counter(&running, TLS_RELOAD_FAILED);
    replace(&f.cert, "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n");
    eventually("the rejected reload", async || {
        counter(&running, TLS_RELOAD_FAILED) > failures
    })
    .await;
    assert_eq!(
        presented(running.addr, &p.server_ca.pem, client).await,
        rotated.der
    );
    evaluate(
        running.addr,
        Some(tls_config(&p.server_ca.pem, Some(&p.client))),
    )
    .await
    .unwrap();

    // Rotating the client CA: the old client is refused, one from the new CA served.
    let new_client_ca = Ca::new("riskgate test client CA 2");
    let new_client = new_client_ca.leaf(&["login-service.test"], 3, true);
    replace(&f.cert, &rotated.cert);
    replace(&f.client_ca, &new_client_ca.pem);
    eventually("the new client CA", async || {
        evaluate(
            running.addr,
            Some(tls_config(&p.server_ca.pem, Some(&new_client))),
        )
        .await
        .is_ok()
    })
    .await;
    assert!(
        evaluate(
            running.addr,
            Some(tls_config(&p.server_ca.pem, Some(&p.client)))
        )
        .await
        .is_err()
    );
    running.shutdown().await;
}

#[test]
fn a_bad_key_file_stops_the_start_without_quoting_it() {
    let p = pki();
    let f = files(&p);
    std::fs::write(&f.key, "-----BEGIN PRIVATE KEY-----\nSECRET-KEY-TEXT\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_riskgate"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "off",
        ])
        .env_remove("RISKGATE_CONFIG")
        .env("RISKGATE_TLS_CERT", &f.cert)
        .env("RISKGATE_TLS_KEY", &f.key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no usable private key"), "{err}");
    assert!(!err.contains("SECRET-KEY-TEXT"), "{err}");
}

#[tokio::test]
async fn the_cli_clients_speak_mutual_tls() {
    let p = pki();
    let f = files(&p);
    let running = serve(&f, true).await;
    let addr = format!("https://{}", running.addr);
    let bin = env!("CARGO_BIN_EXE_riskgate");
    let tls_args = |with_client: bool| {
        let mut a = vec!["--ca".to_string(), f.server_ca.display().to_string()];
        if with_client {
            a.extend([
                "--cert".to_string(),
                f.client_cert.display().to_string(),
                "--key".to_string(),
                f.client_key.display().to_string(),
            ]);
        }
        a
    };
    let run = |args: Vec<String>| {
        let bin = bin.to_string();
        tokio::task::spawn_blocking(move || Command::new(bin).args(args).output().unwrap())
    };

    let mut health = vec!["health".to_string(), "--addr".into(), addr.clone()];
    health.extend(tls_args(true));
    let out = run(health).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "SERVING");

    let mut eval: Vec<String> = [
        "eval",
        "--addr",
        &addr,
        "--user",
        "cli",
        "--ip",
        "192.0.2.4",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    eval.extend(tls_args(true));
    eval.push("--json".into());
    let out = run(eval.clone()).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let decision = v["decision_id"].as_str().unwrap().to_string();

    let mut report: Vec<String> = [
        "report",
        "--addr",
        &addr,
        "--decision",
        &decision,
        "--outcome",
        "login_succeeded",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    report.extend(tls_args(true));
    let out = run(report).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Without a client certificate the server refuses.
    let mut no_cert = vec!["health".to_string(), "--addr".into(), addr.clone()];
    no_cert.extend(tls_args(false));
    let out = run(no_cert).await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    // https without --ca, and --ca with http://, are usage errors.
    let out = run(vec!["health".into(), "--addr".into(), addr.clone()])
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let mut plain = vec![
        "health".to_string(),
        "--addr".into(),
        format!("http://{}", running.addr),
    ];
    plain.extend(tls_args(false));
    let out = run(plain).await.unwrap();
    assert_eq!(out.status.code(), Some(64));
    running.shutdown().await;
}

const ADMIN_TOKEN: &str = "an-admin-token-of-at-least-32-bytes!!";

/// One GetUserProfile on the admin listener over a fresh connection.
async fn admin_profile(addr: SocketAddr, tls: Option<ClientTlsConfig>) -> Result<(), String> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint = Channel::from_shared(format!("{scheme}://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5));
    if let Some(t) = tls {
        endpoint = endpoint.tls_config(t).unwrap();
    }
    let channel = endpoint.connect().await.map_err(|e| format!("{e:?}"))?;
    let mut req = tonic::Request::new(pb::GetUserProfileRequest {
        user_id: "alice".into(),
        ..Default::default()
    });
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {ADMIN_TOKEN}").parse().unwrap(),
    );
    pb::risk_admin_client::RiskAdminClient::new(channel)
        .get_user_profile(req)
        .await
        .map_err(|s| format!("{s:?}"))?;
    Ok(())
}

#[tokio::test]
async fn the_admin_api_is_served_under_the_same_mutual_tls() {
    let p = pki();
    let f = files(&p);
    let mut config = config();
    config.tls = Some(TlsPaths {
        cert: f.cert.clone(),
        key: f.key.clone(),
        client_ca: Some(f.client_ca.clone()),
    });
    config.admin.listen = Some("127.0.0.1:0".parse().unwrap());
    config.admin.token = Some(riskgate::config::Secret::new(ADMIN_TOKEN));
    let running = server::start(&config).await.unwrap();
    let admin = running.admin_addr.unwrap();
    admin_profile(admin, Some(tls_config(&p.server_ca.pem, Some(&p.client))))
        .await
        .unwrap();
    let plain = admin_profile(admin, None).await;
    assert!(plain.is_err(), "a plain-text client reached the admin API");
    let no_cert = admin_profile(admin, Some(tls_config(&p.server_ca.pem, None))).await;
    assert!(
        no_cert.is_err(),
        "a client without a certificate reached the admin API"
    );
    running.shutdown().await;
}

/// The console is on the admin listener, under the same TLS: its session
/// cookie is marked Secure there.
#[tokio::test]
async fn the_console_is_served_under_tls_with_a_secure_cookie() {
    use rustls::pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let p = pki();
    let f = files(&p);
    let mut config = config();
    config.tls = Some(TlsPaths {
        cert: f.cert.clone(),
        key: f.key.clone(),
        client_ca: None,
    });
    config.admin.listen = Some("127.0.0.1:0".parse().unwrap());
    config.admin.token = Some(riskgate::config::Secret::new(ADMIN_TOKEN));
    let running = server::start(&config).await.unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(p.server_ca.pem.as_bytes()).unwrap())
        .unwrap();
    let mut tls_client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls_client.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(running.admin_addr.unwrap())
        .await
        .unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(tls_client))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    let body = format!("token={ADMIN_TOKEN}");
    tls.write_all(
        format!(
            "POST /console/login HTTP/1.1\r\nhost: riskgate\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 303"), "{answer}");
    let cookie = answer
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    running.shutdown().await;
}

#[test]
fn an_admin_listener_off_loopback_without_tls_refuses_to_start() {
    let resolve = |insecure: Option<&'static str>| {
        riskgate::config::Config::resolve(&riskgate::config::Overrides::default(), move |k| match k
        {
            "RISKGATE_ADMIN_LISTEN" => Some("0.0.0.0:50052".into()),
            "RISKGATE_ADMIN_TOKEN" => Some(ADMIN_TOKEN.into()),
            "RISKGATE_ADMIN_INSECURE" => insecure.map(str::to_string),
            _ => None,
        })
    };
    let e = resolve(None).unwrap_err().to_string();
    assert!(
        e.contains("admin_insecure") && e.contains("in clear"),
        "{e}"
    );
    assert!(!e.contains(ADMIN_TOKEN));
    assert!(resolve(Some("true")).is_ok());
    // On loopback, plain text stays the default for development.
    let local =
        riskgate::config::Config::resolve(&riskgate::config::Overrides::default(), |k| match k {
            "RISKGATE_ADMIN_LISTEN" => Some("127.0.0.1:50052".into()),
            "RISKGATE_ADMIN_TOKEN" => Some(ADMIN_TOKEN.into()),
            _ => None,
        });
    assert!(local.is_ok());
}
