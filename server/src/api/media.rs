//! Content-addressed, resumable media upload, and download.
//!
//! `PUT /media/{hash}?offset=N&size=TOTAL` appends one chunk to an unfinished upload kept in
//! the data folder; a chunk must start where the server's copy ends, so an interrupted
//! upload resumes where it stopped. When the last byte arrives the whole file's SHA-256 is
//! compared with `{hash}`, its type is sniffed from its bytes, and only then is it written to
//! the media store and acknowledged as `complete`. Only media referenced by one of the
//! caller's evidence documents may be uploaded, so sync documents first.

use std::path::PathBuf;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flexwork_sync::{ContentHash, ContentHasher, ErrorBody, MediaState, MediaStatus};
use serde::Deserialize;
use sqlx::Row;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::QueryParams;
use crate::auth::{Caller, Permission, WorkScope};
use crate::error::{ApiError, ApiResult};
use crate::{AppState, now_ms};

/// Query of a chunk upload.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChunkParams {
    /// Where this chunk starts in the blob: the `received` of the upload's status.
    pub offset: u64,
    /// The whole blob's size in bytes.
    pub size: u64,
}

fn parse_hash(raw: &str) -> ApiResult<ContentHash> {
    raw.parse().map_err(|e: flexwork_sync::InvalidHash| {
        ApiError::bad_request("invalid_hash", e.to_string())
    })
}

/// Where the caller's upload of a blob stands.
///
/// `complete` only once the caller uploaded the bytes: knowing a hash proves nothing. After
/// an interruption a device continues from `received`.
///
/// Who may call: callers whose evidence references the blob: workers (their orders'), enterprise
/// accounts (their organisation's orders'), and holders of Permission `read_all_work` (any
/// order's): operators in the reviewer, risk, finance, legal, welfare, support or regulator liaison
/// team, and regulators.
#[utoipa::path(
    get,
    path = "/media/{hash}/status",
    operation_id = "media_upload_status",
    tag = "media",
    security(("bearer" = [])),
    params(("hash" = String, Path, description = "The blob's SHA-256: 64 hex digits")),
    responses(
        (status = 200, description = "The upload's state", body = MediaStatus),
        (status = 400, description = "`invalid_hash`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`media_not_referenced`: no evidence of the caller's \
            references it (sync documents first); `forbidden`: an operator whose teams read no \
            work", body = ErrorBody),
    ),
)]
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
    Path(hash): Path<String>,
) -> ApiResult<Json<MediaStatus>> {
    let hash = parse_hash(&hash)?;
    require_reference(&state, &caller, &hash).await?;
    Ok(Json(current_status(&state, &caller, &hash).await?))
}

/// Where the caller's upload stands. A blob counts as complete for a caller only once the
/// caller uploaded its bytes: knowing a hash proves nothing about holding the photo.
async fn current_status(
    state: &AppState,
    caller: &Caller,
    hash: &ContentHash,
) -> ApiResult<MediaStatus> {
    if let Some(size) = uploaded_size(state, &caller.account_id, hash).await? {
        return Ok(MediaStatus {
            hash: *hash,
            state: MediaState::Complete,
            received: size,
        });
    }
    let received = partial_len(&partial_path(state, caller, hash)).await?;
    let state = if received == 0 {
        MediaState::Absent
    } else {
        MediaState::Partial
    };
    Ok(MediaStatus {
        hash: *hash,
        state,
        received,
    })
}

async fn uploaded_size(
    state: &AppState,
    account_id: &str,
    hash: &ContentHash,
) -> ApiResult<Option<u64>> {
    let row = sqlx::query(
        "SELECT m.size FROM media_objects m JOIN media_uploads u ON u.hash = m.hash \
         WHERE m.hash = $1 AND u.account_id = $2",
    )
    .bind(hash.to_hex())
    .bind(account_id)
    .fetch_optional(&state.db.pool)
    .await?;
    Ok(row
        .map(|r| r.try_get::<i64, _>("size"))
        .transpose()?
        .map(|s| s as u64))
}

