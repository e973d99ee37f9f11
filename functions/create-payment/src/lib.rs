//! `POST /payments` (also `POST /payments/create`): records a payment for the account that
//! the `x-api-key` header authenticates.
//!
//! Request path budget: one strongly consistent read (the key lookup) and one conditional
//! write (the payment).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use shared::api_key::KeyEnvironment;
use shared::auth::authenticate;
use shared::domain::{Payment, PaymentId, PaymentStatus, Timestamp};
use shared::error::ApiError;
use shared::http::{json_body, require_post, serve};
use shared::request::CreatePaymentRequest;
use shared::store::{FindKey, InsertPayment};

/// What the handler needs, built once per execution environment.
pub struct State<S> {
    pub store: S,
    pub key_environment: KeyEnvironment,
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
) -> Result<(StatusCode, Payment), ApiError> {
    require_post(&request)?;
    // Authenticate before reading the body: an unauthenticated caller learns nothing about
    // what a valid request looks like.
    let client = authenticate(request.headers(), &state.store, state.key_environment).await?;
    let new = json_body::<CreatePaymentRequest>(&request)?.validate()?;
    let payment = Payment {
        id: PaymentId::generate()?,
        client_id: client.account_id,
        amount: new.amount,
        currency: new.currency,
        description: new.description,
        status: PaymentStatus::Pending,
        created_at: Timestamp::now(),
    };
    state.store.insert_payment(&payment).await?;
    tracing::info!(
        payment_id = %payment.id,
        amount = payment.amount.minor_units(),
        currency = %payment.currency,
        "payment created"
    );
    Ok((StatusCode::CREATED, payment))
}
