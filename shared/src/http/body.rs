//! Request bodies: from raw bytes to validated domain values, with a precise `param` on
//! every error.
//!
//! Two steps. Serde reads the JSON into a wire struct that rejects unknown and duplicate
//! fields and wrong types; then `validate` turns the wire struct into domain values. Both
//! steps are pure, so they are unit-tested and fuzzed without any HTTP or Lambda around them.

use serde::de::DeserializeOwned;
use serde::Deserialize;

use std::time::Duration;

pub use crate::domain::{echoed, MAX_ECHOED_CHARS};
use crate::domain::{
    AccountName, Amount, Currency, Description, Email, InvalidValue, IpAllowList, KeyGrant,
    KeyName, NewAccount, NewPayment, Permissions, Timestamp,
};

/// A roll's grace, at most a week (a rolled key stops at most this long after the roll).
pub const MAX_ROLL_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);

/// The largest body the API reads. API Gateway accepts far more; payment requests are tiny.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

string_enum!(
    /// The `code` of a 400: what is wrong with the request.
    InvalidRequestCode {
        /// Not JSON, or not one JSON object.
        InvalidJson = "invalid_json",
        ParameterMissing = "parameter_missing",
        /// Present, but of the wrong type or outside what the API accepts.
        ParameterInvalid = "parameter_invalid",
        ParameterUnknown = "parameter_unknown",
        ParameterDuplicate = "parameter_duplicate",
    }
);

/// What is wrong with a request that failed validation. `message` is written for the
/// developer calling the API and never contains internals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRequest {
    pub code: InvalidRequestCode,
    pub param: Option<String>,
    pub message: String,
}

impl InvalidRequest {
    /// `param` is echoed back bounded (see [`echoed`]).
    pub fn new(code: InvalidRequestCode, param: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            code,
            param: param.map(|name| echoed(name).into_owned()),
            message: message.into(),
        }
    }

    /// A field that is present and well-typed but holds a value the API does not accept.
    pub fn invalid_param(param: &str, message: impl Into<String>) -> Self {
        Self::new(InvalidRequestCode::ParameterInvalid, Some(param), message)
    }
}

/// A domain rule broken by a body field: the field's JSON name is the domain's field name.
impl From<InvalidValue> for InvalidRequest {
    fn from(value: InvalidValue) -> Self {
        InvalidRequest::invalid_param(value.field, value.message)
    }
}

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    UnsupportedMediaType,
    TooLarge { limit: usize },
    Invalid(InvalidRequest),
}

impl From<InvalidRequest> for BodyError {
    fn from(value: InvalidRequest) -> Self {
        BodyError::Invalid(value)
    }
}

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

impl CreatePaymentRequest {
    pub fn validate(self) -> Result<NewPayment, InvalidRequest> {
        Ok(NewPayment {
            amount: Amount::parse(self.amount)?,
            currency: Currency::parse(&self.currency)?,
            description: self.description.map(Description::parse).transpose()?,
        })
    }
}

/// `POST /keys`: a restricted key's name, permissions and, optionally, its end and where it
/// may be used from. There is no field for its kind: a key can only create restricted keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    pub name: String,
    pub permissions: Vec<String>,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub allowed_ips: Option<Vec<String>>,
}

impl JsonBody for CreateKeyRequest {
    const FIELDS: &'static [(&'static str, &'static str)] = &[
        ("name", "a string"),
        ("permissions", "a list of permission names"),
        ("expires_at", "an RFC 3339 date-time or null"),
        ("allowed_ips", "a list of IP addresses or ranges, or null"),
    ];
}

impl CreateKeyRequest {
    /// What the new key is given. `expires_at` must lie after `now`.
    pub fn validate(self, now: Timestamp) -> Result<KeyGrant, InvalidRequest> {
        let expires_at = match self.expires_at {
            None => None,
            Some(text) => {
                let at = Timestamp::parse(&text).ok_or_else(|| {
                    InvalidRequest::invalid_param(
                        "expires_at",
                        "expires_at must be an RFC 3339 date-time, such as 2027-01-01T00:00:00Z.",
                    )
                })?;
                if at <= now {
                    return Err(InvalidRequest::invalid_param(
                        "expires_at",
                        "expires_at must lie in the future.",
                    ));
                }
                Some(at)
            }
        };
        Ok(KeyGrant {
            name: Some(KeyName::parse(self.name)?),
            permissions: Permissions::parse(self.permissions.iter().map(String::as_str))?,
            allowed_ips: IpAllowList::parse(self.allowed_ips.iter().flatten().map(String::as_str))?,
            expires_at,
        })
    }
}

