//! The stored sign-in: the server, the account and this phone's registered device key. The
//! private key never appears in `Debug` output or logs.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::ClientError;
use crate::signing::DeviceKey;

/// Who this device is signed in as, where, and under which device id. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    pub server_url: String,
    pub account_id: String,
    pub role: String,
    /// The id the server gave this phone's key at registration (not the installation id
    /// of [`crate::Device::device_id`], which names the phone's evidence edits).
    pub registered_device_id: String,
}

/// A sign-in with its device key.
#[derive(Clone)]
pub(crate) struct Session {
    pub info: SessionInfo,
    pub key: DeviceKey,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("info", &self.info)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Stores `session`, replacing any earlier one.
pub(crate) fn save(conn: &Connection, session: &Session, now_ms: i64) -> Result<(), ClientError> {
    conn.execute(
        "INSERT INTO credential (singleton, server_url, account_id, role, device_id,
             private_key, created_at_ms)
         VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (singleton) DO UPDATE SET server_url = ?1, account_id = ?2, role = ?3,
             device_id = ?4, private_key = ?5, created_at_ms = ?6",
        params![
            session.info.server_url,
            session.info.account_id,
            session.info.role,
            session.info.registered_device_id,
            session.key.secret(),
            now_ms,
        ],
    )?;
    Ok(())
}

pub(crate) fn load(conn: &Connection) -> Result<Option<Session>, ClientError> {
    let sql = "SELECT server_url, account_id, role, device_id, private_key FROM credential
               WHERE singleton = 1";
    let row = conn
        .query_row(sql, [], |row| {
            let info = SessionInfo {
                server_url: row.get(0)?,
                account_id: row.get(1)?,
                role: row.get(2)?,
                registered_device_id: row.get(3)?,
            };
            Ok((info, row.get::<_, Vec<u8>>(4)?))
        })
        .optional()?;
    let Some((info, secret)) = row else {
        return Ok(None);
    };
    let key = DeviceKey::from_secret(&secret)?;
    Ok(Some(Session { info, key }))
}

/// Forgets the sign-in and its key.
pub(crate) fn clear(conn: &Connection) -> Result<(), ClientError> {
    conn.execute("DELETE FROM credential", [])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_redacted_in_debug_and_survives_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::db::open(&dir.path().join("device.sqlite")).unwrap();
        let key = DeviceKey::generate();
        let session = Session {
            info: SessionInfo {
                server_url: "http://127.0.0.1:8080".into(),
                account_id: "a1".into(),
                role: "worker".into(),
                registered_device_id: "d1".into(),
            },
            key: key.clone(),
        };

        save(&conn, &session, 1).unwrap();
        let loaded = load(&conn).unwrap().unwrap();

        let secret: String = key.secret().iter().map(|b| format!("{b:02x}")).collect();
        assert!(!format!("{session:?}").contains(&secret));
        assert_eq!(loaded.info, session.info);
        assert_eq!(loaded.key.public_key(), key.public_key());
        clear(&conn).unwrap();
        assert!(load(&conn).unwrap().is_none());
    }
}
