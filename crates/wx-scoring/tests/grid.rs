//! Grids, orientation, weights and the bilinear regridder (docs/scoring.md §2).

use ndarray::Array2;
use wx_scoring::*;

#[test]
fn regular_grid_and_weights() {
    let g = Grid::regular_global(721, 1440).unwrap();
    assert_eq!(g.shape(), (721, 1440));
    assert_eq!(g.lats()[0], 90.0);
    assert_eq!(g.lats()[720], -90.0);
    assert_eq!(g.lons()[1], 0.25);
    let w = g.lat_weights();
    assert!((w[360] - 1.0).abs() < 1e-15);
    assert!(
        w[0] > 0.0 && w[0] < 1e-16,
        "pole weight is cos(90°) ≈ 6e-17"
    );
    assert!((w[120] - 60f64.to_radians().cos()).abs() < 1e-15);
}

#[test]
fn grid_validation() {
    assert!(
        Grid::new(vec![0.0, 10.0], vec![0.0]).is_err(),
        "ascending lats are not canonical"
    );
    assert!(Grid::new(vec![10.0, 0.0], vec![-10.0, 0.0]).is_err());
    assert!(Grid::new(vec![95.0], vec![0.0]).is_err());
    assert!(Grid::new(vec![f64::NAN], vec![0.0]).is_err());
    assert!(
        Grid::normalise(&[0.0, 1.0, 0.5], &[0.0]).is_err(),
        "non-monotonic"
    );
    assert!(
        Grid::normalise(&[0.0], &[-180.0, 180.0]).is_err(),
        "duplicate modulo 360"
    );
}

#[test]
fn normalise_flips_and_rotates() {
    // Ascending latitudes and longitudes in [-180, 180).
    let lats = [-90.0, 0.0, 90.0];
    let lons = [-180.0, -90.0, 0.0, 90.0];
    let (g, o) = Grid::normalise(&lats, &lons).unwrap();
    assert_eq!(g.lats(), &[90.0, 0.0, -90.0]);
    assert_eq!(g.lons(), &[0.0, 90.0, 180.0, 270.0]);
    assert!(!o.is_identity());
    // value = 10·lat_index + lon_index in the input layout
    let field = Array2::from_shape_fn((3, 4), |(i, j)| (10 * i + j) as f32);
    let out = o.apply(field.view()).unwrap();
    // canonical (90°, 0°) = input (row 2, lon 0° = col 2)
    assert_eq!(out[[0, 0]], 22.0);
    // canonical (−90°, 270°) = input (row 0, lon −90° = col 1)
    assert_eq!(out[[2, 3]], 1.0);
    // canonical (0°, 180°) = input (row 1, lon −180° = col 0)
    assert_eq!(out[[1, 2]], 10.0);
    let stack = ndarray::stack![ndarray::Axis(0), field.view(), field.view()];
    assert_eq!(
        o.apply_stack(stack.view())
            .unwrap()
            .index_axis(ndarray::Axis(0), 1),
        out
    );
    let (g2, o2) = Grid::normalise(g.lats(), g.lons()).unwrap();
    assert_eq!(g2, g);
    assert!(o2.is_identity());
    assert!(o.apply(Array2::<f32>::zeros((3, 5)).view()).is_err());
    assert!(
        o.apply(Array2::<f32>::zeros((2, 4)).view()).is_err(),
        "wrong number of rows"
    );
}

#[test]
fn identity_regrid_copies_bits() {
    let g = Grid::regular_global(19, 36).unwrap();
    let r = Regridder::new(&g, &g);
    assert!(r.is_identity());
    let mut f = Array2::from_shape_fn((19, 36), |(i, j)| (i as f32 * 0.37).sin() + j as f32 * 1e-3);
    f[[3, 4]] = f32::NAN;
    let out = r.apply(f.view()).unwrap();
    for (a, b) in out.iter().zip(f.iter()) {
        assert_eq!(a.to_bits(), b.to_bits());
    }
}

#[test]
fn bilinear_reproduces_linear_functions() {
    // A 2° source onto a 1° target: a function linear in lat and in lon (away
    // from the dateline) is reproduced exactly by bilinear interpolation.
    let src = Grid::regular_global(91, 180).unwrap();
    let dst = Grid::regular_global(181, 360).unwrap();
    let f = |lat: f64, lon: f64| 3.0 * lat + 0.5 * lon;
    let sf = Array2::from_shape_fn((91, 180), |(i, j)| f(src.lats()[i], src.lons()[j]));
    let out = Regridder::new(&src, &dst).apply(sf.view()).unwrap();
    for i in 0..181 {
        for j in 0..358 {
            let e = f(dst.lats()[i], dst.lons()[j]);
            assert!(
                (out[[i, j]] - e).abs() < 1e-10,
                "({i},{j}) {} vs {e}",
                out[[i, j]]
            );
        }
    }
}

