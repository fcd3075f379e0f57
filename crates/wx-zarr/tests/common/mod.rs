//! Helpers shared by the Zarr tests (and, included by path, by wx-data's store tests): local
//! storages over the committed fixtures (`testdata/`), temporary copies to corrupt, and a storage
//! that records the keys it is asked for.
#![allow(dead_code)]

use futures::StreamExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use wx_zarr::DynStorage;
use zarrs::storage::byte_range::ByteRangeIterator;
use zarrs::storage::{
    AsyncMaybeBytesIterator, AsyncReadableStorageTraits, MaybeBytes, StorageError, StoreKey,
};

/// `testdata/` of the workspace.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// Path of a committed store.
pub fn store_path(name: &str) -> PathBuf {
    testdata().join("stores").join(name)
}

/// An async storage over a local directory, through object_store like HTTP/S3/GCS.
pub fn local(dir: &Path) -> DynStorage {
    let fs = object_store::local::LocalFileSystem::new_with_prefix(dir).expect("local store");
    Arc::new(zarrs_object_store::AsyncObjectStore::new(fs))
}

/// The storage of a committed store.
pub fn fixture(name: &str) -> DynStorage {
    local(&store_path(name))
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A temporary copy of a committed store; the path is `dir.path()/store`.
pub fn temp_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    copy_dir(&store_path(name), &path);
    (dir, path)
}

/// A storage that records every key asked for and counts the bytes it returns, then
/// delegates.
pub struct Recording {
    inner: DynStorage,
    pub keys: Mutex<Vec<String>>,
    /// Bytes returned by `get` and `get_partial_many`.
    pub bytes: AtomicU64,
    /// Byte ranges are served when the inner storage serves them.
    partial: bool,
    /// Every byte-range request fails (a server that says it serves ranges, then does not).
    ranges_fail: bool,
}

impl Recording {
    pub fn new(inner: DynStorage) -> Arc<Recording> {
        Arc::new(Recording {
            inner,
            keys: Mutex::new(Vec::new()),
            bytes: AtomicU64::new(0),
            partial: true,
            ranges_fail: false,
        })
    }

    /// The same, but failing every byte-range request with a storage error.
    pub fn ranges_fail(inner: DynStorage) -> Arc<Recording> {
        Arc::new(Recording {
            inner,
            keys: Mutex::new(Vec::new()),
            bytes: AtomicU64::new(0),
            partial: true,
            ranges_fail: true,
        })
    }

    /// The same, but saying it serves no byte ranges (as a verifying miner storage).
    pub fn whole_only(inner: DynStorage) -> Arc<Recording> {
        Arc::new(Recording {
            inner,
            keys: Mutex::new(Vec::new()),
            bytes: AtomicU64::new(0),
            partial: false,
            ranges_fail: false,
        })
    }

    /// The bytes returned so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.keys.lock().unwrap())
    }
}

#[async_trait::async_trait]
impl AsyncReadableStorageTraits for Recording {
    async fn get(&self, key: &StoreKey) -> Result<MaybeBytes, StorageError> {
        self.keys.lock().unwrap().push(key.as_str().to_owned());
        let bytes = self.inner.get(key).await?;
        let len = bytes.as_ref().map_or(0, |b| b.len() as u64);
        self.bytes.fetch_add(len, Ordering::Relaxed);
        Ok(bytes)
    }

    async fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<AsyncMaybeBytesIterator<'a>, StorageError> {
        self.keys
            .lock()
            .unwrap()
            .push(format!("{} (partial)", key.as_str()));
        if self.ranges_fail {
            return Err(StorageError::Other("range requests are refused".to_owned()));
        }
        let Some(parts) = self.inner.get_partial_many(key, byte_ranges).await? else {
            return Ok(None);
        };
        let counted = parts.map(|part| {
            if let Ok(bytes) = &part {
                self.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
            part
        });
        Ok(Some(counted.boxed()))
    }

    async fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        self.inner.size_key(key).await
    }

    fn supports_get_partial(&self) -> bool {
        self.partial && self.inner.supports_get_partial()
    }
}

/// A Zarr v2 store of one array `t` (2 times × 37 levels × `rows` × `cols` float32, one chunk
/// per time, the ARCO-ERA5 layout in miniature) with consolidated metadata, compressed by c-blosc (zstd,
/// bitshuffle, 16 KiB blocks: 42 blocks per chunk at 48 × 96, as numcodecs' `Blosc(blocksize=16384)` writes).
pub fn write_arco_like(dir: &std::path::Path, rows: usize, cols: usize) -> Vec<f32> {
    let levels = 37;
    let per_time = levels * rows * cols;
    let values: Vec<f32> = (0..2 * per_time)
        .map(|i| ((i as f32) * 0.013).sin() * 250.0 + (i % 97) as f32)
        .collect();
    std::fs::create_dir_all(dir.join("t")).unwrap();
    std::fs::write(dir.join(".zgroup"), r#"{"zarr_format": 2}"#).unwrap();
    let zarray = serde_json::json!({
        "zarr_format": 2, "shape": [2, levels, rows, cols], "chunks": [1, levels, rows, cols],
        "dtype": "<f4", "order": "C", "fill_value": "NaN", "filters": null,
        "compressor": {"id": "blosc", "cname": "zstd", "clevel": 5, "shuffle": 2,
                       "blocksize": 16384},
    });
    std::fs::write(dir.join("t/.zarray"), zarray.to_string()).unwrap();
    let zattrs =
        serde_json::json!({"_ARRAY_DIMENSIONS": ["time", "level", "latitude", "longitude"]});
    std::fs::write(dir.join("t/.zattrs"), zattrs.to_string()).unwrap();
    // consolidated, as the public store is
    let zmetadata = serde_json::json!({
        "zarr_consolidated_format": 1,
        "metadata": {".zgroup": {"zarr_format": 2}, "t/.zarray": zarray, "t/.zattrs": zattrs},
    });
    std::fs::write(dir.join(".zmetadata"), zmetadata.to_string()).unwrap();
    for time in 0..2 {
        let raw: &[u8] = bytemuck::cast_slice(&values[time * per_time..(time + 1) * per_time]);
        let mut out = vec![0u8; raw.len() + blosc_src::BLOSC_MAX_OVERHEAD as usize];
        // SAFETY: `out` has room for `raw.len()` + the maximum overhead, as blosc.h asks.
        let n = unsafe {
            blosc_src::blosc_compress_ctx(
                5,
                blosc_src::BLOSC_BITSHUFFLE as i32,
                4,
                raw.len(),
                raw.as_ptr().cast(),
                out.as_mut_ptr().cast(),
                out.len(),
                c"zstd".as_ptr(),
                16384,
                1,
            )
        };
        assert!(n > 0, "blosc_compress_ctx: {n}");
        std::fs::write(dir.join(format!("t/{time}.0.0.0")), &out[..n as usize]).unwrap();
    }
    values
}
