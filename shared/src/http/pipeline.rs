//! The one way into a route. Every function's handler is one call of [`Edge::serve`] (the
//! routes whose callers present an API key) or [`Edge::serve_open`] (`POST /accounts`, which
//! API Gateway authorizes), and the route's own work only ever sees a request that has been
//! through every step before it: no route can skip one or take them in another order.
//!
//! An authenticated request goes through, in this order (the fastest measured,
//! BENCHMARKS.md):
//! 1. the route's method (405 otherwise);
//! 2. the invocation's deadline, which bounds every storage call from here on;
//! 3. the auth step: the key's digest, one strongly consistent read ([`authenticate`]);
//! 4. the account's rate limit ([`RateLimiter::admit`]): a refused key never gets here;
//! 5. the key's last use, recorded in the background when one is due ([`KeyUse`]);
//! 6. the route's permission, from the key's item the auth step read (403 otherwise, before
//!    the body is read);
//! 7. the route's own work, handed the authenticated client and the bounded store;
//! 8. the response, its log line and its metrics line ([`serve`]).
//!
//! Off every request's path, two background writes: at most once an hour per key, the
//! key's last use (step 5); and, when one is due, this environment's claim on its account's
//! rate limit (step 4: [`AccountShare`] says when). The request never waits for either, nor
//! fails by one. Every answer after the auth step states the account's limit
//! (`RateLimit-Policy`).
//!
//! [`AccountShare`]: crate::domain::AccountShare
//!
//! [`KeyUse`]: super::auth::KeyUse

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use serde::Serialize;

use super::auth::{authenticate, AuthenticatedClient};
use super::deadline::{Bounded, Deadline};
use super::error::ApiError;
use super::limit::RateLimiter;
use super::metrics::Meter;
use super::request::{request_id, require_method, source_ip};
use super::response::{rate_limit_policy, serve, Reply, RATE_LIMIT_POLICY_HEADER};
use crate::domain::{Clock, KeyEnvironment, Permission, RateLimit, Timestamp};
use crate::store::{FindKey, PublishDemand, RecordKeyUse};

/// An authenticated route, as the steps before its own work see it.
#[derive(Debug)]
pub struct Route {
    /// The route's name in logs and metrics (`create_payment`).
    pub operation: &'static str,
    /// The one method the route takes.
    pub method: Method,
    /// What the caller's key must hold.
    pub permission: Permission,
}

/// A route that API Gateway authorizes (`POST /accounts`).
#[derive(Debug)]
pub struct OpenRoute {
    pub operation: &'static str,
    pub method: Method,
}

/// What every route of one execution environment shares, built once before its first
/// request. Its fields are private: a route reaches the store only through its [`Call`],
/// whose every store call ends by the request's deadline.
pub struct Edge<S> {
    store: S,
    /// Which keys this deployment issues and accepts.
    key_environment: KeyEnvironment,
    /// This execution environment's counts of each account's requests.
    limiter: RateLimiter,
    clock: Clock,
    meter: Meter,
}

impl<S> Edge<S> {
    /// The edge of an environment whose accounts without a limit of their own get
    /// `default_rate_limit`.
    pub fn new(
        store: S,
        key_environment: KeyEnvironment,
        default_rate_limit: RateLimit,
        clock: Clock,
        meter: Meter,
    ) -> Self {
        Edge {
            store,
            key_environment,
            limiter: RateLimiter::new(default_rate_limit, clock.clone()),
            clock,
            meter,
        }
    }

    /// This edge with its clock at `clock`, sharing its store, rate limit shares and metrics
    /// state: a test's later moment of the same execution environment.
    #[cfg(any(test, feature = "test-support"))]
    pub fn with_clock(&self, clock: Clock) -> Self
    where
        S: Clone,
    {
        Edge {
            store: self.store.clone(),
            key_environment: self.key_environment,
            limiter: self.limiter.with_clock(clock.clone()),
            clock,
            meter: self.meter.clone(),
        }
    }
}

