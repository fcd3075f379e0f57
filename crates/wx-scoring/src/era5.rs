//! ERA5 final scoring (docs/scoring.md §5): per-(variable, lead) metrics, per-lead score,
//! combined score and completeness.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::config::ScoringConfig;
use crate::metrics::{FieldFailure, MetricFailure, MetricValue};
use crate::outcome::VariableOutcome;

/// Why a variable has `lead_v = 0`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum Era5VariableFailure {
    /// The attempt failed upstream (message from the caller).
    #[error("{0}")]
    Upstream(String),
    /// Coverage or extreme-value check failed.
    #[error("{0}")]
    Field(FieldFailure),
    /// A needed metric failed.
    #[error("{metric}: {failure}")]
    Metric {
        /// `skill_clim`, `acc`, `rmse` or `rmse_clim`.
        metric: String,
        /// Why.
        failure: MetricFailure,
    },
    /// A needed metric was not computed (no climatology given).
    #[error("{0} was not computed (missing climatology)")]
    NotComputed(String),
}

/// One variable's contribution to a lead score. The metric values that did
/// compute are kept even when the variable failed (the spec stores them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Era5Variable {
    /// Variable key.
    pub variable: String,
    /// Its weight wᵥ in the lead score.
    pub weight: f64,
    /// Every computed metric (`None` for an upstream failure).
    pub metrics: Option<crate::levels::VariableMetrics>,
    /// clamp(SS_clim, 0, 1) (0 on failure).
    pub skill_term: f64,
    /// (ACC + 1)/2 (0 on failure).
    pub acc_term: f64,
    /// 1/(1 + RMSE/RMSE_clim) (0 on failure).
    pub rmse_term: f64,
    /// lead_v = 0.6·skill + 0.3·acc + 0.1·rmse terms (0 on failure).
    pub lead_component: f64,
    /// Why the variable failed, if it did.
    pub failure: Option<Era5VariableFailure>,
}

fn need(name: &str, v: &Option<MetricValue>) -> Result<f64, Era5VariableFailure> {
    match v {
        None => Err(Era5VariableFailure::NotComputed(name.into())),
        Some(v) => need_v(name, v),
    }
}

fn need_v(name: &str, v: &MetricValue) -> Result<f64, Era5VariableFailure> {
    v.clone().map_err(|e| Era5VariableFailure::Metric {
        metric: name.into(),
        failure: e,
    })
}

/// The RMSE term `1/(1 + RMSE/RMSE_clim)`. When the climatology's RMSE is 0 the
/// term is 1 for a perfect forecast and 0 otherwise.
pub fn rmse_term(rmse: f64, rmse_clim: f64) -> f64 {
    if rmse_clim > 0.0 {
        1.0 / (1.0 + rmse / rmse_clim)
    } else if rmse == 0.0 {
        1.0
    } else {
        0.0
    }
}

/// Evaluate one variable at one lead (weight filled in by [`era5_lead_score`]).
pub fn era5_variable(
    variable: &str,
    outcome: &VariableOutcome,
    cfg: &ScoringConfig,
) -> Era5Variable {
    let mut out = Era5Variable {
        variable: variable.to_string(),
        weight: 0.0,
        metrics: None,
        skill_term: 0.0,
        acc_term: 0.0,
        rmse_term: 0.0,
        lead_component: 0.0,
        failure: None,
    };
    let m = match outcome {
        VariableOutcome::Failed(msg) => {
            out.failure = Some(Era5VariableFailure::Upstream(msg.clone()));
            return out;
        }
        VariableOutcome::Scored(m) => m,
    };
    out.metrics = Some(m.clone());
    let eval = || -> Result<(f64, f64, f64), Era5VariableFailure> {
        if let Some(f) = m.field_failure(&cfg.field) {
            return Err(Era5VariableFailure::Field(f));
        }
        let ss = need("skill_clim", &m.skill)?;
        let acc = need("acc", &m.acc)?;
        let rmse = need_v("rmse", &m.rmse)?;
        let rmse_clim = need("rmse_clim", &m.rmse_clim)?;
        Ok((
            ss.clamp(0.0, 1.0),
            (acc + 1.0) / 2.0,
            rmse_term(rmse, rmse_clim),
        ))
    };
    match eval() {
        Ok((s, a, r)) => {
            let e = &cfg.era5;
            out.skill_term = s;
            out.acc_term = a;
            out.rmse_term = r;
            out.lead_component = e.skill_weight * s + e.acc_weight * a + e.rmse_weight * r;
        }
        Err(f) => out.failure = Some(f),
    }
    out
}

