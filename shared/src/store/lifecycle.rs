//! Key lifecycle and account administration as plain rules over an account record: which
//! keys a rotation retires or prunes, what a revocation changes, which key items an
//! account-wide change (status, rate limit) must touch, and what the audit event of each
//! says. No DynamoDB here, so the rules are unit-tested directly; `admin.rs` turns each
//! plan into one transaction.
//!
//! Two bounds keep every change inside one transaction and the account item small:
//! - at most [`MAX_LIVE_KEYS`] keys authenticate at once (a rotation that would exceed it is
//!   refused, nothing written);
//! - the account item keeps at most [`MAX_KEY_ENTRIES`] key entries. A rotation that would
//!   exceed it prunes the oldest dead entries; a pruned key that was not yet revoked is
//!   revoked by the same transaction, so it never authenticates again whatever any clock
//!   says. Pruned keys stay in the audit trail.
//!
//! No rule here decides anything about the stack's clock from the operator's: an
//! account-wide change touches every key not revoked (expired or not), and a key's item is rewritten from its
//! entry (an upsert), so a key item the TTL already deleted is no obstacle.

use std::time::Duration;

use serde::Serialize;

use super::error::StoreError;
use crate::domain::{
    Account, AccountId, AccountStatus, AuditAction, KeyDigest, KeyEnvironment, KeyId, KeyLife,
    KeyPrefix, KeySnapshot, KeyState, KeyStatus, RandomSourceFailed, RateLimit, RateLimitSetting,
    Snapshot, Timestamp,
};
use crate::store::IssuedKey;

/// The default grace period of the old keys when an account's key is rotated.
pub const DEFAULT_ROTATION_GRACE: Duration = Duration::from_secs(24 * 3600);

/// DynamoDB's limit on the items of one transaction.
pub const MAX_TRANSACTION_ITEMS: usize = 100;

/// Keys of one account that may authenticate at the same time.
pub const MAX_LIVE_KEYS: usize = 10;

/// Key entries (live and dead) kept on the account item. With the live-key bound this keeps
/// every change at most 4 + 2 x 10 transaction items, and the account item near 4 KB.
pub const MAX_KEY_ENTRIES: usize = 20;

/// How recent a use of a retiring key must be for a rotation to call it still in use.
pub const RECENT_USE: Duration = Duration::from_secs(24 * 3600);

/// An account with its keys (oldest first), as read for an administrative change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub account: Account,
    /// Every change is conditional on the version it read (optimistic concurrency).
    pub version: u64,
    /// The account's own request rate limit; `None`: the stack's default. Every key item
    /// carries a copy for the auth step.
    pub rate_limit: Option<RateLimit>,
    pub keys: Vec<StoredKey>,
    /// Entries that do not read back as a key; the rest of the account stays manageable.
    pub malformed: Vec<MalformedKey>,
}

/// A key's entry on its account. Its key item (what the auth step reads) is a projection of
/// this entry and the account's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub key_id: KeyId,
    pub digest: KeyDigest,
    pub prefix: KeyPrefix,
    pub life: KeyLife,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

impl StoredKey {
    /// When the key stopped (or will stop) authenticating, if that is decided.
    pub fn end(&self) -> Option<Timestamp> {
        match (self.life.expires_at, self.revoked_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn revoked(&self, now: Timestamp) -> StoredKey {
        StoredKey {
            life: KeyLife {
                status: KeyStatus::Revoked,
                ..self.life
            },
            revoked_at: Some(now),
            ..self.clone()
        }
    }

    fn snapshot(&self) -> KeySnapshot {
        self.life.into()
    }
}

/// A key entry that does not read back: its name (the map key) and, when readable, its
/// digest, which is enough to reach its key item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedKey {
    pub name: String,
    pub digest: Option<KeyDigest>,
}

/// A key as operators see it: never its secret, never its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeySummary {
    pub key_id: KeyId,
    pub prefix: KeyPrefix,
    /// As of the time the summary was made.
    pub state: KeyState,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    /// When the key last authenticated a request, to within the recording interval; `None`
    /// when never (or when its item is gone).
    pub last_used_at: Option<Timestamp>,
}

