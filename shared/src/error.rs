//! The service's one error type and its one mapping to an HTTP response.
//!
//! Every failure a handler can meet becomes an [`ApiError`]. [`ApiError::to_response`] is
//! the only place that decides status codes and what a caller is told; internal detail
//! (SDK messages, table names, the reason a key was refused) stays in the `source()` chain,
//! which goes to the logs and never into a response body.

use std::fmt;

use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde::Serialize;

/// Why an API key did not authenticate. Logged, never shown to the caller: every variant
/// produces the same response so that a caller cannot probe which check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// Wrong length, characters outside the key alphabet, or more than one header value.
    Malformed,
    /// A well-formed key minted for another environment (a live key sent to a test stack).
    WrongEnvironment,
    /// The checksum does not match: a typo or a made-up key, refused before any database call.
    BadChecksum,
    /// No key with this digest exists.
    UnknownKey,
    /// The key exists but was revoked.
    KeyInactive,
    /// The key is past its `expires_at` (for example the end of a rotation grace period).
    KeyExpired,
    /// The key's account is not active.
    AccountInactive,
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthFailure::Malformed => "malformed key",
            AuthFailure::WrongEnvironment => "key belongs to another environment",
            AuthFailure::BadChecksum => "checksum mismatch",
            AuthFailure::UnknownKey => "unknown key",
            AuthFailure::KeyInactive => "key is not active",
            AuthFailure::KeyExpired => "key has expired",
            AuthFailure::AccountInactive => "account is not active",
        })
    }
}

/// What is wrong with a request that failed validation. `code` is machine-readable;
/// `message` is written for the developer calling the API and never contains internals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRequest {
    pub code: &'static str,
    pub param: Option<String>,
    pub message: String,
}

impl InvalidRequest {
    pub fn new(code: &'static str, param: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            code,
            param: param.map(str::to_owned),
            message: message.into(),
        }
    }

    /// A field that is present and well-typed but holds a value the API does not accept.
    pub fn invalid_param(param: &str, message: impl Into<String>) -> Self {
        Self::new("parameter_invalid", Some(param), message)
    }
}

#[derive(thiserror::Error)]
pub enum ApiError {
    #[error("no API key was presented")]
    MissingApiKey,
    #[error("the API key did not authenticate: {0}")]
    InvalidApiKey(AuthFailure),
    #[error("invalid request ({}): {}", .0.code, .0.message)]
    InvalidRequest(InvalidRequest),
    #[error("the request body is not JSON by its content type")]
    UnsupportedMediaType,
    #[error("the request body exceeds {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("method not allowed")]
    MethodNotAllowed,
    /// An account or key named by an operator (or a future endpoint) does not exist.
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    /// Another change to the same account won the race; nothing was written. Retry.
    #[error("concurrent change to {what} {id}")]
    Conflict { what: &'static str, id: String },
    /// The account already used this idempotency key for a different request.
    #[error("idempotency key reused with a different request")]
    IdempotencyKeyReused,
    /// A dependency failed in a way that a retry may fix (timeouts, throttling, 5xx).
    #[error("a dependency is temporarily unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("an unexpected error occurred")]
    Unexpected(#[source] anyhow::Error),
}

impl From<InvalidRequest> for ApiError {
    fn from(value: InvalidRequest) -> Self {
        ApiError::InvalidRequest(value)
    }
}

// Debug prints the whole `source()` chain so that a log line carries the root cause.
impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")?;
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            write!(f, "\n  caused by: {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    code: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    param: Option<&'a str>,
    request_id: &'a str,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MissingApiKey | ApiError::InvalidApiKey(_) => StatusCode::UNAUTHORIZED,
            ApiError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable `code` of the error body.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MissingApiKey => "missing_api_key",
            ApiError::InvalidApiKey(_) => "invalid_api_key",
            ApiError::InvalidRequest(invalid) => invalid.code,
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::IdempotencyKeyReused => "idempotency_key_reused",
            ApiError::NotFound { .. } => "resource_missing",
            ApiError::Conflict { .. } => "concurrent_modification",
            ApiError::Unavailable(_) => "service_unavailable",
            ApiError::Unexpected(_) => "internal_error",
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            ApiError::MissingApiKey | ApiError::InvalidApiKey(_) => "authentication_error",
            ApiError::InvalidRequest(_)
            | ApiError::UnsupportedMediaType
            | ApiError::PayloadTooLarge { .. }
            | ApiError::MethodNotAllowed
            | ApiError::NotFound { .. }
            | ApiError::Conflict { .. } => "invalid_request_error",
            ApiError::IdempotencyKeyReused => "idempotency_error",
            ApiError::Unavailable(_) | ApiError::Unexpected(_) => "api_error",
        }
    }

