//! CPU cost of one create-payment request inside the function, with DynamoDB replaced by the
//! in-memory store: parsing the API Gateway event into a request, and the handler (auth,
//! validation, the payment, its info log line, the JSON response).
//!
//! ```text
//! cargo run --release -p create-payment --example handler_cost > /dev/null
//! RUST_LOG=warn cargo run --release -p create-payment --example handler_cost
//! cargo run --release -p create-payment --example handler_cost -- 1000 > /dev/null
//! ```
//!
//! The argument is the number of measured requests (default 5000); callgrind runs of two
//! counts give one request's instructions as their difference.
//!
//! The function's logs go to stdout, as in Lambda; the timings go to stderr.

use std::time::{Duration, Instant};

use lambda_http::request::LambdaRequest;
use lambda_http::Request;
use shared::domain::{Clock, IdSource, KeyEnvironment, Timestamp};
use shared::testing::MemoryStore;

const WARM_UP: usize = 500;

fn event(api_key: &str, n: usize) -> String {
    serde_json::json!({
        "version": "2.0",
        "routeKey": "POST /payments",
        "rawPath": "/payments",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "host": "example.execute-api.us-east-1.amazonaws.com",
            "user-agent": "handler-cost",
            "x-api-key": api_key,
            "idempotency-key": format!("handler-cost-{n:08}"),
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "example",
            "domainName": "example.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "example",
            "http": {
                "method": "POST",
                "path": "/payments",
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "handler-cost"
            },
            "requestId": format!("req-{n:08}"),
            "routeKey": "POST /payments",
            "stage": "$default",
            "time": "27/Nov/2026:03:00:00 +0000",
            "timeEpoch": 1_795_748_400_000u64
        },
        "body": r#"{"amount": 1250, "currency": "USD", "description": "benchmark payment"}"#,
        "isBase64Encoded": false
    })
    .to_string()
}

fn p50(samples: &mut [Duration]) -> f64 {
    samples.sort_unstable();
    samples[samples.len() / 2].as_secs_f64() * 1e6
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    shared::telemetry::init();
    let store = MemoryStore::default();
    let (key, _) = shared::testing::account_with_key(&store, Timestamp::now()).await;
    let state = create_payment::State {
        edge: shared::http::pipeline::Edge::new(
            store,
            KeyEnvironment::Test,
            shared::domain::RateLimit::new(shared::domain::RateLimit::MAX.into()).unwrap(),
            Clock::system(),
            shared::http::metrics::Meter::default(),
        ),
        ids: IdSource::random(),
    };

    let measured: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(5_000);
    let api_key = key.expose_once();
    let events: Vec<String> = (0..WARM_UP + measured).map(|n| event(api_key, n)).collect();
    let (mut parse, mut handle) = (vec![], vec![]);
    for (n, raw) in events.iter().enumerate() {
        let t0 = Instant::now();
        let request: Request = serde_json::from_str::<LambdaRequest>(raw)
            .expect("valid event")
            .into();
        let t1 = Instant::now();
        let response = create_payment::handle(&state, request).await;
        let t2 = Instant::now();
        assert_eq!(response.status(), 201, "every request must succeed");
        std::hint::black_box(response);
        if n >= WARM_UP {
            parse.push(t1 - t0);
            handle.push(t2 - t1);
        }
    }
    eprintln!(
        "create-payment, {measured} requests, p50: parse event {:.1} µs, handler {:.1} µs",
        p50(&mut parse),
        p50(&mut handle)
    );
}
