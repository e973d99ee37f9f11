//! A bounded load test on loopback: many concurrent clients for a fixed time through the local
//! stack (`cargo lambda watch`, debug build, several instances per function) against DynamoDB
//! Local. No 5xx, and every acknowledged payment stored exactly once.
//!
//! `LOAD_SECONDS` (default 8) and `LOAD_CLIENTS` (default 16) size the run; results go to
//! `target/load/results.md`. Latencies exclude each client's first request, which may wait
//! for a new function instance to start.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use payments_tests::stack::{workspace_root, LocalStack};
use payments_tests::{dynamodb_endpoint, record_key};
use reqwest::Client;
use serde_json::{json, Value};
use shared::config::dynamodb_client;

fn setting(name: &str, default: u64, max: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .min(max)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_clients_lose_nothing_and_get_no_5xx() {
    let seconds = setting("LOAD_SECONDS", 8, 120);
    let clients = setting("LOAD_CLIENTS", 16, 64) as usize;
    let stack = LocalStack::start_with_concurrency(&dynamodb_endpoint(), 4).await;
    let http = Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap();

    // One account per client; the first request also compiles or starts the functions.
    let mut keys = Vec::new();
    for i in 0..clients {
        let response = http
            .post(format!("{}/accounts", stack.base_url))
            .header("content-type", "application/json")
            .body(json!({"name": format!("Load client {i}")}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", stack.log());
        let body: Value = response.json().await.unwrap();
        let key = body["api_key"].as_str().unwrap().to_owned();
        record_key(&key);
        keys.push(key);
    }

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for (client, key) in keys.into_iter().enumerate() {
        let (http, base) = (http.clone(), stack.base_url.clone());
        tasks.spawn(async move {
            let mut acknowledged = Vec::new();
            let mut latencies = Vec::new();
            let mut sequence = 0u64;
            while Instant::now() < deadline {
                sequence += 1;
                let started = Instant::now();
                let response = http
                    .post(format!("{base}/payments"))
                    .header("x-api-key", &key)
                    .header("idempotency-key", format!("load-{client}-{sequence}"))
                    .header("content-type", "application/json")
                    .body(json!({"amount": sequence, "currency": "EUR"}).to_string())
                    .send()
                    .await
                    .expect("response");
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                // Each client's first request may wait for a function instance to start.
                if sequence > 1 {
                    latencies.push(started.elapsed());
                }
                assert!(status < 500, "client {client}: {status} {body}");
                assert_eq!(status, 201, "client {client}: {body}");
                acknowledged.push(body["id"].as_str().unwrap().to_owned());
            }
            (acknowledged, latencies)
        });
    }
    let started = Instant::now();
    let mut acknowledged = Vec::new();
    let mut latencies = Vec::new();
    while let Some(result) = tasks.join_next().await {
        let (ids, times) = result.unwrap();
        acknowledged.extend(ids);
        latencies.extend(times);
    }
    let elapsed = started.elapsed();

    // Every acknowledged payment is in the table, once.
    let database = dynamodb_client(Some(&dynamodb_endpoint())).await;
    let mut stored = Vec::new();
    let mut start = None;
    loop {
        let page = database
            .scan()
            .table_name(&stack.payments_table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        stored.extend(
            page.items()
                .iter()
                .map(|item| item["pk"].as_s().unwrap().clone()),
        );
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    let acknowledged_set: HashSet<&String> = acknowledged.iter().collect();
    assert_eq!(
        acknowledged_set.len(),
        acknowledged.len(),
        "no id acknowledged twice"
    );
    assert_eq!(
        stored.len(),
        acknowledged.len(),
        "stored exactly the acknowledged payments"
    );
    assert_eq!(stored.iter().collect::<HashSet<_>>(), acknowledged_set);
    assert!(acknowledged.len() >= clients, "every client got through");

    latencies.sort();
    let report = format!(
        "| clients | duration | payments | throughput | p50 | p90 | p99 | max | 5xx |\n\
         |---|---|---|---|---|---|---|---|---|\n\
         | {clients} | {:.1} s | {} | {:.0} req/s | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | 0 |\n",
        elapsed.as_secs_f64(),
        acknowledged.len(),
        acknowledged.len() as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.90).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
    );
    println!("{report}");
    let dir = workspace_root().join("target").join("load");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("results.md"), report).unwrap();
}
