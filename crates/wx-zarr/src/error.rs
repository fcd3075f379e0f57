//! Errors of the Zarr reader and the sources built on it.

use std::sync::Arc;
use wx_model::{ErrorKind, Level, Variable};
use zarrs::storage::StorageError;

/// A storage-level failure whose [`ErrorKind`] the storage knows (timeout, integrity, size...).
///
/// A storage adapter (e.g. the verifying HTTP storage) reports its own failures to the reader by
/// returning `StorageError::IOError(Arc::new(std::io::Error::other(StorageFailure { .. })))`; the
/// reader finds it again and keeps its kind. Any other storage error is classified from the
/// `std::io::ErrorKind` (timeouts) or counted as [`ErrorKind::Network`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StorageFailure {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// Sanitized description (no token, no URL query).
    pub message: String,
}

impl StorageFailure {
    /// Wraps the failure into the error type zarrs storages return.
    pub fn into_storage_error(self) -> StorageError {
        StorageError::IOError(Arc::new(std::io::Error::other(self)))
    }
}

/// Everything that can go wrong reading a Zarr store. Messages name the store and the key.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ZarrError {
    /// The storage failed to deliver a key (network, timeout, integrity check...).
    #[error("store {store}: reading `{key}` failed: {message}")]
    Storage {
        /// Store name.
        store: String,
        /// Key being read.
        key: String,
        /// Kind reported by the storage.
        kind: ErrorKind,
        /// Sanitized storage message.
        message: String,
    },
    /// A key the store must have is absent.
    #[error("store {store}: `{key}` is missing; {hint}")]
    MissingKey {
        /// Store name.
        store: String,
        /// Missing key.
        key: String,
        /// What it is and what to do.
        hint: String,
    },
    /// A value is larger than the configured limit (checked before parsing or allocating).
    #[error(
        "store {store}: `{key}` is {size} bytes, over the {limit}-byte limit for {what}; \
         the store is refused (raise the limit only for a trusted source)"
    )]
    TooLarge {
        /// Store name.
        store: String,
        /// Offending key.
        key: String,
        /// Size found or declared.
        size: u64,
        /// Configured limit.
        limit: u64,
        /// What the limit is for.
        what: &'static str,
    },
    /// Metadata or data that cannot be used: invalid JSON, unsupported codec or data type, a
    /// chunk that does not decode to its declared size, a wrong layout.
    #[error("store {store}: `{key}`: {message}")]
    Format {
        /// Store name.
        store: String,
        /// Key or array concerned.
        key: String,
        /// What is wrong and what would be accepted.
        message: String,
    },
    /// None of the accepted names of a variable is in the store.
    #[error("store {store}: variable {variable} not found (accepted names: {accepted})")]
    MissingVariable {
        /// Store name.
        store: String,
        /// The variable.
        variable: Variable,
        /// Accepted names, comma separated.
        accepted: String,
    },
    /// A requested pressure level is not in the store (levels are never interpolated).
    #[error(
        "store {store}: variable {variable} has no level {level} hPa (levels in the store: {available})"
    )]
    MissingLevel {
        /// Store name.
        store: String,
        /// The variable.
        variable: Variable,
        /// The missing level, hPa.
        level: Level,
        /// Levels present, hPa.
        available: String,
    },
    /// The requested valid time is not on the time axis (times are matched exactly).
    #[error(
        "store {store}: valid time {time} is not in `{array}` (times in the store: {available})"
    )]
    MissingTime {
        /// Store name.
        store: String,
        /// Array (variable or `time`).
        array: String,
        /// Requested time, RFC 3339.
        time: String,
        /// A short summary of the times present.
        available: String,
    },
}

impl ZarrError {
    /// The kind of failure. Who is to blame is decided by the caller: the same format error is
    /// the miner's fault in a miner store and ours in an ERA5 mirror. A [`ZarrError::MissingTime`]
    /// is [`ErrorKind::Format`] here; truth readers' callers treat it as "not available yet".
    pub fn kind(&self) -> ErrorKind {
        match self {
            ZarrError::Storage { kind, .. } => *kind,
            ZarrError::TooLarge { .. } => ErrorKind::TooLarge,
            ZarrError::MissingKey { .. }
            | ZarrError::Format { .. }
            | ZarrError::MissingVariable { .. }
            | ZarrError::MissingLevel { .. }
            | ZarrError::MissingTime { .. } => ErrorKind::Format,
        }
    }

    /// A [`ZarrError::Format`] about `key` of `store` (readers built on this crate use it for
    /// layouts they refuse).
    pub fn format(store: &str, key: &str, message: impl Into<String>) -> ZarrError {
        ZarrError::Format {
            store: store.to_owned(),
            key: key.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn storage(store: &str, key: &str, err: &StorageError) -> ZarrError {
        let (kind, message) = classify_storage_error(err);
        ZarrError::Storage {
            store: store.to_owned(),
            key: key.to_owned(),
            kind,
            message: wx_model::sanitize_message(&message, &[]),
        }
    }
}

/// The kind and message of a storage error (see [`StorageFailure`]).
fn classify_storage_error(err: &StorageError) -> (ErrorKind, String) {
    if let StorageError::IOError(io) = err {
        if let Some(failure) = io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<StorageFailure>())
        {
            return (failure.kind, failure.message.clone());
        }
        let kind = match io.kind() {
            std::io::ErrorKind::TimedOut => ErrorKind::Timeout,
            _ => ErrorKind::Network,
        };
        return (kind, io.to_string());
    }
    (ErrorKind::Network, err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_failures_keep_their_kind_through_zarrs_errors() {
        let err = StorageFailure {
            kind: ErrorKind::Integrity,
            message: "hash mismatch for 2t/0.0.0".into(),
        }
        .into_storage_error();
        let zerr = ZarrError::storage("miner 7", "2t/0.0.0", &err);
        assert_eq!(zerr.kind(), ErrorKind::Integrity);
        assert!(zerr.to_string().contains("hash mismatch"), "{zerr}");

        let timeout = StorageError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "read timed out",
        ));
        assert_eq!(
            ZarrError::storage("s", "k", &timeout).kind(),
            ErrorKind::Timeout
        );
        let other = StorageError::Other("connection reset".into());
        assert_eq!(
            ZarrError::storage("s", "k", &other).kind(),
            ErrorKind::Network
        );
    }
}
