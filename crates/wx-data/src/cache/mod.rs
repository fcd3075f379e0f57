//! Caches of decoded fields (docs/data.md §4): on disk, shared by every worker of a host (and by
//! hosts sharing the directory), and in memory, shared by every step of a process.
//!
//! # Disk cache ([`DiskCache`])
//!
//! Truth, reference and climatology slices are stored under a root directory, keyed by
//! [`CacheKey`] = (source id, variable, level set, valid time):
//!
//! ```text
//! <root>/<source segment>/…/<YYYYMMDDTHHMMSSZ>/<variable>-<levels>.zarr/   the entry
//! <root>/<source segment>/…/<YYYYMMDDTHHMMSSZ>/.<variable>-<levels>.lock    its fill lock
//! <root>/<source segment>/…/<YYYYMMDDTHHMMSSZ>/.<variable>-<levels>.tmp-…  an entry being written
//! <root>/.trash/                                                          entries being deleted
//! ```
//!
//! Every path component comes from validated parts ([`CacheKey::new`] accepts source segments
//! of `[A-Za-z0-9._-]` not starting with `.`; variables and levels are typed), so no input can
//! reach outside the root.
//!
//! **Format.** An entry is a local Zarr v3 group written with zarrs (`FilesystemStore`):
//! `data` float32 `[level, lat, lon]` (one zstd chunk per level, NaN fill), `lat`/`lon`
//! float64, and group attributes `wx_cache = {format, source, variable, levels, valid_time,
//! created_at, sha256}`. The SHA-256 covers identity, coordinates and values and is checked on
//! every read: a damaged entry (flipped bytes, a missing chunk zarrs would read as NaN, a
//! truncated file, a foreign `zarr.json`) is reported as absent and replaced by the next
//! filler. Nothing is ever deserialised into code (no pickle).
//!
//! **Concurrency.** Readers only read. [`DiskCache::get_or_fill`] fills single-flight: the
//! caller that creates the lock file exclusively (content: pid, process start time, host,
//! time, nonce; refreshed by a heartbeat while filling) fills; others poll with exponential
//! backoff (bounded by [`DiskCacheOptions::wait_timeout`]) until the entry appears or the lock
//! disappears. A lock whose owner is on this host and no longer runs is taken over at once;
//! a lock from another host (or unreadable) after [`DiskCacheOptions::stale_lock_after`]
//! without heartbeat. The filler writes the entry under a temporary name in the same
//! directory and renames it into place: a reader sees a complete entry or none, even if the
//! writer crashes. Files are not flushed to disk one by one (that cost about a thousand fsyncs
//! per lead): after a power loss a partly written entry fails its checksum on read and is
//! refilled. Correctness never depends on the lock
//! (the rename is atomic and a second complete entry is discarded); the lock only avoids
//! duplicate work.
//!
//! **Retention.** [`DiskCache::purge_older_than`] deletes entries created before a given age
//! plus leftovers of crashed writers and stale locks; [`DiskCache::remove_group`] deletes a
//! whole source prefix at once (e.g. the Day1 climatology slices of a run once every miner is
//! past Day1). Deletion renames into `.trash` first, so readers never see half-deleted
//! entries.
//!
//! # Memory cache ([`MemoryCache`], [`FieldMemoryCache`])
//!
//! A byte budget with least-recently-used eviction, `Arc`-shared values, and per-key single
//! flight ([`MemoryCache::get_or_load`]): concurrent callers of one key share one load and its
//! result or error. Typical use: memory in front of disk in front of the source,
//!
//! ```text
//! let field = memory.get_or_load(key.clone(), || async {
//!     disk.get_or_fill(&key, || async { Ok::<_, MyError>(gfs.analysis(t, &[var]).await?.remove(0)) }).await
//! }).await?;
//! ```

mod disk;
mod entry;
mod key;
mod lock;
pub mod memory;

pub use disk::{DiskCache, DiskCacheOptions, PurgeReport};
pub use key::CacheKey;
pub use memory::{FieldMemoryCache, MemoryCache, Weigh};

use std::time::Duration;
use wx_model::ErrorKind;

/// A cache operation that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    /// A key or group prefix that cannot name a cache path.
    #[error("invalid cache key: {reason}")]
    InvalidKey {
        /// Why.
        reason: String,
    },
    /// A filesystem operation failed.
    #[error("cache I/O on `{path}`: {message}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        message: String,
    },
    /// Another worker held the fill lock for longer than the wait timeout.
    #[error(
        "waited {waited:?} for {holder} to fill cache entry {key}; the lock is alive \
         (heartbeat) — raise wait_timeout or check that worker"
    )]
    WaitTimeout {
        /// The entry.
        key: String,
        /// Who holds the lock.
        holder: String,
        /// How long we waited.
        waited: Duration,
    },
    /// The filled field is not the one the key names (a bug in the caller's fill).
    #[error("cache entry {key}: {reason}")]
    KeyMismatch {
        /// The entry.
        key: String,
        /// What differs.
        reason: String,
    },
}

impl CacheError {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CacheError::Io { .. } | CacheError::WaitTimeout { .. } => ErrorKind::Cache,
            CacheError::InvalidKey { .. } | CacheError::KeyMismatch { .. } => ErrorKind::Internal,
        }
    }
}
