//! The device store: opening it, its identity, the sign-in and reading what it holds.

use std::path::{Path, PathBuf};

use automerge::ActorId;
use flexwork_sync::device_auth::{DeviceInfo, DeviceRegistration, RequestToSign};
use flexwork_sync::{Evidence, FindingRecord, LoginRequest, MessageLimits, OrderSummary};
use rusqlite::{Connection, TransactionBehavior};
use uuid::Uuid;

use crate::blobs::BlobStore;
use crate::cache::{DEFAULT_DOC_CACHE_DOCS, DocCache};
use crate::db::{self, now_ms};
use crate::session::{self, Session, SessionInfo};
use crate::signing::{DeviceKey, SignedHeaders, new_nonce};
use crate::transport::{HttpTransport, TransportError};
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
        keep_private(dir)?;
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

    /// Signs in at `server_url` over HTTP once and registers this phone: see
    /// [`Device::login_named`]; the device's name is `phone` and the start of its
    /// installation id.
    pub fn login(
        &mut self,
        server_url: &str,
        login: &str,
        password: &str,
    ) -> Result<SessionInfo, ClientError> {
        let name = format!("phone {}", &self.device_id[..8]);
        self.login_named(server_url, login, password, &name)
    }

    /// Signs in at `server_url` with the worker's login and password, makes a new device
    /// key, registers its public half under `name` with that password session (which the
    /// server then revokes) and keeps the key and the device id for every later call. The
    /// password and the session's token are not kept. An earlier registration of the same
    /// account on the same server is replaced (the server revokes it); one of another
    /// account is revoked with its own key first, when the server can be reached.
    pub fn login_named(
        &mut self,
        server_url: &str,
        login: &str,
        password: &str,
        name: &str,
    ) -> Result<SessionInfo, ClientError> {
        let server_url = server_url.trim_end_matches('/');
        let request = LoginRequest {
            login: login.to_owned(),
            password: password.to_owned(),
            totp: None,
            recovery_code: None,
        };
        let response = HttpTransport::login(server_url, &request)?;
        if response.role != "worker" {
            let _ = HttpTransport::logout(server_url, &response.token);
            let message = format!(
                "this is the workers' app; `{login}` is a {} account",
                response.role
            );
            return Err(ClientError::invalid(message));
        }

        let earlier = session::load(&self.conn)?;
        let same_account = |s: &Session| {
            s.info.server_url == server_url && s.info.account_id == response.account_id
        };
        if let Some(other) = earlier.as_ref().filter(|s| !same_account(s)) {
            // Another account's registration on this phone: revoke it while its key is here
            // (best effort: offline, it stays until that worker revokes it from the list).
            let transport = HttpTransport::new(
                &other.info.server_url,
                &other.info.registered_device_id,
                other.key.clone(),
            )?;
            let _ = transport.revoke_device(&other.info.registered_device_id);
        }
        let earlier = earlier.filter(same_account);
        let key = DeviceKey::generate();
        let registration = DeviceRegistration {
            public_key: key.public_key(),
            name: name.to_owned(),
            proof: key.registration_proof(&response.account_id),
            replaces: earlier.map(|s| s.info.registered_device_id),
        };
        let registered =
            match HttpTransport::register_device(server_url, &response.token, &registration) {
                Ok(registered) => registered,
                Err(e) => {
                    // The password session is of no use to the phone: do not leave it open.
                    let _ = HttpTransport::logout(server_url, &response.token);
                    return Err(e.into());
                }
            };
        let session = Session {
            info: SessionInfo {
                server_url: server_url.to_owned(),
                account_id: response.account_id,
                role: response.role,
                registered_device_id: registered.device_id,
            },
            key,
        };

        session::save(&self.conn, &session, now_ms())?;
        tracing::info!(
            account_id = %session.info.account_id,
            device_id = %session.info.registered_device_id,
            "device signed in and registered"
        );
        Ok(session.info)
    }

    /// Who the device is logged in as, if anyone.
    pub fn session(&self) -> Result<Option<SessionInfo>, ClientError> {
        Ok(session::load(&self.conn)?.map(|s| s.info))
    }

    /// The HTTP transport for the stored sign-in, signing with the device key.
    pub fn transport(&self) -> Result<HttpTransport, ClientError> {
        let session = session::load(&self.conn)?.ok_or(ClientError::NotLoggedIn)?;
        Ok(HttpTransport::new(
            &session.info.server_url,
            &session.info.registered_device_id,
            session.key,
        )?)
    }

    /// The signed headers for a call the app makes itself (one not in [`HttpTransport`]):
    /// `method`, the `path_and_query` exactly as sent (like `/api/v1/orders?state=open`), its
    /// `Content-Type` (empty for none) and body. Each set is good for one request.
    pub fn sign_request(
        &self,
        method: &str,
        path_and_query: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<SignedHeaders, ClientError> {
        let session = session::load(&self.conn)?.ok_or(ClientError::NotLoggedIn)?;
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let nonce = new_nonce();
        Ok(session.key.headers(&RequestToSign {
            method,
            path,
            query,
            content_type,
            device_id: &session.info.registered_device_id,
            timestamp_ms: now_ms(),
            nonce: &nonce,
            body,
        }))
    }

    /// The account's phones, as the server lists them.
    pub fn devices(&self) -> Result<Vec<DeviceInfo>, ClientError> {
        Ok(self.transport()?.devices()?)
    }

    /// Revokes one of the account's phones; revoking this one also signs this phone out.
    pub fn revoke_device(&mut self, device_id: &str) -> Result<(), ClientError> {
        let transport = self.transport()?;
        transport.revoke_device(device_id)?;
        let current = session::load(&self.conn)?.map(|s| s.info.registered_device_id);
        if current.as_deref() == Some(device_id) {
            session::clear(&self.conn)?;
        }
        Ok(())
    }

    /// Signs out: the server revokes this phone's registration and the key is deleted from
    /// the store. The key is deleted also when the server cannot be reached (the error says
    /// so); the registration then stays in the worker's list until revoked there.
    pub fn logout(&mut self) -> Result<(), ClientError> {
        let Some(session) = session::load(&self.conn)? else {
            return Ok(());
        };
        let transport = self.transport()?;
        let revoked = transport.revoke_device(&session.info.registered_device_id);
        session::clear(&self.conn)?;
        match revoked {
            // Already revoked or unknown: nothing is left to sign out of.
            Err(TransportError::Server { status: 401, .. }) | Ok(()) => Ok(()),
            Err(e) => Err(e.into()),
        }
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
        orders::get(&self.conn, order_id)?
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

/// The store holds the device's private key and the worker's photos: on Unix its database
/// (and SQLite's journal files, which take the database's mode) are readable by the owner
/// only, and so is `blobs/`. The folder given is left as it is.
#[cfg(unix)]
fn keep_private(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let owner_only = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    };
    let db = dir.join("device.sqlite");
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&db)?;
    owner_only(&db, 0o600)?;
    for journal in ["device.sqlite-wal", "device.sqlite-shm"] {
        let path = dir.join(journal);
        if path.exists() {
            owner_only(&path, 0o600)?;
        }
    }
    let blobs = dir.join("blobs");
    std::fs::create_dir_all(&blobs)?;
    owner_only(&blobs, 0o700)
}

#[cfg(not(unix))]
fn keep_private(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}
