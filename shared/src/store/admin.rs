//! Key lifecycle and account administration in DynamoDB: each change is the plan from
//! [`super::lifecycle`] written as one transaction that updates the account item (whose
//! `version` guards against concurrent changes) together with every key item it affects, so
//! each change applies in full on the very next request, or not at all. The key items carry
//! what the auth step decides on (status, expiry, account status), which keeps
//! `POST /payments` at one read. Each change is logged as an `audit` event: who, what, when,
//! and never a secret.

use std::time::Duration;

use aws_sdk_dynamodb::types::TransactWriteItem;

use super::dynamo::{put_new, DynamoStore, FailedCondition};
use super::error::{Entity, StoreError};
use super::items;
use super::lifecycle::{
    plan_revocation, plan_rotation, plan_status_change, AccountRecord, KeySummary, Revocation,
    RevocationPlan, Rotation, StatusChange,
};
use super::IssuedKey;
use crate::domain::{Account, AccountId, AccountStatus, KeyId, Timestamp};

fn update(update: aws_sdk_dynamodb::types::Update) -> TransactWriteItem {
    TransactWriteItem::builder().update(update).build()
}

impl DynamoStore {
    async fn read_account(&self, id: &AccountId) -> Result<AccountRecord, StoreError> {
        let item = self
            .get_consistent(&self.clients_table, items::account::pk(id))
            .await?
            .ok_or_else(|| StoreError::NotFound {
                entity: Entity::Account,
                id: id.to_string(),
            })?;
        items::account::record_from_item(&item)
    }

    /// Reads an account (strongly consistent); `None` if it does not exist.
    pub async fn get_account(&self, id: &AccountId) -> Result<Option<Account>, StoreError> {
        match self.read_account(id).await {
            Ok(record) => Ok(Some(record.account)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// An account and its keys, oldest first, with each key's state as of `now`.
    pub async fn account_keys(
        &self,
        id: &AccountId,
        now: Timestamp,
    ) -> Result<(Account, Vec<KeySummary>), StoreError> {
        let record = self.read_account(id).await?;
        let keys = record.keys.iter().map(|key| key.summary(now)).collect();
        Ok((record.account, keys))
    }

    /// The account a key belongs to.
    pub async fn key_account(&self, key_id: &KeyId) -> Result<AccountId, StoreError> {
        let item = self
            .get_consistent(&self.clients_table, items::key::ref_pk(key_id))
            .await?
            .ok_or_else(|| StoreError::NotFound {
                entity: Entity::Key,
                id: key_id.to_string(),
            })?;
        items::key::account_of_ref(&item)
    }

    /// Issues `new_key` to the account and gives every key that still authenticates a
    /// grace period: it stops at `now + grace` (`grace` = 0: at once). The new key and the
    /// old keys' expiry are written in one transaction, so at no instant is the account
    /// left without a working key.
    pub async fn rotate_key(
        &self,
        account_id: &AccountId,
        new_key: &IssuedKey,
        grace: Duration,
        now: Timestamp,
        actor: &str,
    ) -> Result<Rotation, StoreError> {
        let record = self.read_account(account_id).await?;
        let plan = plan_rotation(&record, grace, now)?;
        let table = &self.clients_table;
        let mut writes = vec![
            update(items::account::rotation_update(
                table,
                &record,
                new_key,
                &plan.retiring,
                plan.retire_at,
            )),
            put_new(
                table,
                items::key::new_item(account_id, record.account.status, new_key),
            ),
            put_new(table, items::key::new_ref_item(account_id, &new_key.key_id)),
        ];
        writes.extend(plan.retiring.iter().map(|key| {
            update(items::key::expiry_update(
                table,
                &key.digest,
                plan.retire_at,
            ))
        }));
        self.transact(
            writes,
            Entity::Account,
            account_id.as_str(),
            FailedCondition::Changed,
        )
        .await?;

        let retiring: Vec<(KeyId, Timestamp)> = plan
            .retiring
            .iter()
            .map(|key| (key.key_id.clone(), plan.retire_at))
            .collect();
        tracing::info!(
            target: "audit",
            action = "key.rotated",
            actor,
            account_id = %account_id,
            new_key_id = %new_key.key_id,
            new_key_prefix = %new_key.prefix,
            retiring = ?retiring.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
            retire_at = %plan.retire_at.to_rfc3339(),
            grace_seconds = grace.as_secs(),
            at = %now.to_rfc3339(),
            "api key rotated"
        );
        Ok(Rotation {
            account_id: account_id.clone(),
            new_key_id: new_key.key_id.clone(),
            new_key_prefix: new_key.prefix.clone(),
            retiring,
        })
    }

    /// Revokes a key: it stops authenticating on the very next request.
    pub async fn revoke_key(
        &self,
        key_id: &KeyId,
        now: Timestamp,
        actor: &str,
    ) -> Result<(AccountId, Revocation), StoreError> {
        let account_id = self.key_account(key_id).await?;
        let record = self.read_account(&account_id).await?;
        let key = match plan_revocation(&record, key_id)? {
            RevocationPlan::AlreadyRevoked => return Ok((account_id, Revocation::AlreadyRevoked)),
            RevocationPlan::Revoke(key) => key,
        };
        let table = &self.clients_table;
        let writes = vec![
            update(items::account::revocation_update(table, &record, key_id)),
            update(items::key::revocation_update(table, &key.digest, now)),
        ];
        self.transact(
            writes,
            Entity::Account,
            account_id.as_str(),
            FailedCondition::Changed,
        )
        .await?;
        tracing::info!(
            target: "audit",
            action = "key.revoked",
            actor,
            account_id = %account_id,
            key_id = %key_id,
            key_prefix = %key.prefix,
            at = %now.to_rfc3339(),
            "api key revoked"
        );
        Ok((account_id, Revocation::Revoked))
    }

    /// Activates or deactivates an account. The account item and every key item (which
    /// carries a copy of the account status for the auth step) change in one transaction,
    /// so the change applies to every key on the very next request.
    pub async fn set_account_status(
        &self,
        id: &AccountId,
        status: AccountStatus,
        now: Timestamp,
        actor: &str,
    ) -> Result<StatusChange, StoreError> {
        let record = self.read_account(id).await?;
        let Some(keys) = plan_status_change(&record, status, now)? else {
            return Ok(StatusChange::Unchanged);
        };
        let table = &self.clients_table;
        let mut writes = vec![update(items::account::status_update(
            table, &record, status,
        ))];
        writes.extend(keys.iter().map(|key| {
            update(items::key::account_status_update(
                table,
                &key.digest,
                status,
            ))
        }));
        self.transact(
            writes,
            Entity::Account,
            id.as_str(),
            FailedCondition::Changed,
        )
        .await?;
        tracing::info!(
            target: "audit",
            action = match status {
                AccountStatus::Active => "account.reactivated",
                AccountStatus::Inactive => "account.deactivated",
            },
            actor,
            account_id = %id,
            at = %now.to_rfc3339(),
            "account status changed"
        );
        Ok(StatusChange::Changed)
    }
}
