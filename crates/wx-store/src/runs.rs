//! The `weather_forecast_runs` table.

use crate::backend::with_conn;
use crate::time::ts;
use crate::{Db, StoreError};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use wx_model::rows::{NewRun, RunRow};
use wx_model::schema::weather_forecast_runs as runs;
use wx_model::{RunId, RunStatus};

/// Repository of the `weather_forecast_runs` table.
pub struct Runs<'a>(pub(crate) &'a Db);

impl Db {
    /// The `weather_forecast_runs` table.
    pub fn runs(&self) -> Runs<'_> {
        Runs(self)
    }
}

/// The result of [`Runs::create_or_get`].
#[derive(Debug, Clone, PartialEq)]
pub struct RunHandle {
    /// The run row.
    pub run: RunRow,
    /// Whether this call created it (false: it already existed and is reused).
    pub created: bool,
}

impl Runs<'_> {
    /// Creates the run for `gfs_init` (unique with `test_mode`), or returns the existing one.
    /// Safe to call from several processes at once.
    pub async fn create_or_get(
        &self,
        gfs_init: DateTime<Utc>,
        test_mode: bool,
        config_json: &str,
        now: DateTime<Utc>,
    ) -> Result<RunHandle, StoreError> {
        let new = NewRun {
            gfs_init_time_utc: ts(gfs_init),
            test_mode,
            run_initiation_time: ts(now),
            status: RunStatus::Seeded.as_str().to_owned(),
            config_json: config_json.to_owned(),
        };
        with_conn!(self.0, |c| {
            let inserted = diesel::insert_into(runs::table)
                .values(&new)
                .on_conflict((runs::gfs_init_time_utc, runs::test_mode))
                .do_nothing()
                .execute(c)
                .await?;
            let run = runs::table
                .filter(runs::gfs_init_time_utc.eq(new.gfs_init_time_utc))
                .filter(runs::test_mode.eq(test_mode))
                .select(RunRow::as_select())
                .first(c)
                .await?;
            Ok(RunHandle {
                run,
                created: inserted == 1,
            })
        })
    }

    /// One run.
    pub async fn get(&self, id: RunId) -> Result<Option<RunRow>, StoreError> {
        with_conn!(self.0, |c| Ok(runs::table
            .find(id.0)
            .select(RunRow::as_select())
            .first(c)
            .await
            .optional()?))
    }

    /// One run, or a `NotFound` error that names it.
    pub async fn require(&self, id: RunId) -> Result<RunRow, StoreError> {
        self.get(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("run {id} does not exist")))
    }

    /// The most recently created run.
    pub async fn latest(&self) -> Result<Option<RunRow>, StoreError> {
        with_conn!(self.0, |c| Ok(runs::table
            .order(runs::id.desc())
            .select(RunRow::as_select())
            .first(c)
            .await
            .optional()?))
    }

    /// The most recent runs, newest first.
    pub async fn list(&self, limit: i64) -> Result<Vec<RunRow>, StoreError> {
        with_conn!(self.0, |c| Ok(runs::table
            .order(runs::id.desc())
            .limit(limit)
            .select(RunRow::as_select())
            .load(c)
            .await?))
    }

    /// Runs whose GFS init time is at or after `since`, oldest first.
    pub async fn since(&self, since: DateTime<Utc>) -> Result<Vec<RunRow>, StoreError> {
        with_conn!(self.0, |c| Ok(runs::table
            .filter(runs::gfs_init_time_utc.ge(ts(since)))
            .order(runs::gfs_init_time_utc.asc())
            .select(RunRow::as_select())
            .load(c)
            .await?))
    }

    /// Runs created at or after `since`, oldest first.
    pub async fn initiated_since(&self, since: DateTime<Utc>) -> Result<Vec<RunRow>, StoreError> {
        with_conn!(self.0, |c| Ok(runs::table
            .filter(runs::run_initiation_time.ge(ts(since)))
            .order(runs::run_initiation_time.asc())
            .select(RunRow::as_select())
            .load(c)
            .await?))
    }

    /// Sets the status; terminal statuses record `completed_at`. A terminal run is not reopened.
    pub async fn set_status(
        &self,
        id: RunId,
        status: RunStatus,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let terminal = matches!(status, RunStatus::Completed | RunStatus::Failed);
        let completed_at = terminal.then(|| ts(now));
        with_conn!(self.0, |c| {
            let n = diesel::update(runs::table.find(id.0).filter(
                runs::status.ne_all([RunStatus::Completed.as_str(), RunStatus::Failed.as_str()]),
            ))
            .set((
                runs::status.eq(status.as_str()),
                runs::completed_at.eq(completed_at),
                runs::error.eq(error),
            ))
            .execute(c)
            .await?;
            Ok(n == 1)
        })
    }
}
