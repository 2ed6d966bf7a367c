//! Encryption at rest on a local folder: what a holder of the folder sees, what a damaged or
//! swapped object does, and what a master key rotation changes.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use flexwork_storage::{
    ContentHash, Kms, KmsError, LocalKeyFile, LocalStore, MediaStore, ObjectStore, SealedStore,
    StorageError, Suite, Vault, WrappedKey,
};
use zeroize::Zeroizing;

struct Setup {
    dir: tempfile::TempDir,
    keys: Arc<LocalKeyFile>,
    objects: Arc<LocalStore>,
    store: SealedStore,
}

async fn setup(suite: Suite) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(LocalKeyFile::open_or_create(dir.path().join("keys.toml"), suite).unwrap());
    let objects = Arc::new(LocalStore::open(dir.path().join("site")).await.unwrap());
    let store = sealed(&keys, objects.clone(), suite);
    Setup {
        dir,
        keys,
        objects,
        store,
    }
}

fn sealed(keys: &Arc<LocalKeyFile>, objects: Arc<LocalStore>, suite: Suite) -> SealedStore {
    let (index_suite, index_key) = keys.index_key();
    let vault = Vault::new(suite, keys.clone(), index_suite, index_key);
    SealedStore::new(objects, Arc::new(vault))
}

fn photo_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/photos/DSCN0010.jpg")
}

fn photo() -> (ContentHash, Bytes) {
    let bytes = std::fs::read(photo_path()).unwrap();
    (ContentHash::of(&bytes), Bytes::from(bytes))
}

fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            out.push((path, bytes));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn a_photo_round_trips_in_both_suites_and_the_folder_shows_neither_it_nor_its_hash() {
    for suite in [Suite::Aes256GcmSha256, Suite::Sm4GcmSm3] {
        let s = setup(suite).await;
        let (hash, photo) = photo();

        s.store.put(&hash, photo.clone()).await.unwrap();

        assert_eq!(s.store.get(&hash).await.unwrap(), photo, "{suite}");
        let files = files_under(s.objects.root());
        assert_eq!(files.len(), 2, "one sealed object and one envelope");
        let hex = hash.to_hex();
        let middle = &photo[photo.len() / 2..photo.len() / 2 + 32];
        for (path, bytes) in &files {
            assert!(!path.to_string_lossy().contains(&hex), "{}", path.display());
            assert!(
                !contains(bytes, middle),
                "{} holds plaintext",
                path.display()
            );
            assert!(
                !contains(bytes, hex.as_bytes()),
                "{} holds the hash",
                path.display()
            );
            assert!(
                !contains(bytes, hash.as_bytes()),
                "{} holds the hash",
                path.display()
            );
        }
    }
}

#[tokio::test]
async fn put_file_seals_a_file_and_refuses_a_wrong_claim() {
    let s = setup(Suite::Aes256GcmSha256).await;
    let (hash, photo) = photo();

    s.store.put_file(&hash, &photo_path()).await.unwrap();
    let wrong = ContentHash::of(b"another photo");
    let err = s.store.put_file(&wrong, &photo_path()).await.unwrap_err();

    assert_eq!(s.store.get(&hash).await.unwrap(), photo);
    assert!(matches!(err, StorageError::HashMismatch { .. }), "{err:?}");
    assert!(!s.store.contains(&wrong).await.unwrap());
}

