use payments_tests::stack::free_port;
use payments_tests::TestApp;
use serde_json::json;

#[tokio::test]
async fn unreachable_dynamodb_is_a_retryable_503_with_a_generic_body() {
    // A port nothing listens on: every connection is refused.
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let app = TestApp::spawn_with_endpoint(&endpoint, false).await;
    let started = std::time::Instant::now();
    let response = app.create_account(json!({"name": "A"})).await;
    assert_eq!(response.status, 503, "{:?}", response.body);
    assert_eq!(response.error_code(), "service_unavailable");
    assert_eq!(response.headers["retry-after"], "1");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));

    let key = shared::api_key::ApiKey::generate(shared::api_key::KeyEnvironment::Test).unwrap();
    let response = app
        .create_payment(
            Some(key.expose_once()),
            json!({"amount": 1, "currency": "USD"}),
        )
        .await;
    assert_eq!(response.status, 503);
    let text = String::from_utf8(response.raw_body).unwrap();
    assert!(
        !text.contains("127.0.0.1") && !text.to_lowercase().contains("dispatch"),
        "{text}"
    );
}

#[tokio::test]
async fn a_missing_table_is_a_500_that_names_nothing_internal() {
    let app = TestApp::spawn_with_endpoint(&payments_tests::dynamodb_endpoint(), false).await;
    let response = app.create_account(json!({"name": "A"})).await;
    assert_eq!(response.status, 500, "{:?}", response.body);
    assert_eq!(response.error_code(), "internal_error");
    let text = String::from_utf8(response.raw_body).unwrap();
    assert!(!text.contains(&app.clients_table), "{text}");
    assert!(!text.contains("ResourceNotFound"), "{text}");
}
