//! The S3 backend against real S3-compatible servers on loopback: s3s-fs, and Garage as the
//! second region when `scripts/test` started it (variables ending in `_R2`).
//!
//! Start them and run these tests with `scripts/test`, or by hand:
//!
//! ```sh
//! eval "$(scripts/s3-server)"
//! cargo test -p flexwork-storage -- --include-ignored
//! kill "$FLEXWORK_TEST_S3_PID"
//! ```

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use flexwork_storage::{
    ContentHash, LocalKeyFile, MediaStore, ObjectStore, S3Store, SealedStore, StorageError,
    StoreConfig, Suite, Vault, open_objects, s3_client,
};

const REGION: &str = "us-east-1";

/// One S3 server the tests talk to, as printed by `scripts/s3-server` or `scripts/garage-server`.
struct Server {
    endpoint: String,
    access_key: String,
    secret_key: String,
    data_dir: PathBuf,
    /// s3s-fs keeps each object as a plain file named by its key.
    plain_files: bool,
}

impl Server {
    fn from_env(suffix: &str) -> Option<Self> {
        let var = |base: &str| std::env::var(format!("{base}{suffix}")).ok();
        Some(Self {
            endpoint: var("FLEXWORK_TEST_S3_ENDPOINT")?,
            access_key: var("FLEXWORK_TEST_S3_ACCESS_KEY")?,
            secret_key: var("FLEXWORK_TEST_S3_SECRET_KEY")?,
            data_dir: var("FLEXWORK_TEST_S3_DATA_DIR")?.into(),
            plain_files: suffix.is_empty(),
        })
    }

    fn client(&self) -> aws_sdk_s3::Client {
        s3_client(
            &self.endpoint,
            REGION,
            &self.access_key,
            &self.secret_key,
            true,
        )
    }

    /// Creates a bucket with a random name, so every test starts empty.
    async fn fresh_bucket(&self) -> String {
        let bucket = format!("flexwork-test-{}", uuid::Uuid::new_v4().simple());
        let created = self.client().create_bucket().bucket(&bucket).send().await;
        created.unwrap_or_else(|e| panic!("cannot create bucket {bucket}: {e:?}"));
        bucket
    }

    async fn fresh_objects(&self) -> S3Store {
        let bucket = self.fresh_bucket().await;
        S3Store::new("test-site", self.client(), bucket, "")
    }
}

/// Every server `scripts/test` started: the first one is required, the second optional.
fn servers() -> Vec<Server> {
    let first = Server::from_env("").unwrap_or_else(|| {
        panic!("FLEXWORK_TEST_S3_* is not set: run `eval \"$(scripts/s3-server)\"` first")
    });
    let mut all = vec![first];
    all.extend(Server::from_env("_R2"));
    all
}

/// A sealed store over `objects`, with its own key file in `dir`.
fn sealed(dir: &Path, objects: Arc<dyn ObjectStore>) -> SealedStore {
    let keys = LocalKeyFile::open_or_create(dir.join("keys.toml"), Suite::Aes256GcmSha256);
    let keys = Arc::new(keys.unwrap());
    let (index_suite, index_key) = keys.index_key();
    let vault = Vault::new(Suite::Aes256GcmSha256, keys, index_suite, index_key);
    SealedStore::new(objects, Arc::new(vault))
}

fn photo() -> (ContentHash, Bytes) {
    let bytes = std::fs::read(photo_path()).expect("fixture photo is readable");
    (ContentHash::of(&bytes), Bytes::from(bytes))
}

fn photo_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/photos/DSCN0010.jpg")
}

/// `len` bytes that do not compress and are the same every run.
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// A reader that fails after `limit` bytes, as a process killed mid-upload would stop.
struct Interrupted {
    inner: std::io::Cursor<Vec<u8>>,
    limit: u64,
}

impl Read for Interrupted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.inner.position() >= self.limit {
            return Err(std::io::Error::other("the process was killed"));
        }
        let room = (self.limit - self.inner.position()) as usize;
        let n = buf.len().min(room);
        self.inner.read(&mut buf[..n])
    }
}

