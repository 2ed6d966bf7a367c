//! Evidence documents in SQLite: a compact snapshot per order plus the incremental change
//! chunks appended since, so recording one item never rewrites the whole document.

use automerge::ActorId;
use flexwork_sync::{DocPeer, EvidenceDoc, EvidenceError};
use rusqlite::{Connection, OptionalExtension, params};

use crate::ClientError;
use crate::cache::CachedDoc;

/// Chunks after which recording folds a document back into one snapshot (sync folds every
/// document). Recording appends to a cached document, so chunks only cost when a document is
/// loaded cold (about 12 µs each); folding re-encodes the whole document (about 1.5 ms at
/// 500 items), a cost paid by one recording in this many.
pub(crate) const COMPACT_AFTER_CHUNKS: i64 = 256;

/// Loads the stored document of an order, snapshot and chunks, if it has one.
pub(crate) fn load(
    conn: &Connection,
    order_id: &str,
    actor: &ActorId,
) -> Result<Option<EvidenceDoc>, ClientError> {
    Ok(load_counted(conn, order_id, actor)?.map(|entry| entry.doc))
}

/// Like [`load`], also counting the chunks stored beside the snapshot.
fn load_counted(
    conn: &Connection,
    order_id: &str,
    actor: &ActorId,
) -> Result<Option<CachedDoc>, ClientError> {
    let sql = "SELECT snapshot FROM documents WHERE order_id = ?1";
    let snapshot: Option<Vec<u8>> = conn.query_row(sql, [order_id], |r| r.get(0)).optional()?;
    let Some(snapshot) = snapshot else {
        return Ok(None);
    };

    let mut doc = EvidenceDoc::load(&snapshot, actor.clone())?;
    let mut stmt =
        conn.prepare("SELECT bytes FROM document_chunks WHERE order_id = ?1 ORDER BY seq")?;
    let (mut changes, mut chunks) = (Vec::new(), 0);
    for chunk in stmt.query_map([order_id], |row| row.get::<_, Vec<u8>>(0))? {
        changes.extend_from_slice(&chunk?);
        chunks += 1;
    }
    if !changes.is_empty() {
        doc.automerge()
            .load_incremental(&changes)
            .map_err(EvidenceError::from)?;
    }
    Ok(Some(CachedDoc { doc, chunks }))
}

/// The document of an order with its chunk count, creating and storing its skeleton if it
/// has none. Call inside a write transaction.
pub(crate) fn load_for_cache(
    conn: &Connection,
    order_id: &str,
    actor: &ActorId,
) -> Result<CachedDoc, ClientError> {
    if let Some(entry) = load_counted(conn, order_id, actor)? {
        return Ok(entry);
    }
    let doc = create(conn, order_id, actor)?;
    Ok(CachedDoc { doc, chunks: 0 })
}

/// Loads the document of an order, creating and storing its skeleton if it has none.
pub(crate) fn load_or_create(
    conn: &Connection,
    order_id: &str,
    actor: &ActorId,
) -> Result<EvidenceDoc, ClientError> {
    match load(conn, order_id, actor)? {
        Some(doc) => Ok(doc),
        None => create(conn, order_id, actor),
    }
}

/// Creates and stores the skeleton of an order's document.
fn create(conn: &Connection, order_id: &str, actor: &ActorId) -> Result<EvidenceDoc, ClientError> {
    let mut doc = EvidenceDoc::new(order_id, actor.clone())?;
    conn.execute(
        "INSERT INTO documents (order_id, snapshot) VALUES (?1, ?2)",
        params![order_id, doc.save()],
    )?;
    Ok(doc)
}

/// The document as stored, or the bare skeleton when nothing was stored yet.
pub(crate) fn read_only(
    conn: &Connection,
    order_id: &str,
    actor: &ActorId,
) -> Result<EvidenceDoc, ClientError> {
    match load(conn, order_id, actor)? {
        Some(doc) => Ok(doc),
        None => Ok(EvidenceDoc::new(order_id, actor.clone())?),
    }
}

/// Stores the changes just made on this device to `entry`, the order's document as stored
/// before them: appends a chunk, marks the document dirty (unsynced) and bumps its revision,
/// and folds it into a new snapshot, from memory, once it has too many chunks. Call inside a
/// write transaction; on error the transaction and `entry` must both be dropped.
pub(crate) fn append_local(
    conn: &Connection,
    order_id: &str,
    changes: &[u8],
    entry: &mut CachedDoc,
) -> Result<(), ClientError> {
    if !changes.is_empty() {
        conn.prepare_cached("INSERT INTO document_chunks (order_id, bytes) VALUES (?1, ?2)")?
            .execute(params![order_id, changes])?;
        entry.chunks += 1;
    }
    conn.prepare_cached(
        "UPDATE documents SET dirty = 1, revision = revision + 1 WHERE order_id = ?1",
    )?
    .execute([order_id])?;

    if entry.chunks > COMPACT_AFTER_CHUNKS {
        store_snapshot(conn, order_id, &entry.doc.save())?;
        entry.chunks = 0;
    }
    Ok(())
}

/// Appends changes that came from the server.
pub(crate) fn append(conn: &Connection, order_id: &str, changes: &[u8]) -> Result<(), ClientError> {
    if changes.is_empty() {
        return Ok(());
    }
    conn.execute(
        "INSERT INTO document_chunks (order_id, bytes) VALUES (?1, ?2)",
        params![order_id, changes],
    )?;
    Ok(())
}

