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
}

impl Recording {
    pub fn new(inner: DynStorage) -> Arc<Recording> {
        Arc::new(Recording {
            inner,
            keys: Mutex::new(Vec::new()),
            bytes: AtomicU64::new(0),
            partial: true,
        })
    }

    /// The same, but saying it serves no byte ranges (as a verifying miner storage).
    pub fn whole_only(inner: DynStorage) -> Arc<Recording> {
        Arc::new(Recording {
            inner,
            keys: Mutex::new(Vec::new()),
            bytes: AtomicU64::new(0),
            partial: false,
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
