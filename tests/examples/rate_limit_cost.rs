//! What the rate limit's reports cost a request: create-payment against DynamoDB Local,
//! alternating a request that publishes its environment's claim on the account's limit (a
//! report is due: its lease has come round) with one that only counts locally, so both see
//! the same machine and DynamoDB.
//!
//! DYNAMODB_ENDPOINT=http://127.0.0.1:8000 cargo run --release -p payments-tests --example rate_limit_cost [ROUNDS]

use std::time::{Duration, Instant};

use payments_tests::calls::Calls;
use payments_tests::{keyed_request, percentile_ms, TestApp};
use serde_json::json;
use shared::domain::{RateLimit, QUIET_INTERVAL_MS};
use shared::store::dynamo::DynamoStore;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(500);
    let app = TestApp::spawn().await;
    let (_, key) = app.new_client().await;
    let calls = Calls::default();
    // A limit of 20: two requests a round keep the account under half of it, where reports
    // are due once a lease, which each round waits out.
    let state = payments_tests::payment_environment(
        DynamoStore::new(calls.counting(&app.client), app.tables()),
        app.clock.clock(),
        RateLimit::new(20).unwrap(),
    );
    let body = json!({"amount": 1, "currency": "USD"});
    let mut n = 0;
    let mut pay = || {
        n += 1;
        create_payment::handle(&state, keyed_request(&key, &format!("cost-{n}"), &body))
    };
    for _ in 0..100 {
        app.clock.advance(Duration::from_millis(100));
        assert_eq!(pay().await.status(), 201);
    }
    let (mut due, mut local) = (Vec::new(), Vec::new());
    let updates_before = calls.of("UpdateItem");
    for _ in 0..rounds {
        app.clock
            .advance(Duration::from_millis(QUIET_INTERVAL_MS + 100));
        let started = Instant::now();
        assert_eq!(pay().await.status(), 201);
        due.push(started.elapsed());
        let started = Instant::now();
        assert_eq!(pay().await.status(), 201);
        local.push(started.elapsed());
    }
    // Let the last report land before counting.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let updates = calls.of("UpdateItem") - updates_before;
    println!("rounds: {rounds} (each: one request with a report due, one counting locally)");
    println!(
        "UpdateItem sent: {updates} ({:.2} per round)",
        updates as f64 / rounds as f64
    );
    for (name, samples) in [("report due", &mut due), ("local only", &mut local)] {
        println!(
            "{name:>11}: p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms",
            percentile_ms(samples, 0.5),
            percentile_ms(samples, 0.9),
            percentile_ms(samples, 0.99)
        );
    }
}
