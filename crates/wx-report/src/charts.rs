//! The PNG charts, drawn with plotters' bitmap backend and the embedded font. Every chart
//! carries its caption in a band at the bottom, so that a PNG on its own says what it shows.

use crate::model::{ColourRange, ErrorMap, ReportData};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// What a chart renderer returns: plotters' errors are boxed (their types are generic over the
/// backend).
pub(crate) type DrawResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Height of the caption band at the bottom of every chart (up to four lines).
const CAPTION_HEIGHT: u32 = 84;
/// Pixel size of the per-lead chart.
pub(crate) const LEAD_SIZE: (u32, u32) = (1200, 700 + CAPTION_HEIGHT);
/// Pixel size of the Day1 vs ERA5 chart.
pub(crate) const SCATTER_SIZE: (u32, u32) = (1000, 700 + CAPTION_HEIGHT);
/// Pixel size of the weights chart.
pub(crate) const WEIGHTS_SIZE: (u32, u32) = (1200, 520 + CAPTION_HEIGHT);
/// Pixel size of one error map.
pub(crate) const MAP_SIZE: (u32, u32) = (1100, 580 + CAPTION_HEIGHT);

const FONT: &str = "sans-serif";
/// Most rectangles drawn for one error map.
const MAX_CELLS: usize = 100_000;
const GREY: RGBColor = RGBColor(190, 190, 190);
/// Reference miners (climatology, GFS clone): dashed lines, hollow markers, bars in this grey.
pub(crate) const REFERENCE: RGBColor = RGBColor(120, 120, 120);
/// Coastlines on the error maps.
const COAST: RGBColor = RGBColor(30, 30, 30);
/// Caption text.
const CAPTION_TEXT: RGBColor = RGBColor(60, 60, 60);

/// Lines of `text` that fit `width` pixels in `style` (greedy by words).
fn wrap(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    text: &str,
    style: &TextStyle,
    width: u32,
) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let candidate = if line.is_empty() {
            word.to_owned()
        } else {
            format!("{line} {word}")
        };
        let fits = area
            .estimate_text_size(&candidate, style)
            .map(|(w, _)| w <= width)
            .unwrap_or(true);
        if fits || line.is_empty() {
            line = candidate;
        } else {
            lines.push(std::mem::replace(&mut line, word.to_owned()));
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Splits the caption band off the bottom of `root`, writes `caption` into it (wrapped; cut
/// with … past four lines) and returns the area above it for the chart.
fn with_caption<'a>(
    root: &DrawingArea<BitMapBackend<'a>, Shift>,
    caption: &str,
) -> Result<DrawingArea<BitMapBackend<'a>, Shift>, Box<dyn std::error::Error + Send + Sync>> {
    let (w, h) = root.dim_in_pixel();
    let (chart, band) = root.split_vertically(h - CAPTION_HEIGHT);
    band.draw(&PathElement::new(
        [(16, 2), (w as i32 - 16, 2)],
        RGBColor(220, 220, 220),
    ))?;
    let style = TextStyle::from((FONT, 15)).color(&CAPTION_TEXT);
    let mut lines = wrap(&band, caption, &style, w - 32);
    if lines.len() > 4 {
        lines.truncate(4);
        lines[3].push_str(" …");
    }
    for (i, line) in lines.iter().enumerate() {
        band.draw(&Text::new(
            line.clone(),
            (16, 10 + 18 * i as i32),
            style.clone(),
        ))?;
    }
    Ok(chart)
}

/// The ticks of a lead axis over `[lo, hi]` hours: every 24 h.
pub(crate) fn lead_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let first = (lo / 24.0).ceil() as i64;
    let last = (hi / 24.0).floor() as i64;
    (first..=last).map(|d| 24.0 * d as f64).collect()
}

/// A distinct colour for series `i` of `n`: the Tableau 10 colours, then evenly spaced hues in
/// two lightnesses.
pub(crate) fn series_colour(i: usize, n: usize) -> RGBColor {
    const TAB10: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    if n <= TAB10.len() {
        return TAB10[i % TAB10.len()];
    }
    let hue = i as f64 / n as f64;
    let lightness = if i.is_multiple_of(2) { 0.38 } else { 0.55 };
    let (r, g, b) = hsl_to_rgb(hue, 0.75, lightness);
    RGBColor(r, g, b)
}

