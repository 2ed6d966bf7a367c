//! Privacy notice, worker applications and their review.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};

use super::JsonBody;
use crate::AppState;
use crate::auth::{Caller, ClientAddress};
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

/// `POST /onboarding/workers/{id}/decision`: `{decision: approve or reject, reason}`.
pub async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Decision>,
) -> ApiResult<Json<Reviewed>> {
    let approve = match body.decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => {
            let message = "decision is approve or reject";
            return Err(ApiError::bad_request("invalid_decision", message));
        }
    };
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
