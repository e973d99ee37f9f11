//! The request rate limit step: after the auth step, before anything else a request does.
//!
//! Each execution environment keeps its own counts and share of each account's limit (see
//! [`AccountShare`] for the rule and the bounds it keeps) and publishes its demand to the
//! account's shared item in the background: the request never waits for a report and never
//! fails by one. A report that fails or hangs leaves the environment deciding by the limit
//! alone until one succeeds, so a DynamoDB outage never turns into refusals. Only
//! authenticated requests reach this step, so a caller without a valid key can never spend a
//! real account's allowance.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::auth::AuthenticatedClient;
use super::error::ApiError;
use crate::domain::{
    AccountId, AccountShare, Clock, EnvironmentId, RateLimit, Report, Timestamp, Verdict,
};
use crate::store::PublishDemand;

/// Accounts an environment tracks before it forgets those whose counts no longer matter.
const TRACKED_ACCOUNTS: usize = 1024;

/// One execution environment's counts and shares. Cheap to clone: clones share them.
#[derive(Clone)]
pub struct RateLimiter {
    default: RateLimit,
    environment: EnvironmentId,
    clock: Clock,
    shares: Arc<Mutex<HashMap<AccountId, AccountShare>>>,
    reports_in_flight: Arc<AtomicUsize>,
}

