use std::collections::HashSet;
use std::sync::Arc;

use payments_tests::proxy::{Fault, FaultProxy};
use payments_tests::{dynamodb_endpoint, json_request, keyed_request, TestApp, TestResponse};
use serde_json::json;
use shared::config::dynamodb_client;
use shared::domain::Payment;
use shared::domain::{
    AccountId, Claim, KeyDigest, RateLimit, Report, RequestFingerprint, Timestamp,
};
use shared::store::dynamo::DynamoStore;
use shared::store::{
    FindKey, InsertOutcome, InsertPayment, KeyRecord, PublishDemand, RecordKeyUse, StoreError,
};
use tokio::task::JoinSet;

fn replayed(response: &TestResponse) -> bool {
    response
        .headers
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true")
}

#[tokio::test]
async fn a_retry_replays_the_original_response_without_a_second_payment() {
    let app = TestApp::spawn().await;
    let (account_id, key) = app.new_client().await;
    let body = json!({"amount": 2500, "currency": "usd", "description": "Order 7"});
    let first = app
        .create_payment_idempotent(&key, "order-7", body.clone())
        .await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert!(!replayed(&first));

    // Same request, written differently: same validated request, same fingerprint.
    let same = json!({"description": "Order 7", "currency": "USD", "amount": 2500});
    for retry in [body, same] {
        let again = app.create_payment_idempotent(&key, "order-7", retry).await;
        assert_eq!(again.status, 201);
        assert!(replayed(&again));
        assert_eq!(again.raw_body, first.raw_body, "byte-identical replay");
    }
    assert_eq!(app.payments_of(&account_id).await.len(), 1);
}

#[tokio::test]
async fn the_same_key_with_a_different_request_is_422_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let (account_id, key) = app.new_client().await;
    let first = app
        .create_payment_idempotent(&key, "k1", json!({"amount": 100, "currency": "EUR"}))
        .await;
    assert_eq!(first.status, 201);
    for different in [
        json!({"amount": 101, "currency": "EUR"}),
        json!({"amount": 100, "currency": "GBP"}),
        json!({"amount": 100, "currency": "EUR", "description": "x"}),
    ] {
        let response = app.create_payment_idempotent(&key, "k1", different).await;
        assert_eq!(response.status, 422, "{:?}", response.body);
        assert_eq!(response.body["error"]["type"], "idempotency_error");
        assert_eq!(response.body["error"]["param"], "Idempotency-Key");
    }
    let stored = app.payments_of(&account_id).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["amount"].as_n().unwrap(), "100");
}

#[tokio::test]
async fn keys_are_scoped_to_the_account() {
    let app = TestApp::spawn().await;
    let (first_account, first_key) = app.new_client().await;
    let (second_account, second_key) = app.new_client().await;
    let a = app
        .create_payment_idempotent(
            &first_key,
            "shared",
            json!({"amount": 1, "currency": "USD"}),
        )
        .await;
    let b = app
        .create_payment_idempotent(
            &second_key,
            "shared",
            json!({"amount": 2, "currency": "USD"}),
        )
        .await;
    assert_eq!((a.status, b.status), (201, 201));
    assert!(!replayed(&b));
    assert_ne!(a.body["id"], b.body["id"]);
    assert_eq!(b.body["client_id"], second_account.as_str());
    assert_eq!(app.payments_of(&first_account).await.len(), 1);
    assert_eq!(app.payments_of(&second_account).await.len(), 1);
}

#[tokio::test]
async fn a_failed_validation_is_not_remembered() {
    let app = TestApp::spawn().await;
    let (account_id, key) = app.new_client().await;
    let bad = app
        .create_payment_idempotent(&key, "fix-me", json!({"amount": 0, "currency": "USD"}))
        .await;
    assert_eq!(bad.status, 400);
    let fixed = app
        .create_payment_idempotent(&key, "fix-me", json!({"amount": 10, "currency": "USD"}))
        .await;
    assert_eq!(fixed.status, 201, "{:?}", fixed.body);
    assert!(!replayed(&fixed));
    assert_eq!(app.payments_of(&account_id).await.len(), 1);
}