/// `POST /keys/{id}/roll`: how long the rolled key keeps working.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollKeyRequest {
    #[serde(default)]
    pub expires_in: Option<u64>,
}

impl JsonBody for RollKeyRequest {
    const FIELDS: &'static [(&'static str, &'static str)] =
        &[("expires_in", "a whole number of seconds or null")];
}

impl RollKeyRequest {
    /// The rolled key's grace: 0 (at once, the default) to a week.
    pub fn validate(self) -> Result<Duration, InvalidRequest> {
        let seconds = self.expires_in.unwrap_or(0);
        let grace = Duration::from_secs(seconds);
        if grace > MAX_ROLL_GRACE {
            return Err(InvalidRequest::invalid_param(
                "expires_in",
                format!(
                    "expires_in must be a whole number of seconds from 0 to {}.",
                    MAX_ROLL_GRACE.as_secs()
                ),
            ));
        }
        Ok(grace)
    }
}

/// Checks the content type and size, then reads the body as `T`.
pub fn parse_body<T: JsonBody>(content_type: Option<&[u8]>, body: &[u8]) -> Result<T, BodyError> {
    if !content_type.is_some_and(is_json_media_type) {
        return Err(BodyError::UnsupportedMediaType);
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(BodyError::TooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    Ok(parse_json::<T>(body)?)
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
    InvalidRequest::new(InvalidRequestCode::InvalidJson, None, message)
}

fn describe(
    err: serde_path_to_error::Error<serde_json::Error>,
    fields: &[(&'static str, &'static str)],
) -> InvalidRequest {
    let path = err.path().to_string();
    let inner = err.into_inner();
    let text = inner.to_string();
    // `permissions[2]` is the `permissions` field's third element.
    let field = fields.iter().find(|(name, _)| {
        path.strip_prefix(name)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('['))
    });
    let wrong_field = |(name, expected): &(&str, &str)| {
        InvalidRequest::invalid_param(name, format!("{name} must be {expected}."))
    };
    match inner.classify() {
        // Valid JSON holding a number beyond any type (`1e400`): serde_json stops at it as
        // at a syntax error, but it is the field that is wrong.
        serde_json::error::Category::Syntax if text.starts_with("number out of range") => field
            .map_or_else(
                || invalid_json("The request body must be a JSON object."),
                wrong_field,
            ),
        serde_json::error::Category::Io
        | serde_json::error::Category::Syntax
        | serde_json::error::Category::Eof => invalid_json("The request body is not valid JSON."),
        serde_json::error::Category::Data => {
            let named = quoted_name(&text);
            if text.starts_with("unknown field") {
                let name = named.unwrap_or_default();
                InvalidRequest::new(
                    InvalidRequestCode::ParameterUnknown,
                    Some(name),
                    format!("Received unknown parameter: {}", echoed(name)),
                )
            } else if text.starts_with("duplicate field") {
                let name = named.unwrap_or_default();
                InvalidRequest::new(
                    InvalidRequestCode::ParameterDuplicate,
                    Some(name),
                    format!("Parameter {name} appears more than once."),
                )
            } else if text.starts_with("missing field") {
                let name = named.unwrap_or_default();
                InvalidRequest::new(
                    InvalidRequestCode::ParameterMissing,
                    Some(name),
                    format!("Missing required parameter: {name}"),
                )
            } else if let Some(field) = field {
                wrong_field(field)
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

    fn payment(body: &str) -> Result<NewPayment, BodyError> {
        let request: CreatePaymentRequest = parse_body(JSON, body.as_bytes())?;
        Ok(request.validate()?)
    }

    fn account(body: &str) -> Result<NewAccount, BodyError> {
        let request: CreateAccountRequest = parse_body(JSON, body.as_bytes())?;
        Ok(request.validate()?)
    }

    fn invalid(result: Result<impl std::fmt::Debug, BodyError>) -> InvalidRequest {
        match result {
            Err(BodyError::Invalid(invalid)) => invalid,
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
        assert_eq!(err.code, InvalidRequestCode::ParameterUnknown);
        assert_eq!(err.param.as_deref(), Some("client_id"));
    }

    #[test]
    fn an_unknown_field_s_name_is_echoed_bounded() {
        // As long as a body may be.
        let name = "n".repeat(16_000);
        let err = invalid(payment(&format!(
            r#"{{"amount": 1, "currency": "USD", "{name}": 1}}"#
        )));
        assert_eq!(err.code, InvalidRequestCode::ParameterUnknown);
        let expected = format!("{}…", "n".repeat(MAX_ECHOED_CHARS));
        assert_eq!(err.param.as_deref(), Some(expected.as_str()));
        assert_eq!(
            err.message,
            format!("Received unknown parameter: {expected}")
        );
        // Short names, and names of exactly the bound, whole; multi-byte ones cut on a
        // character.
        assert_eq!(echoed("client_id"), "client_id");
        let exact = "é".repeat(MAX_ECHOED_CHARS);
        assert_eq!(echoed(&exact), exact.as_str());
        assert_eq!(echoed(&format!("{exact}é")), format!("{exact}…").as_str());
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
            assert_eq!(err.code, InvalidRequestCode::ParameterDuplicate, "{body}");
            assert!(err.param.is_some());
        }
    }

    #[test]
    fn missing_fields_name_the_param() {
        let err = invalid(payment(r#"{"currency": "USD"}"#));
        assert_eq!(
            (err.code, err.param.as_deref()),
            (InvalidRequestCode::ParameterMissing, Some("amount"))
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
            // Valid JSON, with a number no type holds: the field is wrong, not the JSON.
            (r#"{"amount": 1e400, "currency": "USD"}"#, "amount"),
            (r#"{"amount": -1e400, "currency": "USD"}"#, "amount"),
            (r#"{"currency": "USD", "amount": 1e400}"#, "amount"),
            (r#"{"amount": 100, "currency": 840}"#, "currency"),
            (
                r#"{"amount": 100, "currency": "USD", "description": 7}"#,
                "description",
            ),
        ];
        for (body, param) in cases {
            let err = invalid(payment(body));
            assert_eq!(err.code, InvalidRequestCode::ParameterInvalid, "{body}");
            assert_eq!(err.param.as_deref(), Some(param), "{body}");
        }
        let digits = format!(r#"{{"amount": {}, "currency": "USD"}}"#, "9".repeat(309));
        let err = invalid(payment(&digits));
        assert_eq!(
            (err.code, err.param.as_deref(), err.message.as_str()),
            (
                InvalidRequestCode::ParameterInvalid,
                Some("amount"),
                "amount must be an integer."
            )
        );
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
            assert_eq!(err.code, InvalidRequestCode::InvalidJson, "{body}");
            assert_eq!(err.param, None, "{body}");
        }
        let err = invalid(payment(r#"{"amount": 1, "currency": "USD"} {}"#));
        assert_eq!(err.code, InvalidRequestCode::InvalidJson);
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
                Err(BodyError::UnsupportedMediaType)
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
            Err(BodyError::TooLarge { .. })
        ));
        assert!(matches!(
            parse_body::<CreatePaymentRequest>(JSON, pad(MAX_BODY_BYTES + 1).as_bytes()),
            Err(BodyError::TooLarge { .. })
        ));
    }

    /// One field of a generated body: its JSON text (none = absent) and whether the API
    /// must accept it.
    #[derive(Debug, Clone)]
    struct Field {
        json: Option<String>,
        valid: bool,
    }

    fn field(json: impl Into<String>, valid: bool) -> Field {
        Field {
            json: Some(json.into()),
            valid,
        }
    }

    fn amount() -> impl Strategy<Value = Field> {
        prop_oneof![
            4 => (1i64..=99_999_999).prop_map(|n| field(n.to_string(), true)),
            1 => prop_oneof![Just(0i64), Just(-1), Just(100_000_000), Just(i64::MIN), Just(i64::MAX)]
                .prop_map(|n| field(n.to_string(), false)),
            1 => prop_oneof![Just("1.5"), Just("\"100\""), Just("null"), Just("true"), Just("1e3")]
                .prop_map(|text| field(text, false)),
            1 => Just(Field { json: None, valid: false }),
        ]
    }

    fn currency() -> impl Strategy<Value = Field> {
        prop_oneof![
            4 => prop_oneof![Just("USD"), Just("eur"), Just("Jpy"), Just("GBP"), Just("chf")]
                .prop_map(|code| field(format!("\"{code}\""), true)),
            1 => prop_oneof![Just("\"XXX\""), Just("\"US\""), Just("\"USDD\""), Just("840"), Just("null")]
                .prop_map(|text| field(text, false)),
            1 => Just(Field { json: None, valid: false }),
        ]
    }

    fn description() -> impl Strategy<Value = Field> {
        prop_oneof![
            2 => Just(Field { json: None, valid: true }),
            1 => Just(field("null", true)),
            2 => "[a-zA-Z0-9 ]{0,40}".prop_map(|text| field(format!("\"{text}\""), true)),
            1 => Just(field(format!("\"{}\"", "x".repeat(500)), true)),
            1 => Just(field(format!("\"{}\"", "x".repeat(501)), false)),
            1 => Just(field("7", false)),
        ]
    }

    /// A field the API does not have, or a second copy of one it has.
    fn extra() -> impl Strategy<Value = Option<(String, String)>> {
        prop_oneof![
            6 => Just(None),
            1 => Just(Some(("client_id".to_owned(), "\"acct_AAAAAAAAAAAAAAAAAAAA\"".to_owned()))),
            1 => Just(Some(("amount".to_owned(), "5".to_owned()))),
            1 => Just(Some(("currency".to_owned(), "\"USD\"".to_owned()))),
        ]
    }

    /// Near-valid bodies: each field valid or broken in one of the ways callers break them,
    /// in any order. The body is accepted exactly when every field is; a refusal names one of
    /// the broken fields. Reports, and bounds from below, how many cases reach each side.
    #[test]
    fn near_valid_payment_bodies_are_judged_field_by_field() {
        use proptest::test_runner::{Config, TestRunner};
        let mut runner = TestRunner::new(Config {
            cases: 2000,
            ..Config::default()
        });
        let accepted = std::cell::Cell::new(0u32);
        let refused = std::cell::Cell::new(0u32);
        let strategy = (
            amount(),
            currency(),
            description(),
            extra(),
            any::<proptest::sample::Index>(),
        );
        runner
            .run(
                &strategy,
                |(amount, currency, description, extra, order)| {
                    let mut members: Vec<(String, &Field)> = vec![
                        ("amount".to_owned(), &amount),
                        ("currency".to_owned(), &currency),
                        ("description".to_owned(), &description),
                    ];
                    // A second copy of a field that is absent would just be that field.
                    let extra = extra.filter(|(name, _)| {
                        members
                            .iter()
                            .all(|(member, f)| member != name || f.json.is_some())
                    });
                    let extra_field = extra.as_ref().map(|(_, json)| field(json.clone(), false));
                    if let (Some((name, _)), Some(f)) = (&extra, &extra_field) {
                        members.push((name.clone(), f));
                    }
                    let at = order.index(members.len());
                    members.rotate_left(at);
                    let body = format!(
                        "{{{}}}",
                        members
                            .iter()
                            .filter_map(|(name, f)| f
                                .json
                                .as_ref()
                                .map(|json| format!("\"{name}\": {json}")))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    let broken: Vec<&str> = members
                        .iter()
                        .filter(|(_, f)| !f.valid)
                        .map(|(name, _)| name.as_str())
                        .collect();
                    match payment(&body) {
                        Ok(p) => {
                            accepted.set(accepted.get() + 1);
                            prop_assert!(
                                broken.is_empty(),
                                "{body} accepted though {broken:?} are broken"
                            );
                            prop_assert!((1..=99_999_999).contains(&p.amount.minor_units()));
                            prop_assert_eq!(
                                Currency::parse(p.currency.code()).unwrap(),
                                p.currency
                            );
                        }
                        Err(BodyError::Invalid(err)) => {
                            refused.set(refused.get() + 1);
                            let param = err.param.as_deref().unwrap_or_default();
                            prop_assert!(
                                broken.contains(&param),
                                "{body}: {err:?}, broken {broken:?}"
                            );
                        }
                        Err(other) => prop_assert!(false, "{body}: {other:?}"),
                    }
                    Ok(())
                },
            )
            .unwrap();
        let (accepted, refused) = (accepted.get(), refused.get());
        let share = f64::from(accepted) / f64::from(accepted + refused);
        let percent = share * 100.0;
        println!(
            "near-valid bodies: {accepted} accepted, {refused} refused ({percent:.0}% accepted)"
        );
        assert!(share > 0.15 && share < 0.85, "accepted share {share}");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_body::<CreatePaymentRequest>(JSON, &body).map(CreatePaymentRequest::validate);
            let _ = parse_body::<CreateAccountRequest>(JSON, &body).map(CreateAccountRequest::validate);
        }

        #[test]
        fn every_integer_amount_is_accepted_exactly_in_range(amount in any::<i64>()) {
            let body = format!(r#"{{"amount": {amount}, "currency": "usd"}}"#);
            let result = payment(&body);
            prop_assert_eq!(result.is_ok(), (1..=99_999_999).contains(&amount));
        }
    }
}
