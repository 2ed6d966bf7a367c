//! Loaded evidence documents kept between calls, so recording one item applies one change to
//! a document in memory instead of loading the whole document from SQLite every time.
//!
//! The cache holds at most [`DEFAULT_DOC_CACHE_DOCS`] documents (or what
//! [`crate::Device::set_doc_cache_capacity`] set); the least recently used one is dropped first.
//!
//! Invariant: a cached document holds exactly the changes stored for its order (snapshot plus
//! chunks). Users keep it by *taking* an entry out, changing it, and putting it back only
//! after their transaction committed; any error drops the entry, so the next call reloads it
//! from SQLite.
//!
//! Writers other than this `Device`: the store has one writer, the `Device` that opened it.
//! Should another connection write to the same file anyway (a second `Device` on the folder,
//! a tool), `PRAGMA data_version` changes for this connection; [`DocCache::check`] reads it
//! inside each write transaction and empties the cache when it moved.

use automerge::ActorId;
use flexwork_sync::EvidenceDoc;
use rusqlite::Connection;

use crate::{ClientError, docs};

/// Documents kept in memory by default. A worker has a handful of open orders at a time; a
/// document of a few hundred items takes well under a megabyte in memory.
pub const DEFAULT_DOC_CACHE_DOCS: usize = 16;

/// One loaded document and what the store holds of it.
#[derive(Debug)]
pub(crate) struct CachedDoc {
    pub doc: EvidenceDoc,
    /// Change chunks stored beside the snapshot.
    pub chunks: i64,
}

/// Least-recently-used documents by order id, most recent last.
#[derive(Debug)]
pub(crate) struct DocCache {
    entries: Vec<(String, CachedDoc)>,
    capacity: usize,
    /// `PRAGMA data_version` when the entries were last known to match the store.
    data_version: Option<i64>,
}

impl DocCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: Vec::new(),
            capacity,
            data_version: None,
        }
    }

    /// Sets the capacity (0 turns caching off), dropping the oldest entries beyond it.
    pub(crate) fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        self.trim();
    }

    /// Empties the cache if another connection wrote to the store since the last check.
    /// Call inside the transaction that will use the entries.
    pub(crate) fn check(&mut self, conn: &Connection) -> Result<(), ClientError> {
        let version = data_version(conn)?;
        if self.data_version.is_some_and(|known| known != version) {
            tracing::debug!(dropped = self.entries.len(), "store changed elsewhere");
            self.clear();
        }
        self.data_version = Some(version);
        Ok(())
    }

    /// The cached document of an order for reading, unless another connection wrote to the
    /// store since the last check. Call inside the transaction that reads.
    pub(crate) fn peek(
        &self,
        conn: &Connection,
        order_id: &str,
    ) -> Result<Option<&EvidenceDoc>, ClientError> {
        let Some((_, entry)) = self.entries.iter().find(|(id, _)| id == order_id) else {
            return Ok(None);
        };
        let version = data_version(conn)?;
        Ok(Some(&entry.doc).filter(|_| self.data_version == Some(version)))
    }

    /// Removes and returns the entry of an order, if cached.
    pub(crate) fn take(&mut self, order_id: &str) -> Option<CachedDoc> {
        let at = self.entries.iter().position(|(id, _)| id == order_id)?;
        Some(self.entries.remove(at).1)
    }

    /// The cached entry of an order, or the document loaded (or created) from the store.
    pub(crate) fn take_or_load(
        &mut self,
        conn: &Connection,
        order_id: &str,
        actor: &ActorId,
    ) -> Result<CachedDoc, ClientError> {
        match self.take(order_id) {
            Some(entry) => Ok(entry),
            None => docs::load_for_cache(conn, order_id, actor),
        }
    }

    /// Stores an entry as the most recently used, evicting the least recently used beyond
    /// the capacity. Only for documents that match what is committed.
    pub(crate) fn put(&mut self, order_id: &str, entry: CachedDoc) {
        if let Some(at) = self.entries.iter().position(|(id, _)| id == order_id) {
            self.entries.remove(at);
        }
        self.entries.push((order_id.to_owned(), entry));
        self.trim();
    }

    /// Order ids in the cache, least recently used first.
    pub(crate) fn order_ids(&self) -> Vec<String> {
        self.entries.iter().map(|(id, _)| id.clone()).collect()
    }

    /// Forgets every entry.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    fn trim(&mut self) {
        let excess = self.entries.len().saturating_sub(self.capacity);
        self.entries.drain(..excess);
    }

    #[cfg(test)]
    pub(crate) fn get_mut(&mut self, order_id: &str) -> Option<&mut CachedDoc> {
        let entry = self.entries.iter_mut().find(|(id, _)| id == order_id)?;
        Some(&mut entry.1)
    }
}

/// Changes whenever another connection commits to the store; never for this one's commits.
fn data_version(conn: &Connection) -> Result<i64, ClientError> {
    let mut stmt = conn.prepare_cached("PRAGMA data_version")?;
    Ok(stmt.query_row([], |row| row.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(order_id: &str) -> CachedDoc {
        let actor = ActorId::from(vec![1; 16]);
        CachedDoc {
            doc: EvidenceDoc::new(order_id, actor).unwrap(),
            chunks: 0,
        }
    }

    #[test]
    fn the_least_recently_used_document_goes_first() {
        let mut cache = DocCache::new(2);
        cache.put("a", entry("a"));
        cache.put("b", entry("b"));
        let a = cache.take("a").unwrap();
        cache.put("a", a);
        cache.put("c", entry("c"));

        assert_eq!(cache.order_ids(), ["a", "c"]);
        cache.set_capacity(1);
        assert_eq!(cache.order_ids(), ["c"]);
        cache.set_capacity(0);
        cache.put("d", entry("d"));
        assert!(cache.order_ids().is_empty());
    }
}
