//! The HTTP API, under `/api/v1`. JSON everywhere except sync bodies (CBOR) and media bytes;
//! every error is an [`ErrorBody`](flexwork_sync::ErrorBody) with a stable code.

pub mod accounts;
pub mod media;
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
        .route("/accounts", post(accounts::create))
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
        .route("/media/{hash}", put(media::upload).get(media::download))
        .layer(DefaultBodyLimit::max(MAX_CHUNK_BYTES));

    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .nest("/api/v1", api)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no_route", "no such endpoint") })
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
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
        ApiError::new(rejection.status(), "invalid_json", rejection.body_text())
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::bad_request("invalid_query", rejection.body_text())
    }
}
