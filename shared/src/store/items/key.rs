//! The API key item (looked up by digest on every request) and the key reference item (key
//! id -> account, for operators).

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::Update;

use super::{n, s, Item, Reader, PK};
use crate::domain::{
    AccountId, AccountStatus, KeyDigest, KeyId, KeyLife, KeyPrefix, KeyStatus, Timestamp,
};
use crate::store::error::{Entity, StoreError};
use crate::store::{IssuedKey, KeyRecord};

/// How long DynamoDB keeps a dead key item before its TTL deletes it. Auth refuses the key
/// either way; the account item keeps its history.
const DEAD_KEY_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

pub fn pk(digest: &KeyDigest) -> String {
    format!("KEY#{}", digest.to_hex())
}

/// The item that maps a key id to its account, so operators can act on a key by its id.
pub fn ref_pk(id: &KeyId) -> String {
    format!("KEYID#{id}")
}

pub fn new_item(account_id: &AccountId, account_status: AccountStatus, key: &IssuedKey) -> Item {
    HashMap::from([
        (PK.to_owned(), s(pk(&key.digest))),
        ("entity".to_owned(), s("api_key")),
        ("key_id".to_owned(), s(key.key_id.as_str())),
        ("account_id".to_owned(), s(account_id.as_str())),
        ("prefix".to_owned(), s(key.prefix.as_str())),
        ("status".to_owned(), s(KeyStatus::Active.as_str())),
        ("account_status".to_owned(), s(account_status.as_str())),
        ("created_at".to_owned(), s(key.created_at.to_rfc3339())),
    ])
}

pub fn record_from_item(item: &Item) -> Result<KeyRecord, StoreError> {
    // The item's own id is its digest; it is named by key id, which is safe to log.
    let read = Reader::new(item, Entity::Key, "key_id");
    Ok(KeyRecord {
        key_id: read.parse("key_id", KeyId::parse)?,
        account_id: read.parse("account_id", AccountId::parse)?,
        prefix: read.parse("prefix", KeyPrefix::parse)?,
        life: KeyLife {
            status: read.parse("status", KeyStatus::parse)?,
            expires_at: read.parse_opt("expires_at", Timestamp::parse)?,
        },
        account_status: read.parse("account_status", AccountStatus::parse)?,
        created_at: read.parse("created_at", Timestamp::parse)?,
    })
}

pub fn new_ref_item(account_id: &AccountId, key_id: &KeyId) -> Item {
    HashMap::from([
        (PK.to_owned(), s(ref_pk(key_id))),
        ("entity".to_owned(), s("api_key_ref")),
        ("key_id".to_owned(), s(key_id.as_str())),
        ("account_id".to_owned(), s(account_id.as_str())),
    ])
}

pub fn account_of_ref(item: &Item) -> Result<AccountId, StoreError> {
    Reader::new(item, Entity::KeyReference, "key_id").parse("account_id", AccountId::parse)
}

fn ttl_after(at: Timestamp) -> aws_sdk_dynamodb::types::AttributeValue {
    n(at.plus(DEAD_KEY_RETENTION).unix_seconds())
}

/// Sets the key's end (a rotation's grace period) and schedules the dead item's deletion.
pub fn expiry_update(table: &str, digest: &KeyDigest, at: Timestamp) -> Update {
    Update::builder()
        .table_name(table)
        .key(PK, s(pk(digest)))
        .update_expression("SET #expires = :at, #ttl = :ttl")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_names("#expires", "expires_at")
        .expression_attribute_names("#ttl", "ttl")
        .expression_attribute_values(":at", s(at.to_rfc3339()))
        .expression_attribute_values(":ttl", ttl_after(at))
        .build()
        .expect("table, key and expression are set")
}

pub fn revocation_update(table: &str, digest: &KeyDigest, now: Timestamp) -> Update {
    Update::builder()
        .table_name(table)
        .key(PK, s(pk(digest)))
        .update_expression("SET #status = :revoked, #ttl = :ttl")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_names("#status", "status")
        .expression_attribute_names("#ttl", "ttl")
        .expression_attribute_values(":revoked", s(KeyStatus::Revoked.as_str()))
        .expression_attribute_values(":ttl", ttl_after(now))
        .build()
        .expect("table, key and expression are set")
}

/// The key item's copy of its account's status.
pub fn account_status_update(table: &str, digest: &KeyDigest, status: AccountStatus) -> Update {
    Update::builder()
        .table_name(table)
        .key(PK, s(pk(digest)))
        .update_expression("SET #status = :status")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_names("#status", "account_status")
        .expression_attribute_values(":status", s(status.as_str()))
        .build()
        .expect("table, key and expression are set")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ApiKey, KeyEnvironment};

    fn issued() -> (AccountId, IssuedKey) {
        let key = ApiKey::generate(KeyEnvironment::Test).unwrap();
        let issued = IssuedKey::new(
            &key,
            KeyId::generate().unwrap(),
            Timestamp::parse("2026-01-01T00:00:00Z").unwrap(),
        );
        (AccountId::generate().unwrap(), issued)
    }

    #[test]
    fn a_key_item_reads_back_as_written() {
        let (account, key) = issued();
        let item = new_item(&account, AccountStatus::Active, &key);
        let record = record_from_item(&item).unwrap();
        assert_eq!(record.key_id, key.key_id);
        assert_eq!(record.account_id, account);
        assert_eq!(record.prefix, key.prefix);
        assert_eq!(
            record.life,
            KeyLife {
                status: KeyStatus::Active,
                expires_at: None
            }
        );
        assert_eq!(record.created_at, key.created_at);
        let reference = new_ref_item(&account, &key.key_id);
        assert_eq!(account_of_ref(&reference).unwrap(), account);
    }

    #[test]
    fn every_malformed_attribute_is_reported_by_name_not_by_value() {
        let (account, key) = issued();
        let good = new_item(&account, AccountStatus::Active, &key);
        for (attribute, value) in [
            ("key_id", s("nope")),
            ("account_id", s("acct_x")),
            ("prefix", s("sk_prod_AAAA")),
            ("status", s("paused")),
            ("account_status", s("ACTIVE")),
            ("created_at", s("yesterday")),
            ("expires_at", s("soon")),
            ("status", n(1)),
        ] {
            let mut item = good.clone();
            item.insert(attribute.to_owned(), value);
            match record_from_item(&item) {
                Err(StoreError::Corrupt {
                    entity: Entity::Key,
                    attribute: named,
                    ..
                }) => {
                    assert_eq!(named, attribute)
                }
                other => panic!("{attribute}: {other:?}"),
            }
        }
        let mut item = good.clone();
        item.remove("account_id");
        let err = record_from_item(&item).unwrap_err();
        assert!(!format!("{err:?}").contains(&key.digest.to_hex()));
    }
}
