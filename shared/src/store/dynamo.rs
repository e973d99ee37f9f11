//! DynamoDB implementation of the store traits. Item shapes and access patterns are
//! documented in `docs/data-model.md`; keep the two in step.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;

use super::{
    CreateAccount, FindKey, InsertOutcome, InsertPayment, IssuedKey, KeyRecord, KeyStatus,
    StoredPayment,
};
use crate::api_key::{KeyDigest, KeyPrefix};
use crate::currency::Currency;
use crate::domain::{
    Account, AccountId, AccountName, AccountStatus, Amount, Description, Email, KeyId, Payment,
    PaymentId, PaymentStatus, Timestamp,
};
use crate::error::ApiError;

/// Partition key attribute of both tables.
pub const PK: &str = "pk";
const NEW_ITEM_ONLY: &str = "attribute_not_exists(pk)";

pub(crate) type Item = HashMap<String, AttributeValue>;

pub fn account_pk(id: &AccountId) -> String {
    format!("ACCOUNT#{id}")
}

pub fn key_pk(digest: &KeyDigest) -> String {
    format!("KEY#{}", digest.to_hex())
}

/// The item that maps a key id to its account, so operators can act on a key by its id.
pub fn key_ref_pk(id: &KeyId) -> String {
    format!("KEYID#{id}")
}

/// Both tables, with names read once at start.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    pub(crate) client: Client,
    pub(crate) clients_table: String,
    pub(crate) payments_table: String,
}

impl DynamoStore {
    pub fn new(client: Client, clients_table: String, payments_table: String) -> Self {
        DynamoStore {
            client,
            clients_table,
            payments_table,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// One item by partition key, strongly consistent.
    pub(crate) async fn get_consistent(
        &self,
        table: &str,
        pk: String,
    ) -> Result<Option<Item>, ApiError> {
        let output = self
            .client
            .get_item()
            .table_name(table)
            .key(PK, AttributeValue::S(pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        Ok(output.item)
    }

    /// Reads a payment by id (strongly consistent).
    pub async fn get_payment(&self, id: &str) -> Result<Option<Item>, ApiError> {
        self.get_consistent(&self.payments_table, id.to_owned())
            .await
    }
}

impl FindKey for DynamoStore {
    async fn find_key(&self, digest: &KeyDigest) -> Result<Option<KeyRecord>, ApiError> {
        // Strongly consistent: a key must work on the very request after it is issued, and
        // must stop working on the very request after it is revoked.
        self.get_consistent(&self.clients_table, key_pk(digest))
            .await?
            .map(|item| key_from_item(&item))
            .transpose()
    }
}

impl CreateAccount for DynamoStore {
    async fn create_account(&self, account: &Account, key: &IssuedKey) -> Result<(), ApiError> {
        let account_put = Put::builder()
            .table_name(&self.clients_table)
            .set_item(Some(account_item(account, key)))
            .condition_expression(NEW_ITEM_ONLY)
            .build()
            .map_err(unexpected)?;
        let key_put = Put::builder()
            .table_name(&self.clients_table)
            .set_item(Some(key_item(&account.id, account.status, key)))
            .condition_expression(NEW_ITEM_ONLY)
            .build()
            .map_err(unexpected)?;
        let ref_put = Put::builder()
            .table_name(&self.clients_table)
            .set_item(Some(key_ref_item(&account.id, &key.key_id)))
            .condition_expression(NEW_ITEM_ONLY)
            .build()
            .map_err(unexpected)?;
        self.client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(account_put).build())
            .transact_items(TransactWriteItem::builder().put(key_put).build())
            .transact_items(TransactWriteItem::builder().put(ref_put).build())
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
}

impl InsertPayment for DynamoStore {
    async fn insert_payment(
        &self,
        payment: &Payment,
        request_fingerprint: &str,
    ) -> Result<InsertOutcome, ApiError> {
        // One write, never an overwrite. If the item exists, the failed condition hands it
        // back, so a replay costs no extra round trip.
        let result = self
            .client
            .put_item()
            .table_name(&self.payments_table)
            .set_item(Some(payment_item(payment, request_fingerprint)))
            .condition_expression(NEW_ITEM_ONLY)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(InsertOutcome::Created),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    let existing = failed.item().ok_or_else(|| {
                        ApiError::Unexpected(anyhow::anyhow!(
                            "condition check on payment {} returned no item",
                            payment.id
                        ))
                    })?;
                    stored_payment_from_item(existing).map(InsertOutcome::Exists)
                }
                _ => Err(classify(err)),
            },
        }
    }
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A key's entry in its account's `keys` map.
pub(crate) fn key_summary(key: &IssuedKey) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("digest".to_owned(), s(key.digest.to_hex())),
        ("prefix".to_owned(), s(key.prefix.as_str())),
        ("status".to_owned(), s(KeyStatus::Active.as_str())),
        ("created_at".to_owned(), s(key.created_at.to_rfc3339())),
    ]))
}

