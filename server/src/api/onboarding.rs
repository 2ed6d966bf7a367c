//! Privacy notice, worker and enterprise applications, and their review.

use axum::Json;
use axum::extract::{Path, Query, State};
use flexwork_sync::ErrorBody;
use serde::{Deserialize, Serialize};

use super::JsonBody;
use crate::AppState;
use crate::auth::{Caller, ClientAddress};
use crate::enterprises;
use crate::error::{ApiError, ApiResult};
use crate::onboarding::{self, Application, Declaration, Reviewed, Submitted};
use crate::privacy::{self, Notice};

/// The current privacy notice, generated from the data catalogue.
///
/// An application's `consent` names the `version` read.
///
/// Who may call: anyone; no token needed.
#[utoipa::path(
    get,
    path = "/privacy/notice",
    operation_id = "privacy_notice",
    tag = "onboarding",
    responses((status = 200, description = "The notice", body = Notice)),
)]
pub async fn notice() -> Json<Notice> {
    Json(privacy::notice())
}

/// The declaration a worker applicant signs, and its SHA-256.
///
/// Who may call: anyone; no token needed.
#[utoipa::path(
    get,
    path = "/onboarding/declaration",
    operation_id = "worker_declaration",
    tag = "onboarding",
    responses((status = 200, description = "The declaration", body = Declaration)),
)]
pub async fn declaration() -> Json<Declaration> {
    Json(onboarding::declaration())
}

/// Applies to work through the platform.
///
/// The application is checked (identity number, bank card, phone, declarations, signature over
/// the current declaration, consent to the current privacy notice) and queued for review; the
/// account exists once a reviewer approves it.
///
/// Who may call: anyone; no token needed.
#[utoipa::path(
    post,
    path = "/onboarding/workers",
    operation_id = "apply_as_worker",
    tag = "onboarding",
    request_body = Application,
    responses(
        (status = 200, description = "Queued for review", body = Submitted),
        (status = 400, description = "`consent_required`, `invalid_login`, `weak_password`, \
            `invalid_name`, `invalid_trade`, the identity number's `id_*` codes, `too_young`, \
            `too_old`, `card_*`, `phone_*`, `declaration_required`, \
            `benefits_notice_required`, `signature_required`, `signature_text_mismatch`; \
            `invalid_json`", body = ErrorBody),
        (status = 409, description = "`login_taken`; `notice_changed`: read the notice again",
            body = ErrorBody),
        (status = 422, description = "`invalid_json`: a field is missing or of the wrong type",
            body = ErrorBody),
    ),
)]
pub async fn apply(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    JsonBody(body): JsonBody<Application>,
) -> ApiResult<Json<Submitted>> {
    Ok(Json(onboarding::submit(&state, &body, address).await?))
}

/// Which applications to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `pending` (the default), `approved` or `rejected`.
    pub state: Option<String>,
}

/// The worker review queue, nearest deadline first, masked.
///
/// Every listing is recorded in the audit trail as a masked view.
///
/// Who may call: Permission `review_applications`: operators in the reviewer team.
#[utoipa::path(
    get,
    path = "/onboarding/workers",
    operation_id = "list_worker_applications",
    tag = "onboarding",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "The applications", body = Vec<Reviewed>),
        (status = 400, description = "`invalid_state`; `bad_request`: the query string is not \
            understood", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a reviewer", body = ErrorBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Vec<Reviewed>>> {
    let wanted = query.state.as_deref().unwrap_or("pending");
    if !["pending", "approved", "rejected"].contains(&wanted) {
        let message = "state is one of pending, approved, rejected";
        return Err(ApiError::bad_request("invalid_state", message));
    }
    Ok(Json(onboarding::list(&state, &caller, wanted).await?))
}

/// A reviewer's decision on an application.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Decision {
    /// `approve` or `reject`.
    pub decision: String,
    pub reason: String,
}

impl Decision {
    /// Whether this approves (true) or rejects (false) the application.
    fn approves(&self) -> ApiResult<bool> {
        match self.decision.as_str() {
            "approve" => Ok(true),
            "reject" => Ok(false),
            _ => Err(ApiError::bad_request(
                "invalid_decision",
                "decision is approve or reject",
            )),
        }
    }
}