#[tokio::test]
async fn malformed_keys_are_400() {
    let app = TestApp::spawn().await;
    let (account_id, key) = app.new_client().await;
    for bad in ["k".repeat(256), String::new(), "caf\u{e9}".to_owned()] {
        let mut request = payments_tests::json_request(
            "/payments",
            Some(&key),
            &json!({"amount": 1, "currency": "USD"}),
        );
        request.headers_mut().insert(
            "idempotency-key",
            lambda_http::http::HeaderValue::from_bytes(bad.as_bytes()).unwrap(),
        );
        let response = app.post_payment(request).await;
        assert_eq!(response.status, 400, "{bad:?}");
        assert_eq!(response.body["error"]["param"], "Idempotency-Key");
    }
    let longest = app
        .create_payment_idempotent(
            &key,
            &"k".repeat(255),
            json!({"amount": 1, "currency": "USD"}),
        )
        .await;
    assert_eq!(longest.status, 201);
    assert_eq!(app.payments_of(&account_id).await.len(), 1);
}

#[tokio::test]
async fn an_invalid_api_key_never_sees_a_stored_response() {
    let app = TestApp::spawn().await;
    let (_, key) = app.new_client().await;
    let body = json!({"amount": 5, "currency": "USD"});
    assert_eq!(
        app.create_payment_idempotent(&key, "known", body.clone())
            .await
            .status,
        201
    );
    let other = shared::domain::ApiKey::generate(
        shared::domain::KeyKind::Secret,
        shared::domain::KeyEnvironment::Test,
    )
    .unwrap();
    for bad in [other.expose_once(), "sk_test_nope"] {
        let response = app
            .create_payment_idempotent(bad, "known", body.clone())
            .await;
        assert_eq!(response.status, 401);
        assert_eq!(response.error_code(), "invalid_api_key");
        assert!(!replayed(&response));
        assert!(response.body.get("id").is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_identical_requests_create_exactly_one_payment() {
    let app = Arc::new(TestApp::spawn().await);
    let (account_id, key) = app.new_client().await;
    const N: usize = 40;
    let mut tasks = JoinSet::new();
    for _ in 0..N {
        let (app, key) = (Arc::clone(&app), key.clone());
        tasks.spawn(async move {
            app.create_payment_idempotent(&key, "burst", json!({"amount": 4200, "currency": "USD"}))
                .await
        });
    }
    let mut ids = HashSet::new();
    let mut created = 0;
    while let Some(response) = tasks.join_next().await {
        let response = response.unwrap();
        // Every racer gets the payment: the winner as created, the others as a replay.
        assert_eq!(response.status, 201, "{:?}", response.body);
        ids.insert(response.body["id"].as_str().unwrap().to_owned());
        if !replayed(&response) {
            created += 1;
        }
    }
    assert_eq!(ids.len(), 1, "every 201 is the same payment");
    assert_eq!(created, 1, "exactly one request created it");
    assert_eq!(app.payments_of(&account_id).await.len(), 1);
}

#[tokio::test]
async fn dynamodb_unreachable_then_back_yields_exactly_one_payment() {
    let proxy = FaultProxy::start(&dynamodb_endpoint()).await;
    let app = TestApp::spawn_with_endpoint(&proxy.endpoint, true).await;
    let (account_id, key) = app.new_client().await;
    let body = json!({"amount": 700, "currency": "USD"});

    proxy.set(Fault::Refuse);
    let first = app
        .create_payment_idempotent(&key, "retry-me", body.clone())
        .await;
    assert_eq!(first.status, 503, "{:?}", first.body);

    proxy.set(Fault::None);
    let retry = app.create_payment_idempotent(&key, "retry-me", body).await;
    assert_eq!(retry.status, 201, "{:?}", retry.body);
    assert_eq!(app.payments_of(&account_id).await.len(), 1);
}

/// Key lookups go straight to DynamoDB; payment writes go through the fault proxy.
#[derive(Clone)]
struct WritesThroughProxy {
    keys: DynamoStore,
    payments: DynamoStore,
}

impl FindKey for WritesThroughProxy {
    async fn find_key(&self, digest: &KeyDigest) -> Result<Option<KeyRecord>, StoreError> {
        self.keys.find_key(digest).await
    }
}

impl InsertPayment for WritesThroughProxy {
    async fn insert_payment(
        &self,
        payment: &Payment,
        request_fingerprint: &RequestFingerprint,
    ) -> Result<InsertOutcome, StoreError> {
        self.payments
            .insert_payment(payment, request_fingerprint)
            .await
    }
}

impl PublishDemand for WritesThroughProxy {
    async fn publish_demand(
        &self,
        account: &AccountId,
        report: &Report,
    ) -> Result<Vec<Claim>, StoreError> {
        self.keys.publish_demand(account, report).await
    }
}

impl RecordKeyUse for WritesThroughProxy {
    async fn record_key_use(
        &self,
        digest: &KeyDigest,
        at: Timestamp,
        stale_before: Timestamp,
    ) -> Result<(), StoreError> {
        self.keys.record_key_use(digest, at, stale_before).await
    }
}

/// The payment handler with its key lookups direct and its payment writes through `proxy`.
async fn writes_through(
    app: &TestApp,
    proxy: &FaultProxy,
) -> create_payment::State<WritesThroughProxy> {
    writes_to(app, &proxy.endpoint).await
}

/// The payment handler with its key lookups direct and its payment writes sent to `endpoint`.
async fn writes_to(app: &TestApp, endpoint: &str) -> create_payment::State<WritesThroughProxy> {
    let store = WritesThroughProxy {
        keys: app.store().clone(),
        payments: DynamoStore::new(dynamodb_client(Some(endpoint)).await, app.tables()),
    };
    payments_tests::payment_environment(store, shared::domain::Clock::system(), RateLimit::DEFAULT)
}

#[tokio::test]
async fn an_sdk_retry_after_a_lost_first_response_stores_one_payment_without_a_key() {
    let app = TestApp::spawn().await;
    let (account_id, key) = app.new_client().await;
    let proxy = FaultProxy::start(&dynamodb_endpoint()).await;
    let state = writes_through(&app, &proxy).await;

    // The first PutItem is written but its response is lost; the SDK's own retry sends the
    // same item again, meets its own write, and the request still gets one payment.
    proxy.lose_next_responses(1);
    let request = json_request(
        "/payments",
        Some(&key),
        &json!({"amount": 321, "currency": "USD"}),
    );
    let response = TestResponse::from_lambda(create_payment::handle(&state, request).await);
    assert_eq!(response.status, 201, "{:?}", response.body);
    assert!(
        !replayed(&response),
        "to this client it is the first answer"
    );
    assert_eq!(proxy.counts().lost_responses, 1, "the fault did happen");
    let stored = app.payments_of(&account_id).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0]["pk"].as_s().unwrap(),
        response.body["id"].as_str().unwrap()
    );
}

#[tokio::test]
async fn a_write_whose_response_was_lost_is_not_repeated() {
    let app = TestApp::spawn().await;
    let (account_id, key) = app.new_client().await;
    let proxy = FaultProxy::start(&dynamodb_endpoint()).await;
    let state = writes_through(&app, &proxy).await;
    let send = |body: serde_json::Value| {
        create_payment::handle(&state, keyed_request(&key, "lost-ack", &body))
    };
    let body = json!({"amount": 900, "currency": "EUR"});

    // The write reaches DynamoDB, but its response (and those of the SDK's own retries) is
    // lost: the caller sees a retryable failure although the payment exists.
    proxy.set(Fault::LoseResponses);
    let first = TestResponse::from_lambda(send(body.clone()).await);
    assert_eq!(first.status, 503, "{:?}", first.body);
    assert_eq!(
        first.error_code(),
        "payment_outcome_unknown",
        "the 503 says it may exist"
    );
    let targeted = first.body["error"]["payment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.payments_of(&account_id).await.len(),
        1,
        "the write happened"
    );

    proxy.set(Fault::None);
    let retry = TestResponse::from_lambda(send(body).await);
    assert_eq!(retry.status, 201, "{:?}", retry.body);
    assert!(replayed(&retry));
    assert_eq!(
        retry.body["id"],
        targeted.as_str(),
        "the 503 named the payment"
    );
    let stored = app.payments_of(&account_id).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0]["pk"].as_s().unwrap(),
        retry.body["id"].as_str().unwrap()
    );
}

