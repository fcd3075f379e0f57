//! wx-zarr: bounded Zarr v2/v3 reading over any zarrs async readable storage.
//!
//! The format half of wx's data access: what a Zarr store means, never how its bytes travel.
//! This crate does no network IO and does not depend on `object_store` or an HTTP client; the
//! caller hands it a storage (wx-data's hardened transport, its manifest-verifying storage, or a
//! local directory) and gets decoded `f32` arrays back.
//!
//! The seam with the transport/integrity layer is [`DynStorage`]
//! (`Arc<dyn zarrs::storage::AsyncReadableStorageTraits>`): a local directory
//! (`zarrs_object_store::AsyncObjectStore` over `object_store::local::LocalFileSystem`), plain
//! HTTP(S), S3, GCS, or a verifying adapter that checks every key against a frozen manifest
//! before returning its bytes. A storage reports its own failure kinds through
//! [`StorageFailure`].
//!
//! - [`ZarrDataset::open`] reads the root metadata once: v2 consolidated `.zmetadata` is parsed
//!   here (zarrs ignores it and plain HTTP cannot list), each `<var>/.zarray` deserialized into
//!   zarrs' `ArrayMetadataV2` with its `.zattrs`, so opening costs one GET; v3 `zarr.json` with
//!   inline consolidated metadata likewise; without consolidated metadata arrays are opened by
//!   name on demand. Every metadata JSON is refused above [`ReadOptions::max_metadata_bytes`]
//!   (1 MiB by default) before parsing.
//! - [`ZarrArray`] knows its dimension names (`_ARRAY_DIMENSIONS` or `dimension_names`),
//!   attributes, element type (f32, f64; integers for coordinates and CF-packed data) and codecs
//!   (Blosc, zstd, gzip, zlib, numcodecs LZ4, none; crc32c; v3 sharding). [`ZarrArray::read_f32`]
//!   reads a [`Selection`] fetching only the chunks it intersects, so reading one valid time
//!   costs that time's chunk(s) and memory for one lead, and applies the CF decoding of [`cf`]
//!   (fill values to NaN, `scale_factor`, `add_offset`; docs/data.md §1.5).
//! - Bounded decode ([`decode`]): a chunk whose declared shape × element size exceeds
//!   [`ReadOptions::max_chunk_bytes`] is refused before it is fetched; a fetched chunk must
//!   decode to exactly that size, checked before any output is allocated, and is decoded straight
//!   into the buffer the field keeps (c-blosc, libzstd, flate2, lz4_flex; big-endian data
//!   byte-swapped in place); a shard's index is checked before its output is allocated. zarrs supplies the metadata model, chunk grid and keys. A missing chunk is an
//!   error ([`MissingChunkPolicy::Error`], the default) unless the source is explicitly allowed
//!   to have fill-value chunks.
//! - [`cftime`] decodes CF time axes; times are matched exactly.
//!
//! # Limits
//!
//! [`ReadOptions::new`] holds the strict limits of a miner store (1 MiB of metadata JSON, 64 MiB
//! per decoded chunk, 256 MiB per read, a missing chunk is an error); [`ReadOptions::trusted`]
//! the larger ones of ERA5 and the WB2 climatology. Each is checked before the bytes it bounds
//! are parsed, fetched or allocated.
//!
//! # Errors
//!
//! Every failure is a [`ZarrError`] naming the store (by [`ReadOptions::store_name`], never a
//! URL) and the key; [`ZarrError::kind`] sorts it into a [`wx_model::ErrorKind`]. A storage
//! reports its own failure kinds (timeout, integrity, size) through [`StorageFailure`]. A chunk
//! that does not decode is a [`ZarrError::Format`] whose message is the [`DecodeError`].

#![deny(unsafe_code)] // allowed only where a module states why (see its `#[allow(unsafe_code)]`)
#![warn(missing_docs)]

pub mod array;
pub mod buffers;
pub mod cf;
pub mod cftime;
pub mod dataset;
// decoding straight into uninitialised buffers and zstd-sys calls; each block states why it is sound
#[allow(unsafe_code)]
pub mod decode;
pub mod error;
// filling a pooled buffer's spare capacity; the one block states why it is sound
#[allow(unsafe_code)]
pub mod layout;

pub use array::{DynStorage, ElementType, Selection, ZarrArray};
pub use cf::CfDecoding;
pub use cftime::{CfTimeError, CfTimeUnits};
pub use dataset::{ZarrDataset, ZarrFormat};
pub use decode::{ChunkEncoding, Codecs, Compression, DecodeError, Sharding};
pub use error::{StorageFailure, ZarrError};

