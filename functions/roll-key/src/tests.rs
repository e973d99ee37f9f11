//! The handler with the in-memory store: rolls, their grace, and every refusal.

use serde_json::{json, Value};
use shared::domain::{
    AccountId, ApiKey, Clock, IdSource, IpAllowList, KeyEnvironment, KeyGrant, KeyId, KeyState,
    Permission, Permissions, Timestamp,
};
use shared::testing::{account_with_key, edge, restricted_key, Event, MemoryStore};

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

fn secret_key_id(test: &Test) -> KeyId {
    test.store.key(&test.key.digest()).unwrap().key_id
}

async fn roll(test: &Test, with: &ApiKey, id: &str, body: Option<Value>) -> (u16, Value, String) {
    let mut event = Event::new("POST", "/keys/{id}/roll")
        .path(&format!("/keys/{id}/roll"))
        .param("id", id)
        .header("x-api-key", with.expose_once());
    if let Some(body) = body {
        event = event.json(&body);
    }
    let response = handle(&test.state, event.request()).await;
    let raw = String::from_utf8(response.body().to_vec()).unwrap();
    let body: Value = serde_json::from_str(&raw).unwrap();
    let masked = raw.replace(body["error"]["request_id"].as_str().unwrap_or("-"), "<id>");
    (response.status().as_u16(), body, masked)
}

fn state_of(test: &Test, id: &KeyId) -> KeyState {
    let record = test.store.account_record(&test.account).unwrap();
    record
        .keys
        .iter()
        .find(|k| &k.key_id == id)
        .unwrap()
        .life
        .state_at(now())
}

