//! `wx-step score` on the fixtures of `testdata/` (the real binary): its numbers against
//! wx-data + wx-steps::align + wx-scoring called directly on the same data, the table format,
//! a store served over HTTP on 127.0.0.1 (refused without `--allow-loopback`), and unusable
//! inputs (missing store, missing or corrupt chunk) as one `error:` line.

use chrono::{DateTime, Duration, Utc};
use ndarray::Axis;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use wx_data::sources::{ClimatologyReader, Era5Reader, MinerForecastReader};
use wx_data::transport::{SizeLimits, local_dir};
use wx_model::VarLevel;
use wx_scoring::{
    MetricValue, ScoringConfig, StackInputs, VariableMetrics, VariableOutcome, era5_lead_score,
    score_levels,
};
use wx_steps::align::{onto, score_against_climatology, score_against_reference, truth_on_grid};
use wx_testkit::{Fault, Faults, TestServer};
use wx_zarr::{DynStorage, ReadOptions};

const INIT: &str = "2024-12-30T00:00:00Z";
const TOKEN: &str = "fixture-token-4711";

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

fn store(name: &str) -> PathBuf {
    testdata().join("stores").join(name)
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

async fn wx_step(args: &[String]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_wx-step"))
        .args(args)
        .env_remove("WX_CONFIG")
        .env_remove("WX_STEP_TOKEN")
        .output()
        .await
        .expect("run wx-step")
}

fn score_args(forecast: &str, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "score",
        "--forecast",
        forecast,
        "--truth",
        &s(&store("era5_arco")),
        "--climatology",
        &s(&store("clim_wb2")),
        "--init",
        INIT,
    ]
    .iter()
    .map(|x| x.to_string())
    .collect();
    a.extend(extra.iter().map(|x| x.to_string()));
    a
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "wx-step failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty(), "stderr is silent without -v");
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
}

/// Exit code non-zero, stdout empty, exactly one stderr line `error: …`; returns that line.
fn single_error(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure");
    assert!(out.stdout.is_empty(), "stdout must be empty: {out:?}");
    let err = String::from_utf8(out.stderr.clone()).unwrap();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one stderr line: {err:?}");
    assert!(lines[0].starts_with("error: "), "{err}");
    lines[0].to_owned()
}

fn storage(path: &Path) -> DynStorage {
    local_dir(path, SizeLimits::default())
        .unwrap()
        .zarr_storage()
}

/// Equal within 1e-12 (relative), or both failed.
fn check(what: &str, got: &Value, want: Option<&MetricValue>) {
    match want {
        Some(Ok(x)) => {
            let g = got
                .as_f64()
                .unwrap_or_else(|| panic!("{what}: expected {x}, got {got}"));
            assert!(
                g == *x || (g - x).abs() <= 1e-12 * x.abs(),
                "{what}: {g} != {x}"
            );
        }
        Some(Err(_)) | None => assert!(got.is_null(), "{what}: expected null, got {got}"),
    }
}

fn num(got: &Value, want: f64, what: &str) {
    let g = got.as_f64().unwrap_or_else(|| panic!("{what}: {got}"));
    assert!(
        g == want || (g - want).abs() <= 1e-12 * want.abs(),
        "{what}: {g} != {want}"
    );
}

fn field<'a>(json: &'a Value, variable: &str, level: u64, lead: u64) -> &'a Value {
    json["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["variable"] == variable && f["level"] == level && f["lead_hours"] == lead)
        .unwrap_or_else(|| panic!("no field {variable} {level} {lead}"))
}

fn variable<'a>(json: &'a Value, key: &str, lead: u64) -> &'a Value {
    json["variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["variable"] == key && f["lead_hours"] == lead)
        .unwrap_or_else(|| panic!("no variable {key} {lead}"))
}

fn check_metrics(what: &str, got: &Value, m: &VariableMetrics) {
    check(&format!("{what} rmse"), &got["rmse"], Some(&m.rmse));
    check(&format!("{what} mse"), &got["mse"], Some(&m.mse));
    check(&format!("{what} mae"), &got["mae"], Some(&m.mae));
    check(&format!("{what} bias"), &got["bias"], Some(&m.bias));
    check(&format!("{what} acc"), &got["acc"], m.acc.as_ref());
    check(
        &format!("{what} skill_clim"),
        &got["skill_clim"],
        m.skill.as_ref(),
    );
    check(
        &format!("{what} rmse_clim"),
        &got["rmse_clim"],
        m.rmse_clim.as_ref(),
    );
    num(&got["coverage"], m.coverage, &format!("{what} coverage"));
}

