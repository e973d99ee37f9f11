//! Payments, and what makes a retried payment request the same payment.
//!
//! An `Idempotency-Key` makes a retried request never create a second payment. The payment's
//! id is derived from (account, idempotency key), so a retry targets the same item, and the
//! one conditional write that records a payment is also the idempotency check (see
//! `docs/data-model.md`). The stored payment carries a fingerprint of the validated request,
//! which tells a true retry from a reuse of the key for another payment.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::currency::Currency;
use super::ids::{AccountId, IdSource, PaymentId};
use super::invalid::InvalidValue;
use super::random::RandomSourceFailed;
use super::text::Description;
use super::time::Timestamp;

/// A payment amount in the currency's minor unit (cents for USD, yen for JPY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Amount(i64);

impl Amount {
    pub const MIN: i64 = 1;
    pub const MAX: i64 = 99_999_999;

    pub fn parse(value: i64) -> Result<Self, InvalidValue> {
        if (Self::MIN..=Self::MAX).contains(&value) {
            Ok(Amount(value))
        } else {
            Err(InvalidValue::new(
                "amount",
                format!(
                    "amount must be an integer from {} to {} in the currency's minor unit.",
                    Self::MIN,
                    Self::MAX
                ),
            ))
        }
    }

    pub fn minor_units(self) -> i64 {
        self.0
    }
}

string_enum!(
    /// Where a payment stands. Every payment starts `pending`.
    PaymentStatus {
        Pending = "pending",
    }
);

/// A recorded payment. `client_id` is always the authenticated account, never request input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Payment {
    pub id: PaymentId,
    pub client_id: AccountId,
    pub amount: Amount,
    pub currency: Currency,
    pub description: Option<Description>,
    pub status: PaymentStatus,
    pub created_at: Timestamp,
    /// The client's Idempotency-Key, if it sent one. Stored, not part of the response.
    #[serde(skip)]
    pub idempotency_key: Option<IdempotencyKey>,
}

/// A validated request for a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayment {
    pub amount: Amount,
    pub currency: Currency,
    pub description: Option<Description>,
}