#[test]
fn periodic_longitude() {
    // Source columns at 0, 90, 180, 270: target 315 lies between 270 and 360 (= 0).
    let src = Grid::new(vec![0.0], vec![0.0, 90.0, 180.0, 270.0]).unwrap();
    let dst = Grid::new(vec![0.0], vec![45.0, 315.0]).unwrap();
    let sf = Array2::from_shape_vec((1, 4), vec![0.0f64, 10.0, 20.0, 30.0]).unwrap();
    let out = Regridder::new(&src, &dst).apply(sf.view()).unwrap();
    assert!((out[[0, 1]] - 15.0).abs() < 1e-12); // (30 + 0)/2 across 360°
    assert!((out[[0, 0]] - 5.0).abs() < 1e-12);
    // A source given in [-180, 180) convention, normalised, agrees.
    let (g, o) = Grid::normalise(&[0.0], &[-180.0, -90.0, 0.0, 90.0]).unwrap();
    let sf2 = o
        .apply(
            Array2::from_shape_vec((1, 4), vec![20.0f64, 30.0, 0.0, 10.0])
                .unwrap()
                .view(),
        )
        .unwrap();
    assert_eq!(sf2, sf);
    assert_eq!(g, src);
}

#[test]
fn nan_neighbour_with_zero_weight_does_not_spread() {
    // Target coinciding with source points in lat, halfway in lon.
    let src = Grid::new(vec![10.0, 0.0, -10.0], vec![0.0, 10.0, 20.0]).unwrap();
    let dst = Grid::new(vec![10.0, 0.0, -10.0], vec![5.0, 10.0]).unwrap();
    let mut sf = Array2::from_shape_fn((3, 3), |(i, j)| (i * 3 + j) as f64);
    sf[[1, 0]] = f64::NAN; // row 0°, lon 0°
    let out = Regridder::new(&src, &dst).apply(sf.view()).unwrap();
    assert!(out[[1, 0]].is_nan(), "NaN with positive weight propagates");
    assert_eq!(out[[1, 1]], 4.0, "exact copy at a coinciding point");
    assert_eq!(out[[0, 0]], 0.5, "row above not contaminated");
    assert_eq!(out[[2, 0]], 6.5, "row below not contaminated");
}

#[test]
fn rows_outside_source_take_nearest_row() {
    // A 720-row forecast (90 … −89.75) onto the 721-row target: the −90 row
    // is filled from the −89.75 row; every other row is an exact copy.
    let src = Grid::new(
        (0..720).map(|i| 90.0 - 0.25 * i as f64).collect(),
        (0..1440).map(|j| 0.25 * j as f64).collect(),
    )
    .unwrap();
    let dst = Grid::regular_global(721, 1440).unwrap();
    let sf = Array2::from_shape_fn((720, 1440), |(i, j)| (i * 1440 + j) as f32);
    let r = Regridder::new(&src, &dst);
    assert!(!r.is_identity());
    let out = r.apply(sf.view()).unwrap();
    assert_eq!(out.dim(), (721, 1440));
    assert_eq!(out.row(720), sf.row(719));
    assert_eq!(out.row(0), sf.row(0));
    assert_eq!(out.row(500), sf.row(500));
    // Midpoint-latitude grid (89.875 … −89.875): both pole rows are filled
    // from the nearest row, interior rows are averages of two source rows.
    let mid = Grid::new(
        (0..720).map(|i| 89.875 - 0.25 * i as f64).collect(),
        (0..1440).map(|j| 0.25 * j as f64).collect(),
    )
    .unwrap();
    let out = Regridder::new(&mid, &dst).apply(sf.view()).unwrap();
    assert_eq!(out.row(0), sf.row(0));
    assert_eq!(out.row(720), sf.row(719));
    assert_eq!(out[[1, 7]], 0.5 * (sf[[0, 7]] + sf[[1, 7]]));
    assert!(r.apply(Array2::<f32>::zeros((721, 1440)).view()).is_err());
    // Stacks: every level is regridded the same way.
    let stack = ndarray::stack![ndarray::Axis(0), sf.view(), sf.mapv(|v| -v).view()];
    let out3 = r.apply_stack(stack.view()).unwrap();
    assert_eq!(out3.dim(), (2, 721, 1440));
    assert_eq!(
        out3.index_axis(ndarray::Axis(0), 1).row(720),
        sf.row(719).mapv(|v| -v)
    );
}

