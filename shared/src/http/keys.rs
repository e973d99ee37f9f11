//! Keys as the `/keys` routes answer them: a key object never carries a secret or a digest;
//! a new key's answer carries its secret once, beside the object.

use lambda_http::Request;
use serde::Serialize;

use super::error::ApiError;
use super::request::path_parameter;
use crate::domain::{
    IpAllowList, KeyId, KeyKind, KeyName, KeyPrefix, KeyState, Permissions, Timestamp,
};
use crate::store::{KeyListing, KeySummary};

/// One key, as every `/keys` answer shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyObject {
    pub id: KeyId,
    pub name: Option<KeyName>,
    pub kind: KeyKind,
    /// The display prefix, as the logs name the key.
    pub prefix: KeyPrefix,
    pub permissions: Permissions,
    pub allowed_ips: IpAllowList,
    pub status: KeyState,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}

impl From<KeySummary> for KeyObject {
    fn from(key: KeySummary) -> Self {
        KeyObject {
            id: key.key_id,
            name: key.name,
            kind: key.kind,
            prefix: key.prefix,
            permissions: key.permissions,
            allowed_ips: key.allowed_ips,
            status: key.state,
            created_at: key.created_at,
            expires_at: key.expires_at,
            last_used_at: key.last_used_at,
        }
    }
}

/// A key just created or rolled, with its secret: the only answer that ever carries it.
#[derive(Serialize)]
pub struct NewKey {
    #[serde(flatten)]
    pub key: KeyObject,
    pub api_key: String,
}

/// `GET /keys`: every key the account keeps, newest first.
#[derive(Debug, Serialize)]
pub struct KeyList {
    pub data: Vec<KeyObject>,
    pub has_more: bool,
}

impl From<KeyListing> for KeyList {
    fn from(listing: KeyListing) -> Self {
        // The account keeps at most its last 20 entries: one page holds them all.
        KeyList {
            data: listing
                .keys
                .into_iter()
                .rev()
                .map(KeyObject::from)
                .collect(),
            has_more: false,
        }
    }
}

/// The `{id}` of a `/keys/{id}` route. A malformed id is the same 404 as an unknown one, and
/// never reaches DynamoDB.
pub fn key_id_of(request: &Request) -> Result<KeyId, ApiError> {
    path_parameter(request, "id")
        .and_then(KeyId::parse)
        .ok_or_else(|| {
            tracing::info!("key id malformed");
            ApiError::KeyNotFound
        })
}
