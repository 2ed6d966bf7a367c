//! Face checks with liveness (standard 5.1.4), and the real-name provider's answers applied to
//! applications.
//!
//! The phone captures the applicant's face with liveness and sends the image with the
//! application. The image is personal data of the most sensitive kind: it is stored only as a
//! sealed media blob named by its SHA-256 (like enterprise documents), never logged, never
//! served by the media endpoint (`403 face_image_reveal_only`), listed only as "present"
//! with its type, size and capture time, and shown only through the audited reveal of the
//! application's `face_image` field.
//!
//! The provider gets the image's hash with the other elements; a face check answers later
//! with a ticket, and its result arrives as a [`Callback`] — through the provider's channel
//! in this process ([`spawn_consumer`]) or, from a licensed provider, over HTTP
//! (`POST /api/v1/realname/callbacks`, signed with HMAC-SHA256 under the configured secret,
//! see [`sign`]). Providers deliver a callback more than once; each (provider, ticket) is
//! applied once: it is recorded in `realname_callbacks` in the transaction that applies it,
//! so a repeat is acknowledged and ignored, also after a restart and whichever way it came.

use flexwork_sync::ContentHash;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sqlx::Row;

use crate::audit::{self, Event, Outcome};
use crate::error::{ApiError, ApiResult};
use crate::onboarding::{self, Automated, FaceCapture, FaceCheck};
use crate::realname::{Callback, Element, Verdict, VerificationResult};
use crate::{AppState, now_ms};

/// Largest face image, in bytes.
pub const MAX_FACE_IMAGE_BYTES: usize = 4 * 1024 * 1024;
/// Smallest width and height of a face image, in pixels.
pub const MIN_FACE_IMAGE_SIDE: u32 = 64;
/// Header of an HTTP callback carrying the Unix time (seconds) it was signed at.
pub const TIMESTAMP_HEADER: &str = "x-realname-timestamp";
/// Header of an HTTP callback carrying `sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">`.
pub const SIGNATURE_HEADER: &str = "x-realname-signature";
/// How far an HTTP callback's timestamp may be from the server's clock, in seconds.
pub const MAX_CALLBACK_SKEW_SECS: i64 = 300;

/// A face image as received, checked and hashed. `Debug` shows neither bytes nor hash.
pub struct FaceImage {
    pub bytes: Vec<u8>,
    pub hash: ContentHash,
    pub media_type: &'static str,
    pub captured_at: i64,
}

impl std::fmt::Debug for FaceImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaceImage")
            .field("size", &self.bytes.len())
            .field("media_type", &self.media_type)
            .finish_non_exhaustive()
    }
}

impl FaceImage {
    /// Decodes and checks a capture: a plausible capture time, base64 of at most
    /// [`MAX_FACE_IMAGE_BYTES`], a readable JPEG, PNG or WebP image of at least
    /// [`MIN_FACE_IMAGE_SIDE`] pixels each way.
    pub fn decode(capture: &FaceCapture, now: i64) -> ApiResult<Self> {
        let captured_at = onboarding::parse_time(&capture.captured_at).ok_or_else(|| {
            let message = "face.captured_at is the capture time in RFC 3339, like \
                           2026-12-04T10:00:00+08:00";
            ApiError::bad_request("face_capture_time_invalid", message)
        })?;
        onboarding::check_plausible_time(captured_at, now, "face_capture", "captured")?;
        let too_large = || {
            let message = format!(
                "the face image is larger than {} MiB; send the frame the liveness capture chose",
                MAX_FACE_IMAGE_BYTES / (1024 * 1024)
            );
            ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "face_image_too_large",
                message,
            )
        };
        if capture.image_base64.len() > MAX_FACE_IMAGE_BYTES / 3 * 4 + 4 {
            return Err(too_large());
        }
        let bytes = data_encoding::BASE64
            .decode(capture.image_base64.trim().as_bytes())
            .map_err(|_| {
                let message = "face.image_base64 is the image's bytes in standard base64";
                ApiError::bad_request("face_image_invalid", message)
            })?;
        if bytes.len() > MAX_FACE_IMAGE_BYTES {
            return Err(too_large());
        }
        let side = MIN_FACE_IMAGE_SIDE;
        let readable = image::ImageReader::new(std::io::Cursor::new(&bytes))
            .with_guessed_format()
            .ok()
            .and_then(|r| r.into_dimensions().ok())
            .is_some_and(|(w, h)| w >= side && h >= side);
        let sniffed = crate::api::media::sniff(&bytes)
            .filter(|t| ["image/jpeg", "image/png", "image/webp"].contains(t));
        let Some(media_type) = sniffed.filter(|_| readable) else {
            let message = format!(
                "the face image must be a readable JPEG, PNG or WebP photo of at least \
                 {side}x{side} pixels"
            );
            return Err(ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "face_image_unreadable",
                message,
            ));
        };
        Ok(Self {
            hash: ContentHash::of(&bytes),
            bytes,
            media_type,
            captured_at,
        })
    }
}

