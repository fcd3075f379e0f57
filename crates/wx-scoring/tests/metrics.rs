//! Analytic cases for every metric of docs/scoring.md §3, and agreement with a naive
//! two-pass oracle on random fields with NaNs.

mod common;

use common::{Rng, close, field, naive, with_nans};
use ndarray::{Array2, s};
use wx_scoring::*;

fn cfg() -> ScoringConfig {
    ScoringConfig::default()
}

fn grid(ny: usize, nx: usize) -> Grid {
    Grid::regular_global(ny, nx).unwrap()
}

fn score<T: Float>(i: &FieldInputs<'_, T>, g: &Grid) -> FieldMetrics {
    score_field(i, &g.lat_weights(), &cfg()).unwrap()
}

#[test]
fn perfect_forecast() {
    let g = grid(19, 36);
    let mut rng = Rng(1);
    let o = field(&mut rng, 19, 36, 280.0, 10.0);
    let c = field(&mut rng, 19, 36, 280.0, 8.0);
    let r = field(&mut rng, 19, 36, 280.0, 9.0);
    let m = score(
        &FieldInputs::new(o.view(), o.view())
            .with_climatology(c.view())
            .with_reference(Reference::Field(r.view())),
        &g,
    );
    assert_eq!(m.bias, Ok(0.0));
    assert_eq!(m.mse, Ok(0.0));
    assert_eq!(m.rmse, Ok(0.0));
    assert_eq!(m.mae, Ok(0.0));
    assert!((m.acc.clone().unwrap().unwrap() - 1.0).abs() < 1e-12);
    assert_eq!(m.skill, Some(Ok(1.0)));
    assert_eq!(m.coverage, 1.0);
    // Skill against the climatology of a perfect forecast is exactly 1 too.
    let m = score(
        &FieldInputs::new(o.view(), o.view())
            .with_climatology(c.view())
            .with_reference(Reference::Climatology),
        &g,
    );
    assert_eq!(m.skill, Some(Ok(1.0)));
}

#[test]
fn constant_offset() {
    let g = grid(19, 36);
    let mut rng = Rng(2);
    let o = field(&mut rng, 19, 36, 280.0, 10.0);
    let f = o.mapv(|v| v + 1.5);
    let m = score(&FieldInputs::new(f.view(), o.view()), &g);
    assert!((m.bias.unwrap() - 1.5).abs() < 1e-12);
    assert!((m.mse.unwrap() - 2.25).abs() < 1e-11);
    assert!((m.rmse.unwrap() - 1.5).abs() < 1e-12);
    assert!((m.mae.unwrap() - 1.5).abs() < 1e-12);
    // The bias-corrected forecast is perfect: skill against any imperfect reference is 1.
    let r = o.mapv(|v| v - 0.3);
    let m = score(
        &FieldInputs::new(f.view(), o.view()).with_reference(Reference::Field(r.view())),
        &g,
    );
    assert!((m.skill.unwrap().unwrap() - 1.0).abs() < 1e-12);
    // Clone distance MSE(f, r) = 1.8² and pattern correlation of shifted copies = 1.
    assert!((m.clone_distance.unwrap().unwrap() - 3.24).abs() < 1e-10);
    assert!((m.pattern_correlation.unwrap().unwrap() - 1.0).abs() < 1e-12);
}

#[test]
fn weighted_bias_uses_cos_lat() {
    // Error 1 on the equator row, 0 elsewhere, on a 3-row grid (90, 0, -90).
    let g = grid(3, 4);
    let o = Array2::<f64>::zeros((3, 4));
    let mut f = o.clone();
    f.row_mut(1).fill(1.0);
    let m = score(&FieldInputs::new(f.view(), o.view()), &g);
    let wp = 90f64.to_radians().cos();
    let expected = 1.0 / (1.0 + 2.0 * wp);
    assert!((m.bias.unwrap() - expected).abs() < 1e-15);
}

