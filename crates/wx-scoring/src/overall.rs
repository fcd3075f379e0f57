//! Overall score with the no-ERA5 tier (docs/scoring.md §6).

use serde::{Deserialize, Serialize};

use crate::config::ScoringConfig;
use crate::era5::Era5Combined;

/// Which weighting applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OverallTier {
    /// No ERA5 lead scored yet: W_d' = min(W_d·factor, cap).
    NoEra5,
    /// At least one ERA5 lead scored: W_d' = W_d.
    WithEra5,
}

/// The overall score and the weights used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverallScore {
    /// clamp(W_e·E + W_d'·day1_pass, 0, 1).
    pub score: f64,
    /// Renormalised ERA5 weight W_e.
    pub era5_weight: f64,
    /// Effective Day1 weight W_d'.
    pub day1_weight: f64,
    /// Tier that applied.
    pub tier: OverallTier,
}

/// Overall score from the ERA5 combination (if any) and Day1 pass/fail.
/// A missing Day1 (`None`) counts as fail.
///
/// ```
/// use wx_scoring::{ScoringConfig, overall_score};
/// let o = overall_score(None, Some(true), &ScoringConfig::default());
/// assert!((o.score - 0.01).abs() < 1e-12); // no-ERA5 tier: min(0.05·0.2, 0.05)
/// ```
pub fn overall_score(
    era5: Option<&Era5Combined>,
    day1_pass: Option<bool>,
    cfg: &ScoringConfig,
) -> OverallScore {
    let o = &cfg.overall;
    let total = o.era5_weight + o.day1_weight;
    let (we, wd) = if total > 0.0 {
        (o.era5_weight / total, o.day1_weight / total)
    } else {
        (0.0, 0.0)
    };
    let scored = era5.is_some_and(|e| !e.scored_leads.is_empty());
    let (tier, wd_eff) = if scored {
        (OverallTier::WithEra5, wd)
    } else {
        (
            OverallTier::NoEra5,
            (wd * o.no_era5_factor).min(o.no_era5_cap),
        )
    };
    let e = if scored {
        era5.map_or(0.0, |e| e.score)
    } else {
        0.0
    };
    let pass = if day1_pass == Some(true) { 1.0 } else { 0.0 };
    let raw = we * e + wd_eff * pass;
    OverallScore {
        score: if raw.is_finite() {
            raw.clamp(0.0, 1.0)
        } else {
            0.0
        },
        era5_weight: we,
        day1_weight: wd_eff,
        tier,
    }
}