fn partial_path(state: &AppState, caller: &Caller, hash: &ContentHash) -> PathBuf {
    state
        .config
        .uploads_dir()
        .join(format!("{hash}.{}.part", caller.account_id))
}

async fn partial_len(path: &std::path::Path) -> ApiResult<u64> {
    match tokio::fs::metadata(path).await {
        Ok(meta) => Ok(meta.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// Refuses media that no evidence document of the caller references.
async fn require_reference(state: &AppState, caller: &Caller, hash: &ContentHash) -> ApiResult<()> {
    // Reviewers read application documents too, which no evidence references.
    if caller.can(Permission::ReviewApplications) {
        return Ok(());
    }
    let (sql, scope) = match caller.work_scope() {
        WorkScope::All => (
            "SELECT 1 AS hit FROM evidence_photos WHERE hash = $1 AND $2 = $2 LIMIT 1",
            "",
        ),
        WorkScope::Worker(worker) => (
            "SELECT 1 AS hit FROM evidence_photos p JOIN orders o ON o.id = p.order_id \
             WHERE p.hash = $1 AND o.worker_id = $2 LIMIT 1",
            worker,
        ),
        WorkScope::Organisation(organisation) => (
            "SELECT 1 AS hit FROM evidence_photos p JOIN orders o ON o.id = p.order_id \
             WHERE p.hash = $1 AND o.enterprise_id = $2 LIMIT 1",
            organisation,
        ),
        WorkScope::Nothing => return Err(Permission::ReadAllWork.refusal()),
    };
    let hit = sqlx::query(sql)
        .bind(hash.to_hex())
        .bind(scope)
        .fetch_optional(&state.db.pool)
        .await?;

    if hit.is_none() {
        let message = "no evidence of yours references this media; sync your documents first";
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "media_not_referenced",
            message,
        ));
    }
    Ok(())
}

/// Only a blob's own uploader — or the enterprise of an order whose worker uploaded it, or
/// an operator — may read it.
async fn require_readable(state: &AppState, caller: &Caller, hash: &ContentHash) -> ApiResult<()> {
    // Reviewers read every blob, application documents included.
    if caller.can(Permission::ReviewApplications) {
        return Ok(());
    }
    let (sql, scope) = match caller.work_scope() {
        // Other operator teams and regulators read evidence of orders, nothing else.
        WorkScope::All => (
            "SELECT 1 AS hit FROM evidence_photos p \
             JOIN orders o ON o.id = p.order_id \
             JOIN media_uploads u ON u.hash = p.hash AND u.account_id = o.worker_id \
             WHERE p.hash = $1 AND $2 = $2 LIMIT 1",
            "",
        ),
        WorkScope::Worker(worker) => (
            "SELECT 1 AS hit FROM media_uploads WHERE hash = $1 AND account_id = $2",
            worker,
        ),
        WorkScope::Organisation(organisation) => (
            "SELECT 1 AS hit FROM evidence_photos p JOIN orders o ON o.id = p.order_id \
             JOIN media_uploads u ON u.hash = p.hash AND u.account_id = o.worker_id \
             WHERE p.hash = $1 AND o.enterprise_id = $2 LIMIT 1",
            organisation,
        ),
        WorkScope::Nothing => return Err(ApiError::not_found("media")),
    };
    let hit = sqlx::query(sql)
        .bind(hash.to_hex())
        .bind(scope)
        .fetch_optional(&state.db.pool)
        .await?;
    hit.map(|_| ()).ok_or_else(|| ApiError::not_found("media"))
}

/// Uploads one chunk of a blob; a resumable, content-addressed upload.
///
/// The body is the chunk's bytes, at most 8 MiB, starting at `offset`, which must be where
/// the server's copy ends. When the last byte arrives the whole blob's SHA-256 is compared
/// with `{hash}` and its type sniffed (JPEG, PNG, WebP, GIF, TIFF, HEIC or MP4); only then is
/// it stored and acknowledged as `complete`. A blob already complete is acknowledged at once.
///
/// Who may call: Permission `record_evidence`: workers, for media their own evidence
/// references.
#[utoipa::path(
    put,
    path = "/media/{hash}",
    operation_id = "upload_media_chunk",
    tag = "media",
    security(("bearer" = [])),
    params(("hash" = String, Path, description = "The blob's SHA-256: 64 hex digits"), ChunkParams),
    request_body(description = "The chunk's bytes",
        content(("application/octet-stream"))),
    responses(
        (status = 200, description = "Where the upload stands now: `partial` or `complete`",
            body = MediaStatus),
        (status = 400, description = "`invalid_hash`, `invalid_query`, `empty_media`, \
            `chunk_out_of_range`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not a worker; `media_not_referenced`: none \
            of the worker's evidence references it (sync documents first)", body = ErrorBody),
        (status = 409, description = "`upload_offset_mismatch`: continue from the server's \
            `received`", body = ErrorBody),
        (status = 413, description = "`media_too_large`: the declared size is over the \
            server's limit; `body_too_large`: a chunk over 8 MiB", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not a photo or video the \
            platform accepts (the upload is discarded)", body = ErrorBody),
        (status = 422, description = "`hash_mismatch`: the bytes do not hash to `{hash}` (the \
            upload is discarded; upload again)", body = ErrorBody),
    ),
)]
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(hash): Path<String>,
    QueryParams(params): QueryParams<ChunkParams>,
    body: Bytes,
) -> ApiResult<Json<MediaStatus>> {
    caller.require(Permission::RecordEvidence)?;
    let hash = parse_hash(&hash)?;
    check_size(&state, &params, body.len())?;
    require_reference(&state, &caller, &hash).await?;

    let _guard = state.upload_locks[usize::from(hash.as_bytes()[0]) % state.upload_locks.len()]
        .lock()
        .await;
    let current = current_status(&state, &caller, &hash).await?;
    if current.state == MediaState::Complete {
        return Ok(Json(current));
    }
    if params.offset != current.received {
        let message = format!(
            "this chunk starts at byte {}, but the server holds {} bytes; continue from there",
            params.offset, current.received
        );
        return Err(ApiError::conflict("upload_offset_mismatch", message));
    }

    let path = partial_path(&state, &caller, &hash);
    append(&path, &body).await?;
    let received = params.offset + body.len() as u64;
    if received < params.size {
        return Ok(Json(MediaStatus {
            hash,
            state: MediaState::Partial,
            received,
        }));
    }
    finish(&state, &caller, &hash, &path).await.map(Json)
}

