//! Messages on the wire between a device and the server, and their encoding.
//!
//! Sync requests and responses travel as CBOR (`application/cbor`) in the body of
//! `POST /api/v1/sync`. Every request starts with the sender's [`PROTOCOL_VERSION`]; the
//! receiver reads that field alone first, so a peer speaking another version gets
//! [`ProtocolError::UnsupportedVersion`] — a clear answer — rather than a decoding error.
//! Everything else in the HTTP API is JSON, and its error bodies are [`ErrorBody`].

use serde::{Deserialize, Serialize};

use crate::ContentHash;

/// The version of the sync protocol this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// The oldest version this build still understands.
pub const MIN_PROTOCOL_VERSION: u32 = 1;
/// Documents a device may put in one request; more go in the next request.
pub const MAX_DOCS_PER_REQUEST: usize = 200;
/// Media type of sync bodies.
pub const CBOR_MEDIA_TYPE: &str = "application/cbor";

/// One round of sync from a device: an Automerge sync message per document it has news for.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncRequest {
    pub protocol: u32,
    /// Stable id of the device installation; the server keeps one sync state per device and
    /// document.
    pub device_id: String,
    pub docs: Vec<DocMessage>,
    /// Whether the answer should list the worker's orders. A device asks once per sync;
    /// older devices that do not send the field get them every time.
    #[serde(default = "yes")]
    pub want_orders: bool,
}

fn yes() -> bool {
    true
}

/// An Automerge sync message about one order's evidence document.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocMessage {
    pub order_id: String,
    /// The Automerge sync message, as a CBOR byte string.
    #[serde(with = "serde_bytes")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Binary))]
    pub message: Vec<u8>,
}

/// The server's answer to one round.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncResponse {
    pub protocol: u32,
    pub server_time_ms: i64,
    /// Every order of the worker, so tasks reach the phone; empty unless the request asked.
    pub orders: Vec<OrderSummary>,
    /// The server's sync messages, one per document it has news for.
    pub docs: Vec<DocMessage>,
    /// Documents whose message the server refused; the others were applied.
    pub rejected: Vec<DocRejection>,
    /// Media referenced by the worker's documents that the server does not hold yet.
    pub wanted_media: Vec<ContentHash>,
}

/// Why one document's sync message was refused.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocRejection {
    pub order_id: String,
    pub code: String,
    pub message: String,
}

/// An order as the phone sees it: the task and where the order stands.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderSummary {
    pub order_id: String,
    pub task_id: String,
    pub title: String,
    pub description: String,
    pub site: SiteSpec,
    pub window: WindowSpec,
    pub fee_fen: i64,
    pub requirements: RequirementsSpec,
    /// `assigned`, `submitted`, `verified`, `confirmed`, `disputed`, `settled`.
    pub status: String,
    /// `passed`, `needs_review` or `rejected`, once verification has run.
    pub verdict: Option<String>,
}

/// Where the work happens: a WGS-84 point and a radius.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SiteSpec {
    pub lat: f64,
    pub lon: f64,
    pub radius_m: f64,
}

/// When the work happens, ms since the epoch (UTC), inclusive.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowSpec {
    pub from_ms: i64,
    pub to_ms: i64,
}

/// What evidence the task requires.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequirementsSpec {
    pub min_photos: u32,
    pub track: bool,
    pub signature: bool,
}

/// Body of every error response of the HTTP API.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable, machine-readable, snake_case.
    pub code: String,
    /// A sentence a person understands.
    pub message: String,
    /// The JSON field of the request the error is about, when one is (so a form can show the
    /// message next to it). Absent in bodies of servers that predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// `POST /api/v1/sessions`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Serialize, Deserialize)]
pub struct LoginRequest {
    pub login: String,
    pub password: String,
    /// The current code of the account's authenticator app, once two-factor login is set up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp: Option<String>,
    /// One of the account's one-time recovery codes, instead of `totp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_code: Option<String>,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("login", &self.login)
            .field("password", &"<redacted>")
            .field("totp", &self.totp.as_ref().map(|_| "<redacted>"))
            .field(
                "recovery_code",
                &self.recovery_code.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The bearer token for later calls.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Serialize, Deserialize)]
pub struct LoginResponse {
    pub token: String,
    pub account_id: String,
    pub role: String,
    /// True when the token may only be used to set up two-factor login, which this account
    /// must do before anything else.
    #[serde(default)]
    pub second_factor_setup_required: bool,
}

impl std::fmt::Debug for LoginResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginResponse")
            .field("token", &"<redacted>")
            .field("account_id", &self.account_id)
            .field("role", &self.role)
            .field(
                "second_factor_setup_required",
                &self.second_factor_setup_required,
            )
            .finish()
    }
}