#[test]
fn anti_correlated_anomalies() {
    let g = grid(19, 36);
    let mut rng = Rng(3);
    let c = field(&mut rng, 19, 36, 280.0, 5.0);
    let anom = field(&mut rng, 19, 36, 0.0, 3.0);
    let o = &c + &anom;
    let f = &c - &anom.mapv(|a| 2.0 * a);
    let m = score(
        &FieldInputs::new(f.view(), o.view()).with_climatology(c.view()),
        &g,
    );
    assert!((m.acc.unwrap().unwrap() + 1.0).abs() < 1e-12);
}

#[test]
fn acc_is_centred() {
    // Adding a constant to the forecast anomaly does not change ACC.
    let g = grid(19, 36);
    let mut rng = Rng(4);
    let c = field(&mut rng, 19, 36, 280.0, 5.0);
    let o = &c + &field(&mut rng, 19, 36, 0.0, 3.0);
    let f = &o + &field(&mut rng, 19, 36, 0.0, 1.0);
    let f2 = f.mapv(|v| v + 7.0);
    let a = score(
        &FieldInputs::new(f.view(), o.view()).with_climatology(c.view()),
        &g,
    )
    .acc
    .unwrap()
    .unwrap();
    let b = score(
        &FieldInputs::new(f2.view(), o.view()).with_climatology(c.view()),
        &g,
    )
    .acc
    .unwrap()
    .unwrap();
    assert!((a - b).abs() < 1e-12 && a < 1.0 && a > 0.5);
}

#[test]
fn all_nan_forecast() {
    let g = grid(19, 36);
    let mut rng = Rng(5);
    let o = field(&mut rng, 19, 36, 280.0, 10.0);
    let f = Array2::<f64>::from_elem((19, 36), f64::NAN);
    let m = score(
        &FieldInputs::new(f.view(), o.view())
            .with_climatology(o.view())
            .with_reference(Reference::Field(o.view())),
        &g,
    );
    assert_eq!(m.coverage, 0.0);
    assert_eq!(m.bias, Err(MetricFailure::NoValidPoints));
    assert_eq!(m.rmse, Err(MetricFailure::NoValidPoints));
    assert_eq!(m.acc, Some(Err(MetricFailure::NoValidPoints)));
    assert_eq!(m.skill, Some(Err(MetricFailure::NoValidPoints)));
    assert_eq!(m.clone_distance, Some(Err(MetricFailure::NoValidPoints)));
    assert_eq!(m.max_abs_forecast, 0.0);
    assert!(matches!(
        m.field_failure(&cfg().field),
        Some(FieldFailure::CoverageTooLow { .. })
    ));
    // The climatology's own RMSE does not depend on the forecast and still computes.
    assert_eq!(m.rmse_clim, Some(Ok(0.0)));
}

#[test]
fn all_nan_truth_has_zero_coverage() {
    let g = grid(5, 8);
    let o = Array2::<f32>::from_elem((5, 8), f32::NAN);
    let f = Array2::<f32>::zeros((5, 8));
    let m = score(&FieldInputs::new(f.view(), o.view()), &g);
    assert_eq!(m.coverage, 0.0);
    assert_eq!(m.n_truth, 0);
    assert_eq!(m.mse, Err(MetricFailure::NoValidPoints));
}

#[test]
fn one_finite_point() {
    let g = grid(19, 36);
    let mut o = Array2::<f64>::from_elem((19, 36), f64::NAN);
    let mut f = o.clone();
    o[[7, 11]] = 3.0;
    f[[7, 11]] = 5.0;
    f[[2, 2]] = 1.0; // finite forecast where truth is missing: ignored
    let m = score(
        &FieldInputs::new(f.view(), o.view()).with_climatology(o.view()),
        &g,
    );
    assert_eq!(m.bias, Ok(2.0));
    assert_eq!(m.mse, Ok(4.0));
    assert_eq!(m.mae, Ok(2.0));
    assert_eq!(m.coverage, 1.0);
    assert_eq!(m.n_pairs, 1);
    // A single point has no variance: ACC is degenerate, not a number.
    assert!(matches!(
        m.acc,
        Some(Err(MetricFailure::DegenerateAnomaly { .. }))
    ));
}

