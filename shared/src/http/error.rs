//! The service's one error type and what a caller is told of each error.
//!
//! Every failure a handler can meet becomes an [`ApiError`], converted from the domain's and
//! the store's own errors here. This module decides the status, the JSON error body and the
//! headers of each error ([`ApiError::envelope`], [`ApiError::header`]);
//! `ApiError::to_response` (in `response.rs`) only renders them. Internal detail (SDK
//! messages, table names, the reason a key was refused) stays in the `source()` chain, which
//! goes to the logs and never into a response body.

use std::fmt;
use std::time::Duration;

use lambda_http::http::{header, HeaderName, HeaderValue, StatusCode};
use serde::Serialize;

use super::body::{BodyError, InvalidRequest, InvalidRequestCode, MAX_BODY_BYTES};
use crate::domain::{
    AuthFailure, IdempotencyKey, KeyState, PaymentId, Permission, RandomSourceFailed, RateLimit,
};
use crate::store::lifecycle::{AdminError, Refusal, MIN_SELF_ROLL_GRACE};
use crate::store::StoreError;

#[derive(thiserror::Error)]
#[cfg_attr(test, derive(strum::EnumCount))]
pub enum ApiError {
    /// The key is missing or does not authenticate. The reason goes to the log and the
    /// metrics; the caller sees only whether a key was sent at all.
    #[error("the request did not authenticate: {0}")]
    Unauthenticated(AuthFailure),
    #[error("invalid request ({}): {}", .0.code.as_str(), .0.message)]
    InvalidRequest(InvalidRequest),
    #[error("the request body is not JSON by its content type")]
    UnsupportedMediaType,
    #[error("the request body exceeds {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The key authenticated, but does not hold what the request needs: the route's
    /// permission, or (creating, rolling or revoking a key) what that other key holds.
    #[error("the key lacks the {0} permission")]
    MissingPermission(Permission),
    /// The key is limited to IP ranges, and the key it would create, roll or revoke may be
    /// used from beyond them.
    #[error("the other key's IP ranges do not lie within the key's own")]
    IpRangesNotWithin,
    /// The key has an end, and the key it would create would work past it.
    #[error("the new key would outlive the key creating it")]
    OutlivesKey,
    /// A restricted key would roll or revoke a secret key: whatever permissions it holds,
    /// power only flows down.
    #[error("a restricted key would manage a secret key")]
    SecretKeyOutOfReach,
    /// No key of the caller's account has this id: it does not exist, is another account's,
    /// or the id is malformed; one answer for all three, as for payments.
    #[error("no such key of this account")]
    KeyNotFound,
    /// The key is being replaced (in a roll's or rotation's grace), expired or revoked: it
    /// cannot be rolled.
    #[error("the key is {0}, not active")]
    KeyNotActive(KeyState),
    /// The request would leave the account without an active key that can manage keys.
    #[error("the change would lock the account out of its keys")]
    WouldLockOut,
    /// The account would have more keys working at once than it may.
    #[error("the account would have more than {max} live keys")]
    TooManyLiveKeys { max: usize },
    /// A key change was sent but its outcome never came back: it may have been applied.
    #[error("the key change may or may not have happened")]
    KeyChangeOutcomeUnknown(#[source] anyhow::Error),
    /// The route takes only `allow` (a function invoked for another method).
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    /// No payment of the caller's account has this id: it does not exist, is another
    /// account's, or the id is malformed. One answer for all three, so that a caller learns
    /// nothing about other accounts' payments. `param` names where the id was sent.
    #[error("no such payment of this account ({param})")]
    PaymentNotFound { param: &'static str },
    /// The account already used this idempotency key for a different request.
    #[error("idempotency key reused with a different request")]
    IdempotencyKeyReused,
    /// The account is over its request rate limit: the request was not processed (nothing
    /// was read past the key, nothing written), and the same request is safe to send again
    /// after `retry_after`.
    #[error("the account is over its rate limit of {limit}")]
    RateLimited {
        limit: RateLimit,
        retry_after: Duration,
    },
    /// A dependency failed before anything was written; a retry is safe and may succeed.
    #[error("a dependency is temporarily unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// The payment's write was sent but its outcome never came back: the payment may exist.
    /// The same request with the same Idempotency-Key is a safe retry: the client's own key,
    /// or (`retry_key`) the one the service drew for a request sent without one.
    #[error("the write of payment {payment_id} may or may not have happened")]
    PaymentOutcomeUnknown {
        payment_id: PaymentId,
        retry_key: Option<IdempotencyKey>,
        #[source]
        source: anyhow::Error,
    },
    #[error("an unexpected error occurred")]
    Unexpected(#[source] anyhow::Error),
}

impl From<InvalidRequest> for ApiError {
    fn from(value: InvalidRequest) -> Self {
        ApiError::InvalidRequest(value)
    }
}

impl From<BodyError> for ApiError {
    fn from(value: BodyError) -> Self {
        match value {
            BodyError::UnsupportedMediaType => ApiError::UnsupportedMediaType,
            BodyError::TooLarge { limit } => ApiError::PayloadTooLarge { limit },
            BodyError::Invalid(invalid) => ApiError::InvalidRequest(invalid),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_)
            | StoreError::OutcomeUnknown(_)
            | StoreError::Throttled(_)
            | StoreError::ChangedConcurrently { .. } => ApiError::Unavailable(err.into()),
            StoreError::ConditionFailed { .. }
            | StoreError::NotFound { .. }
            | StoreError::Corrupt { .. }
            | StoreError::TooManyItems { .. }
            | StoreError::Unexpected(_) => ApiError::Unexpected(err.into()),
        }
    }
}

/// A key change refused or failed. A write whose outcome is unknown says so: retrying a key
/// change blindly could make a second key, so the client is told to look first.
impl From<AdminError> for ApiError {
    fn from(err: AdminError) -> Self {
        match err {
            AdminError::Refused(refusal) => match refusal {
                Refusal::KeyNotFound => ApiError::KeyNotFound,
                Refusal::KeyNotActive { state } => ApiError::KeyNotActive(state),
                Refusal::WouldLockOut => ApiError::WouldLockOut,
                Refusal::MissingPermission(permission) => ApiError::MissingPermission(permission),
                Refusal::IpRangesNotWithin => ApiError::IpRangesNotWithin,
                // A restricted key's keys:write reaches restricted keys only: for a secret
                // key, it is the permission it lacks.
                Refusal::SecretKeyOutOfReach => ApiError::SecretKeyOutOfReach,
                Refusal::OutlivesActingKey { .. } => ApiError::OutlivesKey,
                Refusal::SelfRollTooSoon => {
                    ApiError::InvalidRequest(InvalidRequest::invalid_param(
                        "expires_in",
                        format!(
                            "A key rolling itself must keep working at least {} seconds \
                         (expires_in), so its client can still act if the answer is lost.",
                            MIN_SELF_ROLL_GRACE.as_secs()
                        ),
                    ))
                }
                Refusal::TooManyLiveKeys { max, .. } => ApiError::TooManyLiveKeys { max },
                // The edge mints keys of its own environment; a mismatch is a bug.
                Refusal::EnvironmentMismatch { .. } => {
                    ApiError::Unexpected(anyhow::Error::new(refusal))
                }
            },
            AdminError::Store(StoreError::OutcomeUnknown(source)) => {
                ApiError::KeyChangeOutcomeUnknown(source)
            }
            AdminError::Store(store) => store.into(),
            AdminError::Random(random) => random.into(),
        }
    }
}

impl From<RandomSourceFailed> for ApiError {
    fn from(err: RandomSourceFailed) -> Self {
        ApiError::Unexpected(err.into())
    }
}

/// `Retry-After` is whole seconds: a wait rounded up, and never 0 (which some clients read
/// as "retry at once").
fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_millis().div_ceil(1000).max(1) as u64
}

// Debug prints the whole `source()` chain so that a log line carries the root cause.
impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::store::error::write_chain(self, f)
    }
}