impl StoredKey {
    pub fn summary(&self, now: Timestamp, last_used_at: Option<Timestamp>) -> KeySummary {
        KeySummary {
            key_id: self.key_id.clone(),
            prefix: self.prefix.clone(),
            state: self.life.state_at(now),
            created_at: self.created_at,
            expires_at: self.life.expires_at,
            revoked_at: self.revoked_at,
            last_used_at,
        }
    }
}

/// An account's keys as operators see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyListing {
    pub account: Account,
    /// The account's own rate limit, or `"default"`.
    pub rate_limit: RateLimitSetting,
    pub keys: Vec<KeySummary>,
    /// Names of entries that do not read back (see the log for which attribute).
    pub malformed: Vec<String>,
}

/// Why an operator change was refused before anything was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "the account would have {live} live keys, at most {max} may work at once; revoke a \
         key or rotate with a shorter --grace"
    )]
    TooManyLiveKeys { live: usize, max: usize },
    #[error(
        "key environment mismatch: the new key would be a {requested} key where {existing} \
         keys are expected (by the account's keys or API_KEY_ENVIRONMENT); the stack would \
         refuse it"
    )]
    EnvironmentMismatch {
        requested: KeyEnvironment,
        existing: KeyEnvironment,
    },
}

/// Why an operator change failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Random(#[from] RandomSourceFailed),
}

fn snapshot<'a>(
    account_status: AccountStatus,
    keys: impl IntoIterator<Item = &'a StoredKey>,
) -> Snapshot {
    Snapshot {
        account_status: Some(account_status),
        keys: keys
            .into_iter()
            .map(|key| (key.key_id.clone(), key.snapshot()))
            .collect(),
        rate_limit: None,
    }
}

/// What a rotation changes besides issuing the new key.
#[derive(Debug, PartialEq, Eq)]
pub struct RotationPlan {
    /// When the retiring keys stop authenticating.
    pub retire_at: Timestamp,
    /// Keys that still authenticate, with their new end.
    pub retiring: Vec<StoredKey>,
    /// Entries dropped from the account item, each in its final (revoked) state.
    pub pruned: Vec<StoredKey>,
    pub before: Snapshot,
    pub after: Snapshot,
}

