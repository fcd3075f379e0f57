//! [`LimitedStorage`]: a `zarrs` storage over a [`StoreHandle`] that bounds every read without a
//! manifest to check against — for untrusted stores read ad hoc (`wx-step score --forecast`).

use async_trait::async_trait;
use futures::StreamExt;
use zarrs::storage::byte_range::ByteRangeIterator;
use zarrs::storage::{
    AsyncMaybeBytesIterator, AsyncReadableStorageTraits, MaybeBytes, StorageError, StoreKey,
};

use super::{StoreHandle, TransportError, is_metadata_key};
use wx_zarr::StorageFailure;

/// Reads whole objects through [`StoreHandle::get_limited`]: metadata documents up to
/// `metadata_max_bytes`, anything else up to `default_object_max_bytes`, and the handle's byte
/// budget over all reads. Unlike [`crate::verified::VerifiedStore`] it checks no hash: use it
/// where no manifest exists, never in the validator's pipeline.
#[derive(Debug, Clone)]
pub struct LimitedStorage {
    handle: StoreHandle,
}

impl LimitedStorage {
    /// Bounds every read of `handle` by its [`super::SizeLimits`].
    pub fn new(handle: StoreHandle) -> LimitedStorage {
        LimitedStorage { handle }
    }

    async fn fetch(&self, key: &StoreKey) -> Result<MaybeBytes, StorageError> {
        let limits = self.handle.limits();
        let max = if is_metadata_key(key.as_str()) {
            limits.metadata_max_bytes
        } else {
            limits.default_object_max_bytes
        };
        match self.handle.get_limited(key.as_str(), max).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(TransportError::NotFound { .. }) => Ok(None),
            Err(e) => Err(StorageFailure {
                kind: e.kind(),
                message: e.to_string(),
            }
            .into_storage_error()),
        }
    }
}

#[async_trait]
impl AsyncReadableStorageTraits for LimitedStorage {
    async fn get(&self, key: &StoreKey) -> Result<MaybeBytes, StorageError> {
        self.fetch(key).await
    }

    async fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<AsyncMaybeBytesIterator<'a>, StorageError> {
        let Some(bytes) = self.fetch(key).await? else {
            return Ok(None);
        };
        let size = bytes.len() as u64;
        let mut parts = Vec::new();
        for range in byte_ranges {
            let Some(r) = crate::verified::range_of(range, size) else {
                return Err(StorageFailure {
                    kind: wx_model::ErrorKind::Format,
                    message: format!(
                        "{}: byte range {range:?} of {} is outside its {size} bytes",
                        self.handle.label(),
                        key.as_str()
                    ),
                }
                .into_storage_error());
            };
            parts.push(Ok(bytes.slice(r)));
        }
        Ok(Some(futures::stream::iter(parts).boxed()))
    }

    async fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        Ok(self.fetch(key).await?.map(|b| b.len() as u64))
    }

    fn supports_get_partial(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{SizeLimits, StoreKind};
    use object_store::memory::InMemory;
    use object_store::{ObjectStore, ObjectStoreExt};
    use std::sync::Arc;

    async fn storage(limits: SizeLimits) -> LimitedStorage {
        let mem = InMemory::new();
        for (key, len) in [
            ("2t/.zarray", 100),
            ("2t/0.0.0", 5_000),
            ("big/.zarray", 2_000),
        ] {
            mem.put(&key.into(), vec![7u8; len].into()).await.unwrap();
        }
        let store: Arc<dyn ObjectStore> = Arc::new(mem);
        LimitedStorage::new(StoreHandle::new(
            store,
            "forecast test",
            StoreKind::LocalDir,
            limits,
            None,
        ))
    }

    fn key(k: &str) -> StoreKey {
        StoreKey::new(k).unwrap()
    }

    #[tokio::test]
    async fn reads_within_the_limits_and_refuses_larger_objects() {
        let limits = SizeLimits {
            metadata_max_bytes: 1_000,
            default_object_max_bytes: 4_000,
            ..SizeLimits::default()
        };
        let s = storage(limits).await;
        assert_eq!(s.get(&key("2t/.zarray")).await.unwrap().unwrap().len(), 100);
        assert_eq!(s.get(&key("absent/.zarray")).await.unwrap(), None);
        let chunk = s.get(&key("2t/0.0.0")).await.unwrap_err().to_string();
        assert!(chunk.contains("2t/0.0.0"), "the key is named: {chunk}");
        let meta = s.get(&key("big/.zarray")).await.unwrap_err().to_string();
        assert!(
            meta.contains("big/.zarray"),
            "metadata has its own, smaller limit: {meta}"
        );
    }

    #[tokio::test]
    async fn the_store_budget_bounds_all_reads_together() {
        let limits = SizeLimits {
            default_object_max_bytes: 10_000,
            store_budget_bytes: 8_000,
            ..SizeLimits::default()
        };
        let s = storage(limits).await;
        assert!(s.get(&key("2t/0.0.0")).await.unwrap().is_some());
        assert!(
            s.get(&key("2t/0.0.0")).await.is_err(),
            "the second read exceeds the budget"
        );
    }
}
