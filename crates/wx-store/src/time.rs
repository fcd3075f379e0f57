//! Timestamp conversions. The database holds UTC as `TIMESTAMP` (naive); wx truncates to
//! microseconds so that PostgreSQL and SQLite store and compare the same values.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};

/// A UTC time as stored.
pub(crate) fn ts(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc().trunc_subsecs(6)
}

/// A stored time as UTC.
pub(crate) fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    DateTime::from_naive_utc_and_offset(t, Utc)
}
