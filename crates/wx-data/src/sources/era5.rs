//! ERA5 truth from an ARCO-ERA5-layout Zarr (docs/data.md §3.2): long variable names, dims (time,
//! level, latitude, longitude), 37 levels of which the scored ones are selected.
//!
//! The public store's hourly time axis is allocated years ahead of the data: a time on the axis
//! is no evidence that its data exists. What is published is said by the root attributes
//! `valid_time_stop_era5t` (preliminary ERA5T, a few days behind) and `valid_time_stop` (final
//! ERA5, months behind), dates whose whole day is published, and the chunks after the last
//! published hour are simply absent. [`Era5Reader::publication`] applies the rule of data.md §3:
//! a valid time is published when it is within the extent the attributes give (the last axis
//! entry when the store has neither attribute) **and** its chunks exist.

use super::layout::{GriddedStore, VariableLayout, read_time_axis, time_index};
use crate::field::Field;
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use serde_json::{Map, Value};
use wx_model::catalogue::TIME_DIMENSION_NAMES;
use wx_model::{VarLevel, Variable};
use wx_zarr::cftime::summarize_times;
use wx_zarr::{DynStorage, ReadOptions, Selection, ZarrDataset, ZarrError};

/// Root attribute: the first day with data (`YYYY-MM-DD`).
pub const VALID_TIME_START: &str = "valid_time_start";
/// Root attribute: the last day of final ERA5 (`YYYY-MM-DD`, data through the end of the day).
pub const VALID_TIME_STOP: &str = "valid_time_stop";
/// Root attribute: the last day of preliminary ERA5T (`YYYY-MM-DD`, through the end of the day).
pub const VALID_TIME_STOP_ERA5T: &str = "valid_time_stop_era5t";

/// Which ERA5 counts as published truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Era5Flavour {
    /// Preliminary ERA5T and final ERA5 (the default: the 5-day ERA5 delay presumes ERA5T):
    /// the extent is `valid_time_stop_era5t`, else `valid_time_stop`.
    #[default]
    Preliminary,
    /// Final ERA5 only (`era5_final_only`): the extent is `valid_time_stop`.
    FinalOnly,
}

/// Where a store's published extent comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtentBasis {
    /// The root attribute `valid_time_stop_era5t`.
    StopEra5t,
    /// The root attribute `valid_time_stop`.
    Stop,
    /// Neither attribute exists: the last entry of the time axis.
    TimeAxis,
    /// Final ERA5 only was asked for, and the store declares only an ERA5T extent: nothing is
    /// known to be final.
    NoFinalData,
}

impl ExtentBasis {
    /// How messages and reports name it (the attribute name, `time axis` or `no final data`).
    pub fn as_str(self) -> &'static str {
        match self {
            ExtentBasis::StopEra5t => VALID_TIME_STOP_ERA5T,
            ExtentBasis::Stop => VALID_TIME_STOP,
            ExtentBasis::TimeAxis => "time axis",
            ExtentBasis::NoFinalData => "no final data (valid_time_stop absent)",
        }
    }
}

/// How far a store's data goes, as its metadata says (chunks not checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Era5Extent {
    /// The last published instant (inclusive): the end of the day an attribute names (its
    /// 23:59:59), or the last time on the axis; `None` when nothing is known to be published.
    pub published_until: Option<DateTime<Utc>>,
    /// Where it comes from.
    pub basis: ExtentBasis,
    /// The first published instant (start of the `valid_time_start` day), when declared.
    pub start: Option<DateTime<Utc>>,
}

impl Era5Extent {
    /// Whether `time` is within the extent (chunks not checked).
    pub fn covers(&self, time: DateTime<Utc>) -> bool {
        self.published_until.is_some_and(|until| time <= until)
            && self.start.is_none_or(|start| time >= start)
    }
}

/// Why a valid time is not published yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PendingReason {
    /// It is after the published extent.
    AfterExtent,
    /// The time axis does not reach it yet (a store whose axis grows with the data).
    NotOnAxisYet,
    /// The extent covers it but this chunk is not in the store yet.
    ChunkAbsent {
        /// The absent chunk key.
        key: String,
    },
}

impl std::fmt::Display for PendingReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PendingReason::AfterExtent => write!(f, "after the published extent"),
            PendingReason::NotOnAxisYet => write!(f, "beyond the store's time axis"),
            PendingReason::ChunkAbsent { key } => write!(f, "chunk `{key}` is not in the store"),
        }
    }
}

/// Whether a valid time's truth is published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Publication {
    /// Within the extent, on the axis, and every chunk of the asked variables exists.
    Published,
    /// Not yet: wait and look again (never a failure, never a zero score).
    Pending(PendingReason),
}

