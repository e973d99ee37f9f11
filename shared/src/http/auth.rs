//! The auth step: `x-api-key` header in, authenticated client out.

use std::net::IpAddr;
use std::time::Duration;

use lambda_http::http::HeaderMap;

use super::error::ApiError;
use crate::domain::{
    AccountId, ApiKey, AuthFailure, IpAllowList, KeyDigest, KeyEnvironment, KeyId, KeyPrefix,
    Permissions, RateLimit, Timestamp,
};
use crate::store::{ActingKey, FindKey, RecordKeyUse};

pub const API_KEY_HEADER: &str = "x-api-key";

/// How precisely a key's `last_used_at` is kept: a use is recorded when the recorded one is
/// older than this, so a busy key costs at most one extra write per interval.
pub const KEY_USE_INTERVAL: Duration = Duration::from_secs(3600);

/// Who is calling, as established by their API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedClient {
    pub account_id: AccountId,
    pub key_id: KeyId,
    pub key_prefix: KeyPrefix,
    /// The use of the key this request should record, if any.
    pub key_use: KeyUse,
    /// The account's own request rate limit, from the key's item; `None`: the default.
    pub rate_limit: Option<RateLimit>,
    /// What the key may do.
    pub permissions: Permissions,
    /// Where the key may be used from (it was, this time).
    pub allowed_ips: IpAllowList,
    /// When the key stops working, if it has an end.
    pub expires_at: Option<Timestamp>,
}

impl AuthenticatedClient {
    /// The key, as it makes a change of its own account's keys.
    pub fn acting(&self) -> ActingKey<'_> {
        ActingKey {
            key_id: &self.key_id,
            kind: self.key_prefix.kind(),
            permissions: self.permissions,
            allowed_ips: &self.allowed_ips,
            expires_at: self.expires_at,
        }
    }
}

/// A use of a key still to be recorded (its stored `last_used_at` is older than
/// [`KEY_USE_INTERVAL`]), or nothing to do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyUse(Option<(KeyDigest, Timestamp)>);

impl KeyUse {
    fn due(digest: KeyDigest, last_used_at: Option<Timestamp>, now: Timestamp) -> Self {
        let due = last_used_at.is_none_or(|at| at.plus(KEY_USE_INTERVAL) <= now);
        KeyUse(due.then_some((digest, now)))
    }

    pub fn is_due(&self) -> bool {
        self.0.is_some()
    }

    /// Records the key's use in a task of its own, and returns at once: the request never
    /// waits for it and never fails by it (a failure is logged, and the next request of the
    /// key records the use instead). On the single-threaded runtime the task runs when the
    /// request's own work waits on DynamoDB, and finishes in the background if the response
    /// is ready first (in Lambda, before the runtime's next poll, or when the execution
    /// environment thaws for its next invocation).
    pub fn record_in_background<S: RecordKeyUse + Clone + 'static>(&self, store: &S) {
        let Some((digest, at)) = self.0.clone() else {
            return;
        };
        let store = store.clone();
        // In the request's span, so a failure is logged with its request id.
        let span = tracing::Span::current();
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                match store
                    .record_key_use(&digest, at, at.minus(KEY_USE_INTERVAL))
                    .await
                {
                    Ok(()) => tracing::debug!("key use recorded"),
                    Err(err) => tracing::warn!(error = ?err, "key use not recorded"),
                }
            },
            span,
        ));
    }
}

