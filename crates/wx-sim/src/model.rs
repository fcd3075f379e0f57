//! The deterministic "weather" of the simulated world.
//!
//! [`TruthModel`] defines every value as a pure function of (variable, pressure level, time,
//! latitude, longitude) and the seed:
//!
//! * **climatology** `c` — a smooth mean state with a seasonal cycle (day of year) and, for 2t,
//!   a diurnal cycle (hour and longitude): 2t ≈ 300 − 48 sin²φ K; msl ≈ 101325 Pa with
//!   subtropical highs and subpolar lows; t and z from the ICAO standard atmosphere with a
//!   meridional gradient (z500 ≈ 57 700 m² s⁻² at the equator, ≈ 51 000 at the poles); u with a
//!   jet near 38° and 220 hPa and tropical easterlies; a Hadley-like v; q ≈ 0.018 cos⁴φ
//!   (p/1000)^3.2 + 2.5·10⁻⁶ kg kg⁻¹. Units are the catalogue's (K, Pa, m s⁻¹, kg kg⁻¹,
//!   m² s⁻²).
//! * **anomaly** — a dozen travelling, pulsing Rossby-like waves in the mid-latitudes of both
//!   hemispheres (zonal wavenumbers 1–7, 4–13° of longitude a day eastward, westward tilt with
//!   height). z and msl follow the wave pattern, t and 2t the pattern a quarter wave behind, u
//!   and v its geostrophic-like derivatives, q is modulated multiplicatively (never negative).
//!   Typical anomaly standard deviations: 2t 3 K, msl 1000 Pa, 10 m winds 3.5 m s⁻¹, u/v
//!   4–12 m s⁻¹ (jet level), z500 ≈ 900 m² s⁻².
//! * **truth** = climatology(day of year and hour of the time) + anomaly(time).
//!
//! [`TruthModel::truth_field`] and [`TruthModel::climatology_field`] evaluate a whole
//! [`Grid`] at once (the wave terms are separable in latitude and longitude, so a field costs
//! a few operations per point); the point functions are the same code on a 1 × 1 grid.

use crate::rng::{Rng, key};
use chrono::{DateTime, Datelike, Timelike, Utc};
use std::f64::consts::PI;
use wx_model::Variable;
use wx_model::catalogue::STANDARD_GRAVITY;

/// A regular latitude/longitude grid, values stored row-major `[lat][lon]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// Latitudes in degrees, in storage order.
    pub lats: Vec<f64>,
    /// Longitudes in degrees, in storage order.
    pub lons: Vec<f64>,
}

impl Grid {
    /// The global grid at `resolution` degrees with both poles, latitudes 90 → −90, longitudes
    /// 0 → 360 − resolution (the truth grid: 37 × 72 at 5°). `resolution` must divide 180.
    pub fn global(resolution: f64) -> Grid {
        let rows = (180.0 / resolution).round() as usize + 1;
        let cols = (360.0 / resolution).round() as usize;
        Grid {
            lats: (0..rows).map(|j| 90.0 - j as f64 * resolution).collect(),
            lons: (0..cols).map(|i| i as f64 * resolution).collect(),
        }
    }

    /// The first `rows` rows of this grid (e.g. the 720-style miner grid without −90).
    pub fn first_rows(&self, rows: usize) -> Grid {
        Grid {
            lats: self.lats[..rows.min(self.lats.len())].to_vec(),
            lons: self.lons.clone(),
        }
    }

    /// The same grid with latitudes in reverse order (WeatherBench2 stores −90 → 90).
    pub fn flipped(&self) -> Grid {
        Grid {
            lats: self.lats.iter().rev().copied().collect(),
            lons: self.lons.clone(),
        }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.lats.len() * self.lons.len()
    }

    /// Whether the grid has no point.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn point(lat: f64, lon: f64) -> Grid {
        Grid {
            lats: vec![lat],
            lons: vec![lon],
        }
    }
}

/// One travelling wave of the anomaly pattern.
#[derive(Debug, Clone)]
struct Wave {
    /// Zonal wavenumber.
    m: f64,
    /// Central latitude (degrees) and half-width (degrees) of the Gaussian envelope.
    lat0: f64,
    width: f64,
    /// Eastward phase speed, degrees of longitude per day.
    speed: f64,
    amplitude: f64,
    phase: f64,
    /// Amplitude modulation: period (days), phase.
    period: f64,
    pulse_phase: f64,
    /// Phase change per unit of ln(1000 / p) (westward tilt with height).
    tilt: f64,
}

/// Which form of the wave pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pattern {
    Value,
    DLat,
    DLon,
}

