//! The storage error: one closed set, the same for every backend.

/// Why a storage call failed. The variants match the WIT `error` variant one
/// to one; each backend converts its own errors into these.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("not found")]
    NotFound,
    #[error("version conflict: expected {expected}, record is at {current}")]
    Conflict { expected: u64, current: u64 },
    /// The backend cannot serve now. The text is for the operator's logs and
    /// is never shown to a guest or a client.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("{what} is {actual}, over the limit of {max}")]
    LimitExceeded {
        what: &'static str,
        max: u64,
        actual: u64,
    },
}

impl Error {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
