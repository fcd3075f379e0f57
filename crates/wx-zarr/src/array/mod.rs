//! One Zarr array: its metadata, and bounded reads of a selection chunk by chunk.
//!
//! This module holds the types ([`ZarrArray`], [`Selection`], [`ElementType`], [`DynStorage`])
//! and the accessors; the rest is split by concern:
//!
//! - `open`: building a [`ZarrArray`] from v2 or v3 metadata (dtype, dimension names, codecs,
//!   CF attributes, the sharding bounds);
//! - `read`: the public reads ([`ZarrArray::read_f32`], [`ZarrArray::read_f64`],
//!   [`ZarrArray::read_coordinate`]): the selection checked and bounded, its chunks fetched and
//!   placed into the output;
//! - `fetch`: one chunk of the store: whether it exists, its bounded fetch and decode (whole or
//!   only the runs a read keeps), the missing-chunk policy;
//! - `place`: the pure geometry of a selection over the chunk grid: which chunks it touches and
//!   where each selected element of a chunk goes in the output.

use super::cf::CfDecoding;
use super::decode::{Codecs, Compression};
use super::{ReadOptions, ZarrError};
use serde_json::{Map, Value};
use std::sync::Arc;
use zarrs::array::Array;
use zarrs::storage::AsyncReadableStorageTraits;

/// The async readable storage every reader takes (local directory, HTTP, S3, GCS, or a verifying
/// adapter around one of them).
pub type DynStorage = Arc<dyn AsyncReadableStorageTraits>;

/// Element types the reader decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementType {
    /// 32-bit float (`<f4`, `float32`).
    F32,
    /// 64-bit float (`<f8`, `float64`).
    F64,
    /// 8-bit signed integer (`|i1`, `int8`): CF-packed data.
    I8,
    /// 8-bit unsigned integer (`|u1`, `uint8`): CF-packed data.
    U8,
    /// 16-bit signed integer (`<i2`, `int16`): CF-packed data.
    I16,
    /// 16-bit unsigned integer (`<u2`, `uint16`): CF-packed data.
    U16,
    /// 32-bit signed integer (`<i4`, `int32`): coordinates, CF-packed data.
    I32,
    /// 32-bit unsigned integer (`<u4`, `uint32`): CF-packed data.
    U32,
    /// 64-bit signed integer (`<i8`, `int64`): coordinates, CF-packed data.
    I64,
}

impl ElementType {
    /// Size of one element in bytes.
    pub fn size(self) -> u64 {
        match self {
            ElementType::I8 | ElementType::U8 => 1,
            ElementType::I16 | ElementType::U16 => 2,
            ElementType::F32 | ElementType::I32 | ElementType::U32 => 4,
            ElementType::F64 | ElementType::I64 => 8,
        }
    }

    /// Whether this is a floating-point type.
    pub fn is_float(self) -> bool {
        matches!(self, ElementType::F32 | ElementType::F64)
    }

    /// The name in Zarr v3 (`float32`, `int16`, ...), for messages.
    pub fn name(self) -> &'static str {
        match self {
            ElementType::F32 => "float32",
            ElementType::F64 => "float64",
            ElementType::I8 => "int8",
            ElementType::U8 => "uint8",
            ElementType::I16 => "int16",
            ElementType::U16 => "uint16",
            ElementType::I32 => "int32",
            ElementType::U32 => "uint32",
            ElementType::I64 => "int64",
        }
    }

    fn from_v2(dtype: &str) -> Option<ElementType> {
        match dtype.strip_prefix(['<', '>', '|', '='])? {
            "f4" => Some(ElementType::F32),
            "f8" => Some(ElementType::F64),
            "i1" => Some(ElementType::I8),
            "u1" => Some(ElementType::U8),
            "i2" => Some(ElementType::I16),
            "u2" => Some(ElementType::U16),
            "i4" => Some(ElementType::I32),
            "u4" => Some(ElementType::U32),
            "i8" => Some(ElementType::I64),
            _ => None,
        }
    }

    fn from_v3(dtype: &str) -> Option<ElementType> {
        match dtype {
            "float32" => Some(ElementType::F32),
            "float64" => Some(ElementType::F64),
            "int8" => Some(ElementType::I8),
            "uint8" => Some(ElementType::U8),
            "int16" => Some(ElementType::I16),
            "uint16" => Some(ElementType::U16),
            "int32" => Some(ElementType::I32),
            "uint32" => Some(ElementType::U32),
            "int64" => Some(ElementType::I64),
            _ => None,
        }
    }
}

