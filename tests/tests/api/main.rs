//! Integration tests: the handlers called directly, against DynamoDB Local.
//! Each test gets its own tables, so the whole binary runs in parallel.

mod accounts;
mod audit;
mod auth;
mod faults;
mod idempotency;
mod keys;
mod lifecycle;
mod payments;
mod rate_limits;
mod reads;
mod storage;
