//! Every route goes through the one request pipeline. The routes are read from where they
//! are declared, `template.yaml` (API Gateway) and the `cargo lambda watch` router in
//! `Cargo.toml`, and each is called through its function's real handler with the in-memory
//! store: a route whose handler skips a step of the pipeline (the method, the deadline, the
//! auth step, the rate limit, the key's last use, the permission, the metrics line) fails
//! here, and so does a
//! route added to either file without a handler registered below.

use std::collections::BTreeSet;
use std::time::Duration;

use lambda_http::http::{HeaderValue, Method};
use lambda_http::{Body, Request, Response};
use serde_json::Value;
use shared::domain::{ApiKey, Clock, IdSource, Permission, Permissions, RateLimit, Timestamp};
use shared::http::metrics;
use shared::http::pipeline::Edge;
use shared::testing::{
    account_with_key, api_gateway_route_request, edge, grant, restricted_key, with_deadline_in,
    MemoryStore, Operation,
};
use yaml_rust2::{Yaml, YamlLoader};

/// One route as a deployment declares it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Route {
    method: String,
    path: String,
    /// The function's folder under `functions/`.
    function: String,
}

fn workspace_file(name: &str) -> String {
    let path = payments_tests::stack::workspace_root().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn text(yaml: &Yaml) -> Option<&str> {
    yaml.as_str()
}

/// `template.yaml`'s routes, and whether API Gateway authorizes each (an
/// `AuthorizationType`, as `POST /accounts` has): the others must authenticate their
/// callers' API keys themselves.
fn template_routes() -> Vec<(Route, bool)> {
    let docs = YamlLoader::load_from_str(&workspace_file("template.yaml")).expect("YAML");
    let resources = docs[0]["Resources"].as_hash().expect("Resources");
    let folder = |function: &str| -> String {
        let uri = text(&docs[0]["Resources"][function]["Properties"]["CodeUri"])
            .unwrap_or_else(|| panic!("{function} has no CodeUri"));
        uri.strip_prefix("functions/")
            .unwrap_or_else(|| panic!("{function}: CodeUri {uri} is not under functions/"))
            .to_owned()
    };
    let mut routes = Vec::new();
    for (name, resource) in resources {
        let name = text(name).expect("resource name");
        match text(&resource["Type"]) {
            Some("AWS::Serverless::Function") => {
                let events = resource["Properties"]["Events"].as_hash();
                for event in events.into_iter().flat_map(|events| events.values()) {
                    if text(&event["Type"]) != Some("HttpApi") {
                        continue;
                    }
                    let properties = &event["Properties"];
                    assert!(
                        properties["Auth"].is_badvalue(),
                        "{name}: an HttpApi event with an authorizer"
                    );
                    routes.push((
                        Route {
                            method: text(&properties["Method"]).expect("Method").to_uppercase(),
                            path: text(&properties["Path"]).expect("Path").to_owned(),
                            function: folder(name),
                        },
                        false,
                    ));
                }
            }
            Some("AWS::ApiGatewayV2::Route") => {
                let properties = &resource["Properties"];
                let key = text(&properties["RouteKey"]).expect("RouteKey");
                let (method, path) = key.split_once(' ').expect("METHOD /path");
                // integrations/${Integration} -> the integration's `Function.Alias`.
                let target = text(&properties["Target"]).expect("Target");
                let integration = target
                    .strip_prefix("integrations/${")
                    .and_then(|rest| rest.strip_suffix('}'))
                    .unwrap_or_else(|| panic!("{name}: target {target}"));
                let uri = text(&docs[0]["Resources"][integration]["Properties"]["IntegrationUri"])
                    .expect("IntegrationUri");
                let function = uri.split('.').next().expect("a function");
                routes.push((
                    Route {
                        method: method.to_owned(),
                        path: path.to_owned(),
                        function: folder(function),
                    },
                    !properties["AuthorizationType"].is_badvalue(),
                ));
            }
            _ => {}
        }
    }
    routes.sort();
    routes
}

/// The `cargo lambda watch` router's routes (`make dev`).
fn router_routes() -> Vec<Route> {
    let cargo: toml::Table = workspace_file("Cargo.toml").parse().expect("TOML");
    let router = cargo["workspace"]["metadata"]["lambda"]["watch"]["router"]
        .as_table()
        .expect("[workspace.metadata.lambda.watch.router]");
    let mut routes: Vec<Route> = router
        .iter()
        .flat_map(|(path, targets)| {
            targets
                .as_array()
                .expect("a list of targets")
                .iter()
                .map(move |target| Route {
                    method: target["method"].as_str().expect("method").to_owned(),
                    path: path.clone(),
                    function: target["function"].as_str().expect("function").to_owned(),
                })
        })
        .collect();
    routes.sort();
    routes
}

/// Every function's real handler, on one in-memory store.
struct Functions {
    store: MemoryStore,
    accounts: create_account::State<MemoryStore>,
    payments: create_payment::State<MemoryStore>,
    retrieve: Edge<MemoryStore>,
    list: Edge<MemoryStore>,
    key_create: create_key::State<MemoryStore>,
    key_list: Edge<MemoryStore>,
    key_get: Edge<MemoryStore>,
    key_roll: roll_key::State<MemoryStore>,
    key_revoke: Edge<MemoryStore>,
}

impl Functions {
    fn new() -> Self {
        let store = MemoryStore::default();
        let clock = Clock::system();
        Functions {
            accounts: create_account::State {
                edge: edge(store.clone(), clock.clone()),
                ids: IdSource::random(),
            },
            payments: create_payment::State {
                edge: edge(store.clone(), clock.clone()),
                ids: IdSource::random(),
            },
            retrieve: edge(store.clone(), clock.clone()),
            list: edge(store.clone(), clock.clone()),
            key_create: create_key::State {
                edge: edge(store.clone(), clock.clone()),
                ids: IdSource::random(),
            },
            key_list: edge(store.clone(), clock.clone()),
            key_get: edge(store.clone(), clock.clone()),
            key_roll: roll_key::State {
                edge: edge(store.clone(), clock.clone()),
                ids: IdSource::random(),
            },
            key_revoke: edge(store.clone(), clock),
            store,
        }
    }

    /// The route's handler. A function without an entry here is a route nobody checks.
    async fn call(&self, function: &str, request: Request) -> Response<Body> {
        match function {
            "create-account" => create_account::handle(&self.accounts, request).await,
            "create-payment" => create_payment::handle(&self.payments, request).await,
            "get-payment" => get_payment::handle(&self.retrieve, request).await,
            "list-payments" => list_payments::handle(&self.list, request).await,
            "create-key" => create_key::handle(&self.key_create, request).await,
            "list-keys" => list_keys::handle(&self.key_list, request).await,
            "get-key" => get_key::handle(&self.key_get, request).await,
            "roll-key" => roll_key::handle(&self.key_roll, request).await,
            "revoke-key" => revoke_key::handle(&self.key_revoke, request).await,
            other => panic!(
                "a route goes to function {other}, which tests/tests/api/routes.rs does not know: \
                 add its handler to Functions::call so the route is checked"
            ),
        }
    }
}

/// The permission each authenticated function's route states.
fn permission(function: &str) -> Permission {
    match function {
        "create-payment" => create_payment::ROUTE.permission,
        "get-payment" => get_payment::ROUTE.permission,
        "list-payments" => list_payments::ROUTE.permission,
        "create-key" => create_key::ROUTE.permission,
        "list-keys" => list_keys::ROUTE.permission,
        "get-key" => get_key::ROUTE.permission,
        "roll-key" => roll_key::ROUTE.permission,
        "revoke-key" => revoke_key::ROUTE.permission,
        other => panic!("no permission known for {other}"),
    }
}

/// The operation name each function's metrics line carries.
fn operation(function: &str) -> String {
    function.replace('-', "_")
}

/// A request of `route` as API Gateway hands it over, the path parameter filled in.
fn request(route: &Route, method: &str, api_key: Option<&str>) -> Request {
    let path = route.path.replace("{id}", "pay_AAAAAAAAAAAAAAAAAAAA");
    let parameters: Vec<(&str, &str)> = if route.path.contains("{id}") {
        vec![("id", "pay_AAAAAAAAAAAAAAAAAAAA")]
    } else {
        vec![]
    };
    let mut headers = vec![("content-type", "application/json")];
    headers.extend(api_key.map(|key| ("x-api-key", key)));
    let mut request =
        api_gateway_route_request(method, &route.path, &path, &parameters, &[], &headers);
    if method == "POST" {
        *request.body_mut() = Body::Text("{}".to_owned());
    }
    request
}

struct Answer {
    status: u16,
    code: String,
    allow: Option<HeaderValue>,
    retry_after: bool,
}

async fn send(functions: &Functions, route: &Route, request: Request) -> Answer {
    let response = tokio::time::timeout(
        Duration::from_secs(5),
        functions.call(&route.function, request),
    )
    .await
    .unwrap_or_else(|_| {
        panic!("{route:?}: no answer in 5 s; are its calls bounded by the request's deadline?")
    });
    let body: Value = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
    Answer {
        status: response.status().as_u16(),
        code: body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        allow: response.headers().get("allow").cloned(),
        retry_after: response.headers().contains_key("retry-after"),
    }
}

/// Lets the background tasks of this single-threaded test runtime run.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

/// Each request wrote exactly one metrics line, of the route's function.
fn one_metrics_line_each(route: &Route, requests: usize) {
    let lines = metrics::captured();
    assert_eq!(
        lines.len(),
        requests,
        "{route:?}: one metrics line per request"
    );
    for line in lines {
        let doc: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(doc["Function"], operation(&route.function), "{route:?}");
    }
}

fn other_method(method: &str) -> &'static str {
    if method == "GET" {
        "POST"
    } else {
        "GET"
    }
}

