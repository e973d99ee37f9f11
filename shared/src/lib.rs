//! What both functions share: API keys, the auth step, domain values, request parsing,
//! storage, the error type and its mapping to HTTP.

pub mod api_key;
pub mod auth;
pub mod clock;
pub mod config;
pub mod currency;
pub mod domain;
pub mod error;
pub mod http;
pub mod idempotency;
pub mod request;
pub mod store;
pub mod telemetry;

pub use error::ApiError;
