//! Reporting to the regulator (standard 5.2 f, 5.4.7, and the quarterly report of workers'
//! identity and income).
//!
//! An export is one JSON document of one [`ExportKind`] for one period, handed to a
//! [`RegulatorAdapter`]. The default adapter, [`OutboxAdapter`], writes it as a file into
//! the outbox folder (`[checks] outbox_dir`, by default `regulator-outbox` in the data
//! folder), atomically (a temporary file, synced, then renamed), named
//! `<kind>_<period>_v<version>.json`; whatever carries files to the regulator's platform
//! picks them up there. The SHA-256 of the file's bytes is recorded in `regulator_exports`
//! (rows never change or disappear), and every export is in the audit trail
//! (`regulator_export`).
//!
//! Identity in the outbox file and in every API answer is masked. The worker income report
//! also produces a **sealed** document with the full names and ID numbers — the one place
//! they leave the platform — stored in the media store like every archived document
//! (encrypted, content-addressed, copied to every site); the outbox file names it by its
//! content address (`sealed_identity_document`).
//!
//! A new kind (invoices, once they exist) is a variant of [`ExportKind`] and one builder.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest;
use sqlx::Row;

use crate::audit::{self, Event, Outcome};
use crate::auth::Caller;
use crate::checks::{parse_date, quarter_dates, start_of_day_ms};
use crate::error::{ApiError, ApiResult};
use crate::identity::{mask_id_number, mask_name};
use crate::{AppState, new_id, now_ms, privacy, rfc3339};

/// What an export reports.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ExportKind {
    /// Orders created in a date range, with a summary of their evidence and checks. Period:
    /// `YYYY-MM-DD..YYYY-MM-DD` (Asia/Shanghai dates, both included).
    Orders,
    /// Per worker paid in a quarter: identity, gross income, tax withheld, net paid. Period:
    /// `YYYY-Qn`.
    WorkerIncome,
    /// Invoices issued in a date range (blue and red-letter), with their numbers and
    /// amounts. Period: `YYYY-MM-DD..YYYY-MM-DD`.
    Invoices,
}

impl ExportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportKind::Orders => "orders",
            ExportKind::WorkerIncome => "worker_income",
            ExportKind::Invoices => "invoices",
        }
    }

    /// The instants `[from, to)` the period covers, or a 400 saying how to write it.
    pub fn range(self, period: &str) -> ApiResult<(i64, i64)> {
        match self {
            ExportKind::Orders | ExportKind::Invoices => {
                let dates = period
                    .split_once("..")
                    .and_then(|(a, b)| Some((parse_date(a)?, parse_date(b)?)))
                    .filter(|(a, b)| a <= b && (*b - *a).whole_days() <= 366);
                let (from, to) = dates.ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_period",
                        "an orders or invoices export covers YYYY-MM-DD..YYYY-MM-DD, at most \
                         a year",
                    )
                })?;
                let end = to.next_day().unwrap_or(to);
                Ok((start_of_day_ms(from), start_of_day_ms(end)))
            }
            ExportKind::WorkerIncome => {
                let (first, last) = quarter_dates(period).ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_period",
                        "a worker income export covers a quarter, written YYYY-Qn",
                    )
                })?;
                let end = last.next_day().unwrap_or(last);
                Ok((start_of_day_ms(first), start_of_day_ms(end)))
            }
        }
    }
}

/// Where exports go.
pub trait RegulatorAdapter: Send + Sync {
    /// The adapter's name, recorded with each export.
    fn name(&self) -> &'static str;
    /// Hands one export over; `file_name` is unique per export.
    fn deliver(&self, file_name: &str, bytes: &[u8]) -> std::io::Result<()>;
}

/// Writes each export as a file into a folder.
#[derive(Debug, Clone)]
pub struct OutboxAdapter {
    dir: PathBuf,
}

impl OutboxAdapter {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl RegulatorAdapter for OutboxAdapter {
    fn name(&self) -> &'static str {
        "outbox"
    }

    fn deliver(&self, file_name: &str, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        std::fs::create_dir_all(&self.dir)?;
        let target = self.dir.join(file_name);
        if target.exists() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "an export of that name is in the outbox already",
            ));
        }
        let temporary = self.dir.join(format!(".{file_name}.partial"));
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temporary, &target)?;
        if let Ok(dir) = std::fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

/// The outbox folder of a configuration.
pub fn outbox_dir(config: &crate::Config) -> PathBuf {
    if config.checks.outbox_dir.as_os_str().is_empty() {
        config.data_dir.join("regulator-outbox")
    } else {
        config.checks.outbox_dir.clone()
    }
}