/// A lead cannot be scored yet: some configured variables were not attempted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("lead not complete: variables not attempted: {missing:?}")]
pub struct LeadIncomplete {
    /// Configured variables without an outcome.
    pub missing: Vec<String>,
}

/// The score of one ERA5 lead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Era5Lead {
    /// Σᵥ wᵥ·lead_v clamped to [0, 1].
    pub score: f64,
    /// Every configured variable, in configuration order.
    pub variables: Vec<Era5Variable>,
    /// Outcomes given for variables that are not configured (ignored).
    pub ignored: Vec<String>,
}

/// Score one lead from the outcomes of its variables (docs/scoring.md §5). Only possible
/// once every configured variable has been attempted (scored or failed).
pub fn era5_lead_score(
    outcomes: &BTreeMap<String, VariableOutcome>,
    cfg: &ScoringConfig,
) -> Result<Era5Lead, LeadIncomplete> {
    let e = &cfg.era5;
    let missing: Vec<String> = e
        .variables
        .iter()
        .filter(|v| !outcomes.contains_key(*v))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(LeadIncomplete { missing });
    }
    let weights = e.effective_weights();
    let variables: Vec<Era5Variable> = e
        .variables
        .iter()
        .zip(&weights)
        .map(|(v, &w)| {
            let mut ev = era5_variable(v, &outcomes[v], cfg);
            ev.weight = w;
            ev
        })
        .collect();
    let raw: f64 = variables.iter().map(|v| v.weight * v.lead_component).sum();
    let score = if raw.is_finite() {
        raw.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let ignored = outcomes
        .keys()
        .filter(|k| !e.variables.contains(k))
        .cloned()
        .collect();
    Ok(Era5Lead {
        score,
        variables,
        ignored,
    })
}

/// The ERA5 combined score over the configured leads whose truth is available.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Era5Combined {
    /// E = Σ lead scores / number of available configured leads (unscored leads count 0).
    pub score: f64,
    /// Scored available leads / available configured leads.
    pub completeness: f64,
    /// Available configured leads that have a score, ascending.
    pub scored_leads: Vec<u32>,
    /// Number of available configured leads (configured leads minus unavailable ones).
    pub configured_leads: usize,
}

/// Combine per-lead scores (lead hours → score) into E and completeness.
/// Leads that are not configured are ignored; non-finite scores count as unscored.
pub fn era5_combined(lead_scores: &BTreeMap<u32, f64>, cfg: &ScoringConfig) -> Era5Combined {
    era5_combined_available(lead_scores, &BTreeSet::new(), cfg)
}

/// [`era5_combined`] over the configured leads minus `unavailable` (leads whose truth was
/// given up on, the same for every miner of a run): those leads count neither in the sum nor
/// in the number of leads, and their scores, if any, are ignored. With no available lead, E
/// and completeness are 0.
pub fn era5_combined_available(
    lead_scores: &BTreeMap<u32, f64>,
    unavailable: &BTreeSet<u32>,
    cfg: &ScoringConfig,
) -> Era5Combined {
    let mut uniq: Vec<u32> = cfg
        .era5
        .leads
        .iter()
        .copied()
        .filter(|l| !unavailable.contains(l))
        .collect();
    uniq.sort_unstable();
    uniq.dedup();
    let mut scored = Vec::new();
    let mut sum = 0.0;
    for l in &uniq {
        if let Some(s) = lead_scores.get(l).filter(|s| s.is_finite()) {
            scored.push(*l);
            sum += s.clamp(0.0, 1.0);
        }
    }
    let n = uniq.len();
    Era5Combined {
        score: if n > 0 { sum / n as f64 } else { 0.0 },
        completeness: if n > 0 {
            scored.len() as f64 / n as f64
        } else {
            0.0
        },
        scored_leads: scored,
        configured_leads: n,
    }
}
