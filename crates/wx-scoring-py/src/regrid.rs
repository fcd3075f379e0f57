//! The validator's grid rules, exposed rather than re-implemented: orientation normalisation
//! (latitudes descending, longitudes in [0, 360)) and bilinear regridding onto the truth grid
//! (`wx_steps::align::truth_on_grid` and `onto`, built on wx-scoring's `Grid`, `Orientation`
//! and `Regridder`).

use ndarray::{Array3, Axis, IxDyn};
use numpy::{Element, IntoPyArray, PyArray1, PyReadonlyArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use wx_scoring::{Float, Grid, Regridder, ScoringError};

use crate::arrays::{FloatType, coordinate, field, float_type, ndarray, stack};
use crate::errors::{invalid, scoring_error};

/// Values, latitudes and longitudes in canonical orientation.
type Canonical<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
);

const DIMS: &str = "2 (lat, lon) or 3 (level, lat, lon)";

/// A 2-D or 3-D field, read-only, with its grid checked against its coordinates.
fn values<'py, T: Element>(
    obj: &Bound<'py, PyAny>,
    ft: FloatType,
    lats: usize,
    lons: usize,
) -> PyResult<PyReadonlyArray<'py, T, IxDyn>> {
    let a: PyReadonlyArray<'py, T, IxDyn> = field("values", obj, ("values", ft), DIMS)?;
    let shape = a.shape();
    if !(shape.len() == 2 || shape.len() == 3) {
        return Err(invalid(format!(
            "values has {} dimensions (shape {shape:?}); expected {DIMS}",
            shape.len()
        )));
    }
    if shape[shape.len() - 2..] != [lats, lons] {
        return Err(invalid(format!(
            "values has shape {shape:?} but the coordinates give a {lats} × {lons} grid; the \
             last two axes must be (latitude, longitude)"
        )));
    }
    Ok(a)
}

/// A result with the input's number of dimensions, as a numpy array (moved, not copied).
fn output<'py, T: Element>(py: Python<'py>, a: Array3<T>, ndim: usize) -> Bound<'py, PyAny> {
    if ndim == 2 {
        a.index_axis_move(Axis(0), 0).into_pyarray(py).into_any()
    } else {
        a.into_pyarray(py).into_any()
    }
}

fn canonical_typed<'py, T: Float + Element>(
    py: Python<'py>,
    ft: FloatType,
    obj: &Bound<'py, PyAny>,
    lats: &[f64],
    lons: &[f64],
) -> PyResult<(Bound<'py, PyAny>, Grid)> {
    let (grid, orientation) = Grid::normalise(lats, lons).map_err(scoring_error)?;
    let a = values::<T>(obj, ft, lats.len(), lons.len())?;
    let ndim = a.ndim();
    let v = stack(&a);
    let out = py
        .detach(|| {
            if orientation.is_identity() {
                Ok(v.to_owned())
            } else {
                orientation.apply_stack(v)
            }
        })
        .map_err(scoring_error)?;
    Ok((output(py, out, ndim), grid))
}

/// Puts a field in the validator's canonical orientation: latitudes descending (90 … −90),
/// longitudes ascending in [0, 360). This is what the validator does to the truth, whose grid
/// then is the target grid of every other field.
///
/// Parameters
/// ----------
/// values : numpy.ndarray
///     ``(lat, lon)`` or ``(level, lat, lon)``, float32 or float64.
/// latitudes, longitudes : array-like
///     Degrees, as stored (either latitude order, any longitude convention such as −180 … 180).
///
/// Returns
/// -------
/// tuple of (numpy.ndarray, numpy.ndarray, numpy.ndarray)
///     The reordered values (a new array, values copied bit for bit), the canonical latitudes
///     and longitudes.
#[pyfunction]
pub(crate) fn to_canonical<'py>(
    py: Python<'py>,
    values: &Bound<'py, PyAny>,
    latitudes: &Bound<'py, PyAny>,
    longitudes: &Bound<'py, PyAny>,
) -> PyResult<Canonical<'py>> {
    let lats = coordinate("latitudes", latitudes, None)?;
    let lons = coordinate("longitudes", longitudes, None)?;
    let ft = float_type("values", &ndarray("values", values)?)?;
    let (out, grid) = match ft {
        FloatType::F32 => canonical_typed::<f32>(py, ft, values, &lats, &lons)?,
        FloatType::F64 => canonical_typed::<f64>(py, ft, values, &lats, &lons)?,
    };
    Ok((
        out,
        grid.lats().to_vec().into_pyarray(py),
        grid.lons().to_vec().into_pyarray(py),
    ))
}

