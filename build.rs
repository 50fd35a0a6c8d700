//! Generates the gRPC code and the reflection descriptor from `proto/`.
//!
//! protoc comes from the `protoc-bin-vendored` crate, so a fresh machine needs
//! no system package; set `PROTOC` to use another protoc.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/riskgate/v1/riskgate.proto";
    println!("cargo:rerun-if-changed={proto}");
    println!("cargo:rerun-if-env-changed=PROTOC");

    let protoc = match std::env::var_os("PROTOC") {
        Some(path) => PathBuf::from(path),
        None => protoc_bin_vendored::protoc_bin_path().map_err(|e| {
            format!("no vendored protoc for this platform ({e}); install protoc and set PROTOC")
        })?,
    };
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("riskgate_descriptor.bin"))
        .compile_with_config(config, &[proto], &["proto"])?;
    Ok(())
}
