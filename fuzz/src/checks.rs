//! What each fuzz target checks, shared by the libFuzzer targets in
//! `fuzz/fuzz_targets/` and the proptest versions in `tests/fuzz_props.rs`
//! (which include this file by path). Any input may be refused with an
//! error; none may panic, hang, or be accepted in a form that breaks what
//! the rest of riskgate relies on.

use prost::Message as _;
use riskgate::api::convert::{ReportRequest, attempt_from_proto, limits};
use riskgate::api::pb;
use riskgate::core::features::Features;
use riskgate::core::model::Model;
use riskgate::core::rules::RuleSet;
use riskgate::domain::UnixMillis;

/// A fixed server clock, so a run is reproducible.
const NOW: UnixMillis = UnixMillis(1_750_000_000_000);

/// Arbitrary bytes as a protobuf `EvaluateRequest` and `ReportOutcomeRequest`
/// off the wire: decoding may fail; a decoded request either converts into
/// an attempt within the documented limits or is refused with the field
/// named, the same way every time.
pub fn grpc_convert(data: &[u8]) {
    if let Ok(r) = pb::EvaluateRequest::decode(data) {
        let again = attempt_from_proto(r.clone(), NOW);
        match attempt_from_proto(r, NOW) {
            Ok(a) => {
                assert!(!a.user_id.trim().is_empty());
                assert!(a.user_id.len() <= limits::USER_ID);
                assert!(
                    a.device_id
                        .as_ref()
                        .is_none_or(|d| d.len() <= limits::DEVICE_ID)
                );
                assert!(
                    a.user_agent
                        .as_ref()
                        .is_none_or(|u| u.len() <= limits::USER_AGENT)
                );
                assert!(a.attributes.len() <= limits::ATTRIBUTES);
                assert!(a.occurred_at.0 <= NOW.0 + limits::MAX_FUTURE_MS);
                assert!(a.occurred_at.0 >= NOW.0 - limits::MAX_PAST_MS);
                assert_eq!(again.ok(), Some(a));
            }
            Err(e) => {
                let message = e.to_string();
                assert!(!message.is_empty());
                assert_eq!(again.err().map(|e| e.to_string()), Some(message));
            }
        }
    }
    if let Ok(r) = pb::ReportOutcomeRequest::decode(data)
        && let Ok(report) = ReportRequest::try_from(r)
    {
        assert!(report.decision_id.len() <= limits::DECISION_ID);
    }
}

/// Arbitrary text as a rule file: parsing, type checking, compiling and the
/// file's own tests either succeed or report diagnostics; a rule set that
/// loads evaluates (errors counted, never a panic) and loads again to the
/// same version.
pub fn rules_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match RuleSet::parse(text, "fuzz.toml") {
        Ok(rules) => {
            for f in sample_features() {
                let _ = rules.evaluate(f);
                let _ = rules.explain(f, 0.5);
            }
            let again = RuleSet::parse(text, "fuzz.toml").map(|r| r.version);
            assert_eq!(again.ok(), Some(rules.version));
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// Arbitrary text as model JSON: a model that loads scores every feature
/// struct into [0, 1].
pub fn model_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Model::parse(text, "fuzz.json") {
        Ok(model) => {
            for f in sample_features() {
                let s = model.score(f).score;
                assert!((0.0..=1.0).contains(&s), "score {s}");
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// Arbitrary bytes as an RBA dataset CSV (what `riskgate replay` reads):
/// the reader refuses a bad header or a bad row with an error naming where,
/// or counts rows; it never panics, and reading the same bytes twice gives
/// the same answer.
pub fn rba_csv(data: &[u8]) {
    let first = riskgate::tools::replay::reader::read_all(data);
    let again = riskgate::tools::replay::reader::read_all(data);
    match (first, again) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(a), Err(b)) => {
            let message = a.to_string();
            assert!(!message.is_empty());
            assert_eq!(message, b.to_string());
        }
        (a, b) => panic!("two reads of the same bytes disagree: {a:?} vs {b:?}"),
    }
}

/// The default features, and one with every flag set and every number at
/// the largest value its field accepts (computed once).
pub fn sample_features() -> &'static [Features] {
    static SAMPLES: std::sync::OnceLock<Vec<Features>> = std::sync::OnceLock::new();
    SAMPLES.get_or_init(|| {
        let mut json = serde_json::to_value(Features::default()).unwrap_or_default();
        let mut paths = Vec::new();
        leaves(&json, &mut Vec::new(), &mut paths);
        for path in paths {
            let Some(slot) = json.pointer(&path) else {
                continue;
            };
            let candidates = match slot {
                serde_json::Value::Bool(_) => vec![serde_json::json!(true)],
                serde_json::Value::Number(n) if n.is_f64() => {
                    vec![serde_json::json!(1e300), serde_json::json!(1e30)]
                }
                serde_json::Value::Number(_) => vec![
                    serde_json::json!(i64::MAX),
                    serde_json::json!(u32::MAX),
                    serde_json::json!(u16::MAX),
                    serde_json::json!(u8::MAX),
                ],
                _ => Vec::new(),
            };
            for c in candidates {
                let mut tried = json.clone();
                if let Some(v) = tried.pointer_mut(&path) {
                    *v = c;
                }
                if serde_json::from_value::<Features>(tried.clone()).is_ok() {
                    json = tried;
                    break;
                }
            }
        }
        let mut out = vec![Features::default()];
        out.extend(serde_json::from_value::<Features>(json).ok());
        out
    })
}

fn leaves(v: &serde_json::Value, at: &mut Vec<String>, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, child) in m {
                at.push(k.clone());
                leaves(child, at, out);
                at.pop();
            }
        }
        _ => out.push(format!("/{}", at.join("/"))),
    }
}