fn regrid_typed<'py, T: Float + Element>(
    py: Python<'py>,
    ft: FloatType,
    obj: &Bound<'py, PyAny>,
    source: (&[f64], &[f64]),
    target: &Grid,
) -> PyResult<Bound<'py, PyAny>> {
    let (grid, orientation) = Grid::normalise(source.0, source.1).map_err(|e| {
        invalid(format!(
            "source grid: {e}; pass the field's own latitudes and longitudes (finite, each \
             strictly monotonic, no duplicate longitude modulo 360)"
        ))
    })?;
    let a = values::<T>(obj, ft, source.0.len(), source.1.len())?;
    let ndim = a.ndim();
    let v = stack(&a);
    let out = py
        .detach(|| -> Result<Array3<T>, ScoringError> {
            let normalised = if orientation.is_identity() {
                v.to_owned()
            } else {
                orientation.apply_stack(v)?
            };
            if grid.same_points(target) {
                return Ok(normalised);
            }
            Regridder::new(&grid, target).apply_stack(normalised.view())
        })
        .map_err(scoring_error)?;
    Ok(output(py, out, ndim))
}

/// Puts a field on the target (truth) grid exactly as the validator does: orientation
/// normalised, then bilinear interpolation (longitude periodic; a target point that coincides
/// with a source point copies it bit for bit; target rows beyond the source's latitude range
/// take the nearest source row; a NaN neighbour with weight gives NaN). A field already on the
/// target grid is only reordered. Arithmetic in float64, rounded to the input dtype.
///
/// Parameters
/// ----------
/// values : numpy.ndarray
///     ``(lat, lon)`` or ``(level, lat, lon)``, float32 or float64.
/// latitudes, longitudes : array-like
///     The field's own coordinates in degrees, as stored.
/// target_latitudes, target_longitudes : array-like
///     The canonical truth grid (from ``to_canonical``): latitudes strictly descending,
///     longitudes strictly ascending in [0, 360).
///
/// Returns
/// -------
/// numpy.ndarray
///     The field on the target grid, same dtype and number of dimensions.
#[pyfunction]
pub(crate) fn regrid<'py>(
    py: Python<'py>,
    values: &Bound<'py, PyAny>,
    latitudes: &Bound<'py, PyAny>,
    longitudes: &Bound<'py, PyAny>,
    target_latitudes: &Bound<'py, PyAny>,
    target_longitudes: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let lats = coordinate("latitudes", latitudes, None)?;
    let lons = coordinate("longitudes", longitudes, None)?;
    let target = Grid::new(
        coordinate("target_latitudes", target_latitudes, None)?,
        coordinate("target_longitudes", target_longitudes, None)?,
    )
    .map_err(|e| {
        invalid(format!(
            "target grid: {e}; the target must be canonical (latitudes strictly descending, \
             longitudes strictly ascending in [0, 360)): use the grid to_canonical returns for \
             the truth"
        ))
    })?;
    let ft = float_type("values", &ndarray("values", values)?)?;
    match ft {
        FloatType::F32 => regrid_typed::<f32>(py, ft, values, (&lats, &lons), &target),
        FloatType::F64 => regrid_typed::<f64>(py, ft, values, (&lats, &lons), &target),
    }
}
