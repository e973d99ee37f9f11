//! DynamoDB implementation of the read traits: a payment by id (one strongly consistent
//! `GetItem` on the table) and an account's payments (one `Query` on the `by_account`
//! index, eventually consistent). Item shapes live in [`super::items::payment`].

use aws_sdk_dynamodb::types::AttributeValue;

use super::dynamo::{classify, Call, DynamoStore};
use super::error::{Entity, StoreError};
use super::items::payment::{
    list_key, list_key_ceiling, list_key_floor, stored_from_item, ACCOUNT_ATTRIBUTE,
    BY_ACCOUNT_INDEX, LIST_KEY,
};
use super::items::Item;
use super::{GetPayment, ListCursor, ListPayments, ListRange, PaymentPage, StoredPayment};
use crate::domain::{AccountId, PaymentId};

impl GetPayment for DynamoStore {
    async fn get_payment(&self, id: &PaymentId) -> Result<Option<StoredPayment>, StoreError> {
        // Strongly consistent: a payment can be read on the request right after its 201.
        self.payment(id).await
    }
}

/// The sort-key range of one page. Both ends are exclusive, and neither is ever a stored
/// key except a cursor's own: the `created` bounds are written as the floor and ceiling of
/// their instant (`T#` and `T#~`), which no list key equals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct KeyRange {
    pub lower: Option<String>,
    pub upper: Option<String>,
    /// Newest first (descending); ascending when reading back from an `ending_before`.
    pub descending: bool,
}

impl KeyRange {
    /// `None` when the bounds leave nothing between them.
    pub fn of(range: &ListRange) -> Option<KeyRange> {
        let mut lower = range.created_gte.map(list_key_floor);
        let mut upper = range.created_lte.map(list_key_ceiling);
        let mut descending = true;
        match &range.cursor {
            None => {}
            Some(ListCursor::After(position)) => {
                let key = list_key(position);
                upper = Some(upper.map_or(key.clone(), |bound| bound.min(key)));
            }
            Some(ListCursor::Before(position)) => {
                let key = list_key(position);
                lower = Some(lower.map_or(key.clone(), |bound| bound.max(key)));
                descending = false;
            }
        }
        if let (Some(lower), Some(upper)) = (&lower, &upper) {
            if lower >= upper {
                return None;
            }
        }
        Some(KeyRange {
            lower,
            upper,
            descending,
        })
    }

    /// The key condition expression, its values, and whether the bounds themselves can
    /// come back (`BETWEEN` is inclusive, so a cursor's own item must then be dropped).
    fn condition(&self, account: &AccountId) -> (String, Vec<(&'static str, String)>, bool) {
        let mut values = vec![(":account", account.as_str().to_owned())];
        let (range, inclusive) = match (&self.lower, &self.upper) {
            (None, None) => (String::new(), false),
            (Some(lower), None) => {
                values.push((":lower", lower.clone()));
                (" AND #list_key > :lower".to_owned(), false)
            }
            (None, Some(upper)) => {
                values.push((":upper", upper.clone()));
                (" AND #list_key < :upper".to_owned(), false)
            }
            (Some(lower), Some(upper)) => {
                values.push((":lower", lower.clone()));
                values.push((":upper", upper.clone()));
                (" AND #list_key BETWEEN :lower AND :upper".to_owned(), true)
            }
        };
        (format!("#account = :account{range}"), values, inclusive)
    }
}

impl ListPayments for DynamoStore {
    async fn list_payments(
        &self,
        account: &AccountId,
        range: &ListRange,
    ) -> Result<PaymentPage, StoreError> {
        let Some(keys) = KeyRange::of(range) else {
            return Ok(PaymentPage {
                payments: Vec::new(),
                has_more: false,
            });
        };
        let (condition, values, inclusive) = keys.condition(account);
        // One more than the page, to learn `has_more`; one more again when an inclusive
        // bound may hand back the cursor's own item.
        let wanted = range.limit + 1;
        let mut found: Vec<Item> = Vec::with_capacity(wanted + 1);
        let mut start = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.payments_table)
                .index_name(BY_ACCOUNT_INDEX)
                .key_condition_expression(&condition)
                .expression_attribute_names("#account", ACCOUNT_ATTRIBUTE)
                .scan_index_forward(!keys.descending)
                .limit((wanted + usize::from(inclusive) - found.len()) as i32)
                .set_exclusive_start_key(start);
            if keys.lower.is_some() || keys.upper.is_some() {
                query = query.expression_attribute_names("#list_key", LIST_KEY);
            }
            for (name, value) in &values {
                query = query.expression_attribute_values(*name, AttributeValue::S(value.clone()));
            }
            let output = query
                .send()
                .await
                .map_err(|err| classify(err, Call::Read))?;
            found.extend(output.items.unwrap_or_default().into_iter().filter(|item| {
                let key = item.get(LIST_KEY).and_then(|v| v.as_s().ok());
                key.is_none() || (key != keys.lower.as_ref() && key != keys.upper.as_ref())
            }));
            start = output.last_evaluated_key;
            // A page of up to 101 small items stays far below the 1 MB a Query returns at
            // once, but a short answer with a continuation key is read on, not trusted.
            if found.len() >= wanted || start.is_none() {
                break;
            }
        }
        let has_more = found.len() > range.limit;
        found.truncate(range.limit);
        let mut payments = Vec::with_capacity(found.len());
        for item in &found {
            let stored = stored_from_item(item)?;
            // The index is partitioned by account; a foreign item here would be a bug, and
            // is refused rather than shown.
            if &stored.payment.client_id != account {
                return Err(StoreError::corrupt(
                    Entity::Payment,
                    stored.payment.id.as_str(),
                    "client_id",
                ));
            }
            payments.push(stored.payment);
        }
        if !keys.descending {
            payments.reverse();
        }
        Ok(PaymentPage { payments, has_more })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Timestamp;
    use crate::store::ListPosition;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    fn position(time: &str, id: &str) -> ListPosition {
        ListPosition {
            created_at: at(time),
            id: PaymentId::parse(id).unwrap(),
        }
    }

