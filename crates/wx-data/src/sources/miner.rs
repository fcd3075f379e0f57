//! The miner forecast store (docs/data.md §1): validated before any data is read.

use super::layout::{GriddedStore, VariableLayout, read_time_axis, time_index};
use crate::field::Field;
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::BTreeMap;
use wx_model::catalogue::TIME_DIMENSION_NAMES;
use wx_model::{Level, VarLevel, Variable};
use wx_zarr::{DynStorage, ElementType, ReadOptions, ZarrDataset, ZarrError};

/// A miner's forecast store, opened and validated.
///
/// [`MinerForecastReader::open`] reads the metadata (one GET when consolidated) and the
/// coordinates, decodes the time axis, and checks every scored variable's layout: present under
/// an accepted name, dims `(time, [level], lat, lon)` in any order and nothing else, float32,
/// matching grid, levels in hPa, `units` as scored when present, and a chunk of at most
/// [`ReadOptions::max_chunk_bytes`] decoded. A variable that fails is reported in
/// [`MinerForecastReader::problems`] (so the caller can score it 0) while the others stay
/// readable. Reads then go one valid time at a time: [`MinerForecastReader::read`] fetches only
/// the chunk(s) of that time.
pub struct MinerForecastReader {
    store: GriddedStore,
    init: DateTime<Utc>,
    time_name: String,
    times: Vec<DateTime<Utc>>,
    variables: BTreeMap<Variable, Result<VariableLayout, ZarrError>>,
}

impl std::fmt::Debug for MinerForecastReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MinerForecastReader")
            .field("store", &self.store.dataset.store_name())
            .field("init", &self.init)
            .field("times", &self.times.len())
            .finish()
    }
}

impl MinerForecastReader {
    /// Opens and validates a miner store for the run initialised at `init`. Fails as a whole
    /// only when nothing can be scored (no root metadata, no usable time or lat/lon axis, no
    /// valid time after `init`); per-variable problems are kept for [`Self::problems`].
    pub async fn open(
        storage: DynStorage,
        options: ReadOptions,
        init: DateTime<Utc>,
    ) -> Result<MinerForecastReader, ZarrError> {
        let dataset = ZarrDataset::open(storage, options).await?;
        let (time_name, times) = read_time_axis(&dataset, TIME_DIMENSION_NAMES).await?;
        if !times.iter().any(|t| *t > init) {
            return Err(ZarrError::format(
                dataset.store_name(),
                &time_name,
                format!(
                    "no valid time after the run's init {} (times: {})",
                    init.format("%Y-%m-%dT%H:%M:%SZ"),
                    wx_zarr::cftime::summarize_times(&times)
                ),
            ));
        }
        let store = GriddedStore::open(dataset).await?;
        let mut variables = BTreeMap::new();
        for variable in Variable::ALL.iter().copied() {
            let layout = Self::validate(&store, variable, &time_name, times.len()).await;
            variables.insert(variable, layout);
        }
        Ok(MinerForecastReader {
            store,
            init,
            time_name,
            times,
            variables,
        })
    }

    async fn validate(
        store: &GriddedStore,
        variable: Variable,
        time_name: &str,
        n_times: usize,
    ) -> Result<VariableLayout, ZarrError> {
        let names: &[&str] = &[time_name];
        let layout = store.resolve(variable, &[("time", names)]).await?;
        let array = &layout.array;
        let bad = |m: String| ZarrError::format(store.dataset.store_name(), array.name(), m);
        if array.element_type() != ElementType::F32 {
            return Err(bad(format!(
                "miner data must be float32 (<f4); this is {}",
                array.element_type().name()
            )));
        }
        let time_dim = layout.fixed_dims[0];
        if array.shape()[time_dim] != n_times as u64 {
            return Err(bad(format!(
                "time dimension has {} entries but the time coordinate {n_times}",
                array.shape()[time_dim]
            )));
        }
        let chunk_bytes = array.chunk_decoded_bytes();
        let limit = store.dataset.options().max_chunk_bytes;
        if chunk_bytes > limit {
            return Err(ZarrError::TooLarge {
                store: store.dataset.store_name().to_owned(),
                key: array.name().to_owned(),
                size: chunk_bytes,
                limit,
                what: "one decoded chunk (chunk shape × element size)",
            });
        }
        Ok(layout)
    }

    /// The run's init time this store is read for.
    pub fn init(&self) -> DateTime<Utc> {
        self.init
    }

    /// Valid times on the store's time axis, as stored.
    pub fn valid_times(&self) -> &[DateTime<Utc>] {
        &self.times
    }

    /// Leads in whole hours of the valid times after init (times not a whole number of hours
    /// after init are left out).
    pub fn lead_hours(&self) -> Vec<u32> {
        self.times
            .iter()
            .filter_map(|t| {
                let d = *t - self.init;
                (d > TimeDelta::zero() && d.num_seconds() % 3600 == 0)
                    .then(|| u32::try_from(d.num_hours()).ok())
                    .flatten()
            })
            .collect()
    }

    /// Latitudes as stored.
    pub fn lats(&self) -> &[f64] {
        &self.store.lats
    }

    /// Longitudes as stored.
    pub fn lons(&self) -> &[f64] {
        &self.store.lons
    }

    /// The pressure levels (hPa) of a multi-level variable, if it is usable.
    pub fn levels(&self, variable: Variable) -> Option<&[Level]> {
        match self.variables.get(&variable) {
            Some(Ok(VariableLayout {
                level: Some((_, levels)),
                ..
            })) => Some(levels),
            _ => None,
        }
    }

    /// The scored variables that passed validation.
    pub fn usable_variables(&self) -> Vec<Variable> {
        self.variables
            .iter()
            .filter_map(|(v, r)| r.is_ok().then_some(*v))
            .collect()
    }

    /// Variables that are missing or failed validation, with why (score them 0).
    pub fn problems(&self) -> Vec<(Variable, &ZarrError)> {
        self.variables
            .iter()
            .filter_map(|(v, r)| r.as_ref().err().map(|e| (*v, e)))
            .collect()
    }

    /// The store name used in messages.
    pub fn store_name(&self) -> &str {
        self.store.dataset.store_name()
    }

    /// Reads `selection` (a surface variable, one level, or all 13 scored levels) at exactly
    /// `valid_time`, fetching only that time's chunk(s).
    pub async fn read(
        &self,
        selection: VarLevel,
        valid_time: DateTime<Utc>,
    ) -> Result<Field, ZarrError> {
        let layout = match self.variables.get(&selection.variable) {
            Some(Ok(layout)) => layout,
            Some(Err(e)) => return Err(e.clone()),
            None => {
                return Err(ZarrError::MissingVariable {
                    store: self.store_name().to_owned(),
                    variable: selection.variable,
                    accepted: selection.variable.accepted_names().join(", "),
                });
            }
        };
        let t = time_index(
            self.store_name(),
            layout.array.name(),
            &self.times,
            valid_time,
        )?;
        self.store.read(layout, &[t], selection, valid_time).await
    }

    /// Reads `selection` at init + `lead_hours`.
    pub async fn read_lead(
        &self,
        selection: VarLevel,
        lead_hours: u32,
    ) -> Result<Field, ZarrError> {
        self.read(
            selection,
            self.init + TimeDelta::hours(i64::from(lead_hours)),
        )
        .await
    }

    /// Name of the time coordinate.
    pub fn time_name(&self) -> &str {
        &self.time_name
    }
}
