//! media_memory: the peak memory of streaming a large file through the platform to S3.
//!
//! Measured: the peak resident memory (VmHWM) of a process that set up a tokio runtime, an
//! S3 client (`flexwork_storage::s3_client`) and a `SealedStore` over `S3Store`, made one
//! HEAD request, and then streamed a 500 MB file of incompressible bytes through
//! `SealedStore::put_file` (hash, seal on the fly, multipart upload in 8 MiB parts).
//!
//! Reference: the peak of the same process that set up the same and made the same HEAD
//! request but uploaded nothing ("idle"). Target: the stream's peak is under 64 MiB above
//! the idle peak, and flat in the file size. The same is measured for a 100 MB file (the
//! upload pipeline may not fill up on so few parts) and a 1,000 MB one; flat means the
//! 1,000 MB file's excess is less than 8 MiB above the 500 MB file's. Context row: a plain
//! `PutObject` of the 500 MB file with `ByteStream::from_path` in the same kind of process.
//!
//! Each measurement is its own process (this binary run again with
//! `FLEXWORK_BENCH_MEMORY_CHILD` set), so no allocation of one run lingers in the next; each
//! is repeated 3 times and the median peak is reported.
//!
//! Needs s3s-fs: `eval "$(scripts/s3-server 9000)"`.

mod common;
mod media;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use aws_sdk_s3::primitives::ByteStream;
use common::{Row, median, print_header, print_table};
use flexwork_storage::MediaStore;
use flexwork_sync::ContentHash;
use media::{S3Server, noise_file, sealed_s3, self_status_kib};

const BENCH: &str = "media_memory";
/// Set in the child processes: what to do (`idle`, `stream` or `plain`).
const CHILD_MODE: &str = "FLEXWORK_BENCH_MEMORY_CHILD";
const CHILD_FILE: &str = "FLEXWORK_BENCH_MEMORY_FILE";
const CHILD_HASH: &str = "FLEXWORK_BENCH_MEMORY_HASH";
const CHILD_BUCKET: &str = "FLEXWORK_BENCH_MEMORY_BUCKET";
/// The large file and the small one, in bytes.
const LARGE: u64 = 500_000_000;
const SMALL: u64 = 100_000_000;
const HUGE: u64 = 1_000_000_000;
/// Processes per measurement; the median peak is reported.
const RUNS: usize = 3;
/// Target: the stream's peak above the idle peak, in KiB.
const TARGET_KIB: f64 = 64.0 * 1024.0;
/// Target: the huge file's excess over the large file's, in KiB.
const FLAT_KIB: f64 = 8.0 * 1024.0;

fn main() {
    if let Ok(mode) = std::env::var(CHILD_MODE) {
        child(&mode);
        return;
    }
    print_header(BENCH);
    let server = S3Server::s3s_or_exit(BENCH);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let bucket = runtime.block_on(server.fresh_bucket(&server.client()));
    println!("{}: {} bucket {bucket}", server.label, server.endpoint);

    let dir = tempfile::tempdir().expect("temporary folder");
    let small = TestFile::write(dir.path(), SMALL, 1);
    let large = TestFile::write(dir.path(), LARGE, 2);
    let huge = TestFile::write(dir.path(), HUGE, 3);

    let mut idle = Vec::new();
    let mut stream_small = Vec::new();
    let mut stream_large = Vec::new();
    let mut stream_huge = Vec::new();
    let mut plain_large = Vec::new();
    for run in 1..=RUNS {
        idle.push(spawn("idle", &bucket, &large));
        stream_small.push(spawn("stream", &bucket, &small));
        stream_large.push(spawn("stream", &bucket, &large));
        stream_huge.push(spawn("stream", &bucket, &huge));
        plain_large.push(spawn("plain", &bucket, &large));
        println!(
            "run {run}: peak idle {} KiB, stream 100 MB {} KiB, stream 500 MB {} KiB, \
             stream 1,000 MB {} KiB, plain PUT 500 MB {} KiB",
            idle[run - 1],
            stream_small[run - 1],
            stream_large[run - 1],
            stream_huge[run - 1],
            plain_large[run - 1]
        );
    }
    let peaks = Peaks {
        idle: median(&idle),
        small: median(&stream_small),
        large: median(&stream_large),
        huge: median(&stream_huge),
        plain: median(&plain_large),
    };
    peaks.report();
}

/// Median peaks in KiB: idle, streaming 100, 500 and 1,000 MB, and the plain PUT of 500 MB.
#[derive(Debug)]
struct Peaks {
    idle: f64,
    small: f64,
    large: f64,
    huge: f64,
    plain: f64,
}

/// A file of noise and its hash.
#[derive(Debug)]
struct TestFile {
    path: PathBuf,
    hash: ContentHash,
    len: u64,
}

