//! Storage: one small trait per operation, so each function depends on exactly the calls it
//! makes (which is also what its IAM policy grants). Every call answers in storage terms
//! ([`StoreError`]); what a caller is told is decided by the layer above.
//!
//! [`dynamo::DynamoStore`] is the real implementation (feature `aws`);
//! [`memory::MemoryStore`] an in-memory stand-in for unit tests (feature `test-support`).

use std::future::Future;

use crate::domain::{
    Account, AccountId, AccountStatus, ApiKey, AuditEvent, Claim, IpAllowList, KeyDigest, KeyGrant,
    KeyId, KeyLife, KeyPrefix, Payment, PaymentId, Permissions, RateLimit, Report,
    RequestFingerprint, Timestamp,
};

pub mod error;
pub mod lifecycle;

#[cfg(feature = "aws")]
mod admin;
#[cfg(feature = "aws")]
pub mod dynamo;
#[cfg(feature = "aws")]
pub mod items;
#[cfg(any(test, feature = "test-support"))]
pub mod memory;
#[cfg(feature = "aws")]
mod reads;
#[cfg(any(feature = "aws", feature = "lambda"))]
pub mod usage;

pub use error::{Entity, StoreError};
pub use lifecycle::{ActingKey, AdminError, KeyListing, KeyMint, KeySummary, Origin, Rolled};

/// What the auth step needs to decide about a key, all on the one item it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub key_id: KeyId,
    pub account_id: AccountId,
    pub prefix: KeyPrefix,
    pub life: KeyLife,
    pub account_status: AccountStatus,
    pub created_at: Timestamp,
    /// When a request last recorded a use of the key (see [`RecordKeyUse`]).
    pub last_used_at: Option<Timestamp>,
    /// The account's own request rate limit; `None`: the stack's default.
    pub rate_limit: Option<RateLimit>,
    /// What the key may do: every permission for a secret key.
    pub permissions: Permissions,
    /// Where the key may be used from; open: anywhere.
    pub allowed_ips: IpAllowList,
}

/// A newly minted key as it is stored: digest and display prefix, never the key itself.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    pub key_id: KeyId,
    pub digest: KeyDigest,
    pub prefix: KeyPrefix,
    pub created_at: Timestamp,
    pub grant: KeyGrant,
    /// The key a roll made this one to replace.
    pub replaces: Option<KeyId>,
}

impl IssuedKey {
    /// A secret key: every permission, from anywhere, until revoked.
    pub fn new(key: &ApiKey, key_id: KeyId, created_at: Timestamp) -> Self {
        Self::with_grant(key, key_id, created_at, KeyGrant::secret())
    }

    pub fn with_grant(key: &ApiKey, key_id: KeyId, created_at: Timestamp, grant: KeyGrant) -> Self {
        IssuedKey {
            key_id,
            digest: key.digest(),
            prefix: key.display_prefix(),
            created_at,
            grant,
            replaces: None,
        }
    }
}

/// Looks a key up by its digest (strongly consistent).
pub trait FindKey: Send + Sync {
    fn find_key(
        &self,
        digest: &KeyDigest,
    ) -> impl Future<Output = Result<Option<KeyRecord>, StoreError>> + Send;
}