#[test]
fn poles_only() {
    // Only the two pole rows are valid: their weights are tiny (~6e-17) but
    // positive, so the metrics are still defined and exact.
    let g = grid(19, 36);
    let mut o = Array2::<f64>::from_elem((19, 36), f64::NAN);
    o.row_mut(0).fill(1.0);
    o.row_mut(18).fill(2.0);
    let f = Array2::<f64>::from_elem((19, 36), 1.5);
    let m = score(&FieldInputs::new(f.view(), o.view()), &g);
    assert!((m.bias.unwrap() - 0.0).abs() < 1e-15);
    assert!((m.mse.unwrap() - 0.25).abs() < 1e-15);
    assert!((m.mae.unwrap() - 0.5).abs() < 1e-15);
}

#[test]
fn constant_anomaly_gives_degenerate_acc() {
    // f − c is a constant: its std is 0 ⇒ ACC fails (NaN in the spec).
    let g = grid(19, 36);
    let mut rng = Rng(6);
    let c = field(&mut rng, 19, 36, 280.0, 5.0);
    let o = &c + &field(&mut rng, 19, 36, 0.0, 2.0);
    let f = c.mapv(|v| v + 1.25);
    let m = score(
        &FieldInputs::new(f.view(), o.view()).with_climatology(c.view()),
        &g,
    );
    assert_eq!(
        m.acc,
        Some(Err(MetricFailure::DegenerateAnomaly {
            forecast: true,
            truth: false
        }))
    );
    // Other metrics are still there.
    assert!(m.rmse.is_ok());
    // Just above the relative floor (std = 1e-8·RMS) it is scored.
    let f = Array2::from_shape_fn((19, 36), |(i, j)| {
        c[[i, j]] + 1.25 + 280.0 * 1e-8 * (((i * 5 + j) % 7) as f64 - 3.0)
    });
    let m = score(
        &FieldInputs::new(f.view(), o.view()).with_climatology(c.view()),
        &g,
    );
    assert!(m.acc.clone().unwrap().is_ok());
    // Just below it (std ≈ 1e-10·RMS) it is degenerate.
    let f = Array2::from_shape_fn((19, 36), |(i, j)| {
        c[[i, j]] + 1.25 + 280.0 * 1e-10 * (((i * 5 + j) % 7) as f64 - 3.0)
    });
    let m = score(
        &FieldInputs::new(f.view(), o.view()).with_climatology(c.view()),
        &g,
    );
    assert!(matches!(
        m.acc,
        Some(Err(MetricFailure::DegenerateAnomaly { forecast: true, .. }))
    ));
}

#[test]
fn tiny_humidity_is_scored() {
    // q at 50 hPa: ~2.6e-6 kg/kg with anomalies of ~1e-8. An absolute floor
    // would reject this; the relative one must not, and the result must agree
    // with the two-pass oracle.
    let g = grid(37, 72);
    let mut rng = Rng(7);
    let c = field(&mut rng, 37, 72, 2.6e-6, 2e-8);
    let o = &c + &field(&mut rng, 37, 72, 0.0, 1e-8);
    let f = &o + &field(&mut rng, 37, 72, 3e-9, 5e-9);
    let w = g.lat_weights();
    let m = score_field(
        &FieldInputs::new(f.view(), o.view())
            .with_climatology(c.view())
            .with_reference(Reference::Climatology),
        &w,
        &cfg(),
    )
    .unwrap();
    let acc = m.acc.unwrap().unwrap();
    assert!(
        close(acc, naive::acc(f.view(), o.view(), c.view(), &w), 1e-9),
        "{acc}"
    );
    assert!(close(
        m.skill.unwrap().unwrap(),
        naive::skill(f.view(), o.view(), c.view(), &w),
        1e-9
    ));
    assert!(close(
        m.mse.unwrap(),
        naive::mse(f.view(), o.view(), &w),
        1e-9
    ));
}

