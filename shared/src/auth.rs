//! The auth step: `x-api-key` header in, authenticated client out.

use lambda_http::http::HeaderMap;

use crate::api_key::{ApiKey, KeyEnvironment, KeyPrefix};
use crate::domain::{AccountId, AccountStatus, KeyId, Timestamp};
use crate::error::{ApiError, AuthFailure};
use crate::store::{FindKey, KeyStatus};

pub const API_KEY_HEADER: &str = "x-api-key";

/// Who is calling, as established by their API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedClient {
    pub account_id: AccountId,
    pub key_id: KeyId,
    pub key_prefix: KeyPrefix,
}

/// Authenticates a request by its `x-api-key` header, and only that header: keys in the query
/// string or the body are never looked at.
///
/// Format and checksum are checked first, so junk never reaches the database. A key that
/// passes is looked up by its SHA-256 digest with one strongly consistent `GetItem`, so a key
/// works on the very next request after it is issued, and revocation or deactivation applies
/// on the very next request too. Every refusal is the same `InvalidApiKey` to the caller; the
/// reason goes to the log with the display prefix, never the key or its digest.
pub async fn authenticate<S: FindKey>(
    headers: &HeaderMap,
    store: &S,
    environment: KeyEnvironment,
    now: Timestamp,
) -> Result<AuthenticatedClient, ApiError> {
    let mut values = headers.get_all(API_KEY_HEADER).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(if headers.contains_key(API_KEY_HEADER) {
            ApiError::InvalidApiKey(AuthFailure::Malformed)
        } else {
            ApiError::MissingApiKey
        });
    };
    let raw = value
        .to_str()
        .map_err(|_| ApiError::InvalidApiKey(AuthFailure::Malformed))?;
    let key = ApiKey::parse(raw, environment).map_err(ApiError::InvalidApiKey)?;
    let prefix = key.display_prefix();
    let record = store.find_key(&key.digest()).await?;
    let refuse = |failure: AuthFailure| {
        tracing::info!(key_prefix = %prefix, reason = %failure, "api key refused");
        ApiError::InvalidApiKey(failure)
    };
    let record = record.ok_or_else(|| refuse(AuthFailure::UnknownKey))?;
    if record.status != KeyStatus::Active {
        return Err(refuse(AuthFailure::KeyInactive));
    }
    if record.expires_at.is_some_and(|at| now >= at) {
        return Err(refuse(AuthFailure::KeyExpired));
    }
    if record.account_status != AccountStatus::Active {
        return Err(refuse(AuthFailure::AccountInactive));
    }
    let span = tracing::Span::current();
    span.record("account_id", record.account_id.as_str());
    span.record("key_prefix", prefix.as_str());
    Ok(AuthenticatedClient {
        account_id: record.account_id,
        key_id: record.key_id,
        key_prefix: prefix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Account, AccountName};
    use crate::store::memory::MemoryStore;
    use crate::store::CreateAccount;
    use crate::store::IssuedKey;

    async fn store_with_account() -> (MemoryStore, ApiKey, AccountId) {
        let store = MemoryStore::default();
        let key = ApiKey::generate(KeyEnvironment::Test).unwrap();
        let account = Account {
            id: AccountId::generate().unwrap(),
            name: AccountName::parse("Ada".into()).unwrap(),
            email: None,
            status: AccountStatus::Active,
            created_at: Timestamp::now(),
        };
        let issued = IssuedKey::new(&key, Timestamp::now()).unwrap();
        store.create_account(&account, &issued).await.unwrap();
        (store, key, account.id)
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(API_KEY_HEADER, v.parse().unwrap());
        }
        map
    }

    #[tokio::test]
    async fn a_valid_key_authenticates_its_account() {
        let (store, key, account_id) = store_with_account().await;
        let client = authenticate(
            &headers(&[key.expose_once()]),
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
    async fn header_name_is_case_insensitive() {
        let (store, key, _) = store_with_account().await;
        let mut map = HeaderMap::new();
        map.insert("X-API-Key", key.expose_once().parse().unwrap());
        assert!(
            authenticate(&map, &store, KeyEnvironment::Test, Timestamp::now())
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn missing_and_invalid_keys() {
        let (store, key, _) = store_with_account().await;
        let env = KeyEnvironment::Test;
        assert!(matches!(
            authenticate(&HeaderMap::new(), &store, env, Timestamp::now()).await,
            Err(ApiError::MissingApiKey)
        ));
        let unknown = ApiKey::generate(env).unwrap();
        let cases: Vec<(HeaderMap, AuthFailure)> = vec![
            (headers(&[""]), AuthFailure::Malformed),
            (headers(&["sk_test_nope"]), AuthFailure::Malformed),
            (
                headers(&[key.expose_once(), key.expose_once()]),
                AuthFailure::Malformed,
            ),
            (headers(&[unknown.expose_once()]), AuthFailure::UnknownKey),
        ];
        for (map, expected) in cases {
            match authenticate(&map, &store, env, Timestamp::now()).await {
                Err(ApiError::InvalidApiKey(failure)) => assert_eq!(failure, expected),
                other => panic!("expected {expected:?}, got {other:?}"),
            }
        }
        // Store lookups are counted: malformed keys never reach the store.
        assert_eq!(store.key_lookups(), 1);
    }

    #[tokio::test]
    async fn inactive_accounts_do_not_authenticate() {
        let (store, key, account_id) = store_with_account().await;
        store.set_status(&account_id, AccountStatus::Inactive);
        match authenticate(
            &headers(&[key.expose_once()]),
            &store,
            KeyEnvironment::Test,
            Timestamp::now(),
        )
        .await
        {
            Err(ApiError::InvalidApiKey(AuthFailure::AccountInactive)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}
