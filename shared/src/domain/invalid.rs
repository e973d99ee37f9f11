/// A value that breaks a domain rule: which field, and a message written for the developer
/// who sent it (never internals). The HTTP edge turns it into a 400 naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidValue {
    pub field: &'static str,
    pub message: String,
}

impl InvalidValue {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        InvalidValue {
            field,
            message: message.into(),
        }
    }
}
