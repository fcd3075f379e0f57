//! # wx-scoring-py
//!
//! The Python extension module `wx_scoring._core`: wx-scoring's kernels and score
//! aggregations for numpy arrays, so that miners compute the validator's numbers bit for bit.
//! Nothing here computes a metric: every number comes from wx-scoring; this crate checks and
//! converts inputs (`arrays`, `config`), releases the GIL around the kernels, and shapes the
//! results for Python (`metrics`).
//!
//! - `field`: `score_field` (one 2-D field), `score_variable` (one variable at one lead, the
//!   validator's ERA5 sequence), `aggregate_levels`;
//! - `scores`: thickness weights, ERA5 lead and combined scores, Day1, overall score, ranking
//!   weights;
//! - `regrid`: the validator's orientation and regridding rules (`to_canonical`, `regrid`).
//!
//! The pure-Python part of the package (`python/wx_scoring/`: the xarray layer and
//! `python -m wx_scoring score`) and its tests live beside this crate; see `docs/python.md`.

mod arrays;
mod config;
mod errors;
mod field;
mod metrics;
mod regrid;
mod scores;

use pyo3::prelude::*;

/// The compiled core of the wx_scoring package: wx-scoring's kernels and aggregations.
#[pymodule]
#[pyo3(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add(
        "COINCIDENCE_TOLERANCE_DEG",
        wx_scoring::grid::COINCIDENCE_TOLERANCE_DEG,
    )?;
    m.add_class::<metrics::PyFieldMetrics>()?;
    m.add_class::<metrics::PyVariableMetrics>()?;
    m.add_function(wrap_pyfunction!(field::score_field, m)?)?;
    m.add_function(wrap_pyfunction!(field::score_variable, m)?)?;
    m.add_function(wrap_pyfunction!(field::aggregate_levels, m)?)?;
    m.add_function(wrap_pyfunction!(field::kernel_seconds, m)?)?;
    m.add_function(wrap_pyfunction!(scores::thickness_weights, m)?)?;
    m.add_function(wrap_pyfunction!(scores::lead_score, m)?)?;
    m.add_function(wrap_pyfunction!(scores::era5_combined, m)?)?;
    m.add_function(wrap_pyfunction!(scores::day1_score, m)?)?;
    m.add_function(wrap_pyfunction!(scores::overall_score, m)?)?;
    m.add_function(wrap_pyfunction!(scores::ranking_weights, m)?)?;
    m.add_function(wrap_pyfunction!(scores::mean_over_runs, m)?)?;
    m.add_function(wrap_pyfunction!(regrid::to_canonical, m)?)?;
    m.add_function(wrap_pyfunction!(regrid::regrid, m)?)?;
    m.add_function(wrap_pyfunction!(config::default_config, m)?)?;
    m.add_function(wrap_pyfunction!(config::effective_config, m)?)?;
    Ok(())
}
