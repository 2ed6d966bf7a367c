//! Sign-in, sign-out, two-factor setup, password changes, accounts and the audit trail.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use flexwork_sync::{LoginRequest, LoginResponse};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{JsonBody, QueryParams};
use crate::AppState;
use crate::audit::{self, Event, Outcome};
use crate::auth::{self, Caller, ClientAddress, Duties, NewAccount, Permission, Role, Team};
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

/// `POST /me/password`: changes the caller's password; every token of the account is revoked
/// and a new one returned.
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
    caller.require(Permission::ManageAccounts)?;
    if suspended && caller.account_id == id {
        let message = "an operator cannot suspend their own account; ask another operator";
        return Err(ApiError::conflict("cannot_suspend_self", message));
    }
    let reason = required(reason)?;
    auth::set_suspended(state, id, suspended).await?;
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
    caller.require(Permission::ReadAudit)?;
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
    /// An operator's teams.
    pub teams: Vec<Team>,
    /// For enterprise accounts: the organisation acted for, and whether as its administrator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organisation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enterprise_admin: Option<bool>,
    /// Everything this account may do.
    pub permissions: Vec<Permission>,
}

/// `GET /me`: who the token belongs to and what it may do.
pub async fn me(caller: Caller) -> Json<Me> {
    let enterprise = caller.role == Role::Enterprise;
    Json(Me {
        permissions: caller.permissions(),
        teams: caller.duties.teams.clone(),
        organisation_id: enterprise.then(|| caller.organisation_id.clone()),
        enterprise_admin: enterprise.then_some(caller.duties.enterprise_admin),
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
    caller.require(Permission::ManageAccounts)?;
    let body = NewAccount {
        organisation_id: None,
        ..body
    };
    let id = auth::create_account(&state, &body).await?;
    tracing::info!(account_id = %id, role = body.role.as_str(), "account created");
    let event = Event::by(&caller, "account_created", Outcome::Ok)
        .object(format!("account:{id}"))
        .detail(serde_json::json!({ "role": body.role.as_str(), "teams": body.teams }));
    audit::record(&state, event).await?;
    Ok(Json(Created { id }))
}

/// `POST /accounts/{id}/second-factor/reset`: an administrator turns off another account's
/// two-factor sign-in, with `{reason}`, when its owner lost the authenticator and the recovery
/// codes; the owner sets up a new one at the next sign-in.
pub async fn reset_second_factor(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Reason>,
) -> ApiResult<Json<Done>> {
    caller.require(Permission::ManageAccounts)?;
    if caller.account_id == id {
        let message = "nobody resets their own second factor; ask another administrator";
        return Err(ApiError::conflict(
            "cannot_reset_own_second_factor",
            message,
        ));
    }
    let reason = required(&body.reason)?;
    auth::reset_second_factor(&state, &id).await?;
    let event = Event::by(&caller, "second_factor_reset", Outcome::Ok)
        .object(format!("account:{id}"))
        .detail(serde_json::json!({ "reason": reason }));
    audit::record(&state, event).await?;
    Ok(Json(Done { done: true }))
}

#[derive(Debug, Deserialize)]
pub struct ArchiveQuery {
    pub subject: Option<String>,
}

/// `GET /archives?subject=`: archived materials, metadata only (administrators, legal).
pub async fn archives(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<ArchiveQuery>,
) -> ApiResult<Json<Vec<crate::archive::ArchiveRecord>>> {
    let records = crate::archive::list(&state, &caller, query.subject.as_deref()).await?;
    Ok(Json(records))
}

/// `POST /archives/{id}/reveal`: one archive's document, with `{reason}` (reviewers, legal);
/// audited.
pub async fn reveal_archive(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Reason>,
) -> ApiResult<Json<serde_json::Value>> {
    let document = crate::archive::reveal(&state, &caller, &id, &body.reason).await?;
    Ok(Json(document))
}

/// `PUT /accounts/{id}/teams` body.
#[derive(Debug, Deserialize)]
pub struct TeamChange {
    pub teams: Vec<Team>,
    pub reason: String,
}

/// `PUT /accounts/{id}/teams`: an administrator sets another operator's teams, with a reason;
/// the operator's tokens are revoked so the change holds from their next sign-in.
pub async fn set_teams(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<TeamChange>,
) -> ApiResult<Json<Done>> {
    caller.require(Permission::ManageAccounts)?;
    if caller.account_id == id {
        let message = "nobody changes their own teams; ask another administrator";
        return Err(ApiError::conflict("cannot_change_own_teams", message));
    }
    let reason = required(&body.reason)?;
    if body.teams.is_empty() {
        let message = "an operator needs at least one team; suspend the account instead";
        return Err(ApiError::bad_request("teams_required", message));
    }
    let row = sqlx::query("SELECT role, duties FROM accounts WHERE id = $1")
        .bind(&id)
        .fetch_optional(&state.db.pool)
        .await?
        .ok_or_else(|| ApiError::not_found("account"))?;
    if row.try_get::<String, _>("role")? != Role::Operator.as_str() {
        let message = "only operator accounts belong to teams";
        return Err(ApiError::bad_request("teams_not_allowed", message));
    }
    let before = Duties::parse(Role::Operator, &row.try_get::<String, _>("duties")?)?;
    let mut teams = body.teams.clone();
    teams.sort();
    teams.dedup();
    let after = Duties {
        teams,
        enterprise_admin: false,
    };
    sqlx::query("UPDATE accounts SET duties = $1 WHERE id = $2")
        .bind(after.store(Role::Operator))
        .bind(&id)
        .execute(&state.db.pool)
        .await?;
    auth::revoke_all(&state, &id).await?;
    let event = Event::by(&caller, "teams_changed", Outcome::Ok)
        .object(format!("account:{id}"))
        .detail(serde_json::json!({
            "before": before.teams, "after": after.teams, "reason": reason,
        }));
    audit::record(&state, event).await?;
    Ok(Json(Done { done: true }))
}

/// `POST /enterprise/staff` body.
#[derive(Debug, Deserialize)]
pub struct NewStaff {
    pub login: String,
    pub password: String,
    pub display_name: String,
    /// Whether the new account is an administrator of the organisation too.
    #[serde(default)]
    pub admin: bool,
}

/// `POST /enterprise/staff`: an enterprise's administrator adds an account that acts for the
/// same organisation, as staff (publishes tasks, assigns workers, disputes completion) or as
/// another administrator (also confirms completion and manages staff).
pub async fn add_staff(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewStaff>,
) -> ApiResult<Json<Created>> {
    caller.require(Permission::ManageStaff)?;
    let account = NewAccount {
        login: body.login,
        password: body.password,
        role: Role::Enterprise,
        display_name: body.display_name,
        teams: Vec::new(),
        organisation_id: Some(caller.organisation_id.clone()),
    };
    let id = auth::create_account(&state, &account).await?;
    if body.admin {
        sqlx::query("UPDATE accounts SET duties = 'admin' WHERE id = $1")
            .bind(&id)
            .execute(&state.db.pool)
            .await?;
    }
    let event = Event::by(&caller, "staff_added", Outcome::Ok)
        .object(format!("account:{id}"))
        .detail(serde_json::json!({
            "organisation": caller.organisation_id, "admin": body.admin,
        }));
    audit::record(&state, event).await?;
    Ok(Json(Created { id }))
}

/// A staff member of the caller's organisation, as its administrators see it.
#[derive(Debug, Serialize)]
pub struct StaffMember {
    pub id: String,
    pub login: String,
    pub display_name: String,
    pub admin: bool,
    pub suspended: bool,
}

/// `GET /enterprise/staff`: the accounts acting for the caller's organisation.
pub async fn list_staff(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<StaffMember>>> {
    caller.require(Permission::ManageStaff)?;
    let rows = sqlx::query(
        "SELECT id, login, display_name, duties, suspended FROM accounts \
         WHERE role = 'enterprise' AND organisation_id = $1 ORDER BY created_at",
    )
    .bind(&caller.organisation_id)
    .fetch_all(&state.db.pool)
    .await?;
    let staff = rows
        .iter()
        .map(|row| {
            Ok(StaffMember {
                id: row.try_get("id")?,
                login: row.try_get("login")?,
                display_name: row.try_get("display_name")?,
                admin: row.try_get::<String, _>("duties")? == "admin",
                suspended: row.try_get::<i64, _>("suspended")? != 0,
            })
        })
        .collect::<ApiResult<_>>()?;
    Ok(Json(staff))
}

fn required(reason: &str) -> ApiResult<&str> {
    let reason = reason.trim();
    if reason.is_empty() {
        let message = "give a reason; it is kept in the audit trail";
        return Err(ApiError::bad_request("reason_required", message));
    }
    Ok(reason)
}
