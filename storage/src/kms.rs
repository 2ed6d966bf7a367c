//! Master keys: the key-management trait and its embedded default, a local key file.
//!
//! Master keys never leave the key manager. They wrap and unwrap the per-object data keys
//! (envelope encryption), so only wrapped data keys are ever stored next to media. A cloud
//! KMS (Alibaba Cloud KMS, Tencent Cloud KMS, AWS KMS) offers the same three calls —
//! encrypt and decrypt a small secret under a named key with an encryption context, and
//! name the current key — and fits [`Kms`] without changes to the callers.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::crypto::Suite;

/// A data key wrapped under a master key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    /// The master key that wrapped it.
    pub master_key: String,
    /// The wrapped bytes (opaque to everyone but the key manager).
    #[serde(with = "b64")]
    pub wrapped: Vec<u8>,
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappedKey")
            .field("master_key", &self.master_key)
            .field("wrapped_len", &self.wrapped.len())
            .finish()
    }
}

/// Why the key manager refused.
#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    /// No master key with this id is known (it was retired, or the key file is another one).
    #[error("master key {0} is not in the key manager")]
    UnknownKey(String),
    /// The wrapped key does not open under its master key with this context.
    #[error("the wrapped data key does not open: {0}")]
    Unwrap(String),
    /// The key manager could not be reached or could not save its keys.
    #[error("the key manager failed: {0}")]
    Unavailable(String),
}

/// Holds master keys and wraps data keys under them.
#[async_trait]
pub trait Kms: Send + Sync + fmt::Debug {
    /// The id of the master key that new data keys are wrapped with.
    async fn current_key(&self) -> Result<String, KmsError>;

    /// Wraps `data_key` under the current master key, bound to `context`.
    async fn wrap(&self, data_key: &[u8], context: &[u8]) -> Result<WrappedKey, KmsError>;

    /// Unwraps a data key; fails unless `context` is the one it was wrapped with.
    async fn unwrap(
        &self,
        key: &WrappedKey,
        context: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KmsError>;
}

/// One master key in a key file.
#[derive(Clone, Serialize, Deserialize)]
struct MasterKey {
    id: String,
    algorithm: Suite,
    created_at: String,
    #[serde(with = "hex_secret")]
    secret: Zeroizing<Vec<u8>>,
}

/// The contents of a key file.
#[derive(Clone, Serialize, Deserialize)]
struct KeyFileContents {
    format: u32,
    /// The suite of the index key's HMAC, fixed for the life of the store.
    index_algorithm: Suite,
    #[serde(with = "hex_secret")]
    index_key: Zeroizing<Vec<u8>>,
    current: String,
    keys: Vec<MasterKey>,
}

/// The embedded key manager: master keys in a TOML file readable only by its owner.
///
/// The file also holds the index key that makes object names keyed hashes. Losing it makes
/// every stored object unreadable, so it must be backed up — apart from the media.
pub struct LocalKeyFile {
    path: PathBuf,
    contents: RwLock<KeyFileContents>,
}

impl fmt::Debug for LocalKeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKeyFile")
            .field("path", &self.path)
            .field("secrets", &"<redacted>")
            .finish()
    }
}

const FILE_NOTE: &str = "# flexwork master keys. Whoever holds this file and a copy of the media can read \
the media;\n# without it nobody can. Back it up, apart from the media. Never edit the secrets.\n";

impl LocalKeyFile {
    /// Opens the key file at `path`, creating it (with a first master key of `suite`) if it
    /// does not exist yet.
    pub fn open_or_create(path: impl Into<PathBuf>, suite: Suite) -> Result<Self, KmsError> {
        let path = path.into();
        if path.exists() {
            return Self::open(path);
        }
        let mut index_key = Zeroizing::new(vec![0u8; 32]);
        rand::fill(&mut index_key[..]);
        let first = new_master_key(suite, 1);
        let contents = KeyFileContents {
            format: 1,
            index_algorithm: suite,
            index_key,
            current: first.id.clone(),
            keys: vec![first],
        };
        write_file(&path, &contents)?;
        tracing::warn!(
            path = %path.display(),
            "created a new master key file; back it up apart from the media"
        );
        Ok(Self {
            path,
            contents: RwLock::new(contents),
        })
    }

