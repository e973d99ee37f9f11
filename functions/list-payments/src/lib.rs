//! `GET /payments`: the payments of the account that the `x-api-key` header authenticates,
//! newest first, a page at a time (`limit`, `starting_after` / `ending_before`,
//! `created[gte]` / `created[lte]`), as `{"data": [...], "has_more": bool}`.
//!
//! Request path budget: the key lookup, one strongly consistent read of the cursor's payment
//! when there is a cursor, and one `Query` of the account's index partition. The index is
//! eventually consistent: a payment shows up in lists shortly after its `201` (typically
//! within a second), while `GET /payments/{id}` finds it at once.
//! Off the path: the pipeline's background writes (`shared::http::pipeline`).
//!
//! Only the account's own payments, ever: the account is the index's partition key. A
//! cursor naming another account's payment gets the same 404 as an unknown one, so cursors
//! cannot probe other accounts.

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use serde::Serialize;

use shared::domain::Payment;
use shared::domain::Permission;
use shared::http::pipeline::{Call, Edge, Route};
use shared::http::query::{Cursor, ListQuery};
use shared::http::response::Reply;
use shared::http::ApiError;
use shared::store::{
    FindKey, GetPayment, ListCursor, ListPayments, ListPosition, ListRange, PublishDemand,
    RecordKeyUse,
};

pub static ROUTE: Route = Route {
    operation: "list_payments",
    method: Method::GET,
    permission: Permission::PaymentsRead,
};

/// The response body.
#[derive(Debug, Serialize)]
pub struct PaymentList {
    pub data: Vec<Payment>,
    pub has_more: bool,
}

pub async fn handle<
    S: FindKey + GetPayment + ListPayments + RecordKeyUse + PublishDemand + Clone + 'static,
>(
    edge: &Edge<S>,
    request: Request,
) -> Response<Body> {
    edge.serve(&ROUTE, request, list_payments).await
}

async fn list_payments<
    S: FindKey + GetPayment + ListPayments + RecordKeyUse + PublishDemand + Clone + 'static,
>(
    call: Call<'_, S>,
) -> Result<Reply<PaymentList>, ApiError> {
    let Call {
        request,
        client,
        store,
        ..
    } = call;
    let query = ListQuery::from_request(&request)?;
    let cursor = match &query.cursor {
        None => None,
        Some(cursor) => {
            // The cursor's own position comes from its item, read strongly consistently, so
            // a payment just created can be a cursor at once.
            let not_found = ApiError::PaymentNotFound {
                param: cursor.param(),
            };
            let position = match store.get_payment(cursor.id()).await? {
                Some(stored) if stored.payment.client_id == client.account_id => {
                    ListPosition::of(&stored.payment)
                }
                Some(_) => {
                    tracing::info!(payment_id = %cursor.id(), "cursor is another account's payment");
                    return Err(not_found);
                }
                None => {
                    tracing::info!(payment_id = %cursor.id(), "cursor payment not found");
                    return Err(not_found);
                }
            };
            Some(match cursor {
                Cursor::StartingAfter(_) => ListCursor::After(position),
                Cursor::EndingBefore(_) => ListCursor::Before(position),
            })
        }
    };
    let range = ListRange {
        limit: query.limit,
        created_gte: query.created_gte,
        created_lte: query.created_lte,
        cursor,
    };
    let page = store.list_payments(&client.account_id, &range).await?;
    tracing::info!(
        count = page.payments.len(),
        has_more = page.has_more,
        "payments listed"
    );
    Ok(Reply::ok(PaymentList {
        data: page.payments,
        has_more: page.has_more,
    }))
}

#[cfg(test)]
mod tests;
