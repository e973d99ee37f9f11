//! The account item, with its `keys` map (an entry per key it has ever had) and `version`.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Update};

use super::{n, s, Item, Reader, PK};
use crate::domain::{
    Account, AccountId, AccountName, AccountStatus, Email, KeyDigest, KeyId, KeyKind, KeyLife,
    KeyName, KeyPrefix, KeyStatus, RateLimit, Timestamp,
};
use crate::store::error::{Entity, StoreError};
use crate::store::lifecycle::{AccountRecord, AccountSettings, MalformedKey, StoredKey};
use crate::store::IssuedKey;

/// The account's own rate limit (absent: the stack's default); each key item carries a copy.
const RATE_LIMIT: &str = super::key::RATE_LIMIT;

pub fn pk(id: &AccountId) -> String {
    format!("ACCOUNT#{id}")
}

/// A new account, with its first key, at version 1.
pub fn new_item(account: &Account, first_key: &IssuedKey) -> Item {
    let mut item = HashMap::from([
        (PK.to_owned(), s(pk(&account.id))),
        ("entity".to_owned(), s("account")),
        ("account_id".to_owned(), s(account.id.as_str())),
        ("name".to_owned(), s(account.name.as_str())),
        ("status".to_owned(), s(account.status.as_str())),
        ("created_at".to_owned(), s(account.created_at.to_rfc3339())),
        (
            "keys".to_owned(),
            AttributeValue::M(HashMap::from([(
                first_key.key_id.as_str().to_owned(),
                key_entry(first_key),
            )])),
        ),
        // Optimistic concurrency for operator changes (rotation, revocation, status).
        ("version".to_owned(), n(1)),
    ]);
    if let Some(email) = &account.email {
        item.insert("email".to_owned(), s(email.as_str()));
    }
    item
}

/// Set on an entry whose end a roll or rotation gave it (`StoredKey::retiring`).
const RETIRING: &str = "retiring";

/// A key's entry in its account's `keys` map.
fn key_entry(key: &IssuedKey) -> AttributeValue {
    let mut entry = HashMap::from([
        ("digest".to_owned(), s(key.digest.to_hex())),
        ("prefix".to_owned(), s(key.prefix.as_str())),
        ("status".to_owned(), s(KeyStatus::Active.as_str())),
        ("created_at".to_owned(), s(key.created_at.to_rfc3339())),
    ]);
    if let Some(at) = key.grant.expires_at {
        entry.insert("expires_at".to_owned(), s(at.to_rfc3339()));
    }
    if let Some(name) = &key.grant.name {
        entry.insert("name".to_owned(), s(name.as_str()));
    }
    if let Some(replaced) = &key.replaces {
        entry.insert("replaces".to_owned(), s(replaced.as_str()));
    }
    let grant = &key.grant;
    entry.extend(
        super::key::grant_attributes(key.prefix.kind(), grant.permissions, &grant.allowed_ips)
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value)),
    );
    AttributeValue::M(entry)
}

/// One entry of the `keys` map, or what can be salvaged of a malformed one.
fn key_from_entry(key_id: &str, entry: &AttributeValue) -> Result<StoredKey, MalformedKey> {
    let fields = entry.as_m().ok();
    let get = |name: &str| {
        fields
            .and_then(|fields| fields.get(name))
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
    };
    let optional_time = |name: &str| match get(name) {
        Some(at) => Timestamp::parse(at).map(Some),
        None => Some(None),
    };
    let digest = get("digest").and_then(KeyDigest::from_hex);
    let attribute = |name: &str| fields.and_then(|fields| fields.get(name));
    let parse = || -> Option<StoredKey> {
        let prefix = KeyPrefix::parse(get("prefix")?)?;
        Some(StoredKey {
            key_id: KeyId::parse(key_id)?,
            digest: digest.clone()?,
            life: KeyLife {
                status: KeyStatus::parse(get("status")?)?,
                expires_at: optional_time("expires_at")?,
            },
            created_at: Timestamp::parse(get("created_at")?)?,
            revoked_at: optional_time("revoked_at")?,
            name: match attribute("name") {
                None => None,
                Some(name) => Some(KeyName::parse(name.as_s().ok()?.clone()).ok()?),
            },
            permissions: super::key::permissions_from(
                prefix.kind(),
                attribute(super::key::PERMISSIONS),
            )?,
            allowed_ips: super::key::allowed_ips_from(attribute(super::key::ALLOWED_IPS))?,
            replaces: match get("replaces") {
                None => None,
                Some(id) => Some(KeyId::parse(id)?),
            },
            // Entries written before the marker: only rotations gave secret keys an end.
            retiring: match attribute(RETIRING) {
                Some(flag) => *flag.as_bool().ok()?,
                None => prefix.kind() == KeyKind::Secret && get("expires_at").is_some(),
            },
            prefix,
        })
    };
    parse().ok_or_else(|| MalformedKey {
        name: key_id.to_owned(),
        digest,
    })
}

