use lambda_http::http::Method;
use payments_tests::{raw_request, TestApp};
use serde_json::json;
use shared::domain::{ApiKey, KeyEnvironment};

#[tokio::test]
async fn creates_an_account_and_returns_a_key_once() {
    let app = TestApp::spawn().await;
    let response = app
        .create_account(json!({"name": "Ada Lovelace", "email": "ada@example.com"}))
        .await;
    assert_eq!(response.status, 201, "{:?}", response.body);
    let body = &response.body;
    assert!(body["id"].as_str().unwrap().starts_with("acct_"));
    assert_eq!(body["name"], "Ada Lovelace");
    assert_eq!(body["email"], "ada@example.com");
    assert_eq!(body["status"], "active");
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
    let key = body["api_key"].as_str().unwrap();
    assert!(ApiKey::parse(key, KeyEnvironment::Test).is_ok());
    assert_eq!(response.headers["content-type"], "application/json");
    assert_eq!(response.headers["cache-control"], "no-store");
    assert!(response.headers.contains_key("x-request-id"));
    let fields: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(fields.len(), 6, "{fields:?}");
}

#[tokio::test]
async fn email_is_optional_and_null_when_absent() {
    let app = TestApp::spawn().await;
    let response = app.create_account(json!({"name": "No Mail"})).await;
    assert_eq!(response.status, 201);
    assert_eq!(response.body["email"], serde_json::Value::Null);
}

#[tokio::test]
async fn invalid_account_requests_are_400_with_param() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!({}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(201)}), "name"),
        (json!({"name": 5}), "name"),
        (json!({"name": "A", "email": "not-an-address"}), "email"),
        (json!({"name": "A", "status": "inactive"}), "status"),
        (json!({"name": "A", "api_key": "sk_test_x"}), "api_key"),
    ];
    for (body, param) in cases {
        let response = app.create_account(body.clone()).await;
        assert_eq!(response.status, 400, "{body}");
        assert_eq!(response.body["error"]["type"], "invalid_request_error");
        assert_eq!(response.body["error"]["param"], param, "{body}");
    }
    assert!(
        app.scan(&app.clients_table).await.is_empty(),
        "nothing written"
    );
}

#[tokio::test]
async fn media_type_size_and_method_are_enforced() {
    let app = TestApp::spawn().await;
    let body = br#"{"name":"A"}"#.to_vec();
    let response = app
        .post_account(raw_request(
            Method::POST,
            "/accounts",
            None,
            Some("text/plain"),
            body.clone(),
        ))
        .await;
    assert_eq!(response.status, 415);
    let response = app
        .post_account(raw_request(
            Method::POST,
            "/accounts",
            None,
            None,
            body.clone(),
        ))
        .await;
    assert_eq!(response.status, 415);
    let big = format!(r#"{{"name":"{}"}}"#, "a".repeat(17 * 1024)).into_bytes();
    let response = app
        .post_account(raw_request(
            Method::POST,
            "/accounts",
            None,
            Some("application/json"),
            big,
        ))
        .await;
    assert_eq!(response.status, 413);
    assert_eq!(response.error_code(), "payload_too_large");
    let response = app
        .post_account(raw_request(
            Method::GET,
            "/accounts",
            None,
            None,
            Vec::new(),
        ))
        .await;
    assert_eq!(response.status, 405);
    assert_eq!(response.headers["allow"], "POST");
}
