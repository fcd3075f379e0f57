//! Renders a report of made-up data and checks what was written: PNGs that decode to the
//! expected sizes, and an HTML page whose table and images a real parser finds.

use ndarray::Array2;
use scraper::{Html, Selector};
use std::path::Path;
use wx_report::{
    ErrorMap, ErrorMapContent, ErrorMapPanel, LeadCurve, MinerEntry, ReportData, RunInfo,
    write_report,
};

fn sample(n: i32) -> ReportData {
    let mut miners = Vec::new();
    let mut curves = Vec::new();
    for uid in 1..=n {
        let skill = 1.0 / (1.0 + 0.15 * f64::from(uid));
        let failed = uid == 3;
        miners.push(MinerEntry {
            uid,
            hotkey: format!("5Hotkey{uid:03}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
            label: Some(if failed {
                "tampered".to_owned()
            } else if uid == 4 {
                "gfs clone".to_owned()
            } else {
                format!("skilled ×{:.2}", 0.25 * f64::from(uid))
            }),
            status: if failed { "verify_failed" } else { "completed" }.to_owned(),
            day1: (!failed).then_some(if uid == 2 { 0.05 } else { 0.5 + 0.4 * skill }),
            era5_combined: (!failed).then_some(skill),
            completeness: (!failed).then_some(1.0),
            overall: (!failed).then_some(0.95 * skill),
            rank: (!failed).then_some(uid - i32::from(uid > 3)),
            weight: Some(if failed { 0.0 } else { skill / 10.0 }),
            last_error: failed
                .then(|| "integrity: 2t/0.0.0 <does not match> the manifest & \"sig\"".to_owned()),
            reference: uid == 4,
        });
        if !failed {
            curves.push(LeadCurve {
                uid,
                points: (1..=10)
                    .map(|d| (d * 24, skill * (1.0 - 0.05 * f64::from(d))))
                    .collect(),
            });
        }
    }
    let lats: Vec<f64> = (0..19).map(|i| 90.0 - 10.0 * f64::from(i)).collect();
    let lons: Vec<f64> = (0..36).map(|j| 10.0 * f64::from(j)).collect();
    let map = |scale: f32| ErrorMap {
        variable: "2t".into(),
        units: "K".into(),
        lead_hours: 240,
        valid_time: "2025-01-11T00:00Z".into(),
        values: Array2::from_shape_fn((lats.len(), lons.len()), |(i, j)| {
            if i == 5 && j == 5 {
                f32::NAN
            } else {
                scale * ((i as f32 * 0.4).sin() + (j as f32 * 0.3).cos())
            }
        }),
        lats: lats.clone(),
        lons: lons.clone(),
        geographic: true,
    };
    ReportData {
        title: "wx demo <test>".into(),
        run: RunInfo {
            run_id: 1,
            gfs_init: "2025-01-01T00:00Z".into(),
            status: "completed".into(),
            test_mode: true,
            generated_at: "now".into(),
        },
        miners,
        lead_curves: curves,
        error_maps: vec![
            ErrorMapPanel {
                role: "best".into(),
                uid: 1,
                content: ErrorMapContent::Map(map(0.5)),
            },
            ErrorMapPanel {
                role: "worst".into(),
                uid: n,
                content: ErrorMapContent::Map(map(3.0)),
            },
        ],
        day1_pass_threshold: Some(0.1),
        notes: vec!["made-up data".into()],
    }
}

fn png_size(path: &Path) -> (u32, u32) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    // something besides the white background was drawn
    let data = &buf[..info.buffer_size()];
    assert!(data.iter().any(|b| *b < 200), "{} is blank", path.display());
    (info.width, info.height)
}

