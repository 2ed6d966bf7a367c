//! replication_lag: how long 1,000 uploads take to reach the second site, with no faults.
//!
//! Measured: an in-process server (`AppState::start`, SQLite, the replication worker and
//! queue as the server runs them) with two media sites, each a fresh bucket. 1,000 files of
//! 20–200 KiB of incompressible bytes are uploaded one after another through
//! `replication::store_upload`, the server's own path for a finished upload: sealed and put
//! at the primary, a copy job queued for the second site; then the blob's `media_objects`
//! row is written, as the upload handler does next. The worker copies each blob as in
//! production: reads and verifies it at the primary (media and envelope), seals it again
//! and puts it (envelope, then media) at the second site, and marks its job done. The lag of
//! one object is the time from its upload being acknowledged to its job being marked done
//! (the database's `updated_at`, in milliseconds); the total is from the first upload
//! starting to the last copy done. Every copy at the second site is counted by listing its
//! bucket afterwards.
//!
//! Reference: the same 1,000 files' bytes, already in a bucket on the first server, copied
//! by a plain sequential loop of `GetObject` + `PutObject` with the same SDK client to a
//! bucket on the second server (no sealing, no database). The ratio is the copy rate of the
//! queue (objects ÷ time from the first acknowledgement to the last copy) over the loop's.
//! The issue sets no target for this figure.
//!
//! Sites: both on s3s-fs (`eval "$(scripts/s3-server 9000)"`); then, if the variables of
//! `eval "$(scripts/garage-server)"` are set, s3s-fs as the primary and Garage as the second
//! site.

mod common;
mod media;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Row, fmt_duration, print_header, print_table, quantile};
use flexwork_server::{AppState, Config, now_ms, replication};
use flexwork_storage::{ContentHash, SiteConfig};
use media::{Noise, S3Server, noise_file};
use sqlx::Row as _;

const BENCH: &str = "replication_lag";
/// Objects uploaded.
const OBJECTS: usize = 1_000;
/// Smallest and largest object, in bytes.
const MIN_BYTES: u64 = 20 * 1024;
const MAX_BYTES: u64 = 200 * 1024;
/// Longest wait for the copies before the bench gives up and reports what it has.
const DEADLINE: Duration = Duration::from_secs(900);
/// The two sites: Shanghai and Beijing, about 1,070 km apart.
const PRIMARY: &str = "shanghai-1";
const SECOND: &str = "beijing-1";

fn main() {
    print_header(BENCH);
    let s3s = S3Server::s3s_or_exit(BENCH);
    let mut pairs = vec![(s3s.clone(), s3s.clone())];
    match S3Server::garage_from_env() {
        Some(garage) => pairs.push((s3s, garage)),
        None => println!("FLEXWORK_TEST_GARAGE_* not set: Garage is not measured\n"),
    }

    let dir = tempfile::tempdir().expect("temporary folder");
    let files = write_files(dir.path());
    let bytes: u64 = files.iter().map(|f| f.len).sum();
    println!("{OBJECTS} files, {bytes} bytes in all\n");

    let mut rows = Vec::new();
    for (first, second) in &pairs {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let label = format!("{} → {}", first.label, second.label);
        println!("== {label} ==");
        let reference = runtime.block_on(reference(first, second, &files));
        let queue = runtime.block_on(through_queue(first, second, &files, dir.path()));
        rows.extend(queue.rows(&label, &reference));
        runtime.shutdown_timeout(Duration::from_secs(5));
    }
    print_table(&rows);
}

/// One uploaded file.
#[derive(Debug)]
struct TestFile {
    path: PathBuf,
    hash: ContentHash,
    len: u64,
}

fn write_files(dir: &Path) -> Vec<TestFile> {
    let folder = dir.join("uploads");
    std::fs::create_dir_all(&folder).expect("uploads folder");
    let mut sizes = Noise::new(1_000);
    (0..OBJECTS)
        .map(|i| {
            let len = MIN_BYTES + sizes.next_u64() % (MAX_BYTES - MIN_BYTES + 1);
            let path = folder.join(format!("{i:04}.bin"));
            let hash = noise_file(&path, len, 10_000 + i as u64);
            TestFile { path, hash, len }
        })
        .collect()
}

/// What the plain copy loop did.
#[derive(Debug)]
struct Reference {
    total: Duration,
    per_copy: Vec<Duration>,
}

impl Reference {
    fn rate(&self) -> f64 {
        OBJECTS as f64 / self.total.as_secs_f64()
    }
}

