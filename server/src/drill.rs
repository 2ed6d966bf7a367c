//! Restore drills: proof, every quarter, that the media can actually be restored.
//!
//! A drill restores every blob (or a random sample) from one chosen site into a scratch
//! folder, verifies each restored file's SHA-256 against its name, writes a dated JSON report
//! (objects, bytes, time, every failure) and records the drill in the database, so an
//! operator can see when the last one ran and whether a quarter has passed without one.

use std::path::{Path, PathBuf};

use flexwork_storage::{ContentHash, MediaStore};
use rand::seq::SliceRandom;
use serde::Serialize;
use sqlx::Row;

use crate::error::{ApiError, ApiResult};
use crate::{AppState, new_id, now_ms, rfc3339};

/// A quarter, in milliseconds (92 days): longer without a drill is overdue.
pub const QUARTER_MS: i64 = 92 * 24 * 3_600_000;

/// What a drill restored and found.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DrillReport {
    pub id: String,
    pub site: String,
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: i64,
    /// Blobs chosen for the drill.
    pub objects: usize,
    /// Bytes restored and verified.
    pub bytes: u64,
    /// Each blob that could not be restored intact, with the reason.
    pub failures: Vec<DrillFailure>,
    /// Where the restored files were written.
    pub restored_into: String,
    /// Where this report was written.
    pub report_path: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DrillFailure {
    pub hash: String,
    pub reason: String,
}

/// Restores from `site` into `into` (every blob, or `sample` chosen at random).
pub async fn run(
    state: &AppState,
    site: &str,
    sample: Option<usize>,
    into: &Path,
) -> ApiResult<DrillReport> {
    let store = state.sites.by_name(site).ok_or_else(|| {
        let names: Vec<&str> = state.sites.all().iter().map(|s| s.name()).collect();
        let message = format!(
            "no media site is named `{site}`; the sites are: {}",
            names.join(", ")
        );
        ApiError::bad_request("unknown_site", message)
    })?;
    let started = now_ms();
    let hashes = chosen_hashes(state, sample).await?;
    tokio::fs::create_dir_all(into)
        .await
        .map_err(ApiError::internal)?;

    let (mut bytes, mut failures) = (0u64, Vec::new());
    for hash in &hashes {
        match restore_one(store.as_ref(), hash, into).await {
            Ok(size) => bytes += size,
            Err(reason) => failures.push(DrillFailure {
                hash: hash.to_hex(),
                reason,
            }),
        }
    }

    let finished = now_ms();
    let id = new_id();
    let report_path = report_path(state, site, finished);
    let report = DrillReport {
        id,
        site: site.to_owned(),
        started_at: rfc3339(started),
        finished_at: rfc3339(finished),
        duration_ms: finished - started,
        objects: hashes.len(),
        bytes,
        failures,
        restored_into: into.display().to_string(),
        report_path: report_path.display().to_string(),
    };
    write_report(&report, &report_path).await?;
    record(state, &report, started, finished).await?;
    Ok(report)
}

async fn chosen_hashes(state: &AppState, sample: Option<usize>) -> ApiResult<Vec<ContentHash>> {
    let rows = sqlx::query("SELECT hash FROM media_objects ORDER BY hash")
        .fetch_all(&state.db.pool)
        .await?;
    let mut hashes: Vec<ContentHash> = rows
        .iter()
        .filter_map(|r| r.try_get::<String, _>("hash").ok()?.parse().ok())
        .collect();
    if let Some(n) = sample {
        hashes.shuffle(&mut rand::rng());
        hashes.truncate(n);
    }
    Ok(hashes)
}

/// Restores one blob to a file and checks the file, not only the bytes in memory.
async fn restore_one(
    store: &dyn flexwork_storage::MediaStore,
    hash: &ContentHash,
    into: &Path,
) -> Result<u64, String> {
    let path = into.join(hash.to_hex());
    let len = store
        .get_to_file(hash, &path)
        .await
        .map_err(|e| e.to_string())?;

    let reread = path.clone();
    let written = tokio::task::spawn_blocking(move || {
        let mut hasher = flexwork_sync::ContentHasher::new();
        let mut file = std::fs::File::open(&reread)?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = std::io::Read::read(&mut file, &mut buf)?;
            if n == 0 {
                return Ok::<_, std::io::Error>(hasher.finish());
            }
            hasher.update(&buf[..n]);
        }
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    if written != *hash {
        return Err("the restored file does not match its hash".into());
    }
    Ok(len)
}

fn report_path(state: &AppState, site: &str, at_ms: i64) -> PathBuf {
    let stamp = rfc3339(at_ms).replace(':', "-");
    state
        .config
        .data_dir
        .join("drills")
        .join(format!("{stamp}-{site}.json"))
}

async fn write_report(report: &DrillReport, path: &Path) -> ApiResult<()> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(ApiError::internal)?;
    }
    let json = serde_json::to_vec_pretty(report).map_err(ApiError::internal)?;
    tokio::fs::write(path, json)
        .await
        .map_err(ApiError::internal)
}

async fn record(
    state: &AppState,
    report: &DrillReport,
    started: i64,
    finished: i64,
) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO restore_drills \
           (id, site, started_at, finished_at, objects, bytes, failures, report_path) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&report.id)
    .bind(&report.site)
    .bind(started)
    .bind(finished)
    .bind(report.objects as i64)
    .bind(report.bytes as i64)
    .bind(report.failures.len() as i64)
    .bind(&report.report_path)
    .execute(&state.db.pool)
    .await?;
    Ok(())
}

/// The last successful drill (at least one object, no failure), and whether a quarter has
/// passed since (or none ever succeeded): an empty or failed drill proves nothing.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct DrillStatus {
    pub last_drill_at: Option<String>,
    pub last_drill_site: Option<String>,
    pub last_drill_failures: Option<i64>,
    pub overdue: bool,
}

pub async fn status(state: &AppState) -> ApiResult<DrillStatus> {
    let row = sqlx::query(
        "SELECT site, finished_at, failures FROM restore_drills \
         WHERE objects > 0 AND failures = 0 ORDER BY finished_at DESC LIMIT 1",
    )
    .fetch_optional(&state.db.pool)
    .await?;
    let Some(row) = row else {
        let never = DrillStatus {
            last_drill_at: None,
            last_drill_site: None,
            last_drill_failures: None,
            overdue: true,
        };
        return Ok(never);
    };

    let finished: i64 = row.try_get("finished_at")?;
    Ok(DrillStatus {
        last_drill_at: Some(rfc3339(finished)),
        last_drill_site: Some(row.try_get("site")?),
        last_drill_failures: Some(row.try_get("failures")?),
        overdue: now_ms() - finished > QUARTER_MS,
    })
}
