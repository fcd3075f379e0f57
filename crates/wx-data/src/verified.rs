//! [`VerifiedStore`]: a `zarrs` async storage that returns only bytes verified against the
//! frozen manifest.
//!
//! For every key the decoder asks for (metadata and chunks alike) the store
//!
//! 1. looks the key up in the [`FrozenManifest`]. A chunk (or any non-metadata key) that is not
//!    listed is an [`IntegrityError::NotInManifest`] naming the key — never "missing chunk =
//!    fill value". A *metadata* key (`.zmetadata`, `.zarray`, `.zattrs`, `.zgroup`,
//!    `zarr.json`) that is not listed is reported as absent (`Ok(None)`) without any request:
//!    the signed manifest is the list of files the store has, and readers probe for `zarr.json`
//!    vs `.zmetadata` this way;
//! 2. fetches it whole through [`StoreHandle::get_limited`] with the key's size limit
//!    (metadata: 1 MiB; a chunk: its declared shape × dtype size × factor, learnt from the
//!    verified metadata this store has served or set with [`VerifiedStore::set_chunk_limit`];
//!    otherwise the default object limit);
//! 3. hashes exactly those bytes (`sha256(key ‖ 0x00 ‖ bytes)`, piece by piece as they are
//!    appended to the buffer that is returned) and compares with the manifest; a mismatch is
//!    [`IntegrityError::HashMismatch`] naming the key;
//! 4. returns those same bytes (no second fetch: what is decoded is what was verified).
//!    Partial reads are served from the verified whole object.
//!
//! A listed key that the server does not serve (404) is [`IntegrityError::ListedKeyMissing`].
//! Verified metadata is cached per store handle.
//!
//! Errors cross `zarrs` as the reader's [`StorageFailure`] (the [`IntegrityError`]'s kind and
//! message), so [`wx_zarr::ZarrError::Storage`] reports e.g. `ErrorKind::Integrity` with the
//! key; [`VerifiedStore::first_failure`] keeps the first typed [`IntegrityError`].
//!
//! [`fetch_frozen_manifest`] fetches `manifest.json` and `manifest.sig` through the same
//! hardened transport (1 MiB / 1 KiB limits) and verifies them; [`open_verified`] does that
//! and builds the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use serde::Deserialize;
use wx_model::ErrorKind;
use zarrs::storage::byte_range::{ByteRange, ByteRangeIterator};
use zarrs::storage::{
    AsyncMaybeBytesIterator, AsyncReadableStorageTraits, MaybeBytes, StorageError, StoreKey,
};

use crate::manifest::{
    FileHasher, FrozenManifest, MAX_MANIFEST_BYTES, MAX_SIGNATURE_FILE_BYTES, ManifestClaim,
    ManifestError, verify_manifest,
};
use crate::transport::{StoreHandle, TransportError, is_metadata_key};
use wx_zarr::StorageFailure;

/// A read that failed verification or could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntegrityError {
    /// The key is not in the frozen manifest.
    #[error(
        "store {store}: key {key} is not listed in the frozen manifest; the store does not match what the miner signed"
    )]
    NotInManifest {
        /// The store.
        store: String,
        /// The key.
        key: String,
    },
    /// The bytes do not hash to the manifest's value.
    #[error(
        "store {store}: key {key} failed verification: sha256 {actual} does not match the manifest's {expected}; the store was modified after the manifest was frozen"
    )]
    HashMismatch {
        /// The store.
        store: String,
        /// The key.
        key: String,
        /// The manifest's hash.
        expected: String,
        /// The hash of the bytes received.
        actual: String,
    },
    /// A key the manifest lists is not served.
    #[error(
        "store {store}: key {key} is listed in the manifest but the server does not have it (404)"
    )]
    ListedKeyMissing {
        /// The store.
        store: String,
        /// The key.
        key: String,
    },
    /// A partial read outside the object.
    #[error("store {store}: key {key}: byte range {range} is outside the {size}-byte object")]
    InvalidRange {
        /// The store.
        store: String,
        /// The key.
        key: String,
        /// The range requested.
        range: String,
        /// The object's size.
        size: u64,
    },
    /// The manifest itself did not verify.
    #[error("store {store}: {source}")]
    Manifest {
        /// The store.
        store: String,
        /// Why.
        source: ManifestError,
    },
    /// Fetching failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

