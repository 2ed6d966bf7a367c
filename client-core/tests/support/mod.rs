//! An in-memory server for client-core tests.
//!
//! It plays the server's side of the protocol with the real pieces: requests and responses go
//! through the CBOR encoding, each order has an [`EvidenceDoc`] with one [`DocPeer`] per
//! device, media arrive in chunks and are kept in a map once their hash checks out. It can be
//! told to go offline, to drop the connection after a number of chunks, and to write a review.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use automerge::ActorId;
use flexwork_client_core::{Transport, TransportError};
use flexwork_sync::protocol::{self, decode_request};
use flexwork_sync::{
    ContentHash, DocMessage, DocPeer, DocRejection, Evidence, EvidenceDoc, MediaState, MediaStatus,
    MessageLimits, OrderSummary, PROTOCOL_VERSION, RequirementsSpec, ReviewRecord, SiteSpec,
    SyncRequest, SyncResponse, WindowSpec,
};

/// Largest blob the fake accepts.
pub const MAX_MEDIA: u64 = 32 * 1024 * 1024;

#[derive(Default)]
struct Inner {
    orders: Vec<OrderSummary>,
    docs: BTreeMap<String, EvidenceDoc>,
    peers: HashMap<(String, String), DocPeer>,
    blobs: HashMap<ContentHash, Vec<u8>>,
    partial: HashMap<ContentHash, Vec<u8>>,
    offline: bool,
    chunks_before_drop: Option<usize>,
    sync_requests: usize,
    docs_received: usize,
    chunk_offsets: Vec<u64>,
    bytes_received: u64,
}

/// The fake server. Shared by reference; every call locks its state.
#[derive(Default)]
pub struct FakeServer {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakeServer")
    }
}

/// A task order near Arezzo, worth 150 yuan.
pub fn order(order_id: &str) -> OrderSummary {
    OrderSummary {
        order_id: order_id.into(),
        task_id: format!("task-{order_id}"),
        title: "shelf audit".into(),
        description: "photograph every shelf".into(),
        site: SiteSpec {
            lat: 43.467,
            lon: 11.885,
            radius_m: 200.0,
        },
        window: WindowSpec {
            from_ms: 1_700_000_000_000,
            to_ms: 1_700_086_400_000,
        },
        fee_fen: 15_000,
        requirements: RequirementsSpec {
            min_photos: 1,
            track: true,
            signature: true,
        },
        status: "assigned".into(),
        verdict: None,
    }
}

impl FakeServer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Assigns an order to the worker and creates its document on the server.
    pub fn add_order(&self, order_id: &str) -> OrderSummary {
        let summary = order(order_id);
        let doc = EvidenceDoc::new(order_id, server_actor()).unwrap();
        let mut inner = self.inner.lock().unwrap();
        inner.orders.push(summary.clone());
        inner.docs.insert(order_id.into(), doc);
        summary
    }

    /// Every call fails as if the network were down.
    pub fn set_offline(&self, offline: bool) {
        self.inner.lock().unwrap().offline = offline;
    }

    /// Accepts `n` more chunks, then drops the connection on every later chunk.
    pub fn drop_after_chunks(&self, n: Option<usize>) {
        self.inner.lock().unwrap().chunks_before_drop = n;
    }

    /// The server's reading of an order's evidence.
    pub fn evidence(&self, order_id: &str) -> Evidence {
        self.inner.lock().unwrap().docs[order_id].read().unwrap()
    }

    /// Writes the verification result into the order's document, as the real server does.
    pub fn set_review(&self, order_id: &str, review: &ReviewRecord) {
        let mut inner = self.inner.lock().unwrap();
        let doc = inner.docs.get_mut(order_id).unwrap();
        doc.set_review(review, review.reviewed_at_ms).unwrap();
    }

    pub fn blob(&self, hash: &ContentHash) -> Option<Vec<u8>> {
        self.inner.lock().unwrap().blobs.get(hash).cloned()
    }

    /// Bytes received by chunk uploads since the last reset, and their offsets.
    pub fn upload_log(&self) -> (u64, Vec<u64>) {
        let inner = self.inner.lock().unwrap();
        (inner.bytes_received, inner.chunk_offsets.clone())
    }

    pub fn reset_upload_log(&self) {
        let mut inner = self.inner.lock().unwrap();
        inner.bytes_received = 0;
        inner.chunk_offsets.clear();
    }

    /// Sync requests served and document messages received.
    pub fn sync_counts(&self) -> (usize, usize) {
        let inner = self.inner.lock().unwrap();
        (inner.sync_requests, inner.docs_received)
    }
}

fn server_actor() -> ActorId {
    ActorId::from(vec![0xEE; 16])
}

fn network() -> TransportError {
    TransportError::Network("connection reset by peer".into())
}

fn refused(status: u16, code: &str, message: &str) -> TransportError {
    TransportError::Server {
        status,
        code: code.into(),
        message: message.into(),
    }
}