/// What to do when a chunk key is absent from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingChunkPolicy {
    /// A missing chunk is an error naming the key (default: a miner store must be complete).
    #[default]
    Error,
    /// A missing chunk reads as the array's fill value (only for sources explicitly allowed to
    /// omit chunks, e.g. a sparse local cache).
    FillValue,
}

/// Which root metadata to look for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FormatHint {
    /// `.zmetadata`, then `zarr.json`, then `.zgroup`.
    #[default]
    Auto,
    /// Zarr v2 only (`.zmetadata`, then `.zgroup`).
    V2,
    /// Zarr v3 only (`zarr.json`).
    V3,
}

/// Limits and policies of a reader. Build with [`ReadOptions::new`] and adjust fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// Name of the store in messages (e.g. `miner 17` or `era5`); never a URL with a token.
    pub store_name: String,
    /// Which root metadata to look for.
    pub format: FormatHint,
    /// Largest metadata JSON accepted, bytes (default 1 MiB).
    pub max_metadata_bytes: u64,
    /// Largest decoded chunk (chunk shape × element size) accepted, bytes (default 64 MiB: a
    /// 0.25° 13-level float32 miner chunk is 54 MB; [`ReadOptions::trusted`]: 256 MiB).
    pub max_chunk_bytes: u64,
    /// Largest result of one read, bytes (default 256 MiB).
    pub max_read_bytes: u64,
    /// What a missing chunk means.
    pub missing_chunks: MissingChunkPolicy,
    /// Chunks fetched concurrently within one read (default 4).
    pub max_concurrent_chunks: usize,
    /// Smallest decoded chunk of which a read that keeps only part fetches only the Blosc
    /// blocks it needs, by byte range (default [`DEFAULT_MIN_RANGED_FETCH_BYTES`]). A smaller
    /// chunk is fetched whole: the ranged fetch costs a few more requests (size, header, block
    /// table), which only a large chunk repays.
    pub min_ranged_fetch_bytes: u64,
}

/// Default [`ReadOptions::min_ranged_fetch_bytes`]: 32 MiB decoded. A public ARCO-ERA5 chunk
/// (154 MB) is fetched in part; a miner's 13-level chunk at 1° (13 MB) or a 0.25° surface
/// field (4 MB) is fetched whole.
pub const DEFAULT_MIN_RANGED_FETCH_BYTES: u64 = 32 << 20;

/// Default metadata limit (docs/data.md §1.4): 1 MiB.
pub const DEFAULT_MAX_METADATA_BYTES: u64 = 1 << 20;

/// Default decoded-chunk limit of a trusted source (ERA5, WB2 climatology): 256 MiB, 1.75 × the
/// 153,659,520 bytes of one public ARCO-ERA5 chunk (1 hour × 37 levels × 721 × 1440 float32).
pub const TRUSTED_MAX_CHUNK_BYTES: u64 = 256 << 20;
/// Default largest read of a trusted source: 512 MiB (a whole 37-level chunk fits three times).
pub const TRUSTED_MAX_READ_BYTES: u64 = 512 << 20;
/// Default metadata limit of a trusted source: 64 MiB (the consolidated metadata of a store
/// with hundreds of variables).
pub const TRUSTED_MAX_METADATA_BYTES: u64 = 64 << 20;

impl ReadOptions {
    /// Defaults for a store called `store_name`.
    pub fn new(store_name: impl Into<String>) -> ReadOptions {
        ReadOptions {
            store_name: store_name.into(),
            format: FormatHint::Auto,
            max_metadata_bytes: DEFAULT_MAX_METADATA_BYTES,
            max_chunk_bytes: 64 << 20,
            max_read_bytes: 256 << 20,
            missing_chunks: MissingChunkPolicy::Error,
            max_concurrent_chunks: 4,
            min_ranged_fetch_bytes: DEFAULT_MIN_RANGED_FETCH_BYTES,
        }
    }

    /// Defaults of a trusted source (ERA5, WB2 climatology) called `store_name`, sized to the
    /// public stores with a margin: [`TRUSTED_MAX_CHUNK_BYTES`], [`TRUSTED_MAX_READ_BYTES`],
    /// [`TRUSTED_MAX_METADATA_BYTES`]. Miner stores keep the strict [`ReadOptions::new`].
    pub fn trusted(store_name: impl Into<String>) -> ReadOptions {
        ReadOptions {
            max_metadata_bytes: TRUSTED_MAX_METADATA_BYTES,
            max_chunk_bytes: TRUSTED_MAX_CHUNK_BYTES,
            max_read_bytes: TRUSTED_MAX_READ_BYTES,
            ..ReadOptions::new(store_name)
        }
    }
}
