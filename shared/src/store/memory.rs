//! An in-memory store for unit tests of handlers and the auth step (feature `test-support`;
//! never in a release binary). It keeps the same contracts as DynamoDB: conditional writes
//! that never overwrite, the stored item handed back when a payment id is taken, and lists
//! in the index's order (newest first, by creation time and then id) with the same bounds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use std::time::Duration;

use super::error::{Entity, StoreError};
use super::lifecycle::{
    plan_new_key, plan_revocation, AccountRecord, ActingKey, AdminError, KeyListing, KeyMint,
    KeySummary, Origin, Refusal, Retire, RevocationPlan, Rolled, RotationPlan, StoredKey,
};
use super::{
    CreateAccount, CreateKey, FindKey, GetPayment, InsertOutcome, InsertPayment, IssuedKey,
    KeyRecord, ListCursor, ListKeys, ListPayments, ListPosition, ListRange, PaymentPage,
    PublishDemand, RecordKeyUse, RevokeKey, RollKey, StoredPayment,
};
use crate::domain::{
    Account, AccountId, AccountStatus, AuditAction, AuditEvent, Claim, EnvironmentId, EventId,
    KeyDigest, KeyId, KeyLife, Payment, PaymentId, RateLimit, RateLimitSetting, Report,
    RequestFingerprint, Timestamp,
};

/// Cheap to clone: clones share one store (as clones of a DynamoDB client share tables).
#[derive(Default, Clone)]
pub struct MemoryStore(Arc<Stored>);

impl std::ops::Deref for MemoryStore {
    type Target = Stored;

    fn deref(&self) -> &Stored {
        &self.0
    }
}

/// What a [`MemoryStore`] holds.
#[derive(Default)]
pub struct Stored {
    keys: Mutex<HashMap<KeyDigest, KeyRecord>>,
    accounts: Mutex<HashMap<AccountId, Account>>,
    /// Each account with its key entries, as the account item holds them: the key items
    /// above are their projections.
    records: Mutex<HashMap<AccountId, AccountRecord>>,
    /// In insertion order, with an index by payment id.
    payments: Mutex<(Vec<StoredPayment>, HashMap<PaymentId, usize>)>,
    lookups: AtomicUsize,
    audit: Mutex<Vec<AuditEvent>>,
    /// Each account's demand item: every environment's latest claim.
    claims: Mutex<HashMap<AccountId, HashMap<EnvironmentId, Claim>>>,
    /// What the next calls of each operation do instead of their work.
    failures: Mutex<Vec<(Operation, Injected)>>,
    /// How many calls of each operation reached the store.
    calls: Mutex<HashMap<Operation, usize>>,
}

enum Injected {
    Fail(StoreError),
    /// Never answer, as a DynamoDB that accepted the connection and went quiet.
    Hang,
}

