//! Which store to open, as read from the server's configuration.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{LocalStore, ObjectStore, S3Store, StorageError, s3_client};

/// Where media is stored. Serialized with a `kind` field: `"local"` or `"s3"`.
///
/// `Debug` never shows the S3 secret key, so a configuration can be logged.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StoreConfig {
    /// A folder on local disk, created if missing; the store is named `"local"`.
    Local {
        /// The folder holding the objects.
        path: PathBuf,
    },

    /// A bucket on an S3-compatible server. The bucket must already exist.
    S3 {
        /// The store's label (for example its site), used in logs and errors.
        name: String,
        /// The server's base URL, such as `https://oss-cn-shanghai.aliyuncs.com`.
        endpoint: String,
        /// The region used to sign requests.
        region: String,
        /// The bucket holding the objects.
        bucket: String,
        /// The access key id of the static credentials.
        access_key_id: String,
        /// The secret key of the static credentials; never shown by `Debug`.
        secret_access_key: String,
        /// Address buckets as a path (`endpoint/bucket/key`) rather than a host name.
        #[serde(default)]
        path_style: bool,
        /// Prepended to every object key, to share a bucket; empty by default.
        #[serde(default)]
        prefix: String,
    },
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local { path } => f.debug_struct("Local").field("path", path).finish(),
            Self::S3 {
                name,
                endpoint,
                region,
                bucket,
                access_key_id,
                secret_access_key: _,
                path_style,
                prefix,
            } => f
                .debug_struct("S3")
                .field("name", name)
                .field("endpoint", endpoint)
                .field("region", region)
                .field("bucket", bucket)
                .field("access_key_id", access_key_id)
                .field("secret_access_key", &"<redacted>")
                .field("path_style", path_style)
                .field("prefix", prefix)
                .finish(),
        }
    }
}

/// Opens the store described by `config`.
///
/// A local store creates its folder. An S3 store only builds its client: it sends no request
/// until first used, so an unreachable server shows up as [`StorageError::Unavailable`] then.
pub async fn open_objects(config: &StoreConfig) -> Result<Arc<dyn ObjectStore>, StorageError> {
    match config {
        StoreConfig::Local { path } => Ok(Arc::new(LocalStore::open(path).await?)),
        StoreConfig::S3 {
            name,
            endpoint,
            region,
            bucket,
            access_key_id,
            secret_access_key,
            path_style,
            prefix,
        } => {
            let client = s3_client(
                endpoint,
                region,
                access_key_id,
                secret_access_key,
                *path_style,
            );
            tracing::info!(store = %name, endpoint, bucket, "opened s3 media store");
            Ok(Arc::new(S3Store::new(name, client, bucket, prefix)))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI-very-secret-key";

    fn s3_config() -> StoreConfig {
        StoreConfig::S3 {
            name: "shanghai-1".into(),
            endpoint: "http://127.0.0.1:9000".into(),
            region: "cn-east-2".into(),
            bucket: "evidence".into(),
            access_key_id: "flexwork".into(),
            secret_access_key: SECRET.into(),
            path_style: true,
            prefix: String::new(),
        }
    }

    #[test]
    fn debug_never_shows_the_secret_key() {
        let shown = format!("{:?} {:#?}", s3_config(), s3_config());

        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("<redacted>"));
        assert!(shown.contains("shanghai-1") && shown.contains("flexwork"));
    }

    #[test]
    fn reads_both_kinds_with_defaults_for_optional_fields() {
        let local: StoreConfig = serde_json::from_str(r#"{"kind":"local","path":"/m"}"#).unwrap();
        let s3: StoreConfig = serde_json::from_str(
            r#"{"kind":"s3","name":"shanghai-1","endpoint":"http://127.0.0.1:9000",
                "region":"cn-east-2","bucket":"evidence","access_key_id":"flexwork",
                "secret_access_key":"wJalrXUtnFEMI-very-secret-key","path_style":true}"#,
        )
        .unwrap();

        assert_eq!(local, StoreConfig::Local { path: "/m".into() });
        assert_eq!(s3, s3_config());
    }

    #[tokio::test]
    async fn open_objects_names_each_kind() {
        let dir = tempfile::tempdir().unwrap();
        let local = StoreConfig::Local {
            path: dir.path().join("media"),
        };

        let local = open_objects(&local).await.unwrap();
        let s3 = open_objects(&s3_config()).await.unwrap();

        assert_eq!(local.name(), "local");
        assert_eq!(s3.name(), "shanghai-1");
        assert!(dir.path().join("media").is_dir());
    }
}
