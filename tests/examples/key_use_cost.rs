//! What recording a key's last use costs a request: create-payment against DynamoDB Local,
//! alternating requests whose key use is due (the clock moved past the interval) with
//! requests whose use is already recorded, so both see the same machine and DynamoDB.
//!
//! DYNAMODB_ENDPOINT=http://127.0.0.1:8000 cargo run --release -p payments-tests --example key_use_cost [ROUNDS]

use std::time::{Duration, Instant};

use payments_tests::calls::Calls;
use payments_tests::{keyed_request, percentile_ms, TestApp};
use serde_json::json;
use shared::http::auth::KEY_USE_INTERVAL;
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
    let state = payments_tests::payment_environment(
        DynamoStore::new(calls.counting(&app.client), app.tables()),
        app.clock.clock(),
        shared::domain::RateLimit::DEFAULT,
    );
    let body = json!({"amount": 1, "currency": "USD"});
    let mut n = 0;
    let mut pay = || {
        n += 1;
        create_payment::handle(&state, keyed_request(&key, &format!("cost-{n}"), &body))
    };
    for _ in 0..100 {
        assert_eq!(pay().await.status(), 201);
    }
    let (mut due, mut recorded) = (Vec::new(), Vec::new());
    let updates_before = calls.of("UpdateItem");
    for _ in 0..rounds {
        app.clock.advance(KEY_USE_INTERVAL + Duration::from_secs(1));
        let started = Instant::now();
        assert_eq!(pay().await.status(), 201);
        due.push(started.elapsed());
        let started = Instant::now();
        assert_eq!(pay().await.status(), 201);
        recorded.push(started.elapsed());
    }
    let updates = calls.of("UpdateItem") - updates_before;
    println!("rounds: {rounds} (each: one request with its key use due, one without)");
    println!(
        "UpdateItem sent: {updates} ({:.2} per due request)",
        updates as f64 / rounds as f64
    );
    for (name, samples) in [("use due", &mut due), ("use recorded", &mut recorded)] {
        println!(
            "{name:>13}: p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms",
            percentile_ms(samples, 0.5),
            percentile_ms(samples, 0.9),
            percentile_ms(samples, 0.99)
        );
    }
}
