//! `POST /keys`: a restricted key for the account the `x-api-key` header authenticates,
//! named, with the permissions, IP ranges and end the body gives it; its secret is in this
//! answer and nowhere else. The calling key needs `keys:write` and every permission and
//! address it grants, and a key with an end gives no later one (power only flows down:
//! `shared::store::ActingKey`).
//!
//! Request path budget: the key lookup, the account item (strongly consistent), and one
//! transaction (the account item, the new key's item and reference, the audit event).

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};

use shared::domain::{Actor, ApiKey, IdSource, KeyKind, Permission};
use shared::http::body::CreateKeyRequest;
use shared::http::keys::NewKey;
use shared::http::metrics::Outcome;
use shared::http::pipeline::{Call, Edge, Route};
use shared::http::request::json_body;
use shared::http::response::Reply;
use shared::http::ApiError;
use shared::store::{CreateKey, FindKey, IssuedKey, Origin, PublishDemand, RecordKeyUse};

pub static ROUTE: Route = Route {
    operation: "create_key",
    method: Method::POST,
    permission: Permission::KeysWrite,
};

/// What the handler needs, built once per execution environment.
pub struct State<S> {
    pub edge: Edge<S>,
    pub ids: IdSource,
}

pub async fn handle<S: FindKey + RecordKeyUse + PublishDemand + CreateKey + Clone + 'static>(
    state: &State<S>,
    request: Request,
) -> Response<Body> {
    state
        .edge
        .serve(&ROUTE, request, |call| create_key(state, call))
        .await
}

async fn create_key<S: FindKey + RecordKeyUse + PublishDemand + CreateKey + Clone + 'static>(
    state: &State<S>,
    call: Call<'_, S>,
) -> Result<Reply<NewKey>, ApiError> {
    let grant = json_body::<CreateKeyRequest>(&call.request)?.validate(call.now)?;
    let key = ApiKey::generate(KeyKind::Restricted, call.key_environment)?;
    let issued = IssuedKey::with_grant(&key, state.ids.key_id()?, call.now, grant);
    let actor = Actor::key(&call.client.key_id);
    let origin = Origin {
        actor: &actor,
        request_id: Some(&call.request_id),
    };
    let created = call
        .store
        .create_key(
            &call.client.account_id,
            &issued,
            Some(call.client.acting()),
            call.now,
            origin,
        )
        .await?;
    tracing::info!(key_id = %created.key_id, "key created");
    Ok(Reply::created(NewKey {
        key: created.into(),
        api_key: key.expose_once().to_owned(),
    })
    .with_outcome(Outcome::KeyCreated))
}

#[cfg(test)]
mod tests;
