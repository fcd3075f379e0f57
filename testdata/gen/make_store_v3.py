#!/usr/bin/env python3
"""Writes the Zarr v3 forecast stores with zarr-python 3.x + xarray (run in its own venv).

Called by make_stores.py (`python make_store_v3.py OUTDIR`); needs the packages of
requirements-v3.txt. Same fields, grid and times as the v2 miner stores (fields.py), variables
2t and t, leads 6 and 12 h:

- stores/miner_v3/: zarr-python's default v3 codecs (bytes + zstd), consolidated metadata inline
  in the root zarr.json.
- stores/miner_v3_blosc_unconsolidated/: Blosc zstd bitshuffle, no consolidated metadata (each
  array's zarr.json is read on its own).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import xarray as xr
import zarr
from zarr.codecs import BloscCodec

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fields  # noqa: E402

assert zarr.__version__.startswith("3."), zarr.__version__
assert xr.__version__ == "2026.2.0", xr.__version__

INIT = np.datetime64("2024-12-30T00:00:00", "ns")
LEADS_H = np.array([6, 12])
LAT = np.arange(90.0, -90.0, -5.0, dtype=np.float32)
LON = np.arange(0.0, 360.0, 5.0, dtype=np.float32)
POINTS = [(0, 0), (3, 17), (17, 35), (35, 71), (10, 71)]


def write(out: Path, name: str, compressors, consolidated: bool):
    times = INIT + LEADS_H.astype("timedelta64[h]")
    data_vars, written, probes = {}, {}, []
    for var in ["2t", "t"]:
        levels = None if var in fields.SURFACE else fields.PRESSURE_LEVELS
        slabs = [fields.forecast(var, lev, INIT, times, LAT, LON.astype(np.float64))
                 for lev in ([None] if levels is None else levels)]
        arr = fields.quantize(var, np.stack(slabs, axis=1))
        written[var] = arr
        for ti in range(len(times)):
            for li in ([None] if levels is None else [0, 7, 12]):
                for (i, j) in POINTS:
                    v = float(arr[ti, 0 if li is None else li, i, j])
                    probes.append({
                        "variable": var,
                        "valid_time": str(np.datetime_as_string(np.datetime64(times[ti], "s"), unit="s")) + "Z",
                        "level_hpa": None if li is None else int(levels[li]),
                        "lat_index": i, "lon_index": j, "lat": float(LAT[i]), "lon": float(LON[j]),
                        "value": "NaN" if np.isnan(v) else v,
                    })
        if levels is None:
            data_vars[var] = (("time", "lat", "lon"), arr[:, 0])
        else:
            data_vars[var] = (("time", "plev", "lat", "lon"), arr)
    ds = xr.Dataset(
        data_vars,
        coords={"time": times, "plev": fields.PRESSURE_LEVELS.astype(np.int32), "lat": LAT, "lon": LON},
    )
    encoding = {"time": {"units": "hours since 2024-12-30T06:00:00", "calendar": "standard", "dtype": "float64"}}
    for var in written:
        chunks = (1, len(LAT), len(LON)) if var in fields.SURFACE else (1, 13, len(LAT), len(LON))
        enc = {"chunks": chunks, "_FillValue": np.nan, "dtype": "float32"}
        if compressors is not None:
            enc["compressors"] = compressors
        encoding[var] = enc
    path = out / "stores" / name
    shutil.rmtree(path, ignore_errors=True)
    ds.to_zarr(str(path), zarr_format=3, consolidated=consolidated, encoding=encoding, mode="w")
    group = zarr.open_group(str(path), mode="r", zarr_format=3)
    for var, arr in written.items():
        got = group[var][...]
        expected = arr[:, 0] if var in fields.SURFACE else arr
        assert np.array_equal(got.view(np.uint32), expected.view(np.uint32)), f"{name}/{var}"
    lines = ",\n".join(json.dumps(p, separators=(",", ":")) for p in probes)
    (out / "stores" / f"{name}.probes.json").write_text('{"probes": [\n' + lines + "\n]}\n")


def main():
    out = Path(sys.argv[1]).resolve()
    (out / "stores").mkdir(parents=True, exist_ok=True)
    write(out, "miner_v3", None, consolidated=True)
    write(out, "miner_v3_blosc_unconsolidated",
          [BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")], consolidated=False)


if __name__ == "__main__":
    main()
