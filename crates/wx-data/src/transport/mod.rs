//! Transport: opening stores over `object_store` and fetching from them safely.
//!
//! Builders return a [`StoreHandle`] (an `Arc<dyn ObjectStore>` plus a label, size limits and
//! a byte counter; [`StoreHandle::zarr_storage`] wraps it for `zarrs` as a [`TrustedStorage`]):
//!
//! * [`local_dir`]: a directory;
//! * [`connect_miner_store`]: a miner's HTTP(S) store with the bearer token and every safeguard
//!   of docs/data.md §1.3 (see [`http`] for the list: SSRF guard with resolve-then-connect, no
//!   redirects, timeouts, bounded retries, no listing, error bodies dropped);
//! * [`s3_bucket`], [`gcs_bucket`]: buckets reached as a [`SourceAccess`] says (anonymous by
//!   default; credentials from the environment for a private mirror); [`s3_anonymous`],
//!   [`gcs_anonymous`]: public buckets;
//! * [`open_source`]: any of the above from a path or URL.
//!
//! [`StoreHandle::get_limited`] is the one read primitive for miner data: it refuses a key as
//! soon as its declared or streamed size exceeds the caller's limit or the store's byte
//! budget, and never buffers more than the limit. [`SizeLimits`] holds the limits
//! (metadata ≤ 1 MiB, chunks ≤ declared shape × dtype size × 1.1 + 64 KiB).
//!
//! The token is a [`BearerToken`], whose `Debug`/`Display` print `[redacted]`; no
//! [`TransportError`] message contains it.

mod cloud;
mod error;
mod file_range;
pub mod guard;
mod handle;
pub mod http;
mod limited;
mod limits;
mod no_list;
mod token;
mod trusted;

pub use cloud::{
    CloudConfig, Credentials, SourceAccess, gcs_anonymous, gcs_bucket, local_dir, open_source,
    s3_anonymous, s3_bucket,
};
pub use error::TransportError;
pub use guard::{AddressPolicy, AddressRefused, Cidr, ForbiddenReason};
pub use handle::{StoreHandle, StoreKind};
pub use http::{HttpStoreConfig, connect_miner_store};
pub use limited::LimitedStorage;
pub use limits::{MIB, SizeLimits, ThroughputRule, is_metadata_key};
pub use no_list::ReadOnlyStore;
pub use token::{BearerToken, InvalidToken};
pub use trusted::TrustedStorage;