fn check_size(state: &AppState, params: &ChunkParams, chunk: usize) -> ApiResult<()> {
    let limit = state.config.limits.max_upload_bytes;
    if params.size > limit {
        let message = format!(
            "media may be at most {limit} bytes; this one is {}",
            params.size
        );
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "media_too_large",
            message,
        ));
    }
    if params.size == 0 {
        let message = "the declared size of the media must be at least one byte";
        return Err(ApiError::bad_request("empty_media", message));
    }
    if params.offset.saturating_add(chunk as u64) > params.size {
        let message = "the chunk runs past the declared size of the media";
        return Err(ApiError::bad_request("chunk_out_of_range", message));
    }
    Ok(())
}

async fn append(path: &std::path::Path, chunk: &[u8]) -> ApiResult<()> {
    let mut options = tokio::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).await.map_err(ApiError::internal)?;
    file.write_all(chunk).await.map_err(ApiError::internal)?;
    file.sync_all().await.map_err(ApiError::internal)
}

/// Checks the whole upload and moves it into the media store.
async fn finish(
    state: &AppState,
    caller: &Caller,
    hash: &ContentHash,
    path: &std::path::Path,
) -> ApiResult<MediaStatus> {
    let (actual, head) = hash_file(path).await?;
    if actual != *hash {
        discard(path).await;
        let message = format!("the uploaded bytes hash to {actual}, not to {hash}; upload again");
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "hash_mismatch",
            message,
        ));
    }
    let Some(media_type) = sniff(&head) else {
        discard(path).await;
        let message = "only JPEG, PNG, WebP, GIF, TIFF, HEIC and MP4 media are accepted";
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        ));
    };

    let size = tokio::fs::metadata(path)
        .await
        .map_err(ApiError::internal)?
        .len();
    crate::replication::store_upload(state, hash, path).await?;
    record_object(state, hash, size, media_type).await?;
    record_upload(state, &caller.account_id, hash).await?;
    discard(path).await;
    requeue_orders_using(state, &caller.account_id, hash).await?;

    tracing::info!(%hash, size, media_type, "media stored");
    Ok(MediaStatus {
        hash: *hash,
        state: MediaState::Complete,
        received: size,
    })
}

