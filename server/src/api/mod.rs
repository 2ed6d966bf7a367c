//! The HTTP API, under `/api/v1`. JSON everywhere except sync bodies (CBOR) and media bytes;
//! every error is an [`ErrorBody`](flexwork_sync::ErrorBody) with a stable code.
//!
//! Every route is registered with its documentation: a handler carries `#[utoipa::path(...)]`
//! (method, path relative to `/api/v1`, params, bodies, responses with their error codes,
//! `security`, and a "Who may call:" paragraph naming the permission) and is added in
//! [`routes`] with `.routes(routes!(module::handler))`, never with axum's `.route(...)`, so
//! [`openapi::document`] lists exactly what the server serves; then regenerate the committed
//! `server/openapi.json` (`flexwork openapi > server/openapi.json`).

pub mod accounts;
pub mod checks;
pub mod devices;
pub mod evidence;
pub mod filters;
pub mod invoices;
pub mod media;
pub mod onboarding;
pub mod openapi;
pub mod orders;
pub mod payouts;
pub mod queues;
pub mod statements;
pub mod sync;
pub mod task_applications;
pub mod task_review;
pub mod tasks;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;

/// Largest body of one media chunk.
pub const MAX_CHUNK_BYTES: usize = 8 * 1024 * 1024;

/// Every route of the API, each registered together with its OpenAPI operation; `sync_limit`
/// is the body limit of `POST /sync`.
pub fn routes(sync_limit: usize) -> OpenApiRouter<AppState> {
    let api = OpenApiRouter::default()
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(accounts::login, accounts::logout))
        .routes(routes!(accounts::me))
        .routes(routes!(accounts::totp_setup))
        .routes(routes!(accounts::totp_confirm))
        .routes(routes!(accounts::change_password))
        .routes(routes!(devices::register, devices::list))
        .routes(routes!(devices::revoke))
        .routes(routes!(accounts::create))
        .routes(routes!(accounts::suspend))
        .routes(routes!(accounts::reinstate))
        .routes(routes!(accounts::set_teams))
        .routes(routes!(accounts::reset_second_factor))
        .routes(routes!(accounts::add_staff, accounts::list_staff))
        .routes(routes!(accounts::audit_log))
        .routes(routes!(accounts::archives))
        .routes(routes!(accounts::reveal_archive))
        .routes(routes!(onboarding::notice))
        .routes(routes!(onboarding::declaration))
        .routes(routes!(onboarding::apply, onboarding::list))
        .routes(routes!(onboarding::decide))
        .routes(routes!(onboarding::reveal))
        .routes(routes!(onboarding::realname_callback))
        .routes(routes!(
            onboarding::apply_enterprise,
            onboarding::list_enterprises
        ))
        .routes(routes!(onboarding::upload_document))
        .routes(routes!(onboarding::decide_enterprise))
        .routes(routes!(tasks::create, tasks::list))
        .routes(routes!(tasks::get, tasks::edit))
        .routes(routes!(tasks::submit))
        .routes(routes!(task_review::review))
        .routes(routes!(tasks::cancel))
        .routes(routes!(tasks::void))
        .routes(routes!(tasks::assign))
        .routes(routes!(task_applications::apply, task_applications::list))
        .routes(routes!(task_applications::accept))
        .routes(routes!(orders::list))
        .routes(routes!(orders::get))
        .routes(routes!(orders::confirm))
        .routes(routes!(orders::dispute))
        .routes(routes!(orders::cancel))
        .routes(routes!(orders::review))
        .routes(routes!(orders::settlement))
        .routes(routes!(evidence::get))
        .routes(routes!(queues::get))
        .routes(routes!(invoices::create, invoices::list))
        .routes(routes!(invoices::get))
        .routes(routes!(invoices::reverse))
        .routes(routes!(statements::order_statement))
        .routes(routes!(statements::list))
        .routes(routes!(statements::confirm))
        .routes(routes!(statements::dispute))
        .routes(routes!(statements::resolve))
        .routes(routes!(statements::record_deposit))
        .routes(routes!(statements::escrow))
        .routes(routes!(payouts::set_cycle))
        .routes(routes!(payouts::run))
        .routes(routes!(payouts::list))
        .routes(routes!(payouts::get))
        .routes(routes!(payouts::callback))
        .routes(routes!(sync::sync).map(|route| route.layer(DefaultBodyLimit::max(sync_limit))))
        .routes(routes!(media::status))
        .routes(routes!(media::copies))
        .routes(routes!(media::thumbnail))
        .routes(routes!(media::drill_status))
        .routes(routes!(media::upload, media::download))
        .routes(routes!(checks::run))
        .routes(routes!(checks::list_items))
        .routes(routes!(checks::close_item))
        .routes(routes!(checks::attach))
        .routes(routes!(checks::screening))
        .routes(routes!(checks::make_export, checks::list_exports))
        .routes(routes!(checks::get_export))
        .routes(routes!(
            checks::request_deregistration,
            checks::get_deregistration
        ))
        .layer(DefaultBodyLimit::max(MAX_CHUNK_BYTES));

    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(healthz))
        .nest("/api/v1", api)
}

/// The router of the whole server: [`routes`], the fallback and the layers every request
/// passes.
pub fn router(state: AppState) -> Router {
    let sync_limit = state.config.limits.max_sync_body_bytes;
    let (routes, _document) = routes(sync_limit).split_for_parts();
    let routes = routes
        // A phone's request signed with its device key is verified before any handler runs.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::device::authenticate,
        ))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no_route", "no such endpoint") })
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(axum::middleware::map_response(json_errors))
        .layer(TraceLayer::new_for_http().make_span_with(request_span));
    security_headers(routes).with_state(state)
}

/// The policy of every page and answer: nothing from other origins, no framing, no inline
/// script or style.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; font-src 'self'; \
    form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Security headers on every response (API, console, errors, 404s). A response that sets
/// its own `Cache-Control` (console assets) keeps it; every other one is `no-store`.
fn security_headers<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    let set = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    router
        .layer(set(
            header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY,
        ))
        .layer(set(header::X_FRAME_OPTIONS, "DENY"))
        .layer(set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(set(header::REFERRER_POLICY, "no-referrer"))
        .layer(set(
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ))
        .layer(set(header::CACHE_CONTROL, "no-store"))
}

/// Whether the server is up.
///
/// Who may call: anyone; no token needed.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "health",
    tag = "meta",
    responses((status = 200, description = "The server is up", body = String,
        content_type = "text/plain", example = "ok")),
)]
async fn healthz() -> &'static str {
    "ok"
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
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            let message = "the request body is larger than this endpoint accepts (8 MiB for \
                           JSON bodies)";
            return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", message);
        }
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
