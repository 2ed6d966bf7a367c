//! Sign-in, sign-out, two-factor setup, password changes, accounts and the audit trail.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use flexwork_sync::{LoginRequest, LoginResponse};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::JsonBody;
use crate::AppState;
use crate::audit::{self, Event, Outcome};
use crate::auth::{self, Caller, ClientAddress, NewAccount, Role};
use crate::error::{ApiError, ApiResult};

/// `POST /sessions`: exchanges a login, password and (for roles that need it) a TOTP or
/// recovery code for a new bearer token.
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    JsonBody(body): JsonBody<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    let attempt = auth::Attempt {
        login: &body.login,
        password: &body.password,
        totp: body.totp.as_deref(),
        recovery_code: body.recovery_code.as_deref(),
        address,
    };
    let session = auth::login(&state, &attempt).await?;

    Ok(Json(LoginResponse {
        token: session.token,
        account_id: session.caller.account_id,
        role: session.caller.role.as_str().to_owned(),
        second_factor_setup_required: session.caller.setup_only,
    }))
}

/// `DELETE /sessions`: revokes the token used for this call.
pub async fn logout(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> ApiResult<Json<Done>> {
    let token = auth::bearer(&headers).ok_or_else(ApiError::unauthorized)?;
    auth::logout(&state, token).await?;
    audit::record(&state, Event::by(&caller, "logout", Outcome::Ok)).await?;
    Ok(Json(Done { done: true }))
}

/// `POST /me/totp`: starts setting up two-factor sign-in.
pub async fn totp_setup(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<auth::totp::Enrollment>> {
    Ok(Json(auth::totp::enroll(&state, &caller).await?))
}

#[derive(Debug, Deserialize)]
pub struct TotpCode {
    pub code: String,
}

/// `POST /me/totp/confirm`: `{code}` from the app turns two-factor sign-in on; answers the
/// recovery codes (shown this once) and a new token, every earlier token being revoked.
pub async fn totp_confirm(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<TotpCode>,
) -> ApiResult<Json<auth::totp::Enabled>> {
    Ok(Json(
        auth::totp::confirm(&state, &caller, &body.code).await?,
    ))
}

#[derive(Deserialize)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordChange(<redacted>)")
    }
}

#[derive(Debug, Serialize)]
pub struct NewToken {
    pub token: String,
}

/// `POST /me/password`: changes the caller's password; every token and registered phone of
/// the account is revoked and a new token returned.
pub async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddress(address): ClientAddress,
    JsonBody(body): JsonBody<PasswordChange>,
) -> ApiResult<Json<NewToken>> {
    let row = sqlx::query("SELECT login, password_hash FROM accounts WHERE id = $1")
        .bind(&caller.account_id)
        .fetch_one(&state.db.pool)
        .await?;
    let stored: String = row.try_get("password_hash")?;
    // Guesses of the current password count like failed sign-ins of the account.
    let key = auth::login_key(&state, &row.try_get::<String, _>("login")?);
    let shown = address.clone();
    auth::begin_attempt(&state, &key, address.as_deref().unwrap_or_default(), shown).await?;
    if !auth::verify_password(&body.current_password, &stored) {
        audit::record(
            &state,
            Event::by(&caller, "password_changed", Outcome::Refused),
        )
        .await?;
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "the current password is not right",
        ));
    }
    auth::validate_password(&body.new_password)?;
    let hash = auth::hash_password(&body.new_password)?;
    sqlx::query("UPDATE accounts SET password_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(&caller.account_id)
        .execute(&state.db.pool)
        .await?;
    let reason = "password_changed";
    auth::device::revoke_all(&state, &caller.account_id, reason, Some(&caller)).await?;
    auth::revoke_all(&state, &caller.account_id).await?;
    sqlx::query("DELETE FROM login_failures WHERE login_key = $1")
        .bind(&key)
        .execute(&state.db.pool)
        .await?;
    let token = auth::issue_token(&state, &caller.account_id, caller.setup_only).await?;
    audit::record(&state, Event::by(&caller, "password_changed", Outcome::Ok)).await?;
    Ok(Json(NewToken { token }))
}

#[derive(Debug, Deserialize)]
pub struct Reason {
    pub reason: String,
}

/// `POST /accounts/{id}/suspend`: an operator suspends an account with `{reason}`; its tokens
/// are revoked at once and it cannot sign in until reinstated.
pub async fn suspend(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Reason>,
) -> ApiResult<Json<Done>> {
    set_suspended(&state, &caller, &id, &body.reason, true).await
}

/// `POST /accounts/{id}/reinstate`: lifts a suspension, with `{reason}`.
pub async fn reinstate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Reason>,
) -> ApiResult<Json<Done>> {
    set_suspended(&state, &caller, &id, &body.reason, false).await
}

async fn set_suspended(
    state: &AppState,
    caller: &Caller,
    id: &str,
    reason: &str,
    suspended: bool,
) -> ApiResult<Json<Done>> {
    caller.require(Role::Operator)?;
    if suspended && caller.account_id == id {
        let message = "an operator cannot suspend their own account; ask another operator";
        return Err(ApiError::conflict("cannot_suspend_self", message));
    }
    if reason.trim().is_empty() {
        let message = "give a reason; it is kept in the audit trail";
        return Err(ApiError::bad_request("reason_required", message));
    }
    let changed = sqlx::query("UPDATE accounts SET suspended = $1 WHERE id = $2")
        .bind(i64::from(suspended))
        .bind(id)
        .execute(&state.db.pool)
        .await?;
    if changed.rows_affected() == 0 {
        return Err(ApiError::not_found("account"));
    }
    if suspended {
        auth::device::revoke_all(state, id, "account_suspended", Some(caller)).await?;
        auth::revoke_all(state, id).await?;
    }
    let action = if suspended {
        "account_suspended"
    } else {
        "account_reinstated"
    };
    let event = Event::by(caller, action, Outcome::Ok)
        .object(format!("account:{id}"))
        .detail(serde_json::json!({ "reason": reason }));
    audit::record(state, event).await?;
    Ok(Json(Done { done: true }))
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub limit: Option<i64>,
}

/// `GET /audit?actor=&action=&limit=`: the audit trail, newest first (operators); reading it
/// is itself recorded.
pub async fn audit_log(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Query(query): axum::extract::Query<AuditQuery>,
) -> ApiResult<Json<Vec<audit::Record>>> {
    caller.require(Role::Operator)?;
    let limit = query.limit.unwrap_or(100);
    let records = audit::list(
        &state,
        query.actor.as_deref(),
        query.action.as_deref(),
        limit,
    )
    .await?;
    let event = Event::by(&caller, "audit_read", Outcome::Ok)
        .detail(serde_json::json!({ "records": records.len() }));
    audit::record(&state, event).await?;
    Ok(Json(records))
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
    let event = Event::by(&caller, "account_created", Outcome::Ok)
        .object(format!("account:{id}"))
        .detail(serde_json::json!({ "role": body.role.as_str() }));
    audit::record(&state, event).await?;
    Ok(Json(Created { id }))
}
