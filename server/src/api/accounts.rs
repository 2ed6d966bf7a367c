//! Sign-in, sign-out, two-factor setup, password changes, accounts and the audit trail.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flexwork_sync::{ErrorBody, LoginRequest};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{JsonBody, QueryParams};
use crate::AppState;
use crate::audit::{self, Event, Outcome};
use crate::auth::{self, Caller, ClientAddress, Duties, NewAccount, Permission, Role, Team};
use crate::error::{ApiError, ApiResult};

/// Signs in: a login, password and second factor for a bearer token.
///
/// Operators, enterprises and regulators also send the current code of their authenticator app
/// (`totp`) or one of their recovery codes (`recovery_code`). An account of such a role that
/// has not set up its second factor yet gets a setup-only token
/// (`second_factor_setup_required: true`), good only for `POST /me/totp`,
/// `POST /me/totp/confirm`, `GET /me` and `DELETE /sessions`. Failed attempts are throttled
/// per login and per address.
///
/// With `"cookie": true` (the web console) the token is not in the body: the answer sets it
/// in the `flexwork_session` cookie (`HttpOnly; Secure; SameSite=Strict`) and the body
/// carries `csrf_token`, which every later call with the cookie other than GET must send in
/// the `X-CSRF-Token` header, and `expires_at`. Such a session also ends after
/// `[console] session_idle_minutes` without a request (`401 session_expired`).
///
/// Who may call: anyone; no token needed.
#[utoipa::path(
    post,
    path = "/sessions",
    operation_id = "sign_in",
    tag = "sessions",
    request_body = SignIn,
    responses(
        (status = 200, description = "Signed in", body = SignedIn),
        (status = 400, description = "`invalid_json`: the body is not JSON", body = ErrorBody),
        (status = 401, description = "`invalid_credentials`: no account with that login and \
            password; `totp_required`: this account also needs its TOTP or a recovery code; \
            `invalid_totp`, `invalid_recovery_code`: the second factor is wrong",
            body = ErrorBody),
        (status = 403, description = "`account_suspended`; `csrf_token_invalid`: a cookie \
            sign-in from another site's page", body = ErrorBody),
        (status = 422, description = "`invalid_json`: a field is missing or of the wrong type",
            body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: wait before trying again",
            body = ErrorBody),
    ),
)]
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    JsonBody(body): JsonBody<SignIn>,
) -> ApiResult<Response> {
    if body.cookie {
        auth::require_same_origin(&headers)?;
    }
    let credentials = &body.credentials;
    let attempt = auth::Attempt {
        login: &credentials.login,
        password: &credentials.password,
        totp: credentials.totp.as_deref(),
        recovery_code: credentials.recovery_code.as_deref(),
        address,
    };
    let session = auth::login(&state, &attempt).await?;
    let signed_in = SignedIn {
        token: None,
        account_id: session.caller.account_id,
        role: session.caller.role.as_str().to_owned(),
        second_factor_setup_required: session.caller.setup_only,
        csrf_token: None,
        expires_at: None,
    };
    if !body.cookie {
        let body = SignedIn {
            token: Some(session.token),
            ..signed_in
        };
        return Ok(Json(body).into_response());
    }
    let (cookie, csrf_token, expires_at) = browser_session(&state, &session.token).await?;
    let body = SignedIn {
        csrf_token: Some(csrf_token),
        expires_at: Some(crate::rfc3339(expires_at)),
        ..signed_in
    };
    Ok(with_cookie(Json(body).into_response(), &cookie))
}

/// Makes a new token a browser session: the `Set-Cookie` value, its CSRF token and when it
/// expires at the latest.
async fn browser_session(state: &AppState, token: &str) -> ApiResult<(String, String, i64)> {
    let expires_at = auth::mark_cookie_session(state, token).await?;
    let cookie = auth::session_cookie_header(state, token, expires_at);
    Ok((cookie, auth::csrf_token(state, token), expires_at))
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// `POST /sessions` body: the credentials, and whether the session lives in a cookie.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct SignIn {
    #[serde(flatten)]
    pub credentials: LoginRequest,
    /// `true` for a browser session held in the `flexwork_session` cookie (the web
    /// console): the token is then not in the answer.
    #[serde(default)]
    pub cookie: bool,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn")
            .field("credentials", &self.credentials)
            .field("cookie", &self.cookie)
            .finish()
    }
}

