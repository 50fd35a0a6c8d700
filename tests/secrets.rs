//! Secrets never reach output: the real binary serves a full run with an
//! HMAC key, a Redis password and TLS private keys set (debug logging on),
//! answers CLI clients over mutual TLS, rejects a rotated key file full of
//! garbage, loses its Redis, prints its configuration and its help, and
//! exits on SIGTERM — and no stdout or stderr of any of it, nor /metrics,
//! holds a secret value.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::pki::Ca;
use common::redis::RedisServer;

const HMAC: &str = "hmac-SECRET-7f3a9c1e5b2d4a6f8e0c";
const REDIS_PASSWORD: &str = "redis-SECRET-0b1c2d3e4f5a6b7c";
const GARBAGE_KEY: &str = "garbage-SECRET-9d8c7b6a5f4e3d2c";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_riskgate"));
    c.env_remove("RISKGATE_CONFIG");
    c
}

/// The base64 lines of a PEM key: any of them in the output is a leak.
fn pem_body_lines(pem: &str) -> Vec<String> {
    pem.lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .map(str::to_string)
        .collect()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn fetch_metrics(addr: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    std::io::Write::write_all(
        &mut s,
        b"GET /metrics HTTP/1.1\r\nHost: riskgate\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn wait_for(log: &Mutex<Vec<String>>, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(l) = log.lock().unwrap().iter().find(|l| l.contains(what)) {
            return l.clone();
        }
        assert!(Instant::now() < deadline, "no log line with `{what}`");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn no_secret_reaches_logs_errors_help_or_metrics() {
    let mut redis = RedisServer::start();
    redis
        .cli(&["CONFIG", "SET", "requirepass", REDIS_PASSWORD])
        .unwrap();
    let redis_url = format!("redis://:{REDIS_PASSWORD}@127.0.0.1:{}/", redis.port);

    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, contents: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, contents).unwrap();
        p
    };
    let server_ca = Ca::new("secrets test server CA");
    let client_ca = Ca::new("secrets test client CA");
    let server = server_ca.leaf(&["riskgate.test", "127.0.0.1"], 1, false);
    let client = client_ca.leaf(&["login.test"], 2, true);
    let cert = write("server.pem", &server.cert);
    let key = write("server-key.pem", &server.key);
    let ca = write("server-ca.pem", &server_ca.pem);
    let cca = write("client-ca.pem", &client_ca.pem);
    let ccert = write("client.pem", &client.cert);
    let ckey = write("client-key.pem", &client.key);

    let mut secrets = vec![
        HMAC.to_string(),
        REDIS_PASSWORD.to_string(),
        GARBAGE_KEY.to_string(),
    ];
    secrets.extend(pem_body_lines(&server.key));
    secrets.extend(pem_body_lines(&client.key));

    let with_env = |c: &mut Command| {
        c.env("RISKGATE_HMAC_KEY", HMAC)
            .env("RISKGATE_REDIS_URL", &redis_url)
            .env("RISKGATE_TLS_CERT", &cert)
            .env("RISKGATE_TLS_KEY", &key)
            .env("RISKGATE_TLS_CLIENT_CA", &cca)
            .env("RISKGATE_STORE_TIMEOUT_MS", "200")
            .env("RUST_LOG", "debug");
    };
    let mut outputs: Vec<(String, String)> = Vec::new();

    // The configuration dump and the help texts, with every secret in the env.
    let mut c = bin();
    with_env(&mut c);
    let dump = c.args(["serve", "--print-config"]).output().unwrap();
    assert!(dump.status.success(), "{}", text(&dump));
    let dump_text = text(&dump);
    assert!(dump_text.contains("<redacted>"), "{dump_text}");
    assert!(dump_text.contains("server-key.pem"), "{dump_text}");
    outputs.push(("serve --print-config".into(), dump_text));
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["eval", "--help"],
        &["bench", "--help"],
    ] {
        let mut c = bin();
        with_env(&mut c);
        let out = c.args(args).output().unwrap();
        assert!(out.status.success());
        outputs.push((args.join(" "), text(&out)));
    }
    // A configuration error names the key, never its value.
    let mut c = bin();
    with_env(&mut c);
    let bad = c
        .env("RISKGATE_HMAC_KEY", &HMAC[..12])
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(64));
    assert!(text(&bad).contains("store.hmac_key"), "{}", text(&bad));
    secrets.push(HMAC[..12].to_string());
    outputs.push(("serve with a short key".into(), text(&bad)));

    // The full run.
    let mut c = bin();
    with_env(&mut c);
    let mut child = c
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--metrics-listen", "127.0.0.1:0", "--log-format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut readers = Vec::new();
    for stream in [
        Box::new(child.stderr.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stdout.take().unwrap()),
    ] {
        let log = log.clone();
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                log.lock().unwrap().push(line);
            }
        }));
    }
    let serving: serde_json::Value =
        serde_json::from_str(&wait_for(&log, "riskgate serving")).unwrap();
    let addr = format!("https://{}", serving["listen"].as_str().unwrap());
    let metrics_addr = serving["metrics"].as_str().unwrap().to_string();

    let tls_args = |c: &mut Command| {
        c.arg("--ca")
            .arg(&ca)
            .arg("--cert")
            .arg(&ccert)
            .arg("--key")
            .arg(&ckey);
    };
    let mut decision = String::new();
    for user in ["ann", "ben", "cat"] {
        let mut c = bin();
        c.args(["eval", "--addr", &addr, "--user", user, "--ip", "192.0.2.9"]);
        c.args(["--json"]);
        tls_args(&mut c);
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        decision = v["decision_id"].as_str().unwrap().to_string();
        outputs.push((format!("eval {user}"), text(&out)));
    }
    let mut c = bin();
    c.args(["report", "--addr", &addr, "--decision", &decision]);
    c.args(["--outcome", "login_succeeded"]);
    tls_args(&mut c);
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    outputs.push(("report".into(), text(&out)));

    // A client whose key file is garbage: its error names the file only.
    let bad_key = write("bad-client-key.pem", &format!("{GARBAGE_KEY}\n"));
    let mut c = bin();
    c.args(["health", "--addr", &addr, "--ca"])
        .arg(&ca)
        .arg("--cert")
        .arg(&ccert)
        .arg("--key")
        .arg(&bad_key);
    let out = c.output().unwrap();
    assert!(!out.status.success());
    outputs.push(("health with a garbage key".into(), text(&out)));

    // A rotated server key full of garbage: rejected, logged, not quoted.
    std::fs::write(
        &key,
        format!("-----BEGIN PRIVATE KEY-----\n{GARBAGE_KEY}\n-----END PRIVATE KEY-----\n"),
    )
    .unwrap();
    wait_for(&log, "TLS reload rejected");

    // Redis goes away: store errors are logged.
    redis.kill();
    let mut c = bin();
    c.args([
        "eval",
        "--addr",
        &addr,
        "--user",
        "dan",
        "--ip",
        "192.0.2.10",
    ]);
    tls_args(&mut c);
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    outputs.push(("eval without redis".into(), text(&out)));
    wait_for(&log, "store degraded");

    let metrics = fetch_metrics(&metrics_addr);
    assert!(metrics.contains("riskgate_decisions_total"), "{metrics}");
    outputs.push(("/metrics".into(), metrics));

    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server did not exit after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    for r in readers {
        r.join().unwrap();
    }
    let server_log = log.lock().unwrap().join("\n");
    assert!(server_log.contains("shutdown complete"));
    assert!(
        server_log.lines().count() > 20,
        "too little logged to mean anything"
    );
    outputs.push(("server stdout+stderr".into(), server_log));

    for (what, out) in &outputs {
        for s in &secrets {
            assert!(
                !out.contains(s.as_str()),
                "a secret (`{}…`) appears in the output of {what}",
                &s[..8]
            );
        }
    }
}
