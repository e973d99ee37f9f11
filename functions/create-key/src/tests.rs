//! The handler with the in-memory store: what a key may create, and every refusal.

use serde_json::{json, Value};
use shared::domain::{
    AccountId, ApiKey, Clock, IdSource, KeyEnvironment, Permission, Permissions, Timestamp,
};
use shared::store::lifecycle::MAX_LIVE_KEYS;
use shared::testing::{account_with_key, edge, grant, restricted_key, Event, MemoryStore};

use super::*;

fn now() -> Timestamp {
    Timestamp::parse("2026-12-01T10:00:00Z").unwrap()
}

struct Test {
    state: State<MemoryStore>,
    /// The store the handler's edge holds, for the test to arrange and inspect.
    store: MemoryStore,
    key: ApiKey,
    account: AccountId,
}

async fn setup() -> Test {
    let store = MemoryStore::default();
    let (key, account) = account_with_key(&store, now()).await;
    Test {
        state: State {
            edge: edge(store.clone(), Clock::from_fn(now)),
            ids: IdSource::random(),
        },
        store,
        key,
        account,
    }
}

async fn create(test: &Test, key: &ApiKey, body: Value) -> (u16, Value) {
    let request = Event::new("POST", "/keys")
        .header("x-api-key", key.expose_once())
        .json(&body)
        .request();
    let response = handle(&test.state, request).await;
    (
        response.status().as_u16(),
        serde_json::from_slice(response.body()).unwrap(),
    )
}

fn live_keys(test: &Test) -> usize {
    test.store.account_record(&test.account).unwrap().keys.len()
}

