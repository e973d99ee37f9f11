//! The handler with the in-memory store.

use serde_json::Value;
use shared::domain::{AccountId, ApiKey, Clock, Timestamp};
use shared::testing::{account_with_key, edge, Event, MemoryStore};

use super::*;

fn now() -> Timestamp {
    Timestamp::parse("2026-12-01T10:00:00Z").unwrap()
}

async fn get(edge: &Edge<MemoryStore>, key: &ApiKey, id: &str) -> (u16, Value, String) {
    let request = Event::new("GET", "/keys/{id}")
        .path(&format!("/keys/{id}"))
        .param("id", id)
        .header("x-api-key", key.expose_once())
        .request();
    let response = handle(edge, request).await;
    let raw = String::from_utf8(response.body().to_vec()).unwrap();
    let body: Value = serde_json::from_str(&raw).unwrap();
    let masked = raw.replace(body["error"]["request_id"].as_str().unwrap_or("-"), "<id>");
    (response.status().as_u16(), body, masked)
}

#[tokio::test]
async fn a_key_of_the_account_and_the_one_404_for_all_others() {
    let store = MemoryStore::default();
    let (key, _): (ApiKey, AccountId) = account_with_key(&store, now()).await;
    let (other, _) = account_with_key(&store, now()).await;
    let edge = edge(store.clone(), Clock::from_fn(now));
    let mine = store.key(&key.digest()).unwrap().key_id;
    let (status, body, _) = get(&edge, &key, mine.as_str()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], mine.as_str());
    assert_eq!(body["status"], "active");
    let foreign = store.key(&other.digest()).unwrap().key_id;
    let mut bodies = Vec::new();
    for id in [
        foreign.as_str(),
        "key_00000000000000000000",
        "pay_AAAAAAAAAAAAAAAAAAAA",
    ] {
        let (status, body, masked) = get(&edge, &key, id).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("resource_missing")),
            "{id}"
        );
        assert_eq!(body["error"]["message"], "No such key.");
        bodies.push(masked);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
}