#[tokio::test]
async fn a_write_that_never_connected_is_a_plain_503_and_wrote_nothing() {
    let app = TestApp::spawn().await;
    let (account_id, key) = app.new_client().await;
    // Nothing listens there: every attempt of the write is refused before anything is sent.
    let dead = format!("http://127.0.0.1:{}", payments_tests::stack::free_port());
    let state = writes_to(&app, &dead).await;
    let request = json_request(
        "/payments",
        Some(&key),
        &json!({"amount": 3, "currency": "USD"}),
    );
    let response = TestResponse::from_lambda(create_payment::handle(&state, request).await);
    assert_eq!(
        (response.status, response.error_code()),
        (503, "service_unavailable")
    );
    assert!(
        response.body["error"].get("payment_id").is_none(),
        "{:?}",
        response.body
    );
    assert!(app.payments_of(&account_id).await.is_empty());
}

#[tokio::test]
async fn a_write_hanging_after_the_lookup_is_answered_before_the_invocation_deadline() {
    let app = TestApp::spawn().await;
    let (account_id, key) = app.new_client().await;
    let proxy = FaultProxy::start(&dynamodb_endpoint()).await;
    let state = writes_through(&app, &proxy).await;
    proxy.set(Fault::Hang);
    // The invocation has 3 s left: less than the SDK's own 5 s operation budget, so only
    // the request's deadline can answer in time.
    let body = json!({"amount": 4, "currency": "USD"});
    let request =
        shared::testing::with_deadline_in(keyed_request(&key, "slow-write", &body), 3_000);
    let started = std::time::Instant::now();
    let response = TestResponse::from_lambda(create_payment::handle(&state, request).await);
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_millis(3_000),
        "before the deadline: {took:?}"
    );
    assert!(
        took >= std::time::Duration::from_millis(2_000),
        "it waited: {took:?}"
    );
    assert_eq!(
        (response.status, response.error_code()),
        (503, "payment_outcome_unknown")
    );
    let targeted = response.body["error"]["payment_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The hung write never reached DynamoDB; the retry the 503 asks for records it once.
    proxy.set(Fault::None);
    let request = keyed_request(&key, "slow-write", &body);
    let retry = TestResponse::from_lambda(create_payment::handle(&state, request).await);
    assert_eq!(
        (retry.status, retry.body["id"].as_str()),
        (201, Some(targeted.as_str()))
    );
    assert_eq!(app.payments_of(&account_id).await.len(), 1);
}

