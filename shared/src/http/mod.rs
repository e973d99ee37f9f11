//! The HTTP edge: the one request pipeline every route goes through ([`pipeline`]: method,
//! deadline, the auth step, the rate limit), request ids, content type and size checks,
//! query strings, the one error type ([`ApiError`]) and its one mapping to a response, and
//! the per-request metrics. Only this layer knows status codes.
//!
//! [`body`] is pure (bytes in, validated values or a precise error out) and builds without
//! the Lambda runtime, so it can be fuzzed on its own; the rest needs feature `lambda`.

pub mod body;

#[cfg(feature = "lambda")]
pub mod auth;
#[cfg(feature = "lambda")]
pub mod deadline;
#[cfg(feature = "lambda")]
pub mod error;
#[cfg(feature = "lambda")]
pub mod keys;
#[cfg(feature = "lambda")]
pub mod limit;
#[cfg(feature = "lambda")]
pub mod metrics;
#[cfg(feature = "lambda")]
pub mod pipeline;
#[cfg(feature = "lambda")]
pub mod query;
#[cfg(feature = "lambda")]
pub mod request;
#[cfg(feature = "lambda")]
pub mod response;

#[cfg(feature = "lambda")]
pub use error::ApiError;
