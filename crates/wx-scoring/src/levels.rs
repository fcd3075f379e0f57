//! Multi-level variables: half-layer thickness weights and the per-variable
//! aggregate of per-level metrics (docs/scoring.md §3).

use serde::{Deserialize, Serialize};

use crate::config::ScoringConfig;
use crate::error::ScoringError;
use crate::float::Float;
use crate::kernel::{StackInputs, stack_sums};
use crate::metrics::{
    FieldFailure, FieldMetrics, MetricFailure, MetricValue, field_failure, finite,
};

/// Half-layer thickness weights ω for pressure levels, normalised to sum 1.
///
/// On the levels sorted ascending, Δ₀ = (p₁−p₀)/2, Δᵢ = (pᵢ₊₁−pᵢ₋₁)/2,
/// Δₙ₋₁ = (pₙ₋₁−pₙ₋₂)/2. The returned weights are in the *input* order. A
/// single level gets weight 1 (the spec's formula needs two; one level is its
/// own variable). Levels must be finite, positive and distinct.
pub fn thickness_weights(levels: &[f64]) -> Result<Vec<f64>, ScoringError> {
    let n = levels.len();
    if n == 0 {
        return Err(ScoringError::Levels("no levels".into()));
    }
    if levels.iter().any(|p| !p.is_finite() || *p <= 0.0) {
        return Err(ScoringError::Levels("levels must be finite and > 0".into()));
    }
    if n == 1 {
        return Ok(vec![1.0]);
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| levels[a].total_cmp(&levels[b]));
    let p: Vec<f64> = order.iter().map(|&i| levels[i]).collect();
    if p.windows(2).any(|w| w[0] == w[1]) {
        return Err(ScoringError::Levels("duplicate levels".into()));
    }
    let mut delta = vec![0.0; n];
    delta[0] = (p[1] - p[0]) / 2.0;
    delta[n - 1] = (p[n - 1] - p[n - 2]) / 2.0;
    for i in 1..n - 1 {
        delta[i] = (p[i + 1] - p[i - 1]) / 2.0;
    }
    let total: f64 = delta.iter().sum();
    let mut out = vec![0.0; n];
    for (k, &i) in order.iter().enumerate() {
        out[i] = delta[k] / total;
    }
    Ok(out)
}

/// The metrics of one variable at one lead: a surface field, or the
/// thickness-weighted aggregate of a multi-level variable.
///
/// For a multi-level variable: MSE = Σωᵢ·MSEᵢ (RMSE its root), ACC = Σωᵢ·ACCᵢ,
/// skill = Σωᵢ·SSᵢ, climatology MSE = Σωᵢ·MSE_clim,ᵢ (RMSE its root), as the
/// spec says; bias, MAE, clone distance and pattern correlation are aggregated
/// the same way (not used by any score, provided for storage). A metric fails
/// if it failed at any level ([`MetricFailure::AtLevel`]). Coverage is the
/// minimum over levels and `max_abs_forecast` the maximum, so the variable
/// fails if any level does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariableMetrics {
    /// Number of levels aggregated (1 for a surface field).
    pub levels: usize,
    /// Minimum coverage over levels.
    pub coverage: f64,
    /// Maximum |f| over levels.
    pub max_abs_forecast: f64,
    /// Bias.
    pub bias: MetricValue,
    /// MSE.
    pub mse: MetricValue,
    /// RMSE = √MSE.
    pub rmse: MetricValue,
    /// MAE.
    pub mae: MetricValue,
    /// ACC.
    pub acc: Option<MetricValue>,
    /// Skill against the reference.
    pub skill: Option<MetricValue>,
    /// The climatology's MSE.
    pub mse_clim: Option<MetricValue>,
    /// The climatology's RMSE.
    pub rmse_clim: Option<MetricValue>,
    /// Pattern correlation with the reference.
    pub pattern_correlation: Option<MetricValue>,
    /// Clone distance to the reference.
    pub clone_distance: Option<MetricValue>,
}

impl From<&FieldMetrics> for VariableMetrics {
    fn from(m: &FieldMetrics) -> Self {
        Self {
            levels: 1,
            coverage: m.coverage,
            max_abs_forecast: m.max_abs_forecast,
            bias: m.bias.clone(),
            mse: m.mse.clone(),
            rmse: m.rmse.clone(),
            mae: m.mae.clone(),
            acc: m.acc.clone(),
            skill: m.skill.clone(),
            mse_clim: m.mse_clim.clone(),
            rmse_clim: m.rmse_clim.clone(),
            pattern_correlation: m.pattern_correlation.clone(),
            clone_distance: m.clone_distance.clone(),
        }
    }
}

