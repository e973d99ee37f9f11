//! `GET /keys`: every key the account that the `x-api-key` header authenticates keeps (its
//! last 20 entries, revoked and expired ones included), newest first, as
//! `{"data": [...], "has_more": false}`. Never a secret, never a digest. Needs `keys:read`.
//!
//! Request path budget: the key lookup, the account item and one `BatchGetItem` of its keys'
//! items for their last use (all strongly consistent).

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};

use shared::domain::Permission;
use shared::http::keys::KeyList;
use shared::http::pipeline::{Call, Edge, Route};
use shared::http::request::no_query_parameters;
use shared::http::response::Reply;
use shared::http::ApiError;
use shared::store::{FindKey, ListKeys, PublishDemand, RecordKeyUse};

pub static ROUTE: Route = Route {
    operation: "list_keys",
    method: Method::GET,
    permission: Permission::KeysRead,
};

pub async fn handle<S: FindKey + RecordKeyUse + PublishDemand + ListKeys + Clone + 'static>(
    edge: &Edge<S>,
    request: Request,
) -> Response<Body> {
    edge.serve(&ROUTE, request, list_keys).await
}

async fn list_keys<S: FindKey + RecordKeyUse + PublishDemand + ListKeys + Clone + 'static>(
    call: Call<'_, S>,
) -> Result<Reply<KeyList>, ApiError> {
    no_query_parameters(&call.request)?;
    let listing = call
        .store
        .account_keys(&call.client.account_id, call.now)
        .await?;
    tracing::info!(count = listing.keys.len(), "keys listed");
    Ok(Reply::ok(listing.into()))
}

#[cfg(test)]
mod tests;