/// Puts the plain bytes on the first server (untimed), then copies them one by one.
async fn reference(first: &S3Server, second: &S3Server, files: &[TestFile]) -> Reference {
    let from = first.client();
    let to = second.client();
    let source = first.fresh_bucket(&from).await;
    let target = second.fresh_bucket(&to).await;
    for (i, file) in files.iter().enumerate() {
        let bytes = Bytes::from(std::fs::read(&file.path).expect("reading a file"));
        let put = from.put_object().bucket(&source).key(format!("plain/{i}"));
        put.body(bytes.into()).send().await.expect("PutObject");
    }

    let started = Instant::now();
    let mut per_copy = Vec::with_capacity(files.len());
    for i in 0..files.len() {
        let one = Instant::now();
        let key = format!("plain/{i}");
        let got = from.get_object().bucket(&source).key(&key).send().await;
        let body = got.expect("GetObject").body.collect().await;
        let bytes = body.expect("reading the object").into_bytes();
        let put = to.put_object().bucket(&target).key(&key).body(bytes.into());
        put.send().await.expect("PutObject");
        per_copy.push(one.elapsed());
    }
    let total = started.elapsed();
    per_copy.sort();
    let reference = Reference { total, per_copy };
    println!(
        "reference: {OBJECTS} plain copies in {} ({:.1} objects/s)",
        fmt_duration(total),
        reference.rate()
    );
    reference
}

/// What the server's queue did.
#[derive(Debug)]
struct Queue {
    /// From the first upload starting to the last upload acknowledged.
    uploads: Duration,
    /// From the first upload starting to the last copy done.
    total: Duration,
    /// From the last upload acknowledged to the last copy done.
    drain: Duration,
    /// From the first acknowledgement to the last copy done.
    copying: Duration,
    /// Acknowledgement to copy done, per object, sorted.
    lags: Vec<Duration>,
    /// The worker's time per copy: from when it could start (job queued and the previous
    /// copy done) to done, sorted.
    service: Vec<Duration>,
    /// Copies done, copies listed at the second site, jobs that needed more than one attempt.
    done: usize,
    listed: usize,
    retried: usize,
}

async fn through_queue(
    first: &S3Server,
    second: &S3Server,
    files: &[TestFile],
    dir: &Path,
) -> Queue {
    let primary_bucket = first.fresh_bucket(&first.client()).await;
    let second_bucket = second.fresh_bucket(&second.client()).await;
    let data = tempfile::tempdir_in(dir).expect("server data folder");
    let config = Config {
        data_dir: data.path().to_path_buf(),
        listen: ([127, 0, 0, 1], 0).into(),
        sites: vec![
            site(first, PRIMARY, &primary_bucket, (31.23, 121.47)),
            site(second, SECOND, &second_bucket, (39.90, 116.40)),
        ],
        scrub_interval_secs: 0,
        ..Config::default()
    };
    let state = AppState::start(config).await.expect("starting the server");

    let started = Instant::now();
    let mut acked = HashMap::with_capacity(files.len());
    let mut first_ack = None;
    for file in files {
        replication::store_upload(&state, &file.hash, &file.path)
            .await
            .expect("store_upload");
        record_object(&state, file).await;
        acked.insert(file.hash.to_hex(), now_ms());
        first_ack.get_or_insert_with(Instant::now);
    }
    let uploads = started.elapsed();
    let last_ack = Instant::now();
    println!(
        "queue: {OBJECTS} uploads acknowledged in {}; waiting for the copies",
        fmt_duration(uploads)
    );

    let mut done = done_copies(&state).await;
    while done < files.len() && started.elapsed() < DEADLINE {
        tokio::time::sleep(Duration::from_millis(20)).await;
        done = done_copies(&state).await;
    }
    let end = Instant::now();
    let listed = state.sites.by_name(SECOND).expect("second site");
    let listed = listed.inner().list("media/").await.expect("listing").len();
    let first_ack = first_ack.unwrap_or(started);

    let (lags, service, retried) = lags(&state, &acked).await;
    Queue {
        uploads,
        total: end - started,
        drain: end.saturating_duration_since(last_ack),
        copying: end - first_ack,
        lags,
        service,
        done,
        listed,
        retried,
    }
}

fn site(server: &S3Server, name: &str, bucket: &str, (lat, lon): (f64, f64)) -> SiteConfig {
    SiteConfig {
        name: name.to_owned(),
        provider: server.label.to_owned(),
        latitude: lat,
        longitude: lon,
        store: server.store_config(name, bucket),
    }
}

