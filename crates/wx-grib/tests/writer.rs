//! The GRIB2 writer checked by the decoder of this crate: a cycle written to a local tree in
//! NOAA's layout is listed by its `.idx` at the offsets of its messages, and decodes to what was
//! written within the packing precision (NaN as missing, `z` as `HGT = z / g`).

use chrono::{DateTime, Utc};
use ndarray::Array3;
use wx_grib::GfsLayout;
use wx_grib::catalog::MessageRequest;
use wx_grib::grib;
use wx_grib::idx::GribIndex;
use wx_grib::writer::{CycleField, write_local_cycle};
use wx_model::Variable;
use wx_model::catalogue::STANDARD_GRAVITY;

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

#[test]
fn a_written_cycle_is_indexed_and_decodes_to_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let layout = GfsLayout::with_product("pgrb2.test");
    let init = t("2025-03-01T06:00:00Z");
    let lats: Vec<f64> = (0..10).map(|j| 45.0 - 5.0 * j as f64).collect();
    let lons: Vec<f64> = (0..12).map(|i| 30.0 * i as f64).collect();
    let t2m = Array3::from_shape_fn((1, 10, 12), |(_, j, i)| {
        if (j, i) == (2, 5) {
            f32::NAN
        } else {
            260.0 + j as f32 * 1.5 - i as f32 * 0.25
        }
    });
    let levels = [500u16, 850];
    let z = Array3::from_shape_fn((2, 10, 12), |(k, j, i)| {
        5000.0 * (k as f32 + 1.0) + j as f32 * 9.5 + i as f32
    });
    let fields = [
        CycleField {
            variable: Variable::T2m,
            levels: &[],
            lats: &lats,
            lons: &lons,
            data: t2m.view(),
        },
        CycleField {
            variable: Variable::Z,
            levels: &levels,
            lats: &lats,
            lons: &lons,
            data: z.view(),
        },
    ];
    let path = write_local_cycle(dir.path(), &layout, init, 6, &fields).unwrap();
    assert_eq!(path, dir.path().join(layout.key(init, 6)));

    let bytes = std::fs::read(&path).unwrap();
    let idx = std::fs::read_to_string(dir.path().join(layout.idx_key(init, 6))).unwrap();
    let index = GribIndex::parse(&idx).unwrap();
    let messages = grib::split_messages(&bytes).unwrap();
    assert_eq!(index.entries().len(), 3);
    assert_eq!(messages.len(), 3);

    let wanted = [
        (Variable::T2m, None, t2m.index_axis(ndarray::Axis(0), 0)),
        (Variable::Z, Some(500), z.index_axis(ndarray::Axis(0), 0)),
        (Variable::Z, Some(850), z.index_axis(ndarray::Axis(0), 1)),
    ];
    for (n, (variable, level, values)) in wanted.into_iter().enumerate() {
        let request = MessageRequest::new(variable, level).unwrap();
        let entries = index.find(request.idx_variable(), &request.idx_level());
        assert_eq!(entries.len(), 1, "{}", request.describe());
        let range = index.range_of(entries[0]);
        let end = range.end.map_or(bytes.len(), |e| e as usize);
        let message = &bytes[range.start as usize..end];
        assert_eq!(
            message,
            messages[n],
            "{}: the .idx range",
            request.describe()
        );

        let decoded = grib::decode_message(message).unwrap();
        assert_eq!(decoded.len(), 1);
        let field = &decoded[0];
        assert!(request.matches(&field.identity), "{}", field.identity);
        assert_eq!(field.identity.reference_time, init);
        assert_eq!(field.identity.forecast_minutes, 6 * 60);
        assert_eq!((&field.grid.lats, &field.grid.lons), (&lats, &lons));
        for (w, r) in values.iter().zip(&field.values) {
            if w.is_nan() {
                assert!(r.is_nan());
                continue;
            }
            let got = f64::from(*r) * request.scale;
            // packing precision: 10^-3 for TMP, 10^-2 of HGT = z / g
            let tol = if variable == Variable::Z {
                0.006 * STANDARD_GRAVITY
            } else {
                6e-4
            };
            assert!((got - f64::from(*w)).abs() <= tol, "{w} read back as {got}");
        }
    }
}

#[test]
fn a_field_whose_data_does_not_fit_its_coordinates_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let lats = [10.0, 0.0];
    let lons = [0.0, 10.0, 20.0];
    let data = Array3::<f32>::zeros((1, 2, 3));
    let field = CycleField {
        variable: Variable::Z,
        levels: &[500, 850],
        lats: &lats,
        lons: &lons,
        data: data.view(),
    };
    let err = write_local_cycle(
        dir.path(),
        &GfsLayout::default(),
        t("2025-03-01T00:00:00Z"),
        0,
        &[field],
    )
    .unwrap_err();
    assert!(err.reason.contains("[2, 2, 3]"), "{err}");
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing written"
    );
}
