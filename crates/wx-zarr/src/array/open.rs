//! Building a [`ZarrArray`] from v2 metadata (`.zarray` and `.zattrs`) or v3 metadata (an
//! array `zarr.json` or a consolidated entry): element type, dimension names, attributes and
//! CF decoding, the codec chain (numcodecs LZ4 taken out before zarrs parses the rest) and the
//! bound on the inner chunks of a shard.

use super::{DynStorage, ElementType, ZarrArray};
use crate::cf::CfDecoding;
use crate::decode::{DecodeError, codecs_of};
use crate::{ReadOptions, ZarrError};
use serde_json::{Map, Value};
use zarrs::array::{Array, ArrayMetadata, ArrayMetadataV2, ArrayMetadataV3};
use zarrs::storage::AsyncReadableStorageTraits;

impl ZarrArray {
    /// Builds an array from v2 metadata (`.zarray`) and attributes (`.zattrs`).
    pub(crate) fn from_v2(
        storage: &DynStorage,
        options: &ReadOptions,
        name: &str,
        mut zarray: Value,
        attributes: Map<String, Value>,
    ) -> Result<ZarrArray, ZarrError> {
        let store = &options.store_name;
        let key = format!("{name}/.zarray");
        // numcodecs' LZ4 is unknown to zarrs: wx decodes it, zarrs sees no compressor
        let lz4 = zarray.pointer("/compressor/id").and_then(Value::as_str) == Some("lz4");
        if lz4 {
            zarray["compressor"] = Value::Null;
        }
        let fill_value = zarray.get("fill_value").cloned();
        let dtype = zarray
            .get("dtype")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut meta: ArrayMetadataV2 = serde_json::from_value(zarray)
            .map_err(|e| ZarrError::format(store, &key, format!("invalid array metadata: {e}")))?;
        let element = ElementType::from_v2(&dtype).ok_or_else(|| {
            ZarrError::format(
                store,
                &key,
                format!("data type `{dtype}` is not supported (<f4, <f8, <i4, <i8)"),
            )
        })?;
        let dims = dimension_names_v2(&attributes).ok_or_else(|| {
            ZarrError::format(
                store,
                &format!("{name}/.zattrs"),
                "no `_ARRAY_DIMENSIONS` attribute (a list of dimension names); write the store \
                 with xarray",
            )
        })?;
        meta.attributes = attributes.clone();
        let array = Array::new_with_metadata(
            storage.clone(),
            &format!("/{name}"),
            ArrayMetadata::V2(meta),
        )
        .map_err(|e| ZarrError::format(store, &key, format!("unsupported array: {e}")))?;
        let cf =
            CfDecoding::from_attributes(store, name, element, &attributes, fill_value.as_ref())?;
        ZarrArray::finish(
            storage,
            options,
            name,
            &key,
            (dims, attributes, cf),
            element,
            array,
            (lz4, false),
        )
    }

