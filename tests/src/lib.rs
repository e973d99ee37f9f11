//! Test helpers: isolated tables in DynamoDB Local, typed calls into the handlers, and a
//! local `cargo lambda watch` stack for end-to-end tests.
//!
//! Tests need `DYNAMODB_ENDPOINT` pointing at a running DynamoDB Local; `make test` starts one
//! on a free loopback port and sets it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use lambda_http::http::{HeaderMap, Method, Request as HttpRequest};
use lambda_http::{Body, Request};
use serde_json::Value;

use shared::config::dynamodb_client_recording;
use shared::domain::{IdSource, KeyEnvironment, RateLimit};
use shared::http::metrics::Meter;
use shared::http::pipeline::Edge;
use shared::store::dynamo::{create_tables, DynamoStore, Tables};
use shared::store::usage::OutsideCalls;
use shared::testing::ManualClock;

pub mod calls;
pub mod dynamodb_local;
pub mod proxy;
pub mod stack;

/// Where test processes write their logs and the keys they saw, for the suite-wide check
/// that no key or digest was ever logged (`scripts/check-log-hygiene.py`).
pub fn test_log_dir() -> std::path::PathBuf {
    let dir = stack::workspace_root().join("target").join("test-logs");
    std::fs::create_dir_all(&dir).expect("test log dir");
    dir
}

/// Sends this process's logs, at trace level and in the production format, to
/// `target/test-logs/<pid>.jsonl`. Idempotent.
pub fn capture_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let path = test_log_dir().join(format!("{}.jsonl", std::process::id()));
        let file = std::fs::File::create(path).expect("test log file");
        let filter = tracing_subscriber::filter::Targets::new()
            .with_default(tracing_subscriber::filter::LevelFilter::TRACE);
        let _ = tracing_subscriber::registry()
            .with(shared::telemetry::json_layer(
                filter,
                std::sync::Mutex::new(file),
            ))
            .try_init();
    });
}

