//! Domain values. Each type can only hold a valid value: input is parsed into these at the
//! edge, and everything past the edge works with them.

use std::fmt;

use rand::rngs::SysRng;
use rand::TryRng;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::currency::Currency;
use crate::error::{ApiError, InvalidRequest};

const ID_ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// 20 base62 characters carry 119 bits: collisions are not a practical concern.
const ID_RANDOM_CHARS: usize = 20;

/// Draws `ID_RANDOM_CHARS` unbiased base62 characters from the OS CSPRNG.
fn random_id(prefix: &str) -> Result<String, ApiError> {
    let mut id = String::with_capacity(prefix.len() + ID_RANDOM_CHARS);
    id.push_str(prefix);
    let mut buffer = [0u8; 32];
    while id.len() < prefix.len() + ID_RANDOM_CHARS {
        SysRng
            .try_fill_bytes(&mut buffer)
            .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("OS random source failed: {e}")))?;
        // Rejection sampling: 248 = 4 * 62, so accepted bytes map uniformly onto the alphabet.
        for &byte in buffer.iter().filter(|&&b| b < 248) {
            if id.len() == prefix.len() + ID_RANDOM_CHARS {
                break;
            }
            id.push(ID_ALPHABET[usize::from(byte % 62)] as char);
        }
    }
    Ok(id)
}

