//! The score aggregations of the validator: thickness weights, ERA5 lead score and combined
//! score, Day1, the overall score and the ranking weights. Each calls wx-scoring; nothing is
//! recomputed here.

use std::collections::BTreeMap;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use pythonize::{depythonize, pythonize};
use wx_scoring::{
    Era5Combined, OverallTier, RankingWeights, ScoringConfig, VariableOutcome,
    era5_combined as wx_era5_combined, era5_lead_score, mean_over_runs as wx_mean_over_runs,
    overall_score as wx_overall_score, ranking_weights as wx_ranking_weights,
    thickness_weights as wx_thickness_weights,
};

use crate::config::{self, type_name};
use crate::errors::{invalid, scoring_error};
use crate::metrics::{PyFieldMetrics, PyVariableMetrics};

/// Which metrics of an outcome a score aggregates.
#[derive(Clone, Copy)]
enum Phase {
    /// Skill against the climatology.
    Era5,
    /// Skill against the reference field, clone distance, pattern correlation.
    Day1,
}

/// A `VariableMetrics`, a `FieldMetrics` (one surface field) or a failure message.
fn outcome(key: &str, obj: &Bound<'_, PyAny>, phase: Phase) -> PyResult<VariableOutcome> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(VariableOutcome::Failed(s.to_str()?.to_owned()));
    }
    let no_reference = || {
        invalid(format!(
            "the outcome of {key} was scored without a reference field, so it has no Day1 \
             metrics; score it with reference=<the reference forecast (GFS)>"
        ))
    };
    if let Ok(v) = obj.cast::<PyVariableMetrics>() {
        let v = v.get();
        return Ok(VariableOutcome::Scored(match phase {
            Phase::Era5 => v.era5.clone(),
            Phase::Day1 => v.day1.clone().ok_or_else(no_reference)?,
        }));
    }
    if let Ok(f) = obj.cast::<PyFieldMetrics>() {
        let f = &f.get().0;
        let m = match phase {
            Phase::Era5 => &f.base,
            Phase::Day1 => f.vs_reference.as_ref().ok_or_else(no_reference)?,
        };
        return Ok(VariableOutcome::Scored(m.into()));
    }
    Err(invalid(format!(
        "the outcome of {key} must be a VariableMetrics, a FieldMetrics or a failure message \
         (str), got {}",
        type_name(obj)
    )))
}

/// `value` as Python objects (plain dicts, lists, floats).
fn to_python<'py, T: serde::Serialize>(py: Python<'py>, value: &T) -> PyResult<Bound<'py, PyAny>> {
    pythonize(py, value).map_err(|e| invalid(format!("internal: {e}")))
}

/// Half-layer thickness weights of pressure levels (hPa), normalised to sum 1, in the order
/// given (the validator's weights for multi-level variables).
#[pyfunction]
pub(crate) fn thickness_weights(levels: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
    let levels = crate::arrays::coordinate("levels", levels, None)?;
    wx_thickness_weights(&levels).map_err(scoring_error)
}

/// The ERA5 score of one lead from the outcome of every variable.
///
/// Parameters
/// ----------
/// outcomes : dict[str, VariableMetrics | FieldMetrics | str]
///     Variable key (``"2t"``, ``"t"``, ``"z500"``) → its metrics, or a message saying why it
///     could not be scored (it then counts 0, as in the validator).
/// variables : sequence of str, optional
///     The variables of the lead, with equal weights (as ``wx-step score`` does); default:
///     the config's ``era5.variables`` and ``era5.variable_weights``.
/// config : dict, optional
///
/// Returns
/// -------
/// dict
///     ``score`` (clamped to [0, 1]); ``variables``: per variable its ``weight``,
///     ``skill_term``, ``acc_term``, ``rmse_term``, ``lead_component`` and ``failure`` (a
///     message or None); ``ignored``: outcome keys that are not configured.
///
/// Raises
/// ------
/// ValueError
///     When a configured variable has no outcome (the validator waits for every variable).
#[pyfunction]
#[pyo3(signature = (outcomes, *, variables=None, config=None))]
pub(crate) fn lead_score<'py>(
    py: Python<'py>,
    outcomes: &Bound<'py, PyDict>,
    variables: Option<Vec<String>>,
    config: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut cfg = config::from_python(config)?;
    if let Some(vars) = variables {
        cfg.era5.variables = vars;
        cfg.era5.variable_weights.clear();
    }
    let mut map = BTreeMap::new();
    for (k, v) in outcomes.iter() {
        let key: String = k
            .extract()
            .map_err(|_| invalid(format!("outcome keys must be variable keys (str), got {k}")))?;
        let o = outcome(&key, &v, Phase::Era5)?;
        map.insert(key, o);
    }
    let lead = era5_lead_score(&map, &cfg).map_err(|e| {
        invalid(format!(
            "{e}; give an outcome (metrics, or a failure message) for every variable of the \
             lead, or pass variables=[...]"
        ))
    })?;
    let out = PyDict::new(py);
    out.set_item("score", lead.score)?;
    let vars = PyList::empty(py);
    for v in &lead.variables {
        let d = PyDict::new(py);
        d.set_item("variable", &v.variable)?;
        d.set_item("weight", v.weight)?;
        d.set_item("skill_term", v.skill_term)?;
        d.set_item("acc_term", v.acc_term)?;
        d.set_item("rmse_term", v.rmse_term)?;
        d.set_item("lead_component", v.lead_component)?;
        d.set_item("failure", v.failure.as_ref().map(ToString::to_string))?;
        vars.append(d)?;
    }
    out.set_item("variables", vars)?;
    out.set_item("ignored", lead.ignored)?;
    Ok(out)
}