fn hsl_to_rgb(h: f64, s: f64, l: f64) -> (u8, u8, u8) {
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let hp = (h.rem_euclid(1.0)) * 6.0;
    let x = c * (1.0 - (hp % 2.0 - 1.0).abs());
    let (r, g, b) = match hp as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = l - c / 2.0;
    let to = |v: f64| ((v + m).clamp(0.0, 1.0) * 255.0).round() as u8;
    (to(r), to(g), to(b))
}

/// Diverging blue–white–red colour of `v` on the scale `[-vmax, vmax]`; grey for NaN.
pub(crate) fn diverging(v: f32, vmax: f64) -> RGBColor {
    if !v.is_finite() {
        return GREY;
    }
    let t = if vmax > 0.0 {
        (f64::from(v) / vmax).clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let (end, w) = if t < 0.0 {
        ((59.0, 76.0, 192.0), -t)
    } else {
        ((180.0, 4.0, 38.0), t)
    };
    let mix = |a: f64| (255.0 + (a - 255.0) * w).round() as u8;
    RGBColor(mix(end.0), mix(end.1), mix(end.2))
}

fn padded(lo: f64, hi: f64, pad: f64) -> (f64, f64) {
    if (hi - lo).abs() < 1e-12 {
        (lo - pad, hi + pad)
    } else {
        (lo, hi)
    }
}

/// ERA5 score per lead: one line per miner, reference miners dashed and grey, ticks every
/// 24 h, the legend on the right (best mean score first).
pub(crate) fn lead_scores(data: &ReportData, caption: &str, path: &Path) -> DrawResult {
    let (w, _) = LEAD_SIZE;
    let root = BitMapBackend::new(path, LEAD_SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let area = with_caption(&root, caption)?;
    let (_, h) = area.dim_in_pixel();
    let (plot, legend) = area.split_horizontally(w - 300);
    let mut curves: Vec<(i32, Vec<(f64, f64)>)> = data
        .lead_curves
        .iter()
        .filter(|c| !c.points.is_empty())
        .map(|c| {
            let mut p: Vec<(f64, f64)> = c
                .points
                .iter()
                .filter(|(_, s)| s.is_finite())
                .map(|(l, s)| (f64::from(*l), *s))
                .collect();
            p.sort_by(|a, b| a.0.total_cmp(&b.0));
            (c.uid, p)
        })
        .filter(|(_, p)| !p.is_empty())
        .collect();
    let mean = |p: &[(f64, f64)]| p.iter().map(|x| x.1).sum::<f64>() / p.len() as f64;
    curves.sort_by(|a, b| mean(&b.1).total_cmp(&mean(&a.1)).then(a.0.cmp(&b.0)));
    let all = curves.iter().flat_map(|(_, p)| p.iter());
    let (x0, x1) = all.clone().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.0), hi.max(p.0))
    });
    let (x0, x1) = padded(x0, x1, 12.0);
    let (x0, x1) = (x0 - 6.0, x1 + 6.0);
    let ymin = all.clone().fold(0.0f64, |m, p| m.min(p.1));
    let ymax = all.fold(1.0f64, |m, p| m.max(p.1));
    let mut chart = ChartBuilder::on(&plot)
        .caption("ERA5 score per lead", (FONT, 26))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, ymin - 0.02..ymax + 0.02)?;
    // the x ticks are drawn by hand, every 24 h: plotters picks "round" hours (40, 60, 80)
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .x_desc("lead (hours; a tick every 24 h)")
        .y_desc("ERA5 lead score")
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    let ticks = lead_ticks(x0, x1);
    chart.draw_series(ticks.iter().map(|t| {
        PathElement::new(
            [(*t, ymin - 0.02), (*t, ymax + 0.02)],
            RGBColor(205, 205, 205),
        )
    }))?;
    let label_style = TextStyle::from((FONT, 15)).pos(Pos::new(HPos::Center, VPos::Top));
    for t in &ticks {
        let (px, py) = chart.backend_coord(&(*t, ymin - 0.02));
        root.draw(&PathElement::new([(px, py), (px, py + 6)], BLACK))?;
        root.draw(&Text::new(
            format!("{t:.0}"),
            (px, py + 9),
            label_style.clone(),
        ))?;
    }
    let is_reference = |uid: i32| data.miner(uid).is_some_and(|m| m.reference);
    let competitors = curves.iter().filter(|(uid, _)| !is_reference(*uid)).count();
    // colours go to the competitors in legend order; references are grey
    let mut next_colour = 0;
    let styles: Vec<(RGBColor, bool)> = curves
        .iter()
        .map(|(uid, _)| {
            if is_reference(*uid) {
                (REFERENCE, true)
            } else {
                next_colour += 1;
                (series_colour(next_colour - 1, competitors), false)
            }
        })
        .collect();
    for ((_, points), (colour, reference)) in curves.iter().zip(&styles) {
        if *reference {
            chart.draw_series(DashedLineSeries::new(
                points.iter().copied(),
                10,
                6,
                colour.stroke_width(2),
            ))?;
            chart.draw_series(
                points
                    .iter()
                    .map(|p| Circle::new(*p, 4, colour.stroke_width(2))),
            )?;
        } else {
            chart.draw_series(LineSeries::new(
                points.iter().copied(),
                colour.stroke_width(2),
            ))?;
            chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, colour.filled())))?;
        }
    }
    legend.draw(&Text::new("miner (best mean first)", (8, 20), (FONT, 15)))?;
    let n = curves.len();
    let row = ((h as i32 - 60) / n.max(1) as i32).clamp(12, 24);
    for (i, ((uid, _), (colour, reference))) in curves.iter().zip(&styles).enumerate() {
        let y = 48 + i as i32 * row;
        let mut name = data.miner_name(*uid);
        if *reference {
            name.push_str(" — reference");
            for x in [8, 20] {
                legend.draw(&Rectangle::new(
                    [(x, y + 1), (x + 7, y + 3)],
                    colour.filled(),
                ))?;
            }
        } else {
            legend.draw(&Rectangle::new([(8, y), (30, y + 4)], colour.filled()))?;
        }
        legend.draw(&Text::new(
            crate::text::clip(&name, 40),
            (38, y - 6),
            (FONT, (row - 2).min(15)),
        ))?;
    }
    root.present()?;
    Ok(())
}

