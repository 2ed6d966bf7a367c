//! The folder backend: one file per object, named by its hash, under two levels of shards.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use flexwork_sync::ContentHash;

use crate::file::{self, blocking};
use crate::{MediaStore, StorageError, check_claim, check_stored};

/// Media kept in a folder on local disk.
///
/// An object lives at `<root>/<hex 0..2>/<hex 2..4>/<full hex>`, which keeps each directory
/// small. A put writes a temporary file next to its target, syncs it, renames it into place
/// and syncs the directory, so an acknowledged put survives a crash and a reader never sees
/// a half-written object.
#[derive(Debug, Clone)]
pub struct LocalStore {
    name: String,
    root: PathBuf,
}

impl LocalStore {
    /// Opens (creating it if needed) the store rooted at `root`, named `"local"`.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self, StorageError> {
        let root = root.into();
        tokio::fs::create_dir_all(&root).await?;
        tracing::info!(root = %root.display(), "opened local media store");

        Ok(Self {
            name: "local".to_owned(),
            root,
        })
    }

    /// Renames the store, for example to the site it serves.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The folder holding the objects.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the object for `hash` is (or would be) kept.
    pub fn object_path(&self, hash: &ContentHash) -> PathBuf {
        let hex = hash.to_hex();
        self.root.join(&hex[..2]).join(&hex[2..4]).join(hex)
    }

    fn put_blocking(&self, hash: &ContentHash, bytes: &[u8]) -> Result<(), StorageError> {
        check_claim(hash, bytes)?;
        let target = self.prepare_target(hash)?;
        let (mut file, temp) = TempFile::create(&target)?;

        file.write_all(bytes)?;
        temp.commit(file, &target)?;

        Ok(())
    }

    fn put_file_blocking(&self, hash: &ContentHash, source: &Path) -> Result<(), StorageError> {
        let reader = File::open(source)?;
        let target = self.prepare_target(hash)?;
        let (mut file, temp) = TempFile::create(&target)?;

        let actual = file::copy_hashing(reader, &mut file)?;
        if actual != *hash {
            return Err(StorageError::HashMismatch {
                claimed: *hash,
                actual,
            });
        }
        temp.commit(file, &target)?;

        Ok(())
    }

    /// Creates the two shard directories of `hash` and returns the object's path.
    fn prepare_target(&self, hash: &ContentHash) -> io::Result<PathBuf> {
        let target = self.object_path(hash);
        let shard = target.parent().unwrap_or(&self.root);
        if let Some(first) = shard.parent() {
            create_dir_durably(first)?;
        }
        create_dir_durably(shard)?;

        Ok(target)
    }

    fn get_blocking(&self, hash: &ContentHash) -> Result<Bytes, StorageError> {
        let bytes = match fs::read(self.object_path(hash)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StorageError::NotFound { hash: *hash });
            }
            Err(e) => return Err(e.into()),
        };

        check_stored(&self.name, hash, Bytes::from(bytes))
    }

    fn delete_blocking(&self, hash: &ContentHash) -> Result<(), StorageError> {
        let path = self.object_path(hash);
        match fs::remove_file(&path) {
            Ok(()) => sync_parent(&path)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }

        Ok(())
    }

    fn list_blocking(&self) -> Result<Vec<ContentHash>, StorageError> {
        let mut hashes = Vec::new();
        for first in subdirs(&self.root)? {
            for shard in subdirs(&first)? {
                collect_objects(&shard, &mut hashes)?;
            }
        }

        Ok(hashes)
    }
}

#[async_trait]
impl MediaStore for LocalStore {
    fn name(&self) -> &str {
        &self.name
    }

    async fn put(&self, hash: &ContentHash, bytes: Bytes) -> Result<(), StorageError> {
        let (store, hash) = (self.clone(), *hash);
        blocking(move || store.put_blocking(&hash, &bytes)).await?;
        tracing::debug!(store = %self.name, %hash, "stored media");

        Ok(())
    }

