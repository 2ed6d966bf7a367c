//! Two-factor login with time-based one-time passwords (RFC 6238: HMAC-SHA1, six digits,
//! thirty-second steps, as every authenticator app expects) and one-time recovery codes.
//!
//! The TOTP secret is stored only wrapped by the key manager's master key (the same one that
//! guards media), bound to its account. A code is accepted for the step before, the current
//! step and the step after, and never for a step at or before the last one accepted, so a
//! code seen over someone's shoulder cannot be replayed. Recovery codes are stored as SHA-256
//! hashes and each works once.

use flexwork_storage::{Kms, WrappedKey};
use rand::RngCore;
use serde::Serialize;
use sqlx::Row;
use totp_rs::{Algorithm, Builder, Totp};

use crate::audit::{self, Event, Outcome};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::{AppState, now_ms};

const STEP_SECS: u64 = 30;
const RECOVERY_CODES: usize = 10;

/// What an account needs to add the secret to an authenticator app.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Enrollment {
    /// The secret in base32, to type in by hand.
    pub secret: String,
    /// An `otpauth://` URL, to show as a QR code.
    pub otpauth_url: String,
}

/// What confirming the first code gives: recovery codes (shown once) and a new full token.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Enabled {
    pub recovery_codes: Vec<String>,
    /// The new bearer token; absent when the call came from a browser session, which gets
    /// it in a new session cookie instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The new browser session's CSRF token, when the call came from a browser session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

pub(crate) fn context(account_id: &str) -> Vec<u8> {
    format!("flexwork-totp-v1\0{account_id}").into_bytes()
}

fn totp(secret: Vec<u8>, account: &str) -> ApiResult<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(0)
        .with_step_duration(STEP_SECS)
        .with_secret(secret)
        .with_account_name(account)
        .with_issuer(Some("flexwork"))
        .build()
        .map_err(ApiError::internal)
}

async fn unwrap_secret(state: &AppState, account_id: &str, stored: &str) -> ApiResult<Vec<u8>> {
    let wrapped: WrappedKey = serde_json::from_str(stored).map_err(ApiError::internal)?;
    let secret = state
        .sites
        .keys
        .unwrap(&wrapped, &context(account_id))
        .await
        .map_err(ApiError::internal)?;
    Ok(secret.to_vec())
}

/// Starts (or restarts) setting up two-factor login: a new secret, stored wrapped, not yet
/// required at sign-in.
pub async fn enroll(state: &AppState, caller: &Caller) -> ApiResult<Enrollment> {
    let row = sqlx::query("SELECT login, totp_enabled FROM accounts WHERE id = $1")
        .bind(&caller.account_id)
        .fetch_one(&state.db.pool)
        .await?;
    if row.try_get::<i64, _>("totp_enabled")? != 0 {
        let message = "two-factor sign-in is already set up for this account";
        return Err(ApiError::conflict("totp_already_enabled", message));
    }
    let login: String = row.try_get("login")?;
    let mut secret = vec![0u8; 20];
    rand::rng().fill_bytes(&mut secret);
    let wrapped = state
        .sites
        .keys
        .wrap(&secret, &context(&caller.account_id))
        .await
        .map_err(ApiError::internal)?;
    let stored = serde_json::to_string(&wrapped).map_err(ApiError::internal)?;
    sqlx::query("UPDATE accounts SET totp_secret = $1, totp_last_step = 0 WHERE id = $2")
        .bind(stored)
        .bind(&caller.account_id)
        .execute(&state.db.pool)
        .await?;
    let totp = totp(secret.clone(), &login)?;
    audit::record(state, Event::by(caller, "totp_setup_started", Outcome::Ok)).await?;
    Ok(Enrollment {
        secret: data_encoding::BASE32_NOPAD.encode(&secret),
        otpauth_url: totp.to_url().map_err(ApiError::internal)?,
    })
}