#[test]
fn large_offset_small_spread_keeps_precision() {
    // z-like field 5e4 with anomalies of 1e-3: centred sums with a per-row
    // shift keep ~full precision, where Σx² − (Σx)²/W would lose it all.
    let g = grid(37, 72);
    let mut rng = Rng(8);
    let c = field(&mut rng, 37, 72, 5e4, 2e-3);
    let o = &c + &field(&mut rng, 37, 72, 0.0, 1e-3);
    let f = &o + &field(&mut rng, 37, 72, 2e-4, 5e-4);
    let w = g.lat_weights();
    let m = score_field(
        &FieldInputs::new(f.view(), o.view())
            .with_climatology(c.view())
            .with_reference(Reference::Field(c.view())),
        &w,
        &cfg(),
    )
    .unwrap();
    assert!(close(
        m.acc.unwrap().unwrap(),
        naive::acc(f.view(), o.view(), c.view(), &w),
        1e-7
    ));
    assert!(close(
        m.pattern_correlation.unwrap().unwrap(),
        naive::pattern(f.view(), c.view(), &w),
        1e-6
    ));
}

#[test]
fn skill_zero_reference_error() {
    let g = grid(5, 8);
    let mut rng = Rng(9);
    let o = field(&mut rng, 5, 8, 1.0, 1.0);
    // Reference equals truth; forecast differs by a non-constant amount.
    let f = &o + &field(&mut rng, 5, 8, 0.0, 1.0);
    let m = score(
        &FieldInputs::new(f.view(), o.view()).with_reference(Reference::Field(o.view())),
        &g,
    );
    assert_eq!(m.skill, Some(Err(MetricFailure::ReferenceZeroError)));
    // Forecast differs by a constant only (exactly representable values):
    // bias-corrected MSE is exactly 0 ⇒ SS = 1.
    let o = o.mapv(|v| (v * 4.0).round() / 4.0);
    let f = o.mapv(|v| v + 2.0);
    let m = score(
        &FieldInputs::new(f.view(), o.view()).with_reference(Reference::Field(o.view())),
        &g,
    );
    assert_eq!(m.skill, Some(Ok(1.0)));
    assert_eq!(skill_score(0.0, 0.0), Ok(1.0));
    assert_eq!(
        skill_score(1.0, 0.0),
        Err(MetricFailure::ReferenceZeroError)
    );
    assert_eq!(skill_score(1.0, 4.0), Ok(0.75));
}

#[test]
fn extreme_value_fails_field() {
    let g = grid(5, 8);
    let o = Array2::<f64>::zeros((5, 8));
    let mut f = o.clone();
    f[[1, 1]] = 2e12;
    let m = score(&FieldInputs::new(f.view(), o.view()), &g);
    assert!(matches!(
        m.field_failure(&cfg().field),
        Some(FieldFailure::ExtremeValue { .. })
    ));
    f[[1, 1]] = f64::INFINITY; // an infinite forecast value is extreme too
    let m = score(&FieldInputs::new(f.view(), o.view()), &g);
    assert_eq!(m.max_abs_forecast, f64::INFINITY);
    assert!(m.field_failure(&cfg().field).is_some());
    f[[1, 1]] = 1e11;
    assert!(
        score(&FieldInputs::new(f.view(), o.view()), &g)
            .field_failure(&cfg().field)
            .is_none()
    );
}

#[test]
fn coverage_threshold() {
    // 720-row forecast placed on 721 rows: one NaN row of 1440 → 1/721 missing.
    let (ny, nx) = (721, 1440);
    let g = grid(ny, nx);
    let o = Array2::<f32>::zeros((ny, nx));
    let mut f = o.clone();
    f.row_mut(720).fill(f32::NAN);
    let m = score(&FieldInputs::new(f.view(), o.view()), &g);
    assert!((m.coverage - 720.0 / 721.0).abs() < 1e-15);
    assert!(m.field_failure(&cfg().field).is_none(), "0.99861 >= 0.9985");
    f.row_mut(719).fill(f32::NAN);
    let m = score(&FieldInputs::new(f.view(), o.view()), &g);
    assert!(matches!(
        m.field_failure(&cfg().field),
        Some(FieldFailure::CoverageTooLow { .. })
    ));
}

