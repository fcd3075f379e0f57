//! What the caller hands to the score aggregations for one (variable, lead).

use serde::{Deserialize, Serialize};

use crate::levels::VariableMetrics;

/// The result of attempting one (variable, lead): metrics, or a failure that
/// happened before any metric could be computed (variable missing from the
/// store, unit mismatch, time not found, …), with a message for storage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// A few hundred bytes per (variable, lead): boxing would only make the API clumsier.
#[allow(clippy::large_enum_variant)]
pub enum VariableOutcome {
    /// The metrics were computed (they may still contain failed metrics).
    Scored(VariableMetrics),
    /// The attempt failed upstream of the metrics.
    Failed(String),
}

impl From<VariableMetrics> for VariableOutcome {
    fn from(m: VariableMetrics) -> Self {
        Self::Scored(m)
    }
}
