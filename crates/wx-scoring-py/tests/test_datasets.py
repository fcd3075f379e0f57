"""The xarray layer: a tidy DataFrame, the validator's rules on in-memory Datasets (float32
only for forecasts, units, missing variables), and the exposed grid functions."""

from __future__ import annotations

import numpy as np
import pytest
import wx_scoring as wx

from conftest import INIT, STORES


@pytest.fixture(scope="module")
def stores():
    return {n: wx.open_store(STORES / n) for n in
            ("miner_v2_blosc_zstd", "era5_arco", "clim_wb2", "miner_v2_lat_asc_lon180")}


def test_score_dataset_is_a_tidy_frame(stores):
    df = wx.score_dataset(stores["miner_v2_blosc_zstd"], stores["era5_arco"], stores["clim_wb2"],
                          init=INIT, leads=[24, 48], variables=["2t", "t", "z500"])
    assert list(df.columns) == ["variable", "level", "lead_hours", "rmse", "mse", "mae", "bias",
                                "acc", "skill_clim", "rmse_clim", "coverage"]
    assert len(df) == 2 * (1 + 13 + 1)
    assert not df[["rmse", "acc", "skill_clim"]].isna().any().any()
    assert set(df.query("variable == 'z'")["level"]) == {500}
    t = df.query("variable == 't' and lead_hours == 24")
    assert list(t["level"]) == [50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 850, 925, 1000]
    assert (df["coverage"] == 1.0).all()
    assert (df.groupby("variable")["rmse"].mean() > 0).all()


def test_in_memory_datasets_follow_the_validator(stores):
    forecast = stores["miner_v2_blosc_zstd"].load()
    truth, clim = stores["era5_arco"], stores["clim_wb2"]
    # float64 forecast data: the validator scores the variable 0 with a message
    f64 = forecast.assign({"2t": forecast["2t"].astype("float64")})
    report = wx.score(f64, truth, clim, init=INIT, leads=[24], variables=["2t", "msl"])
    by = {v["variable"]: v for v in report.variables}
    assert by["2t"]["lead_component"] == 0.0 and "must be float32" in by["2t"]["error"]
    assert by["msl"]["error"] is None and by["msl"]["lead_component"] > 0.5
    assert report.lead_scores[24] == pytest.approx(by["msl"]["lead_component"] / 2, rel=1e-15)
    # units in another unit: a failed variable, no conversion guessed
    hpa = forecast.assign({"msl": forecast["msl"].assign_attrs(units="hPa")})
    report = wx.score(hpa, truth, clim, init=INIT, leads=[24], variables=["msl"])
    assert "units `hPa` but wx scores it in `Pa`" in report.variables[0]["error"]
    # a spelling of the right unit is fine
    ok = forecast.assign({"msl": forecast["msl"].assign_attrs(units="pascal")})
    assert wx.score(ok, truth, clim, init=INIT, leads=[24], variables=["msl"]).variables[0][
        "error"] is None
    # the truth has not published the valid time yet (after its time axis): pending, not
    # scored, as in wx-step
    report = wx.score(forecast, truth, clim, init=INIT, leads=[240], variables=["2t"])
    assert report.lead_scores == {} and report.fields == []
    assert report.pending_leads == [{"lead_hours": 240, "valid_time": "2025-01-09T00:00:00Z",
                                     "published_until": "2025-01-01T00:00:00Z"}]
    with pytest.raises(wx.ScoreError, match="no valid time after the run's init"):
        wx.score(forecast, truth, clim, init="2025-02-01T00:00:00Z", leads=[24])
    with pytest.raises(wx.ScoreError, match="invalid variable selection `sp`"):
        wx.score(forecast, truth, clim, init=INIT, leads=[24], variables=["sp"])
    with pytest.raises(wx.ScoreError, match="unknown config key `era5.wieghts`"):
        wx.score(forecast, truth, clim, init=INIT, leads=[24], config={"era5": {"wieghts": 1}})


def test_to_canonical_and_regrid_are_the_validators(stores):
    lat_asc = stores["miner_v2_lat_asc_lon180"]["2t"].isel(time=1)
    values, lats, lons = wx.to_canonical(lat_asc.values, lat_asc["lat"], lat_asc["lon"])
    assert lats[0] == 90.0 and np.all(np.diff(lats) < 0)
    assert list(lons[:2]) == [0.0, 5.0] and np.all(np.diff(lons) > 0) and lons[-1] == 355.0
    # rows reversed, columns -180..175 rotated to 0..355: values moved bit for bit
    np.testing.assert_array_equal(values, np.roll(lat_asc.values[::-1], -36, axis=1))
    canonical = stores["miner_v2_blosc_zstd"]["2t"].isel(time=1)
    truth = stores["era5_arco"]["2m_temperature"].isel(time=3)
    t_vals, t_lats, t_lons = wx.to_canonical(truth.values, truth["latitude"], truth["longitude"])
    on_truth = wx.regrid(canonical.values, canonical["lat"], canonical["lon"], t_lats, t_lons)
    assert on_truth.shape == t_vals.shape == (37, 72) and on_truth.dtype == np.float32
    # the 720-style forecast has no -90 row: the nearest row is taken; other rows coincide
    np.testing.assert_array_equal(on_truth[:-1], canonical.values)
    np.testing.assert_array_equal(on_truth[-1], canonical.values[-1])
    # a 3-D stack and float64 work the same way
    stack = np.stack([canonical.values] * 2).astype(np.float64)
    out = wx.regrid(stack, canonical["lat"], canonical["lon"], t_lats, t_lons)
    assert out.shape == (2, 37, 72) and out.dtype == np.float64
