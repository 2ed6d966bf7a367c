//! The one error type of the HTTP API: a status, a stable code and a sentence.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flexwork_sync::ErrorBody;

/// An error answered to an API caller.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The request's JSON field the error is about, when validation knows it.
    pub field: Option<&'static str>,
    /// A `Set-Cookie` value sent with the error (the browser's ended session, removed).
    pub set_cookie: Option<String>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            set_cookie: None,
        }
    }

    /// Names the request's JSON field the error is about.
    #[must_use]
    pub fn field(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized() -> Self {
        let message = "sign in first: this call needs a valid bearer token";
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// Also used for objects that exist but belong to someone else, so ids cannot be probed.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such {what}"),
        )
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// A failure of ours. The cause is logged; the caller gets no internals.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        let message = "the server failed to handle this request; it has been logged";
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        // PostgreSQL refuses a NUL character in text (SQLite stores it): that is bad input.
        if let sqlx::Error::Database(db) = &e
            && db.code().as_deref() == Some("22021")
        {
            return Self::bad_request(
                "invalid_text",
                "text may not contain NUL characters; remove them and send again",
            );
        }
        Self::internal(e)
    }
}

impl From<flexwork_storage::StorageError> for ApiError {
    fn from(e: flexwork_storage::StorageError) -> Self {
        Self::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_client_error() {
            tracing::debug!(code = self.code, status = %self.status, "request refused");
        }
        let body = ErrorBody {
            code: self.code.to_owned(),
            message: self.message,
            field: self.field.map(str::to_owned),
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(cookie) = self.set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        response
    }
}
