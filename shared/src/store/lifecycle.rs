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
    Account, AccountId, AccountStatus, Actor, ApiKey, AuditAction, IdSource, IpAllowList,
    KeyDigest, KeyEnvironment, KeyGrant, KeyId, KeyKind, KeyLife, KeyName, KeyPrefix, KeySnapshot,
    KeyState, KeyStatus, Permission, Permissions, RandomSourceFailed, RateLimit, RateLimitSetting,
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
    /// The holder's name for it, when it was given one.
    pub name: Option<KeyName>,
    /// Every permission for a secret key.
    pub permissions: Permissions,
    pub allowed_ips: IpAllowList,
    /// The key this one rolled, if it was made by a roll.
    pub replaces: Option<KeyId>,
    /// Its end was set by a roll or a rotation that replaced it (rather than given when it
    /// was issued): revoking the roll's new key during that grace gives it back.
    pub retiring: bool,
}

impl StoredKey {
    /// The entry of a key just issued.
    pub fn issued(key: &IssuedKey) -> Self {
        StoredKey {
            key_id: key.key_id.clone(),
            digest: key.digest.clone(),
            prefix: key.prefix.clone(),
            life: KeyLife {
                status: KeyStatus::Active,
                expires_at: key.grant.expires_at,
            },
            created_at: key.created_at,
            revoked_at: None,
            name: key.grant.name.clone(),
            permissions: key.grant.permissions,
            allowed_ips: key.grant.allowed_ips.clone(),
            replaces: key.replaces.clone(),
            retiring: false,
        }
    }

    /// Whether the key can be rolled at `now`: it is active, with no `expires_at` ahead. An
    /// expiring key cannot be, whether its end came with it or from a roll or rotation
    /// replacing it: a second roll of a key in its grace would make a second new key, and
    /// a key with an end of its own is replaced by creating one. If not, its state.
    pub fn rollable(&self, now: Timestamp) -> Result<(), KeyState> {
        match self.life.state_at(now) {
            KeyState::Active => Ok(()),
            state => Err(state),
        }
    }

    /// What the key was given, for a new key that takes its place (a roll).
    pub fn grant(&self) -> KeyGrant {
        KeyGrant {
            name: self.name.clone(),
            permissions: self.permissions,
            allowed_ips: self.allowed_ips.clone(),
            expires_at: self.life.expires_at,
        }
    }

    pub fn kind(&self) -> KeyKind {
        self.prefix.kind()
    }

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
    pub name: Option<KeyName>,
    pub kind: KeyKind,
    pub prefix: KeyPrefix,
    pub permissions: Permissions,
    pub allowed_ips: IpAllowList,
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
            name: self.name.clone(),
            kind: self.kind(),
            prefix: self.prefix.clone(),
            permissions: self.permissions,
            allowed_ips: self.allowed_ips.clone(),
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

/// Why a change was refused before anything was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The account has no key of that id (or only an entry that does not read back).
    #[error("the account has no such key")]
    KeyNotFound,
    /// The key is expiring (by its own end or a replacement's grace), expired or revoked:
    /// it cannot be rolled.
    #[error("the key is {state}: only an active key, with no end ahead, can be rolled")]
    KeyNotActive { state: KeyState },
    /// The change would leave the account without an active key that can manage keys.
    #[error(
        "revoking it would leave the account without an active key holding keys:write; roll \
         it instead, or create another such key first"
    )]
    WouldLockOut,
    /// The acting key lacks a permission the key it would create, roll or revoke holds.
    #[error("the acting key does not have the {0} permission")]
    MissingPermission(Permission),
    /// The acting key is limited to IP ranges that do not cover the other key's.
    #[error("the key's IP ranges do not lie within the acting key's own")]
    IpRangesNotWithin,
    /// A restricted key would roll or revoke a secret key: whatever permissions it holds,
    /// its `keys:write` reaches restricted keys only.
    #[error("a restricted key cannot roll or revoke a secret key")]
    SecretKeyOutOfReach,
    /// The acting key has an end, and the key it would create would work past it.
    #[error("the acting key stops at {}; the key it creates must stop by then", ends_at.to_rfc3339())]
    OutlivesActingKey { ends_at: Timestamp },
    /// A key rolling itself with less grace than its client needs to read the answer.
    #[error(
        "a key rolling itself needs expires_in of at least {} seconds",
        MIN_SELF_ROLL_GRACE.as_secs()
    )]
    SelfRollTooSoon,
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

