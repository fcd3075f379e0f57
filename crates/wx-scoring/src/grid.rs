//! Regular latitude/longitude grids, orientation normalisation, cos-latitude
//! weights and bilinear regridding (docs/scoring.md §2, §3).

use ndarray::{Array2, Array3, ArrayView2, ArrayView3, ArrayViewMut2, Axis};
use rayon::prelude::*;

use crate::error::ScoringError;
use crate::float::Float;

/// Two coordinates closer than this (degrees) are treated as the same point:
/// the regridder then copies the source value exactly.
pub const COINCIDENCE_TOLERANCE_DEG: f64 = 1e-6;

/// A lat/lon grid in canonical orientation: latitudes strictly descending
/// (90 … −90), longitudes strictly ascending in `[0, 360)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    lats: Vec<f64>,
    lons: Vec<f64>,
}

/// How an input field's axes map onto its canonical [`Grid`]
/// (from [`Grid::normalise`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Orientation {
    nlat: usize,
    lat_reversed: bool,
    /// `lon_order[j]` = index in the input of canonical column `j`.
    lon_order: Vec<usize>,
}

impl Grid {
    /// A grid from coordinates that are already canonical (latitudes strictly
    /// descending within [−90, 90], longitudes strictly ascending in [0, 360)).
    pub fn new(lats: Vec<f64>, lons: Vec<f64>) -> Result<Self, ScoringError> {
        check_lats(&lats)?;
        if lats.windows(2).any(|w| w[0] <= w[1]) {
            return Err(ScoringError::Grid(
                "latitudes must be strictly descending".into(),
            ));
        }
        check_lons(&lons)?;
        if lons.iter().any(|l| !(0.0..360.0).contains(l)) {
            return Err(ScoringError::Grid("longitudes must lie in [0, 360)".into()));
        }
        if lons.windows(2).any(|w| w[0] >= w[1]) {
            return Err(ScoringError::Grid(
                "longitudes must be strictly ascending".into(),
            ));
        }
        Ok(Self { lats, lons })
    }

    /// A regular global grid: `nlat` rows from 90 to −90 inclusive and `nlon`
    /// columns from 0 in steps of 360/nlon (e.g. 721 × 1440 for 0.25°).
    pub fn regular_global(nlat: usize, nlon: usize) -> Result<Self, ScoringError> {
        if nlat < 2 || nlon < 1 {
            return Err(ScoringError::Grid(format!(
                "regular grid needs nlat >= 2 and nlon >= 1, got {nlat}×{nlon}"
            )));
        }
        let dlat = 180.0 / (nlat - 1) as f64;
        let dlon = 360.0 / nlon as f64;
        let lats = (0..nlat).map(|i| 90.0 - i as f64 * dlat).collect();
        let lons = (0..nlon).map(|j| j as f64 * dlon).collect();
        Self::new(lats, lons)
    }

    /// Canonicalise arbitrary coordinates: latitudes monotonic in either
    /// direction, longitudes in any convention (e.g. −180 … 180) without
    /// duplicates modulo 360. Returns the canonical grid and the
    /// [`Orientation`] that reorders fields given in the input layout.
    pub fn normalise(lats: &[f64], lons: &[f64]) -> Result<(Self, Orientation), ScoringError> {
        check_lats(lats)?;
        check_lons(lons)?;
        let descending = lats.windows(2).all(|w| w[0] > w[1]);
        let ascending = lats.windows(2).all(|w| w[0] < w[1]);
        if !descending && !ascending {
            return Err(ScoringError::Grid(
                "latitudes must be strictly monotonic".into(),
            ));
        }
        // A single latitude is both; keep it as is.
        let lat_reversed = !descending;
        let mut new_lats = lats.to_vec();
        if lat_reversed {
            new_lats.reverse();
        }
        let wrapped: Vec<f64> = lons.iter().map(|l| wrap_lon(*l)).collect();
        let mut lon_order: Vec<usize> = (0..lons.len()).collect();
        lon_order.sort_by(|&a, &b| wrapped[a].total_cmp(&wrapped[b]));
        let new_lons: Vec<f64> = lon_order.iter().map(|&j| wrapped[j]).collect();
        if new_lons
            .windows(2)
            .any(|w| w[1] - w[0] <= COINCIDENCE_TOLERANCE_DEG)
            || (new_lons.len() > 1
                && new_lons[0] + 360.0 - new_lons[new_lons.len() - 1] <= COINCIDENCE_TOLERANCE_DEG)
        {
            return Err(ScoringError::Grid(
                "duplicate longitudes (modulo 360)".into(),
            ));
        }
        Ok((
            Self::new(new_lats, new_lons)?,
            Orientation {
                nlat: lats.len(),
                lat_reversed,
                lon_order,
            },
        ))
    }

