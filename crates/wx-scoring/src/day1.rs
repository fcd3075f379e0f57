//! Day1 quality control (docs/scoring.md §4).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::ScoringConfig;
use crate::metrics::{FieldFailure, MetricFailure, MetricValue};
use crate::outcome::VariableOutcome;

/// Why a Day1 pair contributes 0 to both means.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum Day1PairFailure {
    /// No outcome was given for this configured pair.
    #[error("missing")]
    Missing,
    /// The attempt failed upstream (message from the caller).
    #[error("{0}")]
    Upstream(String),
    /// Coverage or extreme-value check failed.
    #[error("{0}")]
    Field(FieldFailure),
    /// A metric the pair needs failed or was not computed.
    #[error("{metric}: {failure}")]
    Metric {
        /// `skill`, `acc`, `clone_distance` or `pattern_correlation`.
        metric: String,
        /// Why.
        failure: MetricFailure,
    },
    /// A needed metric was not computed because its input was not given.
    #[error("{0} was not computed (missing climatology or reference)")]
    NotComputed(String),
    /// Pattern correlation with the reference below the threshold.
    #[error("pattern correlation {pattern_correlation} below threshold {threshold}")]
    Insane {
        /// Measured pattern correlation.
        pattern_correlation: f64,
        /// Configured threshold.
        threshold: f64,
    },
}

/// The Day1 evaluation of one (variable, lead) pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Day1Pair {
    /// Variable key (e.g. `z500`).
    pub variable: String,
    /// Lead in hours.
    pub lead_hours: u32,
    /// Clone distance d = MSE(f, r), when computed.
    pub clone_distance: Option<f64>,
    /// Clone penalty p = γ·(1 − d/Δ) if d < Δ, else 0.
    pub clone_penalty: f64,
    /// Whether this pair triggers the strict clamp (d < φ·Δ or p > 0).
    pub strict_clamp_trigger: bool,
    /// Pattern correlation with the reference, when computed.
    pub pattern_correlation: Option<f64>,
    /// Skill against the reference minus the clone penalty, when computed.
    pub skill: Option<f64>,
    /// ACC, when computed.
    pub acc: Option<f64>,
    /// Why the pair scores 0, if it does.
    pub failure: Option<Day1PairFailure>,
    /// Contribution to the skill mean: clamp(skill, 0, 1), or 0 on failure.
    pub skill_term: f64,
    /// Contribution to the ACC mean: (acc + 1)/2, or 0 on failure.
    pub acc_term: f64,
}

/// The Day1 aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Day1Score {
    /// Day1 = α·mean(skill terms) + β·mean(acc terms), capped when the strict clamp fired.
    pub score: f64,
    /// Day1 before the strict clamp.
    pub unclamped_score: f64,
    /// Mean of the skill terms over all configured pairs.
    pub mean_skill: f64,
    /// Mean of the ACC terms over all configured pairs.
    pub mean_acc: f64,
    /// Whether the strict clone clamp fired.
    pub strict_clamp_fired: bool,
    /// `score >= pass_threshold`.
    pub passed: bool,
    /// Every configured pair, in configuration order (variables × leads).
    pub pairs: Vec<Day1Pair>,
    /// Given outcomes for pairs that are not configured (ignored).
    pub ignored: Vec<(String, u32)>,
}

fn need(name: &str, v: &Option<MetricValue>) -> Result<f64, Day1PairFailure> {
    match v {
        None => Err(Day1PairFailure::NotComputed(name.into())),
        Some(Ok(x)) => Ok(*x),
        Some(Err(e)) => Err(Day1PairFailure::Metric {
            metric: name.into(),
            failure: e.clone(),
        }),
    }
}