/// Finishes the setup with a first code: two-factor login is required from now on, every
/// earlier token is revoked, and recovery codes and a new token are returned.
pub async fn confirm(state: &AppState, caller: &Caller, code: &str) -> ApiResult<Enabled> {
    let row =
        sqlx::query("SELECT totp_secret, totp_enabled, totp_last_step FROM accounts WHERE id = $1")
            .bind(&caller.account_id)
            .fetch_one(&state.db.pool)
            .await?;
    if row.try_get::<i64, _>("totp_enabled")? != 0 {
        let message = "two-factor sign-in is already set up for this account";
        return Err(ApiError::conflict("totp_already_enabled", message));
    }
    let Some(stored) = row.try_get::<Option<String>, _>("totp_secret")? else {
        let message = "start the setup first: POST /api/v1/me/totp";
        return Err(ApiError::conflict("totp_not_started", message));
    };
    let last_step: i64 = row.try_get("totp_last_step")?;
    if !accept(state, &caller.account_id, &stored, last_step, code).await? {
        audit::record(state, Event::by(caller, "totp_enabled", Outcome::Refused)).await?;
        let message = "that code does not match; check the phone's clock and try the next code";
        return Err(ApiError::bad_request("invalid_totp", message));
    }

    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    let mut tx = state.db.begin_write().await?;
    sqlx::query("UPDATE accounts SET totp_enabled = 1 WHERE id = $1")
        .bind(&caller.account_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM recovery_codes WHERE account_id = $1")
        .bind(&caller.account_id)
        .execute(&mut *tx)
        .await?;
    for _ in 0..RECOVERY_CODES {
        let mut raw = [0u8; 10];
        rand::rng().fill_bytes(&mut raw);
        let code = data_encoding::BASE32_NOPAD.encode(&raw).to_lowercase();
        sqlx::query("INSERT INTO recovery_codes (account_id, code_hash) VALUES ($1, $2)")
            .bind(&caller.account_id)
            .bind(code_hash(&code))
            .execute(&mut *tx)
            .await?;
        codes.push(code);
    }
    sqlx::query("DELETE FROM api_tokens WHERE account_id = $1")
        .bind(&caller.account_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;

    let token = super::issue_token(state, &caller.account_id, false).await?;
    audit::record(state, Event::by(caller, "totp_enabled", Outcome::Ok)).await?;
    Ok(Enabled {
        recovery_codes: codes,
        token: Some(token),
        csrf_token: None,
    })
}

/// Accepts `code` if it is the code of a step next to now and later than `last_step`, and
/// records that step so the code cannot be used again (even by a request racing this one).
pub async fn accept(
    state: &AppState,
    account_id: &str,
    stored: &str,
    last_step: i64,
    code: &str,
) -> ApiResult<bool> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(false);
    }
    let totp = totp(unwrap_secret(state, account_id, stored).await?, account_id)?;
    let now_step = (now_ms() / 1_000) as u64 / STEP_SECS;
    for step in [now_step.saturating_sub(1), now_step, now_step + 1] {
        let step_i64 = i64::try_from(step).unwrap_or(i64::MAX);
        if step_i64 <= last_step {
            continue;
        }
        let expected = totp.generate(step * STEP_SECS).to_string();
        if !same(expected.as_bytes(), code.as_bytes()) {
            continue;
        }
        let taken = sqlx::query(
            "UPDATE accounts SET totp_last_step = $1 WHERE id = $2 AND totp_last_step < $1",
        )
        .bind(step_i64)
        .bind(account_id)
        .execute(&state.db.pool)
        .await?;
        return Ok(taken.rows_affected() == 1);
    }
    Ok(false)
}

/// Uses one recovery code of the account, if it is one and unused.
pub async fn use_recovery_code(state: &AppState, account_id: &str, code: &str) -> ApiResult<bool> {
    let code = code.trim().to_lowercase();
    let used = sqlx::query(
        "UPDATE recovery_codes SET used_at = $1 \
         WHERE account_id = $2 AND code_hash = $3 AND used_at IS NULL",
    )
    .bind(now_ms())
    .bind(account_id)
    .bind(code_hash(&code))
    .execute(&state.db.pool)
    .await?;
    Ok(used.rows_affected() == 1)
}

fn code_hash(code: &str) -> String {
    flexwork_sync::ContentHash::of(code.as_bytes()).to_hex()
}

/// Compares in time independent of where the inputs differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The code an authenticator app shows for a base32 secret at `unix_secs`; for tests and
/// scripts that play the app.
pub fn code_at(secret_base32: &str, unix_secs: u64) -> Option<String> {
    let secret = data_encoding::BASE32_NOPAD
        .decode(secret_base32.as_bytes())
        .ok()?;
    // RFC 4226 wants at least 128 bits; a shorter secret is not one this server made, and
    // is refused here rather than logged as an internal error.
    if secret.len() < 16 {
        return None;
    }
    let totp = totp(secret, "app").ok()?;
    Some(totp.generate(unix_secs).to_string())
}