/// The steps before an authenticated route's own work, each shown by what it does.
async fn check_authenticated(route: &Route) {
    let functions = Functions::new();
    let store = &functions.store;
    let (key, account) = account_with_key(store, Timestamp::now()).await;
    let key = key.expose_once();
    metrics::capture();
    let calls = || store.all_calls();
    let start = calls();

    // The method first: nothing read.
    let answer = send(
        &functions,
        route,
        request(route, other_method(&route.method), Some(key)),
    )
    .await;
    assert_eq!(
        (answer.status, answer.code.as_str()),
        (405, "method_not_allowed"),
        "{route:?}"
    );
    let allowed = Method::from_bytes(route.method.as_bytes()).unwrap();
    assert_eq!(
        answer.allow.as_ref().map(|v| v.as_bytes()),
        Some(allowed.as_str().as_bytes())
    );
    assert_eq!(calls(), start, "{route:?}: a 405 reads nothing");

    // No key, or a key that does not authenticate: 401, and nothing but the lookup of a
    // well-formed key.
    let answer = send(&functions, route, request(route, &route.method, None)).await;
    assert_eq!(
        (answer.status, answer.code.as_str()),
        (401, "missing_api_key"),
        "{route:?}"
    );
    assert_eq!(calls(), start, "{route:?}: a missing key reads nothing");
    let stranger = ApiKey::generate(
        shared::domain::KeyKind::Secret,
        shared::domain::KeyEnvironment::Test,
    )
    .unwrap();
    let answer = send(
        &functions,
        route,
        request(route, &route.method, Some(stranger.expose_once())),
    )
    .await;
    assert_eq!(
        (answer.status, answer.code.as_str()),
        (401, "invalid_api_key"),
        "{route:?}"
    );
    assert_eq!(
        calls(),
        start + 1,
        "{route:?}: a bad key costs its lookup only"
    );
    assert_eq!(store.calls(Operation::FindKey), 1);

    // The deadline bounds the key lookup: a hanging store is a 503 in time, not a hang.
    store.hang_next(Operation::FindKey);
    let answer = send(
        &functions,
        route,
        with_deadline_in(request(route, &route.method, Some(key)), 300),
    )
    .await;
    assert_eq!(
        (answer.status, answer.code.as_str()),
        (503, "service_unavailable"),
        "{route:?}"
    );

    // A key holding every permission but the route's (and what implies it): 403 naming it,
    // from the key lookup alone (and the key's first use, in the background). The 403
    // counts against its account's rate limit: another account's, so that the steps below
    // start from a fresh count.
    let needed = permission(&route.function);
    let others: Vec<Permission> = Permission::ALL
        .iter()
        .copied()
        .filter(|p| !Permissions::of([*p]).contains(needed))
        .collect();
    let (_, other_account) = account_with_key(store, Timestamp::now()).await;
    let (lacking, _) =
        restricted_key(store, &other_account, grant(&others, &[]), Timestamp::now()).await;
    let (lookups, uses, before) = (
        store.calls(Operation::FindKey),
        store.calls(Operation::RecordKeyUse),
        calls(),
    );
    let answer = send(
        &functions,
        route,
        request(route, &route.method, Some(lacking.expose_once())),
    )
    .await;
    assert_eq!(
        (answer.status, answer.code.as_str()),
        (403, "insufficient_permissions"),
        "{route:?}"
    );
    settle().await;
    assert_eq!(store.calls(Operation::FindKey), lookups + 1);
    assert_eq!(
        calls() - before,
        1 + store.calls(Operation::RecordKeyUse) - uses,
        "{route:?}: a 403 reads only the key"
    );
    let uses = store.calls(Operation::RecordKeyUse);

    // Authenticated: the route's own work runs (whatever it answers to an empty request),
    // and the key's first use is recorded in the background.
    store.set_rate_limit(&account, Some(RateLimit::new(1).unwrap()));
    let answer = send(&functions, route, request(route, &route.method, Some(key))).await;
    assert_ne!(answer.status, 401, "{route:?}");
    assert_ne!(answer.status, 429, "{route:?}");
    settle().await;
    let recorded = store.calls(Operation::RecordKeyUse) - uses;
    assert_eq!(recorded, 1, "{route:?}: the key's first use is recorded");
    assert!(store
        .key(
            &ApiKey::parse(key, shared::domain::KeyEnvironment::Test)
                .unwrap()
                .digest()
        )
        .unwrap()
        .last_used_at
        .is_some());

    // Over the account's limit of 1 a second: 429 after the key lookup, nothing else.
    let before = calls();
    let answer = send(&functions, route, request(route, &route.method, Some(key))).await;
    assert_eq!(
        (answer.status, answer.code.as_str()),
        (429, "rate_limited"),
        "{route:?}"
    );
    assert!(answer.retry_after, "{route:?}: a 429 says when to retry");
    settle().await;
    assert_eq!(calls() - before, 1, "{route:?}: a 429 reads only the key");

    one_metrics_line_each(route, 7);
}

