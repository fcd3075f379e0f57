//! The scoring constants from a Python dict: the validator's `[scoring]` section, partial dicts
//! override only the keys they name (wx-scoring's serde defaults fill in the rest).

use pyo3::prelude::*;
use pyo3::types::PyDict;
use pythonize::{depythonize, pythonize};
use wx_scoring::ScoringConfig;

use crate::errors::{config_error, invalid};

/// Maps whose keys are free (variable keys), so not checked against the defaults.
const FREE_MAPS: &[&str] = &["day1.clone_delta", "era5.variable_weights"];

/// `None` → the validator's defaults; a dict → those keys over the defaults, validated.
pub(crate) fn from_python(obj: Option<&Bound<'_, PyAny>>) -> PyResult<ScoringConfig> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(ScoringConfig::default());
    };
    let dict = obj.cast::<PyDict>().map_err(|_| {
        invalid(format!(
            "config must be a dict like the validator's [scoring] section (e.g. \
             {{\"day1\": {{\"alpha\": 0.6}}}}), got {}",
            type_name(obj)
        ))
    })?;
    let defaults = pythonize(obj.py(), &ScoringConfig::default())
        .map_err(|e| invalid(format!("internal: {e}")))?;
    check_keys(dict, defaults.cast::<PyDict>()?, "")?;
    let cfg: ScoringConfig = depythonize(obj).map_err(|e| {
        invalid(format!(
            "config: {e}; values must have the types of wx_scoring.default_config()"
        ))
    })?;
    cfg.validate().map_err(config_error)?;
    Ok(cfg)
}

/// Rejects keys the configuration does not have (serde would silently ignore a typo).
fn check_keys(given: &Bound<'_, PyDict>, known: &Bound<'_, PyDict>, prefix: &str) -> PyResult<()> {
    for (key, value) in given.iter() {
        let name: String = key
            .extract()
            .map_err(|_| invalid(format!("config keys must be strings, found {key}")))?;
        let path = format!("{prefix}{name}");
        let Some(default) = known.get_item(&name)? else {
            let keys: Vec<String> = known.keys().iter().map(|k| k.to_string()).collect();
            return Err(invalid(format!(
                "unknown config key `{path}`; known keys here: {}",
                keys.join(", ")
            )));
        };
        if FREE_MAPS.contains(&path.as_str()) {
            continue;
        }
        if let (Ok(sub), Ok(sub_known)) = (value.cast::<PyDict>(), default.cast::<PyDict>()) {
            check_keys(sub, sub_known, &format!("{path}."))?;
        }
    }
    Ok(())
}

/// The Python type name of an object, for messages.
pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_owned())
}

/// The validator's scoring constants as a dict (every key, every default).
#[pyfunction]
pub(crate) fn default_config(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    pythonize(py, &ScoringConfig::default()).map_err(|e| invalid(format!("internal: {e}")))
}

/// The configuration the scoring functions use for ``config``: the validator's defaults with
/// the given keys over them, every key present. Raises ``ValueError`` for an unknown key, a
/// value of the wrong type or out of range.
#[pyfunction]
#[pyo3(signature = (config=None))]
pub(crate) fn effective_config<'py>(
    py: Python<'py>,
    config: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let cfg = from_python(config)?;
    pythonize(py, &cfg).map_err(|e| invalid(format!("internal: {e}")))
}