fn account_item(account: &Account, key: &IssuedKey) -> Item {
    let mut item = HashMap::from([
        (PK.to_owned(), s(account_pk(&account.id))),
        ("entity".to_owned(), s("account")),
        ("account_id".to_owned(), s(account.id.as_str())),
        ("name".to_owned(), s(account.name.as_str())),
        ("status".to_owned(), s(account.status.as_str())),
        ("created_at".to_owned(), s(account.created_at.to_rfc3339())),
        (
            "keys".to_owned(),
            AttributeValue::M(HashMap::from([(
                key.key_id.as_str().to_owned(),
                key_summary(key),
            )])),
        ),
        // Optimistic concurrency for operator changes (rotation, revocation, status).
        ("version".to_owned(), AttributeValue::N("1".to_owned())),
    ]);
    if let Some(email) = &account.email {
        item.insert("email".to_owned(), s(email.as_str()));
    }
    item
}

pub(crate) fn key_item(
    account_id: &AccountId,
    account_status: AccountStatus,
    key: &IssuedKey,
) -> Item {
    HashMap::from([
        (PK.to_owned(), s(key_pk(&key.digest))),
        ("entity".to_owned(), s("api_key")),
        ("key_id".to_owned(), s(key.key_id.as_str())),
        ("account_id".to_owned(), s(account_id.as_str())),
        ("prefix".to_owned(), s(key.prefix.as_str())),
        ("status".to_owned(), s(KeyStatus::Active.as_str())),
        ("account_status".to_owned(), s(account_status.as_str())),
        ("created_at".to_owned(), s(key.created_at.to_rfc3339())),
    ])
}

pub(crate) fn key_ref_item(account_id: &AccountId, key_id: &KeyId) -> Item {
    HashMap::from([
        (PK.to_owned(), s(key_ref_pk(key_id))),
        ("entity".to_owned(), s("api_key_ref")),
        ("key_id".to_owned(), s(key_id.as_str())),
        ("account_id".to_owned(), s(account_id.as_str())),
    ])
}

fn payment_item(payment: &Payment, request_fingerprint: &str) -> Item {
    let mut item = HashMap::from([
        (PK.to_owned(), s(payment.id.as_str())),
        ("entity".to_owned(), s("payment")),
        ("client_id".to_owned(), s(payment.client_id.as_str())),
        (
            "amount".to_owned(),
            AttributeValue::N(payment.amount.minor_units().to_string()),
        ),
        ("currency".to_owned(), s(payment.currency.code())),
        ("status".to_owned(), s(payment.status.as_str())),
        ("created_at".to_owned(), s(payment.created_at.to_rfc3339())),
        ("request_fingerprint".to_owned(), s(request_fingerprint)),
    ]);
    if let Some(description) = &payment.description {
        item.insert("description".to_owned(), s(description.as_str()));
    }
    if let Some(key) = &payment.idempotency_key {
        item.insert("idempotency_key".to_owned(), s(key.as_str()));
    }
    item
}

