//! Encryption at rest: content-addressed media sealed with per-object data keys.
//!
//! A [`SealedStore`] turns any [`ObjectStore`] (a folder, a bucket) into a [`MediaStore`].
//! For each blob it keeps two objects, both named by the blob's *keyed* hash (an HMAC of
//! the content hash under the index key, so someone holding the bucket cannot confirm a
//! guess about a photo by hashing it):
//!
//! - `keys/<name>`: the envelope — the blob's own data key, wrapped by the key manager's
//!   current master key, with the suite and nonce prefix it was sealed with;
//! - `media/<name>`: the sealed bytes (see [`crate::crypto`]).
//!
//! The envelope is written before the sealed bytes, so a sealed object never exists without
//! its key. A put of a blob whose envelope is already there reuses its data key and nonce
//! prefix: the sealed bytes come out identical, which is what lets an interrupted multipart
//! upload resume. An envelope that is damaged, or wrapped by a master key the key manager
//! does not hold, is replaced by a new one. After writing the sealed bytes a put reads the
//! envelope back and, if another writer of the same blob replaced it meanwhile, writes them
//! again with that envelope, so concurrent writers leave a copy that opens. Rotating the
//! master key re-wraps envelopes and leaves the media untouched.
//!
//! A read reports a copy whose envelope is missing, damaged or wrapped by a master key the
//! key manager answers it does not hold as [`StorageError::Corrupt`] — unreadable here, so a
//! repair from a good copy rewrites it — and a key manager that cannot be reached as
//! [`StorageError::Unavailable`].

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use flexwork_sync::ContentHash;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::crypto::{self, ChunkCipher, NONCE_PREFIX, SealingReader, Suite};
use crate::file::{self, blocking};
use crate::kms::{Kms, KmsError, WrappedKey};
use crate::{MediaStore, ObjectStore, StorageError, check_claim};

/// How many times a put writes the sealed bytes before giving up on an envelope that other
/// writers keep replacing (see [`SealedStore`]'s `put_sealed`).
const PUT_ATTEMPTS: usize = 4;

/// The keys of encryption at rest: the key manager, the suite for new objects and the index
/// key that names objects.
pub struct Vault {
    suite: Suite,
    kms: Arc<dyn Kms>,
    index_suite: Suite,
    index_key: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("suite", &self.suite)
            .field("kms", &self.kms)
            .field("index_suite", &self.index_suite)
            .field("index_key", &"<redacted>")
            .finish()
    }
}

impl Vault {
    /// Seals new objects with `suite`, wraps their keys with `kms` and names them with an HMAC
    /// of `index_suite` under `index_key`. The index key must never change for a store: it
    /// decides every object's name.
    pub fn new(
        suite: Suite,
        kms: Arc<dyn Kms>,
        index_suite: Suite,
        index_key: Zeroizing<Vec<u8>>,
    ) -> Self {
        Self {
            suite,
            kms,
            index_suite,
            index_key,
        }
    }

    /// The suite new objects are sealed with.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The name a blob is stored under: its keyed hash, in hex.
    pub fn object_name(&self, hash: &ContentHash) -> String {
        let mac = self
            .index_suite
            .mac(&self.index_key, &[b"flexwork-object-v1", hash.as_bytes()]);
        hex::encode(mac)
    }

    /// The current master key of the key manager.
    pub async fn current_master_key(&self) -> Result<String, StorageError> {
        self.kms.current_key().await.map_err(kms_unavailable)
    }
}

/// What sits in `keys/<name>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Envelope {
    format: u32,
    suite: Suite,
    nonce_prefix: String,
    #[serde(flatten)]
    key: WrappedKey,
}

impl Envelope {
    /// The context a data key is wrapped with: it binds the key to its object and settings.
    fn context(name: &str, suite: Suite, prefix: &str) -> Vec<u8> {
        format!("flexwork-data-key-v1\0{suite}\0{name}\0{prefix}").into_bytes()
    }

