//! media_upload: upload throughput through the platform against a plain PUT of the same bytes.
//!
//! Measured: `SealedStore::put_file` of a 256 MiB file of incompressible bytes to a fresh
//! bucket through `S3Store`: the file is hashed (SHA-256), then read again, sealed on the fly
//! (AES-256-GCM in 64 KiB chunks) and sent as a multipart upload (8 MiB parts, two in
//! flight, a Content-MD5 on each), after the envelope of its data key.
//!
//! Reference: one `PutObject` of the same file with `ByteStream::from_path`, through the same
//! SDK client (built by `flexwork_storage::s3_client`) to the same server. Target: the
//! platform reaches at least 0.9 of the reference's MB/s. Each is run 3 times, interleaved,
//! and the median is reported; every upload writes a new key and is deleted afterwards.
//!
//! `from_path` reads the file 4 KiB at a time, which slows the plain PUT down; so the same
//! `PutObject` is also run with a 1 MiB read buffer, and the platform is held to the same
//! target against it in a second row. Context rows, not held to a target: the same file
//! through `S3Store::put_stream` (the multipart path without hashing and sealing), and
//! SHA-256 of the file alone.
//!
//! Needs s3s-fs (`eval "$(scripts/s3-server 9000)"`); Garage is measured too when the
//! variables of `eval "$(scripts/garage-server)"` are set.

mod common;
mod media;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use aws_sdk_s3::primitives::ByteStream;
use common::{Row, median, print_header, print_table};
use flexwork_storage::{MediaStore, ObjectStore, S3Store};
use flexwork_sync::{ContentHash, ContentHasher};
use media::{S3Server, mb_per_s, noise_file, sealed_s3};

const BENCH: &str = "media_upload";
/// Size of the uploaded file: 256 MiB.
const FILE_BYTES: u64 = 256 * 1024 * 1024;
/// Runs of each upload; the median is reported.
const RUNS: usize = 3;
/// Target: the platform's MB/s over the plain PUT's.
const TARGET_RATIO: f64 = 0.9;