/// A sign-in's answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SignedIn {
    /// The bearer token for later calls; absent for a cookie session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub account_id: String,
    pub role: String,
    /// True when the session may only be used to set up two-factor login, which this
    /// account must do before anything else.
    pub second_factor_setup_required: bool,
    /// A cookie session's CSRF token, for the `X-CSRF-Token` header of every call other
    /// than GET.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
    /// When a cookie session ends at the latest (it ends sooner when idle).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("account_id", &self.account_id)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Signs out: revokes the token used for this call. A browser session (cookie) is revoked
/// and its cookie cleared.
///
/// Who may call: any signed-in account, with a setup-only token too.
#[utoipa::path(
    delete,
    path = "/sessions",
    operation_id = "sign_out",
    tag = "sessions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The token is revoked", body = Done),
        (status = 401, description = "`unauthorized`: no valid bearer token; \
            `session_expired`", body = ErrorBody),
        (status = 403, description = "`csrf_token_invalid`", body = ErrorBody),
    ),
)]
pub async fn logout(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let cookie = auth::cookie_token(&headers);
    let token = auth::bearer(&headers)
        .map(str::to_owned)
        .or_else(|| cookie.clone())
        .ok_or_else(ApiError::unauthorized)?;
    auth::logout(&state, &token).await?;
    audit::record(&state, Event::by(&caller, "logout", Outcome::Ok)).await?;
    let response = Json(Done { done: true }).into_response();
    Ok(match cookie {
        Some(_) => with_cookie(response, &auth::cleared_cookie_header(&state)),
        None => response,
    })
}

/// Starts setting up two-factor sign-in: a new TOTP secret for an authenticator app.
///
/// Confirm it with `POST /me/totp/confirm`; until then sign-in does not ask for it.
///
/// Who may call: any signed-in account, with a setup-only token too.
#[utoipa::path(
    post,
    path = "/me/totp",
    operation_id = "start_totp_setup",
    tag = "sessions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The secret, as text and as an `otpauth://` URL",
            body = auth::totp::Enrollment),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 409, description = "`totp_already_enabled`", body = ErrorBody),
    ),
)]
pub async fn totp_setup(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<auth::totp::Enrollment>> {
    Ok(Json(auth::totp::enroll(&state, &caller).await?))
}

/// `POST /me/totp/confirm` body: the code the authenticator app shows now.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TotpCode {
    pub code: String,
}

/// Confirms two-factor sign-in with a code from the authenticator app.
///
/// Answers the recovery codes (shown this once) and a new full token; every earlier token of
/// the account is revoked. Called from a browser session, the new token goes into a new
/// session cookie and the body carries its `csrf_token` instead.
///
/// Who may call: any signed-in account, with a setup-only token too.
#[utoipa::path(
    post,
    path = "/me/totp/confirm",
    operation_id = "confirm_totp_setup",
    tag = "sessions",
    security(("bearer" = [])),
    request_body = TotpCode,
    responses(
        (status = 200, description = "Two-factor sign-in is on", body = auth::totp::Enabled),
        (status = 400, description = "`invalid_totp`: the code is not the current one; \
            `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 409, description = "`totp_already_enabled`; `totp_not_started`: call \
            `POST /me/totp` first", body = ErrorBody),
        (status = 422, description = "`invalid_json`: a field is missing or of the wrong type",
            body = ErrorBody),
    ),
)]
pub async fn totp_confirm(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody<TotpCode>,
) -> ApiResult<Response> {
    let mut enabled = auth::totp::confirm(&state, &caller, &body.code).await?;
    let browser = auth::cookie_token(&headers).is_some();
    match enabled.token.take() {
        Some(token) if browser => {
            let (cookie, csrf_token, _) = browser_session(&state, &token).await?;
            enabled.csrf_token = Some(csrf_token);
            Ok(with_cookie(Json(enabled).into_response(), &cookie))
        }
        token => {
            enabled.token = token;
            Ok(Json(enabled).into_response())
        }
    }
}

