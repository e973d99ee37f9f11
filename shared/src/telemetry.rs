//! Structured JSON logs, one line per event. The level comes from `RUST_LOG`, else Lambda's
//! `AWS_LAMBDA_LOG_LEVEL`, else `info` (a level, or `target=level` directives).
//!
//! Each line: `timestamp` (RFC 3339, microseconds, UTC), `level`, `message`, the event's own
//! fields, and, inside a span, `span` with the current span's fields (sorted by name) and its
//! `name`. The layer writes each line straight from the event and keeps each span's fields
//! already rendered: every request writes at least one line, and a general-purpose formatter
//! (which re-parses a span's fields for each line) cost more than the request's own work
//! (BENCHMARKS.md).

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
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
        push_debug(&mut json, value);
        self.set(field.name(), json);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let mut json = String::with_capacity(value.len() + 2);
        push_json_str(&mut json, value);
        self.set(field.name(), json);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field.name(), value.to_string());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field.name(), value.to_string());
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

/// Writes an event's fields into its line: `message` first (where the line starts it), the
/// others after, in order.
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
            let mut message = String::new();
            push_debug(&mut message, value);
            self.message = Some(message);
        } else {
            let line = self.field(field.name());
            push_debug(line, value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            let mut message = String::with_capacity(value.len() + 2);
            push_json_str(&mut message, value);
            self.message = Some(message);
        } else {
            let line = self.field(field.name());
            push_json_str(line, value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        let line = self.field(field.name());
        let _ = write!(line, "{value}");
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        let line = self.field(field.name());
        let _ = write!(line, "{value}");
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
        push_timestamp(&mut line, SystemTime::now());
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
            line.insert_str(fields_from, &format!(",\"message\":{message}"));
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

/// `value` as a JSON string.
fn push_json_str(out: &mut String, value: &str) {
    out.push('"');
    push_json_str_contents(out, value);
    out.push('"');
}

/// `value`'s characters as a JSON string holds them, escaped where JSON requires.
fn push_json_str_contents(out: &mut String, value: &str) {
    let mut plain = 0;
    for (at, c) in value.char_indices() {
        let escape = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if (c as u32) < 0x20 => "",
            _ => continue,
        };
        out.push_str(&value[plain..at]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push_str(escape);
        }
        plain = at + c.len_utf8();
    }
    out.push_str(&value[plain..]);
}

/// A value's `Debug` rendering (for `%` fields, its `Display`) as a JSON string.
fn push_debug(out: &mut String, value: &dyn fmt::Debug) {
    let mut text = String::new();
    let _ = write!(text, "{value:?}");
    push_json_str(out, &text);
}

/// A float as JSON: the shortest digits that read back as the same value, with a fraction
/// even when it is zero; `null` for a value JSON cannot hold.
fn push_f64(out: &mut String, value: f64) {
    if !value.is_finite() {
        out.push_str("null");
        return;
    }
    let from = out.len();
    let _ = write!(out, "{value}");
    if !out[from..].contains('.') {
        out.push_str(".0");
    }
}

/// RFC 3339 in UTC with microseconds: `2026-12-07T05:37:17.067924Z`.
fn push_timestamp(out: &mut String, at: SystemTime) {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since.as_secs();
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        since.subsec_micros()
    );
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
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
    fn dates_are_civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_794), (2026, 12, 7));
        let mut out = String::new();
        push_timestamp(
            &mut out,
            UNIX_EPOCH + std::time::Duration::from_micros(1_796_621_837_067_924),
        );
        assert_eq!(out, "2026-12-07T05:37:17.067924Z");
    }
}
