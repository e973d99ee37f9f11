//! Query strings: from the request's parameters to a typed value, with a precise `param` on
//! every error. Unknown and repeated parameters are refused, as unknown and repeated body
//! fields are, so that a typo never silently widens a list.

use lambda_http::{Request, RequestExt};

use super::body::{InvalidRequest, InvalidRequestCode};
use crate::domain::{PaymentId, Timestamp};

/// `GET /payments`: which page of the account's payments, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// 1 to [`ListQuery::MAX_LIMIT`].
    pub limit: usize,
    pub created_gte: Option<Timestamp>,
    pub created_lte: Option<Timestamp>,
    pub cursor: Option<Cursor>,
}

/// A page cursor: the id of a payment the page starts after or ends before, as Stripe's
/// lists take it. Whose payment it is, and whether it exists, is for the handler to find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    StartingAfter(PaymentId),
    EndingBefore(PaymentId),
}

impl Cursor {
    /// The query parameter the cursor came in.
    pub fn param(&self) -> &'static str {
        match self {
            Cursor::StartingAfter(_) => STARTING_AFTER,
            Cursor::EndingBefore(_) => ENDING_BEFORE,
        }
    }

    pub fn id(&self) -> &PaymentId {
        match self {
            Cursor::StartingAfter(id) | Cursor::EndingBefore(id) => id,
        }
    }
}

const LIMIT: &str = "limit";
const STARTING_AFTER: &str = "starting_after";
const ENDING_BEFORE: &str = "ending_before";
const CREATED_GTE: &str = "created[gte]";
const CREATED_LTE: &str = "created[lte]";

impl ListQuery {
    pub const DEFAULT_LIMIT: usize = 10;
    pub const MAX_LIMIT: usize = 100;
    /// Every parameter `GET /payments` reads.
    pub const PARAMS: &'static [&'static str] = &[
        LIMIT,
        STARTING_AFTER,
        ENDING_BEFORE,
        CREATED_GTE,
        CREATED_LTE,
    ];

    /// Reads the request's query string (already percent-decoded by the runtime).
    pub fn from_request(request: &Request) -> Result<Self, InvalidRequest> {
        let pairs: Vec<(&str, &str)> = request
            .query_string_parameters_ref()
            .into_iter()
            .flat_map(|map| map.iter())
            .collect();
        Self::parse(&pairs)
    }

    /// Reads (name, value) pairs, in any order.
    pub fn parse(pairs: &[(&str, &str)]) -> Result<Self, InvalidRequest> {
        let mut names: Vec<&str> = pairs.iter().map(|(name, _)| *name).collect();
        names.sort_unstable();
        if let Some(unknown) = names.iter().find(|name| !Self::PARAMS.contains(name)) {
            return Err(InvalidRequest::new(
                InvalidRequestCode::ParameterUnknown,
                Some(unknown),
                format!(
                    "Unknown query parameter. GET /payments takes {}.",
                    Self::PARAMS.join(", ")
                ),
            ));
        }
        if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(InvalidRequest::new(
                InvalidRequestCode::ParameterDuplicate,
                Some(pair[0]),
                "Send each query parameter at most once.",
            ));
        }
        let value = |name: &str| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        let limit = match value(LIMIT) {
            None => Self::DEFAULT_LIMIT,
            Some(text) => parse_limit(text).ok_or_else(|| {
                InvalidRequest::invalid_param(
                    LIMIT,
                    format!("limit must be an integer from 1 to {}.", Self::MAX_LIMIT),
                )
            })?,
        };
        let payment_id = |name: &str| {
            value(name)
                .map(|text| {
                    PaymentId::parse(text).ok_or_else(|| {
                        InvalidRequest::invalid_param(
                            name,
                            format!("{name} must be a payment id (pay_ and 20 letters or digits)."),
                        )
                    })
                })
                .transpose()
        };
        let cursor = match (payment_id(STARTING_AFTER)?, payment_id(ENDING_BEFORE)?) {
            (None, None) => None,
            (Some(id), None) => Some(Cursor::StartingAfter(id)),
            (None, Some(id)) => Some(Cursor::EndingBefore(id)),
            (Some(_), Some(_)) => {
                return Err(InvalidRequest::invalid_param(
                    ENDING_BEFORE,
                    "Send starting_after or ending_before, not both.",
                ))
            }
        };
        let instant = |name: &str| {
            value(name)
                .map(|text| {
                    Timestamp::parse(text).ok_or_else(|| {
                        InvalidRequest::invalid_param(
                            name,
                            format!("{name} must be an RFC 3339 date-time, such as 2026-12-01T10:00:00Z."),
                        )
                    })
                })
                .transpose()
        };
        Ok(ListQuery {
            limit,
            created_gte: instant(CREATED_GTE)?,
            created_lte: instant(CREATED_LTE)?,
            cursor,
        })
    }
}