/// Stores the image sealed in the media store (every site), before the application that
/// names it is written.
pub async fn store(state: &AppState, face: &FaceImage) -> ApiResult<()> {
    crate::replication::store_object(state, &face.bytes, face.media_type).await?;
    Ok(())
}

/// Records the application's face image, in the transaction that stores the application.
pub async fn record(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    application_id: &str,
    face: &FaceImage,
    now: i64,
) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO face_checks \
           (application_id, image_hash, media_type, size, captured_at, submitted_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(application_id)
    .bind(face.hash.to_hex())
    .bind(face.media_type)
    .bind(face.bytes.len() as i64)
    .bind(face.captured_at)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The application's face image as a `data:` URL, for the audited reveal.
pub async fn reveal(state: &AppState, application_id: &str) -> ApiResult<String> {
    let row =
        sqlx::query("SELECT image_hash, media_type FROM face_checks WHERE application_id = $1")
            .bind(application_id)
            .fetch_optional(&state.db.pool)
            .await?
            .ok_or_else(|| ApiError::not_found("face image of that application"))?;
    let hash: String = row.try_get("image_hash")?;
    let hash: ContentHash = hash.parse().map_err(ApiError::internal)?;
    let media_type: String = row.try_get("media_type")?;
    let bytes = crate::replication::read(state, &hash).await?;
    Ok(format!(
        "data:{media_type};base64,{}",
        data_encoding::BASE64.encode(&bytes)
    ))
}

/// Refuses to serve a face image through the media endpoint: only the audited reveal shows it.
pub async fn refuse_face_image(state: &AppState, hash: &ContentHash) -> ApiResult<()> {
    let hit = sqlx::query("SELECT 1 AS hit FROM face_checks WHERE image_hash = $1 LIMIT 1")
        .bind(hash.to_hex())
        .fetch_optional(&state.db.pool)
        .await?;
    if hit.is_some() {
        let message = "this is an applicant's face image: it is shown only through the audited \
                       reveal of the application (POST /api/v1/onboarding/workers/{id}/reveal)";
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "face_image_reveal_only",
            message,
        ));
    }
    Ok(())
}

/// The provider's first answer to an application's verification.
#[derive(Debug)]
pub enum Answer {
    /// The result, at once.
    Completed(VerificationResult),
    /// A face check: the result comes later in a callback with this ticket.
    Pending(String),
    /// No answer; the provider's error code.
    Failed(&'static str),
}

/// Records the provider's first answer among the application's automated checks. A result
/// that a callback already brought is never overwritten by "pending" or an error.
pub async fn record_answer(
    state: &AppState,
    application_id: &str,
    answer: Answer,
) -> ApiResult<()> {
    let provider = state.realname.name();
    let mut tx = state.db.begin_write().await?;
    let mut automated = load_automated(&mut tx, application_id).await?;
    let has_face = has_face(&mut tx, application_id).await?;
    let still_pending = automated.real_name_verification.starts_with("pending");
    match answer {
        Answer::Completed(result) => {
            apply_result(&mut automated, &result, has_face);
            sqlx::query(
                "UPDATE face_checks SET provider = $1, completed_at = $2 \
                 WHERE application_id = $3",
            )
            .bind(&result.provider)
            .bind(now_ms())
            .bind(application_id)
            .execute(&mut *tx)
            .await?;
        }
        Answer::Pending(ticket) => {
            sqlx::query(
                "UPDATE face_checks SET ticket = $1, provider = $2 WHERE application_id = $3",
            )
            .bind(&ticket)
            .bind(provider)
            .bind(application_id)
            .execute(&mut *tx)
            .await?;
            if still_pending {
                automated.real_name_verification = format!("pending ({provider} provider)");
            }
            tracing::info!(provider, application = application_id, %ticket,
                "face check pending at the provider");
        }
        Answer::Failed(code) => {
            if still_pending {
                automated.real_name_verification = format!("error: {code} ({provider} provider)");
                if has_face {
                    automated.face_check = FaceCheck {
                        detail: Some(code.to_owned()),
                        provider: Some(provider.to_owned()),
                        ..FaceCheck::state("error")
                    };
                }
            }
        }
    }
    save_automated(&mut tx, application_id, &automated).await?;
    tx.commit().await?;
    Ok(())
}

/// What became of a callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// Applied to this application.
    Applied(String),
    /// Already applied before: acknowledged and ignored.
    Duplicate(String),
    /// Neither its ticket nor its request id is an application of ours.
    Unknown,
}