    /// Builds an array from v3 metadata (an array `zarr.json` or a consolidated entry).
    pub(crate) fn from_v3(
        storage: &DynStorage,
        options: &ReadOptions,
        name: &str,
        zarr_json: Value,
    ) -> Result<ZarrArray, ZarrError> {
        let store = &options.store_name;
        let key = format!("{name}/zarr.json");
        let dtype = zarr_json
            .get("data_type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let element = ElementType::from_v3(&dtype).ok_or_else(|| {
            ZarrError::format(
                store,
                &key,
                format!("data type `{dtype}` is not supported (float32, float64, int32, int64)"),
            )
        })?;
        let grid = zarr_json
            .pointer("/chunk_grid/name")
            .and_then(Value::as_str);
        if grid != Some("regular") {
            return Err(ZarrError::format(
                store,
                &key,
                format!("chunk grid {grid:?} is not supported (regular only)"),
            ));
        }
        let dims: Option<Vec<String>> = zarr_json
            .get("dimension_names")
            .and_then(Value::as_array)
            .and_then(|names| {
                names
                    .iter()
                    .map(|n| n.as_str().map(str::to_owned))
                    .collect()
            });
        let dims = dims.ok_or_else(|| {
            ZarrError::format(
                store,
                &key,
                "no complete `dimension_names`; every dimension must be named",
            )
        })?;
        let attributes = zarr_json
            .get("attributes")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut zarr_json = zarr_json;
        let lz4 = take_lz4(zarr_json.get_mut("codecs"))
            .map_err(|m| ZarrError::format(store, &key, m.to_string()))?;
        let inner_lz4 = take_lz4(zarr_json.pointer_mut("/codecs/0/configuration/codecs"))
            .map_err(|m| ZarrError::format(store, &key, m.to_string()))?;
        let meta: ArrayMetadataV3 = serde_json::from_value(zarr_json)
            .map_err(|e| ZarrError::format(store, &key, format!("invalid array metadata: {e}")))?;
        let array = Array::new_with_metadata(
            storage.clone(),
            &format!("/{name}"),
            ArrayMetadata::V3(meta),
        )
        .map_err(|e| ZarrError::format(store, &key, format!("unsupported array: {e}")))?;
        let cf = CfDecoding::from_attributes(store, name, element, &attributes, None)?;
        ZarrArray::finish(
            storage,
            options,
            name,
            &key,
            (dims, attributes, cf),
            element,
            array,
            (lz4, inner_lz4),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        storage: &DynStorage,
        options: &ReadOptions,
        name: &str,
        key: &str,
        (dims, attributes, cf): (Vec<String>, Map<String, Value>, Option<CfDecoding>),
        element: ElementType,
        array: Array<dyn AsyncReadableStorageTraits>,
        (lz4, inner_lz4): (bool, bool),
    ) -> Result<ZarrArray, ZarrError> {
        let store = &options.store_name;
        if dims.len() != array.dimensionality() {
            return Err(ZarrError::format(
                store,
                key,
                format!(
                    "{} dimension names {:?} for a {}-dimensional array",
                    dims.len(),
                    dims,
                    array.dimensionality()
                ),
            ));
        }
        let codecs = codecs_of(&array.codecs(), lz4, inner_lz4)
            .map_err(|message| ZarrError::format(store, key, message.to_string()))?;
        if let Some(sharding) = &codecs.sharding {
            let shard: Vec<u64> = array
                .chunk_shape(&vec![0; array.dimensionality()])
                .map(|s| s.iter().map(|n| n.get()).collect())
                .unwrap_or_default();
            let inner = &sharding.inner_shape;
            let count = shard.iter().zip(inner).try_fold(1u64, |acc, (s, i)| {
                (inner.len() == shard.len() && *i > 0 && s % i == 0)
                    .then(|| acc.checked_mul(s / i))
                    .flatten()
            });
            match count {
                Some(n) if n <= crate::decode::MAX_INNER_CHUNKS => {}
                Some(n) => {
                    return Err(ZarrError::format(
                        store,
                        key,
                        format!(
                            "a shard {shard:?} of inner chunks {inner:?} has {n} inner chunks, \
                             over the {} accepted; write larger inner chunks",
                            crate::decode::MAX_INNER_CHUNKS
                        ),
                    ));
                }
                None => {
                    return Err(ZarrError::format(
                        store,
                        key,
                        format!("inner chunk shape {inner:?} does not divide the shard {shard:?}"),
                    ));
                }
            }
        }
        Ok(ZarrArray {
            store: store.clone(),
            name: name.to_owned(),
            dims,
            attributes,
            element,
            codecs,
            cf,
            array,
            storage: storage.clone(),
            options: options.clone(),
        })
    }
}

/// Takes a numcodecs LZ4 codec (`numcodecs.lz4`, which zarrs does not know) out of a v3 codec
/// list, so that zarrs sees the rest; `true` when there was one. It must come right after the
/// serialisation codec (only a crc32c may follow it).
fn take_lz4(codecs: Option<&mut Value>) -> Result<bool, DecodeError> {
    let Some(Value::Array(list)) = codecs else {
        return Ok(false);
    };
    let name = |v: &Value| v.get("name").and_then(Value::as_str).map(str::to_owned);
    let positions: Vec<usize> = list
        .iter()
        .enumerate()
        .filter(|(_, c)| name(c).as_deref() == Some("numcodecs.lz4"))
        .map(|(i, _)| i)
        .collect();
    match positions.as_slice() {
        [] => Ok(false),
        [at] => {
            let serialisation = list
                .iter()
                .position(|c| matches!(name(c).as_deref(), Some("bytes" | "sharding_indexed")));
            if serialisation.map(|s| s + 1) != Some(*at) {
                return Err(
                    "numcodecs.lz4 must come right after the `bytes` codec (only crc32c may \
                     follow it)"
                        .into(),
                );
            }
            list.remove(*at);
            Ok(true)
        }
        _ => Err("more than one numcodecs.lz4 codec".into()),
    }
}

/// Reads `_ARRAY_DIMENSIONS` from v2 attributes.
fn dimension_names_v2(attributes: &Map<String, Value>) -> Option<Vec<String>> {
    attributes
        .get("_ARRAY_DIMENSIONS")?
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}
