//! Putting fields on the truth grid and scoring them with wx-scoring (docs/scoring.md §2–§3).
//!
//! The truth grid is the target: latitudes descending, longitudes in [0, 360). A forecast,
//! reference or climatology on another regular grid is bilinearly regridded onto it; levels
//! must match exactly. All of this is CPU work: callers run it on the blocking pool.
//!
//! A field already on the target grid in canonical orientation is not copied: [`truth_on_grid`]
//! and [`onto`] then borrow its values (a [`CowArray`]), so that a 0.25° forecast on the truth
//! grid costs no 54 MB copy per variable — and neither do the truth and the climatology that
//! the data hub keeps canonical for every miner of a lead.

use ndarray::{ArrayView3, Axis, CowArray, Ix3};
use wx_data::Field;
use wx_scoring::{
    FieldInputs, Grid, Reference, Regridder, ScoringConfig, ScoringError, StackInputs,
    VariableMetrics, score_field, score_levels, thickness_weights,
};

/// Why a field could not be put on the truth grid or scored. Its text is the failed
/// variable's message (stored as the miner's `era5_error` / Day1 failure), so it names which
/// field (`what`: forecast, climatology, reference) went wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AlignError {
    /// The field's levels differ from the truth's (levels are never interpolated).
    #[error(
        "{what} has levels {field:?} where the truth has {truth:?} (levels are never interpolated)"
    )]
    Levels {
        /// Which field.
        what: String,
        /// Its levels (hPa).
        field: Vec<u16>,
        /// The truth's levels (hPa).
        truth: Vec<u16>,
    },
    /// The field's coordinates are not a regular grid wx can normalise.
    #[error("{what} grid: {source}")]
    Grid {
        /// Which field.
        what: String,
        /// Why.
        source: ScoringError,
    },
    /// Regridding the field onto the truth grid failed.
    #[error("regridding {what}: {source}")]
    Regrid {
        /// Which field.
        what: String,
        /// Why.
        source: ScoringError,
    },
    /// Normalising or scoring failed (the kernels' own message).
    #[error(transparent)]
    Scoring(#[from] ScoringError),
    /// A reordered field did not fit its coordinates (a defect: reordering keeps the shape).
    #[error(transparent)]
    Field(#[from] wx_data::FieldError),
}

/// Values on the target grid, `(level, lat, lon)`: borrowed from the field when it already
/// was canonical on that grid, owned when they had to be reordered or regridded.
pub type OnGrid<'a> = CowArray<'a, f32, Ix3>;

/// The truth on its normalised grid.
pub struct TruthOnGrid<'a> {
    /// The target grid.
    pub grid: Grid,
    /// cos-latitude row weights of the grid.
    pub weights: Vec<f64>,
    /// The truth values, `(level, lat, lon)`.
    pub values: OnGrid<'a>,
    /// The levels (hPa) of the first axis; empty for a surface field.
    pub levels: Vec<u16>,
}

fn err(e: ScoringError) -> AlignError {
    AlignError::Scoring(e)
}

/// Normalises the truth field's orientation; its grid becomes the target grid. The values are
/// borrowed when the field is canonical already.
pub fn truth_on_grid(truth: &Field) -> Result<TruthOnGrid<'_>, AlignError> {
    let (grid, orientation) = Grid::normalise(&truth.lats, &truth.lons).map_err(err)?;
    let values = if orientation.is_identity() {
        CowArray::from(truth.data.view())
    } else {
        CowArray::from(orientation.apply_stack(truth.data.view()).map_err(err)?)
    };
    Ok(TruthOnGrid {
        weights: grid.lat_weights(),
        grid,
        values,
        levels: truth.levels.clone(),
    })
}

