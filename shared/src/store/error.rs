//! What can go wrong in storage, in storage terms. No HTTP status here: each caller (the
//! HTTP edge, the operator CLI) decides what its own user is told.

use std::fmt;

string_enum!(
    /// The kind of stored thing an error is about, as messages name it.
    Entity {
        Account = "account",
        Key = "key",
        KeyReference = "key reference",
        Payment = "payment",
        AuditEvent = "audit event",
    }
);

#[derive(thiserror::Error)]
pub enum StoreError {
    /// DynamoDB could not be reached, or answered a read with a server error: nothing was
    /// written, and trying again is safe.
    #[error("storage unavailable; nothing was written")]
    Unavailable(#[source] anyhow::Error),
    /// A write was sent but its result never came back (a timeout, a dropped connection, a
    /// server error): it may have been applied. Only an idempotent retry is safe.
    #[error("storage outcome unknown; the write may have happened")]
    OutcomeUnknown(#[source] anyhow::Error),
    /// DynamoDB refused the request for capacity; nothing was written, and trying again
    /// later is safe.
    #[error("storage throttled; nothing was written")]
    Throttled(#[source] anyhow::Error),
    /// A write's condition did not hold (an item that had to be new exists); nothing was
    /// written.
    #[error("condition failed on {entity} {id}; nothing was written")]
    ConditionFailed { entity: Entity, id: String },
    #[error("{entity} {id} not found")]
    NotFound { entity: Entity, id: String },
    /// Another change to the same item won the race; nothing was written.
    #[error("{entity} {id} changed concurrently; nothing was written")]
    ChangedConcurrently { entity: Entity, id: String },
    /// A stored item does not have the shape this code writes. `attribute` names the first
    /// attribute found wrong.
    #[error("stored {entity} item {id} is malformed ({attribute})")]
    Corrupt {
        entity: Entity,
        id: String,
        attribute: &'static str,
    },
    /// The change would need more items in one transaction than DynamoDB allows; nothing
    /// was written.
    #[error("the change needs {needed} items in one transaction; at most {max} fit")]
    TooManyItems { needed: usize, max: usize },
    #[error("unexpected storage error")]
    Unexpected(#[source] anyhow::Error),
}

impl StoreError {
    /// Whether nothing was written and the same call may succeed if simply made again.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_)
                | StoreError::Throttled(_)
                | StoreError::ChangedConcurrently { .. }
        )
    }

    pub fn corrupt(entity: Entity, id: impl Into<String>, attribute: &'static str) -> Self {
        StoreError::Corrupt {
            entity,
            id: id.into(),
            attribute,
        }
    }
}

/// An error and its whole `source()` chain, one cause per line: what `Debug` prints for the
/// crate's error types, so that a log line carries the root cause.
pub(crate) fn write_chain(err: &dyn std::error::Error, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "{err}")?;
    let mut source = err.source();
    while let Some(cause) = source {
        write!(f, "\n  caused by: {cause}")?;
        source = cause.source();
    }
    Ok(())
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_chain(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_carries_the_cause_and_display_does_not() {
        let err = StoreError::Unavailable(anyhow::anyhow!("connection refused on 127.0.0.1"));
        assert!(!err.to_string().contains("127.0.0.1"));
        assert!(format!("{err:?}").contains("connection refused on 127.0.0.1"));
        assert!(err.is_retryable());
        assert!(!StoreError::OutcomeUnknown(anyhow::anyhow!("timeout")).is_retryable());
    }
}
