"""Shared fixtures of the wx_scoring tests: the repository, cargo, the Rust reference values
and the wx-step binary. Everything they need is built here; nothing is skipped when it is
missing: the test fails and says what to install."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[3]
STORES = REPO / "testdata" / "stores"
SCORING_FIXTURES = REPO / "crates" / "wx-scoring" / "tests" / "fixtures"
INIT = "2024-12-30T00:00:00Z"


def cargo() -> str:
    exe = os.environ.get("CARGO") or shutil.which("cargo")
    if exe is None:
        pytest.fail("cargo is needed to build the Rust side of these tests; install rustup.rs")
    return exe


def target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, **kw)


def built(env: str, build: list[str], path: Path) -> Path:
    """A Rust executable: the one `cargo xtask test` names in `env` (built by its `cargo test
    --workspace`, so nothing is compiled again), else built here with `cargo build`."""
    if os.environ.get(env):
        exe = Path(os.environ[env])
    else:
        out = run([cargo(), "build", "-q", *build])
        assert out.returncode == 0, out.stderr
        exe = path
    assert exe.is_file(), f"{exe} does not exist"
    return exe


@pytest.fixture(scope="session")
def rust_reference() -> dict:
    """wx-scoring's Rust API on the committed fixtures (examples/rust_reference.rs)."""
    exe = built(
        "WX_RUST_REFERENCE_BIN",
        ["-p", "wx-scoring-py", "--example", "rust_reference"],
        target_dir() / "debug" / "examples" / "rust_reference",
    )
    out = run([str(exe), str(SCORING_FIXTURES)])
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="session")
def wx_step() -> Path:
    """The wx-step binary."""
    return built("WX_STEP_BIN", ["-p", "wx-step"], target_dir() / "debug" / "wx-step")


def load_case(name: str) -> tuple[dict, list[np.ndarray]]:
    """A wx-scoring fixture: its header and its fields (forecast, truth, climatology,
    reference) as (level, lat, lon) arrays of its dtype."""
    header = json.loads((SCORING_FIXTURES / f"{name}.json").read_text())
    dtype = np.dtype("<f4") if header["dtype"] == "f32" else np.dtype("<f8")
    raw = np.fromfile(SCORING_FIXTURES / f"{name}.bin", dtype=dtype)
    fields = raw.reshape(len(header["fields"]), *header["shape"])
    return header, [np.ascontiguousarray(f) for f in fields]


def python_command() -> list[str]:
    return [sys.executable, "-m", "wx_scoring"]