/// Which keys a new key retires, and when they stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retire<'a> {
    /// None: a key added beside the others (`POST /keys`, `keys create`).
    Nothing,
    /// An operator's rotation: every secret key that still works, at `now + grace`, unless
    /// it ends sooner (a second rotation never extends a shorter grace).
    SecretKeys { grace: Duration },
    /// A roll: this key, which must be active (no end ahead), at `now + grace`.
    Key { key_id: &'a KeyId, grace: Duration },
}

/// A key rolling itself keeps working at least this long, so that a client that lost the
/// answer still has a key to list keys with, revoke the new one and roll again.
pub const MIN_SELF_ROLL_GRACE: Duration = Duration::from_secs(60);

/// What a new key changes besides adding its entry and item.
#[derive(Debug, PartialEq, Eq)]
pub struct RotationPlan {
    /// When the retiring keys stop authenticating (`now` when none retires).
    pub retire_at: Timestamp,
    /// Keys that still authenticate, with their new end.
    pub retiring: Vec<StoredKey>,
    /// Entries dropped from the account item, each in its final (revoked) state.
    pub pruned: Vec<StoredKey>,
    pub before: Snapshot,
    pub after: Snapshot,
}

/// An operator's rotation: [`plan_new_key`] retiring the secret keys.
pub fn plan_rotation(
    record: &AccountRecord,
    new_key: &IssuedKey,
    grace: Duration,
    now: Timestamp,
) -> Result<RotationPlan, Refusal> {
    plan_new_key(record, new_key, Retire::SecretKeys { grace }, now)
}

/// Adds `new_key` to the account and retires what `retire` says. Refused when the new key's
/// environment is not the account's, when the key to retire is not there or not active, or
/// when more than [`MAX_LIVE_KEYS`] keys would work.
pub fn plan_new_key(
    record: &AccountRecord,
    new_key: &IssuedKey,
    retire: Retire<'_>,
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
    // Never later than the key's own end: retiring a key never lengthens its life.
    let ending_at = |key: &StoredKey, at: Timestamp| StoredKey {
        life: KeyLife {
            expires_at: Some(key.life.expires_at.map_or(at, |end| end.min(at))),
            ..key.life
        },
        retiring: true,
        ..key.clone()
    };
    let (retire_at, retiring): (Timestamp, Vec<StoredKey>) = match retire {
        Retire::Nothing => (now, Vec::new()),
        Retire::SecretKeys { grace } => {
            let at = now.plus(grace);
            let retiring = record
                .keys
                .iter()
                .filter(|key| key.kind() == KeyKind::Secret)
                .filter(|key| key.life.state_at(now).is_live())
                .filter(|key| key.life.expires_at.is_none_or(|end| end > at))
                .map(|key| ending_at(key, at))
                .collect();
            (at, retiring)
        }
        Retire::Key { key_id, grace } => {
            let key = record
                .keys
                .iter()
                .find(|key| &key.key_id == key_id)
                .ok_or(Refusal::KeyNotFound)?;
            key.rollable(now)
                .map_err(|state| Refusal::KeyNotActive { state })?;
            let at = now.plus(grace);
            (at, vec![ending_at(key, at)])
        }
    };
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
        StoredKey::issued(new_key).snapshot(),
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
    /// The entry as it becomes, the key a revocation of its replacement reinstates, and the
    /// audit snapshots.
    Revoke {
        key: StoredKey,
        reinstated: Option<StoredKey>,
        before: Snapshot,
        after: Snapshot,
    },
}

/// The key that revoking `key` reinstates, as it becomes: the one `key` replaced by a roll,
/// while it is still in its grace, given back the end the roll copied to `key` (none, or
/// the original `expires_at`: a roll never lengthens a key's life, and neither does its
/// undoing). Revoking a roll's new key undoes the roll, so a client that lost the roll's
/// answer revokes the key it never saw and has its old key back, to roll again.
fn reinstatement(record: &AccountRecord, key: &StoredKey, now: Timestamp) -> Option<StoredKey> {
    let replaced = key.replaces.as_ref()?;
    let old = record
        .keys
        .iter()
        .find(|old| &old.key_id == replaced)
        .filter(|old| old.retiring && old.life.state_at(now) == KeyState::Expiring)?;
    Some(StoredKey {
        life: KeyLife {
            expires_at: key.life.expires_at,
            ..old.life
        },
        retiring: false,
        ..old.clone()
    })
}

