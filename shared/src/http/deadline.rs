//! One deadline per request: a function always answers with its own JSON error before the
//! Lambda timeout, whatever DynamoDB does (hanging on the first call, on the second, slow on
//! both). The deadline comes from the invocation (the Lambda context's deadline), not from
//! per-call budgets that could add up past the timeout; each store call gets only what is
//! left, and a call cut short answers in storage terms: a read as unavailable (nothing was
//! written), a write as outcome unknown (it may have been sent).

use std::time::{Duration, SystemTime};

use lambda_http::{Request, RequestExt};
use tokio::time::Instant;

use crate::domain::KeyId;
use crate::domain::{
    Account, AccountId, AuditEvent, KeyDigest, Payment, PaymentId, RequestFingerprint, Timestamp,
};
use crate::store::{
    ActingKey, AdminError, CreateAccount, CreateKey, FindKey, GetPayment, InsertOutcome,
    InsertPayment, IssuedKey, KeyListing, KeyMint, KeyRecord, KeySummary, ListKeys, ListPayments,
    ListRange, Origin, PaymentPage, RecordKeyUse, RevokeKey, RollKey, Rolled, StoreError,
    StoredPayment,
};

/// Kept back from the invocation's deadline to render the error and hand it to the runtime.
pub const RESPONSE_MARGIN: Duration = Duration::from_millis(250);

/// The budget of a request that carries no Lambda deadline (called outside Lambda): the
/// template's 10 s function timeout less the margin.
pub const DEFAULT_BUDGET: Duration = Duration::from_millis(9_750);

/// Lambda's deadline is milliseconds since the epoch; a smaller value is not an instant (the
/// Runtime API emulator of `cargo lambda watch` sends its timeout, 600000, in that header)
/// and is treated as no deadline. 2001-09-09 in milliseconds.
const EARLIEST_DEADLINE_MS: u64 = 1_000_000_000_000;

/// When the request must stop waiting on storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(Instant);

impl Deadline {
    /// The invocation's deadline less [`RESPONSE_MARGIN`], or [`DEFAULT_BUDGET`] from now.
    pub fn of(request: &Request) -> Self {
        let now = Instant::now();
        let budget = request
            .lambda_context_ref()
            .filter(|context| context.deadline >= EARLIEST_DEADLINE_MS)
            .map(|context| {
                context
                    .deadline()
                    .duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO)
                    .saturating_sub(RESPONSE_MARGIN)
            })
            .unwrap_or(DEFAULT_BUDGET);
        Deadline(now + budget)
    }

    pub fn after(budget: Duration) -> Self {
        Deadline(Instant::now() + budget)
    }

    /// `store`, each of whose calls ends by this deadline.
    pub fn bound<'a, S>(self, store: &'a S) -> Bounded<'a, S> {
        Bounded {
            store,
            deadline: self,
        }
    }
}

/// A store whose every call ends by the request's deadline.
pub struct Bounded<'a, S> {
    store: &'a S,
    deadline: Deadline,
}

impl<S> Bounded<'_, S> {
    /// Runs the store call `call` makes, by the deadline. The call's future goes on the heap
    /// as it is made: a DynamoDB call's future is kilobytes, and kept inline it would make
    /// every future around it (the handler's, which the runtime moves several times a
    /// request) as large.
    async fn run<T, E: From<StoreError>, F: std::future::Future<Output = Result<T, E>>>(
        &self,
        call: impl FnOnce() -> F,
        cut_short: impl FnOnce() -> StoreError,
    ) -> Result<T, E> {
        let started = Instant::now();
        let result = match tokio::time::timeout_at(self.deadline.0, Box::pin(call())).await {
            Ok(result) => result,
            Err(_) => Err(cut_short().into()),
        };
        super::metrics::record_dynamodb_call(started.elapsed());
        result
    }
}

fn read_cut_short() -> StoreError {
    StoreError::Unavailable(anyhow::anyhow!(
        "the request's deadline passed before the read finished"
    ))
}

fn write_cut_short() -> StoreError {
    StoreError::OutcomeUnknown(anyhow::anyhow!(
        "the request's deadline passed while the write was in flight"
    ))
}

impl<S: FindKey> FindKey for Bounded<'_, S> {
    async fn find_key(&self, digest: &KeyDigest) -> Result<Option<KeyRecord>, StoreError> {
        self.run(|| self.store.find_key(digest), read_cut_short)
            .await
    }
}

