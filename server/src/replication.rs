//! Copies of every media blob at every configured site.
//!
//! An upload is acknowledged once its bytes are durable, hash-checked, at the **primary**
//! site (the first one configured) — or, while the primary cannot take writes, at the first
//! other site that can, with the primary's copy queued like any other. Copies to the other
//! sites go through a queue in the database, so they survive restarts: one job per blob and
//! site, retried with exponential backoff until it succeeds, never duplicated (the job's key
//! is the blob and the site). A read tries the primary, then the other sites; a copy found
//! missing or corrupt is served from another site, logged, counted, and queued for repair
//! like any other copy.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use flexwork_storage::{
    ContentHash, LocalKeyFile, LocalStore, MediaStore, ObjectStore, SealedStore, SiteConfig,
    StorageError, Vault,
};
use serde::Serialize;
use sqlx::Row;
use tokio::sync::Notify;

use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::{AppState, StartError, now_ms};

/// Longest wait between two attempts at one copy.
const MAX_BACKOFF_MS: i64 = 10 * 60 * 1000;

/// The stores of all sites, the primary first, and the keys they are sealed with.
#[derive(Debug)]
pub struct Sites {
    stores: Vec<Arc<SealedStore>>,
    /// The master keys of encryption at rest.
    pub keys: Arc<LocalKeyFile>,
    /// Wakes the replication worker when a job is queued.
    pub wake: Notify,
    /// Reads served from another site because a copy was missing or corrupt.
    pub repaired_reads: AtomicU64,
}

impl Sites {
    /// Opens the configured sites, after checking them against the distance rules; with none
    /// configured, the single `media` store of the configuration.
    pub async fn open(config: &Config) -> Result<Self, StartError> {
        let keys = LocalKeyFile::open_or_create(config.key_file(), config.encryption.suite)
            .map_err(|e| StartError::Config(e.to_string()))?;
        let keys = Arc::new(keys);
        let (index_suite, index_key) = keys.index_key();
        let kms: Arc<dyn flexwork_storage::Kms> = keys.clone();
        let vault = Arc::new(Vault::new(
            config.encryption.suite,
            kms,
            index_suite,
            index_key,
        ));
        let seal =
            |objects: Arc<dyn ObjectStore>| Arc::new(SealedStore::new(objects, vault.clone()));
        tracing::info!(suite = %vault.suite(), key_file = %config.key_file().display(),
            "media is encrypted at rest");

        if config.sites.is_empty() {
            let store = flexwork_storage::open_objects(&config.media_store()).await?;
            tracing::warn!(
                store = store.name(),
                "{}",
                flexwork_storage::sites::NO_REDUNDANCY
            );
            return Ok(Self::from_stores(vec![seal(store)], keys));
        }

        let plan = flexwork_storage::plan_sites(&config.sites, config.require_redundancy)
            .map_err(|e| StartError::Config(e.to_string()))?;
        for warning in &plan.warnings {
            tracing::warn!(warning = %warning, "media sites");
        }
        let mut folders = std::collections::HashSet::new();
        for site in &config.sites {
            if let flexwork_storage::StoreConfig::Local { path } = &site.store {
                let folder = std::path::absolute(path).unwrap_or_else(|_| path.clone());
                if !folders.insert(folder) {
                    let message = format!(
                        "site `{}` uses the same folder as another site; copies in one folder \
                         are no redundancy",
                        site.name
                    );
                    return Err(StartError::Config(message));
                }
            }
        }
        let mut stores = Vec::with_capacity(config.sites.len());
        for site in &config.sites {
            let opened = open_site(site).await.map_err(|e| {
                StartError::Config(format!("media site `{}` cannot be opened: {e}", site.name))
            })?;
            stores.push(seal(opened));
        }
        tracing::info!(primary = %plan.primary, sites = stores.len(), "media sites opened");
        Ok(Self::from_stores(stores, keys))
    }

