//! The API key item (looked up by digest on every request) and the key reference item (key
//! id -> account, for operators).

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::Update;

use aws_sdk_dynamodb::types::AttributeValue;

use super::{n, s, strings, strings_of, Item, Reader, PK};
use crate::domain::{
    AccountId, AccountStatus, IpAllowList, KeyDigest, KeyId, KeyKind, KeyLife, KeyPrefix,
    KeyStatus, Permissions, RateLimit, Timestamp,
};
use crate::store::error::{Entity, StoreError};
use crate::store::lifecycle::{AccountSettings, StoredKey};
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

/// Attribute of the key item that carries its account's own rate limit (absent: the stack's
/// default), so the auth step learns it from the one item it reads.
pub const RATE_LIMIT: &str = "rate_limit";

/// A restricted key's permissions, in order, on its entry and its item (a secret key has
/// none stored: it holds every permission).
pub const PERMISSIONS: &str = "permissions";
/// A limited key's IP ranges, on its entry and its item (absent: anywhere).
pub const ALLOWED_IPS: &str = "allowed_ips";

/// The attributes that say what a key of `kind` may do, for its entry or its item.
pub(super) fn grant_attributes(
    kind: KeyKind,
    permissions: Permissions,
    allowed_ips: &IpAllowList,
) -> Vec<(&'static str, AttributeValue)> {
    let mut attributes = Vec::new();
    if kind == KeyKind::Restricted {
        attributes.push((PERMISSIONS, strings(permissions.iter())));
    }
    if !allowed_ips.is_open() {
        attributes.push((ALLOWED_IPS, strings(allowed_ips.ranges())));
    }
    attributes
}

/// What a key of `kind` may do, read back from its entry or item: `None` for a restricted
/// key without readable permissions.
pub(super) fn permissions_from(
    kind: KeyKind,
    stored: Option<&AttributeValue>,
) -> Option<Permissions> {
    match (kind, strings_of(stored)?) {
        (KeyKind::Secret, _) => Some(Permissions::ALL),
        (KeyKind::Restricted, Some(names)) => Permissions::parse(names).ok(),
        (KeyKind::Restricted, None) => None,
    }
}

/// Where a key may be used from, read back: `None` when a range does not read.
pub(super) fn allowed_ips_from(stored: Option<&AttributeValue>) -> Option<IpAllowList> {
    match strings_of(stored)? {
        None => Some(IpAllowList::default()),
        Some(ranges) => IpAllowList::parse(ranges).ok(),
    }
}

pub fn new_item(account_id: &AccountId, settings: AccountSettings, key: &IssuedKey) -> Item {
    let mut item = HashMap::from([
        (PK.to_owned(), s(pk(&key.digest))),
        ("entity".to_owned(), s("api_key")),
        ("key_id".to_owned(), s(key.key_id.as_str())),
        ("account_id".to_owned(), s(account_id.as_str())),
        ("prefix".to_owned(), s(key.prefix.as_str())),
        ("status".to_owned(), s(KeyStatus::Active.as_str())),
        ("account_status".to_owned(), s(settings.status.as_str())),
        ("created_at".to_owned(), s(key.created_at.to_rfc3339())),
    ]);
    if let Some(limit) = settings.rate_limit {
        item.insert(RATE_LIMIT.to_owned(), n(limit.per_second()));
    }
    if let Some(at) = key.grant.expires_at {
        item.insert("expires_at".to_owned(), s(at.to_rfc3339()));
        item.insert("ttl".to_owned(), ttl_after(at));
    }
    item.extend(
        grant_attributes(
            key.prefix.kind(),
            key.grant.permissions,
            &key.grant.allowed_ips,
        )
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value)),
    );
    item
}