#[tokio::test]
async fn a_flipped_byte_a_lost_envelope_or_a_swapped_object_is_corrupt_and_a_put_repairs_it() {
    let s = setup(Suite::Aes256GcmSha256).await;
    let (hash, photo) = photo();
    let (other, other_bytes) = (
        ContentHash::of(b"a signature"),
        Bytes::from_static(b"a signature"),
    );
    s.store.put(&hash, photo.clone()).await.unwrap();
    s.store.put(&other, other_bytes).await.unwrap();
    let media = s.store.media_key(&hash);
    let envelope = s.store.envelope_key(&hash);
    let original = s.objects.get(&media).await.unwrap().unwrap();

    // A flipped byte in the sealed object.
    let mut flipped = original.to_vec();
    flipped[5000] ^= 0x01;
    s.objects.put(&media, flipped.into()).await.unwrap();
    let err = s.store.get(&hash).await.unwrap_err();
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err:?}");

    // Another blob's sealed bytes and envelope put in its place.
    let swapped = s
        .objects
        .get(&s.store.media_key(&other))
        .await
        .unwrap()
        .unwrap();
    let swapped_key = s
        .objects
        .get(&s.store.envelope_key(&other))
        .await
        .unwrap()
        .unwrap();
    s.objects.put(&media, swapped).await.unwrap();
    s.objects.put(&envelope, swapped_key).await.unwrap();
    let err = s.store.get(&hash).await.unwrap_err();
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err:?}");

    // The envelope lost.
    s.objects.put(&media, original).await.unwrap();
    s.objects.delete(&envelope).await.unwrap();
    let err = s.store.get(&hash).await.unwrap_err();
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err:?}");

    // A put of the good bytes repairs it.
    s.store.put(&hash, photo.clone()).await.unwrap();
    assert_eq!(s.store.get(&hash).await.unwrap(), photo);
}

#[tokio::test]
async fn putting_again_reuses_the_data_key_so_the_sealed_bytes_come_out_the_same() {
    let s = setup(Suite::Sm4GcmSm3).await;
    let (hash, photo) = photo();
    s.store.put(&hash, photo.clone()).await.unwrap();
    let media = s.store.media_key(&hash);
    let first = s.objects.get(&media).await.unwrap().unwrap();

    s.objects.delete(&media).await.unwrap();
    s.store.put_file(&hash, &photo_path()).await.unwrap();

    assert_eq!(s.objects.get(&media).await.unwrap().unwrap(), first);
}

#[tokio::test]
async fn rotation_rewraps_every_key_leaves_the_media_alone_and_lets_the_old_key_go() {
    let s = setup(Suite::Aes256GcmSha256).await;
    let blobs: Vec<Bytes> = (0..5).map(|i| Bytes::from(format!("track {i}"))).collect();
    for blob in &blobs {
        s.store
            .put(&ContentHash::of(blob), blob.clone())
            .await
            .unwrap();
    }
    let old_key = s.store.current_master_key().await.unwrap();
    let media_before = s.objects.list("media/").await.unwrap();
    let sealed_before: Vec<Bytes> = {
        let mut out = Vec::new();
        for key in &media_before {
            out.push(s.objects.get(key).await.unwrap().unwrap());
        }
        out
    };

    let new_key = s.keys.rotate(Suite::Sm4GcmSm3).unwrap();
    let report = s.store.rewrap_all().await.unwrap();
    let again = s.store.rewrap_all().await.unwrap();
    s.keys.retire(&old_key).unwrap();

    assert_eq!((report.checked, report.rewrapped, report.failed), (5, 5, 0));
    assert_eq!(again.rewrapped, 0);
    let counts = s.store.envelopes_by_master_key().await.unwrap();
    assert_eq!(counts.get(&new_key), Some(&5));
    assert_eq!(counts.len(), 1);
    for (key, before) in media_before.iter().zip(&sealed_before) {
        assert_eq!(
            &s.objects.get(key).await.unwrap().unwrap(),
            before,
            "{key} was rewritten"
        );
    }
    for blob in &blobs {
        assert_eq!(&s.store.get(&ContentHash::of(blob)).await.unwrap(), blob);
    }
}

