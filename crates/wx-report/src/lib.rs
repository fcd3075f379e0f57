//! The report of a wx run, rendered from plain values: PNG charts (ERA5 score per lead per
//! miner, Day1 vs ERA5, error maps of chosen miners, ranking weights), a static HTML page that
//! shows them with the leaderboard table, and the leaderboard as text for a terminal.
//!
//! No database, no network, no async: the caller fills a [`ReportData`] (wx-validator's
//! `report` module loads it from the database and the data layer) and calls [`write_report`].
//! Text is drawn with an embedded font (DejaVu Sans, see `assets/`), so rendering needs no
//! system fonts.
//!
//! A chart that cannot be drawn never fails the whole report: the page shows a note in its
//! place, and [`ReportFiles::chart_errors`] says what went wrong. Only failing to create the
//! directory or to write `index.html` is an error.

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod charts;
mod coastlines;
mod html;
mod model;
mod text;

pub use html::escape;
pub use model::{
    ColourRange, ErrorMap, ErrorMapContent, ErrorMapPanel, LeadCurve, MinerEntry,
    ROBUST_PERCENTILE, ReportData, RunInfo,
};
pub use text::leaderboard_text;

use html::{Section, SectionBody};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// File name of the page.
pub const INDEX_FILE: &str = "index.html";
/// File name of the per-lead chart.
pub const LEAD_SCORES_FILE: &str = "lead_scores.png";
/// File name of the Day1 vs ERA5 chart.
pub const DAY1_VS_ERA5_FILE: &str = "day1_vs_era5.png";
/// File name of the weights chart.
pub const WEIGHTS_FILE: &str = "weights.png";

/// The embedded font (DejaVu Sans; licence in `assets/DejaVuSans-LICENSE.txt`).
static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Creating the output directory or writing the page failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The embedded font could not be loaded (a build problem).
    #[error("the embedded font cannot be loaded")]
    Font,
}

/// What [`write_report`] wrote.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReportFiles {
    /// The output directory.
    pub dir: PathBuf,
    /// The page (`dir/index.html`).
    pub index: PathBuf,
    /// Every PNG written, in page order.
    pub images: Vec<PathBuf>,
    /// Sections shown as a note instead of a chart (no data, a store gone, a drawing error).
    pub notes: Vec<String>,
    /// Charts that failed to draw (a bug, not missing data); each is also a note.
    pub chart_errors: Vec<String>,
}

/// Registers the embedded font as plotters' `sans-serif` (once per process).
fn ensure_font() -> Result<(), ReportError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, FONT_BYTES)
            .is_ok()
    });
    if ok { Ok(()) } else { Err(ReportError::Font) }
}

/// `best` → `best`; anything but ASCII letters, digits, `-` and `_` → `_`.
fn file_safe(role: &str) -> String {
    let s: String = role
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "map".to_owned() } else { s }
}

/// Capitalises the first letter.
fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Draws one chart into `dir/file`, or records why not.
fn chart(
    files: &mut ReportFiles,
    sections: &mut Vec<Section>,
    title: &str,
    file: &str,
    size: (u32, u32),
    caption: String,
    draw: impl FnOnce(&str, &Path) -> charts::DrawResult,
) {
    let path = files.dir.join(file);
    // a stale chart of an earlier report must not survive a failure
    let _ = std::fs::remove_file(&path);
    match draw(&caption, &path) {
        Ok(()) => {
            files.images.push(path);
            sections.push(Section {
                title: title.to_owned(),
                body: SectionBody::Image {
                    file: file.to_owned(),
                    alt: title.to_owned(),
                    size,
                    caption,
                },
            });
        }
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            let msg = format!("{title}: the chart could not be drawn ({e})");
            files.chart_errors.push(msg.clone());
            note(files, sections, title, msg);
        }
    }
}

fn note(files: &mut ReportFiles, sections: &mut Vec<Section>, title: &str, text: String) {
    files.notes.push(text.clone());
    sections.push(Section {
        title: title.to_owned(),
        body: SectionBody::Note(text),
    });
}

