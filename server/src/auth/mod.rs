//! Accounts, passwords, two-factor login and bearer tokens.
//!
//! Passwords are hashed with Argon2id. Accounts of the roles that sign in on the web
//! (operators and enterprises by default) also need a TOTP code (RFC 6238) from an
//! authenticator app, or one of their one-time recovery codes; a code is never accepted
//! twice. Until such an account has set up its authenticator, its password alone yields a
//! token good for nothing but that setup. Failed sign-ins are counted per account and per
//! address, and too many in the window are refused before any password is checked.
//!
//! A sign-in issues a new random 256-bit token; only its SHA-256 is stored, so a copy of the
//! database does not let anyone act as a user. Tokens are revoked at sign-out, at a password
//! change and when the account is suspended. Each request's token becomes a [`Caller`]
//! (account id and role), which every handler checks against the object it touches.
//! Workers' phones sign their requests with a registered device key instead ([`device`]);
//! such a request yields the same [`Caller`].

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use rand::RngCore;
use serde::Deserialize;
use sqlx::Row;

use axum::http::StatusCode;

use crate::audit::{self, Event, Outcome};
use crate::error::{ApiError, ApiResult};
use crate::{AppState, new_id, now_ms};

pub mod device;
pub mod roles;
pub mod totp;

pub use roles::{Caller, Duties, Permission, Role, Team, WorkScope};

/// A new account's details.
#[derive(Clone, Deserialize, utoipa::ToSchema)]
pub struct NewAccount {
    pub login: String,
    pub password: String,
    pub role: Role,
    pub display_name: String,
    /// An operator's teams; at least one is needed.
    #[serde(default)]
    pub teams: Vec<Team>,
    /// For an enterprise staff account: the organisation (its administrator's account id)
    /// it acts for. Without it an enterprise account is the administrator of a new one.
    #[serde(skip)]
    pub organisation_id: Option<String>,
}

impl std::fmt::Debug for NewAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAccount")
            .field("login", &self.login)
            .field("password", &"<redacted>")
            .field("role", &self.role)
            .field("teams", &self.teams)
            .finish_non_exhaustive()
    }
}

/// Creates an account and returns its id.
pub async fn create_account(state: &AppState, account: &NewAccount) -> ApiResult<String> {
    validate_new_account(account)?;
    if login_in_use(state, &account.login).await? {
        return Err(ApiError::conflict(
            "login_taken",
            "that login is already in use",
        ));
    }
    let hash = hash_password(&account.password)?;
    let id = new_id();
    let result = sqlx::query(
        "INSERT INTO accounts (id, login, role, display_name, password_hash, created_at, \
         duties, organisation_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
    )
    .bind(&id)
    .bind(&account.login)
    .bind(account.role.as_str())
    .bind(&account.display_name)
    .bind(hash)
    .bind(now_ms())
    .bind(new_account_duties(account).store(account.role))
    .bind(match account.role {
        Role::Enterprise => account
            .organisation_id
            .clone()
            .unwrap_or_else(|| id.clone()),
        _ => id.clone(),
    })
    .execute(&state.db.pool)
    .await?;

    if result.rows_affected() == 0 {
        return Err(ApiError::conflict(
            "login_taken",
            "that login is already in use",
        ));
    }
    Ok(id)
}

pub(crate) fn validate_password(password: &str) -> ApiResult<()> {
    if password.chars().count() < 10 {
        let message = "a password needs at least 10 characters";
        return Err(ApiError::bad_request("weak_password", message));
    }
    Ok(())
}

/// Refuses logins outside `[A-Za-z0-9._-@]{3,64}`, and logins holding what free-text masking
/// would hide (seven digits in a row, or ten in groups like `138.1234.5678`): a login is
/// shown unmasked, so it must not be a phone, card or ID number.
pub(crate) fn validate_login(login: &str) -> ApiResult<()> {
    let login_ok = (3..=64).contains(&login.chars().count())
        && login
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if !login_ok {
        let message = "a login is 3 to 64 letters, digits, dots, dashes, underscores or @";
        return Err(ApiError::bad_request("invalid_login", message));
    }
    // The free-text rule: seven digits in a row, or ten in groups (`138.1234.5678`).
    if crate::identity::redact_numbers(login) != login {
        let message = "a login is shown to staff unmasked: choose one that is not a phone, card \
                       or ID number";
        return Err(ApiError::bad_request("invalid_login", message));
    }
    Ok(())
}