/// Where an upload of one blob stands on the server (`GET /api/v1/media/{hash}/status`, and
/// the answer to every chunk `PUT /api/v1/media/{hash}?offset=N&size=TOTAL`).
///
/// A device uploads a blob in chunks; each chunk must start at `received`. After an
/// interruption it asks for the status and continues from `received`, not from zero. When the
/// last byte arrives the server checks the SHA-256 of the whole blob against the hash in the
/// URL, sniffs its type, and only then stores it and answers `complete`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaStatus {
    pub hash: ContentHash,
    pub state: MediaState,
    /// Bytes the server holds for an unfinished upload (the whole size once complete).
    pub received: u64,
}

/// `absent`: nothing received yet; `partial`: an unfinished upload; `complete`: stored.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaState {
    Absent,
    Partial,
    Complete,
}

/// A body that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error(
        "this peer speaks sync protocol {got}; the other side speaks versions {min} to {max}. \
         Update the app"
    )]
    UnsupportedVersion { got: u32, min: u32, max: u32 },
    #[error(
        "the sync body is not a sync request this server understands \
         (CBOR, protocol {PROTOCOL_VERSION})"
    )]
    Malformed(String),
    #[error("sync request carries {count} documents, more than the limit of {limit}")]
    TooManyDocs { count: usize, limit: usize },
}

impl ProtocolError {
    /// The stable code for [`ErrorBody::code`].
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnsupportedVersion { .. } => "unsupported_protocol",
            Self::Malformed(_) => "malformed_sync_message",
            Self::TooManyDocs { .. } => "too_many_documents",
        }
    }
}

#[derive(Deserialize)]
struct VersionOnly {
    protocol: u32,
}

/// Serializes a message as CBOR.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing plain structs into a Vec cannot fail.
    ciborium::into_writer(message, &mut out).expect("cbor encoding into memory");
    out
}

/// Reads a sync request, checking its version before anything else.
pub fn decode_request(bytes: &[u8]) -> Result<SyncRequest, ProtocolError> {
    check_version(bytes)?;
    let request: SyncRequest = decode(bytes)?;
    if request.docs.len() > MAX_DOCS_PER_REQUEST {
        let limit = MAX_DOCS_PER_REQUEST;
        return Err(ProtocolError::TooManyDocs {
            count: request.docs.len(),
            limit,
        });
    }
    Ok(request)
}

/// Reads a sync response, checking its version before anything else.
pub fn decode_response(bytes: &[u8]) -> Result<SyncResponse, ProtocolError> {
    check_version(bytes)?;
    decode(bytes)
}

fn check_version(bytes: &[u8]) -> Result<(), ProtocolError> {
    let probe: VersionOnly = decode(bytes)?;
    if !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&probe.protocol) {
        return Err(ProtocolError::UnsupportedVersion {
            got: probe.protocol,
            min: MIN_PROTOCOL_VERSION,
            max: PROTOCOL_VERSION,
        });
    }
    Ok(())
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ProtocolError> {
    ciborium::from_reader(bytes).map_err(|e| ProtocolError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(protocol: u32) -> SyncRequest {
        SyncRequest {
            protocol,
            device_id: "d1".into(),
            docs: vec![DocMessage {
                order_id: "o1".into(),
                message: vec![0x42, 0, 0, 0, 0],
            }],
            want_orders: false,
        }
    }

    #[test]
    fn request_round_trips() {
        let req = request(PROTOCOL_VERSION);

        assert_eq!(decode_request(&encode(&req)).unwrap(), req);
    }

    #[test]
    fn a_newer_peer_gets_a_version_answer_not_a_decode_error() {
        #[derive(Serialize)]
        struct Future {
            protocol: u32,
            something_new: Vec<u64>,
        }
        let bytes = encode(&Future {
            protocol: 7,
            something_new: vec![1],
        });

        let err = decode_request(&bytes).unwrap_err();

        assert_eq!(
            err,
            ProtocolError::UnsupportedVersion {
                got: 7,
                min: 1,
                max: 1
            }
        );
        assert_eq!(err.code(), "unsupported_protocol");
    }

    #[test]
    fn a_request_without_want_orders_gets_orders() {
        #[derive(Serialize)]
        struct Older {
            protocol: u32,
            device_id: String,
            docs: Vec<DocMessage>,
        }
        let bytes = encode(&Older {
            protocol: 1,
            device_id: "d".into(),
            docs: vec![],
        });

        assert!(decode_request(&bytes).unwrap().want_orders);
    }

    #[test]
    fn garbage_is_malformed() {
        let err = decode_request(b"\xff\x00garbage").unwrap_err();

        assert_eq!(err.code(), "malformed_sync_message");
    }

    #[test]
    fn passwords_and_tokens_are_redacted_in_debug() {
        let login = LoginRequest {
            login: "w1".into(),
            password: "hunter2".into(),
            totp: Some("123456".into()),
            recovery_code: None,
        };
        let session = LoginResponse {
            token: "secret-token".into(),
            account_id: "a".into(),
            role: "worker".into(),
            second_factor_setup_required: false,
        };

        assert!(!format!("{login:?}").contains("hunter2"));
        assert!(!format!("{login:?}").contains("123456"));
        assert!(!format!("{session:?}").contains("secret-token"));
    }
}
