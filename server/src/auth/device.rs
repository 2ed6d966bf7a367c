//! Device-bound credentials of workers' phones.
//!
//! A phone signs in once with its worker's password, makes a P-256 key pair and registers
//! the public key ([`register`]); the bearer token of that sign-in is revoked by the
//! registration, so the phone keeps no token at all. From then on it signs every request
//! (see [`flexwork_sync::device_auth`] for the exact text and headers). [`authenticate`], a
//! middleware of the API router, checks a signed request before any handler runs: the device
//! is known and not revoked, its account not suspended, the timestamp within
//! [`MAX_CLOCK_SKEW_MS`] of the server's clock, the signature right for the method, path,
//! query, content type and body hash, and the nonce never seen before for this device. The
//! nonce is written to the database before the handler runs, so a replay is refused also
//! after a restart; nonces are purged once their timestamp is outside the window. The result
//! is the same [`Caller`] a bearer token gives, so handlers do not know the difference.
//!
//! Workers' bearer tokens are refused on the phone's own calls (sync and media), so a token
//! copied from anywhere cannot upload evidence. Devices are listed and revoked by their
//! worker; a password change, a suspension and any revocation of all of an account's tokens
//! revoke its devices too. Registrations, revocations and refused signatures of known
//! devices are audited.

use std::sync::atomic::{AtomicI64, Ordering};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use flexwork_sync::device_auth::{
    self, DeviceInfo, DeviceRegistered, DeviceRegistration, HEADER_DEVICE, HEADER_NONCE,
    HEADER_SERVER_TIME, HEADER_SIGNATURE, HEADER_TIMESTAMP, MAX_CLOCK_SKEW_MS, RequestToSign,
};
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use sqlx::Row;

use super::{Caller, Permission, Role};
use crate::audit::{self, Event, Outcome};
use crate::error::{ApiError, ApiResult};
use crate::{AppState, new_id, now_ms, rfc3339};

/// How recent the password sign-in used to register a device must be.
pub const FRESH_SIGN_IN_MS: i64 = 10 * 60 * 1_000;
/// Unrevoked devices an account may have at once.
pub const MAX_ACTIVE_DEVICES: i64 = 10;
/// Longest device name, in characters.
const MAX_NAME_CHARS: usize = 64;
/// How often `last_seen_at` is written at most, per device.
const LAST_SEEN_EVERY_MS: i64 = 60_000;
/// How often old nonces are purged at most.
const PURGE_EVERY_MS: i64 = 60_000;

/// A request whose device signature [`authenticate`] verified: the extension the [`Caller`]
/// extractor takes its caller from.
#[derive(Debug, Clone)]
pub struct SignedBy {
    pub caller: Caller,
    pub device_id: String,
}

/// Middleware of the API router: checks requests that carry a device signature, and lets
/// the others through untouched. A refusal is answered at once, with a 401 and a stable code.
pub async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !request.headers().contains_key(HEADER_DEVICE) {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let checked = async {
        // What needs no body is checked first, so nobody makes the server read large
        // bodies for requests it would refuse anyway.
        let claim = claim(&state, &parts).await?;
        let limit = if original_uri(&parts).path() == "/api/v1/sync" {
            state.config.limits.max_sync_body_bytes
        } else {
            crate::api::MAX_CHUNK_BYTES
        };
        // The body is part of what is signed, so it is read before the handler runs; the
        // handlers of signed calls read their whole body anyway.
        let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
            let message = "the request body is larger than this endpoint accepts: media go \
                           in chunks of at most 8 MiB, sync requests within the server's limit";
            let error = ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", message);
            return Err(error.into());
        };
        let signed = verify(&state, &parts, claim, &bytes).await?;
        Ok::<_, Refusal>((signed, bytes))
    };
    match checked.await {
        Ok((signed, bytes)) => {
            parts.extensions.insert(signed);
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(Refusal { error, server_time }) => {
            let mut response = error.into_response();
            if let Some(ms) = server_time {
                response
                    .headers_mut()
                    .insert(HEADER_SERVER_TIME, HeaderValue::from(ms));
            }
            response
        }
    }
}

/// The caller of a request [`authenticate`] verified; an error for a request that names a
/// device but was not verified (it did not pass through the API router).
pub(crate) fn signed_caller(parts: &Parts) -> ApiResult<Option<Caller>> {
    if let Some(signed) = parts.extensions.get::<SignedBy>() {
        return Ok(Some(signed.caller.clone()));
    }
    if parts.headers.contains_key(HEADER_DEVICE) {
        return Err(signature_invalid(
            "this endpoint does not take device signatures",
        ));
    }
    Ok(None)
}

