//! A small Zarr v2 writer producing what xarray + zarr-python 2.x write: `.zgroup`, `.zattrs`,
//! per-array `.zarray` / `.zattrs` (dimension names in `_ARRAY_DIMENSIONS`), consolidated
//! `.zmetadata`, `.`-separated chunk keys, every JSON as `json.dumps(sort_keys=True, indent=4)`.
//! Chunks are compressed with the real codecs (c-blosc through zarrs, zstd through the `zstd`
//! crate). Every file written is hashed as docs/data.md §2.1 specifies, for the manifest.

use crate::SimError;
use crate::json::to_python_json;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use wx_data::manifest::file_hash;
use zarrs::array::codec::{
    BloscCompressionLevel, BloscCompressor, BloscShuffleMode, blosc_compress_bytes,
};

/// Element type of an array (little-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dtype {
    F4,
    F8,
    I4,
    I8,
}

impl Dtype {
    fn code(self) -> &'static str {
        match self {
            Dtype::F4 => "<f4",
            Dtype::F8 => "<f8",
            Dtype::I4 => "<i4",
            Dtype::I8 => "<i8",
        }
    }

    fn size(self) -> usize {
        match self {
            Dtype::F4 | Dtype::I4 => 4,
            Dtype::F8 | Dtype::I8 => 8,
        }
    }

    fn fill_value(self) -> Value {
        match self {
            Dtype::F4 | Dtype::F8 => json!("NaN"),
            Dtype::I4 | Dtype::I8 => Value::Null,
        }
    }
}

/// Chunk compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codec {
    /// Blosc(zstd, clevel, bitshuffle): the miners' data codec.
    BloscZstd { clevel: u8 },
    /// Blosc(lz4, 5, byte shuffle): zarr-python's default, used for coordinates.
    BloscLz4,
    /// numcodecs Zstd(level), no checksum.
    Zstd { level: i32 },
}

impl Codec {
    fn metadata(self) -> Value {
        match self {
            Codec::BloscZstd { clevel } => json!({
                "blocksize": 0, "clevel": clevel, "cname": "zstd", "id": "blosc", "shuffle": 2
            }),
            Codec::BloscLz4 => json!({
                "blocksize": 0, "clevel": 5, "cname": "lz4", "id": "blosc", "shuffle": 1
            }),
            Codec::Zstd { level } => json!({"checksum": false, "id": "zstd", "level": level}),
        }
    }

    fn encode(self, raw: &[u8], typesize: usize) -> Result<Vec<u8>, SimError> {
        let blosc = |cname, clevel: u8, shuffle| {
            let clevel = BloscCompressionLevel::try_from(clevel)
                .map_err(|l| SimError::Encode(format!("blosc clevel {l} is not 0..=9")))?;
            blosc_compress_bytes(raw, clevel, shuffle, typesize, cname, 0, 1)
                .map_err(|e| SimError::Encode(format!("blosc: {e}")))
        };
        match self {
            Codec::BloscZstd { clevel } => {
                blosc(BloscCompressor::Zstd, clevel, BloscShuffleMode::BitShuffle)
            }
            Codec::BloscLz4 => blosc(BloscCompressor::LZ4, 5, BloscShuffleMode::Shuffle),
            Codec::Zstd { level } => {
                zstd::bulk::compress(raw, level).map_err(|e| SimError::Encode(format!("zstd: {e}")))
            }
        }
    }
}

/// One array of a store.
#[derive(Debug, Clone)]
pub(crate) struct ArrayDef {
    pub name: String,
    pub dims: Vec<String>,
    pub shape: Vec<u64>,
    pub chunks: Vec<u64>,
    pub dtype: Dtype,
    pub codec: Codec,
    /// Attributes besides `_ARRAY_DIMENSIONS`.
    pub attrs: Map<String, Value>,
}

