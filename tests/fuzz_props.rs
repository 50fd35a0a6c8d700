//! The fuzz targets' checks (fuzz/src/checks.rs) under proptest, so every
//! `cargo test` runs them on fresh inputs: arbitrary protobuf bytes and
//! mutated valid requests for the gRPC conversion, arbitrary and mutated
//! rule files, arbitrary and mutated model JSON. libFuzzer runs the same
//! checks far longer (fuzz/README.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../fuzz/src/checks.rs"]
mod checks;

use proptest::prelude::*;
use prost::Message as _;
use riskgate::api::pb;

const RULES: &str = include_str!("../rules/default.toml");
const MODEL: &str = include_str!("../models/default.json");

/// A valid text with a few bytes replaced, inserted or removed.
fn mutated(base: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let len = base.len();
    prop::collection::vec((0..len, any::<u8>(), 0..3u8), 1..8).prop_map(move |edits| {
        let mut b = base.as_bytes().to_vec();
        for (at, byte, kind) in edits {
            let at = at.min(b.len().saturating_sub(1));
            match kind {
                0 => b[at] = byte,
                1 => b.insert(at, byte),
                _ => {
                    b.remove(at);
                }
            }
        }
        b
    })
}

fn valid_request() -> impl Strategy<Value = Vec<u8>> {
    (
        "[a-z]{0,300}",
        -2..8i32,
        "[0-9a-f.:]{0,40}",
        prop::option::of((any::<i64>(), any::<i32>())),
        prop::collection::vec(-1..8i32, 0..4),
        prop::collection::btree_map("[a-z]{0,70}", "[a-z]{0,300}", 0..40),
    )
        .prop_map(|(user, channel, ip, at, factors, attributes)| {
            pb::EvaluateRequest {
                user_id: user,
                channel,
                ip_address: ip,
                occurred_at: at.map(|(seconds, nanos)| pbjson_types::Timestamp { seconds, nanos }),
                enrolled_factors: factors,
                attributes: attributes.into_iter().collect(),
                credential_result: 1,
                ..Default::default()
            }
            .encode_to_vec()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn grpc_convert_on_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..512)) {
        checks::grpc_convert(&data);
    }

    #[test]
    fn grpc_convert_on_generated_requests(data in valid_request()) {
        checks::grpc_convert(&data);
    }

    #[test]
    fn rules_parse_on_arbitrary_text(text in "\\PC{0,400}") {
        checks::rules_parse(text.as_bytes());
    }

    #[test]
    fn model_json_on_arbitrary_text(text in "\\PC{0,400}") {
        checks::model_json(text.as_bytes());
    }
}

proptest! {
    // The shipped rule file runs its own tests on every parse: fewer cases.
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn rules_parse_on_mutated_shipped_rules(data in mutated(RULES)) {
        checks::rules_parse(&data);
    }

    #[test]
    fn model_json_on_mutated_shipped_model(data in mutated(MODEL)) {
        checks::model_json(&data);
    }

    #[test]
    fn rba_csv_on_a_mutated_dataset_file(data in mutated(RBA_CSV)) {
        checks::rba_csv(&data);
    }
}

const RBA_CSV: &str = include_str!("../testdata/rba_small.csv");

#[test]
fn the_shipped_files_pass_the_checks() {
    // The extreme feature struct deserializes: the checks really use it.
    assert_eq!(checks::sample_features().len(), 2);
    checks::rules_parse(RULES.as_bytes());
    checks::model_json(MODEL.as_bytes());
    let valid = pb::EvaluateRequest {
        user_id: "alice".into(),
        channel: pb::Channel::Web as i32,
        ip_address: "192.0.2.1".into(),
        credential_result: pb::CredentialResult::Valid as i32,
        ..Default::default()
    };
    checks::grpc_convert(&valid.encode_to_vec());
}
