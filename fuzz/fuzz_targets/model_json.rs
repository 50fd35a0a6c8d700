//! Fuzz target: see `riskgate_fuzz::model_json` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| riskgate_fuzz::model_json(data));
