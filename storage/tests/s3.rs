//! The S3 backend against a real S3-compatible server (s3s-fs) on loopback.
//!
//! Start one and run these tests with:
//!
//! ```sh
//! eval "$(scripts/s3-server)"
//! cargo test -p flexwork-storage -- --include-ignored
//! kill "$FLEXWORK_TEST_S3_PID"
//! ```

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::path::{Path, PathBuf};

use bytes::Bytes;
use flexwork_storage::{
    ContentHash, MediaStore, S3Store, StorageError, StoreConfig, open_store, s3_client,
};

const REGION: &str = "us-east-1";

/// The S3 server the tests talk to, as printed by `scripts/s3-server`.
struct Server {
    endpoint: String,
    access_key: String,
    secret_key: String,
    data_dir: PathBuf,
}

impl Server {
    fn from_env() -> Self {
        Self {
            endpoint: required_env("FLEXWORK_TEST_S3_ENDPOINT"),
            access_key: required_env("FLEXWORK_TEST_S3_ACCESS_KEY"),
            secret_key: required_env("FLEXWORK_TEST_S3_SECRET_KEY"),
            data_dir: required_env("FLEXWORK_TEST_S3_DATA_DIR").into(),
        }
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

    async fn fresh_store(&self) -> S3Store {
        let bucket = self.fresh_bucket().await;
        S3Store::new("test-site", self.client(), bucket, "")
    }

    /// Where s3s-fs keeps the object `key` of `bucket` on its disk.
    fn object_file(&self, bucket: &str, key: &str) -> PathBuf {
        self.data_dir.join(bucket).join(key)
    }
}

fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run `eval \"$(scripts/s3-server)\"` before these tests")
    })
}

fn photo() -> (ContentHash, Bytes) {
    let bytes = std::fs::read(photo_path()).expect("fixture photo is readable");
    (ContentHash::of(&bytes), Bytes::from(bytes))
}

fn photo_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/photos/DSCN0010.jpg")
}

#[tokio::test]
#[ignore = "needs an S3-compatible server: see scripts/s3-server"]
async fn a_photo_round_trips_and_a_second_put_is_ok() {
    let server = Server::from_env();
    let store = server.fresh_store().await;
    let (hash, photo) = photo();

    // 1. The worker's photo is uploaded.
    store.put(&hash, photo.clone()).await.unwrap();
    assert!(store.contains(&hash).await.unwrap());

    // 2. The phone retries the same upload: accepted, nothing duplicated.
    store.put(&hash, photo.clone()).await.unwrap();
    assert_eq!(store.list().await.unwrap(), vec![hash]);

    // 3. An operator opens the evidence and sees exactly the uploaded bytes.
    let fetched = store.get(&hash).await.unwrap();
    assert_eq!(fetched.len(), photo.len());
    assert_eq!(fetched, photo);
}

#[tokio::test]
#[ignore = "needs an S3-compatible server: see scripts/s3-server"]
async fn a_missing_object_is_not_found_and_deleting_it_is_ok() {
    let server = Server::from_env();
    let store = server.fresh_store().await;
    let (hash, _) = photo();

    let err = store.get(&hash).await.unwrap_err();

    assert!(
        matches!(err, StorageError::NotFound { hash: h } if h == hash),
        "{err:?}"
    );
    assert!(!store.contains(&hash).await.unwrap());
    store.delete(&hash).await.unwrap();
}

#[tokio::test]
#[ignore = "needs an S3-compatible server: see scripts/s3-server"]
async fn bytes_that_do_not_match_their_hash_are_refused() {
    let server = Server::from_env();
    let store = server.fresh_store().await;
    let (hash, photo) = photo();
    let truncated = photo.slice(..photo.len() / 2);

    let err = store.put(&hash, truncated).await.unwrap_err();

    assert!(matches!(err, StorageError::HashMismatch { claimed, .. } if claimed == hash));
    assert!(store.list().await.unwrap().is_empty());
}