/// Whether `login` belongs to an account or to a pending application of either kind.
pub(crate) async fn login_in_use(state: &AppState, login: &str) -> ApiResult<bool> {
    let row = sqlx::query(
        "SELECT 1 AS hit FROM accounts WHERE LOWER(login) = LOWER($1) \
         UNION ALL SELECT 1 AS hit FROM worker_applications \
         WHERE LOWER(login) = LOWER($1) AND state = 'pending' \
         UNION ALL SELECT 1 AS hit FROM enterprise_applications \
         WHERE LOWER(login) = LOWER($1) AND state = 'pending'",
    )
    .bind(login)
    .fetch_optional(&state.db.pool)
    .await?;
    Ok(row.is_some())
}

/// Turns the database's refusal of a second account with one login into `409 login_taken`.
pub(crate) fn login_clash(e: sqlx::Error) -> ApiError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            ApiError::conflict("login_taken", "that login is already in use")
        }
        _ => e.into(),
    }
}

fn validate_new_account(account: &NewAccount) -> ApiResult<()> {
    validate_login(&account.login)?;
    if account.password.chars().count() < 10 {
        let message = "a password needs at least 10 characters";
        return Err(ApiError::bad_request("weak_password", message));
    }
    match account.role {
        Role::Operator if account.teams.is_empty() => {
            let message = "an operator account needs at least one team: reviewer, risk, \
                           finance, legal, welfare, support, regulator_liaison or administrator";
            Err(ApiError::bad_request("teams_required", message))
        }
        Role::Operator => Ok(()),
        _ if !account.teams.is_empty() => {
            let message = "only operator accounts belong to teams";
            Err(ApiError::bad_request("teams_not_allowed", message))
        }
        _ => Ok(()),
    }
}

/// A new account's duties: an operator's teams; an enterprise account without an
/// organisation is the administrator of its own.
fn new_account_duties(account: &NewAccount) -> Duties {
    Duties {
        teams: account.teams.clone(),
        enterprise_admin: account.role == Role::Enterprise && account.organisation_id.is_none(),
    }
}

pub(crate) fn hash_password(password: &str) -> ApiResult<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(ApiError::internal)?;
    let hash = Argon2::default().hash_password(password.as_bytes(), &salt);

    Ok(hash.map_err(ApiError::internal)?.to_string())
}

pub(crate) fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

/// What a sign-in presents.
pub struct Attempt<'a> {
    pub login: &'a str,
    pub password: &'a str,
    pub totp: Option<&'a str>,
    pub recovery_code: Option<&'a str>,
    /// The client's address, for throttling and the audit trail.
    pub address: Option<String>,
}

impl std::fmt::Debug for Attempt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attempt")
            .field("login", &self.login)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// A successful sign-in.
#[derive(Debug)]
pub struct Session {
    pub token: String,
    pub caller: Caller,
}