/// Anomaly standard deviation of a variable at a level (hPa; ignored for surface variables).
pub fn anomaly_scale(variable: Variable, level_hpa: f64) -> f64 {
    match variable {
        Variable::T2m => 3.0,
        Variable::Msl => 1000.0,
        Variable::U10 | Variable::V10 => 3.5,
        Variable::T => 2.0 + level_hpa / 1000.0,
        Variable::U | Variable::V => 4.0 + 8.0 * (-(level_hpa / 250.0).ln().powi(2) / 0.8).exp(),
        Variable::Q => 0.3, // relative (multiplicative)
        Variable::Z => STANDARD_GRAVITY * (40.0 + 220.0 * (1000.0 / level_hpa).ln() / 20f64.ln()),
    }
}

/// The ICAO standard-atmosphere height (m) of a pressure level (hPa).
fn isa_height(p: f64) -> f64 {
    if p >= 226.32 {
        44_330.8 * (1.0 - (p / 1013.25).powf(0.190_263))
    } else {
        11_000.0 + 6_341.6 * (226.32 / p).ln()
    }
}

/// The ICAO standard-atmosphere temperature (K) at a height (m).
fn isa_temperature(h: f64) -> f64 {
    if h < 11_000.0 {
        288.15 - 0.0065 * h
    } else {
        216.65 + 0.001 * (h - 20_000.0).max(0.0)
    }
}

/// The deterministic weather of a world (see the module docs).
#[derive(Debug, Clone)]
pub struct TruthModel {
    waves: Vec<Wave>,
    /// RMS of the three pattern forms at t = 0, 500 hPa, used to normalise them.
    norms: [f64; 3],
}

/// Days since 2000-01-01T00:00Z (fractional).
fn days(time: DateTime<Utc>) -> f64 {
    let epoch = DateTime::<Utc>::from_timestamp(946_684_800, 0).expect("valid epoch");
    (time - epoch).num_seconds() as f64 / 86_400.0
}

impl TruthModel {
    /// The model of a world with `seed`.
    pub fn new(seed: u64) -> TruthModel {
        let mut rng = Rng::new(key(&[seed, 0x7275_7468]));
        let waves: Vec<Wave> = (0..12)
            .map(|k| {
                let hemisphere = if k % 2 == 0 { 1.0 } else { -1.0 };
                Wave {
                    m: (1 + (k * 3 + rng.int(0, 6) as usize) % 7) as f64,
                    lat0: hemisphere * rng.range(35.0, 62.0),
                    width: rng.range(9.0, 16.0),
                    speed: rng.range(4.0, 13.0),
                    amplitude: rng.range(0.6, 1.0),
                    phase: rng.range(0.0, 2.0 * PI),
                    period: rng.range(3.0, 9.0),
                    pulse_phase: rng.range(0.0, 2.0 * PI),
                    tilt: rng.range(0.15, 0.45),
                }
            })
            .collect();
        let mut model = TruthModel {
            waves,
            norms: [1.0; 3],
        };
        let grid = Grid::global(2.5);
        let weights: Vec<f64> = grid.lats.iter().map(|l| l.to_radians().cos()).collect();
        for (n, pattern) in [Pattern::Value, Pattern::DLat, Pattern::DLon]
            .into_iter()
            .enumerate()
        {
            let values = model.pattern(&grid, 0.0, 500.0, 0.0, pattern);
            let (mut sum, mut wsum) = (0.0, 0.0);
            for (j, w) in weights.iter().enumerate() {
                for i in 0..grid.lons.len() {
                    sum += w * values[j * grid.lons.len() + i].powi(2);
                    wsum += w;
                }
            }
            model.norms[n] = (sum / wsum).sqrt().max(1e-12);
        }
        model
    }

    /// Σ waves on a grid, unnormalised.
    fn pattern(&self, grid: &Grid, t_days: f64, p: f64, delta: f64, form: Pattern) -> Vec<f64> {
        let (nlat, nlon) = (grid.lats.len(), grid.lons.len());
        let mut out = vec![0.0; nlat * nlon];
        let mut lon_part = vec![0.0; nlon];
        let mut lat_part = vec![0.0; nlat];
        let height = (1000.0 / p).ln();
        for w in &self.waves {
            let amplitude =
                w.amplitude * (1.0 + 0.35 * (2.0 * PI * t_days / w.period + w.pulse_phase).sin());
            for (i, lon) in grid.lons.iter().enumerate() {
                let arg =
                    w.m * (lon - w.speed * t_days).to_radians() + w.phase + w.tilt * height - delta;
                lon_part[i] = match form {
                    Pattern::DLon => -w.m * arg.sin(),
                    _ => arg.cos(),
                };
            }
            for (j, lat) in grid.lats.iter().enumerate() {
                let x = (lat - w.lat0) / w.width;
                let g = (-x * x).exp();
                lat_part[j] = amplitude
                    * match form {
                        Pattern::DLat => -2.0 * x / w.width * g * 10.0,
                        _ => g,
                    };
            }
            for (j, a) in lat_part.iter().enumerate() {
                let row = &mut out[j * nlon..(j + 1) * nlon];
                for (o, b) in row.iter_mut().zip(&lon_part) {
                    *o += a * b;
                }
            }
        }
        out
    }