#[test]
fn a_full_report_has_every_chart_and_a_parsable_page() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(24);
    // WX_REPORT_TEST_OUT=DIR keeps a copy to look at
    if let Some(keep) = std::env::var_os("WX_REPORT_TEST_OUT") {
        write_report(&data, Path::new(&keep)).unwrap();
    }
    let files = write_report(&data, dir.path()).unwrap();
    assert!(files.chart_errors.is_empty(), "{:?}", files.chart_errors);
    let names: Vec<String> = files
        .images
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "lead_scores.png",
            "day1_vs_era5.png",
            "error_map_best.png",
            "error_map_worst.png",
            "weights.png"
        ]
    );
    assert_eq!(png_size(&files.images[0]), (1200, 784));
    assert_eq!(png_size(&files.images[1]), (1000, 784));
    assert_eq!(png_size(&files.images[2]), (1100, 664));
    assert_eq!(png_size(&files.images[4]), (1200, 604));

    let html = std::fs::read_to_string(&files.index).unwrap();
    let doc = Html::parse_document(&html);
    let sel = |s: &str| Selector::parse(s).unwrap();
    assert_eq!(
        doc.select(&sel("title")).next().unwrap().inner_html(),
        "wx demo &lt;test&gt;"
    );
    let rows: Vec<_> = doc.select(&sel("table#leaderboard tbody tr")).collect();
    assert_eq!(rows.len(), 24);
    // ranked: uid 1 first, the unranked tampered miner last
    assert_eq!(rows[0].value().attr("data-uid"), Some("1"));
    assert_eq!(rows[23].value().attr("data-uid"), Some("3"));
    let last_error: String = rows[23].text().collect();
    assert!(last_error.contains("<does not match> the manifest & \"sig\""));
    let imgs: Vec<String> = doc
        .select(&sel("img"))
        .map(|i| i.value().attr("src").unwrap().to_owned())
        .collect();
    assert_eq!(imgs.len(), 5);
    for src in imgs {
        assert!(dir.path().join(&src).is_file(), "{src}");
    }
}

#[test]
fn missing_data_becomes_notes_not_failures() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = sample(4);
    data.lead_curves.clear();
    data.error_maps[1].content = ErrorMapContent::Unavailable {
        reason: "the miner's store cannot be read: connection refused".into(),
    };
    data.error_maps[0].content = match &data.error_maps[0].content {
        ErrorMapContent::Map(m) => ErrorMapContent::Map(ErrorMap {
            lats: m.lats[1..].to_vec(),
            ..m.clone()
        }),
        other => other.clone(),
    };
    for m in &mut data.miners {
        m.weight = None;
    }
    // a stale chart from an earlier report in the same directory is removed
    std::fs::write(dir.path().join("weights.png"), b"old").unwrap();
    let files = write_report(&data, dir.path()).unwrap();
    assert!(files.chart_errors.is_empty());
    assert_eq!(files.images.len(), 1, "{:?}", files.images);
    assert!(!dir.path().join("weights.png").exists());
    assert_eq!(files.notes.len(), 4, "{:?}", files.notes);
    let html = std::fs::read_to_string(&files.index).unwrap();
    let doc = Html::parse_document(&html);
    let notes: Vec<String> = doc
        .select(&Selector::parse("p.note").unwrap())
        .map(|n| n.text().collect())
        .collect();
    assert!(
        notes.iter().any(|n| n.contains("connection refused")),
        "{notes:?}"
    );
    assert_eq!(
        doc.select(&Selector::parse("table#leaderboard tbody tr").unwrap())
            .count(),
        4
    );
}

#[test]
fn a_quarter_degree_error_map_is_drawn_in_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = sample(3);
    let lats: Vec<f64> = (0..721).map(|i| 90.0 - 0.25 * f64::from(i)).collect();
    let lons: Vec<f64> = (0..1440).map(|j| 0.25 * f64::from(j)).collect();
    data.error_maps.truncate(1);
    data.error_maps[0].content = ErrorMapContent::Map(ErrorMap {
        variable: "z500".into(),
        units: "m2 s-2".into(),
        lead_hours: 24,
        valid_time: "2025-01-02T00:00Z".into(),
        values: Array2::from_shape_fn((721, 1440), |(i, j)| ((i + j) % 50) as f32 - 25.0),
        lats,
        lons,
        geographic: true,
    });
    let started = std::time::Instant::now();
    let files = write_report(&data, dir.path()).unwrap();
    assert!(files.chart_errors.is_empty(), "{:?}", files.chart_errors);
    assert_eq!(
        png_size(&dir.path().join("error_map_best.png")),
        (1100, 664)
    );
    assert!(started.elapsed().as_secs() < 60);
}

/// The RGB pixels of a PNG, row by row.
fn pixels(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb, "{}", path.display());
    let rgb = buf[..info.buffer_size()]
        .chunks(3)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    (info.width, info.height, rgb)
}

/// Pixels of a map's plot area (left of the colour bar, above the caption) that are strongly
/// red or blue: the ends of the diverging scale.
fn saturated_pixels(path: &Path) -> usize {
    let (w, h, rgb) = pixels(path);
    let mut n = 0;
    for y in 0..(h - 100) {
        for x in 0..(w - 160) {
            let [r, g, b] = rgb[(y * w + x) as usize];
            let red = r > 150 && g < 80 && b < 90;
            let blue = b > 150 && r < 110 && g < 130;
            n += usize::from(red || blue);
        }
    }
    n
}

