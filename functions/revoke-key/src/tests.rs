//! The handler with the in-memory store: revocation, lockout protection, and undoing a roll
//! whose answer was lost.

use serde_json::Value;
use shared::domain::{
    AccountId, ApiKey, Clock, IdSource, KeyEnvironment, KeyId, KeyState, Permission, Timestamp,
};
use shared::store::{KeyMint, Origin, RollKey};
use shared::testing::{account_with_key, edge, grant, restricted_key, Event, MemoryStore};

use super::*;

fn now() -> Timestamp {
    Timestamp::parse("2026-12-01T10:00:00Z").unwrap()
}

struct Test {
    edge: Edge<MemoryStore>,
    /// The store the handler's edge holds, for the test to arrange and inspect.
    store: MemoryStore,
    key: ApiKey,
    account: AccountId,
}

async fn setup() -> Test {
    let store = MemoryStore::default();
    let (key, account) = account_with_key(&store, now()).await;
    Test {
        edge: edge(store.clone(), Clock::from_fn(now)),
        store,
        key,
        account,
    }
}

fn id_of(test: &Test, key: &ApiKey) -> KeyId {
    test.store.key(&key.digest()).unwrap().key_id
}

async fn revoke(test: &Test, with: &ApiKey, id: &str) -> (u16, Value, String) {
    let request = Event::new("DELETE", "/keys/{id}")
        .path(&format!("/keys/{id}"))
        .param("id", id)
        .header("x-api-key", with.expose_once())
        .request();
    let response = handle(&test.edge, request).await;
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
async fn a_revoked_key_stops_on_the_next_request_and_revoking_it_again_answers_it_again() {
    let test = setup().await;
    let (reader, reader_id) = restricted_key(
        &test.store,
        &test.account,
        grant(&[Permission::PaymentsRead], &[]),
        now(),
    )
    .await;
    let (status, body, _) = revoke(&test, &test.key, reader_id.as_str()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "revoked");
    assert_eq!(body["id"], reader_id.as_str());
    assert!(body.get("api_key").is_none());
    // The item the auth step reads says revoked.
    let item = test.store.key(&reader.digest()).unwrap();
    assert_eq!(item.life.state_at(now()), KeyState::Revoked);
    let events = test.store.audit_events().len();
    let (status, again, _) = revoke(&test, &test.key, reader_id.as_str()).await;
    assert_eq!(status, 200);
    assert_eq!(again, body);
    assert_eq!(
        test.store.audit_events().len(),
        events,
        "nothing written twice"
    );
}

#[tokio::test]
async fn the_last_active_key_that_can_manage_keys_cannot_be_revoked() {
    let test = setup().await;
    let me = id_of(&test, &test.key);
    let (status, body, _) = revoke(&test, &test.key, me.as_str()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("would_lock_out")),
        "{body}"
    );
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(state_of(&test, &me), KeyState::Active);
    // With another active key holding keys:write, it can go.
    restricted_key(
        &test.store,
        &test.account,
        grant(&[Permission::KeysWrite], &[]),
        now(),
    )
    .await;
    let (status, body, _) = revoke(&test, &test.key, me.as_str()).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_restricted_key_never_stops_a_key_with_more_power() {
    let test = setup().await;
    let (manager, _) = restricted_key(
        &test.store,
        &test.account,
        grant(&[Permission::KeysWrite], &[]),
        now(),
    )
    .await;
    let secret = id_of(&test, &test.key);
    let (status, body, _) = revoke(&test, &manager, secret.as_str()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("insufficient_permissions"))
    );
    assert_eq!(state_of(&test, &secret), KeyState::Active);
    // A reader cannot revoke anything.
    let (reader, _) = restricted_key(
        &test.store,
        &test.account,
        grant(&[Permission::PaymentsRead, Permission::KeysRead], &[]),
        now(),
    )
    .await;
    let (status, body, _) = revoke(&test, &reader, secret.as_str()).await;
    assert_eq!(
        body["error"]["message"],
        "This key does not have the keys:write permission."
    );
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_restricted_key_holding_every_permission_never_stops_the_secret_key() {
    let test = setup().await;
    let every = [
        Permission::PaymentsWrite,
        Permission::KeysWrite,
        Permission::PaymentsRead,
        Permission::KeysRead,
    ];
    let (manager, _) = restricted_key(&test.store, &test.account, grant(&every, &[]), now()).await;
    let (_, peer) = restricted_key(&test.store, &test.account, grant(&every, &[]), now()).await;
    let secret = id_of(&test, &test.key);
    let events = test.store.audit_events().len();
    let (status, body, _) = revoke(&test, &manager, secret.as_str()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("insufficient_permissions")),
        "{body}"
    );
    assert_eq!(
        body["error"]["message"],
        "A restricted key cannot roll or revoke a secret key, whatever permissions it holds: use a secret key."
    );
    assert_eq!(state_of(&test, &secret), KeyState::Active);
    assert_eq!(test.store.audit_events().len(), events, "nothing written");
    // A restricted key with as much power it revokes.
    let (status, body, _) = revoke(&test, &manager, peer.as_str()).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn revoking_a_lost_roll_s_new_key_gives_the_old_key_back_to_roll_again() {
    let test = setup().await;
    let me = id_of(&test, &test.key);
    // The client rolls its own key with a grace and loses the answer: the new key is an
    // orphan, and the old one is expiring.
    let actor = shared::domain::Actor::key(&me);
    let client = test.store.key(&test.key.digest()).unwrap();
    let acting = shared::store::ActingKey {
        key_id: &me,
        kind: client.prefix.kind(),
        permissions: client.permissions,
        allowed_ips: &client.allowed_ips,
        expires_at: None,
    };
    let ids = IdSource::random();
    let rolled = test
        .store
        .roll_key(
            &test.account,
            &me,
            std::time::Duration::from_secs(60),
            &KeyMint { ids: &ids },
            Some(acting),
            now(),
            Origin {
                actor: &actor,
                request_id: Some("lost"),
            },
        )
        .await
        .unwrap();
    assert_eq!(state_of(&test, &me), KeyState::Expiring);
    // With the old key, inside its grace, it revokes the orphan: the roll is undone.
    let (status, body, _) = revoke(&test, &test.key, rolled.new_key.key_id.as_str()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(state_of(&test, &me), KeyState::Active);
    let item = test.store.key(&test.key.digest()).unwrap();
    assert_eq!(
        item.life.expires_at, None,
        "the auth step's item says active too"
    );
    let orphan = ApiKey::parse(rolled.api_key.expose_once(), KeyEnvironment::Test).unwrap();
    assert_eq!(
        test.store
            .key(&orphan.digest())
            .unwrap()
            .life
            .state_at(now()),
        KeyState::Revoked
    );
}

#[tokio::test]
async fn unknown_foreign_and_malformed_ids_get_the_same_404() {
    let test = setup().await;
    let (other, _) = account_with_key(&test.store, now()).await;
    let foreign = id_of(&test, &other);
    let mut bodies = Vec::new();
    for id in [foreign.as_str(), "key_00000000000000000000", "KEY"] {
        let (status, body, masked) = revoke(&test, &test.key, id).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("resource_missing")),
            "{id}"
        );
        bodies.push(masked);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
    assert_eq!(
        test.store
            .key(&other.digest())
            .unwrap()
            .life
            .state_at(now()),
        KeyState::Active
    );
}