/// Evaluate one Day1 pair (steps 1–4 of docs/scoring.md §4). `outcome` is `None` when the
/// pair was not attempted.
pub fn day1_pair(
    variable: &str,
    lead_hours: u32,
    outcome: Option<&VariableOutcome>,
    cfg: &ScoringConfig,
) -> Day1Pair {
    let d1 = &cfg.day1;
    let mut pair = Day1Pair {
        variable: variable.to_string(),
        lead_hours,
        clone_distance: None,
        clone_penalty: 0.0,
        strict_clamp_trigger: false,
        pattern_correlation: None,
        skill: None,
        acc: None,
        failure: None,
        skill_term: 0.0,
        acc_term: 0.0,
    };
    let m = match outcome {
        None => {
            pair.failure = Some(Day1PairFailure::Missing);
            return pair;
        }
        Some(VariableOutcome::Failed(msg)) => {
            pair.failure = Some(Day1PairFailure::Upstream(msg.clone()));
            return pair;
        }
        Some(VariableOutcome::Scored(m)) => m,
    };
    // Record every value that computed, whatever fails later.
    pair.clone_distance = m.clone_distance.clone().and_then(Result::ok);
    pair.pattern_correlation = m.pattern_correlation.clone().and_then(Result::ok);
    pair.acc = m.acc.clone().and_then(Result::ok);
    if let (Some(d), Some(&delta)) = (pair.clone_distance, d1.clone_delta.get(variable)) {
        if d < delta {
            pair.clone_penalty = (d1.clone_penalty_gamma * (1.0 - d / delta)).max(0.0);
        }
        pair.strict_clamp_trigger =
            d < d1.strict_clamp_fraction * delta || pair.clone_penalty > 0.0;
    }
    pair.skill = m
        .skill
        .clone()
        .and_then(Result::ok)
        .map(|s| s - pair.clone_penalty);

    let eval = || -> Result<(f64, f64), Day1PairFailure> {
        if let Some(f) = m.field_failure(&cfg.field) {
            return Err(Day1PairFailure::Field(f));
        }
        need("clone_distance", &m.clone_distance)?;
        let pc = need("pattern_correlation", &m.pattern_correlation)?;
        if pc.is_nan() || pc < d1.pattern_correlation_threshold {
            return Err(Day1PairFailure::Insane {
                pattern_correlation: pc,
                threshold: d1.pattern_correlation_threshold,
            });
        }
        let skill = need("skill", &m.skill)? - pair.clone_penalty;
        let acc = need("acc", &m.acc)?;
        Ok((skill.clamp(0.0, 1.0), (acc + 1.0) / 2.0))
    };
    match eval() {
        Ok((s, a)) => {
            pair.skill_term = s;
            pair.acc_term = a;
        }
        Err(e) => pair.failure = Some(e),
    }
    pair
}

/// Aggregate Day1 over every configured (variable, lead) pair (docs/scoring.md §4).
///
/// `outcomes` maps `(variable key, lead hours)` to what was attempted. A
/// configured pair that is missing, failed or insane contributes 0 to both
/// means; it is never dropped.
///
/// ```
/// use std::collections::BTreeMap;
/// use wx_scoring::{ScoringConfig, day1_score};
/// // Nothing attempted: every configured pair counts 0.
/// let d = day1_score(&BTreeMap::new(), &ScoringConfig::default());
/// assert_eq!(d.score, 0.0);
/// assert!(!d.passed);
/// ```
pub fn day1_score(
    outcomes: &BTreeMap<(String, u32), VariableOutcome>,
    cfg: &ScoringConfig,
) -> Day1Score {
    let d1 = &cfg.day1;
    let mut pairs = Vec::with_capacity(d1.variables.len() * d1.leads.len());
    for v in &d1.variables {
        for &lead in &d1.leads {
            pairs.push(day1_pair(v, lead, outcomes.get(&(v.clone(), lead)), cfg));
        }
    }
    let ignored = outcomes
        .keys()
        .filter(|(v, l)| !(d1.variables.contains(v) && d1.leads.contains(l)))
        .cloned()
        .collect();
    let n = pairs.len();
    let (mean_skill, mean_acc) = if n == 0 {
        (0.0, 0.0)
    } else {
        (
            pairs.iter().map(|p| p.skill_term).sum::<f64>() / n as f64,
            pairs.iter().map(|p| p.acc_term).sum::<f64>() / n as f64,
        )
    };
    let unclamped = d1.alpha * mean_skill + d1.beta * mean_acc;
    let fired = pairs.iter().any(|p| p.strict_clamp_trigger);
    let score = if fired {
        unclamped.min(d1.strict_clamp_cap)
    } else {
        unclamped
    };
    Day1Score {
        score,
        unclamped_score: unclamped,
        mean_skill,
        mean_acc,
        strict_clamp_fired: fired,
        passed: score >= d1.pass_threshold,
        pairs,
        ignored,
    }
}
