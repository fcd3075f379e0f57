//! Status vocabularies of steps, per-miner forecasts, runs and hosting. Stored as text.

use crate::text_enum;

text_enum! {
    /// Status of a row in `weather_forecast_steps` (the step log and work queue).
    ///
    /// `pending`, `retry_scheduled` and `waiting` rows are *due* once `next_run_at <= now`;
    /// `in_progress` rows hold a lease; `succeeded`, `failed` and `cancelled` are terminal.
    pub enum StepStatus ("step status") {
        /// Enqueued, never run.
        Pending => "pending",
        /// Claimed by a worker that holds the lease.
        InProgress => "in_progress",
        /// Failed, will be retried at `next_run_at` (an attempt was consumed).
        RetryScheduled => "retry_scheduled",
        /// Its data is not ready; becomes due at `next_run_at` without consuming an attempt.
        Waiting => "waiting",
        /// Done.
        Succeeded => "succeeded",
        /// Retries exhausted, or a failure that must not be retried.
        Failed => "failed",
        /// Withdrawn by an operator or superseded.
        Cancelled => "cancelled",
    }
}

impl StepStatus {
    /// Whether the status is final (the row will not run again by itself).
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            StepStatus::Succeeded | StepStatus::Failed | StepStatus::Cancelled
        )
    }

    /// Statuses that the scheduler may claim once `next_run_at <= now`.
    pub const DUE: [StepStatus; 3] = [
        StepStatus::Pending,
        StepStatus::RetryScheduled,
        StepStatus::Waiting,
    ];
}

text_enum! {
    /// `weather_forecast_stats.forecast_status`: where one miner's forecast of one run stands.
    /// Written as its text ([`ForecastStatus::as_str`]) by Diesel, e.g. in a stats patch.
    #[derive(diesel::expression::AsExpression)]
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub enum ForecastStatus ("forecast status") {
        /// Stats row created at seed time.
        Seeded => "seeded",
        /// Manifest verified and store opened.
        Verified => "verified",
        /// Verification failed for good (retries exhausted or integrity failure).
        VerifyFailed => "verify_failed",
        /// Day1 quality check scored.
        Day1Scored => "day1_scored",
        /// Day1 could not be scored.
        Day1Failed => "day1_failed",
        /// Some, not all, ERA5 leads scored.
        Era5Partial => "era5_partial",
        /// Every configured ERA5 lead scored.
        Completed => "completed",
        /// ERA5 scoring failed for good.
        Failed => "failed",
    }
}

impl ForecastStatus {
    /// Progress rank: a status never moves to a lower rank (transitions are monotonic).
    pub const fn rank(self) -> u8 {
        match self {
            ForecastStatus::Seeded => 0,
            ForecastStatus::Verified => 1,
            ForecastStatus::Day1Scored | ForecastStatus::Day1Failed => 2,
            ForecastStatus::Era5Partial => 3,
            ForecastStatus::VerifyFailed | ForecastStatus::Completed | ForecastStatus::Failed => 4,
        }
    }

    /// Whether no further step will change this miner's forecast in this run.
    pub const fn is_terminal(self) -> bool {
        self.rank() == 4
    }
}

impl<DB> diesel::serialize::ToSql<diesel::sql_types::Text, DB> for ForecastStatus
where
    DB: diesel::backend::Backend,
    str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
{
    fn to_sql<'b>(
        &'b self,
        out: &mut diesel::serialize::Output<'b, '_, DB>,
    ) -> diesel::serialize::Result {
        self.as_str().to_sql(out)
    }
}

text_enum! {
    /// `weather_forecast_runs.status`.
    pub enum RunStatus ("run status") {
        /// Created and seeded; miners are being verified.
        Seeded => "seeded",
        /// At least one miner is being scored.
        Scoring => "scoring",
        /// Every miner reached a terminal forecast status.
        Completed => "completed",
        /// The run could not proceed (e.g. its truth data never became available).
        Failed => "failed",
    }
}

text_enum! {
    /// Outcome of the last attempt to reach a miner's store (`hosting_status` columns).
    pub enum HostingStatus ("hosting status") {
        /// Store reachable, manifest and metadata verified.
        Available => "available",
        /// Connection refused, DNS failure, TLS failure or timeout.
        Unreachable => "unreachable",
        /// The store answered 401/403 to our token.
        Unauthorized => "unauthorized",
        /// The store answered but its content failed verification or validation.
        Invalid => "invalid",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_text() {
        for s in StepStatus::ALL {
            assert_eq!(s.as_str().parse::<StepStatus>().unwrap(), *s);
        }
        for s in ForecastStatus::ALL {
            assert_eq!(s.as_str().parse::<ForecastStatus>().unwrap(), *s);
        }
        for s in RunStatus::ALL {
            assert_eq!(s.as_str().parse::<RunStatus>().unwrap(), *s);
        }
        let err = "claimed".parse::<StepStatus>().unwrap_err();
        assert!(err.to_string().contains("retry_scheduled"), "{err}");
    }

    #[test]
    fn serde_uses_the_stored_text() {
        assert_eq!(
            serde_json::to_string(&StepStatus::RetryScheduled).unwrap(),
            "\"retry_scheduled\""
        );
        let s: ForecastStatus = serde_json::from_str("\"day1_scored\"").unwrap();
        assert_eq!(s, ForecastStatus::Day1Scored);
        assert!(serde_json::from_str::<ForecastStatus>("\"pending\"").is_err());
    }

    #[test]
    fn only_final_statuses_are_terminal() {
        assert!(!StepStatus::Waiting.is_terminal());
        assert!(StepStatus::Failed.is_terminal());
        assert!(ForecastStatus::VerifyFailed.is_terminal());
        assert!(!ForecastStatus::Era5Partial.is_terminal());
        assert!(ForecastStatus::Day1Scored.rank() > ForecastStatus::Verified.rank());
    }
}