/// Checks a sign-in and issues a token: a full one, or one good only for setting up
/// two-factor login when the account's role needs it and it is not set up yet.
pub async fn login(state: &AppState, attempt: &Attempt<'_>) -> ApiResult<Session> {
    let key = login_key(state, attempt.login);
    let address = attempt.address.clone().unwrap_or_default();
    begin_attempt(state, &key, &address, attempt.address.clone()).await?;

    let row = sqlx::query(
        "SELECT id, role, duties, organisation_id, password_hash, totp_enabled, totp_secret, \
         totp_last_step, suspended FROM accounts WHERE LOWER(login) = LOWER($1)",
    )
    .bind(attempt.login)
    .fetch_optional(&state.db.pool)
    .await?;
    let Some(row) = row else {
        // Spend the same time as a wrong password, so logins cannot be probed by timing.
        verify_password(attempt.password, dummy_hash());
        return Err(failed(state, attempt, None, "unknown_login", invalid_credentials()).await);
    };

    let stored: String = row.try_get("password_hash")?;
    let caller = caller_from_row(&row, false)?;
    if !verify_password(attempt.password, &stored) {
        let refusal = invalid_credentials();
        return Err(failed(state, attempt, Some(&caller), "password", refusal).await);
    }
    if row.try_get::<i64, _>("suspended")? != 0 {
        let event = Event::by(&caller, "login", Outcome::Refused)
            .detail(serde_json::json!({ "reason": "suspended" }))
            .address(attempt.address.clone());
        audit::record(state, event).await?;
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "account_suspended",
            "this account is suspended; ask the platform's operators",
        ));
    }

    let second_factor = if row.try_get::<i64, _>("totp_enabled")? != 0 {
        let secret: Option<String> = row.try_get("totp_secret")?;
        let last_step: i64 = row.try_get("totp_last_step")?;
        match (attempt.totp, attempt.recovery_code) {
            (None, None) => return Err(totp_required()),
            (Some(code), _) => {
                let secret = secret.ok_or_else(|| ApiError::internal("TOTP secret missing"))?;
                if !totp::accept(state, &caller.account_id, &secret, last_step, code).await? {
                    let refusal = ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "invalid_totp",
                        "that code is wrong, expired or already used; wait for the next one",
                    )
                    .field("totp");
                    return Err(failed(state, attempt, Some(&caller), "totp", refusal).await);
                }
                "totp"
            }
            (None, Some(code)) => {
                if !totp::use_recovery_code(state, &caller.account_id, code).await? {
                    let refusal = ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "invalid_recovery_code",
                        "that recovery code is wrong or was already used",
                    )
                    .field("recovery_code");
                    let which = "recovery_code";
                    return Err(failed(state, attempt, Some(&caller), which, refusal).await);
                }
                "recovery_code"
            }
        }
    } else {
        "none"
    };

    let setup_only =
        second_factor == "none" && state.config.login.require_totp_roles.contains(&caller.role);
    let token = issue_token(state, &caller.account_id, setup_only).await?;
    sqlx::query("DELETE FROM login_failures WHERE login_key = $1")
        .bind(&key)
        .execute(&state.db.pool)
        .await?;
    let event = Event::by(&caller, "login", Outcome::Ok)
        .detail(serde_json::json!({ "second_factor": second_factor, "setup_only": setup_only }))
        .address(attempt.address.clone());
    audit::record(state, event).await?;
    Ok(Session {
        token,
        caller: Caller {
            setup_only,
            ..caller
        },
    })
}

/// The throttling key of a login: a keyed hash (HMAC under the index key), so the table of
/// failures holds no login in the clear and none can be found by trying candidates.
pub(crate) fn login_key(state: &AppState, login: &str) -> String {
    crate::privacy::lookup_hash(state, "login", &login.trim().to_lowercase())
}

/// Records an attempt before anything is checked, then refuses it when the account or the
/// address has more attempts in the window than allowed. Recording first makes the limit
/// hold under concurrent requests: the n-th recorded attempt always counts at least n. A
/// successful attempt removes the account's records; a failed one stays as its failure.
pub(crate) async fn begin_attempt(
    state: &AppState,
    key: &str,
    address: &str,
    shown_address: Option<String>,
) -> ApiResult<()> {
    sqlx::query("INSERT INTO login_failures (id, login_key, address, at) VALUES ($1, $2, $3, $4)")
        .bind(new_id())
        .bind(key)
        .bind(address)
        .bind(now_ms())
        .execute(&state.db.pool)
        .await?;
    let refused = throttle(state, key, address).await;
    if refused.is_err() {
        let event = Event::anonymous("login", Outcome::Refused)
            .detail(serde_json::json!({ "reason": "throttled" }))
            .address(shown_address);
        audit::record(state, event).await?;
    }
    refused
}

/// Refuses when the account or the address has more attempts in the window than allowed.
async fn throttle(state: &AppState, key: &str, address: &str) -> ApiResult<()> {
    let policy = &state.config.login;
    let since = now_ms() - policy.window_secs * 1_000;
    let count = |sql: &'static str, value: String| async move {
        let row = sqlx::query(sql)
            .bind(value)
            .bind(since)
            .fetch_one(&state.db.pool)
            .await?;
        row.try_get::<i64, _>("n")
    };
    let per_account = count(
        "SELECT COUNT(*) AS n FROM login_failures WHERE login_key = $1 AND at > $2",
        key.to_owned(),
    )
    .await?;
    let per_address = count(
        "SELECT COUNT(*) AS n FROM login_failures \
         WHERE address = $1 AND at > $2 AND login_key <> 'application'",
        address.to_owned(),
    )
    .await?;
    if per_account > policy.max_failures_per_account
        || (!address.is_empty() && per_address > policy.max_failures_per_address)
    {
        let minutes = (policy.window_secs + 59) / 60;
        let message = format!("too many failed sign-ins; try again in up to {minutes} minutes");
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            message,
        ));
    }
    Ok(())
}