/// `POST /me/password` body.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordChange(<redacted>)")
    }
}

/// A new bearer token, replacing every earlier one of the account.
#[derive(Serialize, utoipa::ToSchema)]
pub struct NewToken {
    /// Absent when the call came from a browser session, which gets a new cookie instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The new browser session's CSRF token, when the call came from a browser session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewToken(<redacted>)")
    }
}

/// Changes the caller's password.
///
/// Every token and registered phone of the account is revoked and a new token returned
/// (from a browser session: in a new session cookie, with its `csrf_token` in the body).
/// Wrong current passwords count as failed sign-ins of the account.
///
/// Who may call: any signed-in account.
#[utoipa::path(
    post,
    path = "/me/password",
    operation_id = "change_password",
    tag = "sessions",
    security(("bearer" = [])),
    request_body = PasswordChange,
    responses(
        (status = 200, description = "Changed; use the new token", body = NewToken),
        (status = 400, description = "`weak_password`; `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token; \
            `invalid_credentials`: the current password is not right", body = ErrorBody),
        (status = 403, description = "`second_factor_setup_required`: a setup-only token",
            body = ErrorBody),
        (status = 422, description = "`invalid_json`: a field is missing or of the wrong type",
            body = ErrorBody),
        (status = 429, description = "`too_many_attempts`", body = ErrorBody),
    ),
)]
pub async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PasswordChange>,
) -> ApiResult<Response> {
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
        )
        .field("current_password"));
    }
    auth::validate_password(&body.new_password).map_err(|e| e.field("new_password"))?;
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
    if auth::cookie_token(&headers).is_some() {
        let (cookie, csrf_token, _) = browser_session(&state, &token).await?;
        let body = NewToken {
            token: None,
            csrf_token: Some(csrf_token),
        };
        return Ok(with_cookie(Json(body).into_response(), &cookie));
    }
    let body = NewToken {
        token: Some(token),
        csrf_token: None,
    };
    Ok(Json(body).into_response())
}

/// A reason, kept in the audit trail.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Reason {
    pub reason: String,
}

/// Suspends an account, with a reason.
///
/// Its tokens are revoked at once and it cannot sign in until reinstated.
///
/// Who may call: Permission `manage_accounts`: operators in the administrator team; nobody
/// suspends their own account.
#[utoipa::path(
    post,
    path = "/accounts/{id}/suspend",
    operation_id = "suspend_account",
    tag = "accounts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The account's id")),
    request_body = Reason,
    responses(
        (status = 200, description = "Suspended", body = Done),
        (status = 400, description = "`reason_required`; `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an administrator", body = ErrorBody),
        (status = 404, description = "`not_found`: no such account", body = ErrorBody),
        (status = 409, description = "`cannot_suspend_self`", body = ErrorBody),
        (status = 422, description = "`invalid_json`: a field is missing or of the wrong type",
            body = ErrorBody),
    ),
)]
pub async fn suspend(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Reason>,
) -> ApiResult<Json<Done>> {
    set_suspended(&state, &caller, &id, &body.reason, true).await
}

/// Lifts a suspension, with a reason.
///
/// Who may call: Permission `manage_accounts`: operators in the administrator team.
#[utoipa::path(
    post,
    path = "/accounts/{id}/reinstate",
    operation_id = "reinstate_account",
    tag = "accounts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The account's id")),
    request_body = Reason,
    responses(
        (status = 200, description = "Reinstated", body = Done),
        (status = 400, description = "`reason_required`; `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an administrator", body = ErrorBody),
        (status = 404, description = "`not_found`: no such account", body = ErrorBody),
        (status = 422, description = "`invalid_json`: a field is missing or of the wrong type",
            body = ErrorBody),
    ),
)]
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
    auth::set_suspended(state, id, suspended, Some(caller)).await?;
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