/// A store operation, for injecting a failure into the next call of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    FindKey,
    CreateAccount,
    InsertPayment,
    GetPayment,
    ListPayments,
    RecordKeyUse,
    PublishDemand,
    ListKeys,
    CreateKey,
    RollKey,
    RevokeKey,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MemoryStore {
    /// How many key lookups reached the store.
    pub fn key_lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }

    pub fn payments(&self) -> Vec<Payment> {
        lock(&self.payments)
            .0
            .iter()
            .map(|stored| stored.payment.clone())
            .collect()
    }

    pub fn account(&self, id: &AccountId) -> Option<Account> {
        lock(&self.accounts).get(id).cloned()
    }

    /// The audit events written, oldest first.
    pub fn audit_events(&self) -> Vec<AuditEvent> {
        lock(&self.audit).clone()
    }

    /// A stored key as the auth step reads it.
    pub fn key(&self, digest: &KeyDigest) -> Option<KeyRecord> {
        lock(&self.keys).get(digest).cloned()
    }

    /// How many calls of `operation` reached the store.
    pub fn calls(&self, operation: Operation) -> usize {
        lock(&self.calls).get(&operation).copied().unwrap_or(0)
    }

    /// How many calls of any operation reached the store.
    pub fn all_calls(&self) -> usize {
        lock(&self.calls).values().sum()
    }

    /// Makes the next call of `operation` fail with `error`, doing nothing.
    pub fn fail_next(&self, operation: Operation, error: StoreError) {
        lock(&self.failures).push((operation, Injected::Fail(error)));
    }

    /// Makes the next call of `operation` never return.
    pub fn hang_next(&self, operation: Operation) {
        lock(&self.failures).push((operation, Injected::Hang));
    }

    /// Counts the call, then does what was injected for it, if anything.
    async fn injected_failure(&self, operation: Operation) -> Result<(), StoreError> {
        *lock(&self.calls).entry(operation).or_default() += 1;
        let injected = {
            let mut failures = lock(&self.failures);
            failures
                .iter()
                .position(|(op, _)| *op == operation)
                .map(|at| failures.remove(at).1)
        };
        match injected {
            None => Ok(()),
            Some(Injected::Fail(error)) => Err(error),
            Some(Injected::Hang) => std::future::pending().await,
        }
    }

    pub fn set_status(&self, id: &AccountId, status: AccountStatus) {
        if let Some(account) = lock(&self.accounts).get_mut(id) {
            account.status = status;
        }
        if let Some(record) = lock(&self.records).get_mut(id) {
            record.account.status = status;
        }
        for record in lock(&self.keys).values_mut() {
            if &record.account_id == id {
                record.account_status = status;
            }
        }
    }

    /// Gives every key of the account its own rate limit, as `accounts set-limit` would.
    pub fn set_rate_limit(&self, id: &AccountId, limit: Option<RateLimit>) {
        if let Some(record) = lock(&self.records).get_mut(id) {
            record.rate_limit = limit;
        }
        for record in lock(&self.keys).values_mut() {
            if &record.account_id == id {
                record.rate_limit = limit;
            }
        }
    }

    /// The claims an account's demand item holds.
    pub fn claims(&self, id: &AccountId) -> Vec<Claim> {
        lock(&self.claims)
            .get(id)
            .map(|item| item.values().copied().collect())
            .unwrap_or_default()
    }

    /// Changes a stored key's life (revocation, expiry), as key administration would.
    pub fn set_key_life(&self, digest: &KeyDigest, life: KeyLife) {
        if let Some(record) = lock(&self.keys).get_mut(digest) {
            record.life = life;
        }
        for record in lock(&self.records).values_mut() {
            for key in record.keys.iter_mut().filter(|key| &key.digest == digest) {
                key.life = life;
            }
        }
    }

    /// An account with its key entries, as the account item would hold them.
    pub fn account_record(&self, id: &AccountId) -> Option<AccountRecord> {
        lock(&self.records).get(id).cloned()
    }

    /// The key item of `key` as the account's settings and its entry make it, keeping its
    /// last use (what `projection_update` writes in DynamoDB).
    fn project(&self, record: &AccountRecord, key: &StoredKey) {
        let mut keys = lock(&self.keys);
        let last_used_at = keys.get(&key.digest).and_then(|item| item.last_used_at);
        keys.insert(
            key.digest.clone(),
            KeyRecord {
                key_id: key.key_id.clone(),
                account_id: record.account.id.clone(),
                prefix: key.prefix.clone(),
                life: key.life,
                account_status: record.account.status,
                created_at: key.created_at,
                last_used_at,
                rate_limit: record.rate_limit,
                permissions: key.permissions,
                allowed_ips: key.allowed_ips.clone(),
            },
        );
    }

    fn record_of(&self, id: &AccountId) -> Result<AccountRecord, StoreError> {
        self.account_record(id).ok_or_else(|| StoreError::NotFound {
            entity: Entity::Account,
            id: id.to_string(),
        })
    }

    /// Writes a plan's entries back (the record read at `version` must still be current, as
    /// the account item's version condition demands), and projects every key it touched.
    fn commit(
        &self,
        mut record: AccountRecord,
        touched: Vec<StoredKey>,
        event: AuditEvent,
    ) -> Result<(), StoreError> {
        {
            let mut records = lock(&self.records);
            let current = records.get(&record.account.id).map(|r| r.version);
            if current != Some(record.version) {
                return Err(StoreError::ChangedConcurrently {
                    entity: Entity::Account,
                    id: record.account.id.to_string(),
                });
            }
            for key in &touched {
                match record.keys.iter_mut().find(|old| old.key_id == key.key_id) {
                    Some(old) => *old = key.clone(),
                    None => record.keys.push(key.clone()),
                }
            }
            record
                .keys
                .sort_by(|a, b| (a.created_at, &a.key_id).cmp(&(b.created_at, &b.key_id)));
            record.version += 1;
            records.insert(record.account.id.clone(), record.clone());
        }
        for key in &touched {
            self.project(&record, key);
        }
        lock(&self.audit).push(event);
        Ok(())
    }

    fn add_key(
        &self,
        record: AccountRecord,
        new_key: &IssuedKey,
        retire: Retire<'_>,
        action: AuditAction,
        now: Timestamp,
        origin: Origin<'_>,
    ) -> Result<RotationPlan, AdminError> {
        let plan = plan_new_key(&record, new_key, retire, now)?;
        let key_ids = std::iter::once(&new_key.key_id)
            .chain(plan.retiring.iter().map(|key| &key.key_id))
            .chain(plan.pruned.iter().map(|key| &key.key_id))
            .cloned()
            .collect();
        let event = audit_event(&record, action, key_ids, &plan, now, origin)?;
        let account_id = record.account.id.clone();
        let mut record = record;
        record
            .keys
            .retain(|key| plan.pruned.iter().all(|pruned| pruned.key_id != key.key_id));
        let mut touched = vec![StoredKey::issued(new_key)];
        touched.extend(plan.retiring.iter().cloned());
        self.commit(record, touched, event)?;
        // A pruned key's item stays, revoked, as in DynamoDB.
        if let Some(record) = self.account_record(&account_id) {
            for pruned in &plan.pruned {
                self.project(&record, pruned);
            }
        }
        Ok(plan)
    }

    /// Stores a payment as if an earlier request had written it.
    pub fn put_payment(&self, payment: Payment, request_fingerprint: RequestFingerprint) {
        let mut guard = lock(&self.payments);
        let (payments, by_id) = &mut *guard;
        by_id.insert(payment.id.clone(), payments.len());
        payments.push(StoredPayment {
            payment,
            request_fingerprint,
        });
    }
}