/// Counts an application from `address` and refuses it when the address sent more than
/// `[login] max_applications_per_address` in the window: an application answers whether its
/// login is taken, so without a limit it would let anyone list the logins in use.
pub(crate) async fn throttle_application(state: &AppState, address: Option<&str>) -> ApiResult<()> {
    let Some(address) = address else {
        return Ok(());
    };
    let policy = &state.config.login;
    let now = now_ms();
    sqlx::query(
        "INSERT INTO login_failures (id, login_key, address, at) \
         VALUES ($1, 'application', $2, $3)",
    )
    .bind(new_id())
    .bind(address)
    .bind(now)
    .execute(&state.db.pool)
    .await?;
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM login_failures \
         WHERE address = $1 AND at > $2 AND login_key = 'application'",
    )
    .bind(address)
    .bind(now - policy.window_secs * 1_000)
    .fetch_one(&state.db.pool)
    .await?;
    if row.try_get::<i64, _>("n")? > policy.max_applications_per_address {
        let event = Event::anonymous("application", Outcome::Refused)
            .detail(serde_json::json!({ "reason": "throttled" }))
            .address(Some(address.to_owned()));
        audit::record(state, event).await?;
        let minutes = (policy.window_secs + 59) / 60;
        let message = format!(
            "too many applications from this address; try again in up to {minutes} minutes"
        );
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            message,
        ));
    }
    Ok(())
}

/// Audits a failed sign-in, and returns the refusal to send.
async fn failed(
    state: &AppState,
    attempt: &Attempt<'_>,
    caller: Option<&Caller>,
    reason: &'static str,
    refusal: ApiError,
) -> ApiError {
    // The attempt was recorded before it was checked; its record stays as this failure.
    let event = match caller {
        Some(caller) => Event::by(caller, "login", Outcome::Refused),
        None => Event::anonymous("login", Outcome::Refused),
    };
    let event = event
        .detail(serde_json::json!({ "reason": reason }))
        .address(attempt.address.clone());
    if let Err(e) = audit::record(state, event).await {
        return e;
    }
    refusal
}

fn totp_required() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "totp_required",
        "this account also needs the code from its authenticator app (or a recovery code)",
    )
    .field("totp")
}

/// An Argon2id hash of a random password, used to equalise timing for unknown logins.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&new_id()).unwrap_or_default())
}

fn invalid_credentials() -> ApiError {
    let message = "that login and password do not match an account";
    ApiError::new(
        axum::http::StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        message,
    )
    .field("password")
}

