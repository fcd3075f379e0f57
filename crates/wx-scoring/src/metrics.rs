//! Metric values (docs/scoring.md §3) derived from the fused kernel's sums, with failures
//! as values.

use serde::{Deserialize, Serialize};

use crate::config::FieldConfig;
use crate::error::ScoringError;
use crate::float::Float;
use crate::kernel::{FieldInputs, FieldSums, field_sums};

/// Why a metric has no value. Failures are data, never panics: the other
/// metrics of the same field are still computed and can be stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum MetricFailure {
    /// No point satisfies the metric's finite mask (or all weights are 0).
    #[error("no valid points")]
    NoValidPoints,
    /// ACC: an anomaly field's weighted std is 0 or at most the relative floor
    /// times the weighted RMS of its raw field.
    #[error("degenerate anomaly field (forecast: {forecast}, truth: {truth})")]
    DegenerateAnomaly {
        /// The forecast anomaly f − c is degenerate.
        forecast: bool,
        /// The truth anomaly o − c is degenerate.
        truth: bool,
    },
    /// Pattern correlation: one of the raw fields has zero variance.
    #[error("zero variance")]
    ZeroVariance,
    /// Skill: the reference has zero MSE while the forecast's is positive
    /// (the score would be −inf).
    #[error("reference has zero error but the forecast does not (skill = -inf)")]
    ReferenceZeroError,
    /// The value overflowed or is otherwise not finite.
    #[error("non-finite result")]
    NonFinite,
    /// A multi-level aggregate: the metric failed at level index `level`.
    #[error("failed at level index {level}: {cause}")]
    AtLevel {
        /// Index of the first failing level (in input order).
        level: usize,
        /// What went wrong there.
        cause: Box<MetricFailure>,
    },
}

/// A metric: a finite number or the reason it has none.
pub type MetricValue = Result<f64, MetricFailure>;

/// Turn a value into a [`MetricValue`], rejecting non-finite numbers.
pub(crate) fn finite(v: f64) -> MetricValue {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(MetricFailure::NonFinite)
    }
}

/// A field-level check that fails the whole variable (docs/scoring.md §2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum FieldFailure {
    /// `#finite(f∧o) / #finite(o)` is below the floor.
    #[error("coverage {coverage:.6} below floor {floor}")]
    CoverageTooLow {
        /// Measured coverage.
        coverage: f64,
        /// Configured floor.
        floor: f64,
    },
    /// A forecast value exceeds the extreme-value limit in magnitude.
    #[error("forecast value of magnitude {max_abs:e} exceeds {limit:e}")]
    ExtremeValue {
        /// Largest |f|.
        max_abs: f64,
        /// Configured limit.
        limit: f64,
    },
}

/// Every metric of one 2-D field comparison.
///
/// `Option` fields are `None` when the input they need was not given
/// (climatology or reference); `Some(Err(..))` when it was given but the metric
/// failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldMetrics {
    /// `#finite(f∧o) / #finite(o)` (0 when the truth has no finite point).
    pub coverage: f64,
    /// Number of finite truth points.
    pub n_truth: u64,
    /// Number of points where forecast and truth are both finite.
    pub n_pairs: u64,
    /// Largest |f| over non-NaN forecast values.
    pub max_abs_forecast: f64,
    /// Weighted mean error Σw·(f − o) / W.
    pub bias: MetricValue,
    /// Weighted mean squared error.
    pub mse: MetricValue,
    /// √MSE.
    pub rmse: MetricValue,
    /// Weighted mean absolute error.
    pub mae: MetricValue,
    /// Anomaly correlation (needs a climatology).
    pub acc: Option<MetricValue>,
    /// Skill of the bias-corrected forecast against the reference (needs a reference).
    pub skill: Option<MetricValue>,
    /// The climatology's own MSE against the truth, on the (c, o) mask.
    pub mse_clim: Option<MetricValue>,
    /// √`mse_clim`.
    pub rmse_clim: Option<MetricValue>,
    /// Weighted centred Pearson correlation of f and a reference field.
    pub pattern_correlation: Option<MetricValue>,
    /// Clone distance: weighted MSE(f, r) without bias correction.
    pub clone_distance: Option<MetricValue>,
}