#[test]
fn pairwise_masks_per_metric() {
    // A NaN in the climatology removes the point from ACC but not from MSE;
    // a NaN in the reference removes it from skill and clone distance only.
    let g = grid(5, 8);
    let mut rng = Rng(10);
    let o = field(&mut rng, 5, 8, 10.0, 3.0);
    let f = &o + &field(&mut rng, 5, 8, 0.5, 1.0);
    let mut c = field(&mut rng, 5, 8, 10.0, 2.0);
    let mut r = &o + &field(&mut rng, 5, 8, 0.0, 2.0);
    c[[2, 3]] = f64::NAN;
    r[[1, 4]] = f64::NAN;
    r[[3, 3]] = f64::NAN;
    let w = g.lat_weights();
    let m = score(
        &FieldInputs::new(f.view(), o.view())
            .with_climatology(c.view())
            .with_reference(Reference::Field(r.view())),
        &g,
    );
    let n = naive::all(f.view(), o.view(), c.view(), r.view(), &w);
    assert!(close(m.mse.clone().unwrap(), n.mse, 1e-12));
    assert!(close(m.acc.unwrap().unwrap(), n.acc, 1e-12));
    assert!(close(m.skill.unwrap().unwrap(), n.skill, 1e-12));
    assert!(close(m.clone_distance.unwrap().unwrap(), n.clone, 1e-12));
    assert!(close(
        m.rmse_clim.unwrap().unwrap(),
        n.mse_clim.sqrt(),
        1e-12
    ));
    // MSE over the full (f, o) mask differs from one restricted by c.
    let mut o2 = o.clone();
    o2[[2, 3]] = f64::NAN;
    assert!(!close(
        m.mse.unwrap(),
        naive::mse(f.view(), o2.view(), &w),
        1e-9
    ));
}

#[test]
fn matches_naive_oracle_on_random_fields() {
    for (seed, (ny, nx)) in [
        (11u64, (19usize, 36usize)),
        (12, (73, 144)),
        (13, (10, 7)),
        (14, (1, 5)),
    ] {
        let mut rng = Rng(seed);
        let o = with_nans(field(&mut rng, ny, nx, 280.0, 10.0), &mut rng, 0.05);
        let f = with_nans(&o + &field(&mut rng, ny, nx, 0.7, 2.0), &mut rng, 0.05);
        let c = with_nans(field(&mut rng, ny, nx, 280.0, 7.0), &mut rng, 0.02);
        let r = with_nans(&o + &field(&mut rng, ny, nx, -0.2, 3.0), &mut rng, 0.02);
        let w = if ny > 1 {
            Grid::regular_global(ny, nx).unwrap().lat_weights()
        } else {
            vec![1.0]
        };
        let m = score_field(
            &FieldInputs::new(f.view(), o.view())
                .with_climatology(c.view())
                .with_reference(Reference::Field(r.view())),
            &w,
            &cfg(),
        )
        .unwrap();
        let n = naive::all(f.view(), o.view(), c.view(), r.view(), &w);
        for (name, a, b) in [
            ("bias", m.bias.clone().unwrap(), n.bias),
            ("mse", m.mse.clone().unwrap(), n.mse),
            ("mae", m.mae.clone().unwrap(), n.mae),
            ("acc", m.acc.clone().unwrap().unwrap(), n.acc),
            ("skill", m.skill.clone().unwrap().unwrap(), n.skill),
            ("mse_clim", m.mse_clim.clone().unwrap().unwrap(), n.mse_clim),
            (
                "pattern",
                m.pattern_correlation.clone().unwrap().unwrap(),
                n.pattern,
            ),
            ("clone", m.clone_distance.clone().unwrap().unwrap(), n.clone),
            ("coverage", m.coverage, n.coverage),
        ] {
            assert!(
                close(a, b, 1e-11),
                "seed {seed} {name}: fused {a} naive {b}"
            );
        }
        // Skill against the climatology agrees with the naive skill using c as reference.
        let m = score_field(
            &FieldInputs::new(f.view(), o.view())
                .with_climatology(c.view())
                .with_reference(Reference::Climatology),
            &w,
            &cfg(),
        )
        .unwrap();
        assert!(close(
            m.skill.unwrap().unwrap(),
            naive::skill(f.view(), o.view(), c.view(), &w),
            1e-10
        ));
    }
}