    /// Latitudes (descending, degrees).
    pub fn lats(&self) -> &[f64] {
        &self.lats
    }

    /// Longitudes (ascending in [0, 360), degrees).
    pub fn lons(&self) -> &[f64] {
        &self.lons
    }

    /// `(rows, columns)` = `(nlat, nlon)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.lats.len(), self.lons.len())
    }

    /// The spec's area weight per row, `w = cos(lat)` (broadcast over longitude
    /// by the kernels). At the poles this is ~6e-17, not exactly 0.
    pub fn lat_weights(&self) -> Vec<f64> {
        lat_weights(&self.lats)
    }

    /// Whether both grids have the same points (within [`COINCIDENCE_TOLERANCE_DEG`]).
    pub fn same_points(&self, other: &Grid) -> bool {
        self.shape() == other.shape()
            && self
                .lats
                .iter()
                .zip(&other.lats)
                .all(|(a, b)| (a - b).abs() <= COINCIDENCE_TOLERANCE_DEG)
            && self
                .lons
                .iter()
                .zip(&other.lons)
                .all(|(a, b)| (a - b).abs() <= COINCIDENCE_TOLERANCE_DEG)
    }
}

/// `cos(lat)` for each latitude in degrees (the spec's row weight).
pub fn lat_weights(lats: &[f64]) -> Vec<f64> {
    lats.iter().map(|l| l.to_radians().cos().max(0.0)).collect()
}

fn wrap_lon(l: f64) -> f64 {
    let w = l.rem_euclid(360.0);
    // rem_euclid can return 360.0 for tiny negative inputs due to rounding.
    if w >= 360.0 { 0.0 } else { w }
}

fn check_lats(lats: &[f64]) -> Result<(), ScoringError> {
    if lats.is_empty() {
        return Err(ScoringError::Grid("no latitudes".into()));
    }
    if lats.iter().any(|l| !l.is_finite() || l.abs() > 90.0) {
        return Err(ScoringError::Grid(
            "latitudes must be finite and within [-90, 90]".into(),
        ));
    }
    Ok(())
}

fn check_lons(lons: &[f64]) -> Result<(), ScoringError> {
    if lons.is_empty() {
        return Err(ScoringError::Grid("no longitudes".into()));
    }
    if lons.iter().any(|l| !l.is_finite()) {
        return Err(ScoringError::Grid("longitudes must be finite".into()));
    }
    Ok(())
}

impl Orientation {
    /// Whether this orientation leaves fields unchanged.
    pub fn is_identity(&self) -> bool {
        !self.lat_reversed && self.lon_order.iter().enumerate().all(|(i, &j)| i == j)
    }

    /// [`Orientation::apply`] to every level of a `(level, lat, lon)` stack, written straight
    /// into the result (no per-level temporary; rows copied whole when only the latitudes are
    /// reversed).
    pub fn apply_stack<T: Float>(
        &self,
        field: ArrayView3<'_, T>,
    ) -> Result<Array3<T>, ScoringError> {
        self.apply_stack_in(field, Vec::new())
    }

    /// [`Orientation::apply_stack`] into the allocation of `storage` (its contents are
    /// ignored), so that a caller can reuse a buffer it no longer needs.
    pub fn apply_stack_in<T: Float>(
        &self,
        field: ArrayView3<'_, T>,
        mut storage: Vec<T>,
    ) -> Result<Array3<T>, ScoringError> {
        let (nl, nr, nc) = field.dim();
        self.check_shape(nr, nc)?;
        storage.clear();
        storage.reserve(nl * nr * nc);
        let mut out = storage;
        for level in field.axis_iter(Axis(0)) {
            self.extend_level(&mut out, level);
        }
        Array3::from_shape_vec((nl, nr, nc), out).map_err(|e| ScoringError::Grid(e.to_string()))
    }

    /// Reorder a `(lat, lon)` field from the input layout to the canonical one.
    pub fn apply<T: Float>(&self, field: ArrayView2<'_, T>) -> Result<Array2<T>, ScoringError> {
        let (nr, nc) = field.dim();
        self.check_shape(nr, nc)?;
        let mut out = Vec::with_capacity(nr * nc);
        self.extend_level(&mut out, field);
        Array2::from_shape_vec((nr, nc), out).map_err(|e| ScoringError::Grid(e.to_string()))
    }

