"""The example script runs on the committed fixtures and prints what it promises."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def test_example_script_runs():
    script = REPO / "crates" / "wx-scoring-py" / "examples" / "score_forecast.py"
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "lead scores: {24: 0." in out.stdout, out.stdout
    assert "overall = 0." in out.stdout and "(with_era5)" in out.stdout
    assert "field API: bias 0.5000 K, rmse 0.5000 K, coverage 1.0" in out.stdout
    for column in ("variable", "level", "lead_hours", "rmse", "acc", "skill_clim", "coverage"):
        assert column in out.stdout
