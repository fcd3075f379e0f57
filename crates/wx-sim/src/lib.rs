//! A simulated world for wx's end-to-end tests and the demo, entirely in Rust (no Python, no
//! network): a deterministic "truth" weather, the reference products the validator scores
//! against, and a network of simulated miners serving signed Zarr stores on 127.0.0.1 — all
//! written so that wx-data's production readers read them through their production code paths.
//!
//! ```no_run
//! # async fn demo() -> Result<(), wx_sim::SimError> {
//! use wx_sim::{MinerNetwork, NetworkOptions, World, WorldSpec};
//! let world = World::generate(WorldSpec::default(), "/tmp/wx-demo-world").await?;
//! let network = MinerNetwork::start(&world, NetworkOptions::default()).await?;
//! for miner in network.endpoints() {
//!     // import (miner.uid, miner.hotkey, miner.store_url, miner.access_token) into `miners`
//! }
//! // … run the pipeline with ERA5 = world.paths.era5, climatology = world.paths.climatology,
//! // GFS = LocalGfsSource::new(&world.paths.gfs, GfsLayout::default()), init = world.spec.gfs_init
//! network.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Public API
//!
//! * [`WorldSpec`] (serde, `Default` = the demo world): grid resolution, miner grid
//!   ([`MinerGridKind`]), GFS init, number of 6-hourly steps, Day1 and ERA5 leads, ERA5 levels
//!   ([`Era5Levels`]), seed and the miners ([`MinerSpec`] = uid + [`Behaviour`]);
//!   [`standard_mix`] builds the usual mix; [`WorldSpec::small`] a fast world for tests.
//! * [`World::generate`]`(spec, dir)` writes everything under `dir` and returns a [`World`]:
//!   [`WorldPaths`], the [`SimMiner`]s (uid, hotkey, token, behaviour, store, manifest hash,
//!   probes), [`WorldProbes`] of the reference products and a [`WorldSummary`] (sizes,
//!   per-phase timings). `dir/world.json` describes the world (no tokens);
//!   [`World::load`] / [`World::load_or_generate`] read a generated world back.
//! * [`MinerNetwork::start`]`(&world, options)` serves every miner and returns
//!   [`MinerEndpoint`]s (uid, hotkey, store URL, access token, behaviour, manifest hash);
//!   [`MinerNetwork::shutdown`].
//! * [`TruthModel`] (also [`World::model`]): truth and climatology at any point — for error
//!   maps and for tests; [`Grid`].
//! * [`MinerKey`], [`ss58_encode`], [`miner_token`]: the deterministic identities.
//!
//! # The world
//!
//! The **truth** ([`model`]) is climatology + travelling waves, in the catalogue's units, on
//! the truth grid (both poles, 90 → −90, 0 → 360 − res; 37 × 72 at 5°), 6-hourly from the init
//! to the last lead.
//!
//! * **ERA5** (`era5/`): ARCO-ERA5 layout — Zarr v2, consolidated; long names
//!   (`2m_temperature`, …, `geopotential`) with ERA5 `units`, `long_name`, `short_name`; dims
//!   `(time, [level], latitude, longitude)`; `time` `<i8` hours since 1900-01-01
//!   (proleptic_gregorian), every 6 h from the init to the last lead; `level` `<i8` (the 13
//!   scored levels, or all 37 with [`Era5Levels::Arco37`]); `latitude` `<f4` 90 … −90;
//!   chunks one time × all levels × whole grid, Blosc(zstd, 5, bitshuffle). Values = truth.
//!   With [`Era5Publication::Progressive`] it is published as the public store is: the axis
//!   padded beyond the data, root attributes `valid_time_start`, `valid_time_stop_era5t` and
//!   `valid_time_stop`, no chunk after the ERA5T stop; an [`Era5Publisher`] (see
//!   [`publication`]) publishes the next days, by hand or on an [`Era5Schedule`] that follows
//!   an injected clock, and can stall and resume.
//! * **Climatology** (`climatology/`): WeatherBench2 layout — long names, dims
//!   `(hour, dayofyear, [level], longitude, latitude)` in that order, `hour` 0/6/12/18,
//!   `dayofyear` 1 … 366, `latitude` `<f8` **ascending** −90 … 90, chunks one (hour, day)
//!   each, Zstd(3). **Only the days the run needs hold chunks**: every hour of each day from
//!   one day before the init to one day after the last lead
//!   ([`WorldSummary::climatology_days`]); other days have no chunks, and a reader with the
//!   default `MissingChunkPolicy::Error` fails loudly if asked for one. Values = the model's
//!   climatology, which is exactly truth − anomaly at every valid time.
//! * **GFS** (`gfs/`): a `LocalGfsSource` tree (`gfs.YYYYMMDD/HH/atmos/gfs.tHHz.pgrb2.0p25.fFFF` +
//!   `.idx`, GRIB2 simple packing by `wx_grib::writer::write_local_cycle`) on the truth
//!   grid, holding for every Day1 lead L the forecast of the init cycle at L (truth + the
//!   error of a skilled miner of scale 0.8) and the analysis f000 of the cycle init + L (truth +
//!   a small error).
//! * **Miner stores** (`miners/miner-NNN/`): exactly docs/data.md §1.1 — Zarr v2, consolidated
//!   `.zmetadata`, `.` chunk keys, `2t 10u 10v msl` (time, lat, lon) and `t u v q z` (time, plev,
//!   lat, lon), `<f4`, fill "NaN", chunks one step × all levels × whole grid,
//!   Blosc(zstd, 3, bitshuffle) data and Blosc(lz4) coordinates, `time` `<f8` "hours since
//!   <init + 6 h>" (standard) with `steps` values, `plev` `<i4` 13 levels, `lat` `<f4` without
//!   −90 (720-style) or with it, `lon` `<f4`; no `units`, `"coordinates": "time"` as xarray
//!   leaves it. Every JSON is `json.dumps(sort_keys=True, indent=4)`. `manifest.json` lists
//!   every other file with sha256(path ‖ 0x00 ‖ bytes), same serialisation, keys
//!   `chunk_hash_algorithm`, `files`, `manifest_schema_version` "1.0",
//!   `profile_structure_version`, `signer_hotkey_ss58`; `manifest.sig` is the raw 64-byte
//!   sr25519 signature (context "substrate") by the miner's [`MinerKey`], made
//!   deterministically.
//!
//! # Behaviours
//!
//! See [`Behaviour`]: skilled miners of several error scales (error grows with lead, bias,
//! damping of anomalies), a GFS clone (exactly the decoded GFS at the Day1 leads → Day1
//! clamp), an offline miner, a flaky one, a tampered store (served bytes differ from the
//! manifest), NaN injection (coverage failure), missing variables, a climatology forecaster.
//! The faults live in the [`network`] (server side); the stores on disk are always
//! consistent with their manifests.
//!
//! Everything is a pure function of the spec: the same spec gives byte-identical files
//! (signatures included).

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod json;
pub mod keys;
pub mod miners;
pub mod model;
pub mod network;
pub mod publication;
mod rng;
pub mod spec;
mod truth;
pub mod world;
mod zarr_write;

pub use keys::{MinerKey, miner_token, ss58_encode};
pub use model::{Grid, TruthModel};
pub use network::{MinerEndpoint, MinerNetwork, NetworkOptions};
pub use publication::{Era5Publisher, Era5Schedule, FollowHandle};
pub use spec::{
    Behaviour, ERA5_LEVELS_37, Era5Levels, Era5Publication, MinerGridKind, MinerSpec, WorldSpec,
    standard_mix,
};
pub use world::{PhaseTiming, Probe, SimMiner, World, WorldPaths, WorldProbes, WorldSummary};

use std::path::{Path, PathBuf};

/// Why generating or serving a world failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The spec is not usable.
    #[error("invalid world spec: {0}")]
    InvalidSpec(String),
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Encoding a chunk or a document failed.
    #[error("encoding: {0}")]
    Encode(String),
    /// Writing or reading back the GFS tree failed.
    #[error("GFS: {0}")]
    Gfs(String),
    /// Starting the network failed.
    #[error("network: {0}")]
    Network(String),
    /// A background task failed.
    #[error("generation task: {0}")]
    Task(String),
}

impl SimError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> SimError {
        SimError::Io {
            path: path.to_owned(),
            source,
        }
    }
}
