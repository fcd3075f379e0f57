#!/usr/bin/env python3
"""Writes a benchmark-sized miner store (not committed): `make_bench_store.py OUTDIR [--grid 1.0] [--steps 8]`.

The miner layout of docs/data.md §1.1 (xarray 2026.2.0 + zarr-python 2.18.7, Zarr v2, consolidated,
9 variables, `plev` 13 levels, 720-style latitude without the south pole row, chunks one time step
× all levels × whole grid, Blosc(zstd, 3, bitshuffle)) on a `--grid` degree grid with `--steps`
6-hourly leads. Values are `fields.forecast` cast to float32 *without* the bit-rounding of the
committed fixtures, so chunks compress about as badly as real model output.

Writes OUTDIR/bench_miner (with manifest.json / manifest.sig signed by the fixture test key) and
OUTDIR/bench_miner.manifest-info.json. Deterministic.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numcodecs
import numpy as np
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fields  # noqa: E402
import make_manifest  # noqa: E402
from fields import ATMOS, PRESSURE_LEVELS, SURFACE  # noqa: E402

INIT = np.datetime64("2024-12-30T00:00:00", "ns")
TIME_UNITS = "hours since 2024-12-30T06:00:00"
COMPRESSOR = numcodecs.Blosc(cname="zstd", clevel=3, shuffle=numcodecs.Blosc.BITSHUFFLE)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--grid", type=float, default=1.0, help="grid spacing in degrees")
    ap.add_argument("--steps", type=int, default=8, help="number of 6-hourly leads")
    args = ap.parse_args()
    lat = np.arange(90.0, -90.0, -args.grid).astype(np.float32)
    lon = np.arange(0.0, 360.0, args.grid).astype(np.float32)
    leads = np.arange(1, args.steps + 1) * 6
    times = INIT + leads.astype("timedelta64[h]")
    data_vars = {}
    for var in SURFACE + ATMOS:
        levels = [None] if var in SURFACE else PRESSURE_LEVELS
        slabs = [fields.forecast(var, lev, INIT, times, lat.astype(np.float64), lon.astype(np.float64))
                 for lev in levels]
        arr = np.stack(slabs, axis=1).astype(np.float32)
        if var in SURFACE:
            data_vars[var] = (("time", "lat", "lon"), arr[:, 0])
        else:
            data_vars[var] = (("time", "plev", "lat", "lon"), arr)
    ds = xr.Dataset(data_vars, coords={
        "time": times, "lat": lat, "lon": lon, "plev": PRESSURE_LEVELS.astype(np.int32)})
    encoding = {"time": {"units": TIME_UNITS, "calendar": "standard", "dtype": "float64"}}
    for var in SURFACE + ATMOS:
        ds[var].encoding["coordinates"] = "time"
        chunks = (1, len(lat), len(lon)) if var in SURFACE else (1, len(PRESSURE_LEVELS), len(lat), len(lon))
        encoding[var] = {"compressor": COMPRESSOR, "chunks": chunks, "_FillValue": np.nan,
                         "dtype": "float32"}
    store = args.outdir / "bench_miner"
    shutil.rmtree(store, ignore_errors=True)
    args.outdir.mkdir(parents=True, exist_ok=True)
    ds.to_zarr(str(store), consolidated=True, encoding=encoding, mode="w")
    make_manifest.sign(store.name, make_manifest.DEFAULT_SEED_HEX, {}, store, store,
                       args.outdir / "bench_miner.manifest-info.json")
    decoded = sum(ds[v].nbytes for v in SURFACE + ATMOS)
    stored = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
    print(f"bench store: {decoded / 1e6:.1f} MB decoded, {stored / 1e6:.1f} MB stored")


if __name__ == "__main__":
    main()