impl ArrayDef {
    pub fn new(
        name: &str,
        dims: &[&str],
        shape: &[u64],
        chunks: &[u64],
        dtype: Dtype,
        codec: Codec,
    ) -> ArrayDef {
        ArrayDef {
            name: name.to_owned(),
            dims: dims.iter().map(|d| (*d).to_owned()).collect(),
            shape: shape.to_vec(),
            chunks: chunks.to_vec(),
            dtype,
            codec,
            attrs: Map::new(),
        }
    }

    pub fn attr(mut self, key: &str, value: Value) -> ArrayDef {
        self.attrs.insert(key.to_owned(), value);
        self
    }

    fn zarray(&self) -> Value {
        json!({
            "chunks": self.chunks,
            "compressor": self.codec.metadata(),
            "dtype": self.dtype.code(),
            "fill_value": self.dtype.fill_value(),
            "filters": null,
            "order": "C",
            "shape": self.shape,
            "zarr_format": 2,
        })
    }

    fn zattrs(&self) -> Value {
        let mut attrs = self.attrs.clone();
        attrs.insert("_ARRAY_DIMENSIONS".to_owned(), json!(self.dims));
        Value::Object(attrs)
    }

    fn chunk_elements(&self) -> usize {
        self.chunks.iter().product::<u64>() as usize
    }
}