/// Every key that still authenticates gets `now + grace` as its end, unless it already ends
/// sooner: a second rotation never extends a shorter grace. Refused when the new key's
/// environment is not the account's, or when more than [`MAX_LIVE_KEYS`] keys would work.
pub fn plan_rotation(
    record: &AccountRecord,
    new_key: &IssuedKey,
    grace: Duration,
    now: Timestamp,
) -> Result<RotationPlan, Refusal> {
    let requested = new_key.prefix.environment();
    // The keys that work say which environment the account is in (a dead key of the other
    // environment, minted by mistake and revoked since, does not block the account).
    if let Some(existing) = record
        .keys
        .iter()
        .filter(|key| key.life.state_at(now).is_live())
        .map(|key| key.prefix.environment())
        .find(|env| *env != requested)
    {
        return Err(Refusal::EnvironmentMismatch {
            requested,
            existing,
        });
    }
    let retire_at = now.plus(grace);
    let retiring: Vec<StoredKey> = record
        .keys
        .iter()
        .filter(|key| key.life.state_at(now).is_live())
        .filter(|key| key.life.expires_at.is_none_or(|at| at > retire_at))
        .map(|key| StoredKey {
            life: KeyLife {
                expires_at: Some(retire_at),
                ..key.life
            },
            ..key.clone()
        })
        .collect();
    let after_change = |key: &StoredKey| {
        retiring
            .iter()
            .find(|r| r.key_id == key.key_id)
            .map_or(key.life, |r| r.life)
    };
    let live = 1 + record
        .keys
        .iter()
        .filter(|key| after_change(key).state_at(now).is_live())
        .count();
    if live > MAX_LIVE_KEYS {
        return Err(Refusal::TooManyLiveKeys {
            live,
            max: MAX_LIVE_KEYS,
        });
    }
    let entries = record.keys.len() + record.malformed.len() + 1;
    // A key retiring now (grace 0) is not pruned by the same change: its entry is updated.
    let pruned: Vec<StoredKey> = record
        .keys
        .iter()
        .filter(|key| !after_change(key).state_at(now).is_live())
        .filter(|key| retiring.iter().all(|r| r.key_id != key.key_id))
        .take(entries.saturating_sub(MAX_KEY_ENTRIES))
        .map(|key| match key.life.status {
            KeyStatus::Revoked => key.clone(),
            KeyStatus::Active => key.revoked(now),
        })
        .collect();
    let touched =
        |keys: &[StoredKey]| -> Vec<KeyId> { keys.iter().map(|key| key.key_id.clone()).collect() };
    let ids = [touched(&retiring), touched(&pruned)].concat();
    let before = snapshot(
        record.account.status,
        record.keys.iter().filter(|key| ids.contains(&key.key_id)),
    );
    let mut after = snapshot(record.account.status, retiring.iter().chain(&pruned));
    after.keys.insert(
        new_key.key_id.clone(),
        KeySnapshot {
            status: KeyStatus::Active,
            expires_at: None,
        },
    );
    Ok(RotationPlan {
        retire_at,
        retiring,
        pruned,
        before,
        after,
    })
}

/// What a revocation of one key does.
// One plan per operator command, made and consumed at once: its size never matters.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq, Eq)]
pub enum RevocationPlan {
    AlreadyRevoked,
    /// The key's entry was pruned from the account (pruning revokes), or never read back.
    NotOnAccount,
    /// The entry as it becomes, and the audit snapshots.
    Revoke {
        key: StoredKey,
        before: Snapshot,
        after: Snapshot,
    },
}

pub fn plan_revocation(record: &AccountRecord, key_id: &KeyId, now: Timestamp) -> RevocationPlan {
    let Some(key) = record.keys.iter().find(|key| &key.key_id == key_id) else {
        return RevocationPlan::NotOnAccount;
    };
    match key.life.status {
        KeyStatus::Revoked => RevocationPlan::AlreadyRevoked,
        KeyStatus::Active => {
            let revoked = key.revoked(now);
            RevocationPlan::Revoke {
                before: snapshot(record.account.status, [key]),
                after: snapshot(record.account.status, [&revoked]),
                key: revoked,
            }
        }
    }
}

/// An account-wide setting. Every key item carries a copy of each, so the auth step's one
/// read sees them: a change rewrites the account item and the item of every key not revoked,
/// in one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountChange {
    /// Activate or deactivate the account: whether any of its keys authenticates.
    Status(AccountStatus),
    /// The account's own request rate limit, or (`None`) the stack's default.
    RateLimit(Option<RateLimit>),
}

/// The account-wide settings, as each key item carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountSettings {
    pub status: AccountStatus,
    /// `None`: the stack's default.
    pub rate_limit: Option<RateLimit>,
}

impl AccountRecord {
    pub fn settings(&self) -> AccountSettings {
        AccountSettings {
            status: self.account.status,
            rate_limit: self.rate_limit,
        }
    }
}

/// What an account-wide change writes.
#[derive(Debug, PartialEq, Eq)]
pub struct AccountChangePlan<'a> {
    pub action: AuditAction,
    /// The settings after the change, for the account item and every key item below.
    pub settings: AccountSettings,
    /// Every key not revoked. Expired keys are included, so that the stack's clock, not the
    /// operator's, decides whether a key has expired.
    pub keys: Vec<&'a StoredKey>,
    pub before: Snapshot,
    pub after: Snapshot,
}

