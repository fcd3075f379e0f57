//! The decoded gridded field every reader returns.

use chrono::{DateTime, Utc};
use ndarray::Array3;
use wx_model::{Level, Variable};

/// One variable at one valid time on a regular lat/lon grid, decoded to `f32`.
///
/// `data` has shape `[levels.len().max(1), lats.len(), lons.len()]`: a surface field has one
/// level slice and an empty `levels`. Coordinates are as stored by the source (latitude may be
/// ascending or descending, longitude in [0, 360) or [-180, 180)); missing values are NaN.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The variable.
    pub variable: Variable,
    /// Pressure levels in hPa, in the order of the first axis; empty for a surface field.
    pub levels: Vec<Level>,
    /// Latitudes in degrees, in the order of the second axis.
    pub lats: Vec<f64>,
    /// Longitudes in degrees, in the order of the third axis.
    pub lons: Vec<f64>,
    /// The valid time the field represents (for climatology: the valid time it was selected for).
    pub valid_time: DateTime<Utc>,
    /// Values, `[level, lat, lon]`.
    pub data: Array3<f32>,
}

/// A field whose parts do not fit together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field {variable}: {message}")]
pub struct FieldError {
    /// The variable.
    pub variable: Variable,
    /// What does not fit.
    pub message: String,
}

impl Field {
    /// Builds a field, checking that the data shape matches the coordinates.
    pub fn new(
        variable: Variable,
        levels: Vec<Level>,
        lats: Vec<f64>,
        lons: Vec<f64>,
        valid_time: DateTime<Utc>,
        data: Array3<f32>,
    ) -> Result<Field, FieldError> {
        let expected = [levels.len().max(1), lats.len(), lons.len()];
        if data.shape() != expected {
            return Err(FieldError {
                variable,
                message: format!(
                    "data shape {:?} does not match coordinates {:?}",
                    data.shape(),
                    expected
                ),
            });
        }
        Ok(Field {
            variable,
            levels,
            lats,
            lons,
            valid_time,
            data,
        })
    }

    /// Size of the decoded values in bytes (for memory budgets).
    pub fn nbytes(&self) -> usize {
        self.data.len() * std::mem::size_of::<f32>()
    }

    /// The index of a level on the first axis.
    pub fn level_index(&self, level: Level) -> Option<usize> {
        self.levels.iter().position(|l| *l == level)
    }
}

/// A dropped field's values go back to wx-zarr's buffer pool ([`wx_zarr::buffers`]), so that
/// the next field a reader decodes reuses memory already faulted in rather than fresh pages.
impl Drop for Field {
    fn drop(&mut self) {
        let data = std::mem::take(&mut self.data);
        wx_zarr::buffers::recycle(data.into_raw_vec_and_offset().0);
    }
}

/// The field as the GRIB2 writer takes it ([`wx_grib::writer::write_local_cycle`]).
impl<'a> From<&'a Field> for wx_grib::writer::CycleField<'a> {
    fn from(field: &'a Field) -> Self {
        wx_grib::writer::CycleField {
            variable: field.variable,
            levels: &field.levels,
            lats: &field.lats,
            lons: &field.lons,
            data: field.data.view(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_must_match_coordinates() {
        let t: DateTime<Utc> = "2025-01-01T00:00:00Z".parse().unwrap();
        let ok = Field::new(
            Variable::T2m,
            vec![],
            vec![0.0, 1.0],
            vec![0.0; 3],
            t,
            Array3::zeros((1, 2, 3)),
        );
        assert_eq!(ok.unwrap().nbytes(), 24);
        let bad = Field::new(
            Variable::T,
            vec![500, 850],
            vec![0.0, 1.0],
            vec![0.0; 3],
            t,
            Array3::zeros((1, 2, 3)),
        );
        assert!(bad.unwrap_err().to_string().contains("[2, 2, 3]"));
    }
}
