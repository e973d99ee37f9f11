//! Idempotency keys on `POST /payments`: a retried request never creates a second payment.
//!
//! The payment's id is derived from (account, idempotency key), so a retry targets the same
//! item, and the one conditional `PutItem` that records a payment is also the idempotency
//! check: the first write wins, and a later one gets the stored payment back from the failed
//! condition (`ReturnValuesOnConditionCheckFailure`). No extra read or write, no lock, and no
//! in-flight state that a crash could leave behind. The stored payment carries a fingerprint
//! of the validated request, which tells a true retry from a reuse of the key for another
//! payment.

use lambda_http::http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::domain::{AccountId, PaymentId};
use crate::error::InvalidRequest;
use crate::request::NewPayment;

pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
const PARAM: &str = "Idempotency-Key";

/// A client-chosen key: 1 to 255 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    /// The key from the request headers, if there is one.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, InvalidRequest> {
        let mut values = headers.get_all(IDEMPOTENCY_KEY_HEADER).iter();
        match (values.next(), values.next()) {
            (None, _) => Ok(None),
            (Some(value), None) => Self::parse(value.as_bytes()).map(Some),
            (Some(_), Some(_)) => Err(invalid("Send a single Idempotency-Key header.")),
        }
    }

    pub fn parse(value: &[u8]) -> Result<Self, InvalidRequest> {
        let printable = value.iter().all(|b| (0x20..=0x7e).contains(b));
        if value.is_empty() || value.len() > Self::MAX_LEN || !printable {
            return Err(invalid(
                "Idempotency-Key must be 1 to 255 printable ASCII characters.",
            ));
        }
        Ok(IdempotencyKey(
            String::from_utf8(value.to_vec()).expect("printable ASCII is UTF-8"),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn invalid(message: &str) -> InvalidRequest {
    InvalidRequest::invalid_param(PARAM, message)
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

/// SHA-256 over a canonical form of the validated request: what "the same request" means.
/// `"usd"` and `"USD"`, a missing and a null description, or a different field order or
/// spacing all give the same fingerprint; any difference in amount, currency or
/// description gives a different one.
pub fn fingerprint(payment: &NewPayment) -> String {
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
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{parse_json, CreatePaymentRequest};
    use proptest::prelude::*;

    fn new_payment(json: &str) -> NewPayment {
        parse_json::<CreatePaymentRequest>(json.as_bytes())
            .unwrap()
            .validate()
            .unwrap()
    }

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(
                IDEMPOTENCY_KEY_HEADER,
                lambda_http::http::HeaderValue::from_bytes(v).unwrap(),
            );
        }
        map
    }

    #[test]
    fn keys_are_optional_and_bounded() {
        assert_eq!(IdempotencyKey::from_headers(&HeaderMap::new()), Ok(None));
        let ok = IdempotencyKey::from_headers(&headers(&[b"order-1001"])).unwrap();
        assert_eq!(ok.unwrap().as_str(), "order-1001");
        assert!(IdempotencyKey::parse(&[b'k'; 255]).is_ok());
        assert!(IdempotencyKey::parse(b" spaced key ~!").is_ok());
        for bad in [
            &b""[..],
            &[b'k'; 256],
            b"tab\there",
            b"caf\xc3\xa9",
            b"\x7f",
        ] {
            let err = IdempotencyKey::parse(bad).unwrap_err();
            assert_eq!(err.param.as_deref(), Some("Idempotency-Key"));
        }
        assert!(IdempotencyKey::from_headers(&headers(&[b"a", b"b"])).is_err());
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
    fn fingerprints_compare_validated_requests_not_bytes() {
        let base = fingerprint(&new_payment(r#"{"amount": 100, "currency": "USD"}"#));
        for same in [
            r#"{"currency": "usd", "amount": 100}"#,
            r#"{ "amount":100,"currency":"Usd","description":null }"#,
        ] {
            assert_eq!(fingerprint(&new_payment(same)), base, "{same}");
        }
        for different in [
            r#"{"amount": 101, "currency": "USD"}"#,
            r#"{"amount": 100, "currency": "EUR"}"#,
            r#"{"amount": 100, "currency": "USD", "description": ""}"#,
            r#"{"amount": 100, "currency": "USD", "description": "x"}"#,
        ] {
            assert_ne!(fingerprint(&new_payment(different)), base, "{different}");
        }
        assert_eq!(base.len(), 64);
    }

    proptest! {
        #[test]
        fn derived_ids_always_parse(account in "[A-Za-z0-9]{20}", key in "[ -~]{1,255}") {
            let account = AccountId::parse(&format!("acct_{account}")).unwrap();
            let key = IdempotencyKey::parse(key.as_bytes()).unwrap();
            let id = payment_id_for(&account, &key);
            prop_assert!(PaymentId::parse(id.as_str()).is_some());
        }
    }
}
