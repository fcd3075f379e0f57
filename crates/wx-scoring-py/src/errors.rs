//! wx-scoring's typed errors as Python `ValueError`s whose message says what to do next.

use pyo3::PyErr;
use pyo3::exceptions::PyValueError;
use wx_scoring::{ConfigError, ScoringError};

/// A `ValueError` with this message.
pub(crate) fn invalid(message: impl Into<String>) -> PyErr {
    PyValueError::new_err(message.into())
}

/// An invalid input found by wx-scoring, with a hint on how to fix it.
pub(crate) fn scoring_error(e: ScoringError) -> PyErr {
    let hint = match &e {
        ScoringError::ShapeMismatch { .. } => {
            "pass fields of one grid with the same shape, (lat, lon) or (level, lat, lon); put \
             fields of another grid on the truth grid with wx_scoring.regrid first"
        }
        ScoringError::EmptyField { .. } => "pass fields with at least one point",
        ScoringError::Grid(_) => {
            "pass latitudes and longitudes in degrees, finite, latitudes within [-90, 90], one \
             per row (latitudes) and column (longitudes) of the fields"
        }
        ScoringError::Levels(_) => {
            "pass one pressure level in hPa per level of the fields, each finite, > 0 and distinct"
        }
    };
    invalid(format!("{e}; {hint}"))
}

/// An out-of-range configuration value.
pub(crate) fn config_error(e: ConfigError) -> PyErr {
    invalid(format!(
        "{e}; fix that key (wx_scoring.default_config() lists every key with the validator's value)"
    ))
}