    fn range(cursor: Option<ListCursor>, gte: Option<&str>, lte: Option<&str>) -> ListRange {
        ListRange {
            limit: 10,
            created_gte: gte.map(at),
            created_lte: lte.map(at),
            cursor,
        }
    }

    #[test]
    fn created_bounds_and_cursors_combine_into_one_exclusive_range() {
        let cursor = position("2026-01-02T00:00:00Z", "pay_AAAAAAAAAAAAAAAAAAAA");
        let cursor_key = "2026-01-02T00:00:00.000Z#pay_AAAAAAAAAAAAAAAAAAAA".to_owned();
        let keys = KeyRange::of(&range(None, Some("2026-01-01T00:00:00Z"), None)).unwrap();
        assert_eq!(keys.lower.as_deref(), Some("2026-01-01T00:00:00.000Z#"));
        assert_eq!(keys.upper, None);
        assert!(keys.descending);

        let keys = KeyRange::of(&range(
            Some(ListCursor::After(cursor.clone())),
            None,
            Some("2026-01-03T00:00:00Z"),
        ))
        .unwrap();
        assert_eq!(keys.upper, Some(cursor_key.clone()), "the tighter bound");
        let keys = KeyRange::of(&range(
            Some(ListCursor::After(cursor.clone())),
            None,
            Some("2026-01-01T00:00:00Z"),
        ))
        .unwrap();
        assert_eq!(keys.upper.as_deref(), Some("2026-01-01T00:00:00.000Z#~"));

        let keys = KeyRange::of(&range(
            Some(ListCursor::Before(cursor.clone())),
            Some("2026-01-01T00:00:00Z"),
            None,
        ))
        .unwrap();
        assert_eq!(keys.lower, Some(cursor_key));
        assert!(!keys.descending);

        // Nothing can lie between the bounds: no query at all.
        assert_eq!(
            KeyRange::of(&range(
                None,
                Some("2026-01-02T00:00:00Z"),
                Some("2026-01-01T00:00:00Z")
            )),
            None
        );
        assert_eq!(
            KeyRange::of(&range(
                Some(ListCursor::Before(cursor)),
                None,
                Some("2026-01-01T00:00:00Z")
            )),
            None
        );
    }

    #[test]
    fn one_key_condition_per_shape_of_range() {
        let account = AccountId::parse("acct_AAAAAAAAAAAAAAAAAAAA").unwrap();
        let condition = |lower: Option<&str>, upper: Option<&str>| {
            KeyRange {
                lower: lower.map(str::to_owned),
                upper: upper.map(str::to_owned),
                descending: true,
            }
            .condition(&account)
        };
        assert_eq!(condition(None, None).0, "#account = :account");
        assert_eq!(
            condition(Some("a"), None).0,
            "#account = :account AND #list_key > :lower"
        );
        assert_eq!(
            condition(None, Some("b")).0,
            "#account = :account AND #list_key < :upper"
        );
        let (text, values, inclusive) = condition(Some("a"), Some("b"));
        assert_eq!(
            text,
            "#account = :account AND #list_key BETWEEN :lower AND :upper"
        );
        assert_eq!(values.len(), 3);
        assert!(inclusive);
    }
}