    fn prefix(&self) -> Option<[u8; NONCE_PREFIX]> {
        hex::decode(&self.nonce_prefix).ok()?.try_into().ok()
    }
}

/// An envelope's data key, opened, with what it seals with.
struct OpenedKey {
    suite: Suite,
    prefix: [u8; NONCE_PREFIX],
    key: Zeroizing<Vec<u8>>,
}

impl OpenedKey {
    fn cipher(&self) -> std::io::Result<ChunkCipher> {
        ChunkCipher::new(self.suite, &self.key, &self.prefix)
    }
}

/// What a re-wrap of every envelope of a store did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RewrapReport {
    /// Envelopes read.
    pub checked: usize,
    /// Envelopes re-wrapped under the current master key.
    pub rewrapped: usize,
    /// Envelopes that could not be read, opened or written back.
    pub failed: usize,
}

/// Media sealed with per-object data keys on top of an [`ObjectStore`].
#[derive(Debug, Clone)]
pub struct SealedStore {
    inner: Arc<dyn ObjectStore>,
    vault: Arc<Vault>,
}

impl SealedStore {
    /// Seals what is put into `inner` with the keys of `vault`.
    pub fn new(inner: Arc<dyn ObjectStore>, vault: Arc<Vault>) -> Self {
        Self { inner, vault }
    }

    /// The store holding the sealed objects.
    pub fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    /// The master key new data keys are wrapped with.
    pub async fn current_master_key(&self) -> Result<String, StorageError> {
        self.vault.current_master_key().await
    }

    /// The key of the sealed bytes of `hash` in the inner store.
    pub fn media_key(&self, hash: &ContentHash) -> String {
        format!("media/{}", self.vault.object_name(hash))
    }

    /// The key of the envelope of `hash` in the inner store.
    pub fn envelope_key(&self, hash: &ContentHash) -> String {
        format!("keys/{}", self.vault.object_name(hash))
    }

