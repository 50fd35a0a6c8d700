//! JSON log lines written straight into the line buffer.
//!
//! The same lines as `tracing-subscriber`'s JSON format with
//! `flatten_event(true)`, the current span and no span list —
//! `{"timestamp", "level", <event fields>, "target", "span": {<span
//! fields>, "name"}}` — without its per-line costs: it builds a serde map
//! per line and, for the span, parses the span's stored fields back from
//! JSON on every event. Here the span's fields, which [`JsonFields`]
//! stored as a JSON object when the span was made, are copied in as they
//! are, and event fields are escaped as they are written.
//!
//! [`JsonFields`]: tracing_subscriber::fmt::format::JsonFields

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event format; use with `fmt_fields(JsonFields::new())` so span
/// fields are stored as JSON objects.
pub struct JsonLines;

/// Writes `s` JSON-escaped (without the quotes).
struct Escaped<'a, 'w>(&'a mut Writer<'w>);

impl fmt::Write for Escaped<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut start = 0;
        for (i, b) in s.bytes().enumerate() {
            let esc = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            self.0.write_str(&s[start..i])?;
            if esc.is_empty() {
                write!(self.0, "\\u{b:04x}")?;
            } else {
                self.0.write_str(esc)?;
            }
            start = i + 1;
        }
        self.0.write_str(&s[start..])
    }
}

fn string(w: &mut Writer<'_>, s: &str) -> fmt::Result {
    w.write_char('"')?;
    Escaped(w).write_str(s)?;
    w.write_char('"')
}

/// Writes each event field as `,"name":value`.
struct Fields<'a, 'w> {
    w: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn key(&mut self, field: &Field) -> fmt::Result {
        self.w.write_char(',')?;
        string(self.w, field.name())?;
        self.w.write_char(':')
    }

    fn put(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = self.key(field).and_then(|()| value(self.w));
        }
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, |w| string(w, value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, |w| write!(w, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, |w| write!(w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, |w| write!(w, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity.
        self.put(field, |w| {
            if value.is_finite() {
                write!(w, "{value}")
            } else {
                w.write_str("null")
            }
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, |w| {
            w.write_char('"')?;
            write!(Escaped(w), "{value:?}")?;
            w.write_char('"')
        });
    }
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        w.write_str("{\"timestamp\":\"")?;
        tracing_subscriber::fmt::time::SystemTime.format_time(&mut w)?;
        w.write_str("\",\"level\":\"")?;
        w.write_str(meta.level().as_str())?;
        w.write_char('"')?;
        let mut fields = Fields {
            w: &mut w,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        w.write_str(",\"target\":")?;
        string(&mut w, meta.target())?;
        let span = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(span) = span {
            w.write_str(",\"span\":{")?;
            let ext = span.extensions();
            let stored = ext
                .get::<FormattedFields<N>>()
                .map_or("", |f| f.fields.as_str());
            // A JSON object `{...}` (JsonFields): its members go in as they are.
            let members = stored
                .strip_prefix('{')
                .and_then(|s| s.strip_suffix('}'))
                .unwrap_or("");
            if !members.is_empty() {
                w.write_str(members)?;
                w.write_char(',')?;
            }
            w.write_str("\"name\":")?;
            string(&mut w, span.name())?;
            w.write_char('}')?;
        }
        w.write_str("}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::fmt::format::JsonFields;
    use tracing_subscriber::layer::SubscriberExt as _;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buf {
        type Writer = Buf;
        fn make_writer(&'a self) -> Buf {
            self.clone()
        }
    }

    #[test]
    fn lines_are_json_with_flattened_fields_and_the_current_span() {
        let buf = Buf::default();
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(buf.clone())
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines);
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("rpc", rpc.method = "Evaluate", request.id = "r-\"1\"");
            let _e = span.enter();
            tracing::info!(
                decision.action = "DENY",
                decision.score = 0.5,
                n = 3u64,
                neg = -2i64,
                ok = true,
                nan = f64::NAN,
                shown = %"line\nbreak\u{1}",
                debug = ?vec!["a"],
                "decision"
            );
            tracing::warn!("outside");
        });
        tracing::subscriber::with_default(
            tracing_subscriber::registry().with(
                tracing_subscriber::fmt::layer()
                    .with_writer(buf.clone())
                    .fmt_fields(JsonFields::new())
                    .event_format(JsonLines),
            ),
            || tracing::info!("no span"),
        );
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(lines.len(), 3);
        let d = &lines[0];
        assert_eq!(d["level"], "INFO");
        assert_eq!(d["message"], "decision");
        assert_eq!(d["decision.action"], "DENY");
        assert_eq!(d["decision.score"], 0.5);
        assert_eq!((d["n"].clone(), d["neg"].clone()), (3.into(), (-2).into()));
        assert_eq!(d["ok"], true);
        assert!(d["nan"].is_null());
        assert_eq!(d["shown"], "line\nbreak\u{1}");
        assert_eq!(d["debug"], "[\"a\"]");
        assert_eq!(d["span"]["name"], "rpc");
        assert_eq!(d["span"]["rpc.method"], "Evaluate");
        assert_eq!(d["span"]["request.id"], "r-\"1\"");
        assert!(d["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(d["target"].as_str().unwrap().contains("json"));
        assert_eq!(lines[1]["level"], "WARN");
        assert!(lines[2].get("span").is_none());
    }
}
