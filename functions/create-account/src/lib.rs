//! `POST /accounts`: creates an account and hands back its first API key, once.

use lambda_http::{Body, Request, Response};
use serde::Serialize;

use shared::api_key::{ApiKey, KeyEnvironment};
use shared::clock::Clock;
use shared::domain::{Account, AccountId, AccountStatus};
use shared::error::ApiError;
use shared::http::{json_body, require_post, serve, Reply};
use shared::request::CreateAccountRequest;
use shared::store::{CreateAccount, IssuedKey};

/// What the handler needs, built once per execution environment.
pub struct State<S> {
    pub store: S,
    pub key_environment: KeyEnvironment,
    pub clock: Clock,
}

/// The 201 body: the account plus the key in plain text. This is the only place a key's text
/// ever leaves the service; it is not stored and cannot be shown again.
#[derive(Serialize)]
struct CreatedAccount {
    #[serde(flatten)]
    account: Account,
    api_key: String,
}

pub async fn handle<S: CreateAccount>(state: &State<S>, request: Request) -> Response<Body> {
    serve(request, "create_account", |request| {
        create_account(state, request)
    })
    .await
}

async fn create_account<S: CreateAccount>(
    state: &State<S>,
    request: Request,
) -> Result<Reply<CreatedAccount>, ApiError> {
    require_post(&request)?;
    let new = json_body::<CreateAccountRequest>(&request)?.validate()?;
    let key = ApiKey::generate(state.key_environment)
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("OS random source failed: {e}")))?;
    let now = state.clock.now();
    let account = Account {
        id: AccountId::generate()?,
        name: new.name,
        email: new.email,
        status: AccountStatus::Active,
        created_at: now,
    };
    let issued = IssuedKey::new(&key, now)?;
    state.store.create_account(&account, &issued).await?;
    let span = tracing::Span::current();
    span.record("account_id", account.id.as_str());
    span.record("key_prefix", issued.prefix.as_str());
    tracing::info!(key_id = %issued.key_id, "account created");
    Ok(Reply::created(CreatedAccount {
        account,
        api_key: key.expose_once().to_owned(),
    }))
}