/// `None` when the account has the setting already.
pub fn plan_account_change(
    record: &AccountRecord,
    change: AccountChange,
) -> Option<AccountChangePlan<'_>> {
    let current = record.settings();
    let (action, settings) = match change {
        AccountChange::Status(status) if status == current.status => return None,
        AccountChange::Status(status) => (
            match status {
                AccountStatus::Active => AuditAction::AccountReactivated,
                AccountStatus::Inactive => AuditAction::AccountDeactivated,
            },
            AccountSettings { status, ..current },
        ),
        AccountChange::RateLimit(limit) if limit == current.rate_limit => return None,
        AccountChange::RateLimit(rate_limit) => (
            AuditAction::RateLimitChanged,
            AccountSettings {
                rate_limit,
                ..current
            },
        ),
    };
    let keys: Vec<&StoredKey> = record
        .keys
        .iter()
        .filter(|key| key.life.status == KeyStatus::Active)
        .collect();
    // The event records what the change is about: a status change the keys it stops or
    // restores, a rate limit change the limit.
    let recorded = |settings: AccountSettings| match change {
        AccountChange::Status(_) => snapshot(settings.status, keys.iter().copied()),
        AccountChange::RateLimit(_) => Snapshot {
            rate_limit: Some(RateLimitSetting::of(settings.rate_limit)),
            ..snapshot(settings.status, [])
        },
    };
    Some(AccountChangePlan {
        action,
        settings,
        before: recorded(current),
        after: recorded(settings),
        keys,
    })
}

/// A key a rotation retires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetiringKey {
    pub key_id: KeyId,
    pub expires_at: Timestamp,
    /// When it last authenticated a request, as of just before the rotation.
    pub last_used_at: Option<Timestamp>,
    /// Used within [`RECENT_USE`]: some client has not switched to the new key yet.
    pub recently_used: bool,
}

/// The outcome of a rotation.
#[derive(Debug)]
pub struct Rotation {
    pub account_id: AccountId,
    pub new_key_id: KeyId,
    pub new_key_prefix: KeyPrefix,
    pub retiring: Vec<RetiringKey>,
    /// Entries dropped from the account item (see the audit trail for their history).
    pub pruned: Vec<KeyId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    Revoked,
    AlreadyRevoked,
    /// Not on the account any more: pruned after it died (pruning revokes).
    AlreadyGone,
}

