//! Storage: one small trait per operation, so each function depends on exactly the calls it
//! makes (which is also what its IAM policy grants).
//!
//! [`dynamo::DynamoStore`] is the real implementation; [`memory::MemoryStore`] is an
//! in-memory stand-in for unit tests.

use std::future::Future;

use crate::api_key::{ApiKey, KeyDigest, KeyPrefix};
use crate::domain::{Account, AccountId, AccountStatus, KeyId, Payment, Timestamp};
use crate::error::ApiError;

pub mod dynamo;
pub mod lifecycle;
pub mod memory;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    Active,
    Revoked,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Revoked => "revoked",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "active" => Some(KeyStatus::Active),
            "revoked" => Some(KeyStatus::Revoked),
            _ => None,
        }
    }
}

/// What the auth step needs to decide about a key, all on the one item it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub key_id: KeyId,
    pub account_id: AccountId,
    pub prefix: KeyPrefix,
    pub status: KeyStatus,
    pub account_status: AccountStatus,
    pub created_at: Timestamp,
    /// When the key stops authenticating (end of a rotation grace period); none = never.
    pub expires_at: Option<Timestamp>,
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
    pub fn new(key: &ApiKey, created_at: Timestamp) -> Result<Self, ApiError> {
        Ok(IssuedKey {
            key_id: KeyId::generate()?,
            digest: key.digest(),
            prefix: key.display_prefix(),
            created_at,
        })
    }
}

/// Looks a key up by its digest (strongly consistent).
pub trait FindKey: Send + Sync {
    fn find_key(
        &self,
        digest: &KeyDigest,
    ) -> impl Future<Output = Result<Option<KeyRecord>, ApiError>> + Send;
}

/// Writes an account and its first key atomically.
pub trait CreateAccount: Send + Sync {
    fn create_account(
        &self,
        account: &Account,
        key: &IssuedKey,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
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
    pub request_fingerprint: String,
}

/// Records a payment with a single conditional write that never overwrites.
pub trait InsertPayment: Send + Sync {
    fn insert_payment(
        &self,
        payment: &Payment,
        request_fingerprint: &str,
    ) -> impl Future<Output = Result<InsertOutcome, ApiError>> + Send;
}
