//! Fused kernel vs a naive one-pass-per-metric baseline vs plain read
//! bandwidth, on 721 × 1440 f32 fields, plus a whole ERA5 lead for one miner.
//!
//! Run: `cargo bench -p wx-scoring --bench kernel`. Throughput is reported in
//! bytes of input read (3 f32 fields: forecast, truth, climatology).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ndarray::{Array2, Array3, ArrayView2, Axis};
use wx_scoring::{
    FieldInputs, Grid, Reference, ScoringConfig, StackInputs, field_sums, score_field, score_levels,
};

const NY: usize = 721;
const NX: usize = 1440;

fn hash(mut x: u64) -> f32 {
    x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    (x & 0xFFFF) as f32 / 65536.0 - 0.5
}

fn field(seed: u64, offset: f32, amp: f32, nlev: usize) -> Array3<f32> {
    // Separable large-scale pattern (precomputed per row and column) plus noise.
    let rows: Vec<f32> = (0..NY)
        .map(|i| (2.0 * i as f32 / NY as f32 * std::f32::consts::PI + seed as f32).sin())
        .collect();
    let cols: Vec<f32> = (0..NX)
        .map(|j| (3.0 * j as f32 / NX as f32 * std::f32::consts::TAU).cos())
        .collect();
    Array3::from_shape_fn((nlev, NY, NX), |(k, i, j)| {
        offset
            + k as f32
            + amp * (rows[i] * cols[j] + 0.3 * hash(seed ^ ((k * NY + i) * NX + j) as u64))
    })
}

fn pool(n: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .unwrap()
}

/// Plain sum of the same bytes: the read-bandwidth yardstick.
fn plain_sum(fields: &[&[f32]]) -> f32 {
    let mut acc = [0f32; 16];
    for f in fields {
        for c in f.chunks_exact(16) {
            for l in 0..16 {
                acc[l] += c[l];
            }
        }
    }
    acc.iter().sum()
}

fn plain_sum_par(fields: &[&[f32]]) -> f32 {
    use rayon::prelude::*;
    fields
        .iter()
        .map(|f| f.par_chunks(NX * 16).map(|c| plain_sum(&[c])).sum::<f32>())
        .sum()
}

/// Naive baseline: the ERA5 metrics (bias, MSE, MAE, ACC, SS_clim, RMSE_clim,
/// coverage), each in its own pass with its own mask; centred ones in two
/// passes. Straightforward f64 code, cos-lat weight per row.
fn naive_era5(f: ArrayView2<f32>, o: ArrayView2<f32>, c: ArrayView2<f32>, w: &[f64]) -> [f64; 8] {
    let (f, o, c) = (
        f.as_slice().unwrap(),
        o.as_slice().unwrap(),
        c.as_slice().unwrap(),
    );
    let pass = |mask: &dyn Fn(usize) -> bool, val: &dyn Fn(usize) -> f64| {
        let (mut s, mut ws) = (0.0, 0.0);
        for (i, &wi) in w.iter().enumerate() {
            for j in i * NX..(i + 1) * NX {
                if mask(j) {
                    s += wi * val(j);
                    ws += wi;
                }
            }
        }
        s / ws
    };
    let fin = |x: f32| x.is_finite();
    let fo = |j: usize| fin(f[j]) && fin(o[j]);
    let foc = |j: usize| fo(j) && fin(c[j]);
    let co = |j: usize| fin(c[j]) && fin(o[j]);
    let e = |j: usize| f[j] as f64 - o[j] as f64;
    let bias = pass(&fo, &e);
    let mse = pass(&fo, &|j| e(j) * e(j));
    let mae = pass(&fo, &|j| e(j).abs());
    let a = |j: usize| f[j] as f64 - c[j] as f64;
    let b = |j: usize| o[j] as f64 - c[j] as f64;
    let ma = pass(&foc, &a);
    let mb = pass(&foc, &b);
    let sab = pass(&foc, &|j| (a(j) - ma) * (b(j) - mb));
    let saa = pass(&foc, &|j| (a(j) - ma).powi(2));
    let sbb = pass(&foc, &|j| (b(j) - mb).powi(2));
    let acc = sab / (saa * sbb).sqrt();
    let bias_foc = pass(&foc, &e);
    let mse_bc = pass(&foc, &|j| (e(j) - bias_foc).powi(2));
    let mse_ref = pass(&foc, &|j| b(j) * b(j));
    let rmse_clim = pass(&co, &|j| b(j) * b(j)).sqrt();
    let n_o = o.iter().filter(|x| x.is_finite()).count();
    let n_fo = (0..f.len()).filter(|&j| fo(j)).count();
    [
        bias,
        mse,
        mae,
        acc,
        1.0 - mse_bc / mse_ref,
        rmse_clim,
        n_fo as f64 / n_o as f64,
        0.0,
    ]
}

