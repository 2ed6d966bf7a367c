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
        validate::time("captured_at_ms", captured_at_ms)?;
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
        validate::time("signed_at_ms", signed_at_ms)?;
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
        validate::time("at_ms", at_ms)?;
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
        validate::time("at_ms", at_ms)?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use crate::Device;

    fn device(dir: &std::path::Path) -> Device {
        let mut device = Device::open(dir).unwrap();
        let order: flexwork_sync::OrderSummary = serde_json::from_value(serde_json::json!({
            "order_id": "o1", "task_id": "t1", "title": "t", "description": "",
            "site": {"lat": 0.0, "lon": 0.0, "radius_m": 10.0},
            "window": {"from_ms": 0, "to_ms": 1},
            "fee_fen": 100, "requirements": {"min_photos": 0, "track": false, "signature": false},
            "status": "assigned", "verdict": null
        }))
        .unwrap();
        device.remember_orders(&[order]).unwrap();
        device
    }

    fn note_texts(device: &Device) -> Vec<String> {
        let notes = device.evidence("o1").unwrap().notes;
        notes.into_iter().map(|n| n.text).collect()
    }

    #[test]
    fn a_write_failing_after_the_cached_document_changed_drops_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut device = device(dir.path());
        device.add_note("o1", "first", 1).unwrap();
        assert_eq!(device.docs.order_ids(), ["o1"]);

        // A temporary trigger lives on this connection, so the cache stays trusted and the
        // failing call changes the cached document before SQLite refuses the item row.
        device
            .conn
            .execute_batch(
                "CREATE TEMP TRIGGER refuse BEFORE INSERT ON main.items
                 BEGIN SELECT RAISE(ABORT, 'forced failure'); END;",
            )
            .unwrap();
        let err = device.add_note("o1", "refused", 2).unwrap_err();
        assert_eq!(err.code(), "storage");
        assert!(device.docs.order_ids().is_empty());
        device
            .conn
            .execute_batch("DROP TRIGGER temp.refuse;")
            .unwrap();

        device.add_note("o1", "second", 3).unwrap();
        assert_eq!(note_texts(&device), ["first", "second"]);
        let from_cache = device.evidence("o1").unwrap();
        device.set_doc_cache_capacity(0);
        assert_eq!(device.evidence("o1").unwrap(), from_cache);
        drop(device);
        let device = Device::open(dir.path()).unwrap();
        assert_eq!(note_texts(&device), ["first", "second"]);
        assert_eq!(device.items("o1").unwrap().len(), 2);
    }

    #[test]
    fn the_cached_document_matches_the_store_through_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let mut device = device(dir.path());
        for i in 0..crate::docs::COMPACT_AFTER_CHUNKS + 3 {
            device.add_note("o1", &format!("note {i}"), i).unwrap();
        }

        let cached = device.docs.get_mut("o1").unwrap().doc.read().unwrap();
        let chunks = device.docs.get_mut("o1").unwrap().chunks;
        let stored = crate::docs::load(&device.conn, "o1", &device.actor).unwrap();
        assert_eq!(stored.unwrap().read().unwrap(), cached);
        let sql = "SELECT COUNT(*) FROM document_chunks";
        let in_store: i64 = device.conn.query_row(sql, [], |row| row.get(0)).unwrap();
        assert_eq!((chunks, in_store), (2, 2));
    }
}
