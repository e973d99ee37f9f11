//! The payment item (also the idempotency record: see `docs/data-model.md`).

use std::collections::HashMap;

use super::{n, s, Item, Reader, PK};
use crate::domain::{
    AccountId, Amount, Currency, Description, IdempotencyKey, Payment, PaymentId, PaymentStatus,
    RequestFingerprint, Timestamp,
};
use crate::store::error::{Entity, StoreError};
use crate::store::{ListPosition, StoredPayment};

/// The global secondary index that lists an account's payments: partition key
/// [`ACCOUNT_ATTRIBUTE`], sort key [`LIST_KEY`], every attribute projected.
pub const BY_ACCOUNT_INDEX: &str = "by_account";
pub const ACCOUNT_ATTRIBUTE: &str = "client_id";
/// `created_at` (fixed width: RFC 3339, UTC, milliseconds) + `#` + payment id, so that the
/// string order is the list order and two payments of the same millisecond still differ.
pub const LIST_KEY: &str = "list_key";

pub fn list_key(position: &ListPosition) -> String {
    format!("{}#{}", position.created_at.to_rfc3339(), position.id)
}

/// The lowest list key of an instant: every payment created then sorts at or above it.
pub fn list_key_floor(at: Timestamp) -> String {
    format!("{}#", at.to_rfc3339())
}

/// The highest list key of an instant: `~` sorts above every id character (base62).
pub fn list_key_ceiling(at: Timestamp) -> String {
    format!("{}#~", at.to_rfc3339())
}

pub fn new_item(payment: &Payment, request_fingerprint: &RequestFingerprint) -> Item {
    let mut item = HashMap::from([
        (PK.to_owned(), s(payment.id.as_str())),
        ("entity".to_owned(), s("payment")),
        (ACCOUNT_ATTRIBUTE.to_owned(), s(payment.client_id.as_str())),
        (LIST_KEY.to_owned(), s(list_key(&ListPosition::of(payment)))),
        ("amount".to_owned(), n(payment.amount.minor_units())),
        ("currency".to_owned(), s(payment.currency.code())),
        ("status".to_owned(), s(payment.status.as_str())),
        ("created_at".to_owned(), s(payment.created_at.to_rfc3339())),
        (
            "request_fingerprint".to_owned(),
            s(request_fingerprint.as_str()),
        ),
    ]);
    if let Some(description) = &payment.description {
        item.insert("description".to_owned(), s(description.as_str()));
    }
    if let Some(key) = &payment.idempotency_key {
        item.insert("idempotency_key".to_owned(), s(key.as_str()));
    }
    item
}

pub fn stored_from_item(item: &Item) -> Result<StoredPayment, StoreError> {
    let read = Reader::new(item, Entity::Payment, PK);
    let amount = read.number::<i64>("amount")?;
    Ok(StoredPayment {
        payment: Payment {
            id: read.parse(PK, PaymentId::parse)?,
            client_id: read.parse("client_id", AccountId::parse)?,
            amount: Amount::parse(amount).map_err(|_| read.corrupt("amount"))?,
            currency: read.parse("currency", |code| Currency::parse(code).ok())?,
            description: read.parse_opt("description", |text| {
                Description::parse(text.to_owned()).ok()
            })?,
            status: read.parse("status", PaymentStatus::parse)?,
            created_at: read.parse("created_at", Timestamp::parse)?,
            idempotency_key: read.parse_opt("idempotency_key", |key| {
                IdempotencyKey::parse(key.as_bytes()).ok()
            })?,
        },
        request_fingerprint: read.parse("request_fingerprint", RequestFingerprint::parse)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{fingerprint, NewPayment};

    fn sample(description: Option<&str>, key: Option<&str>) -> (Payment, RequestFingerprint) {
        let new = NewPayment {
            amount: Amount::parse(1250).unwrap(),
            currency: Currency::parse("eur").unwrap(),
            description: description.map(|d| Description::parse(d.to_owned()).unwrap()),
        };
        let payment = Payment {
            id: PaymentId::generate().unwrap(),
            client_id: AccountId::generate().unwrap(),
            amount: new.amount,
            currency: new.currency,
            description: new.description.clone(),
            status: PaymentStatus::Pending,
            created_at: Timestamp::now(),
            idempotency_key: key.map(|k| IdempotencyKey::parse(k.as_bytes()).unwrap()),
        };
        (payment, fingerprint(&new))
    }

    #[test]
    fn a_payment_item_reads_back_as_written() {
        for (description, key) in [(None, None), (Some("Order 1"), Some("order-1"))] {
            let (payment, print) = sample(description, key);
            let item = new_item(&payment, &print);
            assert_eq!(item.contains_key("description"), description.is_some());
            let stored = stored_from_item(&item).unwrap();
            assert_eq!(stored.payment, payment);
            assert_eq!(stored.request_fingerprint, print);
            assert_eq!(
                item[LIST_KEY].as_s().unwrap(),
                &format!("{}#{}", payment.created_at.to_rfc3339(), payment.id)
            );
        }
    }

    #[test]
    fn list_keys_sort_as_the_list_does_and_bounds_enclose_an_instant() {
        let at = |text: &str| Timestamp::parse(text).unwrap();
        let id = |text: &str| PaymentId::parse(text).unwrap();
        let positions = [
            ListPosition {
                created_at: at("2026-01-01T00:00:00Z"),
                id: id("pay_zzzzzzzzzzzzzzzzzzzz"),
            },
            ListPosition {
                created_at: at("2026-01-01T00:00:00.001Z"),
                id: id("pay_00000000000000000000"),
            },
            ListPosition {
                created_at: at("2026-01-01T00:00:00.001Z"),
                id: id("pay_0000000000000000000A"),
            },
            ListPosition {
                created_at: at("2026-01-01T00:00:01Z"),
                id: id("pay_00000000000000000000"),
            },
        ];
        for pair in positions.windows(2) {
            assert!(pair[0] < pair[1]);
            assert!(list_key(&pair[0]) < list_key(&pair[1]), "{pair:?}");
        }
        for position in &positions {
            let key = list_key(position);
            assert!(list_key_floor(position.created_at) < key);
            assert!(key < list_key_ceiling(position.created_at));
        }
    }

    #[test]
    fn malformed_payment_items_are_corrupt_not_a_panic() {
        let (payment, print) = sample(Some("d"), Some("k"));
        let good = new_item(&payment, &print);
        for (attribute, value) in [
            ("amount", n(0)),
            ("amount", s("100")),
            ("amount", n("1e400")),
            ("currency", s("XXX")),
            ("status", s("paid")),
            ("client_id", s("acct_")),
            ("description", s("x".repeat(501))),
            ("idempotency_key", s("")),
            ("request_fingerprint", s("abc")),
            ("created_at", n(5)),
        ] {
            let mut item = good.clone();
            item.insert(attribute.to_owned(), value);
            match stored_from_item(&item) {
                Err(StoreError::Corrupt {
                    entity: Entity::Payment,
                    attribute: named,
                    id,
                }) => {
                    assert_eq!(named, attribute);
                    assert_eq!(id, payment.id.as_str());
                }
                other => panic!("{attribute}: {other:?}"),
            }
        }
    }
}
