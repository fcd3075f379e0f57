//! The Rust side of the Python package's bit-identity tests: scores wx-scoring's committed
//! fixture fields (`crates/wx-scoring/tests/fixtures`) with the Rust API and prints every
//! number as JSON (serde_json writes the shortest representation that parses back to the same
//! f64, so Python reads the exact bits). `tests/test_bit_identity.py` makes the same calls
//! through Python and compares.
//!
//! ```text
//! cargo run -p wx-scoring-py --example rust_reference -- crates/wx-scoring/tests/fixtures
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ndarray::{Array3, ArrayView2, Axis};
use serde_json::{Map, Value, json};
use wx_scoring::{
    FieldInputs, FieldMetrics, Float, MetricValue, Reference, ScoringConfig, StackInputs,
    VariableMetrics, VariableOutcome, day1_score, era5_combined, era5_lead_score, lat_weights,
    overall_score, ranking_weights, score_field, score_levels, thickness_weights,
};

/// The fixture cases and their element type.
const CASES: &[&str] = &[
    "g73x144_f32",
    "levels_37x72_f32",
    "g19x36_f64",
    "q50_tiny_f64",
    "degenerate_acc_f64",
];

type Fail = Box<dyn std::error::Error>;

/// A fixture: its header and its fields (forecast, truth, climatology, reference) as `T`.
struct Case<T> {
    lats: Vec<f64>,
    levels: Option<Vec<f64>>,
    fields: Vec<Array3<T>>,
}

fn header(dir: &Path, name: &str) -> Result<Value, Fail> {
    Ok(serde_json::from_str(&std::fs::read_to_string(
        dir.join(format!("{name}.json")),
    )?)?)
}

fn load<T: Float>(dir: &Path, name: &str, decode: fn(&[u8]) -> T) -> Result<Case<T>, Fail> {
    let h = header(dir, name)?;
    let shape: Vec<usize> = serde_json::from_value(h["shape"].clone())?;
    let shape = [shape[0], shape[1], shape[2]];
    let n: usize = shape.iter().product();
    let width = std::mem::size_of::<T>();
    let bytes = std::fs::read(dir.join(format!("{name}.bin")))?;
    let nfields = h["fields"].as_array().map_or(0, Vec::len);
    if bytes.len() != n * nfields * width {
        return Err(format!("{name}.bin has {} bytes", bytes.len()).into());
    }
    let fields = bytes
        .chunks_exact(n * width)
        .map(|field| {
            let values = field.chunks_exact(width).map(decode).collect();
            Array3::from_shape_vec(shape, values).expect("the size was checked")
        })
        .collect();
    Ok(Case {
        lats: serde_json::from_value(h["lats"].clone())?,
        levels: serde_json::from_value(h["levels"].clone())?,
        fields,
    })
}

fn value(v: &MetricValue) -> Value {
    v.as_ref().map_or(Value::Null, |x| json!(x))
}

fn opt(v: &Option<MetricValue>) -> Value {
    v.as_ref().map_or(Value::Null, value)
}

fn field_json(m: &FieldMetrics) -> Value {
    json!({
        "coverage": m.coverage, "n_truth": m.n_truth, "n_pairs": m.n_pairs,
        "max_abs_forecast": m.max_abs_forecast, "bias": value(&m.bias), "mse": value(&m.mse),
        "rmse": value(&m.rmse), "mae": value(&m.mae), "acc": opt(&m.acc),
        "skill": opt(&m.skill), "mse_clim": opt(&m.mse_clim), "rmse_clim": opt(&m.rmse_clim),
        "pattern_correlation": opt(&m.pattern_correlation),
        "clone_distance": opt(&m.clone_distance),
    })
}

fn variable_json(m: &VariableMetrics) -> Value {
    json!({
        "levels": m.levels, "coverage": m.coverage, "max_abs_forecast": m.max_abs_forecast,
        "bias": value(&m.bias), "mse": value(&m.mse), "rmse": value(&m.rmse),
        "mae": value(&m.mae), "acc": opt(&m.acc), "skill": opt(&m.skill),
        "mse_clim": opt(&m.mse_clim), "rmse_clim": opt(&m.rmse_clim),
        "pattern_correlation": opt(&m.pattern_correlation),
        "clone_distance": opt(&m.clone_distance),
    })
}

/// Per level: the ERA5-style call (climatology as reference) and the Day1-style call (the
/// reference field); for several levels also the stack aggregates.
struct Scored {
    json: Value,
    era5: VariableMetrics,
    day1: VariableMetrics,
}

/// Level `l` of a (level, lat, lon) field.
fn level<T>(a: &Array3<T>, l: usize) -> ArrayView2<'_, T> {
    a.index_axis(Axis(0), l)
}

