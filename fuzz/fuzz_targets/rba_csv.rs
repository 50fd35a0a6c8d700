//! Fuzz target: see `riskgate_fuzz::rba_csv` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| riskgate_fuzz::rba_csv(data));
