use std::collections::HashSet;
use std::sync::Arc;

use tokio::task::JoinSet;

use lambda_http::http::Method;
use payments_tests::{raw_request, TestApp};
use serde_json::json;

#[tokio::test]
async fn records_a_payment_for_the_authenticated_account() {
    let app = TestApp::spawn().await;
    let (account_id, key) = app.new_client().await;
    let response = app
        .create_payment(
            Some(&key),
            json!({"amount": 1250, "currency": "eur", "description": "Order #1"}),
        )
        .await;
    assert_eq!(response.status, 201, "{:?}", response.body);
    let body = &response.body;
    let id = body["id"].as_str().unwrap();
    assert!(id.starts_with("pay_"));
    assert_eq!(body["client_id"], account_id.as_str());
    assert_eq!(body["amount"], 1250);
    assert_eq!(body["currency"], "EUR");
    assert_eq!(body["description"], "Order #1");
    assert_eq!(body["status"], "pending");
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body.as_object().unwrap().len(), 7);

    let id = shared::domain::PaymentId::parse(id).unwrap();
    let stored = app.store().payment(&id).await.unwrap().expect("stored");
    assert_eq!(stored.payment.client_id.as_str(), account_id);
    assert_eq!(stored.payment.amount.minor_units(), 1250);
    assert_eq!(stored.payment.currency.code(), "EUR");
}

#[tokio::test]
async fn description_is_null_when_absent() {
    let app = TestApp::spawn().await;
    let (_, key) = app.new_client().await;
    let response = app
        .create_payment(Some(&key), json!({"amount": 1, "currency": "JPY"}))
        .await;
    assert_eq!(response.status, 201);
    assert_eq!(response.body["description"], serde_json::Value::Null);
}

#[tokio::test]
async fn client_id_in_the_body_is_rejected() {
    let app = TestApp::spawn().await;
    let (account_id, key) = app.new_client().await;
    let (other_account, _) = app.new_client().await;
    let response = app
        .create_payment(
            Some(&key),
            json!({"amount": 100, "currency": "USD", "client_id": other_account}),
        )
        .await;
    assert_eq!(response.status, 400);
    assert_eq!(response.body["error"]["param"], "client_id");
    assert_eq!(response.error_code(), "parameter_unknown");
    assert!(app.payments_of(&account_id).await.is_empty());
    assert!(app.payments_of(&other_account).await.is_empty());
}

#[tokio::test]
async fn invalid_payments_are_400_with_param_and_write_nothing() {
    let app = TestApp::spawn().await;
    let (account_id, key) = app.new_client().await;
    let cases = [
        (json!({"currency": "USD"}), "amount"),
        (json!({"amount": 0, "currency": "USD"}), "amount"),
        (json!({"amount": 100000000, "currency": "USD"}), "amount"),
        (json!({"amount": "100", "currency": "USD"}), "amount"),
        (json!({"amount": 1.5, "currency": "USD"}), "amount"),
        (json!({"amount": 100}), "currency"),
        (json!({"amount": 100, "currency": "ABC"}), "currency"),
        (
            json!({"amount": 100, "currency": "USD", "description": "x".repeat(501)}),
            "description",
        ),
        (
            json!({"amount": 100, "currency": "USD", "status": "paid"}),
            "status",
        ),
    ];
    for (body, param) in cases {
        let response = app.create_payment(Some(&key), body.clone()).await;
        assert_eq!(response.status, 400, "{body}");
        assert_eq!(response.body["error"]["type"], "invalid_request_error");
        assert_eq!(response.body["error"]["param"], param, "{body}");
        assert!(response.body["error"]["request_id"].is_string());
    }
    let duplicate = br#"{"amount": 100, "amount": 1, "currency": "USD"}"#.to_vec();
    let response = app
        .post_payment(raw_request(
            Method::POST,
            "/payments",
            Some(&key),
            Some("application/json"),
            duplicate,
        ))
        .await;
    assert_eq!(response.status, 400);
    assert_eq!(response.body["error"]["param"], "amount");
    let response = app
        .post_payment(raw_request(
            Method::POST,
            "/payments",
            Some(&key),
            Some("application/json"),
            b"{oops".to_vec(),
        ))
        .await;
    assert_eq!(response.status, 400);
    assert_eq!(response.error_code(), "invalid_json");
    let response = app
        .post_payment(raw_request(
            Method::POST,
            "/payments",
            Some(&key),
            Some("text/plain"),
            b"{}".to_vec(),
        ))
        .await;
    assert_eq!(response.status, 415);
    assert!(app.payments_of(&account_id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_payments_on_one_key_are_each_stored_once() {
    let app = Arc::new(TestApp::spawn().await);
    let (account_id, key) = app.new_client().await;
    const N: u64 = 25;
    let mut tasks = JoinSet::new();
    for amount in 1..=N {
        let (app, key) = (Arc::clone(&app), key.clone());
        tasks.spawn(async move {
            app.create_payment(Some(&key), json!({"amount": amount, "currency": "USD"}))
                .await
        });
    }
    let mut ids = HashSet::new();
    while let Some(response) = tasks.join_next().await {
        let response = response.unwrap();
        assert_eq!(response.status, 201, "{:?}", response.body);
        assert!(ids.insert(response.body["id"].as_str().unwrap().to_owned()));
    }
    let stored = app.payments_of(&account_id).await;
    assert_eq!(stored.len() as u64, N);
    let stored_ids: HashSet<String> = stored
        .iter()
        .map(|item| item["pk"].as_s().unwrap().clone())
        .collect();
    assert_eq!(stored_ids, ids);
    let total: u64 = stored
        .iter()
        .map(|item| item["amount"].as_n().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, N * (N + 1) / 2);
}