impl TestFile {
    fn write(dir: &Path, len: u64, seed: u64) -> Self {
        let path = dir.join(format!("video-{len}.bin"));
        let started = Instant::now();
        let hash = noise_file(&path, len, seed);
        let secs = started.elapsed().as_secs_f64();
        println!("test file: {len} bytes of noise, written in {secs:.1} s");
        Self { path, hash, len }
    }
}

/// Runs one child process in `mode` on `file`; returns its peak resident memory in KiB.
fn spawn(mode: &str, bucket: &str, file: &TestFile) -> f64 {
    let exe = std::env::current_exe().expect("the bench's own path");
    let output = Command::new(exe)
        .env(CHILD_MODE, mode)
        .env(CHILD_FILE, &file.path)
        .env(CHILD_HASH, file.hash.to_hex())
        .env(CHILD_BUCKET, bucket)
        .output()
        .expect("running a child process");
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        panic!(
            "child {mode} of {} bytes failed: {stdout}{stderr}",
            file.len
        );
    }
    let line = stdout.lines().find_map(|l| l.strip_prefix("peak_kib="));
    let line = line.unwrap_or_else(|| panic!("child {mode} printed no peak: {stdout}"));
    let mut fields = line.split_whitespace();
    let peak: f64 = fields
        .next()
        .and_then(|v| v.parse().ok())
        .expect("a peak in KiB");
    if let Some(detail) = fields.next() {
        println!("  child {mode}, {} bytes: {detail}", file.len);
    }
    peak
}

impl Peaks {
    fn report(&self) {
        let idle = self.idle;
        let reference = format!("{idle:.0} KiB idle peak");
        let mib = |kib: f64| format!("{:.1} MiB above idle", (kib - idle) / 1024.0);
        let stream = |size: &str, peak: f64| Row {
            figure: format!("peak while streaming {size} (put_file, median of {RUNS})"),
            value: mib(peak),
            reference: reference.clone(),
            ratio: format!("{:.2}", peak / idle),
            target: "< 64 MiB above idle".to_owned(),
            met: Some(peak - idle < TARGET_KIB),
        };
        let growth = self.huge - self.large;
        println!();
        print_table(&[
            stream("500 MB", self.large),
            stream("100 MB", self.small),
            stream("1,000 MB", self.huge),
            Row {
                figure: "flat: 1,000 MB excess − 500 MB excess".to_owned(),
                value: format!("{:.1} MiB", growth / 1024.0),
                reference: format!("{:.1} MiB (500 MB excess)", (self.large - idle) / 1024.0),
                ratio: format!("{:.2}", (self.huge - idle) / (self.large - idle)),
                target: "< 8 MiB".to_owned(),
                met: Some(growth < FLAT_KIB),
            },
            Row::info(
                "context: plain PutObject of 500 MB (from_path)",
                mib(self.plain),
                reference.clone(),
            ),
        ]);
    }
}

/// The child: sets up as a server would, uploads (or not), prints its peak memory.
fn child(mode: &str) {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let server = S3Server::s3s_from_env().expect("FLEXWORK_TEST_S3_* in the child");
    let path = PathBuf::from(var(CHILD_FILE));
    let hash: ContentHash = var(CHILD_HASH).parse().expect("a content hash");
    let bucket = var(CHILD_BUCKET);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temporary folder");
    let prefix = format!("p{}/", std::process::id());
    let store = sealed_s3(dir.path(), &server, &bucket, &prefix);
    let client = server.client();

    let secs = runtime.block_on(async {
        // The same first request in every mode, so the HTTP client is set up in all of them.
        assert!(!store.contains(&hash).await.expect("HEAD request"));
        let started = Instant::now();
        match mode {
            "idle" => {}
            "stream" => store.put_file(&hash, &path).await.expect("put_file"),
            "plain" => {
                let body = ByteStream::from_path(&path)
                    .await
                    .expect("opening the file");
                let key = format!("{prefix}plain");
                let put = client.put_object().bucket(&bucket).key(key).body(body);
                put.send().await.expect("plain PutObject");
            }
            other => panic!("unknown child mode {other}"),
        }
        started.elapsed().as_secs_f64()
    });
    let peak = self_status_kib("VmHWM").expect("VmHWM in /proc/self/status");
    let rss = self_status_kib("VmRSS").expect("VmRSS in /proc/self/status");
    println!("peak_kib={peak} rss_after={rss}KiB,upload={secs:.2}s");

    runtime.block_on(async {
        if mode == "stream" {
            store.delete(&hash).await.expect("deleting the upload");
        } else if mode == "plain" {
            let key = format!("{prefix}plain");
            let delete = client.delete_object().bucket(&bucket).key(key);
            delete.send().await.expect("deleting the upload");
        }
    });
}
