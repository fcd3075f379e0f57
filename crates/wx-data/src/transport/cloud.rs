//! Builders for the stores that are not miner stores: local directories, S3 and GCS
//! (anonymous by default, or with object_store's standard configuration from the environment,
//! see [`SourceAccess`]), and a dispatcher from a URL or path.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};
use serde::{Deserialize, Serialize};

use super::error::TransportError;
use super::handle::{StoreHandle, StoreKind};
use super::http::{HttpStoreConfig, connect_miner_store};
use super::limits::SizeLimits;

/// Timeouts, retries and limits for public cloud sources (GFS on S3, ARCO-ERA5 and
/// WeatherBench2 on GCS).
#[derive(Debug, Clone)]
pub struct CloudConfig {
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Longest single request.
    pub request_timeout: Duration,
    /// Retries for 5xx and connection errors (`object_store` would do 10).
    pub max_retries: usize,
    /// Longest fetch of one key including retries.
    pub fetch_deadline: Duration,
    /// Size limits for [`StoreHandle::get_limited`].
    pub limits: SizeLimits,
    /// Credentials, endpoint, region and further object_store options.
    pub access: SourceAccess,
}

/// Where the credentials of an S3 or GCS source come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Credentials {
    /// Unsigned requests to a public bucket (the default; no credential is looked up).
    #[default]
    Anonymous,
    /// object_store's standard configuration from the environment:
    /// `AmazonS3Builder::from_env` (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT`, web identity, container and instance
    /// credentials) for `s3://`, `GoogleCloudStorageBuilder::from_env`
    /// (`GOOGLE_SERVICE_ACCOUNT`, `GOOGLE_APPLICATION_CREDENTIALS`, `GOOGLE_BEARER_TOKEN`, the
    /// metadata server) for `gs://`.
    Environment,
}

/// How a non-miner source on S3 or GCS is reached: a private mirror with credentials, an
/// S3-compatible endpoint, another region. The default is anonymous access to the public
/// endpoint.
///
/// Secrets never go here (the configuration is snapshotted into every run's row): option keys
/// that carry one (`aws_secret_access_key`, `aws_session_token`, `aws_access_key_id`,
/// SSE-C keys, `google_service_account_key`, `google_bearer_token`) are refused by
/// [`SourceAccess::validate_for`]; give them through the environment with
/// [`Credentials::Environment`].
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, documented::DocumentedFields)]
#[serde(default, deny_unknown_fields)]
pub struct SourceAccess {
    /// Where credentials come from (default: anonymous).
    pub credentials: Credentials,
    /// An S3-compatible endpoint, or a GCS base URL (a mirror or an emulator), `http(s)://…`.
    pub endpoint: Option<String>,
    /// The S3 region (default `us-east-1`, or the environment's with
    /// [`Credentials::Environment`]).
    pub region: Option<String>,
    /// Further object_store settings under their documented keys, e.g.
    /// `aws_virtual_hosted_style_request = "true"`, `google_service_account = "/path/key.json"`,
    /// `allow_http = "true"`.
    pub options: BTreeMap<String, String>,
}

impl std::fmt::Debug for SourceAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceAccess")
            .field("credentials", &self.credentials)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Which object store a location names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cloud {
    S3,
    Gcs,
    Other,
}

fn cloud_of(location: &str) -> Cloud {
    if location.starts_with("s3://") {
        Cloud::S3
    } else if location.starts_with("gs://") {
        Cloud::Gcs
    } else {
        Cloud::Other
    }
}

wx_model::message_error! {
    /// Access settings of a source that cannot work (an unknown option, a secret in the
    /// configuration, settings for a location that is not a bucket); the message says what to
    /// change.
    pub struct AccessError;
}