/// The audit event of a key change, as the DynamoDB store writes it in the same
/// transaction.
fn audit_event(
    record: &AccountRecord,
    action: AuditAction,
    key_ids: Vec<KeyId>,
    plan: &RotationPlan,
    now: Timestamp,
    origin: Origin<'_>,
) -> Result<AuditEvent, AdminError> {
    revocation_event(
        record,
        action,
        key_ids,
        plan.before.clone(),
        plan.after.clone(),
        now,
        origin,
    )
}

#[allow(clippy::too_many_arguments)]
fn revocation_event(
    record: &AccountRecord,
    action: AuditAction,
    key_ids: Vec<KeyId>,
    before: crate::domain::Snapshot,
    after: crate::domain::Snapshot,
    now: Timestamp,
    origin: Origin<'_>,
) -> Result<AuditEvent, AdminError> {
    Ok(AuditEvent {
        event_id: EventId::generate()?,
        action,
        actor: origin.actor.clone(),
        account_id: record.account.id.clone(),
        key_ids,
        before,
        after,
        at: now,
        request_id: origin.request_id.map(str::to_owned),
    })
}

impl ListKeys for MemoryStore {
    async fn account_keys(
        &self,
        account: &AccountId,
        now: Timestamp,
    ) -> Result<KeyListing, StoreError> {
        self.injected_failure(Operation::ListKeys).await?;
        let record = self.record_of(account)?;
        let keys = lock(&self.keys);
        Ok(KeyListing {
            rate_limit: RateLimitSetting::of(record.rate_limit),
            keys: record
                .keys
                .iter()
                .map(|key| {
                    key.summary(
                        now,
                        keys.get(&key.digest).and_then(|item| item.last_used_at),
                    )
                })
                .collect(),
            malformed: Vec::new(),
            account: record.account,
        })
    }
}