/// An ARCO-ERA5-layout store (the public bucket, a mirror or a local copy).
///
/// Variables are looked up under their accepted names (long names first in ARCO stores, short
/// names work too) when read, so a store with hundreds of other variables costs nothing extra.
/// Whether a valid time is published is [`Era5Reader::publication`]; reading an unpublished
/// time fails ([`ZarrError::MissingTime`] off the axis, [`ZarrError::MissingKey`] for an absent
/// chunk).
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

    /// The store name used in messages.
    pub fn store_name(&self) -> &str {
        self.store.dataset.store_name()
    }

    /// Times on the store's axis (padded far beyond the data in the public store).
    pub fn times(&self) -> &[DateTime<Utc>] {
        &self.times
    }

    /// Whether the store's time axis has exactly this time (not whether it is published: see
    /// [`Era5Reader::publication`]).
    pub fn has_time(&self, time: DateTime<Utc>) -> bool {
        self.times.contains(&time)
    }

    /// Whether `time` is after the last entry of the time axis.
    pub fn is_beyond_axis(&self, time: DateTime<Utc>) -> bool {
        self.times.iter().max().is_none_or(|last| time > *last)
    }

    /// Latitudes as stored.
    pub fn lats(&self) -> &[f64] {
        &self.store.lats
    }

    /// Longitudes as stored.
    pub fn lons(&self) -> &[f64] {
        &self.store.lons
    }

    /// The published extent, from the root attributes read afresh (the store grows while it
    /// is open; array metadata and the axis stay).
    pub async fn extent(&self, flavour: Era5Flavour) -> Result<Era5Extent, ZarrError> {
        let attributes = self.store.dataset.read_root_attributes().await?;
        extent_of(self.store_name(), &attributes, &self.times, flavour)
    }

    /// Whether the truth of `variables` at `valid_time` is published (data.md §3): within the
    /// extent of the attributes, read afresh, on the time axis, and every chunk the reads
    /// need is in the store. A time that can never be published (before `valid_time_start`,
    /// or between two axis entries inside the extent) is an error, not "pending". Returns
    /// the extent with the answer.
    pub async fn publication(
        &self,
        valid_time: DateTime<Utc>,
        variables: &[Variable],
        flavour: Era5Flavour,
    ) -> Result<(Publication, Era5Extent), ZarrError> {
        let extent = self.extent(flavour).await?;
        let answer = self
            .publication_within(&extent, valid_time, variables)
            .await?;
        Ok((answer, extent))
    }

    /// [`Era5Reader::publication`] against an extent read before (one read of the attributes
    /// for several valid times).
    pub async fn publication_within(
        &self,
        extent: &Era5Extent,
        valid_time: DateTime<Utc>,
        variables: &[Variable],
    ) -> Result<Publication, ZarrError> {
        let time = rfc3339(valid_time);
        if let Some(start) = extent.start
            && valid_time < start
        {
            return Err(ZarrError::format(
                self.store_name(),
                VALID_TIME_START,
                format!(
                    "valid time {time} is before the store's first day {} (`{VALID_TIME_START}`): \
                     this store will never have it; use a store that covers it",
                    start.format("%Y-%m-%d")
                ),
            ));
        }
        if !extent.covers(valid_time) {
            return Ok(Publication::Pending(PendingReason::AfterExtent));
        }
        let Some(t) = self.times.iter().position(|x| *x == valid_time) else {
            if self.is_beyond_axis(valid_time) {
                return Ok(Publication::Pending(PendingReason::NotOnAxisYet));
            }
            return Err(ZarrError::MissingTime {
                store: self.store_name().to_owned(),
                array: self.time_name.clone(),
                time,
                available: summarize_times(&self.times),
            });
        };
        for variable in variables {
            let layout = self.layout(*variable).await?;
            let mut selection = vec![Selection::All; layout.array.dims().len()];
            selection[layout.fixed_dims[0]] = Selection::Index(t as u64);
            if let Some(key) = layout.array.missing_chunk(&selection).await? {
                return Ok(Publication::Pending(PendingReason::ChunkAbsent { key }));
            }
        }
        Ok(Publication::Published)
    }

    async fn layout(&self, variable: Variable) -> Result<VariableLayout, ZarrError> {
        let names: &[&str] = &[self.time_name.as_str()];
        self.store.resolve(variable, &[("time", names)]).await
    }

    /// Reads `selection` at exactly `valid_time` (levels selected exactly, never interpolated).
    /// Only the selected levels are kept: a chunk of all 37 levels is decoded once and the 13
    /// scored ones copied out of it.
    pub async fn read(
        &self,
        selection: VarLevel,
        valid_time: DateTime<Utc>,
    ) -> Result<Field, ZarrError> {
        let layout = self.layout(selection.variable).await?;
        let t = time_index(
            self.store.dataset.store_name(),
            layout.array.name(),
            &self.times,
            valid_time,
        )?;
        self.store.read(&layout, &[t], selection, valid_time).await
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The extent the root `attributes` of a store with time axis `times` declare.
pub fn extent_of(
    store: &str,
    attributes: &Map<String, Value>,
    times: &[DateTime<Utc>],
    flavour: Era5Flavour,
) -> Result<Era5Extent, ZarrError> {
    let day = |name: &str| -> Result<Option<NaiveDate>, ZarrError> {
        match attributes.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => parse_day(s).map(Some).ok_or_else(|| {
                ZarrError::format(
                    store,
                    name,
                    format!(
                        "root attribute `{name}` = {s:?} is not a date (YYYY-MM-DD); fix the \
                         store's metadata or point the validator at another copy"
                    ),
                )
            }),
            Some(other) => Err(ZarrError::format(
                store,
                name,
                format!("root attribute `{name}` = {other} is not a date string (YYYY-MM-DD)"),
            )),
        }
    };
    let end_of_day = |d: NaiveDate| {
        (d + TimeDelta::days(1))
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc() - TimeDelta::seconds(1))
    };
    let start = day(VALID_TIME_START)?.and_then(|d| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()));
    let stop = day(VALID_TIME_STOP)?;
    let stop_era5t = day(VALID_TIME_STOP_ERA5T)?;
    let (published_until, basis) = match (flavour, stop_era5t, stop) {
        (Era5Flavour::Preliminary, Some(d), _) => (end_of_day(d), ExtentBasis::StopEra5t),
        (_, _, Some(d)) => (end_of_day(d), ExtentBasis::Stop),
        (Era5Flavour::FinalOnly, Some(_), None) => (None, ExtentBasis::NoFinalData),
        (_, None, None) => (times.iter().max().copied(), ExtentBasis::TimeAxis),
    };
    Ok(Era5Extent {
        published_until,
        basis,
        start,
    })
}

