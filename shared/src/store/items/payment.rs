//! The payment item (also the idempotency record: see `docs/data-model.md`).

use std::collections::HashMap;

use super::{n, s, Item, Reader, PK};
use crate::domain::{
    AccountId, Amount, Currency, Description, IdempotencyKey, Payment, PaymentId, PaymentStatus,
    RequestFingerprint, Timestamp,
};
use crate::store::error::{Entity, StoreError};
use crate::store::StoredPayment;

pub fn new_item(payment: &Payment, request_fingerprint: &RequestFingerprint) -> Item {
    let mut item = HashMap::from([
        (PK.to_owned(), s(payment.id.as_str())),
        ("entity".to_owned(), s("payment")),
        ("client_id".to_owned(), s(payment.client_id.as_str())),
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
