//! `wx-validator simulate` as an operator uses it: the command serves a network and writes
//! `miners.json` and `wx.toml`; separate `wx-validator` processes migrate, import the
//! registry and run a whole run against it with nothing but those files. A restart reuses the
//! world; other options in the same directory are refused.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wx_model::RunStatus;
use wx_store::Db;

const BIN: &str = env!("CARGO_BIN_EXE_wx-validator");

fn simulate(out: &Path, seed: &str) -> Command {
    let mut c = Command::new(BIN);
    c.args([
        "simulate",
        "--miners",
        "4",
        "--resolution",
        "10",
        "--days",
        "1",
        "--seed",
        seed,
        "--out",
    ])
    .arg(out);
    c
}

/// Starts `simulate` and reads its stdout until it says it serves; returns what it printed.
// the child is handed to the caller, who stops and waits for it (`sigterm`)
#[allow(clippy::zombie_processes)]
fn start(out: &Path, seed: &str) -> (Child, String) {
    let mut child = simulate(out, seed)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).unwrap();
        if n == 0 {
            let status = child.wait().unwrap();
            panic!("simulate ended before serving ({status}):\n{printed}");
        }
        printed.push_str(&line);
        if line.starts_with("serving until") {
            return (child, printed);
        }
    }
}

fn sigterm(child: &mut Child) {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "a signal stops it cleanly: {status}");
}

fn wx(config: &Path, args: &[&str]) {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "wx-validator {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemons_score_a_simulated_network_from_its_files_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let (mut sim, printed) = start(&out, "5");
    for needle in [
        "4 miners on 127.0.0.1",
        "uid   1",
        "miners import",
        "wx.toml",
    ] {
        assert!(printed.contains(needle), "{needle}: {printed}");
    }
    let config = out.join("wx.toml");
    let miners = out.join("miners.json");
    let toml = std::fs::read_to_string(&config).unwrap();
    assert!(toml.contains("test_mode = true") && !toml.contains("database_url"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&miners).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the tokens' file is private");
    }

    // a daemon pointed at it with the written files and a database of its own
    let url = format!("sqlite://{}", dir.path().join("wx.sqlite3").display());
    let with_db = dir.path().join("wx-db.toml");
    std::fs::write(&with_db, format!("database_url = \"{url}\"\n{toml}")).unwrap();
    wx(&with_db, &["migrate"]);
    wx(&with_db, &["miners", "import", miners.to_str().unwrap()]);
    let mut daemon = Command::new(BIN)
        .arg("--config")
        .arg(&with_db)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let db = Db::open_existing(&url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    let run = loop {
        assert!(daemon.try_wait().unwrap().is_none(), "the daemon exited");
        if let Some(r) = db.runs().latest().await.unwrap()
            && r.status().unwrap() == RunStatus::Completed
        {
            break r;
        }
        assert!(Instant::now() < deadline, "no completed run within 180 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    sigterm(&mut daemon);
    let stats = db.stats().list(wx_model::RunId(run.id)).await.unwrap();
    assert_eq!(stats.len(), 4);
    assert!(
        stats.iter().any(|s| s.overall_forecast_score.is_some()),
        "miners were scored: {stats:?}"
    );
    sigterm(&mut sim);

    // a restart reuses the world (same files) and rewrites the registry (new ports)
    let world = out.join("world").join("world.json");
    let before = std::fs::metadata(&world).unwrap().modified().unwrap();
    let (mut again, _) = start(&out, "5");
    assert_eq!(
        std::fs::metadata(&world).unwrap().modified().unwrap(),
        before,
        "the world is reused, not generated again"
    );
    sigterm(&mut again);
    // another world in the same directory is refused, with what to do
    let refused = simulate(&out, "6").output().unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("holds another world"), "{err}");
}