/// A route API Gateway authorizes still goes through the method, the deadline and the
/// metrics.
async fn check_open(route: &Route) {
    let functions = Functions::new();
    let store = &functions.store;
    metrics::capture();
    let answer = send(
        &functions,
        route,
        request(route, other_method(&route.method), None),
    )
    .await;
    assert_eq!(
        (answer.status, answer.code.as_str()),
        (405, "method_not_allowed"),
        "{route:?}"
    );
    assert_eq!(store.all_calls(), 0);
    let operation = match route.function.as_str() {
        "create-account" => Operation::CreateAccount,
        other => panic!("an open route to {other}: say which store call bounds it"),
    };
    store.hang_next(operation);
    let mut request = with_deadline_in(request(route, &route.method, None), 300);
    *request.body_mut() = Body::Text(r#"{"name": "Ada"}"#.to_owned());
    let answer = send(&functions, route, request).await;
    assert_eq!(
        answer.status, 503,
        "{route:?}: its write is bounded by the deadline"
    );
    one_metrics_line_each(route, 2);
}

#[tokio::test]
async fn every_route_of_the_template_and_the_router_goes_through_the_pipeline() {
    let template = template_routes();
    let declared: Vec<Route> = template.iter().map(|(route, _)| route.clone()).collect();
    assert_eq!(
        declared,
        router_routes(),
        "template.yaml and the cargo lambda watch router declare the same routes"
    );
    let functions: BTreeSet<&str> = declared.iter().map(|r| r.function.as_str()).collect();
    assert_eq!(functions.len(), 9, "{functions:?}");
    for (route, authorized_by_gateway) in &template {
        if *authorized_by_gateway {
            check_open(route).await;
        } else {
            check_authenticated(route).await;
        }
    }
}
