//! Audit events: who changed which account or key, from what to what, and when. Never a key
//! and never a digest: an event names keys by id.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::account::AccountStatus;
use super::ids::{AccountId, EventId, KeyId};
use super::invalid::InvalidValue;
use super::key::{KeyLife, KeyStatus};
use super::rate::RateLimitSetting;
use super::time::Timestamp;

/// How long an audit event is kept (DynamoDB's TTL deletes it after that): 400 days, so a
/// year-on-year review still finds last year's events.
pub const AUDIT_RETENTION: Duration = Duration::from_secs(400 * 24 * 3600);

string_enum!(
    /// What an audit event records.
    AuditAction {
        AccountCreated = "account.created",
        AccountDeactivated = "account.deactivated",
        AccountReactivated = "account.reactivated",
        KeyRotated = "key.rotated",
        KeyRevoked = "key.revoked",
        RateLimitChanged = "account.rate_limit_changed",
        KeyCreated = "key.created",
        KeyRolled = "key.rolled",
    }
);

/// Who made a change: an operator's name, the IAM principal that called the API
/// (`anonymous` when the route is open), or an account's own key (`key:<id>`, for the
/// changes a key makes through `/keys`). 1 to 512 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Actor(String);

impl Actor {
    pub const MAX_CHARS: usize = 512;
    /// What the actor of a change made by an account's key starts with.
    pub const KEY_PREFIX: &'static str = "key:";

    /// An operator's or a principal's name. Never of the form `key:…`, in any case (`KEY:…`
    /// reads as a key to a person scanning the trail), which only the service writes, so no
    /// operator can pass a change off as a client's own.
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        let actor = Self::stored(value)?;
        let prefix = Self::KEY_PREFIX.len();
        if actor
            .0
            .get(..prefix)
            .is_some_and(|start| start.eq_ignore_ascii_case(Self::KEY_PREFIX))
        {
            return Err(InvalidValue::new(
                "actor",
                "actor must not start with key: in any case (the changes an account's keys make are named so).",
            ));
        }
        Ok(actor)
    }

    /// The account's key `id`, making a change through the API.
    pub fn key(id: &KeyId) -> Self {
        Actor(format!("{}{id}", Self::KEY_PREFIX))
    }

    /// An actor as an event recorded it, whoever it was.
    pub fn stored(value: &str) -> Result<Self, InvalidValue> {
        let value = value.trim();
        if value.is_empty()
            || value.chars().count() > Self::MAX_CHARS
            || value.chars().any(char::is_control)
        {
            return Err(InvalidValue::new(
                "actor",
                format!(
                    "actor must be 1 to {} characters without control characters.",
                    Self::MAX_CHARS
                ),
            ));
        }
        Ok(Actor(value.to_owned()))
    }

    /// The caller of an open route: nobody authenticated it.
    pub fn anonymous() -> Self {
        Actor("anonymous".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What an event says about one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KeySnapshot {
    pub status: KeyStatus,
    pub expires_at: Option<Timestamp>,
}

impl From<KeyLife> for KeySnapshot {
    fn from(life: KeyLife) -> Self {
        KeySnapshot {
            status: life.status,
            expires_at: life.expires_at,
        }
    }
}

/// The part of an account a change touched, before or after it: the account's status and the
/// keys the change concerned (absent before a key existed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub account_status: Option<AccountStatus>,
    pub keys: BTreeMap<KeyId, KeySnapshot>,
    /// The account's rate limit, in the events that change it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitSetting>,
}

/// One change, as it is recorded in the same transaction as the change itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    pub event_id: EventId,
    pub action: AuditAction,
    pub actor: Actor,
    pub account_id: AccountId,
    pub key_ids: Vec<KeyId>,
    pub before: Snapshot,
    pub after: Snapshot,
    pub at: Timestamp,
    /// The request that made the change, for a change made through the API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl AuditEvent {
    /// The event of an account's creation with its first key.
    pub fn account_created(
        event_id: EventId,
        actor: Actor,
        account_id: &AccountId,
        status: AccountStatus,
        key_id: &KeyId,
        at: Timestamp,
    ) -> Self {
        AuditEvent {
            event_id,
            action: AuditAction::AccountCreated,
            actor,
            account_id: account_id.clone(),
            key_ids: vec![key_id.clone()],
            before: Snapshot::default(),
            after: Snapshot {
                account_status: Some(status),
                keys: BTreeMap::from([(
                    key_id.clone(),
                    KeySnapshot {
                        status: KeyStatus::Active,
                        expires_at: None,
                    },
                )]),
                rate_limit: None,
            },
            at,
            request_id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_are_bounded_printable_text() {
        assert_eq!(
            Actor::parse(" arn:aws:iam::123456789012:user/ops ")
                .unwrap()
                .as_str(),
            "arn:aws:iam::123456789012:user/ops"
        );
        for bad in ["", "   ", "a\nb", "\u{7}"] {
            assert!(Actor::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Actor::parse(&"é".repeat(Actor::MAX_CHARS)).is_ok());
        assert!(Actor::parse(&"é".repeat(Actor::MAX_CHARS + 1)).is_err());
        // Only the service names a key as the actor.
        let key = KeyId::parse("key_AAAAAAAAAAAAAAAAAAAA").unwrap();
        assert_eq!(Actor::key(&key).as_str(), "key:key_AAAAAAAAAAAAAAAAAAAA");
        assert!(Actor::parse("key:key_AAAAAAAAAAAAAAAAAAAA").is_err());
        assert!(Actor::parse(" key:anything").is_err());
        for cased in ["KEY:key_AAAAAAAAAAAAAAAAAAAA", "Key:x", "kEy:x", "keY:"] {
            assert!(Actor::parse(cased).is_err(), "{cased}");
        }
        for other in ["key", "keys:x", "monkey:x", "ké:x", "k"] {
            assert!(Actor::parse(other).is_ok(), "{other}");
        }
        assert_eq!(
            Actor::stored("key:key_AAAAAAAAAAAAAAAAAAAA").unwrap(),
            Actor::key(&key)
        );
    }
}