/// Refuses a worker's bearer token on the calls phones make (sync, media and applying for a
/// task): those take a device signature, so a copied token cannot upload evidence or speak
/// for the worker.
pub(crate) fn refuse_worker_bearer(caller: &Caller, path: &str) -> ApiResult<()> {
    let applying = path.starts_with("/api/v1/tasks/") && path.ends_with("/applications");
    let phone_call = path == "/api/v1/sync" || path.starts_with("/api/v1/media/") || applying;
    if caller.role == Role::Worker && phone_call {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "device_credential_required",
            "phones sync, upload and apply for tasks with their registered device key, not a \
             bearer token: sign in on the phone to register it",
        ));
    }
    Ok(())
}

/// A refused signed request, with the server's clock when the phone's was wrong.
struct Refusal {
    error: ApiError,
    server_time: Option<i64>,
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Self {
            error,
            server_time: None,
        }
    }
}

/// What a signed request's headers claim, checked as far as it can be without the body.
struct Claim {
    device_id: String,
    timestamp_ms: i64,
    nonce: String,
    signature: Signature,
    row: sqlx::any::AnyRow,
}

async fn claim(state: &AppState, parts: &Parts) -> Result<Claim, Refusal> {
    let headers = &parts.headers;
    let device_id = header(headers, HEADER_DEVICE)?;
    if device_id.is_empty()
        || device_id.len() > 64
        || !device_id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'-')
    {
        return Err(signature_invalid("the device id header is malformed").into());
    }
    let timestamp_ms: i64 = header(headers, HEADER_TIMESTAMP)?
        .parse()
        .map_err(|_| signature_invalid("the timestamp header is not Unix milliseconds"))?;
    let nonce = header(headers, HEADER_NONCE)?;
    if !device_auth::valid_nonce(nonce) {
        let message = "the nonce header must be 32 to 64 lowercase hex digits";
        return Err(signature_invalid(message).into());
    }
    let signature = parse_signature(header(headers, HEADER_SIGNATURE)?)
        .ok_or_else(|| signature_invalid("the signature header is not a P-256 signature"))?;

    let now = now_ms();
    let skew = timestamp_ms.saturating_sub(now);
    if skew.unsigned_abs() > MAX_CLOCK_SKEW_MS.unsigned_abs() {
        return Err(Refusal {
            error: clock_skew(skew),
            server_time: Some(now),
        });
    }

    let row = sqlx::query(
        "SELECT d.public_key, d.revoked_at, d.revoked_reason, d.last_seen_at, a.id, a.role, \
         a.duties, a.organisation_id, a.suspended \
         FROM devices d JOIN accounts a ON a.id = d.account_id WHERE d.id = $1",
    )
    .bind(device_id)
    .fetch_optional(&state.db.pool)
    .await
    .map_err(ApiError::from)?;
    let Some(row) = row else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "device_unknown",
            "this phone is not registered with this server: sign in again on the phone",
        )
        .into());
    };
    Ok(Claim {
        device_id: device_id.to_owned(),
        timestamp_ms,
        nonce: nonce.to_owned(),
        signature,
        row,
    })
}

/// The full URI of the request: inside the nested API router the path lost its prefix.
fn original_uri(parts: &Parts) -> &axum::http::Uri {
    parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map_or(&parts.uri, |original| &original.0)
}

