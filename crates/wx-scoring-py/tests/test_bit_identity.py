"""The numbers of the Python package are wx-scoring's Rust API's, bit for bit: every fixture
of wx-scoring scored through Python and through Rust (examples/rust_reference.rs)."""

from __future__ import annotations

import numpy as np
import pytest
import wx_scoring as wx

from conftest import load_case

CASES = ["g73x144_f32", "levels_37x72_f32", "g19x36_f64", "q50_tiny_f64", "degenerate_acc_f64"]
FIELD_KEYS = ["coverage", "n_truth", "n_pairs", "max_abs_forecast", "bias", "mse", "rmse", "mae",
              "acc", "mse_clim", "rmse_clim"]


def same(got, want, what: str) -> None:
    # == on floats is bit identity here (no NaN reaches either side: failures are None)
    assert got == want and type(got) is type(want) or (got is None and want is None), (
        f"{what}: python {got!r} != rust {want!r}"
    )


def check_field(m: wx.FieldMetrics, clim: dict, ref: dict | None, what: str) -> None:
    d = m.to_dict()
    for k in FIELD_KEYS:
        want = clim[k]
        same(float(d[k]) if isinstance(want, float) and d[k] is not None else d[k], want,
             f"{what} {k}")
    same(m.skill_clim, clim["skill"], f"{what} skill_clim")
    if ref is not None:
        same(m.skill_ref, ref["skill"], f"{what} skill_ref")
        same(m.clone_distance, ref["clone_distance"], f"{what} clone_distance")
        same(m.pattern_correlation, ref["pattern_correlation"], f"{what} pattern_correlation")


def check_variable(v: wx.VariableMetrics, agg: dict, agg_ref: dict, what: str) -> None:
    d = v.to_dict()
    same(v.n_levels, agg["levels"], f"{what} levels")
    for k in ["coverage", "max_abs_forecast", "bias", "mse", "rmse", "mae", "acc", "mse_clim",
              "rmse_clim"]:
        same(d[k], agg[k], f"{what} {k}")
    same(v.skill_clim, agg["skill"], f"{what} skill_clim")
    same(v.skill_ref, agg_ref["skill"], f"{what} skill_ref")
    same(v.clone_distance, agg_ref["clone_distance"], f"{what} clone_distance")
    same(v.pattern_correlation, agg_ref["pattern_correlation"], f"{what} pattern_correlation")


@pytest.mark.parametrize("name", CASES)
def test_field_metrics_are_the_rust_bits(name, rust_reference):
    header, (f, o, c, r) = load_case(name)
    want = rust_reference["cases"][name]["levels"]
    assert len(want) == f.shape[0]
    for level in range(f.shape[0]):
        m = wx.score_field(f[level], o[level], header["lats"], climatology=c[level],
                           reference=r[level])
        check_field(m, want[level]["clim"], want[level]["ref"], f"{name} level {level}")
        # the same field without a reference: the climatology call alone, same bits
        alone = wx.score_field(f[level], o[level], header["lats"], climatology=c[level])
        check_field(alone, want[level]["clim"], None, f"{name} level {level} without reference")
        assert alone.skill_ref is None and alone.clone_distance is None


@pytest.mark.parametrize("name", CASES)
def test_variable_aggregates_are_the_rust_bits(name, rust_reference):
    header, (f, o, c, r) = load_case(name)
    want = rust_reference["cases"][name]
    levels = header["levels"]
    if f.shape[0] == 1:
        f, o, c, r = f[0], o[0], c[0], r[0]
    v = wx.score_variable(f, o, c, header["lats"], levels, reference=r)
    check_variable(v, want["aggregate"], want["aggregate_ref"], name)
    per_level = want.get("stack_levels", [lvl["clim"] for lvl in want["levels"]])
    for i, (m, clim) in enumerate(zip(v.per_level, per_level, strict=True)):
        check_field(m, clim, want["levels"][i]["ref"], f"{name} per level {i}")
    # the level aggregate of per-level results is the same aggregate
    if levels:
        fields = [wx.score_field(f[i], o[i], header["lats"], climatology=c[i], reference=r[i])
                  for i in range(f.shape[0])]
        agg = wx.aggregate_levels(fields, levels)
        check_variable(agg, want["aggregate"], want["aggregate_ref"], f"{name} aggregate_levels")