impl CreateKey for MemoryStore {
    async fn create_key(
        &self,
        account: &AccountId,
        new_key: &IssuedKey,
        acting: Option<ActingKey<'_>>,
        now: Timestamp,
        origin: Origin<'_>,
    ) -> Result<KeySummary, AdminError> {
        self.injected_failure(Operation::CreateKey).await?;
        if let Some(acting) = acting {
            acting.may_create(&new_key.grant)?;
        }
        let record = self.record_of(account)?;
        self.add_key(
            record,
            new_key,
            Retire::Nothing,
            AuditAction::KeyCreated,
            now,
            origin,
        )?;
        Ok(StoredKey::issued(new_key).summary(now, None))
    }
}

impl RollKey for MemoryStore {
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
        self.injected_failure(Operation::RollKey).await?;
        let record = self.record_of(account)?;
        let old = match acting {
            Some(acting) => acting.may_roll(&record, key_id, grace, now)?.clone(),
            None => record
                .keys
                .iter()
                .find(|key| &key.key_id == key_id)
                .cloned()
                .ok_or(Refusal::KeyNotFound)?,
        };
        let (api_key, new_key) = mint.replacement(&old, now)?;
        let plan = self.add_key(
            record,
            &new_key,
            Retire::Key { key_id, grace },
            AuditAction::KeyRolled,
            now,
            origin,
        )?;
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
}

impl RevokeKey for MemoryStore {
    async fn revoke_own_key(
        &self,
        account: &AccountId,
        key_id: &KeyId,
        acting: ActingKey<'_>,
        now: Timestamp,
        origin: Origin<'_>,
    ) -> Result<KeySummary, AdminError> {
        self.injected_failure(Operation::RevokeKey).await?;
        let record = self.record_of(account)?;
        let key = acting.may_revoke(&record, key_id, now)?.clone();
        match plan_revocation(&record, key_id, now) {
            RevocationPlan::Revoke {
                key: revoked,
                reinstated,
                before,
                after,
            } => {
                let event = revocation_event(
                    &record,
                    AuditAction::KeyRevoked,
                    vec![key_id.clone()],
                    before,
                    after,
                    now,
                    origin,
                )?;
                let summary = revoked.summary(now, None);
                let touched = std::iter::once(revoked).chain(reinstated).collect();
                self.commit(record, touched, event)?;
                Ok(summary)
            }
            RevocationPlan::AlreadyRevoked | RevocationPlan::NotOnAccount => {
                Ok(key.summary(now, None))
            }
        }
    }
}

impl FindKey for MemoryStore {
    async fn find_key(&self, digest: &KeyDigest) -> Result<Option<KeyRecord>, StoreError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        self.injected_failure(Operation::FindKey).await?;
        Ok(lock(&self.keys).get(digest).cloned())
    }
}

impl RecordKeyUse for MemoryStore {
    async fn record_key_use(
        &self,
        digest: &KeyDigest,
        at: Timestamp,
        stale_before: Timestamp,
    ) -> Result<(), StoreError> {
        self.injected_failure(Operation::RecordKeyUse).await?;
        if let Some(record) = lock(&self.keys).get_mut(digest) {
            if record.last_used_at.is_none_or(|used| used < stale_before) {
                record.last_used_at = Some(at);
            }
        }
        Ok(())
    }
}

