//! Structured JSON logs. The level comes from `RUST_LOG`, else Lambda's `AWS_LAMBDA_LOG_LEVEL`,
//! else `info`.

use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::filter::{filter_fn, FilterExt};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

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

fn configured_filter() -> EnvFilter {
    let configured = std::env::var("RUST_LOG")
        .ok()
        .or_else(|| std::env::var("AWS_LAMBDA_LOG_LEVEL").ok())
        .map(|level| level.trim().to_ascii_lowercase())
        .filter(|level| !level.is_empty())
        .unwrap_or_else(|| "info".to_owned());
    EnvFilter::try_new(configured).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// The service's log output: JSON lines to `writer`, at `filter`'s levels, never with
/// the wire-level trace events described above.
pub fn json_layer<S, W>(filter: EnvFilter, writer: W) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .with_ansi(false)
        .with_writer(writer)
        .with_filter(filter.and(filter_fn(is_loggable)))
}

pub fn init() {
    tracing_subscriber::registry()
        .with(json_layer(configured_filter(), std::io::stdout))
        .init();
}
