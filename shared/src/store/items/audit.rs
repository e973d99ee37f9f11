//! The audit event item: partition = account id, sort key = time then event id, so one
//! account's events read back in order with one query. Kept [`AUDIT_RETENTION`] by TTL.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;

use super::{n, s, Item, Reader, PK, SK};
use crate::domain::{
    AccountId, AccountStatus, Actor, AuditAction, AuditEvent, EventId, KeyId, KeySnapshot,
    KeyStatus, RateLimit, RateLimitSetting, Snapshot, Timestamp, AUDIT_RETENTION,
};
use crate::store::error::{Entity, StoreError};

pub fn pk(account: &AccountId) -> String {
    account.as_str().to_owned()
}

fn sort_key(event: &AuditEvent) -> String {
    format!("{}#{}", event.at.to_rfc3339(), event.event_id)
}

fn snapshot_value(snapshot: &Snapshot) -> AttributeValue {
    let mut fields = HashMap::new();
    if let Some(status) = snapshot.account_status {
        fields.insert("account_status".to_owned(), s(status.as_str()));
    }
    let keys = snapshot
        .keys
        .iter()
        .map(|(id, key)| {
            let mut entry = HashMap::from([("status".to_owned(), s(key.status.as_str()))]);
            if let Some(at) = key.expires_at {
                entry.insert("expires_at".to_owned(), s(at.to_rfc3339()));
            }
            (id.as_str().to_owned(), AttributeValue::M(entry))
        })
        .collect();
    fields.insert("keys".to_owned(), AttributeValue::M(keys));
    match snapshot.rate_limit {
        None => {}
        Some(RateLimitSetting::Default) => {
            fields.insert("rate_limit".to_owned(), s("default"));
        }
        Some(RateLimitSetting::Own(limit)) => {
            fields.insert("rate_limit".to_owned(), n(limit.per_second()));
        }
    }
    AttributeValue::M(fields)
}

pub fn new_item(event: &AuditEvent) -> Item {
    let mut item = HashMap::from([
        (PK.to_owned(), s(pk(&event.account_id))),
        (SK.to_owned(), s(sort_key(event))),
        ("entity".to_owned(), s("audit_event")),
        ("event_id".to_owned(), s(event.event_id.as_str())),
        ("action".to_owned(), s(event.action.as_str())),
        ("actor".to_owned(), s(event.actor.as_str())),
        ("account_id".to_owned(), s(event.account_id.as_str())),
        (
            "key_ids".to_owned(),
            AttributeValue::L(event.key_ids.iter().map(|id| s(id.as_str())).collect()),
        ),
        ("before".to_owned(), snapshot_value(&event.before)),
        ("after".to_owned(), snapshot_value(&event.after)),
        ("at".to_owned(), s(event.at.to_rfc3339())),
        (
            "ttl".to_owned(),
            n(event.at.plus(AUDIT_RETENTION).unix_seconds()),
        ),
    ]);
    if let Some(request_id) = &event.request_id {
        item.insert("request_id".to_owned(), s(request_id));
    }
    item
}

fn snapshot_from(value: &AttributeValue) -> Option<Snapshot> {
    let fields = value.as_m().ok()?;
    let account_status = match fields.get("account_status") {
        Some(status) => Some(AccountStatus::parse(status.as_s().ok()?)?),
        None => None,
    };
    let mut keys = BTreeMap::new();
    for (id, entry) in fields.get("keys")?.as_m().ok()? {
        let entry = entry.as_m().ok()?;
        let expires_at = match entry.get("expires_at") {
            Some(at) => Some(Timestamp::parse(at.as_s().ok()?)?),
            None => None,
        };
        keys.insert(
            KeyId::parse(id)?,
            KeySnapshot {
                status: KeyStatus::parse(entry.get("status")?.as_s().ok()?)?,
                expires_at,
            },
        );
    }
    let rate_limit = match fields.get("rate_limit") {
        None => None,
        Some(AttributeValue::S(text)) if text == "default" => Some(RateLimitSetting::Default),
        Some(AttributeValue::N(number)) => Some(RateLimitSetting::Own(
            RateLimit::new(number.parse().ok()?).ok()?,
        )),
        Some(_) => return None,
    };
    Some(Snapshot {
        account_status,
        keys,
        rate_limit,
    })
}

