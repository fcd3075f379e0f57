//! Shared helpers of the HTTP integration tests: fixtures, the test server, store handles.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use wx_data::manifest::{ManifestClaim, SignaturePolicy};
use wx_data::transport::{BearerToken, HttpStoreConfig, StoreHandle, connect_miner_store};
use wx_testkit::{Faults, TestServer};
use zarrs::array::Array;
use zarrs::storage::AsyncReadableStorageTraits;

/// A distinctive token so that any leak is easy to find.
pub const TOKEN: &str = "tok-SECRET-9f8e7d6c5b4a3210";

pub const STORE: &str = "miner_v2_blosc_zstd";

pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

#[derive(Debug, Clone, Deserialize)]
pub struct ManifestInfo {
    pub manifest_sha256: String,
    pub signer_hotkey_ss58: String,
    pub files: usize,
}

pub fn manifest_info(store: &str) -> ManifestInfo {
    let path = testdata().join(format!("stores/{store}.manifest-info.json"));
    serde_json::from_slice(&std::fs::read(&path).expect("manifest info fixture")).unwrap()
}

pub fn variant_info(variant: &str) -> ManifestInfo {
    let path = testdata().join(format!("manifests/{variant}/info.json"));
    serde_json::from_slice(&std::fs::read(&path).expect("variant info fixture")).unwrap()
}

pub fn variant_file(variant: &str, name: &str) -> bytes::Bytes {
    std::fs::read(testdata().join(format!("manifests/{variant}/{name}")))
        .unwrap()
        .into()
}

pub fn claim(info: &ManifestInfo) -> ManifestClaim<'_> {
    ManifestClaim {
        claimed_sha256: &info.manifest_sha256,
        miner_hotkey_ss58: &info.signer_hotkey_ss58,
        signature_policy: SignaturePolicy::Required,
    }
}

pub async fn server(faults: Faults) -> TestServer {
    TestServer::start(testdata().join("stores"), Some(TOKEN), faults)
        .await
        .expect("test server starts")
}

/// Loopback allowed, short timeouts, one retry.
pub fn fast_config() -> HttpStoreConfig {
    HttpStoreConfig {
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_secs(5),
        fetch_deadline: Duration::from_secs(4),
        max_retries: 1,
        initial_backoff: Duration::from_millis(50),
        ..HttpStoreConfig::local_testing()
    }
}

pub fn open(server: &TestServer, store: &str, config: &HttpStoreConfig) -> StoreHandle {
    connect_miner_store(
        &server.url_for(store),
        Some(BearerToken::new(TOKEN).unwrap()),
        config,
    )
    .expect("store handle")
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Reads a whole float32 array through any zarrs async storage.
pub async fn read_f32<S: AsyncReadableStorageTraits + ?Sized + 'static>(
    storage: Arc<S>,
    array: &str,
) -> Result<ndarray::ArrayD<f32>, BoxError> {
    let array = Array::async_open(storage, &format!("/{array}")).await?;
    Ok(array
        .async_retrieve_array_subset::<ndarray::ArrayD<f32>>(&array.subset_all())
        .await?)
}

/// Reads a whole float32 array from the fixture directory (zarrs filesystem store, no HTTP).
pub fn read_local_f32(store: &str, array: &str) -> ndarray::ArrayD<f32> {
    let fs =
        zarrs::filesystem::FilesystemStore::new(testdata().join("stores").join(store)).unwrap();
    let array = Array::open(Arc::new(fs), &format!("/{array}")).unwrap();
    array
        .retrieve_array_subset::<ndarray::ArrayD<f32>>(&array.subset_all())
        .unwrap()
}

/// Asserts that neither `Display` nor `Debug` of an error contains the token.
pub fn assert_no_token(error: &(dyn std::error::Error + 'static)) {
    let display = error.to_string();
    let debug = format!("{error:?}");
    assert!(!display.contains(TOKEN), "token in Display: {display}");
    assert!(!debug.contains(TOKEN), "token in Debug: {debug}");
    assert!(
        !display.contains("SECRET"),
        "token fragment in Display: {display}"
    );
    assert!(
        !debug.contains("SECRET"),
        "token fragment in Debug: {debug}"
    );
}