/// An export as the API lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExportRecord {
    pub id: String,
    /// `orders`, `worker_income` or `invoices`.
    pub kind: String,
    pub period: String,
    /// 1 for the first export of a kind and period, then 2, 3… for corrections.
    pub version: i64,
    pub file_name: String,
    /// SHA-256 of the file's bytes, lowercase hex.
    pub sha256: String,
    pub size: i64,
    /// Orders, workers or invoices in the export.
    pub records: i64,
    /// Worker income only: content address of the sealed document with full identities.
    pub sealed_hash: Option<String>,
    /// `outbox`.
    pub adapter: String,
    pub created_by: Option<String>,
    pub created_at: String,
}

/// One export with the content of its file (identities masked).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExportWithContent {
    #[serde(flatten)]
    pub record: ExportRecord,
    pub content: serde_json::Value,
}

fn record_from(row: &sqlx::any::AnyRow) -> ApiResult<ExportRecord> {
    Ok(ExportRecord {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        period: row.try_get("period")?,
        version: row.try_get("version")?,
        file_name: row.try_get("file_name")?,
        sha256: row.try_get("sha256")?,
        size: row.try_get("size")?,
        records: row.try_get("records")?,
        sealed_hash: row.try_get("sealed_hash")?,
        adapter: row.try_get("adapter")?,
        created_by: row.try_get("created_by")?,
        created_at: rfc3339(row.try_get("created_at")?),
    })
}

/// Makes, delivers and records one export. `actor` is `None` from the command line.
pub async fn export(
    state: &AppState,
    actor: Option<&Caller>,
    kind: ExportKind,
    period: &str,
) -> ApiResult<ExportRecord> {
    let (from, to) = kind.range(period)?;
    let (mut document, records, sealed) = match kind {
        ExportKind::Orders => {
            let (doc, n) = orders_document(state, from, to).await?;
            (doc, n, None)
        }
        ExportKind::WorkerIncome => income_document(state, from, to).await?,
        ExportKind::Invoices => {
            let (doc, n) = invoices_document(state, from, to).await?;
            (doc, n, None)
        }
    };
    let sealed_hash = match sealed {
        Some(bytes) => Some(seal(state, &bytes).await?),
        None => None,
    };
    if let Some(hash) = &sealed_hash {
        document["sealed_identity_document"] = serde_json::Value::String(hash.clone());
    }
    document["kind"] = kind.as_str().into();
    document["period"] = period.into();
    document["created_at"] = rfc3339(now_ms()).into();

    let adapter = OutboxAdapter::new(outbox_dir(&state.config));
    let mut tx = state.db.begin_write().await?;
    let row = sqlx::query(
        "SELECT COALESCE(MAX(version), 0) AS v FROM regulator_exports \
         WHERE kind = $1 AND period = $2",
    )
    .bind(kind.as_str())
    .bind(period)
    .fetch_one(&mut *tx)
    .await?;
    let version = row.try_get::<i64, _>("v")? + 1;
    document["version"] = version.into();
    let bytes = serde_json::to_vec_pretty(&document).map_err(ApiError::internal)?;
    let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
    let file_name = format!(
        "{}_{}_v{version}.json",
        kind.as_str(),
        period.replace("..", "_to_")
    );
    let id = new_id();
    sqlx::query(
        "INSERT INTO regulator_exports (id, kind, period, version, file_name, sha256, size, \
           records, sealed_hash, adapter, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&id)
    .bind(kind.as_str())
    .bind(period)
    .bind(version)
    .bind(&file_name)
    .bind(&sha256)
    .bind(bytes.len() as i64)
    .bind(records)
    .bind(&sealed_hash)
    .bind(adapter.name())
    .bind(actor.map(|c| c.account_id.clone()))
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    // Delivered before the row commits: a failed delivery leaves no record of an export
    // that did not happen.
    let writer = adapter.clone();
    let name = file_name.clone();
    tokio::task::spawn_blocking(move || writer.deliver(&name, &bytes))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::internal(format!("regulator outbox: {e}")))?;
    tx.commit().await?;

    let event = match actor {
        Some(caller) => Event::by(caller, "regulator_export", Outcome::Ok),
        None => Event::anonymous("regulator_export", Outcome::Ok),
    };
    // The SHA-256 stays in the export's row (which never changes): the trail masks long
    // runs of digits, which a hexadecimal hash may hold.
    let detail = serde_json::json!({
        "kind": kind.as_str(), "period": period, "version": version, "file": file_name,
        "records": records, "adapter": adapter.name(),
    });
    audit::record(
        state,
        event
            .object(format!("regulator_export:{id}"))
            .detail(detail),
    )
    .await?;
    tracing::info!(
        kind = kind.as_str(),
        period,
        version,
        records,
        "regulator export written"
    );
    get(state, &id).await.map(|e| e.record)
}