/// Day1 score against the combined ERA5 score, one labelled point per miner, with the Day1
/// pass threshold.
pub(crate) fn day1_vs_era5(data: &ReportData, caption: &str, path: &Path) -> DrawResult {
    let root = BitMapBackend::new(path, SCATTER_SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let area = with_caption(&root, caption)?;
    let is_reference = |uid: i32| data.miner(uid).is_some_and(|m| m.reference);
    let all_points: Vec<(i32, f64, f64, bool)> = data
        .miners
        .iter()
        .filter_map(|m| match (m.day1, m.era5_combined) {
            (Some(d), Some(e)) if d.is_finite() && e.is_finite() => {
                Some((m.uid, d, e, m.status == "completed"))
            }
            _ => None,
        })
        .collect();
    let xmax = all_points.iter().fold(1.0f64, |m, p| m.max(p.1));
    let ymax = all_points.iter().fold(1.0f64, |m, p| m.max(p.2));
    let (references, points): (Vec<_>, Vec<_>) =
        all_points.iter().copied().partition(|p| is_reference(p.0));
    let mut chart = ChartBuilder::on(&area)
        .caption("Day1 quality check vs ERA5 combined score", (FONT, 26))
        .margin(18)
        .x_label_area_size(50)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.02..xmax + 0.02, -0.02..ymax + 0.02)?;
    chart
        .configure_mesh()
        .x_desc("Day1 score (vs GFS analysis)")
        .y_desc("ERA5 combined score")
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    if let Some(t) = data.day1_pass_threshold.filter(|t| t.is_finite()) {
        chart
            .draw_series(DashedLineSeries::new(
                [(t, -0.02), (t, ymax + 0.02)],
                8,
                5,
                RED.stroke_width(2),
            ))?
            .label(format!("Day1 pass threshold {t:.2}"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED.stroke_width(2)));
    }
    let ok = RGBColor(31, 119, 180);
    let other = RGBColor(255, 127, 14);
    chart
        .draw_series(
            points
                .iter()
                .filter(|p| p.3)
                .map(|p| Circle::new((p.1, p.2), 6, ok.filled())),
        )?
        .label("completed")
        .legend(move |(x, y)| Circle::new((x + 10, y), 5, ok.filled()));
    if points.iter().any(|p| !p.3) {
        chart
            .draw_series(
                points
                    .iter()
                    .filter(|p| !p.3)
                    .map(|p| Circle::new((p.1, p.2), 6, other.filled())),
            )?
            .label("other status")
            .legend(move |(x, y)| Circle::new((x + 10, y), 5, other.filled()));
    }
    if !references.is_empty() {
        chart
            .draw_series(
                references
                    .iter()
                    .map(|p| Circle::new((p.1, p.2), 6, REFERENCE.stroke_width(2))),
            )?
            .label("reference (climatology, GFS clone)")
            .legend(|(x, y)| Circle::new((x + 10, y), 5, REFERENCE.stroke_width(2)));
    }
    chart.draw_series(all_points.iter().map(|p| {
        Text::new(
            format!("{}", p.0),
            (p.1, p.2),
            TextStyle::from((FONT, 14)).pos(Pos::new(HPos::Left, VPos::Bottom)),
        )
    }))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font((FONT, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Ranking weights of the subnet snapshot, one bar per miner, largest first.
pub(crate) fn weights(data: &ReportData, caption: &str, path: &Path) -> DrawResult {
    let root = BitMapBackend::new(path, WEIGHTS_SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let area = with_caption(&root, caption)?;
    let mut bars: Vec<(i32, f64)> = data
        .miners
        .iter()
        .filter_map(|m| m.weight.filter(|x| x.is_finite()).map(|x| (m.uid, x)))
        .collect();
    bars.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let n = bars.len().max(1);
    let ymax = bars.iter().fold(0.0f64, |m, b| m.max(b.1)).max(1e-6) * 1.15;
    let mut chart = ChartBuilder::on(&area)
        .caption("Ranking weights (subnet snapshot)", (FONT, 26))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d((0..n as i32).into_segmented(), 0.0..ymax)?;
    let uids: Vec<i32> = bars.iter().map(|b| b.0).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n + 1)
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => uids
                .get(*i as usize)
                .map(|u| u.to_string())
                .unwrap_or_default(),
            _ => String::new(),
        })
        .x_desc("miner uid")
        .y_desc("weight")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 17))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    let colour = RGBColor(31, 119, 180);
    chart.draw_series(bars.iter().enumerate().map(|(i, (uid, v))| {
        let reference = data.miner(*uid).is_some_and(|m| m.reference);
        let mut r = Rectangle::new(
            [
                (SegmentValue::Exact(i as i32), 0.0),
                (SegmentValue::Exact(i as i32 + 1), *v),
            ],
            if reference { REFERENCE } else { colour }.filled(),
        );
        r.set_margin(0, 0, 3, 3);
        r
    }))?;
    let small = (FONT, if n > 30 { 10 } else { 13 });
    chart.draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
        Text::new(
            if *v > 0.0 {
                format!("{v:.3}")
            } else {
                "0".to_owned()
            },
            (SegmentValue::CenterOf(i as i32), *v),
            TextStyle::from(small).pos(Pos::new(HPos::Center, VPos::Bottom)),
        )
    }))?;
    root.present()?;
    Ok(())
}

