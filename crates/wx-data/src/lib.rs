//! Verified access to the data wx scores: miner forecast stores (Zarr over HTTPS with a bearer
//! token and a signed manifest), GFS (GRIB2 on NOAA Open Data), ERA5 (ARCO-ERA5 Zarr) and the
//! WeatherBench2 climatology, with a disk cache and an in-memory field cache.
//!
//! Everything is read through `object_store` and `zarrs`: local directories, HTTP(S), S3 and
//! GCS go through one code path. Readers return [`Field`]s in the dimension order
//! (level, lat, lon) with their coordinates as stored; orientation normalisation and regridding
//! are done by `wx-scoring`.
//!
//! This crate is the transport, integrity, caches and the sources that compose them; the
//! formats are crates of their own that do no network IO: `wx-zarr` (Zarr metadata, bounded
//! chunk decoding, CF) and `wx-grib` (`.idx`, GRIB2 decoding, NOAA's layout, the writer).

#![deny(unsafe_code)] // allowed only where a module states why (see its `#[allow(unsafe_code)]`)
#![warn(missing_docs)]

pub mod cache;
pub mod field;
pub mod gfs;
pub mod manifest;
pub mod sources;
pub mod transport;
pub mod verified;

pub use field::{Field, FieldError};