    fn from_stores(stores: Vec<Arc<SealedStore>>, keys: Arc<LocalKeyFile>) -> Self {
        Self {
            stores,
            keys,
            wake: Notify::new(),
            repaired_reads: AtomicU64::new(0),
        }
    }

    /// Where uploads are written first.
    pub fn primary(&self) -> &Arc<SealedStore> {
        &self.stores[0]
    }

    /// The sites that receive copies.
    pub fn replicas(&self) -> &[Arc<SealedStore>] {
        &self.stores[1..]
    }

    /// Every site, the primary first.
    pub fn all(&self) -> &[Arc<SealedStore>] {
        &self.stores
    }

    /// The site called `name`.
    pub fn by_name(&self, name: &str) -> Option<&Arc<SealedStore>> {
        self.stores.iter().find(|s| s.name() == name)
    }
}

async fn open_site(site: &SiteConfig) -> Result<Arc<dyn ObjectStore>, StorageError> {
    match &site.store {
        flexwork_storage::StoreConfig::Local { path } => Ok(Arc::new(
            LocalStore::open(path.clone()).await?.with_name(&site.name),
        )),
        other => flexwork_storage::open_objects(other).await,
    }
}

/// Queues one copy (or repair) of `hash` at `site`.
async fn queue(state: &AppState, hash: &ContentHash, site: &str) -> ApiResult<()> {
    upsert_job(state, hash, site, "pending").await?;
    state.sites.wake.notify_one();
    Ok(())
}

/// Queues a copy of `hash` at `site` unless a job for it exists already.
async fn ensure_job(state: &AppState, hash: &ContentHash, site: &str) -> ApiResult<()> {
    let now = now_ms();
    let added = sqlx::query(
        "INSERT INTO replication_jobs \
           (hash, site, state, attempts, next_attempt_at, last_error, updated_at) \
         VALUES ($1, $2, 'pending', 0, $3, NULL, $4) ON CONFLICT (hash, site) DO NOTHING",
    )
    .bind(hash.to_hex())
    .bind(site)
    .bind(now)
    .bind(now)
    .execute(&state.db.pool)
    .await?;
    if added.rows_affected() > 0 {
        state.sites.wake.notify_one();
    }
    Ok(())
}

/// Records where an upload's own copy was written.
async fn mark_stored(state: &AppState, hash: &ContentHash, site: &str) -> ApiResult<()> {
    upsert_job(state, hash, site, "stored").await
}

/// Sets the job of `hash` at `site` to `job_state`, due now, creating it if needed.
async fn upsert_job(
    state: &AppState,
    hash: &ContentHash,
    site: &str,
    job_state: &str,
) -> ApiResult<()> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO replication_jobs \
           (hash, site, state, attempts, next_attempt_at, last_error, updated_at) \
         VALUES ($1, $2, $3, 0, $4, NULL, $5) \
         ON CONFLICT (hash, site) DO UPDATE \
           SET state = excluded.state, next_attempt_at = excluded.next_attempt_at, \
               updated_at = excluded.updated_at",
    )
    .bind(hash.to_hex())
    .bind(site)
    .bind(job_state)
    .bind(now)
    .bind(now)
    .execute(&state.db.pool)
    .await?;
    Ok(())
}

/// Reads a blob, verified: from the primary, or else from the first other site that has a
/// good copy, queueing repairs of the copies that were missing or corrupt.
pub async fn read(state: &AppState, hash: &ContentHash) -> ApiResult<Bytes> {
    let mut damaged = Vec::new();
    for store in &state.sites.stores {
        match store.get(hash).await {
            Ok(bytes) => {
                repair(state, hash, &damaged).await?;
                return Ok(bytes);
            }
            Err(e) => {
                tracing::warn!(%hash, site = store.name(), error = %e, "media copy unreadable");
                damaged.push(store.name().to_owned());
            }
        }
    }
    Err(ApiError::internal(format!(
        "no site holds a good copy of {hash}"
    )))
}

