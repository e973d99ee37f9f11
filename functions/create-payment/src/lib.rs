//! `POST /payments` (also `POST /payments/create`): records a payment for the account that
//! the `x-api-key` header authenticates, exactly once per `Idempotency-Key`.
//!
//! Request path budget: one strongly consistent read (the key lookup) and one conditional
//! write (the payment), replays included.
//! Off the path: the pipeline's background writes (`shared::http::pipeline`).

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};

use shared::domain::Permission;
use shared::domain::{
    fingerprint, payment_id_for, IdSource, IdempotencyKey, Payment, PaymentStatus,
};
use shared::http::body::CreatePaymentRequest;
use shared::http::pipeline::{Call, Edge, Route};
use shared::http::request::{idempotency_key, json_body};
use shared::http::response::{Reply, REPLAYED_HEADER};
use shared::http::ApiError;
use shared::store::{
    FindKey, InsertOutcome, InsertPayment, PublishDemand, RecordKeyUse, StoreError,
};

/// How many drawn payment ids are tried when one is taken. 119 random bits make even a
/// second draw beyond any real chance; the bound keeps a broken random source from looping.
const MAX_DRAWS: usize = 3;

pub static ROUTE: Route = Route {
    operation: "create_payment",
    method: Method::POST,
    permission: Permission::PaymentsWrite,
};

/// What the handler needs, built once per execution environment.
pub struct State<S> {
    pub edge: Edge<S>,
    pub ids: IdSource,
}

pub async fn handle<S: FindKey + InsertPayment + RecordKeyUse + PublishDemand + Clone + 'static>(
    state: &State<S>,
    request: Request,
) -> Response<Body> {
    state
        .edge
        .serve(&ROUTE, request, |call| create_payment(state, call))
        .await
}

async fn create_payment<
    S: FindKey + InsertPayment + RecordKeyUse + PublishDemand + Clone + 'static,
>(
    state: &State<S>,
    call: Call<'_, S>,
) -> Result<Reply<Payment>, ApiError> {
    let Call {
        request,
        client,
        store,
        now,
        ..
    } = call;
    let idempotency_key = idempotency_key(request.headers())?;
    let new = json_body::<CreatePaymentRequest>(&request)?.validate()?;
    let request_fingerprint = fingerprint(&new);
    // Without a key of the client's, the payment's id comes from one the service draws: if
    // the write's outcome is unknown, the 503 names that key, and the same request sent
    // again with it can only find or make this one payment, however late the first write
    // lands.
    let mut drawn = match idempotency_key {
        Some(_) => None,
        None => Some(IdempotencyKey::drawn(&state.ids)?),
    };
    let mut payment = Payment {
        id: payment_id_for(
            &client.account_id,
            drawn
                .as_ref()
                .or(idempotency_key.as_ref())
                .expect("a key either way"),
        ),
        client_id: client.account_id,
        amount: new.amount,
        currency: new.currency,
        description: new.description,
        status: PaymentStatus::Pending,
        created_at: now,
        idempotency_key,
    };
    let mut draw = 1;
    loop {
        let outcome = match store.insert_payment(&payment, &request_fingerprint).await {
            Ok(outcome) => outcome,
            // The write was sent and may have been applied: say so, with the payment it
            // targeted, so the client can look it up or retry with its key.
            Err(StoreError::OutcomeUnknown(source)) => {
                return Err(ApiError::PaymentOutcomeUnknown {
                    payment_id: payment.id,
                    retry_key: drawn,
                    source,
                })
            }
            Err(err) => return Err(err.into()),
        };
        let stored = match outcome {
            InsertOutcome::Created => {
                tracing::info!(
                    payment_id = %payment.id,
                    amount = payment.amount.minor_units(),
                    currency = %payment.currency,
                    idempotent = payment.idempotency_key.is_some(),
                    "payment created"
                );
                return Ok(Reply::created(payment));
            }
            InsertOutcome::Exists(stored) => stored,
        };
        if payment.idempotency_key.is_some() {
            // The id belongs to this account and key: the same request is a replay, another
            // one a misuse of the key.
            if stored.request_fingerprint == request_fingerprint
                && stored.payment.client_id == payment.client_id
            {
                tracing::info!(payment_id = %stored.payment.id, "payment replayed");
                return Ok(Reply::created(stored.payment).with_header(REPLAYED_HEADER, "true"));
            }
            tracing::info!(payment_id = %stored.payment.id, "idempotency key reused for another request");
            return Err(ApiError::IdempotencyKeyReused);
        }
        if stored.payment == payment && stored.request_fingerprint == request_fingerprint {
            // This request's own write, found by a retry of the call whose response was lost:
            // to the client, this is the first answer.
            tracing::info!(payment_id = %payment.id, "payment created (found on retry)");
            return Ok(Reply::created(payment));
        }
        if draw == MAX_DRAWS {
            return Err(ApiError::Unexpected(anyhow::anyhow!(
                "{MAX_DRAWS} drawn payment ids in a row were taken (last {})",
                payment.id
            )));
        }
        // A drawn id that another payment already has: nothing was written; draw again.
        tracing::warn!(payment_id = %payment.id, draw, "drawn payment id taken; drawing again");
        draw += 1;
        let key = IdempotencyKey::drawn(&state.ids)?;
        payment.id = payment_id_for(&payment.client_id, &key);
        drawn = Some(key);
    }
}

#[cfg(test)]
mod tests;
