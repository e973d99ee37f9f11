//! Structured JSON logs, one line per event. The level comes from `RUST_LOG`, else Lambda's
//! `AWS_LAMBDA_LOG_LEVEL`, else `info` (a level, or `target=level` directives).
//!
//! Each line: `timestamp` (RFC 3339, microseconds, UTC), `level`, `message`, the event's own
//! fields, and, inside a span, `span` with the current span's fields (sorted by name) and its
//! `name`. The layer writes each line straight from the event and keeps each span's fields
//! already rendered: every request writes at least one line, and a general-purpose formatter
//! (which re-parses a span's fields for each line) cost more than the request's own work
//! (BENCHMARKS.md).

use std::fmt;
use std::io::Write as _;
use std::time::SystemTime;

use tracing::field::{Field, Visit};

use crate::domain::push_rfc3339;
use crate::json::{
    push_display, push_f64, push_int, push_str as push_json_str,
    push_str_contents as push_json_str_contents,
};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::filter::{filter_fn, FilterExt, LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// At `trace` the Lambda runtime logs every raw event (headers included, so `x-api-key`),
/// and the AWS SDK logs whole requests and responses, which carry key digests (the clients
/// table's partition keys). Trace events from these crates are always dropped, whatever the
/// configured level, so no log level can put a key or a digest in the logs.
const WIRE_TARGETS: &[&str] = &[
    "aws",
    "lambda_runtime",
    "lambda_http",
    "hyper",
    "h2",
    "rustls",
];

/// Whether an event may be logged at all, before the configured level is applied.
pub fn is_loggable(metadata: &Metadata<'_>) -> bool {
    *metadata.level() < Level::TRACE
        || !WIRE_TARGETS
            .iter()
            .any(|target| metadata.target().starts_with(target))
}

/// What `RUST_LOG` (else `AWS_LAMBDA_LOG_LEVEL`) asks for; `info` when unset or unreadable.
fn configured_filter() -> Targets {
    std::env::var("RUST_LOG")
        .ok()
        .or_else(|| std::env::var("AWS_LAMBDA_LOG_LEVEL").ok())
        .and_then(|level| level.trim().to_ascii_lowercase().parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO))
}

/// The service's log output: JSON lines to `writer`, at `filter`'s levels, never with
/// the wire-level trace events described above.
pub fn json_layer<S, W>(filter: Targets, writer: W) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    JsonLines { writer }.with_filter(filter.and(filter_fn(is_loggable)))
}

pub fn init() {
    tracing_subscriber::registry()
        .with(json_layer(configured_filter(), std::io::stdout))
        .init();
}

struct JsonLines<W> {
    writer: W,
}

/// A span's fields as its lines show them: each name with its value already rendered as
/// JSON, in the order recorded (a later value replacing an earlier one).
struct SpanFields(Vec<(&'static str, String)>);

impl SpanFields {
    fn set(&mut self, name: &'static str, value: String) {
        match self.0.iter_mut().find(|(field, _)| *field == name) {
            Some((_, old)) => *old = value,
            None => self.0.push((name, value)),
        }
    }
}

impl Visit for SpanFields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut json = String::new();
        push_display(&mut json, format_args!("{value:?}"));
        self.set(field.name(), json);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let mut json = String::with_capacity(value.len() + 2);
        push_json_str(&mut json, value);
        self.set(field.name(), json);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        let mut json = String::new();
        push_int(&mut json, value);
        self.set(field.name(), json);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        let mut json = String::new();
        push_int(&mut json, value);
        self.set(field.name(), json);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field.name(), value.to_string());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        let mut json = String::new();
        push_f64(&mut json, value);
        self.set(field.name(), json);
    }
}

/// How a line's message field starts.
const MESSAGE: &str = ",\"message\":";

/// Writes an event's fields into its line: `message` first (where the line starts it), the
/// others after, in order. The message, rendered with its key, waits for the others.
struct EventFields<'a> {
    line: &'a mut String,
    message: Option<String>,
}

impl EventFields<'_> {
    fn field(&mut self, name: &str) -> &mut String {
        self.line.push_str(",\"");
        push_json_str_contents(self.line, name);
        self.line.push_str("\":");
        self.line
    }
}

