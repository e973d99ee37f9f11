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

/// The lines this test process has logged so far (nextest runs each test in its own process).
fn logged_lines() -> Vec<serde_json::Value> {
    let path = payments_tests::test_log_dir().join(format!("{}.jsonl", std::process::id()));
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

fn logged_failure(needle: &str) -> bool {
    logged_lines().iter().any(|line| {
        line["level"] == "ERROR"
            && line["message"] == "request failed"
            && line["error"].as_str().is_some_and(|e| e.contains(needle))
    })
}

#[tokio::test]
async fn malformed_stored_items_are_a_logged_500_never_a_panic() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let app = TestApp::spawn().await;
    let (account_id, api_key) = app.new_client().await;
    let digest = ApiKey::parse(&api_key, KeyEnvironment::Test)
        .unwrap()
        .digest();

    // A key item whose status is not one this code writes.
    app.client
        .update_item()
        .table_name(&app.clients_table)
        .key("pk", AttributeValue::S(key::pk(&digest)))
        .update_expression("SET #s = :s")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":s", AttributeValue::S("paused".into()))
        .send()
        .await
        .unwrap();
    let response = app
        .create_payment(Some(&api_key), json!({"amount": 1, "currency": "USD"}))
        .await;
    assert_eq!(
        (response.status, response.error_code()),
        (500, "internal_error")
    );
    let text = String::from_utf8(response.raw_body.clone()).unwrap();
    assert!(
        !text.contains("malformed") && !text.contains("status"),
        "{text}"
    );
    assert!(logged_failure("stored key item"), "the cause is logged");
    assert!(app.payments_of(&account_id).await.is_empty());

    // A stored payment, found again through its Idempotency-Key, with a broken amount.
    let (_, api_key) = app.new_client().await;
    let body = json!({"amount": 5, "currency": "EUR"});
    let first = app
        .create_payment_idempotent(&api_key, "broken-later", body.clone())
        .await;
    assert_eq!(first.status, 201);
    app.client
        .update_item()
        .table_name(&app.payments_table)
        .key(
            "pk",
            AttributeValue::S(first.body["id"].as_str().unwrap().into()),
        )
        .update_expression("SET amount = :a")
        .expression_attribute_values(":a", AttributeValue::S("five".into()))
        .send()
        .await
        .unwrap();
    let again = app
        .create_payment_idempotent(&api_key, "broken-later", body)
        .await;
    assert_eq!((again.status, again.error_code()), (500, "internal_error"));
    assert!(logged_failure("stored payment item"));

    // An account item without its version: operators get a clear error, not a panic.
    let account = shared::domain::AccountId::parse(&account_id).unwrap();
    app.client
        .update_item()
        .table_name(&app.clients_table)
        .key("pk", AttributeValue::S(account::pk(&account)))
        .update_expression("REMOVE version")
        .send()
        .await
        .unwrap();
    let err = app
        .store()
        .account_keys(&account, app.clock.clock().now())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            shared::store::StoreError::Corrupt {
                attribute: "version",
                ..
            }
        ),
        "{err:?}"
    );
}
