//! Helpers shared by the Zarr tests (and, included by path, by wx-data's store tests): local
//! storages over the committed fixtures (`testdata/`), temporary copies to corrupt, and a storage
//! that records the keys it is asked for.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
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

/// A storage that records every key asked for, then delegates.
pub struct Recording {
    inner: DynStorage,
    pub keys: Mutex<Vec<String>>,
}

impl Recording {
    pub fn new(inner: DynStorage) -> Arc<Recording> {
        Arc::new(Recording {
            inner,
            keys: Mutex::new(Vec::new()),
        })
    }

    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.keys.lock().unwrap())
    }
}

#[async_trait::async_trait]
impl AsyncReadableStorageTraits for Recording {
    async fn get(&self, key: &StoreKey) -> Result<MaybeBytes, StorageError> {
        self.keys.lock().unwrap().push(key.as_str().to_owned());
        self.inner.get(key).await
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
        self.inner.get_partial_many(key, byte_ranges).await
    }

    async fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        self.inner.size_key(key).await
    }

    fn supports_get_partial(&self) -> bool {
        self.inner.supports_get_partial()
    }
}
