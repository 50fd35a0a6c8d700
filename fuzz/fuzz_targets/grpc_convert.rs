//! Fuzz target: see `riskgate_fuzz::grpc_convert` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| riskgate_fuzz::grpc_convert(data));
