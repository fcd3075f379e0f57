//! Day1 (§4), ERA5 (§5), overall (§6), ranking weights (§7), levels (§3) and
//! configuration, including the worked examples of the reference document
//! where the spec keeps the reference formula.

use std::collections::{BTreeMap, BTreeSet};

use ndarray::{Array2, Array3};
use wx_scoring::*;

fn cfg() -> ScoringConfig {
    ScoringConfig::default()
}

/// Metrics of a healthy variable with chosen skill, ACC and clone distance.
fn vm(skill: f64, acc: f64, clone: f64) -> VariableMetrics {
    VariableMetrics {
        levels: 1,
        coverage: 1.0,
        max_abs_forecast: 300.0,
        bias: Ok(0.1),
        mse: Ok(1.0),
        rmse: Ok(1.0),
        mae: Ok(0.8),
        acc: Some(Ok(acc)),
        skill: Some(Ok(skill)),
        mse_clim: Some(Ok(4.0)),
        rmse_clim: Some(Ok(2.0)),
        pattern_correlation: Some(Ok(0.95)),
        clone_distance: Some(Ok(clone)),
    }
}

fn day1_example(clone_2t: f64) -> BTreeMap<(String, u32), VariableOutcome> {
    [
        ("2t", 0.35, 0.92),
        ("msl", 0.20, 0.95),
        ("10u", 0.10, 0.85),
        ("10v", -0.05, 0.84),
        ("z500", 0.30, 0.97),
    ]
    .into_iter()
    .map(|(v, s, a)| {
        let d = if v == "2t" { clone_2t } else { 1e9 };
        ((v.to_string(), 12), VariableOutcome::Scored(vm(s, a, d)))
    })
    .collect()
}

#[test]
fn day1_worked_example() {
    let d = day1_score(&day1_example(1e9), &cfg());
    assert!((d.mean_skill - 0.19).abs() < 1e-12);
    assert!((d.mean_acc - 0.953).abs() < 1e-12);
    assert!((d.score - 0.4952).abs() < 1e-12, "{}", d.score);
    assert!(d.passed && !d.strict_clamp_fired);
    assert_eq!(d.pairs.len(), 5);
    assert!(
        d.pairs
            .iter()
            .all(|p| p.failure.is_none() && p.clone_penalty == 0.0)
    );
}

#[test]
fn day1_clone_case() {
    let d = day1_score(&day1_example(0.001), &cfg());
    let p = &d.pairs[0];
    assert_eq!(p.variable, "2t");
    assert!((p.clone_penalty - 0.6).abs() < 1e-12);
    assert!((p.skill.unwrap() + 0.25).abs() < 1e-12);
    assert_eq!(p.skill_term, 0.0);
    assert!((d.unclamped_score - 0.4532).abs() < 1e-12);
    assert!(d.strict_clamp_fired);
    assert_eq!(d.score, 0.05);
    assert!(!d.passed);
}

#[test]
fn day1_strict_clamp_by_fraction_only() {
    // γ = 0 disables the penalty, but d < φ·Δ still fires the clamp.
    let mut c = cfg();
    c.day1.clone_penalty_gamma = 0.0;
    let d = day1_score(&day1_example(0.001), &c);
    assert_eq!(d.pairs[0].clone_penalty, 0.0);
    assert!(d.strict_clamp_fired);
    assert_eq!(d.score, 0.05);
    // d between φ·Δ and Δ with γ = 0: no clamp.
    let d = day1_score(&day1_example(0.002), &c);
    assert!(!d.strict_clamp_fired);
    assert!((d.score - 0.4952).abs() < 1e-12);
}

