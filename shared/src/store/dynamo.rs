//! DynamoDB implementation of the store traits: the calls, and what each failure means for
//! the data. Item shapes live in [`super::items`].

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
    ScalarAttributeType, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::error::{Entity, StoreError};
use super::items::{self, Item, NEW_ITEM_ONLY, PK, SK};
use super::lifecycle::{AccountSettings, MAX_TRANSACTION_ITEMS};
use super::{
    CreateAccount, FindKey, InsertOutcome, InsertPayment, IssuedKey, KeyRecord, PublishDemand,
    RecordKeyUse, StoredPayment,
};
use crate::domain::{
    Account, AccountId, AuditEvent, Claim, KeyDigest, Payment, PaymentId, Report,
    RequestFingerprint, Timestamp,
};

/// The service's tables, by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tables {
    /// Accounts, API keys and key references.
    pub clients: String,
    pub payments: String,
    /// Audit events of operator and account changes.
    pub audit: String,
}

impl Tables {
    /// `{prefix}-clients`, `{prefix}-payments`, `{prefix}-audit`.
    pub fn with_prefix(prefix: &str) -> Self {
        Tables {
            clients: format!("{prefix}-clients"),
            payments: format!("{prefix}-payments"),
            audit: format!("{prefix}-audit"),
        }
    }
}

/// The tables, with names read once at start.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    pub(super) client: Client,
    pub(super) clients_table: String,
    pub(super) payments_table: String,
    pub(super) audit_table: String,
}

impl DynamoStore {
    pub fn new(client: Client, tables: Tables) -> Self {
        DynamoStore {
            client,
            clients_table: tables.clients,
            payments_table: tables.payments,
            audit_table: tables.audit,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// One item by partition key, strongly consistent.
    pub(super) async fn get_consistent(
        &self,
        table: &str,
        pk: String,
    ) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(table)
            .key(PK, AttributeValue::S(pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| classify(err, Call::Read))?;
        Ok(output.item)
    }

    /// A payment by id (strongly consistent), whoever it belongs to.
    pub async fn payment(&self, id: &PaymentId) -> Result<Option<StoredPayment>, StoreError> {
        self.get_consistent(&self.payments_table, id.as_str().to_owned())
            .await?
            .map(|item| items::payment::stored_from_item(&item))
            .transpose()
    }

    /// One transaction about `entity` `id`; a cancelled one is sorted by what cancelled it.
    pub(super) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        entity: Entity,
        id: &str,
        failed_condition: FailedCondition,
    ) -> Result<(), StoreError> {
        if items.len() > MAX_TRANSACTION_ITEMS {
            return Err(StoreError::TooManyItems {
                needed: items.len(),
                max: MAX_TRANSACTION_ITEMS,
            });
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let Err(err) = result else {
            return Ok(());
        };
        if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
            err.as_service_error()
        {
            let codes: Vec<&str> = cancelled
                .cancellation_reasons()
                .iter()
                .filter_map(|reason| reason.code())
                .collect();
            let context = || anyhow::anyhow!("{}", DisplayErrorContext(&err));
            if let Some(known) = cancellation(&codes, entity, id, failed_condition, context) {
                return Err(known);
            }
        }
        Err(classify(err, Call::Write))
    }

    /// One call during init, so the first request does not pay for DNS, TCP and TLS set-up.
    /// Any answer from DynamoDB, including the expected failed condition, means the
    /// connection is up. Failure is logged, not fatal: the first request will connect itself.
    pub async fn warm_up(&self, kind: WarmUp) {
        let started = std::time::Instant::now();
        let key = AttributeValue::S(WARM_UP_PK.to_owned());
        fn failure<E: std::error::Error + 'static, R: std::fmt::Debug>(
            err: SdkError<E, R>,
        ) -> (bool, String) {
            let answered = matches!(err, SdkError::ServiceError(_));
            (answered, DisplayErrorContext(err).to_string())
        }
        let outcome = match kind {
            WarmUp::Read => self
                .client
                .get_item()
                .table_name(&self.clients_table)
                .key(PK, key)
                .send()
                .await
                .map(drop)
                .map_err(failure),
            WarmUp::Write => self
                .client
                .put_item()
                .table_name(&self.clients_table)
                .item(PK, key)
                .condition_expression("attribute_exists(pk)")
                .send()
                .await
                .map(drop)
                .map_err(failure),
        };
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match outcome {
            Ok(()) | Err((true, _)) => tracing::info!(elapsed_ms, ?kind, "connection warmed"),
            Err((false, error)) => tracing::warn!(elapsed_ms, ?kind, error, "warm-up call failed"),
        }
    }
}

/// What a cancelled transaction means, by its cancellation reasons (one code per item,
/// `None` for the items that were fine); `None` when no reason is one this code knows.
/// Nothing of a cancelled transaction is applied.
fn cancellation(
    codes: &[&str],
    entity: Entity,
    id: &str,
    failed_condition: FailedCondition,
    context: impl FnOnce() -> anyhow::Error,
) -> Option<StoreError> {
    let id = id.to_owned();
    if codes.contains(&"ConditionalCheckFailed") {
        return Some(match failed_condition {
            FailedCondition::Taken => StoreError::ConditionFailed { entity, id },
            FailedCondition::Changed => StoreError::ChangedConcurrently { entity, id },
        });
    }
    if codes
        .iter()
        .any(|code| matches!(*code, "ThrottlingError" | "ProvisionedThroughputExceeded"))
    {
        return Some(StoreError::Throttled(context()));
    }
    if codes.contains(&"TransactionConflict") {
        return Some(StoreError::ChangedConcurrently { entity, id });
    }
    None
}

/// What a failed condition in a transaction means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FailedCondition {
    /// An item that had to be new exists (an id or digest is taken).
    Taken,
    /// The item changed since it was read (its version moved on, or it vanished).
    Changed,
}