impl SourceAccess {
    /// Checks the settings for a source at `location` (`s3://…`, `gs://…`, a path or an
    /// `http(s)://` URL): the endpoint is an `http(s)` URL, every option key is one object_store
    /// knows for that store and carries no secret, and nothing is set for a location that is
    /// not a bucket. The message says what to change.
    pub fn validate_for(&self, location: &str) -> Result<(), AccessError> {
        let cloud = cloud_of(location);
        let is_default = self.credentials == Credentials::Anonymous
            && self.endpoint.is_none()
            && self.region.is_none()
            && self.options.is_empty();
        if cloud == Cloud::Other {
            return if is_default {
                Ok(())
            } else {
                Err(format!(
                    "credentials, endpoint, region and options apply to s3:// and gs:// \
                     sources only, not to `{}`",
                    wx_model::sanitize_message(location, &[])
                )
                .into())
            };
        }
        if let Some(endpoint) = &self.endpoint {
            let ok = url::Url::parse(endpoint)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !ok {
                return Err(format!(
                    "endpoint `{}` is not an http(s) URL",
                    wx_model::sanitize_message(endpoint, &[])
                )
                .into());
            }
        }
        if cloud == Cloud::Gcs && self.region.is_some() {
            return Err("region applies to s3:// sources only".to_owned().into());
        }
        for key in self.options.keys() {
            let secret = match cloud {
                Cloud::S3 => match key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                    Ok(k) => matches!(
                        k,
                        AmazonS3ConfigKey::AccessKeyId
                            | AmazonS3ConfigKey::SecretAccessKey
                            | AmazonS3ConfigKey::Token
                            | AmazonS3ConfigKey::Encryption(_)
                    ),
                    Err(_) => {
                        return Err(format!(
                            "`{key}` is not an object_store S3 option (e.g. \
                             aws_virtual_hosted_style_request, aws_request_payer, allow_http)"
                        )
                        .into());
                    }
                },
                Cloud::Gcs => match key.to_ascii_lowercase().parse::<GoogleConfigKey>() {
                    Ok(k) => matches!(
                        k,
                        GoogleConfigKey::ServiceAccountKey | GoogleConfigKey::BearerToken
                    ),
                    Err(_) => {
                        return Err(format!(
                            "`{key}` is not an object_store GCS option (e.g. \
                             google_service_account, google_application_credentials, allow_http)"
                        )
                        .into());
                    }
                },
                Cloud::Other => false,
            };
            if secret {
                return Err(format!(
                    "option `{key}` carries a secret: the configuration is stored with every \
                     run, so give it through the environment instead (credentials = \
                     \"environment\" and the standard AWS_* / GOOGLE_* variables)"
                )
                .into());
            }
        }
        Ok(())
    }

    /// An S3 builder for `bucket` with these settings applied: from the environment or
    /// unsigned, then region, endpoint and options.
    pub(crate) fn s3_builder(&self, bucket: &str) -> Result<AmazonS3Builder, AccessError> {
        let mut builder = match self.credentials {
            Credentials::Anonymous => AmazonS3Builder::new()
                .with_skip_signature(true)
                .with_region("us-east-1"),
            Credentials::Environment => AmazonS3Builder::from_env(),
        };
        builder = builder.with_bucket_name(bucket);
        if let Some(region) = &self.region {
            builder = builder.with_region(region);
        }
        if let Some(endpoint) = &self.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        for (key, value) in &self.options {
            let k: AmazonS3ConfigKey = key
                .to_ascii_lowercase()
                .parse()
                .map_err(|_| format!("`{key}` is not an object_store S3 option"))?;
            builder = builder.with_config(k, value);
        }
        Ok(builder)
    }

    /// A GCS builder for `bucket` with these settings applied.
    pub(crate) fn gcs_builder(
        &self,
        bucket: &str,
    ) -> Result<GoogleCloudStorageBuilder, AccessError> {
        let mut builder = match self.credentials {
            Credentials::Anonymous => GoogleCloudStorageBuilder::new().with_skip_signature(true),
            Credentials::Environment => GoogleCloudStorageBuilder::from_env(),
        };
        builder = builder.with_bucket_name(bucket);
        if let Some(endpoint) = &self.endpoint {
            builder = builder.with_config(GoogleConfigKey::BaseUrl, endpoint);
        }
        for (key, value) in &self.options {
            let k: GoogleConfigKey = key
                .to_ascii_lowercase()
                .parse()
                .map_err(|_| format!("`{key}` is not an object_store GCS option"))?;
            builder = builder.with_config(k, value);
        }
        Ok(builder)
    }

    /// Whether requests may use plain `http://` (an `http://` endpoint, or `allow_http`).
    pub(crate) fn allows_http(&self) -> bool {
        self.endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"))
            || self
                .options
                .get("allow_http")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

impl Default for CloudConfig {
    fn default() -> Self {
        CloudConfig {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(300),
            max_retries: 4,
            fetch_deadline: Duration::from_secs(900),
            limits: SizeLimits {
                store_budget_bytes: u64::MAX,
                ..SizeLimits::default()
            },
            access: SourceAccess::default(),
        }
    }
}

impl CloudConfig {
    fn client_options(&self) -> ClientOptions {
        ClientOptions::new()
            .with_connect_timeout(self.connect_timeout)
            .with_timeout(self.request_timeout)
            .with_allow_http(self.access.allows_http())
    }

    fn retry(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(200),
                max_backoff: Duration::from_secs(5),
                base: 2.0,
            },
            max_retries: self.max_retries,
            retry_timeout: self.fetch_deadline,
        }
    }
}