pub fn account_from_item(item: &Item) -> Result<Account, StoreError> {
    let read = Reader::new(item, Entity::Account, "account_id");
    Ok(Account {
        id: read.parse("account_id", AccountId::parse)?,
        name: read.parse("name", |name| AccountName::parse(name.to_owned()).ok())?,
        email: read.parse_opt("email", |email| Email::parse(email.to_owned()).ok())?,
        status: read.parse("status", AccountStatus::parse)?,
        created_at: read.parse("created_at", Timestamp::parse)?,
    })
}

/// The account, its version and its keys, oldest first.
pub fn record_from_item(item: &Item) -> Result<AccountRecord, StoreError> {
    let account = account_from_item(item)?;
    let read = Reader::new(item, Entity::Account, "account_id");
    let version = read.number("version")?;
    let rate_limit = read.opt_number_parse(RATE_LIMIT, |n: u64| RateLimit::new(n).ok())?;
    let mut keys = Vec::new();
    let mut malformed = Vec::new();
    for (key_id, entry) in read.map("keys")? {
        match key_from_entry(key_id, entry) {
            Ok(key) => keys.push(key),
            Err(bad) => {
                tracing::warn!(
                    account_id = %account.id,
                    entry = %bad.name,
                    digest_readable = bad.digest.is_some(),
                    "malformed key entry on account item"
                );
                malformed.push(bad);
            }
        }
    }
    keys.sort_by(|a, b| (a.created_at, &a.key_id).cmp(&(b.created_at, &b.key_id)));
    malformed.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(AccountRecord {
        account,
        version,
        rate_limit,
        keys,
        malformed,
    })
}

/// An update of the account item that applies only if nobody changed it since `version`
/// was read, and bumps the version.
struct VersionedUpdate {
    sets: Vec<String>,
    removes: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl VersionedUpdate {
    fn new(version: u64) -> Self {
        VersionedUpdate {
            sets: vec!["#version = #version + :one".to_owned()],
            removes: Vec::new(),
            names: HashMap::from([("#version".to_owned(), "version".to_owned())]),
            values: HashMap::from([
                (":one".to_owned(), n(1)),
                (":expected".to_owned(), n(version)),
            ]),
        }
    }

    fn set(mut self, expression: String) -> Self {
        self.sets.push(expression);
        self
    }

    fn remove(mut self, path: String) -> Self {
        self.removes.push(path);
        self
    }

    fn name(mut self, placeholder: impl Into<String>, attribute: impl Into<String>) -> Self {
        self.names.insert(placeholder.into(), attribute.into());
        self
    }

    fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values.insert(placeholder.to_owned(), value);
        self
    }

    fn build(self, table: &str, account: &AccountId) -> Update {
        let mut expression = format!("SET {}", self.sets.join(", "));
        if !self.removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", self.removes.join(", ")));
        }
        Update::builder()
            .table_name(table)
            .key(PK, s(pk(account)))
            .update_expression(expression)
            .condition_expression("#version = :expected")
            .set_expression_attribute_names(Some(self.names))
            .set_expression_attribute_values(Some(self.values))
            .build()
            .expect("table, key and expression are set")
    }
}

