//! Sync with the server: document rounds first, then uploads of the media the server lacks.
//!
//! Rounds: every document with something to say sends an Automerge sync message (batched by
//! [`MAX_DOCS_PER_REQUEST`]); the answer's messages are applied and stored as change chunks
//! together with the sync state, one transaction per answer. Rounds repeat until one where
//! the device sent nothing and the server sent nothing. A round with no message still fetches
//! the worker's orders, and a new order gets its document skeleton at once.
//!
//! Uploads come after the documents, because the server only accepts media that one of the
//! worker's documents references.

use std::collections::{BTreeMap, BTreeSet};

use flexwork_sync::protocol::MAX_DOCS_PER_REQUEST;
use flexwork_sync::{
    ContentHash, DocMessage, DocPeer, DocRejection, EvidenceDoc, MediaState, MessageLimits,
    OrderSummary, PROTOCOL_VERSION, SyncRequest, SyncResponse,
};
use rusqlite::{Connection, TransactionBehavior};
use serde::Serialize;

use crate::cache::CachedDoc;
use crate::db::now_ms;
use crate::items::{self, ItemFailure, ItemState, PendingMedia};
use crate::transport::{Transport, TransportError};
use crate::{ClientError, Device, docs, orders};

/// Most document rounds in one sync.
pub const MAX_ROUNDS: usize = 20;
/// Times an upload re-reads the server's offset after `upload_offset_mismatch`.
const MAX_OFFSET_RETRIES: usize = 3;

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SyncReport {
    /// Document rounds.
    pub rounds: usize,
    /// `POST /api/v1/sync` requests (a round with many documents takes several).
    pub requests: usize,
    pub docs_sent: usize,
    pub docs_received: usize,
    /// Orders the server listed for the worker, and how many were new on this device.
    pub orders: usize,
    pub new_orders: usize,
    /// The last round had nothing to exchange: device and server hold the same documents.
    pub converged: bool,
    /// Document items (track, signature, note, submission) the server now holds.
    pub items_synced: usize,
    /// Media blobs this sync finished uploading, and the bytes it sent.
    pub blobs_uploaded: usize,
    pub bytes_uploaded: u64,
    /// Documents whose message the server refused; they are kept and retried next sync.
    pub rejected: Vec<DocRejection>,
    pub failures: Vec<SyncFailure>,
}

/// Something that did not get through, with the server's code when it gave one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncFailure {
    pub order_id: Option<String>,
    pub hash: Option<ContentHash>,
    pub code: String,
    pub message: String,
}

/// Which part of a sync a [`SyncStep`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncStage {
    /// Document rounds: `done` requests answered of `total` planned so far (a round plans
    /// its requests when it starts, so `total` may grow with the next round).
    Documents,
    /// One photo's bytes: `done` bytes the server holds of `total`.
    Media,
}

/// Where a sync stands, for a progress display; see [`Device::sync_with_progress`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncStep {
    pub stage: SyncStage,
    pub done: u64,
    pub total: u64,
    /// The photo item whose bytes are going up (media stage only).
    pub item: Option<String>,
}

/// A document taking part in a sync.
#[derive(Debug)]
struct LiveDoc {
    doc: EvidenceDoc,
    peer: DocPeer,
    /// Items up to this sequence number are in `doc`.
    last_item_seq: i64,
    /// The document's local revision when loaded.
    revision: i64,
    /// Left out of the rest of this sync (refused by either side).
    out: bool,
}

/// The state of one sync.
#[derive(Debug, Default)]
struct Run {
    docs: BTreeMap<String, LiveDoc>,
    /// Orders whose document was taken from the cache, least recently used first; they go
    /// back into it when the sync ends without error.
    cached: Vec<String>,
    wanted: BTreeSet<ContentHash>,
    report: SyncReport,
}

impl Device {
    /// Syncs documents, then uploads every blob the server lacks. Network failures during
    /// document rounds are errors (what was applied stays applied); upload problems are
    /// recorded on the items and listed in the report.
    pub fn sync(&mut self, transport: &dyn Transport) -> Result<SyncReport, ClientError> {
        self.sync_with_progress(transport, &mut |_| {})
    }

    /// [`Device::sync`], calling `progress` after every document request answered and every
    /// media chunk the server took (and once when each photo's upload starts).
    pub fn sync_with_progress(
        &mut self,
        transport: &dyn Transport,
        progress: &mut dyn FnMut(&SyncStep),
    ) -> Result<SyncReport, ClientError> {
        let mut run = Run::default();
        self.load_live_docs(&mut run)?;
        self.sync_documents(&mut run, transport, progress)?;
        self.finish_documents(&mut run)?;
        self.upload_media(&mut run, transport, progress)?;
        self.recache(&mut run);

        let report = run.report;
        tracing::info!(
            rounds = report.rounds,
            docs_sent = report.docs_sent,
            docs_received = report.docs_received,
            blobs = report.blobs_uploaded,
            bytes = report.bytes_uploaded,
            failures = report.failures.len(),
            "sync finished"
        );
        Ok(report)
    }

