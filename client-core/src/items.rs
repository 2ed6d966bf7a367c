//! Evidence items: one row per recorded thing, with its upload state.

use std::fmt;
use std::str::FromStr;

use flexwork_sync::ContentHash;
use rusqlite::{Connection, Row, params};
use serde::Serialize;

use crate::ClientError;

/// What kind of evidence an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Photo,
    Track,
    Signature,
    Note,
    Submission,
}

/// Where an item stands on its way to the server.
///
/// Document items (track, signature, note, submission) are `synced` once the server holds
/// the document change; a photo is `synced` once the server also holds all its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    Queued,
    Uploading,
    Synced,
    /// The server refused it for good; see [`EvidenceItem::failure`].
    Failed,
}

/// Why an item failed or was held back: the server's code and message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemFailure {
    pub code: String,
    pub message: String,
}

/// One recorded piece of evidence as the device tracks it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvidenceItem {
    /// The id in the evidence document (photo, signature, note); local for track and
    /// submission items. Findings name items by this id.
    pub id: String,
    pub order_id: String,
    pub kind: ItemKind,
    /// Content hash of a photo's bytes.
    pub hash: Option<ContentHash>,
    /// Size of a photo in bytes.
    pub size: Option<u64>,
    pub media_type: Option<String>,
    /// Number of points of a track item.
    pub points: Option<u64>,
    pub state: ItemState,
    /// The last reason the server gave for failing or holding back the item.
    pub failure: Option<ItemFailure>,
    /// Bytes of a photo the server acknowledged so far.
    pub uploaded_bytes: u64,
    /// When the device stored the item (device clock).
    pub recorded_at_ms: i64,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Photo => "photo",
            Self::Track => "track",
            Self::Signature => "signature",
            Self::Note => "note",
            Self::Submission => "submission",
        }
    }
}

impl FromStr for ItemKind {
    type Err = ClientError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "photo" => Ok(Self::Photo),
            "track" => Ok(Self::Track),
            "signature" => Ok(Self::Signature),
            "note" => Ok(Self::Note),
            "submission" => Ok(Self::Submission),
            other => Err(ClientError::Corrupt(format!("unknown item kind {other}"))),
        }
    }
}

impl fmt::Display for ItemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ItemState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Uploading => "uploading",
            Self::Synced => "synced",
            Self::Failed => "failed",
        }
    }
}

impl FromStr for ItemState {
    type Err = ClientError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "queued" => Ok(Self::Queued),
            "uploading" => Ok(Self::Uploading),
            "synced" => Ok(Self::Synced),
            "failed" => Ok(Self::Failed),
            other => Err(ClientError::Corrupt(format!("unknown item state {other}"))),
        }
    }
}

impl fmt::Display for ItemState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A new item, as recording writes it.
#[derive(Debug)]
pub(crate) struct NewItem<'a> {
    pub id: &'a str,
    pub order_id: &'a str,
    pub kind: ItemKind,
    pub hash: Option<ContentHash>,
    pub size: Option<u64>,
    pub media_type: Option<&'a str>,
    pub points: Option<u64>,
    pub recorded_at_ms: i64,
}

impl<'a> NewItem<'a> {
    pub(crate) fn new(id: &'a str, order_id: &'a str, kind: ItemKind, at_ms: i64) -> Self {
        Self {
            id,
            order_id,
            kind,
            hash: None,
            size: None,
            media_type: None,
            points: None,
            recorded_at_ms: at_ms,
        }
    }
}

pub(crate) fn insert(conn: &Connection, item: &NewItem<'_>) -> Result<(), ClientError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO items (id, order_id, kind, hash, size, media_type, points, state,
                            recorded_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'queued', ?8)",
    )?;
    stmt.execute(params![
        item.id,
        item.order_id,
        item.kind.as_str(),
        item.hash.map(|h| h.to_hex()),
        item.size.map(to_sql),
        item.media_type,
        item.points.map(to_sql),
        item.recorded_at_ms,
    ])?;
    Ok(())
}

/// Items of one order, in recording order.
pub(crate) fn list(conn: &Connection, order_id: &str) -> Result<Vec<EvidenceItem>, ClientError> {
    let mut stmt = conn.prepare(
        "SELECT id, order_id, kind, hash, size, media_type, points, state, error_code,
                error_message, uploaded_bytes, recorded_at_ms
         FROM items WHERE order_id = ?1 ORDER BY seq",
    )?;
    let rows = stmt.query_map([order_id], read_row)?;

    let mut items = Vec::new();
    for row in rows {
        items.push(row??);
    }
    Ok(items)
}

/// The highest item sequence number of an order (0 if none).
pub(crate) fn last_seq(conn: &Connection, order_id: &str) -> Result<i64, ClientError> {
    let sql = "SELECT COALESCE(MAX(seq), 0) FROM items WHERE order_id = ?1";
    Ok(conn.query_row(sql, [order_id], |row| row.get(0))?)
}