    async fn put_file(&self, hash: &ContentHash, path: &Path) -> Result<(), StorageError> {
        let (store, hash, path) = (self.clone(), *hash, path.to_owned());
        blocking(move || store.put_file_blocking(&hash, &path)).await?;
        tracing::debug!(store = %self.name, %hash, "stored media file");

        Ok(())
    }

    async fn get(&self, hash: &ContentHash) -> Result<Bytes, StorageError> {
        let (store, hash) = (self.clone(), *hash);
        blocking(move || store.get_blocking(&hash)).await
    }

    async fn contains(&self, hash: &ContentHash) -> Result<bool, StorageError> {
        Ok(tokio::fs::try_exists(self.object_path(hash)).await?)
    }

    async fn delete(&self, hash: &ContentHash) -> Result<(), StorageError> {
        let (store, hash) = (self.clone(), *hash);
        blocking(move || store.delete_blocking(&hash)).await?;
        tracing::debug!(store = %self.name, %hash, "deleted media");

        Ok(())
    }

    async fn list(&self) -> Result<Vec<ContentHash>, StorageError> {
        let store = self.clone();
        blocking(move || store.list_blocking()).await
    }
}

/// A temporary file beside an object's target; removed on drop unless committed.
struct TempFile {
    path: Option<PathBuf>,
}

impl TempFile {
    const PREFIX: &'static str = ".tmp-";

    fn create(target: &Path) -> io::Result<(File, Self)> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}{}-{n}", Self::PREFIX, std::process::id());
        let path = target.with_file_name(name);

        let file = File::options().write(true).create_new(true).open(&path)?;

        Ok((file, Self { path: Some(path) }))
    }

    /// Makes the written file durable and moves it to `target`.
    fn commit(mut self, file: File, target: &Path) -> io::Result<()> {
        file.sync_all()?;
        drop(file);
        if let Some(path) = &self.path {
            fs::rename(path, target)?;
        }
        self.path = None;

        sync_parent(target)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let Some(path) = self.path.take() else {
            return;
        };
        if let Err(e) = fs::remove_file(&path) {
            tracing::warn!(path = %path.display(), error = %e, "failed to remove temporary file");
        }
    }
}

/// Creates `dir` if missing and, when it was created, syncs its parent to record the entry.
fn create_dir_durably(dir: &Path) -> io::Result<()> {
    match fs::create_dir(dir) {
        Ok(()) => sync_parent(dir),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Syncs the directory holding `path`, so a created, renamed or removed entry is durable.
fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

fn subdirs(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            dirs.push(entry.path());
        }
    }

    Ok(dirs)
}