#[tokio::test]
async fn an_envelope_wrapped_by_a_master_key_the_key_file_lacks_is_corrupt_and_a_put_rewrites_it() {
    let s = setup(Suite::Aes256GcmSha256).await;
    let (hash, photo) = photo();
    s.store.put(&hash, photo.clone()).await.unwrap();
    let master = s.store.current_master_key().await.unwrap();
    let stranger = Arc::new(
        LocalKeyFile::open_or_create(s.dir.path().join("other.toml"), Suite::Aes256GcmSha256)
            .unwrap(),
    );
    // Same objects, same names (the stranger is given this store's index key), wrong master.
    let (index_suite, index_key) = s.keys.index_key();
    let vault = Vault::new(Suite::Aes256GcmSha256, stranger, index_suite, index_key);
    let reader = SealedStore::new(s.objects.clone(), Arc::new(vault));

    let err = reader.get(&hash).await.unwrap_err();
    let to_file = s.dir.path().join("out.jpg");
    let err_to_file = reader.get_to_file(&hash, &to_file).await.unwrap_err();

    for err in [err, err_to_file] {
        let StorageError::Corrupt { detail, .. } = &err else {
            panic!("{err:?}");
        };
        assert!(detail.contains(&master), "{detail}");
        assert!(
            detail.contains("which the key file does not hold"),
            "{detail}"
        );
    }
    // A repair from a good copy writes a fresh envelope rather than reusing the unknown one.
    reader.put(&hash, photo.clone()).await.unwrap();
    assert_eq!(reader.get(&hash).await.unwrap(), photo);
    assert!(!to_file.exists());
}

/// A key manager that cannot be reached.
#[derive(Debug)]
struct Unreachable;

#[async_trait::async_trait]
impl Kms for Unreachable {
    async fn current_key(&self) -> Result<String, KmsError> {
        Err(KmsError::Unavailable("connection refused".into()))
    }

    async fn wrap(&self, _: &[u8], _: &[u8]) -> Result<WrappedKey, KmsError> {
        Err(KmsError::Unavailable("connection refused".into()))
    }

    async fn unwrap(&self, _: &WrappedKey, _: &[u8]) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        Err(KmsError::Unavailable("connection refused".into()))
    }
}

#[tokio::test]
async fn a_key_manager_that_cannot_be_reached_is_unavailable_and_a_put_leaves_the_envelope() {
    let s = setup(Suite::Aes256GcmSha256).await;
    let (hash, photo) = photo();
    s.store.put(&hash, photo.clone()).await.unwrap();
    let envelope = s.objects.get(&s.store.envelope_key(&hash)).await.unwrap();
    let (index_suite, index_key) = s.keys.index_key();
    let vault = Vault::new(
        Suite::Aes256GcmSha256,
        Arc::new(Unreachable),
        index_suite,
        index_key,
    );
    let cut_off = SealedStore::new(s.objects.clone(), Arc::new(vault));

    let err = cut_off.get(&hash).await.unwrap_err();
    let put_err = cut_off.put(&hash, photo.clone()).await.unwrap_err();

    assert!(matches!(err, StorageError::Unavailable { .. }), "{err:?}");
    assert!(
        matches!(put_err, StorageError::Unavailable { .. }),
        "{put_err:?}"
    );
    let after = s.objects.get(&s.store.envelope_key(&hash)).await.unwrap();
    assert_eq!(after, envelope);
    assert_eq!(s.store.get(&hash).await.unwrap(), photo);
}

/// An object store through which another writer of the same blob cuts in: right after the
/// first envelope written through it, that writer — which had found no envelope either —
/// writes its own envelope and sealed bytes, before the first writer writes its media. It
/// also records where objects are fetched to.
#[derive(Debug)]
struct RivalCutsIn {
    inner: Arc<LocalStore>,
    rival: Mutex<Option<(SealedStore, ContentHash, Bytes)>>,
    fetched_to: Mutex<Vec<PathBuf>>,
}

#[async_trait::async_trait]
impl ObjectStore for RivalCutsIn {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StorageError> {
        self.inner.put(key, bytes).await?;
        let rival = self.rival.lock().unwrap().take();
        if let Some((rival, hash, blob)) = rival.filter(|_| key.starts_with("keys/")) {
            // The rival looked before this envelope was written, so it found none.
            let ours = self.inner.get(key).await?.unwrap();
            self.inner.delete(key).await?;
            rival.put(&hash, blob).await.unwrap();
            assert_ne!(self.inner.get(key).await?.unwrap(), ours);
        }
        Ok(())
    }