/// Marks the document items recorded up to `seq` as synced: the server holds them.
pub(crate) fn mark_document_items_synced(
    conn: &Connection,
    order_id: &str,
    seq: i64,
) -> Result<usize, ClientError> {
    let changed = conn.execute(
        "UPDATE items SET state = 'synced', error_code = NULL, error_message = NULL
         WHERE order_id = ?1 AND seq <= ?2 AND kind != 'photo' AND state != 'synced'",
        params![order_id, seq],
    )?;
    Ok(changed)
}

/// Sets the state of every photo item holding `hash` that has not failed for good; `uploaded`
/// `None` keeps the progress recorded so far.
pub(crate) fn set_media_state(
    conn: &Connection,
    hash: &ContentHash,
    state: ItemState,
    uploaded: Option<u64>,
    failure: Option<&ItemFailure>,
) -> Result<(), ClientError> {
    conn.execute(
        "UPDATE items SET state = ?2, uploaded_bytes = COALESCE(?3, uploaded_bytes),
             error_code = ?4, error_message = ?5
         WHERE hash = ?1 AND kind = 'photo' AND state != 'failed'",
        params![
            hash.to_hex(),
            state.as_str(),
            uploaded.map(to_sql),
            failure.map(|f| &f.code),
            failure.map(|f| &f.message),
        ],
    )?;
    Ok(())
}

/// A photo that may need uploading.
#[derive(Debug, Clone)]
pub(crate) struct PendingMedia {
    /// The first photo item holding these bytes.
    pub item_id: String,
    pub order_id: String,
    pub hash: ContentHash,
    pub size: u64,
    pub media_type: String,
    pub state: ItemState,
}

/// Photo items that are not failed, oldest first.
pub(crate) fn media(conn: &Connection) -> Result<Vec<PendingMedia>, ClientError> {
    let mut stmt = conn.prepare(
        "SELECT order_id, hash, size, media_type, state, id FROM items
         WHERE kind = 'photo' AND state != 'failed' ORDER BY seq",
    )?;
    let rows = stmt.query_map([], |row| {
        let hash: String = row.get(1)?;
        let state: String = row.get(4)?;
        let size: i64 = row.get(2)?;
        let ids: (String, String) = (row.get(5)?, row.get(0)?);
        Ok((ids, hash, from_sql(size), row.get(3)?, state))
    })?;

    let mut out = Vec::new();
    for row in rows {
        let ((item_id, order_id), hash, size, media_type, state) = row?;
        out.push(PendingMedia {
            item_id,
            order_id,
            hash: parse_hash(&hash)?,
            size,
            media_type,
            state: state.parse()?,
        });
    }
    Ok(out)
}

fn read_row(row: &Row<'_>) -> rusqlite::Result<Result<EvidenceItem, ClientError>> {
    let kind: String = row.get(2)?;
    let hash: Option<String> = row.get(3)?;
    let state: String = row.get(7)?;
    let code: Option<String> = row.get(8)?;
    let message: Option<String> = row.get(9)?;
    let failure = code.map(|code| ItemFailure {
        code,
        message: message.unwrap_or_default(),
    });
    let size: Option<i64> = row.get(4)?;
    let points: Option<i64> = row.get(6)?;
    let partial = (
        row.get(0)?,
        row.get(1)?,
        size.map(from_sql),
        row.get(5)?,
        points.map(from_sql),
    );
    let uploaded_bytes = from_sql(row.get(10)?);
    let recorded_at_ms = row.get(11)?;

    Ok(build(partial, &kind, hash, &state).map(|mut item| {
        item.failure = failure;
        item.uploaded_bytes = uploaded_bytes;
        item.recorded_at_ms = recorded_at_ms;
        item
    }))
}

type Columns = (String, String, Option<u64>, Option<String>, Option<u64>);

fn build(
    (id, order_id, size, media_type, points): Columns,
    kind: &str,
    hash: Option<String>,
    state: &str,
) -> Result<EvidenceItem, ClientError> {
    Ok(EvidenceItem {
        id,
        order_id,
        kind: kind.parse()?,
        hash: hash.as_deref().map(parse_hash).transpose()?,
        size,
        media_type,
        points,
        state: state.parse()?,
        failure: None,
        uploaded_bytes: 0,
        recorded_at_ms: 0,
    })
}

fn parse_hash(hex: &str) -> Result<ContentHash, ClientError> {
    hex.parse()
        .map_err(|e| ClientError::Corrupt(format!("item hash: {e}")))
}

/// SQLite integers are signed; sizes and counts never come near the limit.
fn to_sql(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn from_sql(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}