/// Folds snapshot and chunks into one snapshot. Call inside a write transaction.
pub(crate) fn compact(
    conn: &Connection,
    order_id: &str,
    actor: &ActorId,
) -> Result<(), ClientError> {
    let Some(mut doc) = load(conn, order_id, actor)? else {
        return Ok(());
    };
    store_snapshot(conn, order_id, &doc.save())
}

/// Replaces the snapshot of a document by `snapshot`, which holds every stored change, and
/// deletes its chunks.
fn store_snapshot(conn: &Connection, order_id: &str, snapshot: &[u8]) -> Result<(), ClientError> {
    conn.execute(
        "UPDATE documents SET snapshot = ?2 WHERE order_id = ?1",
        params![order_id, snapshot],
    )?;
    conn.execute(
        "DELETE FROM document_chunks WHERE order_id = ?1",
        [order_id],
    )?;
    Ok(())
}

/// Orders that have a stored document.
pub(crate) fn order_ids(conn: &Connection) -> Result<Vec<String>, ClientError> {
    let mut stmt = conn.prepare("SELECT order_id FROM documents ORDER BY order_id")?;
    let ids = stmt.query_map([], |row| row.get(0))?;
    Ok(ids.collect::<Result<_, _>>()?)
}

/// Orders whose document has chunks waiting to be compacted.
pub(crate) fn with_chunks(conn: &Connection) -> Result<Vec<String>, ClientError> {
    let mut stmt = conn.prepare("SELECT DISTINCT order_id FROM document_chunks")?;
    let ids = stmt.query_map([], |row| row.get(0))?;
    Ok(ids.collect::<Result<_, _>>()?)
}

/// The local revision counter of a document (bumped by each recording).
pub(crate) fn revision(conn: &Connection, order_id: &str) -> Result<i64, ClientError> {
    let sql = "SELECT revision FROM documents WHERE order_id = ?1";
    let revision = conn
        .query_row(sql, [order_id], |row| row.get(0))
        .optional()?;
    Ok(revision.unwrap_or(0))
}

/// The server holds the document: clears its rejection, and its dirty flag unless it was
/// recorded into after `revision`.
pub(crate) fn mark_synced(
    conn: &Connection,
    order_id: &str,
    revision: i64,
) -> Result<(), ClientError> {
    conn.execute(
        "UPDATE documents SET rejected_code = NULL, rejected_message = NULL,
             dirty = CASE WHEN revision = ?2 THEN 0 ELSE dirty END
         WHERE order_id = ?1",
        params![order_id, revision],
    )?;
    Ok(())
}

/// Records the server's refusal and forgets the sync state, so the next sync starts over.
pub(crate) fn mark_rejected(
    conn: &Connection,
    order_id: &str,
    code: &str,
    message: &str,
) -> Result<(), ClientError> {
    conn.execute(
        "UPDATE documents SET rejected_code = ?2, rejected_message = ?3 WHERE order_id = ?1",
        params![order_id, code, message],
    )?;
    conn.execute("DELETE FROM peers WHERE order_id = ?1", [order_id])?;
    Ok(())
}

/// The sync state towards the server, or a fresh one.
pub(crate) fn load_peer(conn: &Connection, order_id: &str) -> Result<DocPeer, ClientError> {
    let sql = "SELECT state FROM peers WHERE order_id = ?1";
    let state: Option<Vec<u8>> = conn.query_row(sql, [order_id], |r| r.get(0)).optional()?;
    match state {
        Some(bytes) => Ok(DocPeer::from_state_bytes(&bytes).unwrap_or_else(|e| {
            tracing::warn!(order_id, err = %e, "sync state unreadable, starting over");
            DocPeer::new()
        })),
        None => Ok(DocPeer::new()),
    }
}

pub(crate) fn save_peer(
    conn: &Connection,
    order_id: &str,
    peer: &DocPeer,
) -> Result<(), ClientError> {
    conn.execute(
        "INSERT INTO peers (order_id, state) VALUES (?1, ?2)
         ON CONFLICT (order_id) DO UPDATE SET state = ?2",
        params![order_id, peer.state_bytes()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::Device;

    fn chunks(device: &Device) -> i64 {
        let sql = "SELECT COUNT(*) FROM document_chunks";
        device.conn.query_row(sql, [], |row| row.get(0)).unwrap()
    }

    #[test]
    fn many_recordings_fold_into_a_snapshot_and_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut device = Device::open(dir.path()).unwrap();
        let order: flexwork_sync::OrderSummary = serde_json::from_value(serde_json::json!({
            "order_id": "o1", "task_id": "t1", "title": "t", "description": "",
            "site": {"lat": 0.0, "lon": 0.0, "radius_m": 10.0},
            "window": {"from_ms": 0, "to_ms": 1},
            "fee_fen": 100, "requirements": {"min_photos": 0, "track": false, "signature": false},
            "status": "assigned", "verdict": null
        }))
        .unwrap();
        device.remember_orders(&[order]).unwrap();

        for i in 0..300 {
            device.add_note("o1", &format!("note {i}"), i).unwrap();
        }

        assert!(chunks(&device) <= super::COMPACT_AFTER_CHUNKS);
        let notes = device.evidence("o1").unwrap().notes;
        assert_eq!(notes.len(), 300);
        assert_eq!(notes[299].text, "note 299");
    }
}
