//! ERA5 published day by day, as the public ARCO-ERA5 store is: [`Era5Publisher`] moves the
//! withheld chunks of the next days into the store and then advances the root attributes
//! `valid_time_stop_era5t` / `valid_time_stop`; [`Era5Publisher::follow`] does it on a
//! schedule driven by an injected [`Clock`], and can stall and resume.
//!
//! A world generated with [`Era5Publication::Progressive`](crate::spec::Era5Publication) has
//! its ERA5 chunks after `published_through` under [`WorldPaths::era5_unpublished`], by the
//! store's relative paths. Publishing a day renames its chunks into the store first, then
//! rewrites `.zattrs` and `.zmetadata` (each written to a temporary name and renamed), so a
//! reader never sees an extent whose chunks are not there yet.

use crate::SimError;
use crate::json::to_python_json;
use crate::spec::Era5Publication;
use crate::world::{World, WorldPaths};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use wx_model::Clock;

/// Days `valid_time_stop` (final ERA5) trails `valid_time_stop_era5t` in the simulated store.
pub const FINAL_LAG_DAYS: i64 = 2;

/// The ERA5 valid times are 6-hourly from the init: axis index `k` is `init + 6 h · k`.
const STEP_HOURS: i64 = 6;

/// The root attributes of a store whose first day is `first`'s and whose ERA5T stops at
/// `stop` (final ERA5 [`FINAL_LAG_DAYS`] earlier).
pub(crate) fn root_attributes(first: DateTime<Utc>, stop: NaiveDate) -> Map<String, Value> {
    let day = |d: NaiveDate| json!(d.format("%Y-%m-%d").to_string());
    let mut m = Map::new();
    m.insert("valid_time_start".into(), day(first.date_naive()));
    m.insert(
        "valid_time_stop".into(),
        day(stop - TimeDelta::days(FINAL_LAG_DAYS)),
    );
    m.insert("valid_time_stop_era5t".into(), day(stop));
    m
}

