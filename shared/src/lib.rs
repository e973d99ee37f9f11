//! What the functions share, in layers whose imports run one way:
//!
//! - [`domain`]: values, their parsing, and the rules about keys and payments. Imports
//!   nothing else from this crate.
//! - [`store`]: storage (DynamoDB items and calls), answering in its own error type.
//! - [`http`]: the HTTP edge: request ids, body checks, the auth step, `ApiError` and its one
//!   mapping to a response. Only this layer knows status codes.
//! - [`config`] and [`telemetry`]: start-up wiring and logs.
//! - `json`: JSON written straight into a line (the logs' and metrics' writer), below all.
//!
//! Features: `aws` (the DynamoDB store and client configuration) and `lambda` (the HTTP edge
//! and logs), both default; without them the domain and body parsing build alone (the
//! fuzzers use that). `test-support` adds [`testing`] for tests only.

#[macro_use]
mod string_enum;
#[cfg(feature = "lambda")]
mod json;

/// For [`string_enum!`] in crates that do not depend on serde themselves.
#[doc(hidden)]
pub use serde as __serde;

pub mod domain;
pub mod http;
pub mod store;

#[cfg(feature = "aws")]
pub mod config;
#[cfg(feature = "lambda")]
pub mod telemetry;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;

#[cfg(feature = "lambda")]
pub use http::ApiError;
