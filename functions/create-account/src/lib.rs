//! `POST /accounts`: creates an account and hands back its first API key, once.

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use serde::Serialize;

use shared::domain::{Account, AccountStatus, ApiKey, AuditEvent, IdSource};
use shared::http::body::CreateAccountRequest;
use shared::http::pipeline::{Edge, OpenCall, OpenRoute};
use shared::http::request::{caller, json_body};
use shared::http::response::Reply;
use shared::http::ApiError;
use shared::store::{CreateAccount, IssuedKey, StoreError};

/// How many times a taken account id or key digest is drawn again. Both are random (119 and
/// 256 bits), so a second draw is already beyond any real chance; the bound keeps a broken
/// random source from looping.
const MAX_DRAWS: usize = 3;

pub static ROUTE: OpenRoute = OpenRoute {
    operation: "create_account",
    method: Method::POST,
};

/// What the handler needs, built once per execution environment.
pub struct State<S> {
    pub edge: Edge<S>,
    pub ids: IdSource,
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
    state
        .edge
        .serve_open(&ROUTE, request, |call| create_account(state, call))
        .await
}

async fn create_account<S: CreateAccount>(
    state: &State<S>,
    call: OpenCall<'_, S>,
) -> Result<Reply<CreatedAccount>, ApiError> {
    let OpenCall {
        request,
        store,
        now,
        key_environment,
    } = call;
    let new = json_body::<CreateAccountRequest>(&request)?.validate()?;
    let actor = caller(&request);
    let mut draw = 0;
    loop {
        draw += 1;
        let key = ApiKey::generate(shared::domain::KeyKind::Secret, key_environment)?;
        let account = Account {
            id: state.ids.account_id()?,
            name: new.name.clone(),
            email: new.email.clone(),
            status: AccountStatus::Active,
            created_at: now,
        };
        let issued = IssuedKey::new(&key, state.ids.key_id()?, now);
        let event = AuditEvent::account_created(
            state.ids.event_id()?,
            actor.clone(),
            &account.id,
            account.status,
            &issued.key_id,
            now,
        );
        match store.create_account(&account, &issued, &event).await {
            Ok(()) => {
                let span = tracing::Span::current();
                span.record("account_id", account.id.as_str());
                span.record("key_prefix", issued.prefix.as_str());
                tracing::info!(
                    key_id = %issued.key_id,
                    actor = event.actor.as_str(),
                    event_id = %event.event_id,
                    "account created"
                );
                return Ok(Reply::created(CreatedAccount {
                    account,
                    api_key: key.expose_once().to_owned(),
                }));
            }
            // Nothing was written: draw new ids and a new key.
            Err(StoreError::ConditionFailed { .. }) if draw < MAX_DRAWS => {
                tracing::warn!(account_id = %account.id, draw, "account id or key taken; drawing again");
            }
            Err(err) => return Err(err.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use shared::domain::{AccountId, AuditAction, Clock, KeyEnvironment, Timestamp};
    use shared::testing::{api_gateway_request, MemoryStore, Operation};

    /// The handler's state, and the store its edge holds.
    fn state(ids: IdSource) -> (State<MemoryStore>, MemoryStore) {
        let now = Timestamp::parse("2026-12-01T10:00:00Z").unwrap();
        let store = MemoryStore::default();
        let state = State {
            edge: shared::testing::edge(store.clone(), Clock::from_fn(move || now)),
            ids,
        };
        (state, store)
    }

    async fn post(state: &State<MemoryStore>, body: &str) -> (u16, Value) {
        let request = api_gateway_request(
            "POST",
            "/accounts",
            &[],
            &[("Content-Type", "application/json")],
            body,
        );
        let response = handle(state, request).await;
        let body = serde_json::from_slice(response.body()).unwrap();
        (response.status().as_u16(), body)
    }

    #[tokio::test]
    async fn creates_an_account_with_a_working_key() {
        let (state, store) = state(IdSource::random());
        let (status, body) = post(&state, r#"{"name": "Ada", "email": "ada@example.com"}"#).await;
        assert_eq!(status, 201, "{body}");
        let id = AccountId::parse(body["id"].as_str().unwrap()).unwrap();
        let stored = store.account(&id).expect("stored");
        assert_eq!(stored.name.as_str(), "Ada");
        assert_eq!(body["created_at"], "2026-12-01T10:00:00.000Z");
        let key = ApiKey::parse(body["api_key"].as_str().unwrap(), KeyEnvironment::Test).unwrap();
        assert_eq!(key.display_prefix().environment(), KeyEnvironment::Test);
    }

    #[tokio::test]
    async fn creation_is_audited_with_its_caller() {
        let (state, store) = state(IdSource::random());
        let (status, body) = post(&state, r#"{"name": "Ada"}"#).await;
        assert_eq!(status, 201);
        let arn = "arn:aws:iam::123456789012:role/onboarding";
        let request = shared::testing::api_gateway_iam_request(
            "/accounts",
            arn,
            &[("Content-Type", "application/json")],
            r#"{"name": "Bob"}"#,
        );
        let signed = handle(&state, request).await;
        assert_eq!(signed.status(), 201);
        let events = store.audit_events();
        let actors: Vec<&str> = events.iter().map(|e| e.actor.as_str()).collect();
        assert_eq!(actors, ["anonymous", arn]);
        let first = &events[0];
        assert_eq!(first.action, AuditAction::AccountCreated);
        assert_eq!(first.account_id.as_str(), body["id"].as_str().unwrap());
        assert_eq!(first.after.account_status, Some(AccountStatus::Active));
        assert_eq!(first.key_ids.len(), 1);
        let logged = serde_json::to_string(&events).unwrap();
        assert!(!logged.contains(body["api_key"].as_str().unwrap()));
        assert!(!logged.contains("AKIA"), "never the caller's access key");
    }

    #[tokio::test]
    async fn a_taken_account_id_is_drawn_again() {
        let taken = "acct_TAKENTAKENTAKENTAKEN".to_owned();
        let (state, store) = state(IdSource::queued([taken.clone(), taken.clone()]));
        let (status, first) = post(&state, r#"{"name": "First"}"#).await;
        assert_eq!((status, first["id"].as_str()), (201, Some(taken.as_str())));
        // The second account is handed the same id first; the write refuses it, and a
        // fresh id is drawn.
        let (status, second) = post(&state, r#"{"name": "Second"}"#).await;
        assert_eq!(status, 201, "{second}");
        assert_ne!(second["id"], first["id"]);
        let first_id = AccountId::parse(&taken).unwrap();
        assert_eq!(store.account(&first_id).unwrap().name.as_str(), "First");
    }

    #[tokio::test]
    async fn storage_failures_say_whether_to_retry() {
        let (state, store) = state(IdSource::random());
        store.fail_next(
            Operation::CreateAccount,
            StoreError::Unavailable(anyhow::anyhow!("refused")),
        );
        let (status, body) = post(&state, r#"{"name": "A"}"#).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (503, Some("service_unavailable"))
        );
        store.fail_next(
            Operation::CreateAccount,
            StoreError::corrupt(shared::store::Entity::Account, "acct_x", "status"),
        );
        let (status, body) = post(&state, r#"{"name": "A"}"#).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (500, Some("internal_error"))
        );
        assert!(!body.to_string().contains("acct_x"));
    }

    #[tokio::test]
    async fn invalid_requests_write_nothing() {
        let (state, store) = state(IdSource::queued(["acct_AAAAAAAAAAAAAAAAAAAA".to_owned()]));
        for (body, param) in [
            (r#"{}"#, "name"),
            (r#"{"name": ""}"#, "name"),
            (r#"{"name": "A", "email": "nope"}"#, "email"),
            (r#"{"name": "A", "status": "inactive"}"#, "status"),
        ] {
            let (status, response) = post(&state, body).await;
            assert_eq!(status, 400, "{body}");
            assert_eq!(response["error"]["param"], param, "{body}");
        }
        let id = AccountId::parse("acct_AAAAAAAAAAAAAAAAAAAA").unwrap();
        assert!(store.account(&id).is_none());
    }
}