    fn check_shape(&self, nr: usize, nc: usize) -> Result<(), ScoringError> {
        if nc != self.lon_order.len() || nr != self.nlat {
            return Err(ScoringError::ShapeMismatch {
                what: "field",
                expected: vec![self.nlat, self.lon_order.len()],
                found: vec![nr, nc],
            });
        }
        Ok(())
    }

    /// Appends one `(lat, lon)` level in canonical order to `out` (the shape was checked).
    /// Rows are copied as the runs of consecutive input columns they are made of (two for a
    /// grid whose longitudes start at −180), not element by element.
    fn extend_level<T: Float>(&self, out: &mut Vec<T>, field: ArrayView2<'_, T>) {
        let nr = field.nrows();
        let runs = self.lon_runs();
        for i in 0..nr {
            let src = field.row(if self.lat_reversed { nr - 1 - i } else { i });
            match src.as_slice() {
                Some(row) => {
                    for run in &runs {
                        out.extend_from_slice(&row[run.clone()]);
                    }
                }
                None => out.extend(self.lon_order.iter().map(|&j| src[j])),
            }
        }
    }

    /// The canonical row as ranges of input columns: `lon_order` cut wherever it stops
    /// counting up by one.
    fn lon_runs(&self) -> Vec<std::ops::Range<usize>> {
        let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
        for &j in &self.lon_order {
            match runs.last_mut() {
                Some(run) if run.end == j => run.end += 1,
                _ => runs.push(j..j + 1),
            }
        }
        runs
    }
}

/// One axis' interpolation stencil for a target coordinate: up to two source
/// indices with positive weights (a second weight of 0 means "exact copy").
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stencil {
    i0: usize,
    w0: f64,
    i1: usize,
    w1: f64,
}

impl Stencil {
    fn exact(i: usize) -> Self {
        Self {
            i0: i,
            w0: 1.0,
            i1: i,
            w1: 0.0,
        }
    }
}

/// Bilinear regridding from a source grid onto a target grid, precomputed once
/// and reused for any number of fields.
///
/// - Longitude is periodic.
/// - A target coordinate that coincides with a source coordinate (within
///   [`COINCIDENCE_TOLERANCE_DEG`]) uses that source line alone, so a NaN
///   neighbour with zero weight does not spread.
/// - Target rows outside the source's latitude range take the nearest source
///   row (e.g. a 720-row forecast without the −90 row on a 721-row target).
/// - A NaN among the neighbours that carry weight gives NaN.
#[derive(Debug, Clone, PartialEq)]
pub struct Regridder {
    src_shape: (usize, usize),
    rows: Vec<Stencil>,
    cols: Vec<Stencil>,
    identity: bool,
}

impl Regridder {
    /// Precompute the stencils from `source` onto `target`.
    pub fn new(source: &Grid, target: &Grid) -> Self {
        let rows = target
            .lats
            .iter()
            .map(|&t| lat_stencil(&source.lats, t))
            .collect();
        let cols = target
            .lons
            .iter()
            .map(|&t| lon_stencil(&source.lons, t))
            .collect();
        Self {
            src_shape: source.shape(),
            rows,
            cols,
            identity: source.same_points(target),
        }
    }

    /// Whether the grids coincide, so that regridding is an exact copy.
    pub fn is_identity(&self) -> bool {
        self.identity
    }

    /// The target shape `(nlat, nlon)`.
    pub fn target_shape(&self) -> (usize, usize) {
        (self.rows.len(), self.cols.len())
    }

    /// [`Regridder::apply`] to every level of a `(level, lat, lon)` stack, each level's rows
    /// computed in parallel straight into the result (no per-level temporary).
    pub fn apply_stack<T: Float>(&self, src: ArrayView3<'_, T>) -> Result<Array3<T>, ScoringError> {
        let (nr, nc) = self.target_shape();
        // `apply_into` writes every element: start from zeroed memory, which a fresh
        // allocation gets without a pass of its own, rather than a NaN fill
        let len = src.shape()[0] * nr * nc;
        self.apply_stack_in(src, vec![T::from_f64(0.0); len])
    }

    /// [`Regridder::apply_stack`] into the allocation of `storage` (its contents are
    /// ignored), so that a caller can reuse a buffer it no longer needs.
    pub fn apply_stack_in<T: Float>(
        &self,
        src: ArrayView3<'_, T>,
        mut storage: Vec<T>,
    ) -> Result<Array3<T>, ScoringError> {
        let (nr, nc) = self.target_shape();
        // every element is written below; the fill only gives the length
        storage.resize(src.shape()[0] * nr * nc, T::from_f64(0.0));
        let mut out = Array3::from_shape_vec((src.shape()[0], nr, nc), storage)
            .map_err(|e| ScoringError::Grid(e.to_string()))?;
        for (level, o) in src.axis_iter(Axis(0)).zip(out.axis_iter_mut(Axis(0))) {
            self.apply_into(level, o)?;
        }
        Ok(out)
    }

