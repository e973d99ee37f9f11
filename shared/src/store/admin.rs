//! Key lifecycle and account administration in DynamoDB: each change is the plan from
//! [`super::lifecycle`] written as one transaction that updates the account item (whose
//! `version` guards against concurrent changes), every key item it affects, and the change's
//! audit event, so each change applies in full on the very next request, with its record, or
//! not at all. The key items carry what the auth step decides on (status, expiry, account
//! status), which keeps `POST /payments` at one read.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, TransactWriteItem};

use super::dynamo::{classify, put_new, Call, DynamoStore, FailedCondition};
use super::error::{Entity, StoreError};
use super::items::{self, Item, PK};
use super::lifecycle::{
    plan_account_change, plan_revocation, plan_rotation, AccountChange, AccountRecord, AdminError,
    ChangeOutcome, KeyListing, MalformedKey, RetiringKey, Revocation, RevocationPlan, Rotation,
    StoredKey, RECENT_USE,
};
use super::IssuedKey;
use crate::domain::{
    Account, AccountId, AccountStatus, Actor, AuditAction, AuditEvent, EventId, KeyDigest,
    KeyEnvironment, KeyId, RateLimit, RateLimitSetting, Snapshot, Timestamp,
};

fn update(update: aws_sdk_dynamodb::types::Update) -> TransactWriteItem {
    TransactWriteItem::builder().update(update).build()
}

/// DynamoDB's limit on the keys of one `BatchGetItem`.
const MAX_BATCH_GET: usize = 100;

struct EventFacts<'a> {
    action: AuditAction,
    /// The keys the change concerns, in the order an operator reads them.
    key_ids: Vec<KeyId>,
    actor: &'a Actor,
    account_id: &'a AccountId,
    before: Snapshot,
    after: Snapshot,
    at: Timestamp,
}