#[test]
fn f32_and_f64_agree() {
    let g = grid(37, 72);
    let mut rng = Rng(15);
    let o = field(&mut rng, 37, 72, 280.0, 10.0).mapv(|v| v as f32 as f64);
    let f = (&o + &field(&mut rng, 37, 72, 0.3, 2.0)).mapv(|v| v as f32 as f64);
    let (o32, f32_) = (o.mapv(|v| v as f32), f.mapv(|v| v as f32));
    let a = score(&FieldInputs::new(f.view(), o.view()), &g);
    let b = score(&FieldInputs::new(f32_.view(), o32.view()), &g);
    // Same values (f32 widened exactly), same f64 arithmetic ⇒ same bits.
    assert_eq!(a, b);
}

#[test]
fn non_contiguous_views() {
    let g = grid(19, 36);
    let mut rng = Rng(16);
    let o = field(&mut rng, 19, 36, 280.0, 10.0);
    let f = &o + &field(&mut rng, 19, 36, 0.3, 2.0);
    let ot = o.t().to_owned();
    let ft = f.t().to_owned();
    let a = score(&FieldInputs::new(f.view(), o.view()), &g);
    let b = score(&FieldInputs::new(ft.t(), ot.t()), &g);
    assert_eq!(a, b);
    // A strided slice (every other column) is handled too.
    let wide_o = ndarray::concatenate![ndarray::Axis(1), o.view(), o.view()];
    let sub = wide_o.slice(s![.., ..;2]);
    let m = score(&FieldInputs::new(sub, sub), &grid(19, 36));
    assert_eq!(m.mse, Ok(0.0));
}

#[test]
fn shape_errors() {
    let w = grid(5, 8).lat_weights();
    let a = Array2::<f64>::zeros((5, 8));
    let b = Array2::<f64>::zeros((5, 7));
    let e = score_field(&FieldInputs::new(a.view(), b.view()), &w, &cfg()).unwrap_err();
    assert!(matches!(
        e,
        ScoringError::ShapeMismatch {
            what: "forecast",
            ..
        }
    ));
    let e = score_field(&FieldInputs::new(a.view(), a.view()), &w[..4], &cfg()).unwrap_err();
    assert!(matches!(e, ScoringError::ShapeMismatch { .. }));
    let e = score_field(
        &FieldInputs::new(a.view(), a.view()).with_reference(Reference::Climatology),
        &w,
        &cfg(),
    )
    .unwrap_err();
    assert!(matches!(e, ScoringError::ShapeMismatch { .. }));
    let e = score_field(
        &FieldInputs::new(a.view(), a.view()),
        &[1.0, f64::NAN, 1.0, 1.0, 1.0],
        &cfg(),
    )
    .unwrap_err();
    assert!(matches!(e, ScoringError::Grid(_)));
    let e = score_field(
        &FieldInputs::new(a.view(), a.view()),
        &[1.0, -1.0, 1.0, 1.0, 1.0],
        &cfg(),
    )
    .unwrap_err();
    assert!(matches!(e, ScoringError::Grid(_)));
    let z = Array2::<f64>::zeros((0, 8));
    let e = score_field(&FieldInputs::new(z.view(), z.view()), &[], &cfg()).unwrap_err();
    assert!(matches!(e, ScoringError::EmptyField { .. }));
}

/// Every build of the kernel (portable or AVX2, masked or dense rows) gives
/// exactly the bits of `expected`.
fn assert_every_code_path_matches<T: Float>(
    inputs: &FieldInputs<'_, T>,
    w: &[f64],
    expected: &FieldSums,
) {
    use wx_scoring::__private::{CodePath, field_sums_with_path};
    for simd in [false, true] {
        for dense_rows in [false, true] {
            let s = field_sums_with_path(inputs, w, CodePath { simd, dense_rows }).unwrap();
            assert_eq!(
                format!("{s:?}"),
                format!("{expected:?}"),
                "simd {simd}, dense rows {dense_rows}"
            );
        }
    }
}