fn main() {
    print_header(BENCH);
    let s3s = S3Server::s3s_or_exit(BENCH);
    let mut servers = vec![s3s];
    match S3Server::garage_from_env() {
        Some(garage) => servers.push(garage),
        None => println!("FLEXWORK_TEST_GARAGE_* not set: Garage is not measured\n"),
    }

    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("video.bin");
    let started = Instant::now();
    let hash = noise_file(&path, FILE_BYTES, 7);
    println!(
        "test file: {} bytes of noise, written in {:.1} s",
        FILE_BYTES,
        started.elapsed().as_secs_f64()
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut rows = Vec::new();
    for server in &servers {
        rows.extend(runtime.block_on(measure(server, dir.path(), &path, &hash)));
    }
    println!();
    print_table(&rows);
}

/// MB/s of every run of each way of uploading.
#[derive(Debug, Default)]
struct Runs {
    plain: Vec<f64>,
    sealed: Vec<f64>,
    multipart: Vec<f64>,
    buffered: Vec<f64>,
    hash_only: Vec<f64>,
}

async fn measure(server: &S3Server, dir: &Path, path: &Path, hash: &ContentHash) -> Vec<Row> {
    let client = server.client();
    let bucket = server.fresh_bucket(&client).await;
    println!("\n{}: {} bucket {bucket}", server.label, server.endpoint);
    let mut runs = Runs::default();

    for run in 0..RUNS {
        // Alternate which of the two compared uploads goes first.
        if run % 2 == 0 {
            runs.plain
                .push(plain_put(&client, &bucket, run, path).await);
            runs.sealed
                .push(sealed_put(server, dir, &bucket, run, path, hash).await);
        } else {
            runs.sealed
                .push(sealed_put(server, dir, &bucket, run, path, hash).await);
            runs.plain
                .push(plain_put(&client, &bucket, run, path).await);
        }
        runs.multipart
            .push(multipart_put(server, &bucket, run, path).await);
        runs.buffered
            .push(buffered_put(&client, &bucket, run, path).await);
        runs.hash_only.push(hash_only(path).await);
        println!(
            "  run {}: plain PUT {:.1} MB/s, put_file {:.1} MB/s, put_stream {:.1} MB/s, \
             plain PUT 1 MiB buffer {:.1} MB/s, SHA-256 alone {:.1} MB/s",
            run + 1,
            runs.plain[run],
            runs.sealed[run],
            runs.multipart[run],
            runs.buffered[run],
            runs.hash_only[run]
        );
    }

    let plain = median(&runs.plain);
    let sealed = median(&runs.sealed);
    let ratio = sealed / plain;
    let buffered = median(&runs.buffered);
    let reference = format!("{plain:.1} MB/s (plain PutObject, from_path)");
    let label = server.label;
    vec![
        Row {
            figure: format!("{label}: SealedStore::put_file, 256 MiB (median of {RUNS})"),
            value: format!("{sealed:.1} MB/s"),
            reference: reference.clone(),
            ratio: format!("{ratio:.2}"),
            target: format!("≥ {TARGET_RATIO}"),
            met: Some(ratio >= TARGET_RATIO),
        },
        Row::info(
            &format!("{label}: context: S3Store::put_stream, no sealing (median)"),
            format!("{:.1} MB/s", median(&runs.multipart)),
            reference,
        ),
        Row {
            figure: format!("{label}: the same put_file against a 1 MiB-buffered plain PUT"),
            value: format!("{sealed:.1} MB/s"),
            reference: format!("{buffered:.1} MB/s (plain PutObject, 1 MiB read buffer)"),
            ratio: format!("{:.2}", sealed / buffered),
            target: format!("≥ {TARGET_RATIO}"),
            met: Some(sealed / buffered >= TARGET_RATIO),
        },
        Row::info(
            &format!("{label}: context: SHA-256 of the file alone (median)"),
            format!("{:.1} MB/s", median(&runs.hash_only)),
            "no network".to_owned(),
        ),
    ]
}

/// One `PutObject` of the file, streamed from disk by the SDK; returns MB/s.
async fn plain_put(client: &aws_sdk_s3::Client, bucket: &str, run: usize, path: &Path) -> f64 {
    let key = format!("plain/{run}");
    let started = Instant::now();
    let body = ByteStream::from_path(path).await.expect("opening the file");
    client
        .put_object()
        .bucket(bucket)
        .key(&key)
        .body(body)
        .send()
        .await
        .expect("plain PutObject");
    let secs = started.elapsed().as_secs_f64();
    client
        .delete_object()
        .bucket(bucket)
        .key(&key)
        .send()
        .await
        .expect("deleting the plain object");
    mb_per_s(FILE_BYTES, secs)
}

/// The plain `PutObject` again, reading the file 1 MiB at a time; returns MB/s.
async fn buffered_put(client: &aws_sdk_s3::Client, bucket: &str, run: usize, path: &Path) -> f64 {
    let key = format!("buffered/{run}");
    let started = Instant::now();
    let body = ByteStream::read_from()
        .path(path)
        .buffer_size(1024 * 1024)
        .build()
        .await
        .expect("opening the file");
    let put = client.put_object().bucket(bucket).key(&key).body(body);
    put.send().await.expect("plain PutObject");
    let secs = started.elapsed().as_secs_f64();
    let delete = client.delete_object().bucket(bucket).key(&key);
    delete.send().await.expect("deleting the plain object");
    mb_per_s(FILE_BYTES, secs)
}

/// `SealedStore::put_file` of the file under a prefix of its own; returns MB/s.
async fn sealed_put(
    server: &S3Server,
    dir: &Path,
    bucket: &str,
    run: usize,
    path: &Path,
    hash: &ContentHash,
) -> f64 {
    let store = sealed_s3(dir, server, bucket, &format!("sealed-{run}/"));
    let started = Instant::now();
    store.put_file(hash, path).await.expect("put_file");
    let secs = started.elapsed().as_secs_f64();
    store
        .delete(hash)
        .await
        .expect("deleting the sealed object");
    mb_per_s(FILE_BYTES, secs)
}

/// `S3Store::put_stream` of the plain file: multipart with Content-MD5, no sealing.
async fn multipart_put(server: &S3Server, bucket: &str, run: usize, path: &Path) -> f64 {
    let store = Arc::new(S3Store::new(server.label, server.client(), bucket, ""));
    let key = format!("multipart/{run}");
    let file = std::fs::File::open(path).expect("opening the file");
    let started = Instant::now();
    store
        .put_stream(&key, FILE_BYTES, Box::new(file))
        .await
        .expect("put_stream");
    let secs = started.elapsed().as_secs_f64();
    store.delete(&key).await.expect("deleting the object");
    mb_per_s(FILE_BYTES, secs)
}

/// SHA-256 of the file read in 64 KiB chunks, as `put_file` hashes it first; returns MB/s.
async fn hash_only(path: &Path) -> f64 {
    let path = path.to_owned();
    let work = move || {
        use std::io::Read;
        let started = Instant::now();
        let mut file = std::fs::File::open(&path).expect("opening the file");
        let mut hasher = ContentHasher::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = file.read(&mut buf).expect("reading the file");
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        std::hint::black_box(hasher.finish());
        mb_per_s(FILE_BYTES, started.elapsed().as_secs_f64())
    };
    tokio::task::spawn_blocking(work).await.expect("hashing")
}
