//! Resource ids: a type prefix and 20 base62 characters.

use std::fmt;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::random::{self, RandomSourceFailed};

const ID_ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// 20 base62 characters carry 119 bits: collisions are not a practical concern (and where a
/// write could collide, it is conditional, so a collision is detected, never an overwrite).
const ID_RANDOM_CHARS: usize = 20;

/// Draws `ID_RANDOM_CHARS` unbiased base62 characters from the OS CSPRNG.
fn random_id(prefix: &str) -> Result<String, RandomSourceFailed> {
    let mut id = String::with_capacity(prefix.len() + ID_RANDOM_CHARS);
    id.push_str(prefix);
    let mut buffer = [0u8; 32];
    while id.len() < prefix.len() + ID_RANDOM_CHARS {
        random::fill(&mut buffer)?;
        // Rejection sampling: 248 = 4 * 62, so accepted bytes map uniformly onto the alphabet.
        for &byte in buffer.iter().filter(|&&b| b < 248) {
            if id.len() == prefix.len() + ID_RANDOM_CHARS {
                break;
            }
            id.push(ID_ALPHABET[usize::from(byte % 62)] as char);
        }
    }
    Ok(id)
}

fn is_id(value: &str, prefix: &str) -> bool {
    value.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == ID_RANDOM_CHARS && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn generate() -> Result<Self, RandomSourceFailed> {
                random_id($prefix).map($name)
            }

            pub fn parse(value: &str) -> Option<Self> {
                is_id(value, $prefix).then(|| $name(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// `acct_` + 20 base62 characters.
    AccountId,
    "acct_"
);
prefixed_id!(
    /// `pay_` + 20 base62 characters.
    PaymentId,
    "pay_"
);
prefixed_id!(
    /// `key_` + 20 base62 characters: names an API key without revealing anything about it.
    KeyId,
    "key_"
);
prefixed_id!(
    /// `evt_` + 20 base62 characters: one audit event.
    EventId,
    "evt_"
);

impl PaymentId {
    /// A payment id derived from a digest (for idempotent payments): the first 16 bytes,
    /// reduced modulo 62^20 and written as 20 base62 characters.
    pub fn from_digest(digest: &[u8; 32]) -> Self {
        let mut value = u128::from_be_bytes(digest[..16].try_into().expect("16 bytes"));
        value %= 62u128.pow(ID_RANDOM_CHARS as u32);
        let mut id = String::with_capacity(Self::PREFIX.len() + ID_RANDOM_CHARS);
        id.push_str(Self::PREFIX);
        let mut chars = [0u8; ID_RANDOM_CHARS];
        for slot in chars.iter_mut().rev() {
            *slot = ID_ALPHABET[(value % 62) as usize];
            value /= 62;
        }
        id.extend(chars.iter().map(|&b| b as char));
        PaymentId(id)
    }
}

/// Where new ids come from: the OS CSPRNG. Handlers take one so that a test can hand out a
/// chosen id first (to make a random id collide with a stored one, for instance).
#[derive(Clone, Default)]
pub struct IdSource {
    queued: Option<Arc<Mutex<Vec<String>>>>,
}

impl IdSource {
    pub fn random() -> Self {
        Self::default()
    }

    /// Hands out `ids` first (each when an id of its type is asked for, in order), then
    /// random ones. For tests; panics on a string that is not an id.
    #[cfg(any(test, feature = "test-support"))]
    pub fn queued(ids: impl IntoIterator<Item = String>) -> Self {
        let ids: Vec<String> = ids.into_iter().collect();
        for id in &ids {
            assert!(
                [
                    AccountId::PREFIX,
                    PaymentId::PREFIX,
                    KeyId::PREFIX,
                    EventId::PREFIX,
                    RETRY_KEY_PREFIX
                ]
                .iter()
                .any(|prefix| is_id(id, prefix)),
                "not an id: {id}"
            );
        }
        IdSource {
            queued: Some(Arc::new(Mutex::new(ids))),
        }
    }

    fn next(&self, prefix: &str) -> Result<String, RandomSourceFailed> {
        if let Some(queue) = &self.queued {
            let mut queue = queue
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(at) = queue.iter().position(|id| is_id(id, prefix)) {
                return Ok(queue.remove(at));
            }
        }
        random_id(prefix)
    }

    pub fn account_id(&self) -> Result<AccountId, RandomSourceFailed> {
        self.next(AccountId::PREFIX).map(AccountId)
    }

    pub fn key_id(&self) -> Result<KeyId, RandomSourceFailed> {
        self.next(KeyId::PREFIX).map(KeyId)
    }

    pub fn event_id(&self) -> Result<EventId, RandomSourceFailed> {
        self.next(EventId::PREFIX).map(EventId)
    }

    /// A random `Idempotency-Key` for a request that came without one (see
    /// [`super::IdempotencyKey::drawn`]).
    pub(super) fn retry_key(&self) -> Result<String, RandomSourceFailed> {
        self.next(RETRY_KEY_PREFIX)
    }
}

/// The prefix of the keys the service draws for requests sent without an `Idempotency-Key`.
pub const RETRY_KEY_PREFIX: &str = "retry_";

impl fmt::Debug for IdSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.queued.is_some() {
            "IdSource(queued)"
        } else {
            "IdSource(random)"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ids_have_prefix_and_length() {
        let id = AccountId::generate().unwrap();
        assert!(id.as_str().starts_with("acct_"));
        assert_eq!(id.as_str().len(), 25);
        assert_eq!(AccountId::parse(id.as_str()), Some(id.clone()));
        assert_ne!(AccountId::generate().unwrap(), id);
        assert!(PaymentId::generate().unwrap().as_str().starts_with("pay_"));
        assert_eq!(AccountId::parse("acct_short"), None);
        assert_eq!(AccountId::parse("pay_AAAAAAAAAAAAAAAAAAAA"), None);
        assert_eq!(AccountId::parse("acct_AAAAAAAAAAAAAAAAAAA!"), None);
    }

    #[test]
    fn a_queued_source_hands_out_its_ids_first_by_type() {
        let key = "key_AAAAAAAAAAAAAAAAAAAA".to_owned();
        let account = "acct_BBBBBBBBBBBBBBBBBBBB".to_owned();
        let ids = IdSource::queued([key.clone(), account.clone()]);
        assert_eq!(ids.account_id().unwrap().as_str(), account);
        assert_eq!(ids.key_id().unwrap().as_str(), key);
        let random = ids.key_id().unwrap();
        assert_ne!(random.as_str(), key);
        assert!(KeyId::parse(random.as_str()).is_some());
    }

    #[test]
    fn derived_payment_ids_are_ids() {
        for digest in [[0u8; 32], [0xff; 32], [7; 32]] {
            let id = PaymentId::from_digest(&digest);
            assert!(PaymentId::parse(id.as_str()).is_some(), "{id}");
        }
        assert_eq!(
            PaymentId::from_digest(&[0u8; 32]).as_str(),
            "pay_00000000000000000000"
        );
    }

    proptest! {
        #[test]
        fn generated_ids_always_parse(_ in 0..50u8) {
            let id = PaymentId::generate().unwrap();
            prop_assert!(PaymentId::parse(id.as_str()).is_some());
        }
    }
}
