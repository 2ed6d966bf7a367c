//! The flexwork server: where evidence recorded on workers' phones is verified, confirmed and
//! turned into pay.
//!
//! # How data flows
//!
//! 1. An enterprise creates a **task** (site, time window, fee, required evidence) and assigns
//!    a worker, which creates an **order** ([`api::tasks`]).
//! 2. The worker's phone syncs ([`api::sync`]): each order's Automerge evidence document is
//!    merged into the copy kept in the database ([`evidence`]), the order list goes down to the
//!    phone, and the photo hashes the documents reference are indexed.
//! 3. The phone uploads the media the server lacks, in resumable chunks ([`api::media`]); a
//!    blob is stored in the media store ([`flexwork_storage`]) only once its SHA-256 matches
//!    its name and its type is sniffed.
//! 4. Every change to a submitted order's evidence (a sync, an upload) queues it for
//!    **verification** ([`verification`], running the checks of [`verify`]); the verdict and
//!    findings are stored and written back into the document, so the phone shows them.
//! 5. The enterprise confirms or disputes completion, an operator may approve a
//!    "needs review" verdict ([`api::orders`]). When submission, accepted evidence and
//!    confirmation all hold, a three-party **statement** is opened exactly once
//!    ([`statements`]).
//! 6. The platform, the enterprise and the worker confirm the statement; the third
//!    confirmation **settles** it exactly once, paid from the enterprise's escrow with tax
//!    withheld ([`settlement`], [`ledger`]).
//! 7. When the worker's payout cycle is due, the settlements become a **payout** handed to
//!    the payment provider and recorded in the ledger ([`payouts`], [`payments`]); paid
//!    settlements are **invoiced** to the enterprise ([`invoices`]).
//!
//! The server is a library so tests start it on port 0 ([`serve`]); the `flexwork` binary is a
//! thin command line over it.

pub mod api;
pub mod archive;
pub mod audit;
pub mod auth;
pub mod checks;
pub mod config;
pub mod console;
pub mod db;
pub mod deregistration;
pub mod drill;
pub mod enterprises;
pub mod error;
pub mod evidence;
pub mod face;
pub mod identity;
pub mod invoices;
pub mod keys;
pub mod ledger;
pub mod onboarding;
pub mod payments;
pub mod payouts;
pub mod privacy;
pub mod realname;
pub mod regulator;
pub mod replication;
pub mod settlement;
pub mod statements;
pub mod verification;
pub mod verify;

use std::future::Future;
use std::sync::Arc;

use automerge::ActorId;
use flexwork_storage::MediaStore;
use tokio::net::TcpListener;

pub use config::Config;
pub use db::Db;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("media store: {0}")]
    Storage(#[from] flexwork_storage::StorageError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("configuration: {0}")]
    Config(String),
}

/// Shared state of every request handler and background job.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

/// How many thumbnails are decoded at the same time (see [`Inner::thumbnail_slots`]).
pub const THUMBNAILS_AT_ONCE: usize = 2;

#[derive(Debug)]
pub struct Inner {
    pub config: Config,
    pub db: Db,
    /// The primary media store, where uploads are written.
    pub media: Arc<dyn MediaStore>,
    /// Every media site, and the worker's wake-up signal.
    pub sites: replication::Sites,
    pub verifier: verification::Queue,
    /// The Automerge actor of this server process, author of its reviews.
    pub actor: ActorId,
    /// Real-name verification of applicants (the sandbox provider: no licensed one is wired).
    pub realname: Arc<dyn realname::RealNameProvider>,
    /// Issues e-invoices (the sandbox provider: no licensed service is wired).
    pub invoicing: Arc<dyn invoices::InvoicingProvider>,
    /// Payouts to workers (the sandbox provider: no licensed one is wired; it pays nobody).
    pub payments: Arc<dyn payments::PaymentProvider>,
    /// Serialises chunk appends to the same unfinished upload.
    pub upload_locks: Vec<tokio::sync::Mutex<()>>,
    /// Thumbnails decoded at once: a full-size photo takes up to a few hundred MB while it is
    /// decoded, so a burst of thumbnail requests waits here instead of exhausting memory.
    pub thumbnail_slots: tokio::sync::Semaphore,
    /// Serialises operator decisions on the same order (by [`lock_slot`] of its id).
    pub order_locks: Vec<tokio::sync::Mutex<()>>,
}

