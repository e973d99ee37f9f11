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
    plan_account_change, plan_new_key, plan_revocation, AccountChange, AccountRecord, ActingKey,
    AdminError, ChangeOutcome, KeyListing, KeyMint, KeySummary, MalformedKey, Origin, Refusal,
    Retire, RetiringKey, Revocation, RevocationPlan, Rolled, Rotation, RotationPlan, StoredKey,
    RECENT_USE,
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
    origin: Origin<'a>,
    account_id: &'a AccountId,
    before: Snapshot,
    after: Snapshot,
    at: Timestamp,
}

fn audit_event(facts: EventFacts<'_>) -> Result<AuditEvent, AdminError> {
    Ok(AuditEvent {
        event_id: EventId::generate()?,
        action: facts.action,
        actor: facts.origin.actor.clone(),
        account_id: facts.account_id.clone(),
        key_ids: facts.key_ids,
        before: facts.before,
        after: facts.after,
        at: facts.at,
        request_id: facts.origin.request_id.map(str::to_owned),
    })
}

/// How many times a self-service key change is planned again after another change to the
/// account won the race: each attempt reads the account afresh, so the last one answers by
/// the state the winner left (a second roll of one key finds it expiring: 409).
const CONFLICT_ATTEMPTS: usize = 3;

async fn retrying_conflicts<T, F, Fut>(mut once: F) -> Result<T, AdminError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AdminError>>,
{
    for _ in 1..CONFLICT_ATTEMPTS {
        match once().await {
            Err(AdminError::Store(StoreError::ChangedConcurrently { .. })) => continue,
            other => return other,
        }
    }
    once().await
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

    /// Issues `new_key`, a secret key, to the account and gives every secret key that still
    /// authenticates a grace period: it stops at `now + grace` (`grace` = 0: at once). The
    /// new key and the old keys' expiry are written in one transaction, so at no instant is
    /// the account left without a working key. Refused, with nothing written, for a key of
    /// another environment than the account's keys, or beyond the live-key bound.
    pub async fn rotate_key(
        &self,
        account_id: &AccountId,
        new_key: &IssuedKey,
        grace: Duration,
        now: Timestamp,
        actor: &Actor,
    ) -> Result<Rotation, AdminError> {
        let record = self.read_account(account_id).await?;
        let plan = self
            .write_new_key(
                &record,
                new_key,
                Retire::SecretKeys { grace },
                AuditAction::KeyRotated,
                now,
                Origin::operator(actor),
            )
            .await?;
        let retiring_entries: Vec<&StoredKey> = record
            .keys
            .iter()
            .filter(|key| plan.retiring.iter().any(|r| r.key_id == key.key_id))
            .collect();
        // The rotation did not touch `last_used_at`: this is each key's last use before it.
        let uses = self.last_uses(&retiring_entries).await?;
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
        Ok(Rotation {
            account_id: account_id.clone(),
            new_key_id: new_key.key_id.clone(),
            new_key_prefix: new_key.prefix.clone(),
            retiring,
            pruned: plan.pruned.iter().map(|key| key.key_id.clone()).collect(),
        })
    }

    /// Adds `new_key` (a restricted key, from `POST /keys` or `keys create`) beside the
    /// account's other keys. With `acting`, refused unless that key holds every permission
    /// and address it grants.
    pub async fn create_key(
        &self,
        account_id: &AccountId,
        new_key: &IssuedKey,
        acting: Option<ActingKey<'_>>,
        now: Timestamp,
        origin: Origin<'_>,
    ) -> Result<KeySummary, AdminError> {
        retrying_conflicts(|| self.create_key_once(account_id, new_key, acting, now, origin)).await
    }

    async fn create_key_once(
        &self,
        account_id: &AccountId,
        new_key: &IssuedKey,
        acting: Option<ActingKey<'_>>,
        now: Timestamp,
        origin: Origin<'_>,
    ) -> Result<KeySummary, AdminError> {
        if let Some(acting) = acting {
            acting.may_create(&new_key.grant)?;
        }
        let record = self.read_account(account_id).await?;
        self.write_new_key(
            &record,
            new_key,
            Retire::Nothing,
            AuditAction::KeyCreated,
            now,
            origin,
        )
        .await?;
        Ok(StoredKey::issued(new_key).summary(now, None))
    }

    /// Replaces the active key `key_id` with a new one of the same kind, name, permissions,
    /// IP ranges and expiry, minted by `mint`; the old key stops after `grace`. With
    /// `acting`, the rules of [`ActingKey::may_roll`]. Answers the new key (with its secret)
    /// and the old one as the roll left it.
    #[allow(clippy::too_many_arguments)]
    pub async fn roll_key(
        &self,
        account_id: &AccountId,
        key_id: &KeyId,
        grace: Duration,
        mint: &KeyMint<'_>,
        acting: Option<ActingKey<'_>>,
        now: Timestamp,
        origin: Origin<'_>,
    ) -> Result<Rolled, AdminError> {
        retrying_conflicts(|| {
            self.roll_key_once(account_id, key_id, grace, mint, acting, now, origin)
        })
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn roll_key_once(
        &self,
        account_id: &AccountId,
        key_id: &KeyId,
        grace: Duration,
        mint: &KeyMint<'_>,
        acting: Option<ActingKey<'_>>,
        now: Timestamp,
        origin: Origin<'_>,
    ) -> Result<Rolled, AdminError> {
        let record = self.read_account(account_id).await?;
        let old = match acting {
            Some(acting) => acting.may_roll(&record, key_id, grace, now)?,
            None => record
                .keys
                .iter()
                .find(|key| &key.key_id == key_id)
                .ok_or(Refusal::KeyNotFound)?,
        };
        let (api_key, new_key) = mint.replacement(old, now)?;
        let plan = self
            .write_new_key(
                &record,
                &new_key,
                Retire::Key { key_id, grace },
                AuditAction::KeyRolled,
                now,
                origin,
            )
            .await?;
        let old_now = plan
            .retiring
            .iter()
            .find(|key| &key.key_id == key_id)
            .expect("a roll retires the rolled key");
        Ok(Rolled {
            api_key,
            new_key: StoredKey::issued(&new_key).summary(now, None),
            old_key: old_now.summary(now, None),
        })
    }

    /// The one path of every new key: its entry on the account item (with the retiring
    /// keys' new end and the pruned entries dropped), its key item and key reference item,
    /// the retiring and pruned keys' items, and the change's audit event, in one
    /// transaction conditional on the account's version. So the new key works, and the old
    /// ones stop, from the very next request, with the record, or not at all.
    async fn write_new_key(
        &self,
        record: &AccountRecord,
        new_key: &IssuedKey,
        retire: Retire<'_>,
        action: AuditAction,
        now: Timestamp,
        origin: Origin<'_>,
    ) -> Result<RotationPlan, AdminError> {
        let plan = plan_new_key(record, new_key, retire, now)?;
        let account_id = &record.account.id;
        let table = &self.clients_table;
        let settings = record.settings();
        let event = audit_event(EventFacts {
            action,
            key_ids: std::iter::once(&new_key.key_id)
                .chain(plan.retiring.iter().map(|key| &key.key_id))
                .chain(plan.pruned.iter().map(|key| &key.key_id))
                .cloned()
                .collect(),
            origin,
            account_id,
            before: plan.before.clone(),
            after: plan.after.clone(),
            at: now,
        })?;
        let mut writes = vec![
            update(items::account::rotation_update(
                table,
                record,
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
        log_event(&event);
        Ok(plan)
    }

    /// Revokes a key (an operator's `keys revoke`, found by its id alone): it stops
    /// authenticating on the very next request. A key whose item the TTL deleted is revoked
    /// all the same (its item is written back, revoked).
    pub async fn revoke_key(
        &self,
        key_id: &KeyId,
        now: Timestamp,
        actor: &Actor,
    ) -> Result<(AccountId, Revocation), AdminError> {
        let account_id = self.key_account(key_id).await?;
        let record = self.read_account(&account_id).await?;
        // The writes of the revocation, and its audit snapshots; none when nothing is left
        // to revoke.
        let change = match plan_revocation(&record, key_id, now) {
            RevocationPlan::AlreadyRevoked => return Ok((account_id, Revocation::AlreadyRevoked)),
            RevocationPlan::NotOnAccount => {
                let Some(bad) = record
                    .malformed
                    .iter()
                    .find(|bad| bad.name == key_id.as_str())
                else {
                    return Ok((account_id, Revocation::AlreadyGone));
                };
                self.malformed_revocation(&record, bad, now).await?
            }
            RevocationPlan::Revoke {
                key,
                reinstated,
                before,
                after,
            } => (
                self.revocation_writes(&record, &key, reinstated.as_ref()),
                before,
                after,
            ),
        };
        let (writes, before, after) = change;
        self.write_revocation(
            &record,
            key_id,
            writes,
            before,
            after,
            now,
            Origin::operator(actor),
        )
        .await?;
        let outcome = Revocation::Revoked;
        Ok((account_id, outcome))
    }

    /// Revokes the account's key `key_id` for one of its own keys (`DELETE /keys/{id}`), by
    /// the rules of [`ActingKey::may_revoke`]. Answers the key as it now stands (revoked);
    /// a key revoked already is answered as it is, with nothing written.
    pub async fn revoke_own_key(
        &self,
        account_id: &AccountId,
        key_id: &KeyId,
        acting: ActingKey<'_>,
        now: Timestamp,
        origin: Origin<'_>,
    ) -> Result<KeySummary, AdminError> {
        retrying_conflicts(|| self.revoke_own_key_once(account_id, key_id, acting, now, origin))
            .await
    }

    async fn revoke_own_key_once(
        &self,
        account_id: &AccountId,
        key_id: &KeyId,
        acting: ActingKey<'_>,
        now: Timestamp,
        origin: Origin<'_>,
    ) -> Result<KeySummary, AdminError> {
        let record = self.read_account(account_id).await?;
        let key = acting.may_revoke(&record, key_id, now)?;
        match plan_revocation(&record, key_id, now) {
            RevocationPlan::Revoke {
                key: revoked,
                reinstated,
                before,
                after,
            } => {
                let writes = self.revocation_writes(&record, &revoked, reinstated.as_ref());
                self.write_revocation(&record, key_id, writes, before, after, now, origin)
                    .await?;
                Ok(revoked.summary(now, None))
            }
            RevocationPlan::AlreadyRevoked | RevocationPlan::NotOnAccount => {
                Ok(key.summary(now, None))
            }
        }
    }

    /// A revocation's writes: the key's entry and its item, and those of the key it
    /// reinstates.
    fn revocation_writes(
        &self,
        record: &AccountRecord,
        revoked: &StoredKey,
        reinstated: Option<&StoredKey>,
    ) -> Vec<TransactWriteItem> {
        let table = &self.clients_table;
        let project = |key: &StoredKey| {
            update(items::key::projection_update(
                table,
                &record.account.id,
                record.settings(),
                key,
            ))
        };
        let mut writes = vec![
            update(items::account::revocation_update(
                table, record, revoked, reinstated,
            )),
            project(revoked),
        ];
        writes.extend(reinstated.map(project));
        writes
    }

    /// The one path of every revocation: `writes` and the audit event in one transaction
    /// conditional on the account's version.
    #[allow(clippy::too_many_arguments)]
    async fn write_revocation(
        &self,
        record: &AccountRecord,
        key_id: &KeyId,
        mut writes: Vec<TransactWriteItem>,
        before: Snapshot,
        after: Snapshot,
        now: Timestamp,
        origin: Origin<'_>,
    ) -> Result<(), AdminError> {
        let account_id = &record.account.id;
        let event = audit_event(EventFacts {
            action: AuditAction::KeyRevoked,
            key_ids: vec![key_id.clone()],
            origin,
            account_id,
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
        Ok(())
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
            origin: Origin::operator(actor),
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

impl super::ListKeys for DynamoStore {
    async fn account_keys(
        &self,
        account: &AccountId,
        now: Timestamp,
    ) -> Result<KeyListing, StoreError> {
        DynamoStore::account_keys(self, account, now).await
    }
}

impl super::CreateKey for DynamoStore {
    async fn create_key(
        &self,
        account: &AccountId,
        new_key: &IssuedKey,
        acting: Option<ActingKey<'_>>,
        now: Timestamp,
        origin: Origin<'_>,
    ) -> Result<KeySummary, AdminError> {
        DynamoStore::create_key(self, account, new_key, acting, now, origin).await
    }
}

impl super::RollKey for DynamoStore {
    #[allow(clippy::too_many_arguments)]
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
        DynamoStore::roll_key(self, account, key_id, grace, mint, acting, now, origin).await
    }
}

impl super::RevokeKey for DynamoStore {
    async fn revoke_own_key(
        &self,
        account: &AccountId,
        key_id: &KeyId,
        acting: ActingKey<'_>,
        now: Timestamp,
        origin: Origin<'_>,
    ) -> Result<KeySummary, AdminError> {
        DynamoStore::revoke_own_key(self, account, key_id, acting, now, origin).await
    }
}
