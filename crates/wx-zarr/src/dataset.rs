//! A Zarr group (v2 or v3) opened from its metadata, consolidated when possible.

use super::array::{DynStorage, ZarrArray};
use super::{FormatHint, ReadOptions, ZarrError};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::sync::Mutex;
use zarrs::storage::StoreKey;

/// The Zarr format of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZarrFormat {
    /// Zarr v2 (`.zmetadata` / `.zarray` / `.zattrs`).
    V2,
    /// Zarr v3 (`zarr.json`).
    V3,
}

type ArrayEntry = Result<Arc<ZarrArray>, ZarrError>;

/// A Zarr group whose arrays are opened from metadata.
///
/// With consolidated metadata (v2 `.zmetadata`, v3 inline `consolidated_metadata`) every array
/// is known after one GET; without it, arrays are opened by name on demand (`<name>/.zarray` +
/// `<name>/.zattrs`, or `<name>/zarr.json`) and cached. A bad array (unsupported codec, missing
/// dimension names...) makes only that array fail, so a reader can report it per variable.
pub struct ZarrDataset {
    storage: DynStorage,
    options: ReadOptions,
    format: ZarrFormat,
    consolidated: Option<BTreeMap<String, ArrayEntry>>,
    opened: Mutex<HashMap<String, Option<ArrayEntry>>>,
    root_attributes: Map<String, Value>,
}

impl std::fmt::Debug for ZarrDataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZarrDataset")
            .field("store", &self.options.store_name)
            .field("format", &self.format)
            .field("consolidated", &self.consolidated.is_some())
            .finish()
    }
}

impl ZarrDataset {
    /// Opens the store's root metadata. With [`FormatHint::Auto`] it tries `.zmetadata`, then
    /// `zarr.json`, then `.zgroup` (a verifying storage that refuses unknown keys should pass
    /// the format it knows from the manifest instead).
    pub async fn open(storage: DynStorage, options: ReadOptions) -> Result<ZarrDataset, ZarrError> {
        let mut ds = ZarrDataset {
            storage,
            options,
            format: ZarrFormat::V2,
            consolidated: None,
            opened: Mutex::new(HashMap::new()),
            root_attributes: Map::new(),
        };
        let try_v2 = matches!(ds.options.format, FormatHint::Auto | FormatHint::V2);
        let try_v3 = matches!(ds.options.format, FormatHint::Auto | FormatHint::V3);
        if try_v2 && let Some(zmeta) = ds.get_json(".zmetadata").await? {
            ds.root_attributes = object_at(&zmeta, &["metadata", ".zattrs"]);
            ds.consolidated = Some(ds.parse_zmetadata(zmeta)?);
            return Ok(ds);
        }
        if try_v3 && let Some(root) = ds.get_json("zarr.json").await? {
            ds.format = ZarrFormat::V3;
            ds.root_attributes = object_at(&root, &["attributes"]);
            ds.consolidated = ds.parse_v3_root(root)?;
            return Ok(ds);
        }
        if try_v2 && ds.get_json(".zgroup").await?.is_some() {
            if let Some(attrs) = ds.get_json(".zattrs").await? {
                ds.root_attributes = object_at(&attrs, &[]);
            }
            return Ok(ds);
        }
        Err(ZarrError::MissingKey {
            store: ds.options.store_name.clone(),
            key: match ds.options.format {
                FormatHint::Auto => ".zmetadata, zarr.json, .zgroup".to_owned(),
                FormatHint::V2 => ".zmetadata, .zgroup".to_owned(),
                FormatHint::V3 => "zarr.json".to_owned(),
            },
            hint: "this is not a Zarr group (no root metadata found)".to_owned(),
        })
    }

    /// The store's format.
    pub fn format(&self) -> ZarrFormat {
        self.format
    }

    /// Whether all array metadata came from consolidated metadata.
    pub fn is_consolidated(&self) -> bool {
        self.consolidated.is_some()
    }

    /// The store name used in messages.
    pub fn store_name(&self) -> &str {
        &self.options.store_name
    }

    /// The options the dataset was opened with.
    pub fn options(&self) -> &ReadOptions {
        &self.options
    }

    /// The group's attributes as read when the store was opened (v2 root `.zattrs` through the
    /// consolidated metadata, v3 root `zarr.json` `attributes`).
    pub fn root_attributes(&self) -> &Map<String, Value> {
        &self.root_attributes
    }

