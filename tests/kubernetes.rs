//! `deploy/kubernetes/`: every manifest (and the TLS overlay's patched
//! Deployment) validates against the Kubernetes 1.30 schemas
//! (`kubernetes-validate` from PyPI, strict); the env, ports, probes and
//! references are ones the real binary and the other manifests accept; the
//! rule ConfigMap is the shipped rule file; and a ConfigMap update as the
//! kubelet makes it (a symlink swap) is hot-reloaded by a running server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use riskgate::api::pb;
use serde_json::Value;

const KUBERNETES: &str = "1.30.0";

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes")
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The manifests the kustomization lists, by kind.
fn manifests() -> BTreeMap<String, Value> {
    let k = yaml(&dir().join("kustomization.yaml"));
    k["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let v = yaml(&dir().join(r.as_str().unwrap()));
            (v["kind"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

/// Applies an RFC 6902 patch (the ops the overlay uses: test, add,
/// replace) to `doc`.
fn patch(doc: &mut Value, ops: &Value) {
    for op in ops.as_array().unwrap() {
        let path = op["path"].as_str().unwrap();
        let (parent, last) = path.rsplit_once('/').unwrap();
        let value = op["value"].clone();
        match op["op"].as_str().unwrap() {
            "test" => assert_eq!(doc.pointer(path), Some(&value), "patch test {path}"),
            "replace" => {
                let slot = doc.pointer_mut(path).unwrap_or_else(|| panic!("no {path}"));
                *slot = value;
            }
            "add" => {
                let target = doc
                    .pointer_mut(parent)
                    .unwrap_or_else(|| panic!("no {parent}"));
                match target {
                    Value::Array(a) if last == "-" => a.push(value),
                    Value::Array(a) => a.insert(last.parse().unwrap(), value),
                    Value::Object(o) => {
                        o.insert(last.to_string(), value);
                    }
                    _ => panic!("cannot add at {path}"),
                }
            }
            other => panic!("op {other} is not used by the overlay"),
        }
    }
}

/// The TLS overlay's Deployment: the base one with the overlay's patch.
fn tls_deployment() -> Value {
    let k = yaml(&dir().join("tls/kustomization.yaml"));
    assert_eq!(k["resources"][0], "..");
    let p = &k["patches"][0];
    assert_eq!(p["target"]["kind"], "Deployment");
    let mut d = manifests()["Deployment"].clone();
    assert_eq!(p["target"]["name"], d["metadata"]["name"]);
    patch(
        &mut d,
        &yaml(&dir().join("tls").join(p["path"].as_str().unwrap())),
    );
    d
}

fn python_has_kubernetes_validate() -> bool {
    Command::new("python3")
        .args(["-c", "import kubernetes_validate"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn every_manifest_validates_against_the_kubernetes_schemas() {
    if !python_has_kubernetes_validate() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs kubernetes-validate (tests/kubernetes/requirements.txt)"
        );
        eprintln!(
            "skipped: `pip install -r tests/kubernetes/requirements.txt` to validate the manifests"
        );
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let mut docs: Vec<(String, Value)> = manifests()
        .into_iter()
        .map(|(kind, v)| (kind.to_lowercase(), v))
        .collect();
    docs.push(("deployment-tls".into(), tls_deployment()));
    let mut files = Vec::new();
    for (name, v) in &docs {
        let f = out.path().join(format!("{name}.json"));
        std::fs::write(&f, serde_json::to_string(v).unwrap()).unwrap();
        files.push(f);
    }
    // Strict: an unknown field is an error. A kind without a schema (the
    // Prometheus Operator's ServiceMonitor) is reported as such.
    let script = r#"
import json, sys
import kubernetes_validate as kv
version = sys.argv[1]
failed = 0
for path in sys.argv[2:]:
    doc = json.load(open(path))
    try:
        kv.validate(doc, version, strict=True)
        print("valid", doc["kind"], path)
    except kv.SchemaNotFoundError:
        print("noschema", doc["kind"], path)
    except kv.ValidationError as e:
        failed += 1
        print("INVALID", doc["kind"], path, e.message, list(e.path))
sys.exit(1 if failed else 0)
"#;
    let o = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(KUBERNETES)
        .args(&files)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for kind in [
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "ConfigMap",
        "Secret",
    ] {
        assert!(
            stdout.contains(&format!("valid {kind} ")),
            "{kind} was not validated:\n{stdout}"
        );
    }
    assert_eq!(
        stdout.matches("valid Deployment ").count(),
        2,
        "base and TLS:\n{stdout}"
    );
    // Only the CRD kind may lack a schema.
    for line in stdout.lines().filter(|l| l.starts_with("noschema")) {
        assert!(line.contains("ServiceMonitor"), "{line}");
    }
}

/// The container's env with secrets resolved from secret.yaml.
fn env_of(deployment: &Value, secret: &Value) -> BTreeMap<String, String> {
    let c = &deployment["spec"]["template"]["spec"]["containers"][0];
    c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let name = e["name"].as_str().unwrap().to_string();
            let value = match e.get("value") {
                Some(v) => v.as_str().unwrap().to_string(),
                None => {
                    let r = &e["valueFrom"]["secretKeyRef"];
                    assert_eq!(r["name"], secret["metadata"]["name"], "{name}");
                    let key = r["key"].as_str().unwrap();
                    secret["stringData"][key]
                        .as_str()
                        .unwrap_or_else(|| panic!("{name}: the Secret has no key {key}"))
                        .to_string()
                }
            };
            (name, value)
        })
        .collect()
}

fn port_of(addr: &str) -> u64 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

/// Runs the real binary with exactly this env and `serve --print-config`.
fn print_config(env: &BTreeMap<String, String>) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_riskgate"))
        .args(["serve", "--print-config"])
        .env_clear()
        .envs(env)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "the binary refused the manifest's env: {}{stdout}",
        String::from_utf8_lossy(&o.stderr)
    );
    stdout
}

#[test]
fn the_manifests_env_ports_and_probes_are_what_the_binary_accepts() {
    let m = manifests();
    let d = &m["Deployment"];
    let secret = &m["Secret"];
    let pod = &d["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    let labels = &d["spec"]["template"]["metadata"]["labels"];
    assert_eq!(d["spec"]["selector"]["matchLabels"], *labels);
    assert_eq!(d["spec"]["replicas"], 3);

    // Ports by name.
    let ports: BTreeMap<String, u64> = c["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["containerPort"].as_u64().unwrap(),
            )
        })
        .collect();
    let env = env_of(d, secret);
    assert_eq!(ports["grpc"], port_of(&env["RISKGATE_LISTEN"]));
    assert_eq!(ports["metrics"], port_of(&env["RISKGATE_METRICS_LISTEN"]));

    // Probes: native gRPC on the gRPC port; readiness asks for the service
    // the server registers (and turns NOT_SERVING at shutdown).
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        assert_eq!(
            c[probe]["grpc"]["port"].as_u64(),
            Some(ports["grpc"]),
            "{probe}"
        );
    }
    assert_eq!(
        c["readinessProbe"]["grpc"]["service"],
        <pb::risk_service_server::RiskServiceServer<riskgate::api::risk::RiskService> as tonic::server::NamedService>::NAME
    );

    // Hardening.
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert!(c["resources"]["requests"]["cpu"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());
    assert!(
        !pod["topologySpreadConstraints"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // The rule file comes from the ConfigMap, mounted as a directory (no
    // subPath: a subPath mount never sees an update).
    let cm = &m["ConfigMap"];
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["configMap"]["name"] == cm["metadata"]["name"])
        .expect("the rules ConfigMap is a volume");
    let mount = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == volume["name"])
        .unwrap();
    assert!(mount.get("subPath").is_none());
    let rules_path = &env["RISKGATE_RULES"];
    let (mount_dir, file) = rules_path.rsplit_once('/').unwrap();
    assert_eq!(mount["mountPath"], mount_dir);
    assert_eq!(
        cm["data"][file].as_str().unwrap(),
        riskgate::core::rules::DEFAULT_RULES_TOML,
        "configmap-rules.yaml is not rules/default.toml"
    );

    // The Service, PDB, HPA, NetworkPolicy and ServiceMonitor point at what
    // exists.
    let svc = &m["Service"];
    assert_eq!(svc["spec"]["selector"], *labels);
    for p in svc["spec"]["ports"].as_array().unwrap() {
        let target = p["targetPort"].as_str().unwrap();
        assert_eq!(p["port"].as_u64(), Some(ports[target]), "{target}");
    }
    assert_eq!(
        svc["metadata"]["annotations"]["prometheus.io/port"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap(),
        ports["metrics"]
    );
    assert_eq!(
        m["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
        *labels
    );
    assert_eq!(
        m["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"],
        d["metadata"]["name"]
    );
    let np = &m["NetworkPolicy"];
    assert_eq!(np["spec"]["podSelector"]["matchLabels"], *labels);
    for rule in np["spec"]["ingress"].as_array().unwrap() {
        for p in rule["ports"].as_array().unwrap() {
            assert!(ports.contains_key(p["port"].as_str().unwrap()), "{p}");
        }
    }
    let sm = &m["ServiceMonitor"];
    assert_eq!(
        sm["spec"]["selector"]["matchLabels"],
        svc["metadata"]["labels"]
    );
    assert!(ports.contains_key(sm["spec"]["endpoints"][0]["port"].as_str().unwrap()));

    // The binary takes exactly this env (secrets from secret.yaml).
    let config = print_config(&env);
    assert!(config.contains("0.0.0.0:50051"), "{config}");
    assert!(
        config.contains("/etc/riskgate/rules/rules.toml"),
        "{config}"
    );
    for (k, v) in &env {
        if k == "RISKGATE_HMAC_KEY" || k == "RISKGATE_ADMIN_TOKEN" || k == "RISKGATE_JOURNAL" {
            assert!(!config.contains(v.as_str()), "{k} printed:\n{config}");
        }
    }
}

#[test]
fn the_tls_overlay_serves_the_admin_api_and_probes_under_tls() {
    let m = manifests();
    let d = tls_deployment();
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    let mut env = env_of(&d, &m["Secret"]);
    // HTTPS probes on the gRPC port: the HTTP face's health paths.
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["scheme"], "HTTPS");
    assert!(c["readinessProbe"].get("grpc").is_none());
    // The certificate paths are under the Secret's mount; the binary
    // accepts the overlay's env with real files there.
    let mount = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "tls")
        .unwrap()["mountPath"]
        .as_str()
        .unwrap()
        .to_string();
    let ca = common::pki::Ca::new("kubernetes test");
    let leaf = ca.leaf(&["riskgate"], 7, false);
    let files = tempfile::tempdir().unwrap();
    for (var, contents) in [
        ("RISKGATE_TLS_CERT", &leaf.cert),
        ("RISKGATE_TLS_KEY", &leaf.key),
    ] {
        let path = env[var].clone();
        assert!(path.starts_with(&mount), "{var}: {path}");
        let local = files.path().join(path.rsplit('/').next().unwrap());
        std::fs::write(&local, contents).unwrap();
        env.insert(var.into(), local.display().to_string());
    }
    assert_eq!(env["RISKGATE_ADMIN_LISTEN"], "0.0.0.0:50052");
    let config = print_config(&env);
    assert!(config.contains("0.0.0.0:50052"), "{config}");
}

/// The kubelet updates a ConfigMap volume by writing the new files into a
/// fresh timestamped directory and swapping the `..data` symlink; the file
/// riskgate polls is a symlink through `..data`. A running server picks the
/// update up.
#[tokio::test]
async fn a_configmap_update_as_the_kubelet_makes_it_is_hot_reloaded() {
    let volume = tempfile::tempdir().unwrap();
    let v = volume.path();
    let write_version = |name: &str, rules: &str| {
        std::fs::create_dir(v.join(name)).unwrap();
        std::fs::write(v.join(name).join("rules.toml"), rules).unwrap();
        let tmp = v.join("..data_tmp");
        std::os::unix::fs::symlink(name, &tmp).unwrap();
        std::fs::rename(&tmp, v.join("..data")).unwrap();
    };
    let base = riskgate::core::rules::DEFAULT_RULES_TOML;
    write_version("..2026_12_04_10_00_00.1", base);
    std::os::unix::fs::symlink("..data/rules.toml", v.join("rules.toml")).unwrap();

    let mut config = config();
    config.sources.rules = Some(v.join("rules.toml"));
    config.sources.reload_interval = Duration::from_millis(100);
    let mut s = start_with(config).await;
    let first = s
        .client
        .evaluate(attempt("kube-a", "198.51.100.80", "dev-ka", CHROME))
        .await
        .unwrap()
        .into_inner();
    assert!(
        first.policy_version.starts_with("default-"),
        "{}",
        first.policy_version
    );

    write_version(
        "..2026_12_04_10_05_00.2",
        &base.replace(
            "version = \"default-2026.12.1\"",
            "version = \"from-configmap\"",
        ),
    );
    let mut seen = String::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen = s
            .client
            .evaluate(attempt("kube-b", "198.51.100.81", "dev-kb", CHROME))
            .await
            .unwrap()
            .into_inner()
            .policy_version;
        if seen.starts_with("from-configmap@") {
            break;
        }
    }
    assert!(seen.starts_with("from-configmap@"), "not reloaded: {seen}");
    s.running.shutdown().await;
}
