//! Key lifecycle and account administration: rotate, revoke, list keys, show, deactivate and
//! reactivate accounts.
//!
//! Every change is one DynamoDB transaction that updates the account item (whose `version`
//! guards against concurrent changes) together with every key item it affects, so each change
//! applies in full on the very next request, or not at all. The key items carry what the
//! auth step decides on (status, expiry, account status), which keeps `POST /payments` at one
//! read. Each change is logged as an `audit` event: who, what, when, and never a secret.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use serde::Serialize;

use super::dynamo::{
    account_from_item, account_pk, classify, corrupt, key_item, key_pk, key_ref_item, key_ref_pk,
    key_summary, s, string_attr, unexpected, DynamoStore, Item, PK,
};
use super::{IssuedKey, KeyStatus};
use crate::api_key::{ApiKey, KeyDigest};
use crate::domain::{Account, AccountId, AccountStatus, KeyId, Timestamp};
use crate::error::ApiError;

/// How long DynamoDB keeps a dead key item before its TTL deletes it. Auth refuses the key
/// either way; the account item keeps its history.
const DEAD_KEY_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// The default grace period of the old keys when an account's key is rotated.
pub const DEFAULT_ROTATION_GRACE: Duration = Duration::from_secs(24 * 3600);

/// A key as operators see it: never its secret, never its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeySummary {
    pub key_id: String,
    pub prefix: String,
    /// `active`, `expiring` (inside a grace period), `expired` or `revoked`, as of now.
    pub state: &'static str,
    pub created_at: String,
    pub expires_at: Option<String>,
}

/// An account with its keys, as read for an administrative change.
struct AccountRecord {
    account: Account,
    version: u64,
    keys: Vec<StoredKey>,
}

struct StoredKey {
    key_id: KeyId,
    digest: KeyDigest,
    prefix: String,
    status: KeyStatus,
    created_at: Timestamp,
    expires_at: Option<Timestamp>,
}

impl StoredKey {
    fn authenticates_at(&self, now: Timestamp) -> bool {
        self.status == KeyStatus::Active && self.expires_at.is_none_or(|at| now < at)
    }

    fn summary(&self, now: Timestamp) -> KeySummary {
        let state = match (self.status, self.expires_at) {
            (KeyStatus::Revoked, _) => "revoked",
            (KeyStatus::Active, Some(at)) if now >= at => "expired",
            (KeyStatus::Active, Some(_)) => "expiring",
            (KeyStatus::Active, None) => "active",
        };
        KeySummary {
            key_id: self.key_id.to_string(),
            prefix: self.prefix.clone(),
            state,
            created_at: self.created_at.to_rfc3339(),
            expires_at: self.expires_at.map(Timestamp::to_rfc3339),
        }
    }
}

/// The outcome of a rotation: the new key (shown once) and the old keys' new expiry.
#[derive(Debug)]
pub struct Rotation {
    pub account_id: AccountId,
    pub new_key_id: KeyId,
    pub new_key_prefix: String,
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

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn parse_stored_key(key_id: &str, entry: &AttributeValue, account: &str) -> Option<StoredKey> {
    let map = entry.as_m().ok()?;
    let get = |name: &str| {
        map.get(name)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
    };
    Some(StoredKey {
        key_id: KeyId::parse(key_id)?,
        digest: KeyDigest::from_hex(get("digest")?)?,
        prefix: get("prefix")?.to_owned(),
        status: KeyStatus::parse(get("status")?)?,
        created_at: Timestamp::parse(get("created_at")?)?,
        expires_at: match get("expires_at") {
            Some(at) => Some(Timestamp::parse(at)?),
            None => None,
        },
    })
    .or_else(|| {
        tracing::error!(
            account_id = account,
            key_id,
            "malformed key entry on account"
        );
        None
    })
}

fn parse_account_record(item: &Item) -> Result<AccountRecord, ApiError> {
    let account = account_from_item(item)?;
    let id = account.id.to_string();
    let version = item
        .get("version")
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| corrupt("account", &id))?;
    let mut keys = Vec::new();
    if let Some(AttributeValue::M(entries)) = item.get("keys") {
        for (key_id, entry) in entries {
            keys.push(parse_stored_key(key_id, entry, &id).ok_or_else(|| corrupt("account", &id))?);
        }
    }
    keys.sort_by(|a, b| (a.created_at, a.key_id.as_str()).cmp(&(b.created_at, b.key_id.as_str())));
    Ok(AccountRecord {
        account,
        version,
        keys,
    })
}