fn is_id(value: &str, prefix: &str) -> bool {
    value.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == ID_RANDOM_CHARS && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn generate() -> Result<Self, ApiError> {
                random_id($prefix).map($name)
            }

            pub fn parse(value: &str) -> Option<Self> {
                is_id(value, $prefix).then(|| $name(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// `acct_` + 20 base62 characters.
    AccountId,
    "acct_"
);
prefixed_id!(
    /// `pay_` + 20 base62 characters.
    PaymentId,
    "pay_"
);
prefixed_id!(
    /// `key_` + 20 base62 characters: names an API key without revealing anything about it.
    KeyId,
    "key_"
);

impl PaymentId {
    /// A payment id derived from a digest (for idempotent payments): the first 16 bytes,
    /// reduced modulo 62^20 and written as 20 base62 characters.
    pub fn from_digest(digest: &[u8; 32]) -> Self {
        let mut value = u128::from_be_bytes(digest[..16].try_into().expect("16 bytes"));
        value %= 62u128.pow(ID_RANDOM_CHARS as u32);
        let mut chars = [b'0'; ID_RANDOM_CHARS];
        for slot in chars.iter_mut().rev() {
            *slot = ID_ALPHABET[(value % 62) as usize];
            value /= 62;
        }
        PaymentId(format!(
            "{}{}",
            Self::PREFIX,
            std::str::from_utf8(&chars).expect("base62 is ASCII")
        ))
    }
}

/// A UTC instant, rendered as RFC 3339 with millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    pub fn now() -> Self {
        Self::from_datetime(OffsetDateTime::now_utc())
    }

    pub fn from_datetime(at: OffsetDateTime) -> Self {
        let at = at.to_offset(time::UtcOffset::UTC);
        let millis = at.millisecond();
        Timestamp(
            at.replace_millisecond(millis)
                .expect("millisecond from the same instant"),
        )
    }

    pub fn parse(value: &str) -> Option<Self> {
        OffsetDateTime::parse(value, &Rfc3339)
            .ok()
            .map(Self::from_datetime)
    }

    pub fn plus(self, by: std::time::Duration) -> Self {
        Self::from_datetime(self.0 + by)
    }

    /// Seconds since the Unix epoch (DynamoDB TTL attributes use this).
    pub fn unix_seconds(self) -> i64 {
        self.0.unix_timestamp()
    }

    pub fn to_rfc3339(self) -> String {
        const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        self.0
            .format(FORMAT)
            .expect("a UTC timestamp always formats")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

fn has_control_chars(value: &str) -> bool {
    value.chars().any(char::is_control)
}

/// An account holder's name: 1 to 200 characters, not blank, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct AccountName(String);

impl AccountName {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(value: String) -> Result<Self, InvalidRequest> {
        let chars = value.chars().count();
        if value.trim().is_empty() || chars > Self::MAX_CHARS || has_control_chars(&value) {
            return Err(InvalidRequest::invalid_param(
                "name",
                format!(
                    "name must be 1 to {} characters, not blank, without control characters.",
                    Self::MAX_CHARS
                ),
            ));
        }
        Ok(AccountName(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An e-mail address that looks deliverable: `local@domain.tld`, at most 254 characters.
/// Full RFC 5322 parsing is not the point; refusing obvious junk at the edge is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub const MAX_CHARS: usize = 254;

    pub fn parse(value: String) -> Result<Self, InvalidRequest> {
        if Self::looks_valid(&value) {
            Ok(Email(value))
        } else {
            Err(InvalidRequest::invalid_param(
                "email",
                "email must be an address such as jane@example.com.",
            ))
        }
    }

    fn looks_valid(value: &str) -> bool {
        if value.len() > Self::MAX_CHARS
            || value.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return false;
        }
        let Some((local, domain)) = value.split_once('@') else {
            return false;
        };
        let labels: Vec<&str> = domain.split('.').collect();
        !local.is_empty()
            && local.len() <= 64
            && !domain.contains('@')
            && labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A payment amount in the currency's minor unit (cents for USD, yen for JPY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Amount(i64);

impl Amount {
    pub const MIN: i64 = 1;
    pub const MAX: i64 = 99_999_999;

    pub fn parse(value: i64) -> Result<Self, InvalidRequest> {
        if (Self::MIN..=Self::MAX).contains(&value) {
            Ok(Amount(value))
        } else {
            Err(InvalidRequest::invalid_param(
                "amount",
                format!(
                    "amount must be an integer from {} to {} in the currency's minor unit.",
                    Self::MIN,
                    Self::MAX
                ),
            ))
        }
    }

    pub fn minor_units(self) -> i64 {
        self.0
    }
}

/// A payment description: at most 500 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Description(String);

impl Description {
    pub const MAX_CHARS: usize = 500;

    pub fn parse(value: String) -> Result<Self, InvalidRequest> {
        if value.chars().count() > Self::MAX_CHARS {
            return Err(InvalidRequest::invalid_param(
                "description",
                format!(
                    "description must be at most {} characters.",
                    Self::MAX_CHARS
                ),
            ));
        }
        Ok(Description(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    Active,
    Inactive,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Inactive => "inactive",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "active" => Some(AccountStatus::Active),
            "inactive" => Some(AccountStatus::Inactive),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentStatus {
    Pending,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "pending" => Some(PaymentStatus::Pending),
            _ => None,
        }
    }
}

/// An account as the API shows it (without its key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub id: AccountId,
    pub name: AccountName,
    pub email: Option<Email>,
    pub status: AccountStatus,
    pub created_at: Timestamp,
}

/// A recorded payment. `client_id` is always the authenticated account, never request input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Payment {
    pub id: PaymentId,
    pub client_id: AccountId,
    pub amount: Amount,
    pub currency: Currency,
    pub description: Option<Description>,
    pub status: PaymentStatus,
    pub created_at: Timestamp,
    /// The client's Idempotency-Key, if it sent one. Stored, not part of the response.
    #[serde(skip)]
    pub idempotency_key: Option<String>,
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ids_have_prefix_and_length() {
        let id = AccountId::generate().unwrap();
        assert!(id.as_str().starts_with("acct_"));
        assert_eq!(id.as_str().len(), 25);
        assert_eq!(AccountId::parse(id.as_str()), Some(id.clone()));
        assert_ne!(AccountId::generate().unwrap(), id);
        assert!(PaymentId::generate().unwrap().as_str().starts_with("pay_"));
        assert_eq!(AccountId::parse("acct_short"), None);
        assert_eq!(AccountId::parse("pay_AAAAAAAAAAAAAAAAAAAA"), None);
        assert_eq!(AccountId::parse("acct_AAAAAAAAAAAAAAAAAAA!"), None);
    }

    #[test]
    fn amount_bounds() {
        assert!(Amount::parse(0).is_err());
        assert!(Amount::parse(-1).is_err());
        assert!(Amount::parse(i64::MIN).is_err());
        assert_eq!(Amount::parse(1).unwrap().minor_units(), 1);
        assert_eq!(Amount::parse(99_999_999).unwrap().minor_units(), 99_999_999);
        assert!(Amount::parse(100_000_000).is_err());
        assert_eq!(
            Amount::parse(0).unwrap_err().param.as_deref(),
            Some("amount")
        );
    }

    #[test]
    fn name_bounds() {
        assert!(AccountName::parse(String::new()).is_err());
        assert!(AccountName::parse("   ".into()).is_err());
        assert!(AccountName::parse("a\u{0}b".into()).is_err());
        assert!(AccountName::parse("x".into()).is_ok());
        assert!(AccountName::parse("é".repeat(200)).is_ok());
        assert!(AccountName::parse("é".repeat(201)).is_err());
    }

    #[test]
    fn description_bounds() {
        assert!(Description::parse(String::new()).is_ok());
        assert!(Description::parse("ü".repeat(500)).is_ok());
        assert!(Description::parse("ü".repeat(501)).is_err());
    }

    #[test]
    fn emails() {
        for ok in ["jane@example.com", "a.b+c@sub.example.co.uk", "x@a-b.io"] {
            assert!(Email::parse(ok.into()).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "jane",
            "jane@",
            "@example.com",
            "jane@example",
            "jane@@example.com",
            "jane@exa mple.com",
            "jane@.example.com",
            "jane@example..com",
            "jane@-example.com",
            "jane doe@example.com",
        ] {
            assert!(Email::parse(bad.into()).is_err(), "{bad}");
        }
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(200));
        assert!(Email::parse(long).is_err());
    }

    #[test]
    fn timestamps_are_rfc3339_utc_millis() {
        let ts = Timestamp::parse("2026-11-26T17:36:44.123456+02:00").unwrap();
        assert_eq!(ts.to_rfc3339(), "2026-11-26T15:36:44.123Z");
        let now = Timestamp::now().to_rfc3339();
        assert_eq!(Timestamp::parse(&now).unwrap().to_rfc3339(), now);
    }

    proptest! {
        #[test]
        fn amount_accepts_exactly_its_range(value in any::<i64>()) {
            prop_assert_eq!(Amount::parse(value).is_ok(), (1..=99_999_999).contains(&value));
        }

        #[test]
        fn generated_ids_always_parse(_ in 0..50u8) {
            let id = PaymentId::generate().unwrap();
            prop_assert!(PaymentId::parse(id.as_str()).is_some());
        }
    }
}
