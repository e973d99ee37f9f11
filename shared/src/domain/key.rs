//! The rules about a stored key: its status, its expiry, and whether it authenticates at a
//! given instant. Written once here; the auth step and key administration both use it.

use super::account::AccountStatus;
use super::ip::IpAllowList;
use super::permission::Permissions;
use super::text::KeyName;
use super::time::Timestamp;

string_enum!(
    /// What an operator last did to a key.
    KeyStatus {
        Active = "active",
        Revoked = "revoked",
    }
);

string_enum!(
    /// A key's state at an instant, as operators see it.
    KeyState {
        /// Works, with no end set.
        Active = "active",
        /// Works until its `expires_at` (inside a rotation's grace period).
        Expiring = "expiring",
        /// Past its `expires_at`.
        Expired = "expired",
        /// Revoked by an operator.
        Revoked = "revoked",
    }
);

impl KeyState {
    /// Whether a key in this state still authenticates (account status aside).
    pub fn is_live(self) -> bool {
        matches!(self, KeyState::Active | KeyState::Expiring)
    }
}

/// What decides a key's life: its status and, once a rotation has set one, its expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyLife {
    pub status: KeyStatus,
    /// When the key stops authenticating (end of a rotation grace period); none = never.
    pub expires_at: Option<Timestamp>,
}

impl KeyLife {
    /// The one rule: a key works from its issue until it is revoked or its expiry passes
    /// (the expiry instant itself is already past).
    pub fn state_at(&self, now: Timestamp) -> KeyState {
        match (self.status, self.expires_at) {
            (KeyStatus::Revoked, _) => KeyState::Revoked,
            (KeyStatus::Active, Some(at)) if now >= at => KeyState::Expired,
            (KeyStatus::Active, Some(_)) => KeyState::Expiring,
            (KeyStatus::Active, None) => KeyState::Active,
        }
    }

    /// Whether a key with this life, on an account with `account` status, authenticates at
    /// `now`; if not, why (for the log; the caller is never told).
    pub fn admits(&self, account: AccountStatus, now: Timestamp) -> Result<(), AuthFailure> {
        match self.state_at(now) {
            KeyState::Revoked => Err(AuthFailure::KeyRevoked),
            KeyState::Expired => Err(AuthFailure::KeyExpired),
            KeyState::Active | KeyState::Expiring => match account {
                AccountStatus::Active => Ok(()),
                AccountStatus::Inactive => Err(AuthFailure::AccountInactive),
            },
        }
    }
}

/// What a key is given when it is issued, everything but its secret: a name, what it may
/// do, where from, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyGrant {
    /// The holder's name for it; none for the keys the service mints itself (an account's
    /// first key, an operator's rotation).
    pub name: Option<KeyName>,
    pub permissions: Permissions,
    /// Open: anywhere.
    pub allowed_ips: IpAllowList,
    /// When it stops working; none: when it is revoked.
    pub expires_at: Option<Timestamp>,
}

impl KeyGrant {
    /// What a secret key holds: every permission, from anywhere, until revoked.
    pub fn secret() -> Self {
        KeyGrant {
            name: None,
            permissions: Permissions::ALL,
            allowed_ips: IpAllowList::default(),
            expires_at: None,
        }
    }
}

string_enum!(
    /// Why a request's API key did not authenticate. Logged and counted by these names, never
    /// shown to the caller: every reason but `Missing` produces the same response, so that a
    /// caller cannot probe which check failed.
    AuthFailure {
        /// No `x-api-key` header.
        Missing = "missing",
        /// Wrong length, characters outside the key alphabet, or more than one header value.
        Malformed = "malformed",
        /// A well-formed key minted for another environment (a live key sent to a test stack).
        WrongEnvironment = "wrong_environment",
        /// The checksum does not match: a typo or a made-up key, refused before any database
        /// call.
        BadChecksum = "bad_checksum",
        /// No key with this digest exists.
        UnknownKey = "unknown_key",
        /// The key was revoked.
        KeyRevoked = "key_revoked",
        /// The key is past its `expires_at` (for example the end of a rotation grace period).
        KeyExpired = "key_expired",
        /// The key's account is not active.
        AccountInactive = "account_inactive",
        /// The key is limited to IP ranges, and the request came from outside them.
        IpNotAllowed = "ip_not_allowed",
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    #[test]
    fn a_key_works_until_revoked_or_past_its_expiry() {
        let now = at("2026-06-01T12:00:00Z");
        let later = now.plus(Duration::from_secs(60));
        let life = |status, expires_at| KeyLife { status, expires_at };
        let cases = [
            (life(KeyStatus::Active, None), KeyState::Active),
            (life(KeyStatus::Active, Some(later)), KeyState::Expiring),
            (life(KeyStatus::Active, Some(now)), KeyState::Expired),
            (
                life(KeyStatus::Active, Some(at("2026-06-01T11:59:59.999Z"))),
                KeyState::Expired,
            ),
            (life(KeyStatus::Revoked, None), KeyState::Revoked),
            (life(KeyStatus::Revoked, Some(later)), KeyState::Revoked),
        ];
        for (life, state) in cases {
            assert_eq!(life.state_at(now), state, "{life:?}");
            assert_eq!(
                life.admits(AccountStatus::Active, now).is_ok(),
                state.is_live()
            );
        }
    }

    #[test]
    fn each_refusal_names_its_reason() {
        let now = at("2026-06-01T12:00:00Z");
        let active = KeyLife {
            status: KeyStatus::Active,
            expires_at: None,
        };
        assert_eq!(active.admits(AccountStatus::Active, now), Ok(()));
        assert_eq!(
            active.admits(AccountStatus::Inactive, now),
            Err(AuthFailure::AccountInactive)
        );
        let expired = KeyLife {
            expires_at: Some(now),
            ..active
        };
        assert_eq!(
            expired.admits(AccountStatus::Active, now),
            Err(AuthFailure::KeyExpired)
        );
        let revoked = KeyLife {
            status: KeyStatus::Revoked,
            expires_at: None,
        };
        // A revoked key on an inactive account: the key's own state is the reason.
        assert_eq!(
            revoked.admits(AccountStatus::Inactive, now),
            Err(AuthFailure::KeyRevoked)
        );
    }
}
