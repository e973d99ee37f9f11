//! Request bodies: from raw bytes to validated values, with a precise `param` on every error.
//!
//! Two steps. Serde reads the JSON into a wire struct that rejects unknown and duplicate
//! fields and wrong types; then `validate` turns the wire struct into domain values. Both
//! steps are pure, so they are unit-tested and fuzzed without any HTTP or Lambda around them.

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::currency::Currency;
use crate::domain::{AccountName, Amount, Description, Email};
use crate::error::{ApiError, InvalidRequest};

/// The largest body the API reads. API Gateway accepts far more; payment requests are tiny.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A request body: its JSON fields and what the caller is told each should hold.
pub trait JsonBody: DeserializeOwned {
    const FIELDS: &'static [(&'static str, &'static str)];
}

/// `POST /accounts`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAccountRequest {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
}

impl JsonBody for CreateAccountRequest {
    const FIELDS: &'static [(&'static str, &'static str)] =
        &[("name", "a string"), ("email", "a string or null")];
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    pub name: AccountName,
    pub email: Option<Email>,
}

impl CreateAccountRequest {
    pub fn validate(self) -> Result<NewAccount, InvalidRequest> {
        Ok(NewAccount {
            name: AccountName::parse(self.name)?,
            email: self.email.map(Email::parse).transpose()?,
        })
    }
}

/// `POST /payments`. There is deliberately no `client_id`: the paying account is the one
/// the API key authenticates, and a body naming any account is refused as an unknown field.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePaymentRequest {
    pub amount: i64,
    pub currency: String,
    #[serde(default)]
    pub description: Option<String>,
}

impl JsonBody for CreatePaymentRequest {
    const FIELDS: &'static [(&'static str, &'static str)] = &[
        ("amount", "an integer"),
        ("currency", "a string"),
        ("description", "a string or null"),
    ];
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayment {
    pub amount: Amount,
    pub currency: Currency,
    pub description: Option<Description>,
}

impl CreatePaymentRequest {
    pub fn validate(self) -> Result<NewPayment, InvalidRequest> {
        Ok(NewPayment {
            amount: Amount::parse(self.amount)?,
            currency: Currency::parse(&self.currency)?,
            description: self.description.map(Description::parse).transpose()?,
        })
    }
}

