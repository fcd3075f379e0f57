//! Every scoring constant (`docs/scoring.md`), in one serde-friendly place.
//!
//! [`ScoringConfig::default()`] is exactly the constants of `docs/scoring.md`.
//! Every struct is `#[serde(default, deny_unknown_fields)]`: a partial TOML/JSON section only
//! overrides the keys it names, and a misspelt key is an error rather than a silent default.

use std::collections::BTreeMap;

use documented::DocumentedFields;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// All scoring constants (docs/scoring.md §2–§7).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, DocumentedFields)]
#[serde(default, deny_unknown_fields)]
pub struct ScoringConfig {
    /// Field-level checks and metric definitions shared by both phases (§2, §3).
    pub field: FieldConfig,
    /// Day1 quality control (§4).
    pub day1: Day1Config,
    /// ERA5 final scoring (§5).
    pub era5: Era5Config,
    /// Overall score (§6).
    pub overall: OverallConfig,
    /// Ranking weight curve (§7).
    pub weights: WeightCurveConfig,
}

/// Field checks and metric constants (§2, §3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DocumentedFields)]
#[serde(default, deny_unknown_fields)]
pub struct FieldConfig {
    /// Minimum coverage `#finite(f∧o) / #finite(o)`; below it the variable fails (0.9985).
    pub coverage_floor: f64,
    /// Any forecast value with `|value|` above this fails the variable (1e12).
    pub extreme_value: f64,
    /// ACC is degenerate when an anomaly's weighted std is `<=` this times the
    /// weighted RMS of the raw field it came from (1e-9).
    pub acc_relative_floor: f64,
}

impl Default for FieldConfig {
    fn default() -> Self {
        Self {
            coverage_floor: 0.9985,
            extreme_value: 1e12,
            acc_relative_floor: 1e-9,
        }
    }
}

/// Day1 quality-control constants (§1, §4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DocumentedFields)]
#[serde(default, deny_unknown_fields)]
pub struct Day1Config {
    /// Configured Day1 variable keys (`2t`, `msl`, `10u`, `10v`, `z500`).
    pub variables: Vec<String>,
    /// Configured Day1 leads in hours (`[12]`).
    pub leads: Vec<u32>,
    /// Weight α of the mean clamped skill (0.6).
    pub alpha: f64,
    /// Weight β of the mean rescaled ACC (0.4).
    pub beta: f64,
    /// Clone penalty scale γ (1.0).
    pub clone_penalty_gamma: f64,
    /// Clone distance thresholds Δᵥ (MSE units of the variable) by variable key.
    pub clone_delta: BTreeMap<String, f64>,
    /// Strict clamp fraction φ: a pair with `d < φ·Δᵥ` triggers the clamp (0.5).
    pub strict_clamp_fraction: f64,
    /// Cap applied to the Day1 score when the strict clamp fires (0.05).
    pub strict_clamp_cap: f64,
    /// Minimum pattern correlation with the reference for a sane pair (0.3).
    pub pattern_correlation_threshold: f64,
    /// Day1 pass threshold: pass when `Day1 >= threshold` (0.1).
    pub pass_threshold: f64,
}

