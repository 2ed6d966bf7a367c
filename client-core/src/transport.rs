//! How the device reaches the server: the [`Transport`] trait and its HTTP implementation.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use flexwork_sync::device_auth::{
    DeviceInfo, DeviceRegistered, DeviceRegistration, HEADER_SERVER_TIME, RequestToSign,
};
use flexwork_sync::protocol::{self, CBOR_MEDIA_TYPE};
use flexwork_sync::{
    ContentHash, ErrorBody, LoginRequest, LoginResponse, MediaStatus, SyncRequest, SyncResponse,
};
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::{Method, Url};

use crate::db::now_ms;
use crate::signing::{DeviceKey, new_nonce};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest server message kept from a body that is not an [`ErrorBody`].
const MAX_RAW_MESSAGE: usize = 200;

/// Why a call to the server did not give an answer the device can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// No answer: no network, connection refused or dropped, timeout.
    #[error("server unreachable: {0}")]
    Network(String),
    /// The server answered with an error status and body.
    #[error("server refused the request ({status} {code}): {message}")]
    Server {
        status: u16,
        code: String,
        message: String,
    },
    /// The server answered, but not with something this device understands.
    #[error("server answer could not be read: {0}")]
    BadResponse(String),
}

impl TransportError {
    /// A stable code for the error class.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Network(_) => "network",
            Self::Server { .. } => "server_refused",
            Self::BadResponse(_) => "bad_response",
        }
    }

    /// A refusal that repeating the same request will not change (4xx other than conflict,
    /// timeout, rate limit, authentication and media not yet referenced).
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Server { status, code, .. } => {
                let retryable =
                    matches!(status, 401 | 408 | 409 | 429) || code == "media_not_referenced";
                (400..500).contains(status) && !retryable
            }
            _ => false,
        }
    }

    /// The server or network is unavailable; further calls now would fail too.
    pub fn is_outage(&self) -> bool {
        match self {
            Self::Network(_) => true,
            Self::Server { status, .. } => *status >= 500 || *status == 401,
            Self::BadResponse(_) => false,
        }
    }
}

/// The server calls a device needs. [`HttpTransport`] talks HTTP; tests play the server.
pub trait Transport {
    /// One sync round: `POST /api/v1/sync`.
    fn sync(&self, request: &SyncRequest) -> Result<SyncResponse, TransportError>;

    /// Where the upload of a blob stands: `GET /api/v1/media/{hash}/status`.
    fn media_status(&self, hash: &ContentHash) -> Result<MediaStatus, TransportError>;

    /// Sends `chunk`, the bytes of the blob from `offset`, of `total` bytes in all:
    /// `PUT /api/v1/media/{hash}?offset=N&size=TOTAL`.
    fn upload_chunk(
        &self,
        hash: &ContentHash,
        offset: u64,
        total: u64,
        media_type: &str,
        chunk: &[u8],
    ) -> Result<MediaStatus, TransportError>;
}

/// The server's HTTP API, every call signed with the phone's device key (reqwest, blocking,
/// with timeouts).
#[derive(Clone)]
pub struct HttpTransport {
    client: Client,
    base_url: String,
    device_id: String,
    key: DeviceKey,
    /// Milliseconds to add to this phone's clock to get the server's, learnt from a
    /// `device_clock_skew` refusal.
    clock_offset_ms: Arc<AtomicI64>,
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport")
            .field("base_url", &self.base_url)
            .field("device_id", &self.device_id)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl HttpTransport {
    /// A transport for `base_url` (like `http://127.0.0.1:8080`) signing as the registered
    /// device `device_id` with `key`.
    pub fn new(base_url: &str, device_id: &str, key: DeviceKey) -> Result<Self, TransportError> {
        Ok(Self {
            client: client()?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            device_id: device_id.to_owned(),
            key,
            clock_offset_ms: Arc::default(),
        })
    }

    /// `POST /api/v1/sessions`: exchanges a login and password for a session token.
    pub fn login(base_url: &str, request: &LoginRequest) -> Result<LoginResponse, TransportError> {
        let url = format!("{}/api/v1/sessions", base_url.trim_end_matches('/'));
        let response = send(client()?.post(url).json(request))?;
        response
            .json()
            .map_err(|e| TransportError::BadResponse(e.to_string()))
    }

    /// `GET {base_url}{path}` without a session (onboarding: no account exists yet).
    pub(crate) fn get_anonymous<T: serde::de::DeserializeOwned>(
        base_url: &str,
        path: &str,
    ) -> Result<T, TransportError> {
        let url = format!("{}{path}", base_url.trim_end_matches('/'));
        json(send(client()?.get(url))?)
    }

    /// `POST {base_url}{path}` with a JSON body, without a session.
    pub(crate) fn post_anonymous<T: serde::de::DeserializeOwned>(
        base_url: &str,
        path: &str,
        body: &str,
    ) -> Result<T, TransportError> {
        let url = format!("{}{path}", base_url.trim_end_matches('/'));
        let builder = client()?
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_owned());
        json(send(builder)?)
    }

