//! The Rust side of the Python package's speed benchmark (`cargo xtask bench python`): times
//! wx-scoring's `score_field` on fields that `benches/bench_field.py` wrote, the same arrays
//! the Python side scores, and prints the median and minimum seconds per call and the RMSE
//! (so the script can check that both sides computed the same thing).
//!
//! ```text
//! kernel_timing DIR NLAT NLON REPS    # DIR holds forecast.f32, truth.f32, climatology.f32
//! ```

use std::path::Path;
use std::time::Instant;

use ndarray::Array2;
use wx_scoring::{FieldInputs, Reference, ScoringConfig, lat_weights, score_field};

type Fail = Box<dyn std::error::Error>;

fn read(path: &Path, nlat: usize, nlon: usize) -> Result<Array2<f32>, Fail> {
    let bytes = std::fs::read(path)?;
    if bytes.len() != nlat * nlon * 4 {
        return Err(format!("{}: expected {nlat}×{nlon} f32 values", path.display()).into());
    }
    let values = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect();
    Ok(Array2::from_shape_vec((nlat, nlon), values)?)
}

fn main() -> Result<(), Fail> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, nlat, nlon, reps] = args.as_slice() else {
        return Err("usage: kernel_timing DIR NLAT NLON REPS".into());
    };
    let (nlat, nlon, reps): (usize, usize, usize) = (nlat.parse()?, nlon.parse()?, reps.parse()?);
    let dir = Path::new(dir);
    let f = read(&dir.join("forecast.f32"), nlat, nlon)?;
    let o = read(&dir.join("truth.f32"), nlat, nlon)?;
    let c = read(&dir.join("climatology.f32"), nlat, nlon)?;
    // the latitudes the script passes: 90 − i·Δ, exactly
    let step = 180.0 / (nlat - 1) as f64;
    let lats: Vec<f64> = (0..nlat).map(|i| 90.0 - i as f64 * step).collect();
    let weights = lat_weights(&lats);
    let cfg = ScoringConfig::default();
    let inputs = FieldInputs::new(f.view(), o.view())
        .with_climatology(c.view())
        .with_reference(Reference::Climatology);
    let mut rmse = 0.0;
    for _ in 0..3 {
        rmse = score_field(&inputs, &weights, &cfg)?.rmse?;
    }
    let mut seconds: Vec<f64> = (0..reps)
        .map(|_| {
            let start = Instant::now();
            let m = score_field(&inputs, &weights, &cfg);
            let t = start.elapsed().as_secs_f64();
            std::hint::black_box(m).map(|_| t)
        })
        .collect::<Result<_, _>>()?;
    seconds.sort_by(f64::total_cmp);
    println!(
        "{{\"median_s\": {}, \"min_s\": {}, \"rmse\": {rmse}}}",
        seconds[seconds.len() / 2],
        seconds[0]
    );
    Ok(())
}
