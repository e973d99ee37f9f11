//! `GET /keys/{id}`: one key of the account that the `x-api-key` header authenticates. A
//! key that does not exist, another account's key and an id that is not a key id all get the
//! same 404, byte for byte apart from `request_id`, as for payments. Needs `keys:read`.
//!
//! Request path budget: the key lookup, the account item and one `BatchGetItem` of its keys'
//! items for their last use.

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};

use shared::domain::Permission;
use shared::http::keys::{key_id_of, KeyObject};
use shared::http::pipeline::{Call, Edge, Route};
use shared::http::response::Reply;
use shared::http::ApiError;
use shared::store::{FindKey, ListKeys, PublishDemand, RecordKeyUse};

pub static ROUTE: Route = Route {
    operation: "get_key",
    method: Method::GET,
    permission: Permission::KeysRead,
};

pub async fn handle<S: FindKey + RecordKeyUse + PublishDemand + ListKeys + Clone + 'static>(
    edge: &Edge<S>,
    request: Request,
) -> Response<Body> {
    edge.serve(&ROUTE, request, get_key).await
}

async fn get_key<S: FindKey + RecordKeyUse + PublishDemand + ListKeys + Clone + 'static>(
    call: Call<'_, S>,
) -> Result<Reply<KeyObject>, ApiError> {
    let id = key_id_of(&call.request)?;
    // Only the caller's own account is read: another account's key is not in it.
    let listing = call
        .store
        .account_keys(&call.client.account_id, call.now)
        .await?;
    match listing.keys.into_iter().find(|key| key.key_id == id) {
        Some(key) => Ok(Reply::ok(key.into())),
        None => {
            tracing::info!(key_id = %id, "key not found on this account");
            Err(ApiError::KeyNotFound)
        }
    }
}

#[cfg(test)]
mod tests;