/// Records the blob as the upload handler does right after `store_upload`; the worker reads
/// its size to copy small blobs in memory (blobs of unknown size go through a file).
async fn record_object(state: &AppState, file: &TestFile) {
    sqlx::query(
        "INSERT INTO media_objects (hash, size, media_type, created_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (hash) DO NOTHING",
    )
    .bind(file.hash.to_hex())
    .bind(i64::try_from(file.len).expect("a small file"))
    .bind("application/octet-stream")
    .bind(now_ms())
    .execute(&state.db.pool)
    .await
    .expect("recording the object");
}

async fn done_copies(state: &AppState) -> usize {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM replication_jobs WHERE site = $1 AND state = 'done'",
    )
    .bind(SECOND)
    .fetch_one(&state.db.pool)
    .await
    .expect("counting copies");
    let n: i64 = row.try_get("n").expect("a count");
    usize::try_from(n).unwrap_or(0)
}

/// Per-object lag and worker time from the jobs of the second site, and the retried jobs.
async fn lags(
    state: &AppState,
    acked: &HashMap<String, i64>,
) -> (Vec<Duration>, Vec<Duration>, usize) {
    let rows = sqlx::query(
        "SELECT hash, attempts, updated_at FROM replication_jobs \
         WHERE site = $1 AND state = 'done' ORDER BY updated_at",
    )
    .bind(SECOND)
    .fetch_all(&state.db.pool)
    .await
    .expect("reading the jobs");
    let ms = |n: i64| Duration::from_millis(u64::try_from(n).unwrap_or(0));
    let mut lags = Vec::with_capacity(rows.len());
    let mut service = Vec::with_capacity(rows.len());
    let mut retried = 0;
    let mut previous_done = i64::MIN;
    for row in &rows {
        let hash: String = row.try_get("hash").expect("hash");
        let attempts: i64 = row.try_get("attempts").expect("attempts");
        let done: i64 = row.try_get("updated_at").expect("updated_at");
        retried += usize::from(attempts > 1);
        if let Some(&ack) = acked.get(&hash) {
            lags.push(ms(done - ack));
            service.push(ms(done - ack.max(previous_done)));
        }
        previous_done = done;
    }
    lags.sort();
    service.sort();
    (lags, service, retried)
}

impl Queue {
    fn rate(&self) -> f64 {
        self.done as f64 / self.copying.as_secs_f64()
    }

    fn rows(&self, label: &str, reference: &Reference) -> Vec<Row> {
        println!(
            "queue: {} of {OBJECTS} copies done ({} listed at {SECOND}, {} retried), \
             the last {} after the last upload",
            self.done,
            self.listed,
            self.retried,
            fmt_duration(self.drain)
        );
        let reference_total = format!(
            "{} plain loop ({:.1} objects/s)",
            fmt_duration(reference.total),
            reference.rate()
        );
        let p = |q: f64| fmt_duration(quantile(&self.lags, q));
        let copy_ref = |q: f64| {
            format!(
                "{} (plain copy, p{:.0})",
                fmt_duration(quantile(&reference.per_copy, q)),
                q * 100.0
            )
        };
        let all_there = self.done == OBJECTS && self.listed == OBJECTS && self.retried == 0;
        vec![
            Row {
                figure: format!("{label}: all {OBJECTS} at the second site, from first upload"),
                value: fmt_duration(self.total),
                reference: reference_total.clone(),
                ratio: String::new(),
                target: "all copied, none retried".to_owned(),
                met: Some(all_there),
            },
            Row {
                figure: format!("{label}: copy rate (first ack → last copy)"),
                value: format!("{:.1} objects/s", self.rate()),
                reference: format!("{:.1} objects/s (plain loop)", reference.rate()),
                ratio: format!("{:.2}", self.rate() / reference.rate()),
                target: "none set".to_owned(),
                met: None,
            },
            Row::info(
                &format!("{label}: per-object lag p50"),
                p(0.5),
                String::new(),
            ),
            Row::info(
                &format!("{label}: per-object lag p99"),
                p(0.99),
                String::new(),
            ),
            Row::info(
                &format!("{label}: per-object lag max"),
                p(1.0),
                String::new(),
            ),
            Row::info(
                &format!("{label}: context: uploads acknowledged"),
                fmt_duration(self.uploads),
                String::new(),
            ),
            Row::info(
                &format!("{label}: context: drain after the last upload"),
                fmt_duration(self.drain),
                String::new(),
            ),
            Row::info(
                &format!("{label}: context: worker time per copy p50"),
                fmt_duration(quantile(&self.service, 0.5)),
                copy_ref(0.5),
            ),
            Row::info(
                &format!("{label}: context: worker time per copy p99"),
                fmt_duration(quantile(&self.service, 0.99)),
                copy_ref(0.99),
            ),
        ]
    }
}
