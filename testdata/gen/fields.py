"""Deterministic synthetic weather fields shared by the store generators.

Every value is a pure function of (variable, level, valid time, lat, lon) and fixed seeds, so the
miner forecast, the ERA5 "truth" and the climatology written by `make_stores.py` (and the Zarr v3
store written by `make_store_v3.py` in its own venv) agree with each other:

    truth    = climatology(var, level, dayofyear, hour, lat, lon) + transient(var, level, time)
    forecast = truth + error(var, level, lead)            # error of a known, lead-growing size

All fields are rounded to a fixed number of float32 mantissa bits (like the bit-rounding real
archives apply) so the committed fixtures stay small; rounding is applied before writing, so the
values read back are exactly the values written.
"""

from __future__ import annotations

import zlib

import numpy as np

G = 9.80665
PRESSURE_LEVELS = np.array([50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 850, 925, 1000])
ERA5_LEVELS = np.array(
    [1, 2, 3, 5, 7, 10, 20, 30, 50, 70, 100, 125, 150, 175, 200, 225, 250, 300, 350, 400, 450,
     500, 550, 600, 650, 700, 750, 775, 800, 825, 850, 875, 900, 925, 950, 975, 1000]
)
SURFACE = ["2t", "10u", "10v", "msl"]
ATMOS = ["t", "u", "v", "q", "z"]
LONG_NAMES = {
    "2t": "2m_temperature",
    "10u": "10m_u_component_of_wind",
    "10v": "10m_v_component_of_wind",
    "msl": "mean_sea_level_pressure",
    "t": "temperature",
    "u": "u_component_of_wind",
    "v": "v_component_of_wind",
    "q": "specific_humidity",
    "z": "geopotential",
}

# Forecast error scale per variable (at lead 48 h; grows linearly from half of it at lead 0).
ERROR_SCALE = {
    "2t": 1.5, "10u": 2.0, "10v": 2.0, "msl": 150.0,
    "t": 1.5, "u": 2.5, "v": 2.5, "q": 0.1, "z": 300.0,  # q: relative error
}
# Transient (weather) amplitude per variable; the anomaly signal ACC sees.
TRANSIENT_SCALE = {
    "2t": 4.0, "10u": 4.0, "10v": 4.0, "msl": 800.0,
    "t": 3.0, "u": 6.0, "v": 6.0, "q": 0.15, "z": 900.0,  # q: relative
}
MANTISSA_BITS = 9
# Winds cross zero, where relative rounding keeps useless bits: they are first rounded to 1/8 m/s.
ABSOLUTE_STEP = {"u": 2.0**-3, "v": 2.0**-3, "10u": 2.0**-3, "10v": 2.0**-3}
# Specific humidity spans five orders of magnitude; 7 mantissa bits (0.4 %) are plenty.
MANTISSA_BITS_BY_VAR = {"q": 7}


def bitround(a: np.ndarray, keep: int = MANTISSA_BITS) -> np.ndarray:
    """Rounds float32 values to `keep` mantissa bits (round half to even); NaN stays NaN."""
    a = np.asarray(a, dtype=np.float32)
    bits = a.view(np.uint32).copy()
    drop = 23 - keep
    half = np.uint32(1 << (drop - 1))
    lsb = (bits >> np.uint32(drop)) & np.uint32(1)
    bits = (bits + half - np.uint32(1) + lsb) & ~np.uint32((1 << drop) - 1)
    out = bits.view(np.float32)
    return np.where(np.isnan(a), np.float32(np.nan), out).astype(np.float32)


def quantize(var: str, a: np.ndarray) -> np.ndarray:
    """The precision every store carries: an absolute step for winds, then bit rounding."""
    a = np.asarray(a, dtype=np.float64)
    step = ABSOLUTE_STEP.get(var)
    if step is not None:
        a = np.round(a / step) * step
    return bitround(a.astype(np.float32), MANTISSA_BITS_BY_VAR.get(var, MANTISSA_BITS))


def _seed(*parts) -> int:
    return zlib.crc32("/".join(str(p) for p in parts).encode())


def _std_height_m(p_hpa):
    """Height of a pressure level in the ICAO standard atmosphere (m)."""
    p = np.asarray(p_hpa, dtype=np.float64)
    t0, lapse, r, p0 = 288.15, 0.0065, 287.053, 1013.25
    h_trop = (t0 / lapse) * (1.0 - (p / p0) ** (r * lapse / G))
    h_strat = 11000.0 + (r * 216.65 / G) * np.log(226.32 / p)
    return np.where(p >= 226.32, h_trop, h_strat)


def _std_temp(p_hpa):
    return np.maximum(288.15 - 0.0065 * _std_height_m(p_hpa), 216.65)


def _dayofyear_hour(times):
    t = np.asarray(times, dtype="datetime64[h]")
    year_start = t.astype("datetime64[Y]").astype("datetime64[D]")
    doy = (t.astype("datetime64[D]") - year_start).astype(np.int64) + 1
    hour = (t - t.astype("datetime64[D]")).astype(np.int64)
    return doy, hour


