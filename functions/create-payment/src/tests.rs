//! The handler with the in-memory store: every outcome a caller can get, without DynamoDB.

use std::time::Duration;

use serde_json::{json, Value};
use shared::domain::{
    AccountId, AccountStatus, Amount, ApiKey, Currency, KeyLife, KeyStatus, NewPayment, PaymentId,
    Timestamp,
};
use shared::store::StoreError;
use shared::testing::{
    account_with_key, api_gateway_request, with_deadline_in, MemoryStore, Operation,
};

use super::*;
use shared::domain::{Clock, KeyEnvironment, RateLimit};
use shared::testing::edge;

const NOW: &str = "2026-12-01T10:00:00Z";

fn now() -> Timestamp {
    Timestamp::parse(NOW).unwrap()
}

struct Test {
    state: State<MemoryStore>,
    /// The store the handler's edge holds, for the test to arrange and inspect.
    store: MemoryStore,
    key: ApiKey,
    account: AccountId,
}

async fn setup(ids: IdSource) -> Test {
    let store = MemoryStore::default();
    let (key, account) = account_with_key(&store, now()).await;
    Test {
        state: State {
            edge: edge(store.clone(), Clock::from_fn(now)),
            ids,
        },
        store,
        key,
        account,
    }
}

struct Answer {
    status: u16,
    body: Value,
    raw: Vec<u8>,
    replayed: bool,
    retry_after: Option<String>,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    fn without_request_id(&self) -> String {
        let id = self.body["error"]["request_id"]
            .as_str()
            .unwrap_or_default();
        String::from_utf8(self.raw.clone())
            .unwrap()
            .replace(id, "<id>")
    }
}

async fn send(test: &Test, request: Request) -> Answer {
    let response = handle(&test.state, request).await;
    let raw = response.body().to_vec();
    Answer {
        status: response.status().as_u16(),
        body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
        replayed: response
            .headers()
            .get(REPLAYED_HEADER)
            .is_some_and(|v| v == "true"),
        retry_after: response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned()),
        raw,
    }
}

async fn pay(test: &Test, headers: &[(&str, &str)], body: Value) -> Answer {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    send(
        test,
        api_gateway_request("POST", "/payments", &[], &all, &body.to_string()),
    )
    .await
}

async fn pay_with_key(test: &Test, key: &str, body: Value) -> Answer {
    pay(test, &[("x-api-key", key)], body).await
}

/// A test whose first drawn key (for a request without an Idempotency-Key) is `key`, and
/// the payment id that key gives the test's account.
async fn setup_drawing(key: &str) -> (Test, PaymentId) {
    let test = setup(IdSource::queued([key.to_owned()])).await;
    let id = payment_id_for(
        &test.account,
        &shared::domain::IdempotencyKey::parse(key.as_bytes()).unwrap(),
    );
    (test, id)
}

fn usd(amount: i64) -> Value {
    json!({"amount": amount, "currency": "usd"})
}

/// API Gateway's payload 2.0 joins a repeated header's values with commas: that is the form
/// a function sees of two `Idempotency-Key` or two `x-api-key` headers.
#[tokio::test]
async fn repeated_headers_joined_as_api_gateway_joins_them_are_refused() {
    let test = setup(IdSource::random()).await;
    let key = test.key.expose_once();
    let answer = pay(
        &test,
        &[("x-api-key", key), ("idempotency-key", "order-1,order-2")],
        usd(100),
    )
    .await;
    assert_eq!((answer.status, answer.code()), (400, "parameter_invalid"));
    assert_eq!(answer.body["error"]["param"], "Idempotency-Key");
    assert_eq!(
        answer.body["error"]["message"],
        "Send a single Idempotency-Key header."
    );
    let joined = format!("{key},{key}");
    let answer = pay_with_key(&test, &joined, usd(100)).await;
    assert_eq!((answer.status, answer.code()), (401, "invalid_api_key"));
    assert!(test.store.payments().is_empty());
}