impl FieldMetrics {
    /// Derive all metrics from kernel sums. `acc_relative_floor` is
    /// [`FieldConfig::acc_relative_floor`].
    pub fn from_sums(s: &FieldSums, acc_relative_floor: f64) -> Self {
        let coverage = if s.n_truth > 0 {
            s.n_pairs as f64 / s.n_truth as f64
        } else {
            0.0
        };
        let e = &s.error;
        let has_fo = e.w > 0.0;
        let (bias, mse, rmse, mae) = if has_fo {
            let mse = e.m2 / e.w + e.mean * e.mean;
            (
                finite(e.mean),
                finite(mse),
                finite(mse.sqrt()),
                finite(s.sum_abs_error / e.w),
            )
        } else {
            let n = || Err(MetricFailure::NoValidPoints);
            (n(), n(), n(), n())
        };
        let acc = s.anomaly.as_ref().map(|a| acc_from(a, acc_relative_floor));
        let (mse_clim, rmse_clim) = match &s.climatology {
            Some(c) if c.w > 0.0 => {
                let m = c.sum_sq_error / c.w;
                (Some(finite(m)), Some(finite(m.sqrt())))
            }
            Some(_) => (
                Some(Err(MetricFailure::NoValidPoints)),
                Some(Err(MetricFailure::NoValidPoints)),
            ),
            None => (None, None),
        };
        let skill = if s.skill_vs_climatology {
            s.anomaly.as_ref().map(|a| {
                let m = &a.anomalies;
                if m.w > 0.0 {
                    // e = a − b, so Σw(e − ē)² = m2_a + m2_b − 2·c_ab on the same mask,
                    // and Σw(c − o)² = Σw·b² = m2_b + W·b̄².
                    let mse_bc = ((m.m2_x + m.m2_y) - 2.0 * m.c_xy).max(0.0) / m.w;
                    let mse_ref = m.m2_y / m.w + m.mean_y * m.mean_y;
                    skill_score(mse_bc, mse_ref)
                } else {
                    Err(MetricFailure::NoValidPoints)
                }
            })
        } else {
            s.reference.as_ref().map(|r| {
                if r.error.w > 0.0 {
                    skill_score(r.error.m2 / r.error.w, r.sum_sq_reference_error / r.error.w)
                } else {
                    Err(MetricFailure::NoValidPoints)
                }
            })
        };
        let (pattern_correlation, clone_distance) = match &s.pattern {
            Some(p) if p.fields.w > 0.0 => (
                Some(p.fields.correlation().ok_or(MetricFailure::ZeroVariance)),
                Some(finite(p.sum_sq_difference / p.fields.w)),
            ),
            Some(_) => (
                Some(Err(MetricFailure::NoValidPoints)),
                Some(Err(MetricFailure::NoValidPoints)),
            ),
            None => (None, None),
        };
        Self {
            coverage,
            n_truth: s.n_truth,
            n_pairs: s.n_pairs,
            max_abs_forecast: s.max_abs_forecast,
            bias,
            mse,
            rmse,
            mae,
            acc,
            skill,
            mse_clim,
            rmse_clim,
            pattern_correlation,
            clone_distance,
        }
    }

    /// The first field-level failure (coverage, then extreme value), if any.
    pub fn field_failure(&self, cfg: &FieldConfig) -> Option<FieldFailure> {
        field_failure(self.coverage, self.max_abs_forecast, cfg)
    }
}

pub(crate) fn field_failure(
    coverage: f64,
    max_abs: f64,
    cfg: &FieldConfig,
) -> Option<FieldFailure> {
    if coverage.is_nan() || coverage < cfg.coverage_floor {
        return Some(FieldFailure::CoverageTooLow {
            coverage,
            floor: cfg.coverage_floor,
        });
    }
    if max_abs > cfg.extreme_value {
        return Some(FieldFailure::ExtremeValue {
            max_abs,
            limit: cfg.extreme_value,
        });
    }
    None
}

fn acc_from(a: &crate::kernel::AnomalySums, floor: f64) -> MetricValue {
    let m = &a.anomalies;
    if m.w <= 0.0 {
        return Err(MetricFailure::NoValidPoints);
    }
    // std(a) <= floor·RMS(f)  <=>  m2_a/W <= floor²·Σw f²/W  <=>  m2_a <= floor²·Σw f².
    let f2 = floor * floor;
    let deg_f = m.m2_x.is_nan() || m.m2_x <= 0.0 || m.m2_x <= f2 * a.sum_sq_forecast;
    let deg_o = m.m2_y.is_nan() || m.m2_y <= 0.0 || m.m2_y <= f2 * a.sum_sq_truth;
    if deg_f || deg_o {
        return Err(MetricFailure::DegenerateAnomaly {
            forecast: deg_f,
            truth: deg_o,
        });
    }
    m.correlation().ok_or(MetricFailure::NonFinite)
}

/// The spec's skill score `1 − mse / mse_ref` with its zero-reference rule:
/// `mse_ref == 0` gives 1 when `mse == 0` and a [`MetricFailure::ReferenceZeroError`]
/// otherwise.
pub fn skill_score(mse: f64, mse_ref: f64) -> MetricValue {
    if !(mse.is_finite() && mse_ref.is_finite()) {
        return Err(MetricFailure::NonFinite);
    }
    if mse_ref == 0.0 {
        return if mse == 0.0 {
            Ok(1.0)
        } else {
            Err(MetricFailure::ReferenceZeroError)
        };
    }
    finite(1.0 - mse / mse_ref)
}

/// Score one 2-D comparison: run the fused kernel and derive every metric.
///
/// ```
/// use ndarray::Array2;
/// use wx_scoring::{FieldInputs, Grid, ScoringConfig, score_field};
///
/// let grid = Grid::regular_global(19, 36).unwrap();
/// let truth = Array2::<f32>::from_shape_fn((19, 36), |(i, j)| 250.0 + i as f32 + 0.1 * j as f32);
/// let forecast = truth.mapv(|v| v + 0.5);
/// let m = score_field(
///     &FieldInputs::new(forecast.view(), truth.view()),
///     &grid.lat_weights(),
///     &ScoringConfig::default(),
/// )
/// .unwrap();
/// // f32 inputs: `v + 0.5` is rounded to f32, hence the tolerance.
/// assert!((m.bias.unwrap() - 0.5).abs() < 1e-4);
/// assert!((m.rmse.unwrap() - 0.5).abs() < 1e-4);
/// ```
pub fn score_field<T: Float>(
    inputs: &FieldInputs<'_, T>,
    row_weights: &[f64],
    cfg: &crate::ScoringConfig,
) -> Result<FieldMetrics, ScoringError> {
    let s = field_sums(inputs, row_weights)?;
    Ok(FieldMetrics::from_sums(&s, cfg.field.acc_relative_floor))
}