    /// Re-wraps every envelope not wrapped by the current master key; the sealed media is
    /// not read or rewritten.
    pub async fn rewrap_all(&self) -> Result<RewrapReport, StorageError> {
        let current = self.vault.current_master_key().await?;
        let mut report = RewrapReport::default();
        for key in self.inner.list("keys/").await? {
            report.checked += 1;
            match self.rewrap_one(&key, &current).await {
                Ok(true) => report.rewrapped += 1,
                Ok(false) => {}
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!(store = self.name(), key, error = %e, "could not re-wrap");
                }
            }
        }
        tracing::info!(store = self.name(), ?report, "re-wrapped data keys");
        Ok(report)
    }

    /// How many envelopes each master key wraps; unreadable envelopes count under `"?"`.
    pub async fn envelopes_by_master_key(
        &self,
    ) -> Result<std::collections::BTreeMap<String, usize>, StorageError> {
        let mut counts = std::collections::BTreeMap::new();
        for key in self.inner.list("keys/").await? {
            let bytes = self.inner.get(&key).await?;
            let owner = bytes
                .as_deref()
                .and_then(parse_envelope)
                .map_or_else(|| "?".to_owned(), |e| e.key.master_key);
            *counts.entry(owner).or_insert(0) += 1;
        }
        Ok(counts)
    }

    async fn rewrap_one(&self, key: &str, current: &str) -> Result<bool, StorageError> {
        let name = key.strip_prefix("keys/").unwrap_or(key);
        let Some(bytes) = self.inner.get(key).await? else {
            return Ok(false);
        };
        let mut envelope = parse_envelope(&bytes).ok_or_else(|| damaged(key))?;
        if envelope.key.master_key == current {
            return Ok(false);
        }
        let context = Envelope::context(name, envelope.suite, &envelope.nonce_prefix);
        let data_key = self.vault.kms.unwrap(&envelope.key, &context).await;
        let data_key = data_key.map_err(kms_unavailable)?;
        let rewrapped = self.vault.kms.wrap(&data_key, &context).await;
        envelope.key = rewrapped.map_err(kms_unavailable)?;
        self.inner.put(key, envelope_bytes(&envelope)?).await?;
        Ok(true)
    }

    /// The data key to seal `name` with and the envelope it came from: the one already in
    /// its envelope, or a new one whose envelope is written first.
    ///
    /// An envelope that is damaged, does not open or is wrapped by a master key the key
    /// manager does not hold is replaced by a new one (its copy is unreadable anyway, and the
    /// put that follows rewrites the sealed bytes). A store or key manager that cannot be
    /// reached fails the put rather than replacing an envelope that may be good.
    async fn key_for_put(&self, name: &str) -> Result<(OpenedKey, Bytes), StorageError> {
        let envelope_key = format!("keys/{name}");
        if let Some(bytes) = self.inner.get(&envelope_key).await? {
            match self.open_envelope(name, &bytes).await {
                Ok(opened) => return Ok((opened, bytes)),
                Err(EnvelopeError::Kms(e)) => return Err(kms_unavailable(e)),
                Err(EnvelopeError::Damaged | EnvelopeError::UnknownMaster(_)) => {}
            }
        }

        let suite = self.vault.suite;
        let mut key = Zeroizing::new(vec![0u8; suite.key_len()]);
        rand::fill(&mut key[..]);
        let mut prefix = [0u8; NONCE_PREFIX];
        rand::fill(&mut prefix);
        let nonce_prefix = hex::encode(prefix);
        let context = Envelope::context(name, suite, &nonce_prefix);
        let wrapped = self.vault.kms.wrap(&key, &context).await;
        let envelope = Envelope {
            format: 1,
            suite,
            nonce_prefix,
            key: wrapped.map_err(kms_unavailable)?,
        };
        let bytes = envelope_bytes(&envelope)?;
        self.inner.put(&envelope_key, bytes.clone()).await?;
        Ok((OpenedKey { suite, prefix, key }, bytes))
    }

    /// Tells whether the envelope of `name` still holds the data key `used` (read from or
    /// written as `used_bytes`) now that sealed bytes made with it are written. The same
    /// bytes mean the same key; other bytes may still be the same key re-wrapped (by
    /// [`SealedStore::rewrap_all`]), so they are opened and compared.
    async fn envelope_still_holds(
        &self,
        name: &str,
        used: &OpenedKey,
        used_bytes: &[u8],
    ) -> Result<bool, StorageError> {
        let Some(bytes) = self.inner.get(&format!("keys/{name}")).await? else {
            return Ok(false);
        };
        if bytes == used_bytes {
            return Ok(true);
        }
        match self.open_envelope(name, &bytes).await {
            Ok(now) => {
                Ok(now.suite == used.suite && now.prefix == used.prefix && now.key == used.key)
            }
            Err(EnvelopeError::Kms(e)) => Err(kms_unavailable(e)),
            Err(EnvelopeError::Damaged | EnvelopeError::UnknownMaster(_)) => Ok(false),
        }
    }

    /// Seals a blob as `media/<name>` with `write`, which gets the data key to seal with,
    /// until the envelope left in the store is the one the sealed bytes were made with.
    ///
    /// Two writers of the same blob (a scrub's repair and replication, perhaps in two
    /// processes) can each find no usable envelope, each write a new one and then each
    /// write sealed bytes: the last envelope and the last sealed bytes may then come from
    /// different writers, and the copy would never open again. So after writing the sealed
    /// bytes a writer reads the envelope back, and if it is no longer its own it writes the
    /// sealed bytes again, this time with the envelope now in the store.
    ///
    /// Why that leaves a consistent copy: take the writer whose sealed bytes are written
    /// last, and suppose it returned success. After writing them it read back an envelope
    /// holding its own data key. Envelopes holding another data key are written only by
    /// `key_for_put`, by a writer that then writes sealed bytes; one written after that read
    /// would be followed by sealed bytes written later still, contradicting "last" — unless
    /// that writer dies or fails in between, which leaves the same unreadable copy an
    /// interrupted repair leaves and which the next scrub repairs. A re-wrap (rotation)
    /// writes an envelope holding the same data key, which the read-back accepts. And a
    /// writer that finds a usable envelope reuses it: sealing is deterministic given data
    /// key and nonce prefix, so writers sharing an envelope write identical sealed bytes, in
    /// whatever order. A pass fails only when another writer wrote a new envelope, and a
    /// writer writes one only when it found none usable, so after the first usable envelope
    /// appears few more can follow; after [`PUT_ATTEMPTS`] passes the put fails, saying
    /// that the copy may not open until it is written again.
    async fn put_sealed<F, Fut>(&self, name: &str, write: F) -> Result<(), StorageError>
    where
        F: Fn(OpenedKey) -> Fut,
        Fut: std::future::Future<Output = Result<(), StorageError>>,
    {
        for attempt in 1..=PUT_ATTEMPTS {
            let (opened, used) = self.key_for_put(name).await?;
            let kept = OpenedKey {
                suite: opened.suite,
                prefix: opened.prefix,
                key: opened.key.clone(),
            };
            write(opened).await?;
            if self.envelope_still_holds(name, &kept, &used).await? {
                return Ok(());
            }
            tracing::warn!(
                store = self.name(),
                object = name,
                attempt,
                "another writer replaced the envelope while the media was written; writing again"
            );
        }
        let message = format!(
            "media/{name}: another writer kept replacing its envelope; gave up after \
             {PUT_ATTEMPTS} attempts, the copy may not open until it is written again"
        );
        Err(StorageError::unavailable(self.name(), message))
    }

    /// Opens the sealed file `staged` of blob `hash` into `path`, chunk by chunk.
    async fn open_file(
        &self,
        hash: &ContentHash,
        name: &str,
        staged: &Path,
        path: &Path,
    ) -> Result<u64, StorageError> {
        let corrupt = |detail: String| {
            tracing::error!(store = self.name(), %hash, detail, "stored media is corrupt");
            StorageError::Corrupt {
                hash: *hash,
                detail,
            }
        };
        let Some(envelope) = self.inner.get(&format!("keys/{name}")).await? else {
            return Err(corrupt("its wrapped data key is missing".into()));
        };
        let opened = match self.open_envelope(name, &envelope).await {
            Ok(opened) => opened,
            Err(e) => return Err(corrupt(e.detail()?)),
        };
        let cipher = opened.cipher()?;
        let expected = (opened.suite, opened.prefix);
        let (staged, path, name) = (staged.to_owned(), path.to_owned(), name.to_owned());
        let opened = blocking(move || {
            let mut source = std::io::BufReader::new(File::open(&staged)?);
            let mut head = [0u8; crypto::HEADER];
            let header_ok = std::io::Read::read_exact(&mut source, &mut head).is_ok()
                && crypto::parse_header(&head) == Some(expected);
            if !header_ok {
                return Ok(Err("its header does not match its data key".to_owned()));
            }
            let source = std::io::Read::chain(&head[..], source);
            let sink = std::io::BufWriter::new(File::create(&path)?);
            match crypto::open_stream(&cipher, &name, source, sink) {
                Ok(actual) => Ok(Ok((actual, std::fs::metadata(&path)?.len()))),
                Err(crypto::OpenStreamError::Open(e)) => Ok(Err(e.to_string())),
                Err(crypto::OpenStreamError::Io(e)) => Err(e.into()),
            }
        })
        .await?;
        match opened {
            Ok((actual, len)) if actual == *hash => Ok(len),
            Ok(_) => Err(corrupt("its content does not match its hash".into())),
            Err(detail) => Err(corrupt(detail)),
        }
    }

    /// Opens an envelope's data key; a damaged envelope or one that does not open is
    /// reported as such, one wrapped by a master key the key manager does not hold as such,
    /// and a key manager that cannot be reached as unavailable.
    async fn open_envelope(&self, name: &str, bytes: &[u8]) -> Result<OpenedKey, EnvelopeError> {
        let envelope = parse_envelope(bytes).ok_or(EnvelopeError::Damaged)?;
        let prefix = envelope.prefix().ok_or(EnvelopeError::Damaged)?;
        let context = Envelope::context(name, envelope.suite, &envelope.nonce_prefix);
        match self.vault.kms.unwrap(&envelope.key, &context).await {
            Ok(key) => Ok(OpenedKey {
                suite: envelope.suite,
                prefix,
                key,
            }),
            Err(KmsError::Unwrap(_)) => Err(EnvelopeError::Damaged),
            Err(KmsError::UnknownKey(id)) => Err(EnvelopeError::UnknownMaster(id)),
            Err(e) => Err(EnvelopeError::Kms(e)),
        }
    }
}