/// Issues a new token for `account_id`; a `setup_only` one is good only for setting up
/// two-factor login.
pub(crate) async fn issue_token(
    state: &AppState,
    account_id: &str,
    setup_only: bool,
) -> ApiResult<String> {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let token = hex::encode(raw);
    let now = now_ms();
    let expires = now + state.config.token_ttl_hours * 3_600_000;

    let expires = if setup_only {
        now + 15 * 60_000
    } else {
        expires
    };
    sqlx::query(
        "INSERT INTO api_tokens (token_hash, account_id, created_at, expires_at, scope) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash(&token))
    .bind(account_id)
    .bind(now)
    .bind(expires)
    .bind(if setup_only { "setup" } else { "full" })
    .execute(&state.db.pool)
    .await?;
    Ok(token)
}

/// Revokes every token and every registered phone of an account (password change,
/// suspension, new second factor).
pub(crate) async fn revoke_all(state: &AppState, account_id: &str) -> ApiResult<()> {
    device::revoke_all(state, account_id, "sessions_revoked", None).await?;
    delete_tokens(state, account_id).await
}

async fn delete_tokens(state: &AppState, account_id: &str) -> ApiResult<()> {
    sqlx::query("DELETE FROM api_tokens WHERE account_id = $1")
        .bind(account_id)
        .execute(&state.db.pool)
        .await?;
    Ok(())
}

/// Why an update of one account changed nothing: `404` when it does not exist, else
/// `conflict`.
async fn missing_or(state: &AppState, account_id: &str, conflict: ApiError) -> ApiError {
    let exists = sqlx::query("SELECT 1 AS hit FROM accounts WHERE id = $1")
        .bind(account_id)
        .fetch_optional(&state.db.pool)
        .await;
    match exists {
        Ok(None) => ApiError::not_found("account"),
        Ok(Some(_)) => conflict,
        Err(e) => e.into(),
    }
}

/// Suspends an account (revoking every token) or lifts its suspension. Refuses
/// (`409 already_suspended` / `not_suspended`) when the account is already so, so the audit
/// trail holds one suspension per suspension.
pub async fn set_suspended(
    state: &AppState,
    account_id: &str,
    suspended: bool,
    actor: Option<&Caller>,
) -> ApiResult<()> {
    if suspended && is_last_administrator(state, account_id).await? {
        let message = "this is the last active administrator; make another one first";
        return Err(ApiError::conflict("last_administrator", message));
    }
    let changed =
        sqlx::query("UPDATE accounts SET suspended = $1 WHERE id = $2 AND suspended = $3")
            .bind(i64::from(suspended))
            .bind(account_id)
            .bind(i64::from(!suspended))
            .execute(&state.db.pool)
            .await?;
    if changed.rows_affected() == 0 {
        let conflict = if suspended {
            ApiError::conflict("already_suspended", "the account is already suspended")
        } else {
            ApiError::conflict("not_suspended", "the account is not suspended")
        };
        return Err(missing_or(state, account_id, conflict).await);
    }
    if suspended {
        // The phones first, with the reason and who suspended; then the tokens.
        device::revoke_all(state, account_id, "account_suspended", actor).await?;
        delete_tokens(state, account_id).await?;
    }
    Ok(())
}

/// Turns two-factor sign-in off for an account whose owner lost their authenticator and
/// recovery codes: the secret and the codes are deleted and every token revoked, so the next
/// sign-in with the password yields a setup-only token and the owner sets up a new app.
pub async fn reset_second_factor(state: &AppState, account_id: &str) -> ApiResult<()> {
    let changed = sqlx::query(
        "UPDATE accounts SET totp_enabled = 0, totp_secret = NULL, totp_last_step = 0 \
         WHERE id = $1 AND totp_enabled = 1",
    )
    .bind(account_id)
    .execute(&state.db.pool)
    .await?;
    if changed.rows_affected() == 0 {
        let message = "this account has no second factor set up; nothing to reset";
        let conflict = ApiError::conflict("no_second_factor", message);
        return Err(missing_or(state, account_id, conflict).await);
    }
    sqlx::query("DELETE FROM recovery_codes WHERE account_id = $1")
        .bind(account_id)
        .execute(&state.db.pool)
        .await?;
    revoke_all(state, account_id).await
}

/// Whether the account is an active administrator and no other active one exists.
async fn is_last_administrator(state: &AppState, account_id: &str) -> ApiResult<bool> {
    let rows =
        sqlx::query("SELECT id, duties FROM accounts WHERE role = 'operator' AND suspended = 0")
            .fetch_all(&state.db.pool)
            .await?;
    let mut target = false;
    let mut others = 0;
    for row in rows {
        let duties = Duties::parse(Role::Operator, &row.try_get::<String, _>("duties")?)?;
        if duties.teams.contains(&Team::Administrator) {
            if row.try_get::<String, _>("id")? == account_id {
                target = true;
            } else {
                others += 1;
            }
        }
    }
    Ok(target && others == 0)
}

/// The id of the account with this login (compared without regard to case).
pub async fn account_id_of(state: &AppState, login: &str) -> ApiResult<String> {
    let row = sqlx::query("SELECT id FROM accounts WHERE LOWER(login) = LOWER($1)")
        .bind(login)
        .fetch_optional(&state.db.pool)
        .await?
        .ok_or_else(|| ApiError::not_found("account"))?;
    Ok(row.try_get("id")?)
}

/// Revokes one token.
pub async fn logout(state: &AppState, token: &str) -> ApiResult<()> {
    sqlx::query("DELETE FROM api_tokens WHERE token_hash = $1")
        .bind(token_hash(token))
        .execute(&state.db.pool)
        .await?;
    Ok(())
}

fn token_hash(token: &str) -> String {
    flexwork_sync::ContentHash::of(token.as_bytes()).to_hex()
}

fn caller_from_row(row: &sqlx::any::AnyRow, setup_only: bool) -> ApiResult<Caller> {
    let role: String = row.try_get("role")?;
    let role = Role::parse(&role).ok_or_else(|| ApiError::internal("unknown role in database"))?;
    let duties: String = row.try_get("duties")?;
    let account_id: String = row.try_get("id")?;
    let organisation_id: Option<String> = row.try_get("organisation_id")?;
    Ok(Caller {
        organisation_id: organisation_id.unwrap_or_else(|| account_id.clone()),
        account_id,
        duties: Duties::parse(role, &duties)?,
        role,
        setup_only,
        address: None,
    })
}

/// The bearer token of a request, if it has one.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    // The scheme name is case-insensitive (RFC 9110).
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

async fn caller_for_token(state: &AppState, token: &str) -> ApiResult<Caller> {
    let row = sqlx::query(
        "SELECT a.id, a.role, a.duties, a.organisation_id, t.scope, t.expires_at, t.cookie, \
         t.last_seen_at FROM api_tokens t JOIN accounts a ON a.id = t.account_id \
         WHERE t.token_hash = $1 AND a.suspended = 0 \
         AND NOT EXISTS (SELECT 1 FROM accounts o \
                         WHERE o.id = a.organisation_id AND o.suspended = 1)",
    )
    .bind(token_hash(token))
    .fetch_optional(&state.db.pool)
    .await?;

    let row = row.ok_or_else(ApiError::unauthorized)?;
    let now = now_ms();
    let cookie = row.try_get::<i64, _>("cookie")? != 0;
    let expires_at: i64 = row.try_get("expires_at")?;
    if expires_at <= now {
        return Err(if cookie {
            session_expired()
        } else {
            ApiError::unauthorized()
        });
    }
    if cookie {
        let last_seen = row.try_get::<Option<i64>, _>("last_seen_at")?.unwrap_or(0);
        let idle_ms = state.config.console.session_idle_minutes * 60_000;
        if now - last_seen > idle_ms {
            // Ended for good: a later request with the same cookie is expired too.
            sqlx::query("UPDATE api_tokens SET expires_at = $1 WHERE token_hash = $2")
                .bind(now)
                .bind(token_hash(token))
                .execute(&state.db.pool)
                .await?;
            return Err(session_expired());
        }
        // Minutes matter, not milliseconds: a burst of requests writes once.
        sqlx::query(
            "UPDATE api_tokens SET last_seen_at = $1 WHERE token_hash = $2 \
             AND (last_seen_at IS NULL OR last_seen_at < $1 - 10000)",
        )
        .bind(now)
        .bind(token_hash(token))
        .execute(&state.db.pool)
        .await?;
    }
    let scope: String = row.try_get("scope")?;
    caller_from_row(&row, scope == "setup")
}

fn session_expired() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "session_expired",
        "your session has ended (too long without activity, or too old); sign in again",
    )
}

