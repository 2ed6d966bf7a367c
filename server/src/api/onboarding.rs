//! Privacy notice, worker and enterprise applications, and their review.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};

use super::JsonBody;
use crate::AppState;
use crate::auth::{Caller, ClientAddress};
use crate::enterprises;
use crate::error::{ApiError, ApiResult};
use crate::onboarding::{self, Application, Declaration, Reviewed, Submitted};
use crate::privacy::{self, Notice};

/// `GET /privacy/notice`: the current privacy notice, generated from the data catalogue.
pub async fn notice() -> Json<Notice> {
    Json(privacy::notice())
}

/// `GET /onboarding/declaration`: the text an applicant signs, and its SHA-256.
pub async fn declaration() -> Json<Declaration> {
    Json(onboarding::declaration())
}

/// `POST /onboarding/workers`: a worker's application (no account needed).
pub async fn apply(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    JsonBody(body): JsonBody<Application>,
) -> ApiResult<Json<Submitted>> {
    Ok(Json(onboarding::submit(&state, &body, address).await?))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub state: Option<String>,
}

/// `GET /onboarding/workers?state=pending`: the review queue (operators), masked.
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

#[derive(Debug, Deserialize)]
pub struct Decision {
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

/// `POST /onboarding/workers/{id}/decision`: `{decision: approve or reject, reason}`.
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

#[derive(Debug, Deserialize)]
pub struct RevealRequest {
    pub field: String,
    pub reason: String,
}

#[derive(Serialize)]
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

/// `POST /onboarding/workers/{id}/reveal`: `{field, reason}` → the plaintext; audited.
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

/// `POST /onboarding/enterprises`: an enterprise's application (no account needed); answers
/// the upload token for its documents.
pub async fn apply_enterprise(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    JsonBody(body): JsonBody<enterprises::Application>,
) -> ApiResult<Json<enterprises::Submitted>> {
    Ok(Json(enterprises::submit(&state, &body, address).await?))
}

#[derive(Debug, Serialize)]
pub struct Stored {
    pub kind: String,
    pub hash: String,
}

/// `PUT /onboarding/enterprises/{id}/documents/{kind}`: one document's bytes, with the
/// application's upload token as bearer token.
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

/// `GET /onboarding/enterprises?state=pending`: the enterprise review queue (operators).
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

/// `POST /onboarding/enterprises/{id}/decision`: `{decision, reason}`.
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

/// `POST /realname/callbacks`: a licensed provider's callback, signed with HMAC-SHA256 under
/// the configured secret; applied once per ticket.
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
