"""The package's surface: the stubs describe exactly what the extension exports, everything
public has a docstring, and the config helpers say the validator's values."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import wx_scoring as wx
from wx_scoring import _core


def stub_names() -> set[str]:
    tree = ast.parse((Path(wx.__file__).parent / "_core.pyi").read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def test_stubs_cover_the_extension():
    exported = {n for n in dir(_core) if not n.startswith("_") or n == "__version__"}
    stubs = stub_names()
    assert exported <= stubs, f"missing from _core.pyi: {sorted(exported - stubs)}"
    helpers = {"FloatArray", "Config", "Outcome", "LeadVariable", "LeadScore", "Era5Combined",
               "Day1Pair", "Day1Score", "OverallScore", "RankingWeights"}
    assert stubs - exported <= helpers, f"stubs of nothing: {sorted(stubs - exported - helpers)}"


def test_public_api_is_documented():
    for name in wx.__all__:
        obj = getattr(wx, name)
        if name == "__version__":
            continue
        assert inspect.getdoc(obj), f"{name} has no docstring"
    for cls in (wx.FieldMetrics, wx.VariableMetrics):
        for attr in ("rmse", "acc", "skill_clim", "skill_ref", "coverage", "failures"):
            assert inspect.getdoc(getattr(cls, attr)), f"{cls.__name__}.{attr}"
    assert "Raises" in wx.score_field.__doc__ and "GIL" in wx.score_field.__doc__


def test_config_helpers():
    d = wx.default_config()
    assert d["day1"]["alpha"] == 0.6 and d["era5"]["leads"][-1] == 240
    assert d["field"]["coverage_floor"] == 0.9985
    e = wx.effective_config({"day1": {"alpha": 0.5}})
    assert e["day1"]["alpha"] == 0.5 and e["day1"]["beta"] == 0.4
    assert wx.catalogue.ERA5_VARIABLES == tuple(d["era5"]["variables"])
    assert wx.catalogue.DAY1_VARIABLES == tuple(d["day1"]["variables"])
    assert wx.__version__ == "0.1.0"