#[tokio::test]
async fn without_a_key_a_lost_write_is_a_503_naming_the_payment_that_exists() {
    let app = TestApp::spawn().await;
    let (account_id, key) = app.new_client().await;
    let proxy = FaultProxy::start(&dynamodb_endpoint()).await;
    let state = writes_through(&app, &proxy).await;
    // Every response to the write (and to the SDK's retries of it) is lost, but the first
    // attempt was applied: a client told only "503: retry" would pay twice.
    proxy.set(Fault::LoseResponses);
    let request = json_request(
        "/payments",
        Some(&key),
        &json!({"amount": 77, "currency": "USD"}),
    );
    let response = TestResponse::from_lambda(create_payment::handle(&state, request).await);
    assert_eq!(
        (response.status, response.error_code()),
        (503, "payment_outcome_unknown")
    );
    let named = response.body["error"]["payment_id"].as_str().unwrap();
    let retry_key = response.body["error"]["idempotency_key"].as_str().unwrap();
    let message = response.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("Idempotency-Key: {retry_key}")),
        "{message}"
    );
    let stored = app.payments_of(&account_id).await;
    assert_eq!(stored.len(), 1, "the write happened");
    assert_eq!(
        stored[0]["pk"].as_s().unwrap(),
        named,
        "and the 503 named it"
    );
    // The same request again with the key the 503 named: the payment that exists, once.
    proxy.set(Fault::None);
    let retry = TestResponse::from_lambda(
        create_payment::handle(
            &state,
            keyed_request(&key, retry_key, &json!({"amount": 77, "currency": "USD"})),
        )
        .await,
    );
    assert_eq!(retry.status, 201, "{:?}", retry.body);
    assert_eq!(retry.body["id"], named);
    assert_eq!(app.payments_of(&account_id).await.len(), 1);
}