    /// Interpolate one source field (canonical orientation, source shape) onto
    /// the target grid. Arithmetic is in `f64`; the result is rounded to `T`.
    pub fn apply<T: Float>(&self, src: ArrayView2<'_, T>) -> Result<Array2<T>, ScoringError> {
        let (nr, nc) = self.target_shape();
        let mut out = Array2::from_elem((nr, nc), T::NAN);
        self.apply_into(src, out.view_mut())?;
        Ok(out)
    }

    /// [`Regridder::apply`] into `out` (target shape). A target row that coincides with a
    /// source row, where every column coincides with the same source column, is that source
    /// row copied (the bits the per-point exact copy gives).
    fn apply_into<T: Float>(
        &self,
        src: ArrayView2<'_, T>,
        mut out: ArrayViewMut2<'_, T>,
    ) -> Result<(), ScoringError> {
        if src.dim() != self.src_shape {
            return Err(ScoringError::ShapeMismatch {
                what: "source field",
                expected: vec![self.src_shape.0, self.src_shape.1],
                found: src.shape().to_vec(),
            });
        }
        let columns_copied = self.cols.len() == self.src_shape.1
            && self
                .cols
                .iter()
                .enumerate()
                .all(|(j, cs)| cs.w1 == 0.0 && cs.i0 == j);
        out.axis_iter_mut(Axis(0))
            .into_par_iter()
            .zip(self.rows.par_iter())
            .for_each(|(mut orow, rs)| {
                let r0 = src.row(rs.i0);
                let r1 = src.row(rs.i1);
                if rs.w1 == 0.0 && columns_copied {
                    orow.assign(&r0);
                    return;
                }
                for (o, cs) in orow.iter_mut().zip(&self.cols) {
                    let line = |r: &ArrayView1<'_, T>| -> f64 {
                        let mut v = cs.w0 * r[cs.i0].to_f64();
                        if cs.w1 != 0.0 {
                            v += cs.w1 * r[cs.i1].to_f64();
                        }
                        v
                    };
                    let v = if rs.w1 == 0.0 && cs.w1 == 0.0 {
                        // Exact coincidence: copy bit for bit.
                        *o = r0[cs.i0];
                        continue;
                    } else if rs.w1 == 0.0 {
                        line(&r0)
                    } else {
                        rs.w0 * line(&r0) + rs.w1 * line(&r1)
                    };
                    *o = T::from_f64(v);
                }
            });
        Ok(())
    }
}

use ndarray::ArrayView1;

fn lat_stencil(src: &[f64], t: f64) -> Stencil {
    // src is strictly descending.
    let n = src.len();
    if t >= src[0] - COINCIDENCE_TOLERANCE_DEG {
        return Stencil::exact(0);
    }
    if t <= src[n - 1] + COINCIDENCE_TOLERANCE_DEG {
        return Stencil::exact(n - 1);
    }
    // first index with src[i] < t  (partition point on descending data)
    let k = src.partition_point(|&v| v >= t);
    let (i0, i1) = (k - 1, k);
    if (src[i0] - t).abs() <= COINCIDENCE_TOLERANCE_DEG {
        return Stencil::exact(i0);
    }
    if (src[i1] - t).abs() <= COINCIDENCE_TOLERANCE_DEG {
        return Stencil::exact(i1);
    }
    let w1 = (src[i0] - t) / (src[i0] - src[i1]);
    Stencil {
        i0,
        w0: 1.0 - w1,
        i1,
        w1,
    }
}

fn lon_stencil(src: &[f64], t: f64) -> Stencil {
    // src strictly ascending in [0, 360); periodic.
    let n = src.len();
    if let Some(j) = coincident_lon(src, t) {
        return Stencil::exact(j);
    }
    if n == 1 {
        return Stencil::exact(0);
    }
    let k = src.partition_point(|&v| v <= t);
    let (i0, x0, i1, x1) = if k == 0 {
        (n - 1, src[n - 1] - 360.0, 0, src[0])
    } else if k == n {
        (n - 1, src[n - 1], 0, src[0] + 360.0)
    } else {
        (k - 1, src[k - 1], k, src[k])
    };
    let w1 = (t - x0) / (x1 - x0);
    Stencil {
        i0,
        w0: 1.0 - w1,
        i1,
        w1,
    }
}

