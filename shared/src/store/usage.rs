//! What the DynamoDB client spent: each attempt it sent, by operation (retries included),
//! and the capacity units DynamoDB reported consuming. The [`Usage`] interceptor asks every
//! call for its consumed capacity (`ReturnConsumedCapacity=TOTAL`) and records it here:
//! into the [`CallLog`] of the request running (see [`scoped`]), or, outside any request (a
//! function's warm-up call during init, a task spawned by a request), into the client's own
//! [`OutsideCalls`], which the next request's metrics drain. One log per client, not per
//! process: in Lambda that is the same thing, and in tests each client keeps its own.
//!
//! DynamoDB charges a write whose condition fails, but reports no capacity with the error;
//! such a call counts as an attempt and adds no units here.

use std::cell::RefCell;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The calls recorded in one scope.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CallLog {
    /// One entry per attempt sent, in order: the operation's name (`GetItem`, `PutItem`, ...).
    pub attempts: Vec<&'static str>,
    /// Read capacity units DynamoDB reported.
    pub read_units: f64,
    /// Write capacity units DynamoDB reported.
    pub write_units: f64,
    /// Milliseconds of each store call, retries included, as its caller timed it
    /// ([`record_call`]).
    pub call_ms: Vec<f64>,
}

impl CallLog {
    pub fn is_empty(&self) -> bool {
        self.attempts.is_empty()
            && self.read_units == 0.0
            && self.write_units == 0.0
            && self.call_ms.is_empty()
    }
}

/// What one client spent outside any request since it was last taken. Cheap to clone:
/// clones share the log.
#[derive(Debug, Default, Clone)]
pub struct OutsideCalls(Arc<Mutex<CallLog>>);

impl OutsideCalls {
    /// The calls recorded since the last time this was called.
    pub fn take(&self) -> CallLog {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CallLog> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

tokio::task_local! {
    static CURRENT: RefCell<CallLog>;
}

/// Runs `work` with a fresh [`CallLog`] that every call it makes records into, and hands
/// the log back with the output.
pub async fn scoped<F: Future>(work: F) -> (F::Output, CallLog) {
    CURRENT
        .scope(RefCell::new(CallLog::default()), async {
            let output = work.await;
            (output, CURRENT.with(|log| log.take()))
        })
        .await
}

/// Records how long one store call of the running request took, all its attempts together
/// (outside a request there is nobody to report it to).
pub fn record_call(elapsed: Duration) {
    let _ = CURRENT.try_with(|log| log.borrow_mut().call_ms.push(elapsed.as_secs_f64() * 1e3));
}

/// Records into the running request's log, else into `outside`.
pub(crate) fn record(outside: &OutsideCalls, update: impl FnOnce(&mut CallLog)) {
    let mut update = Some(update);
    let _ = CURRENT.try_with(|log| {
        if let Some(update) = update.take() {
            update(&mut log.borrow_mut());
        }
    });
    if let Some(update) = update {
        update(&mut outside.lock());
    }
}

#[cfg(feature = "aws")]
pub use interceptor::Usage;

#[cfg(feature = "aws")]
mod interceptor {
    use aws_sdk_dynamodb::operation::{
        batch_get_item::{BatchGetItemInput, BatchGetItemOutput},
        batch_write_item::{BatchWriteItemInput, BatchWriteItemOutput},
        delete_item::{DeleteItemInput, DeleteItemOutput},
        get_item::{GetItemInput, GetItemOutput},
        put_item::{PutItemInput, PutItemOutput},
        query::{QueryInput, QueryOutput},
        scan::{ScanInput, ScanOutput},
        transact_get_items::{TransactGetItemsInput, TransactGetItemsOutput},
        transact_write_items::{TransactWriteItemsInput, TransactWriteItemsOutput},
        update_item::{UpdateItemInput, UpdateItemOutput},
    };
    use aws_sdk_dynamodb::types::{ConsumedCapacity, ReturnConsumedCapacity};
    use aws_smithy_runtime_api::box_error::BoxError;
    use aws_smithy_runtime_api::client::interceptors::context::{
        BeforeSerializationInterceptorContextMut, BeforeTransmitInterceptorContextRef,
        FinalizerInterceptorContextRef,
    };
    use aws_smithy_runtime_api::client::interceptors::Intercept;
    use aws_smithy_runtime_api::client::orchestrator::Metadata;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
    use aws_smithy_types::config_bag::ConfigBag;

    use super::{record, OutsideCalls};

    /// Asks each call for its consumed capacity and records attempts and capacity (module
    /// docs), outside requests into its client's `outside`. Attached to the client by
    /// `shared::config::dynamodb_client`.
    #[derive(Debug, Clone, Default)]
    pub struct Usage {
        pub outside: OutsideCalls,
    }

    /// The operations this service and its tools call, by name; anything else is `Other`.
    const OPERATIONS: &[&str] = &[
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "TransactWriteItems",
        "TransactGetItems",
        "BatchGetItem",
        "BatchWriteItem",
    ];

    fn operation(cfg: &ConfigBag) -> &'static str {
        let name = cfg.load::<Metadata>().map(Metadata::name).unwrap_or("");
        OPERATIONS
            .iter()
            .find(|known| **known == name)
            .copied()
            .unwrap_or("Other")
    }

    fn is_read(operation: &str) -> bool {
        matches!(
            operation,
            "GetItem" | "Query" | "Scan" | "TransactGetItems" | "BatchGetItem"
        )
    }

    fn units<'a>(consumed: impl IntoIterator<Item = &'a ConsumedCapacity>) -> f64 {
        consumed
            .into_iter()
            .filter_map(ConsumedCapacity::capacity_units)
            .sum()
    }