/// Applies a provider's callback once per (provider, ticket), durably.
pub async fn apply_callback(
    state: &AppState,
    callback: &Callback,
    channel: &'static str,
) -> ApiResult<CallbackOutcome> {
    let result = &callback.result;
    let mut tx = state.db.begin_write().await?;
    let by_ticket = sqlx::query("SELECT application_id FROM face_checks WHERE ticket = $1")
        .bind(&callback.ticket)
        .fetch_optional(&mut *tx)
        .await?;
    let application_id = match by_ticket {
        Some(row) => {
            let id: String = row.try_get("application_id")?;
            if id != result.request_id {
                let message = "the callback's ticket belongs to another request than it names";
                return Err(ApiError::conflict("callback_request_mismatch", message));
            }
            id
        }
        None => {
            let known = sqlx::query("SELECT id FROM worker_applications WHERE id = $1")
                .bind(&result.request_id)
                .fetch_optional(&mut *tx)
                .await?;
            match known {
                Some(row) => row.try_get("id")?,
                None => return Ok(CallbackOutcome::Unknown),
            }
        }
    };
    let first = sqlx::query(
        "INSERT INTO realname_callbacks \
           (provider, ticket, request_id, channel, delivery_attempt, verdict, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (provider, ticket) DO NOTHING",
    )
    .bind(&result.provider)
    .bind(&callback.ticket)
    .bind(&result.request_id)
    .bind(channel)
    .bind(i64::from(callback.delivery_attempt))
    .bind(result.verdict.kind())
    .bind(now_ms())
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !first {
        tx.rollback().await?;
        tracing::info!(provider = %result.provider, ticket = %callback.ticket, channel,
            attempt = callback.delivery_attempt, "duplicate real-name callback ignored");
        return Ok(CallbackOutcome::Duplicate(application_id));
    }
    let mut automated = load_automated(&mut tx, &application_id).await?;
    let has_face = has_face(&mut tx, &application_id).await?;
    apply_result(&mut automated, result, has_face);
    save_automated(&mut tx, &application_id, &automated).await?;
    sqlx::query(
        "UPDATE face_checks SET ticket = COALESCE(ticket, $1), provider = $2, completed_at = $3 \
         WHERE application_id = $4",
    )
    .bind(&callback.ticket)
    .bind(&result.provider)
    .bind(now_ms())
    .bind(&application_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(provider = %result.provider, ticket = %callback.ticket, channel,
        application = %application_id, verdict = result.verdict.kind(),
        "real-name callback applied");
    Ok(CallbackOutcome::Applied(application_id))
}

/// Consumes the callbacks of the configured provider's own channel, for as long as the
/// server runs. A callback that cannot be applied (the database is down) is retried a few
/// times, then logged.
pub fn spawn_consumer(state: AppState) {
    let Some(mut callbacks) = state.realname.take_callbacks() else {
        return;
    };
    tokio::spawn(async move {
        while let Some(callback) = callbacks.recv().await {
            for attempt in 0..5u32 {
                match apply_callback(&state, &callback, "provider").await {
                    Ok(CallbackOutcome::Unknown) => {
                        tracing::warn!(ticket = %callback.ticket,
                            "real-name callback for no known application");
                    }
                    Ok(_) => {}
                    Err(e) if attempt < 4 => {
                        tracing::warn!(ticket = %callback.ticket, error = %e,
                            "real-name callback not applied yet; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(200 << attempt)).await;
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(ticket = %callback.ticket, error = %e,
                            "real-name callback could not be applied");
                    }
                }
                break;
            }
        }
    });
}

/// A callback as a licensed provider posts it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallbackBody {
    pub ticket: String,
    pub delivery_attempt: u32,
    pub result: VerificationResult,
}

/// The answer to an HTTP callback.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallbackAck {
    pub ticket: String,
    /// True the first time; a repeat is acknowledged with `duplicate` and changes nothing.
    pub applied: bool,
    pub duplicate: bool,
}

