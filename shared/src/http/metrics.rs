//! Metrics as CloudWatch Embedded Metric Format (EMF): one JSON line per request on stdout,
//! which Lambda ships to CloudWatch Logs and CloudWatch turns into metrics. No network call,
//! no client, no dependency beyond `serde_json`.
//!
//! Per request, namespace `METRICS_NAMESPACE` (default `PaymentsApi`):
//! - `Requests` (Count) and `Latency` (Milliseconds) by `Function` and `StatusClass`
//!   (`2xx`, `4xx`, `5xx`), by `Function` and `Outcome` (an [`Outcome`], or the error code),
//!   and by `StatusClass` alone (the service's error rate);
//! - `DynamoDbCallLatency` (Milliseconds, one value per call) and `DynamoDbCalls` (Count)
//!   by `Function`; `DynamoDbAttempts` (Count, each attempt the SDK sent, retries included)
//!   and the capacity DynamoDB reported, `DynamoDbReadUnits` and `DynamoDbWriteUnits`
//!   (Count), by `Function`, with the attempts' operations in order as the property
//!   `DynamoDbOperations` (see [`crate::store::usage`]);
//! - the calls the execution environment made outside any request since the previous line
//!   (the warm-up call during init, a key's use recorded in the background), when there were
//!   any, as the property `OutsideRequests`
//!   (`{"DynamoDbOperations": [...], "ReadUnits": r, "WriteUnits": w}`);
//! - `AuthRefusals` (Count) by `Reason` (an [`AuthFailure`]'s name) and in total, when the
//!   key was missing or refused;
//! - `RateLimited` (Count) by `Function` and in total, when the account was over its request
//!   rate limit (a 429);
//! - `ColdStart` (Count, 1) by `Function`, on an execution environment's first request only.
//!
//! Every dimension takes its value from a fixed, small set: never a key prefix, an account
//! id or a payment id, so the number of metrics (and their cost) is bounded.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use lambda_http::http::StatusCode;

use crate::domain::AuthFailure;
use crate::json;
use crate::store::usage::{self, CallLog, OutsideCalls};

/// What one request recorded while it ran.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RequestMetrics {
    /// The request's DynamoDB calls: each store call's time (deadline-bounded calls), each
    /// attempt the client sent, and the capacity they consumed.
    pub calls: CallLog,
    /// What the client spent outside any request since the previous request's metrics.
    pub outside: CallLog,
}

/// One execution environment's metrics state: whether its first request is still to come,
/// and its DynamoDB client's calls outside requests. Cheap to clone: clones share it.
#[derive(Debug, Clone)]
pub struct Meter {
    cold: Arc<AtomicBool>,
    outside: OutsideCalls,
}

impl Meter {
    /// The meter of an environment whose client records outside requests into `outside`.
    pub fn new(outside: OutsideCalls) -> Self {
        Meter {
            cold: Arc::new(AtomicBool::new(true)),
            outside,
        }
    }

    /// Runs `request` with a fresh call log that the store wrapper and the client record
    /// into, and hands its metrics back with the request's output.
    pub async fn measured<F: std::future::Future>(
        &self,
        request: F,
    ) -> (F::Output, RequestMetrics) {
        // On the heap: a handler's future, with the SDK's inside it, is tens of kilobytes in
        // a debug build, and whatever awaits it (a test thread's 2 MB stack) holds only a
        // pointer.
        let (output, calls) = usage::scoped(Box::pin(request)).await;
        let outside = self.outside.take();
        (output, RequestMetrics { calls, outside })
    }

    /// `true` on the environment's first call, `false` after.
    pub fn take_cold_start(&self) -> bool {
        self.cold.swap(false, Ordering::Relaxed)
    }
}

/// A meter of its own, with a client log nobody else writes: for handlers in tests.
impl Default for Meter {
    fn default() -> Self {
        Meter::new(OutsideCalls::default())
    }
}

/// Records one DynamoDB call of the current request.
pub fn record_dynamodb_call(elapsed: Duration) {
    usage::record_call(elapsed);
}

const DEFAULT_NAMESPACE: &str = "PaymentsApi";

