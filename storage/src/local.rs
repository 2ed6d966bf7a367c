//! The folder backend: one file per object, under two levels of shards.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::file::blocking;
use crate::{ObjectStore, StorageError};
use async_trait::async_trait;
use bytes::Bytes;

/// Objects kept in a folder on local disk.
///
/// The object `media/4f2a…` lives at `<root>/media/4f/2a/4f2a…`, which keeps each directory
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
        tracing::info!(root = %root.display(), "opened local object store");

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

    /// Where the object `key` is (or would be) kept.
    pub fn object_path(&self, key: &str) -> Result<PathBuf, StorageError> {
        let (dir, name) = split_key(key)?;
        let mut path = self.root.join(dir);
        if name.len() >= 4 {
            path = path.join(&name[..2]).join(&name[2..4]);
        }
        Ok(path.join(name))
    }

    /// Writes `body` as the object `key`, unless it is not `len` bytes long.
    fn put_blocking(&self, key: &str, len: u64, mut body: impl Read) -> Result<(), StorageError> {
        let target = self.prepare_target(key)?;
        let (mut file, temp) = TempFile::create(&target)?;

        let written = io::copy(&mut body, &mut file)?;
        if written != len {
            let message = format!("expected {len} bytes for {key} but the body had {written}");
            return Err(StorageError::Io(io::Error::other(message)));
        }
        temp.commit(file, &target)?;

        Ok(())
    }

    /// Creates the directories of `key` and returns the object's path.
    fn prepare_target(&self, key: &str) -> Result<PathBuf, StorageError> {
        let target = self.object_path(key)?;
        let mut missing = Vec::new();
        let mut dir = target.parent();
        while let Some(d) = dir {
            if d == self.root || d.exists() {
                break;
            }
            missing.push(d.to_owned());
            dir = d.parent();
        }
        for d in missing.iter().rev() {
            create_dir_durably(d)?;
        }

        Ok(target)
    }

    fn get_blocking(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        match fs::read(self.object_path(key)?) {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn delete_blocking(&self, key: &str) -> Result<(), StorageError> {
        let path = self.object_path(key)?;
        match fs::remove_file(&path) {
            Ok(()) => sync_parent(&path)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }

        Ok(())
    }

    fn list_blocking(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let dir = prefix.trim_end_matches('/');
        split_key(&format!("{dir}/x"))?;
        let mut keys = Vec::new();
        collect_objects(&self.root.join(dir), dir, &mut keys)?;
        keys.sort();

        Ok(keys)
    }
}

/// Splits `dir/name` after checking that it names a file inside the store.
fn split_key(key: &str) -> Result<(&str, &str), StorageError> {
    let valid = |part: &str| {
        !part.is_empty()
            && !part.starts_with('.')
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    match key.rsplit_once('/') {
        Some((dir, name)) if dir.split('/').all(valid) && valid(name) => Ok((dir, name)),
        _ => Err(StorageError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{key:?} is not a valid object key"),
        ))),
    }
}

#[async_trait]
impl ObjectStore for LocalStore {
    fn name(&self) -> &str {
        &self.name
    }

    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StorageError> {
        let (store, owned) = (self.clone(), key.to_owned());
        blocking(move || store.put_blocking(&owned, bytes.len() as u64, &bytes[..])).await?;
        tracing::debug!(store = %self.name, key, "stored object");

        Ok(())
    }

    async fn put_stream(
        &self,
        key: &str,
        len: u64,
        body: Box<dyn Read + Send>,
    ) -> Result<(), StorageError> {
        let (store, owned) = (self.clone(), key.to_owned());
        blocking(move || store.put_blocking(&owned, len, body)).await?;
        tracing::debug!(store = %self.name, key, len, "stored object from a stream");

        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        let (store, key) = (self.clone(), key.to_owned());
        blocking(move || store.get_blocking(&key)).await
    }