/// Whether an account-wide change found anything to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOutcome {
    Changed,
    /// The account had the setting already: nothing was written.
    Unchanged,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AccountName, ApiKey, KeyEnvironment};

    const MINUTE: Duration = Duration::from_secs(60);

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    fn key_id(n: usize) -> KeyId {
        KeyId::parse(&format!("key_{n:020}")).unwrap()
    }

    fn key(n: usize, status: KeyStatus, expires_at: Option<Timestamp>) -> StoredKey {
        let api_key = ApiKey::generate(KeyEnvironment::Test).unwrap();
        StoredKey {
            key_id: key_id(n),
            digest: api_key.digest(),
            prefix: api_key.display_prefix(),
            life: KeyLife { status, expires_at },
            created_at: at("2026-01-01T00:00:00Z").plus(Duration::from_secs(n as u64)),
            revoked_at: None,
        }
    }

    fn new_key(environment: KeyEnvironment) -> IssuedKey {
        IssuedKey::new(
            &ApiKey::generate(environment).unwrap(),
            key_id(999),
            at("2026-06-01T12:00:00Z"),
        )
    }

    fn record(status: AccountStatus, keys: Vec<StoredKey>) -> AccountRecord {
        AccountRecord {
            account: Account {
                id: AccountId::parse("acct_AAAAAAAAAAAAAAAAAAAA").unwrap(),
                name: AccountName::parse("Ada".into()).unwrap(),
                email: None,
                status,
                created_at: at("2026-01-01T00:00:00Z"),
            },
            version: 3,
            rate_limit: None,
            keys,
            malformed: vec![],
        }
    }

    #[test]
    fn a_rate_limit_change_touches_every_key_not_revoked() {
        let mut record = record(
            AccountStatus::Active,
            vec![
                key(1, KeyStatus::Active, None),
                key(2, KeyStatus::Revoked, None),
                key(3, KeyStatus::Active, Some(at("2026-01-02T00:00:00Z"))),
            ],
        );
        let change = |limit| AccountChange::RateLimit(limit);
        assert_eq!(
            plan_account_change(&record, change(None)),
            None,
            "the default already"
        );
        let limit = RateLimit::new(5).unwrap();
        let plan = plan_account_change(&record, change(Some(limit))).unwrap();
        let touched: Vec<&KeyId> = plan.keys.iter().map(|key| &key.key_id).collect();
        assert_eq!(touched, vec![&key_id(1), &key_id(3)]);
        assert_eq!(plan.action, AuditAction::RateLimitChanged);
        assert_eq!(
            plan.settings,
            AccountSettings {
                status: AccountStatus::Active,
                rate_limit: Some(limit)
            }
        );
        assert_eq!(plan.before.rate_limit, Some(RateLimitSetting::Default));
        assert_eq!(plan.after.rate_limit, Some(RateLimitSetting::Own(limit)));
        assert!(
            plan.after.keys.is_empty(),
            "a limit's event names no key states"
        );
        record.rate_limit = Some(limit);
        assert_eq!(plan_account_change(&record, change(Some(limit))), None);
        let back = plan_account_change(&record, change(None)).unwrap();
        assert_eq!(back.after.rate_limit, Some(RateLimitSetting::Default));
        assert_eq!(back.settings.rate_limit, None);
    }

    fn ids(keys: &[StoredKey]) -> Vec<KeyId> {
        keys.iter().map(|k| k.key_id.clone()).collect()
    }

    #[test]
    fn rotation_retires_live_keys_without_extending_a_shorter_grace() {
        let now = at("2026-06-01T12:00:00Z");
        let soon = now.plus(10 * MINUTE);
        let keys = vec![
            key(0, KeyStatus::Active, None),
            key(1, KeyStatus::Active, Some(soon)),
            key(2, KeyStatus::Revoked, None),
            key(3, KeyStatus::Active, Some(now)),
        ];
        let record = record(AccountStatus::Active, keys);
        let new = new_key(KeyEnvironment::Test);
        let plan = plan_rotation(&record, &new, 60 * MINUTE, now).unwrap();
        assert_eq!(plan.retire_at, now.plus(60 * MINUTE));
        assert_eq!(
            ids(&plan.retiring),
            vec![key_id(0)],
            "only the key without a sooner end"
        );
        assert_eq!(plan.retiring[0].life.expires_at, Some(plan.retire_at));
        assert!(plan.pruned.is_empty());
        assert_eq!(plan.before.keys[&key_id(0)].expires_at, None);
        assert_eq!(plan.after.keys[&key_id(0)].expires_at, Some(plan.retire_at));
        assert_eq!(plan.after.keys[&new.key_id].status, KeyStatus::Active);

        let plan = plan_rotation(&record, &new, Duration::ZERO, now).unwrap();
        assert_eq!(ids(&plan.retiring), vec![key_id(0), key_id(1)]);
    }

    #[test]
    fn rotation_refuses_a_key_of_another_environment() {
        let now = at("2026-06-01T12:00:00Z");
        let record = record(AccountStatus::Active, vec![key(0, KeyStatus::Active, None)]);
        assert_eq!(
            plan_rotation(&record, &new_key(KeyEnvironment::Live), Duration::ZERO, now),
            Err(Refusal::EnvironmentMismatch {
                requested: KeyEnvironment::Live,
                existing: KeyEnvironment::Test
            })
        );
        assert!(
            plan_rotation(&record, &new_key(KeyEnvironment::Test), Duration::ZERO, now).is_ok()
        );
    }

    #[test]
    fn a_dead_key_of_another_environment_does_not_block_rotation() {
        let now = at("2026-06-01T12:00:00Z");
        let mut stray = key(1, KeyStatus::Revoked, None);
        let live = ApiKey::generate(KeyEnvironment::Live).unwrap();
        stray.prefix = live.display_prefix();
        let record = record(
            AccountStatus::Active,
            vec![key(0, KeyStatus::Active, None), stray],
        );
        assert!(
            plan_rotation(&record, &new_key(KeyEnvironment::Test), Duration::ZERO, now).is_ok()
        );
    }

    #[test]
    fn a_key_retired_at_once_is_updated_not_pruned_by_the_same_rotation() {
        let now = at("2026-06-01T12:00:00Z");
        let mut full = record(AccountStatus::Active, vec![key(0, KeyStatus::Active, None)]);
        full.malformed = (0..MAX_KEY_ENTRIES)
            .map(|n| MalformedKey {
                name: format!("bad{n}"),
                digest: None,
            })
            .collect();
        let plan =
            plan_rotation(&full, &new_key(KeyEnvironment::Test), Duration::ZERO, now).unwrap();
        assert_eq!(ids(&plan.retiring), vec![key_id(0)]);
        assert!(
            plan.pruned.is_empty(),
            "one path is never both set and removed"
        );
    }

    #[test]
    fn rotation_refuses_more_live_keys_than_the_bound() {
        let now = at("2026-06-01T12:00:00Z");
        let later = Some(now.plus(60 * MINUTE));
        let keys: Vec<StoredKey> = (0..MAX_LIVE_KEYS)
            .map(|n| key(n, KeyStatus::Active, later))
            .collect();
        let full = record(AccountStatus::Active, keys);
        let new = new_key(KeyEnvironment::Test);
        assert_eq!(
            plan_rotation(&full, &new, 2 * 60 * MINUTE, now),
            Err(Refusal::TooManyLiveKeys {
                live: MAX_LIVE_KEYS + 1,
                max: MAX_LIVE_KEYS
            })
        );
        // With no grace the old keys die now: one live key afterwards.
        assert!(plan_rotation(&full, &new, Duration::ZERO, now).is_ok());
        let mut room = full.clone();
        room.keys.pop();
        assert!(plan_rotation(&room, &new, 2 * 60 * MINUTE, now).is_ok());
    }

    #[test]
    fn rotation_prunes_the_oldest_dead_entries_and_revokes_them() {
        let now = at("2026-06-01T12:00:00Z");
        let mut keys: Vec<StoredKey> = (0..MAX_KEY_ENTRIES - 1)
            .map(|n| key(n, KeyStatus::Active, Some(now)))
            .collect();
        keys[1].life.status = KeyStatus::Revoked;
        keys.push(key(MAX_KEY_ENTRIES - 1, KeyStatus::Active, None));
        let full = record(AccountStatus::Active, keys);
        let plan = plan_rotation(&full, &new_key(KeyEnvironment::Test), MINUTE, now).unwrap();
        assert_eq!(
            ids(&plan.pruned),
            vec![key_id(0)],
            "one entry over the bound"
        );
        assert_eq!(
            plan.pruned[0].life.status,
            KeyStatus::Revoked,
            "revoked, so no clock matters"
        );
        assert_eq!(plan.pruned[0].revoked_at, Some(now));
        assert_eq!(ids(&plan.retiring), vec![key_id(MAX_KEY_ENTRIES - 1)]);

        let mut over = full.clone();
        over.keys.remove(0);
        over.malformed.push(MalformedKey {
            name: "key_x".into(),
            digest: None,
        });
        over.malformed.push(MalformedKey {
            name: "key_y".into(),
            digest: None,
        });
        let plan = plan_rotation(&over, &new_key(KeyEnvironment::Test), MINUTE, now).unwrap();
        assert_eq!(
            ids(&plan.pruned),
            vec![key_id(1), key_id(2)],
            "malformed entries count against the bound; a revoked one stays revoked"
        );
        assert_eq!(plan.pruned[0].revoked_at, None);
    }

    #[test]
    fn revocation_plans() {
        let now = at("2026-06-01T12:00:00Z");
        let record = record(
            AccountStatus::Active,
            vec![
                key(0, KeyStatus::Active, None),
                key(1, KeyStatus::Revoked, None),
            ],
        );
        let RevocationPlan::Revoke { key, before, after } =
            plan_revocation(&record, &key_id(0), now)
        else {
            panic!("an active key is revoked")
        };
        assert_eq!(
            (key.life.status, key.revoked_at),
            (KeyStatus::Revoked, Some(now))
        );
        assert_eq!(before.keys[&key_id(0)].status, KeyStatus::Active);
        assert_eq!(after.keys[&key_id(0)].status, KeyStatus::Revoked);
        assert_eq!(
            plan_revocation(&record, &key_id(1), now),
            RevocationPlan::AlreadyRevoked
        );
        assert_eq!(
            plan_revocation(&record, &key_id(7), now),
            RevocationPlan::NotOnAccount
        );
    }

    #[test]
    fn a_status_change_touches_every_key_not_revoked_whatever_the_clock() {
        let now = at("2026-06-01T12:00:00Z");
        let mut record = record(
            AccountStatus::Active,
            vec![
                key(0, KeyStatus::Active, None),
                key(1, KeyStatus::Revoked, None),
                key(2, KeyStatus::Active, Some(now)),
                key(3, KeyStatus::Active, Some(now.plus(MINUTE))),
            ],
        );
        record.rate_limit = Some(RateLimit::new(7).unwrap());
        let deactivate = AccountChange::Status(AccountStatus::Inactive);
        assert_eq!(
            plan_account_change(&record, AccountChange::Status(AccountStatus::Active)),
            None
        );
        let plan = plan_account_change(&record, deactivate).unwrap();
        assert_eq!(
            plan.keys,
            vec![&record.keys[0], &record.keys[2], &record.keys[3]]
        );
        assert_eq!(plan.action, AuditAction::AccountDeactivated);
        assert_eq!(
            plan.settings,
            AccountSettings {
                status: AccountStatus::Inactive,
                rate_limit: record.rate_limit
            },
            "the limit the key items carry stays"
        );
        assert_eq!(plan.before.account_status, Some(AccountStatus::Active));
        assert_eq!(plan.after.account_status, Some(AccountStatus::Inactive));
        assert_eq!(plan.after.keys.len(), 3);
        assert_eq!(plan.after.rate_limit, None, "a status event names no limit");
        record.account.status = AccountStatus::Inactive;
        let back = plan_account_change(&record, AccountChange::Status(AccountStatus::Active));
        assert_eq!(back.unwrap().action, AuditAction::AccountReactivated);
    }

    #[test]
    fn summaries_state_each_key_as_of_now() {
        let now = at("2026-06-01T12:00:00Z");
        let states: Vec<KeyState> = [
            key(0, KeyStatus::Active, None),
            key(1, KeyStatus::Active, Some(now.plus(MINUTE))),
            key(2, KeyStatus::Active, Some(now)),
            key(3, KeyStatus::Revoked, None),
        ]
        .iter()
        .map(|k| k.summary(now, None).state)
        .collect();
        assert_eq!(
            states,
            [
                KeyState::Active,
                KeyState::Expiring,
                KeyState::Expired,
                KeyState::Revoked
            ]
        );
    }
}