#[tokio::test]
async fn a_roll_makes_a_key_of_the_same_kind_and_grant_and_retires_the_old_after_its_grace() {
    let test = setup().await;
    let store = &test.store;
    let grant = KeyGrant {
        name: Some(shared::domain::KeyName::parse("nightly job".into()).unwrap()),
        permissions: Permissions::of([Permission::PaymentsRead]),
        allowed_ips: IpAllowList::parse(["203.0.113.0/24"]).unwrap(),
        expires_at: None,
    };
    let (_, job) = restricted_key(store, &test.account, grant, now()).await;
    let (status, body, _) = roll(
        &test,
        &test.key,
        job.as_str(),
        Some(json!({"expires_in": 3600})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let secret = body["api_key"].as_str().unwrap();
    assert!(secret.starts_with("rk_test_"), "{secret}");
    assert_ne!(body["id"], job.as_str());
    assert_eq!(body["name"], "nightly job");
    assert_eq!(body["permissions"], json!(["payments:read"]));
    assert_eq!(body["allowed_ips"], json!(["203.0.113.0/24"]));
    assert_eq!(body["status"], "active");
    assert_eq!(state_of(&test, &job), KeyState::Expiring);
    let record = store.account_record(&test.account).unwrap();
    let old = record.keys.iter().find(|k| k.key_id == job).unwrap();
    assert_eq!(
        old.life.expires_at,
        Some(now().plus(std::time::Duration::from_secs(3600)))
    );
    let new = ApiKey::parse(secret, KeyEnvironment::Test).unwrap();
    assert_eq!(
        store.key(&new.digest()).unwrap().permissions,
        Permissions::of([Permission::PaymentsRead])
    );
    assert_eq!(
        store.audit_events().last().unwrap().action.as_str(),
        "key.rolled"
    );
}

#[tokio::test]
async fn the_secret_key_rolls_into_a_secret_key_and_no_body_means_at_once() {
    let test = setup().await;
    let other = secret_key_id(&test);
    // A secret key rolling itself needs a grace: a lost answer must not lock it out.
    let (status, body, _) = roll(&test, &test.key, other.as_str(), None).await;
    assert_eq!(
        (status, body["error"]["param"].as_str()),
        (400, Some("expires_in")),
        "{body}"
    );
    let (status, body, _) = roll(
        &test,
        &test.key,
        other.as_str(),
        Some(json!({"expires_in": 59})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body, _) = roll(
        &test,
        &test.key,
        other.as_str(),
        Some(json!({"expires_in": 60})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(body["api_key"].as_str().unwrap().starts_with("sk_test_"));
    assert_eq!(body["kind"], "secret");
    // The new secret key rolls a restricted key at once, with no body.
    let new = ApiKey::parse(body["api_key"].as_str().unwrap(), KeyEnvironment::Test).unwrap();
    let (_, job) = restricted_key(
        &test.store,
        &test.account,
        KeyGrant {
            name: None,
            permissions: Permissions::of([Permission::PaymentsRead]),
            allowed_ips: IpAllowList::default(),
            expires_at: None,
        },
        now(),
    )
    .await;
    let (status, _, _) = roll(&test, &new, job.as_str(), None).await;
    assert_eq!(status, 201);
    assert_eq!(
        state_of(&test, &job),
        KeyState::Expired,
        "grace 0: stopped at once"
    );
}

#[tokio::test]
async fn only_an_active_key_rolls_and_power_only_flows_down() {
    let test = setup().await;
    let secret = secret_key_id(&test);
    let store = &test.store;
    let (manager, _) = restricted_key(
        store,
        &test.account,
        KeyGrant {
            name: None,
            permissions: Permissions::of([Permission::KeysWrite, Permission::PaymentsRead]),
            allowed_ips: IpAllowList::default(),
            expires_at: None,
        },
        now(),
    )
    .await;
    // A restricted key never rolls the secret key (it would obtain one).
    let (status, body, _) = roll(
        &test,
        &manager,
        secret.as_str(),
        Some(json!({"expires_in": 600})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["error"]["message"],
        "This key does not have the payments:write permission."
    );
    // Once rolled, the old key is expiring: a second roll is refused.
    let (status, _, _) = roll(
        &test,
        &test.key,
        secret.as_str(),
        Some(json!({"expires_in": 600})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, body, _) = roll(
        &test,
        &test.key,
        secret.as_str(),
        Some(json!({"expires_in": 600})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("key_not_active")),
        "{body}"
    );
    for bad in [
        json!({"expires_in": 604801}),
        json!({"expires_in": -1}),
        json!({"expires_in": "1h"}),
        json!({"grace": 1}),
    ] {
        let (status, _, _) = roll(&test, &test.key, secret.as_str(), Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}");
    }
}

#[tokio::test]
async fn a_key_with_an_expires_at_ahead_is_expiring_and_cannot_be_rolled() {
    let test = setup().await;
    let store = &test.store;
    let end = now().plus(std::time::Duration::from_secs(86_400));
    let (_, job) = restricted_key(
        store,
        &test.account,
        KeyGrant {
            name: None,
            permissions: Permissions::of([Permission::PaymentsRead]),
            allowed_ips: IpAllowList::default(),
            expires_at: Some(end),
        },
        now(),
    )
    .await;
    assert_eq!(state_of(&test, &job), KeyState::Expiring);
    let events = store.audit_events().len();
    for body in [None, Some(json!({"expires_in": 3600}))] {
        let (status, answer, _) = roll(&test, &test.key, job.as_str(), body).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (409, Some("key_not_active")),
            "{answer}"
        );
    }
    let record = store.account_record(&test.account).unwrap();
    let old = record.keys.iter().find(|k| k.key_id == job).unwrap();
    assert_eq!(old.life.expires_at, Some(end), "nothing changed");
    assert_eq!(record.keys.len(), 2);
    assert_eq!(store.audit_events().len(), events);
}

#[tokio::test]
async fn a_restricted_key_holding_every_permission_never_rolls_the_secret_key() {
    let test = setup().await;
    let secret = secret_key_id(&test);
    let store = &test.store;
    let every = KeyGrant {
        name: None,
        permissions: Permissions::ALL,
        allowed_ips: IpAllowList::default(),
        expires_at: None,
    };
    let (manager, _) = restricted_key(store, &test.account, every.clone(), now()).await;
    let (_, peer) = restricted_key(store, &test.account, every, now()).await;
    let events = store.audit_events().len();
    let keys = store.account_record(&test.account).unwrap().keys.len();
    // It would be handed a new secret key, and stop the old one.
    let (status, body, _) = roll(
        &test,
        &manager,
        secret.as_str(),
        Some(json!({"expires_in": 600})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("insufficient_permissions")),
        "{body}"
    );
    assert_eq!(body["error"]["type"], "permission_error");
    assert_eq!(
        body["error"]["message"],
        "A restricted key cannot roll or revoke a secret key, whatever permissions it holds: use a secret key."
    );
    assert_eq!(state_of(&test, &secret), KeyState::Active);
    assert_eq!(store.audit_events().len(), events, "nothing written");
    assert_eq!(
        store.account_record(&test.account).unwrap().keys.len(),
        keys
    );
    // A restricted key with as much power is its to roll, into a restricted key.
    let (status, body, _) = roll(&test, &manager, peer.as_str(), None).await;
    assert_eq!(status, 201, "{body}");
    assert!(body["api_key"].as_str().unwrap().starts_with("rk_test_"));
}

#[tokio::test]
async fn unknown_foreign_and_malformed_ids_get_the_same_404() {
    let test = setup().await;
    let other_store_account = account_with_key(&test.store, now()).await;
    let foreign = test
        .store
        .key(&other_store_account.0.digest())
        .unwrap()
        .key_id;
    let mut bodies = Vec::new();
    for id in [foreign.as_str(), "key_00000000000000000000", "not-a-key"] {
        let (status, body, masked) =
            roll(&test, &test.key, id, Some(json!({"expires_in": 600}))).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("resource_missing")),
            "{id}"
        );
        assert_eq!(body["error"]["param"], "id");
        bodies.push(masked);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
    assert_eq!(state_of(&test, &secret_key_id(&test)), KeyState::Active);
}