pub fn event_from_item(item: &Item) -> Result<AuditEvent, StoreError> {
    let read = Reader::new(item, Entity::AuditEvent, "event_id");
    let snapshot = |name: &'static str| {
        item.get(name)
            .and_then(snapshot_from)
            .ok_or_else(|| read.corrupt(name))
    };
    let key_ids = item
        .get("key_ids")
        .and_then(|v| v.as_l().ok())
        .and_then(|ids| {
            ids.iter()
                .map(|id| id.as_s().ok().and_then(|id| KeyId::parse(id)))
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| read.corrupt("key_ids"))?;
    Ok(AuditEvent {
        event_id: read.parse("event_id", EventId::parse)?,
        action: read.parse("action", AuditAction::parse)?,
        actor: read.parse("actor", |actor| Actor::stored(actor).ok())?,
        account_id: read.parse("account_id", AccountId::parse)?,
        key_ids,
        before: snapshot("before")?,
        after: snapshot("after")?,
        at: read.parse("at", Timestamp::parse)?,
        request_id: read.opt_str("request_id")?.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_reads_back_as_written_and_names_no_secret() {
        let key = KeyId::generate().unwrap();
        let at = Timestamp::parse("2026-06-01T12:00:00Z").unwrap();
        let event = AuditEvent {
            event_id: EventId::generate().unwrap(),
            action: AuditAction::KeyRotated,
            actor: Actor::parse("arn:aws:iam::123456789012:user/ops").unwrap(),
            account_id: AccountId::generate().unwrap(),
            key_ids: vec![key.clone()],
            before: Snapshot {
                account_status: Some(AccountStatus::Active),
                keys: BTreeMap::from([(
                    key.clone(),
                    KeySnapshot {
                        status: KeyStatus::Active,
                        expires_at: None,
                    },
                )]),
                rate_limit: None,
            },
            after: Snapshot {
                account_status: Some(AccountStatus::Active),
                keys: BTreeMap::from([(
                    key,
                    KeySnapshot {
                        status: KeyStatus::Active,
                        expires_at: Some(at),
                    },
                )]),
                rate_limit: None,
            },
            at,
            request_id: None,
        };
        let item = new_item(&event);
        assert_eq!(event_from_item(&item).unwrap(), event);
        // A rate limit change, from the default to an account's own and back.
        for (before, after) in [
            (
                RateLimitSetting::Default,
                RateLimitSetting::Own(RateLimit::new(25).unwrap()),
            ),
            (
                RateLimitSetting::Own(RateLimit::new(25).unwrap()),
                RateLimitSetting::Default,
            ),
        ] {
            let mut change = event.clone();
            change.action = AuditAction::RateLimitChanged;
            change.before.rate_limit = Some(before);
            change.after.rate_limit = Some(after);
            assert_eq!(event_from_item(&new_item(&change)).unwrap(), change);
        }
        // A change a key made through the API: its actor and request id.
        let mut own = event.clone();
        own.action = AuditAction::KeyCreated;
        own.actor = Actor::key(&KeyId::generate().unwrap());
        own.request_id = Some("8f1c2d3e-request".to_owned());
        assert_eq!(event_from_item(&new_item(&own)).unwrap(), own);
        assert!(item[SK]
            .as_s()
            .unwrap()
            .starts_with("2026-06-01T12:00:00.000Z#evt_"));
        let ttl: i64 = item["ttl"].as_n().unwrap().parse().unwrap();
        assert_eq!(ttl - at.unix_seconds(), 400 * 24 * 3600);
        let mut broken = item.clone();
        broken.insert("before".into(), s("{}"));
        assert!(matches!(
            event_from_item(&broken),
            Err(StoreError::Corrupt {
                attribute: "before",
                ..
            })
        ));
    }
}