/// Partition key of the warm-up calls: not an account or key item, and never written.
const WARM_UP_PK: &str = "WARMUP#connection";

/// Which call warms the connection: each function uses a call its IAM role already allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarmUp {
    /// An eventually consistent `GetItem` of a key that never exists (half a read unit).
    Read,
    /// A `PutItem` whose condition never holds, so nothing is written (one write unit).
    Write,
}

impl FindKey for DynamoStore {
    async fn find_key(&self, digest: &KeyDigest) -> Result<Option<KeyRecord>, StoreError> {
        // Strongly consistent: a key must work on the very request after it is issued, and
        // must stop working on the very request after it is revoked.
        self.get_consistent(&self.clients_table, items::key::pk(digest))
            .await?
            .map(|item| items::key::record_from_item(&item))
            .transpose()
    }
}

pub(super) fn put_new(table: &str, item: Item) -> TransactWriteItem {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(NEW_ITEM_ONLY)
        .build()
        .expect("table and item are set");
    TransactWriteItem::builder().put(put).build()
}

impl RecordKeyUse for DynamoStore {
    async fn record_key_use(
        &self,
        digest: &KeyDigest,
        at: Timestamp,
        stale_before: Timestamp,
    ) -> Result<(), StoreError> {
        let update = items::key::use_update(&self.clients_table, digest, at, stale_before);
        let result = self
            .client
            .update_item()
            .table_name(update.table_name())
            .set_key(Some(update.key().clone()))
            .update_expression(update.update_expression())
            .set_condition_expression(update.condition_expression().map(str::to_owned))
            .set_expression_attribute_names(update.expression_attribute_names().cloned())
            .set_expression_attribute_values(update.expression_attribute_values().cloned())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // A use in this interval is recorded already, or the item is gone: nothing to do.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(classify(err, Call::Write)),
        }
    }
}

impl PublishDemand for DynamoStore {
    async fn publish_demand(
        &self,
        account: &AccountId,
        report: &Report,
    ) -> Result<Vec<Claim>, StoreError> {
        let update = items::rate::publish_update(&self.clients_table, account, report);
        let output = self
            .client
            .update_item()
            .table_name(update.table_name())
            .set_key(Some(update.key().clone()))
            .update_expression(update.update_expression())
            .set_expression_attribute_names(update.expression_attribute_names().cloned())
            .set_expression_attribute_values(update.expression_attribute_values().cloned())
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|err| classify(err, Call::Write))?;
        Ok(items::rate::claims(&output.attributes.unwrap_or_default()))
    }
}