#[test]
fn day1_missing_failed_and_insane_pairs_count_zero() {
    let mut o = day1_example(1e9);
    o.remove(&("10v".to_string(), 12)); // missing
    o.insert(
        ("10u".into(), 12),
        VariableOutcome::Failed("units mismatch".into()),
    ); // failed upstream
    let mut insane = vm(0.2, 0.95, 1e9);
    insane.pattern_correlation = Some(Ok(0.2));
    o.insert(("msl".into(), 12), VariableOutcome::Scored(insane));
    let mut degenerate = vm(0.3, 0.0, 1e9);
    degenerate.acc = Some(Err(MetricFailure::DegenerateAnomaly {
        forecast: true,
        truth: false,
    }));
    o.insert(("z500".into(), 12), VariableOutcome::Scored(degenerate));
    o.insert(("q".into(), 12), VariableOutcome::Scored(vm(0.9, 0.9, 1e9))); // not configured
    let d = day1_score(&o, &cfg());
    // Only 2t remains: skill 0.35, acc 0.96, each divided by the 5 configured pairs.
    assert!((d.mean_skill - 0.35 / 5.0).abs() < 1e-12);
    assert!((d.mean_acc - 0.96 / 5.0).abs() < 1e-12);
    assert!((d.score - (0.6 * 0.07 + 0.4 * 0.192)).abs() < 1e-12);
    assert_eq!(d.ignored, vec![("q".to_string(), 12)]);
    let by = |v: &str| d.pairs.iter().find(|p| p.variable == v).unwrap();
    assert_eq!(by("10v").failure, Some(Day1PairFailure::Missing));
    assert!(matches!(
        by("10u").failure,
        Some(Day1PairFailure::Upstream(_))
    ));
    assert!(matches!(
        by("msl").failure,
        Some(Day1PairFailure::Insane { .. })
    ));
    assert!(matches!(
        by("z500").failure,
        Some(Day1PairFailure::Metric { .. })
    ));
    // The insane pair's values are still reported.
    assert_eq!(by("msl").pattern_correlation, Some(0.2));
    assert_eq!(by("z500").skill, Some(0.3));
}

#[test]
fn day1_coverage_failure() {
    let mut o = day1_example(1e9);
    let mut low = vm(0.35, 0.92, 1e9);
    low.coverage = 0.99;
    o.insert(("2t".into(), 12), VariableOutcome::Scored(low));
    let d = day1_score(&o, &cfg());
    assert!(matches!(
        d.pairs[0].failure,
        Some(Day1PairFailure::Field(FieldFailure::CoverageTooLow { .. }))
    ));
    assert!((d.mean_skill - 0.12).abs() < 1e-12);
}

#[test]
fn day1_end_to_end_from_fields() {
    // A forecast that is an exact copy of the reference is caught by the clone
    // penalty and the strict clamp.
    let g = Grid::regular_global(19, 36).unwrap();
    let w = g.lat_weights();
    let o = Array2::from_shape_fn((19, 36), |(i, j)| {
        280.0 + (i as f64 * 0.3).sin() * 10.0 + (j as f64 * 0.2).cos()
    });
    let r = o.mapv(|v| v + 0.5)
        + Array2::from_shape_fn((19, 36), |(i, j)| ((i * 3 + j) % 5) as f64 * 0.1);
    let c = o.mapv(|v| v - 1.0)
        + Array2::from_shape_fn((19, 36), |(i, j)| ((i + 2 * j) % 7) as f64 * 0.3);
    let m = score_field(
        &FieldInputs::new(r.view(), o.view())
            .with_climatology(c.view())
            .with_reference(Reference::Field(r.view())),
        &w,
        &cfg(),
    )
    .unwrap();
    assert_eq!(m.clone_distance, Some(Ok(0.0)));
    // A copy of the (not bias-corrected) reference gains bias²/MSE(r, o) from the
    // weighted bias correction, before the penalty.
    let b = m.bias.clone().unwrap();
    let expected = b * b / m.mse.clone().unwrap();
    assert!((m.skill.clone().unwrap().unwrap() - expected).abs() < 1e-12);
    let mut o = BTreeMap::new();
    o.insert(
        ("2t".to_string(), 12),
        VariableOutcome::Scored(VariableMetrics::from(&m)),
    );
    let d = day1_score(&o, &cfg());
    assert_eq!(d.pairs[0].clone_penalty, 1.0);
    assert!(d.pairs[0].skill.unwrap() < 0.0);
    assert!(d.strict_clamp_fired && !d.passed);
}