/// Notes a key the suite issued or presented, for the log check.
pub fn record_key(key: &str) {
    use std::io::Write;
    let path = test_log_dir().join(format!("{}.keys", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("keys file");
    writeln!(file, "{key}").expect("record key");
}

pub fn dynamodb_endpoint() -> String {
    std::env::var("DYNAMODB_ENDPOINT")
        .expect("DYNAMODB_ENDPOINT must point at DynamoDB Local; run the suite with `make test`")
}

/// Table names unique to one test, so tests run in parallel against one DynamoDB Local.
pub fn unique_table_names() -> Tables {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let tag = format!(
        "t{}-{}-{}",
        std::process::id(),
        n,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    Tables::with_prefix(&tag)
}

/// A response reduced to what tests look at.
#[derive(Debug, Clone)]
pub struct TestResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub raw_body: Vec<u8>,
}

impl TestResponse {
    pub fn from_lambda(response: lambda_http::Response<Body>) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let raw_body = response.body().to_vec();
        let body = serde_json::from_slice(&raw_body).unwrap_or(Value::Null);
        TestResponse {
            status,
            headers,
            body,
            raw_body,
        }
    }

    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    /// The body with `request_id` blanked, for comparing error responses byte for byte.
    pub fn body_without_request_id(&self) -> String {
        let request_id = self.body["error"]["request_id"]
            .as_str()
            .unwrap_or_default();
        String::from_utf8(self.raw_body.clone())
            .unwrap()
            .replace(request_id, "<request-id>")
    }
}

/// The handlers of every route wired to their own fresh tables in DynamoDB Local.
pub struct TestApp {
    /// The handlers' clock: the real time, plus however far a test advanced it.
    pub clock: ManualClock,
    pub clients_table: String,
    pub payments_table: String,
    pub audit_table: String,
    pub client: Client,
    pub accounts: create_account::State<DynamoStore>,
    pub payments: create_payment::State<DynamoStore>,
    pub retrieve: Edge<DynamoStore>,
    pub list: Edge<DynamoStore>,
    pub key_create: create_key::State<DynamoStore>,
    pub key_list: Edge<DynamoStore>,
    pub key_get: Edge<DynamoStore>,
    pub key_roll: roll_key::State<DynamoStore>,
    pub key_revoke: Edge<DynamoStore>,
    /// The store every handler's edge holds, for tests to arrange and inspect.
    store: DynamoStore,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with_endpoint(&dynamodb_endpoint(), true).await
    }

    /// An app whose DynamoDB is at `endpoint`; `create` = false skips table creation (for
    /// pointing at a dead endpoint or at tables that do not exist).
    pub async fn spawn_with_endpoint(endpoint: &str, create: bool) -> Self {
        capture_logs();
        let tables = unique_table_names();
        let outside = OutsideCalls::default();
        let client = dynamodb_client_recording(Some(endpoint), &outside).await;
        if create {
            create_tables(&client, &tables)
                .await
                .expect("create test tables");
        }
        let store = DynamoStore::new(client.clone(), tables.clone());
        let clock = ManualClock::new();
        // Each function its own execution environment (its own limiter and metrics state),
        // all on one client, as one process's handlers would be.
        let edge = |store: DynamoStore| {
            Edge::new(
                store,
                KeyEnvironment::Test,
                RateLimit::DEFAULT,
                clock.clock(),
                Meter::new(outside.clone()),
            )
        };
        TestApp {
            accounts: create_account::State {
                edge: edge(store.clone()),
                ids: IdSource::random(),
            },
            payments: create_payment::State {
                edge: edge(store.clone()),
                ids: IdSource::random(),
            },
            retrieve: edge(store.clone()),
            list: edge(store.clone()),
            key_create: create_key::State {
                edge: edge(store.clone()),
                ids: IdSource::random(),
            },
            key_list: edge(store.clone()),
            key_get: edge(store.clone()),
            key_roll: roll_key::State {
                edge: edge(store.clone()),
                ids: IdSource::random(),
            },
            key_revoke: edge(store.clone()),
            store,
            clock,
            client,
            clients_table: tables.clients.clone(),
            payments_table: tables.payments.clone(),
            audit_table: tables.audit.clone(),
        }
    }

    /// An execution environment of its own on this app's tables and clock, whose DynamoDB
    /// client talks to `endpoint` (a fault proxy in front of DynamoDB Local).
    pub async fn edge_through(&self, endpoint: &str) -> Edge<DynamoStore> {
        Edge::new(
            DynamoStore::new(
                shared::config::dynamodb_client(Some(endpoint)).await,
                self.tables(),
            ),
            KeyEnvironment::Test,
            RateLimit::DEFAULT,
            self.clock.clock(),
            Meter::default(),
        )
    }

    pub fn tables(&self) -> Tables {
        Tables {
            clients: self.clients_table.clone(),
            payments: self.payments_table.clone(),
            audit: self.audit_table.clone(),
        }
    }

    pub fn store(&self) -> &DynamoStore {
        &self.store
    }

    pub async fn post_account(&self, request: Request) -> TestResponse {
        let response =
            TestResponse::from_lambda(create_account::handle(&self.accounts, request).await);
        if let Some(key) = response.body["api_key"].as_str() {
            record_key(key);
        }
        response
    }

    pub async fn post_payment(&self, request: Request) -> TestResponse {
        if let Some(key) = request.headers().get("x-api-key") {
            record_key(&String::from_utf8_lossy(key.as_bytes()));
        }
        TestResponse::from_lambda(create_payment::handle(&self.payments, request).await)
    }

    /// `GET /payments/{id}` as API Gateway hands it over (route, path parameter, headers).
    pub async fn get_payment(&self, api_key: Option<&str>, id: &str) -> TestResponse {
        let headers: Vec<(&str, &str)> =
            api_key.map(|key| ("x-api-key", key)).into_iter().collect();
        if let Some(key) = api_key {
            record_key(key);
        }
        let request = shared::testing::api_gateway_route_request(
            "GET",
            "/payments/{id}",
            &format!("/payments/{id}"),
            &[("id", id)],
            &[],
            &headers,
        );
        TestResponse::from_lambda(get_payment::handle(&self.retrieve, request).await)
    }

    /// `GET /payments` with the query parameters `query`.
    pub async fn list_payments(
        &self,
        api_key: Option<&str>,
        query: &[(&str, &str)],
    ) -> TestResponse {
        let headers: Vec<(&str, &str)> =
            api_key.map(|key| ("x-api-key", key)).into_iter().collect();
        if let Some(key) = api_key {
            record_key(key);
        }
        let request = shared::testing::api_gateway_route_request(
            "GET",
            "/payments",
            "/payments",
            &[],
            query,
            &headers,
        );
        TestResponse::from_lambda(list_payments::handle(&self.list, request).await)
    }

    /// `POST /keys` with `body`, as `api_key`.
    pub async fn create_key(&self, api_key: &str, body: &Value) -> TestResponse {
        let request = key_event("POST", "/keys", None, api_key)
            .json(body)
            .request();
        let response =
            TestResponse::from_lambda(create_key::handle(&self.key_create, request).await);
        record_new_key(&response);
        response
    }

    /// `GET /keys`, as `api_key`.
    pub async fn list_keys(&self, api_key: &str) -> TestResponse {
        let request = key_event("GET", "/keys", None, api_key).request();
        TestResponse::from_lambda(list_keys::handle(&self.key_list, request).await)
    }

    /// `GET /keys/{id}`, as `api_key`.
    pub async fn get_key(&self, api_key: &str, id: &str) -> TestResponse {
        let request = key_event("GET", "/keys/{id}", Some(id), api_key).request();
        TestResponse::from_lambda(get_key::handle(&self.key_get, request).await)
    }

    /// `POST /keys/{id}/roll` with `body` (none: no body), as `api_key`.
    pub async fn roll_key(&self, api_key: &str, id: &str, body: Option<&Value>) -> TestResponse {
        let mut event = key_event("POST", "/keys/{id}/roll", Some(id), api_key);
        if let Some(body) = body {
            event = event.json(body);
        }
        let response =
            TestResponse::from_lambda(roll_key::handle(&self.key_roll, event.request()).await);
        record_new_key(&response);
        response
    }

    /// `DELETE /keys/{id}`, as `api_key`.
    pub async fn revoke_key(&self, api_key: &str, id: &str) -> TestResponse {
        let request = key_event("DELETE", "/keys/{id}", Some(id), api_key).request();
        TestResponse::from_lambda(revoke_key::handle(&self.key_revoke, request).await)
    }

    pub async fn create_account(&self, body: Value) -> TestResponse {
        self.post_account(json_request("/accounts", None, &body))
            .await
    }

    /// Creates an account and returns (account id, API key).
    pub async fn new_client(&self) -> (String, String) {
        let response = self
            .create_account(serde_json::json!({"name": "Test Client"}))
            .await;
        assert_eq!(response.status, 201, "{:?}", response.body);
        (
            response.body["id"].as_str().unwrap().to_owned(),
            response.body["api_key"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn create_payment(&self, api_key: Option<&str>, body: Value) -> TestResponse {
        self.post_payment(json_request("/payments", api_key, &body))
            .await
    }

    /// `POST /payments` with an `Idempotency-Key` header.
    pub async fn create_payment_idempotent(
        &self,
        api_key: &str,
        idempotency_key: &str,
        body: Value,
    ) -> TestResponse {
        self.post_payment(keyed_request(api_key, idempotency_key, &body))
            .await
    }

    /// Every item of a table. Tests only: the service itself never scans.
    pub async fn scan(&self, table: &str) -> Vec<HashMap<String, AttributeValue>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .scan()
                .table_name(table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan");
            items.extend(output.items.unwrap_or_default());
            start = output.last_evaluated_key;
            if start.is_none() {
                return items;
            }
        }
    }

    pub async fn payments_of(&self, account_id: &str) -> Vec<HashMap<String, AttributeValue>> {
        self.scan(&self.payments_table)
            .await
            .into_iter()
            .filter(|item| {
                item.get("client_id")
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str)
                    == Some(account_id)
            })
            .collect()
    }
}

/// A `/keys` request as API Gateway hands it over: `route` with its `{id}` filled in.
fn key_event(method: &str, route: &str, id: Option<&str>, api_key: &str) -> shared::testing::Event {
    record_key(api_key);
    let mut event = shared::testing::Event::new(method, route).header("x-api-key", api_key);
    if let Some(id) = id {
        event = event.path(&route.replace("{id}", id)).param("id", id);
    }
    event
}

/// The secret a created or rolled key's answer carries, for the log hygiene check.
fn record_new_key(response: &TestResponse) {
    if let Some(key) = response.body["api_key"].as_str() {
        record_key(key);
    }
}

/// The payment handler on `store`, as an execution environment of its own (its own rate
/// limit counts, metrics state and ids), applying `default_limit` to accounts without one.
pub fn payment_environment<S>(
    store: S,
    clock: shared::domain::Clock,
    default_limit: RateLimit,
) -> create_payment::State<S> {
    create_payment::State {
        edge: Edge::new(
            store,
            KeyEnvironment::Test,
            default_limit,
            clock,
            Meter::default(),
        ),
        ids: IdSource::random(),
    }
}

/// The operator named in the audit events that tests cause.
pub fn operator() -> shared::domain::Actor {
    shared::domain::Actor::parse("test-operator").expect("a valid actor")
}

/// How a store records a newly minted key, with a fresh key id.
pub fn issued(
    key: &shared::domain::ApiKey,
    now: shared::domain::Timestamp,
) -> shared::store::IssuedKey {
    shared::store::IssuedKey::new(
        key,
        shared::domain::KeyId::generate().expect("random id"),
        now,
    )
}

/// `POST /payments` with a key and an `Idempotency-Key`, as API Gateway would hand it over.
pub fn keyed_request(api_key: &str, idempotency_key: &str, body: &Value) -> Request {
    let mut request = json_request("/payments", Some(api_key), body);
    request.headers_mut().insert(
        "idempotency-key",
        lambda_http::http::HeaderValue::from_str(idempotency_key).expect("header value"),
    );
    request
}

/// A POST with a JSON body, as API Gateway would hand it over.
pub fn json_request(path: &str, api_key: Option<&str>, body: &Value) -> Request {
    raw_request(
        Method::POST,
        path,
        api_key,
        Some("application/json"),
        body.to_string().into_bytes(),
    )
}

pub fn raw_request(
    method: Method,
    path: &str,
    api_key: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Request {
    let mut builder = HttpRequest::builder().method(method).uri(path);
    if let Some(key) = api_key {
        builder = builder.header("x-api-key", key);
    }
    if let Some(content_type) = content_type {
        builder = builder.header("content-type", content_type);
    }
    let body = if body.is_empty() {
        Body::Empty
    } else {
        Body::Binary(body)
    };
    builder.body(body).expect("valid test request")
}

/// Every string value anywhere in an item, for "is this secret stored anywhere" checks.
pub fn all_strings(value: &AttributeValue, out: &mut Vec<String>) {
    match value {
        AttributeValue::S(s) | AttributeValue::N(s) => out.push(s.clone()),
        AttributeValue::Ss(list) | AttributeValue::Ns(list) => out.extend(list.iter().cloned()),
        AttributeValue::M(map) => map.values().for_each(|v| all_strings(v, out)),
        AttributeValue::L(list) => list.iter().for_each(|v| all_strings(v, out)),
        AttributeValue::B(blob) => out.push(String::from_utf8_lossy(blob.as_ref()).into_owned()),
        _ => {}
    }
}

/// The `p` quantile (0 to 1) of `samples`, in milliseconds, sorting them: for the cost
/// examples' latency lines.
pub fn percentile_ms(samples: &mut [std::time::Duration], p: f64) -> f64 {
    samples.sort_unstable();
    let at = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[at].as_secs_f64() * 1e3
}
