//! # wx-scoring
//!
//! Pure, deterministic verification kernels for the wx validator: ndarray
//! views in, numbers out. No IO, no async, no storage formats.
//!
//! What it computes is defined in `docs/scoring.md`, whose sections the table
//! follows:
//!
//! | docs/scoring.md | here |
//! |---|---|
//! | §2 grids, regridding, coverage | [`Grid`], [`Orientation`], [`Regridder`], [`FieldMetrics::field_failure`] |
//! | §3 metrics (one fused kernel) | [`field_sums`], [`stack_sums`], [`score_field`], [`FieldMetrics`] |
//! | §3 multi-level | [`thickness_weights`], [`score_levels`], [`VariableMetrics`] |
//! | §4 Day1 | [`day1_pair`], [`day1_score`] |
//! | §5 ERA5 | [`era5_variable`], [`era5_lead_score`], [`era5_combined`] |
//! | §6 overall | [`overall_score`] |
//! | §7 ranking weights | [`ranking_weights`], [`mean_over_runs`] |
//! | constants | [`ScoringConfig`] |
//!
//! Inputs may be `f32` or `f64` ([`Float`]); all sums are `f64`. Results are
//! bit-identical for any rayon thread count (see [`kernel`]). Invalid inputs
//! (shape mismatches, bad coordinates) are [`ScoringError`]s; metrics that
//! cannot be computed on valid inputs are [`MetricFailure`] values, so the
//! other metrics of the same field are still available.
//!
//! ```
//! use ndarray::Array2;
//! use wx_scoring::{FieldInputs, Grid, Reference, ScoringConfig, score_field};
//!
//! let grid = Grid::regular_global(73, 144).unwrap();
//! let (ny, nx) = grid.shape();
//! let clim = Array2::<f32>::from_shape_fn((ny, nx), |(i, _)| 280.0 - 0.5 * i as f32);
//! let truth = Array2::<f32>::from_shape_fn((ny, nx), |(i, j)| clim[[i, j]] + ((i * 7 + j * 3) % 11) as f32 - 5.0);
//! let forecast = Array2::<f32>::from_shape_fn((ny, nx), |(i, j)| truth[[i, j]] + ((i + j) % 3) as f32 - 1.0);
//! let inputs = FieldInputs::new(forecast.view(), truth.view())
//!     .with_climatology(clim.view())
//!     .with_reference(Reference::Climatology);
//! let m = score_field(&inputs, &grid.lat_weights(), &ScoringConfig::default()).unwrap();
//! assert!(m.acc.unwrap().unwrap() > 0.5);
//! assert!(m.skill.unwrap().unwrap() > 0.0);
//! ```

#![deny(unsafe_code)] // allowed only where a module states why (see its `#[allow(unsafe_code)]`)
#![warn(missing_docs)]

pub mod config;
pub mod day1;
pub mod era5;
pub mod error;
pub mod float;
pub mod grid;
// SIMD intrinsics and unchecked row access in the hot kernel; each block states its invariant
#[allow(unsafe_code)]
pub mod kernel;
// AVX2 intrinsics behind a runtime feature check; each block states its invariant
#[allow(unsafe_code)]
mod lanes;
pub mod levels;
pub mod metrics;
pub mod moments;
pub mod outcome;
pub mod overall;
pub mod weights;

pub use config::{
    Day1Config, Era5Config, FieldConfig, OverallConfig, ScoringConfig, WeightCurveConfig,
};
pub use day1::{Day1Pair, Day1PairFailure, Day1Score, day1_pair, day1_score};
pub use era5::{
    Era5Combined, Era5Lead, Era5Variable, Era5VariableFailure, LeadIncomplete, era5_combined,
    era5_combined_available, era5_lead_score, era5_variable, rmse_term,
};
pub use error::{ConfigError, ScoringError};
pub use float::Float;
pub use grid::{Grid, Orientation, Regridder, lat_weights};
pub use kernel::{FieldInputs, FieldSums, Reference, StackInputs, field_sums, stack_sums};
pub use levels::{VariableMetrics, score_levels, thickness_weights};
pub use metrics::{
    FieldFailure, FieldMetrics, MetricFailure, MetricValue, score_field, skill_score,
};
pub use moments::{CoMoments, Moments};
pub use outcome::VariableOutcome;
pub use overall::{OverallScore, OverallTier, overall_score};
pub use weights::{RankingWeights, mean_over_runs, ranking_weights};

#[doc(hidden)]
pub mod __private {
    //! Test hooks, not part of the API.
    pub use crate::kernel::{CodePath, field_sums_impl as field_sums_with_path};
}
