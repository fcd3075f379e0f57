"""Generate the committed fixture fields for the wx-scoring cross-check.

Deterministic (fixed seeds). Each case is stored as
  tests/fixtures/<case>.json  header: dtype, shape [nlev, nlat, nlon], lats, lons, levels, field order
  tests/fixtures/<case>.bin   little-endian raw values, fields concatenated in header order
so that the Rust tests read them with std only.

Only needed to *regenerate* fixtures (`cargo xtask reference-values --regenerate-fixtures`).
"""

import json
import pathlib
import sys

import numpy as np

FIELDS = ["forecast", "truth", "climatology", "reference"]


def grid(nlat, nlon):
    lats = np.linspace(90.0, -90.0, nlat)
    lons = np.arange(nlon) * (360.0 / nlon)
    return lats, lons


def smooth(rng, nlev, lats, lons, offset, amp):
    la = np.deg2rad(lats)[None, :, None]
    lo = np.deg2rad(lons)[None, None, :]
    p1, p2 = rng.uniform(0, 6, 2)
    lev = np.arange(nlev)[:, None, None]
    base = np.sin(2 * la + p1 + 0.3 * lev) * np.cos(3 * lo + p2) + 0.5 * np.cos(la) * np.sin(lo + lev)
    return offset + amp * (base + 0.3 * rng.standard_normal((nlev, len(lats), len(lons))))


def sprinkle_nans(rng, a, frac):
    a = a.copy()
    a[rng.uniform(size=a.shape) < frac] = np.nan
    return a


def case(rng, nlat, nlon, nlev, offset, amp, nan_frac):
    lats, lons = grid(nlat, nlon)
    c = smooth(rng, nlev, lats, lons, offset, amp)
    o = c + smooth(rng, nlev, lats, lons, 0.0, 0.4 * amp)
    f = o + smooth(rng, nlev, lats, lons, 0.05 * amp, 0.25 * amp)
    r = o + smooth(rng, nlev, lats, lons, -0.03 * amp, 0.3 * amp)
    if nan_frac > 0:
        f = sprinkle_nans(rng, f, nan_frac)
        o = sprinkle_nans(rng, o, nan_frac / 2)
        c = sprinkle_nans(rng, c, nan_frac / 4)
        r = sprinkle_nans(rng, r, nan_frac / 4)
    return lats, lons, {"forecast": f, "truth": o, "climatology": c, "reference": r}


def write(out, name, dtype, lats, lons, levels, fields):
    np_dtype = {"f32": "<f4", "f64": "<f8"}[dtype]
    arrays = [np.asarray(fields[k]).astype(np_dtype) for k in FIELDS]
    shape = list(arrays[0].shape)
    header = {
        "dtype": dtype,
        "shape": shape,
        "lats": [float(x) for x in lats],
        "lons": [float(x) for x in lons],
        "levels": None if levels is None else [float(x) for x in levels],
        "fields": FIELDS,
    }
    (out / f"{name}.json").write_text(json.dumps(header, indent=1) + "\n")
    with open(out / f"{name}.bin", "wb") as fh:
        for a in arrays:
            fh.write(a.tobytes(order="C"))


def main(out):
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20260101)
    # 2-D cases (one level, no level coordinate)
    lats, lons, f = case(rng, 19, 36, 1, 280.0, 10.0, 0.03)
    write(out, "g19x36_f64", "f64", lats, lons, None, f)
    lats, lons, f = case(rng, 73, 144, 1, 101325.0, 800.0, 0.01)
    write(out, "g73x144_f32", "f32", lats, lons, None, f)
    # q at 50 hPa: ~2.6e-6 kg/kg with tiny anomalies (must be scored)
    lats, lons, f = case(rng, 19, 36, 1, 2.6e-6, 2e-8, 0.0)
    write(out, "q50_tiny_f64", "f64", lats, lons, None, f)
    # degenerate ACC: forecast = climatology + exactly representable constant
    lats, lons, f = case(rng, 19, 36, 1, 280.0, 10.0, 0.0)
    f["climatology"] = np.round(f["climatology"] * 4) / 4
    f["forecast"] = f["climatology"] + 1.25
    write(out, "degenerate_acc_f64", "f64", lats, lons, None, f)
    # multi-level, f32, NaNs, levels given in descending order on purpose
    lats, lons, f = case(rng, 37, 72, 4, 250.0, 8.0, 0.02)
    write(out, "levels_37x72_f32", "f32", lats, lons, [1000.0, 850.0, 500.0, 50.0], f)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures")
