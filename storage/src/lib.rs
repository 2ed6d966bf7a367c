//! Content-addressed storage for evidence media (photos, GPS tracks, signatures).
//!
//! Every blob is stored under its [`ContentHash`], the SHA-256 of its bytes, so a key names
//! exactly one content and the same photo uploaded twice is stored once. The crate offers one
//! fallible async trait, [`MediaStore`], and two backends:
//!
//! - [`LocalStore`], a folder on the server's disk: the embedded default that needs no other
//!   service;
//! - [`S3Store`], a bucket on any S3-compatible server, reached through `aws-sdk-s3` with
//!   credentials taken only from the configuration.
//!
//! # How data flows
//!
//! A field worker's phone records media offline and names each blob by its hash. When the
//! phone syncs, the server receives the bytes with the claimed hash and calls
//! [`MediaStore::put`]. The store hashes the bytes itself and refuses them with
//! [`StorageError::HashMismatch`] if they do not match, so nothing is ever stored under a
//! wrong name. A put returns only once the bytes are durable: the local store syncs the file
//! and its directory, the S3 store waits for the server's answer.
//!
//! When the server verifies evidence or an operator opens it, it calls [`MediaStore::get`].
//! The store hashes what it read before handing it out; if disk or server damaged the object,
//! the caller gets [`StorageError::Corrupt`], never the damaged bytes.
//!
//! [`MediaStore::list`] enumerates what a store holds, for a scrub that re-reads every object.
//!
//! # Several stores
//!
//! Each store carries a [`MediaStore::name`] (a site label such as `"shanghai-1"`), and
//! [`open_store`] returns a shared trait object, so a caller can hold several stores and copy
//! between them. Replication across sites is built on top of this trait, not inside a backend.

mod config;
mod error;
mod file;
mod local;
mod s3;
pub mod sites;

use async_trait::async_trait;
use bytes::Bytes;
use std::path::Path;

pub use config::{StoreConfig, open_store};
pub use error::StorageError;
pub use flexwork_sync::ContentHash;
pub use local::LocalStore;
pub use s3::{S3Store, s3_client};
pub use sites::{
    SiteConfig, SiteDistance, SiteError, SitePlan, SiteRules, distance_km, plan_sites,
    plan_sites_with,
};

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

    /// Tells whether an object is stored under `hash`, without reading or verifying it.
    async fn contains(&self, hash: &ContentHash) -> Result<bool, StorageError>;

    /// Removes the object stored under `hash`; removing an absent object succeeds.
    async fn delete(&self, hash: &ContentHash) -> Result<(), StorageError>;

    /// Lists the hashes of every stored object, in no particular order.
    async fn list(&self) -> Result<Vec<ContentHash>, StorageError>;
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

/// Hands `bytes` out only if they hash to the key they were read from: the check after every get.
fn check_stored(store: &str, hash: &ContentHash, bytes: Bytes) -> Result<Bytes, StorageError> {
    let actual = ContentHash::of(&bytes);
    if actual != *hash {
        tracing::error!(store, %hash, %actual, "stored media is corrupt");
        return Err(StorageError::Corrupt {
            hash: *hash,
            actual,
        });
    }

    Ok(bytes)
}
