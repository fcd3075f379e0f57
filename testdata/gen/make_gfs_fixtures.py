#!/usr/bin/env python3
"""Generate the GFS / GRIB2 fixtures of wx-grib and wx-data (crates/wx-grib, crates/wx-data/src/gfs).

Usage:
    python testdata/gen/make_gfs_fixtures.py <outdir> [--pygrib-sample PATH | --pygrib-sdist PATH]

<outdir> is normally `testdata/gfs`. Everything is deterministic (fixed seeds, fixed input file).

What is written:

* ``real/gfs.20110110/12/atmos/gfs.t12z.pgrb2.2p5.f120`` (+ ``.idx``): REAL NCEP GFS messages
  (2.5 degree, template 5.3, 2011-01-10 12Z, f120) cut byte-for-byte out of the pygrib 2.1.8
  sample ``gfs.t12z.pgrbf120.2p5deg.grib2``: HGT/TMP/UGRD+VGRD at the 13 scored levels, TMP 2 m,
  UGRD+VGRD 10 m, PRMSL, plus RH 500 mb (a message wx must skip) and the UGRD+VGRD 1829 m
  above-sea-level message whose second field uses bitmap indicator 254 ("bitmap defined
  earlier"). UGRD and VGRD share one GRIB message in this old file (multi-field messages). The
  `.idx` is written in the NOAA/wgrib2 inventory format, sub-fields numbered ``n.1``/``n.2`` at
  the same byte offset, as wgrib2 does.
* ``synthetic/gfs.20250101/{00,12}/atmos/gfs.tHHz.pgrb2.5p00.fFFF`` (+ ``.idx``): a GFS-like tree
  on a 5 degree grid (37 x 72, north to south, lon 0..355) written by ecCodes, one field per
  message as in current GFS, complex packing with spatial differencing (5.3), every variable wx
  reads (incl. SPFH, which the 2011 file lacks) and some it must skip. Cycles 2025-01-01 00Z
  (f000, f012) and 12Z (f000), so a Day1 analysis (f000 of 12Z) and reference (00Z f012) exist.
* ``packing/*.grib2``: one GFS-like TMP 2 m field in each packing wx must decode: 5.0 simple,
  5.2 complex, 5.3 complex + spatial differencing, 5.40 JPEG 2000 (0.25 degree spacing on a
  regional grid), 5.41 PNG (0.5 degree, ecCodes' PNG packer refuses large grids) and a full
  0.25 degree 721 x 1440 global field in 5.3 (the real GFS grid and packing), with one missing
  point in a bitmap in some of them.
* ``expected.json``: what ecCodes (the independent decoder) reads from every field of every file
  above: identification, grid, packing parameters, min/max/mean over the non-missing points,
  the number of missing points, and probe points (j, i, value or null for missing).

The pygrib sample is taken from the PyPI sdist of pygrib 2.1.8. Fetch it with:

    python3 -m venv /tmp/v && /tmp/v/bin/pip install 'setuptools>=77' cython
    /tmp/v/bin/pip download --no-deps --no-build-isolation --no-binary :all: pygrib==2.1.8
    # then pass --pygrib-sdist pygrib-2.1.8.tar.gz

Requirements: see testdata/gen/requirements.txt (eccodes 2.50.0 from PyPI, numpy).
"""

import argparse
import hashlib
import json
import os
import shutil
import struct
import sys
import tarfile

import eccodes
import numpy as np

PYGRIB_SAMPLE_NAME = "gfs.t12z.pgrbf120.2p5deg.grib2"
PYGRIB_SAMPLE_SHA256 = "ad2cb95d7314a71a7d55bb834f1f628972f6170ce70b4489fac1c0507cfdf607"
PYGRIB_SDIST_MEMBER = "pygrib-2.1.8/sampledata/" + PYGRIB_SAMPLE_NAME

LEVELS_HPA = [50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 850, 925, 1000]

