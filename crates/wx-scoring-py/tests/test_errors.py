"""Bad input raises ValueError with a message that says what is wrong and what to do; it never
panics across the boundary (a PanicException is not a ValueError, so these tests would fail)."""

from __future__ import annotations

import numpy as np
import pytest
import wx_scoring as wx

LATS = np.linspace(90.0, -90.0, 19)


def fields(dtype=np.float32):
    rng = np.random.default_rng(7)
    truth = (280.0 + rng.standard_normal((19, 36))).astype(dtype)
    clim = (truth - 1.0 + rng.standard_normal((19, 36))).astype(dtype)
    forecast = (truth + 0.5 + 0.1 * rng.standard_normal((19, 36))).astype(dtype)
    return forecast, truth, clim


def raises(match: str, fn, *args, **kw) -> str:
    with pytest.raises(ValueError, match=match) as e:
        fn(*args, **kw)
    assert type(e.value) is ValueError
    return str(e.value)


def test_shape_mismatch():
    f, o, c = fields()
    msg = raises("shape mismatch: forecast has shape", wx.score_field, f[:, :-1], o, LATS)
    assert "regrid" in msg
    raises("climatology has shape", wx.score_field, f, o, LATS, climatology=c[:-1])
    raises("reference has shape", wx.score_field, f, o, LATS, reference=c.T)
    raises("expected 2 \\(lat, lon\\)", wx.score_field, f[None], o, LATS)
    raises("expected 2 \\(lat, lon\\)", wx.score_field, f.ravel(), o, LATS)
    raises("truth has shape|forecast has shape", wx.score_variable, f, o[None], c, LATS)
    raises("empty field", wx.score_field, f[:0], o[:0], LATS[:0])


def test_wrong_dtype():
    f, o, c = fields()
    raises("forecast has dtype int64; pass float32", wx.score_field, f.astype(np.int64), o, LATS)
    raises("truth has dtype float16", wx.score_field, f, o.astype(np.float16), LATS)
    raises("truth has dtype float64 but forecast has float32", wx.score_field, f,
           o.astype(np.float64), LATS)
    raises("climatology has dtype >f4|climatology has dtype float32", wx.score_field, f, o, LATS,
           climatology=c.astype(">f4"))
    raises("dtype", wx.score_field, f.astype(np.complex64), o, LATS)
    raises("dtype <U", wx.score_field, np.full((19, 36), "x"), o, LATS)


def test_nan_only_fields():
    f, o, c = fields()
    nan = np.full_like(o, np.nan)
    raises("truth has no finite value", wx.score_field, f, nan, LATS)
    raises("forecast has no finite value", wx.score_field, nan, o, LATS)
    raises("climatology has no finite value", wx.score_field, f, o, LATS, climatology=nan)
    raises("reference has no finite value", wx.score_field, f, o, LATS, reference=nan)
    # the variable API scores a NaN-only forecast as the validator does: coverage 0, a failure
    v = wx.score_variable(nan, o, c, LATS)
    assert v.coverage == 0.0 and v.rmse is None
    assert v.failures["rmse"] == "no valid points"
    assert "coverage 0.000000 below floor 0.9985" in v.field_failure()
    lead = wx.lead_score({"2t": v}, variables=["2t"])
    assert lead["score"] == 0.0 and "coverage" in lead["variables"][0]["failure"]


def test_mismatched_latitudes():
    f, o, _ = fields()
    msg = raises("latitudes has 18 values but the fields have 19 rows", wx.score_field, f, o,
                 LATS[:-1])
    assert "one per row" in msg
    raises("within \\[-90, 90\\], found 91", wx.score_field, f, o, np.linspace(91, -90, 19))
    raises("found NaN", wx.score_field, f, o, np.full(19, np.nan))
    raises("1-D", wx.score_field, f, o, LATS[None])
    raises("must be numbers", wx.score_field, f, o, ["north"] * 19)


def test_levels_config_and_outcomes():
    f, o, c = fields()
    stack = np.stack([f, f]), np.stack([o, o]), np.stack([c, c])
    raises("pass levels=\\[...\\]", wx.score_variable, *stack, LATS)
    raises("1 levels given for fields with 2 levels", wx.score_variable, *stack, LATS, [500])
    raises("duplicate levels", wx.score_variable, *stack, LATS, [500, 500])
    raises("levels \\[500.0\\] given for a 2-D", wx.score_variable, f, o, c, LATS, [500])
    raises("unknown config key `day1.alhpa`", wx.score_field, f, o, LATS,
           config={"day1": {"alhpa": 0.5}})
    raises("invalid scoring config `day1.alpha`: -1 is negative", wx.score_field, f, o, LATS,
           config={"day1": {"alpha": -1.0}})
    raises("config must be a dict", wx.score_field, f, o, LATS, config=[1])
    raises("config: ", wx.score_field, f, o, LATS, config={"day1": {"alpha": "high"}})
    m = wx.score_variable(f, o, c, LATS)
    raises("lead not complete: variables not attempted", wx.lead_score, {"2t": m})
    raises("no Day1 metrics; score it with reference=", wx.day1_score, {("2t", 12): m})
    raises("must be a VariableMetrics, a FieldMetrics or a failure message", wx.lead_score,
           {"2t": 0.5}, variables=["2t"])
    raises("\\(variable, lead hours\\) tuples", wx.day1_score, {"2t": m})
    raises("era5 must be the dict returned by era5_combined", wx.overall_score, {"x": 1}, True)
    raises("per_level is empty", wx.aggregate_levels, [], [])


def test_regrid_errors():
    f, _, _ = fields()
    lons = np.arange(36) * 10.0
    raises("target grid: .*latitudes must be strictly descending", wx.regrid, f, LATS, lons,
           LATS[::-1], lons)
    raises("source grid: .*duplicate longitudes", wx.regrid, f, LATS, np.zeros(36), LATS, lons)
    raises("values has shape \\[19, 36\\] but the coordinates give a 19 × 35 grid", wx.regrid, f,
           LATS, lons[:-1], LATS, lons)
    raises("expected 2 \\(lat, lon\\) or 3", wx.to_canonical, f.ravel(), LATS, lons)
