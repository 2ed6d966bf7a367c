//! How the device reaches the server: the [`Transport`] trait and its HTTP implementation.

use std::time::Duration;

use flexwork_sync::protocol::{self, CBOR_MEDIA_TYPE};
use flexwork_sync::{
    ContentHash, ErrorBody, LoginRequest, LoginResponse, MediaStatus, SyncRequest, SyncResponse,
};
use reqwest::blocking::{Client, RequestBuilder, Response};

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

/// The server's HTTP API with a bearer token (reqwest, blocking, with timeouts).
#[derive(Clone)]
pub struct HttpTransport {
    client: Client,
    base_url: String,
    token: String,
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport")
            .field("base_url", &self.base_url)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl HttpTransport {
    /// A transport for `base_url` (like `http://127.0.0.1:8080`) authenticated by `token`.
    pub fn new(base_url: &str, token: &str) -> Result<Self, TransportError> {
        Ok(Self {
            client: client()?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
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

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    fn authorized(&self, builder: RequestBuilder) -> RequestBuilder {
        builder.bearer_auth(&self.token)
    }
}

impl Transport for HttpTransport {
    fn sync(&self, request: &SyncRequest) -> Result<SyncResponse, TransportError> {
        let builder = self
            .client
            .post(self.url("/api/v1/sync"))
            .header(reqwest::header::CONTENT_TYPE, CBOR_MEDIA_TYPE)
            .body(protocol::encode(request));
        let response = send(self.authorized(builder))?;

        let body = response.bytes().map_err(network)?;
        protocol::decode_response(&body).map_err(|e| TransportError::BadResponse(e.to_string()))
    }

    fn media_status(&self, hash: &ContentHash) -> Result<MediaStatus, TransportError> {
        let url = self.url(&format!("/api/v1/media/{hash}/status"));
        let response = send(self.authorized(self.client.get(url)))?;
        json(response)
    }

    fn upload_chunk(
        &self,
        hash: &ContentHash,
        offset: u64,
        total: u64,
        media_type: &str,
        chunk: &[u8],
    ) -> Result<MediaStatus, TransportError> {
        let url = self.url(&format!(
            "/api/v1/media/{hash}?offset={offset}&size={total}"
        ));
        let builder = self
            .client
            .put(url)
            .header(reqwest::header::CONTENT_TYPE, media_type)
            .body(chunk.to_vec());
        json(send(self.authorized(builder))?)
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
    let response = builder.send().map_err(network)?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }

    let text = response.text().unwrap_or_default();
    let body = serde_json::from_str::<ErrorBody>(&text).unwrap_or_else(|_| ErrorBody {
        code: format!("http_{}", status.as_u16()),
        message: text.chars().take(MAX_RAW_MESSAGE).collect(),
    });
    Err(TransportError::Server {
        status: status.as_u16(),
        code: body.code,
        message: body.message,
    })
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
    fn the_token_is_not_in_debug_output() {
        let transport = HttpTransport::new("http://127.0.0.1:1", "very-secret").unwrap();

        assert!(!format!("{transport:?}").contains("very-secret"));
    }
}