    fn normalised(&self, grid: &Grid, t_days: f64, p: f64, delta: f64, form: Pattern) -> Vec<f64> {
        let norm = self.norms[form as usize];
        let mut values = self.pattern(grid, t_days, p, delta, form);
        values.iter_mut().for_each(|v| *v /= norm);
        values
    }

    /// The climatology of `variable` at `level_hpa` (ignored for surface variables) for a day
    /// of year (1..=366) and hour of day, on `grid` (row-major).
    pub fn climatology_field(
        &self,
        variable: Variable,
        level_hpa: f64,
        day_of_year: u32,
        hour: u32,
        grid: &Grid,
    ) -> Vec<f64> {
        let season = (2.0 * PI * (f64::from(day_of_year) - 16.0) / 365.25).cos();
        let p = level_hpa;
        let mut out = Vec::with_capacity(grid.len());
        for &lat in &grid.lats {
            let (s, c) = lat.to_radians().sin_cos();
            let hemi = lat.signum();
            let abs = lat.abs();
            for &lon in &grid.lons {
                let lam = lon.to_radians();
                let v = match variable {
                    Variable::T2m => {
                        let local = (f64::from(hour) + lon / 15.0).rem_euclid(24.0);
                        300.0 - 48.0 * s * s - 16.0 * s * season
                            + 4.0 * c * (2.0 * PI * (local - 14.0) / 24.0).cos()
                            + 3.0 * c * c * (2.0 * lam + 0.5).cos()
                    }
                    Variable::Msl => {
                        101_325.0 + 1_100.0 * (-((abs - 32.0) / 11.0).powi(2)).exp()
                            - 1_700.0 * (-((abs - 62.0) / 9.0).powi(2)).exp()
                            + 400.0 * s * s * (2.0 * lam).cos()
                            + 300.0 * season * s
                    }
                    Variable::U10 => {
                        -6.0 * (-((abs - 15.0) / 10.0).powi(2)).exp()
                            + 8.0
                                * (-((abs - 50.0) / 12.0).powi(2)).exp()
                                * (1.0 + 0.2 * season * hemi)
                    }
                    Variable::V10 => {
                        -2.5 * (2.0 * PI * lat / 60.0).sin() * (-(lat / 25.0).powi(2)).exp()
                            + c * c * (2.0 * lam).cos()
                    }
                    Variable::T => {
                        isa_temperature(isa_height(p)) + 12.0
                            - 38.0 * (p / 1000.0) * s * s
                            - 12.0 * s * season * (p / 1000.0)
                    }
                    Variable::Z => {
                        let x = (1000.0 / p).ln() / 4f64.ln();
                        let gradient = 1_100.0 * x * (1.0 - x).exp();
                        STANDARD_GRAVITY
                            * (isa_height(p) + gradient * (0.45 - s * s) - 60.0 * s * season * x)
                    }
                    Variable::U => {
                        let jet = 8.0 + 30.0 * (-(p / 220.0).ln().powi(2) / 0.6).exp();
                        jet * (-((abs - 38.0) / 13.0).powi(2)).exp() * (1.0 + 0.25 * season * hemi)
                            - 5.0 * (-(lat / 14.0).powi(2)).exp()
                            + 2.0 * c * (2.0 * lam).cos()
                    }
                    Variable::V => {
                        -2.5 * (2.0 * PI * lat / 60.0).sin()
                            * (-(lat / 25.0).powi(2)).exp()
                            * (PI * (1000.0 - p) / 900.0).cos()
                            + 1.5 * c * c * (2.0 * lam).sin() * (p / 1000.0)
                    }
                    Variable::Q => {
                        (0.018 * c.powi(4) * (1.0 - 0.2 * season * s) + 0.000_5)
                            * (p / 1000.0).powf(3.2)
                            + 2.5e-6
                    }
                };
                out.push(v);
            }
        }
        out
    }