string_enum!(
    /// The `type` of an error body: which family of error it is.
    ErrorType {
        AuthenticationError = "authentication_error",
        PermissionError = "permission_error",
        InvalidRequestError = "invalid_request_error",
        IdempotencyError = "idempotency_error",
        RateLimitError = "rate_limit_error",
        ApiError = "api_error",
    }
);

string_enum!(
    /// The `code` of an error body, beside the request checks' own ([`InvalidRequestCode`]).
    ErrorCode {
        MissingApiKey = "missing_api_key",
        InvalidApiKey = "invalid_api_key",
        UnsupportedMediaType = "unsupported_media_type",
        PayloadTooLarge = "payload_too_large",
        MethodNotAllowed = "method_not_allowed",
        InsufficientPermissions = "insufficient_permissions",
        ResourceMissing = "resource_missing",
        KeyNotActive = "key_not_active",
        WouldLockOut = "would_lock_out",
        TooManyLiveKeys = "too_many_live_keys",
        OutcomeUnknown = "outcome_unknown",
        IdempotencyKeyReused = "idempotency_key_reused",
        RateLimited = "rate_limited",
        ServiceUnavailable = "service_unavailable",
        PaymentOutcomeUnknown = "payment_outcome_unknown",
        InternalError = "internal_error",
    }
);

