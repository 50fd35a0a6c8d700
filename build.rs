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
    let descriptor = out_dir.join("riskgate_descriptor.bin");
    // Well-known types come from pbjson-types, whose Timestamp has the
    // canonical JSON form (RFC 3339) that the HTTP face needs.
    tonic_prost_build::configure()
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .file_descriptor_set_path(&descriptor)
        .compile_with_config(config, &[proto], &["proto"])?;
    // serde for every message and enum, in the proto3 JSON mapping:
    // lowerCamelCase names (the proto names accepted too), enums by name.
    pbjson_build::Builder::new()
        .register_descriptors(&std::fs::read(&descriptor)?)?
        .build(&[".riskgate.v1"])?;
    Ok(())
}
