//! What a report shows: plain values, no database and no IO.

use ndarray::Array2;

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