/// An authenticated request, as the route's own work receives it.
pub struct Call<'a, S> {
    pub request: Request,
    /// Who is calling, by their key.
    pub client: AuthenticatedClient,
    /// The store, each of whose calls ends by the request's deadline.
    pub store: Bounded<'a, S>,
    /// The instant the request is decided at (auth, rate limit, timestamps it writes).
    pub now: Timestamp,
    /// As the response and the log lines give it.
    pub request_id: String,
    /// Which keys this deployment issues.
    pub key_environment: KeyEnvironment,
}

/// A request to a route API Gateway authorizes, as the route's own work receives it.
pub struct OpenCall<'a, S> {
    pub request: Request,
    pub store: Bounded<'a, S>,
    pub now: Timestamp,
    /// Which keys this deployment issues.
    pub key_environment: KeyEnvironment,
}

impl<S: FindKey + RecordKeyUse + PublishDemand + Clone + 'static> Edge<S> {
    /// Serves one request of an authenticated `route`: the steps of the module docs, then
    /// `work`.
    pub async fn serve<'s, T, F, Fut>(
        &'s self,
        route: &'static Route,
        request: Request,
        work: F,
    ) -> Response<Body>
    where
        T: Serialize,
        F: FnOnce(Call<'s, S>) -> Fut,
        Fut: Future<Output = Result<Reply<T>, ApiError>>,
    {
        // The account's limit, once the key has authenticated: every answer from there on
        // states it.
        let policy = AtomicU32::new(0);
        let policy = &policy;
        let mut response = serve(
            &self.meter,
            request,
            route.operation,
            |request| async move { work(self.admit(route, request, policy).await?).await },
        )
        .await;
        if let Ok(limit) = RateLimit::new(policy.load(Ordering::Relaxed).into()) {
            response
                .headers_mut()
                .insert(RATE_LIMIT_POLICY_HEADER, rate_limit_policy(limit));
        }
        response
    }

    /// The limiter of this execution environment: tests wait on its reports.
    #[cfg(any(test, feature = "test-support"))]
    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    async fn admit(
        &self,
        route: &'static Route,
        request: Request,
        policy: &AtomicU32,
    ) -> Result<Call<'_, S>, ApiError> {
        require_method(&request, &route.method)?;
        let store = Deadline::of(&request).bound(&self.store);
        let now = self.clock.now();
        let client = authenticate(
            request.headers(),
            source_ip(&request),
            &store,
            self.key_environment,
            now,
        )
        .await?;
        policy.store(
            self.limiter.limit_of(&client).per_second(),
            Ordering::Relaxed,
        );
        self.limiter.admit(&client, &self.store, now)?;
        client.key_use.record_in_background(&self.store);
        // From the one item the auth step read; a refusal counts as a request (the key
        // authenticated) and comes before the body is read.
        if !client.permissions.contains(route.permission) {
            return Err(ApiError::MissingPermission(route.permission));
        }
        let request_id = request_id(&request);
        Ok(Call {
            request,
            client,
            store,
            now,
            request_id,
            key_environment: self.key_environment,
        })
    }
}

