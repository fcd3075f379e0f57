//! Score a forecast field against a truth field, as another Rust tool would.
//!
//! ```text
//! cargo run --release -p wx-scoring --example score_field
//! cargo run --release -p wx-scoring --example score_field -- forecast.f32 truth.f32 721 1440
//! ```
//!
//! With arguments, the two files are raw little-endian f32 `(lat, lon)` fields
//! on a regular global grid (lat 90 → −90, lon from 0). Without, a synthetic
//! 720-row forecast is regridded onto a 721-row truth grid first.

use ndarray::Array2;
use wx_scoring::{
    FieldInputs, Grid, Reference, Regridder, ScoringConfig, VariableMetrics, score_field,
};

fn read_f32(path: &str, ny: usize, nx: usize) -> Array2<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    assert_eq!(
        bytes.len(),
        ny * nx * 4,
        "{path}: expected {ny}×{nx} f32 values"
    );
    let v = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    Array2::from_shape_vec((ny, nx), v).unwrap()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cfg = ScoringConfig::default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (truth_grid, forecast, truth, clim) = if let [f, o, ny, nx] = args.as_slice() {
        let (ny, nx) = (ny.parse()?, nx.parse()?);
        (
            Grid::regular_global(ny, nx)?,
            read_f32(f, ny, nx),
            read_f32(o, ny, nx),
            None,
        )
    } else {
        // Synthetic 2 m temperature: truth on the 0.25° 721-row ERA5 grid, a
        // forecast on a 720-row grid without the south pole row.
        let truth_grid = Grid::regular_global(721, 1440)?;
        let fc_grid = Grid::new(
            (0..720).map(|i| 90.0 - 0.25 * i as f64).collect(),
            (0..1440).map(|j| 0.25 * j as f64).collect(),
        )?;
        let t = |lat: f64, lon: f64| {
            288.0 - 30.0 * lat.to_radians().sin().powi(2) + 3.0 * (3.0 * lon.to_radians()).cos()
        };
        let truth = Array2::from_shape_fn((721, 1440), |(i, j)| {
            t(truth_grid.lats()[i], truth_grid.lons()[j]) as f32
        });
        let clim = Array2::from_shape_fn((721, 1440), |(i, _)| {
            t(truth_grid.lats()[i], 0.0) as f32 - 1.0
        });
        let fc_native = Array2::from_shape_fn((720, 1440), |(i, j)| {
            (t(fc_grid.lats()[i], fc_grid.lons()[j])
                + 0.4
                + 0.3 * ((i * 7 + j * 13) % 10) as f64 / 10.0) as f32
        });
        // Precompute the regridder once per (source, target) pair; reuse it for every field.
        let regridder = Regridder::new(&fc_grid, &truth_grid);
        let forecast = regridder.apply(fc_native.view())?;
        (truth_grid, forecast, truth, Some(clim))
    };

    let weights = truth_grid.lat_weights();
    let mut inputs = FieldInputs::new(forecast.view(), truth.view());
    if let Some(c) = &clim {
        inputs = inputs
            .with_climatology(c.view())
            .with_reference(Reference::Climatology);
    }
    let m = score_field(&inputs, &weights, &cfg)?;
    println!("coverage   {:.6}", m.coverage);
    println!("bias       {:?}", m.bias);
    println!("rmse       {:?}", m.rmse);
    println!("mae        {:?}", m.mae);
    if let Some(acc) = &m.acc {
        println!("acc        {acc:?}");
        println!("skill_clim {:?}", m.skill.as_ref().unwrap());
        println!("rmse_clim  {:?}", m.rmse_clim.as_ref().unwrap());
    }
    match m.field_failure(&cfg.field) {
        Some(f) => println!("variable fails: {f}"),
        None => println!("field checks passed"),
    }
    // The same metrics as a storable variable result (JSON via serde).
    println!("{}", serde_json::to_string(&VariableMetrics::from(&m))?);
    Ok(())
}