impl RateLimiter {
    /// A limiter applying `default` to accounts without a limit of their own, with an
    /// environment id of its own, and `clock` for the time reports are answered at.
    pub fn new(default: RateLimit, clock: Clock) -> Self {
        // The id only has to differ from the other environments'; should the OS's random
        // source fail, the clock's nanoseconds and the process id do.
        let environment = EnvironmentId::generate().unwrap_or_else(|_| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_nanos() as u64);
            EnvironmentId::from_number(nanos ^ u64::from(std::process::id()) << 32)
        });
        Self::for_environment(default, clock, environment)
    }

    pub fn for_environment(default: RateLimit, clock: Clock, environment: EnvironmentId) -> Self {
        RateLimiter {
            default,
            environment,
            clock,
            shares: Arc::default(),
            reports_in_flight: Arc::default(),
        }
    }

    /// This limiter's counts and shares, with answers taken at `clock`'s time: a test's
    /// later moment of the same execution environment.
    #[cfg(any(test, feature = "test-support"))]
    pub fn with_clock(&self, clock: Clock) -> Self {
        RateLimiter {
            clock,
            ..self.clone()
        }
    }

    /// The limit `client`'s account has: its own, or the stack's default.
    pub fn limit_of(&self, client: &AuthenticatedClient) -> RateLimit {
        client.rate_limit.unwrap_or(self.default)
    }

    fn shares(&self) -> MutexGuard<'_, HashMap<AccountId, AccountShare>> {
        self.shares
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts the request against its account's limit, or refuses it with
    /// [`ApiError::RateLimited`] (not counted). When a report of the account's demand is
    /// due, sends it in a task of its own.
    pub fn admit<S: PublishDemand + Clone + 'static>(
        &self,
        client: &AuthenticatedClient,
        store: &S,
        now: Timestamp,
    ) -> Result<(), ApiError> {
        let limit = self.limit_of(client);
        let now_ms = now.unix_millis();
        let decision = {
            let mut shares = self.shares();
            if shares.len() >= TRACKED_ACCOUNTS {
                shares.retain(|_, share| !share.is_stale(now_ms));
            }
            shares
                .entry(client.account_id.clone())
                .or_insert_with(|| AccountShare::new(self.environment))
                .decide(now_ms, limit)
        };
        if let Some(report) = decision.report {
            self.report_in_background(&client.account_id, report, limit, store);
        }
        match decision.verdict {
            Verdict::Admit => Ok(()),
            Verdict::Refuse { retry_after } => {
                tracing::info!(
                    limit = limit.per_second(),
                    retry_after_ms = retry_after.as_millis() as u64,
                    "rate limited"
                );
                Err(ApiError::RateLimited { limit, retry_after })
            }
        }
    }

    /// Publishes `report` to the account's demand item and takes the claims it answers into
    /// this environment's share. In the request's span, so a failure is logged with its id;
    /// on the single-threaded runtime it runs while the request waits on DynamoDB, and
    /// finishes in the background if the response is ready first (as a key's use is
    /// recorded).
    fn report_in_background<S: PublishDemand + Clone + 'static>(
        &self,
        account: &AccountId,
        report: Report,
        limit: RateLimit,
        store: &S,
    ) {
        let limiter = self.clone();
        let account = account.clone();
        let store = store.clone();
        let span = tracing::Span::current();
        self.reports_in_flight.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                let result = store.publish_demand(&account, &report).await;
                let now_ms = limiter.clock.now().unix_millis();
                if let Some(share) = limiter.shares().get_mut(&account) {
                    match result {
                        Ok(claims) => {
                            share.answered(&report, claims, now_ms, limit);
                            tracing::debug!(
                                share_milli = share.share_at(now_ms, limit),
                                "rate limit share published"
                            );
                        }
                        Err(err) => {
                            tracing::warn!(error = ?err, "rate limit share not published");
                            share.not_answered(&report, now_ms);
                        }
                    }
                }
                limiter.reports_in_flight.fetch_sub(1, Ordering::SeqCst);
            },
            span,
        ));
    }

    /// Waits until every report sent so far has been answered and taken in: tests drive
    /// limiters on a logical clock, each answer arriving before the next request.
    #[cfg(any(test, feature = "test-support"))]
    pub async fn settled(&self) {
        while self.reports_in_flight.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    /// This environment's share of an account's `limit` now, in thousandths of a request a
    /// second, when it decides by one short of the whole limit.
    #[cfg(any(test, feature = "test-support"))]
    pub fn share_of(&self, account: &AccountId, limit: RateLimit) -> Option<u64> {
        let now_ms = self.clock.now().unix_millis();
        self.shares().get(account)?.share_at(now_ms, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{KeyId, KeyPrefix};
    use crate::http::auth::KeyUse;
    use crate::store::memory::{MemoryStore, Operation};
    use crate::store::StoreError;
    use std::sync::atomic::AtomicU64;
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

    /// A clock the test sets, in milliseconds since the Unix epoch.
    fn manual_clock(start_ms: u64) -> (Clock, Arc<AtomicU64>) {
        let now = Arc::new(AtomicU64::new(start_ms));
        let reading = now.clone();
        let clock = Clock::from_fn(move || at_ms(reading.load(Ordering::SeqCst)));
        (clock, now)
    }

    fn at_ms(ms: u64) -> Timestamp {
        Timestamp::from_unix_millis(ms)
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

    const START: u64 = 1_764_000_000_000;

    #[tokio::test]
    async fn the_account_s_own_limit_wins_over_the_default() {
        let store = MemoryStore::default();
        let (clock, _) = manual_clock(START);
        let limiter = RateLimiter::new(RateLimit::new(10).unwrap(), clock);
        let account = AccountId::generate().unwrap();
        let other = AccountId::generate().unwrap();
        let now = at_ms(START);
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
    async fn environments_share_the_limit_through_the_account_s_item() {
        let store = MemoryStore::default();
        let account = AccountId::generate().unwrap();
        // A limit of 30: each environment reports on its first request, claiming 10 a second
        // (one request over the least span a first rate is taken over, 100 ms).
        let limit = RateLimit::new(30).unwrap();
        let who = client(&account, Some(30));
        let (clock, _) = manual_clock(START);
        let a = RateLimiter::new(RateLimit::DEFAULT, clock.clone());
        let b = RateLimiter::new(RateLimit::DEFAULT, clock);
        assert_eq!(admitted(&a, &who, &store, at_ms(START), 1), 1);
        a.settled().await;
        assert_eq!(admitted(&b, &who, &store, at_ms(START), 1), 1);
        b.settled().await;
        assert_eq!(store.claims(&account).len(), 2);
        // The first saw only its own claim, under half the limit: the sliding second decides.
        // The second saw both, 20 a second in all: an even split, 15 each.
        assert_eq!(a.share_of(&account, limit), None);
        assert_eq!(b.share_of(&account, limit), Some(15_000));
    }

    #[tokio::test]
    async fn a_failing_or_hanging_report_never_fails_or_holds_a_request() {
        let account = AccountId::generate().unwrap();
        let who = client(&account, Some(5));
        let now = at_ms(START);

        let store = MemoryStore::default();
        let (clock, _) = manual_clock(START);
        let limiter = RateLimiter::new(RateLimit::DEFAULT, clock);
        store.hang_next(Operation::PublishDemand);
        // The first request reports (5 is under 64): it hangs, and the request is admitted.
        assert!(limiter.admit(&who, &store, now).is_ok());
        tokio::task::yield_now().await;
        // The environment goes on by the limit alone.
        assert_eq!(admitted(&limiter, &who, &store, now, 10), 4);

        let store = MemoryStore::default();
        let (clock, _) = manual_clock(START);
        let limiter = RateLimiter::new(RateLimit::DEFAULT, clock);
        store.fail_next(
            Operation::PublishDemand,
            StoreError::Unavailable(anyhow::anyhow!("down")),
        );
        assert!(limiter.admit(&who, &store, now).is_ok());
        limiter.settled().await;
        assert!(store.claims(&account).is_empty());
        assert_eq!(limiter.share_of(&account, RateLimit::new(5).unwrap()), None);
        // A second later the report goes again, and the share follows.
        let later = at_ms(START + 1000);
        assert!(limiter.admit(&who, &store, later).is_ok());
        limiter.settled().await;
        assert_eq!(store.claims(&account).len(), 1);
    }

    #[tokio::test]
    async fn idle_accounts_are_forgotten_once_many_are_tracked() {
        let store = MemoryStore::default();
        let (clock, _) = manual_clock(START);
        let limiter = RateLimiter::new(RateLimit::new(1000).unwrap(), clock);
        let now = at_ms(START);
        for _ in 0..TRACKED_ACCOUNTS {
            let account = AccountId::generate().unwrap();
            assert!(limiter.admit(&client(&account, None), &store, now).is_ok());
        }
        assert_eq!(limiter.shares().len(), TRACKED_ACCOUNTS);
        let later = at_ms(START + 2000);
        let account = AccountId::generate().unwrap();
        assert!(limiter
            .admit(&client(&account, None), &store, later)
            .is_ok());
        assert_eq!(limiter.shares().len(), 1);
    }
}
