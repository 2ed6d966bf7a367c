//! Recording evidence, offline. Each call is one immediate transaction: take the order's
//! document from the cache (or load it), append the change, store the change chunk and the
//! item row, commit, and only then put the document back into the cache.

use std::io::Read;

use flexwork_sync::{
    EvidenceDoc, EvidenceError, Fix, NoteRecord, PhotoRecord, SignatureRecord, StrokePoint,
    Submission, TrackPoint,
};
use rusqlite::TransactionBehavior;
use uuid::Uuid;

use crate::db::now_ms;
use crate::items::{self, ItemKind, NewItem};
use crate::validate;
use crate::{ClientError, Device, docs, orders};

/// Longest note, in characters.
const MAX_NOTE_CHARS: usize = 10_000;

/// The result of importing a GPX file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TrackImport {
    /// The track item created.
    pub item_id: String,
    /// Points appended to the document.
    pub points: usize,
    /// Points that carried a time.
    pub timed_points: usize,
}

impl Device {
    /// Records a photo: bytes into `blobs/`, a [`PhotoRecord`] naming them into the document.
    pub fn record_photo(
        &mut self,
        order_id: &str,
        bytes: &[u8],
        media_type: &str,
        fix: Option<Fix>,
        captured_at_ms: i64,
    ) -> Result<PhotoRecord, ClientError> {
        validate::media(bytes, media_type)?;
        if let Some(fix) = &fix {
            validate::fix(fix)?;
        }
        orders::ensure(&self.conn, order_id)?;
        let hash = self.blobs.put(bytes)?;

        let photo = PhotoRecord {
            id: Uuid::new_v4().to_string(),
            hash,
            size: bytes.len() as u64,
            media_type: media_type.to_owned(),
            captured_at_ms,
            fix,
            device_id: self.device_id.clone(),
        };
        let mut item = NewItem::new(&photo.id, order_id, ItemKind::Photo, now_ms());
        item.hash = Some(hash);
        item.size = Some(photo.size);
        item.media_type = Some(media_type);

        self.record(&item, |doc, now| doc.add_photo(&photo, now))?;
        tracing::info!(order_id, item_id = %photo.id, size = photo.size, "photo recorded");
        Ok(photo)
    }

    /// Appends trajectory points as one change; returns the track item's id.
    pub fn append_track_points(
        &mut self,
        order_id: &str,
        points: &[TrackPoint],
    ) -> Result<String, ClientError> {
        validate::track(points)?;
        let id = Uuid::new_v4().to_string();
        let mut item = NewItem::new(&id, order_id, ItemKind::Track, now_ms());
        item.points = Some(points.len() as u64);

        self.record(&item, |doc, now| doc.append_track(points, now))?;
        tracing::info!(order_id, item_id = %id, points = points.len(), "track recorded");
        Ok(id)
    }

    /// Imports every point of every track and segment of a GPX file.
    pub fn import_gpx<R: Read>(
        &mut self,
        order_id: &str,
        reader: R,
    ) -> Result<TrackImport, ClientError> {
        orders::ensure(&self.conn, order_id)?;
        let points = crate::track::read_gpx(reader)?;
        let timed_points = points.iter().filter(|p| p.at_ms.is_some()).count();

        let item_id = self.append_track_points(order_id, &points)?;
        Ok(TrackImport {
            item_id,
            points: points.len(),
            timed_points,
        })
    }

    /// Records a handwritten signature as strokes.
    pub fn add_signature(
        &mut self,
        order_id: &str,
        strokes: Vec<Vec<StrokePoint>>,
        signed_at_ms: i64,
    ) -> Result<SignatureRecord, ClientError> {
        validate::strokes(&strokes)?;
        let signature = SignatureRecord {
            id: Uuid::new_v4().to_string(),
            strokes,
            signed_at_ms,
            device_id: self.device_id.clone(),
        };
        let item = NewItem::new(&signature.id, order_id, ItemKind::Signature, now_ms());

        self.record(&item, |doc, now| doc.add_signature(&signature, now))?;
        tracing::info!(order_id, item_id = %signature.id, "signature recorded");
        Ok(signature)
    }

    /// Records a free-text note.
    pub fn add_note(
        &mut self,
        order_id: &str,
        text: &str,
        at_ms: i64,
    ) -> Result<NoteRecord, ClientError> {
        let text = text.trim();
        if text.is_empty() || text.chars().count() > MAX_NOTE_CHARS {
            let message = format!("a note has 1 to {MAX_NOTE_CHARS} characters");
            return Err(ClientError::invalid(message));
        }
        let note = NoteRecord {
            id: Uuid::new_v4().to_string(),
            text: text.to_owned(),
            at_ms,
        };
        let item = NewItem::new(&note.id, order_id, ItemKind::Note, now_ms());

        self.record(&item, |doc, now| doc.add_note(&note, now))?;
        tracing::info!(order_id, item_id = %note.id, "note recorded");
        Ok(note)
    }

    /// Declares the order done from this device; returns the submission item's id.
    pub fn submit(&mut self, order_id: &str, at_ms: i64) -> Result<String, ClientError> {
        let submission = Submission {
            at_ms,
            device_id: self.device_id.clone(),
        };
        let id = Uuid::new_v4().to_string();
        let item = NewItem::new(&id, order_id, ItemKind::Submission, now_ms());

        self.record(&item, |doc, now| doc.submit(&submission, now))?;
        tracing::info!(order_id, item_id = %id, "order submitted");
        Ok(id)
    }

    /// One recording transaction: the change goes into the order's cached document (loaded
    /// from the store on a miss), then into the store as an appended chunk, and the item
    /// into `items`, both or neither. The document goes back into the cache only once the
    /// transaction committed; on any error it is dropped, so memory never runs ahead of the
    /// store and the next call reloads it.
    fn record<F>(&mut self, item: &NewItem<'_>, change: F) -> Result<(), ClientError>
    where
        F: FnOnce(&mut EvidenceDoc, i64) -> Result<(), EvidenceError>,
    {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        orders::ensure(&tx, item.order_id)?;
        self.docs.check(&tx)?;
        let mut entry = self.docs.take_or_load(&tx, item.order_id, &self.actor)?;

        let heads = entry.doc.automerge().get_heads();
        change(&mut entry.doc, item.recorded_at_ms)?;
        let changes = entry.doc.automerge().save_after(&heads);
        docs::append_local(&tx, item.order_id, &changes, &mut entry)?;
        items::insert(&tx, item)?;
        tx.commit()?;

        self.docs.put(item.order_id, entry);
        Ok(())
    }
}
