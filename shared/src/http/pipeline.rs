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
//! 6. the route's own work, handed the authenticated client and the bounded store;
//! 7. the response, its log line and its metrics line ([`serve`]).
//!
//! Off every request's path, two background writes: at most once an hour per key, the
//! key's last use (step 5); at most once a second per account, and only after a tenth of its
//! rate limit's requests, an addition to its shared request count (step 4). The request never
//! waits for either, nor fails by one.
//!
//! [`KeyUse`]: super::auth::KeyUse

use std::future::Future;

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use serde::Serialize;

use super::auth::{authenticate, AuthenticatedClient};
use super::deadline::{Bounded, Deadline};
use super::error::ApiError;
use super::limit::RateLimiter;
use super::metrics::Meter;
use super::request::require_method;
use super::response::{serve, Reply};
use crate::domain::{Clock, KeyEnvironment, RateLimit, Timestamp};
use crate::store::{CountRequests, FindKey, RecordKeyUse};

/// What a route is, to the steps before its own work.
#[derive(Debug)]
pub struct Route {
    /// The route's name in logs and metrics (`create_payment`).
    pub operation: &'static str,
    /// The one method the route takes.
    pub method: Method,
}

/// What every route of one execution environment shares, built once before its first
/// request.
pub struct Edge<S> {
    pub store: S,
    /// Which keys this deployment issues and accepts.
    pub key_environment: KeyEnvironment,
    /// This execution environment's counts of each account's requests.
    pub limiter: RateLimiter,
    pub clock: Clock,
    pub meter: Meter,
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
            limiter: RateLimiter::new(default_rate_limit),
            clock,
            meter,
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
}

/// A request to a route API Gateway authorizes, as the route's own work receives it.
pub struct OpenCall<'a, S> {
    pub request: Request,
    pub store: Bounded<'a, S>,
    pub now: Timestamp,
}

impl<S: FindKey + RecordKeyUse + CountRequests + Clone + 'static> Edge<S> {
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
        serve(
            &self.meter,
            request,
            route.operation,
            |request| async move { work(self.admit(route, request).await?).await },
        )
        .await
    }

    async fn admit(
        &self,
        route: &'static Route,
        request: Request,
    ) -> Result<Call<'_, S>, ApiError> {
        require_method(&request, &route.method)?;
        let store = Deadline::of(&request).bound(&self.store);
        let now = self.clock.now();
        let client = authenticate(request.headers(), &store, self.key_environment, now).await?;
        self.limiter.admit(&client, &self.store, now)?;
        client.key_use.record_in_background(&self.store);
        Ok(Call {
            request,
            client,
            store,
            now,
        })
    }
}

impl<S> Edge<S> {
    /// Serves one request of a route that API Gateway authorizes (IAM, or open on a demo
    /// stack): the method and the deadline, then `work`, then the response and metrics.
    pub async fn serve_open<'s, T, F, Fut>(
        &'s self,
        route: &'static Route,
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
                })
                .await
            },
        )
        .await
    }
}