enum EnvelopeError {
    /// Not an envelope, or its data key does not open under its master key.
    Damaged,
    /// Wrapped by a master key the key manager answers it does not hold.
    UnknownMaster(String),
    /// The key manager could not be reached.
    Kms(KmsError),
}

impl EnvelopeError {
    /// What makes the copy unreadable, or the error to return if that is not known.
    fn detail(self) -> Result<String, StorageError> {
        match self {
            Self::Damaged => Ok("its wrapped data key is damaged".to_owned()),
            Self::UnknownMaster(id) => Ok(format!(
                "its data key is wrapped by master key {id}, which the key file does not hold"
            )),
            Self::Kms(e) => Err(kms_unavailable(e)),
        }
    }
}

/// A file of sealed bytes next to the file being written, removed when dropped — also when
/// the read is abandoned half way.
struct Staged(PathBuf);

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A name for the sealed bytes fetched for `path`: next to it, with a random part so that
/// two readers writing the same blob to the same place do not share it.
fn staging_path(path: &Path) -> PathBuf {
    let mut tag = [0u8; 8];
    rand::fill(&mut tag);
    let mut name = path
        .file_name()
        .map_or_else(|| "media".into(), std::ffi::OsStr::to_os_string);
    name.push(format!(".{}.sealed-part", hex::encode(tag)));
    path.with_file_name(name)
}

