//! The handler with the in-memory store: every outcome a caller can get, without DynamoDB.

use std::time::Duration;

use serde_json::Value;
use shared::domain::{
    fingerprint, AccountId, Amount, ApiKey, Currency, NewPayment, PaymentId, PaymentStatus,
    Timestamp,
};
use shared::store::StoreError;
use shared::testing::{account_with_key, api_gateway_request, MemoryStore, Operation};

use super::*;
use shared::domain::{Clock, KeyEnvironment, RateLimit};
use shared::testing::edge;

fn start() -> Timestamp {
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
    account_with_key(store, start()).await
}

async fn setup() -> Test {
    let store = MemoryStore::default();
    let (key, account) = account(&store).await;
    Test {
        state: edge(store.clone(), Clock::from_fn(start)),
        store,
        key,
        account,
    }
}

/// A payment of `owner`, created `seconds` after the start.
fn stored(test: &Test, owner: &AccountId, seconds: u64) -> Payment {
    let new = NewPayment {
        amount: Amount::parse(100 + seconds as i64).unwrap(),
        currency: Currency::parse("USD").unwrap(),
        description: None,
    };
    let payment = Payment {
        id: PaymentId::generate().unwrap(),
        client_id: owner.clone(),
        amount: new.amount,
        currency: new.currency,
        description: None,
        status: PaymentStatus::Pending,
        created_at: start().plus(Duration::from_secs(seconds)),
        idempotency_key: None,
    };
    test.store.put_payment(payment.clone(), fingerprint(&new));
    payment
}

struct Answer {
    status: u16,
    body: Value,
    raw: Vec<u8>,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    fn param(&self) -> &str {
        self.body["error"]["param"].as_str().unwrap_or_default()
    }

    fn ids(&self) -> Vec<String> {
        self.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .collect()
    }

    fn without_request_id(&self) -> String {
        let id = self.body["error"]["request_id"].as_str().unwrap();
        String::from_utf8(self.raw.clone())
            .unwrap()
            .replace(id, "<id>")
    }
}

async fn list_as(test: &Test, method: &str, key: Option<&str>, query: &[(&str, &str)]) -> Answer {
    let headers: Vec<(&str, &str)> = key.map(|key| ("x-api-key", key)).into_iter().collect();
    let response = handle(
        &test.state,
        api_gateway_request(method, "/payments", query, &headers, ""),
    )
    .await;
    let raw = response.body().to_vec();
    Answer {
        status: response.status().as_u16(),
        body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
        raw,
    }
}

async fn list(test: &Test, query: &[(&str, &str)]) -> Answer {
    list_as(test, "GET", Some(test.key.expose_once()), query).await
}

fn ids(payments: &[&Payment]) -> Vec<String> {
    payments.iter().map(|p| p.id.to_string()).collect()
}

/// An unknown parameter's name is echoed in `param`, bounded: a 20,000-character name does
/// not come back as a 20 KB body.
#[tokio::test]
async fn an_unknown_parameter_s_long_name_is_echoed_bounded() {
    let test = setup().await;
    let name = "x".repeat(20_000);
    let answer = list(&test, &[(name.as_str(), "1")]).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.body["error"]["code"], "parameter_unknown");
    assert_eq!(
        answer.body["error"]["param"],
        format!("{}…", "x".repeat(64))
    );
    assert!(answer.body.to_string().len() < 1_000, "{}", answer.body);
}

