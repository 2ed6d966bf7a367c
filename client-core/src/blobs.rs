//! Content-addressed media on the device: `blobs/<sha-256 hex>`, written atomically.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use flexwork_sync::ContentHash;

use crate::ClientError;

const TEMP_PREFIX: &str = ".tmp-";
/// Temp files older than this were left by a killed process, not one still writing.
const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(600);

/// The `blobs/` folder of a device store.
#[derive(Debug, Clone)]
pub(crate) struct BlobStore {
    dir: PathBuf,
}

impl BlobStore {
    /// Opens the folder, creating it, and removes temp files a killed process left behind.
    pub(crate) fn open(dir: PathBuf) -> Result<Self, ClientError> {
        fs::create_dir_all(&dir)?;
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let is_temp = entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX);
            if is_temp && is_stale(&entry.metadata()?) {
                fs::remove_file(entry.path())?;
            }
        }

        Ok(Self { dir })
    }

    /// Stores `bytes` durably under their hash: temp file, fsync, rename, fsync folder.
    pub(crate) fn put(&self, bytes: &[u8]) -> Result<ContentHash, ClientError> {
        let hash = ContentHash::of(bytes);
        let path = self.path(&hash);
        if fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64) {
            return Ok(hash);
        }

        let temp = self
            .dir
            .join(format!("{TEMP_PREFIX}{}", uuid::Uuid::new_v4()));
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);

        fs::rename(&temp, &path)?;
        sync_dir(&self.dir)?;
        Ok(hash)
    }

    /// Where the blob of `hash` lives.
    pub(crate) fn path(&self, hash: &ContentHash) -> PathBuf {
        self.dir.join(hash.to_hex())
    }

    /// Up to `len` bytes of a blob from `offset`.
    pub(crate) fn read_chunk(
        &self,
        hash: &ContentHash,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, ClientError> {
        let mut file = File::open(self.path(hash)).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ClientError::MissingBlob(*hash),
            _ => ClientError::Io(e),
        })?;
        file.seek(SeekFrom::Start(offset))?;

        let mut chunk = Vec::with_capacity(len);
        file.take(len as u64).read_to_end(&mut chunk)?;
        Ok(chunk)
    }
}

fn is_stale(metadata: &fs::Metadata) -> bool {
    let age = metadata.modified().ok().and_then(|m| m.elapsed().ok());
    age.is_some_and(|age| age > STALE_TEMP)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}