#[tokio::test]
#[ignore = "needs an S3-compatible server: see scripts/s3-server"]
async fn an_object_damaged_on_the_server_is_corrupt_never_returned() {
    let server = Server::from_env();
    let store = server.fresh_store().await;
    let (hash, photo) = photo();
    store.put(&hash, photo).await.unwrap();

    // 1. A byte of the object flips on the server's disk.
    let file = server.object_file(store.bucket(), &store.object_key(&hash));
    let mut damaged = std::fs::read(&file).expect("s3s-fs keeps the object as a plain file");
    damaged[1000] ^= 0x20;
    std::fs::write(&file, &damaged).unwrap();

    // 2. Reading it reports the damage instead of handing out the bad bytes.
    let result = store.get(&hash).await;
    let expected_actual = ContentHash::of(&damaged);
    match result {
        Err(StorageError::Corrupt { hash: h, actual }) => {
            assert_eq!(h, hash);
            assert_eq!(actual, expected_actual);
        }
        Ok(bytes) => panic!("damaged object was returned ({} bytes)", bytes.len()),
        Err(other) => panic!("expected a corrupt error, got {other:?}"),
    }
}

#[tokio::test]
#[ignore = "needs an S3-compatible server: see scripts/s3-server"]
async fn list_shows_every_object_until_it_is_deleted() {
    let server = Server::from_env();
    let store = server.fresh_store().await;
    let blobs: Vec<Bytes> = [&b"signature"[..], b"gps track", b"receipt"]
        .into_iter()
        .map(Bytes::from_static)
        .collect();
    let mut hashes: Vec<ContentHash> = blobs.iter().map(|b| ContentHash::of(b)).collect();
    for (hash, bytes) in hashes.iter().zip(&blobs) {
        store.put(hash, bytes.clone()).await.unwrap();
    }

    let mut listed = store.list().await.unwrap();
    store.delete(&hashes[0]).await.unwrap();
    let mut remaining = store.list().await.unwrap();

    listed.sort();
    remaining.sort();
    hashes.sort();
    assert_eq!(listed, hashes);
    assert_eq!(remaining.len(), 2);
    assert!(!remaining.contains(&ContentHash::of(b"signature")));
}

#[tokio::test]
#[ignore = "needs an S3-compatible server: see scripts/s3-server"]
async fn put_file_uploads_the_photo_from_disk() {
    let server = Server::from_env();
    let store = server.fresh_store().await;
    let (hash, photo) = photo();

    store.put_file(&hash, &photo_path()).await.unwrap();
    let wrong = ContentHash::of(b"another photo");
    let err = store.put_file(&wrong, &photo_path()).await.unwrap_err();

    assert_eq!(store.get(&hash).await.unwrap(), photo);
    assert!(matches!(err, StorageError::HashMismatch { .. }), "{err:?}");
    assert!(!store.contains(&wrong).await.unwrap());
}

#[tokio::test]
#[ignore = "needs an S3-compatible server: see scripts/s3-server"]
async fn a_store_opened_from_config_keeps_its_objects_under_its_prefix() {
    let server = Server::from_env();
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
    let store = open_store(&config).await.unwrap();
    let (hash, photo) = photo();

    store.put(&hash, photo.clone()).await.unwrap();

    let file = server.object_file(&bucket, &format!("site-a/media/{hash}"));
    assert_eq!(std::fs::read(file).unwrap(), photo);
    assert_eq!(store.list().await.unwrap(), vec![hash]);
    assert_eq!(store.name(), "shanghai-1");
}

#[tokio::test]
async fn a_server_that_does_not_answer_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = s3_client(&endpoint, REGION, "key", "secret", true);
    let store = S3Store::new("nowhere", client, "evidence", "");

    let err = store.get(&ContentHash::of(b"x")).await.unwrap_err();

    assert!(
        matches!(&err, StorageError::Unavailable { store, .. } if store == "nowhere"),
        "{err:?}"
    );
}