/// Checks the content type and size, then reads the body as `T`.
pub fn parse_body<T: JsonBody>(content_type: Option<&[u8]>, body: &[u8]) -> Result<T, ApiError> {
    if !content_type.is_some_and(is_json_media_type) {
        return Err(ApiError::UnsupportedMediaType);
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    parse_json::<T>(body).map_err(ApiError::from)
}

/// `application/json`, in any letter case, optionally with parameters such as a charset.
fn is_json_media_type(value: &[u8]) -> bool {
    let Ok(value) = std::str::from_utf8(value) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// Reads JSON into `T`, turning serde's errors into messages about the caller's fields.
pub fn parse_json<T: JsonBody>(body: &[u8]) -> Result<T, InvalidRequest> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize::<_, T>(&mut deserializer)
        .map_err(|err| describe(err, T::FIELDS))?;
    deserializer
        .end()
        .map_err(|_| invalid_json("The request body must contain a single JSON object."))?;
    Ok(value)
}

fn invalid_json(message: &str) -> InvalidRequest {
    InvalidRequest::new("invalid_json", None, message)
}

fn describe(
    err: serde_path_to_error::Error<serde_json::Error>,
    fields: &[(&'static str, &'static str)],
) -> InvalidRequest {
    let path = err.path().to_string();
    let inner = err.into_inner();
    let text = inner.to_string();
    match inner.classify() {
        serde_json::error::Category::Io
        | serde_json::error::Category::Syntax
        | serde_json::error::Category::Eof => invalid_json("The request body is not valid JSON."),
        serde_json::error::Category::Data => {
            let named = quoted_name(&text);
            if text.starts_with("unknown field") {
                let name = named.unwrap_or_default();
                InvalidRequest::new(
                    "parameter_unknown",
                    Some(name),
                    format!("Received unknown parameter: {name}"),
                )
            } else if text.starts_with("duplicate field") {
                let name = named.unwrap_or_default();
                InvalidRequest::new(
                    "parameter_duplicate",
                    Some(name),
                    format!("Parameter {name} appears more than once."),
                )
            } else if text.starts_with("missing field") {
                let name = named.unwrap_or_default();
                InvalidRequest::new(
                    "parameter_missing",
                    Some(name),
                    format!("Missing required parameter: {name}"),
                )
            } else if let Some((name, expected)) = fields.iter().find(|(name, _)| *name == path) {
                InvalidRequest::invalid_param(name, format!("{name} must be {expected}."))
            } else {
                invalid_json("The request body must be a JSON object.")
            }
        }
    }
}

/// The first name serde quotes in backticks: "unknown field `client_id`, expected ...".
fn quoted_name(text: &str) -> Option<&str> {
    let start = text.find('`')? + 1;
    let len = text[start..].find('`')?;
    Some(&text[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const JSON: Option<&[u8]> = Some(b"application/json");

    fn payment(body: &str) -> Result<NewPayment, ApiError> {
        let request: CreatePaymentRequest = parse_body(JSON, body.as_bytes())?;
        Ok(request.validate()?)
    }

    fn account(body: &str) -> Result<NewAccount, ApiError> {
        let request: CreateAccountRequest = parse_body(JSON, body.as_bytes())?;
        Ok(request.validate()?)
    }

    fn invalid(result: Result<impl std::fmt::Debug, ApiError>) -> InvalidRequest {
        match result {
            Err(ApiError::InvalidRequest(invalid)) => invalid,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_payment() {
        let p =
            payment(r#"{"amount": 1250, "currency": "eur", "description": "Order 1"}"#).unwrap();
        assert_eq!(p.amount.minor_units(), 1250);
        assert_eq!(p.currency.code(), "EUR");
        assert_eq!(p.description.unwrap().as_str(), "Order 1");
        let p = payment(r#"{"amount": 1, "currency": "USD", "description": null}"#).unwrap();
        assert_eq!(p.description, None);
    }

    #[test]
    fn client_id_in_the_body_is_refused() {
        let err = invalid(payment(
            r#"{"amount": 100, "currency": "USD", "client_id": "acct_AAAAAAAAAAAAAAAAAAAA"}"#,
        ));
        assert_eq!(err.code, "parameter_unknown");
        assert_eq!(err.param.as_deref(), Some("client_id"));
    }

    #[test]
    fn api_key_in_the_body_is_refused() {
        let err = invalid(payment(
            r#"{"amount": 100, "currency": "USD", "api_key": "x"}"#,
        ));
        assert_eq!(err.param.as_deref(), Some("api_key"));
    }

    #[test]
    fn duplicate_fields_are_refused() {
        for body in [
            r#"{"amount": 100, "amount": 200, "currency": "USD"}"#,
            r#"{"amount": 100, "currency": "USD", "currency": "USD"}"#,
            r#"{"amount": 100, "currency": "USD", "description": "a", "description": null}"#,
        ] {
            let err = invalid(payment(body));
            assert_eq!(err.code, "parameter_duplicate", "{body}");
            assert!(err.param.is_some());
        }
    }

    #[test]
    fn missing_fields_name_the_param() {
        let err = invalid(payment(r#"{"currency": "USD"}"#));
        assert_eq!(
            (err.code, err.param.as_deref()),
            ("parameter_missing", Some("amount"))
        );
        let err = invalid(payment(r#"{"amount": 5}"#));
        assert_eq!(err.param.as_deref(), Some("currency"));
        let err = invalid(account(r#"{"email": "a@b.co"}"#));
        assert_eq!(err.param.as_deref(), Some("name"));
    }

    #[test]
    fn wrong_types_name_the_param() {
        let cases = [
            (r#"{"amount": "100", "currency": "USD"}"#, "amount"),
            (r#"{"amount": 1.5, "currency": "USD"}"#, "amount"),
            (r#"{"amount": 1e3, "currency": "USD"}"#, "amount"),
            (r#"{"amount": null, "currency": "USD"}"#, "amount"),
            (r#"{"amount": true, "currency": "USD"}"#, "amount"),
            (
                r#"{"amount": 18446744073709551616, "currency": "USD"}"#,
                "amount",
            ),
            (
                r#"{"amount": 9223372036854775808, "currency": "USD"}"#,
                "amount",
            ),
            (r#"{"amount": 100, "currency": 840}"#, "currency"),
            (
                r#"{"amount": 100, "currency": "USD", "description": 7}"#,
                "description",
            ),
        ];
        for (body, param) in cases {
            let err = invalid(payment(body));
            assert_eq!(err.code, "parameter_invalid", "{body}");
            assert_eq!(err.param.as_deref(), Some(param), "{body}");
        }
    }

    #[test]
    fn out_of_range_values_name_the_param() {
        let cases = [
            (r#"{"amount": 0, "currency": "USD"}"#, "amount"),
            (r#"{"amount": -5, "currency": "USD"}"#, "amount"),
            (r#"{"amount": 100000000, "currency": "USD"}"#, "amount"),
            (r#"{"amount": 100, "currency": "ZZZ"}"#, "currency"),
            (r#"{"amount": 100, "currency": "US"}"#, "currency"),
        ];
        for (body, param) in cases {
            let err = invalid(payment(body));
            assert_eq!(err.param.as_deref(), Some(param), "{body}");
        }
        let long = format!(
            r#"{{"amount": 1, "currency": "USD", "description": "{}"}}"#,
            "x".repeat(501)
        );
        assert_eq!(
            invalid(payment(&long)).param.as_deref(),
            Some("description")
        );
        assert_eq!(
            invalid(account(r#"{"name": ""}"#)).param.as_deref(),
            Some("name")
        );
        assert_eq!(
            invalid(account(r#"{"name": "A", "email": "nope"}"#))
                .param
                .as_deref(),
            Some("email")
        );
    }

    #[test]
    fn malformed_json_is_a_400_without_param() {
        for body in [
            "",
            "{",
            "not json",
            r#"{"amount": 1,}"#,
            "[]",
            "\"text\"",
            "null",
        ] {
            let err = invalid(payment(body));
            assert_eq!(err.code, "invalid_json", "{body}");
            assert_eq!(err.param, None, "{body}");
        }
        let err = invalid(payment(r#"{"amount": 1, "currency": "USD"} {}"#));
        assert_eq!(err.code, "invalid_json");
    }

    #[test]
    fn content_type_must_be_json() {
        let body = br#"{"amount": 1, "currency": "USD"}"#;
        for ct in [
            None,
            Some(&b"text/plain"[..]),
            Some(b"application/x-www-form-urlencoded"),
            Some(b"application/jsonx"),
            Some(b"\xff"),
        ] {
            assert!(matches!(
                parse_body::<CreatePaymentRequest>(ct, body),
                Err(ApiError::UnsupportedMediaType)
            ));
        }
        for ct in [
            &b"application/json"[..],
            b"Application/JSON",
            b"application/json; charset=utf-8",
        ] {
            assert!(parse_body::<CreatePaymentRequest>(Some(ct), body).is_ok());
        }
    }

    #[test]
    fn body_size_limit() {
        let pad = |n: usize| {
            let head = r#"{"amount": 1, "currency": "USD", "description": ""#;
            let tail = r#""}"#;
            format!("{head}{}{tail}", " ".repeat(n - head.len() - tail.len()))
        };
        assert!(!matches!(
            parse_body::<CreatePaymentRequest>(JSON, pad(MAX_BODY_BYTES).as_bytes()),
            Err(ApiError::PayloadTooLarge { .. })
        ));
        assert!(matches!(
            parse_body::<CreatePaymentRequest>(JSON, pad(MAX_BODY_BYTES + 1).as_bytes()),
            Err(ApiError::PayloadTooLarge { .. })
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(request) = parse_body::<CreatePaymentRequest>(JSON, &body) {
                if let Ok(p) = request.validate() {
                    prop_assert!((1..=99_999_999).contains(&p.amount.minor_units()));
                }
            }
        }

        #[test]
        fn every_integer_amount_is_accepted_exactly_in_range(amount in any::<i64>()) {
            let body = format!(r#"{{"amount": {amount}, "currency": "usd"}}"#);
            let result = payment(&body);
            prop_assert_eq!(result.is_ok(), (1..=99_999_999).contains(&amount));
        }
    }
}