/// Valid JSON with a number no amount can be is a bad amount, not bad JSON.
#[tokio::test]
async fn an_amount_beyond_any_number_names_the_amount() {
    let test = setup(IdSource::random()).await;
    let key = test.key.expose_once();
    for amount in ["1e400".to_owned(), "9".repeat(309)] {
        let answer = send(
            &test,
            api_gateway_request(
                "POST",
                "/payments",
                &[],
                &[("content-type", "application/json"), ("x-api-key", key)],
                &format!(r#"{{"amount": {amount}, "currency": "USD"}}"#),
            ),
        )
        .await;
        assert_eq!((answer.status, answer.code()), (400, "parameter_invalid"));
        assert_eq!(answer.body["error"]["param"], "amount");
    }
}

#[tokio::test]
async fn a_payment_for_the_key_s_account() {
    let test = setup(IdSource::random()).await;
    let answer = pay_with_key(
        &test,
        test.key.expose_once(),
        json!({"amount": 1250, "currency": "eur", "description": "Order 1"}),
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert!(!answer.replayed);
    assert_eq!(answer.body["client_id"], test.account.as_str());
    assert_eq!(answer.body["currency"], "EUR");
    assert_eq!(answer.body["created_at"], "2026-12-01T10:00:00.000Z");
    let stored = test.store.payments();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id.as_str(), answer.body["id"]);
}

#[tokio::test]
async fn the_header_name_is_matched_in_any_case_as_api_gateway_passes_it() {
    let test = setup(IdSource::random()).await;
    for name in ["X-API-Key", "X-Api-Key", "x-api-key", "X-API-KEY"] {
        let answer = pay(&test, &[(name, test.key.expose_once())], usd(1)).await;
        assert_eq!(answer.status, 201, "{name}: {}", answer.body);
    }
    assert_eq!(test.store.payments().len(), 4);
}

#[tokio::test]
async fn a_key_in_the_query_string_or_body_is_not_a_key() {
    let test = setup(IdSource::random()).await;
    let key = test.key.expose_once();
    for name in ["api_key", "x-api-key", "apiKey", "key"] {
        let request = api_gateway_request(
            "POST",
            "/payments",
            &[(name, key)],
            &[("content-type", "application/json")],
            &usd(1).to_string(),
        );
        // The runtime did put the query string where a handler would look for it.
        assert_eq!(
            lambda_http::RequestExt::query_string_parameters(&request).first(name),
            Some(key)
        );
        let answer = send(&test, request).await;
        assert_eq!(
            (answer.status, answer.code()),
            (401, "missing_api_key"),
            "{name}"
        );
    }
    let answer = pay(
        &test,
        &[],
        json!({"amount": 1, "currency": "USD", "api_key": key}),
    )
    .await;
    assert_eq!((answer.status, answer.code()), (401, "missing_api_key"));
    assert!(test.store.payments().is_empty());
}

#[tokio::test]
async fn every_refused_key_gets_the_same_401_and_writes_nothing() {
    let test = setup(IdSource::random()).await;
    let unknown = ApiKey::generate(shared::domain::KeyKind::Secret, KeyEnvironment::Test).unwrap();
    let live = ApiKey::generate(shared::domain::KeyKind::Secret, KeyEnvironment::Live).unwrap();
    let mut tampered = test.key.expose_once().to_owned();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let mut bodies = Vec::new();
    for candidate in [
        "garbage",
        &tampered,
        unknown.expose_once(),
        live.expose_once(),
    ] {
        let answer = pay_with_key(&test, candidate, usd(5)).await;
        assert_eq!(
            (answer.status, answer.code()),
            (401, "invalid_api_key"),
            "{candidate}"
        );
        bodies.push(answer.without_request_id());
    }
    // The account's own key, once expired, once revoked, once with the account inactive.
    let digest = test.key.digest();
    let key = test.key.expose_once();
    let store = &test.store;
    let lives = [
        KeyLife {
            status: KeyStatus::Active,
            expires_at: Some(now()),
        },
        KeyLife {
            status: KeyStatus::Revoked,
            expires_at: None,
        },
    ];
    for life in lives {
        store.set_key_life(&digest, life);
        bodies.push(pay_with_key(&test, key, usd(5)).await.without_request_id());
    }
    store.set_key_life(
        &digest,
        KeyLife {
            status: KeyStatus::Active,
            expires_at: None,
        },
    );
    store.set_status(&test.account, AccountStatus::Inactive);
    bodies.push(pay_with_key(&test, key, usd(5)).await.without_request_id());
    assert_eq!(bodies.len(), 7);
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:#?}");
    assert!(store.payments().is_empty());

    store.set_status(&test.account, AccountStatus::Active);
    assert_eq!(pay_with_key(&test, key, usd(5)).await.status, 201);
}

#[tokio::test]
async fn a_key_in_its_grace_period_works_until_the_instant_it_ends() {
    let test = setup(IdSource::random()).await;
    let end = now().plus(Duration::from_secs(1));
    test.store.set_key_life(
        &test.key.digest(),
        KeyLife {
            status: KeyStatus::Active,
            expires_at: Some(end),
        },
    );
    assert_eq!(
        pay_with_key(&test, test.key.expose_once(), usd(1))
            .await
            .status,
        201
    );
    let later = State {
        edge: test.state.edge.with_clock(Clock::from_fn(move || end)),
        ..test.state
    };
    let test = Test {
        state: later,
        ..test
    };
    assert_eq!(
        pay_with_key(&test, test.key.expose_once(), usd(1))
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn invalid_requests_are_400_with_param_and_write_nothing() {
    let test = setup(IdSource::random()).await;
    let key = test.key.expose_once();
    for (body, param) in [
        (json!({"currency": "USD"}), "amount"),
        (json!({"amount": 0, "currency": "USD"}), "amount"),
        (json!({"amount": 1, "currency": "ABC"}), "currency"),
        (
            json!({"amount": 1, "currency": "USD", "client_id": test.account}),
            "client_id",
        ),
        (
            json!({"amount": 1, "currency": "USD", "description": "x".repeat(501)}),
            "description",
        ),
    ] {
        let answer = pay_with_key(&test, key, body.clone()).await;
        assert_eq!(answer.status, 400, "{body}");
        assert_eq!(answer.body["error"]["param"], param, "{body}");
    }
    let answer = pay(
        &test,
        &[("x-api-key", key), ("idempotency-key", &"k".repeat(256))],
        usd(1),
    )
    .await;
    assert_eq!(
        (answer.status, answer.body["error"]["param"].as_str()),
        (400, Some("Idempotency-Key"))
    );
    let request = api_gateway_request("GET", "/payments", &[], &[("x-api-key", key)], "");
    let answer = send(&test, request).await;
    assert_eq!((answer.status, answer.code()), (405, "method_not_allowed"));
    assert!(test.store.payments().is_empty());
}

#[tokio::test]
async fn an_unauthenticated_request_is_refused_before_its_body_is_read() {
    let test = setup(IdSource::random()).await;
    let answer = pay(&test, &[], json!({"amount": "not even valid"})).await;
    assert_eq!((answer.status, answer.code()), (401, "missing_api_key"));
    assert_eq!(test.store.key_lookups(), 0);
}

#[tokio::test]
async fn idempotency_replays_the_same_request_and_refuses_a_different_one() {
    let test = setup(IdSource::random()).await;
    let headers = [
        ("x-api-key", test.key.expose_once()),
        ("Idempotency-Key", "order-7"),
    ];
    let first = pay(&test, &headers, json!({"amount": 700, "currency": "usd"})).await;
    assert_eq!(first.status, 201);
    assert!(!first.replayed);
    let again = pay(
        &test,
        &headers,
        json!({"currency": "USD", "amount": 700, "description": null}),
    )
    .await;
    assert_eq!(again.status, 201);
    assert!(again.replayed);
    assert_eq!(again.raw, first.raw, "byte-identical replay");
    let other = pay(&test, &headers, json!({"amount": 701, "currency": "usd"})).await;
    assert_eq!(
        (other.status, other.code()),
        (422, "idempotency_key_reused")
    );
    assert_eq!(other.body["error"]["param"], "Idempotency-Key");
    assert_eq!(test.store.payments().len(), 1);
}

#[tokio::test]
async fn a_taken_drawn_id_is_drawn_again_and_the_other_payment_is_untouched() {
    let (test, taken) = setup_drawing("retry_TAKENTAKENTAKENTAKEN").await;
    // Another payment (another account's, even) already has the id handed out first.
    let other = Payment {
        id: taken.clone(),
        client_id: AccountId::generate().unwrap(),
        amount: Amount::parse(9).unwrap(),
        currency: Currency::parse("EUR").unwrap(),
        description: None,
        status: PaymentStatus::Pending,
        created_at: now(),
        idempotency_key: None,
    };
    let other_print = fingerprint(&NewPayment {
        amount: other.amount,
        currency: other.currency,
        description: None,
    });
    test.store.put_payment(other.clone(), other_print);

    let answer = pay_with_key(&test, test.key.expose_once(), usd(5)).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert!(!answer.replayed);
    assert_ne!(answer.body["id"], taken.as_str());
    assert_eq!(answer.body["client_id"], test.account.as_str());
    let stored = test.store.payments();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0], other, "the other payment is untouched");
}

#[tokio::test]
async fn a_retry_that_finds_its_own_write_answers_as_the_first_time() {
    // The payment this very request writes is already there (an earlier attempt of the same
    // call succeeded but its response was lost): 201, not a replay, and one payment.
    let (test, id) = setup_drawing("retry_OWNWRITEOWNWRITEOWNW").await;
    let new = NewPayment {
        amount: Amount::parse(5).unwrap(),
        currency: Currency::parse("USD").unwrap(),
        description: None,
    };
    let own = Payment {
        id: id.clone(),
        client_id: test.account.clone(),
        amount: new.amount,
        currency: new.currency,
        description: None,
        status: PaymentStatus::Pending,
        created_at: now(),
        idempotency_key: None,
    };
    test.store.put_payment(own, fingerprint(&new));
    let answer = pay_with_key(&test, test.key.expose_once(), usd(5)).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert!(!answer.replayed);
    assert_eq!(answer.body["id"], id.as_str());
    assert_eq!(test.store.payments().len(), 1);
}

#[tokio::test]
async fn storage_failures_are_503_to_retry_or_500_and_never_echoed() {
    let test = setup(IdSource::random()).await;
    let key = test.key.expose_once();
    let cases = [
        (
            Operation::FindKey,
            StoreError::Unavailable(anyhow::anyhow!("refused by 10.0.0.1")),
            503,
            "service_unavailable",
        ),
        (
            Operation::InsertPayment,
            StoreError::Throttled(anyhow::anyhow!("throttled")),
            503,
            "service_unavailable",
        ),
        (
            Operation::FindKey,
            StoreError::corrupt(shared::store::Entity::Key, "key_x", "status"),
            500,
            "internal_error",
        ),
    ];
    for (operation, error, status, code) in cases {
        test.store.fail_next(operation, error);
        let answer = pay_with_key(&test, key, usd(5)).await;
        assert_eq!((answer.status, answer.code()), (status, code));
        let text = String::from_utf8(answer.raw.clone()).unwrap();
        assert!(
            !text.contains("10.0.0.1") && !text.contains("key_x"),
            "{text}"
        );
    }
    // A write never sent (the connection was refused): a plain retryable 503.
    test.store.fail_next(
        Operation::InsertPayment,
        StoreError::Unavailable(anyhow::anyhow!("connection refused")),
    );
    let answer = pay_with_key(&test, key, usd(5)).await;
    assert_eq!((answer.status, answer.code()), (503, "service_unavailable"));
    assert!(answer.body["error"].get("payment_id").is_none());
    assert!(test.store.payments().is_empty());
}

#[tokio::test]
async fn a_write_that_may_have_happened_says_so_with_the_payment_it_targeted() {
    let (test, id) = setup_drawing("retry_MAYBEMAYBEMAYBEMAYBE").await;
    let key = test.key.expose_once();
    test.store.fail_next(
        Operation::InsertPayment,
        StoreError::OutcomeUnknown(anyhow::anyhow!("timeout after sending")),
    );
    let answer = pay_with_key(&test, key, usd(5)).await;
    assert_eq!(
        (answer.status, answer.code()),
        (503, "payment_outcome_unknown")
    );
    assert_eq!(answer.body["error"]["payment_id"], id.as_str());
    // Sent without a key: the 503 names the key the service drew, which retries it safely.
    assert_eq!(
        answer.body["error"]["idempotency_key"],
        "retry_MAYBEMAYBEMAYBEMAYBE"
    );
    let message = answer.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("Idempotency-Key: retry_MAYBEMAYBEMAYBEMAYBE"),
        "{message}"
    );
    // The retry with that key targets the same id: it makes or finds the one payment.
    let retried = pay(
        &test,
        &[
            ("x-api-key", key),
            ("Idempotency-Key", "retry_MAYBEMAYBEMAYBEMAYBE"),
        ],
        usd(5),
    )
    .await;
    assert_eq!(retried.status, 201, "{}", retried.body);
    assert_eq!(retried.body["id"], id.as_str());
    assert_eq!(test.store.payments().len(), 1);

    // With an Idempotency-Key the id is the key's, and the same request is the safe retry.
    test.store.fail_next(
        Operation::InsertPayment,
        StoreError::OutcomeUnknown(anyhow::anyhow!("lost response")),
    );
    let headers = [("x-api-key", key), ("Idempotency-Key", "order-9")];
    let answer = pay(&test, &headers, usd(5)).await;
    assert_eq!(
        (answer.status, answer.code()),
        (503, "payment_outcome_unknown")
    );
    let expected = payment_id_for(
        &test.account,
        &shared::domain::IdempotencyKey::parse(b"order-9").unwrap(),
    );
    assert_eq!(answer.body["error"]["payment_id"], expected.as_str());
    assert!(
        answer.body["error"].get("idempotency_key").is_none(),
        "the client's own key"
    );
    assert!(answer.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("same Idempotency-Key"));
    let retry = pay(&test, &headers, usd(5)).await;
    assert_eq!(
        (retry.status, retry.body["id"].as_str()),
        (201, Some(expected.as_str()))
    );
}

