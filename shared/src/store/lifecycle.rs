//! Key lifecycle and account administration as plain rules over an account record: which
//! keys a rotation retires, what a revocation changes, which key items a status change must
//! touch. No DynamoDB here, so the rules are unit-tested directly; `admin.rs` turns each
//! plan into one transaction.

use std::time::Duration;

use serde::Serialize;

use super::error::{Entity, StoreError};
use crate::domain::{
    Account, AccountId, AccountStatus, KeyDigest, KeyId, KeyLife, KeyPrefix, KeyState, KeyStatus,
    Timestamp,
};

/// The default grace period of the old keys when an account's key is rotated.
pub const DEFAULT_ROTATION_GRACE: Duration = Duration::from_secs(24 * 3600);

/// DynamoDB's limit on the items of one transaction.
pub const MAX_TRANSACTION_ITEMS: usize = 100;

/// An account with its keys (oldest first), as read for an administrative change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub account: Account,
    /// Every change is conditional on the version it read (optimistic concurrency).
    pub version: u64,
    pub keys: Vec<StoredKey>,
}

/// A key's entry on its account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub key_id: KeyId,
    pub digest: KeyDigest,
    pub prefix: KeyPrefix,
    pub life: KeyLife,
    pub created_at: Timestamp,
}

/// A key as operators see it: never its secret, never its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeySummary {
    pub key_id: KeyId,
    pub prefix: KeyPrefix,
    /// As of the time the summary was made.
    pub state: KeyState,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

impl StoredKey {
    pub fn summary(&self, now: Timestamp) -> KeySummary {
        KeySummary {
            key_id: self.key_id.clone(),
            prefix: self.prefix.clone(),
            state: self.life.state_at(now),
            created_at: self.created_at,
            expires_at: self.life.expires_at,
        }
    }
}

/// What a rotation changes besides issuing the new key.
#[derive(Debug, PartialEq, Eq)]
pub struct RotationPlan<'a> {
    /// When the retiring keys stop authenticating.
    pub retire_at: Timestamp,
    /// Keys that still authenticate and would otherwise outlive `retire_at`.
    pub retiring: Vec<&'a StoredKey>,
}

/// Every key that still authenticates gets `now + grace` as its end, unless it already ends
/// sooner: a second rotation never extends a shorter grace.
pub fn plan_rotation(
    record: &AccountRecord,
    grace: Duration,
    now: Timestamp,
) -> Result<RotationPlan<'_>, StoreError> {
    let retire_at = now.plus(grace);
    let retiring: Vec<&StoredKey> = record
        .keys
        .iter()
        .filter(|key| key.life.state_at(now).is_live())
        .filter(|key| key.life.expires_at.is_none_or(|at| at > retire_at))
        .collect();
    // The account, the new key, its reference, and one update per retiring key.
    let needed = 3 + retiring.len();
    if needed > MAX_TRANSACTION_ITEMS {
        return Err(StoreError::TooManyItems {
            needed,
            max: MAX_TRANSACTION_ITEMS,
        });
    }
    Ok(RotationPlan {
        retire_at,
        retiring,
    })
}

/// What a revocation of one key does.
#[derive(Debug, PartialEq, Eq)]
pub enum RevocationPlan<'a> {
    AlreadyRevoked,
    Revoke(&'a StoredKey),
}

pub fn plan_revocation<'a>(
    record: &'a AccountRecord,
    key_id: &KeyId,
) -> Result<RevocationPlan<'a>, StoreError> {
    let key = record
        .keys
        .iter()
        .find(|key| &key.key_id == key_id)
        .ok_or_else(|| StoreError::corrupt(Entity::Account, record.account.id.as_str(), "keys"))?;
    Ok(match key.life.status {
        KeyStatus::Revoked => RevocationPlan::AlreadyRevoked,
        KeyStatus::Active => RevocationPlan::Revoke(key),
    })
}

/// The key items a change of account status must update (each carries a copy of the account
/// status for the auth step), or `None` when the account already has that status. Keys that
/// no longer authenticate are left alone: their items may already be gone (TTL).
pub fn plan_status_change(
    record: &AccountRecord,
    status: AccountStatus,
    now: Timestamp,
) -> Result<Option<Vec<&StoredKey>>, StoreError> {
    if record.account.status == status {
        return Ok(None);
    }
    let keys: Vec<&StoredKey> = record
        .keys
        .iter()
        .filter(|key| key.life.state_at(now).is_live())
        .collect();
    let needed = 1 + keys.len();
    if needed > MAX_TRANSACTION_ITEMS {
        return Err(StoreError::TooManyItems {
            needed,
            max: MAX_TRANSACTION_ITEMS,
        });
    }
    Ok(Some(keys))
}