/// Filters of the audit trail.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only records of this account.
    pub actor: Option<String>,
    /// Only records of this action, e.g. `account_suspended`.
    pub action: Option<String>,
    /// At most this many records (default 100).
    pub limit: Option<i64>,
}

/// The audit trail, newest first.
///
/// Reading it is itself recorded.
///
/// Who may call: Permission `read_audit`: operators in the administrator or legal team.
#[utoipa::path(
    get,
    path = "/audit",
    operation_id = "read_audit_trail",
    tag = "accounts",
    security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "The records", body = Vec<audit::Record>),
        (status = 400, description = "`bad_request`: the query string is not understood",
            body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: neither administrator nor legal team",
            body = ErrorBody),
    ),
)]
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

/// The call did what it was asked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Done {
    pub done: bool,
}

/// The account behind a token.
#[derive(Debug, Serialize, utoipa::ToSchema)]
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
    /// For a browser session: its CSRF token (a reloaded page gets it back here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

/// Who the token belongs to and what it may do.
///
/// Who may call: any signed-in account, with a setup-only token too.
#[utoipa::path(
    get,
    path = "/me",
    operation_id = "me",
    tag = "sessions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account, its teams and permissions", body = Me),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
    ),
)]
pub async fn me(State(state): State<AppState>, caller: Caller, headers: HeaderMap) -> Json<Me> {
    let enterprise = caller.role == Role::Enterprise;
    let csrf_token = auth::cookie_token(&headers).map(|token| auth::csrf_token(&state, &token));
    Json(Me {
        csrf_token,
        permissions: caller.permissions(),
        teams: caller.duties.teams.clone(),
        organisation_id: enterprise.then(|| caller.organisation_id.clone()),
        enterprise_admin: enterprise.then_some(caller.duties.enterprise_admin),
        account_id: caller.account_id,
        role: caller.role,
    })
}

/// The id of what was created.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Created {
    pub id: String,
}

/// Creates an account of any role.
///
/// An operator needs at least one team; other roles have none. An enterprise account created
/// here is the administrator of a new organisation.
///
/// Who may call: Permission `manage_accounts`: operators in the administrator team.
#[utoipa::path(
    post,
    path = "/accounts",
    operation_id = "create_account",
    tag = "accounts",
    security(("bearer" = [])),
    request_body = NewAccount,
    responses(
        (status = 200, description = "Created", body = Created),
        (status = 400, description = "`invalid_login`, `weak_password`, `teams_required`, \
            `teams_not_allowed`; `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an administrator", body = ErrorBody),
        (status = 409, description = "`login_taken`", body = ErrorBody),
        (status = 422, description = "`invalid_json`: a field is missing or of the wrong type",
            body = ErrorBody),
    ),
)]
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

/// Turns off another account's two-factor sign-in, with a reason.
///
/// For an owner who lost the authenticator and the recovery codes: the secret and codes are
/// deleted and the tokens revoked; the owner sets up a new app at the next sign-in.
///
/// Who may call: Permission `manage_accounts`: operators in the administrator team; nobody
/// resets their own.
#[utoipa::path(
    post,
    path = "/accounts/{id}/second-factor/reset",
    operation_id = "reset_second_factor",
    tag = "accounts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The account's id")),
    request_body = Reason,
    responses(
        (status = 200, description = "Reset", body = Done),
        (status = 400, description = "`reason_required`; `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an administrator", body = ErrorBody),
        (status = 404, description = "`not_found`: no such account", body = ErrorBody),
        (status = 409, description = "`cannot_reset_own_second_factor`", body = ErrorBody),
    ),
)]
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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ArchiveQuery {
    /// Only the archives of this subject, such as `worker_application:<id>`.
    pub subject: Option<String>,
}