/// Decimal digits only (no sign, no spaces), 1 to 100.
fn parse_limit(text: &str) -> Option<usize> {
    if text.is_empty() || text.len() > 3 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let limit: usize = text.parse().ok()?;
    (1..=ListQuery::MAX_LIMIT).contains(&limit).then_some(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(pairs: &[(&str, &str)]) -> (InvalidRequestCode, String) {
        match ListQuery::parse(pairs) {
            Err(invalid) => (invalid.code, invalid.param.unwrap_or_default()),
            Ok(query) => panic!("{pairs:?} was accepted as {query:?}"),
        }
    }

    #[test]
    fn no_parameters_is_the_first_page_of_ten() {
        assert_eq!(
            ListQuery::parse(&[]).unwrap(),
            ListQuery {
                limit: 10,
                created_gte: None,
                created_lte: None,
                cursor: None
            }
        );
    }

    #[test]
    fn every_parameter_reads_into_its_typed_value() {
        let query = ListQuery::parse(&[
            ("limit", "100"),
            ("starting_after", "pay_AAAAAAAAAAAAAAAAAAAA"),
            ("created[gte]", "2026-01-01T00:00:00Z"),
            ("created[lte]", "2026-01-02T01:00:00+01:00"),
        ])
        .unwrap();
        assert_eq!(query.limit, 100);
        let cursor = query.cursor.unwrap();
        assert_eq!(cursor.param(), "starting_after");
        assert_eq!(cursor.id().as_str(), "pay_AAAAAAAAAAAAAAAAAAAA");
        assert_eq!(
            query.created_lte.unwrap().to_rfc3339(),
            "2026-01-02T00:00:00.000Z"
        );
        let query = ListQuery::parse(&[("ending_before", "pay_BBBBBBBBBBBBBBBBBBBB")]).unwrap();
        assert_eq!(query.cursor.unwrap().param(), "ending_before");
        assert_eq!(ListQuery::parse(&[("limit", "1")]).unwrap().limit, 1);
    }

    #[test]
    fn bad_parameters_are_refused_with_their_name() {
        use InvalidRequestCode::*;
        for limit in [
            "0",
            "101",
            "abc",
            "",
            "-1",
            "+5",
            " 5",
            "1.0",
            "1e2",
            "99999999999",
        ] {
            assert_eq!(
                refused(&[("limit", limit)]),
                (ParameterInvalid, "limit".into()),
                "{limit:?}"
            );
        }
        assert_eq!(
            refused(&[
                ("starting_after", "pay_AAAAAAAAAAAAAAAAAAAA"),
                ("ending_before", "pay_BBBBBBBBBBBBBBBBBBBB")
            ]),
            (ParameterInvalid, "ending_before".into())
        );
        assert_eq!(
            refused(&[("starting_after", "pay_short")]),
            (ParameterInvalid, "starting_after".into())
        );
        assert_eq!(
            refused(&[("ending_before", "acct_AAAAAAAAAAAAAAAAAAAA")]),
            (ParameterInvalid, "ending_before".into())
        );
        assert_eq!(
            refused(&[("created[gte]", "yesterday")]),
            (ParameterInvalid, "created[gte]".into())
        );
        assert_eq!(
            refused(&[("created[lte]", "2026-01-01")]),
            (ParameterInvalid, "created[lte]".into())
        );
        assert_eq!(
            refused(&[("limit", "5"), ("offset", "5")]),
            (ParameterUnknown, "offset".into())
        );
        assert_eq!(
            refused(&[("created", "2026-01-01T00:00:00Z")]),
            (ParameterUnknown, "created".into())
        );
        assert_eq!(
            refused(&[("limit", "5"), ("limit", "6")]),
            (ParameterDuplicate, "limit".into())
        );
        // An unknown name is echoed bounded, however long it is.
        let long = "x".repeat(20_000);
        let (code, param) = refused(&[(long.as_str(), "1")]);
        assert_eq!(code, ParameterUnknown);
        assert_eq!(param, format!("{}…", "x".repeat(64)));
    }
}