/// The distance in degrees between two longitudes on the circle (0 to 180).
fn lon_distance(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(360.0);
    d.min(360.0 - d)
}

/// The first source longitude (lowest index) within [`COINCIDENCE_TOLERANCE_DEG`] of `t` by
/// [`lon_distance`]: what a scan over every source column finds, found by binary search (the
/// regridder is built for every field a miner sends). A coincident longitude lies within the
/// tolerance of `t`, `t − 360` or `t + 360` (`src` and `t` in `[0, 360)`); each window is
/// searched with twice the tolerance as margin, so rounding cannot leave one out, and
/// [`lon_distance`] decides as the scan did.
fn coincident_lon(src: &[f64], t: f64) -> Option<usize> {
    let margin = 2.0 * COINCIDENCE_TOLERANCE_DEG;
    [t - 360.0, t, t + 360.0]
        .into_iter()
        .filter_map(|centre| {
            let first = src.partition_point(|&s| s < centre - margin);
            src[first..]
                .iter()
                .take_while(|&&s| s <= centre + margin)
                .position(|&s| lon_distance(s, t) <= COINCIDENCE_TOLERANCE_DEG)
                .map(|k| first + k)
        })
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use proptest::prelude::*;

    /// The scan `coincident_lon` replaces: every column, first match.
    fn scanned(src: &[f64], t: f64) -> Option<usize> {
        src.iter()
            .position(|&s| lon_distance(s, t) <= COINCIDENCE_TOLERANCE_DEG)
    }

    fn ascending(mut lons: Vec<f64>) -> Vec<f64> {
        lons.sort_by(f64::total_cmp);
        lons.dedup_by(|a, b| *a - *b <= COINCIDENCE_TOLERANCE_DEG);
        lons
    }

    proptest! {
        /// Random source longitudes, targets on, near (within and just outside the tolerance)
        /// and across the 0/360 seam of them: the search finds what the scan found.
        #[test]
        fn coincident_lon_finds_what_the_scan_found(
            lons in prop::collection::vec(0.0f64..360.0, 1..40),
            pick in 0usize..40,
            offset in prop::sample::select(vec![0.0, 5e-7, -5e-7, 1e-6, -1e-6, 1.5e-6, -2e-6, 0.3]),
            free in 0.0f64..360.0,
        ) {
            let src = ascending(lons);
            let near = (src[pick % src.len()] + offset).rem_euclid(360.0);
            for t in [near, free, 0.0, 360.0 - 5e-7, 5e-7] {
                prop_assert_eq!(coincident_lon(&src, t), scanned(&src, t), "t = {}", t);
            }
        }
    }

    #[test]
    fn coincident_lon_across_the_seam() {
        let src = [0.0, 90.0, 180.0, 359.999_998_5];
        for (t, want) in [
            (0.0, Some(0)),
            (359.999_999_9, Some(0)), // 1e-7 from 0 across the seam
            (359.999_998, Some(3)),   // 5e-7 from the last column, 2e-6 from 0
            (0.000_000_5, Some(0)),
            (45.0, None),
        ] {
            assert_eq!(coincident_lon(&src, t), want, "t = {t}");
            assert_eq!(scanned(&src, t), want, "t = {t}");
        }
    }

    /// Rows copied as runs of columns equal the element-by-element gather, for longitudes
    /// starting at −180 (one rotation), at an odd start, and already canonical.
    #[test]
    fn reordered_rows_equal_the_gather() {
        for lons in [
            (0..8)
                .map(|j| -180.0 + 45.0 * f64::from(j))
                .collect::<Vec<_>>(),
            (0..8).map(|j| 100.0 + 45.0 * f64::from(j)).collect(),
            (0..8).map(|j| 45.0 * f64::from(j)).collect(),
        ] {
            let lats = vec![-45.0, 0.0, 45.0];
            let (_, orientation) = Grid::normalise(&lats, &lons).unwrap();
            let field = Array2::from_shape_fn((3, 8), |(i, j)| (10 * i + j) as f32);
            let got = orientation.apply(field.view()).unwrap();
            let want =
                Array2::from_shape_fn((3, 8), |(i, j)| field[[2 - i, orientation.lon_order[j]]]);
            assert_eq!(got, want, "longitudes {lons:?}");
            // a view whose rows are not contiguous takes the gather path: same values
            let transposed = field.t().to_owned();
            let strided = transposed.t();
            assert_eq!(orientation.apply(strided).unwrap(), want);
        }
    }
}