/// A client-chosen key: 1 to 255 printable ASCII characters, no comma (a list separator in
/// HTTP headers, so that a repeated header can never pass for one key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    pub fn parse(value: &[u8]) -> Result<Self, InvalidValue> {
        let allowed = value
            .iter()
            .all(|&b| (0x20..=0x7e).contains(&b) && b != b',');
        if value.is_empty() || value.len() > Self::MAX_LEN || !allowed {
            return Err(InvalidValue::new(
                "idempotency_key",
                "Idempotency-Key must be 1 to 255 printable ASCII characters other than a comma.",
            ));
        }
        Ok(IdempotencyKey(
            String::from_utf8(value.to_vec()).expect("printable ASCII is UTF-8"),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A key the service draws for a payment sent without one: its id is derived from the
    /// key as for any other, so that when the write's outcome is unknown the client can be
    /// told a key that retries it safely (the same id, the same conditional write).
    pub fn drawn(ids: &IdSource) -> Result<Self, RandomSourceFailed> {
        ids.retry_key().map(IdempotencyKey)
    }
}

/// The id of the payment an account creates with `key`: the same on every retry, different
/// for every account, so keys are scoped to the account that sends them.
pub fn payment_id_for(account: &AccountId, key: &IdempotencyKey) -> PaymentId {
    let mut hasher = Sha256::new();
    hasher.update(b"payment-id/v1\0");
    hasher.update(account.as_str().as_bytes());
    hasher.update(b"\0");
    hasher.update(key.as_str().as_bytes());
    PaymentId::from_digest(&hasher.finalize().into())
}

/// SHA-256 over a canonical form of a validated payment request, in hex: what "the same
/// request" means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFingerprint(String);

impl RequestFingerprint {
    /// A fingerprint read back from storage: 64 lower-case hex digits.
    pub fn parse(hex: &str) -> Option<Self> {
        (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| RequestFingerprint(hex.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `"usd"` and `"USD"`, a missing and a null description, or a different field order or
/// spacing all give the same fingerprint; any difference in amount, currency or
/// description gives a different one.
pub fn fingerprint(payment: &NewPayment) -> RequestFingerprint {
    let mut hasher = Sha256::new();
    hasher.update(b"payment-request/v1\0");
    hasher.update(payment.amount.minor_units().to_be_bytes());
    hasher.update(payment.currency.code().as_bytes());
    match &payment.description {
        None => hasher.update([0u8]),
        Some(description) => {
            hasher.update([1u8]);
            hasher.update((description.as_str().len() as u64).to_be_bytes());
            hasher.update(description.as_str().as_bytes());
        }
    }
    RequestFingerprint(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn new_payment(amount: i64, currency: &str, description: Option<&str>) -> NewPayment {
        NewPayment {
            amount: Amount::parse(amount).unwrap(),
            currency: Currency::parse(currency).unwrap(),
            description: description.map(|d| Description::parse(d.to_owned()).unwrap()),
        }
    }

    #[test]
    fn amount_bounds() {
        assert!(Amount::parse(0).is_err());
        assert!(Amount::parse(-1).is_err());
        assert!(Amount::parse(i64::MIN).is_err());
        assert_eq!(Amount::parse(1).unwrap().minor_units(), 1);
        assert_eq!(Amount::parse(99_999_999).unwrap().minor_units(), 99_999_999);
        assert!(Amount::parse(100_000_000).is_err());
        assert_eq!(Amount::parse(0).unwrap_err().field, "amount");
    }

    #[test]
    fn keys_are_bounded_printable_ascii_without_commas() {
        assert_eq!(
            IdempotencyKey::parse(b"order-1001").unwrap().as_str(),
            "order-1001"
        );
        assert!(IdempotencyKey::parse(&[b'k'; 255]).is_ok());
        assert!(IdempotencyKey::parse(b" spaced key ~!").is_ok());
        for bad in [
            &b""[..],
            &[b'k'; 256],
            b"tab\there",
            b"caf\xc3\xa9",
            b"\x7f",
            b"a,b",
            b",",
        ] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn payment_ids_are_stable_and_scoped_to_the_account() {
        let a = AccountId::parse("acct_AAAAAAAAAAAAAAAAAAAA").unwrap();
        let b = AccountId::parse("acct_BBBBBBBBBBBBBBBBBBBB").unwrap();
        let key = IdempotencyKey::parse(b"order-1").unwrap();
        let other = IdempotencyKey::parse(b"order-2").unwrap();
        let id = payment_id_for(&a, &key);
        assert_eq!(id, payment_id_for(&a, &key));
        assert_ne!(id, payment_id_for(&b, &key));
        assert_ne!(id, payment_id_for(&a, &other));
        assert!(PaymentId::parse(id.as_str()).is_some(), "{id}");
    }

    #[test]
    fn fingerprints_compare_validated_requests() {
        let base = fingerprint(&new_payment(100, "USD", None));
        assert_eq!(fingerprint(&new_payment(100, "usd", None)), base);
        for different in [
            new_payment(101, "USD", None),
            new_payment(100, "EUR", None),
            new_payment(100, "USD", Some("")),
            new_payment(100, "USD", Some("x")),
        ] {
            assert_ne!(fingerprint(&different), base, "{different:?}");
        }
        assert_eq!(RequestFingerprint::parse(base.as_str()), Some(base.clone()));
        assert_eq!(
            RequestFingerprint::parse(&base.as_str().to_uppercase()),
            None
        );
        assert_eq!(RequestFingerprint::parse("abc"), None);
    }

    proptest! {
        #[test]
        fn derived_ids_always_parse(account in "[A-Za-z0-9]{20}", key in "[ -+\\--~]{1,255}") {
            let account = AccountId::parse(&format!("acct_{account}")).unwrap();
            let key = IdempotencyKey::parse(key.as_bytes()).unwrap();
            let id = payment_id_for(&account, &key);
            prop_assert!(PaymentId::parse(id.as_str()).is_some());
        }

        #[test]
        fn amount_accepts_exactly_its_range(value in any::<i64>()) {
            prop_assert_eq!(Amount::parse(value).is_ok(), (1..=99_999_999).contains(&value));
        }
    }
}
