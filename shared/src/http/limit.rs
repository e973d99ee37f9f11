//! The request rate limit step: after the auth step, before anything else a request does.
//!
//! Each execution environment keeps its own counts of each account's requests (see
//! [`RequestCounts`] for the rule and the bound it keeps) and reconciles them with the
//! account's shared count in DynamoDB in the background: the request never waits for a
//! report and never fails by one. A report that fails is logged and sent again with the
//! next; meanwhile the environment decides on what it knows, so a DynamoDB outage never
//! turns into refusals. Only authenticated requests reach this step, so a caller without a
//! valid key can never spend a real account's allowance.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::auth::AuthenticatedClient;
use super::error::ApiError;
use crate::domain::{AccountId, Decision, RateLimit, Report, RequestCounts, Timestamp};
use crate::store::CountRequests;

/// Accounts an environment tracks before it forgets those whose counts no longer matter.
const TRACKED_ACCOUNTS: usize = 1024;

/// One execution environment's request counts. Cheap to clone: clones share the counts.
#[derive(Clone)]
pub struct RateLimiter {
    default: RateLimit,
    counts: Arc<Mutex<HashMap<AccountId, RequestCounts>>>,
}

impl RateLimiter {
    /// A limiter applying `default` to accounts without a limit of their own.
    pub fn new(default: RateLimit) -> Self {
        RateLimiter {
            default,
            counts: Arc::default(),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<AccountId, RequestCounts>> {
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts the request against its account's limit, or refuses it with
    /// [`ApiError::RateLimited`] (not counted). When the account's counts are due for
    /// reconciliation, starts it in a task of its own.
    pub fn admit<S: CountRequests + Clone + 'static>(
        &self,
        client: &AuthenticatedClient,
        store: &S,
        now: Timestamp,
    ) -> Result<(), ApiError> {
        let limit = client.rate_limit.unwrap_or(self.default);
        let now_ms = now.unix_millis();
        let decision = {
            let mut counts = self.counts();
            if counts.len() >= TRACKED_ACCOUNTS {
                counts.retain(|_, counts| !counts.is_stale(now_ms));
            }
            counts
                .entry(client.account_id.clone())
                .or_default()
                .decide(now_ms, limit)
        };
        match decision {
            Decision::Admit(None) => Ok(()),
            Decision::Admit(Some(report)) => {
                self.report_in_background(&client.account_id, report, store);
                Ok(())
            }
            Decision::Refuse { retry_after } => {
                tracing::info!(
                    limit = limit.per_second(),
                    retry_after_ms = retry_after.as_millis() as u64,
                    "rate limited"
                );
                Err(ApiError::RateLimited { limit, retry_after })
            }
        }
    }

    /// Adds `report` to the account's shared count, and takes the total back into this
    /// environment's counts. In the request's span, so a failure is logged with its id; on
    /// the single-threaded runtime it runs while the request waits on DynamoDB, and finishes
    /// in the background if the response is ready first (as a key's use is recorded).
    fn report_in_background<S: CountRequests + Clone + 'static>(
        &self,
        account: &AccountId,
        report: Report,
        store: &S,
    ) {
        let limiter = self.clone();
        let account = account.clone();
        let store = store.clone();
        let span = tracing::Span::current();
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                let result = store
                    .count_requests(&account, report.window, report.count)
                    .await;
                let mut counts = limiter.counts();
                let Some(counts) = counts.get_mut(&account) else {
                    return;
                };
                match result {
                    Ok(total) => {
                        tracing::debug!(window = report.window, total, "request count reconciled");
                        counts.reported(report, total);
                    }
                    Err(err) => {
                        tracing::warn!(error = ?err, "request count not reconciled");
                        counts.not_reported(report);
                    }
                }
            },
            span,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{KeyId, KeyPrefix, WINDOW_MS};
    use crate::http::auth::KeyUse;
    use crate::store::memory::{MemoryStore, Operation};
    use crate::store::StoreError;
    use std::time::Duration;

    fn client(account: &AccountId, limit: Option<u32>) -> AuthenticatedClient {
        AuthenticatedClient {
            account_id: account.clone(),
            key_id: KeyId::generate().unwrap(),
            key_prefix: KeyPrefix::parse("sk_test_AAAA").unwrap(),
            key_use: KeyUse::default(),
            rate_limit: limit.map(|n| RateLimit::new(n.into()).unwrap()),
            permissions: crate::domain::Permissions::ALL,
            allowed_ips: crate::domain::IpAllowList::default(),
            expires_at: None,
        }
    }

    fn at_ms(ms: u64) -> Timestamp {
        Timestamp::from_datetime(
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap(),
        )
    }

    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    fn admitted(
        limiter: &RateLimiter,
        client: &AuthenticatedClient,
        store: &MemoryStore,
        now: Timestamp,
        n: usize,
    ) -> usize {
        (0..n)
            .filter(|_| limiter.admit(client, store, now).is_ok())
            .count()
    }

    #[tokio::test]
    async fn the_account_s_own_limit_wins_over_the_default() {
        let store = MemoryStore::default();
        let limiter = RateLimiter::new(RateLimit::new(10).unwrap());
        let account = AccountId::generate().unwrap();
        let other = AccountId::generate().unwrap();
        let now = at_ms(1_764_000_000_000);
        assert_eq!(
            admitted(&limiter, &client(&account, Some(3)), &store, now, 20),
            3
        );
        // Another account is not affected, and gets the default.
        assert_eq!(
            admitted(&limiter, &client(&other, None), &store, now, 20),
            10
        );
        match limiter.admit(&client(&account, Some(3)), &store, now) {
            Err(ApiError::RateLimited { limit, retry_after }) => {
                assert_eq!(limit.per_second(), 3);
                assert!(retry_after > Duration::ZERO);
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn reports_reach_the_shared_count_and_bring_back_the_others() {
        let store = MemoryStore::default();
        let account = AccountId::generate().unwrap();
        let who = client(&account, Some(10));
        let now = at_ms(1_764_000_000_000);
        let window = now.unix_millis() / WINDOW_MS;
        // Another environment has reported 8 of this window.
        store.count_requests(&account, window, 8).await.unwrap();
        let limiter = RateLimiter::new(RateLimit::DEFAULT);
        // The first request makes a report (the step is 1 for a limit of 10)...
        assert!(limiter.admit(&who, &store, now).is_ok());
        settle().await;
        assert_eq!(store.request_count(&account, window), 9);
        // ...which brings the other 8 in: room for one more.
        assert_eq!(admitted(&limiter, &who, &store, now, 5), 1);
    }

    #[tokio::test]
    async fn a_failing_or_hanging_count_never_fails_or_holds_a_request() {
        let store = MemoryStore::default();
        let account = AccountId::generate().unwrap();
        let who = client(&account, Some(5));
        let limiter = RateLimiter::new(RateLimit::DEFAULT);
        let now = at_ms(1_764_000_000_000);
        store.hang_next(Operation::CountRequests);
        assert!(limiter.admit(&who, &store, now).is_ok());
        settle().await;
        // The environment goes on deciding by its own counts.
        assert_eq!(admitted(&limiter, &who, &store, now, 10), 4);

        let store = MemoryStore::default();
        let limiter = RateLimiter::new(RateLimit::DEFAULT);
        store.fail_next(
            Operation::CountRequests,
            StoreError::Unavailable(anyhow::anyhow!("down")),
        );
        assert!(limiter.admit(&who, &store, now).is_ok());
        settle().await;
        assert_eq!(
            store.request_count(&account, now.unix_millis() / WINDOW_MS),
            0
        );
        // The failed report goes again with the next one, a second later.
        let later = at_ms(now.unix_millis() + 1000);
        assert!(limiter.admit(&who, &store, later).is_ok());
        settle().await;
        assert_eq!(
            store.request_count(&account, later.unix_millis() / WINDOW_MS),
            2
        );
    }

    #[tokio::test]
    async fn idle_accounts_are_forgotten_once_many_are_tracked() {
        let store = MemoryStore::default();
        let limiter = RateLimiter::new(RateLimit::new(1000).unwrap());
        let now = at_ms(1_764_000_000_000);
        for _ in 0..TRACKED_ACCOUNTS {
            let account = AccountId::generate().unwrap();
            assert!(limiter.admit(&client(&account, None), &store, now).is_ok());
        }
        assert_eq!(limiter.counts().len(), TRACKED_ACCOUNTS);
        let later = at_ms(now.unix_millis() + 2 * WINDOW_MS);
        let account = AccountId::generate().unwrap();
        assert!(limiter
            .admit(&client(&account, None), &store, later)
            .is_ok());
        assert_eq!(limiter.counts().len(), 1);
    }
}