    /// Every stored document takes part, those in the cache taken out of it: the sync
    /// changes them in memory before its transactions commit.
    fn load_live_docs(&mut self, run: &mut Run) -> Result<(), ClientError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Deferred)?;
        self.docs.check(&tx)?;
        run.cached = self.docs.order_ids();
        for order_id in docs::order_ids(&tx)? {
            let live = live_doc(&tx, &order_id, &self.actor, self.docs.take(&order_id))?;
            run.docs.insert(order_id, live);
        }
        self.docs.clear();
        Ok(())
    }

    /// Puts the documents taken from the cache back, once everything the sync changed in
    /// them is committed and compacted. Documents left out of the sync may hold changes that
    /// were refused and not stored, so they stay out of the cache.
    fn recache(&mut self, run: &mut Run) {
        for order_id in &run.cached {
            let Some(live) = run.docs.remove(order_id) else {
                continue;
            };
            if !live.out {
                let entry = CachedDoc {
                    doc: live.doc,
                    chunks: 0,
                };
                self.docs.put(order_id, entry);
            }
        }
    }

    fn sync_documents(
        &mut self,
        run: &mut Run,
        transport: &dyn Transport,
        progress: &mut dyn FnMut(&SyncStep),
    ) -> Result<(), ClientError> {
        for _ in 0..MAX_ROUNDS {
            run.report.rounds += 1;
            let outgoing = generate(run);
            let sent = outgoing.len();
            let (received, created) = self.exchange(run, transport, outgoing, progress)?;

            if sent == 0 && received == 0 && created == 0 {
                run.report.converged = true;
                return Ok(());
            }
        }
        tracing::warn!(rounds = MAX_ROUNDS, "sync did not converge");
        Ok(())
    }

    /// Sends one round in batches; returns documents received and created.
    fn exchange(
        &mut self,
        run: &mut Run,
        transport: &dyn Transport,
        outgoing: Vec<DocMessage>,
        progress: &mut dyn FnMut(&SyncStep),
    ) -> Result<(usize, usize), ClientError> {
        let mut batches: Vec<Vec<DocMessage>> = outgoing
            .chunks(MAX_DOCS_PER_REQUEST)
            .map(<[DocMessage]>::to_vec)
            .collect();
        if batches.is_empty() {
            batches.push(Vec::new());
        }

        let (mut received, mut created) = (0, 0);
        let planned = (run.report.requests + batches.len()) as u64;
        for docs in batches {
            let sent = docs.len();
            // The order list comes once per sync, with the answer to the first request.
            let want_orders = run.report.requests == 0;
            let request = SyncRequest {
                protocol: PROTOCOL_VERSION,
                device_id: self.device_id.clone(),
                docs,
                want_orders,
            };
            let response = transport.sync(&request)?;
            run.report.requests += 1;
            run.report.docs_sent += sent;

            let (r, c) = self.apply_response(run, response, want_orders)?;
            received += r;
            created += c;
            progress(&SyncStep {
                stage: SyncStage::Documents,
                done: run.report.requests as u64,
                total: planned,
                item: None,
            });
        }
        Ok((received, created))
    }

    /// Applies one answer in one transaction: orders (when asked for), new documents,
    /// refusals, messages.
    fn apply_response(
        &mut self,
        run: &mut Run,
        response: SyncResponse,
        with_orders: bool,
    ) -> Result<(usize, usize), ClientError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut created = 0;
        if with_orders {
            let added = orders::upsert(&tx, &response.orders, now_ms())?;
            run.report.orders = response.orders.len();
            run.report.new_orders += added.len();
            created = create_docs(&tx, run, &response.orders, &self.actor)?;
        }

        for rejection in response.rejected {
            reject(&tx, run, rejection)?;
        }
        let mut received = 0;
        for message in response.docs {
            received += usize::from(receive(&tx, run, &message, &self.limits)?);
        }
        tx.commit()?;

        run.report.docs_received += received;
        run.wanted = response.wanted_media.into_iter().collect();
        Ok((received, created))
    }

    /// After the rounds: marks what the server holds, keeps sync states, compacts documents.
    fn finish_documents(&mut self, run: &mut Run) -> Result<(), ClientError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for (order_id, live) in run.docs.iter().filter(|(_, live)| !live.out) {
            docs::save_peer(&tx, order_id, &live.peer)?;
            if run.report.converged {
                let synced = items::mark_document_items_synced(&tx, order_id, live.last_item_seq)?;
                run.report.items_synced += synced;
                docs::mark_synced(&tx, order_id, live.revision)?;
            }
        }

        for order_id in docs::with_chunks(&tx)? {
            docs::compact(&tx, &order_id, &self.actor)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn upload_media(
        &mut self,
        run: &mut Run,
        transport: &dyn Transport,
        progress: &mut dyn FnMut(&SyncStep),
    ) -> Result<(), ClientError> {
        for media in self.media_to_upload(run)? {
            if !self.upload_one(run, transport, &media, progress)? {
                break;
            }
        }
        Ok(())
    }

    /// Photos not yet on the server (and any the server asks for again), one per hash.
    fn media_to_upload(&self, run: &Run) -> Result<Vec<PendingMedia>, ClientError> {
        let mut seen = BTreeSet::new();
        let pending = items::media(&self.conn)?
            .into_iter()
            .filter(|m| run.docs.get(&m.order_id).is_some_and(|live| !live.out))
            .filter(|m| m.state != ItemState::Synced || run.wanted.contains(&m.hash))
            .filter(|m| seen.insert(m.hash))
            .collect();
        Ok(pending)
    }

    /// Uploads one blob and records the outcome; returns whether to go on with the next.
    fn upload_one(
        &mut self,
        run: &mut Run,
        transport: &dyn Transport,
        media: &PendingMedia,
        progress: &mut dyn FnMut(&SyncStep),
    ) -> Result<bool, ClientError> {
        let error = match self.upload_blob(run, transport, media, progress) {
            Ok(sent) => {
                run.report.blobs_uploaded += usize::from(sent > 0);
                items::set_media_state(
                    &self.conn,
                    &media.hash,
                    ItemState::Synced,
                    Some(media.size),
                    None,
                )?;
                tracing::info!(hash = %media.hash, bytes = sent, "media uploaded");
                return Ok(true);
            }
            Err(ClientError::Transport(e)) => e,
            Err(e @ ClientError::MissingBlob(_)) => {
                let failure = failure_of(e.code(), &e.to_string());
                self.fail_media(run, media, failure)?;
                return Ok(true);
            }
            Err(other) => return Err(other),
        };

        let failure = transport_failure(&error);
        if error.is_permanent() {
            self.fail_media(run, media, failure)?;
            return Ok(true);
        }
        tracing::warn!(hash = %media.hash, err = %error, "media upload held back");
        items::set_media_state(
            &self.conn,
            &media.hash,
            ItemState::Queued,
            None,
            Some(&failure),
        )?;
        run.report.failures.push(media_failure(media, failure));
        Ok(!error.is_outage())
    }

    fn fail_media(
        &self,
        run: &mut Run,
        media: &PendingMedia,
        failure: ItemFailure,
    ) -> Result<(), ClientError> {
        tracing::warn!(hash = %media.hash, code = %failure.code, "media refused for good");
        items::set_media_state(
            &self.conn,
            &media.hash,
            ItemState::Failed,
            None,
            Some(&failure),
        )?;
        run.report.failures.push(media_failure(media, failure));
        Ok(())
    }

    /// Sends the blob in chunks from the offset the server holds; returns the bytes sent.
    fn upload_blob(
        &self,
        run: &mut Run,
        transport: &dyn Transport,
        media: &PendingMedia,
        progress: &mut dyn FnMut(&SyncStep),
    ) -> Result<u64, ClientError> {
        let (hash, size) = (&media.hash, media.size);
        let mut status = transport.media_status(hash)?;
        let (mut sent, mut conflicts) = (0, 0);
        let mut report = |received: u64| {
            progress(&SyncStep {
                stage: SyncStage::Media,
                done: received.min(size),
                total: size,
                item: Some(media.item_id.clone()),
            });
        };
        report(status.received);

        while status.state != MediaState::Complete {
            let offset = status.received;
            check_offset(offset, size)?;
            items::set_media_state(&self.conn, hash, ItemState::Uploading, Some(offset), None)?;
            // With every byte on the server but the upload not complete (the server stopped
            // while storing it), an empty chunk at the end asks it to finish.
            let chunk = if offset == size {
                Vec::new()
            } else {
                self.blobs.read_chunk(hash, offset, self.chunk_size)?
            };
            if chunk.is_empty() && offset < size {
                return Err(ClientError::MissingBlob(*hash));
            }

            match transport.upload_chunk(hash, offset, size, &media.media_type, &chunk) {
                Ok(next) => {
                    check_progress(&next, offset)?;
                    sent += chunk.len() as u64;
                    run.report.bytes_uploaded += chunk.len() as u64;
                    tracing::debug!(hash = %hash, received = next.received, "media chunk sent");
                    let received = match next.state {
                        MediaState::Complete => size,
                        _ => next.received,
                    };
                    report(received);
                    status = next;
                }
                Err(TransportError::Server { status: 409, .. })
                    if conflicts < MAX_OFFSET_RETRIES =>
                {
                    conflicts += 1;
                    status = transport.media_status(hash)?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(sent)
    }
}

/// A document taking part in the sync: `cached` if the cache held it, else loaded.
fn live_doc(
    conn: &Connection,
    order_id: &str,
    actor: &automerge::ActorId,
    cached: Option<CachedDoc>,
) -> Result<LiveDoc, ClientError> {
    let doc = match cached {
        Some(entry) => entry.doc,
        None => docs::load_or_create(conn, order_id, actor)?,
    };
    Ok(LiveDoc {
        doc,
        peer: docs::load_peer(conn, order_id)?,
        last_item_seq: items::last_seq(conn, order_id)?,
        revision: docs::revision(conn, order_id)?,
        out: false,
    })
}

/// The next message of every document still taking part that has something to say.
fn generate(run: &mut Run) -> Vec<DocMessage> {
    run.docs
        .iter_mut()
        .filter(|(_, live)| !live.out)
        .filter_map(|(order_id, live)| {
            let message = live.peer.generate(live.doc.automerge())?;
            Some(DocMessage {
                order_id: order_id.clone(),
                message,
            })
        })
        .collect()
}

/// Gives every listed order without a document its skeleton; returns how many.
fn create_docs(
    conn: &Connection,
    run: &mut Run,
    listed: &[OrderSummary],
    actor: &automerge::ActorId,
) -> Result<usize, ClientError> {
    let mut created = 0;
    for order in listed {
        if run.docs.contains_key(&order.order_id) {
            continue;
        }
        let live = live_doc(conn, &order.order_id, actor, None)?;
        run.docs.insert(order.order_id.clone(), live);
        created += 1;
    }
    Ok(created)
}

fn reject(conn: &Connection, run: &mut Run, rejection: DocRejection) -> Result<(), ClientError> {
    tracing::warn!(
        order_id = %rejection.order_id,
        code = %rejection.code,
        "server refused a document message"
    );
    if let Some(live) = run.docs.get_mut(&rejection.order_id) {
        live.out = true;
        live.peer = DocPeer::new();
    }

    docs::mark_rejected(
        conn,
        &rejection.order_id,
        &rejection.code,
        &rejection.message,
    )?;
    run.report.rejected.push(rejection);
    Ok(())
}

/// Applies one server message and stores the new changes; false if it was not applied.
fn receive(
    conn: &Connection,
    run: &mut Run,
    message: &DocMessage,
    limits: &MessageLimits,
) -> Result<bool, ClientError> {
    let order_id = message.order_id.as_str();
    let Some(live) = run.docs.get_mut(order_id).filter(|live| !live.out) else {
        tracing::warn!(order_id, "server message for a document not taking part");
        return Ok(false);
    };

    let heads = live.doc.automerge().get_heads();
    if let Err(e) = live
        .peer
        .receive(live.doc.automerge(), &message.message, limits)
    {
        tracing::warn!(order_id, code = e.code(), "server message refused");
        live.out = true;
        let failure = SyncFailure {
            order_id: Some(order_id.to_owned()),
            hash: None,
            code: e.code().to_owned(),
            message: e.to_string(),
        };
        run.report.failures.push(failure);
        return Ok(false);
    }

    let changes = live.doc.automerge().save_after(&heads);
    docs::append(conn, order_id, &changes)?;
    docs::save_peer(conn, order_id, &live.peer)?;
    Ok(true)
}

fn check_offset(offset: u64, size: u64) -> Result<(), ClientError> {
    if offset <= size {
        return Ok(());
    }
    let message = format!("server holds {offset} bytes of a {size}-byte upload");
    Err(TransportError::BadResponse(message).into())
}

fn check_progress(status: &flexwork_sync::MediaStatus, offset: u64) -> Result<(), ClientError> {
    if status.state == MediaState::Complete || status.received > offset {
        return Ok(());
    }
    let message = format!("server did not take the chunk at offset {offset}");
    Err(TransportError::BadResponse(message).into())
}

fn transport_failure(error: &TransportError) -> ItemFailure {
    match error {
        TransportError::Server { code, message, .. } => failure_of(code, message),
        other => failure_of(other.code(), &other.to_string()),
    }
}

fn failure_of(code: &str, message: &str) -> ItemFailure {
    ItemFailure {
        code: code.to_owned(),
        message: message.to_owned(),
    }
}

fn media_failure(media: &PendingMedia, failure: ItemFailure) -> SyncFailure {
    SyncFailure {
        order_id: Some(media.order_id.clone()),
        hash: Some(media.hash),
        code: failure.code,
        message: failure.message,
    }
}