/// The store's chunk files (relative paths) whose valid time is after the end of `stop`.
fn chunks_after(
    store: &Path,
    init: DateTime<Utc>,
    stop: NaiveDate,
) -> Result<Vec<(DateTime<Utc>, PathBuf)>, SimError> {
    let mut out = Vec::new();
    let end = (stop + TimeDelta::days(1))
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc();
    for variable in wx_model::Variable::ALL {
        let dir = store.join(variable.long_name());
        if !dir.is_dir() {
            continue;
        }
        let entries = std::fs::read_dir(&dir).map_err(|e| SimError::io(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| SimError::io(&dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(index) = name.split('.').next().and_then(|i| i.parse::<i64>().ok()) else {
                continue; // .zarray, .zattrs
            };
            let time = init + TimeDelta::hours(STEP_HOURS * index);
            if time >= end {
                out.push((time, Path::new(variable.long_name()).join(&name)));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn rename(from: &Path, to: &Path) -> Result<(), SimError> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| SimError::io(parent, e))?;
    }
    std::fs::rename(from, to).map_err(|e| SimError::io(from, e))
}

/// Moves the chunks after `published_through` out of a freshly written store.
pub(crate) fn withhold(
    paths: &WorldPaths,
    init: DateTime<Utc>,
    published_through: NaiveDate,
) -> Result<(), SimError> {
    let staging = paths.era5_unpublished();
    for (_, rel) in chunks_after(&paths.era5, init, published_through)? {
        rename(&paths.era5.join(&rel), &staging.join(&rel))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file and a rename (readers see the old or the
/// new file, never a part).
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), SimError> {
    let tmp = path.with_extension("publishing");
    std::fs::write(&tmp, bytes).map_err(|e| SimError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| SimError::io(path, e))
}

/// When the next days of ERA5T appear: `first_day` `every` after the publisher starts
/// following the clock, the next day `every` later, and so on (a compressed version of the
/// public store's daily cadence). Time spent stalled does not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Era5Schedule {
    /// The first day published.
    pub first_day: NaiveDate,
    /// Clock time between two published days (and before the first one).
    pub every: TimeDelta,
}

impl Era5Schedule {
    /// The last day published after `elapsed` of (unstalled) schedule time, if any.
    pub fn day_after(&self, elapsed: TimeDelta) -> Option<NaiveDate> {
        if self.every <= TimeDelta::zero() || elapsed < self.every {
            return None;
        }
        let days = elapsed.num_milliseconds() / self.every.num_milliseconds().max(1);
        Some(self.first_day + TimeDelta::days(days - 1))
    }
}

/// Publishes a progressive world's ERA5 (see the module docs).
#[derive(Debug)]
pub struct Era5Publisher {
    store: PathBuf,
    staging: PathBuf,
    init: DateTime<Utc>,
    last_day: NaiveDate,
    stop: Mutex<NaiveDate>,
}

impl Era5Publisher {
    /// The publisher of `world`'s ERA5 (the world must be progressive), at the extent its store
    /// declares now.
    pub fn open(world: &World) -> Result<Era5Publisher, SimError> {
        let Era5Publication::Progressive { .. } = world.spec.era5_publication else {
            return Err(SimError::InvalidSpec(
                "this world's ERA5 was published all at once; generate it with \
                 Era5Publication::Progressive to publish it day by day"
                    .into(),
            ));
        };
        let store = world.paths.era5.clone();
        let zattrs = store.join(".zattrs");
        let attrs: Value =
            serde_json::from_slice(&std::fs::read(&zattrs).map_err(|e| SimError::io(&zattrs, e))?)
                .map_err(|e| SimError::Encode(format!("{}: {e}", zattrs.display())))?;
        let stop = attrs["valid_time_stop_era5t"]
            .as_str()
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
            .ok_or_else(|| {
                SimError::Encode(format!("{}: no valid_time_stop_era5t", zattrs.display()))
            })?;
        Ok(Era5Publisher {
            staging: world.paths.era5_unpublished(),
            init: world.spec.gfs_init,
            last_day: world.valid_time(world.spec.max_lead()).date_naive(),
            stop: Mutex::new(stop),
            store,
        })
    }

    /// The last ERA5T day published.
    pub fn published_through(&self) -> NaiveDate {
        *self.stop.lock().expect("not poisoned")
    }

    /// The last day the world has data for.
    pub fn last_day(&self) -> NaiveDate {
        self.last_day
    }

    /// Publishes every day through `day` (at most the world's last day: there is no data
    /// after it): their chunks, then the attributes. Never goes back; returns whether anything
    /// changed.
    pub fn publish_through(&self, day: NaiveDate) -> Result<bool, SimError> {
        let day = day.min(self.last_day);
        let mut stop = self.stop.lock().expect("not poisoned");
        if day <= *stop {
            return Ok(false);
        }
        if self.staging.is_dir() {
            for (_, rel) in chunks_after(&self.staging, self.init, *stop)? {
                let time_day = {
                    let index: i64 = rel
                        .file_name()
                        .and_then(|n| n.to_str())
                        .and_then(|n| n.split('.').next())
                        .and_then(|i| i.parse().ok())
                        .unwrap_or(i64::MAX / 8);
                    (self.init + TimeDelta::hours(STEP_HOURS * index)).date_naive()
                };
                if time_day <= day {
                    rename(&self.staging.join(&rel), &self.store.join(&rel))?;
                }
            }
        }
        let attrs = root_attributes(self.init, day);
        write_atomically(
            &self.store.join(".zattrs"),
            to_python_json(&Value::Object(attrs.clone())).as_bytes(),
        )?;
        let zmetadata = self.store.join(".zmetadata");
        let mut consolidated: Value = serde_json::from_slice(
            &std::fs::read(&zmetadata).map_err(|e| SimError::io(&zmetadata, e))?,
        )
        .map_err(|e| SimError::Encode(format!("{}: {e}", zmetadata.display())))?;
        consolidated["metadata"][".zattrs"] = Value::Object(attrs);
        write_atomically(&zmetadata, to_python_json(&consolidated).as_bytes())?;
        *stop = day;
        tracing::info!(through = %day, "simulated ERA5 published");
        Ok(true)
    }

    /// Publishes everything the world has.
    pub fn publish_all(&self) -> Result<bool, SimError> {
        self.publish_through(self.last_day)
    }

    /// Publishes on `schedule` as `clock` advances, checking every `poll`, until the handle
    /// is shut down. `stalled`: start without publishing until [`FollowHandle::resume`].
    pub fn follow(
        self: &Arc<Self>,
        clock: Arc<dyn Clock>,
        schedule: Era5Schedule,
        poll: std::time::Duration,
        stalled: bool,
    ) -> FollowHandle {
        let stall = Arc::new(AtomicBool::new(stalled));
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let publisher = Arc::clone(self);
        let stall_flag = Arc::clone(&stall);
        let task = tokio::spawn(async move {
            let mut elapsed = TimeDelta::zero();
            let mut last = clock.now();
            loop {
                let now = clock.now();
                if !stall_flag.load(Ordering::SeqCst) {
                    elapsed += now - last;
                    if let Some(day) = schedule.day_after(elapsed) {
                        let p = Arc::clone(&publisher);
                        tokio::task::spawn_blocking(move || p.publish_through(day))
                            .await
                            .map_err(|e| SimError::Task(e.to_string()))??;
                    }
                }
                last = now;
                tokio::select! {
                    _ = tokio::time::sleep(poll) => {}
                    _ = stop_rx.changed() => return Ok(()),
                }
            }
        });
        FollowHandle {
            stall,
            stop: stop_tx,
            task,
        }
    }
}

/// A running [`Era5Publisher::follow`].
#[derive(Debug)]
pub struct FollowHandle {
    stall: Arc<AtomicBool>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), SimError>>,
}

impl FollowHandle {
    /// Stops publishing (the schedule does not advance while stalled).
    pub fn stall(&self) {
        self.stall.store(true, Ordering::SeqCst);
    }

    /// Publishes again, from where the schedule stopped.
    pub fn resume(&self) {
        self.stall.store(false, Ordering::SeqCst);
    }

    /// Stops following and reports a publishing error, if one ended it early.
    pub async fn shutdown(self) -> Result<(), SimError> {
        let _ = self.stop.send(true);
        self.task.await.map_err(|e| SimError::Task(e.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_publishes_one_day_per_period() {
        let s = Era5Schedule {
            first_day: NaiveDate::from_ymd_opt(2025, 1, 2).unwrap(),
            every: TimeDelta::seconds(4),
        };
        assert_eq!(s.day_after(TimeDelta::seconds(3)), None);
        assert_eq!(s.day_after(TimeDelta::seconds(4)), Some(s.first_day));
        assert_eq!(
            s.day_after(TimeDelta::milliseconds(8_500)),
            NaiveDate::from_ymd_opt(2025, 1, 3)
        );
    }

    #[test]
    fn attributes_name_the_days() {
        let a = root_attributes(
            "2025-01-01T00:00:00Z".parse().unwrap(),
            NaiveDate::from_ymd_opt(2025, 1, 3).unwrap(),
        );
        assert_eq!(a["valid_time_start"], "2025-01-01");
        assert_eq!(a["valid_time_stop_era5t"], "2025-01-03");
        assert_eq!(a["valid_time_stop"], "2025-01-01");
    }
}
