//! Cross-check against independent reference values computed by
//! `reference/reference_values.py` (xskillscore + numpy) on the committed
//! fixture fields. Regenerate with `cargo xtask reference-values`.
//!
//! Agreement: 1e-6 relative, or 1e-9 absolute for values near 0.

use std::path::{Path, PathBuf};

use ndarray::{Array3, Axis};
use serde_json::Value;
use wx_scoring::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

struct Case {
    shape: [usize; 3],
    lats: Vec<f64>,
    levels: Option<Vec<f64>>,
    fields: Vec<Array3<f64>>,
    is_f32: bool,
    raw32: Vec<Array3<f32>>,
}

/// Read a fixture with std only: JSON header + little-endian raw values.
fn load(name: &str) -> Case {
    let h: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join(format!("{name}.json"))).unwrap(),
    )
    .unwrap();
    let shape: Vec<usize> = h["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let shape = [shape[0], shape[1], shape[2]];
    let n = shape.iter().product::<usize>();
    let bytes = std::fs::read(fixtures().join(format!("{name}.bin"))).unwrap();
    let is_f32 = h["dtype"] == "f32";
    let nfields = h["fields"].as_array().unwrap().len();
    let width = if is_f32 { 4 } else { 8 };
    assert_eq!(bytes.len(), n * nfields * width);
    let mut fields = Vec::new();
    let mut raw32 = Vec::new();
    for k in 0..nfields {
        let chunk = &bytes[k * n * width..(k + 1) * n * width];
        if is_f32 {
            let v: Vec<f32> = chunk
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect();
            raw32.push(Array3::from_shape_vec(shape, v.clone()).unwrap());
            fields.push(
                Array3::from_shape_vec(shape, v.into_iter().map(f64::from).collect()).unwrap(),
            );
        } else {
            let v: Vec<f64> = chunk
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
                .collect();
            fields.push(Array3::from_shape_vec(shape, v).unwrap());
        }
    }
    let f64s = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect::<Vec<_>>()
    };
    Case {
        shape,
        lats: f64s(&h["lats"]),
        levels: h["levels"].as_array().map(|_| f64s(&h["levels"])),
        fields,
        is_f32,
        raw32,
    }
}

fn agree(ctx: &str, ours: f64, theirs: f64) {
    let d = (ours - theirs).abs();
    assert!(
        d <= 1e-6 * ours.abs().max(theirs.abs()) || d <= 1e-9,
        "{ctx}: wx-scoring {ours} vs reference {theirs} (diff {d:e})"
    );
}

fn check(ctx: &str, ours: &MetricValue, theirs: &Value) {
    match (ours, theirs.as_f64()) {
        (Ok(a), Some(b)) => agree(ctx, *a, b),
        (Err(_), None) => {}
        (o, t) => panic!("{ctx}: wx-scoring {o:?} vs reference {t:?}"),
    }
}

/// Metrics of one level, scored from f32 data when the fixture is f32.
fn score_level(c: &Case, lv: usize, with_clim_ref: bool) -> FieldMetrics {
    let w = lat_weights(&c.lats);
    let cfg = ScoringConfig::default();
    macro_rules! run {
        ($fields:expr) => {{
            let [f, o, cl, r] = [0, 1, 2, 3].map(|k| $fields[k].index_axis(Axis(0), lv));
            let refr = if with_clim_ref {
                Reference::Climatology
            } else {
                Reference::Field(r)
            };
            score_field(
                &FieldInputs::new(f, o)
                    .with_climatology(cl)
                    .with_reference(refr),
                &w,
                &cfg,
            )
            .unwrap()
        }};
    }
    if c.is_f32 {
        run!(c.raw32)
    } else {
        run!(c.fields)
    }
}

#[test]
fn agrees_with_xskillscore_and_numpy() {
    let refs: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("reference_values.json")).unwrap(),
    )
    .unwrap();
    let cases = refs["cases"].as_object().unwrap();
    assert!(cases.len() >= 5, "expected the committed fixture cases");
    let mut compared = 0;
    for (name, expected) in cases {
        let c = load(name);
        for (lv, e) in expected["levels"].as_array().unwrap().iter().enumerate() {
            let m = score_level(&c, lv, false);
            let mc = score_level(&c, lv, true);
            let ctx = |k: &str| format!("{name} level {lv} {k}");
            check(&ctx("bias"), &m.bias, &e["bias"]);
            check(&ctx("mse"), &m.mse, &e["mse"]);
            check(&ctx("rmse"), &m.rmse, &e["rmse"]);
            check(&ctx("mae"), &m.mae, &e["mae"]);
            check(&ctx("acc"), m.acc.as_ref().unwrap(), &e["acc"]);
            check(&ctx("skill"), m.skill.as_ref().unwrap(), &e["skill"]);
            check(
                &ctx("skill_clim"),
                mc.skill.as_ref().unwrap(),
                &e["skill_clim"],
            );
            check(
                &ctx("mse_clim"),
                m.mse_clim.as_ref().unwrap(),
                &e["mse_clim"],
            );
            check(
                &ctx("rmse_clim"),
                m.rmse_clim.as_ref().unwrap(),
                &e["rmse_clim"],
            );
            check(
                &ctx("pattern_correlation"),
                m.pattern_correlation.as_ref().unwrap(),
                &e["pattern_correlation"],
            );
            check(
                &ctx("clone_distance"),
                m.clone_distance.as_ref().unwrap(),
                &e["clone_distance"],
            );
            agree(
                &ctx("coverage"),
                m.coverage,
                e["coverage"].as_f64().unwrap(),
            );
            compared += 1;
        }
        if let Some(levels) = &c.levels {
            let w = lat_weights(&c.lats);
            let tw = thickness_weights(levels).unwrap();
            for (a, b) in tw
                .iter()
                .zip(expected["thickness_weights"].as_array().unwrap())
            {
                agree(&format!("{name} thickness"), *a, b.as_f64().unwrap());
            }
            let si = StackInputs {
                forecast: c.raw32[0].view(),
                truth: c.raw32[1].view(),
                climatology: Some(c.raw32[2].view()),
                skill_vs_climatology: true,
            };
            assert!(c.is_f32 && c.shape[0] == levels.len());
            let (_, agg) = score_levels(&si, levels, &w, &ScoringConfig::default()).unwrap();
            let e = &expected["aggregate"];
            let ctx = |k: &str| format!("{name} aggregate {k}");
            check(&ctx("mse"), &agg.mse, &e["mse"]);
            check(&ctx("rmse"), &agg.rmse, &e["rmse"]);
            check(&ctx("acc"), agg.acc.as_ref().unwrap(), &e["acc"]);
            check(
                &ctx("skill_clim"),
                agg.skill.as_ref().unwrap(),
                &e["skill_clim"],
            );
            check(
                &ctx("rmse_clim"),
                agg.rmse_clim.as_ref().unwrap(),
                &e["rmse_clim"],
            );
            check(&ctx("bias"), &agg.bias, &e["bias"]);
            check(&ctx("mae"), &agg.mae, &e["mae"]);
            agree(
                &ctx("coverage"),
                agg.coverage,
                e["coverage"].as_f64().unwrap(),
            );
        }
    }
    assert!(compared >= 8);
    // The degenerate case really is degenerate and the tiny-q case really is scored.
    assert!(cases["degenerate_acc_f64"]["levels"][0]["acc"].is_null());
    assert!(cases["q50_tiny_f64"]["levels"][0]["acc"].is_f64());
}
