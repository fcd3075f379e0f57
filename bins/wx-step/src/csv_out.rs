//! `wx-step score --format csv`: one row per field (lead × variable × level), in the long layout
//! of WeatherBench2's evaluation results (`lead_time`, `variable` under its long name, `level`,
//! `region`, one column per metric). `docs/outputs.md` describes the columns.

use crate::score::{FieldScore, ScoreReport, VariableScore};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use std::io::Write;
use wx_model::{VarLevel, Variable};

/// The region every wx score covers (WeatherBench2 names it `global`).
const REGION: &str = "global";

/// One CSV row. Field order is the column order; `None` is an empty cell.
#[derive(Debug, Serialize)]
struct Row<'a> {
    init_time: &'a str,
    lead_time: String,
    lead_hours: u32,
    valid_time: String,
    variable: &'static str,
    short_name: &'a str,
    level: Option<u32>,
    region: &'static str,
    rmse: Option<f64>,
    mse: Option<f64>,
    mae: Option<f64>,
    bias: Option<f64>,
    acc: Option<f64>,
    skill_clim: Option<f64>,
    rmse_clim: Option<f64>,
    skill_ref: Option<f64>,
    clone_distance: Option<f64>,
    coverage: Option<f64>,
    error: Option<&'a str>,
}

/// Writes `report`'s fields as CSV (header first) to `out`. Leads whose truth is not published
/// yet have no fields; they are in the JSON output's `pending_leads`.
pub fn write_csv<W: Write>(report: &ScoreReport, out: W) -> Result<(), csv::Error> {
    let init: Option<DateTime<Utc>> = DateTime::parse_from_rfc3339(&report.init)
        .ok()
        .map(|t| t.with_timezone(&Utc));
    let mut writer = csv::Writer::from_writer(out);
    for field in &report.fields {
        let valid = init
            .map(|t| {
                (t + Duration::hours(i64::from(field.lead_hours)))
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            })
            .unwrap_or_default();
        let long_name = Variable::from_store_name(&field.variable)
            .map(Variable::long_name)
            .unwrap_or("unknown");
        writer.serialize(Row {
            init_time: &report.init,
            lead_time: iso_duration(field.lead_hours),
            lead_hours: field.lead_hours,
            valid_time: valid,
            variable: long_name,
            short_name: &field.variable,
            level: (field.level != 0).then(|| u32::from(field.level)),
            region: REGION,
            rmse: field.rmse,
            mse: field.mse,
            mae: field.mae,
            bias: field.bias,
            acc: field.acc,
            skill_clim: field.skill_clim,
            rmse_clim: field.rmse_clim,
            skill_ref: field.skill_ref.flatten(),
            clone_distance: field.clone_distance.flatten(),
            coverage: field.coverage,
            error: failure_of(field, &report.variables),
        })?;
    }
    writer.flush()?;
    Ok(())
}

/// A lead as an ISO 8601 duration (`P1D`, `P1DT6H`, `PT12H`), what pandas'
/// `pd.to_timedelta` and xarray read back as WeatherBench2's `lead_time`.
fn iso_duration(hours: u32) -> String {
    let (days, hours) = (hours / 24, hours % 24);
    match (days, hours) {
        (0, h) => format!("PT{h}H"),
        (d, 0) => format!("P{d}D"),
        (d, h) => format!("P{d}DT{h}H"),
    }
}

/// The failure of the variable selection that produced `field`, if it failed.
fn failure_of<'a>(field: &FieldScore, variables: &'a [VariableScore]) -> Option<&'a str> {
    variables
        .iter()
        .filter(|v| v.lead_hours == field.lead_hours)
        .filter(|v| {
            VarLevel::parse(&v.variable).is_ok_and(|sel| {
                sel.variable.as_str() == field.variable
                    && sel.level.is_none_or(|l| l == field.level)
            })
        })
        .find_map(|v| v.error.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leads_are_iso_durations() {
        assert_eq!(iso_duration(6), "PT6H");
        assert_eq!(iso_duration(24), "P1D");
        assert_eq!(iso_duration(30), "P1DT6H");
        assert_eq!(iso_duration(240), "P10D");
    }
}
