//! An in-memory store for unit tests of handlers and the auth step.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::{
    CreateAccount, FindKey, InsertOutcome, InsertPayment, IssuedKey, KeyRecord, KeyStatus,
    StoredPayment,
};
use crate::api_key::KeyDigest;
use crate::domain::{Account, AccountId, AccountStatus, Payment, PaymentId};
use crate::error::ApiError;

#[derive(Default)]
pub struct MemoryStore {
    keys: Mutex<HashMap<KeyDigest, KeyRecord>>,
    accounts: Mutex<HashMap<AccountId, Account>>,
    /// In insertion order, with an index by payment id.
    payments: Mutex<(Vec<StoredPayment>, HashMap<PaymentId, usize>)>,
    lookups: AtomicUsize,
}

impl MemoryStore {
    /// How many key lookups reached the store.
    pub fn key_lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }

    pub fn payments(&self) -> Vec<Payment> {
        let payments = self.payments.lock().unwrap();
        payments
            .0
            .iter()
            .map(|stored| stored.payment.clone())
            .collect()
    }

    pub fn account(&self, id: &AccountId) -> Option<Account> {
        self.accounts.lock().unwrap().get(id).cloned()
    }

    pub fn set_status(&self, id: &AccountId, status: AccountStatus) {
        if let Some(account) = self.accounts.lock().unwrap().get_mut(id) {
            account.status = status;
        }
        for record in self.keys.lock().unwrap().values_mut() {
            if &record.account_id == id {
                record.account_status = status;
            }
        }
    }
}

impl FindKey for MemoryStore {
    async fn find_key(&self, digest: &KeyDigest) -> Result<Option<KeyRecord>, ApiError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        Ok(self.keys.lock().unwrap().get(digest).cloned())
    }
}

impl CreateAccount for MemoryStore {
    async fn create_account(&self, account: &Account, key: &IssuedKey) -> Result<(), ApiError> {
        let mut keys = self.keys.lock().unwrap();
        let mut accounts = self.accounts.lock().unwrap();
        if keys.contains_key(&key.digest) || accounts.contains_key(&account.id) {
            return Err(ApiError::Unexpected(anyhow::anyhow!(
                "duplicate account or key"
            )));
        }
        accounts.insert(account.id.clone(), account.clone());
        keys.insert(
            key.digest.clone(),
            KeyRecord {
                key_id: key.key_id.clone(),
                account_id: account.id.clone(),
                prefix: key.prefix.clone(),
                status: KeyStatus::Active,
                account_status: account.status,
                created_at: key.created_at,
                expires_at: None,
            },
        );
        Ok(())
    }
}

impl InsertPayment for MemoryStore {
    async fn insert_payment(
        &self,
        payment: &Payment,
        request_fingerprint: &str,
    ) -> Result<InsertOutcome, ApiError> {
        let mut guard = self.payments.lock().unwrap();
        let (payments, by_id) = &mut *guard;
        if let Some(&at) = by_id.get(&payment.id) {
            return Ok(InsertOutcome::Exists(payments[at].clone()));
        }
        by_id.insert(payment.id.clone(), payments.len());
        payments.push(StoredPayment {
            payment: payment.clone(),
            request_fingerprint: request_fingerprint.to_owned(),
        });
        Ok(InsertOutcome::Created)
    }
}