fn era5_outcomes(f: impl Fn(&str) -> VariableOutcome) -> BTreeMap<String, VariableOutcome> {
    cfg()
        .era5
        .variables
        .iter()
        .map(|v| (v.clone(), f(v)))
        .collect()
}

#[test]
fn era5_lead_with_reference_values() {
    // The reference validator's worked example of one lead (skill, ACC). The RMSE
    // term is now against the climatology's RMSE (docs/scoring.md §9); with
    // RMSE = RMSE_clim every term is 0.5.
    let table: BTreeMap<&str, (f64, f64)> = [
        ("2t", (0.80, 0.95)),
        ("10u", (0.75, 0.90)),
        ("10v", (0.74, 0.90)),
        ("msl", (0.85, 0.96)),
        ("t", (0.82, 0.94)),
        ("u", (0.70, 0.88)),
        ("v", (0.69, 0.87)),
        ("q", (0.60, 0.80)),
        ("z", (0.90, 0.98)),
    ]
    .into_iter()
    .collect();
    let lead = era5_lead_score(
        &era5_outcomes(|v| {
            let (s, a) = table[v];
            let mut m = vm(s, a, 1e9);
            m.rmse = Ok(3.0);
            m.rmse_clim = Some(Ok(3.0));
            VariableOutcome::Scored(m)
        }),
        &cfg(),
    )
    .unwrap();
    let skill: f64 = lead.variables.iter().map(|v| v.skill_term).sum::<f64>() / 9.0;
    let acc: f64 = lead.variables.iter().map(|v| v.acc_term).sum::<f64>() / 9.0;
    assert!((skill - 0.761111).abs() < 1e-6);
    assert!((acc - 0.954444).abs() < 1e-6);
    assert!((lead.score - (0.6 * 6.85 / 9.0 + 0.3 * 8.59 / 9.0 + 0.1 * 0.5)).abs() < 1e-12);
    assert!(
        lead.variables
            .iter()
            .all(|v| (v.weight - 1.0 / 9.0).abs() < 1e-15)
    );
}

#[test]
fn era5_failed_variable_counts_zero_and_keeps_metrics() {
    let mut o = era5_outcomes(|_| VariableOutcome::Scored(vm(0.5, 0.6, 1e9)));
    // per variable: 0.6·0.5 + 0.3·0.8 + 0.1·(1/(1 + 1/2)) = 0.3 + 0.24 + 0.0666…
    let lv = 0.3 + 0.24 + 0.1 / 1.5;
    let mut bad = vm(0.5, 0.6, 1e9);
    bad.acc = Some(Err(MetricFailure::AtLevel {
        level: 0,
        cause: Box::new(MetricFailure::DegenerateAnomaly {
            forecast: true,
            truth: true,
        }),
    }));
    o.insert("q".into(), VariableOutcome::Scored(bad));
    o.insert(
        "u".into(),
        VariableOutcome::Failed("missing in store".into()),
    );
    let lead = era5_lead_score(&o, &cfg()).unwrap();
    assert!((lead.score - 7.0 * lv / 9.0).abs() < 1e-12);
    let q = lead.variables.iter().find(|v| v.variable == "q").unwrap();
    assert_eq!(q.lead_component, 0.0);
    assert!(matches!(
        q.failure,
        Some(Era5VariableFailure::Metric { .. })
    ));
    assert_eq!(
        q.metrics.as_ref().unwrap().rmse,
        Ok(1.0),
        "other metrics are kept"
    );
}

#[test]
fn era5_lead_incomplete_and_weights() {
    let mut o = era5_outcomes(|_| VariableOutcome::Scored(vm(1.0, 1.0, 1e9)));
    o.remove("z");
    assert_eq!(
        era5_lead_score(&o, &cfg()).unwrap_err().missing,
        vec!["z".to_string()]
    );
    // Custom weights: only 2t counts (normalised), so the lead equals its lead_v.
    let mut c = cfg();
    c.era5.variable_weights = [("2t".to_string(), 5.0)].into_iter().collect();
    c.validate().unwrap();
    let mut o = era5_outcomes(|_| VariableOutcome::Failed("x".into()));
    o.insert("2t".into(), VariableOutcome::Scored(vm(0.5, 0.6, 1e9)));
    let lead = era5_lead_score(&o, &c).unwrap();
    assert!((lead.score - (0.3 + 0.24 + 0.1 / 1.5)).abs() < 1e-12);
}

