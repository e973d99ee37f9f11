//! Accounts: who pays.

use serde::Serialize;

use super::ids::AccountId;
use super::text::{AccountName, Email};
use super::time::Timestamp;

string_enum!(
    /// Whether an account's keys may authenticate at all.
    AccountStatus {
        Active = "active",
        Inactive = "inactive",
    }
);

/// An account as the API shows it (without its key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub id: AccountId,
    pub name: AccountName,
    pub email: Option<Email>,
    pub status: AccountStatus,
    pub created_at: Timestamp,
}

/// A validated request for a new account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    pub name: AccountName,
    pub email: Option<Email>,
}