#[test]
fn each_error_map_has_its_own_colour_range() {
    let dir = tempfile::tempdir().unwrap();
    // the best map's errors are a sixth of the worst's: on a shared scale it would be pale
    let files = write_report(&sample(6), dir.path()).unwrap();
    assert!(files.chart_errors.is_empty(), "{:?}", files.chart_errors);
    let best = saturated_pixels(&dir.path().join("error_map_best.png"));
    let worst = saturated_pixels(&dir.path().join("error_map_worst.png"));
    assert!(
        best > 2_000,
        "the best map is washed out: {best} strong pixels"
    );
    assert!(
        best.abs_diff(worst) < best / 5,
        "the same pattern at a sixth of the amplitude looks the same: {best} vs {worst}"
    );
    let html = std::fs::read_to_string(&files.index).unwrap();
    assert!(
        html.contains("Colour range ±1 K"),
        "the best map's range is told"
    );
    assert!(
        html.contains("Colour range ±6 K"),
        "the worst map's range is told"
    );
    assert!(html.contains("99th percentile"));
}

/// Dark pixels in a map's plot area (coastlines are near black; axis text lies outside).
fn dark_plot_pixels(path: &Path) -> usize {
    let (w, h, rgb) = pixels(path);
    let mut n = 0;
    for y in 60..(h - 160) {
        for x in 80..(w - 170) {
            let [r, g, b] = rgb[(y * w + x) as usize];
            n += usize::from(r < 70 && g < 70 && b < 70);
        }
    }
    n
}

#[test]
fn coastlines_are_drawn_on_geographic_grids_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = sample(3);
    data.error_maps.truncate(1);
    let ErrorMapContent::Map(map) = &data.error_maps[0].content else {
        unreachable!()
    };
    let mut calm = map.clone();
    calm.values.fill(0.0); // white, so that only coastlines are dark
    data.error_maps[0].content = ErrorMapContent::Map(calm.clone());
    write_report(&data, dir.path()).unwrap();
    let with = dark_plot_pixels(&dir.path().join("error_map_best.png"));
    calm.geographic = false;
    data.error_maps[0].content = ErrorMapContent::Map(calm.clone());
    write_report(&data, dir.path()).unwrap();
    let without = dark_plot_pixels(&dir.path().join("error_map_best.png"));
    assert!(with > 3_000, "coastlines drawn: {with} dark pixels");
    assert!(
        without < 200,
        "no coastlines on a synthetic grid: {without}"
    );
    // −180…180 longitudes get the same coasts
    calm.geographic = true;
    calm.lons = calm.lons.iter().map(|l| l - 180.0).collect();
    data.error_maps[0].content = ErrorMapContent::Map(calm);
    write_report(&data, dir.path()).unwrap();
    let shifted = dark_plot_pixels(&dir.path().join("error_map_best.png"));
    assert!(shifted.abs_diff(with) < with / 10, "{shifted} vs {with}");
}

#[test]
fn reference_miners_are_dashed_grey_and_captions_explain_each_chart() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(6);
    let files = write_report(&data, dir.path()).unwrap();
    let (w, h, rgb) = pixels(&dir.path().join("lead_scores.png"));
    let grey = rgb.iter().filter(|p| **p == [120, 120, 120]).count();
    assert!(grey > 300, "the reference curve is grey: {grey} pixels");
    // dashed: along the grey curve, grey and non-grey pixels alternate in many columns
    let mut gaps = 0;
    for x in 100..(w - 320) {
        let column_grey = (0..h - 100).any(|y| rgb[(y * w + x) as usize] == [120, 120, 120]);
        gaps += usize::from(!column_grey);
    }
    assert!(
        gaps > 50,
        "the grey line has gaps ({gaps} columns without grey)"
    );

    let html = std::fs::read_to_string(&files.index).unwrap();
    let doc = Html::parse_document(&html);
    let captions: Vec<String> = doc
        .select(&Selector::parse("figcaption").unwrap())
        .map(|c| c.text().collect())
        .collect();
    assert_eq!(captions.len(), 5, "{captions:?}");
    assert!(captions[0].contains("Dashed grey: reference forecasts"));
    assert!(captions[0].contains("24 h"));
    assert!(captions[1].contains("quality check"));
    assert!(captions[2].contains("Forecast minus ERA5 truth"));
    assert!(captions[2].contains("Coastlines: Natural Earth 1:110m"));
    assert!(captions[4].contains("sum to 1"));
}