/// The value of [`SIGNATURE_HEADER`] for `body` signed at `timestamp` (Unix seconds).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Checks an HTTP callback's timestamp and signature, in constant time.
fn verify(secret: &str, headers: &axum::http::HeaderMap, body: &[u8]) -> ApiResult<()> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let invalid = || {
        let message = format!(
            "the callback is not signed with this platform's callback secret: {SIGNATURE_HEADER} \
             must be sha256=<hex HMAC-SHA256 of \"{{{TIMESTAMP_HEADER}}}.{{body}}\">"
        );
        ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "callback_signature_invalid",
            message,
        )
    };
    let timestamp: i64 = header(TIMESTAMP_HEADER)
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(invalid)?;
    let signature = header(SIGNATURE_HEADER)
        .and_then(|s| s.trim().strip_prefix("sha256="))
        .and_then(|s| hex::decode(s).ok())
        .ok_or_else(invalid)?;
    mac(secret, timestamp, body)
        .verify_slice(&signature)
        .map_err(|_| invalid())?;
    if (now_ms() / 1_000 - timestamp).abs() > MAX_CALLBACK_SKEW_SECS {
        let message = "the callback's timestamp is more than 5 minutes from the server's clock; \
                       sign it again when sending it";
        return Err(ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "callback_signature_expired",
            message,
        ));
    }
    Ok(())
}

/// Receives a provider's callback over HTTP: checks its signature, then applies it once.
pub async fn receive(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    body: &[u8],
    address: Option<String>,
) -> ApiResult<CallbackAck> {
    let Some(secret) = &state.config.realname.callback_secret else {
        let message = "this server takes no real-name callbacks over HTTP: no callback secret \
                       is configured ([realname] callback_secret)";
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "callbacks_not_configured",
            message,
        ));
    };
    if let Err(e) = verify(secret.expose(), headers, body) {
        let event = Event::anonymous("realname_callback", Outcome::Refused)
            .detail(serde_json::json!({ "code": e.code }))
            .address(address);
        audit::record(state, event).await?;
        return Err(e);
    }
    let invalid = |what: &str| {
        let message = format!(
            "the callback is not one this platform reads ({what}): send {{ticket, \
             delivery_attempt, result}}"
        );
        ApiError::bad_request("invalid_callback", message)
    };
    let callback: CallbackBody = serde_json::from_slice(body).map_err(|_| invalid("not JSON"))?;
    let ticket_ok = (1..=200).contains(&callback.ticket.trim().len());
    if !ticket_ok || callback.result.request_id.trim().is_empty() {
        return Err(invalid("empty ticket or request id"));
    }
    if callback.result.provider != state.realname.name() {
        let message = format!(
            "the callback names provider {:?}, but this platform verifies with {:?}",
            callback.result.provider,
            state.realname.name()
        );
        return Err(ApiError::bad_request("callback_provider_mismatch", message));
    }
    let ticket = callback.ticket.clone();
    let callback = Callback {
        ticket: callback.ticket,
        result: callback.result,
        delivery_attempt: callback.delivery_attempt,
    };
    let (id, applied) = match apply_callback(state, &callback, "http").await? {
        CallbackOutcome::Applied(id) => (id, true),
        CallbackOutcome::Duplicate(id) => (id, false),
        CallbackOutcome::Unknown => {
            let message = "neither the ticket nor the request id names an application here";
            return Err(ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "unknown_verification",
                message,
            ));
        }
    };
    let event = Event::anonymous("realname_callback", Outcome::Ok)
        .object(format!("worker_application:{id}"))
        .detail(serde_json::json!({ "ticket": ticket, "duplicate": !applied }))
        .address(address);
    audit::record(state, event).await?;
    Ok(CallbackAck {
        ticket,
        applied,
        duplicate: !applied,
    })
}

