//! `GET /payments/{id}`: one payment of the account that the `x-api-key` header
//! authenticates, exactly as its `201` showed it.
//!
//! Request path budget: two strongly consistent reads (the key lookup, then the payment), so
//! a payment can be read on the request right after the one that created it.
//! Off the path: the pipeline's background writes (`shared::http::pipeline`).
//!
//! A payment that does not exist, another account's payment and an id that is not a payment
//! id all get the same 404, byte for byte apart from `request_id`: no caller learns whether
//! another account's payment exists. A malformed id never reaches DynamoDB.

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};

use shared::domain::Permission;
use shared::domain::{Payment, PaymentId};
use shared::http::pipeline::{Call, Edge, Route};
use shared::http::request::path_parameter;
use shared::http::response::Reply;
use shared::http::ApiError;
use shared::store::{FindKey, GetPayment, PublishDemand, RecordKeyUse};

pub static ROUTE: Route = Route {
    operation: "get_payment",
    method: Method::GET,
    permission: Permission::PaymentsRead,
};

pub async fn handle<S: FindKey + GetPayment + RecordKeyUse + PublishDemand + Clone + 'static>(
    edge: &Edge<S>,
    request: Request,
) -> Response<Body> {
    edge.serve(&ROUTE, request, get_payment).await
}

async fn get_payment<S: FindKey + GetPayment + RecordKeyUse + PublishDemand + Clone + 'static>(
    call: Call<'_, S>,
) -> Result<Reply<Payment>, ApiError> {
    let Call {
        request,
        client,
        store,
        ..
    } = call;
    let not_found = ApiError::PaymentNotFound { param: "id" };
    let Some(id) = path_parameter(&request, "id").and_then(PaymentId::parse) else {
        tracing::info!("payment id malformed");
        return Err(not_found);
    };
    match store.get_payment(&id).await? {
        Some(stored) if stored.payment.client_id == client.account_id => {
            Ok(Reply::ok(stored.payment))
        }
        // Logged apart (the log is the operator's), answered alike (the body is the caller's).
        Some(_) => {
            tracing::info!(payment_id = %id, "payment belongs to another account");
            Err(not_found)
        }
        None => {
            tracing::info!(payment_id = %id, "payment not found");
            Err(not_found)
        }
    }
}

#[cfg(test)]
mod tests;