fn parse_envelope(bytes: &[u8]) -> Option<Envelope> {
    serde_json::from_slice::<Envelope>(bytes)
        .ok()
        .filter(|e| e.format == 1)
}

fn envelope_bytes(envelope: &Envelope) -> Result<Bytes, StorageError> {
    let json = serde_json::to_vec(envelope).map_err(|e| StorageError::Io(e.into()))?;
    Ok(Bytes::from(json))
}

fn damaged(key: &str) -> StorageError {
    StorageError::Io(std::io::Error::other(format!(
        "{key} is not a valid envelope"
    )))
}

fn kms_unavailable(e: KmsError) -> StorageError {
    StorageError::unavailable("key manager", e)
}

#[async_trait]
impl MediaStore for SealedStore {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn put(&self, hash: &ContentHash, bytes: Bytes) -> Result<(), StorageError> {
        check_claim(hash, &bytes)?;
        let name = self.vault.object_name(hash);
        let key = format!("media/{name}");
        self.put_sealed(&name, |opened| {
            let (bytes, name, key) = (bytes.clone(), name.clone(), &key);
            async move {
                let header = crypto::header(opened.suite, &opened.prefix);
                let cipher = opened.cipher()?;
                let sealed = blocking(move || {
                    let mut reader = SealingReader::new(&bytes[..], cipher, header, &name);
                    let len = crypto::sealed_len(bytes.len() as u64) as usize;
                    let mut sealed = Vec::with_capacity(len);
                    std::io::Read::read_to_end(&mut reader, &mut sealed)?;
                    Ok(sealed)
                })
                .await?;
                self.inner.put(key, Bytes::from(sealed)).await
            }
        })
        .await
    }