    /// Reads the group's attributes again from the store (a growing store updates them while
    /// the array metadata stays): v2 root `.zattrs`, else the `.zattrs` entry of a fresh
    /// `.zmetadata`; v3 root `zarr.json`. A store without them has none (an empty map).
    pub async fn read_root_attributes(&self) -> Result<Map<String, Value>, ZarrError> {
        match self.format {
            ZarrFormat::V2 => {
                if let Some(attrs) = self.get_json(".zattrs").await? {
                    if !attrs.is_object() {
                        return Err(ZarrError::format(
                            self.store_name(),
                            ".zattrs",
                            "attributes are not a JSON object",
                        ));
                    }
                    return Ok(object_at(&attrs, &[]));
                }
                Ok(match self.get_json(".zmetadata").await? {
                    Some(zmeta) => object_at(&zmeta, &["metadata", ".zattrs"]),
                    None => Map::new(),
                })
            }
            ZarrFormat::V3 => Ok(match self.get_json("zarr.json").await? {
                Some(root) => object_at(&root, &["attributes"]),
                None => Map::new(),
            }),
        }
    }

    /// Names of all arrays, when the metadata is consolidated (`None` otherwise: plain HTTP
    /// cannot list).
    pub fn array_names(&self) -> Option<Vec<String>> {
        self.consolidated
            .as_ref()
            .map(|m| m.keys().cloned().collect())
    }

    /// Opens an array by name: `Ok(None)` if the store has no such array, `Err` if it exists but
    /// cannot be used (its error is kept and returned on every call).
    pub async fn array(&self, name: &str) -> Result<Option<Arc<ZarrArray>>, ZarrError> {
        if let Some(map) = &self.consolidated {
            return map.get(name).cloned().transpose();
        }
        let mut opened = self.opened.lock().await;
        if let Some(entry) = opened.get(name) {
            return entry.clone().transpose();
        }
        let entry = match self.open_unconsolidated(name).await {
            Ok(Some(a)) => Some(Ok(Arc::new(a))),
            Ok(None) => None,
            Err(e @ ZarrError::Storage { .. }) => return Err(e), // not cached: may be transient
            Err(e) => Some(Err(e)),
        };
        opened.insert(name.to_owned(), entry.clone());
        entry.transpose()
    }

    /// The first of `names` that exists, with its name.
    pub async fn find_array(
        &self,
        names: &[&str],
    ) -> Result<Option<(String, Arc<ZarrArray>)>, ZarrError> {
        for name in names {
            if let Some(a) = self.array(name).await? {
                return Ok(Some(((*name).to_owned(), a)));
            }
        }
        Ok(None)
    }

    async fn open_unconsolidated(&self, name: &str) -> Result<Option<ZarrArray>, ZarrError> {
        if !valid_array_name(name) {
            return Ok(None);
        }
        match self.format {
            ZarrFormat::V2 => {
                let Some(zarray) = self.get_json(&format!("{name}/.zarray")).await? else {
                    return Ok(None);
                };
                let attrs = match self.get_json(&format!("{name}/.zattrs")).await? {
                    Some(Value::Object(m)) => m,
                    Some(_) => {
                        return Err(ZarrError::format(
                            self.store_name(),
                            &format!("{name}/.zattrs"),
                            "attributes are not a JSON object",
                        ));
                    }
                    None => Map::new(),
                };
                ZarrArray::from_v2(&self.storage, &self.options, name, zarray, attrs).map(Some)
            }
            ZarrFormat::V3 => {
                let Some(meta) = self.get_json(&format!("{name}/zarr.json")).await? else {
                    return Ok(None);
                };
                if meta.get("node_type").and_then(Value::as_str) != Some("array") {
                    return Ok(None);
                }
                ZarrArray::from_v3(&self.storage, &self.options, name, meta).map(Some)
            }
        }
    }

    /// GETs and parses a JSON key, refusing more than `max_metadata_bytes` before parsing.
    async fn get_json(&self, key: &str) -> Result<Option<Value>, ZarrError> {
        let store = self.store_name();
        let store_key = StoreKey::new(key)
            .map_err(|e| ZarrError::format(store, key, format!("invalid key: {e}")))?;
        let Some(bytes) = self
            .storage
            .get(&store_key)
            .await
            .map_err(|e| ZarrError::storage(store, key, &e))?
        else {
            return Ok(None);
        };
        if bytes.len() as u64 > self.options.max_metadata_bytes {
            return Err(ZarrError::TooLarge {
                store: store.to_owned(),
                key: key.to_owned(),
                size: bytes.len() as u64,
                limit: self.options.max_metadata_bytes,
                what: "metadata JSON",
            });
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ZarrError::format(store, key, format!("invalid JSON: {e}")))
    }

