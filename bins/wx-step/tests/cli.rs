//! `wx-step` as an operator meets it (the real binary): exit codes, and logs that carry colour
//! only on a terminal.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_wx-step");
const INIT: &str = "2024-12-30T00:00:00Z";

fn store(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/stores")
        .join(name)
        .display()
        .to_string()
}

fn wx_step() -> Command {
    let mut c = Command::new(BIN);
    for var in [
        "WX_CONFIG",
        "WX_DATABASE_URL",
        "WX_LOG",
        "WX_LOG_JSON",
        "RUST_LOG",
        "NO_COLOR",
    ] {
        c.env_remove(var);
    }
    c
}

fn score_args(forecast: &str, variables: &str) -> Vec<String> {
    [
        "score",
        "--forecast",
        forecast,
        "--truth",
        &store("era5_arco"),
        "--climatology",
        &store("clim_wb2"),
        "--init",
        INIT,
        "--leads",
        "24",
        "--variables",
        variables,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn score_exits_2_only_when_every_variable_of_every_lead_failed() {
    // the store has no `t`: t500 alone fails entirely
    let out = wx_step()
        .args(score_args(&store("miner_2p5deg"), "t500"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        json["variables"][0]["error"].is_string(),
        "the report is printed"
    );
    assert!(stderr(&out).contains("every variable of every lead failed"));
    // one variable scored: success
    let out = wx_step()
        .args(score_args(&store("miner_2p5deg"), "2t,t500"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn usage_errors_exit_64_and_help_exits_0() {
    let out = wx_step().args(["score", "--leads", "24"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    let out = wx_step().arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Exit codes:") && help.contains("78"),
        "{help}"
    );
}

#[test]
fn run_refuses_a_missing_database_without_creating_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.sqlite3");
    let out = wx_step()
        .args(["--database-url", &format!("sqlite://{}", path.display())])
        .args(["run", "--run-id", "1", "--miner", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    assert!(!path.exists(), "no database was created");
}

fn verbose_score() -> Vec<String> {
    let mut args = score_args(&store("miner_v2_blosc_zstd"), "2t");
    args.push("-vv".into());
    args
}

#[test]
fn logs_off_a_terminal_have_no_colour_and_json_comes_from_the_environment() {
    let out = wx_step().args(verbose_score()).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(!text.is_empty(), "-vv logs");
    assert!(!text.contains('\u{1b}'), "no ANSI escape in a pipe: {text}");

    let out = wx_step()
        .args(verbose_score())
        .env("WX_LOG_JSON", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(!text.is_empty());
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string(), "{line}");
    }
}

/// Runs the command on a pseudo-terminal (util-linux `script`), stdout and stderr together.
fn on_a_terminal(args: &[String], no_color: bool) -> String {
    let quoted: Vec<String> = std::iter::once(BIN.to_owned())
        .chain(args.iter().cloned())
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    let mut script = Command::new("script");
    script
        .args(["-q", "-e", "-c", &quoted.join(" "), "/dev/null"])
        .env_remove("NO_COLOR")
        .env_remove("WX_LOG_JSON")
        .env_remove("RUST_LOG")
        .env_remove("WX_LOG");
    if no_color {
        script.env("NO_COLOR", "1");
    }
    let out = script
        .output()
        .expect("util-linux `script` runs the command on a terminal; install util-linux");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn logs_on_a_terminal_are_coloured_unless_no_color() {
    let args = verbose_score();
    let coloured = on_a_terminal(&args, false);
    assert!(
        coloured.contains("\u{1b}["),
        "a terminal gets colour: {coloured}"
    );
    let plain = on_a_terminal(&args, true);
    assert!(plain.contains("INFO") || plain.contains("DEBUG"), "{plain}");
    assert!(!plain.contains("\u{1b}["), "NO_COLOR is honoured: {plain}");
}