/// Records that a key authenticated a request at `at`, unless a use at or after
/// `stale_before` is recorded already. Best effort: the request never waits for it or fails
/// by it (see `http::auth::KeyUse`).
pub trait RecordKeyUse: Send + Sync {
    fn record_key_use(
        &self,
        digest: &KeyDigest,
        at: Timestamp,
        stale_before: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Writes this environment's claim on an account's rate limit to the account's demand item
/// (removing the claims the report found long expired) and answers every claim the item then
/// holds: the rate limiter's share ([`crate::domain::AccountShare`]). Idempotent: the claim is
/// set, not added, so a retried write changes nothing.
pub trait PublishDemand: Send + Sync {
    fn publish_demand(
        &self,
        account: &AccountId,
        report: &Report,
    ) -> impl Future<Output = Result<Vec<Claim>, StoreError>> + Send;
}

/// Writes an account, its first key and the audit event of its creation atomically.
/// `ConditionFailed` if the account id or the key digest is taken.
pub trait CreateAccount: Send + Sync {
    fn create_account(
        &self,
        account: &Account,
        key: &IssuedKey,
        event: &AuditEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// What a conditional payment write found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertOutcome {
    /// The payment was written.
    Created,
    /// A payment with this id already exists (an earlier request with the same idempotency
    /// key, or an earlier attempt of this very request); it was left untouched.
    Exists(StoredPayment),
}

/// A payment as stored, with the fingerprint of the request that created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPayment {
    pub payment: Payment,
    pub request_fingerprint: RequestFingerprint,
}

/// Records a payment with a single conditional write that never overwrites.
pub trait InsertPayment: Send + Sync {
    fn insert_payment(
        &self,
        payment: &Payment,
        request_fingerprint: &RequestFingerprint,
    ) -> impl Future<Output = Result<InsertOutcome, StoreError>> + Send;
}

/// Reads a payment by id, strongly consistent, whoever it belongs to: the caller checks
/// ownership (so that "not yours" and "not there" can be told apart only by the caller).
pub trait GetPayment: Send + Sync {
    fn get_payment(
        &self,
        id: &PaymentId,
    ) -> impl Future<Output = Result<Option<StoredPayment>, StoreError>> + Send;
}

/// Where a payment sits in its account's list: newest first, by creation time and then id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListPosition {
    pub created_at: Timestamp,
    pub id: PaymentId,
}

impl ListPosition {
    pub fn of(payment: &Payment) -> Self {
        ListPosition {
            created_at: payment.created_at,
            id: payment.id.clone(),
        }
    }
}

/// Which way a page runs from its cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListCursor {
    /// Payments older than this one (the next page).
    After(ListPosition),
    /// Payments newer than this one (the previous page).
    Before(ListPosition),
}

/// One page of one account's payments, as typed bounds. `limit` is 1 to 100 (checked at the
/// edge); `created_gte` and `created_lte` are inclusive, at millisecond precision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRange {
    pub limit: usize,
    pub created_gte: Option<Timestamp>,
    pub created_lte: Option<Timestamp>,
    pub cursor: Option<ListCursor>,
}

/// A page of payments, newest first; `has_more` says whether more lie beyond it in the
/// direction the page was read (older after `After` or no cursor, newer before `Before`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentPage {
    pub payments: Vec<Payment>,
    pub has_more: bool,
}

/// Lists one account's payments, newest first. Only that account's payments, ever: the
/// account is the partition of the query.
pub trait ListPayments: Send + Sync {
    fn list_payments(
        &self,
        account: &AccountId,
        range: &ListRange,
    ) -> impl Future<Output = Result<PaymentPage, StoreError>> + Send;
}

/// An account's keys as `/keys` shows them: every entry the account keeps, with each key's
/// last use (strongly consistent).
pub trait ListKeys: Send + Sync {
    fn account_keys(
        &self,
        account: &AccountId,
        now: Timestamp,
    ) -> impl Future<Output = Result<KeyListing, StoreError>> + Send;
}

/// Adds a key to the account beside its others, with its audit event, in one transaction;
/// `acting`, when the change is a key's own, must hold what the new key is granted.
pub trait CreateKey: Send + Sync {
    fn create_key(
        &self,
        account: &AccountId,
        new_key: &IssuedKey,
        acting: Option<ActingKey<'_>>,
        now: Timestamp,
        origin: Origin<'_>,
    ) -> impl Future<Output = Result<KeySummary, AdminError>> + Send;
}

/// Replaces an active key with a new one of its kind and grant; the old one stops after
/// `grace`. One transaction, with its audit event.
pub trait RollKey: Send + Sync {
    #[allow(clippy::too_many_arguments)]
    fn roll_key(
        &self,
        account: &AccountId,
        key_id: &KeyId,
        grace: std::time::Duration,
        mint: &KeyMint<'_>,
        acting: Option<ActingKey<'_>>,
        now: Timestamp,
        origin: Origin<'_>,
    ) -> impl Future<Output = Result<Rolled, AdminError>> + Send;
}

/// Revokes one of the account's keys for one of its own; see `ActingKey::may_revoke`.
pub trait RevokeKey: Send + Sync {
    fn revoke_own_key(
        &self,
        account: &AccountId,
        key_id: &KeyId,
        acting: ActingKey<'_>,
        now: Timestamp,
        origin: Origin<'_>,
    ) -> impl Future<Output = Result<KeySummary, AdminError>> + Send;
}