/// Adds `new_key` to the account, gives each retiring key its end, and drops the pruned
/// entries.
pub fn rotation_update(
    table: &str,
    record: &AccountRecord,
    new_key: &IssuedKey,
    retiring: &[StoredKey],
    pruned: &[StoredKey],
    retire_at: Timestamp,
) -> Update {
    let mut update = VersionedUpdate::new(record.version)
        .name("#keys", "keys")
        .name("#new", new_key.key_id.as_str())
        .value(":entry", key_entry(new_key))
        .set("#keys.#new = :entry".to_owned());
    // DynamoDB refuses names and values an expression does not use, so these are only there
    // when some key is retiring.
    if !retiring.is_empty() {
        update = update
            .name("#expires", "expires_at")
            .name("#retiring", RETIRING)
            .value(":true", AttributeValue::Bool(true));
    }
    for (i, key) in retiring.iter().enumerate() {
        // Each key's own end: the rotation's, or its own if that comes first.
        let end = key.life.expires_at.unwrap_or(retire_at);
        update = update
            .name(format!("#k{i}"), key.key_id.as_str())
            .value(&format!(":end{i}"), s(end.to_rfc3339()))
            .set(format!("#keys.#k{i}.#expires = :end{i}"))
            .set(format!("#keys.#k{i}.#retiring = :true"));
    }
    for (i, key) in pruned.iter().enumerate() {
        update = update
            .name(format!("#p{i}"), key.key_id.as_str())
            .remove(format!("#keys.#p{i}"));
    }
    update.build(table, &record.account.id)
}

/// Marks the key's entry revoked, with when; the key it reinstates (see
/// `plan_revocation`) loses its end.
pub fn revocation_update(
    table: &str,
    record: &AccountRecord,
    key: &StoredKey,
    reinstated: Option<&StoredKey>,
) -> Update {
    let revoked_at = key.revoked_at.expect("a revoked entry has its time");
    let update = VersionedUpdate::new(record.version)
        .name("#keys", "keys")
        .name("#key", key.key_id.as_str())
        .name("#status", "status")
        .name("#revoked_at", "revoked_at")
        .value(":revoked", s(KeyStatus::Revoked.as_str()))
        .value(":at", s(revoked_at.to_rfc3339()))
        .set("#keys.#key.#status = :revoked".to_owned())
        .set("#keys.#key.#revoked_at = :at".to_owned());
    match reinstated {
        None => update,
        Some(old) => {
            let update = update
                .name("#old", old.key_id.as_str())
                .name("#expires", "expires_at")
                .name("#retiring", RETIRING)
                .remove("#keys.#old.#retiring".to_owned());
            match old.life.expires_at {
                Some(at) => update
                    .value(":end", s(at.to_rfc3339()))
                    .set("#keys.#old.#expires = :end".to_owned()),
                None => update.remove("#keys.#old.#expires".to_owned()),
            }
        }
    }
    .build(table, &record.account.id)
}

/// Marks a malformed entry revoked (its other attributes cannot be trusted to rewrite).
pub fn malformed_revocation_update(table: &str, record: &AccountRecord, name: &str) -> Update {
    VersionedUpdate::new(record.version)
        .name("#keys", "keys")
        .name("#key", name)
        .name("#status", "status")
        .value(":revoked", s(KeyStatus::Revoked.as_str()))
        .set("#keys.#key.#status = :revoked".to_owned())
        .build(table, &record.account.id)
}