/// Approves or rejects a worker's application, with a reason.
///
/// Approval creates the worker's account.
///
/// Who may call: Permission `review_applications`: operators in the reviewer team.
#[utoipa::path(
    post,
    path = "/onboarding/workers/{id}/decision",
    operation_id = "decide_worker_application",
    tag = "onboarding",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The application's id")),
    request_body = Decision,
    responses(
        (status = 200, description = "Decided", body = Reviewed),
        (status = 400, description = "`invalid_decision`, `reason_required`; `invalid_json`",
            body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a reviewer", body = ErrorBody),
        (status = 404, description = "`not_found`: no such application", body = ErrorBody),
        (status = 409, description = "`already_decided`; `login_taken`", body = ErrorBody),
        (status = 422, description = "`invalid_json`: a field is missing or of the wrong type",
            body = ErrorBody),
    ),
)]
pub async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Decision>,
) -> ApiResult<Json<Reviewed>> {
    let approve = body.approves()?;
    Ok(Json(
        onboarding::decide(&state, &caller, &id, approve, &body.reason).await?,
    ))
}

/// Which personal field to read in plaintext, and why.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RevealRequest {
    /// `name`, `id_number`, `bank_card` or `phone`.
    pub field: String,
    pub reason: String,
}

/// One personal field in plaintext.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Revealed {
    pub field: String,
    pub value: String,
}

impl std::fmt::Debug for Revealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revealed")
            .field("field", &self.field)
            .finish_non_exhaustive()
    }
}

/// Reads one personal field of an application in plaintext, with a reason.
///
/// The reveal and its reason are recorded in the audit trail.
///
/// Who may call: Permission `reveal_personal_data`: operators in the reviewer or legal team.
#[utoipa::path(
    post,
    path = "/onboarding/workers/{id}/reveal",
    operation_id = "reveal_applicant_field",
    tag = "onboarding",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The application's id")),
    request_body = RevealRequest,
    responses(
        (status = 200, description = "The plaintext", body = Revealed),
        (status = 400, description = "`unknown_field`, `reason_required`; `invalid_json`",
            body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: neither reviewer nor legal team",
            body = ErrorBody),
        (status = 404, description = "`not_found`: no such application", body = ErrorBody),
        (status = 422, description = "`invalid_json`: a field is missing or of the wrong type",
            body = ErrorBody),
    ),
)]
pub async fn reveal(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<RevealRequest>,
) -> ApiResult<Json<Revealed>> {
    let value = onboarding::reveal(&state, &caller, &id, &body.field, &body.reason).await?;
    Ok(Json(Revealed {
        field: body.field,
        value,
    }))
}

/// Applies as an enterprise hiring through the platform.
///
/// Answers the application's id and the upload token for its documents (`PUT
/// /onboarding/enterprises/{id}/documents/{kind}`); the account exists once a reviewer
/// approves it.
///
/// Who may call: anyone; no token needed.
#[utoipa::path(
    post,
    path = "/onboarding/enterprises",
    operation_id = "apply_as_enterprise",
    tag = "onboarding",
    request_body = enterprises::Application,
    responses(
        (status = 200, description = "Queued for review", body = enterprises::Submitted),
        (status = 400, description = "`consent_required`, `invalid_login`, `weak_password`, \
            `invalid_company`, the credit code's `credit_code_*` codes, `invalid_date`, \
            `licence_expired`, `managers_required`, `invalid_name`, `invalid_position`, \
            `too_long`; `invalid_json`", body = ErrorBody),
        (status = 409, description = "`login_taken`; `notice_changed`: read the notice again",
            body = ErrorBody),
        (status = 422, description = "`invalid_json`: a field is missing or of the wrong type",
            body = ErrorBody),
    ),
)]
pub async fn apply_enterprise(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    JsonBody(body): JsonBody<enterprises::Application>,
) -> ApiResult<Json<enterprises::Submitted>> {
    Ok(Json(enterprises::submit(&state, &body, address).await?))
}

/// A stored document: its kind and the SHA-256 of its bytes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Stored {
    pub kind: String,
    pub hash: String,
}