async fn verify(
    state: &AppState,
    parts: &Parts,
    claim: Claim,
    body: &[u8],
) -> Result<SignedBy, Refusal> {
    let Claim {
        device_id,
        timestamp_ms,
        nonce,
        signature,
        row,
    } = claim;
    let (device_id, nonce) = (device_id.as_str(), nonce.as_str());
    let now = now_ms();
    let headers = &parts.headers;
    let caller = super::caller_from_row(&row, false)?;
    let address = client_address(parts);
    let refused = |reason: &'static str| {
        Event::by(&caller, "device_request", Outcome::Refused)
            .object(format!("device:{device_id}"))
            .detail(serde_json::json!({ "reason": reason }))
            .address(address.clone())
    };

    let key: String = row.try_get("public_key").map_err(ApiError::from)?;
    let key = decode_public_key(&key).ok_or_else(|| ApiError::internal("stored device key"))?;
    let path = original_uri(parts);
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"))
        .unwrap_or_default();
    let text = device_auth::canonical_request(&RequestToSign {
        method: parts.method.as_str(),
        path: path.path(),
        query: path.query().unwrap_or_default(),
        content_type,
        device_id,
        timestamp_ms,
        nonce,
        body,
    });
    if key.verify(text.as_bytes(), &signature).is_err() {
        audit::record(state, refused("signature")).await?;
        return Err(signature_invalid(
            "the device signature does not match this request: it was altered on the way or \
             signed with another key",
        )
        .into());
    }

    let revoked_at: Option<i64> = row.try_get("revoked_at").map_err(ApiError::from)?;
    let suspended = row.try_get::<i64, _>("suspended").map_err(ApiError::from)? != 0;
    if revoked_at.is_some() || suspended {
        audit::record(state, refused("revoked")).await?;
        let reason: Option<String> = row.try_get("revoked_reason").map_err(ApiError::from)?;
        let why = if suspended {
            "the account is suspended"
        } else {
            reason_sentence(reason.as_deref().unwrap_or_default())
        };
        let message = format!("this phone's registration was revoked ({why}): sign in again");
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "device_revoked", message).into());
    }

    let inserted = sqlx::query(
        "INSERT INTO device_nonces (device_id, nonce, request_at) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind(device_id)
    .bind(nonce)
    .bind(timestamp_ms)
    .execute(&state.db.pool)
    .await
    .map_err(ApiError::from)?;
    if inserted.rows_affected() == 0 {
        audit::record(state, refused("replay")).await?;
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "device_replay",
            "this signed request was already received once; a phone signs every request anew",
        )
        .into());
    }

    let last_seen: Option<i64> = row.try_get("last_seen_at").map_err(ApiError::from)?;
    if last_seen.is_none_or(|seen| now - seen > LAST_SEEN_EVERY_MS) {
        sqlx::query("UPDATE devices SET last_seen_at = $1 WHERE id = $2")
            .bind(now)
            .bind(device_id)
            .execute(&state.db.pool)
            .await
            .map_err(ApiError::from)?;
    }
    purge_nonces(state, now).await?;
    Ok(SignedBy {
        caller,
        device_id: device_id.to_owned(),
    })
}

/// Deletes nonces whose timestamp is too old for any request to be accepted with it.
async fn purge_nonces(state: &AppState, now: i64) -> ApiResult<()> {
    static LAST_PURGE: AtomicI64 = AtomicI64::new(0);
    let last = LAST_PURGE.load(Ordering::Relaxed);
    if now - last < PURGE_EVERY_MS
        || LAST_PURGE
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return Ok(());
    }
    sqlx::query("DELETE FROM device_nonces WHERE request_at < $1")
        .bind(now - 2 * MAX_CLOCK_SKEW_MS)
        .execute(&state.db.pool)
        .await?;
    Ok(())
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> ApiResult<&'a str> {
    let value = headers
        .get(name)
        .ok_or_else(|| signature_invalid(format!("the request has no {name} header")))?;
    value
        .to_str()
        .map(str::trim)
        .map_err(|_| signature_invalid(format!("the {name} header is not plain text")))
}

/// A signature in base64 of its 64-byte `r‖s` form or of its DER form.
fn parse_signature(text: &str) -> Option<Signature> {
    let bytes = BASE64.decode(text.trim()).ok()?;
    if bytes.len() == 64 {
        Signature::from_slice(&bytes).ok()
    } else {
        Signature::from_der(&bytes).ok()
    }
}

/// A SEC1 public key in base64.
fn decode_public_key(text: &str) -> Option<VerifyingKey> {
    let bytes = BASE64.decode(text.trim()).ok()?;
    VerifyingKey::from_sec1_bytes(&bytes).ok()
}

fn signature_invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "device_signature_invalid",
        message,
    )
}

fn clock_skew(skew_ms: i64) -> ApiError {
    let minutes = skew_ms.unsigned_abs().div_ceil(60_000);
    let direction = if skew_ms > 0 { "ahead of" } else { "behind" };
    let message = format!(
        "this phone's clock is about {minutes} minutes {direction} the server's; turn on \
         automatic date and time and try again"
    );
    ApiError::new(StatusCode::UNAUTHORIZED, "device_clock_skew", message)
}