/// A day as the ARCO attributes write it (`YYYY-MM-DD`; a full timestamp's date is accepted).
fn parse_day(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().or_else(|| {
        s.parse::<DateTime<Utc>>()
            .map(|t| t.date_naive())
            .ok()
            .or_else(|| {
                NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
                    .ok()
                    .map(|t| t.date())
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn attrs(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_era5t_stop_is_the_default_and_final_only_takes_the_final_stop() {
        let a = attrs(json!({
            "valid_time_start": "1940-01-01",
            "valid_time_stop": "2024-10-31",
            "valid_time_stop_era5t": "2024-12-31",
        }));
        let axis = [at("2030-01-01T00:00:00Z")];
        let e = extent_of("s", &a, &axis, Era5Flavour::Preliminary).unwrap();
        assert_eq!(e.basis, ExtentBasis::StopEra5t);
        assert_eq!(e.published_until, Some(at("2024-12-31T23:59:59Z")));
        assert!(e.covers(at("2024-12-31T23:00:00Z")));
        assert!(!e.covers(at("2025-01-01T00:00:00Z")));
        assert!(!e.covers(at("1939-12-31T23:00:00Z")));
        let f = extent_of("s", &a, &axis, Era5Flavour::FinalOnly).unwrap();
        assert_eq!(f.basis, ExtentBasis::Stop);
        assert_eq!(f.published_until, Some(at("2024-10-31T23:59:59Z")));
    }

    #[test]
    fn without_attributes_the_last_axis_entry_is_the_limit() {
        let axis = [at("2025-01-01T00:00:00Z"), at("2024-12-31T18:00:00Z")];
        let e = extent_of("s", &Map::new(), &axis, Era5Flavour::Preliminary).unwrap();
        assert_eq!(e.basis, ExtentBasis::TimeAxis);
        assert_eq!(e.published_until, Some(at("2025-01-01T00:00:00Z")));
        let only_final = attrs(json!({"valid_time_stop": "2024-12-30"}));
        let e = extent_of("s", &only_final, &axis, Era5Flavour::Preliminary).unwrap();
        assert_eq!(
            e.basis,
            ExtentBasis::Stop,
            "final data is published data too"
        );
        let only_era5t = attrs(json!({"valid_time_stop_era5t": "2024-12-30"}));
        let e = extent_of("s", &only_era5t, &axis, Era5Flavour::FinalOnly).unwrap();
        assert_eq!(e.basis, ExtentBasis::NoFinalData);
        assert!(!e.covers(at("2000-01-01T00:00:00Z")));
    }

    #[test]
    fn a_bad_attribute_is_an_error_naming_it() {
        let a = attrs(json!({"valid_time_stop_era5t": "last tuesday"}));
        let e = extent_of("era5", &a, &[], Era5Flavour::Preliminary).unwrap_err();
        assert!(e.to_string().contains("valid_time_stop_era5t"), "{e}");
        let a = attrs(json!({"valid_time_stop": 20241231}));
        assert!(extent_of("era5", &a, &[], Era5Flavour::Preliminary).is_err());
        let a = attrs(json!({"valid_time_stop_era5t": "2024-12-31T00:00:00Z"}));
        let e = extent_of("era5", &a, &[], Era5Flavour::Preliminary).unwrap();
        assert_eq!(e.published_until, Some(at("2024-12-31T23:59:59Z")));
    }
}