/// Uploads one document of a pending enterprise application.
///
/// The body is the document's bytes (a photo or scan: JPEG, PNG, WebP, GIF, TIFF or HEIC, at
/// most 8 MiB); sending a kind again replaces it.
///
/// Who may call: the applicant, with the application's upload token (from
/// `POST /onboarding/enterprises`) as bearer token; no account.
#[utoipa::path(
    put,
    path = "/onboarding/enterprises/{id}/documents/{kind}",
    operation_id = "upload_enterprise_document",
    tag = "onboarding",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The application's id"),
        ("kind" = String, Path, description = "`business_licence`, `storefront`, `office` or \
            `business_scene`"),
    ),
    request_body(description = "The document's bytes", content(
        ("application/octet-stream"), ("image/jpeg"), ("image/png"), ("image/webp"),
        ("image/gif"), ("image/tiff"), ("image/heic"),
    )),
    responses(
        (status = 200, description = "Stored", body = Stored),
        (status = 400, description = "`unknown_document`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no upload token, or not this \
            application's", body = ErrorBody),
        (status = 409, description = "`already_decided`", body = ErrorBody),
        (status = 413, description = "`body_too_large`: more than 8 MiB", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not a readable photo or scan",
            body = ErrorBody),
    ),
)]
pub async fn upload_document(
    State(state): State<AppState>,
    Path((id, kind)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Json<Stored>> {
    let token = crate::auth::bearer(&headers).ok_or_else(ApiError::unauthorized)?;
    let hash = enterprises::upload_document(&state, &id, token, &kind, &body).await?;
    Ok(Json(Stored { kind, hash }))
}

/// The enterprise review queue, nearest deadline first.
///
/// Every listing is recorded in the audit trail as a masked view.
///
/// Who may call: Permission `review_applications`: operators in the reviewer team.
#[utoipa::path(
    get,
    path = "/onboarding/enterprises",
    operation_id = "list_enterprise_applications",
    tag = "onboarding",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "The applications", body = Vec<enterprises::Reviewed>),
        (status = 400, description = "`invalid_state`; `bad_request`: the query string is not \
            understood", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a reviewer", body = ErrorBody),
    ),
)]
pub async fn list_enterprises(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Vec<enterprises::Reviewed>>> {
    let wanted = query.state.as_deref().unwrap_or("pending");
    if !["pending", "approved", "rejected"].contains(&wanted) {
        let message = "state is one of pending, approved, rejected";
        return Err(ApiError::bad_request("invalid_state", message));
    }
    Ok(Json(enterprises::list(&state, &caller, wanted).await?))
}

/// Approves or rejects an enterprise's application, with a reason.
///
/// Approval needs every document and creates the enterprise's administrator account.
///
/// Who may call: Permission `review_applications`: operators in the reviewer team.
#[utoipa::path(
    post,
    path = "/onboarding/enterprises/{id}/decision",
    operation_id = "decide_enterprise_application",
    tag = "onboarding",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The application's id")),
    request_body = Decision,
    responses(
        (status = 200, description = "Decided", body = enterprises::Reviewed),
        (status = 400, description = "`invalid_decision`, `reason_required`; `invalid_json`",
            body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a reviewer", body = ErrorBody),
        (status = 404, description = "`not_found`: no such application", body = ErrorBody),
        (status = 409, description = "`already_decided`, `documents_missing`, `login_taken`",
            body = ErrorBody),
        (status = 422, description = "`invalid_json`: a field is missing or of the wrong type",
            body = ErrorBody),
    ),
)]
pub async fn decide_enterprise(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Decision>,
) -> ApiResult<Json<enterprises::Reviewed>> {
    let approve = body.approves()?;
    Ok(Json(
        enterprises::decide(&state, &caller, &id, approve, &body.reason).await?,
    ))
}

/// A real-name provider's callback with a face check's result.
///
/// Signed with HMAC-SHA256 over `{timestamp}.{body}` under `[realname] callback_secret`, the
/// time and signature in the `x-flexwork-timestamp` and `x-flexwork-signature` headers;
/// applied once per ticket, a repeat acknowledged as a duplicate.
///
/// Who may call: the real-name provider, proven by the signature; no token.
#[utoipa::path(
    post,
    path = "/realname/callbacks",
    operation_id = "realname_callback",
    tag = "onboarding",
    request_body(content = String, content_type = "application/json",
        description = "The provider's callback as it signed it"),
    responses(
        (status = 200, description = "Applied, or acknowledged as a duplicate",
            body = crate::face::CallbackAck),
        (status = 400, description = "`invalid_callback`: the body is not a callback",
            body = ErrorBody),
        (status = 401, description = "`callback_signature_invalid`; `callback_signature_expired`",
            body = ErrorBody),
        (status = 404, description = "`unknown_verification`: no such ticket", body = ErrorBody),
        (status = 503, description = "`callbacks_not_configured`", body = ErrorBody),
    ),
)]
pub async fn realname_callback(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Json<crate::face::CallbackAck>> {
    Ok(Json(
        crate::face::receive(&state, &headers, &body, address).await?,
    ))
}