#[tokio::test]
#[ignore = "needs an S3-compatible server: see scripts/s3-server"]
async fn a_photo_round_trips_sealed_and_a_second_put_stores_nothing_more() {
    for server in servers() {
        let dir = tempfile::tempdir().unwrap();
        let objects = Arc::new(server.fresh_objects().await);
        let store = sealed(dir.path(), objects.clone());
        let (hash, photo) = photo();

        // 1. The worker's photo is uploaded; the phone retries the same upload.
        store.put(&hash, photo.clone()).await.unwrap();
        store.put(&hash, photo.clone()).await.unwrap();

        // 2. The bucket holds one sealed object and one envelope, neither named by the hash.
        let media = objects.list("media/").await.unwrap();
        assert_eq!(media, vec![store.media_key(&hash)]);
        assert_eq!(objects.list("keys/").await.unwrap().len(), 1);
        assert!(!media[0].contains(&hash.to_hex()));
        let sealed_bytes = objects.get(&media[0]).await.unwrap().unwrap();
        let middle = &photo[photo.len() / 2..photo.len() / 2 + 32];
        assert!(!sealed_bytes.windows(32).any(|w| w == middle));

        // 3. An operator opens the evidence and sees exactly the uploaded bytes.
        assert_eq!(
            store.get(&hash).await.unwrap(),
            photo,
            "{}",
            server.endpoint
        );
    }
}

#[tokio::test]
#[ignore = "needs an S3-compatible server: see scripts/s3-server"]
async fn a_missing_object_is_not_found_and_deleting_it_is_ok() {
    for server in servers() {
        let dir = tempfile::tempdir().unwrap();
        let store = sealed(dir.path(), Arc::new(server.fresh_objects().await));
        let (hash, _) = photo();

        let err = store.get(&hash).await.unwrap_err();

        assert!(
            matches!(err, StorageError::NotFound { hash: h } if h == hash),
            "{err:?}"
        );
        assert!(!store.contains(&hash).await.unwrap());
        store.delete(&hash).await.unwrap();
    }
}

#[tokio::test]
#[ignore = "needs an S3-compatible server: see scripts/s3-server"]
async fn bytes_that_do_not_match_their_hash_are_refused() {
    let server = &servers()[0];
    let dir = tempfile::tempdir().unwrap();
    let objects = Arc::new(server.fresh_objects().await);
    let store = sealed(dir.path(), objects.clone());
    let (hash, photo) = photo();
    let truncated = photo.slice(..photo.len() / 2);

    let err = store.put(&hash, truncated).await.unwrap_err();

    assert!(matches!(err, StorageError::HashMismatch { claimed, .. } if claimed == hash));
    assert!(objects.list("").await.unwrap().is_empty());
}

#[tokio::test]
#[ignore = "needs an S3-compatible server: see scripts/s3-server"]
async fn an_object_damaged_on_the_server_is_corrupt_never_returned() {
    for server in servers() {
        let dir = tempfile::tempdir().unwrap();
        let objects = Arc::new(server.fresh_objects().await);
        let store = sealed(dir.path(), objects.clone());
        let (hash, photo) = photo();
        store.put(&hash, photo).await.unwrap();

        // 1. A byte of the object flips: on the server's disk where it is a plain file, or
        //    through the API.
        let key = store.media_key(&hash);
        let mut damaged = objects.get(&key).await.unwrap().unwrap().to_vec();
        damaged[1000] ^= 0x20;
        if server.plain_files {
            let file = server.data_dir.join(objects.bucket()).join(&key);
            std::fs::write(&file, &damaged).unwrap();
        } else {
            objects.put(&key, damaged.into()).await.unwrap();
        }

        // 2. Reading it reports the damage instead of handing out the bad bytes.
        match store.get(&hash).await {
            Err(StorageError::Corrupt { hash: h, .. }) => assert_eq!(h, hash),
            Ok(bytes) => panic!("damaged object was returned ({} bytes)", bytes.len()),
            Err(other) => panic!("expected a corrupt error, got {other:?}"),
        }
    }
}

