//! `riskgate.v1.RiskService` over the engine: admission, conversion, the
//! engine call under the caller's deadline, and errors through [`ApiError`].

use std::sync::Arc;
use std::time::Instant;

use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::api::admission::{self, Admission, Limits, Refused};
use crate::api::convert::{ReportRequest, attempt_from_proto};
use crate::api::{ApiError, code_label, pb};
use crate::domain::UnixMillis;
use crate::engine::Engine;

/// The caller's request id from the `x-request-id` metadata header: at most
/// 128 printable ASCII bytes, otherwise ignored (it only labels logs).
fn header_request_id<T>(request: &Request<T>) -> Option<String> {
    let v = request.metadata().get("x-request-id")?.to_str().ok()?;
    (!v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| v.to_string())
}

/// The gRPC service.
pub struct RiskService {
    engine: Arc<Engine>,
    admission: Admission,
}

impl RiskService {
    /// A service over `engine` with this machine's default limits.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self::with_limits(engine, Limits::for_this_machine())
    }

    /// A service over `engine` that admits Evaluate calls within `limits`.
    pub fn with_limits(engine: Arc<Engine>, limits: Limits) -> Self {
        let admission = Admission::new(limits, engine.metrics().clone());
        RiskService { engine, admission }
    }
}

#[tonic::async_trait]
impl pb::risk_service_server::RiskService for RiskService {
    async fn evaluate(
        &self,
        request: Request<pb::EvaluateRequest>,
    ) -> Result<Response<pb::EvaluateResponse>, Status> {
        let started = Instant::now();
        let metrics = self.engine.metrics();
        let deadline = admission::deadline(request.metadata(), started.into());
        let refused = |r: Refused| {
            let e = ApiError::from(r);
            metrics.rejected("Evaluate", code_label(e.code()));
            Status::from(e)
        };
        let _slot = self.admission.admit(deadline).await.map_err(refused)?;
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            return Err(refused(Refused::DeadlineExceeded));
        }
        let _in_flight = metrics.in_flight();
        let header_id = header_request_id(&request);
        let mut attempt = match attempt_from_proto(request.into_inner(), UnixMillis::now()) {
            Ok(a) => a,
            Err(e) => {
                let e = ApiError::from(e);
                metrics.rejected("Evaluate", code_label(e.code()));
                return Err(e.into());
            }
        };
        if attempt.request_id.is_none() {
            attempt.request_id = header_id;
        }
        // One span per RPC: every event of this call (the decision log, a
        // degraded store, a failing rule) carries the request id.
        let span = tracing::info_span!(
            "rpc",
            rpc.method = "Evaluate",
            request.id = attempt.request_id.as_deref().unwrap_or(""),
        );
        let evaluation = self.engine.evaluate(attempt).instrument(span);
        let decision = match deadline {
            Some(d) => tokio::time::timeout_at(d, evaluation)
                .await
                .map_err(|_| refused(Refused::DeadlineExceeded))?,
            None => evaluation.await,
        };
        metrics.observe_request("Evaluate", started.elapsed());
        Ok(Response::new(decision.into()))
    }

    async fn report_outcome(
        &self,
        request: Request<pb::ReportOutcomeRequest>,
    ) -> Result<Response<pb::ReportOutcomeResponse>, Status> {
        let started = Instant::now();
        let metrics = self.engine.metrics();
        let _in_flight = metrics.in_flight();
        let span = tracing::info_span!(
            "rpc",
            rpc.method = "ReportOutcome",
            request.id = header_request_id(&request).as_deref().unwrap_or(""),
        );
        let r = ReportRequest::try_from(request.into_inner()).map_err(ApiError::from);
        let result = match r {
            Ok(r) => self
                .engine
                .report(&r.decision_id, r.outcome, r.factor)
                .instrument(span.clone())
                .await
                .map_err(ApiError::from),
            Err(e) => Err(e),
        };
        let _entered = span.enter();
        metrics.observe_request("ReportOutcome", started.elapsed());
        match result {
            Ok(effect) => Ok(Response::new(pb::ReportOutcomeResponse {
                profile_updated: effect.profile_updated,
            })),
            Err(e) => {
                metrics.rejected("ReportOutcome", code_label(e.code()));
                Err(e.into())
            }
        }
    }
}
