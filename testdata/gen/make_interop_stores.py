#!/usr/bin/env python3
"""Writes the Zarr interop fixtures (codecs beyond wx's core set, CF packing) with real writers.

    /tmp/wxz-v2/bin/python testdata/gen/make_interop_stores.py testdata   # zarr-python 2.18 + xarray
    /tmp/wxz-v3/bin/python testdata/gen/make_interop_stores.py testdata   # zarr-python 3.x + xarray

Run it once with each interpreter (requirements.txt / requirements-v3.txt): the zarr version
decides which stores are written. Every store has the miner grid (36 × 72, 5°), two valid times
and the variables listed below; values are `fields.forecast` (see fields.py) with some NaN.

For each store, `stores/<name>.expected.json` holds what xarray decodes (`xr.open_zarr`, default
CF decoding), cast to float32 as wx keeps it: per variable the shape, the SHA-256 of the
little-endian float32 bytes (NaN canonicalised to 0x7fc00000), the NaN count and a few sample
values. The Rust tests (crates/wx-data/tests/stores_read.rs, crates/wx-zarr/tests/) compare wx's reads with these.

Stores (docs/data.md §1.5):

- v2 `interop_v2_zlib`: 2t, compressor numcodecs Zlib(level=5).
- v2 `interop_v2_lz4`: 2t, compressor numcodecs LZ4(acceleration=1).
- v2 `interop_v2_cf`: 2t int16 with scale_factor/add_offset/_FillValue, 10u int8 with
  scale_factor and missing_value, msl float32 with _FillValue -9999.0 (not NaN).
- v3 `interop_v3`: 2t sharded (shards (2, 36, 72) of inner chunks (1, 18, 36), inner codecs
  bytes + zstd + crc32c, index bytes + crc32c; one inner chunk all NaN, so not written), msl
  numcodecs.lz4, 10u numcodecs.zlib, 10v int16 CF-packed with _FillValue.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fields  # noqa: E402

assert xr.__version__ == "2026.2.0", xr.__version__

INIT = np.datetime64("2024-12-30T00:00:00", "ns")
TIMES = INIT + np.array([6, 12]).astype("timedelta64[h]")
LAT = np.arange(90.0, -90.0, -5.0, dtype=np.float32)
LON = np.arange(0.0, 360.0, 5.0, dtype=np.float32)
SAMPLES = [(0, 0, 0), (0, 3, 17), (1, 17, 35), (1, 35, 71), (0, 4, 5), (1, 20, 60)]


def values(var: str) -> np.ndarray:
    """(time, lat, lon) float32 forecast values with NaN at two points of the first time."""
    arr = fields.quantize(var, fields.forecast(var, None, INIT, TIMES, LAT, LON.astype(np.float64)))
    arr = np.asarray(arr, dtype=np.float32).copy()
    arr[0, 4, 5] = np.nan
    arr[1, 20, 60] = np.nan
    return arr


def dataset(arrays: dict[str, np.ndarray]) -> xr.Dataset:
    return xr.Dataset(
        {k: (("time", "lat", "lon"), v) for k, v in arrays.items()},
        coords={"time": TIMES, "lat": LAT, "lon": LON},
    )


def expected(path: Path, zarr_format: int) -> dict:
    """What xarray decodes, as float32, per data variable."""
    ds = xr.open_zarr(str(path), zarr_format=zarr_format, consolidated=None)
    out = {}
    for name, var in ds.data_vars.items():
        a = np.asarray(var.values).astype(np.float32)
        canon = np.where(np.isnan(a), np.float32(np.nan), a).astype("<f4")
        canon_bits = canon.view(np.uint32).copy()
        canon_bits[np.isnan(canon)] = 0x7FC00000
        out[name] = {
            "dims": list(var.dims),
            "shape": list(a.shape),
            "decoded_dtype": str(var.dtype),
            "sha256_f32le": hashlib.sha256(canon_bits.astype("<u4").tobytes()).hexdigest(),
            "nan_count": int(np.isnan(a).sum()),
            "samples": [
                {"index": list(ix), "value": "NaN" if np.isnan(a[ix]) else float(a[ix])}
                for ix in SAMPLES
            ],
        }
    return out


def finish(out: Path, name: str, zarr_format: int):
    path = out / "stores" / name
    doc = {"writer": f"xarray {xr.__version__} + zarr-python {zarr.__version__}",
           "variables": expected(path, zarr_format)}
    (out / "stores" / f"{name}.expected.json").write_text(json.dumps(doc, indent=1) + "\n")


def write(out: Path, name: str, ds: xr.Dataset, encoding: dict, zarr_format: int):
    path = out / "stores" / name
    shutil.rmtree(path, ignore_errors=True)
    kw = {"zarr_format": 3} if zarr_format == 3 else {}
    ds.to_zarr(str(path), consolidated=True, encoding=encoding, mode="w", **kw)
    finish(out, name, zarr_format)


def time_encoding() -> dict:
    return {"units": "hours since 2024-12-30T06:00:00", "calendar": "standard", "dtype": "float64"}


def cf_int16() -> dict:
    return {"dtype": "int16", "scale_factor": 0.01, "add_offset": 273.15, "_FillValue": -32767}


def v2(out: Path):
    import numcodecs

    two_t = values("2t")
    for name, compressor in [
        ("interop_v2_zlib", numcodecs.Zlib(level=5)),
        ("interop_v2_lz4", numcodecs.LZ4(acceleration=1)),
    ]:
        enc = {"time": time_encoding(),
               "2t": {"compressor": compressor, "chunks": (1, 36, 72), "_FillValue": np.nan,
                      "dtype": "float32"}}
        write(out, name, dataset({"2t": two_t}), enc, 2)
    u = values("10u")
    u[1, 0, :] = np.nan  # a row of missing values
    msl = values("msl")
    enc = {
        "time": time_encoding(),
        "2t": {**cf_int16(), "chunks": (1, 36, 72)},
        "10u": {"dtype": "int8", "scale_factor": 0.25, "missing_value": -128, "chunks": (1, 36, 72)},
        "msl": {"dtype": "float32", "_FillValue": -9999.0, "chunks": (1, 36, 72)},
    }
    write(out, "interop_v2_cf", dataset({"2t": two_t, "10u": u, "msl": msl}), enc, 2)


def v3(out: Path):
    from numcodecs.zarr3 import LZ4, Zlib
    from zarr.codecs import Crc32cCodec, ZstdCodec

    two_t = values("2t")
    two_t[1, :18, :36] = np.nan  # one whole inner chunk of the second shard: not written
    enc = {
        "time": time_encoding(),
        "2t": {"chunks": (1, 18, 36), "shards": (2, 36, 72), "_FillValue": np.nan, "dtype": "float32",
               "compressors": [ZstdCodec(level=3), Crc32cCodec()]},
        "msl": {"chunks": (1, 36, 72), "_FillValue": np.nan, "dtype": "float32",
                "compressors": [LZ4(acceleration=1)]},
        "10u": {"chunks": (1, 36, 72), "_FillValue": np.nan, "dtype": "float32",
                "compressors": [Zlib(level=5)]},
        "10v": {**cf_int16(), "scale_factor": 0.005, "add_offset": 0.0, "chunks": (1, 36, 72)},
    }
    arrays = {"2t": two_t, "msl": values("msl"), "10u": values("10u"), "10v": values("10v")}
    write(out, "interop_v3", dataset(arrays), enc, 3)
    shard_meta = json.loads((out / "stores" / "interop_v3" / "2t" / "zarr.json").read_text())
    assert shard_meta["codecs"][0]["name"] == "sharding_indexed", shard_meta["codecs"]


def main():
    out = Path(sys.argv[1]).resolve()
    (out / "stores").mkdir(parents=True, exist_ok=True)
    if zarr.__version__.startswith("2."):
        v2(out)
    elif zarr.__version__.startswith("3."):
        v3(out)
    else:
        raise SystemExit(f"zarr {zarr.__version__}: expected 2.x or 3.x")


if __name__ == "__main__":
    main()
