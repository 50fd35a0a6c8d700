//! Logging (tracing) and Prometheus metrics.
//!
//! Label values are bounded sets only — actions, levels, channels, reason
//! codes (model inputs, guards and rule names), store operations, signal
//! names — never a user, IP or device.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets, linear_buckets};
use prometheus_client::registry::Registry;

use crate::domain::{Channel, Decision};

pub mod json;
pub mod sink;

type Labels = Vec<(&'static str, String)>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

/// Handles to a family's metrics by a cheap key, so the per-decision path
/// neither builds label vectors nor allocates once a label set has been
/// seen (the family's own lookup would: a `Vec` and a `String` per label).
/// Keys are the same bounded sets as the labels.
struct Handles<K, M> {
    map: parking_lot::RwLock<std::collections::HashMap<K, M>>,
}

impl<K: std::hash::Hash + Eq, M: Clone> Handles<K, M> {
    fn new() -> Self {
        Handles {
            map: parking_lot::RwLock::new(std::collections::HashMap::new()),
        }
    }

    fn get<Q>(&self, key: &Q, make: impl FnOnce() -> (K, M)) -> M
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        if let Some(m) = self.map.read().get(key) {
            return m.clone();
        }
        let (k, m) = make();
        self.map.write().entry(k).or_insert(m).clone()
    }
}