/// Puts another field (forecast, reference, climatology) onto the target grid: orientation
/// normalised, then bilinear regridding unless the grids coincide. Levels must equal `levels`.
/// A field canonical on the target grid is borrowed, not copied (bit for bit the same values).
pub fn onto<'a>(
    field: &'a Field,
    target: &TruthOnGrid<'_>,
    what: &str,
) -> Result<OnGrid<'a>, AlignError> {
    if field.levels != target.levels {
        return Err(AlignError::Levels {
            what: what.to_owned(),
            field: field.levels.clone(),
            truth: target.levels.clone(),
        });
    }
    let (grid, orientation) =
        Grid::normalise(&field.lats, &field.lons).map_err(|source| AlignError::Grid {
            what: what.to_owned(),
            source,
        })?;
    let normalised = if orientation.is_identity() {
        CowArray::from(field.data.view())
    } else {
        let storage = wx_zarr::buffers::take(field.data.len());
        CowArray::from(
            orientation
                .apply_stack_in(field.data.view(), storage)
                .map_err(err)?,
        )
    };
    if grid.same_points(&target.grid) {
        return Ok(normalised);
    }
    let regridder = Regridder::new(&grid, &target.grid);
    let (nr, nc) = regridder.target_shape();
    let storage = wx_zarr::buffers::take(field.data.len_of(Axis(0)) * nr * nc);
    let regridded = regridder
        .apply_stack_in(normalised.view(), storage)
        .map(CowArray::from)
        .map_err(|source| AlignError::Regrid {
            what: what.to_owned(),
            source,
        });
    recycle(normalised);
    regridded
}

/// Hands values [`onto`] or [`truth_on_grid`] had to copy back to wx-zarr's buffer pool
/// ([`wx_zarr::buffers`]) once scored; borrowed values are left alone.
pub fn recycle(values: OnGrid<'_>) {
    if !values.is_view() {
        wx_zarr::buffers::recycle(values.into_owned().into_raw_vec_and_offset().0);
    }
}

/// A field put in canonical orientation (latitudes descending, longitudes in [0, 360)), the
/// same values reordered; returned as is when it already is. The data hub keeps truth and
/// climatology fields this way, so that every miner's [`onto`] borrows them.
pub fn canonical(mut field: Field) -> Result<Field, AlignError> {
    let (grid, orientation) = Grid::normalise(&field.lats, &field.lons).map_err(err)?;
    if orientation.is_identity() {
        return Ok(field);
    }
    let data = orientation.apply_stack(field.data.view()).map_err(err)?;
    Field::new(
        field.variable,
        std::mem::take(&mut field.levels),
        grid.lats().to_vec(),
        grid.lons().to_vec(),
        field.valid_time,
        data,
    )
    .map_err(AlignError::Field)
}

/// ERA5 metrics of one variable: skill against the climatology, ACC with it, the climatology's
/// own RMSE; multi-level variables aggregated with thickness weights.
pub fn score_against_climatology(
    forecast: ArrayView3<'_, f32>,
    truth: &TruthOnGrid<'_>,
    climatology: ArrayView3<'_, f32>,
    cfg: &ScoringConfig,
) -> Result<VariableMetrics, AlignError> {
    if truth.levels.len() > 1 {
        let inputs = StackInputs {
            forecast,
            truth: truth.values.view(),
            climatology: Some(climatology),
            skill_vs_climatology: true,
        };
        let levels: Vec<f64> = truth.levels.iter().map(|l| f64::from(*l)).collect();
        let (_, agg) = score_levels(&inputs, &levels, &truth.weights, cfg).map_err(err)?;
        Ok(agg)
    } else {
        let inputs = FieldInputs::new(
            forecast.index_axis(Axis(0), 0),
            truth.values.index_axis(Axis(0), 0),
        )
        .with_climatology(climatology.index_axis(Axis(0), 0))
        .with_reference(Reference::Climatology);
        Ok(VariableMetrics::from(
            &score_field(&inputs, &truth.weights, cfg).map_err(err)?,
        ))
    }
}

