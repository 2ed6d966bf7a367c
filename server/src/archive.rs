//! Archived materials of workers (standard 7.2.1: kept at least two years).
//!
//! When a worker's application is decided, everything the worker gave and everything done
//! with it — the identity fields, the declarations, the signature with the exact text it
//! signed, the consent, the automated and real-name checks, the decision — is written as one
//! JSON document into the media store: sealed under its own data key like every blob (so a
//! key rotation re-wraps it with the rest), content-addressed (so any change is seen), and
//! copied to every site (so losing a site loses nothing). A row in `archives` finds it and
//! says until when it must be kept; database triggers refuse to change that row, and refuse
//! to delete it or the application before then, whatever tool asks.
//!
//! Reading an archive back is a reveal: it needs the permission, a reason, and is audited.

use serde::Serialize;
use sqlx::Row;

use crate::audit::{self, Event, Outcome};
use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ApiResult};
use crate::{AppState, new_id, now_ms, onboarding, privacy, rfc3339};

/// How long a worker's materials are kept at least: two years (of 366 days, to be safe
/// across a leap day).
pub const WORKER_MATERIALS_RETENTION_DAYS: i64 = 2 * 366;

/// The row that finds an archive.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ArchiveRecord {
    pub id: String,
    /// What the archive is about, such as `worker_application:<id>`.
    pub subject: String,
    pub kind: String,
    /// The SHA-256 of the archived document (the media store's content address).
    pub hash: String,
    pub size: i64,
    pub created_at: String,
    pub retain_until: String,
}

/// Archives the materials of a decided worker application and marks the application to be
/// kept as long. Safe to call again: an application is archived once.
pub async fn archive_worker_application(state: &AppState, id: &str) -> ApiResult<ArchiveRecord> {
    let subject = format!("worker_application:{id}");
    if let Some(existing) = find(state, &subject).await? {
        let row = sqlx::query("SELECT retain_until FROM archives WHERE id = $1")
            .bind(&existing.id)
            .fetch_one(&state.db.pool)
            .await?;
        keep_until(state, id, row.try_get("retain_until")?).await?;
        return Ok(existing);
    }
    let row = sqlx::query("SELECT * FROM worker_applications WHERE id = $1")
        .bind(id)
        .fetch_optional(&state.db.pool)
        .await?
        .ok_or_else(|| ApiError::not_found("application"))?;
    let open = |column: &'static str| {
        let sealed: Result<String, _> = row.try_get(column);
        async move {
            let sealed = sealed?;
            let field = column.trim_end_matches("_sealed");
            privacy::open(state, "worker_applications", field, id, &sealed).await
        }
    };
    let json = |column: &'static str| -> ApiResult<serde_json::Value> {
        let text: String = row.try_get(column)?;
        serde_json::from_str(&text).map_err(ApiError::internal)
    };
    let consents = sqlx::query(
        "SELECT notice_version, given_at, address FROM consents WHERE subject = $1 \
         ORDER BY given_at",
    )
    .bind(&subject)
    .fetch_all(&state.db.pool)
    .await?
    .iter()
    .map(|c| {
        Ok(serde_json::json!({
            "notice_version": c.try_get::<String, _>("notice_version")?,
            "given_at": rfc3339(c.try_get("given_at")?),
            "address": c.try_get::<Option<String>, _>("address")?,
        }))
    })
    .collect::<ApiResult<Vec<_>>>()?;
    let decided_at: Option<i64> = row.try_get("decided_at")?;
    let decided_at =
        decided_at.ok_or_else(|| ApiError::conflict("not_decided", "decide it first"))?;

    let document = serde_json::json!({
        "kind": "worker_materials",
        "format": 1,
        "application_id": id,
        "login": row.try_get::<String, _>("login")?,
        "applicant": {
            "name": open("name_sealed").await?,
            "id_number": open("id_number_sealed").await?,
            "bank_card": open("bank_card_sealed").await?,
            "phone": open("phone_sealed").await?,
            "trade": row.try_get::<String, _>("trade")?,
        },
        "declarations": json("declarations")?,
        "signature": json("signature")?,
        "declaration_text": onboarding::DECLARATION,
        "consents": consents,
        "automated_checks": json("automated")?,
        "submitted_at": rfc3339(row.try_get("submitted_at")?),
        "decision": {
            "state": row.try_get::<String, _>("state")?,
            "by": row.try_get::<Option<String>, _>("decided_by")?,
            "at": rfc3339(decided_at),
            "reason": row.try_get::<Option<String>, _>("decision_reason")?,
            "account_id": row.try_get::<Option<String>, _>("account_id")?,
        },
        "archived_at": rfc3339(now_ms()),
    });
    let bytes = serde_json::to_vec_pretty(&document).map_err(ApiError::internal)?;
    let retain_until = decided_at + WORKER_MATERIALS_RETENTION_DAYS * 86_400_000;
    store(state, &subject, "worker_materials", &bytes, retain_until).await?;
    keep_until(state, id, retain_until).await?;
    find(state, &subject)
        .await?
        .ok_or_else(|| ApiError::internal("archive row missing after insert"))
}