    /// `POST /api/v1/devices`: registers a device key with the bearer `token` of a password
    /// sign-in; the server revokes that token.
    pub fn register_device(
        base_url: &str,
        token: &str,
        registration: &DeviceRegistration,
    ) -> Result<DeviceRegistered, TransportError> {
        let url = format!("{}/api/v1/devices", base_url.trim_end_matches('/'));
        let builder = client()?.post(url).bearer_auth(token).json(registration);
        json(send(builder)?)
    }

    /// `DELETE /api/v1/sessions`: revokes a password session's token.
    pub fn logout(base_url: &str, token: &str) -> Result<(), TransportError> {
        let url = format!("{}/api/v1/sessions", base_url.trim_end_matches('/'));
        send(client()?.delete(url).bearer_auth(token)).map(drop)
    }

    /// `GET /api/v1/devices`: the account's phones.
    pub fn devices(&self) -> Result<Vec<DeviceInfo>, TransportError> {
        json(self.signed(Method::GET, "/api/v1/devices", None, Vec::new())?)
    }

    /// `DELETE /api/v1/devices/{id}`: revokes one of the account's phones.
    pub fn revoke_device(&self, device_id: &str) -> Result<(), TransportError> {
        let path = format!("/api/v1/devices/{device_id}");
        self.signed(Method::DELETE, &path, None, Vec::new())
            .map(drop)
    }

    /// `GET /api/v1/orders/{id}/statement`: the order's three-party statement (amounts,
    /// who confirmed, and gross, tax and net once settled).
    pub fn statement(&self, order_id: &str) -> Result<serde_json::Value, TransportError> {
        let path = format!("/api/v1/orders/{order_id}/statement");
        json(self.signed(Method::GET, &path, None, Vec::new())?)
    }

    /// `POST /api/v1/statements/{id}/confirm`: the worker confirms the statement.
    pub fn confirm_statement(
        &self,
        statement_id: &str,
    ) -> Result<serde_json::Value, TransportError> {
        let path = format!("/api/v1/statements/{statement_id}/confirm");
        json(self.signed(Method::POST, &path, None, Vec::new())?)
    }

    /// Sends a request signed with the device key. A refusal for clock skew is retried once
    /// with the server's clock, which the refusal carries.
    pub fn signed(
        &self,
        method: Method,
        path_and_query: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Response, TransportError> {
        let url = Url::parse(&format!("{}{path_and_query}", self.base_url))
            .map_err(|e| TransportError::BadResponse(format!("not a usable url: {e}")))?;
        let mut retried = false;
        loop {
            let nonce = new_nonce();
            let request = RequestToSign {
                method: method.as_str(),
                path: url.path(),
                query: url.query().unwrap_or_default(),
                content_type: content_type.unwrap_or_default(),
                device_id: &self.device_id,
                timestamp_ms: now_ms() + self.clock_offset_ms.load(Ordering::Relaxed),
                nonce: &nonce,
                body: &body,
            };
            let mut builder = self.client.request(method.clone(), url.clone());
            for (name, value) in self.key.headers(&request) {
                builder = builder.header(name, value);
            }
            if let Some(content_type) = content_type {
                builder = builder.header(reqwest::header::CONTENT_TYPE, content_type);
            }
            match send_timed(builder.body(body.clone())) {
                Ok(response) => return Ok(response),
                Err((error, Some(server_ms))) if !retried && is_clock_skew(&error) => {
                    retried = true;
                    let offset = server_ms - now_ms();
                    tracing::warn!(offset_ms = offset, "phone clock differs from the server's");
                    self.clock_offset_ms.store(offset, Ordering::Relaxed);
                }
                Err((error, _)) => return Err(error),
            }
        }
    }
}

fn is_clock_skew(error: &TransportError) -> bool {
    matches!(error, TransportError::Server { code, .. } if code == "device_clock_skew")
}

impl Transport for HttpTransport {
    fn sync(&self, request: &SyncRequest) -> Result<SyncResponse, TransportError> {
        let body = protocol::encode(request);
        let response = self.signed(Method::POST, "/api/v1/sync", Some(CBOR_MEDIA_TYPE), body)?;

        let body = response.bytes().map_err(network)?;
        protocol::decode_response(&body).map_err(|e| TransportError::BadResponse(e.to_string()))
    }