    /// The anomaly (truth − climatology) of `variable` at `time` on `grid`.
    pub fn anomaly_field(
        &self,
        variable: Variable,
        level_hpa: f64,
        time: DateTime<Utc>,
        grid: &Grid,
    ) -> Vec<f64> {
        let t = days(time);
        let scale = anomaly_scale(variable, level_hpa);
        let geostrophic = |form: Pattern, p: f64, sigma: f64| {
            let mut values = self.normalised(grid, t, p, 0.0, form);
            let nlon = grid.lons.len();
            for (j, lat) in grid.lats.iter().enumerate() {
                let sign = (lat / 10.0).tanh();
                let factor = match form {
                    Pattern::DLat => -sigma * sign,
                    _ => sigma * sign,
                };
                values[j * nlon..(j + 1) * nlon]
                    .iter_mut()
                    .for_each(|v| *v *= factor);
            }
            values
        };
        match variable {
            Variable::Z | Variable::Msl => {
                let p = if variable == Variable::Msl {
                    1000.0
                } else {
                    level_hpa
                };
                let mut v = self.normalised(grid, t, p, 0.0, Pattern::Value);
                v.iter_mut().for_each(|x| *x *= scale);
                v
            }
            Variable::T | Variable::T2m => {
                let p = if variable == Variable::T2m {
                    1000.0
                } else {
                    level_hpa
                };
                let mut v = self.normalised(grid, t, p, PI / 2.0, Pattern::Value);
                v.iter_mut().for_each(|x| *x *= scale);
                v
            }
            Variable::U => geostrophic(Pattern::DLat, level_hpa, scale),
            Variable::V => geostrophic(Pattern::DLon, level_hpa, scale),
            Variable::U10 => geostrophic(Pattern::DLat, 1000.0, scale),
            Variable::V10 => geostrophic(Pattern::DLon, 1000.0, scale),
            Variable::Q => {
                let clim =
                    self.climatology_field(variable, level_hpa, time.ordinal(), time.hour(), grid);
                let pattern = self.normalised(grid, t, level_hpa, PI / 2.0, Pattern::Value);
                clim.iter()
                    .zip(pattern)
                    .map(|(c, s)| c * ((scale * s).exp() - 1.0))
                    .collect()
            }
        }
    }

    /// The truth of `variable` at `level_hpa` and `time` on `grid`: the climatology of the
    /// time's day of year and hour plus the anomaly.
    pub fn truth_field(
        &self,
        variable: Variable,
        level_hpa: f64,
        time: DateTime<Utc>,
        grid: &Grid,
    ) -> Vec<f64> {
        let mut values =
            self.climatology_field(variable, level_hpa, time.ordinal(), time.hour(), grid);
        let anomaly = self.anomaly_field(variable, level_hpa, time, grid);
        values.iter_mut().zip(anomaly).for_each(|(v, a)| *v += a);
        values
    }

    /// The truth at one point.
    pub fn truth(
        &self,
        variable: Variable,
        level_hpa: f64,
        time: DateTime<Utc>,
        lat: f64,
        lon: f64,
    ) -> f64 {
        self.truth_field(variable, level_hpa, time, &Grid::point(lat, lon))[0]
    }

    /// The climatology at one point.
    pub fn climatology(
        &self,
        variable: Variable,
        level_hpa: f64,
        day_of_year: u32,
        hour: u32,
        lat: f64,
        lon: f64,
    ) -> f64 {
        self.climatology_field(
            variable,
            level_hpa,
            day_of_year,
            hour,
            &Grid::point(lat, lon),
        )[0]
    }
}

