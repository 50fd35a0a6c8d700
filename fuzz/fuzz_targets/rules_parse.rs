//! Fuzz target: see `riskgate_fuzz::rules_parse` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| riskgate_fuzz::rules_parse(data));
