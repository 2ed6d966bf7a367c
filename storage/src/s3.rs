//! The S3 backend: objects in a bucket of any S3-compatible server.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_credential_types::Credentials;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use md5::{Digest, Md5};
use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;

use crate::file::blocking;
use crate::{ObjectStore, StorageError};

/// Name of the static credentials provider, shown by the SDK in its own diagnostics.
const CREDENTIALS_SOURCE: &str = "flexwork-config";

/// Builds an S3 client for the server at `endpoint` from explicit settings only.
///
/// Nothing is read from the environment, profile files or an instance metadata service. The
/// SDK's default CRC32 request checksums are turned off (some S3-compatible servers reject
/// them): integrity is checked by this crate with the content hash instead. Set `path_style`
/// for servers that do not resolve bucket names as host names, such as one on loopback.
pub fn s3_client(
    endpoint: &str,
    region: &str,
    access_key_id: &str,
    secret_access_key: &str,
    path_style: bool,
) -> Client {
    let credentials = Credentials::new(
        access_key_id,
        secret_access_key,
        None,
        None,
        CREDENTIALS_SOURCE,
    );
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(10))
        .build();

    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version_latest()
        .endpoint_url(endpoint)
        .region(Region::new(region.to_owned()))
        .credentials_provider(credentials)
        .force_path_style(path_style)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .timeout_config(timeouts)
        .build();

    Client::from_conf(config)
}

/// Objects larger than this go up in parts.
const MULTIPART_THRESHOLD: u64 = 16 * 1024 * 1024;
/// Size of each part of a multipart upload (S3 requires at least 5 MiB for all but the last).
const PART_SIZE: u64 = 8 * 1024 * 1024;
/// The most parts S3 allows in one upload.
const MAX_PARTS: u64 = 10_000;
/// Key prefix of the notes that name unfinished multipart uploads.
const UPLOADS: &str = "uploads/";
/// Parts sent at the same time during a multipart upload.
const PARTS_IN_FLIGHT: usize = 2;

/// Objects kept in an S3 bucket, under the key `<prefix><key>`.
///
/// The bucket must exist; this store never creates or configures buckets. Small objects go
/// up in one `PutObject`; large ones stream through a multipart upload, a few parts in memory
/// at a time, and a multipart upload interrupted by a crash is picked up where it stopped by
/// the next put of the same key. Every request carries a `Content-MD5`, so the server checks
/// what it received before acknowledging it; the body itself is not signed (the signature
/// covers the headers, `Content-MD5` included), which spares a SHA-256 pass over every part.
#[derive(Debug, Clone)]
pub struct S3Store {
    name: String,
    client: Client,
    bucket: String,
    prefix: String,
    multipart_threshold: u64,
    part_size: u64,
    /// Parts sent over the store's life (parts found already stored are not counted).
    parts_sent: Arc<AtomicU64>,
}