impl<S> Edge<S> {
    /// Serves one request of a route that API Gateway authorizes (IAM, or open on a demo
    /// stack): the method and the deadline, then `work`, then the response and metrics.
    pub async fn serve_open<'s, T, F, Fut>(
        &'s self,
        route: &'static OpenRoute,
        request: Request,
        work: F,
    ) -> Response<Body>
    where
        T: Serialize,
        F: FnOnce(OpenCall<'s, S>) -> Fut,
        Fut: Future<Output = Result<Reply<T>, ApiError>>,
    {
        serve(
            &self.meter,
            request,
            route.operation,
            |request| async move {
                require_method(&request, &route.method)?;
                let store = Deadline::of(&request).bound(&self.store);
                let now = self.clock.now();
                work(OpenCall {
                    request,
                    store,
                    now,
                    key_environment: self.key_environment,
                })
                .await
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use serde_json::{json, Value};

    use super::*;
    use crate::http::metrics;
    use crate::testing::{
        account_with_key, edge, grant, restricted_key, Event, MemoryStore, Operation,
    };

    static WRITE: Route = Route {
        operation: "write_things",
        method: Method::POST,
        permission: Permission::PaymentsWrite,
    };

    fn now() -> Timestamp {
        Timestamp::parse("2026-12-01T10:00:00Z").unwrap()
    }

    struct Answer {
        status: u16,
        body: Value,
        /// The body with its request id blanked.
        text: String,
        /// `RateLimit-Policy`, when the answer has it.
        policy: Option<String>,
    }

    /// Serves `request` on [`WRITE`], whose own work only counts that it ran.
    async fn send(edge: &Edge<MemoryStore>, request: Request, ran: &Cell<usize>) -> Answer {
        let response = edge
            .serve(&WRITE, request, |_call| async {
                ran.set(ran.get() + 1);
                Ok(Reply::ok(json!({"done": true})))
            })
            .await;
        let body: Value = serde_json::from_slice(response.body()).unwrap();
        let id = body["error"]["request_id"]
            .as_str()
            .unwrap_or("-")
            .to_owned();
        Answer {
            status: response.status().as_u16(),
            policy: response
                .headers()
                .get(RATE_LIMIT_POLICY_HEADER)
                .map(|value| value.to_str().unwrap().to_owned()),
            text: String::from_utf8(response.body().to_vec())
                .unwrap()
                .replace(&id, "<id>"),
            body,
        }
    }

    fn post(key: &str) -> Event {
        Event::new("POST", "/things").header("x-api-key", key)
    }

    #[tokio::test]
    async fn a_key_without_the_route_s_permission_is_403_naming_it_and_nothing_runs() {
        let store = MemoryStore::default();
        let (_, account) = account_with_key(&store, now()).await;
        let (reader, _) = restricted_key(
            &store,
            &account,
            grant(&[Permission::PaymentsRead, Permission::KeysWrite], &[]),
            now(),
        )
        .await;
        let edge = edge(store.clone(), Clock::from_fn(now));
        let ran = Cell::new(0);
        metrics::capture();
        let before = store.all_calls();
        let answer = send(&edge, post(reader.expose_once()).request(), &ran).await;
        assert_eq!(answer.status, 403);
        assert_eq!(
            answer.body["error"],
            json!({
                "type": "permission_error",
                "code": "insufficient_permissions",
                "message": "This key does not have the payments:write permission.",
                "request_id": answer.body["error"]["request_id"],
            })
        );
        assert_eq!(ran.get(), 0);
        // The key lookup and nothing else on the request's path (the key's first use is
        // recorded in the background).
        assert_eq!(store.calls(Operation::FindKey), 1);
        assert_eq!(
            store.all_calls() - before,
            1 + store.calls(Operation::RecordKeyUse)
        );
        let line: Value = serde_json::from_str(&metrics::captured()[0]).unwrap();
        assert_eq!(line["Outcome"], "insufficient_permissions");
        assert_eq!(line["StatusClass"], "4xx");
    }

    #[tokio::test]
    async fn a_refused_permission_counts_against_the_rate_limit() {
        let store = MemoryStore::default();
        let (_, account) = account_with_key(&store, now()).await;
        store.set_rate_limit(&account, Some(RateLimit::new(1).unwrap()));
        let (reader, _) = restricted_key(
            &store,
            &account,
            grant(&[Permission::PaymentsRead], &[]),
            now(),
        )
        .await;
        let edge = edge(store, Clock::from_fn(now));
        let ran = Cell::new(0);
        let first = send(&edge, post(reader.expose_once()).request(), &ran).await;
        let second = send(&edge, post(reader.expose_once()).request(), &ran).await;
        assert_eq!((first.status, second.status), (403, 429));
    }

    #[tokio::test]
    async fn every_answer_after_the_key_states_the_account_s_limit() {
        let store = MemoryStore::default();
        let (secret, account) = account_with_key(&store, now()).await;
        store.set_rate_limit(&account, Some(RateLimit::new(2).unwrap()));
        let (reader, _) = restricted_key(
            &store,
            &account,
            grant(&[Permission::PaymentsRead], &[]),
            now(),
        )
        .await;
        let edge = edge(store, Clock::from_fn(now));
        let ran = Cell::new(0);
        let limit = Some("\"account\";q=2;w=1".to_owned());
        let done = send(&edge, post(secret.expose_once()).request(), &ran).await;
        let refused = send(&edge, post(reader.expose_once()).request(), &ran).await;
        let limited = send(&edge, post(secret.expose_once()).request(), &ran).await;
        assert_eq!(
            [
                (done.status, &done.policy),
                (refused.status, &refused.policy),
                (limited.status, &limited.policy)
            ],
            [(200, &limit), (403, &limit), (429, &limit)]
        );
        // Before the key authenticates there is no account to state a limit for.
        let unknown = send(&edge, post("sk_test_unknown").request(), &ran).await;
        let method = send(&edge, Event::new("GET", "/things").request(), &ran).await;
        assert_eq!((unknown.status, unknown.policy), (401, None));
        assert_eq!((method.status, method.policy), (405, None));
    }

    #[tokio::test]
    async fn a_key_used_from_outside_its_ranges_gets_the_401_of_an_unknown_key() {
        let store = MemoryStore::default();
        let (_, account) = account_with_key(&store, now()).await;
        store.set_rate_limit(&account, Some(RateLimit::new(1).unwrap()));
        let (limited, _) = restricted_key(
            &store,
            &account,
            grant(
                &[Permission::PaymentsWrite],
                &["198.51.100.0/24", "2001:db8::/32"],
            ),
            now(),
        )
        .await;
        let unknown = crate::domain::ApiKey::generate(
            crate::domain::KeyKind::Restricted,
            KeyEnvironment::Test,
        )
        .unwrap();
        let edge = edge(store, Clock::from_fn(now));
        let ran = Cell::new(0);
        metrics::capture();
        let refused = send(
            &edge,
            post(limited.expose_once())
                .source_ip("203.0.113.9")
                .request(),
            &ran,
        )
        .await;
        let stranger = send(&edge, post(unknown.expose_once()).request(), &ran).await;
        assert_eq!(refused.status, 401);
        assert_eq!(refused.text, stranger.text);
        let reasons: Vec<String> = metrics::captured()
            .iter()
            .map(|line| serde_json::from_str::<Value>(line).unwrap()["Reason"].to_string())
            .collect();
        assert_eq!(reasons, ["\"ip_not_allowed\"", "\"unknown_key\""]);
        // Refusals never count: the account's one request a second is still there, from
        // inside the ranges, IPv4-mapped IPv6 included; the next is over the limit.
        for (source, status) in [("::ffff:198.51.100.7", 200), ("198.51.100.7", 429)] {
            let answer = send(
                &edge,
                post(limited.expose_once()).source_ip(source).request(),
                &ran,
            )
            .await;
            assert_eq!(answer.status, status, "{source}");
        }
        assert_eq!(ran.get(), 1);
    }

    #[tokio::test]
    async fn a_key_open_to_every_address_works_from_any() {
        let store = MemoryStore::default();
        let (_, account) = account_with_key(&store, now()).await;
        let (open, _) = restricted_key(
            &store,
            &account,
            grant(&[Permission::PaymentsWrite], &["0.0.0.0/0", "::/0"]),
            now(),
        )
        .await;
        let edge = edge(store, Clock::from_fn(now));
        let ran = Cell::new(0);
        for source in ["127.0.0.1", "::1", "203.0.113.9", "2001:db8::1"] {
            let answer = send(
                &edge,
                post(open.expose_once()).source_ip(source).request(),
                &ran,
            )
            .await;
            assert_eq!(answer.status, 200, "{source}");
        }
    }
}
