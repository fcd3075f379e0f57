"""Scoring one 0.25° field (721 × 1440, float32, forecast + truth + climatology, the ERA5
shape) through the Python package against the Rust kernel on the same arrays.

Run by `cargo xtask bench python`: `python bench_field.py KERNEL_TIMING_EXE`. The arrays are
written to a temporary directory for the Rust side (examples/kernel_timing.rs); both sides are
timed in alternating rounds (the machine's speed drifts), each round the median of REPS calls
after a warm-up; the figure is the median over rounds of the per-round ratio Python / Rust.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import wx_scoring as wx

NLAT, NLON, REPS, ROUNDS = 721, 1440, 30, 15


def fields() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2026)
    lats = 90.0 - np.arange(NLAT) * (180.0 / (NLAT - 1))
    lat = np.deg2rad(lats)[:, None]
    lon = np.deg2rad(np.arange(NLON) * 0.25)[None, :]
    clim = (288.0 - 40.0 * np.sin(lat) ** 2 + 3.0 * np.cos(3 * lon)).astype(np.float32)
    truth = (clim + 4.0 * np.sin(5 * lon + 3 * lat) + rng.standard_normal((NLAT, NLON))).astype(
        np.float32)
    forecast = (truth + 0.3 + 1.5 * rng.standard_normal((NLAT, NLON))).astype(np.float32)
    return forecast, truth, clim, lats


def python_round(f, o, c, lats) -> tuple[float, float, float]:
    for _ in range(3):
        m = wx.score_field(f, o, lats, climatology=c)
    seconds = []
    for _ in range(REPS):
        start = time.perf_counter()
        m = wx.score_field(f, o, lats, climatology=c)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), min(seconds), m.rmse


def call_overhead() -> float:
    """Seconds per call on a 721 × 8 field: the binding's fixed cost (argument checks, the
    latitude weights, the GIL release, the result object) with next to no kernel work."""
    rng = np.random.default_rng(1)
    o = (280 + rng.standard_normal((NLAT, 8))).astype(np.float32)
    f, c = o + np.float32(1), o - np.float32(1)
    lats = 90.0 - np.arange(NLAT) * (180.0 / (NLAT - 1))
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(200):
            wx.score_field(f, o, lats, climatology=c)
        best = min(best, (time.perf_counter() - start) / 200)
    return best


def main() -> int:
    exe = sys.argv[1]
    f, o, c, lats = fields()
    with tempfile.TemporaryDirectory() as tmp:
        for name, a in (("forecast", f), ("truth", o), ("climatology", c)):
            a.astype("<f4").tofile(Path(tmp) / f"{name}.f32")
        rust, python, ratios, rust_min, python_min = [], [], [], [], []
        for _ in range(ROUNDS):
            out = subprocess.run([exe, tmp, str(NLAT), str(NLON), str(REPS)], check=True,
                                 capture_output=True, text=True)
            r = json.loads(out.stdout)
            p, p_min, rmse = python_round(f, o, c, lats)
            assert rmse == r["rmse"], f"not the same computation: {rmse} vs {r['rmse']}"
            rust.append(r["median_s"])
            python.append(p)
            ratios.append(p / r["median_s"])
            rust_min.append(r["min_s"])
            python_min.append(p_min)
    mb = 3 * f.nbytes / 1e6
    print(f"one 0.25° field ({NLAT}×{NLON} f32: forecast, truth, climatology = {mb:.1f} MB), "
          f"{ROUNDS} alternating rounds × {REPS} calls")
    print(f"  Rust kernel (wx_scoring::score_field): median {statistics.median(rust) * 1e3:.3f} ms")
    print(f"  Python (wx_scoring.score_field):       median {statistics.median(python) * 1e3:.3f} ms")
    print(f"  ratio Python / Rust: median {statistics.median(ratios):.3f} "
          f"(rounds {min(ratios):.3f} … {max(ratios):.3f}); target ≤ 1.10")
    print(f"  ratio of the fastest calls: {min(python_min) / min(rust_min):.3f} "
          f"({min(python_min) * 1e3:.3f} vs {min(rust_min) * 1e3:.3f} ms)")
    print(f"  the binding's fixed cost per call (721 × 8 field): {call_overhead() * 1e6:.1f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