fn weighted(per: &[&MetricValue], w: &[f64]) -> MetricValue {
    let mut acc = 0.0;
    for (i, (v, wi)) in per.iter().zip(w).enumerate() {
        match v {
            Ok(x) => acc += wi * x,
            Err(e) => {
                return Err(MetricFailure::AtLevel {
                    level: i,
                    cause: Box::new(e.clone()),
                });
            }
        }
    }
    finite(acc)
}

fn weighted_opt(per: &[Option<&MetricValue>], w: &[f64]) -> Option<MetricValue> {
    let all: Option<Vec<&MetricValue>> = per.iter().copied().collect();
    all.map(|v| weighted(&v, w))
}

impl VariableMetrics {
    /// Aggregate per-level metrics with thickness weights `weights` (from
    /// [`thickness_weights`], same order as `levels`).
    pub fn from_levels(levels: &[FieldMetrics], weights: &[f64]) -> Result<Self, ScoringError> {
        if levels.is_empty() {
            return Err(ScoringError::Levels("no levels to aggregate".into()));
        }
        if levels.len() != weights.len() {
            return Err(ScoringError::Levels(format!(
                "{} level metrics but {} weights",
                levels.len(),
                weights.len()
            )));
        }
        let col = |g: fn(&FieldMetrics) -> &MetricValue| -> Vec<&MetricValue> {
            levels.iter().map(g).collect()
        };
        let col_opt = |g: fn(&FieldMetrics) -> Option<&MetricValue>| -> Vec<Option<&MetricValue>> {
            levels.iter().map(g).collect()
        };
        let mse = weighted(&col(|m| &m.mse), weights);
        let mse_clim = weighted_opt(&col_opt(|m| m.mse_clim.as_ref()), weights);
        Ok(Self {
            levels: levels.len(),
            coverage: levels
                .iter()
                .map(|m| m.coverage)
                .fold(f64::INFINITY, f64::min),
            max_abs_forecast: levels
                .iter()
                .map(|m| m.max_abs_forecast)
                .fold(0.0, f64::max),
            bias: weighted(&col(|m| &m.bias), weights),
            rmse: mse.clone().map(f64::sqrt),
            mse,
            mae: weighted(&col(|m| &m.mae), weights),
            acc: weighted_opt(&col_opt(|m| m.acc.as_ref()), weights),
            skill: weighted_opt(&col_opt(|m| m.skill.as_ref()), weights),
            rmse_clim: mse_clim.clone().map(|r| r.map(f64::sqrt)),
            mse_clim,
            pattern_correlation: weighted_opt(
                &col_opt(|m| m.pattern_correlation.as_ref()),
                weights,
            ),
            clone_distance: weighted_opt(&col_opt(|m| m.clone_distance.as_ref()), weights),
        })
    }

    /// The first field-level failure (coverage, extreme value), if any.
    pub fn field_failure(&self, cfg: &crate::config::FieldConfig) -> Option<FieldFailure> {
        field_failure(self.coverage, self.max_abs_forecast, cfg)
    }
}

/// Score a multi-level variable `(level, lat, lon)`: per-level metrics in one
/// fused parallel pass, plus their thickness-weighted aggregate.
pub fn score_levels<T: Float>(
    inputs: &StackInputs<'_, T>,
    levels_hpa: &[f64],
    row_weights: &[f64],
    cfg: &ScoringConfig,
) -> Result<(Vec<FieldMetrics>, VariableMetrics), ScoringError> {
    if levels_hpa.len() != inputs.truth.shape()[0] {
        return Err(ScoringError::Levels(format!(
            "{} level values for {} levels in the data",
            levels_hpa.len(),
            inputs.truth.shape()[0]
        )));
    }
    let w = thickness_weights(levels_hpa)?;
    let sums = stack_sums(inputs, row_weights)?;
    let per: Vec<FieldMetrics> = sums
        .iter()
        .map(|s| FieldMetrics::from_sums(s, cfg.field.acc_relative_floor))
        .collect();
    let agg = VariableMetrics::from_levels(&per, &w)?;
    Ok((per, agg))
}
