//! The one error type of the crate, with stable codes for apps and logs.

use flexwork_sync::{ContentHash, EvidenceError, SyncError};

use crate::transport::TransportError;

/// Everything that can go wrong on the device.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("device store failed: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("device store file operation failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("device store is corrupt: {0}")]
    Corrupt(String),
    #[error("evidence document failed: {0}")]
    Evidence(#[from] EvidenceError),
    #[error("sync state failed: {0}")]
    Sync(#[from] SyncError),
    #[error("order {0} is not known on this device; sync to fetch tasks")]
    UnknownOrder(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("not a usable gpx file: {0}")]
    Gpx(String),
    #[error("media {0} is missing from the device store")]
    MissingBlob(ContentHash),
    #[error("this device has no session; log in first")]
    NotLoggedIn,
    #[error(transparent)]
    Transport(#[from] TransportError),
}

impl ClientError {
    /// A stable, machine-readable, snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Database(_) => "storage",
            Self::Io(_) => "storage_io",
            Self::Corrupt(_) => "store_corrupt",
            Self::Evidence(_) => "evidence_document",
            Self::Sync(_) => "sync_state",
            Self::UnknownOrder(_) => "unknown_order",
            Self::InvalidInput(_) => "invalid_input",
            Self::Gpx(_) => "invalid_gpx",
            Self::MissingBlob(_) => "blob_missing",
            Self::NotLoggedIn => "not_logged_in",
            Self::Transport(e) => e.code(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }
}