/// Marks an application to be kept at least until `retain_until` (never shortens it).
async fn keep_until(state: &AppState, id: &str, retain_until: i64) -> ApiResult<()> {
    sqlx::query(
        "UPDATE worker_applications SET retain_until = $1 \
         WHERE id = $2 AND (retain_until IS NULL OR retain_until < $1)",
    )
    .bind(retain_until)
    .bind(id)
    .execute(&state.db.pool)
    .await?;
    Ok(())
}

/// Archives every decided application that has no archive yet — decided before archiving
/// existed, or while no media site could take the archive. Returns how many were archived.
pub async fn archive_missing(state: &AppState) -> ApiResult<usize> {
    let rows = sqlx::query(
        "SELECT id FROM worker_applications WHERE decided_at IS NOT NULL AND retain_until IS NULL",
    )
    .fetch_all(&state.db.pool)
    .await?;
    let mut archived = 0;
    for row in rows {
        archive_worker_application(state, &row.try_get::<String, _>("id")?).await?;
        archived += 1;
    }
    Ok(archived)
}

/// Runs [`archive_missing`] at start and then every hour.
pub fn spawn_backfill(state: AppState) {
    tokio::spawn(async move {
        loop {
            match archive_missing(&state).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(archived = n, "materials of decided applications archived"),
                Err(e) => tracing::warn!(error = %e, "archiving decided applications failed"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(3_600)).await;
        }
    });
}

/// Writes one archive document through the media store and records it.
async fn store(
    state: &AppState,
    subject: &str,
    kind: &str,
    bytes: &[u8],
    retain_until: i64,
) -> ApiResult<()> {
    let hash = crate::replication::store_object(state, bytes, "application/json").await?;
    sqlx::query(
        "INSERT INTO archives (id, subject, kind, hash, size, created_at, retain_until) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(new_id())
    .bind(subject)
    .bind(kind)
    .bind(hash.to_hex())
    .bind(bytes.len() as i64)
    .bind(now_ms())
    .bind(retain_until)
    .execute(&state.db.pool)
    .await?;
    tracing::info!(subject, kind, "materials archived");
    Ok(())
}

async fn find(state: &AppState, subject: &str) -> ApiResult<Option<ArchiveRecord>> {
    let row = sqlx::query("SELECT * FROM archives WHERE subject = $1 ORDER BY created_at LIMIT 1")
        .bind(subject)
        .fetch_optional(&state.db.pool)
        .await?;
    row.as_ref().map(record_from_row).transpose()
}

fn record_from_row(row: &sqlx::any::AnyRow) -> ApiResult<ArchiveRecord> {
    Ok(ArchiveRecord {
        id: row.try_get("id")?,
        subject: row.try_get("subject")?,
        kind: row.try_get("kind")?,
        hash: row.try_get("hash")?,
        size: row.try_get("size")?,
        created_at: rfc3339(row.try_get("created_at")?),
        retain_until: rfc3339(row.try_get("retain_until")?),
    })
}

/// The archives, newest first, optionally of one subject (for those who may read the audit
/// trail: metadata only, nothing personal).
pub async fn list(
    state: &AppState,
    caller: &Caller,
    subject: Option<&str>,
) -> ApiResult<Vec<ArchiveRecord>> {
    caller.require(Permission::ReadAudit)?;
    let rows = match subject {
        Some(subject) => {
            sqlx::query("SELECT * FROM archives WHERE subject = $1 ORDER BY created_at DESC")
                .bind(subject)
                .fetch_all(&state.db.pool)
                .await?
        }
        None => {
            sqlx::query("SELECT * FROM archives ORDER BY created_at DESC LIMIT 500")
                .fetch_all(&state.db.pool)
                .await?
        }
    };
    rows.iter().map(record_from_row).collect()
}

/// One archive's document, checked against its content address, for someone who may reveal
/// personal data and says why; audited.
pub async fn reveal(
    state: &AppState,
    caller: &Caller,
    id: &str,
    reason: &str,
) -> ApiResult<serde_json::Value> {
    caller.require(Permission::RevealPersonalData)?;
    // As for revealing one field: a reason that says something.
    let reason = audit::reason(reason, 5)?;
    let row = sqlx::query("SELECT * FROM archives WHERE id = $1")
        .bind(id)
        .fetch_optional(&state.db.pool)
        .await?
        .ok_or_else(|| ApiError::not_found("archive"))?;
    let record = record_from_row(&row)?;
    let hash: flexwork_sync::ContentHash = record
        .hash
        .parse()
        .map_err(|_| ApiError::internal("archive hash unreadable"))?;
    // The store checks the content against its address on every read.
    let bytes = crate::replication::read(state, &hash).await?;
    let document = serde_json::from_slice(&bytes).map_err(ApiError::internal)?;
    let event = Event::by(caller, "archive_revealed", Outcome::Ok)
        .object(format!("archive:{id}"))
        .detail(serde_json::json!({ "subject": record.subject, "reason": reason }));
    audit::record(state, event).await?;
    Ok(document)
}