impl S3Store {
    /// A store named `name` over `bucket`, with every key starting with `prefix`.
    pub fn new(
        name: impl Into<String>,
        client: Client,
        bucket: impl Into<String>,
        prefix: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            client,
            bucket: bucket.into(),
            prefix: prefix.into(),
            multipart_threshold: MULTIPART_THRESHOLD,
            part_size: PART_SIZE,
            parts_sent: Arc::default(),
        }
    }

    /// Sends objects larger than `threshold` bytes in parts of `part_size` bytes.
    pub fn with_multipart(mut self, threshold: u64, part_size: u64) -> Self {
        self.multipart_threshold = threshold;
        self.part_size = part_size.max(5 * 1024 * 1024);
        self
    }

    /// The bucket holding the objects.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The S3 key of the object `key`.
    pub fn s3_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn unavailable(&self, source: impl std::error::Error + Send + Sync + 'static) -> StorageError {
        StorageError::unavailable(&self.name, source)
    }

    async fn put_object(&self, key: &str, bytes: Bytes) -> Result<(), StorageError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.s3_key(key))
            .content_md5(md5_base64(&bytes))
            .body(ByteStream::from(bytes))
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| self.unavailable(e))?;
        tracing::debug!(store = %self.name, key, "stored object");

        Ok(())
    }

    /// Streams `body` up in parts, resuming an earlier unfinished upload of the same key.
    async fn put_multipart(
        &self,
        key: &str,
        len: u64,
        body: Box<dyn Read + Send>,
    ) -> Result<(), StorageError> {
        let s3_key = self.s3_key(key);
        let part_size = self.part_size.max(len.div_ceil(MAX_PARTS));
        let (upload_id, stored) = match self.find_upload(&s3_key).await? {
            Some(id) => {
                let parts = self.stored_parts(&s3_key, &id).await?;
                tracing::info!(store = %self.name, key, parts = parts.len(),
                    "resuming an unfinished multipart upload");
                (id, parts)
            }
            None => (self.create_upload(&s3_key).await?, HashMap::new()),
        };

        let (parts, sent) = self
            .send_parts(&s3_key, &upload_id, part_size, body, &stored)
            .await?;
        if sent != len {
            let message = format!("expected {len} bytes for {key} but the body had {sent}");
            return Err(StorageError::Io(std::io::Error::other(message)));
        }
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(parts))
            .build();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&s3_key)
            .upload_id(&upload_id)
            .multipart_upload(completed)
            .send()
            .await
            .map_err(|e| self.unavailable(e))?;
        self.delete(&format!("{UPLOADS}{key}")).await?;
        tracing::debug!(store = %self.name, key, len, "stored object in parts");

        Ok(())
    }

    /// Reads parts off `body` on a blocking thread and sends each one the server does not
    /// already hold, a few at a time; returns the parts in order and the bytes read.
    async fn send_parts(
        &self,
        s3_key: &str,
        upload_id: &str,
        part_size: u64,
        body: Box<dyn Read + Send>,
        stored: &HashMap<i32, (i64, Option<String>)>,
    ) -> Result<(Vec<CompletedPart>, u64), StorageError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let reader = tokio::task::spawn_blocking(move || read_parts(body, part_size, &tx));

        let mut done = Vec::new();
        let mut in_flight = JoinSet::new();
        let mut skipped = 0usize;
        while let Some(part) = rx.recv().await {
            let (number, bytes, md5): Part = part?;
            let etag = hex::encode(md5);
            // A part counts as held if its size matches and its ETag, when the server lists
            // one, is the MD5 of the part: the server checked that MD5 when it took the part,
            // and the sealed bytes of a blob come out the same on every attempt.
            let held = stored.get(&number).is_some_and(|(size, tag)| {
                *size == bytes.len() as i64 && tag.as_ref().is_none_or(|t| *t == etag)
            });
            if held {
                skipped += 1;
                done.push(completed_part(number, etag));
                continue;
            }
            if in_flight.len() >= PARTS_IN_FLIGHT {
                done.push(self.joined(in_flight.join_next().await)?);
            }
            in_flight.spawn(self.clone().upload_part(
                s3_key.to_owned(),
                upload_id.to_owned(),
                number,
                bytes,
                md5,
            ));
        }
        while let Some(joined) = in_flight.join_next().await {
            done.push(self.joined(Some(joined))?);
        }
        let sent = match reader.await {
            Ok(result) => result?,
            Err(e) => return Err(StorageError::Io(std::io::Error::other(e))),
        };
        if skipped > 0 {
            let store = self.name.as_str();
            tracing::info!(
                store,
                key = s3_key,
                skipped,
                "parts already stored were not sent again"
            );
        }
        done.sort_by_key(|p| p.part_number());

        Ok((done, sent))
    }

    fn joined(
        &self,
        joined: Option<Result<Result<CompletedPart, StorageError>, tokio::task::JoinError>>,
    ) -> Result<CompletedPart, StorageError> {
        match joined {
            Some(Ok(part)) => part,
            Some(Err(e)) => Err(StorageError::Io(std::io::Error::other(e))),
            None => Err(StorageError::Io(std::io::Error::other(
                "no part upload was running",
            ))),
        }
    }

    async fn upload_part(
        self,
        s3_key: String,
        upload_id: String,
        number: i32,
        bytes: Bytes,
        md5: [u8; 16],
    ) -> Result<CompletedPart, StorageError> {
        let output = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&s3_key)
            .upload_id(&upload_id)
            .part_number(number)
            .content_md5(BASE64.encode(md5))
            .body(ByteStream::from(bytes))
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| self.unavailable(e))?;
        let etag = output.e_tag().map_or_else(|| hex::encode(md5), trim_etag);
        self.parts_sent.fetch_add(1, Ordering::Relaxed);

        Ok(completed_part(number, etag))
    }

    /// Where the id of the unfinished multipart upload of `s3_key` is noted. The note is an
    /// object of its own (not every S3-compatible server lists multipart uploads).
    fn marker_key(&self, s3_key: &str) -> String {
        let key = s3_key.strip_prefix(&self.prefix).unwrap_or(s3_key);
        format!("{}{UPLOADS}{key}", self.prefix)
    }

    /// The id of the unfinished multipart upload of `s3_key`, if one is noted and the server
    /// still has it.
    async fn find_upload(&self, s3_key: &str) -> Result<Option<String>, StorageError> {
        // Not ListMultipartUploads: s3s-fs does not implement it.
        let marker = self.marker_key(s3_key);
        let request = self.client.get_object().bucket(&self.bucket).key(&marker);
        let id = match request.send().await {
            Ok(output) => {
                let body = output
                    .body
                    .collect()
                    .await
                    .map_err(|e| self.unavailable(e))?;
                String::from_utf8_lossy(&body.into_bytes())
                    .trim()
                    .to_owned()
            }
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(None);
            }
            Err(e) => return Err(self.unavailable(e)),
        };
        let alive = self
            .client
            .list_parts()
            .bucket(&self.bucket)
            .key(s3_key)
            .upload_id(&id)
            .send()
            .await;
        match alive {
            Ok(_) => Ok(Some(id)),
            Err(e) if e.as_service_error().and_then(|e| e.code()) == Some("NoSuchUpload") => {
                Ok(None)
            }
            Err(e) => Err(self.unavailable(e)),
        }
    }

    /// The parts an unfinished upload already holds: number → (size, ETag if the server
    /// lists one; s3s-fs does not).
    async fn stored_parts(
        &self,
        s3_key: &str,
        upload_id: &str,
    ) -> Result<HashMap<i32, (i64, Option<String>)>, StorageError> {
        let mut parts = HashMap::new();
        let mut marker = None;
        loop {
            let page = self
                .client
                .list_parts()
                .bucket(&self.bucket)
                .key(s3_key)
                .upload_id(upload_id)
                .set_part_number_marker(marker)
                .send()
                .await
                .map_err(|e| self.unavailable(e))?;
            for part in page.parts() {
                if let (Some(n), Some(size)) = (part.part_number(), part.size()) {
                    parts.insert(n, (size, part.e_tag().map(trim_etag)));
                }
            }
            match page.next_part_number_marker() {
                Some(next) if page.is_truncated() == Some(true) => marker = Some(next.to_owned()),
                _ => return Ok(parts),
            }
        }
    }

    /// Starts a multipart upload of `s3_key` and notes its id, so a later put can resume it.
    async fn create_upload(&self, s3_key: &str) -> Result<String, StorageError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(s3_key)
            .send()
            .await
            .map_err(|e| self.unavailable(e))?;
        let id = created.upload_id().map(str::to_owned).ok_or_else(|| {
            self.unavailable(std::io::Error::other("the server gave no upload id"))
        })?;
        let marker = self.marker_key(s3_key);
        let key = marker
            .strip_prefix(&self.prefix)
            .unwrap_or(&marker)
            .to_owned();
        self.put_object(&key, Bytes::from(id.clone())).await?;
        Ok(id)
    }

    /// Fetches one page of keys under `prefix`; returns the next page's token.
    async fn list_page(
        &self,
        prefix: &str,
        token: Option<String>,
        keys: &mut Vec<String>,
    ) -> Result<Option<String>, StorageError> {
        let page = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(self.s3_key(prefix))
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| self.unavailable(e))?;

        for object in page.contents() {
            let key = object.key().unwrap_or_default();
            keys.push(key.strip_prefix(&self.prefix).unwrap_or(key).to_owned());
        }

        Ok(page.next_continuation_token().map(str::to_owned))
    }
}