/// The account-wide settings (status, and the account's own rate limit, absent for the
/// stack's default) as a change leaves them.
pub fn settings_update(table: &str, record: &AccountRecord, settings: AccountSettings) -> Update {
    let update = VersionedUpdate::new(record.version)
        .name("#status", "status")
        .value(":status", s(settings.status.as_str()))
        .set("#status = :status".to_owned())
        .name("#rate", RATE_LIMIT);
    match settings.rate_limit {
        Some(limit) => update
            .value(":rate", n(limit.per_second()))
            .set("#rate = :rate".to_owned()),
        None => update.remove("#rate".to_owned()),
    }
    .build(table, &record.account.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ApiKey, KeyEnvironment};

    fn sample() -> (Account, IssuedKey) {
        let created_at = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
        let account = Account {
            id: AccountId::generate().unwrap(),
            name: AccountName::parse("Ada Lovelace".into()).unwrap(),
            email: Some(Email::parse("ada@example.com".into()).unwrap()),
            status: AccountStatus::Active,
            created_at,
        };
        let key = ApiKey::generate(crate::domain::KeyKind::Secret, KeyEnvironment::Live).unwrap();
        (
            account,
            IssuedKey::new(&key, KeyId::generate().unwrap(), created_at),
        )
    }

    #[test]
    fn an_account_item_reads_back_as_written() {
        let (account, key) = sample();
        let record = record_from_item(&new_item(&account, &key)).unwrap();
        assert_eq!(record.account, account);
        assert_eq!(record.version, 1);
        assert_eq!(record.keys.len(), 1);
        let stored = &record.keys[0];
        assert_eq!(
            (
                &stored.key_id,
                &stored.digest,
                &stored.prefix,
                stored.created_at
            ),
            (&key.key_id, &key.digest, &key.prefix, key.created_at)
        );
        assert_eq!(
            stored.life,
            KeyLife {
                status: KeyStatus::Active,
                expires_at: None
            }
        );
    }

    /// Entries from before self-service keys carry no permissions, IP ranges or marker:
    /// they read as the secret keys they are, and one a rotation gave an end as retiring.
    #[test]
    fn an_entry_written_before_key_permissions_reads_as_a_secret_key() {
        let (account, key) = sample();
        let mut item = new_item(&account, &key);
        let AttributeValue::M(keys) = item.get_mut("keys").unwrap() else {
            unreachable!()
        };
        let legacy = AttributeValue::M(HashMap::from([
            ("digest".to_owned(), s(key.digest.to_hex())),
            ("prefix".to_owned(), s(key.prefix.as_str())),
            ("status".to_owned(), s("active")),
            ("created_at".to_owned(), s("2026-01-01T00:00:00.000Z")),
            ("expires_at".to_owned(), s("2026-01-02T00:00:00.000Z")),
        ]));
        keys.insert(key.key_id.to_string(), legacy);
        let stored = &record_from_item(&item).unwrap().keys[0];
        assert_eq!(stored.permissions, crate::domain::Permissions::ALL);
        assert!(stored.allowed_ips.is_open());
        assert!(stored.retiring);
        let AttributeValue::M(keys) = item.get_mut("keys").unwrap() else {
            unreachable!()
        };
        let AttributeValue::M(fields) = keys.get_mut(key.key_id.as_str()).unwrap() else {
            unreachable!()
        };
        fields.remove("expires_at");
        assert!(!record_from_item(&item).unwrap().keys[0].retiring);
    }

    #[test]
    fn a_malformed_key_entry_is_set_apart_and_the_rest_reads() {
        let (account, key) = sample();
        let mut item = new_item(&account, &key);
        let AttributeValue::M(keys) = item.get_mut("keys").unwrap() else {
            unreachable!()
        };
        keys.insert("key_BBBBBBBBBBBBBBBBBBBB".into(), s("not a map"));
        let mut damaged = key_entry(&key);
        if let AttributeValue::M(fields) = &mut damaged {
            fields.insert("created_at".into(), s("yesterday"));
        }
        keys.insert("key_CCCCCCCCCCCCCCCCCCCC".into(), damaged);
        let record = record_from_item(&item).unwrap();
        assert_eq!(record.keys.len(), 1);
        assert_eq!(record.keys[0].key_id, key.key_id);
        assert_eq!(
            record.malformed,
            vec![
                MalformedKey {
                    name: "key_BBBBBBBBBBBBBBBBBBBB".into(),
                    digest: None
                },
                MalformedKey {
                    name: "key_CCCCCCCCCCCCCCCCCCCC".into(),
                    digest: Some(key.digest.clone())
                },
            ]
        );
        let mut item = new_item(&account, &key);
        item.insert("version".into(), s("1"));
        assert!(matches!(
            record_from_item(&item),
            Err(StoreError::Corrupt {
                attribute: "version",
                ..
            })
        ));
    }

    #[test]
    fn a_rotation_names_only_what_it_uses() {
        let (account, key) = sample();
        let record = record_from_item(&new_item(&account, &key)).unwrap();
        let (_, new_key) = sample();
        let update = rotation_update("t", &record, &new_key, &[], &[], Timestamp::now());
        let names = update.expression_attribute_names().unwrap();
        assert!(!names.contains_key("#expires"));
        assert!(!update.update_expression().contains("REMOVE"));
        let update = rotation_update(
            "t",
            &record,
            &new_key,
            &record.keys,
            &record.keys,
            Timestamp::now(),
        );
        let expression = update.update_expression();
        assert!(
            expression.contains("#keys.#k0.#expires = :end0"),
            "{expression}"
        );
        assert!(
            expression.contains("#keys.#k0.#retiring = :true"),
            "{expression}"
        );
        assert!(update.update_expression().ends_with(" REMOVE #keys.#p0"));
        assert_eq!(
            update.expression_attribute_names().unwrap()["#k0"],
            key.key_id.as_str()
        );
    }
}
