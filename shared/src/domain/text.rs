//! Free-text values: names, e-mail addresses, descriptions, and how much of what a caller
//! sent an answer echoes.

use serde::Serialize;

use super::invalid::InvalidValue;

fn has_control_chars(value: &str) -> bool {
    value.chars().any(char::is_control)
}

/// How much of a text the caller sent an error echoes back (a name in `param`, a value in a
/// message): enough for any real one, while a 20,000-character name costs 64 characters, not
/// a 20 KB body.
pub const MAX_ECHOED_CHARS: usize = 64;

/// `text` as an error echoes it: whole up to [`MAX_ECHOED_CHARS`], else cut there with `…`.
pub fn echoed(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(MAX_ECHOED_CHARS) {
        None => text.into(),
        Some((end, _)) => format!("{}…", &text[..end]).into(),
    }
}

/// A key's name, as its holder calls it (`reconciliation job`): 1 to 100 characters, not
/// blank, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct KeyName(String);

impl KeyName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(value: String) -> Result<Self, InvalidValue> {
        let chars = value.chars().count();
        if value.trim().is_empty() || chars > Self::MAX_CHARS || has_control_chars(&value) {
            return Err(InvalidValue::new(
                "name",
                format!(
                    "name must be 1 to {} characters, not blank, without control characters.",
                    Self::MAX_CHARS
                ),
            ));
        }
        Ok(KeyName(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An account holder's name: 1 to 200 characters, not blank, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct AccountName(String);

impl AccountName {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(value: String) -> Result<Self, InvalidValue> {
        let chars = value.chars().count();
        if value.trim().is_empty() || chars > Self::MAX_CHARS || has_control_chars(&value) {
            return Err(InvalidValue::new(
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

    pub fn parse(value: String) -> Result<Self, InvalidValue> {
        if Self::looks_valid(&value) {
            Ok(Email(value))
        } else {
            Err(InvalidValue::new(
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

/// A payment description: at most 500 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Description(String);

impl Description {
    pub const MAX_CHARS: usize = 500;

    pub fn parse(value: String) -> Result<Self, InvalidValue> {
        if value.chars().count() > Self::MAX_CHARS {
            return Err(InvalidValue::new(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_bounds() {
        assert!(AccountName::parse(String::new()).is_err());
        assert!(AccountName::parse("   ".into()).is_err());
        assert!(AccountName::parse("a\u{0}b".into()).is_err());
        assert!(AccountName::parse("x".into()).is_ok());
        assert!(AccountName::parse("é".repeat(200)).is_ok());
        assert!(AccountName::parse("é".repeat(201)).is_err());
        assert_eq!(AccountName::parse(String::new()).unwrap_err().field, "name");
    }

    #[test]
    fn description_bounds() {
        assert!(Description::parse(String::new()).is_ok());
        assert!(Description::parse("ü".repeat(500)).is_ok());
        let err = Description::parse("ü".repeat(501)).unwrap_err();
        assert_eq!(err.field, "description");
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
            let err = Email::parse(bad.into()).unwrap_err();
            assert_eq!(err.field, "email", "{bad}");
        }
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(200));
        assert!(Email::parse(long).is_err());
    }
}
