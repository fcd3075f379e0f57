//! Ranking weights from mean overall scores (docs/scoring.md §7).

use serde::{Deserialize, Serialize};

use crate::config::ScoringConfig;

/// The outcome of the weight curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RankingWeights {
    /// At least one positive score: weights sum to 1.
    Distributed {
        /// One weight per input score, summing to 1.
        weights: Vec<f64>,
        /// The midpoint M of the logistic curve.
        midpoint: f64,
        /// Whether the contrast boost y·x^γ was applied (low coefficient of variation).
        contrast_applied: bool,
    },
    /// No positive score: every weight is 0. The caller must decide what to do
    /// (the spec says: all weights 0, and say so).
    NoPositiveScore {
        /// All zeros, one per input score.
        weights: Vec<f64>,
    },
}

impl RankingWeights {
    /// The weights, whichever the outcome.
    pub fn weights(&self) -> &[f64] {
        match self {
            Self::Distributed { weights, .. } | Self::NoPositiveScore { weights } => weights,
        }
    }
}

/// Mean score over the runs of the lookback window; a run without a score
/// (`None` or non-finite) counts 0. An empty window gives 0.
pub fn mean_over_runs(scores: &[Option<f64>]) -> f64 {
    if scores.is_empty() {
        return 0.0;
    }
    scores
        .iter()
        .map(|s| s.filter(|v| v.is_finite()).unwrap_or(0.0))
        .sum::<f64>()
        / scores.len() as f64
}

/// Linear-interpolation percentile (numpy's default) of sorted data, `p` in [0, 100].
fn percentile_sorted(v: &[f64], p: f64) -> f64 {
    let pos = p / 100.0 * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(v.len() - 1);
    let frac = pos - lo as f64;
    v[lo] + (v[hi] - v[lo]) * frac
}

/// Ranking weights from each uid's mean score (docs/scoring.md §7). Non-finite or
/// non-positive scores get weight 0.
///
/// ```
/// use wx_scoring::{RankingWeights, ScoringConfig, ranking_weights};
/// let w = ranking_weights(&[0.9, 0.85, 0.8, 0.6, 0.3, 0.05], &ScoringConfig::default());
/// assert!((w.weights()[0] - 0.953170).abs() < 5e-7);
/// assert!(matches!(ranking_weights(&[0.0, 0.0], &ScoringConfig::default()), RankingWeights::NoPositiveScore { .. }));
/// ```
pub fn ranking_weights(scores: &[f64], cfg: &ScoringConfig) -> RankingWeights {
    let c = &cfg.weights;
    let positive = |s: f64| s.is_finite() && s > 0.0;
    let max = scores
        .iter()
        .copied()
        .filter(|&s| positive(s))
        .fold(0.0, f64::max);
    if max <= 0.0 {
        return RankingWeights::NoPositiveScore {
            weights: vec![0.0; scores.len()],
        };
    }
    let x: Vec<f64> = scores
        .iter()
        .map(|&s| if positive(s) { s / max } else { 0.0 })
        .collect();
    let mut pos: Vec<f64> = x.iter().copied().filter(|&v| v > 0.0).collect();
    pos.sort_by(f64::total_cmp);
    let mut uniq = pos.clone();
    uniq.dedup();
    let basis = if uniq.len() >= c.min_unique_for_midpoint {
        &uniq
    } else {
        &pos
    };
    let m = percentile_sorted(basis, c.midpoint_percentile);
    let mut y: Vec<f64> = x
        .iter()
        .map(|&xi| {
            if xi > 0.0 {
                c.k / (1.0 + c.q * (-c.b * (xi - m)).exp()).powf(1.0 / c.v) + c.slope * xi
            } else {
                0.0
            }
        })
        .collect();
    let ypos: Vec<f64> = y.iter().copied().filter(|&v| v > 0.0).collect();
    let n = ypos.len() as f64;
    let mean = ypos.iter().sum::<f64>() / n;
    let var = ypos.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    let cv = if mean > 0.0 { var.sqrt() / mean } else { 0.0 };
    let contrast = cv < c.cv_threshold;
    if contrast {
        for (yi, &xi) in y.iter_mut().zip(&x) {
            if xi > 0.0 {
                *yi *= xi.powf(c.contrast_exponent);
            }
        }
    }
    let sum: f64 = y.iter().sum();
    if !(sum > 0.0 && sum.is_finite()) {
        return RankingWeights::NoPositiveScore {
            weights: vec![0.0; scores.len()],
        };
    }
    RankingWeights::Distributed {
        weights: y.into_iter().map(|v| v / sum).collect(),
        midpoint: m,
        contrast_applied: contrast,
    }
}
