//! Accounts, passwords and bearer tokens.
//!
//! Passwords are hashed with Argon2id. A login issues a random 256-bit token; only its SHA-256
//! is stored, so a copy of the database does not let anyone act as a user. Each request's
//! token becomes a [`Caller`] (account id and role), which every handler checks against the
//! object it touches. Two-factor login, sessions per device and the full set of operator roles
//! grow from here.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::error::{ApiError, ApiResult};
use crate::{AppState, new_id, now_ms};

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A field worker: records evidence for their own orders.
    Worker,
    /// An enterprise: publishes tasks, assigns workers, confirms completion.
    Enterprise,
    /// Platform staff: reviews evidence and people, settles pay.
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Worker => "worker",
            Role::Enterprise => "enterprise",
            Role::Operator => "operator",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "worker" => Some(Role::Worker),
            "enterprise" => Some(Role::Enterprise),
            "operator" => Some(Role::Operator),
            _ => None,
        }
    }
}

/// The authenticated account behind a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account_id: String,
    pub role: Role,
}

impl Caller {
    /// Refuses callers of any other role.
    pub fn require(&self, role: Role) -> ApiResult<()> {
        if self.role == role {
            return Ok(());
        }
        let message = format!("this call is for {} accounts", role.as_str());
        Err(ApiError::forbidden(message))
    }
}

/// A new account's details.
#[derive(Clone, Deserialize)]
pub struct NewAccount {
    pub login: String,
    pub password: String,
    pub role: Role,
    pub display_name: String,
}

impl std::fmt::Debug for NewAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAccount")
            .field("login", &self.login)
            .field("password", &"<redacted>")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Creates an account and returns its id.
pub async fn create_account(state: &AppState, account: &NewAccount) -> ApiResult<String> {
    validate_new_account(account)?;
    let hash = hash_password(&account.password)?;
    let id = new_id();
    let result = sqlx::query(
        "INSERT INTO accounts (id, login, role, display_name, password_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(&id)
    .bind(&account.login)
    .bind(account.role.as_str())
    .bind(&account.display_name)
    .bind(hash)
    .bind(now_ms())
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

fn validate_new_account(account: &NewAccount) -> ApiResult<()> {
    let login_ok = (3..=64).contains(&account.login.chars().count())
        && account
            .login
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if !login_ok {
        let message = "a login is 3 to 64 letters, digits, dots, dashes, underscores or @";
        return Err(ApiError::bad_request("invalid_login", message));
    }
    if account.password.chars().count() < 10 {
        let message = "a password needs at least 10 characters";
        return Err(ApiError::bad_request("weak_password", message));
    }
    Ok(())
}

fn hash_password(password: &str) -> ApiResult<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(ApiError::internal)?;
    let hash = Argon2::default().hash_password(password.as_bytes(), &salt);

    Ok(hash.map_err(ApiError::internal)?.to_string())
}

fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Checks a login and password and issues a token.
pub async fn login(state: &AppState, login: &str, password: &str) -> ApiResult<(String, Caller)> {
    let row =
        sqlx::query("SELECT id, role, password_hash FROM accounts WHERE LOWER(login) = LOWER($1)")
            .bind(login)
            .fetch_optional(&state.db.pool)
            .await?;
    let Some(row) = row else {
        // Spend the same time as a wrong password, so logins cannot be probed by timing.
        verify_password(password, dummy_hash());
        return Err(invalid_credentials());
    };

    let stored: String = row.try_get("password_hash")?;
    if !verify_password(password, &stored) {
        return Err(invalid_credentials());
    }
    let caller = caller_from_row(&row)?;
    let token = issue_token(state, &caller.account_id).await?;
    Ok((token, caller))
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
}

async fn issue_token(state: &AppState, account_id: &str) -> ApiResult<String> {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let token = hex::encode(raw);
    let now = now_ms();
    let expires = now + state.config.token_ttl_hours * 3_600_000;

    sqlx::query(
        "INSERT INTO api_tokens (token_hash, account_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash(&token))
    .bind(account_id)
    .bind(now)
    .bind(expires)
    .execute(&state.db.pool)
    .await?;
    Ok(token)
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

fn caller_from_row(row: &sqlx::any::AnyRow) -> ApiResult<Caller> {
    let role: String = row.try_get("role")?;
    let role = Role::parse(&role).ok_or_else(|| ApiError::internal("unknown role in database"))?;
    Ok(Caller {
        account_id: row.try_get("id")?,
        role,
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
        "SELECT a.id, a.role FROM api_tokens t JOIN accounts a ON a.id = t.account_id \
         WHERE t.token_hash = $1 AND t.expires_at > $2",
    )
    .bind(token_hash(token))
    .bind(now_ms())
    .fetch_optional(&state.db.pool)
    .await?;

    caller_from_row(&row.ok_or_else(ApiError::unauthorized)?)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let token = bearer(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        caller_for_token(state, token).await
    }
}