/// Archived materials of workers, newest first: metadata only, nothing personal.
///
/// Who may call: Permission `read_audit`: operators in the administrator and legal teams.
#[utoipa::path(
    get,
    path = "/archives",
    operation_id = "list_archives",
    tag = "audit",
    security(("bearer" = [])),
    params(ArchiveQuery),
    responses(
        (status = 200, description = "The archives", body = Vec<crate::archive::ArchiveRecord>),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
    ),
)]
pub async fn archives(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<ArchiveQuery>,
) -> ApiResult<Json<Vec<crate::archive::ArchiveRecord>>> {
    let records = crate::archive::list(&state, &caller, query.subject.as_deref()).await?;
    Ok(Json(records))
}

/// One archive's document in plaintext, checked against its content address, with a reason;
/// audited.
///
/// Who may call: Permission `reveal_personal_data`: operators in the reviewer and legal teams.
#[utoipa::path(
    post,
    path = "/archives/{id}/reveal",
    operation_id = "reveal_archive",
    tag = "audit",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The archive's id")),
    request_body = Reason,
    responses(
        (status = 200, description = "The archived document", body = serde_json::Value),
        (status = 400, description = "`reason_required`; `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such archive", body = ErrorBody),
    ),
)]
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
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TeamChange {
    pub teams: Vec<Team>,
    pub reason: String,
}

/// Sets another operator's teams, with a reason.
///
/// The operator's tokens are revoked so the change holds from their next sign-in.
///
/// Who may call: Permission `manage_accounts`: operators in the administrator team; nobody
/// changes their own teams.
#[utoipa::path(
    put,
    path = "/accounts/{id}/teams",
    operation_id = "set_operator_teams",
    tag = "accounts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The operator's account id")),
    request_body = TeamChange,
    responses(
        (status = 200, description = "Set", body = Done),
        (status = 400, description = "`reason_required`, `teams_required`, \
            `teams_not_allowed` (not an operator); `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an administrator", body = ErrorBody),
        (status = 404, description = "`not_found`: no such account", body = ErrorBody),
        (status = 409, description = "`cannot_change_own_teams`", body = ErrorBody),
        (status = 422, description = "`invalid_json`: a field is missing or of the wrong type",
            body = ErrorBody),
    ),
)]
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
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewStaff {
    pub login: String,
    pub password: String,
    pub display_name: String,
    /// Whether the new account is an administrator of the organisation too.
    #[serde(default)]
    pub admin: bool,
}

/// Adds an account acting for the caller's organisation.
///
/// As staff (publishes tasks, assigns workers, disputes completion) or as another
/// administrator (also confirms completion and manages staff).
///
/// Who may call: Permission `manage_staff`: an enterprise's administrator.
#[utoipa::path(
    post,
    path = "/enterprise/staff",
    operation_id = "add_enterprise_staff",
    tag = "accounts",
    security(("bearer" = [])),
    request_body = NewStaff,
    responses(
        (status = 200, description = "Added", body = Created),
        (status = 400, description = "`invalid_login`, `weak_password`; `invalid_json`",
            body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an enterprise administrator",
            body = ErrorBody),
        (status = 409, description = "`login_taken`", body = ErrorBody),
        (status = 422, description = "`invalid_json`: a field is missing or of the wrong type",
            body = ErrorBody),
    ),
)]
pub async fn add_staff(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewStaff>,
) -> ApiResult<Json<Created>> {
    caller.require(Permission::ManageStaff)?;
    // A new login answers whether it is taken: limited per organisation like applications.
    let source = format!("staff:{}", caller.organisation_id);
    auth::throttle_application(&state, Some(&source)).await?;
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
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StaffMember {
    pub id: String,
    pub login: String,
    pub display_name: String,
    pub admin: bool,
    pub suspended: bool,
}

/// The accounts acting for the caller's organisation.
///
/// Who may call: Permission `manage_staff`: an enterprise's administrator.
#[utoipa::path(
    get,
    path = "/enterprise/staff",
    operation_id = "list_enterprise_staff",
    tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The staff, oldest first", body = Vec<StaffMember>),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an enterprise administrator",
            body = ErrorBody),
    ),
)]
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
    audit::reason(reason, 1)
}