async fn pay_before_deadline(test: &Test, ms: u64) -> (Answer, Duration) {
    let request = api_gateway_request(
        "POST",
        "/payments",
        &[],
        &[
            ("content-type", "application/json"),
            ("x-api-key", test.key.expose_once()),
        ],
        &usd(5).to_string(),
    );
    let started = std::time::Instant::now();
    let answer = send(test, with_deadline_in(request, ms as i64)).await;
    (answer, started.elapsed())
}

#[tokio::test]
async fn a_hang_on_the_second_call_is_answered_before_the_deadline_as_maybe_written() {
    let (test, id) = setup_drawing("retry_HANGHANGHANGHANGHANG").await;
    test.store.hang_next(Operation::InsertPayment);
    let (answer, took) = pay_before_deadline(&test, 1_000).await;
    assert!(
        took < Duration::from_millis(1_000),
        "answered before the deadline: {took:?}"
    );
    assert!(
        took >= Duration::from_millis(700),
        "waited for the write: {took:?}"
    );
    assert_eq!(
        (answer.status, answer.code()),
        (503, "payment_outcome_unknown")
    );
    assert_eq!(answer.body["error"]["payment_id"], id.as_str());
}

#[tokio::test]
async fn a_hang_on_the_first_call_is_a_plain_503_before_the_deadline() {
    let test = setup(IdSource::random()).await;
    test.store.hang_next(Operation::FindKey);
    let (answer, took) = pay_before_deadline(&test, 1_000).await;
    assert!(took < Duration::from_millis(1_000), "{took:?}");
    assert_eq!((answer.status, answer.code()), (503, "service_unavailable"));
    assert!(answer.body["error"].get("payment_id").is_none());
    assert!(test.store.payments().is_empty());
}

