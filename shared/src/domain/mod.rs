//! Domain values and the rules about them. Each type can only hold a valid value: input is
//! parsed into these at the edge, and everything past the edge works with them.
//!
//! This module depends on nothing else in the crate (not on storage, not on HTTP): its
//! errors are plain values ([`InvalidValue`], [`AuthFailure`], [`RandomSourceFailed`]) that
//! each outer layer maps to its own terms.

mod account;
mod api_key;
mod audit;
mod currency;
mod ids;
mod invalid;
mod ip;
mod key;
mod payment;
mod permission;
mod random;
mod rate;
mod text;
mod time;

pub use account::{Account, AccountStatus, NewAccount};
pub use api_key::{key_prefix, ApiKey, KeyDigest, KeyEnvironment, KeyPrefix, KEY_LENGTH};
pub use audit::{Actor, AuditAction, AuditEvent, KeySnapshot, Snapshot, AUDIT_RETENTION};
pub use currency::Currency;
pub use ids::{AccountId, EventId, IdSource, KeyId, PaymentId};
pub use invalid::InvalidValue;
pub use ip::{IpAllowList, IpRange};
pub use key::{AuthFailure, KeyGrant, KeyLife, KeyState, KeyStatus};
pub use payment::{
    fingerprint, payment_id_for, Amount, IdempotencyKey, NewPayment, Payment, PaymentStatus,
    RequestFingerprint,
};
pub use permission::{KeyKind, Permission, Permissions};
pub use random::RandomSourceFailed;
#[cfg(any(test, feature = "test-support"))]
pub use rate::simulation;
pub use rate::{
    AccountShare, Claim, Decision, EnvironmentId, RateLimit, RateLimitSetting, Report, Verdict,
    QUIET_INTERVAL_MS, WINDOW_MS,
};
pub use text::{echoed, AccountName, Description, Email, KeyName, MAX_ECHOED_CHARS};
pub use time::{push_rfc3339, Clock, Timestamp};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_enums_round_trip_through_their_one_string_form() {
        fn check<T: Copy + PartialEq + std::fmt::Debug + serde::Serialize>(
            all: &[T],
            as_str: fn(T) -> &'static str,
            parse: fn(&str) -> Option<T>,
        ) {
            for &value in all {
                let text = as_str(value);
                assert_eq!(parse(text), Some(value));
                assert_eq!(serde_json::to_value(value).unwrap(), text);
                assert_eq!(parse(&text.to_uppercase()), None, "one exact form");
            }
        }
        check(
            AccountStatus::ALL,
            AccountStatus::as_str,
            AccountStatus::parse,
        );
        check(
            PaymentStatus::ALL,
            PaymentStatus::as_str,
            PaymentStatus::parse,
        );
        check(KeyStatus::ALL, KeyStatus::as_str, KeyStatus::parse);
        check(KeyState::ALL, KeyState::as_str, KeyState::parse);
        check(AuditAction::ALL, AuditAction::as_str, AuditAction::parse);
        assert_eq!(AccountStatus::Inactive.to_string(), "inactive");
    }
}
