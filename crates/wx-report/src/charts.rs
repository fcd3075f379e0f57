//! The PNG charts, drawn with plotters' bitmap backend and the embedded font.

use crate::model::{ErrorMap, ReportData};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// What a chart renderer returns: plotters' errors are boxed (their types are generic over the
/// backend).
pub(crate) type DrawResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Pixel size of the per-lead chart.
pub(crate) const LEAD_SIZE: (u32, u32) = (1200, 700);
/// Pixel size of the Day1 vs ERA5 chart.
pub(crate) const SCATTER_SIZE: (u32, u32) = (1000, 700);
/// Pixel size of the weights chart.
pub(crate) const WEIGHTS_SIZE: (u32, u32) = (1200, 520);
/// Pixel size of one error map.
pub(crate) const MAP_SIZE: (u32, u32) = (1100, 560);

const FONT: &str = "sans-serif";
/// Most rectangles drawn for one error map.
const MAX_CELLS: usize = 100_000;
const GREY: RGBColor = RGBColor(190, 190, 190);

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

/// ERA5 score per lead: one line per miner, the legend on the right (best final score first).
pub(crate) fn lead_scores(data: &ReportData, path: &Path) -> DrawResult {
    let (w, h) = LEAD_SIZE;
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&WHITE)?;
    let (plot, legend) = root.split_horizontally(w - 300);
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
    let ymin = all.clone().fold(0.0f64, |m, p| m.min(p.1));
    let ymax = all.fold(1.0f64, |m, p| m.max(p.1));
    let mut chart = ChartBuilder::on(&plot)
        .caption("ERA5 score per lead", (FONT, 26))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(64)
        .build_cartesian_2d(x0 - 3.0..x1 + 3.0, ymin - 0.02..ymax + 0.02)?;
    chart
        .configure_mesh()
        .x_desc("lead (hours)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc("ERA5 lead score")
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    let n = curves.len();
    for (i, (_, points)) in curves.iter().enumerate() {
        let colour = series_colour(i, n);
        chart.draw_series(LineSeries::new(
            points.iter().copied(),
            colour.stroke_width(2),
        ))?;
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, colour.filled())))?;
    }
    legend.draw(&Text::new("miner (best mean first)", (8, 20), (FONT, 15)))?;
    let row = ((h as i32 - 60) / n.max(1) as i32).clamp(12, 24);
    for (i, (uid, _)) in curves.iter().enumerate() {
        let y = 48 + i as i32 * row;
        let colour = series_colour(i, n);
        legend.draw(&Rectangle::new([(8, y), (30, y + 4)], colour.filled()))?;
        legend.draw(&Text::new(
            crate::text::clip(&data.miner_name(*uid), 36),
            (38, y - 6),
            (FONT, (row - 2).min(15)),
        ))?;
    }
    root.present()?;
    Ok(())
}

/// Day1 score against the combined ERA5 score, one labelled point per miner, with the Day1
/// pass threshold.
pub(crate) fn day1_vs_era5(data: &ReportData, path: &Path) -> DrawResult {
    let (w, h) = SCATTER_SIZE;
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&WHITE)?;
    let points: Vec<(i32, f64, f64, bool)> = data
        .miners
        .iter()
        .filter_map(|m| match (m.day1, m.era5_combined) {
            (Some(d), Some(e)) if d.is_finite() && e.is_finite() => {
                Some((m.uid, d, e, m.status == "completed"))
            }
            _ => None,
        })
        .collect();
    let xmax = points.iter().fold(1.0f64, |m, p| m.max(p.1));
    let ymax = points.iter().fold(1.0f64, |m, p| m.max(p.2));
    let mut chart = ChartBuilder::on(&root)
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
    chart.draw_series(points.iter().map(|p| {
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
pub(crate) fn weights(data: &ReportData, path: &Path) -> DrawResult {
    let (w, h) = WEIGHTS_SIZE;
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut bars: Vec<(i32, f64)> = data
        .miners
        .iter()
        .filter_map(|m| m.weight.filter(|x| x.is_finite()).map(|x| (m.uid, x)))
        .collect();
    bars.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let n = bars.len().max(1);
    let ymax = bars.iter().fold(0.0f64, |m, b| m.max(b.1)).max(1e-6) * 1.15;
    let mut chart = ChartBuilder::on(&root)
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
    chart.draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
        let mut r = Rectangle::new(
            [
                (SegmentValue::Exact(i as i32), 0.0),
                (SegmentValue::Exact(i as i32 + 1), *v),
            ],
            colour.filled(),
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

/// One error map on the colour scale `[-vmax, vmax]`, with a colour bar.
pub(crate) fn error_map(map: &ErrorMap, title: &str, vmax: f64, path: &Path) -> DrawResult {
    let (w, h) = MAP_SIZE;
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&WHITE)?;
    let (plot, bar) = root.split_horizontally(w - 150);
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

    // the colour bar
    let vmax = if vmax > 0.0 { vmax } else { 1.0 };
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
    cb.configure_secondary_axes()
        .label_style((FONT, 13))
        .y_labels(7)
        .y_label_formatter(&|v| format!("{v:.2}"))
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
}