/// The slot of `key` among `slots` striped locks.
pub fn lock_slot(key: &str, slots: usize) -> usize {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    usize::try_from(hasher.finish() % slots as u64).unwrap_or(0)
}

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Opens the database and media store and starts the verification worker.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        config
            .validate(&shanghai_date(now_ms()))
            .map_err(StartError::Config)?;
        std::fs::create_dir_all(&config.data_dir)?;
        std::fs::create_dir_all(config.uploads_dir())?;
        // Uploads in progress are photos not yet sealed, and the database holds personal
        // data sealed but logins and hashes in the clear: only the server's user reads them.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for dir in [config.data_dir.clone(), config.uploads_dir()] {
                let private = std::fs::Permissions::from_mode(0o700);
                if let Err(e) = std::fs::set_permissions(&dir, private) {
                    tracing::warn!(dir = %dir.display(), error = %e,
                        "could not make the folder private to the server's user");
                }
            }
        }
        if !config.console.secure_cookies {
            tracing::warn!(
                "[console] secure_cookies is off: browsers send the session cookie over plain \
                 HTTP too, where anyone on the network can read it; use it only on a closed \
                 network"
            );
        }
        let db = Db::connect(&config.database_url()).await?;
        let sites = replication::Sites::open(&config).await?;
        clean_staging(&config.uploads_dir());
        check_media_readable(&db, &sites, &config).await?;
        let media: Arc<dyn MediaStore> = sites.primary().clone();
        let (verifier, jobs) = verification::Queue::new();
        let actor = ActorId::from(uuid::Uuid::new_v4().as_bytes().as_slice());
        let upload_locks = (0..64).map(|_| tokio::sync::Mutex::new(())).collect();
        let sandbox = realname::SandboxRealNameProvider::new(config.realname.sandbox.clone())
            .map_err(|e| StartError::Config(format!("[realname.sandbox]: {e}")))?;
        tracing::warn!(
            provider = "sandbox",
            "real-name verification uses the sandbox provider: it verifies nobody"
        );
        let realname: Arc<dyn realname::RealNameProvider> = Arc::new(sandbox);
        let mut invoicing_sandbox = config.invoicing.sandbox.clone();
        invoicing_sandbox
            .state_file
            .get_or_insert_with(|| config.data_dir.join("invoicing-sandbox.json"));
        let invoicing = invoices::SandboxInvoicingProvider::new(invoicing_sandbox)
            .map_err(|e| StartError::Config(format!("[invoicing.sandbox]: {e}")))?;
        tracing::warn!(
            provider = "sandbox",
            "e-invoices are issued by the sandbox invoicing provider: none of them is real"
        );
        let invoicing: Arc<dyn invoices::InvoicingProvider> = Arc::new(invoicing);
        let payments = payments::SandboxPaymentProvider::new(config.payments.sandbox.clone())
            .map_err(|e| StartError::Config(format!("[payments.sandbox]: {e}")))?;
        tracing::warn!(
            provider = payments::SANDBOX_PROVIDER,
            "payouts go to the sandbox payment provider: it pays nobody"
        );
        let payments: Arc<dyn payments::PaymentProvider> = Arc::new(payments);

        let inner = Inner {
            config,
            db,
            media,
            sites,
            verifier,
            actor,
            realname,
            invoicing,
            payments,
            upload_locks,
            thumbnail_slots: tokio::sync::Semaphore::new(THUMBNAILS_AT_ONCE),
            order_locks: (0..64).map(|_| tokio::sync::Mutex::new(())).collect(),
        };
        let state = AppState(Arc::new(inner));
        verification::spawn_worker(state.clone(), jobs);
        face::spawn_consumer(state.clone());
        replication::spawn_worker(state.clone());
        replication::spawn_scheduled_scrub(state.clone());
        archive::spawn_backfill(state.clone());
        checks::spawn_daily(state.clone());
        invoices::spawn_resolver(state.clone());
        settlement::spawn_retry(state.clone());
        payouts::spawn(state.clone());
        verification::requeue_pending(&state).await?;
        Ok(state)
    }
}

/// Removes files left by a copy, a document upload or a streamed read that a stopped process
/// did not finish: nothing resumes from them, and they may hold plaintext.
fn clean_staging(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let transient = [".copy-", ".sealed-part", ".document-", ".face-"];
        if transient.iter().any(|t| name.contains(t)) {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => tracing::info!(file = %name, "removed a staging file left by a stop"),
                Err(e) => tracing::warn!(file = %name, error = %e, "cannot remove staging file"),
            }
        }
    }
}

/// Refuses to start when the media the database knows cannot be read at any site although
/// the sites answer: the master key file is then almost certainly not the one the media was
/// sealed with (a new or another installation's file), and every upload and read would fail.
async fn check_media_readable(
    db: &Db,
    sites: &replication::Sites,
    config: &Config,
) -> Result<(), StartError> {
    use flexwork_storage::StorageError;
    use sqlx::Row;

    let rows = sqlx::query("SELECT hash FROM media_objects ORDER BY size, hash LIMIT 3")
        .fetch_all(&db.pool)
        .await?;
    let mut first_error = None;
    let mut unreachable = false;
    for row in &rows {
        let Ok(hash) = row.try_get::<String, _>("hash")?.parse() else {
            continue;
        };
        for site in sites.all() {
            match site.get(&hash).await {
                Ok(_) => return Ok(()),
                Err(e @ (StorageError::NotFound { .. } | StorageError::Corrupt { .. })) => {
                    first_error.get_or_insert_with(|| format!("site {}: {e}", site.name()));
                }
                Err(e) => {
                    unreachable = true;
                    tracing::warn!(site = site.name(), error = %e, "site unreadable at start");
                }
            }
        }
    }
    match first_error {
        Some(error) if !unreachable => Err(StartError::Config(format!(
            "none of the {} media blobs checked can be read at any site ({error}); the master \
             key file {} is probably not the one the media was sealed with: restore it, or \
             point [encryption] key_file at it",
            rows.len(),
            config.key_file().display()
        ))),
        _ => Ok(()),
    }
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, db = ?state.db.backend, media = state.media.name(), "serving");
    let app = api::router(state);

    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}

/// A new random identifier.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The calendar date in Asia/Shanghai (UTC+8, no daylight saving) of an instant.
pub fn shanghai_date(ms: i64) -> String {
    let shanghai = time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC);
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(shanghai);
    let format = time::macros::format_description!("[year]-[month]-[day]");
    at.format(&format).unwrap_or_default()
}

/// Milliseconds to an RFC 3339 string, for JSON views.
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
