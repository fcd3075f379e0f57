//! Shared machinery of the source readers: dimension roles, coordinates, exact level and time
//! selection, and the read of one field normalised to (level, lat, lon).

use crate::field::Field;
use chrono::{DateTime, Utc};
use ndarray::{Array3, Axis, Ix3};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Mutex;
use wx_model::catalogue::{
    LATITUDE_DIMENSION_NAMES, LEVEL_DIMENSION_NAMES, LONGITUDE_DIMENSION_NAMES, level_to_hpa,
};
use wx_model::{Level, VarLevel, Variable};
use wx_zarr::cftime::summarize_times;
use wx_zarr::layout::RowOrder;
use wx_zarr::{CfTimeUnits, Selection, ZarrArray, ZarrDataset, ZarrError};

/// Where a variable's dimensions are, and its levels.
#[derive(Debug, Clone)]
pub struct VariableLayout {
    /// The variable.
    pub variable: Variable,
    /// The array, under the name found in the store.
    pub array: Arc<ZarrArray>,
    /// Position of each fixed (selected-by-index) dimension, in the order of the roles asked.
    pub fixed_dims: Vec<usize>,
    /// Position of the level dimension and its levels in hPa (multi-level variables).
    pub level: Option<(usize, Vec<Level>)>,
    /// Position of the latitude dimension.
    pub lat_dim: usize,
    /// Position of the longitude dimension.
    pub lon_dim: usize,
}

/// A store opened with its latitude and longitude coordinates and a level-coordinate cache.
pub(crate) struct GriddedStore {
    pub dataset: ZarrDataset,
    pub lat_name: String,
    pub lon_name: String,
    pub lats: Vec<f64>,
    pub lons: Vec<f64>,
    levels: Mutex<HashMap<String, Result<Vec<Level>, ZarrError>>>,
}

