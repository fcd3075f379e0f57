//! GFS truth and reference fields (docs/data.md §3.1): NOAA Open Data GRIB2 read by byte range.
//!
//! # Public API
//!
//! * [`GfsSource`] — the async trait the scoring steps use:
//!   [`GfsSource::analysis`]`(valid_time, vars)` (= f000 of the cycle `valid_time`) and
//!   [`GfsSource::forecast`]`(init, lead_hours, vars)`, each returning one [`Field`] per
//!   requested [`VarLevel`], in request order: a surface variable as a `[1, lat, lon]` field,
//!   a multi-level variable at the selected level or at all 13 scored levels (ascending hPa).
//!   Geopotential is `z = 9.80665 · HGT` (m² s⁻²). Coordinates come from the GRIB grid
//!   definition, as stored (GFS: latitude 90 → −90, longitude 0 → 359.75).
//! * Implementations: [`S3GfsSource`] (NOAA's bucket `noaa-gfs-bdp-pds`, anonymous,
//!   us-east-1, grid checked to be 721 × 1440), [`LocalGfsSource`] (a directory with the same
//!   key layout — tests and the demo), both the same [`ObjectStoreGfs`] reader over an
//!   `object_store`; and [`InMemoryGfsSource`], fields held in memory (for a synthetic demo or
//!   for tests of the steps; no GRIB involved).
//! * The format is the crate `wx-grib`: [`wx_grib::GfsLayout`] builds keys
//!   `gfs.YYYYMMDD/HH/atmos/gfs.tHHz.pgrb2.0p25.fFFF` (+ `.idx`), [`wx_grib::idx::GribIndex`]
//!   parses `.idx` inventories and gives message byte ranges, [`wx_grib::grib::decode_message`]
//!   decodes every field of a message, [`wx_grib::catalog::MessageRequest`] says which message
//!   holds which variable, and [`wx_grib::writer`] writes a local tree a [`LocalGfsSource`]
//!   reads. This module fetches the bytes and assembles [`Field`]s.
//!
//! # How a read works
//!
//! 1. The cycle is checked (00/06/12/18 UTC on the hour, lead ≤ 384 h), the `.idx` is fetched
//!    (≤ 4 MiB) and parsed; each requested variable/level must be listed exactly once and with
//!    `d=` equal to the cycle.
//! 2. The byte ranges of the needed messages (offset of message n to offset of message n+1 − 1,
//!    the last to the end of the file) are sorted, adjacent ones merged, and fetched with
//!    ranged GETs (4 in flight); each message ≤ 64 MiB.
//! 3. Each message is split into its fields (a message may hold several, e.g. UGRD+VGRD in
//!    older GFS files, including bitmap indicator 254); the field that matches the request by
//!    GRIB parameter and level is decoded — never by position. Its product template must be
//!    4.0, its reference time the cycle and its forecast time the lead; otherwise the read
//!    fails with [`GfsError::Message`]. Nothing is skipped silently.
//!
//! # Errors
//!
//! [`GfsError::kind`] maps to [`wx_model::ErrorKind`]: a missing file is
//! `SourceUnavailable` (retry later), network problems `Network`/`Timeout`, limits `TooLarge`,
//! anything wrong in the inventory or the GRIB data `Format`, and a bad request (cycle hour,
//! lead, a level on a surface variable) `Internal`.

mod memory;
mod source;

pub use memory::InMemoryGfsSource;
pub use source::{
    ExpectedGrid, GfsLimits, LocalGfsSource, MAX_LEAD_HOURS, MAX_MESSAGE_BYTES, NOAA_GFS_BUCKET,
    NOAA_GFS_REGION, ObjectStoreGfs, S3GfsConfig, S3GfsSource,
};

use crate::field::Field;
use async_trait::async_trait;
use chrono::{DateTime, Timelike, Utc};
use wx_model::{ErrorKind, VarLevel};

/// A source of GFS fields.
#[async_trait]
pub trait GfsSource: Send + Sync {
    /// Identifies the source in cache keys (e.g. `gfs-noaa-s3`).
    fn source_id(&self) -> &str;

