//! The WeatherBench2 hourly climatology (docs/data.md §3.4, docs/scoring.md §2): indexed by
//! `dayofyear` and `hour`, dimension order read from the metadata (WB2 stores
//! `(hour, dayofyear, [level], longitude, latitude)`).

use super::layout::{GriddedStore, read_coordinate};
use crate::field::Field;
use chrono::{DateTime, Datelike, Timelike, Utc};
use wx_model::VarLevel;
use wx_zarr::{DynStorage, ReadOptions, ZarrDataset, ZarrError};

/// A WB2-layout climatology store.
///
/// For a valid time V, [`ClimatologyReader::read`] selects `dayofyear` = V's ordinal day
/// (1..366) and `hour` = V's hour floored to the store's hour step (6 h for
/// `1990-2019_6h_1440x721.zarr`), each the nearest coordinate value, and returns a [`Field`]
/// whose `valid_time` is V, in (level, lat, lon) order with the store's coordinates.
pub struct ClimatologyReader {
    store: GriddedStore,
    hours: Vec<f64>,
    days: Vec<f64>,
    hour_step: u32,
}

impl std::fmt::Debug for ClimatologyReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClimatologyReader")
            .field("store", &self.store.dataset.store_name())
            .field("hour_step", &self.hour_step)
            .finish()
    }
}

const HOUR_NAMES: &[&str] = &["hour"];
const DAY_NAMES: &[&str] = &["dayofyear"];

impl ClimatologyReader {
    /// Opens the store: root metadata, `hour`, `dayofyear`, latitude and longitude.
    pub async fn open(
        storage: DynStorage,
        options: ReadOptions,
    ) -> Result<ClimatologyReader, ZarrError> {
        let dataset = ZarrDataset::open(storage, options).await?;
        let store_name = dataset.store_name().to_owned();
        let hours = read_coordinate(&dataset, "hour").await?;
        let days = read_coordinate(&dataset, "dayofyear").await?;
        let bad = |key: &str, m: &str| ZarrError::format(&store_name, key, m.to_owned());
        if hours.is_empty()
            || hours
                .iter()
                .any(|h| !(0.0..24.0).contains(h) || h.fract() != 0.0)
        {
            return Err(bad("hour", "hours must be whole numbers in 0..23"));
        }
        if days.is_empty() || days.iter().any(|d| !(1.0..=366.0).contains(d)) {
            return Err(bad("dayofyear", "days of year must be in 1..366"));
        }
        let mut sorted = hours.clone();
        sorted.sort_by(f64::total_cmp);
        sorted.dedup();
        let hour_step = sorted
            .windows(2)
            .map(|w| (w[1] - w[0]) as u32)
            .min()
            .unwrap_or(24);
        let store = GriddedStore::open(dataset).await?;
        Ok(ClimatologyReader {
            store,
            hours,
            days,
            hour_step,
        })
    }

    /// The hour step of the store (the smallest gap between its hours; 24 with one hour).
    pub fn hour_step(&self) -> u32 {
        self.hour_step
    }

    /// Latitudes as stored.
    pub fn lats(&self) -> &[f64] {
        &self.store.lats
    }

    /// Longitudes as stored.
    pub fn lons(&self) -> &[f64] {
        &self.store.lons
    }

    /// The (hour, dayofyear) coordinate values selected for a valid time.
    pub fn selected_hour_and_day(&self, valid_time: DateTime<Utc>) -> (u32, u32) {
        let (h, d) = self.indices(valid_time);
        (self.hours[h as usize] as u32, self.days[d as usize] as u32)
    }

    fn indices(&self, valid_time: DateTime<Utc>) -> (u64, u64) {
        let hour = f64::from(valid_time.hour() / self.hour_step * self.hour_step);
        let day = f64::from(valid_time.ordinal());
        (nearest(&self.hours, hour), nearest(&self.days, day))
    }

    /// Reads the climatology of `selection` for `valid_time` (levels selected exactly).
    pub async fn read(
        &self,
        selection: VarLevel,
        valid_time: DateTime<Utc>,
    ) -> Result<Field, ZarrError> {
        let layout = self
            .store
            .resolve(
                selection.variable,
                &[("hour", HOUR_NAMES), ("dayofyear", DAY_NAMES)],
            )
            .await?;
        let (h, d) = self.indices(valid_time);
        self.store
            .read(&layout, &[h, d], selection, valid_time)
            .await
    }
}

/// Index of the value nearest to `target` (the first on ties).
fn nearest(values: &[f64], target: f64) -> u64 {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if (v - target).abs() < (values[best] - target).abs() {
            best = i;
        }
    }
    best as u64
}

#[cfg(test)]
mod tests {
    use super::nearest;

    #[test]
    fn nearest_picks_closest_then_first() {
        assert_eq!(nearest(&[0.0, 6.0, 12.0, 18.0], 12.0), 2);
        assert_eq!(nearest(&[0.0, 6.0, 12.0, 18.0], 14.0), 2);
        assert_eq!(nearest(&[0.0, 6.0, 12.0, 18.0], 15.0), 2, "tie → first");
        assert_eq!(nearest(&[1.0, 100.0, 366.0], 365.0), 2);
    }
}
