//! Storage for evidence media (photos, GPS tracks, signatures, video), encrypted at rest.
//!
//! Two layers:
//!
//! - [`ObjectStore`] keeps opaque objects under string keys. Two backends: [`LocalStore`], a
//!   folder on the server's disk (the embedded default, no other service needed), and
//!   [`S3Store`], a bucket on any S3-compatible server reached through `aws-sdk-s3` with
//!   credentials taken only from the configuration, large objects streamed in parts.
//! - [`MediaStore`] keeps blobs under their [`ContentHash`] (the SHA-256 of their bytes) and
//!   checks every byte it hands out. [`SealedStore`] implements it on any object store:
//!   each blob is sealed with its own data key, the data key is wrapped by a master key of a
//!   [`Kms`] ([`LocalKeyFile`] by default), and objects are named by a keyed hash, so the
//!   holder of a bucket learns neither the content nor its hash.
//!
//! # How data flows
//!
//! A field worker's phone records media offline and names each blob by its hash. When the
//! phone syncs, the server receives the bytes with the claimed hash and calls
//! [`MediaStore::put`] or [`MediaStore::put_file`]. The store hashes the bytes itself and
//! refuses them with [`StorageError::HashMismatch`] if they do not match, so nothing is ever
//! stored under a wrong name. A put returns only once the sealed bytes are durable: the local
//! store syncs the file and its directory, the S3 store waits for the server's answer to a
//! request carrying the bytes' MD5.
//!
//! When the server verifies evidence or an operator opens it, it calls [`MediaStore::get`]:
//! every chunk is authenticated while it is decrypted and the plaintext is hashed again; if
//! disk, server or an attacker changed the object, the caller gets [`StorageError::Corrupt`],
//! never the damaged bytes.
//!
//! # Several stores
//!
//! Each store carries a name (a site label such as `"shanghai-1"`), so a caller can hold
//! several stores and copy between them; [`sites`] checks that they are far enough apart.
//! Replication across sites is built on top of these traits, not inside a backend.

mod config;
pub mod crypto;
mod error;
mod file;
pub mod kms;
mod local;
mod s3;
mod sealed;
pub mod sites;

use async_trait::async_trait;
use bytes::Bytes;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

pub use config::{StoreConfig, open_objects};
pub use crypto::Suite;
pub use error::StorageError;
pub use flexwork_sync::ContentHash;
pub use kms::{Kms, KmsError, LocalKeyFile, WrappedKey};
pub use local::LocalStore;
pub use s3::{S3Store, s3_client};
pub use sealed::{RewrapReport, SealedStore, Vault};
pub use sites::{
    SiteConfig, SiteDistance, SiteError, SitePlan, SiteRules, distance_km, plan_sites,
    plan_sites_with,
};

/// A place that keeps opaque objects under string keys such as `media/4f2a…`: a folder or a
/// bucket. It knows nothing of hashes or keys; [`SealedStore`] builds media storage on it.
///
/// Every call can fail; no implementation drops an error. Implementations are cheap to share
/// behind an `Arc` and safe to call concurrently.
#[async_trait]
pub trait ObjectStore: Send + Sync + std::fmt::Debug {
    /// The store's label (a site or backend name), used in logs and errors.
    fn name(&self) -> &str;

    /// Stores `bytes` as `key`, replacing what was there, durably before returning.
    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StorageError>;

    /// Stores the `len` bytes that `body` yields as `key`, reading them off the async threads
    /// a piece at a time, so memory does not grow with `len`. Fails, storing nothing, if the
    /// body is not `len` bytes long.
    async fn put_stream(
        &self,
        key: &str,
        len: u64,
        body: Box<dyn Read + Send>,
    ) -> Result<(), StorageError>;

    /// Reads the object `key`; `None` if there is none.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StorageError>;

    /// Writes the object `key` to a new file at `path`, a piece at a time; returns its size,
    /// or `None` (and no file) if there is no such object.
    async fn get_to_file(&self, key: &str, path: &Path) -> Result<Option<u64>, StorageError>;

    /// Tells whether there is an object `key`, without reading it.
    async fn contains(&self, key: &str) -> Result<bool, StorageError>;

    /// Removes the object `key`; removing an absent object succeeds.
    async fn delete(&self, key: &str) -> Result<(), StorageError>;

    /// Lists the keys starting with `prefix` (such as `"media/"`), sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError>;

    /// Drops unfinished uploads started more than `older_than` ago; returns how many.
    async fn sweep_unfinished(&self, older_than: Duration) -> Result<usize, StorageError> {
        let _ = older_than;
        Ok(0)
    }

    /// Parts of multipart uploads sent so far by this store (0 for stores without them); parts
    /// an interrupted upload had already stored are not sent again and not counted.
    fn parts_sent(&self) -> u64 {
        0
    }
}

/// A place where media blobs are kept, keyed by their content hash.
///
/// Every call can fail; no implementation drops an error. Implementations are cheap to share
/// behind an `Arc` and safe to call concurrently.
#[async_trait]
pub trait MediaStore: Send + Sync + std::fmt::Debug {
    /// The store's label (a site or backend name), used in logs and errors.
    fn name(&self) -> &str;

    /// Stores `bytes` under `hash` once they are verified to hash to it.
    ///
    /// Putting an object that is already stored succeeds and rewrites the same bytes, which
    /// also repairs a damaged copy. Fails with [`StorageError::HashMismatch`] if the bytes do
    /// not hash to `hash`.
    async fn put(&self, hash: &ContentHash, bytes: Bytes) -> Result<(), StorageError>;

    /// Stores the file at `path` under `hash`, reading it in chunks rather than whole.
    ///
    /// Same guarantees as [`MediaStore::put`]; the file must not change during the call.
    async fn put_file(&self, hash: &ContentHash, path: &Path) -> Result<(), StorageError>;

    /// Reads the object stored under `hash` and checks that it still hashes to `hash`.
    ///
    /// Fails with [`StorageError::NotFound`] if absent and [`StorageError::Corrupt`] if the
    /// stored bytes are damaged.
    async fn get(&self, hash: &ContentHash) -> Result<Bytes, StorageError>;

    /// Writes the object stored under `hash` to a new file at `path`, verified, a piece at a
    /// time so memory does not grow with its size; returns its size. Same errors as
    /// [`MediaStore::get`]; on error no file is left at `path`.
    async fn get_to_file(&self, hash: &ContentHash, path: &Path) -> Result<u64, StorageError>;

    /// Tells whether an object is stored under `hash`, without reading or verifying it.
    async fn contains(&self, hash: &ContentHash) -> Result<bool, StorageError>;

    /// Removes the object stored under `hash`; removing an absent object succeeds.
    async fn delete(&self, hash: &ContentHash) -> Result<(), StorageError>;

    /// Drops unfinished uploads started more than `older_than` ago; returns how many.
    async fn sweep_unfinished(&self, older_than: Duration) -> Result<usize, StorageError> {
        let _ = older_than;
        Ok(0)
    }
}

/// Refuses `bytes` unless they hash to `claimed`: the check in front of every put.
fn check_claim(claimed: &ContentHash, bytes: &[u8]) -> Result<(), StorageError> {
    let actual = ContentHash::of(bytes);
    if actual != *claimed {
        return Err(StorageError::HashMismatch {
            claimed: *claimed,
            actual,
        });
    }

    Ok(())
}