fn namespace() -> &'static str {
    static NAMESPACE: OnceLock<String> = OnceLock::new();
    NAMESPACE.get_or_init(|| {
        std::env::var("METRICS_NAMESPACE")
            .ok()
            .filter(|ns| !ns.trim().is_empty() && ns.len() <= 255)
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned())
    })
}

/// One request, as its metrics describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord<'a> {
    pub function: &'static str,
    pub status: StatusCode,
    /// An [`Outcome`], or the error code.
    pub outcome: &'a str,
    pub latency: Duration,
    pub metrics: RequestMetrics,
    /// Why the key was refused, when it was.
    pub auth_refusal: Option<AuthFailure>,
    /// Refused for the account's request rate limit.
    pub rate_limited: bool,
    pub cold_start: bool,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
}

string_enum!(
    /// The `StatusClass` dimension: a status by its hundred.
    StatusClass {
        Success = "2xx",
        ClientError = "4xx",
        ServerError = "5xx",
        Other = "other",
    }
);

impl StatusClass {
    pub fn of(status: StatusCode) -> Self {
        match status.as_u16() {
            200..=299 => StatusClass::Success,
            400..=499 => StatusClass::ClientError,
            500..=599 => StatusClass::ServerError,
            _ => StatusClass::Other,
        }
    }
}

string_enum!(
    /// The `Outcome` dimension of a request that succeeded; one that was refused or failed
    /// has its error code there instead. Apart from every error code and every `Reason`, so
    /// that one name never counts two things.
    Outcome {
        Ok = "ok",
        Created = "created",
        /// A payment's 201 answering a retry with the same `Idempotency-Key`.
        Replayed = "replayed",
        KeyCreated = "key_created",
        KeyRolled = "key_rolled",
        /// A key revoked, or found revoked already (revoking is idempotent).
        KeyRevocation = "key_revocation",
    }
);

/// The `_aws` directives, rendered once per process: they depend only on the namespace.
struct Directives {
    requests: String,
    calls: String,
    calls_with_latency: String,
    auth_refusals: String,
    rate_limited: String,
    cold_start: String,
}