# (discipline, category, number) -> wgrib2 name, as in NOAA .idx files
WGRIB2_NAMES = {
    (0, 0, 0): "TMP",
    (0, 2, 2): "UGRD",
    (0, 2, 3): "VGRD",
    (0, 3, 1): "PRMSL",
    (0, 1, 0): "SPFH",
    (0, 1, 1): "RH",
    (0, 3, 5): "HGT",
    (0, 3, 0): "PRES",
}


# ---------------------------------------------------------------------------------------------
# helpers


def read_sample(args):
    if args.pygrib_sample:
        data = open(args.pygrib_sample, "rb").read()
    elif args.pygrib_sdist:
        with tarfile.open(args.pygrib_sdist) as tar:
            data = tar.extractfile(PYGRIB_SDIST_MEMBER).read()
    else:
        sys.exit(
            "need --pygrib-sample or --pygrib-sdist (see the module docstring for how to fetch "
            "the pygrib 2.1.8 sdist from PyPI)"
        )
    digest = hashlib.sha256(data).hexdigest()
    if digest != PYGRIB_SAMPLE_SHA256:
        sys.exit(f"{PYGRIB_SAMPLE_NAME}: sha256 {digest}, expected {PYGRIB_SAMPLE_SHA256}")
    return data


def split_messages(data):
    """Byte ranges of the GRIB messages of a file, from the section-0 total lengths."""
    out = []
    off = 0
    while off < len(data):
        if data[off : off + 4] != b"GRIB":
            raise ValueError(f"no GRIB message at byte {off}")
        total = struct.unpack(">Q", data[off + 8 : off + 16])[0]
        out.append((off, total))
        off += total
    return out


def fields_of(data):
    """Every field (sub-message) of a GRIB2 byte string, as ecCodes handles (multi-field on)."""
    eccodes.codes_grib_multi_support_on()
    handles = []
    tmp = data
    # ecCodes reads from files; write to a temp file next to nothing else.
    path = "/tmp/_wx_gfs_fixture_read.grib2"
    with open(path, "wb") as f:
        f.write(tmp)
    with open(path, "rb") as f:
        while True:
            h = eccodes.codes_grib_new_from_file(f)
            if h is None:
                break
            handles.append(h)
    os.remove(path)
    eccodes.codes_grib_multi_support_off()
    return handles


def level_text(h):
    tol = eccodes.codes_get(h, "typeOfFirstFixedSurface", ktype=int)
    if tol == 100:  # isobaric, Pa
        pa = eccodes.codes_get(h, "level", ktype=float) * 100.0
        if eccodes.codes_get(h, "typeOfLevel") == "isobaricInPa":
            pa = eccodes.codes_get(h, "level", ktype=float)
        return f"{int(round(pa / 100.0))} mb"
    if tol == 103:
        return f"{eccodes.codes_get(h, 'level')} m above ground"
    if tol == 102:
        return f"{eccodes.codes_get(h, 'level')} m above mean sea level"
    if tol == 101:
        return "mean sea level"
    if tol == 1:
        return "surface"
    return f"level type {tol}"


def fcst_text(h):
    step = eccodes.codes_get(h, "forecastTime")
    return "anl" if step == 0 else f"{step} hour fcst"


def wgrib2_name(h):
    key = (
        eccodes.codes_get(h, "discipline"),
        eccodes.codes_get(h, "parameterCategory"),
        eccodes.codes_get(h, "parameterNumber"),
    )
    return WGRIB2_NAMES.get(key, "var%d_%d_%d" % key)


def write_idx(grib_bytes, idx_path):
    """A NOAA/wgrib2-style inventory: n:offset:d=YYYYMMDDHH:VAR:LEVEL:FCST: (n.k for sub-fields)."""
    lines = []
    for n, (off, total) in enumerate(split_messages(grib_bytes), start=1):
        fields = fields_of(grib_bytes[off : off + total])
        for k, h in enumerate(fields, start=1):
            number = f"{n}" if len(fields) == 1 else f"{n}.{k}"
            date = "%08d%02d" % (
                eccodes.codes_get(h, "dataDate"),
                eccodes.codes_get(h, "dataTime") // 100,
            )
            lines.append(f"{number}:{off}:d={date}:{wgrib2_name(h)}:{level_text(h)}:{fcst_text(h)}:")
            eccodes.codes_release(h)
    with open(idx_path, "w") as f:
        f.write("\n".join(lines) + "\n")