/// Recomputes everything with the libraries directly and compares it with the JSON.
async fn verify_against_libraries(
    json: &Value,
    forecast: &Path,
    reference: Option<&Path>,
    leads: &[u32],
    variables: &[&str],
) {
    let init: DateTime<Utc> = INIT.parse().unwrap();
    let f_reader = MinerForecastReader::open(storage(forecast), ReadOptions::new("f"), init)
        .await
        .unwrap();
    let t_reader = Era5Reader::open(storage(&store("era5_arco")), ReadOptions::new("t"))
        .await
        .unwrap();
    let c_reader = ClimatologyReader::open(storage(&store("clim_wb2")), ReadOptions::new("c"))
        .await
        .unwrap();
    let r_reader = match reference {
        Some(r) => Some(
            Era5Reader::open(storage(r), ReadOptions::new("r"))
                .await
                .unwrap(),
        ),
        None => None,
    };
    let mut cfg = ScoringConfig::default();
    cfg.era5.variables = variables.iter().map(|v| v.to_string()).collect();
    cfg.era5.leads = leads.to_vec();
    assert_eq!(json["init"], INIT);
    let mut expected_fields = 0;
    for &lead in leads {
        let valid = init + Duration::hours(i64::from(lead));
        let mut outcomes = BTreeMap::new();
        for key in variables {
            let v = VarLevel::parse(key).unwrap();
            let truth = t_reader.read(v, valid).await.unwrap();
            let clim = c_reader.read(v, valid).await.unwrap();
            let levels: Vec<u64> = if truth.levels.is_empty() {
                vec![0]
            } else {
                truth.levels.iter().map(|l| u64::from(*l)).collect()
            };
            expected_fields += levels.len();
            let lead64 = u64::from(lead);
            let forecast = match f_reader.read(v, valid).await {
                Ok(f) => f,
                Err(e) => {
                    for l in &levels {
                        let got = field(json, v.variable.as_str(), *l, lead64);
                        for k in [
                            "rmse",
                            "mse",
                            "mae",
                            "bias",
                            "acc",
                            "skill_clim",
                            "coverage",
                        ] {
                            assert!(
                                got[k].is_null(),
                                "{key} {l} {lead}: {k} of a failed variable"
                            );
                        }
                    }
                    outcomes.insert(key.to_string(), VariableOutcome::Failed(e.to_string()));
                    continue;
                }
            };
            let t = truth_on_grid(&truth).unwrap();
            let f = onto(&forecast, &t, "forecast").unwrap();
            let c = onto(&clim, &t, "climatology").unwrap();
            let agg = score_against_climatology(f.view(), &t, c.view(), &cfg).unwrap();
            let per: Vec<VariableMetrics> = if t.levels.len() > 1 {
                let hpa: Vec<f64> = t.levels.iter().map(|l| f64::from(*l)).collect();
                let inputs = StackInputs {
                    forecast: f.view(),
                    truth: t.values.view(),
                    climatology: Some(c.view()),
                    skill_vs_climatology: true,
                };
                let (per, agg2) = score_levels(&inputs, &hpa, &t.weights, &cfg).unwrap();
                assert_eq!(agg2, agg, "the per-level split aggregates to the variable");
                per.iter().map(VariableMetrics::from).collect()
            } else {
                vec![agg.clone()]
            };
            for (i, l) in levels.iter().enumerate() {
                let got = field(json, v.variable.as_str(), *l, lead64);
                check_metrics(&format!("{key} level {l} lead {lead}"), got, &per[i]);
                match &r_reader {
                    None => {
                        assert!(
                            got.get("skill_ref").is_none() && got.get("clone_distance").is_none()
                        );
                    }
                    Some(rr) => match rr.read(v, valid).await {
                        Ok(rf) => {
                            assert_eq!(
                                t.values.len_of(Axis(0)),
                                1,
                                "reference checks use one level"
                            );
                            let r = onto(&rf, &t, "reference").unwrap();
                            let m = score_against_reference(f.view(), &t, c.view(), r.view(), &cfg)
                                .unwrap();
                            check("skill_ref", &got["skill_ref"], m.skill.as_ref());
                            check(
                                "clone_distance",
                                &got["clone_distance"],
                                m.clone_distance.as_ref(),
                            );
                            assert!(got["skill_ref"].is_number());
                        }
                        Err(_) => {
                            assert!(got["skill_ref"].is_null() && got["clone_distance"].is_null());
                        }
                    },
                }
            }
            let gv = variable(json, key, lead64);
            check(&format!("{key} rmse"), &gv["rmse"], Some(&agg.rmse));
            check(&format!("{key} acc"), &gv["acc"], agg.acc.as_ref());
            check(
                &format!("{key} skill_clim"),
                &gv["skill_clim"],
                agg.skill.as_ref(),
            );
            outcomes.insert(key.to_string(), VariableOutcome::Scored(agg));
        }
        let scored = era5_lead_score(&outcomes, &cfg).unwrap();
        num(
            &json["lead_scores"][lead.to_string()],
            scored.score,
            "lead score",
        );
        for ev in &scored.variables {
            let gv = variable(json, &ev.variable, u64::from(lead));
            num(&gv["lead_component"], ev.lead_component, "lead_component");
            assert_eq!(gv["error"].is_null(), ev.failure.is_none(), "{gv}");
        }
    }
    assert_eq!(json["fields"].as_array().unwrap().len(), expected_fields);
    assert_eq!(
        json["variables"].as_array().unwrap().len(),
        variables.len() * leads.len()
    );
    assert_eq!(json["lead_scores"].as_object().unwrap().len(), leads.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_variable_matches_the_validator_code() {
    let forecast = store("miner_v2_blosc_zstd");
    let out = wx_step(&score_args(&s(&forecast), &["--leads", "24,48"])).await;
    let json = json_of(&out);
    let all = ["2t", "10u", "10v", "msl", "t", "u", "v", "q", "z"];
    verify_against_libraries(&json, &forecast, None, &[24, 48], &all).await;
    // 4 surface + 5 × 13 levels per lead
    assert_eq!(json["fields"].as_array().unwrap().len(), 2 * (4 + 5 * 13));
    let score24 = json["lead_scores"]["24"].as_f64().unwrap();
    assert!(score24 > 0.5 && score24 < 1.0, "{score24}");

    // a single level of a multi-level variable, in the requested order
    let out = wx_step(&score_args(
        &s(&forecast),
        &["--leads", "48", "--variables", "z500,2t,q850"],
    ))
    .await;
    let json = json_of(&out);
    verify_against_libraries(&json, &forecast, None, &[48], &["z500", "2t", "q850"]).await;
    let keys: Vec<&str> = json["variables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["variable"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["z500", "2t", "q850"]);
    assert_eq!(field(&json, "z", 500, 48)["level"], 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regridding_reference_and_missing_variables() {
    // a 2.5° forecast regridded onto the 5° truth; the 721-row store as the reference; msl is
    // missing from the reference (null skill_ref) and t from the forecast (a failed variable)
    let forecast = store("miner_2p5deg");
    let reference = store("miner_721_5deg");
    let out = wx_step(&score_args(
        &s(&forecast),
        &[
            "--leads",
            "24",
            "--variables",
            "2t,msl,t500",
            "--reference",
            &s(&reference),
        ],
    ))
    .await;
    let json = json_of(&out);
    verify_against_libraries(
        &json,
        &forecast,
        Some(&reference),
        &[24],
        &["2t", "msl", "t500"],
    )
    .await;
    let t500 = variable(&json, "t500", 24);
    assert_eq!(t500["lead_component"], 0.0);
    assert!(t500["rmse"].is_null() && t500["error"].as_str().unwrap().contains("not found"));
    assert!(field(&json, "msl", 0, 24)["skill_ref"].is_null());
    assert!(field(&json, "msl", 0, 24)["rmse"].is_number());
    assert!(
        field(&json, "2t", 0, 24)["clone_distance"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_format_prints_tables() {
    let forecast = s(&store("miner_v2_blosc_zstd"));
    let out = wx_step(&score_args(
        &forecast,
        &["--leads", "24", "--variables", "2t,t", "--format", "table"],
    ))
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("init 2024-12-30T00:00:00Z"), "{text}");
    let header: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "var",
            "level",
            "lead",
            "rmse",
            "mse",
            "mae",
            "bias",
            "acc",
            "skill_clim",
            "rmse_clim",
            "coverage"
        ]
    );
    // 1 surface row + 13 levels of t
    let rows: Vec<&str> = lines[2..]
        .iter()
        .take_while(|l| !l.is_empty())
        .copied()
        .collect();
    assert_eq!(rows.len(), 14, "{text}");
    assert!(rows[0].starts_with("2t") && rows[13].split_whitespace().nth(1) == Some("1000"));
    assert!(text.contains("lead_component"));
    assert!(
        lines.iter().any(|l| l.split_whitespace().next() == Some("24")
            && l.split_whitespace().count() == 2),
        "the lead score row: {text}"
    );
    // the same numbers as JSON, to the printed precision
    let json = json_of(
        &wx_step(&score_args(
            &forecast,
            &["--leads", "24", "--variables", "2t,t"],
        ))
        .await,
    );
    let rmse = field(&json, "2t", 0, 24)["rmse"].as_f64().unwrap();
    assert_eq!(
        rows[0].split_whitespace().nth(3),
        Some(format!("{rmse:.4}").as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_over_http_needs_allow_loopback() {
    let server = TestServer::start(testdata().join("stores"), Some(TOKEN), Faults::new())
        .await
        .unwrap();
    let url = server.url_for("miner_v2_blosc_zstd");
    let extra = ["--leads", "24", "--variables", "2t,t,msl"];
    let local = json_of(&wx_step(&score_args(&s(&store("miner_v2_blosc_zstd")), &extra)).await);

    let mut args = score_args(&url, &extra);
    args.extend(["--allow-loopback".into(), "--token".into(), TOKEN.into()]);
    let remote = json_of(&wx_step(&args).await);
    assert_eq!(
        remote, local,
        "the same bytes give the same numbers over HTTP"
    );
    assert!(server.stats("miner_v2_blosc_zstd/.zmetadata").requests >= 1);

    // without --allow-loopback: refused (plain http, then the address itself)
    let mut args = score_args(&url, &extra);
    args.extend(["--token".into(), TOKEN.into()]);
    let before = server.total_requests();
    let line = single_error(&wx_step(&args).await);
    assert!(line.contains("forecast"), "{line}");
    args.push("--allow-plain-http".into());
    let line = single_error(&wx_step(&args).await);
    assert!(
        line.contains("127.0.0.1") && line.contains("loopback"),
        "{line}"
    );
    assert_eq!(
        server.total_requests(),
        before,
        "nothing was sent to a refused address"
    );
    assert!(!line.contains(TOKEN));

    // a wrong token: the server refuses, one error line, the token never printed
    let mut args = score_args(&url, &extra);
    args.extend([
        "--allow-loopback".into(),
        "--token".into(),
        "wrong-token-1234".into(),
    ]);
    let line = single_error(&wx_step(&args).await);
    assert!(
        line.contains(".zmetadata") && !line.contains("wrong-token-1234"),
        "{line}"
    );

    // a chunk the server does not have: the key is named
    server.set_fault("miner_v2_blosc_zstd/2t/3.0.0", Fault::Status(404));
    let mut args = score_args(&url, &extra);
    args.extend(["--allow-loopback".into(), "--token".into(), TOKEN.into()]);
    let line = single_error(&wx_step(&args).await);
    assert!(line.contains("2t/3.0.0"), "{line}");
    server.shutdown().await;
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_inputs_give_one_error_line_naming_the_store_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let extra = ["--leads", "24", "--variables", "2t"];
    // a corrupt chunk (decodes to the wrong size) at the valid time of lead 24 (index 3)
    for variant in ["short", "long"] {
        let copy = dir.path().join(format!("corrupt-{variant}"));
        copy_dir(&store("miner_v2_blosc_zstd"), &copy);
        std::fs::copy(
            testdata().join(format!("corrupt/miner_v2_blosc_zstd.2t.0.0.0.{variant}")),
            copy.join("2t/3.0.0"),
        )
        .unwrap();
        let line = single_error(&wx_step(&score_args(&s(&copy), &extra)).await);
        assert!(
            line.contains("2t/3.0.0") && line.contains(&s(&copy)),
            "{line}"
        );
        assert!(line.contains("forecast"), "{line}");
    }
    // a missing chunk
    let copy = dir.path().join("missing-chunk");
    copy_dir(&store("miner_v2_blosc_zstd"), &copy);
    std::fs::remove_file(copy.join("2t/3.0.0")).unwrap();
    let line = single_error(&wx_step(&score_args(&s(&copy), &extra)).await);
    assert!(
        line.contains("2t/3.0.0") && line.contains("missing"),
        "{line}"
    );
    // bad metadata
    let copy = dir.path().join("bad-metadata");
    copy_dir(&store("miner_v2_blosc_zstd"), &copy);
    std::fs::write(copy.join(".zmetadata"), b"{ not json").unwrap();
    let line = single_error(&wx_step(&score_args(&s(&copy), &extra)).await);
    assert!(line.contains(".zmetadata"), "{line}");
    // a store path that does not exist
    let missing = dir.path().join("no-such-store.zarr");
    let line = single_error(&wx_step(&score_args(&s(&missing), &extra)).await);
    assert!(
        line.contains("no-such-store.zarr") && line.contains("forecast"),
        "{line}"
    );
    // the truth and the climatology likewise
    let mut args = score_args(&s(&store("miner_v2_blosc_zstd")), &extra);
    args[4] = s(&missing);
    let line = single_error(&wx_step(&args).await);
    assert!(
        line.contains("truth") && line.contains("no-such-store.zarr"),
        "{line}"
    );
    let mut args = score_args(&s(&store("miner_v2_blosc_zstd")), &extra);
    args[6] = s(&store("era5_arco"));
    let line = single_error(&wx_step(&args).await);
    assert!(line.contains("climatology"), "{line}");
    // a valid time the truth will never have (between two of its 6-hourly times)
    let line = single_error(
        &wx_step(&score_args(
            &s(&store("miner_v2_blosc_zstd")),
            &["--leads", "27", "--variables", "2t"],
        ))
        .await,
    );
    assert!(
        line.contains("truth") && line.contains("2024-12-31T03:00:00Z"),
        "{line}"
    );
}

/// `wx-step score` against a truth in the public ARCO layout (`era5_arco_published`: ERA5T
/// through 2024-12-31, final ERA5 through 2024-12-30, hourly axis padded to 2025-01-04).
fn published_args(leads: &str, extra: &[&str]) -> Vec<String> {
    let mut a = score_args(
        &s(&store("miner_v2_blosc_zstd")),
        &["--leads", leads, "--variables", "2t,t"],
    );
    a[4] = s(&store("era5_arco_published"));
    a.extend(extra.iter().map(|x| x.to_string()));
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpublished_leads_are_pending_not_errors() {
    let json = json_of(&wx_step(&published_args("24,42,48", &[])).await);
    let scored: Vec<&str> = json["lead_scores"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(scored, ["24", "42"]);
    assert_eq!(
        json["pending_leads"],
        serde_json::json!([{
            "lead_hours": 48,
            "valid_time": "2025-01-01T00:00:00Z",
            "published_until": "2024-12-31T23:59:59Z"
        }])
    );
    for list in ["fields", "variables"] {
        let rows = json[list].as_array().unwrap();
        assert!(!rows.is_empty());
        assert!(
            rows.iter().all(|r| r["lead_hours"] != 48),
            "a pending lead has no {list} entries"
        );
    }
    // the lead scored against the 37-level truth is a real score
    let l24 = json["lead_scores"]["24"].as_f64().unwrap();
    assert!(l24 > 0.0 && l24 < 1.0, "{l24}");

    // final ERA5 only: ERA5T days are pending too
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("wx.toml");
    std::fs::write(&config, "[data]\nera5_final_only = true\n").unwrap();
    let mut args = vec!["--config".to_owned(), s(&config)];
    args.extend(published_args("18,24,48", &[]));
    let json = json_of(&wx_step(&args).await);
    assert_eq!(
        json["lead_scores"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["18"]
    );
    let pending: Vec<u64> = json["pending_leads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["lead_hours"].as_u64().unwrap())
        .collect();
    assert_eq!(pending, [24, 48]);
    assert_eq!(
        json["pending_leads"][0]["published_until"],
        "2024-12-30T23:59:59Z"
    );

    // every lead pending: still exit 0, nothing scored
    let json = json_of(&wx_step(&published_args("48", &[])).await);
    assert_eq!(json["lead_scores"], serde_json::json!({}));
    assert_eq!(json["fields"], serde_json::json!([]));
    assert_eq!(json["pending_leads"][0]["lead_hours"], 48);

    // the table says it too
    let out = wx_step(&published_args("24,48", &["--format", "table"])).await;
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("pending") && text.contains("2025-01-01T00:00:00Z"),
        "{text}"
    );

    // a chunk the attributes promise but the store lacks: pending as well
    let copy = dir.path().join("era5_missing_chunk");
    copy_dir(&store("era5_arco_published"), &copy);
    std::fs::remove_file(copy.join("temperature/66.0.0.0")).unwrap(); // 2024-12-31T18Z
    let mut args = published_args("24,42", &[]);
    args[4] = s(&copy);
    let json = json_of(&wx_step(&args).await);
    assert_eq!(
        json["lead_scores"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["24"]
    );
    assert_eq!(json["pending_leads"][0]["lead_hours"], 42);

    // real errors keep the one-line contract: a day before the store's valid_time_start
    let mut args = published_args("6", &[]);
    assert_eq!(args[7], "--init");
    args[8] = "2024-12-29T00:00:00Z".into();
    let line = single_error(&wx_step(&args).await);
    assert!(line.contains("valid_time_start"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_logs_go_to_stderr() {
    let mut args = score_args(
        &s(&store("miner_v2_blosc_zstd")),
        &["--leads", "24", "--variables", "2t"],
    );
    args.push("-vv".into());
    let out = wx_step(&args).await;
    assert!(out.status.success());
    assert!(!out.stderr.is_empty(), "-vv logs to stderr");
    let json: Value = serde_json::from_slice(&out.stdout).expect("stdout stays pure JSON");
    assert!(json["lead_scores"]["24"].is_number());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configuration_gives_the_default_variables_and_constants() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("wx.toml");
    // the validator's configuration file: its ERA5 variables are the default selection, and
    // its constants apply (a coverage floor above 1 fails every variable)
    std::fs::write(
        &config,
        "[scoring.era5]\nvariables = [\"2t\", \"z500\"]\n[scoring.field]\ncoverage_floor = 1.5\n",
    )
    .unwrap();
    let mut args = vec!["--config".to_owned(), s(&config)];
    args.extend(score_args(
        &s(&store("miner_v2_blosc_zstd")),
        &["--leads", "24"],
    ));
    // every variable fails: the report is printed, and the exit code says nothing was scored
    let out = wx_step(&args).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let json: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    let keys: Vec<&str> = json["variables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["variable"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["2t", "z500"]);
    for v in json["variables"].as_array().unwrap() {
        assert_eq!(v["lead_component"], 0.0, "{v}");
        assert!(v["error"].as_str().unwrap().contains("coverage"), "{v}");
        assert!(
            v["rmse"].is_number(),
            "the metrics that computed stay numbers: {v}"
        );
    }
    assert_eq!(json["lead_scores"]["24"], 0.0);
}

/// A private S3 mirror of the truth (a real HTTP server on 127.0.0.1 that lets only requests
/// signed with the mirror's key id through): reached with object_store's standard
/// configuration from the environment, the endpoint and credentials kind from the config
/// file; anonymous access is refused; the secret shows nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_s3_mirror_is_read_with_credentials_from_the_environment() {
    const KEY_ID: &str = "AKIDWXMIRROR";
    const SECRET: &str = "wx-mirror-secret-4711";
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &store("era5_arco_published"),
        &dir.path().join("era5-mirror/arco/era5_arco_published"),
    );
    let server = TestServer::start_with_auth(
        dir.path(),
        &format!("AWS4-HMAC-SHA256 Credential={KEY_ID}/"),
        Faults::new(),
    )
    .await
    .unwrap();
    let endpoint = server.url().trim_end_matches('/').to_owned();
    let run = |credentials: &'static str| {
        let config = dir.path().join(format!("wx-{credentials}.toml"));
        std::fs::write(
            &config,
            format!(
                "[data]\nera5 = \"s3://era5-mirror/arco\"\n[data.era5_access]\n\
                 credentials = \"{credentials}\"\nendpoint = \"{endpoint}\"\n"
            ),
        )
        .unwrap();
        let mut args = vec!["--config".to_owned(), s(&config)];
        args.extend(published_args("24,48", &[]));
        args[6] = "s3://era5-mirror/arco/era5_arco_published".into(); // --truth
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_wx-step"));
        cmd.args(&args)
            .env_remove("WX_CONFIG")
            .env_remove("WX_STEP_TOKEN")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_ENDPOINT")
            .env_remove("AWS_PROFILE")
            .env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_REGION", "us-east-1");
        async move { cmd.output().await.unwrap() }
    };
    let out = run("environment").await;
    for stream in [&out.stdout, &out.stderr] {
        assert!(!String::from_utf8_lossy(stream).contains(SECRET));
    }
    let json = json_of(&out);
    assert!(json["lead_scores"]["24"].as_f64().unwrap() > 0.0);
    assert_eq!(json["pending_leads"][0]["lead_hours"], 48);
    let key = "era5-mirror/arco/era5_arco_published/temperature/48.0.0.0"; // 2024-12-31T00Z
    assert_eq!(server.stats(key).unauthorized, 0);
    assert!(
        server.stats(key).requests >= 1,
        "the chunk came from the mirror"
    );

    // anonymous requests are unsigned: the mirror refuses them, in one error line
    let out = run("anonymous").await;
    let line = single_error(&out);
    assert!(line.contains("truth") && !line.contains(SECRET), "{line}");
    assert!(
        server
            .stats("era5-mirror/arco/era5_arco_published/.zmetadata")
            .unauthorized
            >= 1
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_format_is_one_row_per_field_with_the_json_numbers() {
    // t is missing from this forecast (a failed variable); msl from the reference
    let forecast = s(&store("miner_2p5deg"));
    let reference = s(&store("miner_721_5deg"));
    let extra = [
        "--leads",
        "24,48",
        "--variables",
        "2t,msl,t500",
        "--reference",
        &reference,
    ];
    let json = json_of(&wx_step(&score_args(&forecast, &extra)).await);
    let mut with_csv = extra.to_vec();
    with_csv.extend(["--format", "csv"]);
    let out = wx_step(&score_args(&forecast, &with_csv)).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "init_time",
            "lead_time",
            "lead_hours",
            "valid_time",
            "variable",
            "short_name",
            "level",
            "region",
            "rmse",
            "mse",
            "mae",
            "bias",
            "acc",
            "skill_clim",
            "rmse_clim",
            "skill_ref",
            "clone_distance",
            "coverage",
            "error"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let fields = json["fields"].as_array().unwrap();
    assert_eq!(rows.len(), fields.len(), "one row per field of the JSON");
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    // every number is the JSON's, bit for bit (both print the shortest round-trip form)
    for (row, field) in rows.iter().zip(fields) {
        assert_eq!(&row[col("short_name")], field["variable"].as_str().unwrap());
        assert_eq!(
            row[col("lead_hours")].parse::<u64>().unwrap(),
            field["lead_hours"].as_u64().unwrap()
        );
        for metric in [
            "rmse",
            "mse",
            "mae",
            "bias",
            "acc",
            "skill_clim",
            "coverage",
        ] {
            let cell = &row[col(metric)];
            match field[metric].as_f64() {
                Some(x) => assert_eq!(cell.parse::<f64>().unwrap(), x, "{metric}: {row:?}"),
                None => assert!(cell.is_empty(), "{metric} is empty when null: {row:?}"),
            }
        }
        assert_eq!(&row[col("region")], "global");
    }
    let find = |short: &str, lead: &str| {
        rows.iter()
            .find(|r| &r[col("short_name")] == short && &r[col("lead_hours")] == lead)
            .unwrap_or_else(|| panic!("a row for {short} at {lead} h"))
    };
    let t2m = find("2t", "48");
    assert_eq!(&t2m[col("variable")], "2m_temperature");
    assert_eq!(&t2m[col("level")], "", "a surface variable has no level");
    assert_eq!(&t2m[col("lead_time")], "P2D");
    assert_eq!(&t2m[col("valid_time")], "2025-01-01T00:00:00Z");
    assert!(t2m[col("error")].is_empty());
    assert!(t2m[col("clone_distance")].parse::<f64>().unwrap() > 0.0);
    let msl = find("msl", "24");
    assert!(msl[col("skill_ref")].is_empty(), "the reference lacks msl");
    let t500 = find("t", "24");
    assert_eq!(&t500[col("variable")], "temperature");
    assert_eq!(&t500[col("level")], "500");
    assert!(t500[col("rmse")].is_empty());
    assert!(
        t500[col("error")].contains("not found"),
        "the failed variable says why: {t500:?}"
    );
}
