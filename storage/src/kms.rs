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
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::SystemTime;

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
///
/// Another process (an operator's `flexwork keys rotate` or `keys retire`) may rewrite the
/// file while this one runs: every call first checks, with a cheap `metadata()`, whether the
/// file changed and reloads it if so, and an unwrap that names an unknown master key reads
/// the file once more before giving up. A reloaded file that is damaged, or that holds
/// another index key than the one loaded at start (object names depend on it), is not
/// used: the keys loaded before stay, an error is logged, and [`LocalKeyFile::rotate`] and
/// [`LocalKeyFile::retire`] refuse until the file is fixed.
pub struct LocalKeyFile {
    path: PathBuf,
    state: RwLock<Loaded>,
}

/// The keys in use and what the file looked like when it was last read.
struct Loaded {
    contents: KeyFileContents,
    /// Size, modification time and inode of the file when it was last read; `None` if it
    /// could not be examined.
    seen: Option<FileStamp>,
    /// SHA-256 of the text last read, used or not, so the same text is parsed (and a problem
    /// with it logged) only once.
    digest: [u8; 32],
    /// Why the text last read is not in use, if it is not.
    problem: Option<String>,
}

/// What tells one version of the key file from another without reading it. The file is
/// always replaced by a rename, so its inode changes with every write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl FileStamp {
    fn of(path: &Path) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0;
        Ok(Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        })
    }
}

impl fmt::Debug for LocalKeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKeyFile")
            .field("path", &self.path)
            .field("secrets", &"<redacted>")
            .finish()
    }
}