#[tokio::test]
#[ignore = "needs an S3-compatible server: see scripts/s3-server"]
async fn a_large_video_goes_up_in_parts_and_an_interrupted_upload_resumes() {
    for server in servers() {
        let objects = server.fresh_objects().await;
        let objects = objects.with_multipart(6 * 1024 * 1024, 5 * 1024 * 1024);
        let video = noise(23 * 1024 * 1024 + 123);
        let len = video.len() as u64;

        // 1. The upload stops after two and a half parts, as if the server were killed.
        let cut = Interrupted {
            inner: std::io::Cursor::new(video.clone()),
            limit: 12 * 1024 * 1024 + 512 * 1024,
        };
        let err = objects.put_stream("media/video", len, Box::new(cut)).await;
        assert!(err.is_err());
        assert!(!objects.contains("media/video").await.unwrap());
        let sent_before = objects.parts_sent();
        assert_eq!(sent_before, 2, "{}", server.endpoint);

        // 2. The next put of the same object sends only the parts that are missing.
        let whole = Box::new(std::io::Cursor::new(video.clone()));
        objects.put_stream("media/video", len, whole).await.unwrap();
        assert_eq!(objects.parts_sent() - sent_before, 3, "{}", server.endpoint);

        // 3. The object is whole, and no unfinished upload is left behind.
        let stored = objects.get("media/video").await.unwrap().unwrap();
        assert_eq!(stored.len(), video.len());
        assert!(stored == video, "the resumed object differs from the video");
        assert_eq!(objects.sweep_unfinished(Duration::ZERO).await.unwrap(), 0);
    }
}

#[tokio::test]
#[ignore = "needs an S3-compatible server: see scripts/s3-server"]
async fn a_large_file_is_sealed_on_the_fly_into_a_multipart_upload() {
    let server = &servers()[0];
    let dir = tempfile::tempdir().unwrap();
    let objects = server.fresh_objects().await;
    let objects = Arc::new(objects.with_multipart(6 * 1024 * 1024, 5 * 1024 * 1024));
    let store = sealed(dir.path(), objects.clone());
    let video = noise(17 * 1024 * 1024 + 5);
    let path = dir.path().join("video.mp4");
    std::fs::write(&path, &video).unwrap();
    let hash = ContentHash::of(&video);

    store.put_file(&hash, &path).await.unwrap();

    assert!(objects.parts_sent() >= 4);
    assert!(store.get(&hash).await.unwrap() == video);
}

#[tokio::test]
#[ignore = "needs an S3-compatible server: see scripts/s3-server"]
async fn unfinished_uploads_are_swept_once_old_enough() {
    let server = &servers()[0];
    let objects = server.fresh_objects().await;
    let objects = objects.with_multipart(6 * 1024 * 1024, 5 * 1024 * 1024);
    let video = noise(12 * 1024 * 1024);
    let cut = Interrupted {
        inner: std::io::Cursor::new(video.clone()),
        limit: 6 * 1024 * 1024,
    };
    let len = video.len() as u64;
    assert!(
        objects
            .put_stream("media/v", len, Box::new(cut))
            .await
            .is_err()
    );

    let young = objects
        .sweep_unfinished(Duration::from_secs(3600))
        .await
        .unwrap();
    let old = objects.sweep_unfinished(Duration::ZERO).await.unwrap();

    assert_eq!((young, old), (0, 1));
}

#[tokio::test]
#[ignore = "needs an S3-compatible server: see scripts/s3-server"]
async fn a_store_opened_from_config_keeps_its_objects_under_its_prefix() {
    let server = &servers()[0];
    let bucket = server.fresh_bucket().await;
    let config = StoreConfig::S3 {
        name: "shanghai-1".into(),
        endpoint: server.endpoint.clone(),
        region: REGION.into(),
        bucket: bucket.clone(),
        access_key_id: server.access_key.clone(),
        secret_access_key: server.secret_key.clone(),
        path_style: true,
        prefix: "site-a/".into(),
    };
    let objects = open_objects(&config).await.unwrap();

    objects
        .put("media/abc", Bytes::from_static(b"x"))
        .await
        .unwrap();

    let file = server.data_dir.join(&bucket).join("site-a/media/abc");
    assert_eq!(std::fs::read(file).unwrap(), b"x");
    assert_eq!(objects.list("media/").await.unwrap(), vec!["media/abc"]);
    assert_eq!(objects.name(), "shanghai-1");
}

#[tokio::test]
async fn a_server_that_does_not_answer_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = s3_client(&endpoint, REGION, "key", "secret", true);
    let store = S3Store::new("nowhere", client, "evidence", "");

    let err = store.get("media/x").await.unwrap_err();

    assert!(
        matches!(&err, StorageError::Unavailable { store, .. } if store == "nowhere"),
        "{err:?}"
    );
}
