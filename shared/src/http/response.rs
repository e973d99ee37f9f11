//! Writing a response: the JSON rendering every response shares, and the one place a
//! handler's outcome becomes a response (and an error becomes a log line).

use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use std::future::Future;
use tracing::Instrument;

use super::error::ApiError;
use super::metrics::{self, Meter, Outcome};
use super::request::remember_request_id;
use crate::domain::RateLimit;

/// Every response carries the request id, as its error body does.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// On a payment's 201 that answers a retry with the same `Idempotency-Key`.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// The account's limit and its window, on every answer to a key that authenticated, in the
/// structured form of the IETF httpapi draft (`"account";q=100;w=1`).
pub const RATE_LIMIT_POLICY_HEADER: &str = "ratelimit-policy";

pub fn rate_limit_policy(limit: RateLimit) -> HeaderValue {
    HeaderValue::from_str(&format!("\"account\";q={};w=1", limit.per_second()))
        .expect("digits and punctuation")
}

/// Renders a JSON response. `no-store` because responses can carry a freshly minted key.
pub fn json_response<T: Serialize>(
    status: StatusCode,
    body: &T,
    request_id: &str,
) -> Response<Body> {
    let bytes = serde_json::to_vec(body).expect("response types always serialize");
    let mut response = Response::new(Body::Binary(bytes));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID_HEADER, value);
    }
    response
}

impl ApiError {
    /// The single mapping from an error to what the caller receives: the status, body and
    /// header its module decides, rendered as every response is.
    pub fn to_response(&self, request_id: &str) -> Response<Body> {
        let mut response = json_response(self.status(), &self.envelope(request_id), request_id);
        if let Some((name, value)) = self.header() {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

/// A successful outcome: status, JSON body, any extra headers, and what the metrics call it.
pub struct Reply<T> {
    pub status: StatusCode,
    pub body: T,
    pub headers: Vec<(&'static str, &'static str)>,
    /// The metrics' `Outcome`, when the status alone does not say it.
    pub outcome: Option<Outcome>,
}

impl<T> Reply<T> {
    pub fn ok(body: T) -> Self {
        Reply {
            status: StatusCode::OK,
            body,
            headers: Vec::new(),
            outcome: None,
        }
    }

    pub fn created(body: T) -> Self {
        Reply {
            status: StatusCode::CREATED,
            body,
            headers: Vec::new(),
            outcome: None,
        }
    }

    pub fn with_header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Names the outcome in the metrics: what an alarm on key changes watches.
    pub fn with_outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = Some(outcome);
        self
    }
}

/// Turns a handler's outcome into the response, logging errors once, here.
pub fn respond<T: Serialize>(
    outcome: Result<Reply<T>, ApiError>,
    request_id: &str,
) -> Response<Body> {
    match outcome {
        Ok(reply) => {
            let mut response = json_response(reply.status, &reply.body, request_id);
            for (name, value) in reply.headers {
                response
                    .headers_mut()
                    .insert(name, HeaderValue::from_static(value));
            }
            response
        }
        Err(err) => {
            let status = err.status();
            if status.is_server_error() {
                tracing::error!(status = status.as_u16(), code = err.code(), error = ?err, "request failed");
            } else {
                tracing::info!(status = status.as_u16(), code = err.code(), reason = %err, "request refused");
            }
            err.to_response(request_id)
        }
    }
}

/// Runs one request's handler inside a span carrying the request id (and, once the auth step
/// has run, the account id and key display prefix), renders its outcome, and writes its
/// metrics line.
pub async fn serve<T, F, Fut>(
    meter: &Meter,
    request: Request,
    operation: &'static str,
    handler: F,
) -> Response<Body>
where
    T: Serialize,
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Result<Reply<T>, ApiError>>,
{
    let mut request = request;
    let request_id = remember_request_id(&mut request);
    let span = tracing::info_span!(
        "request",
        operation,
        request_id = %request_id,
        account_id = tracing::field::Empty,
        key_prefix = tracing::field::Empty,
    );
    async move {
        let started = std::time::Instant::now();
        let (outcome, recorded) = meter.measured(handler(request)).await;
        let (status, label) = outcome_label(&outcome);
        let auth_refusal = match &outcome {
            Err(ApiError::Unauthenticated(reason)) => Some(*reason),
            _ => None,
        };
        let rate_limited = matches!(outcome, Err(ApiError::RateLimited { .. }));
        let response = respond(outcome, &request_id);
        metrics::emit(metrics::emf_line(&metrics::RequestRecord {
            function: operation,
            status,
            outcome: label,
            latency: started.elapsed(),
            metrics: recorded,
            auth_refusal,
            rate_limited,
            cold_start: meter.take_cold_start(),
            timestamp_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_millis() as u64),
        }));
        response
    }
    .instrument(span)
    .await
}

/// The status and the metrics' `Outcome` of a handler's outcome: the one the reply names,
/// else `created` or `replayed` for a 201 and `ok` for another success; the error code for
/// an error.
fn outcome_label<T>(outcome: &Result<Reply<T>, ApiError>) -> (StatusCode, &'static str) {
    let (status, label) = match outcome {
        Ok(Reply {
            status,
            outcome: Some(label),
            ..
        }) => (*status, *label),
        Ok(reply) if reply.status == StatusCode::CREATED => {
            let replayed = reply
                .headers
                .iter()
                .any(|(name, _)| *name == REPLAYED_HEADER);
            let label = if replayed {
                Outcome::Replayed
            } else {
                Outcome::Created
            };
            (reply.status, label)
        }
        Ok(reply) => (reply.status, Outcome::Ok),
        Err(err) => return (err.status(), err.code()),
    };
    (status, label.as_str())
}