    fn parse_zmetadata(&self, zmeta: Value) -> Result<BTreeMap<String, ArrayEntry>, ZarrError> {
        let store = self.store_name();
        let key = ".zmetadata";
        let version = zmeta
            .get("zarr_consolidated_format")
            .and_then(Value::as_u64);
        if version != Some(1) {
            return Err(ZarrError::format(
                store,
                key,
                format!("zarr_consolidated_format is {version:?}, expected 1"),
            ));
        }
        let Some(Value::Object(entries)) = zmeta.get("metadata") else {
            return Err(ZarrError::format(
                store,
                key,
                "no `metadata` object in consolidated metadata",
            ));
        };
        let mut arrays = BTreeMap::new();
        for (k, zarray) in entries {
            let Some(name) = k.strip_suffix("/.zarray") else {
                continue;
            };
            if !valid_array_name(name) {
                return Err(ZarrError::format(
                    store,
                    key,
                    format!("invalid array name `{name}`"),
                ));
            }
            let attrs = match entries.get(&format!("{name}/.zattrs")) {
                Some(Value::Object(m)) => Ok(m.clone()),
                Some(_) => Err(ZarrError::format(
                    store,
                    &format!("{name}/.zattrs"),
                    "attributes are not a JSON object",
                )),
                None => Ok(Map::new()),
            };
            let entry = attrs.and_then(|attrs| {
                ZarrArray::from_v2(&self.storage, &self.options, name, zarray.clone(), attrs)
                    .map(Arc::new)
            });
            arrays.insert(name.to_owned(), entry);
        }
        Ok(arrays)
    }

    fn parse_v3_root(
        &self,
        root: Value,
    ) -> Result<Option<BTreeMap<String, ArrayEntry>>, ZarrError> {
        let store = self.store_name();
        let key = "zarr.json";
        if root.get("zarr_format").and_then(Value::as_u64) != Some(3) {
            return Err(ZarrError::format(store, key, "zarr_format is not 3"));
        }
        if root.get("node_type").and_then(Value::as_str) != Some("group") {
            return Err(ZarrError::format(
                store,
                key,
                "the root is not a group (node_type must be \"group\")",
            ));
        }
        let Some(consolidated) = root.get("consolidated_metadata").filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        if consolidated.get("kind").and_then(Value::as_str) != Some("inline") {
            return Ok(None);
        }
        let Some(Value::Object(entries)) = consolidated.get("metadata") else {
            return Err(ZarrError::format(
                store,
                key,
                "consolidated_metadata has no `metadata` object",
            ));
        };
        let mut arrays = BTreeMap::new();
        for (name, meta) in entries {
            if meta.get("node_type").and_then(Value::as_str) != Some("array") {
                continue;
            }
            if !valid_array_name(name) {
                return Err(ZarrError::format(
                    store,
                    key,
                    format!("invalid array name `{name}`"),
                ));
            }
            let entry =
                ZarrArray::from_v3(&self.storage, &self.options, name, meta.clone()).map(Arc::new);
            arrays.insert(name.clone(), entry);
        }
        Ok(Some(arrays))
    }
}

/// The JSON object at `path` inside `value` (an empty map when absent or not an object).
fn object_at(value: &Value, path: &[&str]) -> Map<String, Value> {
    let mut v = value;
    for key in path {
        match v.get(key) {
            Some(inner) => v = inner,
            None => return Map::new(),
        }
    }
    v.as_object().cloned().unwrap_or_default()
}

/// Array names are relative paths of plain segments (no `..`, no empty or dot segments).
fn valid_array_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != ".." && !seg.contains('\\'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_names_are_plain_relative_paths() {
        assert!(valid_array_name("2t"));
        assert!(valid_array_name("group/t"));
        assert!(!valid_array_name(""));
        assert!(!valid_array_name("../secret"));
        assert!(!valid_array_name("a//b"));
        assert!(!valid_array_name("/abs"));
    }
}
