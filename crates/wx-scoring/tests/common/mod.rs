#![allow(dead_code)]
pub mod naive;

use ndarray::Array2;

/// Small deterministic PRNG (SplitMix64) so tests need no extra crates.
pub struct Rng(pub u64);
impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// A smooth-ish random field: offset + amplitude·(large-scale pattern + noise).
pub fn field(rng: &mut Rng, ny: usize, nx: usize, offset: f64, amp: f64) -> Array2<f64> {
    let p1 = rng.uniform() * 6.0;
    let p2 = rng.uniform() * 6.0;
    Array2::from_shape_fn((ny, nx), |(i, j)| {
        let lat = (i as f64 / (ny - 1).max(1) as f64) * std::f64::consts::PI;
        let lon = j as f64 / nx as f64 * 2.0 * std::f64::consts::PI;
        offset + amp * ((lat * 2.0 + p1).sin() * (lon * 3.0 + p2).cos() + 0.3 * rng.normal())
    })
}

pub fn with_nans(mut a: Array2<f64>, rng: &mut Rng, frac: f64) -> Array2<f64> {
    a.mapv_inplace(|v| if rng.uniform() < frac { f64::NAN } else { v });
    a
}

pub fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()) || (a - b).abs() <= 1e-12
}