    fn public_message(&self) -> String {
        match self {
            ApiError::MissingApiKey => {
                "No API key provided. Send your API key in the x-api-key header.".into()
            }
            ApiError::InvalidApiKey(_) => "Invalid API key provided.".into(),
            ApiError::InvalidRequest(invalid) => invalid.message.clone(),
            ApiError::UnsupportedMediaType => {
                "Request bodies must be JSON, sent with content-type: application/json.".into()
            }
            ApiError::PayloadTooLarge { limit } => {
                format!("The request body must not exceed {limit} bytes.")
            }
            ApiError::MethodNotAllowed => "This endpoint only accepts POST.".into(),
            ApiError::NotFound { what, id } => format!("No such {what}: {id}"),
            ApiError::Conflict { .. } => {
                "The resource was changed by another request at the same time. Retry.".into()
            }
            ApiError::IdempotencyKeyReused => "This Idempotency-Key was already used with a \
                different request. Use a new key for a new payment."
                .into(),
            ApiError::Unavailable(_) => {
                "The service is temporarily unavailable. Retry the request.".into()
            }
            ApiError::Unexpected(_) => "An unexpected error occurred.".into(),
        }
    }

    /// The single mapping from an error to what the caller receives.
    pub fn to_response(&self, request_id: &str) -> Response<Body> {
        let message = self.public_message();
        let param = match self {
            ApiError::InvalidRequest(invalid) => invalid.param.as_deref(),
            ApiError::IdempotencyKeyReused => Some("Idempotency-Key"),
            _ => None,
        };
        let envelope = ErrorEnvelope {
            error: ErrorBody {
                kind: self.kind(),
                code: self.code(),
                message: &message,
                param,
                request_id,
            },
        };
        let mut response = crate::http::json_response(self.status(), &envelope, request_id);
        let headers = response.headers_mut();
        match self {
            ApiError::MethodNotAllowed => {
                headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
            }
            ApiError::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_json(response: &Response<Body>) -> serde_json::Value {
        serde_json::from_slice(response.body().as_ref()).unwrap()
    }

    #[test]
    fn internal_errors_are_not_echoed() {
        let err = ApiError::Unexpected(anyhow::anyhow!("table secret-clients-table exploded"));
        let response = err.to_response("req_1");
        assert_eq!(response.status(), 500);
        let text = String::from_utf8(response.body().to_vec()).unwrap();
        assert!(!text.contains("secret-clients-table"), "{text}");
        assert!(format!("{err:?}").contains("secret-clients-table"));
    }

    #[test]
    fn unavailable_is_retryable_503() {
        let response = ApiError::Unavailable(anyhow::anyhow!("timeout")).to_response("r");
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert_eq!(body_json(&response)["error"]["code"], "service_unavailable");
    }

    #[test]
    fn every_auth_failure_renders_identically() {
        let failures = [
            AuthFailure::Malformed,
            AuthFailure::WrongEnvironment,
            AuthFailure::BadChecksum,
            AuthFailure::UnknownKey,
            AuthFailure::KeyInactive,
            AuthFailure::KeyExpired,
            AuthFailure::AccountInactive,
        ];
        let first = ApiError::InvalidApiKey(failures[0]).to_response("same");
        for failure in failures {
            let response = ApiError::InvalidApiKey(failure).to_response("same");
            assert_eq!(response.status(), first.status());
            assert_eq!(response.body().as_ref(), first.body().as_ref());
            assert_eq!(response.headers(), first.headers());
        }
    }

    #[test]
    fn error_body_has_the_documented_shape() {
        let err = ApiError::from(InvalidRequest::invalid_param("amount", "too big"));
        let response = err.to_response("req_42");
        assert_eq!(response.status(), 400);
        assert_eq!(response.headers()["x-request-id"], "req_42");
        assert_eq!(
            body_json(&response),
            serde_json::json!({"error": {
                "type": "invalid_request_error",
                "code": "parameter_invalid",
                "message": "too big",
                "param": "amount",
                "request_id": "req_42",
            }})
        );
    }
}
