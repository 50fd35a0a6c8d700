//! The only code that knows tonic and prost: generated types, proto ↔ domain
//! conversion with validation, admission (overload limits, deadlines), the
//! service implementation, and the single
//! error → `Status` table.

pub mod admission;
pub mod convert;
pub mod service;

/// Generated protobuf and gRPC code for `riskgate.v1`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod pb {
    tonic::include_proto!("riskgate.v1");

    /// The encoded descriptor set, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("riskgate_descriptor");
}
