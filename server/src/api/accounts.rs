//! Sign-in, sign-out and account creation.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use flexwork_sync::{LoginRequest, LoginResponse};
use serde::Serialize;

use super::JsonBody;
use crate::AppState;
use crate::auth::{self, Caller, NewAccount, Role};
use crate::error::{ApiError, ApiResult};

/// `POST /sessions`: exchanges a login and password for a bearer token.
pub async fn login(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    let (token, caller) = auth::login(&state, &body.login, &body.password).await?;
    let role = caller.role.as_str().to_owned();

    Ok(Json(LoginResponse {
        token,
        account_id: caller.account_id,
        role,
    }))
}

/// `DELETE /sessions`: revokes the token used for this call.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Done>> {
    let token = auth::bearer(&headers).ok_or_else(ApiError::unauthorized)?;
    auth::logout(&state, token).await?;
    Ok(Json(Done { done: true }))
}

#[derive(Debug, Serialize)]
pub struct Done {
    pub done: bool,
}

#[derive(Debug, Serialize)]
pub struct Me {
    pub account_id: String,
    pub role: Role,
}

/// `GET /me`: who the token belongs to.
pub async fn me(caller: Caller) -> Json<Me> {
    Json(Me {
        account_id: caller.account_id,
        role: caller.role,
    })
}

#[derive(Debug, Serialize)]
pub struct Created {
    pub id: String,
}

/// `POST /accounts`: an operator creates an account.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewAccount>,
) -> ApiResult<Json<Created>> {
    caller.require(Role::Operator)?;
    let id = auth::create_account(&state, &body).await?;
    tracing::info!(account_id = %id, role = body.role.as_str(), "account created");
    Ok(Json(Created { id }))
}