impl Visit for EventFields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let mut message = String::from(MESSAGE);
            push_display(&mut message, format_args!("{value:?}"));
            self.message = Some(message);
        } else {
            let line = self.field(field.name());
            push_display(line, format_args!("{value:?}"));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            let mut message = String::with_capacity(MESSAGE.len() + value.len() + 2);
            message.push_str(MESSAGE);
            push_json_str(&mut message, value);
            self.message = Some(message);
        } else {
            let line = self.field(field.name());
            push_json_str(line, value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        push_int(self.field(field.name()), value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        push_int(self.field(field.name()), value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        let line = self.field(field.name());
        line.push_str(if value { "true" } else { "false" });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        let line = self.field(field.name());
        push_f64(line, value);
    }
}

impl<S, W> Layer<S> for JsonLines<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = SpanFields(Vec::new());
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(fields) = span.extensions_mut().get_mut::<SpanFields>() {
                values.record(fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut line = String::with_capacity(512);
        line.push_str("{\"timestamp\":\"");
        // RFC 3339 in UTC with microseconds: `2026-12-07T05:37:17.067924Z`.
        push_rfc3339(&mut line, SystemTime::now().into(), 6);
        line.push_str("\",\"level\":\"");
        line.push_str(event.metadata().level().as_str());
        line.push('"');
        // The fields are written first, then the message is put in front of them.
        let fields_from = line.len();
        let mut fields = EventFields {
            line: &mut line,
            message: None,
        };
        event.record(&mut fields);
        if let Some(message) = fields.message.take() {
            line.insert_str(fields_from, &message);
        }
        if let Some(span) = ctx.event_span(event) {
            line.push_str(",\"span\":{");
            if let Some(fields) = span.extensions().get::<SpanFields>() {
                let mut sorted: Vec<&(&str, String)> = fields.0.iter().collect();
                sorted.sort_unstable_by_key(|(name, _)| *name);
                for (name, value) in sorted {
                    line.push('"');
                    push_json_str_contents(&mut line, name);
                    line.push_str("\":");
                    line.push_str(value);
                    line.push(',');
                }
            }
            line.push_str("\"name\":");
            push_json_str(&mut line, span.name());
            line.push('}');
        }
        line.push_str("}\n");
        // A log line that cannot be written is not worth failing a request for.
        let _ = self
            .writer
            .make_writer_for(event.metadata())
            .write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing::subscriber::with_default;
    use tracing_subscriber::registry;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Lines {
        type Writer = Lines;

        fn make_writer(&'w self) -> Lines {
            self.clone()
        }
    }

    fn logged(filter: &str, log: impl FnOnce()) -> Vec<serde_json::Value> {
        let lines = Lines::default();
        let subscriber = registry().with(json_layer(filter.parse().unwrap(), lines.clone()));
        with_default(subscriber, log);
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    #[test]
    fn a_line_has_the_event_its_span_and_the_time() {
        let lines = logged("info", || {
            let span = tracing::info_span!(
                "request",
                operation = "create_payment",
                request_id = %"r-1",
                account_id = tracing::field::Empty,
            );
            let _entered = span.enter();
            span.record("account_id", "acct_1");
            tracing::info!(
                payment_id = %"pay_1",
                amount = 1250,
                fee = 1.5,
                idempotent = true,
                note = "a \"quoted\"\nline",
                "payment created"
            );
            tracing::debug!("not at info");
        });
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "payment created");
        assert_eq!(line["payment_id"], "pay_1");
        assert_eq!(line["amount"], 1250);
        assert_eq!(line["fee"], 1.5);
        assert_eq!(line["idempotent"], true);
        assert_eq!(line["note"], "a \"quoted\"\nline");
        assert_eq!(
            line["span"],
            serde_json::json!({"account_id": "acct_1", "operation": "create_payment",
                               "request_id": "r-1", "name": "request"})
        );
        let at = line["timestamp"].as_str().unwrap();
        assert!(crate::domain::Timestamp::parse(at).is_some(), "{at}");
        assert_eq!(at.len(), "2026-12-07T05:37:17.067924Z".len());
    }

    #[test]
    fn outside_a_span_a_line_has_no_span_and_levels_filter() {
        let lines = logged("warn", || {
            tracing::warn!(code = 7u64, "careful");
            tracing::info!("dropped");
        });
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["message"], "careful");
        assert_eq!(lines[0]["code"], 7);
        assert!(lines[0].get("span").is_none());
    }

    #[test]
    fn wire_level_traces_are_never_written() {
        let lines = logged("trace", || {
            tracing::trace!(target: "aws_smithy_runtime::client", "a whole request");
            tracing::trace!(target: "payments", "ours");
        });
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["message"], "ours");
    }

    #[test]
    fn a_line_is_stamped_to_the_microsecond() {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_micros(1_796_621_837_067_924);
        let mut out = String::new();
        push_rfc3339(&mut out, at.into(), 6);
        assert_eq!(out, "2026-12-07T05:37:17.067924Z");
        let lines = logged("info", || tracing::info!("stamped"));
        let stamp = lines[0]["timestamp"].as_str().unwrap();
        assert_eq!(stamp.len(), out.len(), "{stamp}");
        assert!(crate::domain::Timestamp::parse(stamp).is_some(), "{stamp}");
    }
}
