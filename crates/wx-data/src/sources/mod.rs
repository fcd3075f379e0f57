//! Readers of the Zarr sources wx scores with, each returning [`crate::Field`]s in
//! (level, lat, lon) order with the coordinates as stored:
//!
//! - [`MinerForecastReader`]: a miner's forecast store (docs/data.md §1), validated per variable
//!   before any data is read, read one valid time at a time;
//! - [`Era5Reader`]: ERA5 truth in the ARCO-ERA5 layout (docs/data.md §3.2–§3.3), with what is published
//!   ([`Era5Reader::publication`]: the extent of the root attributes and the chunks present);
//! - [`ClimatologyReader`]: the WeatherBench2 hourly climatology (nearest day of year and hour
//!   floored to the store's step, docs/scoring.md §2).
//!
//! All take a [`wx_zarr::DynStorage`] and [`wx_zarr::ReadOptions`], so a local
//! directory, HTTP(S) with manifest verification, S3 and GCS are read by the same code.
//! Variable names are matched with `Variable::accepted_names`, level dimensions with
//! `LEVEL_DIMENSION_NAMES` (values in Pa converted by `level_to_hpa`), levels and times exactly,
//! `units` with `check_units` (missing accepted).

pub mod climatology;
pub mod era5;
pub mod layout;
pub mod miner;

pub use climatology::ClimatologyReader;
pub use era5::{Era5Extent, Era5Flavour, Era5Reader, ExtentBasis, PendingReason, Publication};
pub use layout::VariableLayout;
pub use miner::MinerForecastReader;