/// Why a device was revoked, for the refusal its next request gets.
fn reason_sentence(reason: &str) -> &'static str {
    match reason {
        "revoked_by_owner" => "the worker revoked it",
        "replaced" => "the phone registered a new key",
        "password_changed" => "the password was changed",
        "account_suspended" => "the account was suspended",
        _ => "every sign-in of the account was revoked",
    }
}

fn client_address(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip().to_string())
}

/// Registers a phone's public key for `caller`, with the bearer `token` of a password
/// sign-in made in the last [`FRESH_SIGN_IN_MS`]; that token is revoked.
pub async fn register(
    state: &AppState,
    caller: &Caller,
    token: &str,
    address: Option<String>,
    registration: &DeviceRegistration,
) -> ApiResult<DeviceRegistered> {
    caller.require(Permission::RecordEvidence)?;
    let session = sqlx::query("SELECT created_at FROM api_tokens WHERE token_hash = $1")
        .bind(super::token_hash(token))
        .fetch_optional(&state.db.pool)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let now = now_ms();
    if now - session.try_get::<i64, _>("created_at")? > FRESH_SIGN_IN_MS {
        let minutes = FRESH_SIGN_IN_MS / 60_000;
        let message = format!(
            "a phone is registered within {minutes} minutes of signing in with the password; \
             sign in again"
        );
        let error = ApiError::new(StatusCode::UNAUTHORIZED, "sign_in_too_old", message);
        return Err(error);
    }

    let name = registration.name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        let message = format!("a device name is 1 to {MAX_NAME_CHARS} printable characters");
        return Err(ApiError::bad_request("invalid_device_name", message));
    }
    let key = decode_public_key(&registration.public_key).ok_or_else(|| {
        let message = "the public key must be a P-256 point, SEC1 encoded, in base64";
        ApiError::bad_request("invalid_public_key", message)
    })?;
    let message = device_auth::registration_message(&caller.account_id, &registration.public_key);
    let proven = parse_signature(&registration.proof)
        .is_some_and(|proof| key.verify(message.as_bytes(), &proof).is_ok());
    if !proven {
        let message = "the proof is not a signature of the registration text by this key";
        return Err(ApiError::bad_request("invalid_proof", message));
    }

    if let Some(old) = &registration.replaces {
        revoke_one(state, caller, old, "replaced", address.clone()).await?;
    }
    let active = sqlx::query(
        "SELECT COUNT(*) AS n FROM devices WHERE account_id = $1 AND revoked_at IS NULL",
    )
    .bind(&caller.account_id)
    .fetch_one(&state.db.pool)
    .await?;
    if active.try_get::<i64, _>("n")? >= MAX_ACTIVE_DEVICES {
        let message = format!(
            "an account has at most {MAX_ACTIVE_DEVICES} registered phones: revoke one it no \
             longer uses"
        );
        return Err(ApiError::conflict("too_many_devices", message));
    }

    let id = new_id();
    let stored_key = BASE64.encode(key.to_sec1_point(false).as_bytes());
    let inserted = sqlx::query(
        "INSERT INTO devices (id, account_id, name, public_key, registered_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(&id)
    .bind(&caller.account_id)
    .bind(name)
    .bind(stored_key)
    .bind(now)
    .execute(&state.db.pool)
    .await?;
    if inserted.rows_affected() == 0 {
        let message = "this key is already registered; make a new key pair for each sign-in";
        return Err(ApiError::conflict("public_key_taken", message));
    }
    super::logout(state, token).await?;
    let event = Event::by(caller, "device_registered", Outcome::Ok)
        .object(format!("device:{id}"))
        .detail(serde_json::json!({ "session_revoked": true }))
        .address(address);
    audit::record(state, event).await?;
    tracing::info!(account_id = %caller.account_id, device_id = %id, "device registered");
    Ok(DeviceRegistered {
        device_id: id,
        name: name.to_owned(),
        registered_at: rfc3339(now),
        session_revoked: true,
    })
}