/// The ERA5 combined score E over the configured leads (unscored leads count 0) and the
/// completeness (scored leads / configured leads).
///
/// Parameters
/// ----------
/// lead_scores : dict[int, float]
///     Lead hours → lead score (from ``lead_score``).
/// leads : sequence of int, optional
///     The configured leads; default: the config's ``era5.leads`` (24, 48, …, 240).
/// config : dict, optional
///
/// Returns
/// -------
/// dict
///     ``score``, ``completeness``, ``scored_leads``, ``configured_leads``.
#[pyfunction]
#[pyo3(signature = (lead_scores, *, leads=None, config=None))]
pub(crate) fn era5_combined<'py>(
    py: Python<'py>,
    lead_scores: BTreeMap<u32, f64>,
    leads: Option<Vec<u32>>,
    config: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let mut cfg = config::from_python(config)?;
    if let Some(l) = leads {
        cfg.era5.leads = l;
    }
    to_python(py, &wx_era5_combined(&lead_scores, &cfg))
}

/// The Day1 quality-control score over every configured (variable, lead).
///
/// Parameters
/// ----------
/// outcomes : dict[tuple[str, int], VariableMetrics | FieldMetrics | str]
///     ``(variable key, lead hours)`` → metrics scored with the reference forecast (GFS), or a
///     failure message. A configured pair without an outcome counts 0.
/// config : dict, optional
///
/// Returns
/// -------
/// dict
///     ``score``, ``unclamped_score``, ``mean_skill``, ``mean_acc``, ``strict_clamp_fired``,
///     ``passed``; ``pairs``: per configured pair its ``clone_distance``, ``clone_penalty``,
///     ``strict_clamp_trigger``, ``pattern_correlation``, ``skill``, ``acc``, ``skill_term``,
///     ``acc_term`` and ``failure``; ``ignored``: pairs given but not configured.
#[pyfunction]
#[pyo3(signature = (outcomes, *, config=None))]
pub(crate) fn day1_score<'py>(
    py: Python<'py>,
    outcomes: &Bound<'py, PyDict>,
    config: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let cfg = config::from_python(config)?;
    let mut map = BTreeMap::new();
    for (k, v) in outcomes.iter() {
        let key: (String, u32) = k.extract().map_err(|_| {
            invalid(format!(
                "Day1 outcome keys must be (variable, lead hours) tuples such as (\"2t\", 12), \
                 got {k}"
            ))
        })?;
        let o = outcome(&format!("{} at {} h", key.0, key.1), &v, Phase::Day1)?;
        map.insert(key, o);
    }
    let d = wx_scoring::day1_score(&map, &cfg);
    let out = PyDict::new(py);
    out.set_item("score", d.score)?;
    out.set_item("unclamped_score", d.unclamped_score)?;
    out.set_item("mean_skill", d.mean_skill)?;
    out.set_item("mean_acc", d.mean_acc)?;
    out.set_item("strict_clamp_fired", d.strict_clamp_fired)?;
    out.set_item("passed", d.passed)?;
    let pairs = PyList::empty(py);
    for p in &d.pairs {
        let pd = PyDict::new(py);
        pd.set_item("variable", &p.variable)?;
        pd.set_item("lead_hours", p.lead_hours)?;
        pd.set_item("clone_distance", p.clone_distance)?;
        pd.set_item("clone_penalty", p.clone_penalty)?;
        pd.set_item("strict_clamp_trigger", p.strict_clamp_trigger)?;
        pd.set_item("pattern_correlation", p.pattern_correlation)?;
        pd.set_item("skill", p.skill)?;
        pd.set_item("acc", p.acc)?;
        pd.set_item("skill_term", p.skill_term)?;
        pd.set_item("acc_term", p.acc_term)?;
        pd.set_item("failure", p.failure.as_ref().map(ToString::to_string))?;
        pairs.append(pd)?;
    }
    out.set_item("pairs", pairs)?;
    out.set_item("ignored", d.ignored)?;
    Ok(out)
}