fn audit_event(facts: EventFacts<'_>) -> Result<AuditEvent, AdminError> {
    Ok(AuditEvent {
        event_id: EventId::generate()?,
        action: facts.action,
        actor: facts.actor.clone(),
        account_id: facts.account_id.clone(),
        key_ids: facts.key_ids,
        before: facts.before,
        after: facts.after,
        at: facts.at,
    })
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

    /// When each key last authenticated a request, read from the key items (strongly
    /// consistent). A key whose item is gone (TTL) is absent from the answer.
    async fn last_uses(
        &self,
        keys: &[&StoredKey],
    ) -> Result<HashMap<KeyId, Option<Timestamp>>, StoreError> {
        let mut uses = HashMap::new();
        for chunk in keys.chunks(MAX_BATCH_GET) {
            let mut pending: Vec<HashMap<String, AttributeValue>> = chunk
                .iter()
                .map(|key| {
                    HashMap::from([(
                        PK.to_owned(),
                        AttributeValue::S(items::key::pk(&key.digest)),
                    )])
                })
                .collect();
            // Unprocessed keys come back to be asked for again; a bounded number of rounds.
            for _ in 0..5 {
                if pending.is_empty() {
                    break;
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .projection_expression("key_id, last_used_at")
                    .build()
                    .expect("keys are set");
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.clients_table, request)
                    .send()
                    .await
                    .map_err(|err| classify(err, Call::Read))?;
                for item in output
                    .responses
                    .and_then(|mut tables| tables.remove(&self.clients_table))
                    .unwrap_or_default()
                {
                    // A damaged key item costs its own `last_used_at`, not the listing.
                    match items::key::last_used(&item) {
                        Ok((id, at)) => {
                            uses.insert(id, at);
                        }
                        Err(err) => tracing::warn!(error = ?err, "key item unreadable"),
                    }
                }
                pending = output
                    .unprocessed_keys
                    .and_then(|mut tables| tables.remove(&self.clients_table))
                    .map(|left| left.keys)
                    .unwrap_or_default();
            }
            if !pending.is_empty() {
                return Err(StoreError::Unavailable(anyhow::anyhow!(
                    "{} key items still unprocessed after retries",
                    pending.len()
                )));
            }
        }
        Ok(uses)
    }

    /// An account and its keys, oldest first, with each key's state as of `now` and when it
    /// was last used.
    pub async fn account_keys(
        &self,
        id: &AccountId,
        now: Timestamp,
    ) -> Result<KeyListing, StoreError> {
        let record = self.read_account(id).await?;
        let uses = self
            .last_uses(&record.keys.iter().collect::<Vec<_>>())
            .await?;
        let keys = record
            .keys
            .iter()
            .map(|key| key.summary(now, uses.get(&key.key_id).copied().flatten()))
            .collect();
        Ok(KeyListing {
            account: record.account,
            rate_limit: RateLimitSetting::of(record.rate_limit),
            keys,
            malformed: record.malformed.into_iter().map(|bad| bad.name).collect(),
        })
    }

    /// The environment of the account's keys: that of its newest working key, else of its
    /// newest key; `None` for an account without a readable key. One read.
    pub async fn account_environment(
        &self,
        id: &AccountId,
        now: Timestamp,
    ) -> Result<Option<KeyEnvironment>, StoreError> {
        let record = self.read_account(id).await?;
        Ok(record
            .keys
            .iter()
            .rev()
            .find(|key| key.life.state_at(now).is_live())
            .or(record.keys.last())
            .map(|key| key.prefix.environment()))
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
    /// left without a working key. Refused, with nothing written, for a key of another
    /// environment than the account's keys, or beyond the live-key bound.
    pub async fn rotate_key(
        &self,
        account_id: &AccountId,
        new_key: &IssuedKey,
        grace: Duration,
        now: Timestamp,
        actor: &Actor,
    ) -> Result<Rotation, AdminError> {
        let record = self.read_account(account_id).await?;
        let plan = plan_rotation(&record, new_key, grace, now)?;
        let retiring_entries: Vec<&StoredKey> = record
            .keys
            .iter()
            .filter(|key| plan.retiring.iter().any(|r| r.key_id == key.key_id))
            .collect();
        let uses = self.last_uses(&retiring_entries).await?;
        let table = &self.clients_table;
        let settings = record.settings();
        let event = audit_event(EventFacts {
            action: AuditAction::KeyRotated,
            key_ids: std::iter::once(&new_key.key_id)
                .chain(plan.retiring.iter().map(|key| &key.key_id))
                .chain(plan.pruned.iter().map(|key| &key.key_id))
                .cloned()
                .collect(),
            actor,
            account_id,
            before: plan.before.clone(),
            after: plan.after.clone(),
            at: now,
        })?;
        let mut writes = vec![
            update(items::account::rotation_update(
                table,
                &record,
                new_key,
                &plan.retiring,
                &plan.pruned,
                plan.retire_at,
            )),
            put_new(table, items::key::new_item(account_id, settings, new_key)),
            put_new(table, items::key::new_ref_item(account_id, &new_key.key_id)),
            put_new(&self.audit_table, items::audit::new_item(&event)),
        ];
        writes.extend(
            plan.retiring
                .iter()
                .chain(plan.pruned.iter().filter(|key| {
                    // A pruned key that was revoked already needs no write.
                    record
                        .keys
                        .iter()
                        .any(|old| old.key_id == key.key_id && old.life.status != key.life.status)
                }))
                .map(|key| {
                    update(items::key::projection_update(
                        table, account_id, settings, key,
                    ))
                }),
        );
        self.transact(
            writes,
            Entity::Account,
            account_id.as_str(),
            FailedCondition::Changed,
        )
        .await?;

        let retiring: Vec<RetiringKey> = plan
            .retiring
            .iter()
            .map(|key| {
                let last_used_at = uses.get(&key.key_id).copied().flatten();
                RetiringKey {
                    key_id: key.key_id.clone(),
                    expires_at: plan.retire_at,
                    last_used_at,
                    recently_used: last_used_at.is_some_and(|at| at.plus(RECENT_USE) > now),
                }
            })
            .collect();
        log_event(&event);
        Ok(Rotation {
            account_id: account_id.clone(),
            new_key_id: new_key.key_id.clone(),
            new_key_prefix: new_key.prefix.clone(),
            retiring,
            pruned: plan.pruned.iter().map(|key| key.key_id.clone()).collect(),
        })
    }

    /// Revokes a key: it stops authenticating on the very next request. A key whose item
    /// the TTL deleted is revoked all the same (its item is written back, revoked).
    pub async fn revoke_key(
        &self,
        key_id: &KeyId,
        now: Timestamp,
        actor: &Actor,
    ) -> Result<(AccountId, Revocation), AdminError> {
        let account_id = self.key_account(key_id).await?;
        let record = self.read_account(&account_id).await?;
        let table = &self.clients_table;
        let (mut writes, before, after) = match plan_revocation(&record, key_id, now) {
            RevocationPlan::AlreadyRevoked => return Ok((account_id, Revocation::AlreadyRevoked)),
            RevocationPlan::NotOnAccount => {
                match record
                    .malformed
                    .iter()
                    .find(|bad| bad.name == key_id.as_str())
                {
                    Some(bad) => self.malformed_revocation(&record, bad, now).await?,
                    None => return Ok((account_id, Revocation::AlreadyGone)),
                }
            }
            RevocationPlan::Revoke { key, before, after } => (
                vec![
                    update(items::account::revocation_update(table, &record, &key)),
                    update(items::key::projection_update(
                        table,
                        &account_id,
                        record.settings(),
                        &key,
                    )),
                ],
                before,
                after,
            ),
        };
        let event = audit_event(EventFacts {
            action: AuditAction::KeyRevoked,
            key_ids: vec![key_id.clone()],
            actor,
            account_id: &account_id,
            before,
            after,
            at: now,
        })?;
        writes.push(put_new(&self.audit_table, items::audit::new_item(&event)));
        self.transact(
            writes,
            Entity::Account,
            account_id.as_str(),
            FailedCondition::Changed,
        )
        .await?;
        log_event(&event);
        Ok((account_id, Revocation::Revoked))
    }

    /// Whether the key items of malformed entries exist (only those are written to, so that
    /// no half-formed key item is ever created).
    async fn existing_items(
        &self,
        malformed: &[MalformedKey],
    ) -> Result<Vec<KeyDigest>, StoreError> {
        let mut existing = Vec::new();
        for digest in malformed.iter().filter_map(|bad| bad.digest.as_ref()) {
            if self
                .get_consistent(&self.clients_table, items::key::pk(digest))
                .await?
                .is_some()
            {
                existing.push(digest.clone());
            }
        }
        Ok(existing)
    }

    async fn malformed_revocation(
        &self,
        record: &AccountRecord,
        bad: &MalformedKey,
        now: Timestamp,
    ) -> Result<(Vec<TransactWriteItem>, Snapshot, Snapshot), StoreError> {
        let table = &self.clients_table;
        let mut writes = vec![update(items::account::malformed_revocation_update(
            table, record, &bad.name,
        ))];
        for digest in self.existing_items(std::slice::from_ref(bad)).await? {
            writes.push(update(items::key::revocation_update(table, &digest, now)));
        }
        let snapshot = Snapshot {
            account_status: Some(record.account.status),
            ..Snapshot::default()
        };
        Ok((writes, snapshot.clone(), snapshot))
    }

    /// Activates or deactivates an account: every key of it stops (or, unless revoked or
    /// expired, works again) on the very next request. See [`DynamoStore::change_account`].
    pub async fn set_account_status(
        &self,
        id: &AccountId,
        status: AccountStatus,
        now: Timestamp,
        actor: &Actor,
    ) -> Result<ChangeOutcome, AdminError> {
        self.change_account(id, AccountChange::Status(status), now, actor)
            .await
    }

    /// Sets the account's own request rate limit, or (`None`) returns it to the stack's
    /// default; it applies to every key on the very next request. See
    /// [`DynamoStore::change_account`].
    pub async fn set_rate_limit(
        &self,
        id: &AccountId,
        limit: Option<RateLimit>,
        now: Timestamp,
        actor: &Actor,
    ) -> Result<ChangeOutcome, AdminError> {
        self.change_account(id, AccountChange::RateLimit(limit), now, actor)
            .await
    }

    /// The one path of every account-wide change: the account item, the item of every key
    /// not revoked (each carries a copy of the settings for the auth step), the items of
    /// malformed entries that still exist, and the change's audit event, in one transaction
    /// conditional on the account's version. So the change applies to every key on the very
    /// next request, with its record, or not at all.
    async fn change_account(
        &self,
        id: &AccountId,
        change: AccountChange,
        now: Timestamp,
        actor: &Actor,
    ) -> Result<ChangeOutcome, AdminError> {
        let record = self.read_account(id).await?;
        let Some(plan) = plan_account_change(&record, change) else {
            return Ok(ChangeOutcome::Unchanged);
        };
        let table = &self.clients_table;
        let event = audit_event(EventFacts {
            key_ids: plan.keys.iter().map(|key| key.key_id.clone()).collect(),
            action: plan.action,
            actor,
            account_id: id,
            before: plan.before,
            after: plan.after,
            at: now,
        })?;
        let mut writes = vec![
            update(items::account::settings_update(
                table,
                &record,
                plan.settings,
            )),
            put_new(&self.audit_table, items::audit::new_item(&event)),
        ];
        writes.extend(
            plan.keys
                .iter()
                .map(|key| update(items::key::projection_update(table, id, plan.settings, key))),
        );
        for digest in self.existing_items(&record.malformed).await? {
            writes.push(update(items::key::settings_update(
                table,
                &digest,
                plan.settings,
            )));
        }
        self.transact(
            writes,
            Entity::Account,
            id.as_str(),
            FailedCondition::Changed,
        )
        .await?;
        log_event(&event);
        Ok(ChangeOutcome::Changed)
    }

    /// An account's audit events, newest first, at most `limit`.
    pub async fn audit_events(
        &self,
        id: &AccountId,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let mut events = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = (limit - events.len()).min(1000) as i32;
            let output = self
                .client
                .query()
                .table_name(&self.audit_table)
                .key_condition_expression("#pk = :account")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":account", AttributeValue::S(items::audit::pk(id)))
                .scan_index_forward(false)
                .consistent_read(true)
                .limit(page)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|err| classify(err, Call::Read))?;
            for item in output.items.unwrap_or_default() {
                events.push(items::audit::event_from_item(&item)?);
            }
            start = output.last_evaluated_key;
            if start.is_none() || events.len() >= limit {
                return Ok(events);
            }
        }
    }
}

/// The change's audit event, also as a log line (operators' stderr, function logs).
pub(super) fn log_event(event: &AuditEvent) {
    tracing::info!(
        target: "audit",
        event_id = %event.event_id,
        action = event.action.as_str(),
        actor = event.actor.as_str(),
        account_id = %event.account_id,
        key_ids = ?event.key_ids.iter().map(KeyId::as_str).collect::<Vec<_>>(),
        at = %event.at.to_rfc3339(),
        "audit event recorded"
    );
}