impl Inner {
    fn apply(&mut self, device: &str, message: &DocMessage) -> Result<(), DocRejection> {
        let reject = |code: &str, text: String| DocRejection {
            order_id: message.order_id.clone(),
            code: code.into(),
            message: text,
        };
        let Some(doc) = self.docs.get_mut(&message.order_id) else {
            return Err(reject("unknown_order", "no such order".into()));
        };
        let key = (device.to_owned(), message.order_id.clone());
        let peer = self.peers.entry(key).or_default();

        self.docs_received += 1;
        peer.receive(doc.automerge(), &message.message, &MessageLimits::default())
            .map_err(|e| reject(e.code(), e.to_string()))
    }

    fn outgoing(&mut self, device: &str) -> Vec<DocMessage> {
        let mut out = Vec::new();
        for (order_id, doc) in &mut self.docs {
            let key = (device.to_owned(), order_id.clone());
            let peer = self.peers.entry(key).or_default();
            if let Some(message) = peer.generate(doc.automerge()) {
                out.push(DocMessage {
                    order_id: order_id.clone(),
                    message,
                });
            }
        }
        out
    }

    fn wanted(&self) -> Vec<ContentHash> {
        let mut wanted: Vec<ContentHash> = self
            .docs
            .values()
            .flat_map(|doc| doc.read().unwrap().photos)
            .map(|photo| photo.hash)
            .filter(|hash| !self.blobs.contains_key(hash))
            .collect();
        wanted.sort();
        wanted.dedup();
        wanted
    }

    fn referenced(&self, hash: &ContentHash) -> Option<u64> {
        let photos = self
            .docs
            .values()
            .flat_map(|doc| doc.read().unwrap().photos);
        photos.into_iter().find(|p| p.hash == *hash).map(|p| p.size)
    }

    fn status(&self, hash: &ContentHash) -> MediaStatus {
        let (state, received) = match (self.blobs.get(hash), self.partial.get(hash)) {
            (Some(blob), _) => (MediaState::Complete, blob.len() as u64),
            (None, Some(part)) => (MediaState::Partial, part.len() as u64),
            (None, None) => (MediaState::Absent, 0),
        };
        MediaStatus {
            hash: *hash,
            state,
            received,
        }
    }
}

impl Transport for FakeServer {
    fn sync(&self, request: &SyncRequest) -> Result<SyncResponse, TransportError> {
        let mut inner = self.inner.lock().unwrap();
        if inner.offline {
            return Err(network());
        }
        let request = decode_request(&protocol::encode(request))
            .map_err(|e| refused(400, e.code(), &e.to_string()))?;
        inner.sync_requests += 1;

        let rejected: Vec<DocRejection> = request
            .docs
            .iter()
            .filter_map(|message| inner.apply(&request.device_id, message).err())
            .collect();
        let response = SyncResponse {
            protocol: PROTOCOL_VERSION,
            server_time_ms: 1_700_000_000_000,
            orders: if request.want_orders {
                inner.orders.clone()
            } else {
                Vec::new()
            },
            docs: inner.outgoing(&request.device_id),
            rejected,
            wanted_media: inner.wanted(),
        };

        let bytes = protocol::encode(&response);
        protocol::decode_response(&bytes).map_err(|e| TransportError::BadResponse(e.to_string()))
    }

    fn media_status(&self, hash: &ContentHash) -> Result<MediaStatus, TransportError> {
        let inner = self.inner.lock().unwrap();
        if inner.offline {
            return Err(network());
        }
        Ok(inner.status(hash))
    }

    fn upload_chunk(
        &self,
        hash: &ContentHash,
        offset: u64,
        total: u64,
        media_type: &str,
        chunk: &[u8],
    ) -> Result<MediaStatus, TransportError> {
        let mut inner = self.inner.lock().unwrap();
        if inner.offline || inner.chunks_before_drop == Some(0) {
            return Err(network());
        }
        if let Some(left) = inner.chunks_before_drop.as_mut() {
            *left -= 1;
        }

        check_chunk(&inner, hash, offset, total, media_type)?;
        inner.bytes_received += chunk.len() as u64;
        inner.chunk_offsets.push(offset);
        let part = inner.partial.entry(*hash).or_default();
        part.extend_from_slice(chunk);
        if (part.len() as u64) < total {
            return Ok(inner.status(hash));
        }

        let whole = inner.partial.remove(hash).unwrap_or_default();
        if ContentHash::of(&whole) != *hash || whole.len() as u64 != total {
            return Err(refused(
                422,
                "hash_mismatch",
                "the bytes do not match the hash",
            ));
        }
        inner.blobs.insert(*hash, whole);
        Ok(inner.status(hash))
    }
}

fn check_chunk(
    inner: &Inner,
    hash: &ContentHash,
    offset: u64,
    total: u64,
    media_type: &str,
) -> Result<(), TransportError> {
    if !media_type.starts_with("image/") {
        return Err(refused(415, "unsupported_media_type", "not an image"));
    }
    if total > MAX_MEDIA {
        return Err(refused(413, "media_too_large", "the blob is too large"));
    }
    if inner.referenced(hash).is_none() {
        return Err(refused(
            403,
            "media_not_referenced",
            "no evidence names this media",
        ));
    }
    let held = inner.status(hash).received;
    if inner.blobs.contains_key(hash) || held != offset {
        return Err(refused(
            409,
            "upload_offset_mismatch",
            "the server holds another offset",
        ));
    }
    Ok(())
}
