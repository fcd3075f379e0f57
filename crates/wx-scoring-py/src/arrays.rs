//! numpy inputs: dtype and dimension checks with clear messages, then zero-copy views.
//!
//! Fields are borrowed read-only in place, whatever their strides: a C-contiguous array is
//! scored without any copy; wx-scoring copies any other layout once into row-major order.

use ndarray::Dimension;
use numpy::{
    Element, PyArray, PyArrayDescrMethods, PyArrayMethods, PyReadonlyArray, PyReadonlyArray1,
    PyUntypedArray, PyUntypedArrayMethods, dtype,
};
use pyo3::prelude::*;

use crate::errors::invalid;

/// The element type of the fields of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FloatType {
    /// `numpy.float32`, what the validator reads every store as.
    F32,
    /// `numpy.float64`.
    F64,
}

impl FloatType {
    fn name(self) -> &'static str {
        match self {
            FloatType::F32 => "float32",
            FloatType::F64 => "float64",
        }
    }
}

/// `obj` as a numpy array: itself when it is one, else `numpy.asarray(obj)` (an xarray
/// `DataArray`, a list, …).
pub(crate) fn ndarray<'py>(
    what: &str,
    obj: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    if let Ok(a) = obj.cast::<PyUntypedArray>() {
        return Ok(a.clone());
    }
    let converted = obj.py().import("numpy")?.call_method1("asarray", (obj,))?;
    converted.cast_into::<PyUntypedArray>().map_err(|_| {
        invalid(format!(
            "{what} is not an array (numpy.asarray gave no ndarray); pass a numpy.ndarray"
        ))
    })
}

/// The float type of an array, or a `ValueError` naming the dtype found.
pub(crate) fn float_type(what: &str, a: &Bound<'_, PyUntypedArray>) -> PyResult<FloatType> {
    let py = a.py();
    let dt = a.dtype();
    if dt.is_equiv_to(&dtype::<f32>(py)) {
        Ok(FloatType::F32)
    } else if dt.is_equiv_to(&dtype::<f64>(py)) {
        Ok(FloatType::F64)
    } else {
        Err(invalid(format!(
            "{what} has dtype {dt}; pass float32 (what the validator reads stores as) or float64 \
             in native byte order, e.g. {what}.astype(numpy.float32)"
        )))
    }
}

/// A read-only view of a field of element type `T` (the call's type, taken from its first
/// field `first`) and `D::NDIM` dimensions (`dims` describes them for messages).
pub(crate) fn field<'py, T: Element, D: Dimension>(
    what: &str,
    obj: &Bound<'py, PyAny>,
    first: (&str, FloatType),
    dims: &str,
) -> PyResult<PyReadonlyArray<'py, T, D>> {
    let a = ndarray(what, obj)?;
    let found = float_type(what, &a)?;
    if found != first.1 {
        return Err(invalid(format!(
            "{what} has dtype {} but {} has {}: every field of one call must have the same \
             dtype; convert with .astype(numpy.{})",
            found.name(),
            first.0,
            first.1.name(),
            first.1.name()
        )));
    }
    if let Some(n) = D::NDIM
        && a.ndim() != n
    {
        return Err(invalid(format!(
            "{what} has {} dimensions (shape {:?}); expected {dims}",
            a.ndim(),
            a.shape()
        )));
    }
    let typed = a.cast::<PyArray<T, D>>().map_err(|_| {
        invalid(format!(
            "{what}: cannot view a {:?} array as {}",
            a.shape(),
            first.1.name()
        ))
    })?;
    typed
        .try_readonly()
        .map_err(|e| invalid(format!("{what} cannot be read: {e}")))
}

/// A 1-D float64 coordinate (latitudes, longitudes, levels) with `expected` values, copied.
pub(crate) fn coordinate(
    what: &str,
    obj: &Bound<'_, PyAny>,
    expected: Option<(usize, &str)>,
) -> PyResult<Vec<f64>> {
    let np = obj.py().import("numpy")?;
    let a = np
        .call_method1("asarray", (obj, "float64"))
        .map_err(|e| invalid(format!("{what} must be numbers: {e}")))?;
    let a = a
        .cast_into::<PyArray<f64, ndarray::Ix1>>()
        .map_err(|_| invalid(format!("{what} must be a 1-D sequence of numbers")))?;
    let ro: PyReadonlyArray1<'_, f64> = a
        .try_readonly()
        .map_err(|e| invalid(format!("{what} cannot be read: {e}")))?;
    let values = ro.as_array().to_vec();
    if let Some((n, axis)) = expected
        && values.len() != n
    {
        return Err(invalid(format!(
            "{what} has {} values but the fields have {n} {axis}s; pass one per {axis} (in \
             the same order as the fields)",
            values.len()
        )));
    }
    Ok(values)
}

/// Row weights `cos(lat)` for latitudes given per row, checked (finite, within [−90, 90]).
pub(crate) fn row_weights(obj: &Bound<'_, PyAny>, rows: usize) -> PyResult<Vec<f64>> {
    let lats = coordinate("latitudes", obj, Some((rows, "row")))?;
    if let Some(bad) = lats.iter().find(|l| !(l.is_finite() && l.abs() <= 90.0)) {
        return Err(invalid(format!(
            "latitudes must be finite degrees within [-90, 90], found {bad}"
        )));
    }
    Ok(wx_scoring::lat_weights(&lats))
}

/// A 2-D or 3-D field as (level, lat, lon): a 2-D field becomes one level. The caller checked
/// the number of dimensions.
pub(crate) fn stack<'a, T: Element>(
    a: &'a PyReadonlyArray<'_, T, ndarray::IxDyn>,
) -> ndarray::ArrayView3<'a, T> {
    let v = a.as_array();
    let v = if v.ndim() == 2 {
        v.insert_axis(ndarray::Axis(0))
    } else {
        v
    };
    v.into_dimensionality()
        .expect("the caller checked for 2 or 3 dimensions")
}