async fn hash_file(path: &std::path::Path) -> ApiResult<(ContentHash, Vec<u8>)> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(ApiError::internal)?;
    let mut hasher = ContentHasher::new();
    let mut head = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf).await.map_err(ApiError::internal)?;
        if n == 0 {
            return Ok((hasher.finish(), head));
        }
        if head.is_empty() {
            head.extend_from_slice(&buf[..n.min(64)]);
        }
        hasher.update(&buf[..n]);
    }
}

async fn discard(path: &std::path::Path) {
    if let Err(e) = tokio::fs::remove_file(path).await {
        tracing::warn!(error = %e, "could not remove unfinished upload");
    }
}

/// The media type of the first bytes of a file, if it is one we accept.
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    if let Ok(format) = image::guess_format(head) {
        return match format {
            image::ImageFormat::Jpeg => Some("image/jpeg"),
            image::ImageFormat::Png => Some("image/png"),
            image::ImageFormat::WebP => Some("image/webp"),
            image::ImageFormat::Gif => Some("image/gif"),
            image::ImageFormat::Tiff => Some("image/tiff"),
            _ => None,
        };
    }
    match head.get(4..12) {
        Some(b"ftypheic") | Some(b"ftypheix") | Some(b"ftypmif1") => Some("image/heic"),
        Some(brand) if brand.starts_with(b"ftyp") => Some("video/mp4"),
        _ => None,
    }
}

async fn record_object(
    state: &AppState,
    hash: &ContentHash,
    size: u64,
    media_type: &str,
) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO media_objects (hash, size, media_type, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (hash) DO NOTHING",
    )
    .bind(hash.to_hex())
    .bind(size as i64)
    .bind(media_type)
    .bind(now_ms())
    .execute(&state.db.pool)
    .await?;
    Ok(())
}

async fn record_upload(state: &AppState, account_id: &str, hash: &ContentHash) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO media_uploads (hash, account_id, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (hash, account_id) DO NOTHING",
    )
    .bind(hash.to_hex())
    .bind(account_id)
    .bind(now_ms())
    .execute(&state.db.pool)
    .await?;
    Ok(())
}

/// New media is new evidence: verify again the uploader's submitted orders that use it.
async fn requeue_orders_using(
    state: &AppState,
    worker_id: &str,
    hash: &ContentHash,
) -> ApiResult<()> {
    let rows = sqlx::query(
        "SELECT DISTINCT o.id FROM orders o JOIN evidence_photos p ON p.order_id = o.id \
         WHERE p.hash = $1 AND o.worker_id = $2 AND o.submitted_at IS NOT NULL",
    )
    .bind(hash.to_hex())
    .bind(worker_id)
    .fetch_all(&state.db.pool)
    .await?;

    for row in rows {
        let order_id: String = row.try_get("id")?;
        sqlx::query("UPDATE orders SET needs_verification = needs_verification + 1 WHERE id = $1")
            .bind(&order_id)
            .execute(&state.db.pool)
            .await?;
        state.verifier.enqueue(&order_id);
    }
    Ok(())
}

