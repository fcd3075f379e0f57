"""Score a forecast the way the validator does, in a notebook or a script.

    python crates/wx-scoring-py/examples/score_forecast.py [STORES_DIR]

STORES_DIR defaults to the repository's testdata/stores (a 5° miner forecast, an ERA5
miniature and a WeatherBench2 climatology miniature). With your own data, open your forecast,
ERA5 and the WB2 climatology (xarray.open_zarr or wx_scoring.open_store) and pass them instead.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import wx_scoring as wx

stores = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[3] / "testdata/stores"

# %% 1. Every metric of every (variable, level, lead), as a tidy DataFrame
report = wx.score(
    stores / "miner_v2_blosc_zstd",  # the forecast: a path or an xarray.Dataset
    stores / "era5_arco",            # the truth (ERA5)
    stores / "clim_wb2",             # the WeatherBench2 climatology
    init="2024-12-30T00:00:00Z",
    leads=[24, 48],
    variables=["2t", "msl", "z500", "t"],
)
fields = report.fields_frame()
print(fields.query("level in (0, 500)").to_string(index=False))

# %% 2. What the validator makes of it: lead components and lead scores
print(report.variables_frame()[["variable", "lead_hours", "rmse", "acc", "skill_clim",
                                "lead_component", "error"]].to_string(index=False))
print("lead scores:", report.lead_scores)

# %% 3. ERA5 combined over the validator's 10 leads (the two scored here; the rest count 0)
#       and the overall score, assuming Day1 passed
era5 = wx.era5_combined(report.lead_scores)
overall = wx.overall_score(era5, day1_passed=True)
print(f"E = {era5['score']:.4f} (completeness {era5['completeness']:.1f}), "
      f"overall = {overall['score']:.4f} ({overall['tier']})")

# %% 4. The field API on plain numpy arrays: the same kernel, the same bits
truth = wx.open_store(stores / "era5_arco")["2m_temperature"].isel(time=3)
lats = truth["latitude"].values
o = np.asarray(truth.values, dtype=np.float32)
f = o + np.float32(0.5)  # a forecast 0.5 K too warm everywhere
m = wx.score_field(f, o, lats)
print(f"field API: bias {m.bias:.4f} K, rmse {m.rmse:.4f} K, coverage {m.coverage}")
assert abs(m.bias - 0.5) < 1e-4 and m.coverage == 1.0
