//! The account's demand item: each execution environment's latest claim on the account's
//! rate limit (see [`crate::domain::AccountShare`]). One item per account in the clients
//! table, beside the account's other items; DynamoDB's TTL deletes it an hour after its last
//! write.

use aws_sdk_dynamodb::types::Update;

use super::{n, s, Item, PK};
use crate::domain::{AccountId, Claim, EnvironmentId, Report};

/// Each environment's claim is an attribute of its own, named by this prefix and the
/// environment's id, so that one environment's write never rewrites another's.
pub const CLAIM_PREFIX: &str = "env_";

/// The item's time to live after its last write: claims last seconds to minutes; the hour is
/// for looking back at which environments served an account.
const RETENTION_SECONDS: u64 = 3600;

pub fn pk(account: &AccountId) -> String {
    format!("RATE#{account}")
}

/// A claim's value: the demand in thousandths of a request per second and the end of its
/// lease in milliseconds since the Unix epoch, as `demand:until`, with `:u` after a demand
/// not yet measured over a second.
fn claim_value(claim: &Claim) -> String {
    let unmeasured = if claim.measured { "" } else { ":u" };
    format!("{}:{}{unmeasured}", claim.demand, claim.until_ms)
}

/// Writes `report`'s claim and removes the claims it found long expired (the caller asks
/// for `ReturnValues = ALL_NEW`: every claim the item then holds).
pub fn publish_update(table: &str, account: &AccountId, report: &Report) -> Update {
    let mut expression = "SET #claim = :claim, #ttl = :ttl".to_owned();
    let mut update = Update::builder()
        .table_name(table)
        .key(PK, s(pk(account)))
        .expression_attribute_names(
            "#claim",
            format!("{CLAIM_PREFIX}{}", report.claim.environment),
        )
        .expression_attribute_names("#ttl", "ttl")
        .expression_attribute_values(":claim", s(claim_value(&report.claim)))
        .expression_attribute_values(":ttl", n(report.claim.until_ms / 1000 + RETENTION_SECONDS));
    for (index, gone) in report
        .expired
        .iter()
        .filter(|gone| **gone != report.claim.environment)
        .enumerate()
    {
        expression.push_str(if index == 0 { " REMOVE " } else { ", " });
        let name = format!("#gone{index}");
        expression.push_str(&name);
        update = update.expression_attribute_names(name, format!("{CLAIM_PREFIX}{gone}"));
    }
    update
        .update_expression(expression)
        .build()
        .expect("table, key and expression are set")
}

/// Every claim of the item; a damaged one is left out (it can only lose its environment a
/// share until that environment writes it again), and so is anything else.
pub fn claims(item: &Item) -> Vec<Claim> {
    item.iter()
        .filter_map(|(name, value)| {
            let environment = EnvironmentId::parse(name.strip_prefix(CLAIM_PREFIX)?)?;
            let value = value.as_s().ok()?;
            let (value, measured) = match value.strip_suffix(":u") {
                Some(unmeasured) => (unmeasured, false),
                None => (value.as_str(), true),
            };
            let (demand, until) = value.split_once(':')?;
            Some(Claim {
                environment,
                demand: demand.parse().ok()?,
                until_ms: until.parse().ok()?,
                measured,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(environment: u64, demand: u64, until_ms: u64) -> Claim {
        Claim {
            environment: EnvironmentId::from_number(environment),
            demand,
            until_ms,
            measured: true,
        }
    }

    #[test]
    fn each_account_has_one_item_and_each_environment_its_own_attribute() {
        let a = AccountId::generate().unwrap();
        let b = AccountId::generate().unwrap();
        assert_ne!(pk(&a), pk(&b));
        assert!(pk(&a).starts_with("RATE#acct_"));
        let report = Report {
            claim: claim(10, 5_000, 1_800_000_003_000),
            expired: vec![
                EnvironmentId::from_number(11),
                EnvironmentId::from_number(12),
            ],
        };
        let update = publish_update("t", &a, &report);
        assert_eq!(
            update.update_expression(),
            "SET #claim = :claim, #ttl = :ttl REMOVE #gone0, #gone1"
        );
        let names = update.expression_attribute_names().unwrap();
        assert_eq!(names["#claim"], "env_000000000000000a");
        assert_eq!(names["#gone1"], "env_000000000000000c");
        let values = update.expression_attribute_values().unwrap();
        assert_eq!(values[":claim"], s("5000:1800000003000"));
        let first = Report {
            claim: Claim {
                measured: false,
                ..report.claim
            },
            expired: vec![],
        };
        let values = publish_update("t", &a, &first)
            .expression_attribute_values()
            .cloned()
            .unwrap();
        assert_eq!(values[":claim"], s("5000:1800000003000:u"));
        assert_eq!(values[":ttl"], n(1_800_000_003u64 + 3600));
        // Nothing to remove: no REMOVE clause.
        let alone = publish_update(
            "t",
            &a,
            &Report {
                claim: report.claim,
                expired: vec![],
            },
        );
        assert_eq!(
            alone.update_expression(),
            "SET #claim = :claim, #ttl = :ttl"
        );
    }

    #[test]
    fn claims_are_read_back_and_damaged_ones_left_out() {
        let item = Item::from([
            (PK.to_owned(), s("RATE#acct_x")),
            ("ttl".to_owned(), n(5)),
            ("env_000000000000000a".to_owned(), s("5000:1800000003000")),
            ("env_000000000000000b".to_owned(), s("7:9")),
            ("env_000000000000000e".to_owned(), s("2000:9:u")),
            ("env_000000000000000c".to_owned(), s("seven:9")),
            ("env_zz".to_owned(), s("7:9")),
            ("env_000000000000000d".to_owned(), n(7)),
        ]);
        let mut found = claims(&item);
        found.sort_by_key(|claim| claim.environment);
        assert_eq!(
            found,
            vec![
                claim(10, 5_000, 1_800_000_003_000),
                claim(11, 7, 9),
                Claim {
                    measured: false,
                    ..claim(14, 2000, 9)
                }
            ]
        );
    }
}