def describe_field(h, n_probes, rng):
    """What ecCodes reads from one field: the oracle the Rust tests compare against."""
    ni = eccodes.codes_get(h, "Ni")
    nj = eccodes.codes_get(h, "Nj")
    values = eccodes.codes_get_double_array(h, "values")
    missing_value = eccodes.codes_get(h, "missingValue", ktype=float)
    bitmap = eccodes.codes_get(h, "bitmapPresent")
    values = values.astype(np.float64)
    if bitmap:
        is_missing = values == missing_value
    else:
        is_missing = np.zeros(values.shape, dtype=bool)
    valid = values[~is_missing]
    grid = values.reshape(nj, ni)
    miss = is_missing.reshape(nj, ni)
    probes = []
    # corners first, then random points, then every missing point (bounded)
    points = [(0, 0), (0, ni - 1), (nj - 1, 0), (nj - 1, ni - 1)]
    points += [(int(rng.integers(nj)), int(rng.integers(ni))) for _ in range(n_probes - 4)]
    points += [tuple(int(x) for x in p) for p in np.argwhere(miss)[:4]]
    for j, i in points:
        probes.append([j, i, None if miss[j, i] else float(grid[j, i])])

    def get(key, ktype=None):
        try:
            return eccodes.codes_get(h, key, ktype=ktype) if ktype else eccodes.codes_get(h, key)
        except eccodes.KeyValueNotFoundError:
            return None

    return {
        "short_name": get("shortName"),
        "wgrib2_name": wgrib2_name(h),
        "level": level_text(h),
        "discipline": get("discipline"),
        "parameter_category": get("parameterCategory"),
        "parameter_number": get("parameterNumber"),
        "reference_time": "%04d-%02d-%02dT%02d:%02d:00Z"
        % (get("year"), get("month"), get("day"), get("hour"), get("minute")),
        "forecast_hours": get("forecastTime"),
        "ni": ni,
        "nj": nj,
        "lat_first": get("latitudeOfFirstGridPointInDegrees", float),
        "lon_first": get("longitudeOfFirstGridPointInDegrees", float),
        "lat_last": get("latitudeOfLastGridPointInDegrees", float),
        "lon_last": get("longitudeOfLastGridPointInDegrees", float),
        "di": get("iDirectionIncrementInDegrees", float),
        "dj": get("jDirectionIncrementInDegrees", float),
        "scanning_mode": get("scanningMode"),
        "packing": get("packingType"),
        "data_template": get("dataRepresentationTemplateNumber"),
        "bits_per_value": get("bitsPerValue"),
        "binary_scale_factor": get("binaryScaleFactor"),
        "decimal_scale_factor": get("decimalScaleFactor"),
        "reference_value": get("referenceValue", float),
        "bitmap": bool(bitmap),
        "missing_count": int(is_missing.sum()),
        "min": float(valid.min()),
        "max": float(valid.max()),
        "mean": float(valid.mean()),
        "probes": probes,
    }


def describe_file(path, rel, n_probes, seed):
    data = open(path, "rb").read()
    rng = np.random.default_rng(seed)
    out = []
    for n, (off, total) in enumerate(split_messages(data), start=1):
        fields = fields_of(data[off : off + total])
        for k, h in enumerate(fields, start=1):
            d = describe_field(h, n_probes, rng)
            d.update({"file": rel, "message": n, "field": k, "offset": off, "length": total,
                      "fields_in_message": len(fields)})
            out.append(d)
            eccodes.codes_release(h)
    return out


# ---------------------------------------------------------------------------------------------
# 1. real messages from the pygrib sample


def wanted_real(h):
    """Messages kept from the 2011 GFS file (judged on the first field of each message)."""
    name = wgrib2_name(h)
    lev = level_text(h)
    if name in ("HGT", "TMP", "UGRD") and lev in {f"{p} mb" for p in LEVELS_HPA}:
        return True
    if (name, lev) in {("TMP", "2 m above ground"), ("UGRD", "10 m above ground"),
                       ("PRMSL", "mean sea level"), ("RH", "500 mb")}:
        return True
    # the UGRD+VGRD message whose VGRD field re-uses the UGRD bitmap (indicator 254)
    return name == "UGRD" and lev == "1829 m above mean sea level"