    async fn get_to_file(&self, key: &str, path: &Path) -> Result<Option<u64>, StorageError> {
        match tokio::fs::copy(self.object_path(key)?, path).await {
            Ok(len) => Ok(Some(len)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn contains(&self, key: &str) -> Result<bool, StorageError> {
        Ok(tokio::fs::try_exists(self.object_path(key)?).await?)
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let (store, owned) = (self.clone(), key.to_owned());
        blocking(move || store.delete_blocking(&owned)).await?;
        tracing::debug!(store = %self.name, key, "deleted object");

        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let (store, prefix) = (self.clone(), prefix.to_owned());
        blocking(move || store.list_blocking(&prefix)).await
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

/// Adds the key of every object file under `dir` (named `prefix`), skipping temporary files.
fn collect_objects(dir: &Path, prefix: &str, keys: &mut Vec<String>) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_dir() {
            collect_objects(&entry.path(), prefix, keys)?;
        } else if !name.starts_with(TempFile::PREFIX) {
            keys.push(format!("{prefix}/{name}"));
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

    #[tokio::test]
    async fn put_then_get_returns_the_same_bytes_at_the_sharded_path() {
        let (_dir, store) = fresh_store().await;
        let bytes = Bytes::from_static(b"signature of worker 17");

        store.put("media/4f2a99", bytes.clone()).await.unwrap();

        assert_eq!(
            store.get("media/4f2a99").await.unwrap(),
            Some(bytes.clone())
        );
        let expected = store.root().join("media/4f/2a/4f2a99");
        assert_eq!(fs::read(expected).unwrap(), bytes);
    }

    #[tokio::test]
    async fn putting_twice_is_ok_and_leaves_no_temporary_files() {
        let (_dir, store) = fresh_store().await;

        store
            .put("media/abcdef", Bytes::from_static(b"one"))
            .await
            .unwrap();
        store
            .put("media/abcdef", Bytes::from_static(b"two"))
            .await
            .unwrap();

        assert_eq!(store.get("media/abcdef").await.unwrap().unwrap(), "two");
        let shard = store.root().join("media/ab/cd");
        assert_eq!(fs::read_dir(shard).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn keys_that_would_leave_the_folder_are_refused() {
        let (_dir, store) = fresh_store().await;

        for key in [
            "../etc/passwd",
            "media/../../x",
            "noslash",
            "media/.hidden",
            "/abs/x",
        ] {
            let outcome = store.put(key, Bytes::from_static(b"x")).await;
            assert!(outcome.is_err(), "{key} was accepted");
        }
    }

    #[tokio::test]
    async fn a_missing_object_is_none_and_not_contained() {
        let (_dir, store) = fresh_store().await;

        assert_eq!(store.get("media/00ff00").await.unwrap(), None);
        assert!(!store.contains("media/00ff00").await.unwrap());
    }

    #[tokio::test]
    async fn list_returns_every_key_under_a_prefix_and_ignores_temporary_files() {
        let (_dir, store) = fresh_store().await;
        for key in ["media/aa0001", "media/bb0002", "keys/aa0001"] {
            store.put(key, Bytes::from_static(b"x")).await.unwrap();
        }
        fs::write(store.root().join("media/aa/00/.tmp-1-1"), b"half written").unwrap();

        let listed = store.list("media/").await.unwrap();

        assert_eq!(listed, ["media/aa0001", "media/bb0002"]);
        assert!(store.list("other/").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn delete_removes_the_object_and_is_idempotent() {
        let (_dir, store) = fresh_store().await;
        store
            .put("media/cafe01", Bytes::from_static(b"x"))
            .await
            .unwrap();

        store.delete("media/cafe01").await.unwrap();
        store.delete("media/cafe01").await.unwrap();

        assert!(!store.contains("media/cafe01").await.unwrap());
    }

    #[tokio::test]
    async fn put_stream_copies_a_reader_and_refuses_a_wrong_length() {
        let (_dir, store) = fresh_store().await;
        let content: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();

        let body = Box::new(std::io::Cursor::new(content.clone()));
        store
            .put_stream("media/beef01", 200_000, body)
            .await
            .unwrap();
        let short = Box::new(std::io::Cursor::new(vec![1u8; 10]));
        let err = store
            .put_stream("media/beef02", 11, short)
            .await
            .unwrap_err();

        assert_eq!(store.get("media/beef01").await.unwrap().unwrap(), content);
        assert!(matches!(err, StorageError::Io(_)), "{err:?}");
        assert!(!store.contains("media/beef02").await.unwrap());
    }
}
