"""`python -m wx_scoring score` prints the document `wx-step score` prints, on the committed
fixtures: every number equal (bit for bit, as parsed JSON), the messages too; and the table
format, and errors as one line."""

from __future__ import annotations

import json
import math
import shutil
import subprocess

import pytest

from conftest import INIT, STORES, python_command


def args(forecast: str, *extra: str) -> list[str]:
    return ["score", "--forecast", str(STORES / forecast), "--truth", str(STORES / "era5_arco"),
            "--climatology", str(STORES / "clim_wb2"), "--init", INIT, *extra]


def both(wx_step, argv: list[str]) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    rust = subprocess.run([str(wx_step), *argv], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"})
    py = subprocess.run([*python_command(), *argv], capture_output=True, text=True)
    return rust, py


def numbers(doc) -> int:
    if isinstance(doc, dict):
        return sum(numbers(v) for v in doc.values())
    if isinstance(doc, list):
        return sum(numbers(v) for v in doc)
    return int(isinstance(doc, float))


def assert_same_document(rust: dict, py: dict, path: str = "") -> None:
    assert type(rust) is type(py), f"{path}: {rust!r} vs {py!r}"
    if isinstance(rust, dict):
        assert list(rust) == list(py), f"{path}: keys {list(rust)} vs {list(py)}"
        for k in rust:
            assert_same_document(rust[k], py[k], f"{path}.{k}")
    elif isinstance(rust, list):
        assert len(rust) == len(py), f"{path}: {len(rust)} vs {len(py)} entries"
        for i, (a, b) in enumerate(zip(rust, py)):
            assert_same_document(a, b, f"{path}[{i}]")
    elif isinstance(rust, float):
        assert math.isfinite(rust) and rust.hex() == py.hex(), f"{path}: {rust!r} vs {py!r}"
    else:
        assert rust == py, f"{path}: {rust!r} vs {py!r}"


CASES = {
    "every variable, two leads": args("miner_v2_blosc_zstd", "--leads", "24,48"),
    "one level, order kept": args("miner_v2_blosc_zstd", "--leads", "48", "--variables",
                                  "z500,2t,q850"),
    "regridded forecast, reference, missing variables": args(
        "miner_2p5deg", "--leads", "24", "--variables", "2t,msl,t500", "--reference",
        str(STORES / "miner_721_5deg")),
    "ascending latitudes, longitudes -180..175, NaN points": args(
        "miner_v2_lat_asc_lon180", "--leads", "6,12", "--variables", "2t,t"),
    "levels in Pa": args("miner_v2_level_pa", "--leads", "12", "--variables", "t,2t"),
    "zarr v3, a valid time the store lacks": args("miner_v3", "--leads", "12,24",
                                                  "--variables", "2t,t850"),
}


def published_args(*extra: str) -> list[str]:
    """Scoring against the ARCO-layout truth whose root attributes publish through
    2024-12-31 (ERA5T) and 2024-12-30 (final)."""
    argv = args("miner_v2_blosc_zstd", "--variables", "2t,t", *extra)
    argv[argv.index("--truth") + 1] = str(STORES / "era5_arco_published")
    return argv


def truth_args(truth: str, *extra: str) -> list[str]:
    argv = args("miner_v2_blosc_zstd", *extra)
    argv[argv.index("--truth") + 1] = str(STORES / truth)
    return argv


CASES["CF-packed truth (zarr-python 2: int16/int8, fill values)"] = truth_args(
    "interop_v2_cf", "--leads", "6,12", "--variables", "2t,10u,msl")
CASES["zarr v3 truth: sharding, crc32c, LZ4, zlib, packed int16"] = truth_args(
    "interop_v3", "--leads", "6,12", "--variables", "2t,10u,10v,msl")
CASES["leads the truth has not published are pending"] = published_args("--leads", "24,42,48")


@pytest.mark.parametrize("name", list(CASES))
def test_json_matches_wx_step(name, wx_step):
    rust, py = both(wx_step, CASES[name])
    assert rust.returncode == 0, rust.stderr
    assert py.returncode == 0, py.stderr
    rust_doc, py_doc = json.loads(rust.stdout), json.loads(py.stdout)
    assert numbers(rust_doc) > 10
    assert_same_document(rust_doc, py_doc)


def test_table_matches_wx_step(wx_step):
    argv = args("miner_2p5deg", "--leads", "24", "--variables", "2t,msl,t500", "--reference",
                str(STORES / "miner_721_5deg"), "--format", "table")
    rust, py = both(wx_step, argv)
    assert rust.returncode == 0 and py.returncode == 0, (rust.stderr, py.stderr)
    assert py.stdout == rust.stdout
    assert "clone_dist" in py.stdout


def test_csv_matches_wx_step(wx_step):
    import csv
    import io

    argv = args("miner_2p5deg", "--leads", "24,48", "--variables", "2t,msl,t500", "--reference",
                str(STORES / "miner_721_5deg"), "--format", "csv")
    rust, py = both(wx_step, argv)
    assert rust.returncode == 0 and py.returncode == 0, (rust.stderr, py.stderr)
    rust_rows = list(csv.reader(io.StringIO(rust.stdout)))
    py_rows = list(csv.reader(io.StringIO(py.stdout)))
    assert len(rust_rows) == len(py_rows) > 2
    header = rust_rows[0]
    assert py_rows[0] == header
    numeric = set(header[header.index("rmse"):header.index("coverage") + 1])
    for r, p in zip(rust_rows[1:], py_rows[1:]):
        for column, a, b in zip(header, r, p):
            if column in numeric and a:
                assert float(a).hex() == float(b).hex(), (column, a, b)
            else:
                assert a == b, (column, a, b)
    assert any("not found" in row[-1] for row in py_rows[1:]), "t500 failed, with its reason"


def test_pending_leads_in_the_table_match_wx_step(wx_step):
    rust, py = both(wx_step, [*published_args("--leads", "24,48"), "--format", "table"])
    assert rust.returncode == 0 and py.returncode == 0, (rust.stderr, py.stderr)
    assert py.stdout == rust.stdout
    assert "pending" in py.stdout


def test_unusable_inputs_are_one_error_line(wx_step, tmp_path):
    before_first_day = published_args("--leads", "6")
    before_first_day[before_first_day.index("--init") + 1] = "2024-12-29T00:00:00Z"
    for argv in (
        ["score", "--forecast", str(STORES / "miner_v2_blosc_zstd"), "--truth",
         str(tmp_path / "missing"), "--climatology", str(STORES / "clim_wb2"), "--init", INIT,
         "--leads", "24"],
        before_first_day,  # the truth store will never have it
    ):
        rust, py = both(wx_step, argv)
        for out in (rust, py):
            assert out.returncode == 1 and out.stdout == ""
            lines = out.stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    # a lead after the end of a truth without publication attributes is pending, not an error
    rust, py = both(wx_step, args("miner_v2_blosc_zstd", "--leads", "240", "--variables", "2t"))
    assert rust.returncode == 0 and py.returncode == 0, (rust.stderr, py.stderr)
    assert_same_document(json.loads(rust.stdout), json.loads(py.stdout))
    assert json.loads(py.stdout)["pending_leads"][0]["lead_hours"] == 240
    bad = subprocess.run([*python_command(), *args("miner_v2_blosc_zstd", "--leads", "0")],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "positive lead hours" in bad.stderr


def test_pending_leads_match_wx_step(wx_step, tmp_path):
    # final ERA5 only, from the validator's configuration file
    config = tmp_path / "wx.toml"
    config.write_text("[data]\nera5_final_only = true\n")
    rust, py = both(wx_step, ["--config", str(config), *published_args("--leads", "18,24,48")])
    assert rust.returncode == 0 and py.returncode == 0, (rust.stderr, py.stderr)
    rust_doc, py_doc = json.loads(rust.stdout), json.loads(py.stdout)
    assert [p["lead_hours"] for p in py_doc["pending_leads"]] == [24, 48]
    assert_same_document(rust_doc, py_doc)
    # a chunk the attributes promise but the store lacks: pending in both
    copy = tmp_path / "era5_missing_chunk"
    shutil.copytree(STORES / "era5_arco_published", copy)
    (copy / "temperature" / "66.0.0.0").unlink()  # 2024-12-31T18Z
    argv = published_args("--leads", "24,42")
    argv[argv.index("--truth") + 1] = str(copy)
    rust, py = both(wx_step, argv)
    assert rust.returncode == 0 and py.returncode == 0, (rust.stderr, py.stderr)
    rust_doc, py_doc = json.loads(rust.stdout), json.loads(py.stdout)
    assert [p["lead_hours"] for p in py_doc["pending_leads"]] == [42]
    assert_same_document(rust_doc, py_doc)
    # a day before the store's valid_time_start is an error in both
    argv = published_args("--leads", "6")
    argv[argv.index("--init") + 1] = "2024-12-29T00:00:00Z"
    rust, py = both(wx_step, argv)
    for out in (rust, py):
        assert out.returncode == 1 and "valid_time_start" in out.stderr, out.stderr
