//! The handler with the in-memory store: every outcome a caller can get, without DynamoDB.

use serde_json::Value;
use shared::domain::{
    fingerprint, AccountId, Amount, ApiKey, Currency, Description, NewPayment, PaymentStatus,
    Timestamp,
};
use shared::store::StoreError;
use shared::testing::{
    account_with_key, api_gateway_route_request, with_deadline_in, MemoryStore, Operation,
};

use super::*;
use shared::domain::{Clock, KeyEnvironment, RateLimit};
use shared::testing::edge;

fn now() -> Timestamp {
    Timestamp::parse("2026-12-01T10:00:00Z").unwrap()
}

struct Test {
    state: Edge<MemoryStore>,
    /// The store the handler's edge holds, for the test to arrange and inspect.
    store: MemoryStore,
    key: ApiKey,
    account: AccountId,
}

async fn account(store: &MemoryStore) -> (ApiKey, AccountId) {
    account_with_key(store, now()).await
}

async fn setup() -> Test {
    let store = MemoryStore::default();
    let (key, account) = account(&store).await;
    Test {
        state: edge(store.clone(), Clock::from_fn(now)),
        store,
        key,
        account,
    }
}

fn stored(test: &Test, owner: &AccountId) -> Payment {
    let new = NewPayment {
        amount: Amount::parse(1250).unwrap(),
        currency: Currency::parse("EUR").unwrap(),
        description: Some(Description::parse("Order 1".into()).unwrap()),
    };
    let payment = Payment {
        id: PaymentId::generate().unwrap(),
        client_id: owner.clone(),
        amount: new.amount,
        currency: new.currency,
        description: new.description.clone(),
        status: PaymentStatus::Pending,
        created_at: now(),
        idempotency_key: None,
    };
    test.store.put_payment(payment.clone(), fingerprint(&new));
    payment
}

struct Answer {
    status: u16,
    body: Value,
    raw: Vec<u8>,
    allow: Option<String>,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    fn without_request_id(&self) -> String {
        let id = self.body["error"]["request_id"].as_str().unwrap();
        String::from_utf8(self.raw.clone())
            .unwrap()
            .replace(id, "<id>")
    }
}

/// `method /payments/{id}` with the path parameter as API Gateway passes it.
async fn get(test: &Test, method: &str, path: &str, key: Option<&str>) -> Answer {
    let headers: Vec<(&str, &str)> = key.map(|key| ("x-api-key", key)).into_iter().collect();
    let id = path.trim_start_matches("/payments/");
    let request =
        api_gateway_route_request(method, "/payments/{id}", path, &[("id", id)], &[], &headers);
    let response = handle(&test.state, request).await;
    let raw = response.body().to_vec();
    Answer {
        status: response.status().as_u16(),
        body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
        allow: response
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned()),
        raw,
    }
}