impl CreateAccount for DynamoStore {
    async fn create_account(
        &self,
        account: &Account,
        key: &IssuedKey,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let table = &self.clients_table;
        // The SDK gives the transaction a client token, so its own retry of a transaction
        // whose response was lost succeeds without applying it twice.
        let items = vec![
            put_new(table, items::account::new_item(account, key)),
            put_new(
                table,
                items::key::new_item(
                    &account.id,
                    AccountSettings {
                        status: account.status,
                        rate_limit: None,
                    },
                    key,
                ),
            ),
            put_new(table, items::key::new_ref_item(&account.id, &key.key_id)),
            put_new(&self.audit_table, items::audit::new_item(event)),
        ];
        self.transact(
            items,
            Entity::Account,
            account.id.as_str(),
            FailedCondition::Taken,
        )
        .await
    }
}

impl InsertPayment for DynamoStore {
    async fn insert_payment(
        &self,
        payment: &Payment,
        request_fingerprint: &RequestFingerprint,
    ) -> Result<InsertOutcome, StoreError> {
        // One write, never an overwrite. If the item exists, the failed condition hands it
        // back, so a replay costs no extra round trip.
        let attempts = WriteAttempts::default();
        let result = self
            .client
            .put_item()
            .table_name(&self.payments_table)
            .set_item(Some(items::payment::new_item(payment, request_fingerprint)))
            .condition_expression(NEW_ITEM_ONLY)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .customize()
            .interceptor(attempts.clone())
            .send()
            .await;
        match result {
            Ok(_) => Ok(InsertOutcome::Created),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    let existing = failed.item().ok_or_else(|| {
                        StoreError::Unexpected(anyhow::anyhow!(
                            "condition check on payment {} returned no item",
                            payment.id
                        ))
                    })?;
                    items::payment::stored_from_item(existing).map(InsertOutcome::Exists)
                }
                _ => Err(classify(err, attempts.call())),
            },
        }
    }
}

/// Whether a failed call could have changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Call {
    Read,
    /// A write that may have been applied.
    Write,
    /// A write that every attempt shows was not applied: none connected, or DynamoDB
    /// refused each with a 4xx before acting on it.
    WriteNotApplied,
}

/// What the attempts of one write call showed, across the SDK's own retries: whether any of
/// them may have reached DynamoDB and been applied. The final error alone cannot tell (a
/// refused connection on the last attempt says nothing of a first attempt that timed out
/// after sending), so each attempt is looked at as it ends.
#[derive(Debug, Clone, Default)]
pub(super) struct WriteAttempts(Arc<AtomicBool>);

impl WriteAttempts {
    /// How to read the call's failure.
    pub(super) fn call(&self) -> Call {
        if self.0.load(Ordering::Acquire) {
            Call::Write
        } else {
            Call::WriteNotApplied
        }
    }
}

impl Intercept for WriteAttempts {
    fn name(&self) -> &'static str {
        "WriteAttempts"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let not_applied = match context.response() {
            // DynamoDB answers a request it did not act on with a 4xx (validation, throttling,
            // a failed condition); a 5xx may follow a write it applied.
            Some(response) => response.status().is_client_error(),
            None => context
                .output_or_error()
                .and_then(Result::err)
                .and_then(|err| err.as_connector_error())
                .is_some_and(never_connected),
        };
        if !not_applied {
            self.0.store(true, Ordering::Release);
        }
        Ok(())
    }
}

/// Whether a connector error is a connection that was never made (refused, unreachable, DNS),
/// so nothing was sent on it.
fn never_connected(err: &ConnectorError) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        if cause
            .downcast_ref::<hyper_util::client::legacy::Error>()
            .is_some_and(hyper_util::client::legacy::Error::is_connect)
        {
            return true;
        }
        source = cause.source();
    }
    false
}

/// Error codes with which DynamoDB refuses a request for capacity, before acting on it.
const THROTTLING_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
];

/// Server errors: for a write, DynamoDB documents that the operation may have succeeded.
const SERVER_ERROR_CODES: &[&str] = &["InternalServerError", "ServiceUnavailable"];

