//! The device store: opening it, its identity, the session and reading what it holds.

use std::path::{Path, PathBuf};

use automerge::ActorId;
use flexwork_sync::{Evidence, FindingRecord, LoginRequest, MessageLimits, OrderSummary};
use rusqlite::{Connection, TransactionBehavior};
use uuid::Uuid;

use crate::blobs::BlobStore;
use crate::cache::{DEFAULT_DOC_CACHE_DOCS, DocCache};
use crate::db::{self, now_ms};
use crate::session::{self, Session, SessionInfo};
use crate::transport::HttpTransport;
use crate::{ClientError, EvidenceItem, Order, docs, items, orders};

/// Default size of one media upload chunk: 256 KiB.
pub const DEFAULT_CHUNK_SIZE: usize = 256 * 1024;

/// A phone's evidence store: `device.sqlite` and `blobs/` in one folder.
///
/// Every recording call is one SQLite transaction (WAL, `synchronous=FULL`), so what a call
/// returned survives the process being killed right after.
///
/// A `Device` keeps up to [`DEFAULT_DOC_CACHE_DOCS`] loaded evidence documents in memory
/// (least recently used dropped first), each always equal to what the store holds. It
/// expects to be the only writer of its folder; if another connection writes to the store
/// anyway, the cache notices (`PRAGMA data_version`) and reloads.
#[derive(Debug)]
pub struct Device {
    pub(crate) conn: Connection,
    pub(crate) blobs: BlobStore,
    pub(crate) device_id: String,
    pub(crate) actor: ActorId,
    pub(crate) chunk_size: usize,
    pub(crate) limits: MessageLimits,
    /// Loaded documents, each matching the store; see [`crate::cache`].
    pub(crate) docs: DocCache,
    dir: PathBuf,
}

impl Device {
    /// Opens the store in `dir`, creating it (and this installation's id) on first use.
    pub fn open(dir: &Path) -> Result<Self, ClientError> {
        std::fs::create_dir_all(dir)?;
        let mut conn = db::open(&dir.join("device.sqlite"))?;
        let blobs = BlobStore::open(dir.join("blobs"))?;
        let device_id = device_id(&mut conn)?;
        let actor = ActorId::from(device_id.as_bytes().to_vec());
        tracing::debug!(device_id = %device_id, "device store opened");

        Ok(Self {
            conn,
            blobs,
            device_id: device_id.to_string(),
            actor,
            chunk_size: DEFAULT_CHUNK_SIZE,
            limits: MessageLimits::default(),
            docs: DocCache::new(DEFAULT_DOC_CACHE_DOCS),
            dir: dir.to_owned(),
        })
    }

    /// The stable id of this installation.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// The folder of the store.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Sets the media upload chunk size in bytes (at least 1).
    pub fn set_chunk_size(&mut self, bytes: usize) {
        self.chunk_size = bytes.max(1);
    }

    /// Sets how many loaded evidence documents stay in memory between calls (default
    /// [`DEFAULT_DOC_CACHE_DOCS`]; 0 loads the document from the store on every call).
    pub fn set_doc_cache_capacity(&mut self, documents: usize) {
        self.docs.set_capacity(documents);
    }

    /// Logs in at `server_url` over HTTP and stores the session for later syncs.
    pub fn login(
        &mut self,
        server_url: &str,
        login: &str,
        password: &str,
    ) -> Result<SessionInfo, ClientError> {
        let request = LoginRequest {
            login: login.to_owned(),
            password: password.to_owned(),
            totp: None,
            recovery_code: None,
        };
        let response = HttpTransport::login(server_url, &request)?;
        if response.role != "worker" {
            let message = format!(
                "this is the workers' app; `{login}` is a {} account",
                response.role
            );
            return Err(ClientError::invalid(message));
        }
        let session = Session {
            info: SessionInfo {
                server_url: server_url.trim_end_matches('/').to_owned(),
                account_id: response.account_id,
                role: response.role,
            },
            token: response.token,
        };

        session::save(&self.conn, &session, now_ms())?;
        tracing::info!(account_id = %session.info.account_id, "device logged in");
        Ok(session.info)
    }

    /// Who the device is logged in as, if anyone.
    pub fn session(&self) -> Result<Option<SessionInfo>, ClientError> {
        Ok(session::load(&self.conn)?.map(|s| s.info))
    }

    /// The HTTP transport for the stored session.
    pub fn transport(&self) -> Result<HttpTransport, ClientError> {
        let session = session::load(&self.conn)?.ok_or(ClientError::NotLoggedIn)?;
        Ok(HttpTransport::new(
            &session.info.server_url,
            &session.token,
        )?)
    }

    /// Stores orders that reached the device by another channel than sync (sync does this
    /// itself); returns how many were new.
    pub fn remember_orders(&mut self, summaries: &[OrderSummary]) -> Result<usize, ClientError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let added = orders::upsert(&tx, summaries, now_ms())?;
        tx.commit()?;
        Ok(added.len())
    }

    /// Every order on the device.
    pub fn orders(&self) -> Result<Vec<Order>, ClientError> {
        orders::list(&self.conn)
    }

    /// One order.
    pub fn order(&self, order_id: &str) -> Result<Order, ClientError> {
        let all = orders::list(&self.conn)?;
        all.into_iter()
            .find(|o| o.summary.order_id == order_id)
            .ok_or_else(|| ClientError::UnknownOrder(order_id.to_owned()))
    }

    /// Everything in the order's evidence document, including the server's review.
    pub fn evidence(&self, order_id: &str) -> Result<Evidence, ClientError> {
        let tx = self.conn.unchecked_transaction()?;
        orders::ensure(&tx, order_id)?;
        if let Some(doc) = self.docs.peek(&tx, order_id)? {
            return Ok(doc.read()?);
        }
        let doc = docs::read_only(&tx, order_id, &self.actor)?;
        Ok(doc.read()?)
    }

    /// The findings of the server's review that name `item_id`.
    pub fn item_findings(
        &self,
        order_id: &str,
        item_id: &str,
    ) -> Result<Vec<FindingRecord>, ClientError> {
        let review = self.evidence(order_id)?.review;
        let findings = review.map(|r| r.findings).unwrap_or_default();
        Ok(findings
            .into_iter()
            .filter(|f| f.item.as_deref() == Some(item_id))
            .collect())
    }

    /// The items recorded for an order, with their upload state.
    pub fn items(&self, order_id: &str) -> Result<Vec<EvidenceItem>, ClientError> {
        orders::ensure(&self.conn, order_id)?;
        items::list(&self.conn, order_id)
    }
}

/// Reads the installation id, creating it on first open.
fn device_id(conn: &mut Connection) -> Result<Uuid, ClientError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT OR IGNORE INTO device (singleton, device_id, created_at_ms) VALUES (1, ?1, ?2)",
        rusqlite::params![Uuid::new_v4().to_string(), now_ms()],
    )?;
    let id: String = tx.query_row("SELECT device_id FROM device", [], |row| row.get(0))?;
    tx.commit()?;

    Uuid::parse_str(&id).map_err(|e| ClientError::Corrupt(format!("device id: {e}")))
}