const FILE_NOTE: &str = concat!(
    "# flexwork master keys. Whoever holds this file and a copy of the media can read the ",
    "media;\n# without it nobody can. Back it up, apart from the media. Never edit the secrets.\n",
);

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
        let first = new_master_key(suite, &[]);
        let contents = KeyFileContents {
            format: 1,
            index_algorithm: suite,
            index_key,
            current: first.id.clone(),
            keys: vec![first],
        };
        let digest = write_file(&path, &contents)?;
        tracing::warn!(
            path = %path.display(),
            "created a new master key file; back it up apart from the media"
        );
        let seen = FileStamp::of(&path).ok();
        Ok(Self::loaded(path, contents, seen, digest))
    }

    /// Opens an existing key file.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, KmsError> {
        let path = path.into();
        let seen = FileStamp::of(&path).ok();
        let text = read_text(&path)?;
        let contents = parse_contents(&path, &text)?;
        warn_if_readable_by_others(&path);
        Ok(Self::loaded(path, contents, seen, digest_of(&text)))
    }

    fn loaded(
        path: PathBuf,
        contents: KeyFileContents,
        seen: Option<FileStamp>,
        digest: [u8; 32],
    ) -> Self {
        let state = Loaded {
            contents,
            seen,
            digest,
            problem: None,
        };
        Self {
            path,
            state: RwLock::new(state),
        }
    }

    /// The suite and secret of the index key that turns content hashes into object names.
    /// It is the one loaded at start for the life of this value: a reload never changes it.
    pub fn index_key(&self) -> (Suite, Zeroizing<Vec<u8>>) {
        let contents = &self.current().contents;
        (contents.index_algorithm, contents.index_key.clone())
    }

    /// Adds a new master key of `suite`, makes it current and saves the file; returns its id.
    /// Data keys wrapped earlier still unwrap with their old master key until re-wrapped.
    ///
    /// Builds on the file as it is now on disk, so a rotation or retirement made by another
    /// process is kept; refuses if the file on disk cannot be used.
    pub fn rotate(&self, suite: Suite) -> Result<String, KmsError> {
        let mut state = self.write();
        self.reload(&mut state, true);
        if let Some(problem) = &state.problem {
            return Err(KmsError::Unavailable(problem.clone()));
        }
        let mut updated = state.contents.clone();
        let key = new_master_key(suite, &updated.keys);
        let id = key.id.clone();
        updated.current = id.clone();
        updated.keys.push(key);
        self.save(&mut state, updated)?;
        tracing::info!(master_key = %id, "rotated the master key");
        Ok(id)
    }

    /// Removes a master key that no stored data key needs any more. Refuses the current key,
    /// and refuses if the file on disk cannot be used.
    pub fn retire(&self, id: &str) -> Result<(), KmsError> {
        let mut state = self.write();
        self.reload(&mut state, true);
        if let Some(problem) = &state.problem {
            return Err(KmsError::Unavailable(problem.clone()));
        }
        if state.contents.current == id {
            let message = format!("{id} is the current master key; rotate first");
            return Err(KmsError::Unavailable(message));
        }
        let mut updated = state.contents.clone();
        updated.keys.retain(|k| k.id != id);
        if updated.keys.len() == state.contents.keys.len() {
            return Err(KmsError::UnknownKey(id.to_owned()));
        }
        self.save(&mut state, updated)?;
        tracing::info!(master_key = %id, "retired a master key");
        Ok(())
    }

    /// The ids of every master key in the file, oldest first.
    pub fn key_ids(&self) -> Vec<String> {
        let state = self.current();
        state.contents.keys.iter().map(|k| k.id.clone()).collect()
    }

    /// Writes `updated` to the file and makes it the keys in use.
    fn save(&self, state: &mut Loaded, updated: KeyFileContents) -> Result<(), KmsError> {
        let digest = write_file(&self.path, &updated)?;
        state.contents = updated;
        state.seen = FileStamp::of(&self.path).ok();
        state.digest = digest;
        state.problem = None;
        Ok(())
    }

    /// The keys in use, reloaded first if the file changed since it was last read.
    fn current(&self) -> RwLockReadGuard<'_, Loaded> {
        let stamp = FileStamp::of(&self.path).ok();
        {
            let state = self.read();
            if stamp.is_some() && state.seen == stamp {
                return state;
            }
        }
        self.reload(&mut self.write(), false);
        self.read()
    }

    /// Reads the file again if it changed (or, with `force`, in any case) and uses what it
    /// holds unless it is damaged or holds another index key; then the keys in use stay and
    /// the problem is logged, once per version of the file.
    fn reload(&self, state: &mut Loaded, force: bool) {
        let path = self.path.display();
        let stamp = match FileStamp::of(&self.path) {
            Ok(stamp) => stamp,
            Err(e) => {
                if state.seen.take().is_some() {
                    tracing::error!(
                        path = %path, error = %e,
                        "cannot examine the master key file; keeping the keys loaded before"
                    );
                }
                return;
            }
        };
        if !force && state.seen == Some(stamp) {
            return;
        }
        let text = match read_text(&self.path) {
            Ok(text) => text,
            Err(e) => {
                if state.seen.take().is_some() {
                    tracing::error!(
                        path = %path, error = %e,
                        "cannot read the master key file; keeping the keys loaded before"
                    );
                }
                return;
            }
        };
        state.seen = Some(stamp);
        let digest = digest_of(&text);
        if digest == state.digest {
            return;
        }
        state.digest = digest;
        let problem = match parse_contents(&self.path, &text) {
            Ok(contents)
                if contents.index_algorithm != state.contents.index_algorithm
                    || contents.index_key != state.contents.index_key =>
            {
                format!(
                    "{path} now holds another index key than the one this process started \
                     with; object names depend on it, so restart with the right key file"
                )
            }
            Ok(contents) => {
                state.contents = contents;
                state.problem = None;
                tracing::info!(
                    path = %path,
                    current = %state.contents.current,
                    master_keys = state.contents.keys.len(),
                    "reloaded the changed master key file"
                );
                return;
            }
            Err(e) => e.to_string(),
        };
        tracing::error!(
            path = %path, error = %problem,
            "the master key file changed into one that cannot be used; keeping the keys loaded \
             before"
        );
        state.problem = Some(problem);
    }

    fn read(&self) -> RwLockReadGuard<'_, Loaded> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Loaded> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn unwrap_loaded(
        &self,
        key: &WrappedKey,
        context: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        let state = self.current();
        let contents = &state.contents;
        let Some(master) = contents.keys.iter().find(|k| k.id == key.master_key) else {
            return Err(KmsError::UnknownKey(key.master_key.clone()));
        };
        master
            .algorithm
            .open_small(&master.secret, context, &key.wrapped)
            .map_err(KmsError::Unwrap)
    }
}

#[async_trait]
impl Kms for LocalKeyFile {
    async fn current_key(&self) -> Result<String, KmsError> {
        Ok(self.current().contents.current.clone())
    }

    async fn wrap(&self, data_key: &[u8], context: &[u8]) -> Result<WrappedKey, KmsError> {
        let state = self.current();
        let contents = &state.contents;
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
        match self.unwrap_loaded(key, context) {
            // The key may have been added by another process within the resolution of the
            // file's stamp: read the file once more before saying it is unknown.
            Err(KmsError::UnknownKey(_)) => {
                self.reload(&mut self.write(), true);
                self.unwrap_loaded(key, context)
            }
            outcome => outcome,
        }
    }
}

fn read_text(path: &Path) -> Result<Zeroizing<String>, KmsError> {
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|e| KmsError::Unavailable(format!("cannot read {}: {e}", path.display())))
}

fn digest_of(text: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).into()
}