fn score_case<T: Float>(case: &Case<T>, cfg: &ScoringConfig) -> Result<Scored, Fail> {
    let w = lat_weights(&case.lats);
    let [f, o, c, r] = [0, 1, 2, 3].map(|k| &case.fields[k]);
    let n = o.len_of(Axis(0));
    let mut per_clim = Vec::new();
    let mut per_ref = Vec::new();
    for l in 0..n {
        let inputs = FieldInputs::new(level(f, l), level(o, l)).with_climatology(level(c, l));
        per_clim.push(score_field(
            &inputs.with_reference(Reference::Climatology),
            &w,
            cfg,
        )?);
        per_ref.push(score_field(
            &inputs.with_reference(Reference::Field(level(r, l))),
            &w,
            cfg,
        )?);
    }
    let mut out = Map::new();
    out.insert(
        "levels".into(),
        per_clim
            .iter()
            .zip(&per_ref)
            .map(|(a, b)| json!({"clim": field_json(a), "ref": field_json(b)}))
            .collect(),
    );
    let (era5, day1) = if n > 1 {
        let levels = case
            .levels
            .clone()
            .ok_or("several levels without level values")?;
        let stack = StackInputs {
            forecast: f.view(),
            truth: o.view(),
            climatology: Some(c.view()),
            skill_vs_climatology: true,
        };
        let (per, agg) = score_levels(&stack, &levels, &w, cfg)?;
        out.insert("stack_levels".into(), per.iter().map(field_json).collect());
        let day1 = VariableMetrics::from_levels(&per_ref, &thickness_weights(&levels)?)?;
        (agg, day1)
    } else {
        (
            VariableMetrics::from(&per_clim[0]),
            VariableMetrics::from(&per_ref[0]),
        )
    };
    out.insert("aggregate".into(), variable_json(&era5));
    out.insert("aggregate_ref".into(), variable_json(&day1));
    Ok(Scored {
        json: Value::Object(out),
        era5,
        day1,
    })
}

fn main() -> Result<(), Fail> {
    let dir: PathBuf = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .ok_or("usage: rust_reference <wx-scoring fixtures directory>")?;
    let cfg = ScoringConfig::default();
    let f32_le = |b: &[u8]| f32::from_le_bytes(b.try_into().expect("4 bytes"));
    let f64_le = |b: &[u8]| f64::from_le_bytes(b.try_into().expect("8 bytes"));
    let mut cases = Map::new();
    let mut scored = BTreeMap::new();
    for name in CASES {
        let s = if name.ends_with("_f32") {
            score_case(&load(&dir, name, f32_le)?, &cfg)?
        } else {
            score_case(&load(&dir, name, f64_le)?, &cfg)?
        };
        cases.insert((*name).to_owned(), s.json.clone());
        scored.insert(*name, s);
    }

    // ERA5: one lead over three variables (one failed upstream), then E, overall, weights.
    let mut lead_cfg = cfg.clone();
    lead_cfg.era5.variables = ["t", "2t", "msl", "q"].map(String::from).to_vec();
    let outcomes: BTreeMap<String, VariableOutcome> = [
        ("t", scored["levels_37x72_f32"].era5.clone().into()),
        ("2t", scored["g73x144_f32"].era5.clone().into()),
        ("msl", VariableOutcome::Failed("not in the store".into())),
        ("q", scored["q50_tiny_f64"].era5.clone().into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let lead = era5_lead_score(&outcomes, &lead_cfg)?;
    let mut leads_cfg = cfg.clone();
    leads_cfg.era5.leads = vec![24, 48, 72];
    let combined = era5_combined(&BTreeMap::from([(24, lead.score), (48, 0.25)]), &leads_cfg);
    // Day1: two configured pairs scored with a reference, the others missing.
    let day1_outcomes: BTreeMap<(String, u32), VariableOutcome> = [
        (
            ("2t".to_owned(), 12),
            scored["g73x144_f32"].day1.clone().into(),
        ),
        (
            ("z500".to_owned(), 12),
            scored["g19x36_f64"].day1.clone().into(),
        ),
        (
            ("msl".to_owned(), 12),
            scored["degenerate_acc_f64"].day1.clone().into(),
        ),
    ]
    .into_iter()
    .collect();
    let day1 = day1_score(&day1_outcomes, &cfg);
    let overall = overall_score(Some(&combined), Some(day1.passed), &cfg);
    let weights = ranking_weights(&[0.91, 0.85, 0.0, 0.6, 0.3, 0.05, f64::NAN], &cfg);
    let doc = json!({
        "cases": cases,
        "lead_score": {
            "score": lead.score,
            "lead_components": lead.variables.iter().map(|v| json!({
                "variable": v.variable, "lead_component": v.lead_component,
                "skill_term": v.skill_term, "acc_term": v.acc_term, "rmse_term": v.rmse_term,
                "failure": v.failure.as_ref().map(ToString::to_string),
            })).collect::<Vec<_>>(),
        },
        "era5_combined": {"score": combined.score, "completeness": combined.completeness},
        "day1": {
            "score": day1.score, "unclamped_score": day1.unclamped_score,
            "mean_skill": day1.mean_skill, "mean_acc": day1.mean_acc, "passed": day1.passed,
            "pairs": day1.pairs.iter().map(|p| json!({
                "variable": p.variable, "skill_term": p.skill_term, "acc_term": p.acc_term,
                "clone_penalty": p.clone_penalty,
                "failure": p.failure.as_ref().map(ToString::to_string),
            })).collect::<Vec<_>>(),
        },
        "overall": {"score": overall.score, "day1_weight": overall.day1_weight},
        "ranking_weights": weights.weights(),
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}
