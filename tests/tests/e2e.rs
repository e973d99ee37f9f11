//! End to end: real HTTP through `cargo lambda watch`, which builds and runs the Lambda
//! binaries exactly as `make dev` does, against DynamoDB Local.

use std::time::Duration;

use payments_tests::dynamodb_endpoint;
use payments_tests::stack::LocalStack;
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};
use shared::config::dynamodb_client;
use shared::domain::{ApiKey, KeyEnvironment};

struct Http {
    client: Client,
    base: String,
}

impl Http {
    async fn post(&self, path: &str, api_key: Option<&str>, body: &Value) -> Response {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(key) = api_key {
            request = request.header("X-Api-Key", key);
        }
        request
            .send()
            .await
            .expect("request reaches the local stack")
    }

    async fn get(&self, path: &str, api_key: &str) -> Response {
        self.client
            .get(format!("{}{path}", self.base))
            .header("x-api-key", api_key)
            .send()
            .await
            .expect("request reaches the local stack")
    }
}

/// How many items a table holds (a full scan; tests only).
async fn item_count(database: &aws_sdk_dynamodb::Client, table: &str) -> usize {
    let mut count = 0;
    let mut start = None;
    loop {
        let page = database
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        count += page.items().len();
        start = page.last_evaluated_key;
        if start.is_none() {
            return count;
        }
    }
}

async fn json_of(response: Response) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.expect("JSON body");
    (status, headers, body)
}

