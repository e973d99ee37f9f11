//! The handler with the in-memory store.

use serde_json::{json, Value};
use shared::domain::{
    AccountId, ApiKey, Clock, IpAllowList, KeyGrant, KeyLife, KeyStatus, Permission, Permissions,
    Timestamp,
};
use shared::testing::{account_with_key, edge, restricted_key, Event, MemoryStore};

use super::*;

fn now() -> Timestamp {
    Timestamp::parse("2026-12-01T10:00:00Z").unwrap()
}

/// The handler's edge, the store it holds, and an account with its first key.
async fn setup() -> (Edge<MemoryStore>, MemoryStore, ApiKey, AccountId) {
    let store = MemoryStore::default();
    let (key, account) = account_with_key(&store, now()).await;
    (
        edge(store.clone(), Clock::from_fn(now)),
        store,
        key,
        account,
    )
}

async fn list(edge: &Edge<MemoryStore>, key: &ApiKey, query: &[(&str, &str)]) -> (u16, Value) {
    let mut event = Event::new("GET", "/keys").header("x-api-key", key.expose_once());
    for (name, value) in query {
        event = event.query(name, value);
    }
    let response = handle(edge, event.request()).await;
    (
        response.status().as_u16(),
        serde_json::from_slice(response.body()).unwrap(),
    )
}

fn reader() -> KeyGrant {
    KeyGrant {
        name: Some(shared::domain::KeyName::parse("dashboard".into()).unwrap()),
        permissions: Permissions::of([Permission::PaymentsRead, Permission::KeysRead]),
        allowed_ips: IpAllowList::default(),
        expires_at: None,
    }
}

#[tokio::test]
async fn every_key_newest_first_revoked_ones_too_never_a_secret() {
    let (edge, store, key, account) = setup().await;
    let later = now().plus(std::time::Duration::from_secs(60));
    let (reader_key, reader_id) = restricted_key(&store, &account, reader(), later).await;
    store.set_key_life(
        &reader_key.digest(),
        KeyLife {
            status: KeyStatus::Revoked,
            expires_at: None,
        },
    );
    let (status, body) = list(&edge, &key, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["has_more"], false);
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["id"], reader_id.as_str(), "newest first");
    assert_eq!(data[0]["status"], "revoked");
    assert_eq!(data[0]["name"], "dashboard");
    assert_eq!(
        data[0]["permissions"],
        json!(["payments:read", "keys:read"])
    );
    assert_eq!(data[1]["kind"], "secret");
    assert_eq!(data[1]["name"], Value::Null);
    assert_eq!(
        data[1]["permissions"],
        json!(["payments:read", "payments:write", "keys:read", "keys:write"])
    );
    let text = body.to_string();
    assert!(!text.contains(key.expose_once()) && !text.contains(&key.digest().to_hex()));
    assert!(!text.contains("api_key"));
    let fields: Vec<&String> = data[1].as_object().unwrap().keys().collect();
    assert_eq!(
        fields,
        [
            "allowed_ips",
            "created_at",
            "expires_at",
            "id",
            "kind",
            "last_used_at",
            "name",
            "permissions",
            "prefix",
            "status"
        ]
    );
}

#[tokio::test]
async fn a_key_without_keys_read_is_refused_and_so_are_query_parameters() {
    let (edge, store, key, account) = setup().await;
    let (payments_only, _) = restricted_key(
        &store,
        &account,
        KeyGrant {
            permissions: Permissions::of([Permission::PaymentsWrite]),
            ..reader()
        },
        now(),
    )
    .await;
    let (status, body) = list(&edge, &payments_only, &[]).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["error"]["message"],
        "This key does not have the keys:read permission."
    );
    let (status, body) = list(&edge, &key, &[("limit", "5")]).await;
    assert_eq!(
        (status, body["error"]["param"].as_str()),
        (400, Some("limit"))
    );
}