/// Parses and checks the text of a key file. The error names the line and field at fault
/// but never quotes the file: its lines hold secrets.
fn parse_contents(path: &Path, text: &str) -> Result<KeyFileContents, KmsError> {
    let contents: KeyFileContents =
        toml::from_str(text).map_err(|e| KmsError::Unavailable(describe_damage(path, text, &e)))?;
    if !contents.keys.iter().any(|k| k.id == contents.current) {
        let message = format!("{} names a current key it does not hold", path.display());
        return Err(KmsError::Unavailable(message));
    }
    Ok(contents)
}

/// The fields a key file has: the only words of the file an error may repeat.
const FIELDS: &[&str] = &[
    "format",
    "index_algorithm",
    "index_key",
    "current",
    "keys",
    "id",
    "algorithm",
    "created_at",
    "secret",
];

/// Says where a key file is damaged — line number, field name and the parser's short message
/// with anything quoted in it left out — without any part of the file's values.
fn describe_damage(path: &Path, text: &str, error: &toml::de::Error) -> String {
    let mut out = format!("{} is damaged", path.display());
    if let Some(span) = error.span() {
        let start = span.start.min(text.len());
        let before = text.get(..start).unwrap_or_default();
        let line_number = before.matches('\n').count() + 1;
        out.push_str(&format!(" at line {line_number}"));
        let line = text.lines().nth(line_number - 1).unwrap_or_default();
        let key = line.split_once('=').map(|(key, _)| key.trim());
        if let Some(field) = key.and_then(|key| FIELDS.iter().find(|f| **f == key)) {
            out.push_str(&format!(" (field {field})"));
        }
    }
    out.push_str(": ");
    out.push_str(without_quoted(error.message().trim()).trim_end_matches('\n'));
    out
}

/// `message` with everything between quotes (`"…"`, `'…'` or `` `…` ``) replaced by `…`, so
/// a parser message that repeats a value does not repeat it here.
fn without_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut open: Option<char> = None;
    for c in message.chars() {
        match open {
            Some(quote) if c == quote => {
                out.push(c);
                open = None;
            }
            Some(_) => {}
            None if matches!(c, '"' | '\'' | '`') => {
                out.push(c);
                out.push('…');
                open = Some(c);
            }
            None => out.push(c),
        }
    }
    out
}