    async fn put_stream(
        &self,
        key: &str,
        len: u64,
        body: Box<dyn Read + Send>,
    ) -> Result<(), StorageError> {
        self.inner.put_stream(key, len, body).await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        self.inner.get(key).await
    }

    async fn get_to_file(&self, key: &str, path: &Path) -> Result<Option<u64>, StorageError> {
        self.fetched_to.lock().unwrap().push(path.to_owned());
        self.inner.get_to_file(key, path).await
    }

    async fn contains(&self, key: &str) -> Result<bool, StorageError> {
        self.inner.contains(key).await
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.inner.delete(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        self.inner.list(prefix).await
    }
}

#[tokio::test]
async fn two_writers_creating_envelopes_for_one_blob_at_once_leave_a_copy_that_opens() {
    for by_file in [false, true] {
        let s = setup(Suite::Sm4GcmSm3).await;
        let (hash, photo) = photo();
        let (index_suite, index_key) = s.keys.index_key();
        let vault = Arc::new(Vault::new(
            Suite::Sm4GcmSm3,
            s.keys.clone(),
            index_suite,
            index_key,
        ));
        let rival = SealedStore::new(s.objects.clone(), vault.clone());
        let racing = Arc::new(RivalCutsIn {
            inner: s.objects.clone(),
            rival: Mutex::new(Some((rival, hash, photo.clone()))),
            fetched_to: Mutex::default(),
        });
        let writer = SealedStore::new(racing.clone(), vault);

        if by_file {
            writer.put_file(&hash, &photo_path()).await.unwrap();
        } else {
            writer.put(&hash, photo.clone()).await.unwrap();
        }

        assert!(racing.rival.lock().unwrap().is_none(), "the rival cut in");
        assert_eq!(
            s.store.get(&hash).await.unwrap(),
            photo,
            "by file: {by_file}"
        );
        assert_eq!(files_under(s.objects.root()).len(), 2);
    }
}

#[tokio::test]
async fn readers_of_one_blob_stage_it_apart_and_leave_no_staging_file_behind() {
    let s = setup(Suite::Aes256GcmSha256).await;
    let (hash, photo) = photo();
    s.store.put(&hash, photo.clone()).await.unwrap();
    let (index_suite, index_key) = s.keys.index_key();
    let vault = Vault::new(
        Suite::Aes256GcmSha256,
        s.keys.clone(),
        index_suite,
        index_key,
    );
    let watched = Arc::new(RivalCutsIn {
        inner: s.objects.clone(),
        rival: Mutex::default(),
        fetched_to: Mutex::default(),
    });
    let store = SealedStore::new(watched.clone(), Arc::new(vault));
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("photo.jpg");

    let first = store.get_to_file(&hash, &path).await;
    let second = store.get_to_file(&hash, &path).await;
    let missing = ContentHash::of(b"never stored");
    let err = store.get_to_file(&missing, &out.path().join("c.jpg")).await;
    let media = s.store.media_key(&hash);
    let mut damaged = s.objects.get(&media).await.unwrap().unwrap().to_vec();
    damaged[100] ^= 1;
    s.objects.put(&media, damaged.into()).await.unwrap();
    let corrupt = store.get_to_file(&hash, &out.path().join("d.jpg")).await;

    assert_eq!(first.unwrap(), photo.len() as u64);
    assert_eq!(second.unwrap(), photo.len() as u64);
    assert_eq!(std::fs::read(&path).unwrap(), photo);
    assert!(matches!(err, Err(StorageError::NotFound { .. })), "{err:?}");
    assert!(
        matches!(corrupt, Err(StorageError::Corrupt { .. })),
        "{corrupt:?}"
    );
    let staged = watched.fetched_to.lock().unwrap().clone();
    assert_eq!(staged.len(), 4);
    assert_ne!(
        staged[0], staged[1],
        "two reads of one blob to one path share a staging file"
    );
    for staged in &staged {
        assert_eq!(staged.parent(), Some(out.path()));
    }
    let left: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["photo.jpg"]);
}