impl<S: InsertPayment> InsertPayment for Bounded<'_, S> {
    async fn insert_payment(
        &self,
        payment: &Payment,
        request_fingerprint: &RequestFingerprint,
    ) -> Result<InsertOutcome, StoreError> {
        self.run(
            || self.store.insert_payment(payment, request_fingerprint),
            write_cut_short,
        )
        .await
    }
}

impl<S: GetPayment> GetPayment for Bounded<'_, S> {
    async fn get_payment(&self, id: &PaymentId) -> Result<Option<StoredPayment>, StoreError> {
        self.run(|| self.store.get_payment(id), read_cut_short)
            .await
    }
}

impl<S: ListPayments> ListPayments for Bounded<'_, S> {
    async fn list_payments(
        &self,
        account: &AccountId,
        range: &ListRange,
    ) -> Result<PaymentPage, StoreError> {
        self.run(|| self.store.list_payments(account, range), read_cut_short)
            .await
    }
}

impl<S: CreateAccount> CreateAccount for Bounded<'_, S> {
    async fn create_account(
        &self,
        account: &Account,
        key: &IssuedKey,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        self.run(
            || self.store.create_account(account, key, event),
            write_cut_short,
        )
        .await
    }
}

impl<S: RecordKeyUse> RecordKeyUse for Bounded<'_, S> {
    async fn record_key_use(
        &self,
        digest: &KeyDigest,
        at: Timestamp,
        stale_before: Timestamp,
    ) -> Result<(), StoreError> {
        self.run(
            || self.store.record_key_use(digest, at, stale_before),
            write_cut_short,
        )
        .await
    }
}

impl<S: ListKeys> ListKeys for Bounded<'_, S> {
    async fn account_keys(
        &self,
        account: &AccountId,
        now: Timestamp,
    ) -> Result<KeyListing, StoreError> {
        self.run(|| self.store.account_keys(account, now), read_cut_short)
            .await
    }
}

impl<S: CreateKey> CreateKey for Bounded<'_, S> {
    async fn create_key(
        &self,
        account: &AccountId,
        new_key: &IssuedKey,
        acting: Option<ActingKey<'_>>,
        now: Timestamp,
        origin: Origin<'_>,
    ) -> Result<KeySummary, AdminError> {
        self.run(
            || self.store.create_key(account, new_key, acting, now, origin),
            write_cut_short,
        )
        .await
    }
}

impl<S: RollKey> RollKey for Bounded<'_, S> {
    async fn roll_key(
        &self,
        account: &AccountId,
        key_id: &KeyId,
        grace: Duration,
        mint: &KeyMint<'_>,
        acting: Option<ActingKey<'_>>,
        now: Timestamp,
        origin: Origin<'_>,
    ) -> Result<Rolled, AdminError> {
        self.run(
            || {
                self.store
                    .roll_key(account, key_id, grace, mint, acting, now, origin)
            },
            write_cut_short,
        )
        .await
    }
}

impl<S: RevokeKey> RevokeKey for Bounded<'_, S> {
    async fn revoke_own_key(
        &self,
        account: &AccountId,
        key_id: &KeyId,
        acting: ActingKey<'_>,
        now: Timestamp,
        origin: Origin<'_>,
    ) -> Result<KeySummary, AdminError> {
        self.run(
            || {
                self.store
                    .revoke_own_key(account, key_id, acting, now, origin)
            },
            write_cut_short,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{api_gateway_request, with_deadline_in};

    #[tokio::test]
    async fn the_deadline_is_the_invocation_s_less_the_margin() {
        let request = api_gateway_request("POST", "/payments", &[], &[], "");
        let deadline = Deadline::of(&with_deadline_in(request, 3_000));
        let left = deadline.0 - Instant::now();
        assert!(
            left <= Duration::from_millis(2_750) && left > Duration::from_millis(2_600),
            "{left:?}"
        );

        let request = api_gateway_request("POST", "/payments", &[], &[], "");
        let past = Deadline::of(&with_deadline_in(request, -5_000));
        assert!(past.0 <= Instant::now());

        let outside = Deadline::of(&api_gateway_request("POST", "/payments", &[], &[], ""));
        let left = outside.0 - Instant::now();
        assert!(left > Duration::from_millis(9_500) && left <= DEFAULT_BUDGET);

        // A duration where an instant belongs (what `cargo lambda watch` sends): no deadline.
        let mut context = lambda_http::Context::default();
        context.deadline = 600_000;
        let request = api_gateway_request("POST", "/payments", &[], &[], "");
        let local = Deadline::of(&request.with_lambda_context(context));
        assert!(local.0 - Instant::now() > Duration::from_millis(9_500));
    }
}