impl GriddedStore {
    /// Reads the latitude and longitude coordinates (the first accepted name present).
    pub async fn open(dataset: ZarrDataset) -> Result<GriddedStore, ZarrError> {
        let (lat_name, lats) = read_named_coordinate(&dataset, LATITUDE_DIMENSION_NAMES).await?;
        let (lon_name, lons) = read_named_coordinate(&dataset, LONGITUDE_DIMENSION_NAMES).await?;
        for (name, values) in [(&lat_name, &lats), (&lon_name, &lons)] {
            if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
                return Err(ZarrError::format(
                    dataset.store_name(),
                    name,
                    "coordinate is empty or has non-finite values",
                ));
            }
        }
        Ok(GriddedStore {
            dataset,
            lat_name,
            lon_name,
            lats,
            lons,
            levels: Mutex::new(HashMap::new()),
        })
    }

    fn store(&self) -> &str {
        self.dataset.store_name()
    }

    /// Finds a variable under its accepted names and checks its dimensions: exactly one of each
    /// fixed role, a level dimension iff the variable is multi-level, the latitude and longitude
    /// dimensions of the coordinates, nothing else; float data; units as scored.
    pub async fn resolve(
        &self,
        variable: Variable,
        fixed_roles: &[(&str, &[&str])],
    ) -> Result<VariableLayout, ZarrError> {
        let store = self.store();
        let Some((name, array)) = self.dataset.find_array(variable.accepted_names()).await? else {
            return Err(ZarrError::MissingVariable {
                store: store.to_owned(),
                variable,
                accepted: variable.accepted_names().join(", "),
            });
        };
        let bad = |message: String| ZarrError::format(store, &name, message);
        // any element type: floats, or integers CF-decoded by `read_f32` (docs/data.md §1.5);
        // the miner reader narrows this to float32
        wx_model::catalogue::check_units(variable, array.attribute_str("units"))
            .map_err(|e| bad(e.to_string()))?;
        let mut fixed_dims = vec![None; fixed_roles.len()];
        let (mut lat_dim, mut lon_dim, mut level_dim) = (None, None, None);
        for (d, dim) in array.dims().iter().enumerate() {
            let slot = if let Some(r) = fixed_roles
                .iter()
                .position(|(_, n)| n.contains(&dim.as_str()))
            {
                &mut fixed_dims[r]
            } else if *dim == self.lat_name {
                &mut lat_dim
            } else if *dim == self.lon_name {
                &mut lon_dim
            } else if LEVEL_DIMENSION_NAMES.contains(&dim.as_str()) {
                &mut level_dim
            } else {
                return Err(bad(format!(
                    "unexpected dimension `{dim}` (dims {:?})",
                    array.dims()
                )));
            };
            if slot.replace(d).is_some() {
                return Err(bad(format!("dimension role of `{dim}` appears twice")));
            }
        }
        let mut fixed = Vec::with_capacity(fixed_roles.len());
        for (slot, (role, names)) in fixed_dims.iter().zip(fixed_roles) {
            fixed.push(slot.ok_or_else(|| {
                bad(format!(
                    "no {role} dimension (one of {}) in dims {:?}",
                    names.join(", "),
                    array.dims()
                ))
            })?);
        }
        let lat_dim = lat_dim.ok_or_else(|| {
            bad(format!(
                "no `{}` dimension in dims {:?}",
                self.lat_name,
                array.dims()
            ))
        })?;
        let lon_dim = lon_dim.ok_or_else(|| {
            bad(format!(
                "no `{}` dimension in dims {:?}",
                self.lon_name,
                array.dims()
            ))
        })?;
        let shape = array.shape();
        if shape[lat_dim] != self.lats.len() as u64 || shape[lon_dim] != self.lons.len() as u64 {
            return Err(bad(format!(
                "grid {}×{} does not match the coordinates {}×{}",
                shape[lat_dim],
                shape[lon_dim],
                self.lats.len(),
                self.lons.len()
            )));
        }
        let level = match (variable.is_surface(), level_dim) {
            (true, None) => None,
            (true, Some(d)) => {
                return Err(bad(format!(
                    "surface variable with a level dimension `{}`",
                    array.dims()[d]
                )));
            }
            (false, None) => {
                return Err(bad(format!(
                    "no level dimension (one of {}) in dims {:?}",
                    LEVEL_DIMENSION_NAMES.join(", "),
                    array.dims()
                )));
            }
            (false, Some(d)) => {
                let levels = self.levels_of(&array.dims()[d]).await?;
                if levels.len() as u64 != shape[d] {
                    return Err(bad(format!(
                        "level dimension has {} entries but its coordinate {}",
                        shape[d],
                        levels.len()
                    )));
                }
                Some((d, levels))
            }
        };
        Ok(VariableLayout {
            variable,
            array,
            fixed_dims: fixed,
            level,
            lat_dim,
            lon_dim,
        })
    }

    /// The level coordinate `dim` in hPa (Pa detected by magnitude), cached.
    async fn levels_of(&self, dim: &str) -> Result<Vec<Level>, ZarrError> {
        let mut cache = self.levels.lock().await;
        if let Some(hit) = cache.get(dim) {
            return hit.clone();
        }
        let result = async {
            let values = read_coordinate(&self.dataset, dim).await?;
            values
                .iter()
                .map(|v| {
                    level_to_hpa(*v).ok_or_else(|| {
                        ZarrError::format(
                            self.store(),
                            dim,
                            format!("level value {v} is not a whole number of hPa (or Pa)"),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        }
        .await;
        if !matches!(result, Err(ZarrError::Storage { .. })) {
            cache.insert(dim.to_owned(), result.clone());
        }
        result
    }

    /// Reads one field: fixed dimensions at the given indices, the levels of `selection`
    /// (exactly; none for a surface variable), the whole grid; normalised to (level, lat, lon).
    pub async fn read(
        &self,
        layout: &VariableLayout,
        fixed_indices: &[u64],
        selection: VarLevel,
        valid_time: DateTime<Utc>,
    ) -> Result<Field, ZarrError> {
        let store = self.store();
        let name = layout.array.name();
        if selection.variable != layout.variable {
            return Err(ZarrError::format(
                store,
                name,
                format!(
                    "asked for {} from the layout of {}",
                    selection, layout.variable
                ),
            ));
        }
        let wanted = selection.levels();
        let ndim = layout.array.dims().len();
        let mut sel = vec![Selection::All; ndim];
        for (d, i) in layout.fixed_dims.iter().zip(fixed_indices) {
            sel[*d] = Selection::Index(*i);
        }
        if let Some((d, levels)) = &layout.level {
            let idx = wanted
                .iter()
                .map(|l| {
                    levels
                        .iter()
                        .position(|x| x == l)
                        .map(|p| p as u64)
                        .ok_or_else(|| ZarrError::MissingLevel {
                            store: store.to_owned(),
                            variable: layout.variable,
                            level: *l,
                            available: levels
                                .iter()
                                .map(|x| x.to_string())
                                .collect::<Vec<_>>()
                                .join(", "),
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            sel[*d] = Selection::Indices(idx);
        }
        let data = layout.array.read_f32(&sel).await?;
        // kept axes in storage order → positions of level, lat, lon among them
        let kept: Vec<usize> = (0..ndim)
            .filter(|d| !matches!(sel[*d], Selection::Index(_)))
            .collect();
        let pos = |d: usize| kept.iter().position(|k| *k == d);
        let (lat_ax, lon_ax) = (pos(layout.lat_dim), pos(layout.lon_dim));
        let (Some(lat_ax), Some(lon_ax)) = (lat_ax, lon_ax) else {
            return Err(ZarrError::format(store, name, "internal: grid axes lost"));
        };
        let data = match &layout.level {
            Some((d, _)) => {
                let lev_ax = pos(*d).unwrap_or(0);
                data.permuted_axes(vec![lev_ax, lat_ax, lon_ax])
            }
            None => data
                .permuted_axes(vec![lat_ax, lon_ax])
                .insert_axis(Axis(0)),
        };
        let data: Array3<f32> = data
            .into_dimensionality::<Ix3>()
            .map_err(|e| ZarrError::format(store, name, format!("internal: {e}")))?;
        // (level, lat, lon) is the storage order in the usual layout: no copy then. Another
        // order (the WeatherBench2 climatology's lon, lat) is copied on the blocking pool, and
        // a grid stored south to north comes out north first in that same copy, which spares
        // the alignment a copy of its own (docs/data.md §4.3)
        let mut lats = self.lats.clone();
        let data = if !data.is_standard_layout() {
            let order = if lats.first() < lats.last() {
                lats.reverse();
                RowOrder::Reversed
            } else {
                RowOrder::Kept
            };
            tokio::task::spawn_blocking(move || wx_zarr::layout::into_standard_layout(data, order))
                .await
                .map_err(|e| ZarrError::format(store, name, format!("internal: {e}")))?
        } else {
            data
        };
        let levels = if layout.level.is_some() {
            wanted
        } else {
            Vec::new()
        };
        Field::new(
            layout.variable,
            levels,
            lats,
            self.lons.clone(),
            valid_time,
            data,
        )
        .map_err(|e| ZarrError::format(store, name, e.to_string()))
    }
}

/// Reads the 1-D coordinate array `name` as f64.
pub(crate) async fn read_coordinate(ds: &ZarrDataset, name: &str) -> Result<Vec<f64>, ZarrError> {
    let array = ds.array(name).await?.ok_or_else(|| ZarrError::MissingKey {
        store: ds.store_name().to_owned(),
        key: name.to_owned(),
        hint: format!("the coordinate array `{name}` is missing"),
    })?;
    array.read_coordinate().await
}

/// Reads the first coordinate present among `names`.
pub(crate) async fn read_named_coordinate(
    ds: &ZarrDataset,
    names: &[&str],
) -> Result<(String, Vec<f64>), ZarrError> {
    let Some((name, array)) = ds.find_array(names).await? else {
        return Err(ZarrError::MissingKey {
            store: ds.store_name().to_owned(),
            key: names.join(" | "),
            hint: "no coordinate array with any of these names".to_owned(),
        });
    };
    Ok((name, array.read_coordinate().await?))
}

/// Reads and decodes a CF time coordinate (`units` required, `calendar` optional); times must
/// be distinct.
pub(crate) async fn read_time_axis(
    ds: &ZarrDataset,
    names: &[&str],
) -> Result<(String, Vec<DateTime<Utc>>), ZarrError> {
    let store = ds.store_name();
    let Some((name, array)) = ds.find_array(names).await? else {
        return Err(ZarrError::MissingKey {
            store: store.to_owned(),
            key: names.join(" | "),
            hint: "no time coordinate array".to_owned(),
        });
    };
    let units = array.attribute_str("units").ok_or_else(|| {
        ZarrError::format(
            store,
            &name,
            "time has no `units` attribute (expected CF `<unit> since <date>`)",
        )
    })?;
    let cf = CfTimeUnits::parse(units, array.attribute_str("calendar"))
        .map_err(|e| ZarrError::format(store, &name, e.0))?;
    let values = array.read_coordinate().await?;
    let times = cf
        .decode_all(&values)
        .map_err(|e| ZarrError::format(store, &name, e.0))?;
    let mut sorted = times.clone();
    sorted.sort();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return Err(ZarrError::format(store, &name, "time values repeat"));
    }
    Ok((name, times))
}

/// The index of `time` on a time axis (exact match only).
pub(crate) fn time_index(
    store: &str,
    array: &str,
    times: &[DateTime<Utc>],
    time: DateTime<Utc>,
) -> Result<u64, ZarrError> {
    times
        .iter()
        .position(|t| *t == time)
        .map(|i| i as u64)
        .ok_or_else(|| ZarrError::MissingTime {
            store: store.to_owned(),
            array: array.to_owned(),
            time: time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            available: summarize_times(times),
        })
}