    /// The forecast of cycle `init` at `lead_hours`: one [`Field`] per entry of `vars`, in
    /// order, valid at `init + lead_hours`.
    async fn forecast(
        &self,
        init: DateTime<Utc>,
        lead_hours: u32,
        vars: &[VarLevel],
    ) -> Result<Vec<Field>, GfsError>;

    /// The analysis valid at `valid_time`: f000 of the cycle starting at `valid_time`.
    async fn analysis(
        &self,
        valid_time: DateTime<Utc>,
        vars: &[VarLevel],
    ) -> Result<Vec<Field>, GfsError> {
        self.forecast(valid_time, 0, vars).await
    }
}

/// Checks that `init` is a GFS cycle (00, 06, 12 or 18 UTC on the hour) and the lead exists.
pub fn validate_cycle(init: DateTime<Utc>, lead_hours: u32) -> Result<(), GfsError> {
    if !init.hour().is_multiple_of(6)
        || init.minute() != 0
        || init.second() != 0
        || init.nanosecond() != 0
    {
        return Err(GfsError::InvalidRequest(format!(
            "{} is not a GFS cycle (00, 06, 12 or 18 UTC on the hour)",
            init.to_rfc3339()
        )));
    }
    if lead_hours > MAX_LEAD_HOURS {
        return Err(GfsError::InvalidRequest(format!(
            "lead {lead_hours} h is beyond the {MAX_LEAD_HOURS} h GFS publishes"
        )));
    }
    Ok(())
}

/// A GFS read that failed. Messages name the store and the key and never contain secrets.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GfsError {
    /// The request itself is invalid (not a cycle, lead too long, level on a surface variable).
    #[error("invalid GFS request: {0}")]
    InvalidRequest(String),
    /// The file or its inventory does not exist (not published yet, or purged).
    #[error("GFS {store}: `{key}` is not available (not published yet?); retry later")]
    NotAvailable {
        /// The store.
        store: String,
        /// The key.
        key: String,
    },
    /// A request failed (network, server).
    #[error("GFS {store}: fetching `{key}` failed: {message}")]
    Fetch {
        /// The store.
        store: String,
        /// The key.
        key: String,
        /// Sanitized cause.
        message: String,
        /// `Network` or `Timeout`.
        kind: ErrorKind,
    },
    /// A response exceeds a size limit.
    #[error("GFS {store}: `{key}`: {what} of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The store.
        store: String,
        /// The key.
        key: String,
        /// What was fetched.
        what: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The `.idx` inventory is malformed or inconsistent.
    #[error("GFS {store}: inventory `{key}`: {reason}")]
    Index {
        /// The store.
        store: String,
        /// The `.idx` key.
        key: String,
        /// What is wrong (with the line number).
        reason: String,
    },
    /// The inventory does not list a needed field.
    #[error("GFS {store}: inventory `{key}` does not list {wanted}")]
    MissingMessage {
        /// The store.
        store: String,
        /// The `.idx` key.
        key: String,
        /// The field, `TMP:500 mb`.
        wanted: String,
    },
    /// The inventory lists a needed field more than once.
    #[error(
        "GFS {store}: inventory `{key}` lists {wanted} {count} times; cannot tell which to use"
    )]
    AmbiguousMessage {
        /// The store.
        store: String,
        /// The `.idx` key.
        key: String,
        /// The field.
        wanted: String,
        /// How often it is listed.
        count: usize,
    },
    /// A GRIB message cannot be decoded or is not what the inventory says.
    #[error("GFS {store}: `{key}`, message at byte {offset}: {reason}")]
    Message {
        /// The store.
        store: String,
        /// The GRIB key.
        key: String,
        /// Byte offset of the message.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

impl GfsError {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            GfsError::InvalidRequest(_) => ErrorKind::Internal,
            GfsError::NotAvailable { .. } => ErrorKind::SourceUnavailable,
            GfsError::Fetch { kind, .. } => *kind,
            GfsError::TooLarge { .. } => ErrorKind::TooLarge,
            GfsError::Index { .. }
            | GfsError::MissingMessage { .. }
            | GfsError::AmbiguousMessage { .. }
            | GfsError::Message { .. } => ErrorKind::Format,
        }
    }
}
