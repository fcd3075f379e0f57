#!/usr/bin/env python3
"""Writes the Zarr store fixtures of wx-data: `python testdata/gen/make_stores.py OUTDIR`.

OUTDIR receives `stores/` (the Zarr stores), `stores/<name>.probes.json` (values numpy wrote, for
exact comparison in the Rust tests) and `corrupt/` (chunk files a real codec produced with the
wrong decoded size). See testdata/README.md for what each store is.

Writers: xarray 2026.2.0 + zarr-python 2.18.7 + numcodecs 0.15.2 (this interpreter), and for the
Zarr v3 stores zarr-python 3.x in a separate venv, run as a subprocess (`--v3-python`, default
$WX_PYTHON_V3 or /work/pyenv-v3/bin/python; `--skip-v3` leaves the v3 stores out).

Deterministic: fixed seeds, fixed times, no wall clock; rerunning gives identical chunk bytes.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numcodecs
import numpy as np
import xarray as xr
import zarr

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fields  # noqa: E402
from fields import ATMOS, LONG_NAMES, PRESSURE_LEVELS, SURFACE  # noqa: E402

assert xr.__version__ == "2026.2.0", xr.__version__
# numcodecs' GZip stamps the wall clock into each gzip header; pin it to 0 for reproducible bytes.
gzip.time = types.SimpleNamespace(time=lambda: 0.0)
assert zarr.__version__.startswith("2.18."), zarr.__version__

INIT = np.datetime64("2024-12-30T00:00:00", "ns")
LEADS_H = np.arange(6, 49, 6)  # 6 .. 48 h, 8 steps
TIME_UNITS = "hours since 2024-12-30T06:00:00"  # the miner writer's reference: init + 6 h

LAT_720 = np.arange(90.0, -90.0, -5.0, dtype=np.float32)  # 36 rows, no -90 ("720-style")
LAT_721 = np.arange(90.0, -90.1, -5.0, dtype=np.float32)  # 37 rows
LON_5 = np.arange(0.0, 360.0, 5.0, dtype=np.float32)  # 72 columns
LAT_2P5 = np.arange(90.0, -90.1, -2.5, dtype=np.float32)  # 73 rows
LON_2P5 = np.arange(0.0, 360.0, 2.5, dtype=np.float32)  # 144 columns

BLOSC_ZSTD_BITSHUFFLE = numcodecs.Blosc(cname="zstd", clevel=3, shuffle=numcodecs.Blosc.BITSHUFFLE)
BLOSC_LZ4_SHUFFLE = numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE)
# The real ARCO-ERA5 and WB2 codecs are not reproduced (no network here); these keep the
# miniatures small while still being codecs real stores use.
ERA5_COMPRESSOR = numcodecs.Blosc(cname="zstd", clevel=5, shuffle=numcodecs.Blosc.BITSHUFFLE)
CLIM_COMPRESSOR = numcodecs.Zstd(level=9)


def valid_times(leads=LEADS_H):
    return INIT + leads.astype("timedelta64[h]")


def iso(t) -> str:
    return str(np.datetime_as_string(np.datetime64(t, "s"), unit="s")) + "Z"


def jvalue(x) -> float | str:
    x = float(np.float32(x))
    return "NaN" if np.isnan(x) else x


class Probes:
    """Values picked from the arrays handed to the writer, for exact comparison in Rust."""

    POINTS = [(0, 0), (3, 17), (17, 35), (-1, -1), (10, 71)]

    def __init__(self):
        self.items = []

    def add(self, var, data, times, levels, lat, lon, extra=None, nan_points=()):
        """data: [time, level|1, lat, lon] float32 as written; levels None for surface."""
        nt = data.shape[0]
        for ti in sorted({0, nt // 2, nt - 1}):
            lis = [None] if levels is None else sorted({0, len(levels) // 2, len(levels) - 1})
            for li in lis:
                pts = list(self.POINTS) + list(nan_points)
                for (i, j) in pts:
                    i %= len(lat)
                    j %= len(lon)
                    item = {
                        "variable": var,
                        "valid_time": iso(times[ti]) if times is not None else None,
                        "level_hpa": None if li is None else int(levels[li]),
                        "lat_index": i,
                        "lon_index": j,
                        "lat": float(lat[i]),
                        "lon": float(lon[j]),
                        "value": jvalue(data[ti, 0 if li is None else li, i, j]),
                    }
                    if extra:
                        item.update(extra(ti))
                    self.items.append(item)

    def write(self, path: Path):
        lines = ",\n".join(json.dumps(item, separators=(",", ":")) for item in self.items)
        path.write_text("{\"probes\": [\n" + lines + "\n]}\n")


def check_roundtrip(path: Path, name: str, expected: np.ndarray):
    """Reads a variable back with zarr-python and checks the bytes equal what was handed over."""
    got = zarr.open_consolidated(str(path))[name][...]
    assert got.dtype == np.float32, got.dtype
    if not np.array_equal(got.view(np.uint32), expected.view(np.uint32)):
        raise SystemExit(f"{path}/{name}: zarr read-back differs from the written values")


def make_miner(out: Path, name: str, *, variables, lat, lon, leads=LEADS_H,
               compressor=BLOSC_ZSTD_BITSHUFFLE, level_dim="plev",
               level_values=PRESSURE_LEVELS.astype(np.int32), nan_points=(),
               lat_flip=False, lon_180=False):
    """A forecast store in the miner layout (docs/data.md §1.1), optionally varied."""
    times = valid_times(leads)
    lat_w = lat[::-1].copy() if lat_flip else lat
    lon_w = np.where(lon >= 180, lon - 360, lon).astype(np.float32) if lon_180 else lon
    lon_order = np.argsort(lon_w, kind="stable") if lon_180 else np.arange(len(lon))
    lon_w = lon_w[lon_order]
    data_vars = {}
    written = {}
    probes = Probes()
    for var in variables:
        levels = None if var in SURFACE else PRESSURE_LEVELS
        slabs = []
        for lev in ([None] if levels is None else levels):
            slabs.append(fields.forecast(var, lev, INIT, times, lat_w, lon_w.astype(np.float64)))
        arr = fields.quantize(var, np.stack(slabs, axis=1))  # [time, level|1, lat, lon]
        for (i, j) in nan_points:
            arr[0, :, i % len(lat_w), j % len(lon_w)] = np.nan
        written[var] = arr
        probes.add(var, arr, times, levels, lat_w, lon_w, nan_points=nan_points)
        if levels is None:
            data_vars[var] = (("time", "lat", "lon"), arr[:, 0])
        else:
            data_vars[var] = (("time", level_dim, "lat", "lon"), arr)
    coords = {"time": times, "lat": lat_w.astype(np.float32), "lon": lon_w.astype(np.float32)}
    if any(v in ATMOS for v in variables):
        coords[level_dim] = level_values
    ds = xr.Dataset(data_vars, coords=coords)
    encoding = {
        "time": {"units": TIME_UNITS, "calendar": "standard", "dtype": "float64"},
    }
    for var in variables:
        ds[var].encoding["coordinates"] = "time"  # the miner writer's leftover attribute
        chunks = (1, len(lat_w), len(lon_w)) if var in SURFACE else (1, len(PRESSURE_LEVELS), len(lat_w), len(lon_w))
        encoding[var] = {"compressor": compressor, "chunks": chunks, "_FillValue": np.nan, "dtype": "float32"}
    path = out / "stores" / name
    shutil.rmtree(path, ignore_errors=True)
    ds.to_zarr(str(path), consolidated=True, encoding=encoding, mode="w")
    for var, arr in written.items():
        check_roundtrip(path, var, arr[:, 0] if var in SURFACE else arr)
    probes.write(out / "stores" / f"{name}.probes.json")


def make_era5(out: Path):
    """ARCO-ERA5 miniature: long names, (time, level, latitude, longitude), 37 levels."""
    times = valid_times()  # 6-hourly: exactly the forecast valid times, init+6 h .. init+48 h
    lat, lon = LAT_721, LON_5
    data_vars, written = {}, {}
    probes = Probes()
    units = {"2t": "K", "10u": "m s**-1", "10v": "m s**-1", "msl": "Pa", "t": "K",
             "u": "m s**-1", "v": "m s**-1", "q": "kg kg**-1", "z": "m**2 s**-2"}
    for var in SURFACE + ATMOS:
        levels = None if var in SURFACE else fields.ERA5_LEVELS
        slabs = [fields.truth(var, lev, times, lat, lon.astype(np.float64))
                 for lev in ([None] if levels is None else levels)]
        arr = fields.quantize(var, np.stack(slabs, axis=1))
        long = LONG_NAMES[var]
        written[long] = arr
        probes.add(long, arr, times, levels, lat, lon)
        attrs = {"units": units[var], "short_name": var, "long_name": long.replace("_", " ")}
        if levels is None:
            data_vars[long] = (("time", "latitude", "longitude"), arr[:, 0], attrs)
        else:
            data_vars[long] = (("time", "level", "latitude", "longitude"), arr, attrs)
    ds = xr.Dataset(
        data_vars,
        coords={
            "time": times,
            "level": ("level", fields.ERA5_LEVELS.astype(np.int64), {"units": "millibars", "long_name": "pressure_level"}),
            "latitude": ("latitude", lat, {"units": "degrees_north", "long_name": "latitude"}),
            "longitude": ("longitude", lon, {"units": "degrees_east", "long_name": "longitude"}),
        },
    )
    encoding = {"time": {"units": "hours since 1900-01-01", "calendar": "proleptic_gregorian", "dtype": "int64"}}
    for long, arr in written.items():
        chunks = (1,) + arr.shape[1:] if arr.shape[1] > 1 else (1,) + arr.shape[2:]
        encoding[long] = {"compressor": ERA5_COMPRESSOR, "chunks": chunks, "_FillValue": np.nan}
    path = out / "stores" / "era5_arco"
    shutil.rmtree(path, ignore_errors=True)
    ds.to_zarr(str(path), consolidated=True, encoding=encoding, mode="w")
    for long, arr in written.items():
        check_roundtrip(path, long, arr if arr.shape[1] > 1 else arr[:, 0])
    probes.write(out / "stores" / "era5_arco.probes.json")


# ARCO-ERA5 as it is published: an hourly axis allocated beyond the data, the three root
# attributes that give the real extent, and no chunk outside it (data.md §3).
PUBLISHED_AXIS = (np.datetime64("2024-12-29T00:00:00", "ns"), np.datetime64("2025-01-04T23:00:00", "ns"))
PUBLISHED_ATTRS = {
    "valid_time_start": "2024-12-30",
    "valid_time_stop": "2024-12-30",
    "valid_time_stop_era5t": "2024-12-31",
}
LAT_10 = np.arange(90.0, -90.1, -10.0, dtype=np.float32)  # 19 rows
LON_10 = np.arange(0.0, 360.0, 10.0, dtype=np.float32)  # 36 columns


def make_era5_published(out: Path):
    """`era5_arco_published`: the structure of the public store on a 10° grid.

    Hourly `time` (int64, hours since 1900-01-01) from 2024-12-29T00 to 2025-01-04T23; chunks
    one hour x all 37 levels x the globe; data only from `valid_time_start` (2024-12-30) through
    the end of `valid_time_stop_era5t` (2024-12-31T23). The other hours are NaN, which zarr does
    not write (`write_empty_chunks=False`): their chunks are absent, as in the public store.
    `2m_temperature` and `temperature` only (the rules need one 2-D and one 3-D variable).
    """
    times = np.arange(PUBLISHED_AXIS[0], PUBLISHED_AXIS[1] + np.timedelta64(1, "h"),
                      np.timedelta64(1, "h"))
    first = np.datetime64(PUBLISHED_ATTRS["valid_time_start"] + "T00:00:00", "ns")
    last = np.datetime64(PUBLISHED_ATTRS["valid_time_stop_era5t"] + "T23:00:00", "ns")
    published = (times >= first) & (times <= last)
    lat, lon = LAT_10, LON_10
    units = {"2t": "K", "t": "K"}
    data_vars, written = {}, {}
    probes = Probes()
    for var in ["2t", "t"]:
        levels = None if var in SURFACE else fields.ERA5_LEVELS
        slabs = [fields.truth(var, lev, times[published], lat, lon.astype(np.float64))
                 for lev in ([None] if levels is None else levels)]
        values = fields.quantize(var, np.stack(slabs, axis=1))
        arr = np.full((len(times),) + values.shape[1:], np.nan, dtype=np.float32)
        arr[published] = values
        long = LONG_NAMES[var]
        written[long] = arr
        probes.add(long, values, times[published], levels, lat, lon)
        attrs = {"units": units[var], "short_name": var, "long_name": long.replace("_", " ")}
        if levels is None:
            data_vars[long] = (("time", "latitude", "longitude"), arr[:, 0], attrs)
        else:
            data_vars[long] = (("time", "level", "latitude", "longitude"), arr, attrs)
    ds = xr.Dataset(
        data_vars,
        coords={
            "time": times,
            "level": ("level", fields.ERA5_LEVELS.astype(np.int64), {"units": "millibars", "long_name": "pressure_level"}),
            "latitude": ("latitude", lat, {"units": "degrees_north", "long_name": "latitude"}),
            "longitude": ("longitude", lon, {"units": "degrees_east", "long_name": "longitude"}),
        },
        attrs=dict(PUBLISHED_ATTRS),
    )
    encoding = {"time": {"units": "hours since 1900-01-01", "calendar": "proleptic_gregorian", "dtype": "int64"}}
    for long, arr in written.items():
        chunks = (1,) + arr.shape[1:] if arr.shape[1] > 1 else (1,) + arr.shape[2:]
        encoding[long] = {"compressor": ERA5_COMPRESSOR, "chunks": chunks, "_FillValue": np.nan,
                          "write_empty_chunks": False}
    path = out / "stores" / "era5_arco_published"
    shutil.rmtree(path, ignore_errors=True)
    ds.to_zarr(str(path), consolidated=True, encoding=encoding, mode="w")
    for long, arr in written.items():
        check_roundtrip(path, long, arr if arr.shape[1] > 1 else arr[:, 0])
        n_chunks = len([p for p in (path / long).iterdir() if not p.name.startswith(".")])
        if n_chunks != int(published.sum()):
            raise SystemExit(f"{path}/{long}: {n_chunks} chunks written, expected {published.sum()}")
    root = zarr.open_consolidated(str(path))
    if dict(root.attrs) != PUBLISHED_ATTRS:
        raise SystemExit(f"{path}: root attributes {dict(root.attrs)} != {PUBLISHED_ATTRS}")
    probes.write(out / "stores" / "era5_arco_published.probes.json")


# Days of year that carry values in the climatology miniature (the fixture's valid times fall on
# 2024-12-30 .. 2025-01-01, i.e. 365, 366 and 1); every other day of year is NaN.
CLIM_WINDOW = [362, 363, 364, 365, 366, 1, 2, 3]
LAT_CLIM = np.arange(-90.0, 90.1, 10.0)  # 19 rows, ascending, float64 as WB2 stores it
LON_CLIM = np.arange(0.0, 360.0, 10.0)  # 36 columns


def make_clim(out: Path):
    """WeatherBench2 hourly-climatology miniature: (hour, dayofyear, [level], longitude, latitude)."""
    hours = np.array([0, 6, 12, 18], dtype=np.int64)
    doys = np.arange(1, 367, dtype=np.int64)
    lat, lon = LAT_CLIM, LON_CLIM
    data_vars, written = {}, {}
    probes = Probes()
    for var in SURFACE + ATMOS:
        levels = None if var in SURFACE else PRESSURE_LEVELS
        nlev = 1 if levels is None else len(levels)
        arr = np.full((4, 366, nlev, len(lon), len(lat)), np.nan, dtype=np.float32)
        win = np.array(CLIM_WINDOW)
        for hi, h in enumerate(hours):
            for li, lev in enumerate([None] if levels is None else levels):
                c = fields.climatology(var, lev, win, np.full(len(win), h), lat, lon)  # [doy, lat, lon]
                arr[hi, win - 1, li] = fields.quantize(var, c.transpose(0, 2, 1))
        long = LONG_NAMES[var]
        written[long] = arr
        # probes: pick (hour, dayofyear) pairs inside the window and one outside
        for hi, d in [(0, 365), (1, 366), (3, 1), (2, 100)]:
            for li in ([0] if levels is None else [0, 7, 12]):
                for (j, i) in [(0, 0), (5, 3), (35, 18), (17, 9)]:
                    probes.items.append({
                        "variable": long, "hour": int(hours[hi]), "dayofyear": int(d),
                        "level_hpa": None if levels is None else int(levels[li]),
                        "lat_index": i, "lon_index": j, "lat": float(lat[i]), "lon": float(lon[j]),
                        "value": jvalue(arr[hi, d - 1, li, j, i]),
                    })
        if levels is None:
            data_vars[long] = (("hour", "dayofyear", "longitude", "latitude"), arr[:, :, 0])
        else:
            data_vars[long] = (("hour", "dayofyear", "level", "longitude", "latitude"), arr)
    ds = xr.Dataset(
        data_vars,
        coords={
            "hour": hours, "dayofyear": doys,
            "level": PRESSURE_LEVELS.astype(np.int64),
            "latitude": lat, "longitude": lon,
        },
    )
    encoding = {}
    for long, arr in written.items():
        chunks = (1, 61) + arr.shape[2:] if arr.shape[2] > 1 else (1, 61) + arr.shape[3:]
        encoding[long] = {"compressor": CLIM_COMPRESSOR, "chunks": chunks, "_FillValue": np.nan}
    path = out / "stores" / "clim_wb2"
    shutil.rmtree(path, ignore_errors=True)
    ds.to_zarr(str(path), consolidated=True, encoding=encoding, mode="w")
    for long, arr in written.items():
        check_roundtrip(path, long, arr if arr.shape[2] > 1 else arr[:, :, 0])
    probes.write(out / "stores" / "clim_wb2.probes.json")


def make_corrupt_chunks(out: Path):
    """Chunk files real codecs produced whose decoded size is not the declared chunk size.

    Each replaces `2t/0.0.0` of the store named in the file name (chunk [1, 36, 72] float32 =
    10368 bytes) in the Rust tests: `short` decodes to 40 bytes fewer, `long` to 40 bytes more.
    """
    d = out / "corrupt"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    n = len(LAT_720) * len(LON_5)
    rng = np.random.default_rng(7)
    short = (280 + rng.standard_normal(n - 10)).astype(np.float32)
    long = (280 + rng.standard_normal(n + 10)).astype(np.float32)
    codecs = {
        "miner_v2_blosc_zstd": BLOSC_ZSTD_BITSHUFFLE,
        "miner_v2_zstd": numcodecs.Zstd(level=3),
        "miner_v2_gzip": numcodecs.GZip(level=5),
        "miner_v2_blosc_lz4": BLOSC_LZ4_SHUFFLE,
    }
    for store, codec in codecs.items():
        (d / f"{store}.2t.0.0.0.short").write_bytes(codec.encode(short))
        (d / f"{store}.2t.0.0.0.long").write_bytes(codec.encode(long))
    (d / "miner_v2_none.2t.0.0.0.short").write_bytes(short.tobytes())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--v3-python", default=os.environ.get("WX_PYTHON_V3", "/work/pyenv-v3/bin/python"))
    ap.add_argument("--skip-v3", action="store_true")
    ap.add_argument("--only", choices=["era5_arco_published"],
                    help="write only this store (the others stay as they are)")
    args = ap.parse_args()
    out = args.outdir.resolve()
    (out / "stores").mkdir(parents=True, exist_ok=True)
    if args.only == "era5_arco_published":
        make_era5_published(out)
        return

    all_vars = SURFACE + ATMOS
    make_miner(out, "miner_v2_blosc_zstd", variables=all_vars, lat=LAT_720, lon=LON_5)
    make_miner(out, "miner_721_5deg", variables=["2t", "t"], lat=LAT_721, lon=LON_5)
    make_miner(out, "miner_2p5deg", variables=["2t", "msl"], lat=LAT_2P5, lon=LON_2P5)

    small = dict(variables=["2t", "t"], lat=LAT_720, lon=LON_5, leads=np.array([6, 12]),
                 nan_points=[(4, 5), (20, 60)])
    make_miner(out, "miner_v2_zstd", compressor=numcodecs.Zstd(level=3), **small)
    make_miner(out, "miner_v2_gzip", compressor=numcodecs.GZip(level=5), **small)
    make_miner(out, "miner_v2_none", compressor=None, **small)
    make_miner(out, "miner_v2_blosc_lz4", compressor=BLOSC_LZ4_SHUFFLE, **small)
    make_miner(out, "miner_v2_pressure_level", level_dim="pressure_level", **small)
    make_miner(out, "miner_v2_level_pa", level_dim="level",
               level_values=(PRESSURE_LEVELS * 100).astype(np.float64), **small)
    make_miner(out, "miner_v2_lat_asc_lon180", lat_flip=True, lon_180=True, **small)

    make_era5(out)
    make_era5_published(out)
    make_clim(out)
    make_corrupt_chunks(out)

    if not args.skip_v3:
        script = Path(__file__).resolve().parent / "make_store_v3.py"
        subprocess.run([args.v3_python, str(script), str(out)], check=True)


if __name__ == "__main__":
    main()
