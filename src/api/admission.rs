//! Overload protection for Evaluate: at most `max_concurrent` evaluations
//! run at once, at most `max_queued` more wait for a slot (first come,
//! first served), and any call beyond is refused at once with
//! `RESOURCE_EXHAUSTED` — a login service can then apply its own fail mode
//! instead of waiting on a server that cannot keep up. A call whose gRPC
//! deadline (`grpc-timeout`) passes while it waits, or before its
//! evaluation starts, is answered `DEADLINE_EXCEEDED` and does no work.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::telemetry::Metrics;

/// The limits on Evaluate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Evaluations running at once (at least 1).
    pub max_concurrent: usize,
    /// Evaluations waiting for a slot; 0 refuses as soon as all slots are busy.
    pub max_queued: usize,
}

impl Limits {
    /// Evaluations per core that may run at once by default: an evaluation
    /// spends most of its time waiting on the store (Redis) when it is not
    /// CPU-bound (memory store), so a few dozen per core keep the cores busy.
    pub const CONCURRENT_PER_CORE: usize = 64;
    /// Queue length per running slot by default. The memory store evaluates
    /// in ~0.1 ms of CPU, so a full default queue drains in a few
    /// milliseconds per core: far inside a login service's deadline.
    pub const QUEUED_PER_SLOT: usize = 4;

    /// The defaults for `cores` cores.
    pub fn for_cores(cores: usize) -> Limits {
        let max_concurrent = Self::CONCURRENT_PER_CORE * cores.max(1);
        Limits {
            max_concurrent,
            max_queued: Self::QUEUED_PER_SLOT * max_concurrent,
        }
    }

    /// The defaults for this machine.
    pub fn for_this_machine() -> Limits {
        Self::for_cores(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

/// Why a call was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("riskgate is overloaded: too many evaluations running and queued; retry with backoff")]
    Overloaded,
    #[error("the call's deadline passed before its evaluation could start")]
    DeadlineExceeded,
}

/// The gate every Evaluate passes.
pub struct Admission {
    slots: Arc<Semaphore>,
    queued: AtomicUsize,
    limits: Limits,
    metrics: Arc<Metrics>,
}

/// Holds an evaluation slot while alive.
pub struct Admitted {
    _slot: OwnedSemaphorePermit,
}

struct QueueSlot<'a>(&'a Admission);

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.0.queued.fetch_sub(1, Ordering::AcqRel);
        self.0.metrics.queued_evaluations(-1);
    }
}

impl Admission {
    /// A gate with `limits` (a zero `max_concurrent` is taken as 1).
    pub fn new(limits: Limits, metrics: Arc<Metrics>) -> Admission {
        let limits = Limits {
            max_concurrent: limits.max_concurrent.max(1),
            ..limits
        };
        Admission {
            slots: Arc::new(Semaphore::new(limits.max_concurrent)),
            queued: AtomicUsize::new(0),
            limits,
            metrics,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// A slot now, or after waiting in the queue until `deadline`.
    pub async fn admit(&self, deadline: Option<Instant>) -> Result<Admitted, Refused> {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Ok(Admitted { _slot: p });
        }
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.limits.max_queued {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Overloaded);
        }
        self.metrics.queued_evaluations(1);
        let _slot = QueueSlot(self);
        let acquire = self.slots.clone().acquire_owned();
        let permit = match deadline {
            Some(d) => match tokio::time::timeout_at(d, acquire).await {
                Ok(p) => p,
                Err(_) => return Err(Refused::DeadlineExceeded),
            },
            None => acquire.await,
        };
        // The semaphore is never closed.
        permit
            .map(|p| Admitted { _slot: p })
            .map_err(|_| Refused::Overloaded)
    }
}

/// Answering a timed-out call takes a moment: the server gives up this
/// much before the caller's deadline, so the caller reads
/// `DEADLINE_EXCEEDED` from the server rather than its own timer. A tenth
/// of the timeout, at most 50 ms: the caller's clock started before the
/// request was sent, and on a busy host sending, scheduling and answering
/// took more than the 5 ms this once allowed (seen in CI).
pub fn deadline_margin(timeout: Duration) -> Duration {
    (timeout / 10).min(Duration::from_millis(50))
}

/// The call's deadline from its `grpc-timeout` header (gRPC over HTTP/2:
/// at most 8 digits and a unit, H M S m u n), less [`deadline_margin`].
pub fn deadline(metadata: &tonic::metadata::MetadataMap, received: Instant) -> Option<Instant> {
    let timeout = parse_grpc_timeout(metadata.get("grpc-timeout")?.to_str().ok()?)?;
    Some(received + timeout.saturating_sub(deadline_margin(timeout)))
}

/// Parses a `grpc-timeout` value; `None` when it is malformed.
pub fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    let unit = v.chars().last()?;
    let digits = &v[..v.len() - unit.len_utf8()];
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        'H' => Duration::from_secs(n * 3600),
        'M' => Duration::from_secs(n * 60),
        'S' => Duration::from_secs(n),
        'm' => Duration::from_millis(n),
        'u' => Duration::from_micros(n),
        'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_values() {
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(
            parse_grpc_timeout("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in ["", "S", "123456789S", "5s", "-5S", "5", "1.5S", "5é"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad}");
        }
    }

    #[test]
    fn defaults_scale_with_cores() {
        assert_eq!(
            Limits::for_cores(2),
            Limits {
                max_concurrent: 128,
                max_queued: 512
            }
        );
        assert_eq!(Limits::for_cores(0), Limits::for_cores(1));
    }

    #[tokio::test(start_paused = true)]
    async fn beyond_the_slots_and_the_queue_calls_are_refused_at_once() {
        let a = Arc::new(Admission::new(
            Limits {
                max_concurrent: 1,
                max_queued: 1,
            },
            Arc::new(Metrics::new()),
        ));
        let running = a.admit(None).await.unwrap();
        let waiter = tokio::spawn({
            let a = a.clone();
            async move { a.admit(None).await.map(|_| ()) }
        });
        tokio::task::yield_now().await;
        assert_eq!(a.queued.load(Ordering::Acquire), 1);
        assert_eq!(a.admit(None).await.err(), Some(Refused::Overloaded));
        drop(running);
        waiter.await.unwrap().unwrap();
        assert_eq!(a.queued.load(Ordering::Acquire), 0);
    }

    #[test]
    fn the_server_gives_up_a_tenth_early_at_most_50_ms() {
        let at = Instant::now();
        let with = |t: &str| {
            let mut m = tonic::metadata::MetadataMap::new();
            m.insert("grpc-timeout", t.parse().unwrap());
            deadline(&m, at).map(|d| d - at)
        };
        assert_eq!(with("100m"), Some(Duration::from_millis(90)));
        assert_eq!(with("2S"), Some(Duration::from_millis(1950)));
        assert_eq!(with("bogus"), None);
        assert_eq!(deadline(&tonic::metadata::MetadataMap::new(), at), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_queued_call_gives_up_at_its_deadline() {
        let a = Admission::new(
            Limits {
                max_concurrent: 1,
                max_queued: 8,
            },
            Arc::new(Metrics::new()),
        );
        let _running = a.admit(None).await.unwrap();
        let started = Instant::now();
        let r = a.admit(Some(started + Duration::from_millis(30))).await;
        assert_eq!(r.err(), Some(Refused::DeadlineExceeded));
        assert_eq!(started.elapsed(), Duration::from_millis(30));
        assert_eq!(a.queued.load(Ordering::Acquire), 0);
    }
}
