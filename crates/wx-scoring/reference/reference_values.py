"""Independent reference values for the wx-scoring cross-check.

Reads the committed fixtures (tests/fixtures/*.json + *.bin) and computes the
metrics of the wx scoring spec (docs/scoring.md §3) per level, plus the multi-level
aggregate, and writes tests/fixtures/reference_values.json.

Which library computes what:
  xskillscore (its definition matches the spec: cos-lat weights, pairwise NaN
  skipping with skipna=True, weighted centred Pearson):
    - bias, mse, rmse, mae                 xs.me / xs.mse / xs.rmse / xs.mae on (f, o)
    - acc (before the degeneracy floor)    xs.pearson_r on anomalies (f - c, o - c)
    - rmse_clim                            xs.rmse on (c, o)
    - pattern_correlation                  xs.pearson_r on (f, r)
    - clone_distance                       xs.mse on (f, r)
  plain numpy (the spec differs from anything xskillscore offers):
    - skill                                weighted bias correction on the (f, o, r) mask, then 1 - MSE/MSE_ref
    - skill_clim                           the same with r = climatology, on the (f, o, c) mask
    - acc degeneracy                       relative 1e-9 floor on the weighted std vs the weighted RMS of the raw field
    - coverage                             #finite(f & o) / #finite(o)
    - thickness weights and the multi-level aggregation
All inputs are cast to float64 first (the spec accumulates in f64).
"""

import json
import pathlib
import sys

import numpy as np
import xarray as xr
import xskillscore as xs

ACC_FLOOR = 1e-9


def load(path_json):
    h = json.loads(path_json.read_text())
    dt = {"f32": "<f4", "f64": "<f8"}[h["dtype"]]
    raw = np.fromfile(path_json.with_suffix(".bin"), dtype=dt).astype(np.float64)
    n = int(np.prod(h["shape"]))
    fields = {name: raw[i * n:(i + 1) * n].reshape(h["shape"]) for i, name in enumerate(h["fields"])}
    return h, fields


def da(a, lats, lons):
    return xr.DataArray(a, dims=("lat", "lon"), coords={"lat": lats, "lon": lons})


def thickness(levels):
    p = np.asarray(levels, dtype=float)
    order = np.argsort(p)
    s = p[order]
    d = np.empty_like(s)
    d[0] = (s[1] - s[0]) / 2
    d[-1] = (s[-1] - s[-2]) / 2
    d[1:-1] = (s[2:] - s[:-2]) / 2
    w = np.empty_like(s)
    w[order] = d / d.sum()
    return w


def numpy_skill(f, o, r, w):
    """docs/scoring.md §3: f_bc = f - weighted bias, all on the (f, o, r) mask."""
    m = np.isfinite(f) & np.isfinite(o) & np.isfinite(r)
    ww = np.broadcast_to(w, f.shape)[m]
    fm, om, rm = f[m], o[m], r[m]
    W = ww.sum()
    bias = (ww * (fm - om)).sum() / W
    mse_bc = (ww * (fm - bias - om) ** 2).sum() / W
    mse_ref = (ww * (rm - om) ** 2).sum() / W
    if mse_ref == 0:
        return 1.0 if mse_bc == 0 else None
    return 1.0 - mse_bc / mse_ref


def level_metrics(f, o, c, r, lats, lons):
    w2 = np.cos(np.deg2rad(lats))[:, None] * np.ones((1, len(lons)))
    wda = da(w2, lats, lons)
    F, O, C, R = (da(x, lats, lons) for x in (f, o, c, r))
    dims = ["lat", "lon"]
    out = {}
    out["mse"] = float(xs.mse(F, O, dim=dims, weights=wda, skipna=True))
    out["rmse"] = float(xs.rmse(F, O, dim=dims, weights=wda, skipna=True))
    out["mae"] = float(xs.mae(F, O, dim=dims, weights=wda, skipna=True))
    out["bias"] = float(xs.me(F, O, dim=dims, weights=wda, skipna=True))
    out["rmse_clim"] = float(xs.rmse(C, O, dim=dims, weights=wda, skipna=True))
    out["mse_clim"] = float(xs.mse(C, O, dim=dims, weights=wda, skipna=True))
    out["pattern_correlation"] = float(xs.pearson_r(F, R, dim=dims, weights=wda, skipna=True))
    out["clone_distance"] = float(xs.mse(F, R, dim=dims, weights=wda, skipna=True))
    # ACC: xskillscore's weighted centred Pearson on anomalies, with the spec's
    # relative degeneracy floor computed in numpy on the same (f, o, c) mask.
    acc = float(xs.pearson_r(F - C, O - C, dim=dims, weights=wda, skipna=True))
    m = np.isfinite(f) & np.isfinite(o) & np.isfinite(c)
    ww = w2[m]
    a, b = (f - c)[m], (o - c)[m]
    W = ww.sum()

    def wstd(x):
        mu = (ww * x).sum() / W
        return np.sqrt((ww * (x - mu) ** 2).sum() / W)

    def wrms(x):
        return np.sqrt((ww * x * x).sum() / W)

    degenerate = wstd(a) <= ACC_FLOOR * wrms(f[m]) or wstd(b) <= ACC_FLOOR * wrms(o[m])
    out["acc"] = None if degenerate else float(np.clip(acc, -1, 1))
    # numpy-only metrics
    mfo = np.isfinite(f) & np.isfinite(o)
    out["coverage"] = float(mfo.sum() / np.isfinite(o).sum())
    out["skill"] = numpy_skill(f, o, r, w2)
    out["skill_clim"] = numpy_skill(f, o, c, w2)
    return out


def aggregate(per_level, weights):
    agg = {}
    for key in ["mse", "acc", "skill_clim", "mse_clim", "bias", "mae"]:
        vals = [lv[key] for lv in per_level]
        agg[key] = None if any(v is None for v in vals) else float(np.dot(weights, vals))
    agg["rmse"] = None if agg["mse"] is None else float(np.sqrt(agg["mse"]))
    agg["rmse_clim"] = None if agg["mse_clim"] is None else float(np.sqrt(agg["mse_clim"]))
    agg["coverage"] = float(min(lv["coverage"] for lv in per_level))
    return agg


def main(fixtures):
    fixtures = pathlib.Path(fixtures)
    result = {
        "generator": "crates/wx-scoring/reference/reference_values.py",
        "versions": {"numpy": np.__version__, "xarray": xr.__version__, "xskillscore": xs.__version__},
        "cases": {},
    }
    for hp in sorted(fixtures.glob("*.json")):
        if hp.name == "reference_values.json":
            continue
        h, fields = load(hp)
        lats, lons = np.array(h["lats"]), np.array(h["lons"])
        per = [
            level_metrics(*(fields[k][lv] for k in ("forecast", "truth", "climatology", "reference")), lats, lons)
            for lv in range(h["shape"][0])
        ]
        entry = {"levels": per}
        if h["levels"] is not None:
            w = thickness(h["levels"])
            entry["thickness_weights"] = [float(x) for x in w]
            entry["aggregate"] = aggregate(per, w)
        result["cases"][hp.stem] = entry
    (fixtures / "reference_values.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures")
