//! The one error type every store returns.

use flexwork_sync::ContentHash;

/// Why a media store call failed.
///
/// Callers can tell apart "the object is absent" ([`StorageError::NotFound`]), "the object is
/// there but damaged" ([`StorageError::Corrupt`]), "the caller handed over the wrong bytes"
/// ([`StorageError::HashMismatch`]) and "the store could not be reached or refused"
/// ([`StorageError::Unavailable`], [`StorageError::Io`]).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// No object with this hash is stored.
    #[error("media {hash} is not in the store")]
    NotFound {
        /// The hash that was asked for.
        hash: ContentHash,
    },

    /// The stored copy is damaged (it does not decrypt, decrypts to other content, or its
    /// data key is wrapped by a master key the key manager does not hold) and was not
    /// returned.
    #[error("stored media {hash} is corrupt: {detail}")]
    Corrupt {
        /// The hash of the blob that was asked for.
        hash: ContentHash,
        /// What is wrong with the copy.
        detail: String,
    },

    /// A put was refused because the bytes do not hash to the hash they were claimed to have.
    #[error("media claimed to hash to {claimed} but its bytes hash to {actual}")]
    HashMismatch {
        /// The hash the caller claimed.
        claimed: ContentHash,
        /// The hash of the bytes the caller gave.
        actual: ContentHash,
    },

    /// The store's server could not be reached, or it answered with an error.
    #[error("media store {store} is unavailable")]
    Unavailable {
        /// The name of the store that failed.
        store: String,
        /// What the client library reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// A local file operation failed.
    #[error("media store file operation failed")]
    Io(#[from] std::io::Error),
}

impl StorageError {
    /// Wraps a client or server failure of the store called `store`.
    pub fn unavailable(
        store: &str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Self::Unavailable {
            store: store.to_owned(),
            source: source.into(),
        }
    }
}