/// Adds the hash of every object file in `shard`; skips temporary and foreign files.
fn collect_objects(shard: &Path, hashes: &mut Vec<ContentHash>) -> io::Result<()> {
    for entry in fs::read_dir(shard)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(TempFile::PREFIX) {
            continue;
        }
        match name.parse() {
            Ok(hash) => hashes.push(hash),
            Err(_) => {
                let path = entry.path();
                tracing::warn!(path = %path.display(), "skipping a file not named by a hash");
            }
        }
    }

    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    async fn fresh_store() -> (tempfile::TempDir, LocalStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path().join("media")).await.unwrap();
        (dir, store)
    }

    fn blob(text: &str) -> (ContentHash, Bytes) {
        let bytes = Bytes::from(text.as_bytes().to_vec());
        (ContentHash::of(&bytes), bytes)
    }

    #[tokio::test]
    async fn put_then_get_returns_the_same_bytes_at_the_sharded_path() {
        let (_dir, store) = fresh_store().await;
        let (hash, bytes) = blob("signature of worker 17");

        store.put(&hash, bytes.clone()).await.unwrap();

        assert_eq!(store.get(&hash).await.unwrap(), bytes);
        let hex = hash.to_hex();
        let expected = store.root().join(&hex[..2]).join(&hex[2..4]).join(&hex);
        assert_eq!(fs::read(expected).unwrap(), bytes);
    }

    #[tokio::test]
    async fn putting_twice_is_ok_and_leaves_no_temporary_files() {
        let (_dir, store) = fresh_store().await;
        let (hash, bytes) = blob("gps track");

        store.put(&hash, bytes.clone()).await.unwrap();
        store.put(&hash, bytes.clone()).await.unwrap();

        assert_eq!(store.get(&hash).await.unwrap(), bytes);
        let shard = store.object_path(&hash).parent().unwrap().to_owned();
        assert_eq!(fs::read_dir(shard).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn put_refuses_bytes_that_do_not_match_the_claimed_hash() {
        let (_dir, store) = fresh_store().await;
        let (claimed, _) = blob("the real photo");
        let (actual, other) = blob("something else");

        let err = store.put(&claimed, other).await.unwrap_err();

        assert!(
            matches!(err, StorageError::HashMismatch { claimed: c, actual: a }
                if c == claimed && a == actual),
            "{err:?}"
        );
        assert!(!store.contains(&claimed).await.unwrap());
        assert!(store.list().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_flipped_byte_on_disk_is_reported_as_corrupt() {
        let (_dir, store) = fresh_store().await;
        let (hash, bytes) = blob("photo of the finished shelf");
        store.put(&hash, bytes.clone()).await.unwrap();

        let path = store.object_path(&hash);
        let mut damaged = fs::read(&path).unwrap();
        damaged[3] ^= 0x01;
        fs::write(&path, &damaged).unwrap();

        let err = store.get(&hash).await.unwrap_err();
        let expected_actual = ContentHash::of(&damaged);
        assert!(
            matches!(err, StorageError::Corrupt { hash: h, actual }
                if h == hash && actual == expected_actual),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_missing_object_is_not_found_and_not_contained() {
        let (_dir, store) = fresh_store().await;
        let (hash, _) = blob("never stored");

        let err = store.get(&hash).await.unwrap_err();

        assert!(
            matches!(err, StorageError::NotFound { hash: h } if h == hash),
            "{err:?}"
        );
        assert!(!store.contains(&hash).await.unwrap());
    }

    #[tokio::test]
    async fn list_returns_every_stored_hash_and_ignores_temporary_files() {
        let (_dir, store) = fresh_store().await;
        let mut expected = Vec::new();
        for text in ["a", "b", "c"] {
            let (hash, bytes) = blob(text);
            store.put(&hash, bytes).await.unwrap();
            expected.push(hash);
        }
        let stray = store.object_path(&expected[0]).with_file_name(".tmp-1-1");
        fs::write(stray, b"half written").unwrap();

        let mut listed = store.list().await.unwrap();

        listed.sort();
        expected.sort();
        assert_eq!(listed, expected);
    }

    #[tokio::test]
    async fn delete_removes_the_object_and_is_idempotent() {
        let (_dir, store) = fresh_store().await;
        let (hash, bytes) = blob("to be removed");
        store.put(&hash, bytes).await.unwrap();

        store.delete(&hash).await.unwrap();
        store.delete(&hash).await.unwrap();

        assert!(!store.contains(&hash).await.unwrap());
        assert!(matches!(
            store.get(&hash).await,
            Err(StorageError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn put_file_copies_a_file_and_refuses_a_wrong_claim() {
        let (dir, store) = fresh_store().await;
        let source = dir.path().join("upload.bin");
        let content: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        fs::write(&source, &content).unwrap();
        let hash = ContentHash::of(&content);

        store.put_file(&hash, &source).await.unwrap();
        let (wrong, _) = blob("not this file");
        let err = store.put_file(&wrong, &source).await.unwrap_err();

        assert_eq!(store.get(&hash).await.unwrap(), content);
        assert!(matches!(err, StorageError::HashMismatch { .. }), "{err:?}");
        assert!(!store.contains(&wrong).await.unwrap());
        let wrong_shard = store.object_path(&wrong).parent().unwrap().to_owned();
        assert_eq!(fs::read_dir(wrong_shard).unwrap().count(), 0);
    }
}
