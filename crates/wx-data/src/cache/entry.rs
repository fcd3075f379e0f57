//! One cache entry on disk: a local Zarr v3 group written and read with zarrs.
//!
//! ```text
//! <stem>.zarr/
//!   zarr.json        group; attributes.wx_cache = {format, source, variable, levels,
//!                    valid_time, created_at, sha256}
//!   data/            float32 [level, lat, lon], one chunk per level, bytes + zstd, fill NaN
//!   lat/ lon/        float64 coordinates, one chunk each
//! ```
//!
//! `sha256` covers the variable, levels, valid time, coordinates and values, so any damage
//! (a flipped byte, a missing chunk that zarrs would read as NaN, a truncated file) is detected
//! on read.

use super::key::CacheKey;
use crate::field::Field;
use chrono::{DateTime, Utc};
use ndarray::Array3;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use zarrs::array::{Array, ArrayBuilder, ZARR_NAN_F32, ZARR_NAN_F64, data_type};
use zarrs::filesystem::FilesystemStore;
use zarrs::group::{Group, GroupBuilder};
use zarrs::storage::store::MemoryStore;
use zarrs::storage::{ListableStorageTraits, ReadableStorageTraits};

/// Version of the entry layout; entries of another version are treated as absent.
pub const FORMAT_VERSION: u64 = 1;
/// Most values an entry may declare (bounds what a damaged `zarr.json` can make us allocate).
const MAX_VALUES: u64 = 512 * 1024 * 1024;
/// Most points on a coordinate axis.
const MAX_AXIS: u64 = 1 << 20;

/// Why an entry could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// No entry.
    Missing,
    /// The entry exists but is damaged or not what the key names (the reason).
    Corrupt(String),
}

/// The SHA-256 of a field's identity, coordinates and values.
fn digest(field: &Field) -> String {
    let mut h = Sha256::new();
    h.update(field.variable.as_str().as_bytes());
    h.update([0]);
    for l in &field.levels {
        h.update(l.to_le_bytes());
    }
    h.update([0]);
    h.update(field.valid_time.to_rfc3339().as_bytes());
    h.update([0]);
    // hashed in blocks: one `update` per value would dominate the cost of a large field
    let mut block: Vec<u8> = Vec::with_capacity(1 << 16);
    for x in field.lats.iter().chain(&field.lons) {
        block.extend_from_slice(&x.to_le_bytes());
    }
    h.update(&block);
    block.clear();
    for x in &field.data {
        if block.len() + 4 > block.capacity() {
            h.update(&block);
            block.clear();
        }
        block.extend_from_slice(&x.to_le_bytes());
    }
    h.update(&block);
    hex::encode(h.finalize())
}

/// Why an entry could not be written: which part, and the store's error.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {message}")]
pub(crate) struct WriteError {
    what: String,
    message: String,
}

fn zarr_err(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

fn write_err(what: &str, e: impl std::fmt::Display) -> WriteError {
    WriteError {
        what: what.to_owned(),
        message: e.to_string(),
    }
}

/// Writes `field` as an entry in the (new, empty) directory `dir`.
///
/// The entry is encoded into memory with zarrs and then written out file by file, without
/// flushing each file to disk: zarrs' filesystem store fsyncs every chunk it writes, which
/// made a lead's truth and climatology cost about a thousand fsyncs (seconds of idle wall time
/// per lead). Nothing is lost by not flushing: the entry is renamed into place only once every
/// file is written, so a reader on this host sees all of it or none of it, and after a power
/// loss a partly written entry fails its SHA-256 on read and is refilled like any damaged one.
pub(crate) fn write(dir: &Path, key: &CacheKey, field: &Field) -> Result<(), WriteError> {
    let store = Arc::new(MemoryStore::new());
    encode(&store, key, field)?;
    let keys = store
        .list()
        .map_err(|e| write_err("listing the encoded entry", e))?;
    for store_key in keys {
        let bytes = store
            .get(&store_key)
            .map_err(|e| write_err(store_key.as_str(), e))?
            .ok_or_else(|| write_err(store_key.as_str(), "listed but not stored"))?;
        let path = dir.join(store_key.as_str());
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| write_err("creating the entry directory", e))?;
        }
        std::fs::write(&path, &bytes).map_err(|e| write_err(store_key.as_str(), e))?;
    }
    Ok(())
}