impl IntegrityError {
    /// The coarse kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            IntegrityError::NotInManifest { .. }
            | IntegrityError::HashMismatch { .. }
            | IntegrityError::ListedKeyMissing { .. } => ErrorKind::Integrity,
            IntegrityError::InvalidRange { .. } => ErrorKind::Format,
            IntegrityError::Manifest { source, .. } => source.kind(),
            IntegrityError::Transport(e) => e.kind(),
        }
    }

    /// The key involved, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            IntegrityError::NotInManifest { key, .. }
            | IntegrityError::HashMismatch { key, .. }
            | IntegrityError::ListedKeyMissing { key, .. }
            | IntegrityError::InvalidRange { key, .. } => Some(key),
            IntegrityError::Manifest { .. } => None,
            IntegrityError::Transport(_) => None,
        }
    }
}

/// How a failure crosses `zarrs`: the reader's [`StorageFailure`] (kind + sanitized message
/// naming the store and key), which [`wx_zarr::ZarrError::Storage`] keeps.
fn to_storage_error(error: IntegrityError) -> StorageError {
    StorageFailure {
        kind: error.kind(),
        message: error.to_string(),
    }
    .into_storage_error()
}

/// A `zarrs` async readable storage that verifies every byte against a frozen manifest.
#[derive(Debug)]
pub struct VerifiedStore {
    transport: StoreHandle,
    manifest: Arc<FrozenManifest>,
    learnt_limits: RwLock<HashMap<String, u64>>,
    explicit_limits: RwLock<HashMap<String, u64>>,
    metadata_cache: Mutex<HashMap<String, Bytes>>,
    first_failure: Mutex<Option<IntegrityError>>,
}

impl VerifiedStore {
    /// Reads `transport` against `manifest`.
    pub fn new(transport: StoreHandle, manifest: FrozenManifest) -> VerifiedStore {
        VerifiedStore {
            transport,
            manifest: Arc::new(manifest),
            learnt_limits: RwLock::default(),
            explicit_limits: RwLock::default(),
            metadata_cache: Mutex::default(),
            first_failure: Mutex::default(),
        }
    }

    /// The transport handle (label, byte counter, limits).
    pub fn transport(&self) -> &StoreHandle {
        &self.transport
    }

    /// The frozen manifest.
    pub fn manifest(&self) -> &FrozenManifest {
        &self.manifest
    }

    /// The first verification or fetch failure seen by this store, if any.
    pub fn first_failure(&self) -> Option<IntegrityError> {
        self.first_failure.lock().expect("not poisoned").clone()
    }

    /// Sets the largest stored size of any chunk of the array at `array_path` (e.g. `"2t"`),
    /// overriding what the store learns from metadata.
    pub fn set_chunk_limit(&self, array_path: &str, max_bytes: u64) {
        self.explicit_limits
            .write()
            .expect("not poisoned")
            .insert(array_path.trim_matches('/').to_owned(), max_bytes);
    }

    /// The size limit that applies to `key`.
    pub fn max_bytes_for(&self, key: &str) -> u64 {
        let limits = self.transport.limits();
        if is_metadata_key(key) {
            return limits.metadata_max_bytes;
        }
        let array_limit = |map: &HashMap<String, u64>| {
            let mut prefix = key;
            while let Some((parent, _)) = prefix.rsplit_once('/') {
                if let Some(limit) = map.get(parent) {
                    return Some(*limit);
                }
                prefix = parent;
            }
            None
        };
        if let Some(limit) = array_limit(&self.explicit_limits.read().expect("not poisoned")) {
            return limit;
        }
        array_limit(&self.learnt_limits.read().expect("not poisoned"))
            .unwrap_or(limits.default_object_max_bytes)
    }

