//! The HTTP API, under `/api/v1`. JSON everywhere except sync bodies (CBOR) and media bytes;
//! every error is an [`ErrorBody`](flexwork_sync::ErrorBody) with a stable code.

pub mod accounts;
pub mod devices;
pub mod media;
pub mod onboarding;
pub mod orders;
pub mod sync;
pub mod tasks;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use tower_http::trace::TraceLayer;

use crate::AppState;
use crate::error::ApiError;

/// Largest body of one media chunk.
pub const MAX_CHUNK_BYTES: usize = 8 * 1024 * 1024;

/// Every route of the API.
pub fn router(state: AppState) -> Router {
    let sync_limit = state.config.limits.max_sync_body_bytes;
    let api = Router::new()
        .route("/sessions", post(accounts::login).delete(accounts::logout))
        .route("/me", get(accounts::me))
        .route("/me/totp", post(accounts::totp_setup))
        .route("/me/totp/confirm", post(accounts::totp_confirm))
        .route("/me/password", post(accounts::change_password))
        .route("/devices", post(devices::register).get(devices::list))
        .route("/devices/{id}", axum::routing::delete(devices::revoke))
        .route("/accounts", post(accounts::create))
        .route("/accounts/{id}/suspend", post(accounts::suspend))
        .route("/accounts/{id}/reinstate", post(accounts::reinstate))
        .route("/audit", get(accounts::audit_log))
        .route("/privacy/notice", get(onboarding::notice))
        .route("/onboarding/declaration", get(onboarding::declaration))
        .route(
            "/onboarding/workers",
            post(onboarding::apply).get(onboarding::list),
        )
        .route(
            "/onboarding/workers/{id}/decision",
            post(onboarding::decide),
        )
        .route("/onboarding/workers/{id}/reveal", post(onboarding::reveal))
        .route(
            "/onboarding/enterprises",
            post(onboarding::apply_enterprise).get(onboarding::list_enterprises),
        )
        .route(
            "/onboarding/enterprises/{id}/documents/{kind}",
            put(onboarding::upload_document),
        )
        .route(
            "/onboarding/enterprises/{id}/decision",
            post(onboarding::decide_enterprise),
        )
        .route("/tasks", post(tasks::create).get(tasks::list))
        .route("/tasks/{id}", get(tasks::get))
        .route("/tasks/{id}/orders", post(tasks::assign))
        .route("/orders", get(orders::list))
        .route("/orders/{id}", get(orders::get))
        .route("/orders/{id}/confirm", post(orders::confirm))
        .route("/orders/{id}/dispute", post(orders::dispute))
        .route("/orders/{id}/review", post(orders::review))
        .route("/orders/{id}/settlement", get(orders::settlement))
        .route(
            "/sync",
            post(sync::sync).layer(DefaultBodyLimit::max(sync_limit)),
        )
        .route("/media/{hash}/status", get(media::status))
        .route("/media/{hash}/copies", get(media::copies))
        .route("/drills/status", get(media::drill_status))
        .route("/media/{hash}", put(media::upload).get(media::download))
        .layer(DefaultBodyLimit::max(MAX_CHUNK_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::device::authenticate,
        ));

    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .nest("/api/v1", api)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no_route", "no such endpoint") })
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(axum::middleware::map_response(json_errors))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

/// Errors produced below the handlers (body limits, wrong methods, a caught panic) come as
/// plain text; this gives them the same JSON shape and stable codes as every other error.
async fn json_errors(response: axum::response::Response) -> axum::response::Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }

    let (code, message) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "body_too_large",
            "the request body is larger than this endpoint accepts: media go in chunks of at \
             most 8 MiB, sync requests within the server's configured limit",
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this endpoint does not take that method",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ("unsupported_content_type", "send this body as JSON")
        }
        s if s.is_server_error() => {
            tracing::error!(status = %s, "request failed below the handlers");
            (
                "internal",
                "the server failed to handle this request; it has been logged",
            )
        }
        _ => ("bad_request", "the request could not be read"),
    };
    axum::response::IntoResponse::into_response(ApiError::new(status, code, message))
}

/// A span per request naming the matched route, not the raw path (which holds ids).
fn request_span(request: &Request) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    tracing::debug_span!("request", method = %request.method(), route)
}

/// A JSON body whose rejection is an [`ApiError`] like every other error.
#[derive(Debug, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct JsonBody<T>(pub T);

/// Query parameters whose rejection is an [`ApiError`].
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct QueryParams<T>(pub T);

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::JsonRejection) -> Self {
        // The parser quotes what it could not read; numbers in it may be personal.
        let message = format!(
            "the body is not the JSON this endpoint expects ({})",
            crate::identity::redact_numbers(&rejection.body_text())
        );
        ApiError::new(rejection.status(), "invalid_json", message)
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        let message = format!(
            "the query string is not what this endpoint expects ({})",
            crate::identity::redact_numbers(&rejection.body_text())
        );
        ApiError::bad_request("invalid_query", message)
    }
}