/// Latitudes reversed, longitudes already canonical (the WeatherBench2 climatology): rows are
/// copied whole, level by level, in reverse order.
#[test]
fn a_latitude_flip_reverses_rows_of_every_level() {
    let lats = [-90.0, -45.0, 0.0, 45.0, 90.0];
    let lons = [0.0, 90.0, 180.0, 270.0];
    let (g, o) = Grid::normalise(&lats, &lons).unwrap();
    assert_eq!(g.lats(), &[90.0, 45.0, 0.0, -45.0, -90.0]);
    let stack =
        ndarray::Array3::from_shape_fn((3, 5, 4), |(l, i, j)| (100 * l + 10 * i + j) as f32);
    let out = o.apply_stack(stack.view()).unwrap();
    for l in 0..3 {
        for i in 0..5 {
            for j in 0..4 {
                assert_eq!(out[[l, i, j]].to_bits(), stack[[l, 4 - i, j]].to_bits());
            }
        }
    }
    assert_eq!(
        o.apply(stack.index_axis(ndarray::Axis(0), 2)).unwrap(),
        out.index_axis(ndarray::Axis(0), 2)
    );
}

/// A source grid whose points are a subset of the target's rows (a 0.25° store without the
/// south pole) is copied row by row: every value the bits of its source point, on every level.
#[test]
fn coinciding_rows_are_copied_bit_for_bit_in_a_stack() {
    let src = Grid::new(vec![90.0, 45.0, 0.0, -45.0], vec![0.0, 90.0, 180.0, 270.0]).unwrap();
    let dst = Grid::regular_global(5, 4).unwrap();
    let r = Regridder::new(&src, &dst);
    let stack = ndarray::Array3::from_shape_fn((2, 4, 4), |(l, i, j)| {
        if (l, i, j) == (1, 2, 3) {
            f32::NAN
        } else {
            (l as f32 + 0.1) * (i as f32 - 1.7) + j as f32 / 3.0
        }
    });
    let out = r.apply_stack(stack.view()).unwrap();
    for l in 0..2 {
        for i in 0..5 {
            for j in 0..4 {
                // the −90 row takes the nearest source row
                assert_eq!(out[[l, i, j]].to_bits(), stack[[l, i.min(3), j]].to_bits());
            }
        }
    }
}

/// Writing into a reused buffer (`apply_stack_in`, whose contents are ignored) gives the bits
/// of a fresh result: for the regridder (interpolated and copied rows) and the orientation, with
/// a buffer too short, exactly long enough and too long, all full of stale values.
#[test]
fn results_in_reused_buffers_equal_fresh_ones() {
    let src = Grid::new(
        vec![80.0, 30.0, -20.0, -70.0],
        vec![0.0, 90.0, 180.0, 270.0],
    )
    .unwrap();
    let dst = Grid::regular_global(7, 8).unwrap();
    let r = Regridder::new(&src, &dst);
    let stack = ndarray::Array3::from_shape_fn((3, 4, 4), |(l, i, j)| {
        (l as f32 + 0.3) * (i as f32 - 1.2) + j as f32 / 7.0
    });
    let fresh = r.apply_stack(stack.view()).unwrap();
    let (_, o) = Grid::normalise(&[-45.0, 0.0, 45.0, 89.0], &[-180.0, -90.0, 0.0, 90.0]).unwrap();
    let oriented = o.apply_stack(stack.view()).unwrap();
    let bits = |a: &ndarray::Array3<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    for stale in [1, fresh.len(), 3 * fresh.len()] {
        let reused = r
            .apply_stack_in(stack.view(), vec![f32::NAN; stale])
            .unwrap();
        assert_eq!(reused.dim(), fresh.dim());
        assert_eq!(
            bits(&reused),
            bits(&fresh),
            "regridded into {stale} stale values"
        );
        let reused = o.apply_stack_in(stack.view(), vec![-1.0; stale]).unwrap();
        assert_eq!(
            bits(&reused),
            bits(&oriented),
            "reoriented into {stale} stale values"
        );
    }
}