pub fn plan_revocation(record: &AccountRecord, key_id: &KeyId, now: Timestamp) -> RevocationPlan {
    let Some(key) = record.keys.iter().find(|key| &key.key_id == key_id) else {
        return RevocationPlan::NotOnAccount;
    };
    match key.life.status {
        KeyStatus::Revoked => RevocationPlan::AlreadyRevoked,
        KeyStatus::Active => {
            let revoked = key.revoked(now);
            let reinstated = reinstatement(record, key, now);
            let old = reinstated
                .as_ref()
                .and_then(|new| record.keys.iter().find(|old| old.key_id == new.key_id));
            RevocationPlan::Revoke {
                before: snapshot(record.account.status, std::iter::once(key).chain(old)),
                after: snapshot(
                    record.account.status,
                    std::iter::once(&revoked).chain(reinstated.as_ref()),
                ),
                key: revoked,
                reinstated,
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

/// The key making a self-service change (`/keys`), as the auth step established it. Power
/// only flows down: it may create, roll or revoke only keys whose every permission and
/// address it holds itself, and a restricted key only restricted keys, so a restricted key
/// can never obtain or stop a secret key (not even one holding all four permissions), and
/// a key limited to IP ranges can never grant or manage a key used from elsewhere.
#[derive(Debug, Clone, Copy)]
pub struct ActingKey<'a> {
    pub key_id: &'a KeyId,
    pub kind: KeyKind,
    pub permissions: Permissions,
    pub allowed_ips: &'a IpAllowList,
    /// When the acting key stops working, if it has an end.
    pub expires_at: Option<Timestamp>,
}

impl ActingKey<'_> {
    /// Whether this key may hand out (or manage a key that holds) `permissions` from
    /// `allowed_ips`; if not, the first permission it lacks, in declaration order.
    pub fn may_grant(
        &self,
        permissions: Permissions,
        allowed_ips: &IpAllowList,
    ) -> Result<(), Refusal> {
        if let Some(missing) = self.permissions.first_missing(permissions) {
            return Err(Refusal::MissingPermission(missing));
        }
        if !allowed_ips.is_within(self.allowed_ips) {
            return Err(Refusal::IpRangesNotWithin);
        }
        Ok(())
    }

    /// Whether this key may create a key given `grant`: what [`ActingKey::may_grant`]
    /// says, and, for a key with an end of its own, a new key that ends no later (a key
    /// never outlives, through a key it made, its own end).
    pub fn may_create(&self, grant: &KeyGrant) -> Result<(), Refusal> {
        self.may_grant(grant.permissions, &grant.allowed_ips)?;
        match (self.expires_at, grant.expires_at) {
            (Some(own), Some(new)) if new <= own => Ok(()),
            (Some(own), _) => Err(Refusal::OutlivesActingKey { ends_at: own }),
            (None, _) => Ok(()),
        }
    }

    fn may_manage<'r>(
        &self,
        record: &'r AccountRecord,
        key_id: &KeyId,
    ) -> Result<&'r StoredKey, Refusal> {
        let key = record
            .keys
            .iter()
            .find(|key| &key.key_id == key_id)
            .ok_or(Refusal::KeyNotFound)?;
        self.may_grant(key.permissions, &key.allowed_ips)?;
        // Permissions alone would let a restricted key holding all four roll the secret
        // key (and be handed a new secret key) or revoke it.
        if self.kind == KeyKind::Restricted && key.kind() == KeyKind::Secret {
            return Err(Refusal::SecretKeyOutOfReach);
        }
        Ok(key)
    }

    /// A self-service roll of `key_id` with `grace`: the key must be the account's, within
    /// this key's power, and active; a key rolling itself keeps at least
    /// [`MIN_SELF_ROLL_GRACE`]. The plan itself is [`plan_new_key`]'s.
    pub fn may_roll<'r>(
        &self,
        record: &'r AccountRecord,
        key_id: &KeyId,
        grace: Duration,
        now: Timestamp,
    ) -> Result<&'r StoredKey, Refusal> {
        let key = self.may_manage(record, key_id)?;
        key.rollable(now)
            .map_err(|state| Refusal::KeyNotActive { state })?;
        if key_id == self.key_id && grace < MIN_SELF_ROLL_GRACE {
            return Err(Refusal::SelfRollTooSoon);
        }
        Ok(key)
    }

    /// A self-service revocation of `key_id`: the key must be the account's and within this
    /// key's power, and revoking it must leave the account an active key holding
    /// `keys:write` (an operator can always recover an account; a client locked out cannot).
    /// A key revoked already passes: revoking it again changes nothing.
    pub fn may_revoke<'r>(
        &self,
        record: &'r AccountRecord,
        key_id: &KeyId,
        now: Timestamp,
    ) -> Result<&'r StoredKey, Refusal> {
        let key = self.may_manage(record, key_id)?;
        let manages_keys = |key: &StoredKey| key.permissions.contains(Permission::KeysWrite);
        let active = |key: &StoredKey| key.life.state_at(now) == KeyState::Active;
        let another = record
            .keys
            .iter()
            .any(|other| other.key_id != key.key_id && active(other) && manages_keys(other))
            || reinstatement(record, key, now)
                .is_some_and(|old| active(&old) && manages_keys(&old));
        if active(key) && manages_keys(key) && !another {
            return Err(Refusal::WouldLockOut);
        }
        Ok(key)
    }
}

