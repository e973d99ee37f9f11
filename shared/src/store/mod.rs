//! Storage: one small trait per operation, so each function depends on exactly the calls it
//! makes (which is also what its IAM policy grants). Every call answers in storage terms
//! ([`StoreError`]); what a caller is told is decided by the layer above.
//!
//! [`dynamo::DynamoStore`] is the real implementation (feature `aws`);
//! [`memory::MemoryStore`] an in-memory stand-in for unit tests (feature `test-support`).

use std::future::Future;

use crate::domain::{
    Account, AccountId, AccountStatus, ApiKey, KeyDigest, KeyId, KeyLife, KeyPrefix, Payment,
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

pub use error::{Entity, StoreError};

/// What the auth step needs to decide about a key, all on the one item it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub key_id: KeyId,
    pub account_id: AccountId,
    pub prefix: KeyPrefix,
    pub life: KeyLife,
    pub account_status: AccountStatus,
    pub created_at: Timestamp,
}

/// A newly minted key as it is stored: digest and display prefix, never the key itself.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    pub key_id: KeyId,
    pub digest: KeyDigest,
    pub prefix: KeyPrefix,
    pub created_at: Timestamp,
}

impl IssuedKey {
    pub fn new(key: &ApiKey, key_id: KeyId, created_at: Timestamp) -> Self {
        IssuedKey {
            key_id,
            digest: key.digest(),
            prefix: key.display_prefix(),
            created_at,
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

/// Writes an account and its first key atomically. `ConditionFailed` if the account id or
/// the key digest is taken.
pub trait CreateAccount: Send + Sync {
    fn create_account(
        &self,
        account: &Account,
        key: &IssuedKey,
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