#[test]
fn deterministic_across_thread_counts_and_code_paths() {
    let (ny, nx) = (181, 360);
    let g = grid(ny, nx);
    let w = g.lat_weights();
    let mut rng = Rng(17);
    let o = with_nans(field(&mut rng, ny, nx, 280.0, 10.0), &mut rng, 0.01).mapv(|v| v as f32);
    let f = with_nans(field(&mut rng, ny, nx, 281.0, 10.0), &mut rng, 0.01).mapv(|v| v as f32);
    let c = field(&mut rng, ny, nx, 280.0, 8.0).mapv(|v| v as f32);
    let r = field(&mut rng, ny, nx, 280.0, 9.0).mapv(|v| v as f32);
    let inputs = FieldInputs::new(f.view(), o.view())
        .with_climatology(c.view())
        .with_reference(Reference::Field(r.view()));
    let run = |n: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
            .install(|| field_sums(&inputs, &w).unwrap())
    };
    let one = run(1);
    for n in [2, 3, 4, 8] {
        let s = run(n);
        // Compare bit patterns (PartialEq on f64 would also accept -0.0 == 0.0).
        assert_eq!(format!("{s:?}"), format!("{one:?}"), "{n} threads");
        assert_eq!(s, one);
    }
    assert_every_code_path_matches(&inputs, &w, &one);
    // Stacks too.
    let o3 = ndarray::stack![ndarray::Axis(0), o.view(), f.view(), c.view()];
    let f3 = ndarray::stack![ndarray::Axis(0), f.view(), o.view(), r.view()];
    let c3 = ndarray::stack![ndarray::Axis(0), c.view(), c.view(), c.view()];
    let si = StackInputs {
        forecast: f3.view(),
        truth: o3.view(),
        climatology: Some(c3.view()),
        skill_vs_climatology: true,
    };
    let run3 = |n: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
            .install(|| stack_sums(&si, &w).unwrap())
    };
    let one = run3(1);
    assert_eq!(format!("{:?}", run3(2)), format!("{one:?}"));
    assert_eq!(format!("{:?}", run3(5)), format!("{one:?}"));
}

#[test]
fn dense_rows_give_the_masked_bits() {
    // Mostly finite fields, as real ones are: most rows take the dense build.
    // A row length that is not a multiple of the lane count exercises the
    // padded chunk, and a few NaN/inf points send their rows down the masked
    // build. Every path must agree bit for bit, for f32 and f64 input.
    let (ny, nx) = (37, 143);
    let w = grid(ny, nx).lat_weights();
    let mut rng = Rng(5);
    let mut f = field(&mut rng, ny, nx, 281.0, 10.0).mapv(|v| v as f32);
    let o = field(&mut rng, ny, nx, 280.0, 10.0).mapv(|v| v as f32);
    let mut c = field(&mut rng, ny, nx, 280.0, 8.0).mapv(|v| v as f32);
    let r = field(&mut rng, ny, nx, 280.0, 9.0).mapv(|v| v as f32);
    f[[3, 141]] = f32::NAN;
    f[[9, 0]] = f32::INFINITY;
    c[[20, 77]] = f32::NAN;
    let inputs = FieldInputs::new(f.view(), o.view())
        .with_climatology(c.view())
        .with_reference(Reference::Field(r.view()));
    let expected = wx_scoring::__private::field_sums_with_path(
        &inputs,
        &w,
        wx_scoring::__private::CodePath {
            simd: false,
            dense_rows: false,
        },
    )
    .unwrap();
    assert_eq!(expected.n_pairs, (ny * nx - 2) as u64);
    assert_every_code_path_matches(&inputs, &w, &expected);
    for inputs in [
        FieldInputs::new(f.view(), o.view()),
        FieldInputs::new(f.view(), o.view())
            .with_climatology(c.view())
            .with_reference(Reference::Climatology),
    ] {
        let expected = field_sums(&inputs, &w).unwrap();
        assert_every_code_path_matches(&inputs, &w, &expected);
    }
    // f64 input: every path agrees too.
    let (f, o) = (f.mapv(|v| v as f64), o.mapv(|v| v as f64));
    let inputs = FieldInputs::new(f.view(), o.view());
    assert_every_code_path_matches(&inputs, &w, &field_sums(&inputs, &w).unwrap());
}

