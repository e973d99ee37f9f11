//! Test support (feature `test-support`; never compiled into a release binary): a clock that
//! tests move, and the in-memory store.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::domain::{
    Account, AccountId, AccountName, AccountStatus, Actor, ApiKey, AuditEvent, Clock, EventId,
    KeyEnvironment, KeyId, Timestamp,
};
use crate::store::{CreateAccount, IssuedKey};

pub use crate::store::memory::{MemoryStore, Operation};

/// What a restricted key of a test is given: `permissions` (and what they imply), usable
/// from `ips` (none: anywhere), unnamed, with no end.
pub fn grant(permissions: &[crate::domain::Permission], ips: &[&str]) -> crate::domain::KeyGrant {
    crate::domain::KeyGrant {
        name: None,
        permissions: crate::domain::Permissions::of(permissions.iter().copied()),
        allowed_ips: crate::domain::IpAllowList::parse(ips.iter().copied())
            .expect("valid IP ranges"),
        expires_at: None,
    }
}

/// Adds a restricted key with `grant` to `account` in `store`, as an operator would.
pub async fn restricted_key(
    store: &MemoryStore,
    account: &AccountId,
    grant: crate::domain::KeyGrant,
    at: Timestamp,
) -> (ApiKey, KeyId) {
    use crate::store::CreateKey;
    let key = ApiKey::generate(crate::domain::KeyKind::Restricted, KeyEnvironment::Test)
        .expect("OS random source");
    let issued = IssuedKey::with_grant(
        &key,
        KeyId::generate().expect("OS random source"),
        at,
        grant,
    );
    let actor = Actor::parse("test-operator").expect("a valid actor");
    store
        .create_key(
            account,
            &issued,
            None,
            at,
            crate::store::Origin::operator(&actor),
        )
        .await
        .expect("room for a restricted key");
    (key, issued.key_id)
}

/// An active account with one test-environment key, created at `at` in `store`.
pub async fn account_with_key(store: &MemoryStore, at: Timestamp) -> (ApiKey, AccountId) {
    let key = ApiKey::generate(crate::domain::KeyKind::Secret, KeyEnvironment::Test)
        .expect("OS random source");
    let account = Account {
        id: AccountId::generate().expect("OS random source"),
        name: AccountName::parse("Ada".into()).expect("a valid name"),
        email: None,
        status: AccountStatus::Active,
        created_at: at,
    };
    let issued = IssuedKey::new(&key, KeyId::generate().expect("OS random source"), at);
    let event = AuditEvent::account_created(
        EventId::generate().expect("OS random source"),
        Actor::anonymous(),
        &account.id,
        account.status,
        &issued.key_id,
        at,
    );
    store
        .create_account(&account, &issued, &event)
        .await
        .expect("a new account in an empty store");
    (key, account.id)
}

/// A handler's edge on `store` for a test: test-environment keys, the default rate limit,
/// `clock`, and a metrics state of its own.
#[cfg(feature = "lambda")]
pub fn edge<S>(store: S, clock: Clock) -> crate::http::pipeline::Edge<S> {
    crate::http::pipeline::Edge::new(
        store,
        KeyEnvironment::Test,
        crate::domain::RateLimit::DEFAULT,
        clock,
        crate::http::metrics::Meter::default(),
    )
}

/// `request` as Lambda hands it over, with `ms` left before the invocation's deadline
/// (negative: already past).
#[cfg(feature = "lambda")]
pub fn with_deadline_in(request: lambda_http::Request, ms: i64) -> lambda_http::Request {
    use lambda_http::RequestExt;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    let mut context = lambda_http::Context::default();
    context.deadline = (now + ms) as u64;
    request.with_lambda_context(context)
}

/// A request as API Gateway (HTTP API, payload 2.0) hands it to a function: built from the
/// event JSON and read by the same code that reads real events, so header names keep the
/// case a client sent and the query string lands where the runtime puts it.
#[cfg(feature = "lambda")]
pub fn api_gateway_request(
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
    body: &str,
) -> lambda_http::Request {
    from_event(api_gateway_event_json(
        method,
        path,
        path,
        &[],
        query,
        headers,
        body,
    ))
}