async fn repair(state: &AppState, hash: &ContentHash, damaged: &[String]) -> ApiResult<()> {
    for site in damaged {
        state.sites.repaired_reads.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%hash, site = %site, "served from another site; repair queued");
        queue(state, hash, site).await?;
    }
    Ok(())
}

/// Starts the worker that carries out due copy jobs.
pub fn spawn_worker(state: AppState) {
    tokio::spawn(async move {
        loop {
            match run_due(&state).await {
                Ok(0) => {
                    let idle = tokio::time::sleep(Duration::from_secs(1));
                    tokio::select! { _ = idle => {}, _ = state.sites.wake.notified() => {} }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "replication worker failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
}

/// Carries out the jobs that are due; returns how many it attempted.
pub async fn run_due(state: &AppState) -> ApiResult<usize> {
    let rows = sqlx::query(
        "SELECT hash, site, attempts FROM replication_jobs \
         WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT 32",
    )
    .bind(now_ms())
    .fetch_all(&state.db.pool)
    .await?;

    for row in &rows {
        let hash: String = row.try_get("hash")?;
        let site: String = row.try_get("site")?;
        let attempts: i64 = row.try_get("attempts")?;
        let Ok(parsed) = hash.parse::<ContentHash>() else {
            continue;
        };
        let outcome = copy_to(state, &parsed, &site).await;
        record(state, &hash, &site, attempts, outcome).await?;
    }
    Ok(rows.len())
}

/// Blobs up to this size are copied between sites in memory; larger ones through a file.
const IN_MEMORY_COPY_LIMIT: i64 = 16 * 1024 * 1024;

/// Copies a good copy from any other site to `site`.
async fn copy_to(state: &AppState, hash: &ContentHash, site: &str) -> Result<(), String> {
    let target = state
        .sites
        .by_name(site)
        .ok_or_else(|| format!("no site named {site}"))?;
    let size = sqlx::query("SELECT size FROM media_objects WHERE hash = $1")
        .bind(hash.to_hex())
        .fetch_optional(&state.db.pool)
        .await
        .map_err(|e| e.to_string())?
        .and_then(|row| row.try_get::<i64, _>("size").ok());
    // The size is not recorded yet while the upload that stored the blob is finishing.
    let large = size.is_none_or(|s| s > IN_MEMORY_COPY_LIMIT);
    for source in state.sites.stores.iter().filter(|s| s.name() != site) {
        if !large {
            if let Ok(bytes) = source.get(hash).await {
                return target.put(hash, bytes).await.map_err(|e| e.to_string());
            }
            continue;
        }
        let staged = state
            .config
            .uploads_dir()
            .join(format!("{hash}.copy-{}", uuid::Uuid::new_v4().simple()));
        if source.get_to_file(hash, &staged).await.is_ok() {
            let stored = target.put_file(hash, &staged).await;
            let _ = tokio::fs::remove_file(&staged).await;
            return stored.map_err(|e| e.to_string());
        }
    }
    Err("no other site holds a good copy".into())
}

async fn record(
    state: &AppState,
    hash: &str,
    site: &str,
    attempts: i64,
    outcome: Result<(), String>,
) -> ApiResult<()> {
    let now = now_ms();
    let (job_state, next, error) = match outcome {
        Ok(()) => ("done", now, None),
        Err(e) => {
            let attempt = attempts + 1;
            tracing::warn!(hash, site, attempt, error = %e, "copy failed; will retry");
            let backoff = (1_000i64 << attempts.clamp(0, 20)).min(MAX_BACKOFF_MS);
            ("pending", now + backoff, Some(e))
        }
    };
    sqlx::query(
        "UPDATE replication_jobs SET state = $1, attempts = $2, next_attempt_at = $3, \
         last_error = $4, updated_at = $5 WHERE hash = $6 AND site = $7",
    )
    .bind(job_state)
    .bind(attempts + 1)
    .bind(next)
    .bind(error)
    .bind(now)
    .bind(hash)
    .bind(site)
    .execute(&state.db.pool)
    .await?;
    Ok(())
}

/// Where one blob's copy stands at one site.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CopyState {
    pub site: String,
    /// `stored` (where the upload itself was written), `pending`, `done`, or `not_queued`
    /// (a site added after the blob was stored).
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// The copy state of `hash` at every site.
pub async fn copies(state: &AppState, hash: &ContentHash) -> ApiResult<Vec<CopyState>> {
    let rows = sqlx::query(
        "SELECT site, state, attempts, last_error FROM replication_jobs WHERE hash = $1",
    )
    .bind(hash.to_hex())
    .fetch_all(&state.db.pool)
    .await?;

    let mut out = Vec::with_capacity(state.sites.stores.len());
    for (index, store) in state.sites.stores.iter().enumerate() {
        let job = rows
            .iter()
            .find(|r| r.try_get::<String, _>("site").ok().as_deref() == Some(store.name()));
        out.push(match job {
            Some(r) => CopyState {
                site: store.name().to_owned(),
                state: r.try_get("state")?,
                attempts: r.try_get("attempts")?,
                last_error: r.try_get("last_error")?,
            },
            None => CopyState {
                site: store.name().to_owned(),
                state: if index == 0 { "stored" } else { "not_queued" }.into(),
                attempts: 0,
                last_error: None,
            },
        });
    }
    Ok(out)
}

/// Runs a scrub every `scrub_interval_secs` (none when it is 0), the first one after one
/// interval, so a restart does not start with a full read of every site. Each run also
/// removes unfinished uploads untouched for a week.
pub fn spawn_scheduled_scrub(state: AppState) {
    let secs = state.config.scrub_interval_secs;
    if secs == 0 {
        return;
    }
    tokio::spawn(async move {
        let every = Duration::from_secs(secs);
        loop {
            tokio::time::sleep(every).await;
            let week = Duration::from_secs(7 * 86_400);
            let uploads = state.config.uploads_dir();
            let swept = crate::api::media::sweep_abandoned_uploads(&uploads, week).await;
            tracing::info!(swept, "abandoned uploads removed");
            for site in state.sites.all() {
                match site.sweep_unfinished(week).await {
                    Ok(n) => tracing::info!(
                        site = site.name(),
                        aborted = n,
                        "unfinished multipart uploads aborted"
                    ),
                    Err(e) => tracing::warn!(site = site.name(), error = %e,
                        "could not sweep unfinished multipart uploads"),
                }
            }
            match scrub(&state, |_, _| {}).await {
                Ok(report) => tracing::info!(?report, "scheduled scrub finished"),
                Err(e) => tracing::error!(error = %e, "scheduled scrub failed"),
            }
        }
    });
}

/// What a scrub found and did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ScrubReport {
    /// Blobs the database knows.
    pub objects: usize,
    /// Copies read and verified, over all sites.
    pub copies_checked: usize,
    /// Copies that were absent.
    pub missing: usize,
    /// Copies whose bytes did not match their hash.
    pub corrupt: usize,
    /// Copies that could not be read for another reason (the site was unreachable).
    pub unreadable: usize,
    /// Missing and corrupt copies rewritten from a good copy during this scrub.
    pub repaired: usize,
}

/// Reads every copy of every blob at every site, verifying its hash, and repairs what is
/// missing or corrupt from a good copy. `progress` is called after each blob.
pub async fn scrub(state: &AppState, progress: impl Fn(usize, usize)) -> ApiResult<ScrubReport> {
    let rows = sqlx::query("SELECT hash FROM media_objects ORDER BY hash")
        .fetch_all(&state.db.pool)
        .await?;
    let mut report = ScrubReport {
        objects: rows.len(),
        ..ScrubReport::default()
    };

    for (done, row) in rows.iter().enumerate() {
        let Ok(hash) = row.try_get::<String, _>("hash")?.parse::<ContentHash>() else {
            continue;
        };
        for store in &state.sites.stores {
            report.copies_checked += 1;
            let damaged = match store.get(&hash).await {
                Ok(_) => continue,
                Err(StorageError::NotFound { .. }) => &mut report.missing,
                Err(StorageError::Corrupt { .. }) => &mut report.corrupt,
                Err(e) => {
                    tracing::warn!(%hash, site = store.name(), error = %e, "scrub could not read");
                    report.unreadable += 1;
                    continue;
                }
            };
            *damaged += 1;
            tracing::warn!(%hash, site = store.name(), "scrub found a bad copy");
            queue(state, &hash, store.name()).await?;
            let outcome = copy_to(state, &hash, store.name()).await;
            report.repaired += usize::from(outcome.is_ok());
            record(state, &hash.to_hex(), store.name(), 0, outcome).await?;
        }
        progress(done + 1, report.objects);
    }
    Ok(report)
}

/// Writes a finished upload durably: at the primary, or — when the primary cannot take it —
/// at the first other site that can. Every site still without a copy gets a queued job, so
/// the primary catches up once it is back.
/// Stores bytes held in memory with [`store_bytes`] and records them as a media object of
/// `media_type` (once per content): what every document, archive, attachment and face image
/// kept by the server goes through. Returns their content address.
pub async fn store_object(
    state: &AppState,
    bytes: &[u8],
    media_type: &str,
) -> ApiResult<ContentHash> {
    let hash = ContentHash::of(bytes);
    store_bytes(state, &hash, Bytes::copy_from_slice(bytes)).await?;
    sqlx::query(
        "INSERT INTO media_objects (hash, size, media_type, created_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (hash) DO NOTHING",
    )
    .bind(hash.to_hex())
    .bind(bytes.len() as i64)
    .bind(media_type)
    .bind(crate::now_ms())
    .execute(&state.db.pool)
    .await?;
    Ok(hash)
}

/// Stores bytes held in memory (an archive, a document, a face image) at the first site
/// that takes them and queues copies for the others, as [`store_upload`] does for a file —
/// without ever writing them to disk unsealed.
pub async fn store_bytes(state: &AppState, hash: &ContentHash, bytes: Bytes) -> ApiResult<()> {
    if matches!(state.sites.primary().contains(hash).await, Ok(true)) {
        for site in state.sites.replicas() {
            ensure_job(state, hash, site.name()).await?;
        }
        return Ok(());
    }
    for (index, store) in state.sites.stores.iter().enumerate() {
        if let Err(e) = store.put(hash, bytes.clone()).await {
            tracing::warn!(%hash, site = store.name(), error = %e, "site could not take a blob");
            continue;
        }
        mark_stored(state, hash, store.name()).await?;
        for (other, site) in state.sites.stores.iter().enumerate() {
            if other != index {
                queue(state, hash, site.name()).await?;
            }
        }
        return Ok(());
    }
    let message = "no media site can take this right now; try again shortly";
    Err(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "storage_unavailable",
        message,
    ))
}

pub async fn store_upload(state: &AppState, hash: &ContentHash, path: &Path) -> ApiResult<()> {
    if matches!(state.sites.primary().contains(hash).await, Ok(true)) {
        // Stored before (perhaps by a process that stopped before queueing the copies):
        // make sure every other site has a job, without disturbing existing ones.
        for site in state.sites.replicas() {
            ensure_job(state, hash, site.name()).await?;
        }
        return Ok(());
    }
    for (index, store) in state.sites.stores.iter().enumerate() {
        if let Err(e) = store.put_file(hash, path).await {
            tracing::warn!(%hash, site = store.name(), error = %e, "site could not take an upload");
            continue;
        }
        if index > 0 {
            let site = store.name();
            tracing::warn!(%hash, site, "primary unavailable; upload kept elsewhere");
        }
        mark_stored(state, hash, store.name()).await?;
        for (other, site) in state.sites.stores.iter().enumerate() {
            if other != index {
                queue(state, hash, site.name()).await?;
            }
        }
        return Ok(());
    }

    let message = "no media site can take this upload right now; the phone will try again";
    Err(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "storage_unavailable",
        message,
    ))
}