/// `x` with three significant digits, without an exponent for everyday magnitudes.
fn significant(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let decimals = (2 - x.abs().log10().floor() as i32).max(0) as usize;
    format!("{x:.decimals$}")
}

/// What an error map shows, and how to read its colours.
fn error_map_caption(map: &ErrorMap, range: &ColourRange) -> String {
    let beyond = if range.saturated > 0.0 {
        format!(
            " {:.1} % of the points lie beyond it and are drawn at full colour.",
            100.0 * range.saturated
        )
    } else {
        String::new()
    };
    let coasts = if map.is_geographic() {
        " Coastlines: Natural Earth 1:110m."
    } else {
        ""
    };
    format!(
        "Forecast minus ERA5 truth of {var} ({units}) at lead {lead} h, valid {valid}, on the truth grid. \
         Red: forecast too high; blue: too low; grey: no value. Colour range ±{vmax} {units}, this map's own: \
         the {pct}th percentile of |error| ({robust} {units}) rounded up.{beyond} \
         Maps do not share a scale: compare their RMS, not their colours.{coasts}",
        var = map.variable,
        units = map.units,
        lead = map.lead_hours,
        valid = map.valid_time,
        vmax = range.vmax,
        pct = ROBUST_PERCENTILE,
        robust = significant(range.robust_max),
    )
}

/// What the weights chart shows.
fn weights_caption(data: &ReportData) -> String {
    let mut caption = "Ranking weights of the latest subnet snapshot, one bar per miner, largest first; they sum to 1 \
        and are what the validator hands to the chain. A miner's weight grows steeply with its score averaged over the \
        lookback window."
        .to_owned();
    if data.miners.iter().any(|m| m.reference) {
        caption.push_str(" Grey bars: reference forecasts.");
    }
    caption
}

