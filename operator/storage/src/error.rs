//! Storage errors, classified as retryable (the caller backs off and tries again) or not.

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage configuration: {0}")]
    Config(String),
    #[error("connecting to {target}: {message}")]
    Connect { target: String, message: String },
    #[error("database schema: {0}")]
    Schema(String),
    #[error("{operation}: {source}")]
    Query { operation: &'static str, source: diesel::result::Error },
    #[error("{operation}: getting a connection: {message}")]
    Pool { operation: &'static str, message: String },
    /// A search request the store cannot answer; the apiserver turns it into 400.
    #[error("invalid query: {param}: {message}")]
    InvalidQuery { param: &'static str, message: String },
    #[error("object {0}: {1}")]
    BadObject(String, String),
    /// A watch resumed from before what the change log still holds (the apiserver answers 410).
    #[error("too old resource version: {requested} (the change log starts after {horizon})")]
    Expired { requested: i64, horizon: i64 },
}

/// `e` followed by its sources: drivers put the useful part ("Connection refused", "invalid peer
/// certificate ...") there. A source whose text is already in the message is left out (some
/// errors print their source themselves).
pub(crate) fn with_sources(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = s.source();
    }
    message
}

impl From<diesel::result::Error> for StorageError {
    fn from(source: diesel::result::Error) -> Self {
        StorageError::Query { operation: "transaction", source }
    }
}

impl StorageError {
    /// Whether trying again later may succeed (lost connection, deadlock, busy database).
    pub fn is_retryable(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        match self {
            StorageError::Connect { .. } | StorageError::Pool { .. } => true,
            StorageError::Query { source, .. } => match source {
                Error::DatabaseError(kind, info) => {
                    matches!(kind, DatabaseErrorKind::SerializationFailure | DatabaseErrorKind::ClosedConnection) || {
                        let m = info.message().to_ascii_lowercase();
                        m.contains("deadlock")
                            || m.contains("database is locked")
                            || m.contains("busy")
                            || m.contains("lock wait timeout")
                    }
                }
                Error::BrokenTransactionManager => true,
                _ => false,
            },
            _ => false,
        }
    }

    pub(crate) fn query(operation: &'static str) -> impl FnOnce(diesel::result::Error) -> Self {
        move |source| StorageError::Query { operation, source }
    }
}