impl Default for Day1Config {
    fn default() -> Self {
        Self {
            variables: ["2t", "msl", "10u", "10v", "z500"]
                .map(String::from)
                .to_vec(),
            leads: vec![12],
            alpha: 0.6,
            beta: 0.4,
            clone_penalty_gamma: 1.0,
            clone_delta: [
                ("2t", 0.0025),
                ("msl", 400.0),
                ("10u", 0.01),
                ("10v", 0.01),
                // (10 gpm · 9.80665)² in geopotential units, rounded as in the spec.
                ("z500", 9617.0),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            strict_clamp_fraction: 0.5,
            strict_clamp_cap: 0.05,
            pattern_correlation_threshold: 0.3,
            pass_threshold: 0.1,
        }
    }
}

/// ERA5 final-scoring constants (§1, §5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DocumentedFields)]
#[serde(default, deny_unknown_fields)]
pub struct Era5Config {
    /// Configured ERA5 variable keys (`2t 10u 10v msl t u v q z`).
    pub variables: Vec<String>,
    /// Configured ERA5 leads in hours (24, 48, …, 240).
    pub leads: Vec<u32>,
    /// Weight of the clamped climatology skill in a variable's lead score (0.6).
    pub skill_weight: f64,
    /// Weight of the rescaled ACC (0.3).
    pub acc_weight: f64,
    /// Weight of the RMSE term `1/(1 + RMSE/RMSE_clim)` (0.1).
    pub rmse_weight: f64,
    /// Variable weights wᵥ by key. Empty (the default) means equal weights
    /// `1/number of configured variables`. Otherwise configured variables not
    /// listed get weight 0 and the listed weights of the configured variables
    /// are normalised to sum 1.
    pub variable_weights: BTreeMap<String, f64>,
}

impl Default for Era5Config {
    fn default() -> Self {
        Self {
            variables: ["2t", "10u", "10v", "msl", "t", "u", "v", "q", "z"]
                .map(String::from)
                .to_vec(),
            leads: (1..=10).map(|d| d * 24).collect(),
            skill_weight: 0.6,
            acc_weight: 0.3,
            rmse_weight: 0.1,
            variable_weights: BTreeMap::new(),
        }
    }
}

impl Era5Config {
    /// The effective weight of each configured variable, in `variables` order.
    ///
    /// Equal weights when `variable_weights` is empty; otherwise the listed
    /// weights (0 for unlisted keys) normalised to sum 1. Call
    /// [`ScoringConfig::validate`] first to rule out a zero or invalid sum.
    pub fn effective_weights(&self) -> Vec<f64> {
        let n = self.variables.len();
        if n == 0 {
            return Vec::new();
        }
        if self.variable_weights.is_empty() {
            return vec![1.0 / n as f64; n];
        }
        let raw: Vec<f64> = self
            .variables
            .iter()
            .map(|v| self.variable_weights.get(v).copied().unwrap_or(0.0))
            .collect();
        let sum: f64 = raw.iter().sum();
        raw.into_iter().map(|w| w / sum).collect()
    }
}

/// Overall-score constants (§6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DocumentedFields)]
#[serde(default, deny_unknown_fields)]
pub struct OverallConfig {
    /// ERA5 weight W_e before renormalisation (0.95).
    pub era5_weight: f64,
    /// Day1 weight W_d before renormalisation (0.05).
    pub day1_weight: f64,
    /// No-ERA5 tier factor: W_d' = min(W_d·factor, cap) before any ERA5 lead (0.2).
    pub no_era5_factor: f64,
    /// No-ERA5 tier cap (0.05).
    pub no_era5_cap: f64,
}

impl Default for OverallConfig {
    fn default() -> Self {
        Self {
            era5_weight: 0.95,
            day1_weight: 0.05,
            no_era5_factor: 0.2,
            no_era5_cap: 0.05,
        }
    }
}

/// Ranking weight-curve constants (§7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DocumentedFields)]
#[serde(default, deny_unknown_fields)]
pub struct WeightCurveConfig {
    /// Logistic growth rate b (70).
    pub b: f64,
    /// Logistic Q (8).
    pub q: f64,
    /// Logistic v (0.3).
    pub v: f64,
    /// Logistic upper asymptote k (0.98).
    pub k: f64,
    /// Linear slope added to the curve (0.01).
    pub slope: f64,
    /// Percentile (linear interpolation) of the unique positive x used as midpoint M (80).
    pub midpoint_percentile: f64,
    /// Use the unique positive x for M only when at least this many are unique (3).
    pub min_unique_for_midpoint: usize,
    /// Contrast boost applies when the coefficient of variation of the positive y is below this (0.03).
    pub cv_threshold: f64,
    /// Contrast exponent: y·x^exponent (1.3).
    pub contrast_exponent: f64,
    /// Days of runs averaged into a uid's score (15). Used by the caller that
    /// selects the runs; kept here so every constant lives in one place.
    pub lookback_days: u32,
}

impl Default for WeightCurveConfig {
    fn default() -> Self {
        Self {
            b: 70.0,
            q: 8.0,
            v: 0.3,
            k: 0.98,
            slope: 0.01,
            midpoint_percentile: 80.0,
            min_unique_for_midpoint: 3,
            cv_threshold: 0.03,
            contrast_exponent: 1.3,
            lookback_days: 15,
        }
    }
}

impl ScoringConfig {
    /// Check that the constants make sense (finite, non-negative weights, ranges).
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn finite(name: &'static str, v: f64) -> Result<(), ConfigError> {
            if v.is_finite() {
                Ok(())
            } else {
                Err(ConfigError::Invalid {
                    key: name.into(),
                    reason: format!("{v} is not finite"),
                })
            }
        }
        fn non_neg(name: &'static str, v: f64) -> Result<(), ConfigError> {
            finite(name, v)?;
            if v < 0.0 {
                return Err(ConfigError::Invalid {
                    key: name.into(),
                    reason: format!("{v} is negative"),
                });
            }
            Ok(())
        }
        let f = &self.field;
        non_neg("field.coverage_floor", f.coverage_floor)?;
        non_neg("field.extreme_value", f.extreme_value)?;
        non_neg("field.acc_relative_floor", f.acc_relative_floor)?;
        let d = &self.day1;
        for (k, v) in [
            ("day1.alpha", d.alpha),
            ("day1.beta", d.beta),
            ("day1.clone_penalty_gamma", d.clone_penalty_gamma),
            ("day1.strict_clamp_fraction", d.strict_clamp_fraction),
            ("day1.strict_clamp_cap", d.strict_clamp_cap),
        ] {
            non_neg(k, v)?;
        }
        finite(
            "day1.pattern_correlation_threshold",
            d.pattern_correlation_threshold,
        )?;
        finite("day1.pass_threshold", d.pass_threshold)?;
        for (k, v) in &d.clone_delta {
            if !(v.is_finite() && *v > 0.0) {
                return Err(ConfigError::Invalid {
                    key: format!("day1.clone_delta.{k}"),
                    reason: format!("{v} must be finite and > 0"),
                });
            }
        }
        let e = &self.era5;
        non_neg("era5.skill_weight", e.skill_weight)?;
        non_neg("era5.acc_weight", e.acc_weight)?;
        non_neg("era5.rmse_weight", e.rmse_weight)?;
        for (k, v) in &e.variable_weights {
            if !(v.is_finite() && *v >= 0.0) {
                return Err(ConfigError::Invalid {
                    key: format!("era5.variable_weights.{k}"),
                    reason: format!("{v} must be finite and >= 0"),
                });
            }
        }
        if !e.variable_weights.is_empty() {
            let s: f64 = e
                .variables
                .iter()
                .filter_map(|v| e.variable_weights.get(v))
                .sum();
            if s <= 0.0 {
                return Err(ConfigError::Invalid {
                    key: "era5.variable_weights".into(),
                    reason: "the configured variables' weights sum to 0".into(),
                });
            }
        }
        let o = &self.overall;
        non_neg("overall.era5_weight", o.era5_weight)?;
        non_neg("overall.day1_weight", o.day1_weight)?;
        non_neg("overall.no_era5_factor", o.no_era5_factor)?;
        non_neg("overall.no_era5_cap", o.no_era5_cap)?;
        if o.era5_weight + o.day1_weight <= 0.0 {
            return Err(ConfigError::Invalid {
                key: "overall".into(),
                reason: "era5_weight + day1_weight must be > 0".into(),
            });
        }
        let w = &self.weights;
        for (k, v) in [
            ("weights.b", w.b),
            ("weights.q", w.q),
            ("weights.k", w.k),
            ("weights.slope", w.slope),
            ("weights.cv_threshold", w.cv_threshold),
            ("weights.contrast_exponent", w.contrast_exponent),
        ] {
            non_neg(k, v)?;
        }
        if !(w.v.is_finite() && w.v > 0.0) {
            return Err(ConfigError::Invalid {
                key: "weights.v".into(),
                reason: "must be > 0".into(),
            });
        }
        if !(0.0..=100.0).contains(&w.midpoint_percentile) {
            return Err(ConfigError::Invalid {
                key: "weights.midpoint_percentile".into(),
                reason: "must be in [0, 100]".into(),
            });
        }
        Ok(())
    }
}
