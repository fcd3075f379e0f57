//! [`ReadOnlyStore`]: an `ObjectStore` that only reads, never lists or writes.
//!
//! Miner stores are plain HTTP file servers: `object_store`'s `HttpStore` would "list" with a
//! WebDAV `PROPFIND` (retried on the 501 it gets) and "write" with `PUT`. Wrapping it here makes
//! those calls fail at once, locally, whoever holds the `Arc<dyn ObjectStore>`.

use std::fmt;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// Passes reads through; refuses listing and every write.
#[derive(Debug)]
pub struct ReadOnlyStore<T> {
    inner: T,
}

impl<T: ObjectStore> ReadOnlyStore<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> Self {
        ReadOnlyStore { inner }
    }
}

impl<T: ObjectStore> fmt::Display for ReadOnlyStore<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReadOnly({})", self.inner)
    }
}

fn refused(operation: &str) -> object_store::Error {
    object_store::Error::NotImplemented {
        operation: operation.to_owned(),
        implementer: "a read-only, non-listable miner store".to_owned(),
    }
}

#[async_trait]
impl<T: ObjectStore> ObjectStore for ReadOnlyStore<T> {
    async fn put_opts(&self, _: &Path, _: PutPayload, _: PutOptions) -> Result<PutResult> {
        Err(refused("put"))
    }

    async fn put_multipart_opts(
        &self,
        _: &Path,
        _: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        Err(refused("multipart put"))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        locations.map(|_| Err(refused("delete"))).boxed()
    }

    fn list(&self, _: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        futures::stream::once(async { Err(refused("list")) }).boxed()
    }

    async fn list_with_delimiter(&self, _: Option<&Path>) -> Result<ListResult> {
        Err(refused("list"))
    }

    async fn copy_opts(&self, _: &Path, _: &Path, _: CopyOptions) -> Result<()> {
        Err(refused("copy"))
    }
}