/// One part of a multipart upload: its number, bytes and MD5.
type Part = (i32, Bytes, [u8; 16]);

/// Reads `body` in parts of `part_size` bytes and hands each, with its number and MD5, to
/// `tx`; returns the number of bytes read.
fn read_parts(
    mut body: Box<dyn Read + Send>,
    part_size: u64,
    tx: &tokio::sync::mpsc::Sender<Result<Part, StorageError>>,
) -> Result<u64, StorageError> {
    let mut total = 0u64;
    for number in 1.. {
        let mut part = Vec::with_capacity(usize::try_from(part_size).unwrap_or(usize::MAX));
        (&mut body).take(part_size).read_to_end(&mut part)?;
        if part.is_empty() && number > 1 {
            break;
        }
        total += part.len() as u64;
        let short = (part.len() as u64) < part_size;
        let md5: [u8; 16] = Md5::digest(&part).into();
        if tx
            .blocking_send(Ok((number, Bytes::from(part), md5)))
            .is_err()
        {
            break;
        }
        if short {
            break;
        }
    }
    Ok(total)
}

fn completed_part(number: i32, etag: String) -> CompletedPart {
    CompletedPart::builder()
        .part_number(number)
        .e_tag(format!("\"{etag}\""))
        .build()
}

fn trim_etag(tag: &str) -> String {
    tag.trim_matches('"').to_ascii_lowercase()
}

