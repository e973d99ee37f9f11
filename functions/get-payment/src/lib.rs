//! `GET /payments/{id}`: one payment of the account that the `x-api-key` header
//! authenticates, exactly as its `201` showed it.
//!
//! Request path budget: two strongly consistent reads (the key lookup, then the payment), so
//! a payment can be read on the request right after the one that created it.
//! Off the path: at most once an hour per key, a background write of the key's last use; at
//! most once a second per account, and only after a tenth of its rate limit's requests, a
//! background addition to its shared request count.
//!
//! A payment that does not exist, another account's payment and an id that is not a payment
//! id all get the same 404, byte for byte apart from `request_id`: no caller learns whether
//! another account's payment exists. A malformed id never reaches DynamoDB.

use lambda_http::{Body, Request, Response};

use shared::domain::{Clock, KeyEnvironment, Payment, PaymentId};
use shared::http::auth::authenticate;
use shared::http::deadline::Deadline;
use shared::http::limit::RateLimiter;
use shared::http::request::{path_parameter, require_get};
use shared::http::response::{serve, Reply};
use shared::http::ApiError;
use shared::store::{CountRequests, FindKey, GetPayment, RecordKeyUse};

/// What the handler needs, built once per execution environment.
pub struct State<S> {
    pub store: S,
    pub key_environment: KeyEnvironment,
    /// This execution environment's counts of each account's requests.
    pub limiter: RateLimiter,
    pub clock: Clock,
}

pub async fn handle<S: FindKey + GetPayment + RecordKeyUse + CountRequests + Clone + 'static>(
    state: &State<S>,
    request: Request,
) -> Response<Body> {
    serve(request, "get_payment", |request| {
        get_payment(state, request)
    })
    .await
}

async fn get_payment<S: FindKey + GetPayment + RecordKeyUse + CountRequests + Clone + 'static>(
    state: &State<S>,
    request: Request,
) -> Result<Reply<Payment>, ApiError> {
    require_get(&request)?;
    // Every storage call ends by the invocation's deadline (see `shared::http::deadline`).
    let store = Deadline::of(&request).bound(&state.store);
    let now = state.clock.now();
    let client = authenticate(request.headers(), &store, state.key_environment, now).await?;
    // Over the account's rate limit: refused before anything else is read or written (see
    // `RateLimiter`).
    state.limiter.admit(&client, &state.store, now)?;
    // Recorded in the background, once an hour per key at most (see `KeyUse`).
    client.key_use.record_in_background(&state.store);
    let not_found = ApiError::PaymentNotFound { param: "id" };
    let Some(id) = path_parameter(&request, "id").and_then(PaymentId::parse) else {
        tracing::info!("payment id malformed");
        return Err(not_found);
    };
    match store.get_payment(&id).await? {
        Some(stored) if stored.payment.client_id == client.account_id => {
            Ok(Reply::ok(stored.payment))
        }
        // Logged apart (the log is the operator's), answered alike (the body is the caller's).
        Some(_) => {
            tracing::info!(payment_id = %id, "payment belongs to another account");
            Err(not_found)
        }
        None => {
            tracing::info!(payment_id = %id, "payment not found");
            Err(not_found)
        }
    }
}

#[cfg(test)]
mod tests;
