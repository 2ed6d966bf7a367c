//! What the media benches share: the S3-compatible servers they talk to (taken from the
//! variables `scripts/s3-server` and `scripts/garage-server` print), fresh buckets, sealed
//! stores built as the server builds them, incompressible test files, and the peak memory
//! of the running process.

#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use flexwork_storage::{LocalKeyFile, ObjectStore, S3Store, SealedStore, Suite, Vault};
use flexwork_sync::{ContentHash, ContentHasher};

/// The region s3s-fs accepts any request in.
const S3S_REGION: &str = "us-east-1";

/// One S3-compatible server on loopback.
#[derive(Debug, Clone)]
pub struct S3Server {
    /// What the tables call it: `s3s-fs` or `garage`.
    pub label: &'static str,
    pub endpoint: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
}

impl S3Server {
    /// The s3s-fs server of `eval "$(scripts/s3-server PORT)"`, if its variables are set.
    pub fn s3s_from_env() -> Option<Self> {
        let var = |name: &str| std::env::var(format!("FLEXWORK_TEST_S3_{name}")).ok();
        Some(Self {
            label: "s3s-fs",
            endpoint: var("ENDPOINT")?,
            region: S3S_REGION.to_owned(),
            access_key: var("ACCESS_KEY")?,
            secret_key: var("SECRET_KEY")?,
        })
    }

    /// The Garage server of `eval "$(scripts/garage-server PORT)"`, if its variables are set.
    pub fn garage_from_env() -> Option<Self> {
        let var = |name: &str| std::env::var(format!("FLEXWORK_TEST_GARAGE_{name}")).ok();
        Some(Self {
            label: "garage",
            endpoint: var("ENDPOINT")?,
            region: var("REGION")?,
            access_key: var("ACCESS_KEY")?,
            secret_key: var("SECRET_KEY")?,
        })
    }

    /// The s3s-fs server, or a message saying how to start one and an exit.
    pub fn s3s_or_exit(bench: &str) -> Self {
        Self::s3s_from_env().unwrap_or_else(|| {
            println!("FLEXWORK_TEST_S3_* is not set; start s3s-fs first:");
            println!("    eval \"$(scripts/s3-server 9000)\"");
            println!("    cargo bench -p flexwork-tests --bench {bench}");
            println!("    kill \"$FLEXWORK_TEST_S3_PID\"");
            println!("(optionally also `eval \"$(scripts/garage-server)\"` for Garage)");
            std::process::exit(2);
        })
    }

    /// A client with the platform's own settings (`flexwork_storage::s3_client`).
    pub fn client(&self) -> aws_sdk_s3::Client {
        flexwork_storage::s3_client(
            &self.endpoint,
            &self.region,
            &self.access_key,
            &self.secret_key,
            true,
        )
    }

    /// Creates a bucket with a new random name and returns the name. The name is short:
    /// s3s-fs names a multipart upload's metadata file after the base64 of bucket and key, and
    /// fails the upload (500, "File name too long") once that passes 255 bytes.
    pub async fn fresh_bucket(&self, client: &aws_sdk_s3::Client) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let bucket = format!("fw-bench-{}", &id[..16]);
        client
            .create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .unwrap_or_else(|e| panic!("creating bucket {bucket} on {}: {e:?}", self.label));
        bucket
    }

    /// The server as a site of the platform's configuration.
    pub fn store_config(&self, name: &str, bucket: &str) -> flexwork_storage::StoreConfig {
        flexwork_storage::StoreConfig::S3 {
            name: name.to_owned(),
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            bucket: bucket.to_owned(),
            access_key_id: self.access_key.clone(),
            secret_access_key: self.secret_key.clone(),
            path_style: true,
            prefix: String::new(),
        }
    }
}

/// A sealed store over `objects` as the server builds one (AES-256-GCM), with its own key
/// file in `dir`.
pub fn sealed(dir: &Path, objects: Arc<dyn ObjectStore>) -> SealedStore {
    let suite = Suite::Aes256GcmSha256;
    let keys = LocalKeyFile::open_or_create(dir.join("keys.toml"), suite).expect("key file");
    let keys = Arc::new(keys);
    let (index_suite, index_key) = keys.index_key();
    let vault = Vault::new(suite, keys, index_suite, index_key);
    SealedStore::new(objects, Arc::new(vault))
}

/// A sealed store over a bucket of `server`.
pub fn sealed_s3(dir: &Path, server: &S3Server, bucket: &str, prefix: &str) -> SealedStore {
    let objects = S3Store::new(server.label, server.client(), bucket, prefix);
    sealed(dir, Arc::new(objects))
}

/// Incompressible bytes that are the same for the same seed: xorshift64*.
#[derive(Debug)]
pub struct Noise(u64);

impl Noise {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        self.fill(&mut buf);
        buf
    }
}

/// Writes `len` incompressible bytes to `path` a MiB at a time; returns their hash.
pub fn noise_file(path: &Path, len: u64, seed: u64) -> ContentHash {
    let mut noise = Noise::new(seed);
    let mut hasher = ContentHasher::new();
    let file = std::fs::File::create(path).expect("creating the test file");
    let mut out = std::io::BufWriter::new(file);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = usize::try_from(left.min(buf.len() as u64)).expect("a MiB fits");
        noise.fill(&mut buf[..n]);
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).expect("writing the test file");
        left -= n as u64;
    }
    out.flush().expect("writing the test file");
    hasher.finish()
}

/// A `/proc/self/status` field in KiB, such as `VmHWM` (peak resident memory) or `VmRSS`.
pub fn self_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(k, _)| *k == field)
        .and_then(|(_, v)| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Megabytes (10^6 bytes) per second.
pub fn mb_per_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs
}