/// Downloads a blob's bytes, verified against their hash on the way out.
///
/// The answer's `Content-Type` is the type sniffed at upload.
///
/// Who may call: for a blob that evidence references, the worker who uploaded it, the enterprise of
/// an order whose evidence references it and whose worker uploaded it, and holders of Permission
/// `read_all_work` likewise for any order: operators in the reviewer, risk, finance, legal,
/// welfare, support or regulator liaison team, and regulators.
#[utoipa::path(
    get,
    path = "/media/{hash}",
    operation_id = "download_media",
    tag = "media",
    security(("bearer" = [])),
    params(("hash" = String, Path, description = "The blob's SHA-256: 64 hex digits")),
    responses(
        (status = 200, description = "The blob's bytes", content(
            ("image/jpeg"), ("image/png"), ("image/webp"), ("image/gif"), ("image/tiff"),
            ("image/heic"), ("video/mp4"),
        )),
        (status = 400, description = "`invalid_hash`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`media_not_referenced`: no evidence the caller may see \
            references it; `forbidden`: an operator whose teams read no work", body = ErrorBody),
        (status = 404, description = "`not_found`: not stored, or not the caller's to read",
            body = ErrorBody),
    ),
)]
pub async fn download(
    State(state): State<AppState>,
    caller: Caller,
    Path(hash): Path<String>,
) -> ApiResult<Response> {
    let hash = parse_hash(&hash)?;
    require_reference(&state, &caller, &hash).await?;
    require_readable(&state, &caller, &hash).await?;
    crate::face::refuse_face_image(&state, &hash).await?;
    let row = sqlx::query("SELECT media_type FROM media_objects WHERE hash = $1")
        .bind(hash.to_hex())
        .fetch_optional(&state.db.pool)
        .await?
        .ok_or_else(|| ApiError::not_found("media"))?;
    let media_type: String = row.try_get("media_type")?;

    let bytes = crate::replication::read(&state, &hash).await?;
    let mut response = (StatusCode::OK, bytes).into_response();
    if let Ok(value) = HeaderValue::from_str(&media_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    Ok(response)
}

/// `GET /media/{hash}/thumbnail` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ThumbnailSize {
    /// Longest side in pixels, 64 to 1024 (320 when absent).
    pub max: Option<u32>,
}

/// A photo's thumbnail: a JPEG at most `max` pixels on its longer side, turned upright as its
/// EXIF orientation says.
///
/// Decoded under the same limits as verification. Never for face images.
///
/// Who may call: as for `GET /media/{hash}`: for a blob that evidence references, the worker who
/// uploaded it, the enterprise of an order whose evidence references it and whose worker uploaded
/// it, and holders of Permission `read_all_work` likewise for any order: operators in the
/// reviewer, risk, finance, legal, welfare, support or regulator liaison team, and regulators.
#[utoipa::path(
    get,
    path = "/media/{hash}/thumbnail",
    operation_id = "media_thumbnail",
    tag = "media",
    security(("bearer" = [])),
    params(("hash" = String, Path, description = "The blob's SHA-256: 64 hex digits"),
        ThumbnailSize),
    responses(
        (status = 200, description = "The thumbnail", content_type = "image/jpeg"),
        (status = 400, description = "`invalid_hash`; `invalid_query`: `max` is not 64 to \
            1024", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`media_not_referenced`: no evidence the caller may see \
            references it; `forbidden`: an operator whose teams read no work", body = ErrorBody),
        (status = 404, description = "`not_found`: not stored, or not the caller's to read",
            body = ErrorBody),
        (status = 415, description = "`thumbnail_unavailable`: the file is not an image the \
            server can decode (or too large to)", body = ErrorBody),
        (status = 503, description = "`thumbnails_busy`: two thumbnails are being made and \
            this one waited 20 seconds for its turn; `Retry-After` says when to try again",
            body = ErrorBody),
    ),
)]
pub async fn thumbnail(
    State(state): State<AppState>,
    caller: Caller,
    Path(hash): Path<String>,
    QueryParams(size): QueryParams<ThumbnailSize>,
) -> ApiResult<Response> {
    let hash = parse_hash(&hash)?;
    let max = size.max.unwrap_or(320);
    if !(64..=1024).contains(&max) {
        let message = "max is the longest side in pixels, 64 to 1024";
        return Err(ApiError::bad_request("invalid_query", message).field("max"));
    }
    require_reference(&state, &caller, &hash).await?;
    require_readable(&state, &caller, &hash).await?;
    crate::face::refuse_face_image(&state, &hash).await?;
    // At most THUMBNAILS_AT_ONCE decodes at a time; a request that cannot get a turn within
    // 20 seconds is told to come back rather than queueing without end.
    let wait = std::time::Duration::from_secs(20);
    let _slot = match tokio::time::timeout(wait, state.thumbnail_slots.acquire()).await {
        Ok(Ok(slot)) => slot,
        _ => {
            let message = "too many thumbnails are being made right now; try again shortly";
            let mut busy =
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "thumbnails_busy", message)
                    .into_response();
            busy.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return Ok(busy);
        }
    };
    let bytes = crate::replication::read(&state, &hash).await?;
    let thresholds = state.config.verification.clone();
    let made =
        tokio::task::spawn_blocking(move || crate::verify::thumbnail(&bytes, max, &thresholds))
            .await
            .map_err(ApiError::internal)?;
    let jpeg = made.map_err(|reason| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "thumbnail_unavailable",
            format!(
                "no thumbnail can be made of this file: {}",
                crate::identity::redact_numbers(&reason)
            ),
        )
    })?;
    let mut response = (StatusCode::OK, jpeg).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    // Like the photo itself, never kept by the browser: evidence shown on a shared computer
    // must not outlive the session (the answer gets `Cache-Control: no-store`).
    Ok(response)
}