/// A `GET` of a route with path parameters (`/payments/{id}`), as API Gateway hands it
/// over: `route` is the route key's path, `path` the requested one.
#[cfg(feature = "lambda")]
pub fn api_gateway_route_request(
    method: &str,
    route: &str,
    path: &str,
    path_parameters: &[(&str, &str)],
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> lambda_http::Request {
    from_event(api_gateway_event_json(
        method,
        route,
        path,
        path_parameters,
        query,
        headers,
        "",
    ))
}

/// A `POST` on a route with `AWS_IAM` authorization, signed by the IAM principal `user_arn`:
/// API Gateway puts the principal in the request context.
#[cfg(feature = "lambda")]
pub fn api_gateway_iam_request(
    path: &str,
    user_arn: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> lambda_http::Request {
    let mut event = api_gateway_event_json("POST", path, path, &[], &[], headers, body);
    event["requestContext"]["authorizer"] = serde_json::json!({
        "iam": {
            "accessKey": "AKIAIOSFODNN7EXAMPLE",
            "accountId": "123456789012",
            "callerId": "AIDACKCEVSQ6C2EXAMPLE",
            "principalOrgId": null,
            "userArn": user_arn,
            "userId": "AIDACKCEVSQ6C2EXAMPLE"
        }
    });
    from_event(event)
}

/// A request as API Gateway hands it over, built part by part: `Event::new("POST",
/// "/keys/{id}/roll").path("/keys/key_…/roll").param("id", "key_…").header(…).body(…)`.
#[cfg(feature = "lambda")]
#[derive(Debug, Clone)]
pub struct Event {
    method: String,
    route: String,
    path: String,
    path_parameters: Vec<(String, String)>,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: String,
    source_ip: String,
}

#[cfg(feature = "lambda")]
impl Event {
    /// A request of `route` at the route's own path, from 203.0.113.7.
    pub fn new(method: &str, route: &str) -> Self {
        Event {
            method: method.to_owned(),
            route: route.to_owned(),
            path: route.to_owned(),
            path_parameters: Vec::new(),
            query: Vec::new(),
            headers: Vec::new(),
            body: String::new(),
            source_ip: "203.0.113.7".to_owned(),
        }
    }

    pub fn path(mut self, path: &str) -> Self {
        self.path = path.to_owned();
        self
    }

    pub fn param(mut self, name: &str, value: &str) -> Self {
        self.path_parameters
            .push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.query.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A JSON body, with its content type.
    pub fn json(self, body: &serde_json::Value) -> Self {
        let mut event = self.header("content-type", "application/json");
        event.body = body.to_string();
        event
    }

    pub fn source_ip(mut self, ip: &str) -> Self {
        self.source_ip = ip.to_owned();
        self
    }

    pub fn request(self) -> lambda_http::Request {
        fn pairs(list: &[(String, String)]) -> Vec<(&str, &str)> {
            list.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect()
        }
        let mut event = api_gateway_event_json(
            &self.method,
            &self.route,
            &self.path,
            &pairs(&self.path_parameters),
            &pairs(&self.query),
            &pairs(&self.headers),
            &self.body,
        );
        event["requestContext"]["http"]["sourceIp"] = serde_json::json!(self.source_ip);
        from_event(event)
    }
}

#[cfg(feature = "lambda")]
fn from_event(event: serde_json::Value) -> lambda_http::Request {
    lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway event")
}

#[cfg(feature = "lambda")]
fn api_gateway_event_json(
    method: &str,
    route: &str,
    path: &str,
    path_parameters: &[(&str, &str)],
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
    body: &str,
) -> serde_json::Value {
    let raw_query = query
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut event = serde_json::json!({
        "version": "2.0",
        "routeKey": format!("{method} {route}"),
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": headers.iter().map(|(n, v)| (n.to_string(), serde_json::json!(v)))
            .collect::<serde_json::Map<_, _>>(),
        "queryStringParameters": query.iter().map(|(n, v)| (n.to_string(), serde_json::json!(v)))
            .collect::<serde_json::Map<_, _>>(),
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "test",
            "domainName": "test.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "test",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "test"
            },
            "requestId": "test-request",
            "routeKey": format!("{method} {route}"),
            "stage": "$default",
            "time": "01/Dec/2026:00:00:00 +0000",
            "timeEpoch": 1_796_083_200_000u64
        },
        "body": body,
        "isBase64Encoded": false
    });
    if !path_parameters.is_empty() {
        event["pathParameters"] = path_parameters
            .iter()
            .map(|(n, v)| (n.to_string(), serde_json::json!(v)))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    event
}

/// The real time shifted forward by however far tests have advanced it. Tests move it past
/// grace periods and expiries without sleeping, and it stays close enough to the real time
/// to agree with tools (such as the operator CLI) that use the system clock.
#[derive(Clone, Default)]
pub struct ManualClock(Arc<Mutex<Duration>>);

impl ManualClock {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }

    pub fn clock(&self) -> Clock {
        let offset = Arc::clone(&self.0);
        Clock::from_fn(move || Timestamp::now().plus(*offset.lock().unwrap()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_runs_ahead_by_what_it_was_advanced() {
        let manual = ManualClock::new();
        let clock = manual.clock();
        let before = Timestamp::now();
        assert!(clock.now() >= before);
        manual.advance(Duration::from_secs(3600));
        let ahead = clock.now();
        assert!(ahead >= before.plus(Duration::from_secs(3600)));
        assert!(ahead < Timestamp::now().plus(Duration::from_secs(3660)));
    }
}