#[tokio::test]
async fn the_whole_flow_over_http() {
    let stack = LocalStack::start(&dynamodb_endpoint()).await;
    // The first request to each function may compile it; later ones are fast.
    let http = Http {
        client: Client::builder()
            .timeout(Duration::from_secs(900))
            .build()
            .unwrap(),
        base: stack.base_url.clone(),
    };

    // Create an account; the key comes back once.
    let (status, headers, account) = json_of(
        http.post(
            "/accounts",
            None,
            &json!({"name": "E2E Ltd", "email": "ops@e2e.example"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{account}\n{}", stack.log());
    assert_eq!(headers["content-type"], "application/json");
    assert!(headers.contains_key("x-request-id"));
    let account_id = account["id"].as_str().unwrap().to_owned();
    let key = account["api_key"].as_str().unwrap().to_owned();
    payments_tests::record_key(&key);

    // Pay on both routes with the new key, straight away.
    let mut created = Vec::new();
    for path in ["/payments", "/payments/create"] {
        let (status, _, payment) = json_of(
            http.post(
                path,
                Some(&key),
                &json!({"amount": 4200, "currency": "gbp", "description": "via HTTP"}),
            )
            .await,
        )
        .await;
        assert_eq!(status, 201, "{path}: {payment}\n{}", stack.log());
        assert_eq!(payment["client_id"], account_id.as_str());
        assert_eq!(payment["currency"], "GBP");
        assert_eq!(payment["status"], "pending");
        created.push(payment);
    }

    // A header sent twice reaches the function as API Gateway passes it, joined: two keys
    // never authenticate, two Idempotency-Keys are a 400, and nothing is recorded.
    let twice = |name: &str, first: &str, second: &str| {
        http.client
            .post(format!("{}/payments", http.base))
            .header("content-type", "application/json")
            .header("x-api-key", key.as_str())
            .header(name, first)
            .header(name, second)
            .body(json!({"amount": 100, "currency": "USD"}).to_string())
            .send()
    };
    let (status, _, body) = json_of(twice("x-api-key", &key, &key).await.unwrap()).await;
    assert_eq!(status, 401, "{body}\n{}", stack.log());
    assert_eq!(body["error"]["code"], "invalid_api_key");
    let (status, _, body) = json_of(
        twice("idempotency-key", "order-1", "order-2")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{body}\n{}", stack.log());
    assert_eq!(body["error"]["param"], "Idempotency-Key");

    // Retrieve each at once, exactly as created; another account's key gets the 404 an
    // unknown id gets.
    for payment in &created {
        let path = format!("/payments/{}", payment["id"].as_str().unwrap());
        let (status, _, body) = json_of(http.get(&path, &key).await).await;
        assert_eq!(status, 200, "{path}: {body}\n{}", stack.log());
        assert_eq!(&body, payment);
    }
    let (_, _, other) = json_of(
        http.post("/accounts", None, &json!({"name": "Other Ltd"}))
            .await,
    )
    .await;
    let other_key = other["api_key"].as_str().unwrap().to_owned();
    payments_tests::record_key(&other_key);
    let mut bodies = Vec::new();
    for (id, presented) in [
        (created[0]["id"].as_str().unwrap(), other_key.as_str()),
        ("pay_00000000000000000000", key.as_str()),
        ("not-a-payment", key.as_str()),
    ] {
        let (status, _, mut body) =
            json_of(http.get(&format!("/payments/{id}"), presented).await).await;
        assert_eq!(status, 404, "{id}: {body}\n{}", stack.log());
        assert_eq!(body["error"]["code"], "resource_missing");
        body["error"]["request_id"] = Value::Null;
        bodies.push(body);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");

    // List: newest first, a page at a time. The index is eventually consistent: wait, within
    // the documented bound, until both payments are listed.
    let newest_first: Vec<Value> = created.iter().rev().map(|p| p["id"].clone()).collect();
    let started = std::time::Instant::now();
    let list = loop {
        let (status, _, list) = json_of(http.get("/payments", &key).await).await;
        assert_eq!(status, 200, "{list}\n{}", stack.log());
        let ids: Vec<Value> = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].clone())
            .collect();
        if ids == newest_first || started.elapsed() > Duration::from_secs(5) {
            assert_eq!(ids, newest_first);
            break list;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(list["has_more"], false);
    let path = format!(
        "/payments?limit=1&starting_after={}",
        newest_first[0].as_str().unwrap()
    );
    let (status, _, page) = json_of(http.get(&path, &key).await).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["data"][0]["id"], newest_first[1]);
    assert_eq!(page["has_more"], false);
    let (status, _, page) = json_of(
        http.get(
            "/payments?created%5Bgte%5D=2000-01-01T00:00:00Z&limit=1",
            &key,
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, &page["has_more"]),
        (StatusCode::OK, &json!(true)),
        "{page}"
    );
    let (status, _, body) = json_of(http.get("/payments?limit=101", &key).await).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "limit");
    let (_, _, theirs) = json_of(http.get("/payments", &other_key).await).await;
    assert_eq!(
        theirs["data"],
        json!([]),
        "another account lists nothing of ours"
    );

    // Idempotent retries over HTTP: replayed with the same body, refused with another.
    let send = |amount: u64| {
        http.client
            .post(format!("{}/payments", stack.base_url))
            .header("x-api-key", &key)
            .header("Idempotency-Key", "e2e-order-1")
            .header("content-type", "application/json")
            .body(json!({"amount": amount, "currency": "USD"}).to_string())
            .send()
    };
    let first = send(300).await.unwrap();
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    // The account's limit, the stack's default here, as the IETF draft's structured field.
    assert_eq!(first.headers()["ratelimit-policy"], "\"account\";q=100;w=1");
    let first_body = first.text().await.unwrap();
    let again = send(300).await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.text().await.unwrap(), first_body);
    let (status, _, body) = json_of(send(301).await.unwrap()).await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["type"], "idempotency_error");

    // Missing and invalid keys.
    let (status, headers, body) = json_of(
        http.post("/payments", None, &json!({"amount": 1, "currency": "USD"}))
            .await,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "missing_api_key");
    assert_eq!(
        headers["x-request-id"],
        body["error"]["request_id"].as_str().unwrap()
    );

    let unknown = ApiKey::generate(shared::domain::KeyKind::Secret, KeyEnvironment::Test).unwrap();
    let mut bodies = Vec::new();
    for bad in ["nope", unknown.expose_once()] {
        let (status, _, body) = json_of(
            http.post(
                "/payments",
                Some(bad),
                &json!({"amount": 1, "currency": "USD"}),
            )
            .await,
        )
        .await;
        assert_eq!(status, 401);
        assert_eq!(body["error"]["code"], "invalid_api_key");
        let mut body = body;
        body["error"]["request_id"] = Value::Null;
        bodies.push(body);
    }
    assert_eq!(bodies[0], bodies[1]);

    // The other account, given a limit of 1 request a second, is refused over it with the
    // usual JSON error and a Retry-After; after that wait it is served again. This account
    // is not affected.
    let other_id = shared::domain::AccountId::parse(other["id"].as_str().unwrap()).unwrap();
    let store = shared::store::dynamo::DynamoStore::new(
        dynamodb_client(Some(&dynamodb_endpoint())).await,
        stack.tables.clone(),
    );
    store
        .set_rate_limit(
            &other_id,
            Some(shared::domain::RateLimit::new(1).unwrap()),
            shared::domain::Timestamp::now(),
            &payments_tests::operator(),
        )
        .await
        .unwrap();
    let mut limited = None;
    for _ in 0..3 {
        let (status, headers, body) = json_of(http.get("/payments", &other_key).await).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some((headers, body));
        }
    }
    let (headers, body) = limited.expect("a 429 among three requests at 1 a second");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["ratelimit-policy"], "\"account\";q=1;w=1");
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "Retry-After: {wait}");
    let (status, _, _) = json_of(http.get("/payments", &key).await).await;
    assert_eq!(status, 200, "another account is not limited");
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let (status, _, body) = json_of(http.get("/payments", &other_key).await).await;
    assert_eq!(status, 200, "after Retry-After: {body}");

    // The account manages its own keys over HTTP: a read-only key is refused a payment with
    // the 403 naming what it lacks; it is listed, rolled with a grace and revoked.
    let (status, _, reader) = json_of(
        http.post(
            "/keys",
            Some(&key),
            &json!({"name": "reconciliation", "permissions": ["payments:read"]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{reader}\n{}", stack.log());
    let reader_key = reader["api_key"].as_str().unwrap().to_owned();
    payments_tests::record_key(&reader_key);
    assert!(reader_key.starts_with("rk_test_"));
    let reader_id = reader["id"].as_str().unwrap().to_owned();
    let (status, _, body) = json_of(
        http.post(
            "/payments",
            Some(&reader_key),
            &json!({"amount": 1, "currency": "USD"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["type"], "permission_error");
    assert_eq!(
        body["error"]["message"],
        "This key does not have the payments:write permission."
    );
    let (status, _, _) = json_of(http.get("/payments", &reader_key).await).await;
    assert_eq!(status, 200);
    let (status, _, listing) = json_of(http.get("/keys", &key).await).await;
    assert_eq!(status, 200, "{listing}");
    assert_eq!(listing["data"][0]["id"], reader_id.as_str());
    assert!(!listing.to_string().contains(&reader_key[12..]));
    let (status, _, rolled) = json_of(
        http.post(
            &format!("/keys/{reader_id}/roll"),
            Some(&key),
            &json!({"expires_in": 3600}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{rolled}\n{}", stack.log());
    payments_tests::record_key(rolled["api_key"].as_str().unwrap());
    let (_, _, old) = json_of(http.get(&format!("/keys/{reader_id}"), &key).await).await;
    assert_eq!(old["status"], "expiring");
    let revoke = http
        .client
        .delete(format!("{}/keys/{reader_id}", http.base))
        .header("x-api-key", key.as_str())
        .send()
        .await
        .unwrap();
    let (status, _, revoked) = json_of(revoke).await;
    assert_eq!(status, 200, "{revoked}\n{}", stack.log());
    assert_eq!(revoked["status"], "revoked");
    let (status, _, _) = json_of(http.get("/payments", &reader_key).await).await;
    assert_eq!(status, 401, "revoked: refused on the very next request");

    // IP ranges, with the source address `cargo lambda watch` writes: a key open to every
    // address works, one limited to a range without the caller gets the 401 of a bad key.
    let mut answers = Vec::new();
    for ranges in [json!(["0.0.0.0/0", "::/0"]), json!(["203.0.113.0/24"])] {
        let (status, _, made) = json_of(
            http.post(
                "/keys",
                Some(&key),
                &json!({"name": "ranged", "permissions": ["payments:read"], "allowed_ips": ranges}),
            )
            .await,
        )
        .await;
        assert_eq!(status, 201, "{made}");
        let ranged = made["api_key"].as_str().unwrap().to_owned();
        payments_tests::record_key(&ranged);
        let (status, _, body) = json_of(http.get("/payments", &ranged).await).await;
        answers.push((status.as_u16(), body["error"]["code"].clone()));
    }
    assert_eq!(
        answers,
        [(200, Value::Null), (401, json!("invalid_api_key"))],
        "{}",
        stack.log()
    );

    // Each request left one metrics line (EMF) in its function's output, with its outcome.
    let log = stack.log();
    let metrics: Vec<Value> = log
        .lines()
        .filter_map(|line| line.find("{\"").map(|at| &line[at..]))
        .filter_map(|json| serde_json::from_str::<Value>(json).ok())
        .filter(|doc| doc.get("_aws").is_some())
        .collect();
    let outcome_of = |function: &str, outcome: &str| {
        metrics
            .iter()
            .any(|m| m["Function"] == function && m["Outcome"] == outcome)
    };
    for (function, outcome) in [
        ("create_account", "created"),
        ("create_payment", "created"),
        ("create_payment", "replayed"),
        ("create_payment", "idempotency_key_reused"),
        ("create_payment", "missing_api_key"),
        ("get_payment", "ok"),
        ("list_payments", "ok"),
        ("list_payments", "rate_limited"),
        ("create_key", "key_created"),
        ("create_payment", "insufficient_permissions"),
        ("list_keys", "ok"),
        ("roll_key", "key_rolled"),
        ("get_key", "ok"),
        ("revoke_key", "key_revocation"),
    ] {
        assert!(
            outcome_of(function, outcome),
            "no metrics line for {function} {outcome}"
        );
    }
    assert!(metrics
        .iter()
        .any(|m| m["Reason"] == "unknown_key" && m["AuthRefusals"] == 1));
    assert!(metrics
        .iter()
        .any(|m| m["Reason"] == "ip_not_allowed" && m["AuthRefusals"] == 1));
    assert!(metrics
        .iter()
        .any(|m| m["Function"] == "list_payments" && m["RateLimited"] == 1));
    // What each request spent, as the client's interceptor saw it: a new payment is the key's
    // strongly consistent GetItem (1 read unit) and the payment's PutItem.
    let created = metrics
        .iter()
        .find(|m| m["Function"] == "create_payment" && m["Outcome"] == "created")
        .unwrap();
    assert_eq!(created["DynamoDbOperations"], json!(["GetItem", "PutItem"]));
    assert_eq!(created["DynamoDbAttempts"], 2);
    assert_eq!(created["DynamoDbReadUnits"], 1.0);
    assert!(created["DynamoDbWriteUnits"].as_f64().unwrap() >= 1.0);
    // The warm-up call made during init is reported by the environment's first request.
    let cold = metrics
        .iter()
        .find(|m| m["Function"] == "create_payment" && m["ColdStart"] == 1)
        .unwrap();
    assert_eq!(cold["OutsideRequests"]["DynamoDbOperations"][0], "GetItem");

    // The key in the query string is not a key, under any of the usual names, and such a
    // request writes nothing.
    let database = dynamodb_client(Some(&dynamodb_endpoint())).await;
    let before = item_count(&database, &stack.payments_table).await;
    assert!(before >= 3, "the payments above are stored");
    for name in ["api_key", "x-api-key", "apiKey"] {
        let response = http
            .client
            .post(format!("{}/payments?{name}={key}", stack.base_url))
            .header("content-type", "application/json")
            .body(json!({"amount": 1, "currency": "USD"}).to_string())
            .send()
            .await
            .unwrap();
        let (status, _, body) = json_of(response).await;
        assert_eq!(status, 401, "?{name}=: {body}");
        assert_eq!(body["error"]["code"], "missing_api_key", "?{name}=");
    }
    assert_eq!(
        item_count(&database, &stack.payments_table).await,
        before,
        "a key in the query string wrote a payment"
    );

    // Validation and media type over HTTP.
    let (status, _, body) = json_of(
        http.post(
            "/payments",
            Some(&key),
            &json!({"amount": 1, "currency": "USD", "client_id": account_id}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "client_id");
    let response = http
        .client
        .post(format!("{}/payments", stack.base_url))
        .header("x-api-key", &key)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("amount=1&currency=USD")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);

    // Nothing secret reached the logs, even at trace level.
    let log = stack.log();
    assert!(
        log.contains("payment created"),
        "function logs are captured"
    );
    let digest = ApiKey::parse(&key, KeyEnvironment::Test)
        .unwrap()
        .digest()
        .to_hex();
    assert!(!log.contains(&key[12..]), "API key found in logs");
    assert!(!log.contains(&digest), "key digest found in logs");
    assert!(
        !log.contains(&unknown.expose_once()[12..]),
        "presented key found in logs"
    );
}