/// Where each media site's copy of a blob stands.
///
/// Who may call: Permission `manage_storage`: operators in the administrator team.
#[utoipa::path(
    get,
    path = "/media/{hash}/copies",
    operation_id = "media_copies",
    tag = "media",
    security(("bearer" = [])),
    params(("hash" = String, Path, description = "The blob's SHA-256: 64 hex digits")),
    responses(
        (status = 200, description = "One entry per site",
            body = Vec<crate::replication::CopyState>),
        (status = 400, description = "`invalid_hash`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an administrator", body = ErrorBody),
    ),
)]
pub async fn copies(
    State(state): State<AppState>,
    caller: Caller,
    Path(hash): Path<String>,
) -> ApiResult<Json<Vec<crate::replication::CopyState>>> {
    caller.require(Permission::ManageStorage)?;
    let hash = parse_hash(&hash)?;
    Ok(Json(crate::replication::copies(&state, &hash).await?))
}

/// When the last successful restore drill ran, and whether one is overdue.
///
/// Who may call: Permission `manage_storage`: operators in the administrator team.
#[utoipa::path(
    get,
    path = "/drills/status",
    operation_id = "restore_drill_status",
    tag = "media",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The last drill", body = crate::drill::DrillStatus),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an administrator", body = ErrorBody),
    ),
)]
pub async fn drill_status(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<crate::drill::DrillStatus>> {
    caller.require(Permission::ManageStorage)?;
    Ok(Json(crate::drill::status(&state).await?))
}

/// Removes unfinished uploads nobody touched for `max_age`: a phone that resumes an upload
/// appends to its file, so only abandoned ones grow old. Returns how many were removed.
pub async fn sweep_abandoned_uploads(dir: &std::path::Path, max_age: std::time::Duration) -> u64 {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return 0;
    };
    let mut removed = 0;
    while let Ok(Some(entry)) = entries.next_entry().await {
        let is_part = entry.file_name().to_string_lossy().ends_with(".part");
        let age = entry
            .metadata()
            .await
            .ok()
            .and_then(|m| m.modified().ok()?.elapsed().ok());
        if is_part && age.is_some_and(|age| age > max_age) {
            if let Err(e) = tokio::fs::remove_file(entry.path()).await {
                tracing::warn!(error = %e, "could not remove an abandoned upload");
                continue;
            }
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn abandoned_uploads_go_and_recent_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.account.part");
        let fresh = dir.path().join("fresh.account.part");
        let other = dir.path().join("notes.txt");
        for path in [&old, &fresh, &other] {
            std::fs::write(path, b"some bytes").unwrap();
        }
        let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(30 * 86_400);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        std::fs::File::options()
            .write(true)
            .open(&other)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();

        let removed =
            sweep_abandoned_uploads(dir.path(), std::time::Duration::from_secs(7 * 86_400));

        assert_eq!(removed.await, 1);
        assert!(!old.exists());
        assert!(fresh.exists() && other.exists());
    }
}
