//! The server's copy of each order's evidence document, kept in the database.
//!
//! Writes use optimistic concurrency: a document is saved only if its version is still the
//! one that was loaded, and the caller retries otherwise. That holds across several server
//! processes sharing one PostgreSQL database, not only within one.

use automerge::ActorId;
use flexwork_sync::EvidenceDoc;
use sqlx::{AnyConnection, Row};

use crate::error::{ApiError, ApiResult};
use crate::now_ms;

/// How often a write is retried after losing a race to another writer.
pub const MAX_ATTEMPTS: usize = 8;

/// A document as loaded, with the version it must still have when saved.
#[derive(Debug)]
pub struct Loaded {
    pub doc: EvidenceDoc,
    pub version: i64,
}

/// Loads the order's document, or starts it from the shared skeleton.
pub async fn load(conn: &mut AnyConnection, actor: &ActorId, order_id: &str) -> ApiResult<Loaded> {
    let row = sqlx::query("SELECT doc, version FROM evidence_docs WHERE order_id = $1")
        .bind(order_id)
        .fetch_optional(&mut *conn)
        .await?;
    let stored = row.map(|r| Ok::<_, sqlx::Error>((r.try_get("doc")?, r.try_get("version")?)));
    open(order_id, actor, stored.transpose()?)
}

/// A document from its stored bytes and version, or the skeleton when nothing is stored.
pub fn open(order_id: &str, actor: &ActorId, stored: Option<(Vec<u8>, i64)>) -> ApiResult<Loaded> {
    let actor = actor.clone();
    let Some((bytes, version)) = stored else {
        let doc = EvidenceDoc::new(order_id, actor).map_err(ApiError::internal)?;
        return Ok(Loaded { doc, version: 0 });
    };

    let doc = EvidenceDoc::load(&bytes, actor).map_err(ApiError::internal)?;
    Ok(Loaded { doc, version })
}

/// Saves the document if nobody saved it since it was loaded. Returns false on a lost race.
pub async fn save(
    conn: &mut AnyConnection,
    order_id: &str,
    loaded: &mut Loaded,
) -> ApiResult<bool> {
    let bytes = loaded.doc.save();
    let counts = Counts::of(&loaded.doc)?;
    let now = now_ms();
    let result = if loaded.version == 0 {
        sqlx::query(
            "INSERT INTO evidence_docs \
               (order_id, doc, version, updated_at, photos, track_points, signatures, notes) \
             VALUES ($1, $2, 1, $3, $4, $5, $6, $7) ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(order_id)
        .bind(bytes)
        .bind(now)
        .bind(counts.photos)
        .bind(counts.track_points)
        .bind(counts.signatures)
        .bind(counts.notes)
        .execute(&mut *conn)
        .await?
    } else {
        sqlx::query(
            "UPDATE evidence_docs SET doc = $1, version = version + 1, updated_at = $2, \
               photos = $3, track_points = $4, signatures = $5, notes = $6 \
             WHERE order_id = $7 AND version = $8",
        )
        .bind(bytes)
        .bind(now)
        .bind(counts.photos)
        .bind(counts.track_points)
        .bind(counts.signatures)
        .bind(counts.notes)
        .bind(order_id)
        .bind(loaded.version)
        .execute(&mut *conn)
        .await?
    };

    let saved = result.rows_affected() == 1;
    if saved {
        loaded.version += 1;
    }
    Ok(saved)
}

/// What a document holds, counted: kept on its row so lists need not load documents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub photos: i64,
    pub track_points: i64,
    pub signatures: i64,
    pub notes: i64,
}

impl Counts {
    /// Counts what `doc` holds.
    pub fn of(doc: &EvidenceDoc) -> ApiResult<Self> {
        let evidence = doc.read().map_err(ApiError::internal)?;
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        Ok(Self {
            photos: count(evidence.photos.len()),
            track_points: count(evidence.track.len()),
            signatures: count(evidence.signatures.len()),
            notes: count(evidence.notes.len()),
        })
    }
}

/// The counts of documents saved before they were counted on save (migration 0019): each is
/// read once, counted and its counts stored, unless it changed meanwhile (then its new save
/// stored them). Returns the counts by order id.
pub async fn backfill_counts(
    pool: &sqlx::AnyPool,
    actor: &ActorId,
    order_ids: &[String],
) -> ApiResult<std::collections::HashMap<String, Counts>> {
    let mut counted = std::collections::HashMap::new();
    if order_ids.is_empty() {
        return Ok(counted);
    }
    let sql = format!(
        "SELECT order_id, doc, version FROM evidence_docs \
         WHERE photos IS NULL AND order_id IN ({})",
        placeholders(1, order_ids.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in order_ids {
        query = query.bind(id);
    }
    for row in query.fetch_all(pool).await? {
        let order_id: String = row.try_get("order_id")?;
        let version: i64 = row.try_get("version")?;
        let loaded = open(&order_id, actor, Some((row.try_get("doc")?, version)))?;
        let counts = Counts::of(&loaded.doc)?;
        sqlx::query(
            "UPDATE evidence_docs SET photos = $1, track_points = $2, signatures = $3, \
               notes = $4 WHERE order_id = $5 AND version = $6 AND photos IS NULL",
        )
        .bind(counts.photos)
        .bind(counts.track_points)
        .bind(counts.signatures)
        .bind(counts.notes)
        .bind(&order_id)
        .bind(version)
        .execute(pool)
        .await?;
        counted.insert(order_id, counts);
    }
    Ok(counted)
}

/// `$start, $start+1, …`: `count` numbered placeholders. Only these are generated into SQL;
/// every value is bound.
pub fn placeholders(start: usize, count: usize) -> String {
    let numbers = (start..start + count).map(|i| format!("${i}"));
    numbers.collect::<Vec<_>>().join(", ")
}

/// Records what a changed document says: its photos (for reuse checks and upload rights) and
/// its submission. Returns whether the order is submitted, so the caller queues verification
/// once its transaction is committed.
pub async fn ingest(
    conn: &mut AnyConnection,
    order_id: &str,
    doc: &EvidenceDoc,
) -> ApiResult<bool> {
    for photo in doc.photos().map_err(ApiError::internal)? {
        sqlx::query(
            "INSERT INTO evidence_photos (order_id, photo_id, hash) VALUES ($1, $2, $3) \
             ON CONFLICT (order_id, photo_id) DO NOTHING",
        )
        .bind(order_id)
        .bind(&photo.id)
        .bind(photo.hash.to_hex())
        .execute(&mut *conn)
        .await?;
    }

    let submitted_at = doc.submitted_at_ms().map_err(ApiError::internal)?;
    let Some(submitted_at) = submitted_at else {
        return Ok(false);
    };
    sqlx::query(
        "UPDATE orders SET submitted_at = COALESCE(submitted_at, $1), \
             needs_verification = needs_verification + 1 WHERE id = $2",
    )
    .bind(submitted_at)
    .bind(order_id)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}