fn with_prefix(store: Arc<dyn ObjectStore>, prefix: &str) -> Arc<dyn ObjectStore> {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        store
    } else {
        Arc::new(PrefixStore::new(store, prefix))
    }
}

/// A local directory as a store (keys are paths relative to it).
pub fn local_dir(
    dir: impl AsRef<std::path::Path>,
    limits: SizeLimits,
) -> Result<StoreHandle, TransportError> {
    let dir = dir.as_ref();
    let label = dir.display().to_string();
    let store = LocalFileSystem::new_with_prefix(dir).map_err(|e| TransportError::InvalidUrl {
        url: label.clone(),
        reason: format!("not a usable directory: {e}"),
    })?;
    Ok(StoreHandle::new(
        Arc::new(store),
        label,
        StoreKind::LocalDir,
        limits,
        None,
    ))
}

/// An S3 bucket (e.g. `noaa-gfs-bdp-pds`), rooted at `prefix`, reached as `config.access`
/// says (anonymously, `us-east-1`, by default).
pub fn s3_bucket(
    bucket: &str,
    prefix: &str,
    config: &CloudConfig,
) -> Result<StoreHandle, TransportError> {
    let label = format!("s3://{bucket}/{}", prefix.trim_matches('/'));
    let client_error = |detail: String| TransportError::Client {
        store: label.clone(),
        detail: wx_model::sanitize_message(&detail, &[]),
    };
    let store = config
        .access
        .s3_builder(bucket)
        .map_err(|e| client_error(e.to_string()))?
        .with_retry(config.retry())
        .with_client_options(config.client_options())
        .build()
        .map_err(|e| client_error(e.to_string()))?;
    Ok(StoreHandle::new(
        with_prefix(Arc::new(store), prefix),
        label.clone(),
        StoreKind::S3,
        config.limits,
        Some(config.fetch_deadline),
    ))
}

/// An S3 bucket read anonymously in `region`, rooted at `prefix` (the endpoint and options of
/// `config.access` still apply).
pub fn s3_anonymous(
    bucket: &str,
    region: &str,
    prefix: &str,
    config: &CloudConfig,
) -> Result<StoreHandle, TransportError> {
    let mut config = config.clone();
    config.access.credentials = Credentials::Anonymous;
    config.access.region = Some(region.to_owned());
    s3_bucket(bucket, prefix, &config)
}

/// A GCS bucket (e.g. `gcp-public-data-arco-era5`, `weatherbench2`), rooted at `prefix`,
/// reached as `config.access` says (anonymously by default).
pub fn gcs_bucket(
    bucket: &str,
    prefix: &str,
    config: &CloudConfig,
) -> Result<StoreHandle, TransportError> {
    let label = format!("gs://{bucket}/{}", prefix.trim_matches('/'));
    let client_error = |detail: String| TransportError::Client {
        store: label.clone(),
        detail: wx_model::sanitize_message(&detail, &[]),
    };
    let store = config
        .access
        .gcs_builder(bucket)
        .map_err(|e| client_error(e.to_string()))?
        .with_retry(config.retry())
        .with_client_options(config.client_options())
        .build()
        .map_err(|e| client_error(e.to_string()))?;
    Ok(StoreHandle::new(
        with_prefix(Arc::new(store), prefix),
        label.clone(),
        StoreKind::Gcs,
        config.limits,
        Some(config.fetch_deadline),
    ))
}

/// A GCS bucket read anonymously, rooted at `prefix` (the endpoint of `config.access` still
/// applies).
pub fn gcs_anonymous(
    bucket: &str,
    prefix: &str,
    config: &CloudConfig,
) -> Result<StoreHandle, TransportError> {
    let mut config = config.clone();
    config.access.credentials = Credentials::Anonymous;
    gcs_bucket(bucket, prefix, &config)
}