/// The caller's devices, newest first, revoked ones included.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    current: Option<&str>,
) -> ApiResult<Vec<DeviceInfo>> {
    caller.require(Permission::RecordEvidence)?;
    let rows = sqlx::query(
        "SELECT id, name, registered_at, last_seen_at, revoked_at, revoked_reason FROM devices \
         WHERE account_id = $1 ORDER BY registered_at DESC, id",
    )
    .bind(&caller.account_id)
    .fetch_all(&state.db.pool)
    .await?;
    rows.iter()
        .map(|row| {
            let id: String = row.try_get("id")?;
            let time = |column: &str| {
                row.try_get::<Option<i64>, _>(column)
                    .map(|t| t.map(rfc3339))
            };
            Ok(DeviceInfo {
                current: current == Some(id.as_str()),
                device_id: id,
                name: row.try_get("name")?,
                registered_at: rfc3339(row.try_get("registered_at")?),
                last_seen_at: time("last_seen_at")?,
                revoked_at: time("revoked_at")?,
                revoked_reason: row.try_get("revoked_reason")?,
            })
        })
        .collect()
}

/// The caller revokes one of their devices (the one signing the request included).
pub async fn revoke(
    state: &AppState,
    caller: &Caller,
    device_id: &str,
    address: Option<String>,
) -> ApiResult<()> {
    caller.require(Permission::RecordEvidence)?;
    let owned = sqlx::query("SELECT 1 AS hit FROM devices WHERE id = $1 AND account_id = $2")
        .bind(device_id)
        .bind(&caller.account_id)
        .fetch_optional(&state.db.pool)
        .await?;
    if owned.is_none() {
        return Err(ApiError::not_found("device"));
    }
    revoke_one(state, caller, device_id, "revoked_by_owner", address).await
}

/// Revokes one unrevoked device of the caller's account, audited; nothing if there is none.
async fn revoke_one(
    state: &AppState,
    caller: &Caller,
    device_id: &str,
    reason: &'static str,
    address: Option<String>,
) -> ApiResult<()> {
    let changed = sqlx::query(
        "UPDATE devices SET revoked_at = $1, revoked_reason = $2 \
         WHERE id = $3 AND account_id = $4 AND revoked_at IS NULL",
    )
    .bind(now_ms())
    .bind(reason)
    .bind(device_id)
    .bind(&caller.account_id)
    .execute(&state.db.pool)
    .await?;
    if changed.rows_affected() > 0 {
        let event = Event::by(caller, "device_revoked", Outcome::Ok)
            .object(format!("device:{device_id}"))
            .detail(serde_json::json!({ "reason": reason }))
            .address(address);
        audit::record(state, event).await?;
    }
    Ok(())
}

/// Revokes every device of `account_id`, each audited with `reason` and the `actor` who
/// caused it when known (the worker changing their password, the operator suspending).
pub async fn revoke_all(
    state: &AppState,
    account_id: &str,
    reason: &'static str,
    actor: Option<&Caller>,
) -> ApiResult<()> {
    let rows = sqlx::query("SELECT id FROM devices WHERE account_id = $1 AND revoked_at IS NULL")
        .bind(account_id)
        .fetch_all(&state.db.pool)
        .await?;
    for row in rows {
        let device_id: String = row.try_get("id")?;
        let changed = sqlx::query(
            "UPDATE devices SET revoked_at = $1, revoked_reason = $2 \
             WHERE id = $3 AND revoked_at IS NULL",
        )
        .bind(now_ms())
        .bind(reason)
        .bind(&device_id)
        .execute(&state.db.pool)
        .await?;
        if changed.rows_affected() == 0 {
            continue;
        }
        let event = match actor {
            Some(actor) => Event::by(actor, "device_revoked", Outcome::Ok),
            None => Event::anonymous("device_revoked", Outcome::Ok),
        };
        let event = event
            .object(format!("device:{device_id}"))
            .detail(serde_json::json!({ "reason": reason, "account": account_id }));
        audit::record(state, event).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_messages_say_which_way_in_whole_minutes() {
        assert!(clock_skew(i64::MIN).message.contains("behind"));
        assert!(
            clock_skew(6 * 60_000)
                .message
                .contains("6 minutes ahead of")
        );
        assert!(
            clock_skew(-(5 * 60_000 + 1))
                .message
                .contains("6 minutes behind")
        );
    }

    #[test]
    fn signatures_are_read_in_both_encodings() {
        let raw = [7u8; 64];
        assert!(parse_signature(&BASE64.encode(raw)).is_some());
        let signature = Signature::from_slice(&raw).unwrap();
        let der = signature.to_der();
        assert!(parse_signature(&BASE64.encode(der.as_bytes())).is_some());
        assert!(parse_signature("not base64!").is_none());
        assert!(parse_signature(&BASE64.encode([0u8; 64])).is_none());
    }
}
