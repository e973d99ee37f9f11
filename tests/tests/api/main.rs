//! Integration tests: the handlers called directly, against DynamoDB Local (and, in
//! `routes`, the in-memory store). Each test gets its own tables, so the whole binary runs
//! in parallel. One binary, so the suite links the SDK once for all of them.

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
mod routes;
mod self_service;
mod storage;
