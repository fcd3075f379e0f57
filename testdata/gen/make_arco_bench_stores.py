#!/usr/bin/env python3
"""Writes full-size 0.25 degree stores for scoring one ERA5 lead: `make_arco_bench_stores.py OUTDIR`.

Used by `cargo xtask bench era5` (the peak memory of scoring one lead from an ARCO-layout
store); nothing here is committed. zarr-python 2.x writes, with the layouts the validator reads
in production:

- `era5.zarr`: the public ARCO-ERA5 layout (`full_37-1h-0p25deg-chunk-1.zarr-v3`): Zarr v2,
  consolidated, long names, (time, level, latitude, longitude), 37 levels in one chunk of
  1 x 37 x 721 x 1440 float32 (153,659,520 bytes decoded), hourly `time` int64 "hours since
  1900-01-01" padded a day beyond the data, root attributes `valid_time_start`,
  `valid_time_stop`, `valid_time_stop_era5t`, and chunks only for the hours published (here the
  lead's valid time; zarr writes no chunk that was never assigned).
- `clim.zarr`: the WeatherBench2 hourly climatology layout: (hour, dayofyear, [level],
  longitude, latitude), 13 levels, latitude ascending, chunks one (hour, day) each, only the
  (hour, day) of the valid time written.
- `miner.zarr`: the miner layout of data.md section 1: 720 rows (no -90), (time, plev, lat,
  lon), 13 levels, 40 six-hourly steps, Blosc(zstd, 3, bitshuffle), only the lead's step written.

The values are smooth fields with a little noise (realistic enough for the codecs; memory does
not depend on them).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numcodecs
import numpy as np
import zarr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fields import ATMOS, ERA5_LEVELS, LONG_NAMES, PRESSURE_LEVELS, SURFACE  # noqa: E402

INIT = np.datetime64("2025-01-01T00:00:00", "h")
LEAD_H = 24
VALID = INIT + np.timedelta64(LEAD_H, "h")
EPOCH = np.datetime64("1900-01-01T00:00:00", "h")
LAT_721 = np.linspace(90.0, -90.0, 721, dtype=np.float32)
LAT_720 = LAT_721[:720]
LON = (np.arange(1440) * 0.25).astype(np.float32)
BASE = {"2t": 280.0, "10u": 0.0, "10v": 0.0, "msl": 101000.0, "t": 250.0, "u": 5.0, "v": 0.0,
        "q": 0.005, "z": 50000.0}
SCALE = {"2t": 20.0, "10u": 5.0, "10v": 5.0, "msl": 1500.0, "t": 30.0, "u": 15.0, "v": 10.0,
         "q": 0.004, "z": 5000.0}
UNITS = {"2t": "K", "10u": "m s**-1", "10v": "m s**-1", "msl": "Pa", "t": "K", "u": "m s**-1",
         "v": "m s**-1", "q": "kg kg**-1", "z": "m**2 s**-2"}


def field(var: str, level: float, lat: np.ndarray, seed: int, error: float = 0.0) -> np.ndarray:
    """A smooth [lat, lon] float32 field, plus `error` times noise."""
    phi = np.deg2rad(lat)[:, None]
    lam = np.deg2rad(LON)[None, :]
    f = BASE[var] * (1.0 + 0.0001 * level) + SCALE[var] * (
        np.cos(phi) * np.cos(2 * lam + 0.01 * level) + 0.3 * np.sin(3 * phi) * np.sin(lam))
    if error:
        rng = np.random.default_rng(seed)
        f = f + error * SCALE[var] * (0.1 + 0.05 * rng.standard_normal(f.shape))
    return f.astype(np.float32)


def dims(array, names):
    array.attrs["_ARRAY_DIMENSIONS"] = list(names)


def coord(group, name, values, **attrs):
    a = group.create_dataset(name, data=values, chunks=(len(values),))
    dims(a, [name])
    a.attrs.update(attrs)


def make_era5(out: Path):
    hours = np.arange(INIT - np.timedelta64(24, "h"), VALID + np.timedelta64(25, "h"),
                      np.timedelta64(1, "h"))
    g = zarr.open_group(str(out / "era5.zarr"), mode="w")
    day = str(VALID.astype("datetime64[D]"))
    g.attrs.update({"valid_time_start": str(INIT.astype("datetime64[D]")),
                    "valid_time_stop": day, "valid_time_stop_era5t": day})
    coord(g, "time", (hours - EPOCH).astype(np.int64), units="hours since 1900-01-01",
          calendar="proleptic_gregorian")
    coord(g, "level", ERA5_LEVELS.astype(np.int64), units="millibars")
    coord(g, "latitude", LAT_721, units="degrees_north")
    coord(g, "longitude", LON, units="degrees_east")
    t = int(np.where(hours == VALID)[0][0])
    compressor = numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE)
    for var in SURFACE + ATMOS:
        if var in SURFACE:
            a = g.create_dataset(LONG_NAMES[var], shape=(len(hours), 721, 1440),
                                 chunks=(1, 721, 1440), dtype="<f4", fill_value=np.nan,
                                 compressor=compressor)
            dims(a, ["time", "latitude", "longitude"])
            a[t] = field(var, 0.0, LAT_721, 0)
        else:
            a = g.create_dataset(LONG_NAMES[var], shape=(len(hours), 37, 721, 1440),
                                 chunks=(1, 37, 721, 1440), dtype="<f4", fill_value=np.nan,
                                 compressor=compressor)
            dims(a, ["time", "level", "latitude", "longitude"])
            a[t] = np.stack([field(var, float(lev), LAT_721, 0) for lev in ERA5_LEVELS])
        a.attrs["units"] = UNITS[var]
    zarr.consolidate_metadata(str(out / "era5.zarr"))


def make_clim(out: Path):
    g = zarr.open_group(str(out / "clim.zarr"), mode="w")
    coord(g, "hour", np.array([0, 6, 12, 18], dtype=np.int64))
    coord(g, "dayofyear", np.arange(1, 367, dtype=np.int64))
    coord(g, "level", PRESSURE_LEVELS.astype(np.int64))
    lat = LAT_721[::-1].astype(np.float64)
    coord(g, "latitude", lat)
    coord(g, "longitude", LON.astype(np.float64))
    hour = int(VALID.astype("datetime64[h]").astype(object).hour) // 6
    doy = int((VALID.astype("datetime64[D]") - VALID.astype("datetime64[Y]")).astype(int)) + 1
    for var in SURFACE + ATMOS:
        levels = [0.0] if var in SURFACE else [float(x) for x in PRESSURE_LEVELS]
        # (level, lon, lat): the WB2 dimension order
        values = np.stack([field(var, lev, lat.astype(np.float32), 1, 0.3).T for lev in levels])
        if var in SURFACE:
            a = g.create_dataset(LONG_NAMES[var], shape=(4, 366, 1440, 721),
                                 chunks=(1, 1, 1440, 721), dtype="<f4", fill_value=np.nan,
                                 compressor=numcodecs.Zstd(level=1))
            dims(a, ["hour", "dayofyear", "longitude", "latitude"])
            a[hour, doy - 1] = values[0]
        else:
            a = g.create_dataset(LONG_NAMES[var], shape=(4, 366, 13, 1440, 721),
                                 chunks=(1, 1, 13, 1440, 721), dtype="<f4", fill_value=np.nan,
                                 compressor=numcodecs.Zstd(level=1))
            dims(a, ["hour", "dayofyear", "level", "longitude", "latitude"])
            a[hour, doy - 1] = values
    zarr.consolidate_metadata(str(out / "clim.zarr"))


def make_miner(out: Path):
    g = zarr.open_group(str(out / "miner.zarr"), mode="w")
    steps = np.arange(6, 241, 6)
    coord(g, "time", steps.astype(np.float64) - 6.0,
          units=f"hours since {str(INIT + np.timedelta64(6, 'h'))}:00:00", calendar="standard")
    coord(g, "plev", PRESSURE_LEVELS.astype(np.int32))
    coord(g, "lat", LAT_720)
    coord(g, "lon", LON)
    t = int(np.where(steps == LEAD_H)[0][0])
    compressor = numcodecs.Blosc(cname="zstd", clevel=3, shuffle=numcodecs.Blosc.BITSHUFFLE)
    for var in SURFACE + ATMOS:
        if var in SURFACE:
            a = g.create_dataset(var, shape=(len(steps), 720, 1440), chunks=(1, 720, 1440),
                                 dtype="<f4", fill_value=np.nan, compressor=compressor)
            dims(a, ["time", "lat", "lon"])
            a[t] = field(var, 0.0, LAT_720, 2, 0.2)
        else:
            a = g.create_dataset(var, shape=(len(steps), 13, 720, 1440),
                                 chunks=(1, 13, 720, 1440), dtype="<f4", fill_value=np.nan,
                                 compressor=compressor)
            dims(a, ["time", "plev", "lat", "lon"])
            a[t] = np.stack([field(var, float(lev), LAT_720, 2, 0.2) for lev in PRESSURE_LEVELS])
    zarr.consolidate_metadata(str(out / "miner.zarr"))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir", type=Path)
    out = ap.parse_args().outdir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    make_era5(out)
    make_clim(out)
    make_miner(out)
    (out / "stores.json").write_text(json.dumps({
        "init": str(INIT) + ":00:00Z", "lead_hours": LEAD_H,
        "valid_time": str(VALID) + ":00:00Z",
    }, indent=2) + "\n")


if __name__ == "__main__":
    main()