impl PublishDemand for MemoryStore {
    async fn publish_demand(
        &self,
        account: &AccountId,
        report: &Report,
    ) -> Result<Vec<Claim>, StoreError> {
        self.injected_failure(Operation::PublishDemand).await?;
        let mut claims = lock(&self.claims);
        let item = claims.entry(account.clone()).or_default();
        for gone in &report.expired {
            item.remove(gone);
        }
        item.insert(report.claim.environment, report.claim);
        Ok(item.values().copied().collect())
    }
}

impl CreateAccount for MemoryStore {
    async fn create_account(
        &self,
        account: &Account,
        key: &IssuedKey,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        self.injected_failure(Operation::CreateAccount).await?;
        let record = AccountRecord {
            account: account.clone(),
            version: 1,
            rate_limit: None,
            keys: vec![StoredKey::issued(key)],
            malformed: Vec::new(),
        };
        {
            let keys = lock(&self.keys);
            let mut accounts = lock(&self.accounts);
            if keys.contains_key(&key.digest) || accounts.contains_key(&account.id) {
                return Err(StoreError::ConditionFailed {
                    entity: Entity::Account,
                    id: account.id.to_string(),
                });
            }
            accounts.insert(account.id.clone(), account.clone());
            lock(&self.records).insert(account.id.clone(), record.clone());
        }
        self.project(&record, &record.keys[0]);
        lock(&self.audit).push(event.clone());
        Ok(())
    }
}

impl InsertPayment for MemoryStore {
    async fn insert_payment(
        &self,
        payment: &Payment,
        request_fingerprint: &RequestFingerprint,
    ) -> Result<InsertOutcome, StoreError> {
        self.injected_failure(Operation::InsertPayment).await?;
        let mut guard = lock(&self.payments);
        let (payments, by_id) = &mut *guard;
        if let Some(&at) = by_id.get(&payment.id) {
            return Ok(InsertOutcome::Exists(payments[at].clone()));
        }
        by_id.insert(payment.id.clone(), payments.len());
        payments.push(StoredPayment {
            payment: payment.clone(),
            request_fingerprint: request_fingerprint.clone(),
        });
        Ok(InsertOutcome::Created)
    }
}

impl GetPayment for MemoryStore {
    async fn get_payment(&self, id: &PaymentId) -> Result<Option<StoredPayment>, StoreError> {
        self.injected_failure(Operation::GetPayment).await?;
        let guard = lock(&self.payments);
        let (payments, by_id) = &*guard;
        Ok(by_id.get(id).map(|&at| payments[at].clone()))
    }
}

impl ListPayments for MemoryStore {
    async fn list_payments(
        &self,
        account: &AccountId,
        range: &ListRange,
    ) -> Result<PaymentPage, StoreError> {
        self.injected_failure(Operation::ListPayments).await?;
        let mut listed: Vec<Payment> = lock(&self.payments)
            .0
            .iter()
            .map(|stored| &stored.payment)
            .filter(|payment| &payment.client_id == account)
            .filter(|payment| {
                range
                    .created_gte
                    .is_none_or(|gte| payment.created_at >= gte)
            })
            .filter(|payment| {
                range
                    .created_lte
                    .is_none_or(|lte| payment.created_at <= lte)
            })
            .filter(|payment| match &range.cursor {
                None => true,
                Some(ListCursor::After(cursor)) => &ListPosition::of(payment) < cursor,
                Some(ListCursor::Before(cursor)) => &ListPosition::of(payment) > cursor,
            })
            .cloned()
            .collect();
        listed.sort_by_key(|payment| std::cmp::Reverse(ListPosition::of(payment)));
        // Read from the cursor outwards, as the index is: the newest first, or after an
        // `ending_before` the ones just newer than the cursor.
        if matches!(range.cursor, Some(ListCursor::Before(_))) {
            listed.reverse();
        }
        let has_more = listed.len() > range.limit;
        listed.truncate(range.limit);
        if matches!(range.cursor, Some(ListCursor::Before(_))) {
            listed.reverse();
        }
        Ok(PaymentPage {
            payments: listed,
            has_more,
        })
    }
}
