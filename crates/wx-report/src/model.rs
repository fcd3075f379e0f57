//! What a report shows: plain values, no database and no IO.

use ndarray::{Array1, Array2};
use ndarray_stats::Quantile1dExt;
use ndarray_stats::interpolate::Higher;

/// Everything a report of one run shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReportData {
    /// Page and leaderboard title, e.g. `wx run 1`.
    pub title: String,
    /// The run.
    pub run: RunInfo,
    /// One entry per miner of the run (any order: the leaderboard sorts them).
    pub miners: Vec<MinerEntry>,
    /// ERA5 score per lead, one curve per miner that has at least one scored lead.
    pub lead_curves: Vec<LeadCurve>,
    /// Error maps (forecast − truth) of chosen miners, typically the best and the worst.
    pub error_maps: Vec<ErrorMapPanel>,
    /// The Day1 pass threshold, drawn on the Day1 vs ERA5 chart.
    pub day1_pass_threshold: Option<f64>,
    /// Free-form remarks shown at the end of the page (e.g. where the data came from).
    pub notes: Vec<String>,
}

/// The run a report is about.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunInfo {
    /// Run id.
    pub run_id: i64,
    /// GFS init time, formatted for display.
    pub gfs_init: String,
    /// Run status text (`completed`, …).
    pub status: String,
    /// Whether the run was created in test mode.
    pub test_mode: bool,
    /// When the report was made, formatted for display.
    pub generated_at: String,
}

/// One miner's line of the leaderboard, with the values the charts use.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MinerEntry {
    /// Uid.
    pub uid: i32,
    /// SS58 hotkey.
    pub hotkey: String,
    /// Optional description (in the demo: the simulated behaviour, e.g. `skilled ×0.25`).
    pub label: Option<String>,
    /// Forecast status text (`completed`, `verify_failed`, …).
    pub status: String,
    /// Day1 quality-check score (`forecast_score_initial`).
    pub day1: Option<f64>,
    /// Combined ERA5 score.
    pub era5_combined: Option<f64>,
    /// Fraction of the ERA5 leads scored.
    pub completeness: Option<f64>,
    /// Overall forecast score of the run.
    pub overall: Option<f64>,
    /// Rank in the run (1 = best).
    pub rank: Option<i32>,
    /// Ranking weight from the subnet snapshot.
    pub weight: Option<f64>,
    /// Last error, readable and free of secrets.
    pub last_error: Option<String>,
    /// A reference forecast (a climatology, a GFS clone) run to compare the miners with, not a
    /// competitor: drawn dashed and grey.
    pub reference: bool,
}

/// A miner's ERA5 score at each scored lead.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LeadCurve {
    /// Uid.
    pub uid: i32,
    /// `(lead hours, score)`, any order (drawn sorted by lead).
    pub points: Vec<(u32, f64)>,
}

/// One error-map slot of the report: a map, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorMapPanel {
    /// Which miner this is, e.g. `best` or `worst` (also names the file: `error_map_best.png`;
    /// characters other than ASCII letters, digits, `-` and `_` become `_`).
    pub role: String,
    /// Uid.
    pub uid: i32,
    /// The map, or the reason it could not be made.
    pub content: ErrorMapContent,
}

/// The content of an error-map slot.
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorMapContent {
    /// The map.
    Map(ErrorMap),
    /// No map: the report shows this reason instead (e.g. the miner's store is gone).
    Unavailable {
        /// Why (shown to the reader).
        reason: String,
    },
}

/// Forecast − truth of one variable at one lead on a regular latitude/longitude grid.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorMap {
    /// Variable key, e.g. `2t` or `z500`.
    pub variable: String,
    /// Units of the values, e.g. `K`.
    pub units: String,
    /// Lead time, hours.
    pub lead_hours: u32,
    /// Valid time, formatted for display.
    pub valid_time: String,
    /// Latitudes (degrees) of the rows, either order, evenly spaced.
    pub lats: Vec<f64>,
    /// Longitudes (degrees) of the columns, ascending, evenly spaced.
    pub lons: Vec<f64>,
    /// `(lat, lon)` values; NaN where there is no value.
    pub values: Array2<f32>,
    /// The axes are the Earth's latitudes and longitudes (degrees north and east): coastlines
    /// are drawn. False for a synthetic grid.
    pub geographic: bool,
}