/// Every export, newest first.
pub async fn list(state: &AppState) -> ApiResult<Vec<ExportRecord>> {
    let rows = sqlx::query("SELECT * FROM regulator_exports ORDER BY created_at DESC, id")
        .fetch_all(&state.db.pool)
        .await?;
    rows.iter().map(record_from).collect()
}

/// One export with its file's content, checked against the recorded SHA-256.
pub async fn get(state: &AppState, id: &str) -> ApiResult<ExportWithContent> {
    let row = sqlx::query("SELECT * FROM regulator_exports WHERE id = $1")
        .bind(id)
        .fetch_optional(&state.db.pool)
        .await?
        .ok_or_else(|| ApiError::not_found("export"))?;
    let record = record_from(&row)?;
    let path = outbox_dir(&state.config).join(&record.file_name);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let message = "the export's file is no longer in the outbox (picked up and moved)";
            return Err(ApiError::conflict("export_file_gone", message));
        }
        Err(e) => return Err(ApiError::internal(e)),
    };
    if hex::encode(sha2::Sha256::digest(&bytes)) != record.sha256 {
        let message = "the export's file in the outbox differs from what was exported";
        return Err(ApiError::conflict("export_file_changed", message));
    }
    let content = serde_json::from_slice(&bytes).map_err(ApiError::internal)?;
    Ok(ExportWithContent { record, content })
}

/// Stores the sealed full-identity document; returns its content address.
async fn seal(state: &AppState, bytes: &[u8]) -> ApiResult<String> {
    let hash = crate::replication::store_object(state, bytes, "application/json").await?;
    Ok(hash.to_hex())
}