/// What to read along one dimension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// One index; the dimension is dropped from the result.
    Index(u64),
    /// These indices, in this order (repetitions allowed); the dimension is kept.
    Indices(Vec<u64>),
    /// The whole dimension.
    All,
}

/// An opened Zarr array (v2 or v3) with its dimension names and attributes.
///
/// Reads fetch only the chunks that intersect the selection, check every chunk's declared and
/// decoded size (see [`super::decode`]) and never fill a missing chunk unless the dataset was
/// opened with [`MissingChunkPolicy::FillValue`](crate::MissingChunkPolicy::FillValue).
pub struct ZarrArray {
    store: String,
    name: String,
    dims: Vec<String>,
    attributes: Map<String, Value>,
    element: ElementType,
    codecs: Codecs,
    /// CF decoding of data values (fill values, scale and offset), when there is any.
    cf: Option<CfDecoding>,
    array: Array<dyn AsyncReadableStorageTraits>,
    storage: DynStorage,
    options: ReadOptions,
}

impl std::fmt::Debug for ZarrArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZarrArray")
            .field("store", &self.store)
            .field("name", &self.name)
            .field("dims", &self.dims)
            .field("shape", &self.shape())
            .field("element", &self.element)
            .field("codecs", &self.codecs)
            .field("cf", &self.cf)
            .finish()
    }
}

impl ZarrArray {
    /// The array's name (path in the store, without leading `/`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Dimension names, in storage order.
    pub fn dims(&self) -> &[String] {
        &self.dims
    }

    /// The position of a dimension, if the array has it.
    pub fn dim_index(&self, dim: &str) -> Option<usize> {
        self.dims.iter().position(|d| d == dim)
    }

    /// Shape, in storage order.
    pub fn shape(&self) -> &[u64] {
        self.array.shape()
    }

    /// The regular chunk shape.
    pub fn chunk_shape(&self) -> Vec<u64> {
        let origin = vec![0; self.array.dimensionality()];
        self.array
            .chunk_shape(&origin)
            .map(|s| s.iter().map(|n| n.get()).collect())
            .unwrap_or_default()
    }

    /// Decoded size of one chunk in bytes (chunk shape × element size), saturating.
    pub fn chunk_decoded_bytes(&self) -> u64 {
        self.chunk_shape()
            .iter()
            .fold(self.element.size(), |acc, n| acc.saturating_mul(*n))
    }

    /// Element type.
    pub fn element_type(&self) -> ElementType {
        self.element
    }

    /// The chunk compression (of the inner chunks of a sharded array).
    pub fn compression(&self) -> Compression {
        self.codecs.encoding.compression
    }

    /// The codec chain as wx decodes it.
    pub fn codecs(&self) -> &Codecs {
        &self.codecs
    }

    /// The CF decoding applied by [`ZarrArray::read_f32`], if any.
    pub fn cf_decoding(&self) -> Option<&CfDecoding> {
        self.cf.as_ref()
    }

    /// User attributes (`.zattrs` without `_ARRAY_DIMENSIONS` handling, or v3 `attributes`).
    pub fn attributes(&self) -> &Map<String, Value> {
        &self.attributes
    }

    /// A string attribute, e.g. `units` or `calendar`.
    pub fn attribute_str(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).and_then(Value::as_str)
    }

    /// A format error naming the store and this array (the reads' internal and chunk errors).
    fn err(&self, message: String) -> ZarrError {
        ZarrError::format(&self.store, &self.name, message)
    }
}

mod fetch;
mod open;
mod place;
mod read;
#[cfg(test)]
mod tests;
