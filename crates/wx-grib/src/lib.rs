//! wx-grib: GRIB2 as NOAA publishes GFS (docs/data.md §3.1), the format half of wx's GFS access.
//!
//! This crate reads and writes bytes it is handed; it does no network IO and does not depend
//! on `object_store` or an HTTP client. wx-data's GFS sources fetch the inventory and the byte
//! ranges and call it.
//!
//! # Public API
//!
//! * [`idx`] — NOAA `.idx` inventories: [`idx::GribIndex::parse`] (at most
//!   [`idx::MAX_IDX_BYTES`]; every line checked), [`idx::GribIndex::find`] by `.idx` variable
//!   and level, and [`idx::GribIndex::range_of`], the byte range of a message (to the next
//!   message's offset, the last one open-ended).
//! * [`grib`] — GRIB2 decoding: [`grib::split_messages`] (a file into messages),
//!   [`grib::split_fields`] (a message into its fields, repeated and inherited sections
//!   resolved, bitmap indicator 254 included), [`grib::decode_message`] (every field of a
//!   message: [`grib::FieldIdentity`], [`grib::LatLonGrid`] of template 3.0, values with NaN
//!   where the bitmap marks a point missing). Section 7 is unpacked by `gribberish` on exactly
//!   one field's bytes (templates 5.0, 5.2, 5.3, 5.40–5.42) and its output count is checked.
//! * [`catalog`] — [`catalog::MessageRequest`]: which GRIB parameter and surface, and which
//!   `.idx` names, hold a wx variable at a level, and the factor applied (`z = g · HGT`).
//! * [`GfsLayout`] — NOAA's key layout, `gfs.YYYYMMDD/HH/atmos/gfs.tHHz.<product>.fFFF`
//!   (+ `.idx`).
//! * [`writer`] — [`writer::encode_simple`] (one field as a simple-packing GRIB2 message) and
//!   [`writer::write_local_cycle`] (the GRIB2 file and `.idx` of a cycle in a local tree laid
//!   out as [`GfsLayout`] says), so a GFS tree can be produced from arrays without Python.
//!
//! # Limits and errors
//!
//! All arithmetic on offsets and lengths read from the bytes is checked: a truncated, damaged
//! or hostile message is a [`grib::GribError`] (a panic inside gribberish's unpackers is caught
//! and reported as one), a malformed inventory an [`idx::IdxError`] naming the line. Neither
//! ever panics on the bytes it is given; `tests/gfs_fuzz.rs` mutates real messages to hold
//! that. Messages describe what is wrong in words; they carry no URL or secret, since this
//! crate never sees one.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod catalog;
pub mod grib;
pub mod idx;
mod layout;
pub mod writer;

pub use layout::{GfsLayout, PRODUCT_0P25};