#[test]
fn runs_of_non_finite_rows_give_the_masked_bits_on_any_thread_count() {
    // Non-finite values in runs, as they come: a block of NaN forecast rows,
    // a missing (NaN) truth row, rows that are NaN only in part, clean rows
    // between them. The kernel carries a hint from row to row about which
    // build to try first; whatever it chooses, on any split of the rows
    // between threads, the bits must be the masked build's.
    let (ny, nx) = (61, 97);
    let w = grid(ny, nx).lat_weights();
    let mut rng = Rng(33);
    let mut f = field(&mut rng, ny, nx, 281.0, 10.0);
    let mut o = field(&mut rng, ny, nx, 280.0, 10.0);
    let c = field(&mut rng, ny, nx, 280.0, 8.0);
    for i in 5..25 {
        f.row_mut(i).fill(f64::NAN);
    }
    o.row_mut(30).fill(f64::NAN);
    for j in 0..nx / 2 {
        f[[40, j]] = f64::NAN;
        f[[41, 2 * j]] = f64::INFINITY;
    }
    f[[60, 96]] = f64::NAN;
    let all_nan = Array2::<f64>::from_elem((ny, nx), f64::NAN);
    let masked_only = wx_scoring::__private::CodePath {
        simd: false,
        dense_rows: false,
    };
    for f in [&f, &all_nan] {
        let inputs = FieldInputs::new(f.view(), o.view()).with_climatology(c.view());
        let expected =
            wx_scoring::__private::field_sums_with_path(&inputs, &w, masked_only).unwrap();
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| assert_every_code_path_matches(&inputs, &w, &expected));
        }
        // the same as f32
        let (f32_f, f32_o, f32_c) = (
            f.mapv(|v| v as f32),
            o.mapv(|v| v as f32),
            c.mapv(|v| v as f32),
        );
        let inputs = FieldInputs::new(f32_f.view(), f32_o.view()).with_climatology(f32_c.view());
        let expected =
            wx_scoring::__private::field_sums_with_path(&inputs, &w, masked_only).unwrap();
        assert_every_code_path_matches(&inputs, &w, &expected);
    }
    let inputs = FieldInputs::new(f.view(), o.view());
    let sums = field_sums(&inputs, &w).unwrap();
    let excluded = 20 * nx + nx + nx / 2 + nx / 2 + 1;
    assert_eq!(sums.n_pairs, (ny * nx - excluded) as u64);
}

#[test]
fn overflowing_difference_is_masked_and_fails_extreme() {
    // f − o overflows f64 at one point (and it is the row's first point, where
    // the shift is taken): the point is excluded, the rest stays finite, and
    // the variable fails the extreme-value check.
    let g = grid(5, 8);
    let mut rng = Rng(21);
    let o = field(&mut rng, 5, 8, 10.0, 2.0);
    let mut f = &o + 1.0;
    let mut o2 = o.clone();
    f[[2, 0]] = 1.7e308;
    o2[[2, 0]] = -1.7e308;
    let c = &o - &field(&mut rng, 5, 8, 0.0, 1.0);
    let m = score(
        &FieldInputs::new(f.view(), o2.view()).with_climatology(c.view()),
        &g,
    );
    assert!((m.bias.clone().unwrap() - 1.0).abs() < 1e-12);
    assert_eq!(m.n_pairs, 39);
    assert_eq!(m.max_abs_forecast, 1.7e308);
    // The ACC mask (f, o, c all finite) does include the point, and its
    // squares overflow: a failure value, not a panic and not a number.
    assert!(matches!(m.acc, Some(Err(_))), "{:?}", m.acc);
    // Coverage (39/40) is checked first; the extreme value fails it regardless.
    let mut lax = cfg().field;
    lax.coverage_floor = 0.9;
    assert!(matches!(
        m.field_failure(&lax),
        Some(FieldFailure::ExtremeValue { .. })
    ));
    // The same sums from every build of the kernel: a row of finite values
    // whose differences overflow is not dense.
    let inputs = FieldInputs::new(f.view(), o2.view()).with_climatology(c.view());
    let w = g.lat_weights();
    let expected = field_sums(&inputs, &w).unwrap();
    assert_eq!(expected.n_pairs, 39);
    assert_every_code_path_matches(&inputs, &w, &expected);
}