/// The outcome of a rotation.
#[derive(Debug)]
pub struct Rotation {
    pub account_id: AccountId,
    pub new_key_id: KeyId,
    pub new_key_prefix: KeyPrefix,
    /// (old key id, when it stops authenticating)
    pub retiring: Vec<(KeyId, Timestamp)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    Revoked,
    AlreadyRevoked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    Changed,
    Unchanged,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AccountName, ApiKey, KeyEnvironment};

    const MINUTE: Duration = Duration::from_secs(60);

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    fn key(n: u8, status: KeyStatus, expires_at: Option<Timestamp>) -> StoredKey {
        let api_key = ApiKey::generate(KeyEnvironment::Test).unwrap();
        StoredKey {
            key_id: KeyId::parse(&format!(
                "key_{}",
                char::from(b'A' + n).to_string().repeat(20)
            ))
            .unwrap(),
            digest: api_key.digest(),
            prefix: api_key.display_prefix(),
            life: KeyLife { status, expires_at },
            created_at: at("2026-01-01T00:00:00Z"),
        }
    }

    fn record(status: AccountStatus, keys: Vec<StoredKey>) -> AccountRecord {
        AccountRecord {
            account: Account {
                id: AccountId::parse("acct_AAAAAAAAAAAAAAAAAAAA").unwrap(),
                name: AccountName::parse("Ada".into()).unwrap(),
                email: None,
                status,
                created_at: at("2026-01-01T00:00:00Z"),
            },
            version: 3,
            keys,
        }
    }

    #[test]
    fn rotation_retires_live_keys_without_extending_a_shorter_grace() {
        let now = at("2026-06-01T12:00:00Z");
        let soon = now.plus(10 * MINUTE);
        let keys = vec![
            key(0, KeyStatus::Active, None),
            key(1, KeyStatus::Active, Some(soon)),
            key(2, KeyStatus::Revoked, None),
            key(3, KeyStatus::Active, Some(now)),
        ];
        let record = record(AccountStatus::Active, keys);
        let plan = plan_rotation(&record, 60 * MINUTE, now).unwrap();
        assert_eq!(plan.retire_at, now.plus(60 * MINUTE));
        assert_eq!(
            plan.retiring,
            vec![&record.keys[0]],
            "only the key without a sooner end"
        );

        let plan = plan_rotation(&record, Duration::ZERO, now).unwrap();
        assert_eq!(plan.retiring, vec![&record.keys[0], &record.keys[1]]);
    }

    #[test]
    fn rotation_refuses_more_keys_than_one_transaction_holds() {
        let now = at("2026-06-01T12:00:00Z");
        let keys = (0..98).map(|_| key(0, KeyStatus::Active, None)).collect();
        let err = plan_rotation(&record(AccountStatus::Active, keys), MINUTE, now).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::TooManyItems {
                    needed: 101,
                    max: 100
                }
            ),
            "{err:?}"
        );
        let keys = (0..97).map(|_| key(0, KeyStatus::Active, None)).collect();
        assert!(plan_rotation(&record(AccountStatus::Active, keys), MINUTE, now).is_ok());
    }

    #[test]
    fn revocation_plans() {
        let record = record(
            AccountStatus::Active,
            vec![
                key(0, KeyStatus::Active, None),
                key(1, KeyStatus::Revoked, None),
            ],
        );
        assert_eq!(
            plan_revocation(&record, &record.keys[0].key_id).unwrap(),
            RevocationPlan::Revoke(&record.keys[0])
        );
        assert_eq!(
            plan_revocation(&record, &record.keys[1].key_id).unwrap(),
            RevocationPlan::AlreadyRevoked
        );
        let missing = KeyId::parse("key_ZZZZZZZZZZZZZZZZZZZZ").unwrap();
        assert!(matches!(
            plan_revocation(&record, &missing),
            Err(StoreError::Corrupt {
                entity: Entity::Account,
                ..
            })
        ));
    }

    #[test]
    fn a_status_change_touches_only_keys_that_still_work() {
        let now = at("2026-06-01T12:00:00Z");
        let record = record(
            AccountStatus::Active,
            vec![
                key(0, KeyStatus::Active, None),
                key(1, KeyStatus::Revoked, None),
                key(2, KeyStatus::Active, Some(now)),
                key(3, KeyStatus::Active, Some(now.plus(MINUTE))),
            ],
        );
        assert_eq!(
            plan_status_change(&record, AccountStatus::Active, now).unwrap(),
            None
        );
        assert_eq!(
            plan_status_change(&record, AccountStatus::Inactive, now).unwrap(),
            Some(vec![&record.keys[0], &record.keys[3]])
        );
    }

    #[test]
    fn summaries_state_each_key_as_of_now() {
        let now = at("2026-06-01T12:00:00Z");
        let states: Vec<KeyState> = [
            key(0, KeyStatus::Active, None),
            key(1, KeyStatus::Active, Some(now.plus(MINUTE))),
            key(2, KeyStatus::Active, Some(now)),
            key(3, KeyStatus::Revoked, None),
        ]
        .iter()
        .map(|k| k.summary(now).state)
        .collect();
        assert_eq!(
            states,
            [
                KeyState::Active,
                KeyState::Expiring,
                KeyState::Expired,
                KeyState::Revoked
            ]
        );
    }
}