#[tokio::test]
async fn a_key_use_record_that_hangs_or_fails_changes_nothing_for_the_caller() {
    let test = setup(IdSource::random()).await;
    test.store.hang_next(Operation::RecordKeyUse);
    let (answer, took) = pay_before_deadline(&test, 1_000).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert!(
        took < Duration::from_millis(500),
        "did not wait for it: {took:?}"
    );
    assert_eq!(test.store.payments().len(), 1);

    let test = setup(IdSource::random()).await;
    test.store.fail_next(
        Operation::RecordKeyUse,
        StoreError::OutcomeUnknown(anyhow::anyhow!("timed out")),
    );
    let answer = pay_with_key(&test, test.key.expose_once(), usd(5)).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(test.store.payments().len(), 1);
}

#[tokio::test]
async fn a_payment_records_its_key_s_use() {
    let test = setup(IdSource::random()).await;
    let answer = pay_with_key(&test, test.key.expose_once(), usd(5)).await;
    assert_eq!(answer.status, 201);
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let key = test.store.key(&test.key.digest()).unwrap();
    assert_eq!(key.last_used_at, Some(now()));
}

#[tokio::test]
async fn every_request_writes_one_metrics_line_with_its_outcome() {
    use shared::http::metrics;
    let test = setup(IdSource::random()).await;
    metrics::capture();
    let key = test.key.expose_once();
    let keyed = [("x-api-key", key), ("idempotency-key", "metrics-1")];
    assert_eq!(pay(&test, &keyed, usd(5)).await.status, 201);
    assert_eq!(pay(&test, &keyed, usd(5)).await.status, 201);
    let unknown = ApiKey::generate(
        shared::domain::KeyKind::Secret,
        shared::domain::KeyEnvironment::Test,
    )
    .unwrap();
    assert_eq!(
        pay_with_key(&test, unknown.expose_once(), usd(5))
            .await
            .status,
        401
    );
    assert_eq!(pay(&test, &[], usd(5)).await.status, 401);
    test.store.fail_next(
        Operation::InsertPayment,
        StoreError::Unavailable(anyhow::anyhow!("down")),
    );
    assert_eq!(pay_with_key(&test, key, usd(5)).await.status, 503);

    let lines = metrics::captured();
    let docs: Vec<Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let outcomes: Vec<(&str, &str)> = docs
        .iter()
        .map(|d| {
            (
                d["Outcome"].as_str().unwrap(),
                d["StatusClass"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("created", "2xx"),
            ("replayed", "2xx"),
            ("invalid_api_key", "4xx"),
            ("missing_api_key", "4xx"),
            ("service_unavailable", "5xx"),
        ]
    );
    let reasons: Vec<Option<&str>> = docs.iter().map(|d| d["Reason"].as_str()).collect();
    assert_eq!(
        reasons,
        [None, None, Some("unknown_key"), Some("missing"), None]
    );
    // The key lookup and the payment write, each timed; a missing key costs no call.
    let calls: Vec<u64> = docs
        .iter()
        .map(|d| d["DynamoDbCalls"].as_u64().unwrap())
        .collect();
    assert_eq!(calls, [2, 2, 1, 0, 2]);
    for line in &lines {
        assert!(!line.contains(&key[12..]), "no key in a metrics line");
        assert!(
            !line.contains(test.account.as_str()),
            "no account id either"
        );
    }
}

/// The handler of `test` with its clock at `at`, sharing the store and the rate limit shares.
fn at_time(test: &Test, at: Timestamp) -> Test {
    Test {
        state: State {
            edge: test.state.edge.with_clock(Clock::from_fn(move || at)),
            ids: IdSource::random(),
        },
        store: test.store.clone(),
        key: ApiKey::parse(test.key.expose_once(), KeyEnvironment::Test).unwrap(),
        account: test.account.clone(),
    }
}

/// Lets the background tasks of this single-threaded test runtime run.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn over_the_account_s_limit_a_request_is_429_with_retry_after_and_writes_nothing() {
    let test = setup(IdSource::random()).await;
    let store = &test.store;
    store.set_rate_limit(&test.account, Some(RateLimit::new(3).unwrap()));
    let key = test.key.expose_once();
    for n in 0..3 {
        assert_eq!(pay_with_key(&test, key, usd(n + 1)).await.status, 201);
    }
    settle().await;
    let claims = store.claims(&test.account);
    let audit = store.audit_events().len();

    let keyed = [
        ("x-api-key", key),
        ("idempotency-key", "order-4"),
        ("content-type", "application/json"),
    ];
    let refused = send(
        &test,
        api_gateway_request("POST", "/payments", &[], &keyed, &usd(4).to_string()),
    )
    .await;
    assert_eq!((refused.status, refused.code()), (429, "rate_limited"));
    assert_eq!(refused.body["error"]["type"], "rate_limit_error");
    // Three requests at the start of this second weigh on the sliding second until a third
    // of the next has passed: room again after 1.334 s, said as 2.
    assert_eq!(refused.retry_after.as_deref(), Some("2"));
    assert!(refused.body["error"].get("payment_id").is_none());
    // Nothing written: no payment, no audit event, no claim on the limit.
    settle().await;
    assert_eq!(store.payments().len(), 3);
    assert_eq!(store.audit_events().len(), audit);
    assert_eq!(store.claims(&test.account), claims);

    // Sooner, still refused; after Retry-After the same request is new to the service:
    // created, not replayed.
    let sooner = at_time(&test, now().plus(Duration::from_secs(1)));
    let early = send(
        &sooner,
        api_gateway_request("POST", "/payments", &[], &keyed, &usd(4).to_string()),
    )
    .await;
    assert_eq!(
        (early.status, early.retry_after.as_deref()),
        (429, Some("1"))
    );
    let later = at_time(&test, now().plus(Duration::from_secs(2)));
    let retried = send(
        &later,
        api_gateway_request("POST", "/payments", &[], &keyed, &usd(4).to_string()),
    )
    .await;
    assert_eq!(retried.status, 201, "{}", retried.body);
    assert!(!retried.replayed);
    assert_eq!(store.payments().len(), 4);
}

#[tokio::test]
async fn refused_keys_never_count_against_the_account_and_other_accounts_are_unaffected() {
    let test = setup(IdSource::random()).await;
    let store = &test.store;
    store.set_rate_limit(&test.account, Some(RateLimit::new(2).unwrap()));
    let key = test.key.expose_once();
    // A guesser with unknown keys and a near miss of the real one, and the real key while
    // it is revoked, hammer the service: all refused, none counted.
    let unknown = ApiKey::generate(shared::domain::KeyKind::Secret, KeyEnvironment::Test).unwrap();
    let mut tampered = key.to_owned();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let revoked = KeyLife {
        status: KeyStatus::Revoked,
        expires_at: None,
    };
    store.set_key_life(&test.key.digest(), revoked);
    for candidate in [unknown.expose_once(), &tampered, key] {
        for _ in 0..30 {
            assert_eq!(pay_with_key(&test, candidate, usd(1)).await.status, 401);
        }
    }
    store.set_key_life(
        &test.key.digest(),
        KeyLife {
            status: KeyStatus::Active,
            expires_at: None,
        },
    );
    // The account still has its whole allowance.
    let mut statuses = vec![];
    for _ in 0..4 {
        statuses.push(pay_with_key(&test, key, usd(1)).await.status);
    }
    assert_eq!(statuses, [201, 201, 429, 429]);
    // Another account (on the default limit) is not affected by this one being limited.
    let (other, _) = account_with_key(store, now()).await;
    for _ in 0..10 {
        assert_eq!(
            pay_with_key(&test, other.expose_once(), usd(1))
                .await
                .status,
            201
        );
    }
}

#[tokio::test]
async fn a_key_without_payments_write_is_403_before_its_body_is_read_and_writes_nothing() {
    use shared::domain::Permission;
    use shared::testing::{grant, restricted_key};
    let test = setup(IdSource::random()).await;
    let store = &test.store;
    let (reader, _) = restricted_key(
        store,
        &test.account,
        grant(&[Permission::PaymentsRead, Permission::KeysWrite], &[]),
        now(),
    )
    .await;
    // A body that is a 400 once read: the 403 comes first.
    let answer = pay_with_key(&test, reader.expose_once(), json!({"amount": "lots"})).await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert_eq!(answer.code(), "insufficient_permissions");
    assert_eq!(answer.body["error"]["type"], "permission_error");
    assert_eq!(
        answer.body["error"]["message"],
        "This key does not have the payments:write permission."
    );
    assert!(store.payments().is_empty());
    assert_eq!(store.calls(Operation::InsertPayment), 0);
    // A restricted key holding payments:write pays.
    let (writer, _) = restricted_key(
        store,
        &test.account,
        grant(&[Permission::PaymentsWrite], &[]),
        now(),
    )
    .await;
    let answer = pay_with_key(&test, writer.expose_once(), usd(100)).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(store.payments().len(), 1);
}