fn stored_payment_from_item(item: &Item) -> Result<StoredPayment, ApiError> {
    let parse = || -> Option<StoredPayment> {
        let amount = string_attr_n(item, "amount")?.parse::<i64>().ok()?;
        Some(StoredPayment {
            payment: Payment {
                id: PaymentId::parse(string_attr(item, PK)?)?,
                client_id: AccountId::parse(string_attr(item, "client_id")?)?,
                amount: Amount::parse(amount).ok()?,
                currency: Currency::parse(string_attr(item, "currency")?).ok()?,
                description: match string_attr(item, "description") {
                    Some(text) => Some(Description::parse(text.to_owned()).ok()?),
                    None => None,
                },
                status: PaymentStatus::parse(string_attr(item, "status")?)?,
                created_at: Timestamp::parse(string_attr(item, "created_at")?)?,
                idempotency_key: string_attr(item, "idempotency_key").map(str::to_owned),
            },
            request_fingerprint: string_attr(item, "request_fingerprint")?.to_owned(),
        })
    };
    parse().ok_or_else(|| corrupt("payment", string_attr(item, PK).unwrap_or("?")))
}

fn string_attr_n<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .map(String::as_str)
}

pub(crate) fn corrupt(what: &str, id: &str) -> ApiError {
    ApiError::Unexpected(anyhow::anyhow!("stored {what} item {id} is malformed"))
}

pub(crate) fn string_attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn key_from_item(item: &Item) -> Result<KeyRecord, ApiError> {
    let parse = || -> Option<KeyRecord> {
        Some(KeyRecord {
            key_id: KeyId::parse(string_attr(item, "key_id")?)?,
            account_id: AccountId::parse(string_attr(item, "account_id")?)?,
            prefix: KeyPrefix::from_stored(string_attr(item, "prefix")?.to_owned()),
            status: KeyStatus::parse(string_attr(item, "status")?)?,
            account_status: AccountStatus::parse(string_attr(item, "account_status")?)?,
            created_at: Timestamp::parse(string_attr(item, "created_at")?)?,
            expires_at: match string_attr(item, "expires_at") {
                Some(at) => Some(Timestamp::parse(at)?),
                None => None,
            },
        })
    };
    // The key item's own id is its digest; name it by key id, which is safe to log.
    parse().ok_or_else(|| corrupt("key", string_attr(item, "key_id").unwrap_or("?")))
}

pub(crate) fn account_from_item(item: &Item) -> Result<Account, ApiError> {
    let parse = || -> Option<Account> {
        Some(Account {
            id: AccountId::parse(string_attr(item, "account_id")?)?,
            name: AccountName::parse(string_attr(item, "name")?.to_owned()).ok()?,
            email: match string_attr(item, "email") {
                Some(email) => Some(Email::parse(email.to_owned()).ok()?),
                None => None,
            },
            status: AccountStatus::parse(string_attr(item, "status")?)?,
            created_at: Timestamp::parse(string_attr(item, "created_at")?)?,
        })
    };
    parse().ok_or_else(|| corrupt("account", string_attr(item, "account_id").unwrap_or("?")))
}

pub(crate) fn unexpected(err: impl std::error::Error + Send + Sync + 'static) -> ApiError {
    ApiError::Unexpected(anyhow::Error::new(err))
}

/// Error codes DynamoDB uses for conditions a retry can clear.
const RETRYABLE_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
    "TransactionInProgressException",
];

/// Sorts an SDK failure into retryable (503) or not (500). The full error, with its context
/// chain, is kept as the source for the logs; callers only ever see the generic message.
pub fn classify<E, R>(err: SdkError<E, R>) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let retryable = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => service
            .err()
            .code()
            .is_some_and(|code| RETRYABLE_CODES.contains(&code)),
        _ => false,
    };
    let source = anyhow::anyhow!("{}", DisplayErrorContext(&err));
    if retryable {
        ApiError::Unavailable(source)
    } else {
        ApiError::Unexpected(source)
    }
}

/// Creates both tables if they do not exist (local development and tests; in AWS the SAM
/// template owns them). Same key schema as `template.yaml`.
pub async fn create_tables(
    client: &Client,
    clients_table: &str,
    payments_table: &str,
) -> Result<(), ApiError> {
    for table in [clients_table, payments_table] {
        let result = client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(PK)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(unexpected)?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(PK)
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(unexpected)?,
            )
            .send()
            .await;
        match result {
            Ok(_) => tracing::info!(table, "table created"),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                tracing::debug!(table, "table already exists");
            }
            Err(err) => return Err(classify(err)),
        }
    }
    Ok(())
}