/// Day1 metrics of one variable: skill against a reference field (GFS), ACC with the
/// climatology, clone distance and pattern correlation against the reference.
pub fn score_against_reference(
    forecast: ArrayView3<'_, f32>,
    truth: &TruthOnGrid<'_>,
    climatology: ArrayView3<'_, f32>,
    reference: ArrayView3<'_, f32>,
    cfg: &ScoringConfig,
) -> Result<VariableMetrics, AlignError> {
    let n = truth.values.len_of(Axis(0));
    let mut per = Vec::with_capacity(n);
    for l in 0..n {
        let inputs = FieldInputs::new(
            forecast.index_axis(Axis(0), l),
            truth.values.index_axis(Axis(0), l),
        )
        .with_climatology(climatology.index_axis(Axis(0), l))
        .with_reference(Reference::Field(reference.index_axis(Axis(0), l)));
        per.push(score_field(&inputs, &truth.weights, cfg).map_err(err)?);
    }
    if per.len() == 1 {
        return Ok(VariableMetrics::from(&per[0]));
    }
    let levels: Vec<f64> = truth.levels.iter().map(|l| f64::from(*l)).collect();
    let w = thickness_weights(&levels).map_err(err)?;
    VariableMetrics::from_levels(&per, &w).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    fn field(lats: Vec<f64>, lons: Vec<f64>, f: impl Fn(f64, f64) -> f32) -> Field {
        let data =
            Array3::from_shape_fn((1, lats.len(), lons.len()), |(_, i, j)| f(lats[i], lons[j]));
        Field::new(
            wx_model::Variable::T2m,
            vec![],
            lats,
            lons,
            "2025-01-01T00:00:00Z".parse().unwrap(),
            data,
        )
        .unwrap()
    }

    #[test]
    fn a_720_row_ascending_forecast_is_put_on_the_721_row_truth_grid() {
        let truth_lats: Vec<f64> = (0..37).map(|i| 90.0 - 5.0 * i as f64).collect();
        let lons: Vec<f64> = (0..72).map(|j| 5.0 * j as f64).collect();
        let smooth = |lat: f64, lon: f64| {
            (280.0 + 10.0 * lat.to_radians().cos() + lon.to_radians().sin()) as f32
        };
        let truth_field = field(truth_lats.clone(), lons.clone(), smooth);
        let truth = truth_on_grid(&truth_field).unwrap();
        // forecast: ascending latitudes without the -90 row, longitudes in -180..175
        let fl: Vec<f64> = (0..36).map(|i| -85.0 + 5.0 * i as f64).collect();
        let flon: Vec<f64> = (0..72).map(|j| -180.0 + 5.0 * j as f64).collect();
        let forecast = field(fl, flon, smooth);
        let fc = onto(&forecast, &truth, "forecast").unwrap();
        assert_eq!(fc.dim(), (1, 37, 72));
        // coinciding points are copied exactly; the -90 row takes the nearest forecast row
        assert_eq!(fc[[0, 0, 10]], truth.values[[0, 0, 10]]);
        assert_eq!(fc[[0, 36, 3]], smooth(-85.0, 15.0));
        let mut levels_differ = field(truth_lats, lons, smooth);
        levels_differ.levels = vec![500];
        assert!(
            onto(&levels_differ, &truth, "forecast")
                .unwrap_err()
                .to_string()
                .contains("levels")
        );
    }

    /// Fields canonical on the truth grid are borrowed, not copied; [`canonical`] reorders a
    /// field once so that it is borrowed afterwards, with exactly the bits `onto` gives.
    #[test]
    fn canonical_fields_are_borrowed_with_the_same_bits() {
        let lats: Vec<f64> = (0..37).map(|i| 90.0 - 5.0 * i as f64).collect();
        let lons: Vec<f64> = (0..72).map(|j| 5.0 * j as f64).collect();
        let wavy = |lat: f64, lon: f64| (lat * 0.37 + (lon * 0.11).sin() * 3.0) as f32;
        let truth_field = field(lats.clone(), lons.clone(), wavy);
        let truth = truth_on_grid(&truth_field).unwrap();
        assert!(truth.values.is_view(), "a canonical truth is borrowed");
        assert!(onto(&truth_field, &truth, "forecast").unwrap().is_view());
        // the WeatherBench2 way: latitudes ascending, and here longitudes in [-180, 180)
        let asc: Vec<f64> = lats.iter().rev().copied().collect();
        let west: Vec<f64> = (0..72).map(|j| -180.0 + 5.0 * j as f64).collect();
        let raw = field(asc, west, wavy);
        let reordered = onto(&raw, &truth, "climatology").unwrap();
        assert!(!reordered.is_view());
        let canon = canonical(raw.clone()).unwrap();
        assert_eq!(canon.lats, lats);
        assert_eq!(canon.lons, lons);
        let borrowed = onto(&canon, &truth, "climatology").unwrap();
        assert!(borrowed.is_view(), "a canonical field is borrowed");
        let bits = |a: &OnGrid<'_>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&borrowed), bits(&reordered));
        // canonical of a canonical field is the field itself
        assert_eq!(canonical(canon.clone()).unwrap(), canon);
    }
}