#[test]
fn rmse_term_edges() {
    assert_eq!(rmse_term(1.0, 1.0), 0.5);
    assert_eq!(rmse_term(0.0, 0.0), 1.0);
    assert_eq!(rmse_term(1.0, 0.0), 0.0);
    assert!((rmse_term(1.0, 3.0) - 0.75).abs() < 1e-15);
}

#[test]
fn era5_combined_and_overall() {
    let c = cfg();
    let scores: BTreeMap<u32, f64> = [(24, 0.788822), (999, 1.0)].into_iter().collect();
    let e = era5_combined(&scores, &c);
    assert!((e.score - 0.0788822).abs() < 1e-12);
    assert_eq!(e.completeness, 0.1);
    assert_eq!(e.scored_leads, vec![24]);
    let o = overall_score(Some(&e), Some(true), &c);
    assert_eq!(o.tier, OverallTier::WithEra5);
    assert!((o.score - 0.124938).abs() < 1e-6, "{}", o.score);
    let all: BTreeMap<u32, f64> = c.era5.leads.iter().map(|&l| (l, 0.788822)).collect();
    let e = era5_combined(&all, &c);
    assert_eq!(e.completeness, 1.0);
    assert!((overall_score(Some(&e), Some(true), &c).score - 0.799381).abs() < 1e-6);
    // Missing Day1 counts as fail.
    assert!((overall_score(Some(&e), None, &c).score - 0.95 * 0.788822).abs() < 1e-9);
    // No-ERA5 tier: W_d' = min(0.05·0.2, 0.05) = 0.01.
    let none = era5_combined(&BTreeMap::new(), &c);
    let o = overall_score(Some(&none), Some(true), &c);
    assert_eq!(o.tier, OverallTier::NoEra5);
    assert!((o.score - 0.01).abs() < 1e-15);
    assert_eq!(overall_score(None, Some(false), &c).score, 0.0);
    // Weights are renormalised to sum 1.
    let mut c2 = cfg();
    c2.overall.era5_weight = 1.9;
    c2.overall.day1_weight = 0.1;
    assert!((overall_score(Some(&e), Some(true), &c2).score - 0.799381).abs() < 1e-6);
}

#[test]
fn unavailable_leads_leave_e_and_completeness_alike() {
    let c = cfg();
    // ten configured leads; 48 and 240 unavailable for the whole run
    let unavailable: BTreeSet<u32> = [48, 240].into_iter().collect();
    let scores: BTreeMap<u32, f64> = [(24, 0.8), (72, 0.6), (48, 0.9)].into_iter().collect();
    let e = era5_combined_available(&scores, &unavailable, &c);
    assert_eq!(e.configured_leads, 8);
    assert_eq!(
        e.scored_leads,
        vec![24, 72],
        "an unavailable lead's score is ignored"
    );
    assert!((e.score - 1.4 / 8.0).abs() < 1e-15);
    assert_eq!(e.completeness, 0.25);
    // every available lead scored: complete
    let all: BTreeMap<u32, f64> = c
        .era5
        .leads
        .iter()
        .filter(|l| !unavailable.contains(l))
        .map(|&l| (l, 0.5))
        .collect();
    let e = era5_combined_available(&all, &unavailable, &c);
    assert_eq!(e.completeness, 1.0);
    assert!((e.score - 0.5).abs() < 1e-15);
    // nothing unavailable: exactly era5_combined
    assert_eq!(
        era5_combined_available(&scores, &BTreeSet::new(), &c),
        era5_combined(&scores, &c)
    );
    // nothing available: 0 and the no-ERA5 tier
    let every: BTreeSet<u32> = c.era5.leads.iter().copied().collect();
    let e = era5_combined_available(&scores, &every, &c);
    assert_eq!((e.score, e.completeness, e.configured_leads), (0.0, 0.0, 0));
    assert_eq!(
        overall_score(Some(&e), Some(true), &c).tier,
        OverallTier::NoEra5
    );
}