/// Authenticates a request by its `x-api-key` header, and only that header: keys in the query
/// string or the body are never looked at.
///
/// Format and checksum are checked first, so junk never reaches the database. A key that
/// passes is looked up by its SHA-256 digest with one strongly consistent `GetItem`, so a key
/// works on the very next request after it is issued, and revocation or deactivation applies
/// on the very next request too. Whether the stored key admits the request is the domain's
/// one rule ([`crate::domain::KeyLife::admits`]), then whether the request came from where
/// the key may be used (`source`, the address API Gateway saw). Every refusal is the same 401 to the
/// caller; the reason goes to the log with the display prefix, never the key or its
/// digest.
pub async fn authenticate<S: FindKey>(
    headers: &HeaderMap,
    source: Option<IpAddr>,
    store: &S,
    environment: KeyEnvironment,
    now: Timestamp,
) -> Result<AuthenticatedClient, ApiError> {
    let mut values = headers.get_all(API_KEY_HEADER).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(ApiError::Unauthenticated(
            if headers.contains_key(API_KEY_HEADER) {
                AuthFailure::Malformed
            } else {
                AuthFailure::Missing
            },
        ));
    };
    let raw = value
        .to_str()
        .map_err(|_| ApiError::Unauthenticated(AuthFailure::Malformed))?;
    let key = ApiKey::parse(raw, environment).map_err(ApiError::Unauthenticated)?;
    let prefix = key.display_prefix();
    let digest = key.digest();
    let record = store.find_key(&digest).await?;
    let refuse = |failure: AuthFailure| {
        tracing::info!(key_prefix = %prefix, reason = %failure, "api key refused");
        ApiError::Unauthenticated(failure)
    };
    let record = record.ok_or_else(|| refuse(AuthFailure::UnknownKey))?;
    record
        .life
        .admits(record.account_status, now)
        .map_err(refuse)?;
    if !record.allowed_ips.admits(source) {
        return Err(refuse(AuthFailure::IpNotAllowed));
    }
    let span = tracing::Span::current();
    span.record("account_id", record.account_id.as_str());
    span.record("key_prefix", prefix.as_str());
    Ok(AuthenticatedClient {
        account_id: record.account_id,
        key_id: record.key_id,
        key_prefix: prefix,
        key_use: KeyUse::due(digest, record.last_used_at, now),
        rate_limit: record.rate_limit,
        permissions: record.permissions,
        allowed_ips: record.allowed_ips,
        expires_at: record.life.expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AccountStatus, KeyLife, KeyStatus};
    use crate::store::memory::MemoryStore;
    use crate::store::StoreError;
    use std::time::Duration;

    async fn store_with_account() -> (MemoryStore, ApiKey, AccountId) {
        let store = MemoryStore::default();
        let (key, account) = crate::testing::account_with_key(&store, Timestamp::now()).await;
        (store, key, account)
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(API_KEY_HEADER, v.parse().unwrap());
        }
        map
    }

    async fn failure_of(store: &MemoryStore, map: &HeaderMap, now: Timestamp) -> AuthFailure {
        match authenticate(map, None, store, KeyEnvironment::Test, now).await {
            Err(ApiError::Unauthenticated(failure)) => failure,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_valid_key_authenticates_its_account() {
        let (store, key, account_id) = store_with_account().await;
        let client = authenticate(
            &headers(&[key.expose_once()]),
            None,
            &store,
            KeyEnvironment::Test,
            Timestamp::now(),
        )
        .await
        .unwrap();
        assert_eq!(client.account_id, account_id);
        assert_eq!(client.key_prefix, key.display_prefix());
    }

    #[tokio::test]
    async fn missing_and_invalid_keys() {
        let (store, key, _) = store_with_account().await;
        let now = Timestamp::now();
        assert_eq!(
            failure_of(&store, &HeaderMap::new(), now).await,
            AuthFailure::Missing
        );
        let unknown =
            ApiKey::generate(crate::domain::KeyKind::Secret, KeyEnvironment::Test).unwrap();
        let live = ApiKey::generate(crate::domain::KeyKind::Secret, KeyEnvironment::Live).unwrap();
        let cases: Vec<(HeaderMap, AuthFailure)> = vec![
            (headers(&[""]), AuthFailure::Malformed),
            (headers(&["sk_test_nope"]), AuthFailure::Malformed),
            (
                headers(&[key.expose_once(), key.expose_once()]),
                AuthFailure::Malformed,
            ),
            (
                headers(&[live.expose_once()]),
                AuthFailure::WrongEnvironment,
            ),
            (headers(&[unknown.expose_once()]), AuthFailure::UnknownKey),
        ];
        for (map, expected) in cases {
            assert_eq!(failure_of(&store, &map, now).await, expected);
        }
        // Only the unknown key reached the store: junk never costs a database call.
        assert_eq!(store.key_lookups(), 1);
    }

    #[tokio::test]
    async fn revoked_expired_and_inactive_are_refused_by_the_one_rule() {
        let (store, key, account_id) = store_with_account().await;
        let map = headers(&[key.expose_once()]);
        let now = Timestamp::now();
        let expiry = now.plus(Duration::from_secs(60));
        store.set_key_life(
            &key.digest(),
            KeyLife {
                status: KeyStatus::Active,
                expires_at: Some(expiry),
            },
        );
        assert!(authenticate(&map, None, &store, KeyEnvironment::Test, now)
            .await
            .is_ok());
        assert_eq!(
            failure_of(&store, &map, expiry).await,
            AuthFailure::KeyExpired
        );
        store.set_key_life(
            &key.digest(),
            KeyLife {
                status: KeyStatus::Revoked,
                expires_at: None,
            },
        );
        assert_eq!(failure_of(&store, &map, now).await, AuthFailure::KeyRevoked);
        store.set_key_life(
            &key.digest(),
            KeyLife {
                status: KeyStatus::Active,
                expires_at: None,
            },
        );
        store.set_status(&account_id, AccountStatus::Inactive);
        assert_eq!(
            failure_of(&store, &map, now).await,
            AuthFailure::AccountInactive
        );
    }

    #[tokio::test]
    async fn a_failed_lookup_is_a_retryable_failure_not_a_refusal() {
        let (store, key, _) = store_with_account().await;
        store.fail_next(
            crate::store::memory::Operation::FindKey,
            StoreError::Unavailable(anyhow::anyhow!("down")),
        );
        let result = authenticate(
            &headers(&[key.expose_once()]),
            None,
            &store,
            KeyEnvironment::Test,
            Timestamp::now(),
        )
        .await;
        assert!(
            matches!(result, Err(ApiError::Unavailable(_))),
            "{result:?}"
        );
    }

    /// Lets the background tasks of this single-threaded test runtime run.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_use_is_due_when_none_is_recorded_within_the_interval() {
        let (store, key, _) = store_with_account().await;
        let map = headers(&[key.expose_once()]);
        let now = Timestamp::now();
        let client = authenticate(&map, None, &store, KeyEnvironment::Test, now)
            .await
            .unwrap();
        assert!(client.key_use.is_due(), "never used");
        client.key_use.record_in_background(&store);
        settle().await;
        assert_eq!(store.key(&key.digest()).unwrap().last_used_at, Some(now));

        let soon = now.plus(KEY_USE_INTERVAL - Duration::from_secs(1));
        let client = authenticate(&map, None, &store, KeyEnvironment::Test, soon)
            .await
            .unwrap();
        assert!(!client.key_use.is_due(), "recorded within the interval");
        let later = now.plus(KEY_USE_INTERVAL);
        let client = authenticate(&map, None, &store, KeyEnvironment::Test, later)
            .await
            .unwrap();
        assert!(client.key_use.is_due());
    }

    #[tokio::test]
    async fn recording_a_use_never_holds_up_or_fails_the_request() {
        use crate::store::memory::Operation;
        let (store, key, _) = store_with_account().await;
        let map = headers(&[key.expose_once()]);
        let client = authenticate(&map, None, &store, KeyEnvironment::Test, Timestamp::now())
            .await
            .unwrap();

        // Returns at once, whether the record hangs or fails.
        store.hang_next(Operation::RecordKeyUse);
        client.key_use.record_in_background(&store);
        store.fail_next(
            Operation::RecordKeyUse,
            StoreError::Unavailable(anyhow::anyhow!("down")),
        );
        client.key_use.record_in_background(&store);
        settle().await;
        assert_eq!(store.key(&key.digest()).unwrap().last_used_at, None);
        // The next one records.
        client.key_use.record_in_background(&store);
        settle().await;
        assert!(store.key(&key.digest()).unwrap().last_used_at.is_some());
    }
}