fn latency_histogram() -> Histogram {
    // 25 µs … ~1.6 s, ×1.5 per bucket: fine enough between 100 µs and 10 ms.
    Histogram::new(exponential_buckets(0.000_025, 1.5, 28))
}

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    decisions: Family<Labels, Counter>,
    reasons: Family<Labels, Counter>,
    degraded: Family<Labels, Counter>,
    rule_errors: Family<Labels, Counter>,
    request_duration: HistogramFamily,
    score: Histogram,
    store_duration: HistogramFamily,
    store_errors: Family<Labels, Counter>,
    reloads: Family<Labels, Counter>,
    versions: Family<Labels, Gauge>,
    in_flight: Gauge<i64, AtomicI64>,
    rejected: Family<Labels, Counter>,
    decision_handles: Handles<(&'static str, &'static str, &'static str), Counter>,
    /// Reason counters by code: enforce, then shadow.
    reason_handles: [Handles<Box<str>, Counter>; 2],
    degraded_handles: Handles<Box<str>, Counter>,
    request_handles: Handles<&'static str, Histogram>,
    store_handles: Handles<&'static str, Histogram>,
    tls_handshake_failures: Counter,
    queued_evaluations: Gauge<i64, AtomicI64>,
    journal_appended: Counter,
    journal_dropped: Family<Labels, Counter>,
    journal_write: Histogram,
    journal_queue: Gauge<i64, AtomicI64>,
    journal_pruned: Counter,
    journal_writer_cpu: Counter<f64, AtomicU64>,
    console_requests: Family<Labels, Counter>,
    console_duration: HistogramFamily,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every riskgate metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("riskgate");
        let decisions = Family::<Labels, Counter>::default();
        registry.register(
            "decisions",
            "Decisions by action, level and channel",
            decisions.clone(),
        );
        let reasons = Family::<Labels, Counter>::default();
        registry.register(
            "reasons",
            "Reasons and rule hits in decisions, by code and mode (enforce or shadow)",
            reasons.clone(),
        );
        let degraded = Family::<Labels, Counter>::default();
        registry.register(
            "degraded_decisions",
            "Decisions made without a signal source, by signal",
            degraded.clone(),
        );
        let rule_errors = Family::<Labels, Counter>::default();
        registry.register(
            "rule_evaluation_errors",
            "Rules that failed at run time (treated as not firing), by rule",
            rule_errors.clone(),
        );
        let request_duration: HistogramFamily =
            Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "request_duration_seconds",
            "Server-side latency of RPCs, by method",
            request_duration.clone(),
        );
        let score = Histogram::new(linear_buckets(0.05, 0.05, 19));
        registry.register("score", "Risk scores of decisions", score.clone());
        let store_duration: HistogramFamily =
            Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "store_duration_seconds",
            "Latency of store calls, by operation",
            store_duration.clone(),
        );
        let store_errors = Family::<Labels, Counter>::default();
        registry.register(
            "store_errors",
            "Failed or timed-out store calls, by operation",
            store_errors.clone(),
        );
        let reloads = Family::<Labels, Counter>::default();
        registry.register(
            "reloads",
            "Rule, model, GeoIP and TLS file reloads, by kind and result",
            reloads.clone(),
        );
        let versions = Family::<Labels, Gauge>::default();
        registry.register(
            "loaded_version",
            "The loaded rule file and model versions (value 1)",
            versions.clone(),
        );
        let in_flight = Gauge::<i64, AtomicI64>::default();
        registry.register("in_flight_requests", "RPCs being served", in_flight.clone());
        let rejected = Family::<Labels, Counter>::default();
        registry.register(
            "rejected_requests",
            "Requests refused before or instead of evaluation (InvalidArgument, ResourceExhausted: overload, DeadlineExceeded), by method and gRPC code",
            rejected.clone(),
        );
        let tls_handshake_failures = Counter::default();
        registry.register(
            "tls_handshake_failures",
            "TLS connections refused or dropped before the handshake completed",
            tls_handshake_failures.clone(),
        );
        let queued_evaluations = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "queued_evaluations",
            "Evaluate calls waiting for a slot (server.max_concurrent_evaluations)",
            queued_evaluations.clone(),
        );
        let journal_appended = Counter::default();
        registry.register(
            "journal_appended",
            "Decision and outcome records written to the decision journal",
            journal_appended.clone(),
        );
        let journal_dropped = Family::<Labels, Counter>::default();
        registry.register(
            "journal_dropped",
            "Journal records dropped, by reason (queue_full, unavailable, write_failed, stopped)",
            journal_dropped.clone(),
        );
        let journal_write = Histogram::new(exponential_buckets(0.000_1, 2.0, 18));
        registry.register(
            "journal_write_seconds",
            "Time to write one batch of journal records",
            journal_write.clone(),
        );
        let journal_queue = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "journal_queue_depth",
            "Journal records waiting for the writer",
            journal_queue.clone(),
        );
        let journal_pruned = Counter::default();
        registry.register(
            "journal_pruned",
            "Journaled decisions deleted by retention",
            journal_pruned.clone(),
        );
        let console_requests = Family::<Labels, Counter>::default();
        registry.register(
            "console_requests",
            "Analyst console requests, by page and HTTP status",
            console_requests.clone(),
        );
        let console_duration = HistogramFamily::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.000_1, 2.0, 18))) as fn() -> Histogram,
        );
        registry.register(
            "console_request_duration_seconds",
            "Analyst console request latency, by page",
            console_duration.clone(),
        );
        let journal_writer_cpu = Counter::<f64, AtomicU64>::default();
        registry.register(
            "journal_writer_cpu_seconds",
            "CPU time of the journal's writer thread (part of process_cpu_seconds_total, off the decision path)",
            journal_writer_cpu.clone(),
        );
        // Every known label set exists at zero from the first scrape, so
        // `increase()` sees the first event and no panel says "No data".
        for action in crate::domain::Action::ALL {
            for level in crate::domain::RiskLevel::ALL {
                for channel in Channel::ALL {
                    decisions
                        .get_or_create(&vec![
                            ("action", action.as_str().to_string()),
                            ("level", level.as_str().to_string()),
                            ("channel", channel.as_str().to_string()),
                        ])
                        .inc_by(0);
                }
            }
        }
        for (method, codes) in [
            (
                "Evaluate",
                &["InvalidArgument", "ResourceExhausted", "DeadlineExceeded"][..],
            ),
            (
                "ReportOutcome",
                &["InvalidArgument", "NotFound", "Unavailable"][..],
            ),
        ] {
            for code in codes {
                rejected
                    .get_or_create(&vec![
                        ("method", method.to_string()),
                        ("code", code.to_string()),
                    ])
                    .inc_by(0);
            }
        }
        for kind in ["rules", "model", "geoip", "tls"] {
            for result in ["success", "failure"] {
                reloads
                    .get_or_create(&vec![
                        ("kind", kind.to_string()),
                        ("result", result.to_string()),
                    ])
                    .inc_by(0);
            }
        }
        for op in ["observe", "report", "record"] {
            store_errors
                .get_or_create(&vec![("op", op.to_string())])
                .inc_by(0);
        }
        for method in ["Evaluate", "ReportOutcome"] {
            drop(request_duration.get_or_create(&vec![("method", method.to_string())]));
        }
        for op in ["observe", "report"] {
            drop(store_duration.get_or_create(&vec![("op", op.to_string())]));
        }
        for signal in ["store", "geo"] {
            degraded
                .get_or_create(&vec![("signal", signal.to_string())])
                .inc_by(0);
        }
        for reason in ["queue_full", "unavailable", "write_failed", "stopped"] {
            journal_dropped
                .get_or_create(&vec![("reason", reason.to_string())])
                .inc_by(0);
        }
        Metrics {
            registry,
            decisions,
            reasons,
            degraded,
            rule_errors,
            request_duration,
            score,
            store_duration,
            store_errors,
            reloads,
            versions,
            in_flight,
            rejected,
            decision_handles: Handles::new(),
            reason_handles: [Handles::new(), Handles::new()],
            degraded_handles: Handles::new(),
            request_handles: Handles::new(),
            store_handles: Handles::new(),
            tls_handshake_failures,
            queued_evaluations,
            journal_appended,
            journal_dropped,
            journal_write,
            journal_queue,
            journal_pruned,
            journal_writer_cpu,
            console_requests,
            console_duration,
        }
    }

    /// Counts one console request of `page` answered with `status`.
    pub fn console_request(&self, page: &str, status: u16, took: Duration) {
        self.console_requests
            .get_or_create(&vec![
                ("page", page.to_string()),
                ("code", status.to_string()),
            ])
            .inc();
        self.console_duration
            .get_or_create(&vec![("page", page.to_string())])
            .observe(took.as_secs_f64());
    }

    /// Adds CPU seconds the journal's writer thread used.
    pub fn journal_writer_cpu(&self, seconds: f64) {
        self.journal_writer_cpu.inc_by(seconds);
    }

    /// Moves the journal queue depth by `delta` records.
    pub fn journal_queued(&self, delta: i64) {
        self.journal_queue.inc_by(delta);
    }

    /// Counts `n` journal records dropped for `reason`.
    pub fn journal_dropped(&self, reason: &'static str, n: u64) {
        self.journal_dropped
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc_by(n);
    }

    /// Counts a written batch of `n` records.
    pub fn journal_appended(&self, n: u64, took: Duration) {
        self.journal_appended.inc_by(n);
        self.journal_write.observe(took.as_secs_f64());
    }

    /// Counts decisions removed by retention.
    pub fn journal_pruned(&self, n: u64) {
        self.journal_pruned.inc_by(n);
    }

    /// Records one decision.
    pub fn observe_decision(&self, channel: Channel, d: &Decision) {
        let key = (d.action.as_str(), d.level.as_str(), channel.as_str());
        self.decision_handles
            .get(&key, || {
                let labels = vec![
                    ("action", key.0.to_string()),
                    ("level", key.1.to_string()),
                    ("channel", key.2.to_string()),
                ];
                (key, self.decisions.get_or_create(&labels).clone())
            })
            .inc();
        for (mode, reasons) in [(0, &d.reasons), (1, &d.shadow_reasons)] {
            for r in reasons {
                self.reason_handles[mode]
                    .get(r.code.as_str(), || {
                        let labels = vec![
                            ("code", r.code.clone()),
                            ("mode", ["enforce", "shadow"][mode].to_string()),
                        ];
                        (
                            r.code.as_str().into(),
                            self.reasons.get_or_create(&labels).clone(),
                        )
                    })
                    .inc();
            }
        }
        for s in d.degraded.names() {
            self.degraded_handles
                .get(s, || {
                    let labels = vec![("signal", s.to_string())];
                    (s.into(), self.degraded.get_or_create(&labels).clone())
                })
                .inc();
        }
        self.score.observe(d.score);
    }

    /// Makes the hit and error series of every rule of a loaded rule set
    /// exist (at zero until the rule fires or fails): `(name, shadow)`.
    pub fn rules_loaded<'a>(&self, rules: impl IntoIterator<Item = (&'a str, bool)>) {
        for (rule, shadow) in rules {
            self.rule_errors
                .get_or_create(&vec![("rule", rule.to_string())])
                .inc_by(0);
            let mode = if shadow { "shadow" } else { "enforce" };
            self.reasons
                .get_or_create(&vec![
                    ("code", rule.to_string()),
                    ("mode", mode.to_string()),
                ])
                .inc_by(0);
        }
    }

    /// Records a rule that failed at run time.
    pub fn rule_error(&self, rule: &str) {
        self.rule_errors
            .get_or_create(&vec![("rule", rule.to_string())])
            .inc();
    }

    /// Records one RPC's latency.
    pub fn observe_request(&self, method: &'static str, took: Duration) {
        self.request_handles
            .get(method, || {
                let labels = vec![("method", method.to_string())];
                (method, self.request_duration.get_or_create(&labels).clone())
            })
            .observe(took.as_secs_f64());
    }

    /// Records a store call.
    pub fn observe_store(&self, op: &'static str, took: Duration, ok: bool) {
        self.store_handles
            .get(op, || {
                let labels = vec![("op", op.to_string())];
                (op, self.store_duration.get_or_create(&labels).clone())
            })
            .observe(took.as_secs_f64());
        if !ok {
            self.store_errors
                .get_or_create(&vec![("op", op.to_string())])
                .inc();
        }
    }

    /// Counts a failed store call that has no latency of its own (a record
    /// refused by a full queue, a batch that failed to write).
    pub fn store_failed(&self, op: &'static str) {
        self.store_errors
            .get_or_create(&vec![("op", op.to_string())])
            .inc();
    }

    /// Records a reload attempt.
    pub fn reload(&self, kind: &'static str, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        self.reloads
            .get_or_create(&vec![
                ("kind", kind.to_string()),
                ("result", result.to_string()),
            ])
            .inc();
    }

    /// Publishes the loaded versions.
    pub fn set_versions(&self, rules: &str, model: &str) {
        self.versions.clear();
        self.versions
            .get_or_create(&vec![
                ("kind", "rules".to_string()),
                ("version", rules.to_string()),
            ])
            .set(1);
        self.versions
            .get_or_create(&vec![
                ("kind", "model".to_string()),
                ("version", model.to_string()),
            ])
            .set(1);
    }

    /// Records a request refused before or instead of evaluation; `code`
    /// is the gRPC code's name (`InvalidArgument`, `ResourceExhausted`, …).
    pub fn rejected(&self, method: &'static str, code: &'static str) {
        self.rejected
            .get_or_create(&vec![
                ("method", method.to_string()),
                ("code", code.to_string()),
            ])
            .inc();
    }

    /// Records a TLS connection refused at (or before) the handshake.
    pub fn tls_handshake_failed(&self) {
        self.tls_handshake_failures.inc();
    }

    /// Moves the count of queued Evaluate calls by `delta`.
    pub fn queued_evaluations(&self, delta: i64) {
        self.queued_evaluations.inc_by(delta);
    }

    /// A guard that counts one in-flight request while alive.
    pub fn in_flight(self: &Arc<Self>) -> InFlight {
        self.in_flight.inc();
        InFlight(self.clone())
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        // The standard process metrics go before the registry's `# EOF`.
        if let Some(eof) = out.rfind("# EOF") {
            out.truncate(eof);
            out.push_str(&process::render());
            out.push_str("# EOF\n");
        } else {
            out.push_str(&process::render());
        }
        out
    }
}