#[tokio::test]
async fn newest_first_ten_by_default_and_only_the_account_s_own() {
    let test = setup().await;
    let (_, other) = account(&test.store).await;
    let mine: Vec<Payment> = (0..12).map(|s| stored(&test, &test.account, s)).collect();
    stored(&test, &other, 100);
    let answer = list(&test, &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let newest: Vec<&Payment> = mine.iter().rev().take(10).collect();
    assert_eq!(answer.ids(), ids(&newest));
    assert_eq!(answer.body["has_more"], true);
    assert_eq!(answer.body.as_object().unwrap().len(), 2);
    // Each entry is the payment exactly as its 201 showed it.
    assert_eq!(
        answer.body["data"][0],
        serde_json::to_value(&mine[11]).unwrap()
    );

    let answer = list(&test, &[("limit", "100")]).await;
    assert_eq!(answer.ids().len(), 12);
    assert_eq!(answer.body["has_more"], false);
}

#[tokio::test]
async fn an_account_without_payments_gets_an_empty_list() {
    let test = setup().await;
    let (_, other) = account(&test.store).await;
    stored(&test, &other, 1);
    let answer = list(&test, &[]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.raw, br#"{"data":[],"has_more":false}"#);
}

#[tokio::test]
async fn both_cursors_page_through_every_payment_once() {
    let test = setup().await;
    let all: Vec<Payment> = (0..7).map(|s| stored(&test, &test.account, s)).collect();
    let newest_first: Vec<String> = all.iter().rev().map(|p| p.id.to_string()).collect();
    // Forwards with starting_after.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", "3")];
        if let Some(after) = &cursor {
            query.push(("starting_after", after));
        }
        let answer = list(&test, &query).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        seen.extend(answer.ids());
        cursor = seen.last().cloned();
        if answer.body["has_more"] == false {
            break;
        }
    }
    assert_eq!(seen, newest_first);
    // Backwards with ending_before, from the oldest: each page still newest first.
    let mut pages = Vec::new();
    let mut cursor = newest_first.last().unwrap().clone();
    loop {
        let answer = list(&test, &[("limit", "3"), ("ending_before", &cursor)]).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let page = answer.ids();
        cursor = page.first().unwrap().clone();
        pages.insert(0, page);
        if answer.body["has_more"] == false {
            break;
        }
    }
    let seen: Vec<String> = pages.concat();
    assert_eq!(seen, newest_first[..6].to_vec());
}

#[tokio::test]
async fn created_bounds_are_inclusive() {
    let test = setup().await;
    let all: Vec<Payment> = (0..5).map(|s| stored(&test, &test.account, s)).collect();
    let at = |s: u64| start().plus(Duration::from_secs(s)).to_rfc3339();
    let answer = list(&test, &[("created[gte]", &at(1)), ("created[lte]", &at(3))]).await;
    assert_eq!(answer.ids(), ids(&[&all[3], &all[2], &all[1]]));
    let answer = list(
        &test,
        &[
            ("created[gte]", &at(1)),
            ("starting_after", all[3].id.as_str()),
        ],
    )
    .await;
    assert_eq!(answer.ids(), ids(&[&all[2], &all[1]]));
    assert_eq!(answer.body["has_more"], false);
    let answer = list(&test, &[("created[gte]", &at(4)), ("created[lte]", &at(1))]).await;
    assert_eq!((answer.status, answer.ids().len()), (200, 0));
}

#[tokio::test]
async fn a_foreign_cursor_is_an_unknown_cursor() {
    let test = setup().await;
    let (_, other) = account(&test.store).await;
    stored(&test, &test.account, 1);
    let foreign = stored(&test, &other, 2);
    let unknown = PaymentId::generate().unwrap();
    for param in ["starting_after", "ending_before"] {
        let mut bodies = Vec::new();
        for id in [foreign.id.as_str(), unknown.as_str()] {
            let answer = list(&test, &[(param, id)]).await;
            assert_eq!((answer.status, answer.code()), (404, "resource_missing"));
            assert_eq!(answer.param(), param);
            bodies.push(answer.without_request_id());
        }
        assert_eq!(bodies[0], bodies[1]);
    }
}

#[tokio::test]
async fn bad_parameters_are_400_with_param() {
    let test = setup().await;
    let payment = stored(&test, &test.account, 1);
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: &[Case] = &[
        (&[("limit", "0")], "parameter_invalid", "limit"),
        (&[("limit", "101")], "parameter_invalid", "limit"),
        (&[("limit", "abc")], "parameter_invalid", "limit"),
        (
            &[
                ("starting_after", payment.id.as_str()),
                ("ending_before", payment.id.as_str()),
            ],
            "parameter_invalid",
            "ending_before",
        ),
        (
            &[("starting_after", "pay_nope")],
            "parameter_invalid",
            "starting_after",
        ),
        (
            &[("created[gte]", "today")],
            "parameter_invalid",
            "created[gte]",
        ),
        (&[("page", "2")], "parameter_unknown", "page"),
        (
            &[("limit", "1"), ("limit", "2")],
            "parameter_duplicate",
            "limit",
        ),
    ];
    for (query, code, param) in cases {
        let answer = list(&test, query).await;
        assert_eq!(
            (answer.status, answer.code(), answer.param()),
            (400, *code, *param),
            "{query:?}"
        );
    }
}

#[tokio::test]
async fn unauthenticated_requests_are_401_whatever_the_parameters() {
    let test = setup().await;
    let answer = list_as(&test, "GET", None, &[("limit", "abc")]).await;
    assert_eq!((answer.status, answer.code()), (401, "missing_api_key"));
    let unknown = ApiKey::generate(shared::domain::KeyKind::Secret, KeyEnvironment::Test).unwrap();
    let answer = list_as(&test, "GET", Some(unknown.expose_once()), &[]).await;
    assert_eq!((answer.status, answer.code()), (401, "invalid_api_key"));
    let answer = list_as(&test, "DELETE", Some(test.key.expose_once()), &[]).await;
    assert_eq!((answer.status, answer.code()), (405, "method_not_allowed"));
}

#[tokio::test]
async fn storage_failures_are_503_to_retry_or_500_and_never_echoed() {
    let test = setup().await;
    let payment = stored(&test, &test.account, 1);
    for (operation, error, status) in [
        (
            Operation::ListPayments,
            StoreError::Unavailable(anyhow::anyhow!("refused by 10.0.0.1")),
            503,
        ),
        (
            Operation::GetPayment,
            StoreError::Throttled(anyhow::anyhow!("refused by 10.0.0.1")),
            503,
        ),
        (
            Operation::ListPayments,
            StoreError::corrupt(shared::store::Entity::Payment, "pay_x", "amount"),
            500,
        ),
    ] {
        test.store.fail_next(operation, error);
        let answer = list(&test, &[("starting_after", payment.id.as_str())]).await;
        assert_eq!(answer.status, status);
        let text = String::from_utf8(answer.raw.clone()).unwrap();
        assert!(
            !text.contains("10.0.0.1") && !text.contains("pay_x"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn over_the_account_s_limit_a_list_is_429() {
    let test = setup().await;
    test.store
        .set_rate_limit(&test.account, Some(RateLimit::new(1).unwrap()));
    assert_eq!(list(&test, &[]).await.status, 200);
    let refused = list(&test, &[]).await;
    assert_eq!((refused.status, refused.code()), (429, "rate_limited"));
}

#[tokio::test]
async fn a_key_without_payments_read_is_403() {
    use shared::domain::Permission;
    use shared::testing::{grant, restricted_key};
    let test = setup().await;
    let (keys_only, _) = restricted_key(
        &test.store,
        &test.account,
        grant(&[Permission::KeysRead], &[]),
        start(),
    )
    .await;
    let answer = list_as(&test, "GET", Some(keys_only.expose_once()), &[]).await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert_eq!(answer.body["error"]["code"], "insufficient_permissions");
    assert_eq!(
        answer.body["error"]["message"],
        "This key does not have the payments:read permission."
    );
    assert_eq!(test.store.calls(Operation::ListPayments), 0);
}