    impl Intercept for Usage {
        fn name(&self) -> &'static str {
            "Usage"
        }

        fn modify_before_serialization(
            &self,
            context: &mut BeforeSerializationInterceptorContextMut<'_>,
            _components: &RuntimeComponents,
            _cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            let input = context.input_mut();
            macro_rules! ask_total {
                ($($input:ty),*) => {
                    $(if let Some(input) = input.downcast_mut::<$input>() {
                        input
                            .return_consumed_capacity
                            .get_or_insert(ReturnConsumedCapacity::Total);
                        return Ok(());
                    })*
                };
            }
            ask_total!(
                GetItemInput,
                PutItemInput,
                UpdateItemInput,
                DeleteItemInput,
                QueryInput,
                ScanInput,
                TransactWriteItemsInput,
                TransactGetItemsInput,
                BatchGetItemInput,
                BatchWriteItemInput
            );
            Ok(())
        }

        fn read_before_transmit(
            &self,
            _context: &BeforeTransmitInterceptorContextRef<'_>,
            _components: &RuntimeComponents,
            cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            let operation = operation(cfg);
            record(&self.outside, |log| log.attempts.push(operation));
            Ok(())
        }

        fn read_after_attempt(
            &self,
            context: &FinalizerInterceptorContextRef<'_>,
            _components: &RuntimeComponents,
            cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            let Some(Ok(output)) = context.output_or_error() else {
                return Ok(());
            };
            // One capacity on single-item calls and queries, one per table on the others.
            macro_rules! reported {
                ($($output:ty),*) => {
                    None$(.or_else(|| output.downcast_ref::<$output>().map(|o| units(o.consumed_capacity()))))*
                };
            }
            let units = reported!(
                GetItemOutput,
                PutItemOutput,
                UpdateItemOutput,
                DeleteItemOutput,
                QueryOutput,
                ScanOutput,
                TransactWriteItemsOutput,
                TransactGetItemsOutput,
                BatchGetItemOutput,
                BatchWriteItemOutput
            );
            if let Some(units) = units.filter(|units| *units > 0.0) {
                let read = is_read(operation(cfg));
                record(&self.outside, |log| {
                    if read {
                        log.read_units += units;
                    } else {
                        log.write_units += units;
                    }
                });
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_into_the_scope_running_else_its_client_s_outside_log() {
        let outside = OutsideCalls::default();
        let other = OutsideCalls::default();
        record(&outside, |log| log.attempts.push("GetItem"));
        let ((), inside) = scoped(async {
            record(&outside, |log| {
                log.attempts.push("PutItem");
                log.write_units += 2.0;
            });
            record_call(Duration::from_millis(2));
        })
        .await;
        assert_eq!(inside.attempts, ["PutItem"]);
        assert_eq!(inside.write_units, 2.0);
        assert_eq!(inside.call_ms, [2.0]);
        // A call timed outside any request has no request to report to.
        record_call(Duration::from_millis(3));
        let taken = outside.take();
        assert_eq!(taken.attempts, ["GetItem"]);
        assert!(taken.call_ms.is_empty());
        assert!(outside.take().is_empty());
        assert!(other.take().is_empty(), "each client keeps its own log");
    }
}
