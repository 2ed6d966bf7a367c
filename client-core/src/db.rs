//! Opening `device.sqlite` and migrating its schema with `PRAGMA user_version`.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use crate::ClientError;

/// Schema steps; step `i` moves the store from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[SCHEMA_V1, SCHEMA_V2, SCHEMA_V3];

const SCHEMA_V1: &str = "
CREATE TABLE device (
    singleton     INTEGER PRIMARY KEY CHECK (singleton = 1),
    device_id     TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE TABLE session (
    singleton     INTEGER PRIMARY KEY CHECK (singleton = 1),
    server_url    TEXT NOT NULL,
    token         TEXT NOT NULL,
    account_id    TEXT NOT NULL,
    role          TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE TABLE orders (
    order_id      TEXT PRIMARY KEY,
    summary       TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
CREATE TABLE documents (
    order_id         TEXT PRIMARY KEY,
    snapshot         BLOB NOT NULL,
    revision         INTEGER NOT NULL DEFAULT 0,
    dirty            INTEGER NOT NULL DEFAULT 0,
    rejected_code    TEXT,
    rejected_message TEXT
);
CREATE TABLE document_chunks (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id TEXT NOT NULL REFERENCES documents (order_id),
    bytes    BLOB NOT NULL
);
CREATE INDEX document_chunks_by_order ON document_chunks (order_id, seq);
CREATE TABLE peers (
    order_id TEXT PRIMARY KEY REFERENCES documents (order_id),
    state    BLOB NOT NULL
);
CREATE TABLE items (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    order_id       TEXT NOT NULL,
    kind           TEXT NOT NULL
                   CHECK (kind IN ('photo', 'track', 'signature', 'note', 'submission')),
    hash           TEXT,
    size           INTEGER,
    media_type     TEXT,
    points         INTEGER,
    state          TEXT NOT NULL CHECK (state IN ('queued', 'uploading', 'synced', 'failed')),
    error_code     TEXT,
    error_message  TEXT,
    uploaded_bytes INTEGER NOT NULL DEFAULT 0,
    recorded_at_ms INTEGER NOT NULL
);
CREATE INDEX items_by_order ON items (order_id, seq);
CREATE INDEX items_by_hash ON items (hash);
";

/// The device key replaces the bearer token: the sign-in keeps the server's device id and
/// the private key (until the apps keep it in the OS keystore), and a token stored by an
/// older version is dropped, since the server no longer takes it for sync.
const SCHEMA_V2: &str = "
CREATE TABLE credential (
    singleton     INTEGER PRIMARY KEY CHECK (singleton = 1),
    server_url    TEXT NOT NULL,
    account_id    TEXT NOT NULL,
    role          TEXT NOT NULL,
    device_id     TEXT NOT NULL,
    private_key   BLOB NOT NULL,
    created_at_ms INTEGER NOT NULL
);
DROP TABLE session;
";

/// Worker applications signed on the device (see `onboarding.rs`). `request` holds the whole
/// application as it will be sent — the applicant's name, ID number, bank card, phone, password,
/// signature and face image — only while it waits to be sent; it is erased (overwritten, with
/// `secure_delete`) once the server took or refused it. What stays is what the app shows:
/// the login, the masked name, what was signed and when, and the server's answer.
const SCHEMA_V3: &str = "
CREATE TABLE onboarding_terms (
    server_url         TEXT PRIMARY KEY,
    declaration_text   TEXT NOT NULL,
    declaration_sha256 TEXT NOT NULL,
    notice_version     TEXT NOT NULL,
    notice_text        TEXT NOT NULL,
    fetched_at_ms      INTEGER NOT NULL
);
CREATE TABLE applications (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    id                 TEXT NOT NULL UNIQUE,
    server_url         TEXT NOT NULL,
    state              TEXT NOT NULL CHECK (state IN ('queued', 'submitted', 'refused')),
    request            TEXT,
    login              TEXT NOT NULL,
    masked_name        TEXT NOT NULL,
    signed_text_sha256 TEXT NOT NULL,
    signed_at_ms       INTEGER NOT NULL,
    notice_version     TEXT NOT NULL,
    has_face           INTEGER NOT NULL,
    server_id          TEXT,
    review_deadline    TEXT,
    face_check         TEXT,
    warnings           TEXT,
    error_code         TEXT,
    error_message      TEXT,
    attempts           INTEGER NOT NULL DEFAULT 0,
    created_at_ms      INTEGER NOT NULL,
    updated_at_ms      INTEGER NOT NULL
);
";

/// Opens (creating if needed) the store database and brings its schema up to date.
pub(crate) fn open(path: &Path) -> Result<Connection, ClientError> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(ClientError::Corrupt(format!(
            "journal mode stays {mode}, not wal"
        )));
    }

    conn.pragma_update(None, "synchronous", "FULL")?;
    // Deleted and overwritten content is zeroed, not left in free pages: the store holds a
    // worker's application (ID number, bank card, face) only until the server took it.
    conn.query_row("PRAGMA secure_delete = ON", [], |_| Ok(()))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrate(&mut conn)?;

    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), ClientError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let version = usize::try_from(version).unwrap_or(usize::MAX);
    if version > MIGRATIONS.len() {
        let message = format!("schema version {version} is newer than this app");
        return Err(ClientError::Corrupt(message));
    }

    for (step, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", step as i64 + 1)?;
        tracing::info!(version = step + 1, "device store migrated");
    }
    tx.commit()?;

    Ok(())
}

/// Milliseconds since the Unix epoch by the device clock (for bookkeeping, never evidence).
pub(crate) fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopening_keeps_the_schema_version_and_a_newer_store_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.sqlite");

        drop(open(&path).unwrap());
        let conn = open(&path).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);

        assert_eq!(version, MIGRATIONS.len() as i64);
        assert_eq!(open(&path).unwrap_err().code(), "store_corrupt");
    }
}
