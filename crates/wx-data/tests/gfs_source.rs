//! The GFS sources end to end: local trees (real 2011 NCEP messages and an ecCodes-written
//! GFS-like tree), byte-range reads over a real HTTP server, and every failure a damaged
//! archive can produce.

use axum::extract::{Path as AxPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use wx_data::Field;
use wx_data::gfs::{
    ExpectedGrid, GfsError, GfsSource, InMemoryGfsSource, LocalGfsSource, ObjectStoreGfs,
    S3GfsConfig, S3GfsSource,
};
use wx_grib::GfsLayout;
use wx_grib::writer::{self, CycleField};
use wx_model::catalogue::{PRESSURE_LEVELS_HPA, STANDARD_GRAVITY, default_day1_variables};
use wx_model::{ErrorKind, VarLevel, Variable};

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/gfs")
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn expected() -> Vec<Value> {
    let text = std::fs::read_to_string(testdata().join("expected.json")).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["fields"]
        .as_array()
        .unwrap()
        .clone()
}

/// The ecCodes oracle entry for a (file, wgrib2 name, level text).
fn oracle<'a>(all: &'a [Value], file: &str, name: &str, level: &str) -> &'a Value {
    all.iter()
        .find(|e| e["file"] == file && e["wgrib2_name"] == name && e["level"] == level)
        .unwrap_or_else(|| panic!("no oracle entry for {file} {name} {level}"))
}

/// Checks one level of a field against the oracle's probes (scaled by `scale`).
fn assert_matches_oracle(field: &Field, level_index: usize, e: &Value, scale: f64) {
    let ni = field.lons.len();
    assert_eq!(ni as u64, e["ni"].as_u64().unwrap());
    assert_eq!(field.lats.len() as u64, e["nj"].as_u64().unwrap());
    for probe in e["probes"].as_array().unwrap() {
        let j = probe[0].as_u64().unwrap() as usize;
        let i = probe[1].as_u64().unwrap() as usize;
        let ours = f64::from(field.data[[level_index, j, i]]);
        match probe[2].as_f64() {
            None => assert!(
                ours.is_nan(),
                "{} ({j},{i}) should be missing",
                field.variable
            ),
            Some(v) => {
                let want = v * scale;
                assert!(
                    (ours - want).abs() <= want.abs() * 2.0 * f64::from(f32::EPSILON) + 1e-30,
                    "{} level {level_index} ({j},{i}): {ours} vs ecCodes {want}",
                    field.variable
                );
            }
        }
    }
}

/// Field equality with NaN equal to NaN (missing points).
fn assert_same(a: &Field, b: &Field) {
    assert_eq!(
        (a.variable, &a.levels, &a.lats, &a.lons, a.valid_time),
        (b.variable, &b.levels, &b.lats, &b.lons, b.valid_time)
    );
    assert_eq!(a.data.shape(), b.data.shape());
    assert!(
        a.data
            .iter()
            .zip(b.data.iter())
            .all(|(x, y)| x.to_bits() == y.to_bits()),
        "{} data differ",
        a.variable
    );
}

fn synthetic() -> LocalGfsSource {
    LocalGfsSource::new(
        testdata().join("synthetic"),
        GfsLayout::with_product("pgrb2.5p00"),
    )
    .unwrap()
}