    async fn put_file(&self, hash: &ContentHash, path: &Path) -> Result<(), StorageError> {
        let owned = path.to_owned();
        let (actual, len) = blocking(move || {
            let len = std::fs::metadata(&owned)?.len();
            Ok((file::hash_file(&owned)?, len))
        })
        .await?;
        if actual != *hash {
            return Err(StorageError::HashMismatch {
                claimed: *hash,
                actual,
            });
        }

        let name = self.vault.object_name(hash);
        let key = format!("media/{name}");
        let sealed_len = crypto::sealed_len(len);
        self.put_sealed(&name, |opened| {
            let (name, key) = (&name, &key);
            async move {
                let header = crypto::header(opened.suite, &opened.prefix);
                let source = File::open(path)?;
                let reader = SealingReader::new(source, opened.cipher()?, header, name);
                self.inner
                    .put_stream(key, sealed_len, Box::new(reader))
                    .await
            }
        })
        .await
    }

    async fn get(&self, hash: &ContentHash) -> Result<Bytes, StorageError> {
        let name = self.vault.object_name(hash);
        let Some(sealed) = self.inner.get(&format!("media/{name}")).await? else {
            return Err(StorageError::NotFound { hash: *hash });
        };
        let corrupt = |detail: &str| {
            tracing::error!(store = self.name(), %hash, detail, "stored media is corrupt");
            StorageError::Corrupt {
                hash: *hash,
                detail: detail.to_owned(),
            }
        };
        let Some(envelope) = self.inner.get(&format!("keys/{name}")).await? else {
            return Err(corrupt("its wrapped data key is missing"));
        };
        let opened = match self.open_envelope(&name, &envelope).await {
            Ok(opened) => opened,
            Err(e) => return Err(corrupt(&e.detail()?)),
        };
        if crypto::parse_header(&sealed) != Some((opened.suite, opened.prefix)) {
            return Err(corrupt("its header does not match its data key"));
        }
        let cipher = opened.cipher()?;
        let plain = blocking(move || Ok(crypto::open_all(&cipher, &name, &sealed))).await?;
        let plain = plain.map_err(|e| corrupt(&e.to_string()))?;
        if ContentHash::of(&plain) != *hash {
            return Err(corrupt("its content does not match its hash"));
        }
        Ok(Bytes::from(plain))
    }

    async fn get_to_file(&self, hash: &ContentHash, path: &Path) -> Result<u64, StorageError> {
        let name = self.vault.object_name(hash);
        let staged = Staged(staging_path(path));
        let fetched = self
            .inner
            .get_to_file(&format!("media/{name}"), &staged.0)
            .await;
        let outcome = match fetched {
            Ok(Some(_)) => self.open_file(hash, &name, &staged.0, path).await,
            Ok(None) => Err(StorageError::NotFound { hash: *hash }),
            Err(e) => Err(e),
        };
        drop(staged);
        if outcome.is_err() {
            let _ = tokio::fs::remove_file(path).await;
        }
        outcome
    }

    async fn contains(&self, hash: &ContentHash) -> Result<bool, StorageError> {
        self.inner.contains(&self.media_key(hash)).await
    }

    async fn delete(&self, hash: &ContentHash) -> Result<(), StorageError> {
        self.inner.delete(&self.media_key(hash)).await?;
        self.inner.delete(&self.envelope_key(hash)).await
    }

    async fn sweep_unfinished(
        &self,
        older_than: std::time::Duration,
    ) -> Result<usize, StorageError> {
        self.inner.sweep_unfinished(older_than).await
    }
}
