//! The one error of the interface: every client-core error, every refusal of the server and
//! every panic cross the boundary as a [`MobileError`] with a stable code and a sentence.

use std::panic::{AssertUnwindSafe, catch_unwind};

use flexwork_client_core::{ClientError, TransportError};

/// Why a call did not do what was asked. Each variant carries `code`, stable and
/// machine-readable (snake_case, the same across releases: apps branch on it), and `reason`,
/// a sentence a person understands. Nothing personal is in either.
///
/// In Kotlin and Swift this is a thrown exception/error with these fields; in Python an
/// exception class per variant (`MobileError.Offline`, …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum MobileError {
    /// The app passed something unusable: `invalid_input`, `invalid_gpx`, `unknown_order`,
    /// `unknown_application`, `no_terms`, `unsupported_media_type`, `file_unreadable`.
    #[error("{reason}")]
    Invalid { code: String, reason: String },
    /// The device has no sign-in: `not_logged_in`. Log in first.
    #[error("{reason}")]
    NotLoggedIn { code: String, reason: String },
    /// No answer from the server (no network, refused, timeout): `network`. Nothing recorded
    /// is lost; try again later.
    #[error("{reason}")]
    Offline { code: String, reason: String },
    /// The server answered with a refusal: `status` is the HTTP status and `code` the
    /// server's own stable code (`invalid_credentials`, `device_revoked`, …).
    #[error("{reason}")]
    Refused {
        status: u16,
        code: String,
        reason: String,
    },
    /// The server's answer could not be read: `bad_response`.
    #[error("{reason}")]
    BadResponse { code: String, reason: String },
    /// The device store failed: `storage`, `storage_io`, `store_corrupt`,
    /// `evidence_document`, `sync_state`, `blob_missing`.
    #[error("{reason}")]
    Storage { code: String, reason: String },
    /// A bug in the core (a panic, caught at the boundary): `internal`. What was recorded
    /// before is kept; the store is reopened on the next call.
    #[error("{reason}")]
    Internal { code: String, reason: String },
}

impl MobileError {
    /// The stable, machine-readable code.
    pub fn code(&self) -> &str {
        match self {
            Self::Invalid { code, .. }
            | Self::NotLoggedIn { code, .. }
            | Self::Offline { code, .. }
            | Self::Refused { code, .. }
            | Self::BadResponse { code, .. }
            | Self::Storage { code, .. }
            | Self::Internal { code, .. } => code,
        }
    }

    /// The sentence for a person.
    pub fn reason(&self) -> &str {
        match self {
            Self::Invalid { reason, .. }
            | Self::NotLoggedIn { reason, .. }
            | Self::Offline { reason, .. }
            | Self::Refused { reason, .. }
            | Self::BadResponse { reason, .. }
            | Self::Storage { reason, .. }
            | Self::Internal { reason, .. } => reason,
        }
    }

    pub(crate) fn invalid(code: &str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            code: code.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn internal(reason: impl Into<String>) -> Self {
        Self::Internal {
            code: "internal".to_owned(),
            reason: reason.into(),
        }
    }
}

impl From<ClientError> for MobileError {
    fn from(error: ClientError) -> Self {
        let code = error.code().to_owned();
        let reason = error.to_string();
        match error {
            ClientError::Transport(transport) => transport.into(),
            ClientError::UnknownOrder(_) | ClientError::InvalidInput(_) | ClientError::Gpx(_) => {
                Self::Invalid { code, reason }
            }
            ClientError::NotLoggedIn => Self::NotLoggedIn { code, reason },
            ClientError::Database(_)
            | ClientError::Io(_)
            | ClientError::Corrupt(_)
            | ClientError::Evidence(_)
            | ClientError::Sync(_)
            | ClientError::MissingBlob(_) => Self::Storage { code, reason },
        }
    }
}

impl From<TransportError> for MobileError {
    fn from(error: TransportError) -> Self {
        let code = error.code().to_owned();
        match error {
            TransportError::Network(detail) => Self::Offline {
                code,
                reason: format!(
                    "the server cannot be reached ({detail}); nothing recorded is lost, try \
                     again when there is a connection"
                ),
            },
            TransportError::Server {
                status,
                code,
                message,
            } => Self::Refused {
                status,
                code,
                reason: message,
            },
            TransportError::BadResponse(detail) => Self::BadResponse {
                code,
                reason: format!("the server's answer could not be read: {detail}"),
            },
        }
    }
}

/// Runs `f`, turning a panic into [`MobileError::Internal`].
pub(crate) fn guarded<T>(f: impl FnOnce() -> Result<T, MobileError>) -> Result<T, MobileError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".to_owned());
            tracing::error!(panic = %what, "panic caught at the phone interface");
            Err(MobileError::internal(format!(
                "the phone core stopped on a bug ({what}); what was recorded before is kept; \
                 please report this"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_internal_error_with_its_message() {
        let err = guarded::<()>(|| panic!("boom")).unwrap_err();
        assert_eq!(err.code(), "internal");
        assert!(err.reason().contains("boom"), "{err}");
    }

    #[test]
    fn a_server_refusal_keeps_the_servers_code_and_status() {
        let err: MobileError = ClientError::Transport(TransportError::Server {
            status: 401,
            code: "invalid_credentials".into(),
            message: "wrong login or password".into(),
        })
        .into();
        assert_eq!(
            err,
            MobileError::Refused {
                status: 401,
                code: "invalid_credentials".into(),
                reason: "wrong login or password".into()
            }
        );
        let offline: MobileError = TransportError::Network("connection refused".into()).into();
        assert_eq!(offline.code(), "network");
        assert!(offline.reason().contains("nothing recorded is lost"));
    }
}