pub fn record_from_item(item: &Item) -> Result<KeyRecord, StoreError> {
    // The item's own id is its digest; it is named by key id, which is safe to log.
    let read = Reader::new(item, Entity::Key, "key_id");
    let prefix = read.parse("prefix", KeyPrefix::parse)?;
    let permissions = permissions_from(prefix.kind(), item.get(PERMISSIONS))
        .ok_or_else(|| read.corrupt(PERMISSIONS))?;
    let allowed_ips =
        allowed_ips_from(item.get(ALLOWED_IPS)).ok_or_else(|| read.corrupt(ALLOWED_IPS))?;
    Ok(KeyRecord {
        key_id: read.parse("key_id", KeyId::parse)?,
        account_id: read.parse("account_id", AccountId::parse)?,
        prefix,
        life: KeyLife {
            status: read.parse("status", KeyStatus::parse)?,
            expires_at: read.parse_opt("expires_at", Timestamp::parse)?,
        },
        account_status: read.parse("account_status", AccountStatus::parse)?,
        created_at: read.parse("created_at", Timestamp::parse)?,
        last_used_at: read.parse_opt(LAST_USED, Timestamp::parse)?,
        rate_limit: read.opt_number_parse(RATE_LIMIT, |n: u64| RateLimit::new(n).ok())?,
        permissions,
        allowed_ips,
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

/// Writes the key item as its account entry and the account's settings make it: every
/// attribute the auth step reads, and the TTL once the key's end is decided. An upsert, with
/// no condition: it applies whether or not the TTL already deleted the item (a deleted one
/// comes back dead, and is deleted again), so no change depends on whether the TTL ran.
/// `last_used_at` is left as it is.
pub fn projection_update(
    table: &str,
    account_id: &AccountId,
    settings: AccountSettings,
    key: &StoredKey,
) -> Update {
    let mut sets = vec![
        "#entity = :entity",
        "#key_id = :key_id",
        "#account_id = :account_id",
        "#prefix = :prefix",
        "#status = :status",
        "#account_status = :account_status",
        "#created_at = :created_at",
    ];
    let mut removes = vec![];
    let mut update = Update::builder()
        .table_name(table)
        .key(PK, s(pk(&key.digest)))
        .expression_attribute_names("#entity", "entity")
        .expression_attribute_names("#key_id", "key_id")
        .expression_attribute_names("#account_id", "account_id")
        .expression_attribute_names("#prefix", "prefix")
        .expression_attribute_names("#status", "status")
        .expression_attribute_names("#account_status", "account_status")
        .expression_attribute_names("#created_at", "created_at")
        .expression_attribute_names("#expires", "expires_at")
        .expression_attribute_names("#ttl", "ttl")
        .expression_attribute_names("#rate", RATE_LIMIT)
        .expression_attribute_names("#permissions", PERMISSIONS)
        .expression_attribute_names("#ips", ALLOWED_IPS)
        .expression_attribute_values(":entity", s("api_key"))
        .expression_attribute_values(":key_id", s(key.key_id.as_str()))
        .expression_attribute_values(":account_id", s(account_id.as_str()))
        .expression_attribute_values(":prefix", s(key.prefix.as_str()))
        .expression_attribute_values(":status", s(key.life.status.as_str()))
        .expression_attribute_values(":account_status", s(settings.status.as_str()))
        .expression_attribute_values(":created_at", s(key.created_at.to_rfc3339()));
    match key.life.expires_at {
        Some(at) => {
            sets.push("#expires = :expires");
            update = update.expression_attribute_values(":expires", s(at.to_rfc3339()));
        }
        None => removes.push("#expires"),
    }
    match settings.rate_limit {
        Some(limit) => {
            sets.push("#rate = :rate");
            update = update.expression_attribute_values(":rate", n(limit.per_second()));
        }
        None => removes.push("#rate"),
    }
    match key.kind() {
        KeyKind::Restricted => {
            sets.push("#permissions = :permissions");
            update =
                update.expression_attribute_values(":permissions", strings(key.permissions.iter()));
        }
        KeyKind::Secret => removes.push("#permissions"),
    }
    if key.allowed_ips.is_open() {
        removes.push("#ips");
    } else {
        sets.push("#ips = :ips");
        update = update.expression_attribute_values(":ips", strings(key.allowed_ips.ranges()));
    }
    match key.end() {
        Some(end) => {
            sets.push("#ttl = :ttl");
            update = update.expression_attribute_values(":ttl", ttl_after(end));
        }
        None => removes.push("#ttl"),
    }
    let mut expression = format!("SET {}", sets.join(", "));
    if !removes.is_empty() {
        expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
    }
    update
        .update_expression(expression)
        .build()
        .expect("table, key and expression are set")
}

/// The account-wide settings on the item of a key whose entry is malformed: only what is
/// known, and only on an item that exists (the caller has just read it), so nothing
/// half-formed is ever created.
pub fn settings_update(table: &str, digest: &KeyDigest, settings: AccountSettings) -> Update {
    let update = Update::builder()
        .table_name(table)
        .key(PK, s(pk(digest)))
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_names("#status", "account_status")
        .expression_attribute_values(":status", s(settings.status.as_str()))
        .expression_attribute_names("#rate", RATE_LIMIT);
    match settings.rate_limit {
        Some(limit) => update
            .update_expression("SET #status = :status, #rate = :rate")
            .expression_attribute_values(":rate", n(limit.per_second())),
        None => update.update_expression("SET #status = :status REMOVE #rate"),
    }
    .build()
    .expect("table, key and expression are set")
}

/// Revokes the item of a key whose entry is malformed (see [`settings_update`]).
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

/// Attribute of the key item that records when the key last authenticated a request.
pub const LAST_USED: &str = "last_used_at";

/// Records a use of the key at `at`, unless a use at or after `stale_before` is already
/// recorded (another execution environment got there first) or the item is gone: so at most
/// one such write succeeds per key per interval.
pub fn use_update(
    table: &str,
    digest: &KeyDigest,
    at: Timestamp,
    stale_before: Timestamp,
) -> Update {
    Update::builder()
        .table_name(table)
        .key(PK, s(pk(digest)))
        .update_expression("SET #used = :at")
        .condition_expression(
            "attribute_exists(pk) AND (attribute_not_exists(#used) OR #used < :stale)",
        )
        .expression_attribute_names("#used", LAST_USED)
        .expression_attribute_values(":at", s(at.to_rfc3339()))
        .expression_attribute_values(":stale", s(stale_before.to_rfc3339()))
        .build()
        .expect("table, key and expression are set")
}

/// `last_used_at` of a key item, as `(key id, when)`.
pub fn last_used(item: &Item) -> Result<(KeyId, Option<Timestamp>), StoreError> {
    let read = Reader::new(item, Entity::Key, "key_id");
    Ok((
        read.parse("key_id", KeyId::parse)?,
        read.parse_opt(LAST_USED, Timestamp::parse)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ApiKey, KeyEnvironment};

    fn issued() -> (AccountId, IssuedKey) {
        let key = ApiKey::generate(crate::domain::KeyKind::Secret, KeyEnvironment::Test).unwrap();
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
        let active = AccountSettings {
            status: AccountStatus::Active,
            rate_limit: None,
        };
        let item = new_item(&account, active, &key);
        let record = record_from_item(&item).unwrap();
        assert_eq!(record.rate_limit, None);
        let limited = new_item(
            &account,
            AccountSettings {
                rate_limit: Some(RateLimit::new(7).unwrap()),
                ..active
            },
            &key,
        );
        assert_eq!(
            record_from_item(&limited).unwrap().rate_limit,
            Some(RateLimit::new(7).unwrap())
        );
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
        let good = new_item(
            &account,
            AccountSettings {
                status: AccountStatus::Active,
                rate_limit: None,
            },
            &key,
        );
        for (attribute, value) in [
            ("key_id", s("nope")),
            ("account_id", s("acct_x")),
            ("prefix", s("sk_prod_AAAA")),
            ("status", s("paused")),
            ("account_status", s("ACTIVE")),
            ("created_at", s("yesterday")),
            ("expires_at", s("soon")),
            ("last_used_at", s("recently")),
            ("status", n(1)),
            ("rate_limit", n(0)),
            ("rate_limit", s("100")),
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
