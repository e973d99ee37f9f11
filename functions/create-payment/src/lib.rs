//! `POST /payments` (also `POST /payments/create`): records a payment for the account that
//! the `x-api-key` header authenticates, exactly once per `Idempotency-Key`.
//!
//! Request path budget: one strongly consistent read (the key lookup) and one conditional
//! write (the payment), replays included.

use lambda_http::{Body, Request, Response};

use shared::api_key::KeyEnvironment;
use shared::auth::authenticate;
use shared::clock::Clock;
use shared::domain::{Payment, PaymentId, PaymentStatus};
use shared::error::ApiError;
use shared::http::{json_body, require_post, serve, Reply};
use shared::idempotency::{fingerprint, payment_id_for, IdempotencyKey, REPLAYED_HEADER};
use shared::request::CreatePaymentRequest;
use shared::store::{FindKey, InsertOutcome, InsertPayment};

/// What the handler needs, built once per execution environment.
pub struct State<S> {
    pub store: S,
    pub key_environment: KeyEnvironment,
    pub clock: Clock,
}

pub async fn handle<S: FindKey + InsertPayment>(
    state: &State<S>,
    request: Request,
) -> Response<Body> {
    serve(request, "create_payment", |request| {
        create_payment(state, request)
    })
    .await
}

async fn create_payment<S: FindKey + InsertPayment>(
    state: &State<S>,
    request: Request,
) -> Result<Reply<Payment>, ApiError> {
    require_post(&request)?;
    // Authenticate before anything else: an unauthenticated caller learns nothing about
    // valid requests, and never sees a stored response for an idempotency key.
    let now = state.clock.now();
    let client = authenticate(request.headers(), &state.store, state.key_environment, now).await?;
    let idempotency_key = IdempotencyKey::from_headers(request.headers())?;
    let new = json_body::<CreatePaymentRequest>(&request)?.validate()?;
    let request_fingerprint = fingerprint(&new);
    let id = match &idempotency_key {
        Some(key) => payment_id_for(&client.account_id, key),
        None => PaymentId::generate()?,
    };
    let payment = Payment {
        id,
        client_id: client.account_id,
        amount: new.amount,
        currency: new.currency,
        description: new.description,
        status: PaymentStatus::Pending,
        created_at: now,
        idempotency_key: idempotency_key.as_ref().map(|k| k.as_str().to_owned()),
    };
    match state
        .store
        .insert_payment(&payment, &request_fingerprint)
        .await?
    {
        InsertOutcome::Created => {
            tracing::info!(
                payment_id = %payment.id,
                amount = payment.amount.minor_units(),
                currency = %payment.currency,
                idempotent = idempotency_key.is_some(),
                "payment created"
            );
            Ok(Reply::created(payment))
        }
        // The same account sent the same request before (or an earlier attempt of this one
        // succeeded before its response was lost): answer as the first time.
        InsertOutcome::Exists(stored)
            if stored.payment.client_id == payment.client_id
                && stored.request_fingerprint == request_fingerprint =>
        {
            tracing::info!(payment_id = %stored.payment.id, "payment replayed");
            Ok(Reply::created(stored.payment).with_header(REPLAYED_HEADER, "true"))
        }
        InsertOutcome::Exists(stored) if idempotency_key.is_some() => {
            tracing::info!(payment_id = %stored.payment.id, "idempotency key reused for another request");
            Err(ApiError::IdempotencyKeyReused)
        }
        InsertOutcome::Exists(stored) => Err(ApiError::Unexpected(anyhow::anyhow!(
            "random payment id {} collided with an existing payment",
            stored.payment.id
        ))),
    }
}
