//! Helpers shared by the store tests: probe files and xarray's expected values, plus wx-zarr's
//! test fixtures (local storages over the committed stores, temporary copies to corrupt, a
//! storage that records the keys it is asked for), included from that crate's tests so that
//! they are written once.
#![allow(dead_code)]

#[path = "../../../wx-zarr/tests/common/mod.rs"]
mod zarr_fixtures;
pub use zarr_fixtures::*;

use chrono::{DateTime, Utc};
use serde_json::Value;

/// The run init of every fixture.
pub fn init() -> DateTime<Utc> {
    "2024-12-30T00:00:00Z".parse().unwrap()
}

/// Parses a time.
pub fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// One probe value written by the generator.
#[derive(Debug, Clone)]
pub struct Probe {
    pub variable: String,
    pub valid_time: Option<DateTime<Utc>>,
    pub hour: Option<u32>,
    pub dayofyear: Option<u32>,
    pub level_hpa: Option<u16>,
    pub lat_index: usize,
    pub lon_index: usize,
    pub lat: f64,
    pub lon: f64,
    /// `None` for NaN.
    pub value: Option<f32>,
}

/// The probes of a committed store.
pub fn probes(store: &str) -> Vec<Probe> {
    let path = testdata()
        .join("stores")
        .join(format!("{store}.probes.json"));
    let json: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    json["probes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| Probe {
            variable: p["variable"].as_str().unwrap().to_owned(),
            valid_time: p["valid_time"].as_str().map(t),
            hour: p["hour"].as_u64().map(|v| v as u32),
            dayofyear: p["dayofyear"].as_u64().map(|v| v as u32),
            level_hpa: p["level_hpa"].as_u64().map(|v| v as u16),
            lat_index: p["lat_index"].as_u64().unwrap() as usize,
            lon_index: p["lon_index"].as_u64().unwrap() as usize,
            lat: p["lat"].as_f64().unwrap(),
            lon: p["lon"].as_f64().unwrap(),
            value: p["value"].as_f64().map(|v| v as f32),
        })
        .collect()
}

/// Asserts a read value equals a probe bit for bit (NaN equals NaN).
pub fn assert_probe(got: f32, probe: &Probe, context: &str) {
    match probe.value {
        Some(want) => assert_eq!(
            got.to_bits(),
            want.to_bits(),
            "{context}: {probe:?} read {got}, python wrote {want}"
        ),
        None => assert!(got.is_nan(), "{context}: {probe:?} read {got}, want NaN"),
    }
}

/// What xarray decoded for one variable of an interop store (`<store>.expected.json`, written by
/// `testdata/gen/make_interop_stores.py`).
#[derive(Debug, Clone)]
pub struct Expected {
    pub shape: Vec<usize>,
    pub sha256_f32le: String,
    pub nan_count: usize,
    /// (index, value; `None` for NaN)
    pub samples: Vec<(Vec<usize>, Option<f32>)>,
}

/// The expected decoded variables of an interop store, by name.
pub fn expected(store: &str) -> std::collections::BTreeMap<String, Expected> {
    let path = testdata()
        .join("stores")
        .join(format!("{store}.expected.json"));
    let json: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    json["variables"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, v)| {
            let usizes = |v: &Value| -> Vec<usize> {
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n.as_u64().unwrap() as usize)
                    .collect()
            };
            let samples = v["samples"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| (usizes(&s["index"]), s["value"].as_f64().map(|x| x as f32)))
                .collect();
            (
                name.clone(),
                Expected {
                    shape: usizes(&v["shape"]),
                    sha256_f32le: v["sha256_f32le"].as_str().unwrap().to_owned(),
                    nan_count: v["nan_count"].as_u64().unwrap() as usize,
                    samples,
                },
            )
        })
        .collect()
}

/// SHA-256 of float32 values as little-endian bytes, every NaN as 0x7fc00000 (the generator's
/// canonical form).
pub fn sha256_f32le<'a>(values: impl IntoIterator<Item = &'a f32>) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    for v in values {
        let bits = if v.is_nan() { 0x7fc0_0000 } else { v.to_bits() };
        hasher.update(bits.to_le_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Asserts a whole decoded array equals what xarray decoded (checksum, NaN count, samples).
pub fn assert_expected(got: &ndarray::ArrayD<f32>, want: &Expected, context: &str) {
    assert_eq!(got.shape(), want.shape.as_slice(), "{context}: shape");
    let nans = got.iter().filter(|v| v.is_nan()).count();
    assert_eq!(nans, want.nan_count, "{context}: NaN count");
    for (index, value) in &want.samples {
        let v = got[ndarray::IxDyn(index)];
        match value {
            Some(w) => assert_eq!(
                v.to_bits(),
                w.to_bits(),
                "{context} at {index:?}: read {v}, xarray {w}"
            ),
            None => assert!(v.is_nan(), "{context} at {index:?}: read {v}, xarray NaN"),
        }
    }
    assert_eq!(
        sha256_f32le(got.iter()),
        want.sha256_f32le,
        "{context}: the decoded values differ from xarray's"
    );
}