    /// Whether the manifest lists `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.manifest.expected_hash(key).is_some()
    }

    fn record(&self, error: IntegrityError) -> IntegrityError {
        let mut first = self.first_failure.lock().expect("not poisoned");
        if first.is_none() {
            *first = Some(error.clone());
        }
        error
    }

    /// Fetches and verifies `key`. `Ok(None)` only for a metadata key the manifest does not
    /// list.
    pub async fn get_verified(&self, key: &str) -> Result<Option<Bytes>, IntegrityError> {
        let store = self.transport.label();
        let Some(expected) = self.manifest.expected_hash(key) else {
            if is_metadata_key(key) {
                return Ok(None);
            }
            return Err(self.record(IntegrityError::NotInManifest {
                store: store.to_owned(),
                key: key.to_owned(),
            }));
        };
        let metadata = is_metadata_key(key);
        if metadata && let Some(bytes) = self.metadata_cache.lock().expect("not poisoned").get(key)
        {
            return Ok(Some(bytes.clone()));
        }
        let mut hasher = FileHasher::new(key);
        let bytes = self
            .transport
            .get_limited_inspect(key, self.max_bytes_for(key), &mut |piece| {
                hasher.update(piece)
            })
            .await
            .map_err(|e| {
                self.record(match e {
                    TransportError::NotFound { store, key } => {
                        IntegrityError::ListedKeyMissing { store, key }
                    }
                    other => IntegrityError::Transport(other),
                })
            })?;
        // the hash of exactly the pieces that make up `bytes`
        let actual = hasher.finish();
        if actual != expected {
            return Err(self.record(IntegrityError::HashMismatch {
                store: store.to_owned(),
                key: key.to_owned(),
                expected: expected.to_owned(),
                actual,
            }));
        }
        if metadata {
            self.learn_limits(key, &bytes);
            self.metadata_cache
                .lock()
                .expect("not poisoned")
                .insert(key.to_owned(), bytes.clone());
        }
        Ok(Some(bytes))
    }

    /// Learns chunk size limits from verified metadata (v2 `.zmetadata`/`.zarray`, v3
    /// `zarr.json`, including v3 consolidated metadata). Unparseable metadata teaches nothing;
    /// the reader reports it.
    fn learn_limits(&self, key: &str, bytes: &[u8]) {
        let limits = *self.transport.limits();
        let mut learnt = Vec::new();
        let parent = |k: &str| {
            k.rsplit_once('/')
                .map(|(p, _)| p.to_owned())
                .unwrap_or_default()
        };
        let name = key.rsplit('/').next().unwrap_or(key);
        match name {
            ".zmetadata" => {
                if let Ok(doc) = serde_json::from_slice::<ConsolidatedV2>(bytes) {
                    let base = parent(key);
                    for (k, v) in doc.metadata {
                        if let Some(array) = k.strip_suffix("/.zarray")
                            && let Ok(meta) = serde_json::from_value::<ArrayV2>(v)
                            && let Some(limit) = meta.chunk_limit(&limits)
                        {
                            learnt.push((join(&base, array), limit));
                        }
                    }
                }
            }
            ".zarray" => {
                if let Ok(meta) = serde_json::from_slice::<ArrayV2>(bytes)
                    && let Some(limit) = meta.chunk_limit(&limits)
                {
                    learnt.push((parent(key), limit));
                }
            }
            "zarr.json" => {
                if let Ok(node) = serde_json::from_slice::<NodeV3>(bytes) {
                    let base = parent(key);
                    if let Some(limit) = node.chunk_limit(&limits) {
                        learnt.push((base.clone(), limit));
                    }
                    if let Some(consolidated) = node.consolidated_metadata {
                        for (path, child) in consolidated.metadata {
                            if let Ok(child) = serde_json::from_value::<NodeV3>(child)
                                && let Some(limit) = child.chunk_limit(&limits)
                            {
                                learnt.push((join(&base, &path), limit));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        if !learnt.is_empty() {
            let mut map = self.learnt_limits.write().expect("not poisoned");
            for (path, limit) in learnt {
                if !path.is_empty() {
                    map.insert(path, limit);
                }
            }
        }
    }
}

fn join(base: &str, path: &str) -> String {
    let path = path.trim_matches('/');
    if base.is_empty() {
        path.to_owned()
    } else {
        format!("{base}/{path}")
    }
}

#[derive(Deserialize)]
struct ConsolidatedV2 {
    metadata: HashMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct ArrayV2 {
    chunks: Vec<u64>,
    dtype: serde_json::Value,
}

/// Item size of a simple v2 dtype (`"<f4"`, `"|u1"`, `"<U8"`); `None` for structured ones.
fn v2_item_size(dtype: &serde_json::Value) -> Option<u64> {
    let text = dtype.as_str()?;
    let mut chars = text.chars();
    let first = chars.next()?;
    let rest = if matches!(first, '<' | '>' | '|' | '=') {
        chars.as_str()
    } else {
        text
    };
    let kind = rest.chars().next()?;
    let digits: String = rest[1..].chars().take_while(char::is_ascii_digit).collect();
    let n: u64 = digits.parse().ok()?;
    Some(if kind == 'U' { n.checked_mul(4)? } else { n })
}

impl ArrayV2 {
    fn chunk_limit(&self, limits: &crate::transport::SizeLimits) -> Option<u64> {
        let elements = self
            .chunks
            .iter()
            .try_fold(1u64, |acc, &n| acc.checked_mul(n))?;
        Some(limits.chunk_limit(elements, v2_item_size(&self.dtype)?))
    }
}

#[derive(Deserialize)]
struct NodeV3 {
    node_type: String,
    #[serde(default)]
    data_type: Option<serde_json::Value>,
    #[serde(default)]
    chunk_grid: Option<ChunkGridV3>,
    #[serde(default)]
    consolidated_metadata: Option<ConsolidatedV3>,
}

#[derive(Deserialize)]
struct ChunkGridV3 {
    configuration: ChunkGridConfiguration,
}

#[derive(Deserialize)]
struct ChunkGridConfiguration {
    chunk_shape: Vec<u64>,
}

#[derive(Deserialize)]
struct ConsolidatedV3 {
    metadata: HashMap<String, serde_json::Value>,
}

fn v3_item_size(data_type: &serde_json::Value) -> Option<u64> {
    Some(match data_type.as_str()? {
        "bool" | "int8" | "uint8" => 1,
        "int16" | "uint16" | "float16" | "bfloat16" => 2,
        "int32" | "uint32" | "float32" => 4,
        "int64" | "uint64" | "float64" | "complex64" => 8,
        "complex128" => 16,
        _ => return None,
    })
}

impl NodeV3 {
    fn chunk_limit(&self, limits: &crate::transport::SizeLimits) -> Option<u64> {
        if self.node_type != "array" {
            return None;
        }
        let grid = self.chunk_grid.as_ref()?;
        let elements = grid
            .configuration
            .chunk_shape
            .iter()
            .try_fold(1u64, |acc, &n| acc.checked_mul(n))?;
        Some(limits.chunk_limit(elements, v3_item_size(self.data_type.as_ref()?)?))
    }
}

/// The slice of an object of `size` bytes that `range` selects; `None` when it falls outside.
pub(crate) fn range_of(range: ByteRange, size: u64) -> Option<std::ops::Range<usize>> {
    let (start, end) = match range {
        ByteRange::FromStart(offset, None) => (offset, size),
        ByteRange::FromStart(offset, Some(length)) => (offset, offset.checked_add(length)?),
        ByteRange::Suffix(length) => (size.checked_sub(length)?, size),
    };
    (start <= end && end <= size).then_some(start as usize..end as usize)
}

#[async_trait]
impl AsyncReadableStorageTraits for VerifiedStore {
    async fn get(&self, key: &StoreKey) -> Result<MaybeBytes, StorageError> {
        self.get_verified(key.as_str())
            .await
            .map_err(to_storage_error)
    }

    async fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<AsyncMaybeBytesIterator<'a>, StorageError> {
        let Some(bytes) = self
            .get_verified(key.as_str())
            .await
            .map_err(to_storage_error)?
        else {
            return Ok(None);
        };
        let size = bytes.len() as u64;
        let mut parts = Vec::new();
        for range in byte_ranges {
            match range_of(range, size) {
                Some(r) => parts.push(Ok(bytes.slice(r))),
                None => {
                    return Err(to_storage_error(self.record(
                        IntegrityError::InvalidRange {
                            store: self.transport.label().to_owned(),
                            key: key.as_str().to_owned(),
                            range: format!("{range:?}"),
                            size,
                        },
                    )));
                }
            }
        }
        Ok(Some(futures::stream::iter(parts).boxed()))
    }

    async fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        Ok(self
            .get_verified(key.as_str())
            .await
            .map_err(to_storage_error)?
            .map(|b| b.len() as u64))
    }

    fn supports_get_partial(&self) -> bool {
        false
    }
}

/// Fetches `manifest.json` (≤ 1 MiB) and `manifest.sig` (≤ 1 KiB, absent = 404) through the
/// store's transport and verifies them against the miner's claim.
pub async fn fetch_frozen_manifest(
    transport: &StoreHandle,
    claim: &ManifestClaim<'_>,
) -> Result<FrozenManifest, IntegrityError> {
    let manifest = transport
        .get_limited("manifest.json", MAX_MANIFEST_BYTES as u64)
        .await?;
    let signature = match transport
        .get_limited("manifest.sig", MAX_SIGNATURE_FILE_BYTES as u64)
        .await
    {
        Ok(bytes) => Some(bytes),
        Err(TransportError::NotFound { .. }) => None,
        Err(other) => return Err(other.into()),
    };
    verify_manifest(&manifest, signature.as_deref(), claim).map_err(|source| {
        IntegrityError::Manifest {
            store: transport.label().to_owned(),
            source,
        }
    })
}

/// Fetches and freezes the manifest, then returns the verified store over `transport`.
pub async fn open_verified(
    transport: StoreHandle,
    claim: &ManifestClaim<'_>,
) -> Result<VerifiedStore, IntegrityError> {
    let frozen = fetch_frozen_manifest(&transport, claim).await?;
    Ok(VerifiedStore::new(transport, frozen))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_sizes() {
        assert_eq!(v2_item_size(&serde_json::json!("<f4")), Some(4));
        assert_eq!(v2_item_size(&serde_json::json!("|u1")), Some(1));
        assert_eq!(v2_item_size(&serde_json::json!(">i8")), Some(8));
        assert_eq!(v2_item_size(&serde_json::json!("<U3")), Some(12));
        assert_eq!(v2_item_size(&serde_json::json!("<M8[ns]")), Some(8));
        assert_eq!(v2_item_size(&serde_json::json!([["a", "<f4"]])), None);
        assert_eq!(v3_item_size(&serde_json::json!("float32")), Some(4));
        assert_eq!(v3_item_size(&serde_json::json!("string")), None);
    }

    #[test]
    fn byte_ranges_are_checked() {
        assert_eq!(range_of(ByteRange::FromStart(2, Some(3)), 10), Some(2..5));
        assert_eq!(range_of(ByteRange::FromStart(2, None), 10), Some(2..10));
        assert_eq!(range_of(ByteRange::Suffix(4), 10), Some(6..10));
        assert_eq!(range_of(ByteRange::Suffix(11), 10), None);
        assert_eq!(range_of(ByteRange::FromStart(8, Some(3)), 10), None);
        assert_eq!(range_of(ByteRange::FromStart(u64::MAX, Some(3)), 10), None);
    }
}