/// Sorts an SDK failure by what it means for the data. The full error, with its context
/// chain, is kept as the source for the logs.
pub(super) fn classify<E>(err: SdkError<E, HttpResponse>, call: Call) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    enum Meaning {
        // The request may have reached DynamoDB and its answer was lost, or DynamoDB failed
        // while acting on it.
        Lost,
        Throttled,
        Unexpected,
    }
    let meaning = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Meaning::Lost
        }
        SdkError::ServiceError(service) => match service.err().code() {
            Some(code) if THROTTLING_CODES.contains(&code) => Meaning::Throttled,
            Some(code) if SERVER_ERROR_CODES.contains(&code) => Meaning::Lost,
            // A server error under any other code: for a write, it may still have applied.
            _ if service.raw().status().is_server_error() => Meaning::Lost,
            _ => Meaning::Unexpected,
        },
        _ => Meaning::Unexpected,
    };
    let source = anyhow::anyhow!("{}", DisplayErrorContext(&err));
    match (meaning, call) {
        (Meaning::Lost, Call::Read | Call::WriteNotApplied) => StoreError::Unavailable(source),
        (Meaning::Lost, Call::Write) => StoreError::OutcomeUnknown(source),
        // Throttling refuses the request, but an earlier attempt of the same write may have
        // been applied before its answer was lost.
        (Meaning::Throttled, Call::Write) => StoreError::OutcomeUnknown(source),
        (Meaning::Throttled, _) => StoreError::Throttled(source),
        (Meaning::Unexpected, _) => StoreError::Unexpected(source),
    }
}

fn string_attribute(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .expect("name and type are set")
}

fn key_element(name: &str, key_type: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .expect("name and key type are set")
}

/// Creates the tables if they do not exist (local development and tests; in AWS the SAM
/// template owns them). Same key schemas and index as `template.yaml`.
pub async fn create_tables(client: &Client, tables: &Tables) -> Result<(), StoreError> {
    use items::payment::{ACCOUNT_ATTRIBUTE, BY_ACCOUNT_INDEX, LIST_KEY};
    for table in [&tables.clients, &tables.payments, &tables.audit] {
        let mut create = client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(string_attribute(PK))
            .key_schema(key_element(PK, KeyType::Hash));
        if table == &tables.audit {
            create = create
                .attribute_definitions(string_attribute(SK))
                .key_schema(key_element(SK, KeyType::Range));
        }
        if table == &tables.payments {
            create = create
                .attribute_definitions(string_attribute(ACCOUNT_ATTRIBUTE))
                .attribute_definitions(string_attribute(LIST_KEY))
                .global_secondary_indexes(
                    GlobalSecondaryIndex::builder()
                        .index_name(BY_ACCOUNT_INDEX)
                        .key_schema(key_element(ACCOUNT_ATTRIBUTE, KeyType::Hash))
                        .key_schema(key_element(LIST_KEY, KeyType::Range))
                        .projection(
                            Projection::builder()
                                .projection_type(ProjectionType::All)
                                .build(),
                        )
                        .build()
                        .expect("name, keys and projection are set"),
                );
        }
        let result = create.send().await;
        match result {
            Ok(_) => tracing::info!(table, "table created"),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                tracing::debug!(table, "table already exists");
            }
            // Whatever the failure, running this again is safe: a table that exists is
            // left as it is. So it is read as a read would be, never as an unknown outcome.
            Err(err) => return Err(classify(err, Call::Read)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cancelled(codes: &[&str], condition: FailedCondition) -> Option<StoreError> {
        cancellation(codes, Entity::Account, "acct_x", condition, || {
            anyhow::anyhow!("x")
        })
    }

    #[test]
    fn cancelled_transactions_are_sorted_by_their_reasons() {
        use FailedCondition::{Changed, Taken};
        assert!(matches!(
            cancelled(&["None", "ConditionalCheckFailed"], Taken),
            Some(StoreError::ConditionFailed { .. })
        ));
        assert!(matches!(
            cancelled(&["ConditionalCheckFailed", "None"], Changed),
            Some(StoreError::ChangedConcurrently { .. })
        ));
        for throttled in [
            ["ThrottlingError", "None"],
            ["None", "ProvisionedThroughputExceeded"],
        ] {
            let err = cancelled(&throttled, Taken).unwrap();
            assert!(matches!(err, StoreError::Throttled(_)), "{err:?}");
            assert!(err.is_retryable());
        }
        let conflict = cancelled(&["TransactionConflict", "None"], Taken).unwrap();
        assert!(matches!(conflict, StoreError::ChangedConcurrently { .. }));
        assert!(conflict.is_retryable());
        assert!(cancelled(&["ValidationError"], Taken).is_none());
    }
}