/// The standard process metrics (`process_cpu_seconds_total`,
/// `process_resident_memory_bytes`, …), read from `/proc/self` at each
/// scrape; on systems without it, none.
pub mod process {
    use std::fmt::Write as _;

    /// Linux reports CPU times in `/proc` in units of USER_HZ, which the
    /// kernel fixes at 100 per second for user space on every architecture.
    const USER_HZ: f64 = 100.0;

    /// (user + system CPU seconds, resident bytes, threads, open fds).
    pub fn sample() -> Option<(f64, u64, u64, u64)> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which is in parentheses.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
        let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
        let threads: u64 = f.get(17)?.parse().ok()?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let rss_kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
        Some((ticks / USER_HZ, rss_kb * 1024, threads, fds))
    }

    /// User and system CPU seconds of the calling thread (Linux only).
    pub fn thread_cpu() -> Option<f64> {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
        let rest = &stat[stat.rfind(')')? + 2..];
        let mut f = rest.split_whitespace().skip(11);
        let user: f64 = f.next()?.parse().ok()?;
        let system: f64 = f.next()?.parse().ok()?;
        Some((user + system) / USER_HZ)
    }

    /// The metrics in the Prometheus text format.
    pub fn render() -> String {
        let mut o = String::new();
        if let Some((cpu, rss, threads, fds)) = sample() {
            let _ = write!(
                o,
                "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n\
                 # TYPE process_cpu_seconds_total counter\n\
                 process_cpu_seconds_total {cpu}\n\
                 # HELP process_resident_memory_bytes Resident memory size in bytes.\n\
                 # TYPE process_resident_memory_bytes gauge\n\
                 process_resident_memory_bytes {rss}\n\
                 # HELP process_threads Number of OS threads in the process.\n\
                 # TYPE process_threads gauge\n\
                 process_threads {threads}\n\
                 # HELP process_open_fds Number of open file descriptors.\n\
                 # TYPE process_open_fds gauge\n\
                 process_open_fds {fds}\n"
            );
        }
        o
    }
}