def climatology(var, level, doy, hour, lat, lon):
    """Smooth climatological mean, float64 [len(doy), len(lat), len(lon)] (doy/hour paired)."""
    doy = np.asarray(doy, dtype=np.float64)[:, None, None]
    hour = np.asarray(hour, dtype=np.float64)[:, None, None]
    phi = np.deg2rad(np.asarray(lat, dtype=np.float64))[None, :, None]
    lam = np.deg2rad(np.asarray(lon, dtype=np.float64))[None, None, :]
    season = np.cos(2 * np.pi * (doy - 15.0) / 365.25)  # +1 mid January
    local_hour = hour + np.rad2deg(lam) / 15.0
    diurnal = np.cos(2 * np.pi * (local_hour - 14.0) / 24.0)
    land = np.cos(2 * lam) * np.cos(phi)  # crude land/sea contrast
    zeros = 0.0 * phi * lam * doy
    if var == "2t":
        return (288.0 - 40.0 * np.sin(phi) ** 2 - 12.0 * np.sin(phi) * season
                + 3.0 * diurnal * np.cos(phi) + 2.0 * land + zeros)
    if var == "t":
        p = float(level)
        t_std = float(_std_temp(p))
        weight = min(1.0, p / 500.0)
        return (t_std + 8.0 - 30.0 * weight * np.sin(phi) ** 2
                - 8.0 * weight * np.sin(phi) * season + 0.5 * weight * diurnal + zeros)
    if var == "z":
        p = float(level)
        h = float(_std_height_m(p))
        return G * (h - (h / 5500.0) * 350.0 * np.sin(phi) ** 2
                    - 60.0 * np.sin(phi) * season + 20.0 * land) + zeros
    if var in ("u", "10u"):
        p = 1000.0 if var == "10u" else float(level)
        jet = 35.0 * np.exp(-((p - 250.0) / 250.0) ** 2) + 4.0
        scale = 0.35 if var == "10u" else 1.0
        return scale * (jet * np.exp(-((np.abs(np.rad2deg(phi)) - 40.0) / 15.0) ** 2)
                        - 5.0 * np.cos(phi) ** 4 + 3.0 * season * np.sin(phi)) + zeros
    if var in ("v", "10v"):
        p = 1000.0 if var == "10v" else float(level)
        scale = 0.35 if var == "10v" else 1.0
        return scale * (3.0 * np.sin(2 * phi) * np.cos(lam + 0.5) * (1.0 + p / 1000.0)) + zeros
    if var == "msl":
        return (101325.0 + 1200.0 * np.cos(3 * phi) - 800.0 * np.sin(phi) * season * land
                + 60.0 * diurnal + zeros)
    if var == "q":
        p = float(level)
        q_sfc = 0.017 * np.cos(phi) ** 2 + 0.0008 + 0.002 * np.sin(phi) * (-season)
        return q_sfc * (p / 1000.0) ** 3 + 2.5e-6 + zeros
    raise ValueError(var)


def _waves(seed, times_h, lat, lon, n=4):
    """Sum of `n` random travelling waves, unit amplitude scale, [len(times), lat, lon]."""
    rng = np.random.default_rng(seed)
    phi = np.deg2rad(np.asarray(lat, dtype=np.float64))[None, :, None]
    lam = np.deg2rad(np.asarray(lon, dtype=np.float64))[None, None, :]
    t = np.asarray(times_h, dtype=np.float64)[:, None, None]
    out = np.zeros((t.shape[0], phi.shape[1], lam.shape[2]))
    for _ in range(n):
        m = rng.integers(1, 7)
        k = rng.integers(1, 5)
        speed = rng.uniform(-0.08, 0.12)  # rad/h eastward phase speed
        a = rng.uniform(0.4, 1.0)
        p0, p1 = rng.uniform(0, 2 * np.pi, 2)
        out += a * np.cos(m * lam - speed * t + p0) * np.cos(k * phi + p1) * np.cos(phi) ** 0.5
    return out / np.sqrt(n / 2.0)


def _rel_scale(var, base):
    return base if var == "q" else 1.0


def truth(var, level, times, lat, lon):
    """ERA5-like truth (float64) at datetime64 `times`: climatology + transient weather."""
    doy, hour = _dayofyear_hour(times)
    base = climatology(var, level, doy, hour, lat, lon)
    hours = np.asarray(times, dtype="datetime64[h]").astype(np.int64)
    w = _waves(_seed("truth", var, level), hours, lat, lon)
    amp = TRANSIENT_SCALE[var] * _rel_scale(var, base)
    if var in ("t", "u", "v", "z"):
        amp = amp * (0.6 + 0.8 * float(level) / 1000.0 if var != "z" else 0.4 + 0.6 * (1000 - float(level)) / 950)
    return base + amp * w


def forecast(var, level, init, times, lat, lon):
    """Miner forecast (float64): truth + an error that grows with lead."""
    o = truth(var, level, times, lat, lon)
    lead_h = (np.asarray(times, dtype="datetime64[h]") - np.datetime64(init, "h")).astype(np.float64)
    growth = (0.5 + lead_h / 96.0)[:, None, None]
    hours = np.asarray(times, dtype="datetime64[h]").astype(np.int64)
    w = _waves(_seed("error", var, level), hours, lat, lon, n=3)
    rng = np.random.default_rng(_seed("noise", var, level))
    noise = rng.standard_normal(o.shape) * 0.15
    amp = ERROR_SCALE[var] * _rel_scale(var, o)
    return o + amp * growth * (w + noise)