#[test]
fn ranking_weights_worked_example() {
    let w = ranking_weights(&[0.90, 0.85, 0.80, 0.60, 0.30, 0.05], &cfg());
    let RankingWeights::Distributed {
        weights,
        midpoint,
        contrast_applied,
    } = &w
    else {
        panic!("{w:?}")
    };
    assert!((midpoint - 0.944444).abs() < 1e-6);
    assert!(!contrast_applied);
    let expected = [0.953170, 0.016000, 0.014094, 0.010570, 0.005285, 0.000881];
    for (a, b) in weights.iter().zip(expected) {
        assert!((a - b).abs() < 5e-7, "{a} vs {b}");
    }
    assert!((weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
}

#[test]
fn ranking_weights_edges() {
    // No positive score: all zero, reported as such.
    let w = ranking_weights(&[0.0, -1.0, f64::NAN], &cfg());
    assert_eq!(
        w,
        RankingWeights::NoPositiveScore {
            weights: vec![0.0; 3]
        }
    );
    assert_eq!(
        ranking_weights(&[], &cfg()),
        RankingWeights::NoPositiveScore { weights: vec![] }
    );
    // Equal positive scores: CV = 0 ⇒ contrast boost; zero score ⇒ zero weight.
    let w = ranking_weights(&[0.5, 0.0, 0.5, 0.5], &cfg());
    let RankingWeights::Distributed {
        weights,
        contrast_applied,
        ..
    } = &w
    else {
        panic!()
    };
    assert!(contrast_applied);
    assert_eq!(weights[1], 0.0);
    assert!((weights[0] - 1.0 / 3.0).abs() < 1e-15);
    // A lone positive uid (at index 0, where the reference had a bug) gets everything.
    let w = ranking_weights(&[0.3, 0.0], &cfg());
    assert_eq!(w.weights(), &[1.0, 0.0]);
    assert_eq!(
        mean_over_runs(&[Some(0.5), None, Some(f64::NAN), Some(1.0)]),
        0.375
    );
    assert_eq!(mean_over_runs(&[]), 0.0);
}

#[test]
fn thickness_weights_default_levels() {
    let levels = [
        50.0, 100.0, 150.0, 200.0, 250.0, 300.0, 400.0, 500.0, 600.0, 700.0, 850.0, 925.0, 1000.0,
    ];
    let delta = [
        25.0, 50.0, 50.0, 50.0, 50.0, 75.0, 100.0, 100.0, 100.0, 125.0, 112.5, 75.0, 37.5,
    ];
    let w = thickness_weights(&levels).unwrap();
    for (a, d) in w.iter().zip(delta) {
        assert!((a - d / 950.0).abs() < 1e-15);
    }
    // Input order is preserved (weights follow their level).
    let rev: Vec<f64> = levels.iter().rev().copied().collect();
    let wr = thickness_weights(&rev).unwrap();
    assert_eq!(wr.iter().rev().copied().collect::<Vec<_>>(), w);
    assert_eq!(thickness_weights(&[500.0]).unwrap(), vec![1.0]);
    assert!(thickness_weights(&[500.0, 500.0]).is_err());
    assert!(thickness_weights(&[]).is_err());
    assert!(thickness_weights(&[f64::NAN, 1.0]).is_err());
}

#[test]
fn multi_level_aggregation() {
    let levels = [500.0, 850.0, 1000.0];
    let g = Grid::regular_global(19, 36).unwrap();
    let w = g.lat_weights();
    let o = Array3::from_shape_fn((3, 19, 36), |(k, i, j)| {
        250.0 + k as f64 * 10.0 + (i as f64 * 0.4).sin() * 5.0 + (j as f64 * 0.3).cos()
    });
    let c = Array3::from_shape_fn((3, 19, 36), |(k, i, j)| {
        o[[k, i, j]] + ((i * 7 + j * 3 + k) % 5) as f64 - 2.0
    });
    // Level k is offset by k+1: MSE_k = (k+1)².
    let f = Array3::from_shape_fn((3, 19, 36), |(k, i, j)| o[[k, i, j]] + (k + 1) as f64);
    let si = StackInputs {
        forecast: f.view(),
        truth: o.view(),
        climatology: Some(c.view()),
        skill_vs_climatology: true,
    };
    let (per, agg) = score_levels(&si, &levels, &w, &cfg()).unwrap();
    let tw = thickness_weights(&levels).unwrap();
    let mse: f64 = tw
        .iter()
        .enumerate()
        .map(|(k, w)| w * ((k + 1) * (k + 1)) as f64)
        .sum();
    assert!((agg.mse.clone().unwrap() - mse).abs() < 1e-12);
    assert!((agg.rmse.clone().unwrap() - mse.sqrt()).abs() < 1e-12);
    let acc: f64 = per
        .iter()
        .zip(&tw)
        .map(|(m, w)| w * m.acc.clone().unwrap().unwrap())
        .sum();
    assert!((agg.acc.clone().unwrap().unwrap() - acc).abs() < 1e-15);
    let mc: f64 = per
        .iter()
        .zip(&tw)
        .map(|(m, w)| w * m.mse_clim.clone().unwrap().unwrap())
        .sum();
    assert!((agg.rmse_clim.clone().unwrap().unwrap() - mc.sqrt()).abs() < 1e-12);
    // Per-level agreement with the 2-D entry point.
    let m1 = score_field(
        &FieldInputs::new(
            f.index_axis(ndarray::Axis(0), 1),
            o.index_axis(ndarray::Axis(0), 1),
        )
        .with_climatology(c.index_axis(ndarray::Axis(0), 1))
        .with_reference(Reference::Climatology),
        &w,
        &cfg(),
    )
    .unwrap();
    assert_eq!(m1, per[1]);
    // A level whose forecast is all NaN fails the variable's metrics and coverage.
    let mut f2 = f.clone();
    f2.index_axis_mut(ndarray::Axis(0), 2).fill(f64::NAN);
    let si = StackInputs {
        forecast: f2.view(),
        ..si
    };
    let (_, agg) = score_levels(&si, &levels, &w, &cfg()).unwrap();
    assert!(matches!(
        agg.mse,
        Err(MetricFailure::AtLevel { level: 2, .. })
    ));
    assert_eq!(agg.coverage, 0.0);
    assert!(agg.field_failure(&cfg().field).is_some());
    assert!(score_levels(&si, &levels[..2], &w, &cfg()).is_err());
}

#[test]
fn config_defaults_and_partial_toml() {
    let c = ScoringConfig::default();
    c.validate().unwrap();
    assert_eq!(c.day1.clone_delta["z500"], 9617.0);
    assert_eq!(c.era5.leads.len(), 10);
    assert_eq!(c.era5.leads[9], 240);
    assert_eq!(c.era5.effective_weights(), vec![1.0 / 9.0; 9]);
    let c: ScoringConfig = toml::from_str("[day1]\nalpha = 0.5\n[weights]\nb = 60.0\n").unwrap();
    assert_eq!(c.day1.alpha, 0.5);
    assert_eq!(c.day1.beta, 0.4, "unspecified keys keep their defaults");
    assert_eq!(c.weights.b, 60.0);
    assert_eq!(c.weights.q, 8.0);
    assert_eq!(c.field.coverage_floor, 0.9985);
    let back: ScoringConfig =
        toml::from_str(&toml::to_string(&ScoringConfig::default()).unwrap()).unwrap();
    assert_eq!(back, ScoringConfig::default());
    // a misspelt key is an error naming it, not a silently kept default
    for text in [
        "[day1]
alpfa = 0.5
",
        "[weights]
lookback = 3
",
        "[era5]
leads_h = [24]
",
    ] {
        let e = toml::from_str::<ScoringConfig>(text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field"), "{text}: {e}");
    }
    let mut bad = ScoringConfig::default();
    bad.day1.alpha = f64::NAN;
    assert!(bad.validate().is_err());
    let mut bad = ScoringConfig::default();
    bad.era5.variable_weights.insert("nope".into(), 1.0);
    assert!(
        bad.validate().is_err(),
        "weights of configured variables sum to 0"
    );
}
