//! The edge: the only code that names tonic or protobuf types.
//!
//! - [`pb`]: the generated `riskgate.v1` types and services.
//! - [`convert`]: proto ↔ domain; the one place request fields are read and
//!   validated ([`convert::InvalidField`] names the field).
//! - [`admission`]: Evaluate's concurrency and queue limits and the caller's
//!   deadline.
//! - [`risk`]: `riskgate.v1.RiskService` (Evaluate, ReportOutcome).
//! - [`admin`]: `riskgate.v1.RiskAdmin` with [`auth`] (bearer token) and
//!   [`audit`] (one event per call).
//! - [`listen`]: the gRPC, admin and metrics listeners, health, reflection.
//! - [`client`]: the clients the command line uses (`eval`, `report`,
//!   `health`, `admin`, `bench`).
//!
//! Every failure an RPC can answer is an [`ApiError`], and
//! `From<ApiError> for Status` is the one table from errors to gRPC codes.

pub mod admin;
pub mod admission;
pub mod audit;
pub mod auth;
pub mod client;
pub mod convert;
pub mod http;
pub mod listen;
pub mod openapi;
pub mod risk;

use tonic::{Code, Status};

use crate::engine::{AdminError, ReportError};
use crate::journal::JournalError;
use crate::store::StoreError;

use admission::Refused;
use convert::InvalidField;

/// Generated protobuf and gRPC code for `riskgate.v1`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod pb {
    tonic::include_proto!("riskgate.v1");
    include!(concat!(env!("OUT_DIR"), "/riskgate.v1.serde.rs"));

    /// The encoded descriptor set, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("riskgate_descriptor");
}

/// The one message for a missing and a wrong admin token alike.
pub const UNAUTHENTICATED: &str = "admin calls need a valid `authorization: Bearer` token";

/// Everything an RPC of any service can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A request field failed validation.
    #[error(transparent)]
    Invalid(#[from] InvalidField),
    /// Missing or wrong credentials (the admin API).
    #[error("{UNAUTHENTICATED}")]
    Unauthenticated,
    /// Overload or a deadline that passed before the work could start.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// A ReportOutcome that could not be applied.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// A store call of the admin API failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The decision journal could not do an admin call's part.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Store(e) => ApiError::Store(e),
            AdminError::Journal(e) => ApiError::Journal(e),
        }
    }
}

impl ApiError {
    /// The gRPC code this error is answered with.
    pub fn code(&self) -> Code {
        match self {
            ApiError::Invalid(_) | ApiError::Report(ReportError::BadDecisionId) => {
                Code::InvalidArgument
            }
            ApiError::Unauthenticated => Code::Unauthenticated,
            ApiError::Refused(Refused::Overloaded) => Code::ResourceExhausted,
            ApiError::Refused(Refused::DeadlineExceeded) => Code::DeadlineExceeded,
            ApiError::Report(ReportError::Store(StoreError::UnknownDecision(_))) => Code::NotFound,
            ApiError::Report(ReportError::Store(
                StoreError::Unavailable(_) | StoreError::Timeout(_),
            ))
            | ApiError::Store(_)
            | ApiError::Journal(_) => Code::Unavailable,
        }
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        let code = e.code();
        let message = match &e {
            ApiError::Invalid(_)
            | ApiError::Unauthenticated
            | ApiError::Refused(_)
            | ApiError::Report(ReportError::BadDecisionId) => e.to_string(),
            ApiError::Report(ReportError::Store(StoreError::UnknownDecision(_))) => {
                "`decision_id`: the decision is unknown or has expired".to_string()
            }
            // Store failures are logged here, never sent: the caller learns
            // only that it may retry.
            ApiError::Report(ReportError::Store(e)) => {
                tracing::warn!(error = %e, "outcome not recorded: store unavailable");
                "the store is unavailable; retry the report later".to_string()
            }
            ApiError::Store(e) => {
                tracing::warn!(error = %e, "admin call failed: store unavailable");
                "the store is unavailable; retry later".to_string()
            }
            ApiError::Journal(e) => {
                tracing::warn!(error = %e, "admin call failed: journal unavailable");
                "the decision journal is unavailable; retry later".to_string()
            }
        };
        Status::new(code, message)
    }
}

/// A gRPC code's name as metrics label it (`InvalidArgument`, …).
pub fn code_label(c: Code) -> &'static str {
    match c {
        Code::Ok => "Ok",
        Code::Cancelled => "Cancelled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// A gRPC code's name as audit events write it (`invalid_argument`, …).
pub fn code_audit_name(c: Code) -> &'static str {
    match c {
        Code::Ok => "ok",
        Code::InvalidArgument => "invalid_argument",
        Code::Unauthenticated => "unauthenticated",
        Code::Unavailable => "unavailable",
        _ => "error",
    }
}
