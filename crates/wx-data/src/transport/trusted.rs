//! [`TrustedStorage`]: the `zarrs` storage of a trusted source (ERA5, the WB2 climatology, a
//! local mirror), unverified and unbounded as [`StoreHandle::zarr_storage`] says.
//!
//! Over a bucket or an HTTP server it is `zarrs_object_store`'s adapter, unchanged. Over a
//! local directory it reads each key, or each byte range of a key, with one positioned read
//! straight into the buffer it returns ([`read_file_range`]): object_store's local reads
//! zero-fill every buffer first, about 70 MB of needless writes to fresh memory per 13-level
//! 0.25° variable of the climatology and of ARCO ERA5 (docs/data.md §4.3).

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{GetOptions, GetResultPayload, ObjectStore};
use zarrs::storage::byte_range::{ByteRange, ByteRangeIterator};
use zarrs::storage::{
    AsyncMaybeBytesIterator, AsyncReadableStorageTraits, Bytes, MaybeBytes, StorageError, StoreKey,
};
use zarrs_object_store::AsyncObjectStore;

use super::file_range::read_file_range;
use crate::verified::range_of;

/// A trusted store for `zarrs`: local files read without zero-filling, anything else through
/// `zarrs_object_store`. Built by [`super::StoreHandle::zarr_storage`].
pub struct TrustedStorage {
    store: Arc<dyn ObjectStore>,
    adapter: AsyncObjectStore<Arc<dyn ObjectStore>>,
    local: bool,
}

impl std::fmt::Debug for TrustedStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedStorage")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl TrustedStorage {
    /// Wraps `store`; `local` says it is a local directory whose reads hand back open files.
    pub(super) fn new(store: Arc<dyn ObjectStore>, local: bool) -> TrustedStorage {
        TrustedStorage {
            adapter: AsyncObjectStore::new(Arc::clone(&store)),
            store,
            local,
        }
    }

    /// Reads `byte_ranges` of `key`, each into its own buffer; `None` when the key does not
    /// exist. A range outside the file is refused before anything is read
    /// ([`crate::verified::range_of`], the rule of every wx storage).
    async fn read_local(
        &self,
        key: &StoreKey,
        byte_ranges: impl Iterator<Item = ByteRange>,
    ) -> Result<Option<Vec<Bytes>>, StorageError> {
        let result = match self
            .store
            .get_opts(&Path::from(key.as_str()), GetOptions::default())
            .await
        {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(StorageError::Other(e.to_string())),
        };
        let size = result.meta.size;
        let ranges = byte_ranges
            .map(|r| {
                range_of(r, size).ok_or_else(|| {
                    StorageError::Other(format!(
                        "{}: byte range {r:?} is outside its {size} bytes",
                        key.as_str()
                    ))
                })
            })
            .collect::<Result<Vec<Range<usize>>, _>>()?;
        let (file, path) = match result.payload {
            GetResultPayload::File(file, path) => (file, path),
            // a directory store that streams after all: read it whole and cut the ranges
            GetResultPayload::Stream(_) => {
                let bytes = result
                    .bytes()
                    .await
                    .map_err(|e| StorageError::Other(e.to_string()))?;
                if bytes.len() as u64 != size {
                    return Err(changed(key.as_str(), bytes.len(), size));
                }
                return Ok(Some(ranges.into_iter().map(|r| bytes.slice(r)).collect()));
            }
        };
        let read = tokio::task::spawn_blocking(move || {
            ranges
                .into_iter()
                .map(|range| {
                    let expected = range.len();
                    let bytes = read_file_range(&file, &path, range.start as u64..range.end as u64)
                        .map_err(|e| StorageError::Other(e.to_string()))?;
                    if bytes.len() == expected {
                        Ok(bytes)
                    } else {
                        Err(changed(&path.display().to_string(), bytes.len(), expected))
                    }
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| StorageError::Other(format!("reading {}: {e}", key.as_str())))?;
        read.map(Some)
    }
}

/// `what` gave `got` bytes where its size said `expected`: it changed while being read.
fn changed(what: &str, got: usize, expected: impl std::fmt::Display) -> StorageError {
    StorageError::Other(format!(
        "{what}: {got} bytes read where {expected} were expected (the file changed while \
         being read)"
    ))
}

#[async_trait]
impl AsyncReadableStorageTraits for TrustedStorage {
    async fn get(&self, key: &StoreKey) -> Result<MaybeBytes, StorageError> {
        if !self.local {
            return self.adapter.get(key).await;
        }
        let whole = self
            .read_local(key, std::iter::once(ByteRange::FromStart(0, None)))
            .await?;
        Ok(whole.and_then(|mut parts| parts.pop()))
    }

    async fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<AsyncMaybeBytesIterator<'a>, StorageError> {
        if !self.local {
            return self.adapter.get_partial_many(key, byte_ranges).await;
        }
        let parts = self.read_local(key, byte_ranges).await?;
        Ok(parts.map(|parts| futures::stream::iter(parts.into_iter().map(Ok)).boxed()))
    }

    async fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        self.adapter.size_key(key).await
    }

    fn supports_get_partial(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> StoreKey {
        StoreKey::new(k).unwrap()
    }

    async fn collect(storage: &TrustedStorage, k: &str, ranges: Vec<ByteRange>) -> Vec<Bytes> {
        let parts = storage
            .get_partial_many(&key(k), Box::new(ranges.into_iter()))
            .await
            .unwrap()
            .expect("the key exists");
        parts.map(|p| p.unwrap()).collect().await
    }

    #[tokio::test]
    async fn local_reads_match_the_object_store_adapter_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..=250u8).cycle().take(300_000).collect();
        std::fs::create_dir(dir.path().join("t")).unwrap();
        std::fs::write(dir.path().join("t/0.0"), &data).unwrap();
        let fs: Arc<dyn ObjectStore> =
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let fast = TrustedStorage::new(Arc::clone(&fs), true);
        let plain = TrustedStorage::new(fs, false);

        for storage in [&fast, &plain] {
            let whole = storage.get(&key("t/0.0")).await.unwrap().unwrap();
            assert_eq!(&whole[..], &data[..]);
            assert_eq!(
                storage.size_key(&key("t/0.0")).await.unwrap(),
                Some(300_000)
            );
            assert!(storage.get(&key("t/1.0")).await.unwrap().is_none());
            let ranges = vec![
                ByteRange::FromStart(10, Some(5)),
                ByteRange::FromStart(299_990, None),
                ByteRange::Suffix(7),
                ByteRange::FromStart(0, Some(0)),
            ];
            let parts = collect(storage, "t/0.0", ranges).await;
            assert_eq!(&parts[0][..], &data[10..15]);
            assert_eq!(&parts[1][..], &data[299_990..]);
            assert_eq!(&parts[2][..], &data[299_993..]);
            assert!(parts[3].is_empty());
            let missing = storage
                .get_partial_many(&key("t/9.9"), Box::new([ByteRange::Suffix(1)].into_iter()))
                .await
                .unwrap();
            assert!(missing.is_none());
        }

        // a range past the end of the file, or starting past it, is refused, not read short
        for range in [
            ByteRange::FromStart(299_999, Some(2)),
            ByteRange::FromStart(400_000, None),
            ByteRange::Suffix(300_001),
        ] {
            let outcome = fast
                .get_partial_many(&key("t/0.0"), Box::new([range].into_iter()))
                .await;
            let message = match outcome {
                Err(e) => e.to_string(),
                Ok(_) => panic!("{range:?}, outside the file, was read"),
            };
            assert!(message.contains("is outside its 300000 bytes"), "{message}");
        }
    }
}
