//! The leaderboard as plain text for the terminal.

use crate::model::ReportData;
use std::fmt::Write;

/// A score with four decimals, or `-`.
pub(crate) fn num(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into())
}

/// A fraction (ERA5 completeness) with two decimals, or `-`.
pub(crate) fn fraction(x: Option<f64>) -> String {
    x.map(|c| format!("{c:.2}")).unwrap_or_else(|| "-".into())
}

/// Keeps the first `max` characters, with `…` when cut.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// The leaderboard of `data` as a fixed-width table: a header line about the run, then one line
/// per miner in [`ReportData::ranked`] order (rank, uid, label, status, Day1, ERA5 combined,
/// completeness, overall, weight, last error cut to 60 characters). Ends with a newline.
pub fn leaderboard_text(data: &ReportData) -> String {
    let mut out = String::new();
    let run = &data.run;
    let _ = writeln!(
        out,
        "{} · run {} · init {} · status {}{}",
        data.title,
        run.run_id,
        run.gfs_init,
        run.status,
        if run.test_mode { " · test mode" } else { "" }
    );
    let ranked = data.ranked();
    let label_width = ranked
        .iter()
        .map(|m| m.label.as_deref().unwrap_or("-").chars().count())
        .max()
        .unwrap_or(0)
        .clamp(5, 24);
    let _ = writeln!(
        out,
        "{:>4} {:>4}  {:<lw$}  {:<13} {:>7} {:>7} {:>6} {:>7} {:>7}  last error",
        "rank",
        "uid",
        "miner",
        "status",
        "day1",
        "era5",
        "compl",
        "overall",
        "weight",
        lw = label_width
    );
    for m in ranked {
        let error = m
            .last_error
            .as_deref()
            .map(|e| clip(&e.replace(['\n', '\r'], " "), 60))
            .unwrap_or_default();
        let line = format!(
            "{:>4} {:>4}  {:<lw$}  {:<13} {:>7} {:>7} {:>6} {:>7} {:>7}  {}",
            m.rank.map(|r| r.to_string()).unwrap_or_else(|| "-".into()),
            m.uid,
            clip(m.label.as_deref().unwrap_or("-"), label_width),
            m.status,
            num(m.day1),
            num(m.era5_combined),
            fraction(m.completeness),
            num(m.overall),
            num(m.weight),
            error,
            lw = label_width
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MinerEntry, RunInfo};

    #[test]
    fn the_leaderboard_is_ranked_and_fixed_width() {
        let data = ReportData {
            title: "wx demo".into(),
            run: RunInfo {
                run_id: 3,
                gfs_init: "2025-01-01T00:00Z".into(),
                status: "completed".into(),
                test_mode: true,
                generated_at: String::new(),
            },
            miners: vec![
                MinerEntry {
                    uid: 9,
                    status: "verify_failed".into(),
                    last_error: Some("integrity: 2t/0.0.0\ndiffers".into()),
                    weight: Some(0.0),
                    ..Default::default()
                },
                MinerEntry {
                    uid: 2,
                    label: Some("skilled ×0.25".into()),
                    status: "completed".into(),
                    overall: Some(0.81234),
                    rank: Some(1),
                    weight: Some(0.5),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let text = leaderboard_text(&data);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].contains("run 3") && lines[0].contains("test mode"));
        assert!(
            lines[2].trim_start().starts_with("1    2  skilled ×0.25"),
            "{text}"
        );
        assert!(lines[2].contains("0.8123") && lines[2].contains("0.5000"));
        assert!(lines[3].contains("integrity: 2t/0.0.0 differs"), "{text}");
        assert_eq!(clip("abcdef", 4), "abc…");
    }
}
