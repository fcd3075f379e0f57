#!/usr/bin/env python3
"""The Python baseline of the read benchmark: `bench_read_xarray.py URL TOKEN`.

Opens the miner store at URL over HTTP the way the reference validator does (xarray
`open_zarr(consolidated=True)` on zarr-python 2.18 + fsspec's HTTP filesystem with the bearer
token header, dask arrays), loads every data variable (`Dataset.load()`, dask's threaded
scheduler), and prints one JSON line: seconds, decoded bytes, MB/s (10^6 bytes of decoded data per
second) and peak RSS (VmHWM). No hashing: the reference stack does not verify what it decodes.
"""

from __future__ import annotations

import json
import sys
import time


def vm_hwm_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    url, token = sys.argv[1], sys.argv[2]
    import dask  # noqa: F401  (imported before timing, like the validator process)
    import xarray as xr

    start = time.perf_counter()
    ds = xr.open_zarr(url, consolidated=True,
                      storage_options={"headers": {"Authorization": f"Bearer {token}"}})
    data_vars = list(ds.data_vars)
    ds = ds[data_vars].load()
    seconds = time.perf_counter() - start
    decoded = int(sum(ds[v].nbytes for v in data_vars))
    print(json.dumps({
        "tool": "xarray+zarr-python+dask",
        "variables": len(data_vars),
        "seconds": round(seconds, 4),
        "decoded_bytes": decoded,
        "mb_per_s": round(decoded / seconds / 1e6, 2),
        "peak_rss_bytes": vm_hwm_bytes(),
    }))


if __name__ == "__main__":
    main()
