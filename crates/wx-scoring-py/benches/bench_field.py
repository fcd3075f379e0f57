"""Scoring one 0.25° field (721 × 1440, float32, forecast + truth + climatology, the ERA5
shape) through the Python package against the Rust kernel on the same arrays.

Run by `cargo xtask bench python`: `python bench_field.py KERNEL_TIMING_EXE`. Two Rust
baselines, each timed in alternating rounds with the Python calls (the machine's speed
drifts), each round the median of REPS calls after a warm-up:

- in process: wx-scoring's `score_field` called from Rust on the very numpy arrays Python
  scores (`_core._kernel_seconds`, same memory, same build) — the headline figure;
- a Rust program (examples/kernel_timing.rs) on a copy of the arrays written to a file.

The figure is the median over rounds of the per-round ratio Python / Rust.
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
from wx_scoring import _core

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


def call_overhead() -> tuple[float, float]:
    """Median seconds per call on a 721 × 8 field through Python and from Rust in process: the
    difference is the binding's fixed cost (argument checks, latitude weights, GIL release,
    result object)."""
    rng = np.random.default_rng(1)
    o = (280 + rng.standard_normal((NLAT, 8))).astype(np.float32)
    f, c = o + np.float32(1), o - np.float32(1)
    lats = 90.0 - np.arange(NLAT) * (180.0 / (NLAT - 1))
    python, rust = [], []
    for _ in range(5):
        python.append(python_round(f, o, c, lats)[0])
        rust.append(statistics.median(_core._kernel_seconds(f, o, c, lats, REPS)))
    return statistics.median(python), statistics.median(rust)


def main() -> int:
    exe = sys.argv[1]
    f, o, c, lats = fields()
    with tempfile.TemporaryDirectory() as tmp:
        for name, a in (("forecast", f), ("truth", o), ("climatology", c)):
            a.astype("<f4").tofile(Path(tmp) / f"{name}.f32")
        in_process, in_process_ratios = [], []
        rust, python, ratios, rust_min, python_min = [], [], [], [], []
        for _ in range(ROUNDS):
            k = statistics.median(_core._kernel_seconds(f, o, c, lats, REPS))
            p_in, _, _ = python_round(f, o, c, lats)
            in_process.append(k)
            in_process_ratios.append(p_in / k)
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
    print(f"  Rust kernel in process, same arrays:   median {statistics.median(in_process) * 1e3:.3f} ms")
    print(f"  ratio Python / Rust in process: median {statistics.median(in_process_ratios):.3f} "
          f"(rounds {min(in_process_ratios):.3f} … {max(in_process_ratios):.3f}); target ≤ 1.10")
    print(f"  Rust program (kernel_timing):          median {statistics.median(rust) * 1e3:.3f} ms")
    print(f"  Python (wx_scoring.score_field):       median {statistics.median(python) * 1e3:.3f} ms")
    print(f"  ratio Python / Rust program: median {statistics.median(ratios):.3f} "
          f"(rounds {min(ratios):.3f} … {max(ratios):.3f})")
    small = call_overhead()
    print(f"  the binding's fixed cost (721 × 8 field, Python − Rust in process): "
          f"{(small[0] - small[1]) * 1e6:.1f} µs per call")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