/// Writes a provider's result into the automated checks: the combined verdict and, when the
/// application has a face image, the face check.
fn apply_result(automated: &mut Automated, result: &VerificationResult, has_face: bool) {
    let provider = &result.provider;
    automated.real_name_verification = match &result.verdict {
        Verdict::Match => format!("match ({provider} provider)"),
        Verdict::Mismatch { fields } => {
            let fields: Vec<&str> = fields.iter().map(|f| f.as_str()).collect();
            format!("mismatch: {} ({provider} provider)", fields.join(", "))
        }
        Verdict::Unverifiable { reason } => {
            format!("unverifiable: {reason} ({provider} provider)")
        }
    };
    if !has_face {
        return;
    }
    let (state, detail) = match &result.verdict {
        Verdict::Unverifiable { reason } => ("unverifiable", Some(reason.clone())),
        Verdict::Mismatch { fields } if fields.contains(&Element::Face) => ("mismatch", None),
        _ => ("match", None),
    };
    automated.face_check = FaceCheck {
        state: state.to_owned(),
        liveness_passed: result.liveness_passed,
        detail,
        provider: Some(provider.clone()),
    };
}

async fn load_automated(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    application_id: &str,
) -> ApiResult<Automated> {
    let row = sqlx::query("SELECT automated FROM worker_applications WHERE id = $1")
        .bind(application_id)
        .fetch_one(&mut **tx)
        .await?;
    let text: String = row.try_get("automated")?;
    Ok(serde_json::from_str(&text).unwrap_or_default())
}

async fn save_automated(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    application_id: &str,
    automated: &Automated,
) -> ApiResult<()> {
    sqlx::query("UPDATE worker_applications SET automated = $1 WHERE id = $2")
        .bind(onboarding::to_json(automated)?)
        .bind(application_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn has_face(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    application_id: &str,
) -> ApiResult<bool> {
    let row = sqlx::query("SELECT 1 AS hit FROM face_checks WHERE application_id = $1")
        .bind(application_id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_any_change_is_refused() {
        let secret = "a-callback-secret-of-at-least-32-chars";
        let body = br#"{"ticket":"t"}"#;
        let at = now_ms() / 1_000;
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(TIMESTAMP_HEADER, at.to_string().parse().unwrap());
        headers.insert(SIGNATURE_HEADER, sign(secret, at, body).parse().unwrap());
        assert!(verify(secret, &headers, body).is_ok());

        let refused = |headers: &axum::http::HeaderMap, body: &[u8], secret: &str| {
            verify(secret, headers, body).unwrap_err().code
        };
        assert_eq!(
            refused(&headers, b"{\"ticket\":\"u\"}", secret),
            "callback_signature_invalid"
        );
        assert_eq!(
            refused(&headers, body, "another-secret-of-at-least-32-chars"),
            "callback_signature_invalid"
        );
        let mut old = headers.clone();
        let then = at - 3_600;
        old.insert(TIMESTAMP_HEADER, then.to_string().parse().unwrap());
        old.insert(SIGNATURE_HEADER, sign(secret, then, body).parse().unwrap());
        assert_eq!(refused(&old, body, secret), "callback_signature_expired");
        let mut missing = headers.clone();
        missing.remove(SIGNATURE_HEADER);
        assert_eq!(
            refused(&missing, body, secret),
            "callback_signature_invalid"
        );
    }

    #[test]
    fn the_face_check_follows_the_verdict() {
        let result = |verdict, liveness| VerificationResult {
            request_id: "r".into(),
            provider: "sandbox".into(),
            verdict,
            checked_at_ms: 1,
            liveness_passed: Some(liveness),
        };
        let mut automated = Automated::default();
        let face_mismatch = Verdict::Mismatch {
            fields: vec![Element::Name, Element::Face],
        };
        apply_result(&mut automated, &result(face_mismatch, true), true);
        assert_eq!(automated.face_check.state, "mismatch");
        assert_eq!(
            automated.real_name_verification,
            "mismatch: name, face (sandbox provider)"
        );
        let name_only = Verdict::Mismatch {
            fields: vec![Element::Name],
        };
        apply_result(&mut automated, &result(name_only, true), true);
        assert_eq!(automated.face_check.state, "match");
        let dead = Verdict::Unverifiable {
            reason: "liveness failed".into(),
        };
        apply_result(&mut automated, &result(dead, false), true);
        assert_eq!(automated.face_check.state, "unverifiable");
        assert_eq!(automated.face_check.liveness_passed, Some(false));

        let mut without = Automated::default();
        apply_result(&mut without, &result(Verdict::Match, true), false);
        assert_eq!(without.face_check.state, "not_submitted");
    }
}
