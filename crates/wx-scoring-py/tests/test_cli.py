"""`python -m wx_scoring score` prints the document `wx-step score` prints, on the committed
fixtures: every number equal (bit for bit, as parsed JSON), the messages too; and the table
format, and errors as one line."""

from __future__ import annotations

import json
import math
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


def test_unusable_inputs_are_one_error_line(wx_step, tmp_path):
    for argv in (
        ["score", "--forecast", str(STORES / "miner_v2_blosc_zstd"), "--truth",
         str(tmp_path / "missing"), "--climatology", str(STORES / "clim_wb2"), "--init", INIT,
         "--leads", "24"],
        args("miner_v2_blosc_zstd", "--leads", "240", "--variables", "2t"),  # no truth at 240 h
    ):
        rust, py = both(wx_step, argv)
        for out in (rust, py):
            assert out.returncode == 1 and out.stdout == ""
            lines = out.stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    bad = subprocess.run([*python_command(), *args("miner_v2_blosc_zstd", "--leads", "0")],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "positive lead hours" in bad.stderr