/// The JSON body of every error answer: `{"error": {...}}`.
#[derive(Serialize)]
pub struct ErrorEnvelope<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type")]
    kind: ErrorType,
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    param: Option<&'a str>,
    /// The payment a failed request may have created, for the client to look up.
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_id: Option<&'a str>,
    /// The key that retries it safely, when the request came without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    idempotency_key: Option<&'a str>,
    request_id: &'a str,
}

/// One documented error response: what `docs/openapi.yaml` must list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorKind {
    pub status: u16,
    #[serde(rename = "type")]
    pub kind: ErrorType,
    pub code: &'static str,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::MissingPermission(_)
            | ApiError::IpRangesNotWithin
            | ApiError::OutlivesKey
            | ApiError::SecretKeyOutOfReach => StatusCode::FORBIDDEN,
            ApiError::PaymentNotFound { .. } | ApiError::KeyNotFound => StatusCode::NOT_FOUND,
            ApiError::KeyNotActive(_)
            | ApiError::WouldLockOut
            | ApiError::TooManyLiveKeys { .. } => StatusCode::CONFLICT,
            ApiError::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_)
            | ApiError::PaymentOutcomeUnknown { .. }
            | ApiError::KeyChangeOutcomeUnknown(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable `code` of the error body: the request check's own for an
    /// invalid request, else the edge's [`ErrorCode`].
    pub fn code(&self) -> &'static str {
        let code = match self {
            ApiError::InvalidRequest(invalid) => return invalid.code.as_str(),
            ApiError::Unauthenticated(AuthFailure::Missing) => ErrorCode::MissingApiKey,
            ApiError::Unauthenticated(_) => ErrorCode::InvalidApiKey,
            ApiError::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            ApiError::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            ApiError::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            ApiError::MissingPermission(_)
            | ApiError::IpRangesNotWithin
            | ApiError::OutlivesKey
            | ApiError::SecretKeyOutOfReach => ErrorCode::InsufficientPermissions,
            ApiError::PaymentNotFound { .. } | ApiError::KeyNotFound => ErrorCode::ResourceMissing,
            ApiError::KeyNotActive(_) => ErrorCode::KeyNotActive,
            ApiError::WouldLockOut => ErrorCode::WouldLockOut,
            ApiError::TooManyLiveKeys { .. } => ErrorCode::TooManyLiveKeys,
            ApiError::KeyChangeOutcomeUnknown(_) => ErrorCode::OutcomeUnknown,
            ApiError::IdempotencyKeyReused => ErrorCode::IdempotencyKeyReused,
            ApiError::RateLimited { .. } => ErrorCode::RateLimited,
            ApiError::Unavailable(_) => ErrorCode::ServiceUnavailable,
            ApiError::PaymentOutcomeUnknown { .. } => ErrorCode::PaymentOutcomeUnknown,
            ApiError::Unexpected(_) => ErrorCode::InternalError,
        };
        code.as_str()
    }

    fn kind(&self) -> ErrorType {
        match self {
            ApiError::Unauthenticated(_) => ErrorType::AuthenticationError,
            ApiError::MissingPermission(_)
            | ApiError::IpRangesNotWithin
            | ApiError::OutlivesKey
            | ApiError::SecretKeyOutOfReach => ErrorType::PermissionError,
            ApiError::InvalidRequest(_)
            | ApiError::UnsupportedMediaType
            | ApiError::PayloadTooLarge { .. }
            | ApiError::MethodNotAllowed { .. }
            | ApiError::PaymentNotFound { .. }
            | ApiError::KeyNotFound
            | ApiError::KeyNotActive(_)
            | ApiError::WouldLockOut
            | ApiError::TooManyLiveKeys { .. } => ErrorType::InvalidRequestError,
            ApiError::IdempotencyKeyReused => ErrorType::IdempotencyError,
            ApiError::RateLimited { .. } => ErrorType::RateLimitError,
            ApiError::Unavailable(_)
            | ApiError::PaymentOutcomeUnknown { .. }
            | ApiError::KeyChangeOutcomeUnknown(_)
            | ApiError::Unexpected(_) => ErrorType::ApiError,
        }
    }

    fn public_message(&self) -> String {
        match self {
            ApiError::Unauthenticated(AuthFailure::Missing) => {
                "No API key provided. Send your API key in the x-api-key header.".into()
            }
            ApiError::Unauthenticated(_) => "Invalid API key provided.".into(),
            ApiError::InvalidRequest(invalid) => invalid.message.clone(),
            ApiError::UnsupportedMediaType => {
                "Request bodies must be JSON, sent with content-type: application/json.".into()
            }
            ApiError::PayloadTooLarge { limit } => {
                format!("The request body must not exceed {limit} bytes.")
            }
            ApiError::MethodNotAllowed { allow } => format!("This endpoint only accepts {allow}."),
            ApiError::MissingPermission(permission) => {
                format!("This key does not have the {permission} permission.")
            }
            ApiError::IpRangesNotWithin => "This key is limited to IP ranges: the key it creates \
                or manages must be limited to ranges within them."
                .into(),
            ApiError::SecretKeyOutOfReach => "A restricted key cannot roll or revoke a secret \
                key, whatever permissions it holds: use a secret key."
                .into(),
            ApiError::OutlivesKey => "This key has an expires_at: the key it creates must \
                have one too, no later than its own."
                .into(),
            ApiError::KeyNotFound => "No such key.".into(),
            ApiError::KeyNotActive(state) => format!(
                "This key is {state} and cannot be rolled: only an active key (one that works, \
                 with no expires_at ahead) can be. Create a new key instead, or roll the key \
                 that is replacing this one."
            ),
            ApiError::WouldLockOut => "This is the account's last active key with the \
                keys:write permission: revoking it would leave no key that can manage keys. \
                Roll it instead, or create another such key first."
                .into(),
            ApiError::TooManyLiveKeys { max } => format!(
                "The account would have more than {max} keys working at once. Revoke a key \
                 first, or roll with a shorter expires_in."
            ),
            ApiError::KeyChangeOutcomeUnknown(_) => "The change may or may not have been \
                applied. GET /keys shows whether it was: look before you send it again."
                .into(),
            // Never the id: the body must be the same whatever was asked for.
            ApiError::PaymentNotFound { .. } => "No such payment.".into(),
            ApiError::IdempotencyKeyReused => "This Idempotency-Key was already used with a \
                different request. Use a new key for a new payment."
                .into(),
            ApiError::RateLimited { limit, retry_after } => {
                let seconds = retry_after_seconds(*retry_after);
                format!(
                    "Too many requests: this account may make {} requests per second. The \
                     request was not processed; send it again after {seconds} second{}.",
                    limit.per_second(),
                    if seconds == 1 { "" } else { "s" }
                )
            }
            ApiError::Unavailable(_) => {
                "The service is temporarily unavailable. Retry the request.".into()
            }
            ApiError::PaymentOutcomeUnknown {
                payment_id,
                retry_key: None,
                ..
            } => format!(
                "The payment {payment_id} may or may not have been recorded. Retry with the same \
                 Idempotency-Key: it cannot create a second payment."
            ),
            ApiError::PaymentOutcomeUnknown {
                payment_id,
                retry_key: Some(key),
                ..
            } => format!(
                "The payment {payment_id} may or may not have been recorded. Send the same \
                 request again with the header Idempotency-Key: {key}: it cannot create a \
                 second payment. A retry without that key can.",
                key = key.as_str()
            ),
            ApiError::Unexpected(_) => "An unexpected error occurred.".into(),
        }
    }

    fn param(&self) -> Option<&str> {
        match self {
            ApiError::InvalidRequest(invalid) => invalid.param.as_deref(),
            ApiError::IdempotencyKeyReused => Some("Idempotency-Key"),
            ApiError::PaymentNotFound { param } => Some(param),
            ApiError::KeyNotFound => Some("id"),
            ApiError::IpRangesNotWithin => Some("allowed_ips"),
            ApiError::OutlivesKey => Some("expires_at"),
            ApiError::SecretKeyOutOfReach => Some("id"),
            ApiError::MissingPermission(_)
            | ApiError::KeyNotActive(_)
            | ApiError::WouldLockOut
            | ApiError::TooManyLiveKeys { .. }
            | ApiError::KeyChangeOutcomeUnknown(_)
            | ApiError::Unauthenticated(_)
            | ApiError::UnsupportedMediaType
            | ApiError::PayloadTooLarge { .. }
            | ApiError::MethodNotAllowed { .. }
            | ApiError::RateLimited { .. }
            | ApiError::Unavailable(_)
            | ApiError::PaymentOutcomeUnknown { .. }
            | ApiError::Unexpected(_) => None,
        }
    }

    /// The error body the caller receives.
    pub fn envelope<'a>(&'a self, request_id: &'a str) -> ErrorEnvelope<'a> {
        let (payment_id, idempotency_key) = match self {
            ApiError::PaymentOutcomeUnknown {
                payment_id,
                retry_key,
                ..
            } => (
                Some(payment_id.as_str()),
                retry_key.as_ref().map(IdempotencyKey::as_str),
            ),
            _ => (None, None),
        };
        ErrorEnvelope {
            error: ErrorBody {
                kind: self.kind(),
                code: self.code(),
                message: self.public_message(),
                param: self.param(),
                payment_id,
                idempotency_key,
                request_id,
            },
        }
    }

    /// The header the answer carries besides the ones every answer has: the method a route
    /// takes, or when to retry.
    pub fn header(&self) -> Option<(HeaderName, HeaderValue)> {
        match self {
            ApiError::MethodNotAllowed { allow } => {
                Some((header::ALLOW, HeaderValue::from_static(allow)))
            }
            ApiError::Unavailable(_) | ApiError::PaymentOutcomeUnknown { .. } => {
                Some((header::RETRY_AFTER, HeaderValue::from_static("1")))
            }
            ApiError::RateLimited { retry_after, .. } => Some((
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_seconds(*retry_after)),
            )),
            ApiError::Unauthenticated(_)
            | ApiError::InvalidRequest(_)
            | ApiError::UnsupportedMediaType
            | ApiError::PayloadTooLarge { .. }
            | ApiError::IdempotencyKeyReused
            | ApiError::PaymentNotFound { .. }
            | ApiError::MissingPermission(_)
            | ApiError::IpRangesNotWithin
            | ApiError::OutlivesKey
            | ApiError::SecretKeyOutOfReach
            | ApiError::KeyNotFound
            | ApiError::KeyNotActive(_)
            | ApiError::WouldLockOut
            | ApiError::TooManyLiveKeys { .. }
            // Not a retry to make blindly: the client looks first (`GET /keys`).
            | ApiError::KeyChangeOutcomeUnknown(_)
            | ApiError::Unexpected(_) => None,
        }
    }

    /// A change that is the same whether it is made once or twice (revoking a key) and whose
    /// outcome is unknown is simply retried: [`ApiError::Unavailable`]. Every other refusal
    /// or failure maps as `From<AdminError>` does.
    pub fn of_idempotent_change(err: AdminError) -> Self {
        match err {
            AdminError::Store(StoreError::OutcomeUnknown(source)) => ApiError::Unavailable(source),
            other => other.into(),
        }
    }

    /// One instance of every kind of error the API can answer with: each variant, and each
    /// validation code. `every_variant_is_listed` keeps this complete.
    pub fn examples() -> Vec<ApiError> {
        let mut all = vec![
            ApiError::Unauthenticated(AuthFailure::Missing),
            ApiError::Unauthenticated(AuthFailure::UnknownKey),
            ApiError::UnsupportedMediaType,
            ApiError::PayloadTooLarge {
                limit: MAX_BODY_BYTES,
            },
            ApiError::MethodNotAllowed { allow: "POST" },
            ApiError::MissingPermission(Permission::PaymentsWrite),
            ApiError::IpRangesNotWithin,
            ApiError::OutlivesKey,
            ApiError::SecretKeyOutOfReach,
            ApiError::PaymentNotFound { param: "id" },
            ApiError::KeyNotFound,
            ApiError::KeyNotActive(KeyState::Expiring),
            ApiError::WouldLockOut,
            ApiError::TooManyLiveKeys { max: 10 },
            ApiError::KeyChangeOutcomeUnknown(anyhow::anyhow!("example")),
            ApiError::IdempotencyKeyReused,
            ApiError::RateLimited {
                limit: RateLimit::DEFAULT,
                retry_after: Duration::from_millis(300),
            },
            ApiError::Unavailable(anyhow::anyhow!("example")),
            ApiError::PaymentOutcomeUnknown {
                payment_id: PaymentId::from_digest(&[0; 32]),
                retry_key: None,
                source: anyhow::anyhow!("example"),
            },
            ApiError::Unexpected(anyhow::anyhow!("example")),
        ];
        all.extend(
            InvalidRequestCode::ALL
                .iter()
                .map(|&code| ApiError::InvalidRequest(InvalidRequest::new(code, None, "example"))),
        );
        all
    }

    /// Every (status, type, code) the API can answer with.
    pub fn catalogue() -> Vec<ErrorKind> {
        let mut kinds: Vec<ErrorKind> = Self::examples()
            .iter()
            .map(|err| ErrorKind {
                status: err.status().as_u16(),
                kind: err.kind(),
                code: err.code(),
            })
            .collect();
        kinds.sort_by_key(|k| (k.status, k.code));
        kinds.dedup();
        kinds
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Entity;
    use lambda_http::{Body, Response};
    use serde_json::{json, Value};

    fn body_json(response: &Response<Body>) -> serde_json::Value {
        serde_json::from_slice(response.body().as_ref()).unwrap()
    }

    /// A number per variant. No wildcard: a new variant does not compile until it has one,
    /// and then `every_variant_is_listed` fails until `examples` lists it.
    fn variant(err: &ApiError) -> usize {
        match err {
            ApiError::Unauthenticated(_) => 0,
            ApiError::InvalidRequest(_) => 1,
            ApiError::UnsupportedMediaType => 2,
            ApiError::PayloadTooLarge { .. } => 3,
            ApiError::MethodNotAllowed { .. } => 4,
            ApiError::IdempotencyKeyReused => 5,
            ApiError::Unavailable(_) => 6,
            ApiError::PaymentOutcomeUnknown { .. } => 7,
            ApiError::Unexpected(_) => 8,
            ApiError::PaymentNotFound { .. } => 9,
            ApiError::RateLimited { .. } => 10,
            ApiError::MissingPermission(_) => 11,
            ApiError::IpRangesNotWithin => 12,
            ApiError::KeyNotFound => 13,
            ApiError::KeyNotActive(_) => 14,
            ApiError::WouldLockOut => 15,
            ApiError::TooManyLiveKeys { .. } => 16,
            ApiError::KeyChangeOutcomeUnknown(_) => 17,
            ApiError::OutlivesKey => 18,
            ApiError::SecretKeyOutOfReach => 19,
        }
    }

    #[test]
    fn every_code_is_answered_and_none_is_declared_twice() {
        use std::collections::BTreeSet;
        let answered: BTreeSet<&str> = ApiError::catalogue().iter().map(|k| k.code).collect();
        let declared: Vec<&str> = ErrorCode::ALL
            .iter()
            .map(|code| code.as_str())
            .chain(InvalidRequestCode::ALL.iter().map(|code| code.as_str()))
            .collect();
        assert_eq!(answered, declared.iter().copied().collect());
        assert_eq!(answered.len(), declared.len());
    }

    #[test]
    fn every_variant_is_listed() {
        use strum::EnumCount;
        let listed: std::collections::BTreeSet<usize> =
            ApiError::examples().iter().map(variant).collect();
        assert_eq!(listed, (0..ApiError::COUNT).collect());
    }

    /// The whole mapping, spelled out: status, type, code, param and headers of each error.
    #[test]
    fn every_error_maps_to_its_documented_response() {
        let expected: &[(u16, &str, &str)] = &[
            (400, "invalid_request_error", "invalid_json"),
            (400, "invalid_request_error", "parameter_duplicate"),
            (400, "invalid_request_error", "parameter_invalid"),
            (400, "invalid_request_error", "parameter_missing"),
            (400, "invalid_request_error", "parameter_unknown"),
            (401, "authentication_error", "invalid_api_key"),
            (401, "authentication_error", "missing_api_key"),
            (403, "permission_error", "insufficient_permissions"),
            (404, "invalid_request_error", "resource_missing"),
            (405, "invalid_request_error", "method_not_allowed"),
            (409, "invalid_request_error", "key_not_active"),
            (409, "invalid_request_error", "too_many_live_keys"),
            (409, "invalid_request_error", "would_lock_out"),
            (413, "invalid_request_error", "payload_too_large"),
            (415, "invalid_request_error", "unsupported_media_type"),
            (422, "idempotency_error", "idempotency_key_reused"),
            (429, "rate_limit_error", "rate_limited"),
            (500, "api_error", "internal_error"),
            (503, "api_error", "outcome_unknown"),
            (503, "api_error", "payment_outcome_unknown"),
            (503, "api_error", "service_unavailable"),
        ];
        let actual: Vec<(u16, &str, &str)> = ApiError::catalogue()
            .iter()
            .map(|k| (k.status, k.kind.as_str(), k.code))
            .collect();
        assert_eq!(actual, expected);
        // Each example's whole answer, written out: status, body and the headers beyond the
        // ones every answer has.
        type Header = Option<(&'static str, &'static str)>;
        let answers: Vec<(u16, Value, Header)> = vec![
            (
                401,
                json!({"type": "authentication_error", "code": "missing_api_key",
                       "message": "No API key provided. Send your API key in the x-api-key header."}),
                None,
            ),
            (
                401,
                json!({"type": "authentication_error", "code": "invalid_api_key",
                       "message": "Invalid API key provided."}),
                None,
            ),
            (
                415,
                json!({"type": "invalid_request_error", "code": "unsupported_media_type",
                       "message": "Request bodies must be JSON, sent with content-type: application/json."}),
                None,
            ),
            (
                413,
                json!({"type": "invalid_request_error", "code": "payload_too_large",
                       "message": "The request body must not exceed 16384 bytes."}),
                None,
            ),
            (
                405,
                json!({"type": "invalid_request_error", "code": "method_not_allowed",
                       "message": "This endpoint only accepts POST."}),
                Some(("allow", "POST")),
            ),
            (
                403,
                json!({"type": "permission_error", "code": "insufficient_permissions",
                       "message": "This key does not have the payments:write permission."}),
                None,
            ),
            (
                403,
                json!({"type": "permission_error", "code": "insufficient_permissions",
                       "message": "This key is limited to IP ranges: the key it creates or manages must be limited to ranges within them.",
                       "param": "allowed_ips"}),
                None,
            ),
            (
                403,
                json!({"type": "permission_error", "code": "insufficient_permissions",
                       "message": "This key has an expires_at: the key it creates must have one too, no later than its own.",
                       "param": "expires_at"}),
                None,
            ),
            (
                403,
                json!({"type": "permission_error", "code": "insufficient_permissions",
                       "message": "A restricted key cannot roll or revoke a secret key, whatever permissions it holds: use a secret key.",
                       "param": "id"}),
                None,
            ),
            (
                404,
                json!({"type": "invalid_request_error", "code": "resource_missing",
                       "message": "No such payment.", "param": "id"}),
                None,
            ),
            (
                404,
                json!({"type": "invalid_request_error", "code": "resource_missing",
                       "message": "No such key.", "param": "id"}),
                None,
            ),
            (
                409,
                json!({"type": "invalid_request_error", "code": "key_not_active",
                       "message": "This key is expiring and cannot be rolled: only an active key (one that works, with no expires_at ahead) can be. Create a new key instead, or roll the key that is replacing this one."}),
                None,
            ),
            (
                409,
                json!({"type": "invalid_request_error", "code": "would_lock_out",
                       "message": "This is the account's last active key with the keys:write permission: revoking it would leave no key that can manage keys. Roll it instead, or create another such key first."}),
                None,
            ),
            (
                409,
                json!({"type": "invalid_request_error", "code": "too_many_live_keys",
                       "message": "The account would have more than 10 keys working at once. Revoke a key first, or roll with a shorter expires_in."}),
                None,
            ),
            (
                503,
                json!({"type": "api_error", "code": "outcome_unknown",
                       "message": "The change may or may not have been applied. GET /keys shows whether it was: look before you send it again."}),
                None,
            ),
            (
                422,
                json!({"type": "idempotency_error", "code": "idempotency_key_reused",
                       "message": "This Idempotency-Key was already used with a different request. Use a new key for a new payment.",
                       "param": "Idempotency-Key"}),
                None,
            ),
            (
                429,
                json!({"type": "rate_limit_error", "code": "rate_limited",
                       "message": "Too many requests: this account may make 100 requests per second. The request was not processed; send it again after 1 second."}),
                Some(("retry-after", "1")),
            ),
            (
                503,
                json!({"type": "api_error", "code": "service_unavailable",
                       "message": "The service is temporarily unavailable. Retry the request."}),
                Some(("retry-after", "1")),
            ),
            (
                503,
                json!({"type": "api_error", "code": "payment_outcome_unknown",
                       "message": "The payment pay_00000000000000000000 may or may not have been recorded. Retry with the same Idempotency-Key: it cannot create a second payment.",
                       "payment_id": "pay_00000000000000000000"}),
                Some(("retry-after", "1")),
            ),
            (
                500,
                json!({"type": "api_error", "code": "internal_error",
                       "message": "An unexpected error occurred."}),
                None,
            ),
            (
                400,
                json!({"type": "invalid_request_error", "code": "invalid_json", "message": "example"}),
                None,
            ),
            (
                400,
                json!({"type": "invalid_request_error", "code": "parameter_missing", "message": "example"}),
                None,
            ),
            (
                400,
                json!({"type": "invalid_request_error", "code": "parameter_invalid", "message": "example"}),
                None,
            ),
            (
                400,
                json!({"type": "invalid_request_error", "code": "parameter_unknown", "message": "example"}),
                None,
            ),
            (
                400,
                json!({"type": "invalid_request_error", "code": "parameter_duplicate", "message": "example"}),
                None,
            ),
        ];
        let examples = ApiError::examples();
        assert_eq!(examples.len(), answers.len());
        for (err, (status, mut body, extra)) in examples.iter().zip(answers) {
            body["request_id"] = json!("req_1");
            let response = err.to_response("req_1");
            assert_eq!(response.status(), status, "{err:?}");
            assert_eq!(body_json(&response), json!({ "error": body }), "{err:?}");
            let mut headers: Vec<(String, String)> = response
                .headers()
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
                .collect();
            headers.sort();
            let mut expected = vec![
                ("cache-control".to_owned(), "no-store".to_owned()),
                ("content-type".to_owned(), "application/json".to_owned()),
                ("x-request-id".to_owned(), "req_1".to_owned()),
            ];
            expected.extend(extra.map(|(name, value)| (name.to_owned(), value.to_owned())));
            expected.sort();
            assert_eq!(headers, expected, "{err:?}");
        }
    }

    #[test]
    fn a_rate_limited_request_says_when_to_retry_in_whole_seconds() {
        for (wait_ms, seconds) in [(1, 1), (300, 1), (1000, 1), (1001, 2), (1600, 2)] {
            let response = ApiError::RateLimited {
                limit: RateLimit::new(5).unwrap(),
                retry_after: Duration::from_millis(wait_ms),
            }
            .to_response("r");
            assert_eq!(response.status(), 429);
            assert_eq!(response.headers()[header::RETRY_AFTER], seconds.to_string());
            let body = body_json(&response);
            assert_eq!(body["error"]["code"], "rate_limited");
            assert_eq!(body["error"]["type"], "rate_limit_error");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains("5 requests per second"), "{message}");
            assert!(
                message.contains(&format!("after {seconds} second")),
                "{message}"
            );
        }
    }

    #[test]
    fn an_unknown_outcome_without_a_key_names_the_key_that_retries_it() {
        let response = ApiError::PaymentOutcomeUnknown {
            payment_id: PaymentId::from_digest(&[1; 32]),
            retry_key: Some(IdempotencyKey::parse(b"retry_AAAAAAAAAAAAAAAAAAAA").unwrap()),
            source: anyhow::anyhow!("timeout"),
        }
        .to_response("r");
        let body = body_json(&response);
        assert_eq!(response.status(), 503);
        assert_eq!(
            body["error"]["idempotency_key"],
            "retry_AAAAAAAAAAAAAAAAAAAA"
        );
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key: retry_AAAAAAAAAAAAAAAAAAAA"));
        for err in ApiError::examples() {
            assert!(
                body_json(&err.to_response("r"))["error"]
                    .get("idempotency_key")
                    .is_none(),
                "{err:?}"
            );
        }
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
    fn store_errors_map_by_whether_a_retry_can_help() {
        let retryable = [
            StoreError::Unavailable(anyhow::anyhow!("refused")),
            StoreError::OutcomeUnknown(anyhow::anyhow!("timeout")),
            StoreError::Throttled(anyhow::anyhow!("slow down")),
            StoreError::ChangedConcurrently {
                entity: Entity::Account,
                id: "acct_x".into(),
            },
        ];
        for err in retryable {
            let api = ApiError::from(err);
            assert_eq!(api.status(), 503, "{api:?}");
        }
        let internal = [
            StoreError::corrupt(Entity::Payment, "pay_x", "amount"),
            StoreError::NotFound {
                entity: Entity::Account,
                id: "acct_x".into(),
            },
            StoreError::ConditionFailed {
                entity: Entity::Account,
                id: "acct_x".into(),
            },
            StoreError::TooManyItems {
                needed: 101,
                max: 100,
            },
            StoreError::Unexpected(anyhow::anyhow!("bug")),
        ];
        for err in internal {
            let api = ApiError::from(err);
            assert_eq!(api.status(), 500, "{api:?}");
            let text = String::from_utf8(api.to_response("r").body().to_vec()).unwrap();
            assert!(
                !text.contains("acct_x") && !text.contains("pay_x"),
                "{text}"
            );
        }
    }

    #[test]
    fn every_auth_failure_renders_identically() {
        let refused = AuthFailure::ALL
            .iter()
            .filter(|&&failure| failure != AuthFailure::Missing);
        let first = ApiError::Unauthenticated(AuthFailure::UnknownKey).to_response("same");
        for &failure in refused {
            let response = ApiError::Unauthenticated(failure).to_response("same");
            assert_eq!(response.status(), first.status());
            assert_eq!(response.body().as_ref(), first.body().as_ref());
            assert_eq!(response.headers(), first.headers());
        }
    }

    #[test]
    fn method_not_allowed_names_the_route_s_method() {
        for allow in ["POST", "GET"] {
            let response = ApiError::MethodNotAllowed { allow }.to_response("r");
            assert_eq!(response.headers()[header::ALLOW], allow);
            assert_eq!(
                body_json(&response)["error"]["message"],
                format!("This endpoint only accepts {allow}.")
            );
        }
    }

    #[test]
    fn a_missing_payment_names_its_param_and_never_the_id() {
        let response = ApiError::PaymentNotFound {
            param: "starting_after",
        }
        .to_response("r");
        assert_eq!(response.status(), 404);
        assert_eq!(
            body_json(&response),
            serde_json::json!({"error": {
                "type": "invalid_request_error",
                "code": "resource_missing",
                "message": "No such payment.",
                "param": "starting_after",
                "request_id": "r",
            }})
        );
    }

    #[test]
    fn error_body_has_the_documented_shape() {
        let err = ApiError::from(InvalidRequest::invalid_param("amount", "too big"));
        let response = err.to_response("req_42");
        assert_eq!(response.status(), 400);
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