/// Raw little-endian bytes of values.
pub(crate) fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn f64_bytes(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn i64_bytes(values: &[i64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn i32_bytes(values: &[i32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// What a finished store holds.
#[derive(Debug, Clone, Default)]
pub(crate) struct WrittenFiles {
    /// Relative path → docs/data.md §2.1 file hash.
    pub hashes: BTreeMap<String, String>,
    /// Bytes written.
    pub bytes: u64,
}

/// Writes one Zarr v2 store; safe to write chunks from several threads.
pub(crate) struct StoreWriter {
    root: PathBuf,
    consolidated: Mutex<Map<String, Value>>,
    hashes: Mutex<BTreeMap<String, String>>,
    bytes: AtomicU64,
}

impl StoreWriter {
    /// Creates `root` (which must not hold a store yet).
    pub fn create(root: &Path) -> Result<StoreWriter, SimError> {
        std::fs::create_dir_all(root).map_err(|e| SimError::io(root, e))?;
        Ok(StoreWriter {
            root: root.to_owned(),
            consolidated: Mutex::new(Map::new()),
            hashes: Mutex::new(BTreeMap::new()),
            bytes: AtomicU64::new(0),
        })
    }

    /// Writes a file at `rel` (with `/`), recording its hash.
    pub fn write_file(&self, rel: &str, bytes: &[u8]) -> Result<(), SimError> {
        let path = self.root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| SimError::io(parent, e))?;
        }
        std::fs::write(&path, bytes).map_err(|e| SimError::io(&path, e))?;
        self.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        self.hashes
            .lock()
            .expect("not poisoned")
            .insert(rel.to_owned(), file_hash(rel, bytes));
        Ok(())
    }

    fn write_json(&self, rel: &str, value: &Value) -> Result<(), SimError> {
        self.write_file(rel, to_python_json(value).as_bytes())?;
        self.consolidated
            .lock()
            .expect("not poisoned")
            .insert(rel.to_owned(), value.clone());
        Ok(())
    }

    /// Writes the array's `.zarray` and `.zattrs`.
    pub fn add_array(&self, array: &ArrayDef) -> Result<(), SimError> {
        self.write_json(&format!("{}/.zarray", array.name), &array.zarray())?;
        self.write_json(&format!("{}/.zattrs", array.name), &array.zattrs())
    }

    /// Compresses and writes the chunk at grid position `index` from its raw little-endian
    /// bytes (exactly one chunk's worth).
    pub fn write_chunk(&self, array: &ArrayDef, index: &[u64], raw: &[u8]) -> Result<(), SimError> {
        let expected = array.chunk_elements() * array.dtype.size();
        if raw.len() != expected || index.len() != array.shape.len() {
            return Err(SimError::Encode(format!(
                "{}: chunk {index:?} has {} bytes, expected {expected}",
                array.name,
                raw.len()
            )));
        }
        let encoded = array.codec.encode(raw, array.dtype.size())?;
        let key = index
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(".");
        self.write_file(&format!("{}/{key}", array.name), &encoded)
    }

    /// A one-chunk coordinate array of f32 values.
    pub fn coordinate_f32(&self, array: &ArrayDef, values: &[f32]) -> Result<(), SimError> {
        self.add_array(array)?;
        self.write_chunk(array, &[0], &f32_bytes(values))
    }

    /// A one-chunk coordinate array of f64 values.
    pub fn coordinate_f64(&self, array: &ArrayDef, values: &[f64]) -> Result<(), SimError> {
        self.add_array(array)?;
        self.write_chunk(array, &[0], &f64_bytes(values))
    }

    /// A one-chunk coordinate array of i64 values.
    pub fn coordinate_i64(&self, array: &ArrayDef, values: &[i64]) -> Result<(), SimError> {
        self.add_array(array)?;
        self.write_chunk(array, &[0], &i64_bytes(values))
    }

    /// A one-chunk coordinate array of i32 values.
    pub fn coordinate_i32(&self, array: &ArrayDef, values: &[i32]) -> Result<(), SimError> {
        self.add_array(array)?;
        self.write_chunk(array, &[0], &i32_bytes(values))
    }

    /// Writes `.zgroup`, the root `.zattrs` and the consolidated `.zmetadata`.
    pub fn finish(self) -> Result<WrittenFiles, SimError> {
        self.finish_with_attrs(Map::new())
    }

    /// [`StoreWriter::finish`] with these root attributes.
    pub fn finish_with_attrs(self, attrs: Map<String, Value>) -> Result<WrittenFiles, SimError> {
        self.write_json(".zattrs", &Value::Object(attrs))?;
        self.write_json(".zgroup", &json!({"zarr_format": 2}))?;
        let metadata = std::mem::take(&mut *self.consolidated.lock().expect("not poisoned"));
        let consolidated = json!({
            "metadata": Value::Object(metadata),
            "zarr_consolidated_format": 1,
        });
        self.write_file(".zmetadata", to_python_json(&consolidated).as_bytes())?;
        Ok(WrittenFiles {
            hashes: self.hashes.into_inner().expect("not poisoned"),
            bytes: self.bytes.load(Ordering::Relaxed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed fixture's `.zmetadata` (written by zarr-python 2.18) re-serialised by
    /// [`to_python_json`] is byte-identical: same layout as the writer this module imitates.
    #[test]
    fn fixture_metadata_round_trips_byte_for_byte() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/stores");
        for (store, file) in [
            ("miner_v2_blosc_zstd", ".zmetadata"),
            ("miner_v2_blosc_zstd", "2t/.zarray"),
            ("miner_v2_blosc_zstd", "time/.zattrs"),
            ("miner_v2_blosc_zstd", ".zgroup"),
            ("miner_v2_blosc_zstd", "manifest.json"),
            ("era5_arco", ".zmetadata"),
            ("clim_wb2", ".zmetadata"),
        ] {
            let bytes = std::fs::read(root.join(store).join(file)).unwrap();
            let value: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(
                to_python_json(&value).as_bytes(),
                &bytes[..],
                "{store}/{file}"
            );
        }
    }

    #[test]
    fn metadata_has_the_fixture_codec_layout() {
        let def = ArrayDef::new(
            "2t",
            &["time", "lat", "lon"],
            &[8, 36, 72],
            &[1, 36, 72],
            Dtype::F4,
            Codec::BloscZstd { clevel: 3 },
        )
        .attr("coordinates", json!("time"));
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/stores/miner_v2_blosc_zstd/2t");
        let zarray: Value =
            serde_json::from_slice(&std::fs::read(root.join(".zarray")).unwrap()).unwrap();
        let zattrs: Value =
            serde_json::from_slice(&std::fs::read(root.join(".zattrs")).unwrap()).unwrap();
        assert_eq!(def.zarray(), zarray);
        assert_eq!(def.zattrs(), zattrs);
    }
}
