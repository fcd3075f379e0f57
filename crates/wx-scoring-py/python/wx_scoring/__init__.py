"""wx_scoring: the wx validator's scores for miners, bit for bit.

Every number comes from wx-scoring, the Rust crate the validator scores with:

- field level: :func:`score_field` (rmse, mse, mae, bias, acc, skill_clim, skill_ref,
  rmse_clim, coverage, clone_distance, pattern_correlation of one 2-D field);
- variable level: :func:`score_variable` (one variable at one lead, levels aggregated with
  thickness weights), :func:`aggregate_levels`, :func:`thickness_weights`;
- scores: :func:`lead_score`, :func:`era5_combined`, :func:`day1_score`,
  :func:`overall_score`, :func:`ranking_weights`, :func:`mean_over_runs`;
- grids: :func:`to_canonical` and :func:`regrid`, the validator's orientation and bilinear
  regridding rules;
- xarray (optional, ``pip install 'wx-scoring[xarray]'``): :func:`score_dataset` scores a
  miner-layout Dataset against ERA5 and a WeatherBench2 climatology into a tidy DataFrame;
  ``python -m wx_scoring score`` is ``wx-step score`` for local stores.

Scoring constants are the validator's defaults; pass ``config={...}`` (keys as in
:func:`default_config`, the validator's ``[scoring]`` section) to override some.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import catalogue
from ._core import (
    FieldMetrics,
    VariableMetrics,
    __version__,
    aggregate_levels,
    day1_score,
    default_config,
    effective_config,
    era5_combined,
    lead_score,
    mean_over_runs,
    overall_score,
    ranking_weights,
    regrid,
    score_field,
    score_variable,
    thickness_weights,
    to_canonical,
)

if TYPE_CHECKING:
    from .datasets import ScoreError, ScoreReport, open_store, score, score_dataset

_DATASET_NAMES = ("ScoreError", "ScoreReport", "open_store", "score", "score_dataset")

__all__ = [
    "FieldMetrics",
    "ScoreError",
    "ScoreReport",
    "VariableMetrics",
    "__version__",
    "aggregate_levels",
    "catalogue",
    "day1_score",
    "default_config",
    "effective_config",
    "era5_combined",
    "lead_score",
    "mean_over_runs",
    "open_store",
    "overall_score",
    "ranking_weights",
    "regrid",
    "score",
    "score_dataset",
    "score_field",
    "score_variable",
    "thickness_weights",
    "to_canonical",
]


def __getattr__(name: str) -> Any:
    # The xarray layer is imported on first use, so that numpy alone is enough for the rest.
    if name in _DATASET_NAMES:
        from . import datasets

        return getattr(datasets, name)
    raise AttributeError(f"module 'wx_scoring' has no attribute {name!r}")
