"""Type stubs of the compiled core (crates/wx-scoring-py/src): wx-scoring's kernels and score
aggregations. Every function raises ValueError for bad input, with a message saying what to
change."""

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict

import numpy as np
import numpy.typing as npt

__version__: str
#: Two coordinates closer than this (degrees) are the same point for the regridder.
COINCIDENCE_TOLERANCE_DEG: float

FloatArray = npt.NDArray[np.float32] | npt.NDArray[np.float64]
Config = Mapping[str, Any]

class FieldMetrics:
    """The metrics of one 2-D field; None where an input was not given or the metric failed
    (see ``failures``)."""

    @property
    def coverage(self) -> float: ...
    @property
    def n_truth(self) -> int: ...
    @property
    def n_pairs(self) -> int: ...
    @property
    def max_abs_forecast(self) -> float: ...
    @property
    def bias(self) -> float | None: ...
    @property
    def mse(self) -> float | None: ...
    @property
    def rmse(self) -> float | None: ...
    @property
    def mae(self) -> float | None: ...
    @property
    def acc(self) -> float | None: ...
    @property
    def skill_clim(self) -> float | None: ...
    @property
    def mse_clim(self) -> float | None: ...
    @property
    def rmse_clim(self) -> float | None: ...
    @property
    def skill_ref(self) -> float | None: ...
    @property
    def clone_distance(self) -> float | None: ...
    @property
    def pattern_correlation(self) -> float | None: ...
    @property
    def failures(self) -> dict[str, str]:
        """``{metric: reason}`` for metrics that failed although their inputs were given."""
    def field_failure(self, config: Config | None = None) -> str | None:
        """The coverage or extreme-value failure that scores the variable 0, if any."""
    def to_dict(self) -> dict[str, float | int | None]: ...

class VariableMetrics:
    """One variable at one lead: a surface field or the thickness-weighted aggregate of its
    levels. The outcome ``lead_score`` and ``day1_score`` take."""

    @property
    def n_levels(self) -> int: ...
    @property
    def levels(self) -> list[float]: ...
    @property
    def per_level(self) -> list[FieldMetrics]: ...
    @property
    def coverage(self) -> float: ...
    @property
    def max_abs_forecast(self) -> float: ...
    @property
    def bias(self) -> float | None: ...
    @property
    def mse(self) -> float | None: ...
    @property
    def rmse(self) -> float | None: ...
    @property
    def mae(self) -> float | None: ...
    @property
    def acc(self) -> float | None: ...
    @property
    def skill_clim(self) -> float | None: ...
    @property
    def mse_clim(self) -> float | None: ...
    @property
    def rmse_clim(self) -> float | None: ...
    @property
    def skill_ref(self) -> float | None: ...
    @property
    def clone_distance(self) -> float | None: ...
    @property
    def pattern_correlation(self) -> float | None: ...
    @property
    def failures(self) -> dict[str, str]: ...
    def field_failure(self, config: Config | None = None) -> str | None: ...
    def to_dict(self) -> dict[str, float | int | None]: ...

Outcome = VariableMetrics | FieldMetrics | str

class LeadVariable(TypedDict):
    variable: str
    weight: float
    skill_term: float
    acc_term: float
    rmse_term: float
    lead_component: float
    failure: str | None

class LeadScore(TypedDict):
    score: float
    variables: list[LeadVariable]
    ignored: list[str]

class Era5Combined(TypedDict):
    score: float
    completeness: float
    scored_leads: list[int]
    configured_leads: int

class Day1Pair(TypedDict):
    variable: str
    lead_hours: int
    clone_distance: float | None
    clone_penalty: float
    strict_clamp_trigger: bool
    pattern_correlation: float | None
    skill: float | None
    acc: float | None
    skill_term: float
    acc_term: float
    failure: str | None

class Day1Score(TypedDict):
    score: float
    unclamped_score: float
    mean_skill: float
    mean_acc: float
    strict_clamp_fired: bool
    passed: bool
    pairs: list[Day1Pair]
    ignored: list[tuple[str, int]]

class OverallScore(TypedDict):
    score: float
    era5_weight: float
    day1_weight: float
    tier: Literal["no_era5", "with_era5"]

class RankingWeights(TypedDict):
    weights: list[float]
    distributed: bool
    midpoint: float | None
    contrast_applied: bool | None

def score_field(
    forecast: FloatArray,
    truth: FloatArray,
    latitudes: npt.ArrayLike,
    *,
    climatology: FloatArray | None = None,
    reference: FloatArray | None = None,
    config: Config | None = None,
) -> FieldMetrics:
    """Scores one (lat, lon) field exactly as the validator does (GIL released)."""

def score_variable(
    forecast: FloatArray,
    truth: FloatArray,
    climatology: FloatArray,
    latitudes: npt.ArrayLike,
    levels: Sequence[float] | None = None,
    *,
    reference: FloatArray | None = None,
    config: Config | None = None,
) -> VariableMetrics:
    """Scores one variable at one lead: (lat, lon), or (level, lat, lon) with levels in hPa."""

def aggregate_levels(per_level: Sequence[FieldMetrics], levels: Sequence[float]) -> VariableMetrics:
    """Thickness-weighted aggregate of per-level results."""

def thickness_weights(levels: Sequence[float]) -> list[float]:
    """Half-layer thickness weights of pressure levels (hPa), summing to 1, in input order."""

def lead_score(
    outcomes: Mapping[str, Outcome],
    *,
    variables: Sequence[str] | None = None,
    config: Config | None = None,
) -> LeadScore:
    """The ERA5 score of one lead; a str outcome is a failure message (the variable counts 0)."""

def era5_combined(
    lead_scores: Mapping[int, float],
    *,
    leads: Sequence[int] | None = None,
    config: Config | None = None,
) -> Era5Combined:
    """E over the configured leads (unscored leads count 0) and the completeness."""

def day1_score(
    outcomes: Mapping[tuple[str, int], Outcome], *, config: Config | None = None
) -> Day1Score:
    """Day1 over every configured (variable, lead) pair; outcomes scored with a reference."""

def overall_score(
    era5: Era5Combined | None, day1_passed: bool | None, *, config: Config | None = None
) -> OverallScore:
    """W_e·E + W_d'·day1_pass, with the no-ERA5 tier."""

def ranking_weights(scores: Sequence[float], *, config: Config | None = None) -> RankingWeights:
    """Ranking weights from each miner's mean overall score."""

def mean_over_runs(scores: Sequence[float | None]) -> float:
    """Mean over the lookback window; a run without a score counts 0."""

def to_canonical(
    values: FloatArray, latitudes: npt.ArrayLike, longitudes: npt.ArrayLike
) -> tuple[FloatArray, npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Latitudes descending, longitudes in [0, 360): values reordered, and the coordinates."""

def regrid(
    values: FloatArray,
    latitudes: npt.ArrayLike,
    longitudes: npt.ArrayLike,
    target_latitudes: npt.ArrayLike,
    target_longitudes: npt.ArrayLike,
) -> FloatArray:
    """The validator's bilinear regridding onto a canonical target (truth) grid."""

def default_config() -> dict[str, Any]:
    """Every scoring constant with the validator's value."""

def effective_config(config: Config | None = None) -> dict[str, Any]:
    """The given keys over the defaults, validated."""