/// The overall score of a run: W_e·E + W_d'·day1_pass, with the no-ERA5
/// tier before any ERA5 lead is scored.
///
/// Parameters
/// ----------
/// era5 : dict or None
///     The result of ``era5_combined``, or None when no ERA5 lead was scored.
/// day1_passed : bool or None
///     Whether Day1 passed (``day1_score(...)["passed"]``); None counts as failed.
/// config : dict, optional
///
/// Returns
/// -------
/// dict
///     ``score``, ``era5_weight``, ``day1_weight`` and ``tier`` (``"no_era5"`` or
///     ``"with_era5"``).
#[pyfunction]
#[pyo3(signature = (era5, day1_passed, *, config=None))]
pub(crate) fn overall_score<'py>(
    py: Python<'py>,
    era5: Option<&Bound<'py, PyAny>>,
    day1_passed: Option<bool>,
    config: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let cfg: ScoringConfig = config::from_python(config)?;
    let era5: Option<Era5Combined> = era5
        .filter(|e| !e.is_none())
        .map(|e| {
            depythonize(e).map_err(|err| {
                invalid(format!(
                    "era5 must be the dict returned by era5_combined (score, completeness, \
                     scored_leads, configured_leads): {err}"
                ))
            })
        })
        .transpose()?;
    let o = wx_overall_score(era5.as_ref(), day1_passed, &cfg);
    let out = PyDict::new(py);
    out.set_item("score", o.score)?;
    out.set_item("era5_weight", o.era5_weight)?;
    out.set_item("day1_weight", o.day1_weight)?;
    out.set_item(
        "tier",
        match o.tier {
            OverallTier::NoEra5 => "no_era5",
            OverallTier::WithEra5 => "with_era5",
        },
    )?;
    Ok(out)
}

/// Ranking weights from each miner's mean overall score.
///
/// Parameters
/// ----------
/// scores : sequence of float
///     One mean score per miner (see ``mean_over_runs``); non-positive or non-finite scores
///     get weight 0.
/// config : dict, optional
///
/// Returns
/// -------
/// dict
///     ``weights`` (one per score, summing to 1, or all 0 when no score is positive),
///     ``distributed`` (False when no score is positive), ``midpoint`` and
///     ``contrast_applied`` (None when not distributed).
#[pyfunction]
#[pyo3(signature = (scores, *, config=None))]
pub(crate) fn ranking_weights<'py>(
    py: Python<'py>,
    scores: Vec<f64>,
    config: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let cfg = config::from_python(config)?;
    let w = wx_ranking_weights(&scores, &cfg);
    let out = PyDict::new(py);
    out.set_item("weights", w.weights().to_vec())?;
    match &w {
        RankingWeights::Distributed {
            midpoint,
            contrast_applied,
            ..
        } => {
            out.set_item("distributed", true)?;
            out.set_item("midpoint", *midpoint)?;
            out.set_item("contrast_applied", *contrast_applied)?;
        }
        RankingWeights::NoPositiveScore { .. } => {
            out.set_item("distributed", false)?;
            out.set_item("midpoint", py.None())?;
            out.set_item("contrast_applied", py.None())?;
        }
    }
    Ok(out)
}

/// A miner's mean score over the runs of the lookback window; a run without a score (None or
/// non-finite) counts 0, and an empty window gives 0.
#[pyfunction]
pub(crate) fn mean_over_runs(scores: Vec<Option<f64>>) -> f64 {
    wx_mean_over_runs(&scores)
}
