//! CF time decoding: `units = "<unit> since <date>"`, calendars standard/gregorian/
//! proleptic_gregorian (docs/scoring.md §2). Times are matched exactly; there is no nearest-time
//! selection anywhere.
//!
//! For dates after 1582-10-15 (all weather data) the three accepted calendars agree, so they are
//! decoded with the proleptic Gregorian calendar of `chrono`. Other calendars (`noleap`,
//! `360_day`, `julian`...) are refused with a clear error rather than silently misread.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};

/// A parsed CF time encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CfTimeUnits {
    /// Length of one unit in nanoseconds.
    unit_nanos: i64,
    /// The reference date.
    pub epoch: DateTime<Utc>,
}

/// A `units`/`calendar` pair or a time value that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CfTimeError(pub String);

/// Calendars whose dates decode like the proleptic Gregorian calendar for modern dates.
pub const ACCEPTED_CALENDARS: &[&str] = &["standard", "gregorian", "proleptic_gregorian"];

impl CfTimeUnits {
    /// Parses `units` (e.g. `hours since 2025-01-01T06:00:00`) and an optional `calendar`
    /// (missing means `standard`).
    pub fn parse(units: &str, calendar: Option<&str>) -> Result<CfTimeUnits, CfTimeError> {
        if let Some(cal) = calendar {
            let cal = cal.trim().to_ascii_lowercase();
            if !ACCEPTED_CALENDARS.contains(&cal.as_str()) {
                return Err(CfTimeError(format!(
                    "calendar `{cal}` is not supported; write the time axis with one of {}",
                    ACCEPTED_CALENDARS.join(", ")
                )));
            }
        }
        let trimmed = units.trim();
        let (unit, date) = trimmed.split_once(" since ").ok_or_else(|| {
            CfTimeError(format!(
                "time units `{units}` are not of the form `<unit> since <date>`"
            ))
        })?;
        let unit_nanos: i64 = match unit.trim().to_ascii_lowercase().as_str() {
            "seconds" | "second" | "secs" | "sec" | "s" => 1_000_000_000,
            "minutes" | "minute" | "mins" | "min" => 60_000_000_000,
            "hours" | "hour" | "hrs" | "hr" | "h" => 3_600_000_000_000,
            "days" | "day" | "d" => 86_400_000_000_000,
            other => {
                return Err(CfTimeError(format!(
                    "time unit `{other}` is not supported (seconds, minutes, hours or days)"
                )));
            }
        };
        let epoch = parse_reference_date(date.trim()).ok_or_else(|| {
            CfTimeError(format!(
                "reference date `{}` in time units `{units}` is not YYYY-MM-DD[( |T)HH:MM[:SS[.f]]][Z|+00:00]",
                date.trim()
            ))
        })?;
        Ok(CfTimeUnits { unit_nanos, epoch })
    }

    /// Decodes one stored value to a UTC time, rounded to the microsecond (float values such as
    /// `6.000000000001` hours must still match exactly on whole seconds).
    pub fn decode(&self, value: f64) -> Result<DateTime<Utc>, CfTimeError> {
        if !value.is_finite() {
            return Err(CfTimeError(format!("time value {value} is not finite")));
        }
        let micros = value * (self.unit_nanos as f64 / 1000.0);
        // ±292,000 years in microseconds still fits i64; refuse anything beyond ±10,000 years.
        if micros.abs() > 3.2e17 {
            return Err(CfTimeError(format!("time value {value} is out of range")));
        }
        let delta = TimeDelta::microseconds(micros.round() as i64);
        self.epoch
            .checked_add_signed(delta)
            .ok_or_else(|| CfTimeError(format!("time value {value} is out of range")))
    }

    /// Decodes every value; the first failure is reported with its index.
    pub fn decode_all(&self, values: &[f64]) -> Result<Vec<DateTime<Utc>>, CfTimeError> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                self.decode(*v)
                    .map_err(|e| CfTimeError(format!("time[{i}]: {e}")))
            })
            .collect()
    }
}

/// Parses `YYYY-MM-DD`, optionally followed by ` ` or `T` and `HH:MM[:SS[.fff]]`, optionally
/// followed by `Z`, `+00:00`, `+0000` or ` UTC`. Only UTC offsets of zero are accepted.
fn parse_reference_date(s: &str) -> Option<DateTime<Utc>> {
    let mut s = s.trim();
    for suffix in ["Z", "z", "+00:00", "+0000", "+00", " UTC", " utc"] {
        if let Some(stripped) = s.strip_suffix(suffix) {
            s = stripped.trim_end();
            break;
        }
    }
    let (date_part, time_part) = match s.find(['T', ' ']) {
        Some(i) => (&s[..i], Some(s[i + 1..].trim())),
        None => (s, None),
    };
    let date = NaiveDate::parse_from_str(date_part, "%Y-%m-%d").ok()?;
    let time = match time_part {
        None | Some("") => NaiveTime::MIN,
        Some(t) => ["%H:%M:%S%.f", "%H:%M:%S", "%H:%M"]
            .iter()
            .find_map(|fmt| NaiveTime::parse_from_str(t, fmt).ok())?,
    };
    Some(NaiveDateTime::new(date, time).and_utc())
}