def make_real(sample, outdir):
    rel_dir = "real/gfs.20110110/12/atmos"
    os.makedirs(os.path.join(outdir, rel_dir), exist_ok=True)
    kept = []
    for off, total in split_messages(sample):
        msg = sample[off : off + total]
        hs = fields_of(msg)
        if wanted_real(hs[0]):
            kept.append(msg)
        for h in hs:
            eccodes.codes_release(h)
    blob = b"".join(kept)
    rel = f"{rel_dir}/gfs.t12z.pgrb2.2p5.f120"
    path = os.path.join(outdir, rel)
    with open(path, "wb") as f:
        f.write(blob)
    write_idx(blob, path + ".idx")
    return describe_file(path, rel, n_probes=20, seed=1)


# ---------------------------------------------------------------------------------------------
# 2. a synthetic GFS-like tree written by ecCodes


def new_field(grid, date, hour, step, key, level, values, packing, decimal_scale):
    """A GRIB2 message from the ecCodes GRIB2 sample with NCEP identification."""
    (lat0, lon0, dj, di, nj, ni) = grid
    h = eccodes.codes_grib_new_from_samples("GRIB2")
    eccodes.codes_set(h, "centre", 7)  # NCEP
    eccodes.codes_set(h, "subCentre", 0)
    eccodes.codes_set(h, "tablesVersion", 2)
    eccodes.codes_set(h, "significanceOfReferenceTime", 1)
    eccodes.codes_set(h, "dataDate", date)
    eccodes.codes_set(h, "dataTime", hour * 100)
    eccodes.codes_set(h, "typeOfProcessedData", 1)
    eccodes.codes_set(h, "gridType", "regular_ll")
    eccodes.codes_set(h, "Ni", ni)
    eccodes.codes_set(h, "Nj", nj)
    eccodes.codes_set(h, "latitudeOfFirstGridPointInDegrees", lat0)
    eccodes.codes_set(h, "longitudeOfFirstGridPointInDegrees", lon0)
    eccodes.codes_set(h, "latitudeOfLastGridPointInDegrees", lat0 - dj * (nj - 1))
    eccodes.codes_set(h, "longitudeOfLastGridPointInDegrees", lon0 + di * (ni - 1))
    eccodes.codes_set(h, "iDirectionIncrementInDegrees", di)
    eccodes.codes_set(h, "jDirectionIncrementInDegrees", dj)
    eccodes.codes_set(h, "scanningMode", 0)
    eccodes.codes_set(h, "productDefinitionTemplateNumber", 0)
    disc, cat, num = key
    eccodes.codes_set(h, "discipline", disc)
    eccodes.codes_set(h, "parameterCategory", cat)
    eccodes.codes_set(h, "parameterNumber", num)
    eccodes.codes_set(h, "typeOfGeneratingProcess", 0 if step == 0 else 2)
    eccodes.codes_set(h, "indicatorOfUnitOfTimeRange", 1)  # hours
    eccodes.codes_set(h, "forecastTime", step)
    kind, lev = level
    if kind == "isobaric":
        eccodes.codes_set(h, "typeOfFirstFixedSurface", 100)
        eccodes.codes_set(h, "scaleFactorOfFirstFixedSurface", 0)
        eccodes.codes_set(h, "scaledValueOfFirstFixedSurface", lev * 100)
    elif kind == "above_ground":
        eccodes.codes_set(h, "typeOfFirstFixedSurface", 103)
        eccodes.codes_set(h, "scaleFactorOfFirstFixedSurface", 0)
        eccodes.codes_set(h, "scaledValueOfFirstFixedSurface", lev)
    elif kind == "msl":
        eccodes.codes_set(h, "typeOfFirstFixedSurface", 101)
        eccodes.codes_set_missing(h, "scaleFactorOfFirstFixedSurface")
        eccodes.codes_set_missing(h, "scaledValueOfFirstFixedSurface")
    eccodes.codes_set(h, "typeOfSecondFixedSurface", 255)
    # pack simply first (ecCodes derives bitsPerValue from the decimal scale only there), then
    # let ecCodes repack into the wanted template
    eccodes.codes_set(h, "packingType", "grid_simple")
    eccodes.codes_set(h, "decimalScaleFactor", decimal_scale)
    eccodes.codes_set(h, "bitsPerValue", 0)  # let ecCodes choose for the decimal scale
    if np.isnan(values).any():
        eccodes.codes_set(h, "bitmapPresent", 1)
        eccodes.codes_set(h, "missingValue", 9999.0)
        values = np.where(np.isnan(values), 9999.0, values)
    eccodes.codes_set_values(h, values.ravel().astype(np.float64))
    if packing != "grid_simple":
        eccodes.codes_set(h, "packingType", packing)
    msg = eccodes.codes_get_message(h)
    eccodes.codes_release(h)
    return msg