/// A smooth random field of about unit variance on `grid`: six random separable modes
/// (zonal wavenumbers 1–8, meridional 1–6), a pure function of `field_key`.
pub(crate) fn smooth_noise(field_key: u64, grid: &Grid) -> Vec<f64> {
    const MODES: usize = 6;
    let amplitude = 2.0 / (MODES as f64).sqrt();
    let mut rng = Rng::new(field_key);
    let (nlat, nlon) = (grid.lats.len(), grid.lons.len());
    let mut out = vec![0.0; nlat * nlon];
    let mut lon_part = vec![0.0; nlon];
    let mut lat_part = vec![0.0; nlat];
    for _ in 0..MODES {
        let m = rng.int(1, 8) as f64;
        let n = rng.int(1, 6) as f64;
        let (phase_lon, phase_lat) = (rng.range(0.0, 2.0 * PI), rng.range(0.0, 2.0 * PI));
        for (i, lon) in grid.lons.iter().enumerate() {
            lon_part[i] = (m * lon.to_radians() + phase_lon).cos();
        }
        for (j, lat) in grid.lats.iter().enumerate() {
            lat_part[j] = amplitude * (n * (90.0 - lat).to_radians() + phase_lat).cos();
        }
        for (j, a) in lat_part.iter().enumerate() {
            let row = &mut out[j * nlon..(j + 1) * nlon];
            for (o, b) in row.iter_mut().zip(&lon_part) {
                *o += a * b;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn stats(values: &[f64]) -> (f64, f64, f64, f64) {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (mean, sd, min, max)
    }

    #[test]
    fn truth_is_physically_plausible() {
        let model = TruthModel::new(1);
        let grid = Grid::global(5.0);
        let time = t("2025-01-03T12:00:00Z");
        let check = |v: Variable, p: f64, lo: f64, hi: f64| {
            let (_, _, min, max) = stats(&model.truth_field(v, p, time, &grid));
            assert!(min >= lo && max <= hi, "{v}@{p}: {min} .. {max}");
        };
        check(Variable::T2m, 0.0, 220.0, 320.0);
        check(Variable::Msl, 0.0, 95_000.0, 106_000.0);
        check(Variable::U10, 0.0, -30.0, 30.0);
        check(Variable::V10, 0.0, -30.0, 30.0);
        check(Variable::T, 850.0, 220.0, 315.0);
        check(Variable::T, 50.0, 180.0, 240.0);
        check(Variable::Z, 500.0, 46_000.0, 60_000.0);
        check(Variable::Z, 1000.0, -5_000.0, 5_000.0);
        check(Variable::U, 250.0, -40.0, 90.0);
        check(Variable::Q, 1000.0, 0.0, 0.04);
        check(Variable::Q, 50.0, 1e-7, 1e-4);
        let z500 = model.truth(Variable::Z, 500.0, time, 0.0, 0.0);
        assert!((55_000.0..59_000.0).contains(&z500), "{z500}");
    }

    #[test]
    fn anomalies_have_the_documented_size_and_move() {
        let model = TruthModel::new(1);
        let grid = Grid::global(5.0);
        let a = model.anomaly_field(Variable::Z, 500.0, t("2025-01-01T00:00:00Z"), &grid);
        let b = model.anomaly_field(Variable::Z, 500.0, t("2025-01-02T00:00:00Z"), &grid);
        let (_, sd, _, _) = stats(&a);
        assert!((300.0..1500.0).contains(&sd), "z500 anomaly sd {sd}");
        let diff: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x - y).collect();
        let (_, sd_diff, _, _) = stats(&diff);
        assert!(sd_diff > 0.2 * sd, "the weather evolves in a day");
        let u = model.anomaly_field(Variable::U, 250.0, t("2025-01-01T00:00:00Z"), &grid);
        let (_, sd_u, _, _) = stats(&u);
        assert!((2.0..20.0).contains(&sd_u), "u250 anomaly sd {sd_u}");
        // climatology differs from the truth, so anomaly correlations are defined
        let other = TruthModel::new(2);
        assert_ne!(
            model.truth(Variable::T2m, 0.0, t("2025-01-01T00:00:00Z"), 45.0, 10.0),
            other.truth(Variable::T2m, 0.0, t("2025-01-01T00:00:00Z"), 45.0, 10.0)
        );
    }

    #[test]
    fn point_and_grid_evaluation_agree() {
        let model = TruthModel::new(3);
        let grid = Grid::global(10.0);
        let time = t("2025-02-01T06:00:00Z");
        let field = model.truth_field(Variable::U, 300.0, time, &grid);
        let (j, i) = (5, 17);
        let point = model.truth(Variable::U, 300.0, time, grid.lats[j], grid.lons[i]);
        assert_eq!(field[j * grid.lons.len() + i], point);
    }

    #[test]
    fn noise_is_smooth_with_unit_scale() {
        let grid = Grid::global(5.0);
        let noise = smooth_noise(99, &grid);
        let (mean, sd, _, _) = stats(&noise);
        assert!(mean.abs() < 0.5 && (0.4..1.8).contains(&sd), "{mean} {sd}");
        // neighbours are close: smooth, not white
        let nlon = grid.lons.len();
        let jumps: Vec<f64> = (0..grid.len() - 1)
            .filter(|k| (k + 1) % nlon != 0)
            .map(|k| (noise[k + 1] - noise[k]).abs())
            .collect();
        let (mean_jump, _, _, _) = stats(&jumps);
        assert!(mean_jump < 0.5 * sd, "{mean_jump} vs {sd}");
        assert_eq!(noise, smooth_noise(99, &grid));
    }
}