/// The colour range of one error map.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColourRange {
    /// The scale is `[-vmax, vmax]`: the robust maximum rounded up to a round number.
    pub vmax: f64,
    /// The robust maximum: the 99th percentile of |error| over the finite values.
    pub robust_max: f64,
    /// Fraction of the finite values beyond `vmax` (drawn at full colour).
    pub saturated: f64,
}

/// The percentile of |error| that sets an error map's colour range.
pub const ROBUST_PERCENTILE: f64 = 99.0;

/// The smallest of 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10ⁿ that is at least `x` (`x` > 0): a
/// round number, at most a third above `x`, so that the colours keep their strength.
pub(crate) fn round_up(x: f64) -> f64 {
    let exponent = x.log10().floor() as i32;
    // m / 10ᵏ rather than m · 0.1ᵏ, so that 0.3 prints as 0.3
    let scaled = |m: f64| {
        if exponent < 0 {
            m / 10f64.powi(-exponent)
        } else {
            m * 10f64.powi(exponent)
        }
    };
    [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .into_iter()
        .map(scaled)
        .find(|v| *v >= x * (1.0 - 1e-12))
        .unwrap_or_else(|| scaled(10.0))
}

impl ErrorMap {
    /// Root mean square of the finite values, weighted by cos(latitude); `None` if none is
    /// finite.
    pub fn rms(&self) -> Option<f64> {
        let mut sum = 0.0;
        let mut weight = 0.0;
        for (i, row) in self.values.rows().into_iter().enumerate() {
            let w = self
                .lats
                .get(i)
                .map(|l| l.to_radians().cos().max(0.0))
                .unwrap_or(0.0);
            for v in row.iter().filter(|v| v.is_finite()) {
                sum += w * f64::from(*v) * f64::from(*v);
                weight += w;
            }
        }
        (weight > 0.0).then(|| (sum / weight).sqrt())
    }

    /// The largest finite absolute value (0 when none is finite).
    pub fn max_abs(&self) -> f64 {
        self.values
            .iter()
            .filter(|v| v.is_finite())
            .fold(0.0f64, |m, v| m.max(f64::from(v.abs())))
    }

    /// The [`ROBUST_PERCENTILE`]th percentile of |error| over the finite values (`None` when
    /// none is finite).
    ///
    /// ndarray-stats selects it by quickselect, which recurses once per partition and puts
    /// every value equal to the pivot on one side: a field of many equal errors (a masked
    /// region, an exact clone) would recurse once per value and overflow the stack. The values
    /// are therefore made distinct first — the bits of |error| (for non-negative floats they
    /// order like the values) in the high half of a `u64`, the index in the low half.
    pub fn robust_max_abs(&self) -> Option<f64> {
        let keys: Array1<u64> = self
            .values
            .iter()
            .filter(|v| v.is_finite())
            .enumerate()
            .map(|(i, v)| (u64::from(v.abs().to_bits()) << 32) | (i as u64 & 0xffff_ffff))
            .collect();
        let mut keys = keys;
        let q = noisy_float::types::n64(ROBUST_PERCENTILE / 100.0);
        let key = keys.quantile_mut(q, &Higher).ok()?;
        Some(f64::from(f32::from_bits((key >> 32) as u32)))
    }

    /// This map's own symmetric colour range, from its robust maximum (the largest |error|
    /// when the percentile is 0; ±1 when every value is 0 or none is finite).
    pub fn colour_range(&self) -> ColourRange {
        let robust = self.robust_max_abs().unwrap_or(0.0);
        let basis = if robust > 0.0 { robust } else { self.max_abs() };
        let vmax = if basis > 0.0 { round_up(basis) } else { 1.0 };
        let (finite, beyond) = self
            .values
            .iter()
            .filter(|v| v.is_finite())
            .fold((0usize, 0usize), |(n, b), v| {
                (n + 1, b + usize::from(f64::from(v.abs()) > vmax))
            });
        ColourRange {
            vmax,
            robust_max: robust,
            saturated: if finite > 0 {
                beyond as f64 / finite as f64
            } else {
                0.0
            },
        }
    }

    /// Whether coastlines belong on this map: a geographic grid whose axes lie within the
    /// Earth's latitudes and longitudes.
    pub fn is_geographic(&self) -> bool {
        self.geographic
            && self.lats.iter().all(|l| (-90.0..=90.0).contains(l))
            && self.lons.iter().all(|l| (-180.0..=360.0).contains(l))
    }

    /// Whether the shape matches the axes.
    pub fn is_consistent(&self) -> bool {
        self.values.dim() == (self.lats.len(), self.lons.len())
            && !self.lats.is_empty()
            && !self.lons.is_empty()
    }
}

impl ReportData {
    /// The miners in leaderboard order: by rank (unranked last), then overall score
    /// (highest first), then uid.
    pub fn ranked(&self) -> Vec<&MinerEntry> {
        let mut v: Vec<&MinerEntry> = self.miners.iter().collect();
        v.sort_by(|a, b| {
            let rank = |m: &MinerEntry| m.rank.unwrap_or(i32::MAX);
            rank(a)
                .cmp(&rank(b))
                .then_with(|| {
                    let o = |m: &MinerEntry| m.overall.unwrap_or(f64::NEG_INFINITY);
                    o(b).total_cmp(&o(a))
                })
                .then_with(|| a.uid.cmp(&b.uid))
        });
        v
    }

    /// The entry of `uid`.
    pub fn miner(&self, uid: i32) -> Option<&MinerEntry> {
        self.miners.iter().find(|m| m.uid == uid)
    }

    /// `uid 7 (skilled ×0.25)` or `uid 7`.
    pub fn miner_name(&self, uid: i32) -> String {
        match self.miner(uid).and_then(|m| m.label.as_deref()) {
            Some(label) => format!("uid {uid} ({label})"),
            None => format!("uid {uid}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(values: Vec<f32>) -> ErrorMap {
        let n = values.len();
        ErrorMap {
            variable: "2t".into(),
            units: "K".into(),
            lead_hours: 24,
            valid_time: String::new(),
            lats: vec![0.0],
            lons: (0..n).map(|j| j as f64).collect(),
            values: Array2::from_shape_vec((1, n), values).unwrap(),
            geographic: false,
        }
    }

    #[test]
    fn colour_ranges_are_round_and_robust() {
        assert_eq!(round_up(0.98), 1.0);
        assert_eq!(round_up(5.88), 6.0);
        assert_eq!(round_up(0.27), 0.3);
        assert_eq!(round_up(1234.0), 1500.0);
        assert_eq!(round_up(8.0), 8.0);
        // one wild value among a thousand does not set the scale
        let mut values: Vec<f32> = (0..1000).map(|i| (i % 20) as f32 / 10.0 - 0.95).collect();
        values[500] = 400.0;
        values[501] = f32::NAN;
        let range = map(values).colour_range();
        assert!((range.robust_max - 0.95).abs() < 1e-5, "{range:?}");
        assert_eq!(range.vmax, 1.0);
        assert!(
            range.saturated > 0.0 && range.saturated < 0.002,
            "{range:?}"
        );
        // nothing finite, or all zero: a neutral ±1
        assert_eq!(map(vec![f32::NAN; 3]).colour_range().vmax, 1.0);
        assert_eq!(map(vec![0.0; 3]).colour_range().vmax, 1.0);
        // mostly zeros and a few errors: the robust maximum is 0, the range comes from the max
        let mut sparse = vec![0.0f32; 1000];
        sparse[3] = -2.2;
        assert_eq!(map(sparse).colour_range().vmax, 2.5);
    }

    #[test]
    fn many_equal_errors_do_not_exhaust_the_stack() {
        // quickselect on a million equal values recursed once per value before the keys were
        // made distinct; run it on a small stack to be sure
        let handle = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let mut values = vec![0.5f32; 1_000_000];
                values[0] = 3.0;
                map(values).robust_max_abs()
            })
            .unwrap();
        assert_eq!(handle.join().unwrap(), Some(0.5));
    }
}