fn md5_base64(bytes: &[u8]) -> String {
    BASE64.encode(Md5::digest(bytes))
}

#[async_trait]
impl ObjectStore for S3Store {
    fn name(&self) -> &str {
        &self.name
    }

    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StorageError> {
        self.put_object(key, bytes).await
    }

    async fn put_stream(
        &self,
        key: &str,
        len: u64,
        body: Box<dyn Read + Send>,
    ) -> Result<(), StorageError> {
        if len > self.multipart_threshold {
            return self.put_multipart(key, len, body).await;
        }
        let bytes = blocking(move || {
            let mut bytes = Vec::new();
            body.take(len + 1).read_to_end(&mut bytes)?;
            Ok(bytes)
        })
        .await?;
        if bytes.len() as u64 != len {
            let message = format!("expected {len} bytes for {key} but the body had more or fewer");
            return Err(StorageError::Io(std::io::Error::other(message)));
        }
        self.put_object(key, Bytes::from(bytes)).await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        let request = self.client.get_object().bucket(&self.bucket);
        let output = match request.key(self.s3_key(key)).send().await {
            Ok(output) => output,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(None);
            }
            Err(e) => return Err(self.unavailable(e)),
        };
        let body = output
            .body
            .collect()
            .await
            .map_err(|e| self.unavailable(e))?;

        Ok(Some(body.into_bytes()))
    }

    async fn get_to_file(&self, key: &str, path: &Path) -> Result<Option<u64>, StorageError> {
        let request = self.client.get_object().bucket(&self.bucket);
        let mut output = match request.key(self.s3_key(key)).send().await {
            Ok(output) => output,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(None);
            }
            Err(e) => return Err(self.unavailable(e)),
        };
        let mut file = tokio::fs::File::create(path).await?;
        let mut written = 0u64;
        loop {
            match output.body.try_next().await {
                Ok(Some(piece)) => {
                    file.write_all(&piece).await?;
                    written += piece.len() as u64;
                }
                Ok(None) => break,
                Err(e) => {
                    drop(file);
                    let _ = tokio::fs::remove_file(path).await;
                    return Err(self.unavailable(e));
                }
            }
        }
        file.sync_all().await?;
        Ok(Some(written))
    }

    async fn contains(&self, key: &str) -> Result<bool, StorageError> {
        let request = self.client.head_object().bucket(&self.bucket);
        match request.key(self.s3_key(key)).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(false),
            Err(e) => Err(self.unavailable(e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.s3_key(key))
            .send()
            .await
            .map_err(|e| self.unavailable(e))?;
        tracing::debug!(store = %self.name, key, "deleted object");

        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let mut keys = Vec::new();
        let mut token = self.list_page(prefix, None, &mut keys).await?;
        while let Some(next) = token {
            token = self.list_page(prefix, Some(next), &mut keys).await?;
        }
        keys.sort();

        Ok(keys)
    }

    fn parts_sent(&self) -> u64 {
        self.parts_sent.load(Ordering::Relaxed)
    }

    async fn sweep_unfinished(&self, older_than: Duration) -> Result<usize, StorageError> {
        let cutoff = std::time::SystemTime::now()
            .checked_sub(older_than)
            .unwrap_or(std::time::UNIX_EPOCH);
        let listed = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(self.s3_key(UPLOADS))
            .send()
            .await
            .map_err(|e| self.unavailable(e))?;
        let mut aborted = 0;
        for note in listed.contents() {
            let noted = note
                .last_modified()
                .and_then(|t| std::time::SystemTime::try_from(*t).ok());
            let (Some(marker), Some(noted)) = (note.key(), noted) else {
                continue;
            };
            if noted > cutoff {
                continue;
            }
            let key = marker.strip_prefix(&self.prefix).unwrap_or(marker);
            let object = key.strip_prefix(UPLOADS).unwrap_or(key);
            let s3_key = self.s3_key(object);
            if let Some(id) = self.find_upload(&s3_key).await? {
                self.client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&s3_key)
                    .upload_id(id)
                    .send()
                    .await
                    .map_err(|e| self.unavailable(e))?;
                aborted += 1;
            }
            self.delete(key).await?;
        }
        Ok(aborted)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn keys_carry_the_prefix_and_debug_hides_the_secret() {
        let secret = "s3cr3t-that-must-not-leak";
        let client = s3_client("http://127.0.0.1:9", "us-east-1", "flexwork", secret, true);
        let store = S3Store::new("shanghai-1", client, "evidence", "site-a/");

        let key = store.s3_key("media/abc");
        let shown = format!("{store:?}");

        assert_eq!(key, "site-a/media/abc");
        assert!(!shown.contains(secret), "{shown}");
    }
}