def test_memory_layout_does_not_change_the_bits():
    header, (f, o, c, r) = load_case("g73x144_f32")
    lats = header["lats"]
    base = wx.score_field(f[0], o[0], lats, climatology=c[0], reference=r[0]).to_dict()
    fortran = [np.asfortranarray(a[0]) for a in (f, o, c, r)]
    assert not fortran[0].flags.c_contiguous
    got = wx.score_field(fortran[0], fortran[1], lats, climatology=fortran[2],
                         reference=fortran[3]).to_dict()
    assert got == base
    # strided views of a larger buffer (every other column of an interleaved array)
    def strided(a):
        wide = np.zeros((a.shape[0], 2 * a.shape[1]), dtype=a.dtype)
        wide[:, ::2] = a
        view = wide[:, ::2]
        assert not view.flags.c_contiguous and view.base is wide
        return view
    got = wx.score_field(strided(f[0]), strided(o[0]), lats, climatology=strided(c[0]),
                         reference=strided(r[0])).to_dict()
    assert got == base
    # reversed rows with their latitudes reversed give the same sums in another order, so
    # compare with a tolerance only: the contract is bit identity for identical inputs
    flipped = wx.score_field(f[0][::-1], o[0][::-1], lats[::-1], climatology=c[0][::-1])
    assert flipped.rmse == pytest.approx(base["rmse"], rel=1e-12)


def test_score_aggregations_are_the_rust_bits(rust_reference):
    metrics = {}
    for name in CASES:
        header, (f, o, c, r) = load_case(name)
        if f.shape[0] == 1:
            f, o, c, r = f[0], o[0], c[0], r[0]
        metrics[name] = wx.score_variable(f, o, c, header["lats"], header["levels"], reference=r)
    lead = wx.lead_score(
        {"t": metrics["levels_37x72_f32"], "2t": metrics["g73x144_f32"],
         "msl": "not in the store", "q": metrics["q50_tiny_f64"]},
        variables=["t", "2t", "msl", "q"],
    )
    want = rust_reference["lead_score"]
    assert lead["score"] == want["score"]
    for got, exp in zip(lead["variables"], want["lead_components"], strict=True):
        for k in ("variable", "lead_component", "skill_term", "acc_term", "rmse_term", "failure"):
            assert got[k] == exp[k], (k, got, exp)
    combined = wx.era5_combined({24: lead["score"], 48: 0.25}, leads=[24, 48, 72])
    assert combined["score"] == rust_reference["era5_combined"]["score"]
    assert combined["completeness"] == rust_reference["era5_combined"]["completeness"]
    day1 = wx.day1_score({("2t", 12): metrics["g73x144_f32"], ("z500", 12): metrics["g19x36_f64"],
                          ("msl", 12): metrics["degenerate_acc_f64"]})
    want = rust_reference["day1"]
    for k in ("score", "unclamped_score", "mean_skill", "mean_acc", "passed"):
        assert day1[k] == want[k], k
    for got, exp in zip(day1["pairs"], want["pairs"], strict=True):
        for k in exp:
            assert got[k] == exp[k], (k, got, exp)
    overall = wx.overall_score(combined, day1["passed"])
    assert overall["score"] == rust_reference["overall"]["score"]
    assert overall["day1_weight"] == rust_reference["overall"]["day1_weight"]
    weights = wx.ranking_weights([0.91, 0.85, 0.0, 0.6, 0.3, 0.05, float("nan")])
    assert weights["weights"] == rust_reference["ranking_weights"]
    assert weights["distributed"] and abs(sum(weights["weights"]) - 1.0) < 1e-15
