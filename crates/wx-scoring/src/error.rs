//! Typed errors for invalid *inputs* (shapes, coordinates, configuration).
//!
//! A metric that cannot be computed on valid inputs (no valid points, a
//! degenerate anomaly, …) is not an error but a value: see
//! [`crate::MetricFailure`].

use thiserror::Error;

/// An input the scoring functions cannot work with.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ScoringError {
    /// Two arrays that must have the same shape do not.
    #[error("shape mismatch: {what} has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        /// Which input is wrong.
        what: &'static str,
        /// The expected shape.
        expected: Vec<usize>,
        /// The shape found.
        found: Vec<usize>,
    },
    /// A field has no points at all.
    #[error("empty field: {what} has shape {shape:?}")]
    EmptyField {
        /// Which input is empty.
        what: &'static str,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// Latitude / longitude coordinates are unusable.
    #[error("invalid grid: {0}")]
    Grid(String),
    /// Pressure levels are unusable for thickness weights.
    #[error("invalid levels: {0}")]
    Levels(String),
}

/// A configuration value out of its valid range.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ConfigError {
    /// The key `key` holds an unusable value.
    #[error("invalid scoring config `{key}`: {reason}")]
    Invalid {
        /// Dotted key, e.g. `day1.alpha`.
        key: String,
        /// Why it is rejected.
        reason: String,
    },
}