#[tokio::test]
async fn the_account_s_payment_exactly_as_created() {
    let test = setup().await;
    let payment = stored(&test, &test.account);
    let answer = get(
        &test,
        "GET",
        &format!("/payments/{}", payment.id),
        Some(test.key.expose_once()),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    // The same bytes the 201 carried: the one serialization of a payment.
    assert_eq!(answer.raw, serde_json::to_vec(&payment).unwrap());
    assert_eq!(answer.body["created_at"], "2026-12-01T10:00:00.000Z");
}

#[tokio::test]
async fn unknown_foreign_and_malformed_ids_get_the_same_404() {
    let test = setup().await;
    let (_, other) = account(&test.store).await;
    let foreign = stored(&test, &other);
    let unknown = PaymentId::generate().unwrap();
    let key = test.key.expose_once();
    let mut bodies = Vec::new();
    for id in [
        foreign.id.as_str(),
        unknown.as_str(),
        "pay_short",
        "acct_AAAAAAAAAAAAAAAAAAAA",
        "pay_AAAAAAAAAAAAAAAAAAA%21",
    ] {
        let answer = get(&test, "GET", &format!("/payments/{id}"), Some(key)).await;
        assert_eq!(
            (answer.status, answer.code()),
            (404, "resource_missing"),
            "{id}"
        );
        assert_eq!(answer.body["error"]["param"], "id");
        assert!(!answer.without_request_id().contains(id), "{id}");
        bodies.push(answer.without_request_id());
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:#?}");
}

#[tokio::test]
async fn unauthenticated_requests_are_401_before_any_lookup() {
    let test = setup().await;
    let payment = stored(&test, &test.account);
    let path = format!("/payments/{}", payment.id);
    let answer = get(&test, "GET", &path, None).await;
    assert_eq!((answer.status, answer.code()), (401, "missing_api_key"));
    let unknown = ApiKey::generate(shared::domain::KeyKind::Secret, KeyEnvironment::Test).unwrap();
    let answer = get(&test, "GET", &path, Some(unknown.expose_once())).await;
    assert_eq!((answer.status, answer.code()), (401, "invalid_api_key"));
    let answer = get(&test, "GET", &path, Some("garbage")).await;
    assert_eq!((answer.status, answer.code()), (401, "invalid_api_key"));
}

#[tokio::test]
async fn other_methods_are_405_naming_get() {
    let test = setup().await;
    let answer = get(&test, "POST", "/payments/pay_AAAAAAAAAAAAAAAAAAAA", None).await;
    assert_eq!((answer.status, answer.code()), (405, "method_not_allowed"));
    assert_eq!(answer.allow.as_deref(), Some("GET"));
}

#[tokio::test]
async fn storage_failures_are_503_to_retry_or_500_and_never_echoed() {
    let test = setup().await;
    let payment = stored(&test, &test.account);
    let path = format!("/payments/{}", payment.id);
    let key = test.key.expose_once();
    for (operation, error, status) in [
        (
            Operation::GetPayment,
            StoreError::Unavailable(anyhow::anyhow!("refused by 10.0.0.1")),
            503,
        ),
        (
            Operation::FindKey,
            StoreError::Throttled(anyhow::anyhow!("refused by 10.0.0.1")),
            503,
        ),
        (
            Operation::GetPayment,
            StoreError::corrupt(shared::store::Entity::Payment, "pay_x", "amount"),
            500,
        ),
    ] {
        test.store.fail_next(operation, error);
        let answer = get(&test, "GET", &path, Some(key)).await;
        assert_eq!(answer.status, status);
        let text = String::from_utf8(answer.raw.clone()).unwrap();
        assert!(
            !text.contains("10.0.0.1") && !text.contains("pay_x"),
            "{text}"
        );
    }
    assert_eq!(get(&test, "GET", &path, Some(key)).await.status, 200);
}

#[tokio::test]
async fn a_hanging_read_is_a_503_before_the_invocation_deadline() {
    let test = setup().await;
    let payment = stored(&test, &test.account);
    let path = format!("/payments/{}", payment.id);
    let headers = [("x-api-key", test.key.expose_once())];
    let request = api_gateway_route_request(
        "GET",
        "/payments/{id}",
        &path,
        &[("id", payment.id.as_str())],
        &[],
        &headers,
    );
    let request = with_deadline_in(request, 1_000);
    test.store.hang_next(Operation::GetPayment);
    let started = std::time::Instant::now();
    let response = handle(&test.state, request).await;
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_millis(1_000), "{took:?}");
    assert_eq!(response.status(), 503);
    let body: Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(body["error"]["code"], "service_unavailable");
}

#[tokio::test]
async fn over_the_account_s_limit_a_read_is_429_and_other_accounts_read_on() {
    let test = setup().await;
    let payment = stored(&test, &test.account);
    let path = format!("/payments/{}", payment.id);
    test.store
        .set_rate_limit(&test.account, Some(RateLimit::new(2).unwrap()));
    let key = test.key.expose_once();
    let mut statuses = vec![];
    for _ in 0..3 {
        statuses.push(get(&test, "GET", &path, Some(key)).await.status);
    }
    assert_eq!(statuses, [200, 200, 429]);
    let refused = get(&test, "GET", &path, Some(key)).await;
    assert_eq!(refused.code(), "rate_limited");
    let (other_key, other) = account(&test.store).await;
    let theirs = stored(&test, &other);
    let theirs = format!("/payments/{}", theirs.id);
    for _ in 0..5 {
        let answer = get(&test, "GET", &theirs, Some(other_key.expose_once())).await;
        assert_eq!(answer.status, 200);
    }
}

#[tokio::test]
async fn a_key_without_payments_read_is_403_and_write_implies_read() {
    use shared::domain::Permission;
    use shared::testing::{grant, restricted_key};
    let test = setup().await;
    let payment = stored(&test, &test.account);
    let path = format!("/payments/{}", payment.id);
    let (keys_only, _) = restricted_key(
        &test.store,
        &test.account,
        grant(&[Permission::KeysWrite], &[]),
        now(),
    )
    .await;
    let answer = get(&test, "GET", &path, Some(keys_only.expose_once())).await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert_eq!(
        answer.body["error"]["message"],
        "This key does not have the payments:read permission."
    );
    assert_eq!(test.store.calls(Operation::GetPayment), 0);
    let (writer, _) = restricted_key(
        &test.store,
        &test.account,
        grant(&[Permission::PaymentsWrite], &[]),
        now(),
    )
    .await;
    let answer = get(&test, "GET", &path, Some(writer.expose_once())).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}