async fn orders_document(
    state: &AppState,
    from: i64,
    to: i64,
) -> ApiResult<(serde_json::Value, i64)> {
    let rows = sqlx::query(
        "SELECT id FROM orders WHERE created_at >= $1 AND created_at < $2 \
         ORDER BY created_at, id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&state.db.pool)
    .await?;
    let mut orders = Vec::new();
    for row in &rows {
        let id: String = row.try_get("id")?;
        let view = crate::api::orders::view(state, &id).await?;
        let evidence = {
            let mut conn = state.db.pool.acquire().await?;
            crate::evidence::load(&mut conn, &state.actor, &id).await?
        };
        let read = evidence.doc.read().map_err(ApiError::internal)?;
        let findings = view
            .report
            .as_ref()
            .and_then(|r| r["findings"].as_array().map(Vec::len))
            .unwrap_or(0);
        let checks = sqlx::query(
            "SELECT queue, period, outcome, kind, closed_at FROM check_items \
             WHERE subject_kind = 'order' AND subject_id = $1 ORDER BY created_at",
        )
        .bind(&id)
        .fetch_all(&state.db.pool)
        .await?
        .iter()
        .map(|c| {
            Ok(serde_json::json!({
                "queue": c.try_get::<String, _>("queue")?,
                "drawn_on": c.try_get::<String, _>("period")?,
                "kind": c.try_get::<Option<String>, _>("kind")?,
                "outcome": c.try_get::<Option<String>, _>("outcome")?,
                "closed_at": c.try_get::<Option<i64>, _>("closed_at")?.map(rfc3339),
            }))
        })
        .collect::<ApiResult<Vec<_>>>()?;
        orders.push(serde_json::json!({
            "order_id": id,
            "task_id": view.task_id,
            "worker_id": view.worker_id,
            "enterprise_id": view.enterprise_id,
            "status": view.status,
            "created_at": view.created_at,
            "submitted_at": view.submitted_at,
            "verdict": view.verdict,
            "findings": findings,
            "photos": read.photos.len(),
            "track_present": !read.track.is_empty(),
            "signature_present": !read.signatures.is_empty(),
            "operator_decision": view.operator_decision,
            "confirmation": view.confirmation,
            "checks": checks,
        }));
    }
    let count = orders.len() as i64;
    Ok((serde_json::json!({ "format": 1, "orders": orders }), count))
}

/// The quarter's income per worker: the masked outbox document, the number of workers, and
/// the bytes of the sealed document with full identities.
async fn income_document(
    state: &AppState,
    from: i64,
    to: i64,
) -> ApiResult<(serde_json::Value, i64, Option<Vec<u8>>)> {
    let rows = sqlx::query(
        // Paid means paid out: settlements still waiting for their payout are reported apart.
        "SELECT worker_id, COUNT(*) AS n, \
           CAST(SUM(CASE WHEN status = 'paid' THEN 1 ELSE 0 END) AS BIGINT) AS paid_n, \
           CAST(SUM(CASE WHEN status = 'paid' THEN gross_fen ELSE 0 END) AS BIGINT) AS gross, \
           CAST(SUM(CASE WHEN status = 'paid' THEN tax_fen ELSE 0 END) AS BIGINT) AS tax, \
           CAST(SUM(CASE WHEN status = 'paid' THEN net_fen ELSE 0 END) AS BIGINT) AS net, \
           CAST(SUM(CASE WHEN status = 'paid' THEN 0 ELSE net_fen END) AS BIGINT) AS unpaid \
         FROM settlements \
         WHERE created_at >= $1 AND created_at < $2 GROUP BY worker_id ORDER BY worker_id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&state.db.pool)
    .await?;
    let mut masked = Vec::new();
    let mut full = Vec::new();
    for row in &rows {
        let worker: String = row.try_get("worker_id")?;
        let identity = identity_of(state, &worker).await?;
        let amounts = serde_json::json!({
            "settlements": row.try_get::<i64, _>("n")?,
            "paid_settlements": row.try_get::<i64, _>("paid_n")?,
            "gross_fen": row.try_get::<i64, _>("gross")?,
            "tax_withheld_fen": row.try_get::<i64, _>("tax")?,
            "net_paid_fen": row.try_get::<i64, _>("net")?,
            "settled_unpaid_fen": row.try_get::<i64, _>("unpaid")?,
        });
        let (name, id_number) = identity.clone().unwrap_or_default();
        masked.push(serde_json::json!({
            "worker_id": worker,
            "identity_on_file": identity.is_some(),
            "name": identity.as_ref().map(|_| mask_name(&name)),
            "id_number": identity.as_ref().map(|_| mask_id_number(&id_number)),
            "income": amounts,
        }));
        full.push(serde_json::json!({
            "worker_id": worker,
            "name": identity.as_ref().map(|_| name),
            "id_number": identity.as_ref().map(|_| id_number),
            "income": amounts,
        }));
    }
    let count = masked.len() as i64;
    let sealed = serde_json::json!({
        "kind": "worker_income_identities", "format": 1, "from": rfc3339(from),
        "to": rfc3339(to), "workers": full,
    });
    let sealed = serde_json::to_vec(&sealed).map_err(ApiError::internal)?;
    Ok((
        serde_json::json!({ "format": 1, "workers": masked }),
        count,
        Some(sealed),
    ))
}

/// The name and ID number a worker was admitted with, when an application is on file.
async fn identity_of(state: &AppState, worker: &str) -> ApiResult<Option<(String, String)>> {
    let row = sqlx::query(
        "SELECT id, name_sealed, id_number_sealed FROM worker_applications \
         WHERE account_id = $1 ORDER BY decided_at DESC LIMIT 1",
    )
    .bind(worker)
    .fetch_optional(&state.db.pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let id: String = row.try_get("id")?;
    let name_sealed: String = row.try_get("name_sealed")?;
    let id_sealed: String = row.try_get("id_number_sealed")?;
    let name = privacy::open(state, "worker_applications", "name", &id, &name_sealed).await?;
    let number = privacy::open(state, "worker_applications", "id_number", &id, &id_sealed).await?;
    Ok(Some((name, number)))
}

/// Invoices issued in `[from, to)`: the number the tax authority gave, blue or red-letter,
/// the enterprise billed, the total and the lines' settlements.
async fn invoices_document(
    state: &AppState,
    from: i64,
    to: i64,
) -> ApiResult<(serde_json::Value, i64)> {
    let rows = sqlx::query(
        "SELECT id, number, kind, reverses_id, enterprise_id, total_fen, issued_at \
         FROM invoices WHERE status = 'issued' AND issued_at >= $1 AND issued_at < $2 \
         ORDER BY issued_at, id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&state.db.pool)
    .await?;
    let mut invoices = Vec::new();
    for row in &rows {
        let id: String = row.try_get("id")?;
        let settlements = sqlx::query(
            "SELECT settlement_id FROM invoice_lines WHERE invoice_id = $1 \
             ORDER BY settlement_id",
        )
        .bind(&id)
        .fetch_all(&state.db.pool)
        .await?
        .iter()
        .map(|l| l.try_get::<String, _>("settlement_id"))
        .collect::<Result<Vec<_>, _>>()?;
        invoices.push(serde_json::json!({
            "invoice_id": id,
            "number": row.try_get::<Option<String>, _>("number")?,
            "kind": row.try_get::<String, _>("kind")?,
            "reverses_id": row.try_get::<Option<String>, _>("reverses_id")?,
            "enterprise_id": row.try_get::<String, _>("enterprise_id")?,
            "total_fen": row.try_get::<i64, _>("total_fen")?,
            "issued_at": row.try_get::<Option<i64>, _>("issued_at")?.map(rfc3339),
            "settlements": settlements,
        }));
    }
    let count = invoices.len() as i64;
    Ok((
        serde_json::json!({ "format": 1, "invoices": invoices }),
        count,
    ))
}