/// One error map on its own colour scale `[-range.vmax, range.vmax]`, with a colour bar and,
/// on a geographic grid, the coastlines.
pub(crate) fn error_map(
    map: &ErrorMap,
    title: &str,
    range: &ColourRange,
    caption: &str,
    path: &Path,
) -> DrawResult {
    let (w, _) = MAP_SIZE;
    let root = BitMapBackend::new(path, MAP_SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let area = with_caption(&root, caption)?;
    let (plot, bar) = area.split_horizontally(w - 150);
    let vmax = if range.vmax > 0.0 { range.vmax } else { 1.0 };
    let step = |v: &[f64], fallback: f64| {
        if v.len() >= 2 {
            ((v[v.len() - 1] - v[0]) / (v.len() - 1) as f64).abs()
        } else {
            fallback
        }
    };
    let dlat = step(&map.lats, 1.0);
    let dlon = step(&map.lons, 1.0);
    let lon0 = map.lons.iter().copied().fold(f64::MAX, f64::min) - dlon / 2.0;
    let lon1 = map.lons.iter().copied().fold(f64::MIN, f64::max) + dlon / 2.0;
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, (FONT, 20))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(lon0..lon1, -90.0..90.0)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("longitude (°E)")
        .y_desc("latitude (°N)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .draw()?;
    // a fine grid is drawn in blocks of `stride` × `stride` points (the top-left value), so
    // that a 0.25° field does not become a million rectangles on a thousand-pixel chart
    let (nlat, nlon) = map.values.dim();
    let stride = ((nlat * nlon) as f64 / MAX_CELLS as f64)
        .sqrt()
        .ceil()
        .max(1.0) as usize;
    let span = |v: &[f64], k: usize, d: f64| {
        let end = (k + stride).min(v.len()) - 1;
        (v[k].min(v[end]) - d / 2.0, v[k].max(v[end]) + d / 2.0)
    };
    let cells = (0..nlat).step_by(stride).flat_map(|i| {
        let (lat0, lat1) = span(&map.lats, i, dlat);
        (0..nlon).step_by(stride).map(move |j| {
            let (lon0, lon1) = span(&map.lons, j, dlon);
            Rectangle::new(
                [(lon0, lat0.max(-90.0)), (lon1, lat1.min(90.0))],
                diverging(map.values[[i, j]], vmax).filled(),
            )
        })
    });
    chart.draw_series(cells)?;
    if map.is_geographic() {
        chart.draw_series(
            crate::coastlines::within(lon0, lon1)
                .into_iter()
                .map(|line| PathElement::new(line, COAST.stroke_width(1))),
        )?;
    }

    // the colour bar
    let mut cb = ChartBuilder::on(&bar)
        .margin_top(50)
        .margin_bottom(58)
        .margin_right(70)
        .margin_left(10)
        .y_label_area_size(0)
        .right_y_label_area_size(60)
        .build_cartesian_2d(0.0..1.0, -vmax..vmax)?
        .set_secondary_coord(0.0..1.0, -vmax..vmax);
    const STEPS: usize = 120;
    cb.draw_series((0..STEPS).map(|k| {
        let lo = -vmax + 2.0 * vmax * k as f64 / STEPS as f64;
        let hi = -vmax + 2.0 * vmax * (k + 1) as f64 / STEPS as f64;
        let mid = ((lo + hi) / 2.0) as f32;
        Rectangle::new([(0.0, lo), (1.0, hi)], diverging(mid, vmax).filled())
    }))?;
    let decimals = if vmax >= 10.0 {
        0
    } else if vmax >= 1.0 {
        1
    } else {
        (-vmax.log10()).ceil() as usize + 1
    };
    cb.configure_secondary_axes()
        .label_style((FONT, 13))
        .y_labels(9)
        .y_label_formatter(&|v| format!("{v:.decimals$}"))
        .draw()?;
    bar.draw(&Text::new(format!("Δ {}", map.units), (10, 22), (FONT, 16)))?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours() {
        assert_eq!(diverging(0.0, 2.0), RGBColor(255, 255, 255));
        assert_eq!(diverging(f32::NAN, 2.0), GREY);
        assert_eq!(diverging(5.0, 2.0), RGBColor(180, 4, 38));
        assert_eq!(diverging(-2.0, 2.0), RGBColor(59, 76, 192));
        assert_ne!(series_colour(0, 24), series_colour(1, 24));
        assert_eq!(hsl_to_rgb(0.0, 1.0, 0.5), (255, 0, 0));
    }

    #[test]
    fn lead_ticks_fall_every_24_hours() {
        assert_eq!(
            lead_ticks(18.0, 246.0),
            [
                24.0, 48.0, 72.0, 96.0, 120.0, 144.0, 168.0, 192.0, 216.0, 240.0
            ]
        );
        assert_eq!(lead_ticks(6.0, 54.0), [24.0, 48.0]);
        assert_eq!(lead_ticks(6.0, 42.0), [24.0]);
    }
}