/// Who makes a change, and through which request: what its audit event records.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub actor: &'a Actor,
    /// The API request that made it; none for an operator's command.
    pub request_id: Option<&'a str>,
}

impl<'a> Origin<'a> {
    pub fn operator(actor: &'a Actor) -> Self {
        Origin {
            actor,
            request_id: None,
        }
    }
}

/// Where a roll's new key comes from: the OS CSPRNG for its secret, `ids` for its id.
pub struct KeyMint<'a> {
    pub ids: &'a IdSource,
}

impl KeyMint<'_> {
    /// A new key to take `old`'s place: of its kind and environment, with what it was given.
    pub fn replacement(
        &self,
        old: &StoredKey,
        now: Timestamp,
    ) -> Result<(ApiKey, IssuedKey), RandomSourceFailed> {
        let key = ApiKey::generate(old.kind(), old.prefix.environment())?;
        let issued = IssuedKey {
            replaces: Some(old.key_id.clone()),
            ..IssuedKey::with_grant(&key, self.ids.key_id()?, now, old.grant())
        };
        Ok((key, issued))
    }
}

/// What a roll made: the new key, with the secret its answer hands over once, and the old
/// key as the roll left it.
#[derive(Debug)]
pub struct Rolled {
    pub api_key: ApiKey,
    pub new_key: KeySummary,
    pub old_key: KeySummary,
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
        let api_key =
            ApiKey::generate(crate::domain::KeyKind::Secret, KeyEnvironment::Test).unwrap();
        StoredKey {
            key_id: key_id(n),
            digest: api_key.digest(),
            prefix: api_key.display_prefix(),
            life: KeyLife { status, expires_at },
            created_at: at("2026-01-01T00:00:00Z").plus(Duration::from_secs(n as u64)),
            revoked_at: None,
            name: None,
            permissions: Permissions::ALL,
            allowed_ips: IpAllowList::default(),
            replaces: None,
            retiring: false,
        }
    }

    fn new_key(environment: KeyEnvironment) -> IssuedKey {
        IssuedKey::new(
            &ApiKey::generate(crate::domain::KeyKind::Secret, environment).unwrap(),
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
        let live = ApiKey::generate(crate::domain::KeyKind::Secret, KeyEnvironment::Live).unwrap();
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
        let RevocationPlan::Revoke {
            key, before, after, ..
        } = plan_revocation(&record, &key_id(0), now)
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

    /// A key issued with an end of its own is expiring from the start: it cannot be rolled.
    #[test]
    fn a_key_with_an_end_of_its_own_cannot_be_rolled() {
        let now = at("2026-06-01T12:00:00Z");
        let own_end = now.plus(30 * MINUTE);
        let job = StoredKey {
            permissions: Permissions::of([Permission::PaymentsRead]),
            ..key(1, KeyStatus::Active, Some(own_end))
        };
        let account = record(
            AccountStatus::Active,
            vec![key(0, KeyStatus::Active, None), job],
        );
        let old = &account.keys[1];
        assert_eq!(old.rollable(now), Err(KeyState::Expiring));
        let ids = IdSource::random();
        let (_, new) = KeyMint { ids: &ids }.replacement(old, now).unwrap();
        let roll = Retire::Key {
            key_id: &key_id(1),
            grace: 60 * MINUTE,
        };
        assert_eq!(
            plan_new_key(&account, &new, roll, now),
            Err(Refusal::KeyNotActive {
                state: KeyState::Expiring
            })
        );
        assert_eq!(
            acting(&account.keys[0])
                .may_roll(&account, &key_id(1), 60 * MINUTE, now)
                .err(),
            Some(Refusal::KeyNotActive {
                state: KeyState::Expiring
            })
        );
        // Past its end it is expired, and still not rolled.
        assert_eq!(old.rollable(own_end), Err(KeyState::Expired));
    }

    /// The lockout rule and the roll rule mean one thing by active: no end ahead. A
    /// `keys:write` key with an end of its own neither rolls nor keeps the last active one
    /// from being locked out; that last one rolls (its new key holds `keys:write`).
    #[test]
    fn lockout_and_rolls_agree_on_what_is_active() {
        let now = at("2026-06-01T12:00:00Z");
        let account = record(
            AccountStatus::Active,
            vec![
                key(0, KeyStatus::Active, None),
                StoredKey {
                    life: KeyLife {
                        status: KeyStatus::Active,
                        expires_at: Some(now.plus(60 * MINUTE)),
                    },
                    ..restricted(1, Permissions::of([Permission::KeysWrite]))
                },
            ],
        );
        let [secret, ending] = &account.keys[..] else {
            unreachable!()
        };
        assert_eq!(
            acting(secret)
                .may_revoke(&account, &secret.key_id, now)
                .err(),
            Some(Refusal::WouldLockOut)
        );
        assert!(acting(secret)
            .may_roll(&account, &secret.key_id, MINUTE, now)
            .is_ok());
        assert_eq!(
            acting(secret)
                .may_roll(&account, &ending.key_id, MINUTE, now)
                .err(),
            Some(Refusal::KeyNotActive {
                state: KeyState::Expiring
            })
        );
        assert!(acting(secret)
            .may_revoke(&account, &ending.key_id, now)
            .is_ok());
    }

    /// A roll undone (its new key revoked in the grace): the rolled key is active again, as
    /// it was, and rolls again.
    #[test]
    fn undoing_a_roll_gives_back_the_key_as_it_was() {
        let now = at("2026-06-01T12:00:00Z");
        let job = StoredKey {
            permissions: Permissions::of([Permission::PaymentsRead]),
            ..key(1, KeyStatus::Active, None)
        };
        let account = record(
            AccountStatus::Active,
            vec![key(0, KeyStatus::Active, None), job],
        );
        let old = &account.keys[1];
        assert_eq!(old.rollable(now), Ok(()));
        let ids = IdSource::random();
        let (_, new) = KeyMint { ids: &ids }.replacement(old, now).unwrap();
        assert_eq!(new.grant.expires_at, None, "the new key has no end either");
        let plan = plan_new_key(
            &account,
            &new,
            Retire::Key {
                key_id: &key_id(1),
                grace: 60 * MINUTE,
            },
            now,
        )
        .unwrap();
        let retired = &plan.retiring[0];
        assert_eq!(retired.life.expires_at, Some(now.plus(60 * MINUTE)));
        assert!(retired.retiring);
        assert_eq!(retired.rollable(now), Err(KeyState::Expiring));

        // The account after the roll; revoking the new key gives the old one back, with
        // no end, rollable again.
        let mut rolled = account.clone();
        rolled.keys[1] = retired.clone();
        rolled.keys.push(StoredKey::issued(&new));
        let RevocationPlan::Revoke { reinstated, .. } = plan_revocation(&rolled, &new.key_id, now)
        else {
            panic!("the new key is revoked")
        };
        let back = reinstated.expect("the rolled key is reinstated");
        assert_eq!(back.key_id, key_id(1));
        assert_eq!(back.life.expires_at, None);
        assert!(!back.retiring);
        assert_eq!(back.rollable(now), Ok(()));

        // Revoking the rolled key itself reinstates nothing; nor does revoking a key made
        // by a roll once the rolled key's grace is over.
        let RevocationPlan::Revoke { reinstated, .. } = plan_revocation(&rolled, &key_id(1), now)
        else {
            panic!("the rolled key is revoked")
        };
        assert_eq!(reinstated, None);
        let later = now.plus(60 * MINUTE);
        let RevocationPlan::Revoke { reinstated, .. } =
            plan_revocation(&rolled, &new.key_id, later)
        else {
            panic!("the new key is revoked")
        };
        assert_eq!(reinstated, None);
    }

    #[test]
    fn a_rotation_marks_the_keys_it_retires_and_they_cannot_be_rolled() {
        let now = at("2026-06-01T12:00:00Z");
        let account = record(AccountStatus::Active, vec![key(0, KeyStatus::Active, None)]);
        let plan = plan_rotation(&account, &new_key(KeyEnvironment::Test), MINUTE, now).unwrap();
        assert!(plan.retiring[0].retiring);
        let mut rotated = account.clone();
        rotated.keys[0] = plan.retiring[0].clone();
        let ids = IdSource::random();
        let (_, new) = KeyMint { ids: &ids }
            .replacement(&rotated.keys[0], now)
            .unwrap();
        assert_eq!(
            plan_new_key(
                &rotated,
                &new,
                Retire::Key {
                    key_id: &key_id(0),
                    grace: MINUTE,
                },
                now,
            ),
            Err(Refusal::KeyNotActive {
                state: KeyState::Expiring
            })
        );
    }

    fn restricted(n: usize, permissions: Permissions) -> StoredKey {
        let api_key =
            ApiKey::generate(crate::domain::KeyKind::Restricted, KeyEnvironment::Test).unwrap();
        StoredKey {
            digest: api_key.digest(),
            prefix: api_key.display_prefix(),
            permissions,
            ..key(n, KeyStatus::Active, None)
        }
    }

    fn acting<'a>(key: &'a StoredKey) -> ActingKey<'a> {
        ActingKey {
            key_id: &key.key_id,
            kind: key.kind(),
            permissions: key.permissions,
            allowed_ips: &key.allowed_ips,
            expires_at: key.life.expires_at,
        }
    }

    #[test]
    fn a_restricted_key_never_rolls_or_revokes_a_secret_key_whatever_it_holds() {
        let now = at("2026-06-01T12:00:00Z");
        let account = record(
            AccountStatus::Active,
            vec![
                key(0, KeyStatus::Active, None),
                restricted(1, Permissions::ALL),
                restricted(2, Permissions::ALL),
                restricted(3, Permissions::of([Permission::KeysWrite])),
            ],
        );
        let [secret, manager, peer, narrow] = &account.keys[..] else {
            unreachable!()
        };
        let grace = 10 * MINUTE;
        assert_eq!(
            acting(manager)
                .may_roll(&account, &secret.key_id, grace, now)
                .err(),
            Some(Refusal::SecretKeyOutOfReach)
        );
        assert_eq!(
            acting(manager)
                .may_revoke(&account, &secret.key_id, now)
                .err(),
            Some(Refusal::SecretKeyOutOfReach)
        );
        // A permission it lacks is named first, as for any other key beyond its power.
        assert_eq!(
            acting(narrow)
                .may_revoke(&account, &secret.key_id, now)
                .err(),
            Some(Refusal::MissingPermission(Permission::PaymentsRead))
        );
        // Restricted keys within its power it manages, itself included; the secret key
        // manages every key.
        assert!(acting(manager)
            .may_roll(&account, &peer.key_id, grace, now)
            .is_ok());
        assert!(acting(manager)
            .may_roll(&account, &manager.key_id, grace, now)
            .is_ok());
        assert!(acting(manager)
            .may_revoke(&account, &peer.key_id, now)
            .is_ok());
        for other in &account.keys {
            assert!(acting(secret)
                .may_roll(&account, &other.key_id, grace, now)
                .is_ok());
            assert!(acting(secret)
                .may_revoke(&account, &other.key_id, now)
                .is_ok());
        }
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