fn directives() -> &'static Directives {
    static DIRECTIVES: OnceLock<Directives> = OnceLock::new();
    DIRECTIVES.get_or_init(|| {
        let namespace = serde_json::to_string(namespace()).expect("a string serializes");
        let directive = |dimensions: &str, metrics: &[(&str, &str)]| {
            let metrics: Vec<String> = metrics
                .iter()
                .map(|(name, unit)| format!(r#"{{"Name":"{name}","Unit":"{unit}"}}"#))
                .collect();
            format!(
                r#"{{"Dimensions":{dimensions},"Metrics":[{}],"Namespace":{namespace}}}"#,
                metrics.join(",")
            )
        };
        let calls = [
            ("DynamoDbCalls", "Count"),
            ("DynamoDbAttempts", "Count"),
            ("DynamoDbReadUnits", "Count"),
            ("DynamoDbWriteUnits", "Count"),
        ];
        let mut with_latency = vec![("DynamoDbCallLatency", "Milliseconds")];
        with_latency.extend(calls);
        Directives {
            requests: directive(
                r#"[["Function","StatusClass"],["Function","Outcome"],["StatusClass"]]"#,
                &[("Requests", "Count"), ("Latency", "Milliseconds")],
            ),
            calls: directive(r#"[["Function"]]"#, &calls),
            calls_with_latency: directive(r#"[["Function"]]"#, &with_latency),
            auth_refusals: directive(r#"[["Reason"],[]]"#, &[("AuthRefusals", "Count")]),
            rate_limited: directive(r#"[["Function"],[]]"#, &[("RateLimited", "Count")]),
            cold_start: directive(r#"[["Function"]]"#, &[("ColdStart", "Count")]),
        }
    })
}

/// A JSON object written straight into one line: every request writes one, so it is built
/// without an intermediate document (that cost more than the handler's own work).
struct Line(String);

impl Line {
    fn field(&mut self, name: &str) -> &mut String {
        self.0.push(if self.0.is_empty() { '{' } else { ',' });
        self.0.push('"');
        self.0.push_str(name);
        self.0.push_str("\":");
        &mut self.0
    }

    fn str(&mut self, name: &str, value: &str) {
        let out = self.field(name);
        json::push_str(out, value);
    }

    fn integer(&mut self, name: &str, value: impl Into<u64>) {
        json::push_int(self.field(name), value.into());
    }

    fn float(&mut self, name: &str, value: f64) {
        let out = self.field(name);
        push_f64(out, value);
    }

    fn strs<'a>(&mut self, name: &str, values: impl Iterator<Item = &'a str>) {
        let out = self.field(name);
        out.push('[');
        for (n, value) in values.enumerate() {
            if n > 0 {
                out.push(',');
            }
            json::push_str(out, value);
        }
        out.push(']');
    }
}

/// A float as a metric value: as serde_json writes one (`2.0`), and `0.0` for a value that
/// is not finite (never a duration or a capacity), since a metric value must be a number.
fn push_f64(out: &mut String, value: f64) {
    json::push_f64(out, if value.is_finite() { value } else { 0.0 });
}

/// The EMF document of one request: one JSON object, rendered on one line.
pub fn emf_line(record: &RequestRecord<'_>) -> String {
    let directives = directives();
    let spent = &record.metrics.calls;
    let mut line = Line(String::with_capacity(1024));
    line.str("Function", record.function);
    line.str("StatusClass", StatusClass::of(record.status).as_str());
    line.str("Outcome", record.outcome);
    line.integer("Requests", 1u8);
    line.float("Latency", record.latency.as_secs_f64() * 1e3);
    line.integer("DynamoDbCalls", spent.call_ms.len() as u64);
    // At most 100 values per metric (EMF); a request makes a handful of calls. A metric
    // with no value (no call) is left out rather than given an empty array.
    let calls = &spent.call_ms[..spent.call_ms.len().min(100)];
    if !calls.is_empty() {
        let out = line.field("DynamoDbCallLatency");
        out.push('[');
        for (n, ms) in calls.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            push_f64(out, *ms);
        }
        out.push(']');
    }
    line.integer("DynamoDbAttempts", spent.attempts.len() as u64);
    line.float("DynamoDbReadUnits", spent.read_units);
    line.float("DynamoDbWriteUnits", spent.write_units);
    // Properties, not metrics, but the line stays bounded: at most 100 operations each.
    line.strs(
        "DynamoDbOperations",
        spent.attempts[..spent.attempts.len().min(100)]
            .iter()
            .copied(),
    );
    let outside = &record.metrics.outside;
    if !outside.is_empty() {
        let out = line.field("OutsideRequests");
        out.push_str("{\"DynamoDbOperations\":[");
        for (n, op) in outside.attempts[..outside.attempts.len().min(100)]
            .iter()
            .enumerate()
        {
            if n > 0 {
                out.push(',');
            }
            json::push_str(out, op);
        }
        out.push_str("],\"ReadUnits\":");
        push_f64(out, outside.read_units);
        out.push_str(",\"WriteUnits\":");
        push_f64(out, outside.write_units);
        out.push('}');
    }
    let mut extra: Vec<&str> = Vec::new();
    if let Some(reason) = record.auth_refusal {
        line.str("Reason", reason.as_str());
        line.integer("AuthRefusals", 1u8);
        extra.push(&directives.auth_refusals);
    }
    if record.rate_limited {
        line.integer("RateLimited", 1u8);
        extra.push(&directives.rate_limited);
    }
    if record.cold_start {
        line.integer("ColdStart", 1u8);
        extra.push(&directives.cold_start);
    }
    let out = line.field("_aws");
    out.push_str("{\"Timestamp\":");
    json::push_int(out, record.timestamp_ms);
    out.push_str(",\"CloudWatchMetrics\":[");
    out.push_str(&directives.requests);
    out.push(',');
    out.push_str(if calls.is_empty() {
        &directives.calls
    } else {
        &directives.calls_with_latency
    });
    for directive in extra {
        out.push(',');
        out.push_str(directive);
    }
    out.push_str("]}}");
    line.0
}

#[cfg(any(test, feature = "test-support"))]
thread_local! {
    static CAPTURED: std::cell::RefCell<Option<Vec<String>>> = const { std::cell::RefCell::new(None) };
}

/// Captures the EMF lines this thread emits from now on instead of printing them (tests).
#[cfg(any(test, feature = "test-support"))]
pub fn capture() {
    CAPTURED.with(|c| *c.borrow_mut() = Some(Vec::new()));
}

/// The lines captured since [`capture`], and clears them.
#[cfg(any(test, feature = "test-support"))]
pub fn captured() -> Vec<String> {
    CAPTURED.with(|c| {
        c.borrow_mut()
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    })
}

/// Writes one EMF line to stdout, where Lambda picks it up.
pub fn emit(line: String) {
    #[cfg(any(test, feature = "test-support"))]
    {
        let captured = CAPTURED.with(|c| {
            c.borrow_mut()
                .as_mut()
                .map(|lines| lines.push(line.clone()))
                .is_some()
        });
        if captured {
            return;
        }
    }
    use std::io::Write;
    let mut line = line;
    line.push('\n');
    // One write of the whole line. A metric that cannot be written is not worth failing a
    // request for.
    let _ = std::io::stdout().lock().write_all(line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map, Value};

    fn directive(dimensions: Value, metrics: &[(&str, &str)]) -> Value {
        json!({
            "Namespace": namespace(),
            "Dimensions": dimensions,
            "Metrics": metrics
                .iter()
                .map(|(name, unit)| json!({"Name": name, "Unit": unit}))
                .collect::<Vec<_>>(),
        })
    }

    /// The line as a document built it, before the direct writer: the reference that writer
    /// must agree with.
    fn reference_emf_line(record: &RequestRecord<'_>) -> String {
        // At most 100 values per metric (EMF); a request makes a handful of calls. A metric
        // with no value (no call) is left out rather than given an empty array.
        let calls: Vec<f64> = record
            .metrics
            .calls
            .call_ms
            .iter()
            .take(100)
            .copied()
            .collect();
        let mut call_metrics = vec![
            ("DynamoDbCalls", "Count"),
            ("DynamoDbAttempts", "Count"),
            ("DynamoDbReadUnits", "Count"),
            ("DynamoDbWriteUnits", "Count"),
        ];
        if !calls.is_empty() {
            call_metrics.insert(0, ("DynamoDbCallLatency", "Milliseconds"));
        }
        let mut directives = vec![
            directive(
                json!([
                    ["Function", "StatusClass"],
                    ["Function", "Outcome"],
                    ["StatusClass"]
                ]),
                &[("Requests", "Count"), ("Latency", "Milliseconds")],
            ),
            directive(json!([["Function"]]), &call_metrics),
        ];
        let mut root = Map::new();
        root.insert("Function".into(), json!(record.function));
        root.insert("StatusClass".into(), json!(StatusClass::of(record.status)));
        root.insert("Outcome".into(), json!(record.outcome));
        root.insert("Requests".into(), json!(1));
        root.insert("Latency".into(), json!(record.latency.as_secs_f64() * 1e3));
        root.insert(
            "DynamoDbCalls".into(),
            json!(record.metrics.calls.call_ms.len()),
        );
        if !calls.is_empty() {
            root.insert("DynamoDbCallLatency".into(), json!(calls));
        }
        let spent = &record.metrics.calls;
        root.insert("DynamoDbAttempts".into(), json!(spent.attempts.len()));
        root.insert("DynamoDbReadUnits".into(), json!(spent.read_units));
        root.insert("DynamoDbWriteUnits".into(), json!(spent.write_units));
        // Properties, not metrics, but the line stays bounded: at most 100 operations each.
        root.insert(
            "DynamoDbOperations".into(),
            json!(&spent.attempts[..spent.attempts.len().min(100)]),
        );
        let outside = &record.metrics.outside;
        if !outside.is_empty() {
            root.insert(
                "OutsideRequests".into(),
                json!({
                    "DynamoDbOperations": &outside.attempts[..outside.attempts.len().min(100)],
                    "ReadUnits": outside.read_units,
                    "WriteUnits": outside.write_units,
                }),
            );
        }
        if let Some(reason) = record.auth_refusal {
            directives.push(directive(
                json!([["Reason"], []]),
                &[("AuthRefusals", "Count")],
            ));
            root.insert("Reason".into(), json!(reason.as_str()));
            root.insert("AuthRefusals".into(), json!(1));
        }
        if record.rate_limited {
            directives.push(directive(
                json!([["Function"], []]),
                &[("RateLimited", "Count")],
            ));
            root.insert("RateLimited".into(), json!(1));
        }
        if record.cold_start {
            directives.push(directive(json!([["Function"]]), &[("ColdStart", "Count")]));
            root.insert("ColdStart".into(), json!(1));
        }
        root.insert(
            "_aws".into(),
            json!({"Timestamp": record.timestamp_ms, "CloudWatchMetrics": directives}),
        );
        Value::Object(root).to_string()
    }

    /// Every field, whatever the record: the direct writer and the document agree.
    #[test]
    fn the_line_is_the_document_it_always_was() {
        let mut records = vec![];
        for (auth_refusal, rate_limited, cold_start, calls, outside) in [
            (None, false, false, vec![], CallLog::default()),
            (
                Some(AuthFailure::UnknownKey),
                false,
                true,
                vec![1.25],
                CallLog::default(),
            ),
            (
                None,
                true,
                true,
                vec![0.5, 12.0, 3.333333333],
                CallLog {
                    attempts: vec!["UpdateItem"],
                    read_units: 0.0,
                    write_units: 1.0,
                    call_ms: vec![],
                },
            ),
            (
                None,
                false,
                false,
                (0..150).map(f64::from).collect(),
                CallLog::default(),
            ),
        ] {
            records.push(RequestRecord {
                function: "create_payment",
                status: StatusCode::CREATED,
                outcome: "created",
                latency: Duration::from_micros(12_345),
                metrics: RequestMetrics {
                    calls: CallLog {
                        attempts: vec!["GetItem", "PutItem", "PutItem"],
                        read_units: 1.0,
                        write_units: 2.5,
                        call_ms: calls,
                    },
                    outside,
                },
                auth_refusal,
                rate_limited,
                cold_start,
                timestamp_ms: 1_796_000_000_123,
            });
        }
        for record in &records {
            let fast: Value = serde_json::from_str(&emf_line(record)).unwrap();
            let reference: Value = serde_json::from_str(&reference_emf_line(record)).unwrap();
            assert_eq!(fast, reference);
            assert!(check_emf(&emf_line(record)).is_ok());
        }
    }

    /// Checks one line against the EMF specification's rules.
    pub(crate) fn check_emf(line: &str) -> Result<Value, String> {
        let doc: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
        let root = doc.as_object().ok_or("root is not an object")?;
        let aws = root["_aws"].as_object().ok_or("no _aws object")?;
        aws.get("Timestamp")
            .and_then(Value::as_u64)
            .ok_or("Timestamp is not integer milliseconds")?;
        let directives = aws["CloudWatchMetrics"]
            .as_array()
            .ok_or("CloudWatchMetrics is not an array")?;
        const UNITS: &[&str] = &["Count", "Milliseconds", "Seconds", "None", "Percent"];
        for d in directives {
            let ns = d["Namespace"].as_str().ok_or("no Namespace")?;
            if ns.is_empty() || ns.len() > 255 {
                return Err(format!("namespace length {}", ns.len()));
            }
            let sets = d["Dimensions"]
                .as_array()
                .ok_or("Dimensions not an array")?;
            if sets.is_empty() {
                return Err("no dimension set".into());
            }
            for set in sets {
                let keys = set.as_array().ok_or("dimension set not an array")?;
                if keys.len() > 30 {
                    return Err("more than 30 dimensions".into());
                }
                for key in keys {
                    let key = key.as_str().ok_or("dimension key not a string")?;
                    let value = root
                        .get(key)
                        .and_then(Value::as_str)
                        .ok_or(format!("dimension {key} has no string value"))?;
                    if value.is_empty() || value.len() > 1024 {
                        return Err(format!("dimension {key} value length"));
                    }
                }
            }
            let metrics = d["Metrics"].as_array().ok_or("Metrics not an array")?;
            if metrics.is_empty() || metrics.len() > 100 {
                return Err("0 or more than 100 metrics".into());
            }
            for m in metrics {
                let name = m["Name"].as_str().ok_or("metric without a name")?;
                if !UNITS.contains(&m["Unit"].as_str().unwrap_or("None")) {
                    return Err(format!("{name}: unit {}", m["Unit"]));
                }
                match root.get(name) {
                    Some(Value::Number(_)) => {}
                    Some(Value::Array(values))
                        if !values.is_empty()
                            && values.len() <= 100
                            && values.iter().all(Value::is_number) => {}
                    other => return Err(format!("metric {name} has value {other:?}")),
                }
            }
        }
        Ok(doc)
    }

    fn record(status: u16, outcome: &str) -> RequestRecord<'_> {
        RequestRecord {
            function: "create_payment",
            status: StatusCode::from_u16(status).unwrap(),
            outcome,
            latency: Duration::from_micros(3_250),
            metrics: RequestMetrics {
                calls: CallLog {
                    attempts: vec!["GetItem", "PutItem", "PutItem"],
                    read_units: 1.0,
                    write_units: 2.0,
                    call_ms: vec![1.5, 2.25],
                },
                outside: CallLog::default(),
            },
            auth_refusal: None,
            rate_limited: false,
            cold_start: false,
            timestamp_ms: 1_796_083_200_000,
        }
    }

    #[test]
    fn a_request_is_one_valid_emf_document() {
        let doc = check_emf(&emf_line(&record(201, "created"))).unwrap();
        assert_eq!(doc["Function"], "create_payment");
        assert_eq!(doc["StatusClass"], "2xx");
        assert_eq!(doc["Outcome"], "created");
        assert_eq!(doc["Requests"], 1);
        assert_eq!(doc["Latency"], 3.25);
        assert_eq!(doc["DynamoDbCallLatency"], json!([1.5, 2.25]));
        assert_eq!(doc["DynamoDbCalls"], 2);
        assert_eq!(
            doc["DynamoDbAttempts"], 3,
            "a retried PutItem is two attempts"
        );
        assert_eq!(
            doc["DynamoDbOperations"],
            json!(["GetItem", "PutItem", "PutItem"])
        );
        assert_eq!(doc["DynamoDbReadUnits"], 1.0);
        assert_eq!(doc["DynamoDbWriteUnits"], 2.0);
        assert!(
            doc.get("OutsideRequests").is_none(),
            "nothing outside: no property"
        );
        assert!(doc.get("ColdStart").is_none() && doc.get("AuthRefusals").is_none());
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "PaymentsApi"
        );
    }

    #[test]
    fn a_rate_limited_request_is_counted_by_function_and_in_total() {
        let mut r = record(429, "rate_limited");
        r.rate_limited = true;
        let doc = check_emf(&emf_line(&r)).unwrap();
        assert_eq!(doc["RateLimited"], 1);
        let directives = doc["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        let limited = directives
            .iter()
            .find(|d| d["Metrics"][0]["Name"] == "RateLimited")
            .expect("a RateLimited directive");
        assert_eq!(limited["Dimensions"], json!([["Function"], []]));
        let plain = check_emf(&emf_line(&record(201, "created"))).unwrap();
        assert!(plain.get("RateLimited").is_none());
    }

    #[test]
    fn an_outcome_is_named_apart_from_every_error_code_and_refusal_reason() {
        let taken: Vec<&str> = crate::http::ApiError::catalogue()
            .iter()
            .map(|kind| kind.code)
            .chain(AuthFailure::ALL.iter().map(|reason| reason.as_str()))
            .collect();
        for outcome in Outcome::ALL {
            assert!(!taken.contains(&outcome.as_str()), "{outcome}");
        }
    }

    #[test]
    fn refusals_cold_starts_and_calls_are_valid_too() {
        let expected = [
            "missing",
            "malformed",
            "wrong_environment",
            "bad_checksum",
            "unknown_key",
            "key_revoked",
            "key_expired",
            "account_inactive",
            "ip_not_allowed",
        ];
        assert_eq!(AuthFailure::ALL.len(), expected.len());
        for (&reason, label) in AuthFailure::ALL.iter().zip(expected) {
            let mut r = record(401, "invalid_api_key");
            r.auth_refusal = Some(reason);
            r.metrics.calls.call_ms.clear();
            r.cold_start = true;
            r.metrics.outside.attempts = vec!["GetItem"];
            r.metrics.outside.read_units = 0.5;
            let doc = check_emf(&emf_line(&r)).unwrap();
            assert_eq!(
                doc["OutsideRequests"],
                json!({"DynamoDbOperations": ["GetItem"], "ReadUnits": 0.5, "WriteUnits": 0.0})
            );
            assert_eq!(doc["Reason"], label);
            assert_eq!(doc["AuthRefusals"], 1);
            assert_eq!(doc["ColdStart"], 1);
            assert_eq!(doc["StatusClass"], "4xx");
            assert!(doc.get("DynamoDbCallLatency").is_none());
        }
        let mut many = record(503, "service_unavailable");
        many.metrics.calls.call_ms = vec![1.0; 150];
        many.metrics.calls.attempts = vec!["GetItem"; 150];
        many.metrics.outside.attempts = vec!["GetItem"; 150];
        let doc = check_emf(&emf_line(&many)).unwrap();
        assert_eq!(doc["DynamoDbCallLatency"].as_array().unwrap().len(), 100);
        assert_eq!(doc["DynamoDbCalls"], 150);
        assert_eq!(doc["DynamoDbAttempts"], 150);
        assert_eq!(doc["DynamoDbOperations"].as_array().unwrap().len(), 100);
        assert_eq!(
            doc["OutsideRequests"]["DynamoDbOperations"]
                .as_array()
                .unwrap()
                .len(),
            100
        );
        assert_eq!(doc["StatusClass"], "5xx");
    }

    #[test]
    fn the_checker_catches_what_the_specification_forbids() {
        let good = emf_line(&record(200, "ok"));
        let mut doc: Value = serde_json::from_str(&good).unwrap();
        doc.as_object_mut().unwrap().remove("Function");
        assert!(
            check_emf(&doc.to_string()).is_err(),
            "dimension without value"
        );
        let mut doc: Value = serde_json::from_str(&good).unwrap();
        doc["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = json!("Requests");
        assert!(check_emf(&doc.to_string()).is_err(), "unknown unit");
        let mut doc: Value = serde_json::from_str(&good).unwrap();
        doc["Latency"] = json!("fast");
        assert!(check_emf(&doc.to_string()).is_err(), "non-numeric value");
        let mut doc: Value = serde_json::from_str(&good).unwrap();
        doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] =
            json!([(0..31).map(|i| format!("d{i}")).collect::<Vec<_>>()]);
        assert!(check_emf(&doc.to_string()).is_err(), "31 dimensions");
    }

    #[tokio::test]
    async fn a_request_s_calls_are_recorded_in_its_own_scope() {
        let outside = OutsideCalls::default();
        let meter = Meter::new(outside.clone());
        let ((), metrics) = meter
            .measured(async {
                record_dynamodb_call(Duration::from_millis(2));
            })
            .await;
        assert_eq!(metrics.calls.call_ms, vec![2.0]);
        // What the environment's client spent outside a request goes with the next one.
        outside.take();
        crate::store::usage::record(&outside, |log| log.attempts.push("GetItem"));
        let ((), next) = meter.measured(async {}).await;
        assert!(next.calls.is_empty());
        assert_eq!(next.outside.attempts, vec!["GetItem"]);
        assert!(meter.take_cold_start());
        assert!(!meter.take_cold_start(), "once per environment");
        assert!(Meter::default().take_cold_start(), "each meter its own");
    }
}
