//! DynamoDB item shapes: each entity's attributes are written and read in its own module
//! here, and only here (`docs/data-model.md` documents them; keep the two in step).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::error::{Entity, StoreError};

pub mod account;
pub mod audit;
pub mod key;
pub mod payment;
pub mod rate;

pub type Item = HashMap<String, AttributeValue>;

/// Partition key attribute of every table.
pub const PK: &str = "pk";
/// Sort key attribute of the audit table.
pub const SK: &str = "sk";
/// The condition of every write that creates an item.
pub const NEW_ITEM_ONLY: &str = "attribute_not_exists(pk)";

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A list of strings, in order (permissions, IP ranges).
pub(crate) fn strings<T: ToString>(values: impl IntoIterator<Item = T>) -> AttributeValue {
    AttributeValue::L(values.into_iter().map(|v| s(v.to_string())).collect())
}

/// A list attribute's strings; `None` when absent, or when any element is not a string.
pub(crate) fn strings_of(value: Option<&AttributeValue>) -> Option<Option<Vec<&str>>> {
    match value {
        None => Some(None),
        Some(AttributeValue::L(items)) => items
            .iter()
            .map(|item| item.as_s().ok().map(String::as_str))
            .collect::<Option<Vec<_>>>()
            .map(Some),
        Some(_) => None,
    }
}

/// Reads one stored item's attributes; the first wrong one makes it `Corrupt`, named by
/// entity, id and attribute (never by value: values may be digests).
pub(crate) struct Reader<'a> {
    item: &'a Item,
    entity: Entity,
    id: String,
}

impl<'a> Reader<'a> {
    pub fn new(item: &'a Item, entity: Entity, id_attribute: &str) -> Self {
        let id = item
            .get(id_attribute)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_else(|| "?".to_owned());
        Reader { item, entity, id }
    }

    pub fn corrupt(&self, attribute: &'static str) -> StoreError {
        StoreError::corrupt(self.entity, self.id.clone(), attribute)
    }

    /// An optional string attribute; present with another type is corrupt.
    pub fn opt_str(&self, name: &'static str) -> Result<Option<&'a str>, StoreError> {
        match self.item.get(name) {
            None => Ok(None),
            Some(AttributeValue::S(text)) => Ok(Some(text)),
            Some(_) => Err(self.corrupt(name)),
        }
    }

    pub fn str(&self, name: &'static str) -> Result<&'a str, StoreError> {
        self.opt_str(name)?.ok_or_else(|| self.corrupt(name))
    }

    /// A required string attribute, parsed.
    pub fn parse<T>(
        &self,
        name: &'static str,
        parse: impl FnOnce(&'a str) -> Option<T>,
    ) -> Result<T, StoreError> {
        parse(self.str(name)?).ok_or_else(|| self.corrupt(name))
    }

    /// An optional string attribute, parsed when present.
    pub fn parse_opt<T>(
        &self,
        name: &'static str,
        parse: impl FnOnce(&'a str) -> Option<T>,
    ) -> Result<Option<T>, StoreError> {
        match self.opt_str(name)? {
            None => Ok(None),
            Some(text) => parse(text).map(Some).ok_or_else(|| self.corrupt(name)),
        }
    }

    /// A required number attribute, parsed.
    pub fn number<T: std::str::FromStr>(&self, name: &'static str) -> Result<T, StoreError> {
        self.item
            .get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| self.corrupt(name))
    }

    /// An optional number attribute, parsed when present; present and out of range (or of
    /// another type) is corrupt.
    pub fn opt_number_parse<N: std::str::FromStr, T>(
        &self,
        name: &'static str,
        parse: impl FnOnce(N) -> Option<T>,
    ) -> Result<Option<T>, StoreError> {
        match self.item.get(name) {
            None => Ok(None),
            Some(AttributeValue::N(text)) => text
                .parse()
                .ok()
                .and_then(parse)
                .map(Some)
                .ok_or_else(|| self.corrupt(name)),
            Some(_) => Err(self.corrupt(name)),
        }
    }

    pub fn map(
        &self,
        name: &'static str,
    ) -> Result<&'a HashMap<String, AttributeValue>, StoreError> {
        match self.item.get(name) {
            Some(AttributeValue::M(map)) => Ok(map),
            _ => Err(self.corrupt(name)),
        }
    }
}