def smooth_field(rng, lats, lons, base, amp, phase, noise=0.02):
    la = np.radians(lats)[:, None]
    lo = np.radians(lons)[None, :]
    f = base + amp * (np.cos(la) ** 2 * np.cos(2 * lo + phase) + 0.5 * np.sin(3 * la) * np.sin(lo))
    return f + rng.normal(0.0, amp * noise, size=f.shape)


# (wgrib2 name, key, base, amplitude, decimal scale) — GFS-like magnitudes and NCEP-like scales
PRESSURE_VARS = [
    ("HGT", (0, 3, 5), lambda p: 16000.0 * np.log(1000.0 / p) + 110.0, 120.0, 1),
    ("TMP", (0, 0, 0), lambda p: 288.0 - 70.0 * np.log(1000.0 / p) ** 0.5, 15.0, 2),
    ("UGRD", (0, 2, 2), lambda p: 8.0, 15.0, 2),
    ("VGRD", (0, 2, 3), lambda p: 0.0, 10.0, 2),
    ("SPFH", (0, 1, 0), lambda p: 0.01 * (p / 1000.0) ** 3 + 2e-6, 0.004 * (1.0), 7),
]


def synthetic_messages(date, hour, step, seed):
    rng = np.random.default_rng(seed)
    nj, ni = 37, 72
    grid = (90.0, 0.0, 5.0, 5.0, nj, ni)
    lats = 90.0 - 5.0 * np.arange(nj)
    lons = 5.0 * np.arange(ni)
    msgs = []
    phase = 0.1 * step + 0.05 * hour

    def add(key, level, values, dec):
        msgs.append(new_field(grid, date, hour, step, key, level, values, "grid_complex_spatial_differencing", dec))

    add((0, 3, 1), ("msl", 0), smooth_field(rng, lats, lons, 101325.0, 1500.0, phase), 0)
    for name, key, base, amp, dec in PRESSURE_VARS:
        for p in LEVELS_HPA:
            scale = (p / 1000.0) ** 3 if name == "SPFH" else 1.0
            f = smooth_field(rng, lats, lons, base(p), amp * scale, phase + p / 300.0)
            if name == "SPFH":
                f = np.maximum(f, 1e-7)
            add(key, ("isobaric", p), f, dec)
        if name == "TMP":
            # an extra level wx must skip
            add(key, ("isobaric", 975), smooth_field(rng, lats, lons, 286.0, 15.0, phase), 2)
    add((0, 1, 1), ("isobaric", 500), smooth_field(rng, lats, lons, 50.0, 30.0, phase), 0)  # RH
    t2 = smooth_field(rng, lats, lons, 287.0, 20.0, phase)
    t2[5, 7] = np.nan  # one missing point: exercises the bitmap
    add((0, 0, 0), ("above_ground", 2), t2, 2)
    add((0, 2, 2), ("above_ground", 10), smooth_field(rng, lats, lons, 2.0, 8.0, phase), 2)
    add((0, 2, 3), ("above_ground", 10), smooth_field(rng, lats, lons, -1.0, 8.0, phase + 1), 2)
    add((0, 0, 0), ("above_ground", 80), smooth_field(rng, lats, lons, 286.0, 20.0, phase), 2)
    return b"".join(msgs)


