//! Builders for the stores that are not miner stores: local directories, anonymous S3 and GCS,
//! and a dispatcher from a URL or path.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};

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
    /// Endpoint override (a local S3/GCS emulator or mirror); `None` for the public endpoint.
    pub endpoint: Option<String>,
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
            endpoint: None,
        }
    }
}

impl CloudConfig {
    fn client_options(&self) -> ClientOptions {
        ClientOptions::new()
            .with_connect_timeout(self.connect_timeout)
            .with_timeout(self.request_timeout)
            .with_allow_http(
                self.endpoint
                    .as_deref()
                    .is_some_and(|e| e.starts_with("http://")),
            )
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

/// An S3 bucket read anonymously (e.g. `noaa-gfs-bdp-pds` in `us-east-1`), rooted at `prefix`.
pub fn s3_anonymous(
    bucket: &str,
    region: &str,
    prefix: &str,
    config: &CloudConfig,
) -> Result<StoreHandle, TransportError> {
    let label = format!("s3://{bucket}/{}", prefix.trim_matches('/'));
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(region)
        .with_skip_signature(true)
        .with_retry(config.retry())
        .with_client_options(config.client_options());
    if let Some(endpoint) = &config.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    let store = builder.build().map_err(|e| TransportError::Client {
        store: label.clone(),
        detail: wx_model::sanitize_message(&e.to_string(), &[]),
    })?;
    Ok(StoreHandle::new(
        with_prefix(Arc::new(store), prefix),
        label,
        StoreKind::S3,
        config.limits,
        Some(config.fetch_deadline),
    ))
}

/// A GCS bucket read anonymously (e.g. `gcp-public-data-arco-era5`, `weatherbench2`), rooted at
/// `prefix`.
pub fn gcs_anonymous(
    bucket: &str,
    prefix: &str,
    config: &CloudConfig,
) -> Result<StoreHandle, TransportError> {
    let label = format!("gs://{bucket}/{}", prefix.trim_matches('/'));
    let mut builder = GoogleCloudStorageBuilder::new()
        .with_bucket_name(bucket)
        .with_skip_signature(true)
        .with_retry(config.retry())
        .with_client_options(config.client_options());
    if let Some(endpoint) = &config.endpoint {
        builder = builder.with_config(object_store::gcp::GoogleConfigKey::BaseUrl, endpoint);
    }
    let store = builder.build().map_err(|e| TransportError::Client {
        store: label.clone(),
        detail: wx_model::sanitize_message(&e.to_string(), &[]),
    })?;
    Ok(StoreHandle::new(
        with_prefix(Arc::new(store), prefix),
        label,
        StoreKind::Gcs,
        config.limits,
        Some(config.fetch_deadline),
    ))
}

/// Opens a data source (not a miner store) from what a user typed: a local path or `file://`
/// URL, `s3://bucket/prefix` (anonymous, region `us-east-1` unless `AWS_REGION`-style
/// configuration is added later), `gs://bucket/prefix` (anonymous), or `http(s)://` (no
/// token; the address policy and redirect refusal of `http` still apply).
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
        s3_anonymous(&bucket, "us-east-1", &prefix, cloud)
    } else if let Some(rest) = location.strip_prefix("gs://") {
        let (bucket, prefix) = split(rest);
        gcs_anonymous(&bucket, &prefix, cloud)
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
}
