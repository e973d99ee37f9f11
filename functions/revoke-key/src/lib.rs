//! `DELETE /keys/{id}`: revokes the key `{id}` of the account that the `x-api-key` header
//! authenticates; it stops working on the very next request. Revoking a revoked key answers
//! it again. Refused with 409 `would_lock_out` for the account's last active key holding
//! `keys:write`. Needs `keys:write` and every permission and address of the revoked key.
//!
//! Request path budget: the key lookup, the account item, and one transaction (the account
//! item, the key's item, the audit event).

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};

use shared::domain::{Actor, Permission};
use shared::http::keys::{key_id_of, KeyObject};
use shared::http::metrics::Outcome;
use shared::http::pipeline::{Call, Edge, Route};
use shared::http::response::Reply;
use shared::http::ApiError;
use shared::store::{FindKey, Origin, PublishDemand, RecordKeyUse, RevokeKey};

pub static ROUTE: Route = Route {
    operation: "revoke_key",
    method: Method::DELETE,
    permission: Permission::KeysWrite,
};

pub async fn handle<S: FindKey + RecordKeyUse + PublishDemand + RevokeKey + Clone + 'static>(
    edge: &Edge<S>,
    request: Request,
) -> Response<Body> {
    edge.serve(&ROUTE, request, revoke_key).await
}

async fn revoke_key<S: FindKey + RecordKeyUse + PublishDemand + RevokeKey + Clone + 'static>(
    call: Call<'_, S>,
) -> Result<Reply<KeyObject>, ApiError> {
    let id = key_id_of(&call.request)?;
    let actor = Actor::key(&call.client.key_id);
    let origin = Origin {
        actor: &actor,
        request_id: Some(&call.request_id),
    };
    let revoked = call
        .store
        .revoke_own_key(
            &call.client.account_id,
            &id,
            call.client.acting(),
            call.now,
            origin,
        )
        .await
        // Revoking twice is revoking once: a revoke whose answer was lost is simply sent
        // again.
        .map_err(ApiError::of_idempotent_change)?;
    tracing::info!(key_id = %id, "key revoked");
    Ok(Reply::ok(revoked.into()).with_outcome(Outcome::KeyRevocation))
}

#[cfg(test)]
mod tests;
