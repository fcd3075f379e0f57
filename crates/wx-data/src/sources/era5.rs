//! ERA5 truth from an ARCO-ERA5-layout Zarr (docs/data.md §3.2): long variable names, dims (time,
//! level, latitude, longitude), 37 levels of which the scored ones are selected.

use super::layout::{GriddedStore, read_time_axis, time_index};
use crate::field::Field;
use crate::zarr::{DynStorage, ReadOptions, ZarrDataset, ZarrError};
use chrono::{DateTime, Utc};
use wx_model::VarLevel;
use wx_model::catalogue::TIME_DIMENSION_NAMES;

/// An ARCO-ERA5-layout store (the public bucket, a mirror or a local copy).
///
/// Variables are looked up under their accepted names (long names first in ARCO stores, short
/// names work too) when read, so a store with hundreds of other variables costs nothing extra.
/// A valid time absent from the time axis is a [`ZarrError::MissingTime`]: for ERA5 that means
/// "not published yet".
pub struct Era5Reader {
    store: GriddedStore,
    time_name: String,
    times: Vec<DateTime<Utc>>,
}

impl std::fmt::Debug for Era5Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Era5Reader")
            .field("store", &self.store.dataset.store_name())
            .field("times", &self.times.len())
            .finish()
    }
}

impl Era5Reader {
    /// Opens the store: root metadata, time axis (CF), latitude and longitude.
    pub async fn open(storage: DynStorage, options: ReadOptions) -> Result<Era5Reader, ZarrError> {
        let dataset = ZarrDataset::open(storage, options).await?;
        let (time_name, times) = read_time_axis(&dataset, TIME_DIMENSION_NAMES).await?;
        let store = GriddedStore::open(dataset).await?;
        Ok(Era5Reader {
            store,
            time_name,
            times,
        })
    }

    /// Times on the store's axis.
    pub fn times(&self) -> &[DateTime<Utc>] {
        &self.times
    }

    /// Whether the store has exactly this time.
    pub fn has_time(&self, time: DateTime<Utc>) -> bool {
        self.times.contains(&time)
    }

    /// Latitudes as stored.
    pub fn lats(&self) -> &[f64] {
        &self.store.lats
    }

    /// Longitudes as stored.
    pub fn lons(&self) -> &[f64] {
        &self.store.lons
    }

    /// Reads `selection` at exactly `valid_time` (levels selected exactly, never interpolated).
    pub async fn read(
        &self,
        selection: VarLevel,
        valid_time: DateTime<Utc>,
    ) -> Result<Field, ZarrError> {
        let names: &[&str] = &[self.time_name.as_str()];
        let layout = self
            .store
            .resolve(selection.variable, &[("time", names)])
            .await?;
        let t = time_index(
            self.store.dataset.store_name(),
            layout.array.name(),
            &self.times,
            valid_time,
        )?;
        self.store.read(&layout, &[t], selection, valid_time).await
    }
}
