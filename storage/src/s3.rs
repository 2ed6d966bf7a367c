//! The S3 backend: one object per blob in a bucket of any S3-compatible server.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use aws_credential_types::Credentials;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use flexwork_sync::ContentHash;

use crate::file::{self, blocking};
use crate::{MediaStore, StorageError, check_claim, check_stored};

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

/// Media kept in an S3 bucket, under the key `<prefix>media/<hex>`.
///
/// The bucket must exist; this store never creates or configures buckets.
#[derive(Debug, Clone)]
pub struct S3Store {
    name: String,
    client: Client,
    bucket: String,
    prefix: String,
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
        }
    }

    /// The bucket holding the objects.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The object key of `hash`.
    pub fn object_key(&self, hash: &ContentHash) -> String {
        format!("{}{hash}", self.media_prefix())
    }

    fn media_prefix(&self) -> String {
        format!("{}media/", self.prefix)
    }

    fn unavailable(&self, source: impl std::error::Error + Send + Sync + 'static) -> StorageError {
        StorageError::unavailable(&self.name, source)
    }

    async fn upload(&self, hash: &ContentHash, body: ByteStream) -> Result<(), StorageError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.object_key(hash))
            .body(body)
            .send()
            .await
            .map_err(|e| self.unavailable(e))?;
        tracing::debug!(store = %self.name, %hash, "stored media");

        Ok(())
    }

    /// Fetches one page of keys under the media prefix; returns the next page's token.
    async fn list_page(
        &self,
        token: Option<String>,
        hashes: &mut Vec<ContentHash>,
    ) -> Result<Option<String>, StorageError> {
        let page = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(self.media_prefix())
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| self.unavailable(e))?;

        for object in page.contents() {
            self.collect_key(object.key().unwrap_or_default(), hashes);
        }

        Ok(page.next_continuation_token().map(str::to_owned))
    }

    fn collect_key(&self, key: &str, hashes: &mut Vec<ContentHash>) {
        let hex = key.strip_prefix(&self.media_prefix()).unwrap_or(key);
        match hex.parse() {
            Ok(hash) => hashes.push(hash),
            Err(_) => tracing::warn!(store = %self.name, key, "skipping a key not named by a hash"),
        }
    }
}

#[async_trait]
impl MediaStore for S3Store {
    fn name(&self) -> &str {
        &self.name
    }

    async fn put(&self, hash: &ContentHash, bytes: Bytes) -> Result<(), StorageError> {
        check_claim(hash, &bytes)?;
        self.upload(hash, ByteStream::from(bytes)).await
    }

    async fn put_file(&self, hash: &ContentHash, path: &Path) -> Result<(), StorageError> {
        let owned = path.to_owned();
        let actual = blocking(move || Ok(file::hash_file(&owned)?)).await?;
        if actual != *hash {
            return Err(StorageError::HashMismatch {
                claimed: *hash,
                actual,
            });
        }

        let body = ByteStream::from_path(path)
            .await
            .map_err(|e| StorageError::Io(std::io::Error::other(e)))?;
        self.upload(hash, body).await
    }

    async fn get(&self, hash: &ContentHash) -> Result<Bytes, StorageError> {
        let request = self.client.get_object().bucket(&self.bucket);
        let output = match request.key(self.object_key(hash)).send().await {
            Ok(output) => output,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Err(StorageError::NotFound { hash: *hash });
            }
            Err(e) => return Err(self.unavailable(e)),
        };
        let body = output
            .body
            .collect()
            .await
            .map_err(|e| self.unavailable(e))?;

        check_stored(&self.name, hash, body.into_bytes())
    }

    async fn contains(&self, hash: &ContentHash) -> Result<bool, StorageError> {
        let request = self.client.head_object().bucket(&self.bucket);
        match request.key(self.object_key(hash)).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(false),
            Err(e) => Err(self.unavailable(e)),
        }
    }

    async fn delete(&self, hash: &ContentHash) -> Result<(), StorageError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.object_key(hash))
            .send()
            .await
            .map_err(|e| self.unavailable(e))?;
        tracing::debug!(store = %self.name, %hash, "deleted media");

        Ok(())
    }

    async fn list(&self) -> Result<Vec<ContentHash>, StorageError> {
        let mut hashes = Vec::new();
        let mut token = self.list_page(None, &mut hashes).await?;
        while let Some(next) = token {
            token = self.list_page(Some(next), &mut hashes).await?;
        }

        Ok(hashes)
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
        let hash = ContentHash::of(b"abc");

        let key = store.object_key(&hash);
        let shown = format!("{store:?}");

        assert_eq!(key, format!("site-a/media/{}", hash.to_hex()));
        assert!(!shown.contains(secret), "{shown}");
    }
}
