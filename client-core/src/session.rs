//! The stored login session. The token never appears in `Debug` output or logs.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::ClientError;

/// Who this device is logged in as, and where. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    pub server_url: String,
    pub account_id: String,
    pub role: String,
}

/// A session with its bearer token.
#[derive(Clone)]
pub(crate) struct Session {
    pub info: SessionInfo,
    pub token: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("info", &self.info)
            .field("token", &"<redacted>")
            .finish()
    }
}

pub(crate) fn save(conn: &Connection, session: &Session, now_ms: i64) -> Result<(), ClientError> {
    conn.execute(
        "INSERT INTO session (singleton, server_url, token, account_id, role, created_at_ms)
         VALUES (1, ?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (singleton) DO UPDATE SET server_url = ?1, token = ?2, account_id = ?3,
             role = ?4, created_at_ms = ?5",
        params![
            session.info.server_url,
            session.token,
            session.info.account_id,
            session.info.role,
            now_ms,
        ],
    )?;
    Ok(())
}

pub(crate) fn load(conn: &Connection) -> Result<Option<Session>, ClientError> {
    let sql = "SELECT server_url, token, account_id, role FROM session WHERE singleton = 1";
    let session = conn
        .query_row(sql, [], |row| {
            Ok(Session {
                info: SessionInfo {
                    server_url: row.get(0)?,
                    account_id: row.get(2)?,
                    role: row.get(3)?,
                },
                token: row.get(1)?,
            })
        })
        .optional()?;
    Ok(session)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_redacted_in_debug() {
        let session = Session {
            info: SessionInfo {
                server_url: "http://127.0.0.1:8080".into(),
                account_id: "a1".into(),
                role: "worker".into(),
            },
            token: "bearer-secret".into(),
        };

        assert!(!format!("{session:?}").contains("bearer-secret"));
    }
}
