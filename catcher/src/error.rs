//! The catcher's error type and its single mapping to `tonic::Status`.

use tonic::{Code, Status};

/// Everything that can go wrong inside the catcher.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input; `field` names the offending field the way the caller spelled it.
    #[error("{field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    /// A named thing does not exist.
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    /// What the caller wants to create exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is well-formed but conflicts with the current state.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The caller may not do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// The caller has no valid credential (none, unknown, expired or revoked).
    #[error("{0}")]
    Unauthenticated(String),
    /// The catcher is shutting down or a dependency is away; retry later.
    #[error("{0}")]
    Unavailable(String),
    /// The caller holds its share of a bounded resource (streams, live-view memory).
    #[error("{0}")]
    ResourceExhausted(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// Stored data could not be decoded; points at corruption or a bug.
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

impl Error {
    /// Shorthand for an `InvalidArgument` naming `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument { field: field.into(), reason: reason.into() }
    }

    /// Shorthand for a `NotFound`.
    pub fn not_found(what: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound { what, id: id.into() }
    }

    /// The gRPC code this error maps to.
    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument { .. } => Code::InvalidArgument,
            Self::NotFound { .. } => Code::NotFound,
            Self::AlreadyExists(_) => Code::AlreadyExists,
            Self::FailedPrecondition(_) => Code::FailedPrecondition,
            Self::PermissionDenied(_) => Code::PermissionDenied,
            Self::Unauthenticated(_) => Code::Unauthenticated,
            Self::Unavailable(_) => Code::Unavailable,
            Self::ResourceExhausted(_) => Code::ResourceExhausted,
            Self::Database(_) | Self::Corrupt(_) => Code::Internal,
        }
    }

    /// Whether the error is the caller's (and so says nothing about the catcher's health).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self.code(),
            Code::InvalidArgument
                | Code::NotFound
                | Code::AlreadyExists
                | Code::FailedPrecondition
                | Code::PermissionDenied
                | Code::Unauthenticated
                | Code::ResourceExhausted
        )
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        if !err.is_client_error() {
            tracing::error!(error = %err, "request failed");
        }
        // Internal details (SQL text) stay in the log, not in the response.
        let message = match &err {
            Error::Database(_) => "internal database error; see the catcher log".to_owned(),
            other => other.to_string(),
        };
        Status::new(err.code(), message)
    }
}

/// Result with the catcher's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