/// Writes the report of `data` into `out_dir` (created if needed; files of the same names are
/// replaced): `lead_scores.png`, `day1_vs_era5.png`, one `error_map_<role>.png` per available
/// error map, `weights.png`, and `index.html` showing them with the leaderboard table. A chart
/// without data is replaced by a note on the page.
pub fn write_report(data: &ReportData, out_dir: &Path) -> Result<ReportFiles, ReportError> {
    ensure_font()?;
    std::fs::create_dir_all(out_dir).map_err(|source| ReportError::Io {
        path: out_dir.to_owned(),
        source,
    })?;
    let mut files = ReportFiles {
        dir: out_dir.to_owned(),
        index: out_dir.join(INDEX_FILE),
        ..ReportFiles::default()
    };
    let mut sections = Vec::new();

    // ERA5 per lead
    let title = "ERA5 score per lead";
    let with_curves: Vec<i32> = data
        .lead_curves
        .iter()
        .filter(|c| c.points.iter().any(|p| p.1.is_finite()))
        .map(|c| c.uid)
        .collect();
    if with_curves.is_empty() {
        let _ = std::fs::remove_file(out_dir.join(LEAD_SCORES_FILE));
        note(
            &mut files,
            &mut sections,
            title,
            "No ERA5 lead was scored in this run.".into(),
        );
    } else {
        let without: Vec<String> = data
            .miners
            .iter()
            .filter(|m| !with_curves.contains(&m.uid))
            .map(|m| m.uid.to_string())
            .collect();
        let mut caption =
            "ERA5 lead score of each miner at each lead (higher is better; 24 h steps). \
            The score mixes skill against climatology, anomaly correlation and RMSE against ERA5; \
            a line that falls with lead is normal, forecasts lose skill with time."
                .to_owned();
        if data.miners.iter().any(|m| m.reference) {
            caption.push_str(
                " Dashed grey: reference forecasts (climatology, GFS clone) that a useful miner should beat.",
            );
        }
        if !without.is_empty() {
            caption.push_str(&format!(
                " Without any scored lead: uid {}.",
                without.join(", ")
            ));
        }
        chart(
            &mut files,
            &mut sections,
            title,
            LEAD_SCORES_FILE,
            charts::LEAD_SIZE,
            caption,
            |c, p| charts::lead_scores(data, c, p),
        );
    }

    // Day1 vs ERA5
    let title = "Day1 vs ERA5";
    let (both, missing): (Vec<_>, Vec<_>) = data
        .miners
        .iter()
        .partition(|m| m.day1.is_some() && m.era5_combined.is_some());
    if both.is_empty() {
        let _ = std::fs::remove_file(out_dir.join(DAY1_VS_ERA5_FILE));
        note(
            &mut files,
            &mut sections,
            title,
            "No miner has both a Day1 and an ERA5 score.".into(),
        );
    } else {
        let mut caption = "Each point is a miner, labelled by uid: its Day1 quality check (an early lead vs the GFS analysis) against its combined ERA5 score. Left of the dashed red line the miner fails the quality check; a GFS clone is clamped to at most 0.05. Hollow grey: reference forecasts.".to_owned();
        if !missing.is_empty() {
            caption.push_str(&format!(
                " Not shown (no Day1 or no ERA5 score): uid {}.",
                missing
                    .iter()
                    .map(|m| m.uid.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        chart(
            &mut files,
            &mut sections,
            title,
            DAY1_VS_ERA5_FILE,
            charts::SCATTER_SIZE,
            caption,
            |c, p| charts::day1_vs_era5(data, c, p),
        );
    }

    // error maps, each on its own colour scale: a shared one washes out the best miner's map
    for panel in &data.error_maps {
        let who = data.miner_name(panel.uid);
        let file = format!("error_map_{}.png", file_safe(&panel.role));
        let title = format!("Error map of the {} miner: {who}", panel.role);
        match &panel.content {
            ErrorMapContent::Map(map) if map.is_consistent() => {
                let range = map.colour_range();
                let rms = map
                    .rms()
                    .map(|r| format!(", RMS {} {}", significant(r), map.units))
                    .unwrap_or_default();
                let chart_title = format!(
                    "{}: {} forecast − ERA5, lead {} h{rms}",
                    capitalised(&format!("{} {who}", panel.role)),
                    map.variable,
                    map.lead_hours,
                );
                let caption = error_map_caption(map, &range);
                chart(
                    &mut files,
                    &mut sections,
                    &title,
                    &file,
                    charts::MAP_SIZE,
                    caption,
                    |c, p| charts::error_map(map, &chart_title, &range, c, p),
                );
            }
            ErrorMapContent::Map(map) => {
                let _ = std::fs::remove_file(out_dir.join(&file));
                note(
                    &mut files,
                    &mut sections,
                    &title,
                    format!(
                        "No error map: the values ({:?}) do not match the axes ({} × {}).",
                        map.values.dim(),
                        map.lats.len(),
                        map.lons.len()
                    ),
                );
            }
            ErrorMapContent::Unavailable { reason } => {
                let _ = std::fs::remove_file(out_dir.join(&file));
                note(
                    &mut files,
                    &mut sections,
                    &title,
                    format!("No error map: {reason}"),
                );
            }
        }
    }

    // weights
    let title = "Ranking weights";
    if data.miners.iter().any(|m| m.weight.is_some()) {
        chart(
            &mut files,
            &mut sections,
            title,
            WEIGHTS_FILE,
            charts::WEIGHTS_SIZE,
            weights_caption(data),
            |c, p| charts::weights(data, c, p),
        );
    } else {
        let _ = std::fs::remove_file(out_dir.join(WEIGHTS_FILE));
        note(
            &mut files,
            &mut sections,
            title,
            "No subnet snapshot has weights for these miners yet.".into(),
        );
    }

    let page = html::page(data, &sections);
    std::fs::write(&files.index, page).map_err(|source| ReportError::Io {
        path: files.index.clone(),
        source,
    })?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_become_file_names() {
        assert_eq!(file_safe("best"), "best");
        assert_eq!(file_safe("../x y"), "___x_y");
        assert_eq!(file_safe(""), "map");
        assert_eq!(capitalised("best uid 3"), "Best uid 3");
    }
}