/// Opens a data source (not a miner store) from what a user typed: a local path or `file://`
/// URL, `s3://bucket/prefix` or `gs://bucket/prefix` (reached as `cloud.access` says:
/// anonymously by default), or `http(s)://` (no token; the address policy and redirect refusal
/// of `http` still apply).
pub fn open_source(
    location: &str,
    cloud: &CloudConfig,
    http: &HttpStoreConfig,
) -> Result<StoreHandle, TransportError> {
    let split = |rest: &str| -> (String, String) {
        match rest.split_once('/') {
            Some((bucket, prefix)) => (bucket.to_owned(), prefix.to_owned()),
            None => (rest.to_owned(), String::new()),
        }
    };
    if let Some(rest) = location.strip_prefix("s3://") {
        let (bucket, prefix) = split(rest);
        s3_bucket(&bucket, &prefix, cloud)
    } else if let Some(rest) = location.strip_prefix("gs://") {
        let (bucket, prefix) = split(rest);
        gcs_bucket(&bucket, &prefix, cloud)
    } else if location.starts_with("http://") || location.starts_with("https://") {
        let handle = connect_miner_store(location, None, http)?;
        Ok(handle.with_kind(StoreKind::PublicHttp))
    } else {
        let path = location.strip_prefix("file://").unwrap_or(location);
        local_dir(path, cloud.limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatches_by_scheme_without_network() {
        let cloud = CloudConfig::default();
        let http = HttpStoreConfig::default();
        let s3 = open_source("s3://noaa-gfs-bdp-pds", &cloud, &http).unwrap();
        assert_eq!(s3.kind(), StoreKind::S3);
        let gcs = open_source(
            "gs://gcp-public-data-arco-era5/ar/full_37-1h-0p25deg-chunk-1.zarr-v3",
            &cloud,
            &http,
        )
        .unwrap();
        assert_eq!(gcs.kind(), StoreKind::Gcs);
        assert!(
            gcs.label()
                .starts_with("gs://gcp-public-data-arco-era5/ar/")
        );
        let dir = tempfile::tempdir().unwrap();
        let local = open_source(dir.path().to_str().unwrap(), &cloud, &http).unwrap();
        assert_eq!(local.kind(), StoreKind::LocalDir);
        assert!(open_source("/definitely/not/here", &cloud, &http).is_err());
    }

    #[test]
    fn access_settings_are_checked_and_secrets_refused() {
        let mut a = SourceAccess::default();
        a.validate_for("s3://bucket/x").unwrap();
        a.validate_for("/local/dir").unwrap();
        a.options
            .insert("aws_virtual_hosted_style_request".into(), "true".into());
        a.endpoint = Some("http://127.0.0.1:9000".into());
        a.validate_for("s3://mirror/era5").unwrap();
        assert!(a.allows_http());
        let e = a.validate_for("/local/dir").unwrap_err().to_string();
        assert!(e.contains("s3:// and gs://"), "{e}");
        let e = a.validate_for("gs://bucket").unwrap_err().to_string();
        assert!(e.contains("aws_virtual_hosted_style_request"), "{e}");
        for secret in [
            "aws_secret_access_key",
            "AWS_SESSION_TOKEN",
            "aws_access_key_id",
        ] {
            let mut s = SourceAccess::default();
            s.options.insert(secret.into(), "x".into());
            let e = s.validate_for("s3://b").unwrap_err().to_string();
            assert!(e.contains("environment"), "{e}");
        }
        for secret in ["google_service_account_key", "google_bearer_token"] {
            let mut s = SourceAccess::default();
            s.options.insert(secret.into(), "x".into());
            assert!(s.validate_for("gs://b").is_err());
        }
        let mut s = SourceAccess::default();
        s.options
            .insert("google_service_account".into(), "/etc/key.json".into());
        s.validate_for("gs://b").unwrap();
        s.endpoint = Some("ftp://mirror".into());
        assert!(
            s.validate_for("gs://b")
                .unwrap_err()
                .to_string()
                .contains("http(s)")
        );
        let mut s = SourceAccess::default();
        s.options
            .insert("aws_secret_access_key".into(), "hunter2".into());
        assert!(
            !format!("{s:?}").contains("hunter2"),
            "option values never print"
        );
    }

    #[test]
    fn environment_credentials_build_without_network() {
        let config = CloudConfig {
            access: SourceAccess {
                credentials: Credentials::Environment,
                endpoint: Some("http://127.0.0.1:1".into()),
                region: Some("eu-west-1".into()),
                options: BTreeMap::new(),
            },
            ..CloudConfig::default()
        };
        let http = HttpStoreConfig::default();
        assert_eq!(
            open_source("s3://mirror/era5", &config, &http)
                .unwrap()
                .kind(),
            StoreKind::S3
        );
        let config = CloudConfig {
            access: SourceAccess {
                credentials: Credentials::Environment,
                endpoint: Some("http://127.0.0.1:1".into()),
                ..SourceAccess::default()
            },
            ..CloudConfig::default()
        };
        assert_eq!(
            open_source("gs://mirror/era5", &config, &http)
                .unwrap()
                .kind(),
            StoreKind::Gcs
        );
    }
}