fn bench(cr: &mut Criterion) {
    let grid = Grid::regular_global(NY, NX).unwrap();
    let w = grid.lat_weights();
    let cfg = ScoringConfig::default();
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let f3 = field(1, 280.0, 10.0, 1);
    let o3 = field(2, 280.0, 10.0, 1);
    let c3 = field(3, 279.0, 8.0, 1);
    let (f, o, c) = (
        f3.index_axis(Axis(0), 0),
        o3.index_axis(Axis(0), 0),
        c3.index_axis(Axis(0), 0),
    );
    let bytes = 3 * NY * NX * std::mem::size_of::<f32>();
    let inputs = FieldInputs::new(f, o)
        .with_climatology(c)
        .with_reference(Reference::Climatology);

    let mut g = cr.benchmark_group("field_721x1440_f32_foc");
    g.throughput(Throughput::Bytes(bytes as u64));
    let slices = [
        f.as_slice().unwrap(),
        o.as_slice().unwrap(),
        c.as_slice().unwrap(),
    ];
    g.bench_function("plain_sum_1t", |b| {
        b.iter(|| black_box(plain_sum(black_box(&slices))))
    });
    let p1 = pool(1);
    let pn = pool(ncpu);
    g.bench_function(format!("plain_sum_{ncpu}t"), |b| {
        b.iter(|| pn.install(|| black_box(plain_sum_par(black_box(&slices)))))
    });
    g.bench_function("fused_1t", |b| {
        b.iter(|| p1.install(|| black_box(field_sums(black_box(&inputs), &w).unwrap())))
    });
    g.bench_function(format!("fused_{ncpu}t"), |b| {
        b.iter(|| pn.install(|| black_box(field_sums(black_box(&inputs), &w).unwrap())))
    });
    // The masked build on every row (what rows holding a NaN take).
    let masked = wx_scoring::__private::CodePath {
        simd: true,
        dense_rows: false,
    };
    g.bench_function("fused_masked_1t", |b| {
        b.iter(|| {
            p1.install(|| {
                black_box(
                    wx_scoring::__private::field_sums_with_path(black_box(&inputs), &w, masked)
                        .unwrap(),
                )
            })
        })
    });
    // A forecast that is NaN everywhere (a broken miner): every row needs its masks.
    let nan_forecast = Array2::<f32>::from_elem((NY, NX), f32::NAN);
    let nan_inputs = FieldInputs::new(nan_forecast.view(), o)
        .with_climatology(c)
        .with_reference(Reference::Climatology);
    g.bench_function("fused_nan_forecast_1t", |b| {
        b.iter(|| p1.install(|| black_box(field_sums(black_box(&nan_inputs), &w).unwrap())))
    });
    g.bench_function("naive_1t", |b| {
        b.iter(|| black_box(naive_era5(f, o, c, &w)))
    });
    g.finish();

    // Day1-shaped call: four fields (f, o, c, r), every metric.
    let r3 = field(4, 280.0, 9.0, 1);
    let d1 = FieldInputs::new(f, o)
        .with_climatology(c)
        .with_reference(Reference::Field(r3.index_axis(Axis(0), 0)));
    let mut g = cr.benchmark_group("field_721x1440_f32_focr");
    g.throughput(Throughput::Bytes(4 * (NY * NX * 4) as u64));
    g.bench_function("fused_1t", |b| {
        b.iter(|| p1.install(|| black_box(score_field(black_box(&d1), &w, &cfg).unwrap())))
    });
    g.finish();

    // A whole ERA5 lead for one miner: 4 surface fields + 5 variables × 13 levels.
    let levels = [
        50.0, 100.0, 150.0, 200.0, 250.0, 300.0, 400.0, 500.0, 600.0, 700.0, 850.0, 925.0, 1000.0,
    ];
    let surf: Vec<[Array3<f32>; 3]> = (0..4)
        .map(|s| {
            [
                field(10 + s, 280.0, 10.0, 1),
                field(20 + s, 280.0, 10.0, 1),
                field(30 + s, 279.0, 8.0, 1),
            ]
        })
        .collect();
    let atm: Vec<[Array3<f32>; 3]> = (0..5)
        .map(|s| {
            [
                field(40 + s, 250.0, 10.0, 13),
                field(50 + s, 250.0, 10.0, 13),
                field(60 + s, 249.0, 8.0, 13),
            ]
        })
        .collect();
    let lead = |cfg: &ScoringConfig| {
        let mut n = 0usize;
        for [f, o, c] in &surf {
            let i = FieldInputs::new(f.index_axis(Axis(0), 0), o.index_axis(Axis(0), 0))
                .with_climatology(c.index_axis(Axis(0), 0))
                .with_reference(Reference::Climatology);
            n += score_field(&i, &w, cfg).unwrap().n_pairs as usize;
        }
        for [f, o, c] in &atm {
            let si = StackInputs {
                forecast: f.view(),
                truth: o.view(),
                climatology: Some(c.view()),
                skill_vs_climatology: true,
            };
            n += score_levels(&si, &levels, &w, cfg).unwrap().0.len();
        }
        n
    };
    let mut g = cr.benchmark_group("era5_lead_69_fields");
    g.sample_size(10);
    g.throughput(Throughput::Bytes((69 * bytes) as u64));
    // Read bandwidth over the same 859 MB (far beyond the caches: DRAM).
    let lead_slices: Vec<&[f32]> = surf
        .iter()
        .chain(&atm)
        .flat_map(|t| t.iter().map(|a| a.as_slice().unwrap()))
        .collect();
    g.bench_function("plain_sum_1t", |b| {
        b.iter(|| black_box(plain_sum(black_box(&lead_slices))))
    });
    g.bench_function(format!("plain_sum_{ncpu}t"), |b| {
        b.iter(|| pn.install(|| black_box(plain_sum_par(black_box(&lead_slices)))))
    });
    g.bench_function(format!("fused_{ncpu}t"), |b| {
        b.iter(|| pn.install(|| black_box(lead(&cfg))))
    });
    g.bench_function("fused_1t", |b| {
        b.iter(|| p1.install(|| black_box(lead(&cfg))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