def make_synthetic(outdir):
    out = []
    for (hour, step, seed) in [(0, 0, 10), (0, 12, 11), (12, 0, 12)]:
        rel_dir = f"synthetic/gfs.20250101/{hour:02d}/atmos"
        os.makedirs(os.path.join(outdir, rel_dir), exist_ok=True)
        rel = f"{rel_dir}/gfs.t{hour:02d}z.pgrb2.5p00.f{step:03d}"
        path = os.path.join(outdir, rel)
        blob = synthetic_messages(20250101, hour, step, seed)
        with open(path, "wb") as f:
            f.write(blob)
        write_idx(blob, path + ".idx")
        out += describe_file(path, rel, n_probes=8, seed=seed)
    return out


# ---------------------------------------------------------------------------------------------
# 3. one field in each packing


def make_packings(outdir):
    os.makedirs(os.path.join(outdir, "packing"), exist_ok=True)
    rng = np.random.default_rng(42)
    cases = [
        # (file, packing, grid (lat0, lon0, dj, di, nj, ni), missing point)
        ("tmp2m_0p25_regional_simple.grib2", "grid_simple", (60.0, 200.0, 0.25, 0.25, 81, 121), (3, 4)),
        ("tmp2m_0p25_regional_complex.grib2", "grid_complex", (60.0, 200.0, 0.25, 0.25, 81, 121), None),
        ("tmp2m_0p25_regional_complex_spatial.grib2", "grid_complex_spatial_differencing",
         (60.0, 200.0, 0.25, 0.25, 81, 121), (10, 20)),
        ("tmp2m_0p25_regional_jpeg.grib2", "grid_jpeg", (60.0, 200.0, 0.25, 0.25, 81, 121), (0, 0)),
        ("tmp2m_0p50_regional_png.grib2", "grid_png", (60.0, 200.0, 0.5, 0.5, 41, 61), (7, 7)),
        ("tmp2m_0p25_global_complex_spatial.grib2", "grid_complex_spatial_differencing",
         (90.0, 0.0, 0.25, 0.25, 721, 1440), (360, 720)),
    ]
    out = []
    for name, packing, grid, missing in cases:
        lat0, lon0, dj, di, nj, ni = grid
        lats = lat0 - dj * np.arange(nj)
        lons = lon0 + di * np.arange(ni)
        # little noise on the big global grid keeps the committed file small
        f = smooth_field(rng, lats, lons, 280.0, 25.0, 0.3, noise=0.0001 if nj > 700 else 0.02)
        if missing is not None:
            f[missing] = np.nan
        msg = new_field(grid, 20250101, 0, 0, (0, 0, 0), ("above_ground", 2), f, packing, 2)
        rel = f"packing/{name}"
        with open(os.path.join(outdir, rel), "wb") as fh:
            fh.write(msg)
        out += describe_file(os.path.join(outdir, rel), rel, n_probes=20, seed=7)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--pygrib-sample", help="path to gfs.t12z.pgrbf120.2p5deg.grib2")
    ap.add_argument("--pygrib-sdist", help="path to pygrib-2.1.8.tar.gz (PyPI sdist)")
    args = ap.parse_args()
    sample = read_sample(args)
    outdir = args.outdir
    for sub in ("real", "synthetic", "packing"):
        shutil.rmtree(os.path.join(outdir, sub), ignore_errors=True)
    fields = make_real(sample, outdir) + make_synthetic(outdir) + make_packings(outdir)
    doc = {
        "generator": "testdata/gen/make_gfs_fixtures.py",
        "decoder": f"ecCodes {eccodes.codes_get_api_version()} (PyPI eccodes {eccodes.__version__})",
        "source_sample_sha256": PYGRIB_SAMPLE_SHA256,
        "fields": fields,
    }
    with open(os.path.join(outdir, "expected.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {len(fields)} fields to {outdir}")


if __name__ == "__main__":
    main()
