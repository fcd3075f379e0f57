//! Scoring fields: one 2-D field (`score_field`), one variable at one lead (`score_variable`,
//! the validator's ERA5 sequence), and the level aggregate of per-level results.

use ndarray::{ArrayView2, ArrayView3, Axis, Ix2, IxDyn};
use numpy::{Element, PyReadonlyArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use wx_scoring::{
    FieldInputs, Float, MetricFailure, Reference, ScoringConfig, ScoringError, StackInputs,
    VariableMetrics, score_field as kernel_score_field, score_levels, thickness_weights,
};

use crate::arrays::{FloatType, field, float_type, ndarray, row_weights, stack};
use crate::config;
use crate::errors::{invalid, scoring_error};
use crate::metrics::{FieldResult, PyFieldMetrics, PyVariableMetrics};

/// Runs the kernel as the validator does: with the climatology as skill reference (ERA5) when
/// there is one, and again with the reference field (Day1) when there is one.
fn compute_field<T: Float>(
    forecast: ArrayView2<'_, T>,
    truth: ArrayView2<'_, T>,
    climatology: Option<ArrayView2<'_, T>>,
    reference: Option<ArrayView2<'_, T>>,
    weights: &[f64],
    cfg: &ScoringConfig,
) -> Result<FieldResult, ScoringError> {
    let mut inputs = FieldInputs::new(forecast, truth);
    if let Some(c) = climatology {
        inputs = inputs.with_climatology(c);
    }
    let vs_reference = reference
        .map(|r| kernel_score_field(&inputs.with_reference(Reference::Field(r)), weights, cfg))
        .transpose()?;
    let base = match (&climatology, &vs_reference) {
        (Some(_), _) => {
            kernel_score_field(&inputs.with_reference(Reference::Climatology), weights, cfg)?
        }
        (None, Some(v)) => v.clone(),
        (None, None) => kernel_score_field(&inputs, weights, cfg)?,
    };
    Ok(FieldResult {
        base,
        skill_vs_climatology: climatology.is_some(),
        vs_reference,
    })
}

/// Every field must have the truth's shape.
fn check_shapes(named: &[(&str, &[usize])], truth: &[usize]) -> PyResult<()> {
    for (what, shape) in named {
        if *shape != truth {
            return Err(invalid(format!(
                "shape mismatch: {what} has shape {shape:?} but truth has {truth:?}; put every \
                 field on the truth grid (wx_scoring.regrid) with the same levels first"
            )));
        }
    }
    Ok(())
}

/// The field API is strict: an input without a usable point is a mistake upstream (a wrong
/// selection, a mask applied twice), not a score.
fn check_not_empty(r: &FieldResult) -> PyResult<()> {
    let no_points =
        |v: Option<&wx_scoring::MetricValue>| matches!(v, Some(Err(MetricFailure::NoValidPoints)));
    if r.base.n_truth == 0 {
        return Err(invalid(
            "truth has no finite value (NaN-only field); check the selection (variable, level, \
             time) that produced it",
        ));
    }
    if r.base.n_pairs == 0 {
        return Err(invalid(
            "forecast has no finite value where the truth is finite (NaN-only field); the \
             validator scores such a variable 0 (coverage 0). Check the forecast selection, or \
             use score_variable, which scores it as the validator does",
        ));
    }
    if r.skill_vs_climatology && no_points(r.base.mse_clim.as_ref()) {
        return Err(invalid(
            "climatology has no finite value where the truth is finite (NaN-only field); check \
             the day of year and hour selected",
        ));
    }
    if let Some(v) = &r.vs_reference
        && no_points(v.clone_distance.as_ref())
    {
        return Err(invalid(
            "reference has no finite value where the forecast is finite (NaN-only field); check \
             the reference selection",
        ));
    }
    Ok(())
}

/// The Python inputs of one `score_field` call.
struct FieldArgs<'a, 'py> {
    forecast: &'a Bound<'py, PyAny>,
    truth: &'a Bound<'py, PyAny>,
    latitudes: &'a Bound<'py, PyAny>,
    climatology: Option<&'a Bound<'py, PyAny>>,
    reference: Option<&'a Bound<'py, PyAny>>,
}

fn score_field_typed<T: Float + Element>(
    py: Python<'_>,
    ft: FloatType,
    args: &FieldArgs<'_, '_>,
    cfg: &ScoringConfig,
) -> PyResult<FieldResult> {
    let FieldArgs {
        forecast,
        truth,
        latitudes,
        climatology,
        reference,
    } = *args;
    const DIMS: &str = "2 (lat, lon)";
    let first = ("forecast", ft);
    let f: PyReadonlyArray<'_, T, Ix2> = field("forecast", forecast, first, DIMS)?;
    let o: PyReadonlyArray<'_, T, Ix2> = field("truth", truth, first, DIMS)?;
    let c = climatology
        .map(|c| field::<T, Ix2>("climatology", c, first, DIMS))
        .transpose()?;
    let r = reference
        .map(|r| field::<T, Ix2>("reference", r, first, DIMS))
        .transpose()?;
    let mut named = vec![("forecast", f.shape())];
    named.extend(c.as_ref().map(|c| ("climatology", c.shape())));
    named.extend(r.as_ref().map(|r| ("reference", r.shape())));
    check_shapes(&named, o.shape())?;
    let weights = row_weights(latitudes, o.shape()[0])?;
    let (fv, ov) = (f.as_array(), o.as_array());
    let cv = c.as_ref().map(|c| c.as_array());
    let rv = r.as_ref().map(|r| r.as_array());
    py.detach(|| compute_field(fv, ov, cv, rv, &weights, cfg))
        .map_err(scoring_error)
}

/// Scores one 2-D field exactly as the validator does.
///
/// Parameters
/// ----------
/// forecast, truth : numpy.ndarray
///     ``(lat, lon)`` fields on the same grid, float32 (as the validator reads stores) or
///     float64, all of one dtype, any memory layout (C-contiguous arrays are not copied).
///     NaN marks a missing point.
/// latitudes : array-like
///     One latitude in degrees per row; the rows are weighted by cos(latitude).
/// climatology : numpy.ndarray, optional
///     Enables ``acc``, ``skill_clim`` (skill against the climatology, as in ERA5 scoring) and
///     ``rmse_clim``.
/// reference : numpy.ndarray, optional
///     A reference forecast (Day1: GFS). Enables ``skill_ref``, ``clone_distance`` and
///     ``pattern_correlation``.
/// config : dict, optional
///     Scoring constants over the validator's defaults (see ``default_config()``).
///
/// Returns
/// -------
/// FieldMetrics
///
/// Raises
/// ------
/// ValueError
///     Shapes or dtypes that do not match, latitudes that do not fit the rows, or an input
///     without a usable point (a NaN-only field).
///
/// The GIL is released while the kernel runs; the result does not depend on the number of
/// threads (``RAYON_NUM_THREADS``).
#[pyfunction]
#[pyo3(signature = (forecast, truth, latitudes, *, climatology=None, reference=None, config=None))]
pub(crate) fn score_field(
    py: Python<'_>,
    forecast: &Bound<'_, PyAny>,
    truth: &Bound<'_, PyAny>,
    latitudes: &Bound<'_, PyAny>,
    climatology: Option<&Bound<'_, PyAny>>,
    reference: Option<&Bound<'_, PyAny>>,
    config: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyFieldMetrics> {
    let cfg = config::from_python(config)?;
    let climatology = climatology.filter(|c| !c.is_none());
    let reference = reference.filter(|r| !r.is_none());
    let ft = float_type("forecast", &ndarray("forecast", forecast)?)?;
    let args = FieldArgs {
        forecast,
        truth,
        latitudes,
        climatology,
        reference,
    };
    let result = match ft {
        FloatType::F32 => score_field_typed::<f32>(py, ft, &args, &cfg),
        FloatType::F64 => score_field_typed::<f64>(py, ft, &args, &cfg),
    }?;
    check_not_empty(&result)?;
    Ok(PyFieldMetrics(result))
}

/// The validator's ERA5 metrics of one variable (`wx_steps::align::score_against_climatology`)
/// and, with a reference, its Day1 metrics (`score_against_reference`), level by level too.
fn compute_variable<T: Float>(
    f: ArrayView3<'_, T>,
    o: ArrayView3<'_, T>,
    c: ArrayView3<'_, T>,
    r: Option<ArrayView3<'_, T>>,
    levels: &[f64],
    weights: &[f64],
    cfg: &ScoringConfig,
) -> Result<PyVariableMetrics, ScoringError> {
    let n = o.len_of(Axis(0));
    let (per, era5) = if n > 1 {
        let inputs = StackInputs {
            forecast: f,
            truth: o,
            climatology: Some(c),
            skill_vs_climatology: true,
        };
        score_levels(&inputs, levels, weights, cfg)?
    } else {
        let inputs = FieldInputs::new(f.index_axis(Axis(0), 0), o.index_axis(Axis(0), 0))
            .with_climatology(c.index_axis(Axis(0), 0))
            .with_reference(Reference::Climatology);
        let m = kernel_score_field(&inputs, weights, cfg)?;
        let agg = VariableMetrics::from(&m);
        (vec![m], agg)
    };
    let vs_reference = match r {
        None => None,
        Some(r) => {
            let mut refs = Vec::with_capacity(n);
            for l in 0..n {
                let inputs = FieldInputs::new(f.index_axis(Axis(0), l), o.index_axis(Axis(0), l))
                    .with_climatology(c.index_axis(Axis(0), l))
                    .with_reference(Reference::Field(r.index_axis(Axis(0), l)));
                refs.push(kernel_score_field(&inputs, weights, cfg)?);
            }
            Some(refs)
        }
    };
    let day1 = match &vs_reference {
        None => None,
        Some(refs) if refs.len() == 1 => Some(VariableMetrics::from(&refs[0])),
        Some(refs) => Some(VariableMetrics::from_levels(
            refs,
            &thickness_weights(levels)?,
        )?),
    };
    let per_level = per
        .into_iter()
        .enumerate()
        .map(|(l, base)| FieldResult {
            base,
            skill_vs_climatology: true,
            vs_reference: vs_reference.as_ref().map(|refs| refs[l].clone()),
        })
        .collect();
    Ok(PyVariableMetrics {
        era5,
        day1,
        skill_vs_climatology: true,
        per_level,
        levels: levels.to_vec(),
    })
}

#[allow(clippy::too_many_arguments)]
fn score_variable_typed<T: Float + Element>(
    py: Python<'_>,
    ft: FloatType,
    forecast: &Bound<'_, PyAny>,
    truth: &Bound<'_, PyAny>,
    climatology: &Bound<'_, PyAny>,
    latitudes: &Bound<'_, PyAny>,
    levels: Option<Vec<f64>>,
    reference: Option<&Bound<'_, PyAny>>,
    cfg: &ScoringConfig,
) -> PyResult<PyVariableMetrics> {
    const DIMS: &str = "2 (lat, lon) or 3 (level, lat, lon)";
    let first = ("forecast", ft);
    let f: PyReadonlyArray<'_, T, IxDyn> = field("forecast", forecast, first, DIMS)?;
    let o: PyReadonlyArray<'_, T, IxDyn> = field("truth", truth, first, DIMS)?;
    let c: PyReadonlyArray<'_, T, IxDyn> = field("climatology", climatology, first, DIMS)?;
    let r = reference
        .map(|r| field::<T, IxDyn>("reference", r, first, DIMS))
        .transpose()?;
    let ndim = o.ndim();
    if !(ndim == 2 || ndim == 3) {
        return Err(invalid(format!(
            "truth has {ndim} dimensions (shape {:?}); expected {DIMS}",
            o.shape()
        )));
    }
    let truth_shape = o.shape().to_vec();
    let mut named = vec![("forecast", f.shape()), ("climatology", c.shape())];
    named.extend(r.as_ref().map(|r| ("reference", r.shape())));
    check_shapes(&named, &truth_shape)?;
    let n_levels = if ndim == 3 { truth_shape[0] } else { 1 };
    let levels = match (ndim, levels) {
        (2, None) => Vec::new(),
        (2, Some(l)) if l.is_empty() => Vec::new(),
        (2, Some(l)) => {
            return Err(invalid(format!(
                "levels {l:?} given for a 2-D (surface) field; pass levels only with \
                 (level, lat, lon) fields"
            )));
        }
        (_, None) if n_levels == 1 => Vec::new(),
        (_, None) => {
            return Err(invalid(format!(
                "the fields have {n_levels} levels: pass levels=[...] in hPa, one per level"
            )));
        }
        (_, Some(l)) if l.len() != n_levels => {
            return Err(invalid(format!(
                "{} levels given for fields with {n_levels} levels; pass one level (hPa) per \
                 level of the fields",
                l.len()
            )));
        }
        (_, Some(l)) => l,
    };
    let weights = row_weights(latitudes, truth_shape[ndim - 2])?;
    let (fv, ov, cv) = (stack(&f), stack(&o), stack(&c));
    let rv = r.as_ref().map(|r| stack(r));
    py.detach(|| compute_variable(fv, ov, cv, rv, &levels, &weights, cfg))
        .map_err(scoring_error)
}

/// Scores one variable at one lead exactly as the validator's ERA5 step does.
///
/// A surface variable is one ``(lat, lon)`` field; a multi-level variable is
/// ``(level, lat, lon)`` with ``levels`` in hPa, scored level by level in one pass and
/// aggregated with half-layer thickness weights. Fields must already be on the truth grid
/// (see ``regrid``).
///
/// Parameters
/// ----------
/// forecast, truth, climatology : numpy.ndarray
///     Same shape, float32 or float64 (one dtype), NaN for missing points.
/// latitudes : array-like
///     One latitude in degrees per row.
/// levels : sequence of float, optional
///     Pressure levels in hPa, one per level of 3-D fields (required with more than one).
/// reference : numpy.ndarray, optional
///     A reference forecast on the same grid: adds the Day1 metrics (``skill_ref``,
///     ``clone_distance``, ``pattern_correlation``) per level and aggregated.
/// config : dict, optional
///     Scoring constants over the validator's defaults.
///
/// Returns
/// -------
/// VariableMetrics
///     With ``per_level`` results. Unlike ``score_field``, a forecast without a finite point
///     is not an error: it is scored as the validator scores it (coverage 0, so the variable
///     scores 0 in ``lead_score``).
///
/// Raises
/// ------
/// ValueError
///     Shapes, dtypes, latitudes or levels that do not fit.
#[pyfunction]
#[pyo3(signature = (forecast, truth, climatology, latitudes, levels=None, *, reference=None, config=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn score_variable(
    py: Python<'_>,
    forecast: &Bound<'_, PyAny>,
    truth: &Bound<'_, PyAny>,
    climatology: &Bound<'_, PyAny>,
    latitudes: &Bound<'_, PyAny>,
    levels: Option<&Bound<'_, PyAny>>,
    reference: Option<&Bound<'_, PyAny>>,
    config: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyVariableMetrics> {
    let cfg = config::from_python(config)?;
    let levels = levels
        .filter(|l| !l.is_none())
        .map(|l| crate::arrays::coordinate("levels", l, None))
        .transpose()?;
    let reference = reference.filter(|r| !r.is_none());
    let ft = float_type("forecast", &ndarray("forecast", forecast)?)?;
    match ft {
        FloatType::F32 => score_variable_typed::<f32>(
            py,
            ft,
            forecast,
            truth,
            climatology,
            latitudes,
            levels,
            reference,
            &cfg,
        ),
        FloatType::F64 => score_variable_typed::<f64>(
            py,
            ft,
            forecast,
            truth,
            climatology,
            latitudes,
            levels,
            reference,
            &cfg,
        ),
    }
}

/// Aggregates per-level ``FieldMetrics`` of one variable with half-layer thickness weights,
/// as the validator aggregates a multi-level variable (MSE = Σωᵢ·MSEᵢ, ACC = Σωᵢ·ACCᵢ,
/// skill = Σωᵢ·SSᵢ; a metric fails if it failed at any level).
///
/// Parameters
/// ----------
/// per_level : sequence of FieldMetrics
///     One result per level, from ``score_field``.
/// levels : sequence of float
///     The levels in hPa, in the same order.
///
/// Returns
/// -------
/// VariableMetrics
#[pyfunction]
pub(crate) fn aggregate_levels(
    per_level: Vec<PyFieldMetrics>,
    levels: &Bound<'_, PyAny>,
) -> PyResult<PyVariableMetrics> {
    let levels = crate::arrays::coordinate(
        "levels",
        levels,
        Some((per_level.len(), "per-level result")),
    )?;
    if per_level.is_empty() {
        return Err(invalid(
            "per_level is empty; pass one FieldMetrics per level",
        ));
    }
    let results: Vec<FieldResult> = per_level.into_iter().map(|m| m.0).collect();
    let aggregate = |ms: &[wx_scoring::FieldMetrics]| -> PyResult<VariableMetrics> {
        if ms.len() == 1 {
            return Ok(VariableMetrics::from(&ms[0]));
        }
        let w = thickness_weights(&levels).map_err(scoring_error)?;
        VariableMetrics::from_levels(ms, &w).map_err(scoring_error)
    };
    let bases: Vec<_> = results.iter().map(|r| r.base.clone()).collect();
    let refs: Option<Vec<_>> = results.iter().map(|r| r.vs_reference.clone()).collect();
    Ok(PyVariableMetrics {
        era5: aggregate(&bases)?,
        day1: refs.map(|r| aggregate(&r)).transpose()?,
        skill_vs_climatology: results.iter().all(|r| r.skill_vs_climatology),
        levels,
        per_level: results,
    })
}

/// Benchmark hook, not API: wx-scoring's `score_field` called from Rust `reps` times on these
/// very float32 arrays (forecast, truth, climatology as skill reference: the ERA5 shape), after
/// a warm-up; returns the seconds of each call. `benches/bench_field.py` compares them with
/// calls through Python on the same memory.
#[pyfunction]
#[pyo3(name = "_kernel_seconds")]
pub(crate) fn kernel_seconds(
    py: Python<'_>,
    forecast: &Bound<'_, PyAny>,
    truth: &Bound<'_, PyAny>,
    climatology: &Bound<'_, PyAny>,
    latitudes: &Bound<'_, PyAny>,
    reps: usize,
) -> PyResult<Vec<f64>> {
    const DIMS: &str = "2 (lat, lon)";
    let first = ("forecast", FloatType::F32);
    let f: PyReadonlyArray<'_, f32, Ix2> = field("forecast", forecast, first, DIMS)?;
    let o: PyReadonlyArray<'_, f32, Ix2> = field("truth", truth, first, DIMS)?;
    let c: PyReadonlyArray<'_, f32, Ix2> = field("climatology", climatology, first, DIMS)?;
    check_shapes(
        &[("forecast", f.shape()), ("climatology", c.shape())],
        o.shape(),
    )?;
    let weights = row_weights(latitudes, o.shape()[0])?;
    let cfg = ScoringConfig::default();
    let inputs = FieldInputs::new(f.as_array(), o.as_array())
        .with_climatology(c.as_array())
        .with_reference(Reference::Climatology);
    py.detach(|| {
        for _ in 0..3 {
            kernel_score_field(&inputs, &weights, &cfg)?;
        }
        (0..reps)
            .map(|_| {
                let start = std::time::Instant::now();
                let m = kernel_score_field(&inputs, &weights, &cfg);
                let seconds = start.elapsed().as_secs_f64();
                std::hint::black_box(m).map(|_| seconds)
            })
            .collect::<Result<Vec<f64>, ScoringError>>()
    })
    .map_err(scoring_error)
}
