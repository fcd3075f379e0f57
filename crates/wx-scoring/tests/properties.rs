//! Property tests: longitude-rotation invariance, unit scaling, ACC ∈ [−1, 1],
//! agreement with the naive oracle.

mod common;

use common::naive;
use ndarray::Array2;
use proptest::prelude::*;
use wx_scoring::*;

/// Fields (f, o, c, r) on an ny × nx grid, values in a realistic range with
/// an optional share of NaNs.
fn fields() -> impl Strategy<Value = (usize, usize, Vec<[f64; 4]>)> {
    (2usize..10, 1usize..24).prop_flat_map(|(ny, nx)| {
        let point = (
            prop_oneof![9 => -50.0..50.0f64, 1 => Just(f64::NAN)],
            -50.0..50.0f64,
            -50.0..50.0f64,
            prop_oneof![9 => -50.0..50.0f64, 1 => Just(f64::NAN)],
        )
            .prop_map(|(f, o, c, r)| [f, o, c, r]);
        (
            Just(ny),
            Just(nx),
            proptest::collection::vec(point, ny * nx),
        )
    })
}

fn arrays(ny: usize, nx: usize, v: &[[f64; 4]]) -> [Array2<f64>; 4] {
    [0, 1, 2, 3].map(|k| Array2::from_shape_fn((ny, nx), |(i, j)| v[i * nx + j][k]))
}

fn metrics(ny: usize, a: &[Array2<f64>; 4]) -> FieldMetrics {
    let w = Grid::regular_global(ny, a[0].ncols())
        .unwrap()
        .lat_weights();
    score_field(
        &FieldInputs::new(a[0].view(), a[1].view())
            .with_climatology(a[2].view())
            .with_reference(Reference::Field(a[3].view())),
        &w,
        &ScoringConfig::default(),
    )
    .unwrap()
}

fn close(a: &MetricValue, b: &MetricValue, scale: f64, rel: f64) -> bool {
    match (a, b) {
        (Ok(x), Ok(y)) => {
            let y = y * scale;
            (x - y).abs() <= rel * x.abs().max(y.abs()) + 1e-12 * scale.abs().max(1.0)
        }
        (Err(_), Err(_)) => true,
        _ => false,
    }
}

fn o(v: &Option<MetricValue>) -> MetricValue {
    v.clone().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn longitude_rotation_invariance((ny, nx, v) in fields(), shift in 0usize..24) {
        let a = arrays(ny, nx, &v);
        let k = shift % nx;
        let rot = a.clone().map(|x| Array2::from_shape_fn((ny, nx), |(i, j)| x[[i, (j + k) % nx]]));
        let (m, mr) = (metrics(ny, &a), metrics(ny, &rot));
        prop_assert_eq!(m.coverage, mr.coverage);
        prop_assert_eq!(m.n_pairs, mr.n_pairs);
        for (x, y) in [(&m.bias, &mr.bias), (&m.mse, &mr.mse), (&m.mae, &mr.mae), (&o(&m.acc), &o(&mr.acc)),
                       (&o(&m.skill), &o(&mr.skill)), (&o(&m.rmse_clim), &o(&mr.rmse_clim)),
                       (&o(&m.pattern_correlation), &o(&mr.pattern_correlation)),
                       (&o(&m.clone_distance), &o(&mr.clone_distance))] {
            prop_assert!(close(x, y, 1.0, 1e-9), "{:?} vs {:?}", x, y);
        }
    }

    #[test]
    fn unit_scaling((ny, nx, v) in fields(), s in prop_oneof![0.001..1000.0f64, -1000.0..-0.001f64]) {
        let a = arrays(ny, nx, &v);
        let scaled = a.clone().map(|x| x.mapv(|y| y * s));
        let (m, ms) = (metrics(ny, &a), metrics(ny, &scaled));
        // RMSE, MAE scale by |s|, bias by s, MSE and clone distance by s².
        prop_assert!(close(&ms.rmse, &m.rmse, s.abs(), 1e-9));
        prop_assert!(close(&ms.mae, &m.mae, s.abs(), 1e-9));
        prop_assert!(close(&ms.bias, &m.bias, s, 1e-9));
        prop_assert!(close(&ms.mse, &m.mse, s * s, 1e-9));
        prop_assert!(close(&o(&ms.clone_distance), &o(&m.clone_distance), s * s, 1e-9));
        prop_assert!(close(&o(&ms.rmse_clim), &o(&m.rmse_clim), s.abs(), 1e-9));
        // ACC, skill and pattern correlation are unit-free.
        prop_assert!(close(&o(&ms.acc), &o(&m.acc), 1.0, 1e-7));
        prop_assert!(close(&o(&ms.skill), &o(&m.skill), 1.0, 1e-7));
        prop_assert!(close(&o(&ms.pattern_correlation), &o(&m.pattern_correlation), 1.0, 1e-7));
    }

    #[test]
    fn correlations_are_bounded((ny, nx, v) in fields()) {
        let m = metrics(ny, &arrays(ny, nx, &v));
        if let Some(Ok(acc)) = m.acc { prop_assert!((-1.0..=1.0).contains(&acc)); }
        if let Some(Ok(p)) = m.pattern_correlation { prop_assert!((-1.0..=1.0).contains(&p)); }
        if let Some(Ok(s)) = m.skill { prop_assert!(s <= 1.0); }
        prop_assert!((0.0..=1.0).contains(&m.coverage));
    }

    #[test]
    fn agrees_with_naive_oracle((ny, nx, v) in fields()) {
        let a = arrays(ny, nx, &v);
        let m = metrics(ny, &a);
        let w = Grid::regular_global(ny, nx).unwrap().lat_weights();
        if let Ok(mse) = m.mse {
            let n = naive::mse(a[0].view(), a[1].view(), &w);
            prop_assert!((mse - n).abs() <= 1e-9 * n.abs().max(1.0));
            let b = naive::bias(a[0].view(), a[1].view(), &w);
            prop_assert!((m.bias.clone().unwrap() - b).abs() <= 1e-9 * b.abs().max(1.0));
        }
        if let Some(Ok(acc)) = m.acc {
            let n = naive::acc(a[0].view(), a[1].view(), a[2].view(), &w);
            prop_assert!((acc - n).abs() <= 1e-7, "{} vs {}", acc, n);
        }
    }
}
