#!/usr/bin/env python3
"""One ERA5 lead scored three ways on the same 0.25 degree stores, alternating, median of N rounds.

    bench_score_lead.py --wx-step target/release/wx-step --stores target/bench-era5 [--rounds 3]

`cargo xtask bench e2e` runs it on the stores `make_arco_bench_stores.py` writes (a miner store,
the public ARCO-ERA5 layout with 37 levels per chunk, a WeatherBench2 climatology). The three
contenders compute the same numbers for the nine ERA5 variables (4 surface + 5 x 13 levels): per
level the cos-latitude weighted MSE, RMSE, MAE, bias, ACC (centred, on anomalies against the
climatology), the climatology's RMSE and the skill against it; per variable the thickness-weighted
aggregate (docs/scoring.md).

- `wx-step score`: the release binary, end to end in its own process (start-up included).
- numpy: zarr-python reads, a separable linear regrid written with numpy, vectorised weighted sums
  in float64 (what a careful hand-written Python scorer does).
- xarray + xskillscore: the reference validator's path (xr.open_zarr, `.sel`, `interp_like(...,
  "linear")`, `xskillscore.mse/rmse/mae/me/pearson_r` with cos-latitude weights and skipna, the
  bias-corrected forecast for the skill), every metric computed, in one dask graph per variable
  (each store read once).

The Python paths are timed in this process from opening the stores to the numbers (interpreter
start-up and imports excluded, which favours them). Each prints its wall time; the summary gives
the ratios against `wx-step score` and the largest relative difference of the variables' RMSE and
ACC between the paths (they must agree: the comparison is only fair on the same work).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr
import xskillscore as xs
import zarr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fields import ATMOS, LONG_NAMES, PRESSURE_LEVELS, SURFACE  # noqa: E402

VARIABLES = SURFACE + ATMOS
# the targets for `wx-step score`, one lead end to end
TARGET_SECONDS = 0.5
TARGET_VS_NUMPY = 9.0
TARGET_VS_XSKILLSCORE = 120.0


def thickness_weights(levels) -> np.ndarray:
    """docs/scoring.md: half the distance to the neighbouring levels, normalised."""
    p = np.asarray(sorted(levels), dtype=np.float64)
    d = np.empty_like(p)
    d[0] = (p[1] - p[0]) / 2
    d[-1] = (p[-1] - p[-2]) / 2
    d[1:-1] = (p[2:] - p[:-2]) / 2
    return d / d.sum()


def aggregate(per_level: dict) -> dict:
    """A variable's numbers from its levels' (a dict of arrays over levels)."""
    if per_level["mse"].size == 1:
        return {"rmse": float(np.sqrt(per_level["mse"][0])), "acc": float(per_level["acc"][0])}
    w = thickness_weights(PRESSURE_LEVELS)
    return {"rmse": float(np.sqrt(np.sum(w * per_level["mse"]))),
            "acc": float(np.sum(w * per_level["acc"]))}


# ---------------------------------------------------------------------------------------------
# wx-step score


# GNU time reports the peak RSS of wx-step itself. This process's RUSAGE_CHILDREN does not: a
# child's peak includes the copy of this (by then large) Python process it was forked from.
GNU_TIME = Path("/usr/bin/time")
WX_STEP_PEAK_KIB: list[int] = []


def run_wx_step(wx_step: Path, stores: Path, meta: dict) -> tuple[float, dict]:
    cmd = [str(wx_step), "score", "--forecast", str(stores / "miner.zarr"),
           "--truth", str(stores / "era5.zarr"), "--climatology", str(stores / "clim.zarr"),
           "--init", meta["init"], "--leads", str(meta["lead_hours"]), "--format", "json"]
    if GNU_TIME.is_file():
        cmd = [str(GNU_TIME), "-f", "%M"] + cmd
    start = time.perf_counter()
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if GNU_TIME.is_file():
        WX_STEP_PEAK_KIB.append(int(done.stderr.strip().splitlines()[-1]))
    out = done.stdout
    report = json.loads(out)
    return seconds, {v["variable"]: {"rmse": v["rmse"], "acc": v["acc"]} for v in report["variables"]}


# ---------------------------------------------------------------------------------------------
# numpy


def linear_weights(src: np.ndarray, dst: np.ndarray):
    """Indices and weights of a linear interpolation from `src` to `dst` (monotonic axes);
    points outside `src` get NaN weights."""
    order = np.argsort(src)
    pos = np.interp(dst, src[order], np.arange(src.size, dtype=np.float64),
                    left=np.nan, right=np.nan)
    inside = np.isfinite(pos)
    p = np.where(inside, pos, 0.0)
    i0 = np.floor(p).astype(np.int64)
    i1 = np.minimum(i0 + 1, src.size - 1)
    w = np.where(inside, p - i0, np.nan)
    return order[i0], order[i1], w


def regrid_lat(values: np.ndarray, src_lat: np.ndarray, dst_lat: np.ndarray) -> np.ndarray:
    """Linear in latitude (the longitudes are the same grid); [..., lat, lon]."""
    if src_lat.shape == dst_lat.shape and np.array_equal(src_lat, dst_lat):
        return values
    i0, i1, w = linear_weights(src_lat.astype(np.float64), dst_lat.astype(np.float64))
    w = w.astype(np.float32)[:, None]
    return values[..., i0, :] * (1 - w) + values[..., i1, :] * w


def numpy_metrics(f: np.ndarray, o: np.ndarray, c: np.ndarray, lat: np.ndarray) -> dict:
    """Per-level metrics of [level, lat, lon] float32 arrays, in float64, vectorised over the
    levels; a weighted sum is a sum over longitudes, then a dot product with the latitude
    weights."""
    wlat = np.cos(np.deg2rad(lat.astype(np.float64))).clip(min=0)
    valid = np.isfinite(f) & np.isfinite(o) & np.isfinite(c)
    all_valid = bool(valid.all())
    f, o, c = (x.astype(np.float64) for x in (f, o, c))
    if not all_valid:
        for x in (f, o, c):
            x[~valid] = 0.0

    def wsum(x):
        return x.sum(axis=-1) @ wlat

    sw = wsum(valid)
    d = f - o
    mse = wsum(d * d) / sw
    dc = c - o
    mse_clim = wsum(dc * dc) / sw
    fa = f - c
    oa = o - c
    fa -= (wsum(fa) / sw)[:, None, None]
    oa -= (wsum(oa) / sw)[:, None, None]
    if not all_valid:
        fa[~valid] = 0.0
        oa[~valid] = 0.0
    return {
        "mse": mse,
        "mae": wsum(np.abs(d)) / sw,
        "bias": wsum(d) / sw,
        "rmse_clim": np.sqrt(mse_clim),
        "skill": 1.0 - mse / mse_clim,
        "acc": wsum(fa * oa) / np.sqrt(wsum(fa * fa) * wsum(oa * oa)),
    }


def run_numpy(stores: Path, meta: dict) -> tuple[float, dict]:
    start = time.perf_counter()
    valid = np.datetime64(meta["valid_time"].rstrip("Z"), "h")
    miner = zarr.open_group(str(stores / "miner.zarr"), mode="r")
    era5 = zarr.open_group(str(stores / "era5.zarr"), mode="r")
    clim = zarr.open_group(str(stores / "clim.zarr"), mode="r")
    # the miner's time axis: "hours since <first step>"
    base = np.datetime64(miner["time"].attrs["units"].split("since ")[1], "h")
    t_miner = int(np.where(base + miner["time"][:].astype("timedelta64[h]") == valid)[0][0])
    hours = np.datetime64("1900-01-01T00", "h") + era5["time"][:].astype("timedelta64[h]")
    t_era5 = int(np.where(hours == valid)[0][0])
    era5_levels = era5["level"][:]
    level_index = [int(np.where(era5_levels == p)[0][0]) for p in PRESSURE_LEVELS]
    doy = int((valid.astype("datetime64[D]") - valid.astype("datetime64[Y]")).astype(int)) + 1
    hour = int((valid - valid.astype("datetime64[D]")).astype(int)) // 6 * 6
    h_index = int(np.where(clim["hour"][:] == hour)[0][0])
    d_index = int(np.where(clim["dayofyear"][:] == doy)[0][0])
    lat_truth = era5["latitude"][:]
    lat_miner = miner["lat"][:]
    lat_clim = clim["latitude"][:]
    scores = {}
    for var in VARIABLES:
        long = LONG_NAMES[var]
        if var in SURFACE:
            f = miner[var][t_miner][None]
            o = era5[long][t_era5][None]
            c = clim[long][h_index, d_index][None]
        else:
            f = miner[var][t_miner]
            o = era5[long].oindex[t_era5, level_index]
            c = clim[long][h_index, d_index]
        c = np.swapaxes(c, -1, -2)  # (level, lon, lat) → (level, lat, lon)
        f = regrid_lat(f, lat_miner, lat_truth)
        c = regrid_lat(c, lat_clim, lat_truth)
        scores[var] = aggregate(numpy_metrics(f, o, c, lat_truth))
    return time.perf_counter() - start, scores


# ---------------------------------------------------------------------------------------------
# xarray + xskillscore


def run_xskillscore(stores: Path, meta: dict) -> tuple[float, dict]:
    start = time.perf_counter()
    valid = np.datetime64(meta["valid_time"].rstrip("Z"), "ns")
    # the generator's coordinate arrays carry zarr-python's default fill value 0, which
    # xarray's masking would turn into NaN/NaT (hour 0, the first step); the data's fill is NaN
    opts = {"consolidated": True, "mask_and_scale": False}
    fc = xr.open_zarr(stores / "miner.zarr", **opts)
    tr = xr.open_zarr(stores / "era5.zarr", **opts)
    cl = xr.open_zarr(stores / "clim.zarr", **opts)
    doy = int(valid.astype("datetime64[D]").astype(object).timetuple().tm_yday)
    hour = int(valid.astype("datetime64[h]").astype(object).hour) // 6 * 6
    scores = {}
    for var in VARIABLES:
        long = LONG_NAMES[var]
        o = tr[long].sel(time=valid).rename(latitude="lat", longitude="lon")
        f = fc[var].sel(time=valid)
        c = cl[long].sel(dayofyear=doy, hour=hour).rename(latitude="lat", longitude="lon")
        if var in ATMOS:
            o = o.sel(level=PRESSURE_LEVELS).rename(level="pressure_level")
            f = f.rename(plev="pressure_level")
            c = c.rename(level="pressure_level")
            f = f.assign_coords(pressure_level=o.pressure_level)
            c = c.assign_coords(pressure_level=o.pressure_level)
        c = c.sortby("lat", ascending=False).transpose(*o.dims)
        f = f.interp_like(o, method="linear")
        c = c.interp_like(o, method="linear")
        # float64 latitudes, as the reference's coordinates (cos of a float32 −90° is < 0)
        w = np.cos(np.deg2rad(o.lat.astype("float64"))).clip(min=0) * xr.ones_like(o.lon)
        dims = ["lat", "lon"]
        metrics = {
            "mse": xs.mse(f, o, dim=dims, weights=w, skipna=True),
            "rmse": xs.rmse(f, o, dim=dims, weights=w, skipna=True),
            "mae": xs.mae(f, o, dim=dims, weights=w, skipna=True),
            "bias": xs.me(f, o, dim=dims, weights=w, skipna=True),
            "acc": xs.pearson_r(f - c, o - c, dim=dims, weights=w, skipna=True),
            "rmse_clim": xs.rmse(c, o, dim=dims, weights=w, skipna=True),
        }
        f_bc = f - (f - o).mean(dims)
        metrics["skill"] = (1 - xs.mse(f_bc, o, dim=dims, weights=w, skipna=True)
                            / metrics["rmse_clim"]**2)
        # every number the other two paths compute, in one dask graph (each store read once)
        done = xr.Dataset(metrics).compute()
        per_level = {"mse": np.atleast_1d(done["mse"].values),
                     "acc": np.atleast_1d(done["acc"].values)}
        scores[var] = aggregate(per_level)
    return time.perf_counter() - start, scores


# ---------------------------------------------------------------------------------------------


def largest_difference(a: dict, b: dict) -> float:
    worst = 0.0
    for var in VARIABLES:
        for k in ("rmse", "acc"):
            x, y = a[var][k], b[var][k]
            worst = max(worst, abs(x - y) / max(abs(x), abs(y), 1e-30))
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wx-step", type=Path, required=True)
    ap.add_argument("--stores", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--xskillscore-rounds", type=int, default=1,
                    help="rounds of the xarray + xskillscore path (about a minute each)")
    ap.add_argument("--skip-xskillscore", action="store_true",
                    help="leave out the slow xarray + xskillscore path")
    args = ap.parse_args()
    meta = json.loads((args.stores / "stores.json").read_text())
    contenders = {
        "wx-step score": lambda: run_wx_step(args.wx_step, args.stores, meta),
        "numpy": lambda: run_numpy(args.stores, meta),
    }
    if not args.skip_xskillscore:
        contenders["xarray + xskillscore"] = lambda: run_xskillscore(args.stores, meta)
    times = {name: [] for name in contenders}
    scores = {}
    for r in range(args.rounds):
        # alternate the order so that no contender always comes first after another
        names = list(contenders)
        if r % 2:
            names.reverse()
        for name in names:
            if name == "xarray + xskillscore" and r >= args.xskillscore_rounds:
                continue
            seconds, scores[name] = contenders[name]()
            times[name].append(seconds)
            print(f"round {r + 1}: {name}: {seconds:.2f} s", file=sys.stderr, flush=True)
    peak = (f"peak RSS {max(WX_STEP_PEAK_KIB) / 1024:.0f} MiB" if WX_STEP_PEAK_KIB
            else "peak RSS not measured (no GNU time at /usr/bin/time)")
    median = {name: statistics.median(t) for name, t in times.items()}
    wx = median["wx-step score"]
    print(f"one ERA5 lead at 0.25° (9 variables, 69 fields), same stores, median of {args.rounds} "
          f"alternating rounds ({min(args.rounds, args.xskillscore_rounds)} of xarray + xskillscore):")
    verdict = "pass" if wx <= TARGET_SECONDS else f"over ({wx / TARGET_SECONDS:.2f}× the target)"
    print(f"  wx-step score end to end: {wx:.2f} s, {peak}   {verdict} "
          f"(target ≤ {TARGET_SECONDS} s)")
    targets = {"numpy": TARGET_VS_NUMPY, "xarray + xskillscore": TARGET_VS_XSKILLSCORE}
    for name, target in targets.items():
        if name not in median:
            continue
        ratio = median[name] / wx
        verdict = "pass" if ratio >= target else f"under ({ratio / target:.2f} of the target)"
        print(f"  {name}: {median[name]:.2f} s = {ratio:.1f}× wx-step score   {verdict} "
              f"(target ≥ {target:.0f}×); largest relative difference of a variable's RMSE or "
              f"ACC from wx-step score: {largest_difference(scores[name], scores['wx-step score']):.1e}")


if __name__ == "__main__":
    main()
