//! The request count item: an account's requests in one one-second window, as the
//! execution environments report them (see [`crate::domain::RequestCounts`]). In the clients
//! table, beside the account's other items; DynamoDB's TTL deletes it.

use aws_sdk_dynamodb::types::Update;

use super::{n, s, Item, Reader, PK};
use crate::domain::AccountId;
use crate::store::error::{Entity, StoreError};

/// The count's attribute.
pub const REQUESTS: &str = "requests";

/// How long a count is kept after its window: it weighs on decisions for one second, and is
/// worth an hour of looking back at when an account was limited.
const RETENTION_SECONDS: u64 = 3600;

pub fn pk(account: &AccountId, window: u64) -> String {
    format!("RATE#{account}#{window}")
}

/// Adds `count` to the window's count (creating the item at the first report) and answers
/// the new total (`ReturnValues = UPDATED_NEW`, set by the caller).
pub fn add_update(table: &str, account: &AccountId, window: u64, count: u64) -> Update {
    Update::builder()
        .table_name(table)
        .key(PK, s(pk(account, window)))
        .update_expression("ADD #requests :count SET #ttl = :ttl")
        .expression_attribute_names("#requests", REQUESTS)
        .expression_attribute_names("#ttl", "ttl")
        .expression_attribute_values(":count", n(count))
        .expression_attribute_values(":ttl", n(window + RETENTION_SECONDS))
        .build()
        .expect("table, key and expression are set")
}

/// The total an addition answered.
pub fn total(attributes: &Item) -> Result<u64, StoreError> {
    Reader::new(attributes, Entity::RequestCount, PK).number(REQUESTS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_account_and_window_has_its_own_count() {
        let a = AccountId::generate().unwrap();
        let b = AccountId::generate().unwrap();
        assert_ne!(pk(&a, 1), pk(&a, 2));
        assert_ne!(pk(&a, 1), pk(&b, 1));
        assert!(pk(&a, 1_764_600_000).starts_with("RATE#acct_"));
        let update = add_update("t", &a, 5, 3);
        assert_eq!(
            update.expression_attribute_values().unwrap()[":ttl"],
            n(3605)
        );
        let item = Item::from([(REQUESTS.to_owned(), n(12))]);
        assert_eq!(total(&item).unwrap(), 12);
        assert!(total(&Item::new()).is_err());
    }
}