    fn media_status(&self, hash: &ContentHash) -> Result<MediaStatus, TransportError> {
        let path = format!("/api/v1/media/{hash}/status");
        json(self.signed(Method::GET, &path, None, Vec::new())?)
    }

    fn upload_chunk(
        &self,
        hash: &ContentHash,
        offset: u64,
        total: u64,
        media_type: &str,
        chunk: &[u8],
    ) -> Result<MediaStatus, TransportError> {
        let path = format!("/api/v1/media/{hash}?offset={offset}&size={total}");
        let response = self.signed(Method::PUT, &path, Some(media_type), chunk.to_vec())?;
        json(response)
    }
}

fn client() -> Result<Client, TransportError> {
    Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| TransportError::Network(e.to_string()))
}

/// Sends a request; an error status becomes [`TransportError::Server`].
fn send(builder: RequestBuilder) -> Result<Response, TransportError> {
    send_timed(builder).map_err(|(error, _)| error)
}

/// [`send`], also giving the server's clock when a refusal carries it.
fn send_timed(builder: RequestBuilder) -> Result<Response, (TransportError, Option<i64>)> {
    let response = builder.send().map_err(|e| (network(e), None))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }

    let server_time = response
        .headers()
        .get(HEADER_SERVER_TIME)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    let text = response.text().unwrap_or_default();
    let body = serde_json::from_str::<ErrorBody>(&text).unwrap_or_else(|_| ErrorBody {
        code: format!("http_{}", status.as_u16()),
        message: text.chars().take(MAX_RAW_MESSAGE).collect(),
        field: None,
    });
    let error = TransportError::Server {
        status: status.as_u16(),
        code: body.code,
        message: body.message,
    };
    Err((error, server_time))
}

fn json<T: serde::de::DeserializeOwned>(response: Response) -> Result<T, TransportError> {
    let body = response.bytes().map_err(network)?;
    serde_json::from_slice(&body).map_err(|e| TransportError::BadResponse(e.to_string()))
}

fn network(error: reqwest::Error) -> TransportError {
    TransportError::Network(error.without_url().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(status: u16, code: &str) -> TransportError {
        TransportError::Server {
            status,
            code: code.into(),
            message: String::new(),
        }
    }

    #[test]
    fn refusals_that_a_retry_cannot_fix_are_permanent() {
        assert!(server(422, "hash_mismatch").is_permanent());
        assert!(server(415, "unsupported_media_type").is_permanent());
        assert!(server(413, "media_too_large").is_permanent());
        assert!(!server(403, "media_not_referenced").is_permanent());
        assert!(!server(409, "upload_offset_mismatch").is_permanent());
        assert!(!server(503, "unavailable").is_permanent());
        assert!(!TransportError::Network("reset".into()).is_permanent());
    }

    #[test]
    fn the_key_is_not_in_debug_output() {
        let key = DeviceKey::generate();
        let secret: String = key.secret().iter().map(|b| format!("{b:02x}")).collect();
        let transport = HttpTransport::new("http://127.0.0.1:1", "d1", key).unwrap();

        let shown = format!("{transport:?}");
        assert!(shown.contains("<redacted>"));
        assert!(!shown.contains(&secret));
    }
}