/// Name of the cookie that carries a browser session's token.
pub const SESSION_COOKIE: &str = "flexwork_session";

/// The session token in the request's `Cookie` header, if any.
pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// The token of a request authenticated by its session cookie: one without a bearer token or
/// a device signature that carries the cookie.
pub fn cookie_token(headers: &axum::http::HeaderMap) -> Option<String> {
    if bearer(headers).is_some() || headers.contains_key(flexwork_sync::device_auth::HEADER_DEVICE)
    {
        return None;
    }
    session_cookie(headers)
}

/// The CSRF token of a browser session: a keyed hash of its token's hash, so it is bound to
/// the session, cannot be computed without the server's key and does not reveal the token.
pub fn csrf_token(state: &AppState, token: &str) -> String {
    crate::privacy::lookup_hash(state, "csrf", &token_hash(token))
}

/// Makes a freshly issued token a browser session: it is then held to the idle limit.
/// Returns when it expires at the latest (ms since the epoch).
pub async fn mark_cookie_session(state: &AppState, token: &str) -> ApiResult<i64> {
    let row = sqlx::query(
        "UPDATE api_tokens SET cookie = 1, last_seen_at = $1 WHERE token_hash = $2 \
         RETURNING expires_at",
    )
    .bind(now_ms())
    .bind(token_hash(token))
    .fetch_one(&state.db.pool)
    .await?;
    Ok(row.try_get("expires_at")?)
}

