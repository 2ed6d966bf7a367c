//! Blocking file work: hashing in chunks (large media is never held in memory whole) and
//! running such work off the async threads.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use flexwork_sync::{ContentHash, ContentHasher};

use crate::StorageError;

const CHUNK: usize = 64 * 1024;

/// Copies everything from `reader` into `sink` and returns the hash of what was copied.
pub(crate) fn copy_hashing(mut reader: impl Read, mut sink: impl Write) -> io::Result<ContentHash> {
    let mut hasher = ContentHasher::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        sink.write_all(&buf[..n])?;
    }
    sink.flush()?;

    Ok(hasher.finish())
}

/// Hashes the file at `path` without keeping its content.
pub(crate) fn hash_file(path: &Path) -> io::Result<ContentHash> {
    copy_hashing(File::open(path)?, io::sink())
}

/// Runs file work on tokio's blocking pool; a panic in it is re-raised in the caller.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T, StorageError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StorageError> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(StorageError::Io(io::Error::other(e))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn hash_of_a_copy_matches_one_shot_hash_across_chunks() {
        let data: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i % 251) as u8).collect();
        let mut copy = Vec::new();

        let hash = copy_hashing(&data[..], &mut copy).unwrap();

        assert_eq!(hash, ContentHash::of(&data));
        assert_eq!(copy, data);
    }
}