fn real() -> LocalGfsSource {
    LocalGfsSource::new(
        testdata().join("real"),
        GfsLayout::with_product("pgrb2.2p5"),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn analysis_is_f000_of_the_valid_cycle_with_every_variable() {
    let all = expected();
    let vars: Vec<VarLevel> = Variable::ALL.iter().map(|v| VarLevel::all(*v)).collect();
    let fields = synthetic()
        .analysis(t("2025-01-01T12:00:00Z"), &vars)
        .await
        .unwrap();
    assert_eq!(fields.len(), 9);
    let file = "synthetic/gfs.20250101/12/atmos/gfs.t12z.pgrb2.5p00.f000";
    for (var, field) in vars.iter().zip(&fields) {
        assert_eq!(field.variable, var.variable);
        assert_eq!(field.valid_time, t("2025-01-01T12:00:00Z"));
        assert_eq!(field.lats.len(), 37);
        assert_eq!(field.lons.len(), 72);
        assert_eq!(field.lats[0], 90.0, "GRIB scans north to south");
        assert_eq!(field.lats[36], -90.0);
        assert_eq!(field.lons[71], 355.0);
        let (name, scale) = match var.variable {
            Variable::T2m | Variable::T => ("TMP", 1.0),
            Variable::U10 | Variable::U => ("UGRD", 1.0),
            Variable::V10 | Variable::V => ("VGRD", 1.0),
            Variable::Msl => ("PRMSL", 1.0),
            Variable::Q => ("SPFH", 1.0),
            Variable::Z => ("HGT", STANDARD_GRAVITY),
        };
        if var.variable.is_surface() {
            assert!(field.levels.is_empty());
            assert_eq!(field.data.shape()[0], 1);
            let level = match var.variable {
                Variable::T2m => "2 m above ground",
                Variable::Msl => "mean sea level",
                _ => "10 m above ground",
            };
            assert_matches_oracle(field, 0, oracle(&all, file, name, level), scale);
        } else {
            assert_eq!(field.levels, PRESSURE_LEVELS_HPA.to_vec());
            for (k, p) in PRESSURE_LEVELS_HPA.iter().enumerate() {
                assert_matches_oracle(
                    field,
                    k,
                    oracle(&all, file, name, &format!("{p} mb")),
                    scale,
                );
            }
        }
    }
    // the one missing 2t point (bitmap) is NaN
    assert!(fields[0].data[[0, 5, 7]].is_nan());
}

#[tokio::test(flavor = "multi_thread")]
async fn day1_reference_forecast_and_single_levels() {
    let all = expected();
    let fields = synthetic()
        .forecast(t("2025-01-01T00:00:00Z"), 12, &default_day1_variables())
        .await
        .unwrap();
    let keys: Vec<String> = fields
        .iter()
        .map(|f| format!("{}{:?}", f.variable, f.levels))
        .collect();
    assert_eq!(keys, ["2t[]", "msl[]", "10u[]", "10v[]", "z[500]"]);
    assert_eq!(fields[4].valid_time, t("2025-01-01T12:00:00Z"));
    let file = "synthetic/gfs.20250101/00/atmos/gfs.t00z.pgrb2.5p00.f012";
    assert_matches_oracle(
        &fields[4],
        0,
        oracle(&all, file, "HGT", "500 mb"),
        STANDARD_GRAVITY,
    );
    assert_matches_oracle(
        &fields[1],
        0,
        oracle(&all, file, "PRMSL", "mean sea level"),
        1.0,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn real_ncep_file_with_multi_field_messages() {
    let all = expected();
    let vars = [
        VarLevel::all(Variable::T2m),
        VarLevel::all(Variable::U10),
        VarLevel::all(Variable::V10),
        VarLevel::all(Variable::Msl),
        VarLevel::all(Variable::V),
        VarLevel::at(Variable::Z, 500),
    ];
    let fields = real()
        .forecast(t("2011-01-10T12:00:00Z"), 120, &vars)
        .await
        .unwrap();
    let file = "real/gfs.20110110/12/atmos/gfs.t12z.pgrb2.2p5.f120";
    assert_eq!(fields[0].lats.len(), 73);
    assert_eq!(fields[0].lons.len(), 144);
    assert_eq!(fields[0].lons[143], 357.5);
    assert_eq!(fields[0].valid_time, t("2011-01-15T12:00:00Z"));
    assert_matches_oracle(
        &fields[0],
        0,
        oracle(&all, file, "TMP", "2 m above ground"),
        1.0,
    );
    assert_matches_oracle(
        &fields[1],
        0,
        oracle(&all, file, "UGRD", "10 m above ground"),
        1.0,
    );
    // VGRD is the SECOND field of the UGRD+VGRD message
    let v10 = oracle(&all, file, "VGRD", "10 m above ground");
    assert_eq!(v10["field"], 2);
    assert_matches_oracle(&fields[2], 0, v10, 1.0);
    assert_ne!(fields[1].data, fields[2].data);
    assert_matches_oracle(
        &fields[3],
        0,
        oracle(&all, file, "PRMSL", "mean sea level"),
        1.0,
    );
    for (k, p) in PRESSURE_LEVELS_HPA.iter().enumerate() {
        assert_matches_oracle(
            &fields[4],
            k,
            oracle(&all, file, "VGRD", &format!("{p} mb")),
            1.0,
        );
    }
    assert_matches_oracle(
        &fields[5],
        0,
        oracle(&all, file, "HGT", "500 mb"),
        STANDARD_GRAVITY,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_variable_the_file_lacks_is_a_clear_error() {
    // the 2011 file has no SPFH on pressure levels
    let e = real()
        .forecast(
            t("2011-01-10T12:00:00Z"),
            120,
            &[VarLevel::at(Variable::Q, 500)],
        )
        .await
        .unwrap_err();
    assert!(matches!(e, GfsError::MissingMessage { .. }), "{e}");
    assert_eq!(e.kind(), ErrorKind::Format);
    assert!(e.to_string().contains("SPFH:500 mb"), "{e}");
    assert!(e.to_string().contains("gfs.t12z.pgrb2.2p5.f120.idx"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_that_are_not_gfs_cycles_are_refused() {
    let src = synthetic();
    let vars = [VarLevel::all(Variable::T2m)];
    for (init, lead) in [
        ("2025-01-01T03:00:00Z", 0),
        ("2025-01-01T00:30:00Z", 0),
        ("2025-01-01T00:00:00Z", 385),
    ] {
        let e = src.forecast(t(init), lead, &vars).await.unwrap_err();
        assert!(
            matches!(e, GfsError::InvalidRequest(_)),
            "{init} {lead}: {e}"
        );
    }
    let e = src
        .forecast(
            t("2025-01-01T00:00:00Z"),
            0,
            &[VarLevel::at(Variable::T2m, 500)],
        )
        .await
        .unwrap_err();
    assert!(matches!(e, GfsError::InvalidRequest(_)), "{e}");
    // not published (no such file)
    let e = src
        .analysis(t("2025-01-02T00:00:00Z"), &vars)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::SourceUnavailable, "{e}");
    assert!(
        e.to_string()
            .contains("gfs.20250102/00/atmos/gfs.t00z.pgrb2.5p00.f000.idx"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_expected_grid_is_checked_from_the_grib_grid_definition() {
    let e = synthetic()
        .with_expected_grid(ExpectedGrid::GFS_0P25)
        .analysis(t("2025-01-01T00:00:00Z"), &[VarLevel::all(Variable::T2m)])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Format);
    assert!(e.to_string().contains("not the expected 721 x 1440"), "{e}");
}

/// A tree holding the ecCodes-written global 0.25° field (the real GFS grid and packing).
fn global_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let layout = GfsLayout::default();
    let init = t("2025-01-01T00:00:00Z");
    let grib =
        std::fs::read(testdata().join("packing/tmp2m_0p25_global_complex_spatial.grib2")).unwrap();
    let path = dir.path().join(layout.key(init, 0));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &grib).unwrap();
    std::fs::write(
        dir.path().join(layout.idx_key(init, 0)),
        "1:0:d=2025010100:TMP:2 m above ground:anl:\n",
    )
    .unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn full_quarter_degree_grid_is_721_by_1440_north_to_south() {
    let all = expected();
    let dir = global_tree();
    let src = LocalGfsSource::new(dir.path(), GfsLayout::default())
        .unwrap()
        .with_expected_grid(ExpectedGrid::GFS_0P25);
    let f = &src
        .analysis(t("2025-01-01T00:00:00Z"), &[VarLevel::all(Variable::T2m)])
        .await
        .unwrap()[0];
    assert_eq!(f.data.shape(), &[1, 721, 1440]);
    assert_eq!((f.lats[0], f.lats[360], f.lats[720]), (90.0, 0.0, -90.0));
    assert_eq!((f.lons[0], f.lons[1], f.lons[1439]), (0.0, 0.25, 359.75));
    let e = all
        .iter()
        .find(|e| e["file"] == "packing/tmp2m_0p25_global_complex_spatial.grib2")
        .unwrap();
    assert_matches_oracle(f, 0, e, 1.0);
    assert!(f.data[[0, 360, 720]].is_nan(), "the bitmap's missing point");
}

// ---------------------------------------------------------------------------------------------
// damaged archives

/// A writable copy of the synthetic 00Z f000 file and its inventory.
fn damaged_copy() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let layout = GfsLayout::with_product("pgrb2.5p00");
    let init = t("2025-01-01T00:00:00Z");
    let rel = layout.key(init, 0);
    let grib = dir.path().join(&rel);
    std::fs::create_dir_all(grib.parent().unwrap()).unwrap();
    std::fs::copy(testdata().join("synthetic").join(&rel), &grib).unwrap();
    let idx = dir.path().join(layout.idx_key(init, 0));
    std::fs::copy(
        testdata().join("synthetic").join(layout.idx_key(init, 0)),
        &idx,
    )
    .unwrap();
    (dir, grib, idx)
}

async fn read_damaged(dir: &Path, vars: &[VarLevel]) -> GfsError {
    LocalGfsSource::new(dir, GfsLayout::with_product("pgrb2.5p00"))
        .unwrap()
        .analysis(t("2025-01-01T00:00:00Z"), vars)
        .await
        .unwrap_err()
}

fn edit_idx(idx: &Path, f: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(idx).unwrap();
    std::fs::write(idx, f(text)).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_inventory_names_the_line() {
    let (dir, _, idx) = damaged_copy();
    edit_idx(&idx, |s| s.replacen("\n3:", "\n3:abc:", 1));
    let e = read_damaged(dir.path(), &[VarLevel::all(Variable::T2m)]).await;
    assert!(matches!(e, GfsError::Index { .. }), "{e}");
    assert!(e.to_string().contains("line 3"), "{e}");
    assert_eq!(e.kind(), ErrorKind::Format);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_inventory_that_lies_about_a_message_is_caught_by_its_grib_identity() {
    let (dir, _, idx) = damaged_copy();
    // swap the names of HGT:500 and TMP:500: the byte ranges now point at the other variable
    edit_idx(&idx, |s| {
        s.replace(":HGT:500 mb:", ":XXX:")
            .replace(":TMP:500 mb:", ":HGT:500 mb:")
            .replace(":XXX:", ":TMP:500 mb:")
    });
    let e = read_damaged(dir.path(), &[VarLevel::at(Variable::Z, 500)]).await;
    assert!(matches!(e, GfsError::Message { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("lists HGT:500 mb here but the message holds TMP:500 mb"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_offset_or_cycle_in_the_inventory_is_an_error() {
    let (dir, _, idx) = damaged_copy();
    // shift the offset of the third message by 3 bytes: its range no longer starts a message
    let text = std::fs::read_to_string(&idx).unwrap();
    let line = text.lines().nth(2).unwrap().to_owned();
    let fields: Vec<&str> = line.split(':').collect();
    let shifted = format!(
        "{}:{}:{}",
        fields[0],
        fields[1].parse::<u64>().unwrap() + 3,
        fields[2..].join(":")
    );
    std::fs::write(&idx, text.replace(&line, &shifted)).unwrap();
    assert_eq!(fields[3], "HGT");
    let level: u16 = fields[4].trim_end_matches(" mb").parse().unwrap();
    let e = read_damaged(dir.path(), &[VarLevel::at(Variable::Z, level)]).await;
    assert!(matches!(e, GfsError::Message { .. }), "{e}");
    assert!(e.to_string().contains("GRIB"), "{e}");

    let (dir, _, idx) = damaged_copy();
    edit_idx(&idx, |s| s.replace("d=2025010100", "d=2024123118"));
    let e = read_damaged(dir.path(), &[VarLevel::all(Variable::Msl)]).await;
    assert!(
        e.to_string()
            .contains("d=2024123118 but the cycle is 2025010100"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_or_corrupt_grib_file_is_an_error_not_a_panic() {
    // truncated: the last message (10 m VGRD... whatever is last) runs past the end
    let (dir, grib, _) = damaged_copy();
    let bytes = std::fs::read(&grib).unwrap();
    // cut into the second-to-last message (10 m VGRD; the last one, TMP 80 m, is not read)
    std::fs::write(&grib, &bytes[..bytes.len() - 5000]).unwrap();
    let all_vars: Vec<VarLevel> = Variable::ALL.iter().map(|v| VarLevel::all(*v)).collect();
    let e = read_damaged(dir.path(), &all_vars).await;
    assert_eq!(e.kind(), ErrorKind::Format, "{e}");
    // zeroed data section bytes inside a message: decoding must fail or succeed, never panic
    let (dir, grib, _) = damaged_copy();
    let mut bytes = std::fs::read(&grib).unwrap();
    for b in &mut bytes[100..180] {
        *b = 0xff;
    }
    std::fs::write(&grib, &bytes).unwrap();
    let e = read_damaged(dir.path(), &[VarLevel::all(Variable::Msl)]).await;
    assert_eq!(e.kind(), ErrorKind::Format, "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duplicated_inventory_entry_is_ambiguous() {
    let (dir, _, idx) = damaged_copy();
    edit_idx(&idx, |s| s.replace(":RH:500 mb:", ":TMP:500 mb:"));
    let e = read_damaged(dir.path(), &[VarLevel::at(Variable::T, 500)]).await;
    assert!(
        matches!(e, GfsError::AmbiguousMessage { count: 2, .. }),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// byte ranges over a real HTTP server

type RangeLog = Arc<Mutex<Vec<(String, Option<String>)>>>;

async fn serve_file(
    State((root, log)): State<(PathBuf, RangeLog)>,
    AxPath(path): AxPath<String>,
    headers: HeaderMap,
) -> Response {
    let range = headers
        .get(header::RANGE)
        .map(|v| v.to_str().unwrap().to_owned());
    log.lock().unwrap().push((path.clone(), range.clone()));
    let Ok(bytes) = std::fs::read(root.join(&path)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(range) = range else {
        return bytes.into_response();
    };
    let spec = range.strip_prefix("bytes=").unwrap();
    let (a, b) = spec.split_once('-').unwrap();
    let start: usize = a.parse().unwrap();
    let end = if b.is_empty() {
        bytes.len() - 1
    } else {
        b.parse::<usize>().unwrap().min(bytes.len() - 1)
    };
    (
        StatusCode::PARTIAL_CONTENT,
        [(
            header::CONTENT_RANGE,
            format!("bytes {start}-{end}/{}", bytes.len()),
        )],
        bytes[start..=end].to_vec(),
    )
        .into_response()
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_needed_messages_are_fetched_with_adjacent_ranges_coalesced() {
    let log: RangeLog = Arc::default();
    let app = axum::Router::new()
        .route("/{*path}", axum::routing::get(serve_file))
        .with_state((testdata().join("synthetic"), log.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let store = object_store::http::HttpBuilder::new()
        .with_url(format!("http://{addr}"))
        .with_client_options(object_store::ClientOptions::new().with_allow_http(true))
        .build()
        .unwrap();
    let src = ObjectStoreGfs::new(
        Arc::new(store),
        format!("http://{addr}"),
        "gfs-http",
        GfsLayout::with_product("pgrb2.5p00"),
    );
    // 10u and 10v are adjacent messages (one request), msl is the first message, z500 alone
    let vars = [
        VarLevel::all(Variable::U10),
        VarLevel::all(Variable::V10),
        VarLevel::all(Variable::Msl),
        VarLevel::at(Variable::Z, 500),
    ];
    let fields = src
        .analysis(t("2025-01-01T00:00:00Z"), &vars)
        .await
        .unwrap();
    assert_eq!(fields.len(), 4);
    let local = synthetic()
        .analysis(t("2025-01-01T00:00:00Z"), &vars)
        .await
        .unwrap();
    assert_eq!(fields, local, "HTTP and local directory read the same");

    let idx_text = std::fs::read_to_string(
        testdata().join("synthetic/gfs.20250101/00/atmos/gfs.t00z.pgrb2.5p00.f000.idx"),
    )
    .unwrap();
    let offset = |name: &str, level: &str| -> (u64, Option<u64>) {
        let lines: Vec<&str> = idx_text.lines().collect();
        let k = lines
            .iter()
            .position(|l| l.contains(&format!(":{name}:{level}:")))
            .unwrap();
        let start = lines[k].split(':').nth(1).unwrap().parse().unwrap();
        let end = lines
            .get(k + 1)
            .map(|l| l.split(':').nth(1).unwrap().parse::<u64>().unwrap() - 1);
        (start, end)
    };
    let (u_start, u_end) = offset("UGRD", "10 m above ground");
    let (v_start, v_end) = offset("VGRD", "10 m above ground");
    assert_eq!(
        u_end.unwrap() + 1,
        v_start,
        "fixture: 10u and 10v are adjacent"
    );
    let (m_start, m_end) = offset("PRMSL", "mean sea level");
    let (z_start, z_end) = offset("HGT", "500 mb");
    let fmt = |s: u64, e: Option<u64>| {
        format!("bytes={s}-{}", e.map_or(String::new(), |e| e.to_string()))
    };
    let mut seen: Vec<(String, Option<String>)> = log.lock().unwrap().clone();
    seen.sort();
    let key = "gfs.20250101/00/atmos/gfs.t00z.pgrb2.5p00.f000";
    let mut want = vec![
        (
            format!("{key}.idx"),
            Some(format!("bytes=0-{}", 4 * 1024 * 1024)),
        ),
        (key.to_owned(), Some(fmt(m_start, m_end))),
        (key.to_owned(), Some(fmt(z_start, z_end))),
        (key.to_owned(), Some(fmt(u_start, v_end))),
    ];
    want.sort();
    assert_eq!(seen, want);
}

// ---------------------------------------------------------------------------------------------
// S3 (no network), memory source, writer

#[test]
fn s3_keys_and_urls_follow_the_noaa_layout() {
    let src = S3GfsSource::noaa().unwrap();
    assert_eq!(src.source_id(), "gfs-noaa-s3");
    assert_eq!(
        src.s3_url(t("2025-01-01T06:00:00Z"), 12),
        "s3://noaa-gfs-bdp-pds/gfs.20250101/06/atmos/gfs.t06z.pgrb2.0p25.f012"
    );
    assert_eq!(
        src.https_url(t("2024-12-31T18:00:00Z"), 384),
        "https://noaa-gfs-bdp-pds.s3.us-east-1.amazonaws.com/gfs.20241231/18/atmos/gfs.t18z.pgrb2.0p25.f384"
    );
    let layout = GfsLayout::default();
    assert_eq!(
        layout.idx_key(t("2025-01-01T00:00:00Z"), 0),
        "gfs.20250101/00/atmos/gfs.t00z.pgrb2.0p25.f000.idx"
    );
    let mirror = S3GfsSource::new(S3GfsConfig {
        endpoint: Some("http://127.0.0.1:9000/".into()),
        bucket: "mirror".into(),
        ..S3GfsConfig::default()
    })
    .unwrap();
    assert_eq!(
        mirror.https_url(t("2025-01-01T00:00:00Z"), 0),
        "http://127.0.0.1:9000/mirror/gfs.20250101/00/atmos/gfs.t00z.pgrb2.0p25.f000"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn writer_round_trip_through_a_local_tree() {
    let dir = tempfile::tempdir().unwrap();
    let layout = GfsLayout::with_product("pgrb2.demo");
    let init = t("2025-03-01T00:00:00Z");
    let lats: Vec<f64> = (0..19).map(|j| 90.0 - 10.0 * j as f64).collect();
    let lons: Vec<f64> = (0..36).map(|i| 10.0 * i as f64).collect();
    let make = |variable, levels: Vec<u16>, f: &dyn Fn(usize, usize, usize) -> f32| {
        let n = levels.len().max(1);
        let data = ndarray::Array3::from_shape_fn((n, 19, 36), |(k, j, i)| f(k, j, i));
        Field::new(
            variable,
            levels,
            lats.clone(),
            lons.clone(),
            t("2025-03-01T12:00:00Z"),
            data,
        )
        .unwrap()
    };
    let t2m = make(Variable::T2m, vec![], &|_, j, i| {
        if (j, i) == (3, 4) {
            f32::NAN
        } else {
            250.0 + j as f32 * 2.5 + i as f32 * 0.37
        }
    });
    let z = make(Variable::Z, PRESSURE_LEVELS_HPA.to_vec(), &|k, j, i| {
        5000.0 * (k as f32 + 1.0) + j as f32 * 13.7 - i as f32
    });
    let q = make(Variable::Q, PRESSURE_LEVELS_HPA.to_vec(), &|k, j, _| {
        1e-6 * (k * 19 + j) as f32
    });
    let written = [t2m, z, q];
    let cycle: Vec<CycleField<'_>> = written.iter().map(CycleField::from).collect();
    writer::write_local_cycle(dir.path(), &layout, init, 12, &cycle).unwrap();
    let src = LocalGfsSource::new(dir.path(), layout).unwrap();
    let vars = [
        VarLevel::all(Variable::T2m),
        VarLevel::all(Variable::Z),
        VarLevel::all(Variable::Q),
        VarLevel::at(Variable::Z, 850),
    ];
    let read = src.forecast(init, 12, &vars).await.unwrap();
    for (w, r) in written.iter().zip(&read) {
        assert_eq!(
            (&w.lats, &w.lons, &w.levels, w.valid_time),
            (&r.lats, &r.lons, &r.levels, r.valid_time)
        );
        for (a, b) in w.data.iter().zip(r.data.iter()) {
            if a.is_nan() {
                assert!(b.is_nan());
            } else {
                // packing precision (10^-D of HGT = z/g, D = 2; 10^-3 for TMP; 10^-9 for SPFH)
                let tol = match w.variable {
                    Variable::Z => 0.006 * STANDARD_GRAVITY,
                    Variable::Q => 6e-10,
                    _ => 6e-4,
                } + f64::from(a.abs()) * 2.0 * f64::from(f32::EPSILON);
                assert!(
                    (f64::from(*a) - f64::from(*b)).abs() <= tol,
                    "{}: {a} vs {b}",
                    w.variable
                );
            }
        }
    }
    assert_eq!(read[3].levels, vec![850]);
    assert_eq!(
        read[3].data.index_axis(ndarray::Axis(0), 0),
        read[1].data.index_axis(ndarray::Axis(0), 10)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_source_selects_levels_like_the_grib_sources() {
    let src = InMemoryGfsSource::new("synthetic");
    let fields = synthetic()
        .forecast(
            t("2025-01-01T00:00:00Z"),
            12,
            &[VarLevel::all(Variable::Z), VarLevel::all(Variable::T2m)],
        )
        .await
        .unwrap();
    for f in fields {
        src.insert(t("2025-01-01T00:00:00Z"), 12, f).unwrap();
    }
    let from_memory = src
        .forecast(
            t("2025-01-01T00:00:00Z"),
            12,
            &default_day1_variables()[..1],
        )
        .await
        .unwrap();
    let z500 = src
        .forecast(
            t("2025-01-01T00:00:00Z"),
            12,
            &[VarLevel::at(Variable::Z, 500)],
        )
        .await
        .unwrap();
    let from_grib = synthetic()
        .forecast(
            t("2025-01-01T00:00:00Z"),
            12,
            &[VarLevel::all(Variable::T2m), VarLevel::at(Variable::Z, 500)],
        )
        .await
        .unwrap();
    assert_same(&from_memory[0], &from_grib[0]);
    assert_same(&z500[0], &from_grib[1]);
    let e = src
        .analysis(t("2025-01-01T00:00:00Z"), &[VarLevel::all(Variable::Msl)])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::SourceUnavailable);
    // a field whose valid time does not match the cycle + lead is refused
    let wrong = from_grib[0].clone();
    assert!(src.insert(t("2025-01-01T06:00:00Z"), 12, wrong).is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_inventory_pointing_past_the_end_of_the_file_is_a_format_error() {
    let (dir, grib, _) = damaged_copy();
    let bytes = std::fs::read(&grib).unwrap();
    std::fs::write(&grib, &bytes[..1000]).unwrap();
    let e = read_damaged(dir.path(), &[VarLevel::all(Variable::T2m)]).await;
    assert_eq!(e.kind(), ErrorKind::Format, "{e}");
    assert!(e.to_string().contains("shorter than its inventory"), "{e}");
}

/// Copies a directory tree.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A GFS mirror: another S3-compatible endpoint (a real HTTP server on 127.0.0.1 speaking
/// path-style S3 GETs), another bucket, the tree under a prefix. It reads exactly what the
/// local tree holds, and a small message limit is enforced.
#[tokio::test(flavor = "multi_thread")]
async fn a_mirror_bucket_behind_another_endpoint_reads_the_same_fields() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(
        &testdata().join("synthetic"),
        &dir.path().join("gfs-mirror/noaa/gfs"),
    );
    let server = wx_testkit::TestServer::start(dir.path(), None, wx_testkit::Faults::new())
        .await
        .unwrap();
    let config = |limits| S3GfsConfig {
        bucket: "gfs-mirror".into(),
        prefix: "noaa/gfs".into(),
        endpoint: Some(server.url()),
        layout: GfsLayout::with_product("pgrb2.5p00"),
        expected_grid: None,
        source_id: "gfs-test-mirror".into(),
        limits,
        ..S3GfsConfig::default()
    };
    let mirror = S3GfsSource::new(config(wx_data::gfs::GfsLimits::default())).unwrap();
    assert_eq!(
        mirror.s3_url(t("2025-01-01T00:00:00Z"), 12),
        "s3://gfs-mirror/noaa/gfs/gfs.20250101/00/atmos/gfs.t00z.pgrb2.5p00.f012"
    );
    let vars: Vec<VarLevel> = Variable::ALL.iter().map(|v| VarLevel::all(*v)).collect();
    let init = t("2025-01-01T00:00:00Z");
    let got = mirror.forecast(init, 12, &vars).await.unwrap();
    let want = synthetic().forecast(init, 12, &vars).await.unwrap();
    assert_eq!(got.len(), want.len());
    for (a, b) in got.iter().zip(&want) {
        assert_same(a, b);
    }
    assert!(
        server
            .stats("gfs-mirror/noaa/gfs/gfs.20250101/00/atmos/gfs.t00z.pgrb2.5p00.f012.idx")
            .requests
            >= 1,
        "the mirror was asked, path-style"
    );
    // the message limit is per source. It bounds a message whose end the inventory does not
    // give (the file's last): cut the file's last message (TMP at 80 m) and its inventory
    // line, so that 10v becomes the last message
    let grib = dir
        .path()
        .join("gfs-mirror/noaa/gfs/gfs.20250101/00/atmos/gfs.t00z.pgrb2.5p00.f012");
    let idx = grib.with_extension("f012.idx");
    let text = std::fs::read_to_string(&idx).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let last = lines.last().unwrap();
    assert!(last.contains("TMP:80 m above ground"), "{last}");
    let cut: usize = last.split(':').nth(1).unwrap().parse().unwrap();
    std::fs::write(&idx, lines[..lines.len() - 1].join("\n") + "\n").unwrap();
    let bytes = std::fs::read(&grib).unwrap();
    std::fs::write(&grib, &bytes[..cut]).unwrap();
    let strict = S3GfsSource::new(config(wx_data::gfs::GfsLimits {
        max_message_bytes: 16,
    }))
    .unwrap();
    let mut refused = 0;
    for v in &vars {
        match strict.forecast(init, 12, &[*v]).await {
            Err(GfsError::TooLarge { .. }) => refused += 1,
            Err(e) => panic!("{v}: {e}"),
            Ok(_) => {}
        }
    }
    assert_eq!(
        refused, 1,
        "only 10v, now listed last, has no end in the inventory"
    );
    let v10 = VarLevel::all(Variable::V10);
    if let Err(e) = mirror.forecast(init, 12, &[v10]).await {
        panic!("the default limit fits: {e}");
    }
    server.shutdown().await;
}