/// Decrements the in-flight gauge on drop.
pub struct InFlight(Arc<Metrics>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines, for development.
    Text,
    /// One JSON object per line, for production.
    Json,
}

/// What must outlive the server for telemetry to be complete: the log
/// writer thread (its queued lines are written when this is dropped) and,
/// with OTLP export, the span pipeline; both flushed by
/// [`Telemetry::shutdown`] or on drop.
#[derive(Default)]
pub struct Telemetry {
    log_writer: Option<sink::SinkGuard>,
    #[cfg(feature = "otlp")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Flushes the spans not yet exported (bounded by the exporter's own
    /// timeout) and the log lines not yet written; the last step of a
    /// graceful shutdown.
    pub fn shutdown(self) {
        #[cfg(feature = "otlp")]
        if let Some(p) = &self.provider {
            if let Err(e) = p.shutdown() {
                tracing::warn!(error = %e, "OTLP span export did not flush");
            }
        }
        drop(self.log_writer);
    }
}

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("`log.otlp_endpoint`: {0}")]
    Otlp(String),
}

/// Installs the global tracing subscriber (`RUST_LOG` filters, default
/// info): JSON or text lines on stderr, and with `otlp_endpoint` (builds
/// with the `otlp` feature) every RPC span exported over OTLP/gRPC.
///
/// Lines are formatted by the calling thread and written by a background
/// thread in batches ([`sink`]): a decision's log line costs the request
/// no system call.
pub fn init(format: LogFormat, otlp_endpoint: Option<&str>) -> Result<Telemetry, TelemetryError> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::{EnvFilter, Layer};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = sink::stderr();
    // Colour only for a person at a terminal: escape codes in a log file or
    // a collector are noise (and cost a tenth of a text line's formatting).
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal());
    let lines = match format {
        // Flattened fields and the current span (the RPC with its request
        // id), written directly (see `json`).
        LogFormat::Json => lines
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(json::JsonLines)
            .boxed(),
        LogFormat::Text => lines.boxed(),
    };
    #[cfg_attr(not(feature = "otlp"), allow(unused_mut))]
    let mut telemetry = Telemetry {
        log_writer: Some(guard),
        #[cfg(feature = "otlp")]
        provider: None,
    };
    let otlp: Option<Box<dyn Layer<_> + Send + Sync>> = match otlp_endpoint {
        None => None,
        #[cfg(feature = "otlp")]
        Some(endpoint) => {
            let (provider, layer) = otlp_layer(endpoint)?;
            telemetry.provider = Some(provider);
            Some(layer.boxed())
        }
        #[cfg(not(feature = "otlp"))]
        Some(_) => {
            return Err(TelemetryError::Otlp(
                "this build has no OTLP export (rebuild with `--features otlp`)".into(),
            ));
        }
    };
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .with(otlp)
        .try_init();
    Ok(telemetry)
}

#[cfg(feature = "otlp")]
type OtlpLayer<S> =
    tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::SdkTracer>;

#[cfg(feature = "otlp")]
fn otlp_layer<S>(
    endpoint: &str,
) -> Result<(opentelemetry_sdk::trace::SdkTracerProvider, OtlpLayer<S>), TelemetryError>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig as _;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(|e| TelemetryError::Otlp(e.to_string()))?;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("riskgate")
                .build(),
        )
        .build();
    let tracer = provider.tracer("riskgate");
    Ok((provider, tracing_opentelemetry::layer().with_tracer(tracer)))
}