/// Encodes `field` as the entry's Zarr group into `store`.
fn encode(store: &Arc<MemoryStore>, key: &CacheKey, field: &Field) -> Result<(), WriteError> {
    let (n, nlat, nlon) = field.data.dim();
    let zstd = || -> Vec<Arc<dyn zarrs::array::codec::api::BytesToBytesCodecTraits>> {
        vec![Arc::new(zarrs::array::codec::ZstdCodec::new(1, false))]
    };
    for (name, values) in [("lat", &field.lats), ("lon", &field.lons)] {
        let array = ArrayBuilder::new(
            vec![values.len() as u64],
            vec![values.len().max(1) as u64],
            data_type::float64(),
            ZARR_NAN_F64,
        )
        .build(store.clone(), &format!("/{name}"))
        .map_err(|e| write_err(name, e))?;
        array
            .store_chunk(&[0], values.as_slice())
            .map_err(|e| write_err(name, e))?;
        array.store_metadata().map_err(|e| write_err(name, e))?;
    }
    let array = ArrayBuilder::new(
        vec![n as u64, nlat as u64, nlon as u64],
        vec![1, nlat.max(1) as u64, nlon.max(1) as u64],
        data_type::float32(),
        ZARR_NAN_F32,
    )
    .bytes_to_bytes_codecs(zstd())
    .build(store.clone(), "/data")
    .map_err(|e| write_err("data", e))?;
    for k in 0..n {
        let level = field.data.index_axis(ndarray::Axis(0), k);
        let values: Vec<f32> = level.iter().copied().collect();
        array
            .store_chunk(&[k as u64, 0, 0], values)
            .map_err(|e| write_err("data", e))?;
    }
    array.store_metadata().map_err(|e| write_err("data", e))?;
    let mut group = GroupBuilder::new()
        .build(store.clone(), "/")
        .map_err(|e| write_err("group", e))?;
    group.attributes_mut().insert(
        "wx_cache".to_owned(),
        json!({
            "format": FORMAT_VERSION,
            "source": key.source(),
            "variable": field.variable.as_str(),
            "levels": field.levels,
            "valid_time": field.valid_time.to_rfc3339(),
            "created_at": Utc::now().to_rfc3339(),
            "sha256": digest(field),
        }),
    );
    group.store_metadata().map_err(|e| write_err("group", e))?;
    Ok(())
}

/// Reads the entry in `dir` and checks it is the complete, undamaged field `key` names.
pub(crate) fn read(dir: &Path, key: &CacheKey) -> Result<Field, ReadError> {
    if !dir.join("zarr.json").exists() {
        return Err(ReadError::Missing);
    }
    let corrupt = ReadError::Corrupt;
    let store = Arc::new(FilesystemStore::new(dir).map_err(|e| corrupt(e.to_string()))?);
    let group = Group::open(store.clone(), "/").map_err(|e| corrupt(zarr_err("group", e)))?;
    let meta = group
        .attributes()
        .get("wx_cache")
        .cloned()
        .ok_or_else(|| corrupt("no wx_cache attributes".to_owned()))?;
    if meta["format"].as_u64() != Some(FORMAT_VERSION) {
        return Err(corrupt(format!(
            "entry format {} is not {FORMAT_VERSION}",
            meta["format"]
        )));
    }
    let levels: Vec<u16> = serde_json::from_value(meta["levels"].clone())
        .map_err(|e| corrupt(zarr_err("levels", e)))?;
    let valid_time: DateTime<Utc> = meta["valid_time"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| corrupt("bad valid_time".to_owned()))?;
    if meta["variable"] != key.variable().as_str()
        || levels != key.levels()
        || valid_time != key.valid_time()
        || meta["source"] != key.source()
    {
        return Err(corrupt(format!("the entry describes {meta}, not {key}")));
    }
    let expected_digest = meta["sha256"]
        .as_str()
        .ok_or_else(|| corrupt("no sha256".to_owned()))?
        .to_owned();
    let axis = |name: &str| -> Result<Vec<f64>, ReadError> {
        let a = Array::open(store.clone(), &format!("/{name}"))
            .map_err(|e| corrupt(zarr_err(name, e)))?;
        let shape = a.shape().to_vec();
        if shape.len() != 1 || shape[0] > MAX_AXIS {
            return Err(corrupt(format!("{name} has shape {shape:?}")));
        }
        a.retrieve_array_subset::<Vec<f64>>(&a.subset_all())
            .map_err(|e| corrupt(zarr_err(name, e)))
    };
    let lats = axis("lat")?;
    let lons = axis("lon")?;
    let data = Array::open(store, "/data").map_err(|e| corrupt(zarr_err("data", e)))?;
    let shape = data.shape().to_vec();
    let expected = [
        levels.len().max(1) as u64,
        lats.len() as u64,
        lons.len() as u64,
    ];
    if shape != expected || shape.iter().product::<u64>() > MAX_VALUES {
        return Err(corrupt(format!(
            "data has shape {shape:?}, expected {expected:?}"
        )));
    }
    let values = data
        .retrieve_array_subset::<Vec<f32>>(&data.subset_all())
        .map_err(|e| corrupt(zarr_err("data", e)))?;
    let values = Array3::from_shape_vec(
        (
            expected[0] as usize,
            expected[1] as usize,
            expected[2] as usize,
        ),
        values,
    )
    .map_err(|e| corrupt(zarr_err("data", e)))?;
    let field = Field::new(key.variable(), levels, lats, lons, valid_time, values)
        .map_err(|e| corrupt(e.to_string()))?;
    let found = digest(&field);
    if found != expected_digest {
        return Err(corrupt(format!(
            "checksum mismatch (stored {expected_digest}, computed {found})"
        )));
    }
    Ok(field)
}