/// A new master key of `suite`, with an id that no key in `existing` has: its serial is one
/// more than the highest serial there, so ids do not repeat after a key is retired.
fn new_master_key(suite: Suite, existing: &[MasterKey]) -> MasterKey {
    let highest = existing
        .iter()
        .filter_map(|k| serial_of(&k.id))
        .max()
        .unwrap_or(0);
    let serial = highest.max(existing.len()) + 1;
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

/// The serial of a master key id `mk{serial}-…`.
fn serial_of(id: &str) -> Option<usize> {
    let rest = id.strip_prefix("mk")?;
    let (serial, _) = rest.split_once('-')?;
    serial.parse().ok()
}

/// Writes the key file whole: a new file readable only by its owner, synced, then renamed
/// over the old one, so a crash leaves either the old keys or the new ones. Returns the
/// digest of the text written.
fn write_file(path: &Path, contents: &KeyFileContents) -> Result<[u8; 32], KmsError> {
    let fail =
        |e: std::io::Error| KmsError::Unavailable(format!("cannot write {}: {e}", path.display()));
    let text = toml::to_string(contents).map_err(|e| KmsError::Unavailable(e.to_string()))?;
    let text = Zeroizing::new(format!("{FILE_NOTE}{}", Zeroizing::new(text).as_str()));
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
    file.write_all(text.as_bytes()).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    std::fs::rename(&temp, path).map_err(fail)?;
    if let Some(dir) = dir {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(fail)?;
    }
    Ok(digest_of(&text))
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
        // The message must not repeat any part of the text: it is a secret.
        hex::decode(text.as_str())
            .map(Zeroizing::new)
            .map_err(|_| serde::de::Error::custom("a secret that is not hex digits in pairs"))
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

    #[tokio::test]
    async fn a_running_key_file_sees_rotations_and_retirements_made_by_another_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        let operator = LocalKeyFile::open_or_create(&path, Suite::Aes256GcmSha256).unwrap();
        let server = LocalKeyFile::open(&path).unwrap();
        let first = server.current_key().await.unwrap();
        let old = server.wrap(b"old data key", b"ctx-old").await.unwrap();

        let second = operator.rotate(Suite::Sm4GcmSm3).unwrap();

        assert_eq!(server.current_key().await.unwrap(), second);
        let new = server.wrap(b"new data key", b"ctx-new").await.unwrap();
        assert_eq!(new.master_key, second);
        let by_operator = operator.wrap(b"operator key", b"ctx-op").await.unwrap();
        let opened = server.unwrap(&by_operator, b"ctx-op").await.unwrap();
        assert_eq!(&opened[..], b"operator key");
        assert_eq!(server.key_ids(), vec![first.clone(), second.clone()]);

        operator.retire(&first).unwrap();

        assert_eq!(server.key_ids(), vec![second.clone()]);
        assert!(matches!(
            server.unwrap(&old, b"ctx-old").await,
            Err(KmsError::UnknownKey(id)) if id == first
        ));
        // A rotation through the server builds on the file as the operator left it.
        let third = server.rotate(Suite::Aes256GcmSha256).unwrap();
        assert_eq!(operator.key_ids(), vec![second, third]);
    }

    #[tokio::test]
    async fn a_key_file_changed_into_a_damaged_one_or_another_store_s_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        let kms = LocalKeyFile::open_or_create(&path, Suite::Aes256GcmSha256).unwrap();
        let (_, index_key) = kms.index_key();
        let wrapped = kms.wrap(b"data key", b"ctx").await.unwrap();
        let good = std::fs::read_to_string(&path).unwrap();

        std::fs::write(&path, "format = 1\nindex_key = ").unwrap();
        assert_eq!(
            &kms.unwrap(&wrapped, b"ctx").await.unwrap()[..],
            b"data key"
        );
        let refused = kms.rotate(Suite::Aes256GcmSha256);
        assert!(
            matches!(refused, Err(KmsError::Unavailable(_))),
            "{refused:?}"
        );

        let other = dir.path().join("other.toml");
        LocalKeyFile::open_or_create(&other, Suite::Aes256GcmSha256).unwrap();
        std::fs::copy(&other, &path).unwrap();
        assert_eq!(kms.index_key().1, index_key);
        assert_eq!(
            &kms.unwrap(&wrapped, b"ctx").await.unwrap()[..],
            b"data key"
        );
        assert_eq!(kms.current_key().await.unwrap(), wrapped.master_key);
        let refused = kms.retire("anything");
        assert!(
            matches!(refused, Err(KmsError::Unavailable(_))),
            "{refused:?}"
        );

        std::fs::write(&path, &good).unwrap();
        kms.rotate(Suite::Sm4GcmSm3).unwrap();
        assert_eq!(kms.key_ids().len(), 2);
    }

    #[test]
    fn a_damaged_key_file_is_reported_without_any_of_its_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        let kms = LocalKeyFile::open_or_create(&path, Suite::Aes256GcmSha256).unwrap();
        kms.rotate(Suite::Sm4GcmSm3).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let contents: KeyFileContents = toml::from_str(&text).unwrap();
        let mut secrets = vec![hex::encode(&contents.index_key[..])];
        secrets.extend(contents.keys.iter().map(|k| hex::encode(&k.secret[..])));
        let leaks = |err: &str| {
            secrets
                .iter()
                .any(|s| (0..=s.len() - 8).any(|at| err.contains(&s[at..at + 8])))
        };

        for (i, secret) in secrets.iter().enumerate() {
            for at in [0, 7, secret.len() - 1] {
                let mut broken = secret.clone();
                broken.replace_range(at..=at, "z");
                std::fs::write(&path, text.replace(secret.as_str(), &broken)).unwrap();

                let err = LocalKeyFile::open(&path).unwrap_err().to_string();

                let field = if i == 0 { "index_key" } else { "secret" };
                assert!(err.contains("line "), "{err}");
                assert!(err.contains(field), "{err}");
                assert!(!leaks(&err), "{err} repeats part of a secret");
                let broken_piece = &broken[at.saturating_sub(3)..(at + 5).min(broken.len())];
                assert!(!err.contains(broken_piece), "{err}");
            }
        }
        // A syntax error (an unclosed string) is reported without the line either.
        let unclosed = text.replacen(&format!("{}\"", secrets[1]), &secrets[1], 1);
        std::fs::write(&path, unclosed).unwrap();
        let err = LocalKeyFile::open(&path).unwrap_err().to_string();
        assert!(err.contains("line "), "{err}");
        assert!(!leaks(&err), "{err} repeats part of a secret");
    }

    #[test]
    fn master_key_ids_do_not_repeat_after_a_retirement() {
        let dir = tempfile::tempdir().unwrap();
        let kms = LocalKeyFile::open_or_create(dir.path().join("k"), Suite::Sm4GcmSm3).unwrap();
        let first = kms.key_ids().remove(0);
        let second = kms.rotate(Suite::Sm4GcmSm3).unwrap();
        kms.retire(&first).unwrap();

        let third = kms.rotate(Suite::Sm4GcmSm3).unwrap();

        assert!(first.starts_with("mk1-"), "{first}");
        assert!(second.starts_with("mk2-"), "{second}");
        assert!(third.starts_with("mk3-"), "{third}");
    }
}