#[tokio::test]
async fn the_secret_key_creates_a_restricted_key_that_holds_what_it_was_given() {
    let test = setup().await;
    let (status, body) = create(
        &test,
        &test.key,
        json!({"name": "reconciliation job", "permissions": ["payments:read"],
               "expires_at": "2027-06-01T00:00:00Z", "allowed_ips": ["203.0.113.0/24"]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let secret = body["api_key"].as_str().unwrap();
    assert!(
        secret.starts_with("rk_test_") && secret.len() == 57,
        "{secret}"
    );
    let key = ApiKey::parse(secret, KeyEnvironment::Test).unwrap();
    assert_eq!(body["kind"], "restricted");
    assert_eq!(body["name"], "reconciliation job");
    assert_eq!(body["prefix"], key.display_prefix().as_str());
    assert_eq!(body["permissions"], json!(["payments:read"]));
    assert_eq!(body["allowed_ips"], json!(["203.0.113.0/24"]));
    assert_eq!(body["status"], "expiring");
    assert_eq!(body["expires_at"], "2027-06-01T00:00:00.000Z");
    assert_eq!(body["created_at"], "2026-12-01T10:00:00.000Z");
    assert_eq!(body["last_used_at"], Value::Null);
    // The key the auth step reads holds exactly that.
    let stored = test.store.key(&key.digest()).unwrap();
    assert_eq!(
        stored.permissions,
        Permissions::of([Permission::PaymentsRead])
    );
    assert_eq!(stored.account_id, test.account);
    // Never the digest.
    assert!(!body.to_string().contains(&key.digest().to_hex()));
    let events = test.store.audit_events();
    let event = events.last().unwrap();
    assert_eq!(event.action.as_str(), "key.created");
    assert!(
        event.actor.as_str().starts_with("key:key_"),
        "{:?}",
        event.actor
    );
    assert!(event.request_id.is_some());
}

#[tokio::test]
async fn write_implies_read_in_the_answer() {
    let test = setup().await;
    let (status, body) = create(
        &test,
        &test.key,
        json!({"name": "ops", "permissions": ["keys:write", "payments:write"]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["permissions"],
        json!(["payments:read", "payments:write", "keys:read", "keys:write"])
    );
    assert_eq!(body["allowed_ips"], json!([]));
    assert_eq!(body["status"], "active");
}

#[tokio::test]
async fn power_only_flows_down() {
    let test = setup().await;
    let store = &test.store;
    // A reader cannot create keys at all: keys:write is the route's permission.
    let (reader, _) = restricted_key(
        store,
        &test.account,
        grant(&[Permission::PaymentsRead], &[]),
        now(),
    )
    .await;
    let before = live_keys(&test);
    let (status, body) = create(
        &test,
        &reader,
        json!({"name": "x", "permissions": ["payments:read"]}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("insufficient_permissions"))
    );
    assert_eq!(body["error"]["type"], "permission_error");
    assert_eq!(
        body["error"]["message"],
        "This key does not have the keys:write permission."
    );
    // A key manager without payments:write cannot hand it out.
    let (manager, _) = restricted_key(
        store,
        &test.account,
        grant(&[Permission::KeysWrite, Permission::PaymentsRead], &[]),
        now(),
    )
    .await;
    let (status, body) = create(
        &test,
        &manager,
        json!({"name": "x", "permissions": ["payments:write"]}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["error"]["message"],
        "This key does not have the payments:write permission."
    );
    // What it holds, it may grant.
    let (status, _) = create(
        &test,
        &manager,
        json!({"name": "x", "permissions": ["payments:read"]}),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(live_keys(&test), before + 2, "one refused, one created");
}

#[tokio::test]
async fn a_key_with_an_end_creates_only_keys_that_end_no_later() {
    let test = setup().await;
    let store = &test.store;
    let ends = "2026-12-02T10:00:00.000Z";
    let (manager, _) = restricted_key(
        store,
        &test.account,
        shared::domain::KeyGrant {
            expires_at: Timestamp::parse(ends),
            ..grant(&[Permission::KeysWrite, Permission::PaymentsRead], &[])
        },
        now(),
    )
    .await;
    let before = live_keys(&test);
    for body in [
        json!({"name": "x", "permissions": ["payments:read"]}),
        json!({"name": "x", "permissions": ["payments:read"], "expires_at": "2026-12-02T10:00:01Z"}),
    ] {
        let (status, answer) = create(&test, &manager, body).await;
        assert_eq!(status, 403, "{answer}");
        assert_eq!(answer["error"]["code"], "insufficient_permissions");
        assert_eq!(answer["error"]["param"], "expires_at");
    }
    assert_eq!(live_keys(&test), before, "nothing created");
    let (status, answer) = create(
        &test,
        &manager,
        json!({"name": "x", "permissions": ["payments:read"], "expires_at": ends}),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["expires_at"], ends);
    // The secret key, which has no end, gives any end or none.
    let (status, _) = create(
        &test,
        &test.key,
        json!({"name": "x", "permissions": ["payments:read"]}),
    )
    .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn a_key_limited_to_ranges_creates_keys_within_them_only() {
    let test = setup().await;
    let store = &test.store;
    let office = grant(
        &[Permission::KeysWrite, Permission::PaymentsRead],
        &["203.0.113.0/24"],
    );
    let (limited, _) = restricted_key(store, &test.account, office, now()).await;
    let request = |body: Value| {
        Event::new("POST", "/keys")
            .header("x-api-key", limited.expose_once())
            .json(&body)
            .source_ip("203.0.113.9")
            .request()
    };
    for (ips, status) in [
        (json!(["203.0.113.128/25"]), 201),
        (json!(["203.0.113.0/24", "203.0.113.7"]), 201),
        (json!(["198.51.100.0/24"]), 403),
        (json!([]), 403),
        (Value::Null, 403),
    ] {
        let response = handle(
            &test.state,
            request(json!({"name": "n", "permissions": ["payments:read"], "allowed_ips": ips})),
        )
        .await;
        assert_eq!(response.status().as_u16(), status, "{ips}");
        if status == 403 {
            let body: Value = serde_json::from_slice(response.body()).unwrap();
            assert_eq!(body["error"]["param"], "allowed_ips", "{body}");
        }
    }
}

#[tokio::test]
async fn bad_bodies_are_400_naming_the_field_and_create_nothing() {
    let test = setup().await;
    let before = live_keys(&test);
    for (body, param) in [
        (json!({"permissions": ["payments:read"]}), "name"),
        (
            json!({"name": "", "permissions": ["payments:read"]}),
            "name",
        ),
        (json!({"name": "n"}), "permissions"),
        (json!({"name": "n", "permissions": []}), "permissions"),
        (
            json!({"name": "n", "permissions": ["payments:delete"]}),
            "permissions",
        ),
        (json!({"name": "n", "permissions": [7]}), "permissions"),
        (
            json!({"name": "n", "permissions": ["keys:read"], "allowed_ips": ["203.0.113.7/24"]}),
            "allowed_ips",
        ),
        (
            json!({"name": "n", "permissions": ["keys:read"], "allowed_ips": ["nowhere"]}),
            "allowed_ips",
        ),
        (
            json!({"name": "n", "permissions": ["keys:read"], "expires_at": "2020-01-01T00:00:00Z"}),
            "expires_at",
        ),
        (
            json!({"name": "n", "permissions": ["keys:read"], "expires_at": "soon"}),
            "expires_at",
        ),
        (
            json!({"name": "n", "permissions": ["keys:read"], "kind": "secret"}),
            "kind",
        ),
    ] {
        let (status, answer) = create(&test, &test.key, body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["param"], param, "{body}: {answer}");
    }
    assert_eq!(live_keys(&test), before);
}

#[tokio::test]
async fn at_most_ten_keys_work_at_once() {
    let test = setup().await;
    for _ in 1..MAX_LIVE_KEYS {
        let (status, _) = create(
            &test,
            &test.key,
            json!({"name": "n", "permissions": ["payments:read"]}),
        )
        .await;
        assert_eq!(status, 201);
    }
    let (status, body) = create(
        &test,
        &test.key,
        json!({"name": "n", "permissions": ["payments:read"]}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("too_many_live_keys"))
    );
}
