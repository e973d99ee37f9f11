//! `POST /keys/{id}/roll`: a new key in place of the active key `{id}`, of its kind, name,
//! permissions, IP ranges and end, with its secret in this answer only; the rolled key stops
//! `expires_in` seconds later (0 to 604800; no body: at once). A key rolling itself keeps at
//! least 60 seconds, so a client that loses the answer can still list its keys and revoke the
//! new one, which undoes the roll. Needs `keys:write` and every permission and address of the
//! rolled key.
//!
//! Request path budget: the key lookup, the account item, and one transaction (the account
//! item, the new key's item and reference, the rolled key's item, the audit event).

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};

use shared::domain::{Actor, IdSource, Permission};
use shared::http::body::RollKeyRequest;
use shared::http::keys::{key_id_of, NewKey};
use shared::http::metrics::Outcome;
use shared::http::pipeline::{Call, Edge, Route};
use shared::http::request::optional_json_body;
use shared::http::response::Reply;
use shared::http::ApiError;
use shared::store::{FindKey, KeyMint, Origin, PublishDemand, RecordKeyUse, RollKey};

pub static ROUTE: Route = Route {
    operation: "roll_key",
    method: Method::POST,
    permission: Permission::KeysWrite,
};

/// What the handler needs, built once per execution environment.
pub struct State<S> {
    pub edge: Edge<S>,
    pub ids: IdSource,
}

pub async fn handle<S: FindKey + RecordKeyUse + PublishDemand + RollKey + Clone + 'static>(
    state: &State<S>,
    request: Request,
) -> Response<Body> {
    state
        .edge
        .serve(&ROUTE, request, |call| roll_key(state, call))
        .await
}

async fn roll_key<S: FindKey + RecordKeyUse + PublishDemand + RollKey + Clone + 'static>(
    state: &State<S>,
    call: Call<'_, S>,
) -> Result<Reply<NewKey>, ApiError> {
    let id = key_id_of(&call.request)?;
    let grace = optional_json_body::<RollKeyRequest>(&call.request)?.validate()?;
    let actor = Actor::key(&call.client.key_id);
    let origin = Origin {
        actor: &actor,
        request_id: Some(&call.request_id),
    };
    let rolled = call
        .store
        .roll_key(
            &call.client.account_id,
            &id,
            grace,
            &KeyMint { ids: &state.ids },
            Some(call.client.acting()),
            call.now,
            origin,
        )
        .await?;
    tracing::info!(
        key_id = %id,
        new_key_id = %rolled.new_key.key_id,
        expires_in_s = grace.as_secs(),
        "key rolled"
    );
    Ok(Reply::created(NewKey {
        api_key: rolled.api_key.expose_once().to_owned(),
        key: rolled.new_key.into(),
    })
    .with_outcome(Outcome::KeyRolled))
}

#[cfg(test)]
mod tests;