/// Maps a failed transaction: a failed condition means someone else changed the account
/// first (or the item vanished), which the operator resolves by retrying.
fn transaction_error(
    err: SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>,
    account: &AccountId,
) -> ApiError {
    if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
        err.as_service_error()
    {
        let conflict = cancelled.cancellation_reasons().iter().any(|reason| {
            matches!(
                reason.code(),
                Some("ConditionalCheckFailed") | Some("TransactionConflict")
            )
        });
        if conflict {
            return ApiError::Conflict {
                what: "account",
                id: account.to_string(),
            };
        }
    }
    classify(err)
}

impl DynamoStore {
    async fn read_account(&self, id: &AccountId) -> Result<AccountRecord, ApiError> {
        let item = self
            .get_consistent(&self.clients_table, account_pk(id))
            .await?
            .ok_or_else(|| ApiError::NotFound {
                what: "account",
                id: id.to_string(),
            })?;
        parse_account_record(&item)
    }

    /// Reads an account (strongly consistent); `None` if it does not exist.
    pub async fn get_account(&self, id: &AccountId) -> Result<Option<Account>, ApiError> {
        match self.read_account(id).await {
            Ok(record) => Ok(Some(record.account)),
            Err(ApiError::NotFound { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// An account and its keys, oldest first, with each key's state as of `now`.
    pub async fn account_keys(
        &self,
        id: &AccountId,
        now: Timestamp,
    ) -> Result<(Account, Vec<KeySummary>), ApiError> {
        let record = self.read_account(id).await?;
        let keys = record.keys.iter().map(|key| key.summary(now)).collect();
        Ok((record.account, keys))
    }

    /// The account a key belongs to.
    pub async fn key_account(&self, key_id: &KeyId) -> Result<AccountId, ApiError> {
        let item = self
            .get_consistent(&self.clients_table, key_ref_pk(key_id))
            .await?
            .ok_or_else(|| ApiError::NotFound {
                what: "key",
                id: key_id.to_string(),
            })?;
        string_attr(&item, "account_id")
            .and_then(AccountId::parse)
            .ok_or_else(|| corrupt("key reference", key_id.as_str()))
    }

    /// Issues `new_key` to the account and gives every key that still authenticates a
    /// grace period: it stops at `now + grace` (`grace` = 0: at once). The new key and the
    /// old keys' expiry are written in one transaction, so at no instant is the account
    /// left without a working key.
    pub async fn rotate_key(
        &self,
        account_id: &AccountId,
        new_key: &ApiKey,
        grace: Duration,
        now: Timestamp,
        actor: &str,
    ) -> Result<Rotation, ApiError> {
        let record = self.read_account(account_id).await?;
        let issued = IssuedKey::new(new_key, now)?;
        let retire_at = now.plus(grace);
        let retiring: Vec<&StoredKey> = record
            .keys
            .iter()
            .filter(|key| key.authenticates_at(now))
            .filter(|key| key.expires_at.is_none_or(|at| at > retire_at))
            .collect();
        // DynamoDB transactions hold at most 100 items: the account, the new key, its
        // reference, and the keys being retired.
        if retiring.len() > 97 {
            return Err(ApiError::Unexpected(anyhow::anyhow!(
                "account {account_id} has {} live keys; revoke some first",
                retiring.len()
            )));
        }

        let mut names = HashMap::from([
            ("#keys".to_owned(), "keys".to_owned()),
            ("#new".to_owned(), issued.key_id.to_string()),
            ("#version".to_owned(), "version".to_owned()),
        ]);
        let mut values = HashMap::from([
            (":summary".to_owned(), key_summary(&issued)),
            (":one".to_owned(), n(1)),
            (":expected".to_owned(), n(record.version)),
        ]);
        let mut sets = vec![
            "#keys.#new = :summary".to_owned(),
            "#version = #version + :one".to_owned(),
        ];
        // DynamoDB refuses names and values an expression does not use, so these are only
        // there when some key is retiring.
        if !retiring.is_empty() {
            names.insert("#expires".to_owned(), "expires_at".to_owned());
            values.insert(":retire".to_owned(), s(retire_at.to_rfc3339()));
        }
        for (i, key) in retiring.iter().enumerate() {
            names.insert(format!("#k{i}"), key.key_id.to_string());
            sets.push(format!("#keys.#k{i}.#expires = :retire"));
        }
        let account_update = Update::builder()
            .table_name(&self.clients_table)
            .key(PK, s(account_pk(account_id)))
            .update_expression(format!("SET {}", sets.join(", ")))
            .condition_expression("#version = :expected")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(unexpected)?;
        let mut items = vec![
            TransactWriteItem::builder().update(account_update).build(),
            put_new(
                &self.clients_table,
                key_item(account_id, record.account.status, &issued),
            )?,
            put_new(
                &self.clients_table,
                key_ref_item(account_id, &issued.key_id),
            )?,
        ];
        for key in &retiring {
            items.push(self.expire_key_item(&key.digest, retire_at)?);
        }
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map_err(|err| transaction_error(err, account_id))?;

        let retiring: Vec<(KeyId, Timestamp)> = retiring
            .iter()
            .map(|key| (key.key_id.clone(), retire_at))
            .collect();
        tracing::info!(
            target: "audit",
            action = "key.rotated",
            actor,
            account_id = %account_id,
            new_key_id = %issued.key_id,
            new_key_prefix = %issued.prefix,
            retiring = ?retiring.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
            retire_at = %retire_at.to_rfc3339(),
            grace_seconds = grace.as_secs(),
            at = %now.to_rfc3339(),
            "api key rotated"
        );
        Ok(Rotation {
            account_id: account_id.clone(),
            new_key_id: issued.key_id,
            new_key_prefix: issued.prefix.to_string(),
            retiring,
        })
    }

    fn expire_key_item(
        &self,
        digest: &KeyDigest,
        at: Timestamp,
    ) -> Result<TransactWriteItem, ApiError> {
        let update = Update::builder()
            .table_name(&self.clients_table)
            .key(PK, s(key_pk(digest)))
            .update_expression("SET #expires = :at, #ttl = :ttl")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#expires", "expires_at")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":at", s(at.to_rfc3339()))
            .expression_attribute_values(
                ":ttl",
                AttributeValue::N(at.plus(DEAD_KEY_RETENTION).unix_seconds().to_string()),
            )
            .build()
            .map_err(unexpected)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Revokes a key: it stops authenticating on the very next request.
    pub async fn revoke_key(
        &self,
        key_id: &KeyId,
        now: Timestamp,
        actor: &str,
    ) -> Result<(AccountId, Revocation), ApiError> {
        let account_id = self.key_account(key_id).await?;
        let record = self.read_account(&account_id).await?;
        let key = record
            .keys
            .iter()
            .find(|key| &key.key_id == key_id)
            .ok_or_else(|| corrupt("account", account_id.as_str()))?;
        if key.status == KeyStatus::Revoked {
            return Ok((account_id, Revocation::AlreadyRevoked));
        }
        let account_update = Update::builder()
            .table_name(&self.clients_table)
            .key(PK, s(account_pk(&account_id)))
            .update_expression("SET #keys.#key.#status = :revoked, #version = #version + :one")
            .condition_expression("#version = :expected")
            .expression_attribute_names("#keys", "keys")
            .expression_attribute_names("#key", key_id.as_str())
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":revoked", s(KeyStatus::Revoked.as_str()))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":expected", n(record.version))
            .build()
            .map_err(unexpected)?;
        let key_update = Update::builder()
            .table_name(&self.clients_table)
            .key(PK, s(key_pk(&key.digest)))
            .update_expression("SET #status = :revoked, #ttl = :ttl")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":revoked", s(KeyStatus::Revoked.as_str()))
            .expression_attribute_values(
                ":ttl",
                AttributeValue::N(now.plus(DEAD_KEY_RETENTION).unix_seconds().to_string()),
            )
            .build()
            .map_err(unexpected)?;
        self.client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(account_update).build())
            .transact_items(TransactWriteItem::builder().update(key_update).build())
            .send()
            .await
            .map_err(|err| transaction_error(err, &account_id))?;
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
    ) -> Result<StatusChange, ApiError> {
        let record = self.read_account(id).await?;
        if record.account.status == status {
            return Ok(StatusChange::Unchanged);
        }
        let account_update = Update::builder()
            .table_name(&self.clients_table)
            .key(PK, s(account_pk(id)))
            .update_expression("SET #status = :status, #version = #version + :one")
            .condition_expression("#version = :expected")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":status", s(status.as_str()))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":expected", n(record.version))
            .build()
            .map_err(unexpected)?;
        let mut items = vec![TransactWriteItem::builder().update(account_update).build()];
        // Only keys that can still authenticate need the new status; dead ones may already
        // have been deleted by their TTL.
        for key in record.keys.iter().filter(|key| key.authenticates_at(now)) {
            let update = Update::builder()
                .table_name(&self.clients_table)
                .key(PK, s(key_pk(&key.digest)))
                .update_expression("SET #status = :status")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_names("#status", "account_status")
                .expression_attribute_values(":status", s(status.as_str()))
                .build()
                .map_err(unexpected)?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map_err(|err| transaction_error(err, id))?;
        tracing::info!(
            target: "audit",
            action = if status == AccountStatus::Active { "account.reactivated" } else { "account.deactivated" },
            actor,
            account_id = %id,
            at = %now.to_rfc3339(),
            "account status changed"
        );
        Ok(StatusChange::Changed)
    }
}

fn put_new(table: &str, item: Item) -> Result<TransactWriteItem, ApiError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .map_err(unexpected)?;
    Ok(TransactWriteItem::builder().put(put).build())
}
