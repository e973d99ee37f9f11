use std::time::Duration;

use payments_tests::{issued, operator, TestApp};
use serde_json::json;
use shared::domain::{AccountId, AccountStatus, ApiKey, KeyEnvironment};

fn payment() -> serde_json::Value {
    json!({"amount": 500, "currency": "USD"})
}

#[tokio::test]
async fn a_key_works_on_the_very_next_request() {
    let app = TestApp::spawn().await;
    let (account_id, key) = app.new_client().await;
    let response = app.create_payment(Some(&key), payment()).await;
    assert_eq!(response.status, 201, "{:?}", response.body);
    assert_eq!(response.body["client_id"], account_id.as_str());
}

#[tokio::test]
async fn missing_key_is_401_missing_api_key() {
    let app = TestApp::spawn().await;
    let response = app.create_payment(None, payment()).await;
    assert_eq!(response.status, 401);
    assert_eq!(response.error_code(), "missing_api_key");
    assert_eq!(response.body["error"]["type"], "authentication_error");
}

#[tokio::test]
async fn every_bad_key_gets_the_same_401() {
    let app = TestApp::spawn().await;
    let (account_id, key) = app.new_client().await;
    let (_, other_key) = app.new_client().await;

    let unknown = ApiKey::generate(shared::domain::KeyKind::Secret, KeyEnvironment::Test).unwrap();
    let live = ApiKey::generate(shared::domain::KeyKind::Secret, KeyEnvironment::Live).unwrap();
    let mut bad_checksum = key.clone();
    let last = bad_checksum.pop().unwrap();
    bad_checksum.push(if last == 'A' { 'B' } else { 'A' });

    let mut bodies = Vec::new();
    for candidate in [
        "garbage".to_owned(),
        bad_checksum,
        unknown.expose_once().to_owned(),
        live.expose_once().to_owned(),
        format!("{key} "),
        key.to_uppercase(),
    ] {
        let response = app.create_payment(Some(&candidate), payment()).await;
        assert_eq!(response.status, 401, "{candidate}");
        assert_eq!(response.error_code(), "invalid_api_key");
        bodies.push(response.body_without_request_id());
    }

    // A real key once it has expired, once revoked, and once its account is inactive: each
    // indistinguishable from the cases above.
    let now = app.clock.clock().now();
    let (expired_account, expired_key) = app.new_client().await;
    let expired_account = AccountId::parse(&expired_account).unwrap();
    let replacement =
        ApiKey::generate(shared::domain::KeyKind::Secret, KeyEnvironment::Test).unwrap();
    app.store()
        .rotate_key(
            &expired_account,
            &issued(&replacement, now),
            Duration::ZERO,
            now,
            &operator(),
        )
        .await
        .unwrap();
    let (revoked_account, revoked_key) = app.new_client().await;
    let revoked_account = AccountId::parse(&revoked_account).unwrap();
    let keys = app
        .store()
        .account_keys(&revoked_account, now)
        .await
        .unwrap()
        .keys;
    app.store()
        .revoke_key(&keys[0].key_id, now, &operator())
        .await
        .unwrap();
    let account = AccountId::parse(&account_id).unwrap();
    app.store()
        .set_account_status(&account, AccountStatus::Inactive, now, &operator())
        .await
        .unwrap();
    for (what, refused) in [
        ("expired", &expired_key),
        ("revoked", &revoked_key),
        ("inactive", &key),
    ] {
        let response = app.create_payment(Some(refused), payment()).await;
        assert_eq!(
            (response.status, response.error_code()),
            (401, "invalid_api_key"),
            "{what}"
        );
        bodies.push(response.body_without_request_id());
    }
    assert_eq!(bodies.len(), 9);

    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:#?}");
    assert!(app.payments_of(&account_id).await.is_empty());

    // Other accounts are unaffected, and reactivation restores access on the next request.
    assert_eq!(
        app.create_payment(Some(&other_key), payment()).await.status,
        201
    );
    app.store()
        .set_account_status(&account, AccountStatus::Active, now, &operator())
        .await
        .unwrap();
    assert_eq!(app.create_payment(Some(&key), payment()).await.status, 201);
    assert_eq!(
        app.create_payment(Some(replacement.expose_once()), payment())
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn the_key_is_only_read_from_the_header() {
    let app = TestApp::spawn().await;
    let (account_id, key) = app.new_client().await;
    // As API Gateway hands the request over: the query string parsed into the event.
    for name in ["api_key", "x-api-key", "apiKey"] {
        let request = shared::testing::api_gateway_request(
            "POST",
            "/payments",
            &[(name, &key)],
            &[("content-type", "application/json")],
            &payment().to_string(),
        );
        let response = app.post_payment(request).await;
        assert_eq!(
            (response.status, response.error_code()),
            (401, "missing_api_key"),
            "{name}"
        );
    }

    let body = json!({"amount": 500, "currency": "USD", "api_key": key});
    let response = app.create_payment(None, body.clone()).await;
    assert_eq!(response.error_code(), "missing_api_key");
    assert!(
        app.payments_of(&account_id).await.is_empty(),
        "nothing written"
    );
    let response = app.create_payment(Some(&key), body).await;
    assert_eq!(response.status, 400);
    assert_eq!(response.body["error"]["param"], "api_key");
}