    /// Opens an existing key file.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, KmsError> {
        let path = path.into();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| KmsError::Unavailable(format!("cannot read {}: {e}", path.display())))?;
        let contents: KeyFileContents = toml::from_str(&text)
            .map_err(|e| KmsError::Unavailable(format!("{} is damaged: {e}", path.display())))?;
        if !contents.keys.iter().any(|k| k.id == contents.current) {
            let message = format!("{} names a current key it does not hold", path.display());
            return Err(KmsError::Unavailable(message));
        }
        warn_if_readable_by_others(&path);
        Ok(Self {
            path,
            contents: RwLock::new(contents),
        })
    }

    /// The suite and secret of the index key that turns content hashes into object names.
    pub fn index_key(&self) -> (Suite, Zeroizing<Vec<u8>>) {
        let contents = self.read();
        (contents.index_algorithm, contents.index_key.clone())
    }

    /// Adds a new master key of `suite`, makes it current and saves the file; returns its id.
    /// Data keys wrapped earlier still unwrap with their old master key until re-wrapped.
    pub fn rotate(&self, suite: Suite) -> Result<String, KmsError> {
        let mut contents = self
            .contents
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut updated = contents.clone();
        let key = new_master_key(suite, updated.keys.len() + 1);
        let id = key.id.clone();
        updated.current = id.clone();
        updated.keys.push(key);
        write_file(&self.path, &updated)?;
        *contents = updated;
        tracing::info!(master_key = %id, "rotated the master key");
        Ok(id)
    }

    /// Removes a master key that no stored data key needs any more. Refuses the current key.
    pub fn retire(&self, id: &str) -> Result<(), KmsError> {
        let mut contents = self
            .contents
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if contents.current == id {
            let message = format!("{id} is the current master key; rotate first");
            return Err(KmsError::Unavailable(message));
        }
        let mut updated = contents.clone();
        updated.keys.retain(|k| k.id != id);
        if updated.keys.len() == contents.keys.len() {
            return Err(KmsError::UnknownKey(id.to_owned()));
        }
        write_file(&self.path, &updated)?;
        *contents = updated;
        tracing::info!(master_key = %id, "retired a master key");
        Ok(())
    }

    /// The ids of every master key in the file, oldest first.
    pub fn key_ids(&self) -> Vec<String> {
        self.read().keys.iter().map(|k| k.id.clone()).collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, KeyFileContents> {
        self.contents
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl Kms for LocalKeyFile {
    async fn current_key(&self) -> Result<String, KmsError> {
        Ok(self.read().current.clone())
    }

    async fn wrap(&self, data_key: &[u8], context: &[u8]) -> Result<WrappedKey, KmsError> {
        let contents = self.read();
        let Some(master) = contents.keys.iter().find(|k| k.id == contents.current) else {
            return Err(KmsError::UnknownKey(contents.current.clone()));
        };
        let wrapped = master
            .algorithm
            .seal_small(&master.secret, context, data_key)
            .map_err(KmsError::Unavailable)?;
        Ok(WrappedKey {
            master_key: master.id.clone(),
            wrapped,
        })
    }

    async fn unwrap(
        &self,
        key: &WrappedKey,
        context: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        let contents = self.read();
        let Some(master) = contents.keys.iter().find(|k| k.id == key.master_key) else {
            return Err(KmsError::UnknownKey(key.master_key.clone()));
        };
        master
            .algorithm
            .open_small(&master.secret, context, &key.wrapped)
            .map_err(KmsError::Unwrap)
    }
}

fn new_master_key(suite: Suite, serial: usize) -> MasterKey {
    let mut secret = Zeroizing::new(vec![0u8; suite.key_len()]);
    rand::fill(&mut secret[..]);
    let now = time::OffsetDateTime::now_utc();
    let created_at = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut tag = [0u8; 3];
    rand::fill(&mut tag);
    MasterKey {
        id: format!("mk{serial}-{}-{}", now.date(), hex::encode(tag)),
        algorithm: suite,
        created_at,
        secret,
    }
}

/// Writes the key file whole: a new file readable only by its owner, synced, then renamed
/// over the old one, so a crash leaves either the old keys or the new ones.
fn write_file(path: &Path, contents: &KeyFileContents) -> Result<(), KmsError> {
    let fail =
        |e: std::io::Error| KmsError::Unavailable(format!("cannot write {}: {e}", path.display()));
    let text = toml::to_string(contents).map_err(|e| KmsError::Unavailable(e.to_string()))?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let temp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&temp).map_err(fail)?;
    file.write_all(FILE_NOTE.as_bytes()).map_err(fail)?;
    file.write_all(text.as_bytes()).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    std::fs::rename(&temp, path).map_err(fail)?;
    if let Some(dir) = dir {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(fail)?;
    }
    Ok(())
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                "the master key file is readable by other users; chmod 600 it"
            );
        }
    }
}

mod hex_secret {
    use serde::{Deserialize, Deserializer, Serializer};
    use zeroize::Zeroizing;

    pub fn serialize<S: Serializer>(value: &Zeroizing<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&value[..]))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Zeroizing<Vec<u8>>, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        hex::decode(text.as_str())
            .map(Zeroizing::new)
            .map_err(serde::de::Error::custom)
    }
}

mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_wrapped_before_a_rotation_still_unwrap_and_new_ones_use_the_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        let kms = LocalKeyFile::open_or_create(&path, Suite::Aes256GcmSha256).unwrap();
        let before = kms.wrap(b"0123456789abcdef", b"object-1").await.unwrap();

        let new_id = kms.rotate(Suite::Sm4GcmSm3).unwrap();
        let reopened = LocalKeyFile::open(&path).unwrap();
        let after = reopened
            .wrap(b"fedcba9876543210", b"object-2")
            .await
            .unwrap();

        assert_ne!(before.master_key, new_id);
        assert_eq!(after.master_key, new_id);
        let old = reopened.unwrap(&before, b"object-1").await.unwrap();
        assert_eq!(&old[..], b"0123456789abcdef");
        assert!(reopened.unwrap(&before, b"object-2").await.is_err());
    }

    #[tokio::test]
    async fn a_retired_key_no_longer_unwraps_and_the_current_one_cannot_be_retired() {
        let dir = tempfile::tempdir().unwrap();
        let kms = LocalKeyFile::open_or_create(dir.path().join("k"), Suite::Sm4GcmSm3).unwrap();
        let first = kms.current_key().await.unwrap();
        let wrapped = kms.wrap(b"data key", b"ctx").await.unwrap();

        assert!(kms.retire(&first).is_err());
        kms.rotate(Suite::Sm4GcmSm3).unwrap();
        kms.retire(&first).unwrap();

        assert!(matches!(
            kms.unwrap(&wrapped, b"ctx").await,
            Err(KmsError::UnknownKey(_))
        ));
    }

    #[test]
    fn the_key_file_is_private_and_debug_shows_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        let kms = LocalKeyFile::open_or_create(&path, Suite::Aes256GcmSha256).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let contents: KeyFileContents = toml::from_str(&text).unwrap();
        let secret = hex::encode(&contents.keys[0].secret[..]);

        assert!(!format!("{kms:?}").contains(&secret));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
