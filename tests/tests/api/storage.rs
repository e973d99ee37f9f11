use payments_tests::{all_strings, TestApp};
use serde_json::json;
use shared::domain::{ApiKey, KeyEnvironment};
use shared::store::items::{account, key};

#[tokio::test]
async fn account_and_key_items_are_written_together() {
    let app = TestApp::spawn().await;
    let (account_id, key) = app.new_client().await;
    let digest = ApiKey::parse(&key, KeyEnvironment::Test).unwrap().digest();
    let items = app.scan(&app.clients_table).await;
    assert_eq!(items.len(), 3, "account, key, key reference");
    let pks: Vec<&str> = items
        .iter()
        .map(|i| i["pk"].as_s().unwrap().as_str())
        .collect();
    let account = shared::domain::AccountId::parse(&account_id).unwrap();
    assert!(pks.contains(&account::pk(&account).as_str()));
    assert!(pks.contains(&key::pk(&digest).as_str()));
    let key_item = items
        .iter()
        .find(|i| i["entity"].as_s().unwrap() == "api_key")
        .unwrap();
    assert_eq!(key_item["account_id"].as_s().unwrap(), &account_id);
    assert_eq!(key_item["status"].as_s().unwrap(), "active");
    assert_eq!(key_item["account_status"].as_s().unwrap(), "active");
    assert_eq!(key_item["prefix"].as_s().unwrap(), &key[..12]);
    let key_id = shared::domain::KeyId::parse(key_item["key_id"].as_s().unwrap()).unwrap();
    assert!(pks.contains(&key::ref_pk(&key_id).as_str()));
}

#[tokio::test]
async fn no_item_in_any_table_contains_a_plaintext_key() {
    let app = TestApp::spawn().await;
    let mut keys = Vec::new();
    for _ in 0..3 {
        let (_, key) = app.new_client().await;
        let response = app
            .create_payment(
                Some(&key),
                json!({"amount": 10, "currency": "USD", "description": "d"}),
            )
            .await;
        assert_eq!(response.status, 201);
        keys.push(key);
    }
    let mut strings = Vec::new();
    for table in [&app.clients_table, &app.payments_table] {
        for item in app.scan(table).await {
            for (name, value) in &item {
                strings.push(name.clone());
                all_strings(value, &mut strings);
            }
        }
    }
    assert!(strings.len() > 20);
    for key in &keys {
        // The secret part beyond the 12-character display prefix must appear nowhere.
        let secret = &key[12..];
        assert!(
            strings.iter().all(|s| !s.contains(secret)),
            "plaintext key found in storage"
        );
    }
}