/// The `Set-Cookie` value that hands a browser its session token until `expires_at`.
pub fn session_cookie_header(state: &AppState, token: &str, expires_at: i64) -> String {
    let max_age = ((expires_at - now_ms()) / 1_000).max(0);
    cookie_header(state, token, max_age)
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn cleared_cookie_header(state: &AppState) -> String {
    cookie_header(state, "", 0)
}

fn cookie_header(state: &AppState, value: &str, max_age: i64) -> String {
    let secure = if state.config.console.secure_cookies {
        " Secure;"
    } else {
        ""
    };
    format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly;{secure} SameSite=Strict; Max-Age={max_age}"
    )
}

/// Refuses a browser request that another site may have sent: `Sec-Fetch-Site: cross-site`,
/// or an `Origin` that is not the console's: exactly `[console] public_origin` when set
/// (behind a reverse proxy), else one naming the `Host` the request was sent to.
pub fn require_same_origin(
    console: &crate::config::ConsoleConfig,
    headers: &axum::http::HeaderMap,
) -> ApiResult<()> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("sec-fetch-site").is_some_and(|v| v.eq_ignore_ascii_case("cross-site")) {
        return Err(csrf_refusal());
    }
    if let Some(origin) = headers.get(axum::http::header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        let same = match console.public_origin.as_deref() {
            Some(public) => origin == public.trim_end_matches('/'),
            None => {
                let host = header("host").unwrap_or_default();
                let origin_host = origin
                    .split_once("://")
                    .map(|(_, rest)| rest.trim_end_matches('/'));
                !host.is_empty() && origin_host.is_some_and(|o| o.eq_ignore_ascii_case(host))
            }
        };
        if !same {
            return Err(csrf_refusal());
        }
    }
    Ok(())
}

/// Checks a cookie-authenticated request that changes something: same origin, and the
/// session's CSRF token in `X-CSRF-Token`.
fn require_csrf(state: &AppState, parts: &Parts, token: &str) -> ApiResult<()> {
    use axum::http::Method;
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    require_same_origin(&state.config.console, &parts.headers)?;
    let sent = parts
        .headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let expected = csrf_token(state, token);
    let same = sent.len() == expected.len()
        && sent
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        return Err(csrf_refusal());
    }
    Ok(())
}

fn csrf_refusal() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "csrf_token_invalid",
        "this request did not come from the console's own page (missing or wrong CSRF token, \
         or another site's origin); reload the page and try again",
    )
}

/// Paths a setup-only token may call: the two-factor setup itself, `GET /me` and sign-out.
fn allowed_during_setup(path: &str) -> bool {
    path.starts_with("/api/v1/me/totp") || path == "/api/v1/me" || path == "/api/v1/sessions"
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        // A phone's request signed with its device key, verified by `device::authenticate`.
        if let Some(mut caller) = device::signed_caller(parts)? {
            caller.address = client_address(parts);
            return Ok(caller);
        }
        let mut caller = match bearer(&parts.headers) {
            Some(token) => caller_for_token(state, token).await?,
            None => {
                let token = session_cookie(&parts.headers).ok_or_else(ApiError::unauthorized)?;
                // Checked before the session is touched, so a forged request changes nothing.
                require_csrf(state, parts, &token)?;
                // A cookie that no longer signs anyone in is removed from the browser.
                caller_for_token(state, &token).await.map_err(|mut e| {
                    if e.status == StatusCode::UNAUTHORIZED {
                        e.set_cookie = Some(cleared_cookie_header(state));
                    }
                    e
                })?
            }
        };
        caller.address = client_address(parts);
        // Inside the nested API router the path has lost its `/api/v1` prefix.
        let path = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map_or_else(|| parts.uri.path().to_owned(), |o| o.0.path().to_owned());
        device::refuse_worker_bearer(&caller, &path)?;
        if caller.setup_only && !allowed_during_setup(&path) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "second_factor_setup_required",
                "set up two-factor sign-in first: POST /api/v1/me/totp, then confirm a code",
            ));
        }
        Ok(caller)
    }
}

/// The address of the client of a request, when the server knows it.
#[derive(Debug, Clone)]
pub struct ClientAddress(pub Option<String>);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> ApiResult<Self> {
        Ok(Self(client_address(parts)))
    }
}

fn client_address(parts: &Parts) -> Option<String> {
    let info = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>();
    info.map(|i| i.0.ip().to_string())
}
