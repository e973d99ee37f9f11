use payments_tests::stack::free_port;
use payments_tests::TestApp;
use serde_json::json;

#[tokio::test]
async fn unreachable_dynamodb_is_a_retryable_503_with_a_generic_body() {
    // A port nothing listens on: every connection is refused.
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let app = TestApp::spawn_with_endpoint(&endpoint, false).await;
    let started = std::time::Instant::now();
    let response = app.create_account(json!({"name": "A"})).await;
    assert_eq!(response.status, 503, "{:?}", response.body);
    assert_eq!(response.error_code(), "service_unavailable");
    assert_eq!(response.headers["retry-after"], "1");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));

    let key = shared::domain::ApiKey::generate(
        shared::domain::KeyKind::Secret,
        shared::domain::KeyEnvironment::Test,
    )
    .unwrap();
    let response = app
        .create_payment(
            Some(key.expose_once()),
            json!({"amount": 1, "currency": "USD"}),
        )
        .await;
    assert_eq!(response.status, 503);
    let text = String::from_utf8(response.raw_body).unwrap();
    assert!(
        !text.contains("127.0.0.1") && !text.to_lowercase().contains("dispatch"),
        "{text}"
    );
}

#[tokio::test]
async fn a_missing_table_is_a_500_that_names_nothing_internal() {
    let app = TestApp::spawn_with_endpoint(&payments_tests::dynamodb_endpoint(), false).await;
    let response = app.create_account(json!({"name": "A"})).await;
    assert_eq!(response.status, 500, "{:?}", response.body);
    assert_eq!(response.error_code(), "internal_error");
    let text = String::from_utf8(response.raw_body).unwrap();
    assert!(!text.contains(&app.clients_table), "{text}");
    assert!(!text.contains("ResourceNotFound"), "{text}");
}

#[tokio::test]
async fn a_hanging_dynamodb_is_a_503_within_the_timeout_and_recovers_without_restart() {
    use payments_tests::proxy::{Fault, FaultProxy};
    use std::time::{Duration, Instant};

    let proxy = FaultProxy::start(&payments_tests::dynamodb_endpoint()).await;
    let app = TestApp::spawn_with_endpoint(&proxy.endpoint, true).await;
    let (account_id, key) = app.new_client().await;

    proxy.set(Fault::Hang);
    for attempt in 0..2 {
        let started = Instant::now();
        let response = app
            .create_payment(Some(&key), json!({"amount": 5, "currency": "USD"}))
            .await;
        let elapsed = started.elapsed();
        assert_eq!(
            response.status, 503,
            "attempt {attempt}: {:?}",
            response.body
        );
        // The SDK's operation timeout is 5 s: well inside the 10 s Lambda timeout.
        assert!(
            elapsed >= Duration::from_secs(2),
            "it did wait: {elapsed:?}"
        );
        assert!(
            elapsed < Duration::from_secs(7),
            "bounded by the timeout: {elapsed:?}"
        );
        let text = String::from_utf8(response.raw_body).unwrap();
        assert!(!text.to_lowercase().contains("timeout"), "{text}");
    }
    let created = app
        .create_account(json!({"name": "During the outage"}))
        .await;
    assert_eq!(created.status, 503);

    // Back to normal: the same client, no restart, serves again; nothing partial was written.
    proxy.set(Fault::None);
    assert!(app.payments_of(&account_id).await.is_empty());
    assert_eq!(
        app.scan(&app.clients_table).await.len(),
        3,
        "only the first account"
    );
    let response = app
        .create_payment(Some(&key), json!({"amount": 5, "currency": "USD"}))
        .await;
    assert_eq!(response.status, 201, "{:?}", response.body);
    assert_eq!(
        app.create_account(json!({"name": "After"})).await.status,
        201
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_restarting_mid_stream_loses_and_duplicates_nothing() {
    use payments_tests::dynamodb_local::DynamoDbLocal;
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    let mut database = DynamoDbLocal::start_persistent();
    let app = Arc::new(TestApp::spawn_with_endpoint(&database.endpoint(), true).await);
    let (account_id, key) = app.new_client().await;
    const PAYMENTS: usize = 30;
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));

    // A client that retries each payment with its idempotency key until it gets a 201,
    // the way a well-behaved API client would. After ten payments it waits for the
    // database to go down, so the rest of the stream meets the outage.
    let stream = {
        let (app, acknowledged, stopped) = (
            Arc::clone(&app),
            Arc::clone(&acknowledged),
            Arc::clone(&stopped),
        );
        tokio::spawn(async move {
            let mut ids = Vec::new();
            let mut failures = 0;
            for i in 0..PAYMENTS {
                if i == 10 {
                    for _ in 0..600 {
                        if stopped.load(Ordering::SeqCst) {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                let body = json!({"amount": i + 1, "currency": "USD"});
                let idempotency_key = format!("stream-{i}");
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    let response = app
                        .create_payment_idempotent(&key, &idempotency_key, body.clone())
                        .await;
                    match response.status {
                        201 => {
                            ids.push(response.body["id"].as_str().unwrap().to_owned());
                            acknowledged.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                        503 | 500 => {
                            failures += 1;
                            assert!(attempts < 120, "payment {i} never succeeded");
                            tokio::time::sleep(Duration::from_millis(250)).await;
                        }
                        other => panic!("payment {i}: unexpected {other} {:?}", response.body),
                    }
                }
            }
            (ids, failures)
        })
    };

    while acknowledged.load(Ordering::SeqCst) < 10 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    database.stop();
    stopped.store(true, Ordering::SeqCst);
    // Down for longer than the SDK's 5 s operation budget, so the outage reaches the client
    // (shorter outages are absorbed by the SDK's own retries).
    tokio::time::sleep(Duration::from_secs(6)).await;
    database.start();

    let (ids, failures) = stream.await.unwrap();
    assert!(failures > 0, "the outage was seen by the client");
    assert_eq!(ids.len(), PAYMENTS);
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        PAYMENTS,
        "distinct payments"
    );
    let stored = app.payments_of(&account_id).await;
    assert_eq!(
        stored.len(),
        PAYMENTS,
        "each acknowledged payment stored exactly once"
    );
    let stored_ids: HashSet<String> = stored
        .iter()
        .map(|i| i["pk"].as_s().unwrap().clone())
        .collect();
    assert_eq!(stored_ids, ids.into_iter().collect::<HashSet<_>>());
}