/// Formats a list of times for error messages: the first and last few, RFC 3339.
pub fn summarize_times(times: &[DateTime<Utc>]) -> String {
    let fmt = |t: &DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    match times.len() {
        0 => "none".to_owned(),
        n if n <= 6 => times.iter().map(fmt).collect::<Vec<_>>().join(", "),
        n => format!(
            "{}, {}, …, {} ({n} times)",
            fmt(&times[0]),
            fmt(&times[1]),
            fmt(&times[n - 1])
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn reference_date_forms_are_accepted() {
        let want = t("2025-01-01T06:00:00Z");
        for units in [
            "hours since 2025-01-01T06:00:00",
            "hours since 2025-01-01 06:00:00",
            "hours since 2025-01-01 06:00",
            "hours since 2025-01-01T06:00:00Z",
            "hours since 2025-01-01T06:00:00+00:00",
            "hours since 2025-01-01T06:00:00.000000",
            "  hours since 2025-01-01 06:00:00 UTC ",
        ] {
            let u = CfTimeUnits::parse(units, Some("standard")).unwrap();
            assert_eq!(u.epoch, want, "{units}");
        }
        let day = CfTimeUnits::parse("days since 2025-01-01", None).unwrap();
        assert_eq!(day.epoch, t("2025-01-01T00:00:00Z"));
    }

    #[test]
    fn values_decode_in_each_unit() {
        let h = CfTimeUnits::parse("hours since 2025-01-01T06:00:00", Some("gregorian")).unwrap();
        assert_eq!(h.decode(6.0).unwrap(), t("2025-01-01T12:00:00Z"));
        assert_eq!(h.decode(234.0).unwrap(), t("2025-01-11T00:00:00Z"));
        let s = CfTimeUnits::parse("seconds since 1970-01-01", None).unwrap();
        assert_eq!(s.decode(86400.0).unwrap(), t("1970-01-02T00:00:00Z"));
        let m = CfTimeUnits::parse("minutes since 2024-12-31 23:00:00", None).unwrap();
        assert_eq!(m.decode(90.0).unwrap(), t("2025-01-01T00:30:00Z"));
        let d = CfTimeUnits::parse("days since 2024-02-28", Some("proleptic_gregorian")).unwrap();
        assert_eq!(
            d.decode(1.0).unwrap(),
            t("2024-02-29T00:00:00Z"),
            "leap day"
        );
        assert_eq!(d.decode(0.25).unwrap(), t("2024-02-28T06:00:00Z"));
        // float noise in the stored value still lands on the exact time
        assert_eq!(
            h.decode(6.000_000_000_001).unwrap(),
            t("2025-01-01T12:00:00Z")
        );
        let era = CfTimeUnits::parse("hours since 1900-01-01", None).unwrap();
        assert_eq!(era.decode(1_096_086.0).unwrap(), t("2025-01-15T06:00:00Z"));
    }

    #[test]
    fn bad_units_calendars_and_values_are_clear_errors() {
        let err = CfTimeUnits::parse("hours since 2025-01-01", Some("noleap")).unwrap_err();
        assert!(
            err.0.contains("noleap") && err.0.contains("standard"),
            "{err}"
        );
        assert!(CfTimeUnits::parse("fortnights since 2025-01-01", None).is_err());
        assert!(CfTimeUnits::parse("hours after 2025-01-01", None).is_err());
        assert!(CfTimeUnits::parse("hours since 2025-13-01", None).is_err());
        assert!(CfTimeUnits::parse("hours since 2025-01-01T06:00:00+02:00", None).is_err());
        assert!(CfTimeUnits::parse("hours since yesterday", None).is_err());
        let h = CfTimeUnits::parse("hours since 2025-01-01", None).unwrap();
        assert!(h.decode(f64::NAN).is_err());
        assert!(h.decode(f64::INFINITY).is_err());
        assert!(h.decode(1e300).is_err());
        let err = h.decode_all(&[0.0, f64::NAN]).unwrap_err();
        assert!(err.0.contains("time[1]"), "{err}");
    }
}
