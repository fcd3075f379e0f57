//! `cargo xtask bench …`: benchmarks that print their figures.

use crate::postgres::Postgres;
use anyhow::{Result, bail};
use std::path::PathBuf;

/// The benchmarks.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum Which {
    /// Queue transitions per second (claim → complete) on PostgreSQL and SQLite, then the
    /// daemon's completion rate, completions recorded one by one against batched.
    Queue,
    /// Metric kernels and ERA5 lead scoring (criterion).
    Scoring,
    /// Verified reads of a Blosc-zstd miner store over local HTTP against xarray + zarr-python
    /// + dask on the same server (creates target/bench-venv), then the decode criterion bench.
    Data,
    /// A full test-mode run of 255 simulated miners, SQLite and PostgreSQL: wall time,
    /// steps per second, the daemon's peak memory.
    Pipeline,
    /// One 0.25° field (721 × 1440) scored through the Python package against the Rust kernel
    /// on the same arrays (creates target/py-test-venv).
    Python,
    /// The peak memory of scoring one ERA5 lead from full-size 0.25° stores in the public
    /// ARCO-ERA5 layout (37 levels per chunk), written by zarr-python into target/bench-era5
    /// (creates target/bench-venv); fails above 1 GiB.
    Era5,
    /// The real workload at 0.25°: the release daemon against simulated miners over verified
    /// HTTP, split into per-run, per-miner, per-lead and per-miner-lead costs with the
    /// extrapolated 255 × 10 run and the daemon's memory; then one lead through `wx-step score`
    /// against numpy and xarray + xskillscore on the same stores. Prints figures next to the
    /// targets; never fails on a figure.
    E2e(crate::bench_e2e::E2eArgs),
}

/// Runs one benchmark.
pub fn run(which: Which) -> Result<()> {
    if let Which::Data = &which {
        read_against_python()?;
    }
    let (package, bench, features): (&str, &str, &[&str]) = match which {
        Which::Queue => ("wx-store", "queue", &["--features", "testing"]),
        Which::Scoring => ("wx-scoring", "kernel", &[]),
        Which::Data => ("wx-data", "zarr_decode", &[]),
        Which::Pipeline => ("wx-validator", "pipeline", &[]),
        Which::Python => return python_against_rust(),
        Which::Era5 => return era5_lead_memory(),
        Which::E2e(args) => return crate::bench_e2e::run(&args),
    };
    let pg = Postgres::provide()?;
    run_bench(package, bench, features, &pg.url)?;
    if let Which::Queue = &which {
        run_bench("wx-scheduler", "completion", &[], &pg.url)?;
    }
    Ok(())
}

fn run_bench(package: &str, bench: &str, features: &[&str], pg_url: &str) -> Result<()> {
    let status = crate::cargo()
        .args(["bench", "-p", package, "--bench", bench])
        .args(features)
        .env("WX_TEST_PG_URL", pg_url)
        .status()?;
    if !status.success() {
        bail!("the {bench} benchmark of {package} failed");
    }
    Ok(())
}

/// The read benchmark: `testdata/gen/bench_read.py` drives the release `read_bench`
/// example and the Python stack against one `wx-test-server` and prints both figures.
fn read_against_python() -> Result<()> {
    let root = crate::workspace_root();
    let python = bench_venv(&root)?;
    crate::python::run(crate::cargo().args([
        "build",
        "--release",
        "-p",
        "wx-data",
        "--example",
        "read_bench",
        "-p",
        "wx-testkit",
        "--bin",
        "wx-test-server",
    ]))?;
    crate::python::run(
        std::process::Command::new(&python)
            .arg(root.join("testdata/gen/bench_read.py"))
            .arg("--python")
            .arg(&python)
            .arg("--target-dir")
            .arg(root.join("target")),
    )
}

/// The Python package's speed: `crates/wx-scoring-py/benches/bench_field.py` times
/// `wx_scoring.score_field` and the release `kernel_timing` example (wx-scoring called from
/// Rust) on the same 721 × 1440 arrays, alternating, and prints both and their ratio.
fn python_against_rust() -> Result<()> {
    let root = crate::workspace_root();
    let (venv, _, _) = crate::python_tests::install(&root)?;
    crate::python::run(crate::cargo().args([
        "build",
        "--release",
        "-p",
        "wx-scoring-py",
        "--example",
        "kernel_timing",
    ]))?;
    crate::python::run(
        std::process::Command::new(&venv.python)
            .arg(root.join("crates/wx-scoring-py/benches/bench_field.py"))
            .arg(root.join("target/release/examples/kernel_timing"))
            .env("PATH", &venv.path),
    )
}

/// The largest peak resident set accepted for scoring one ERA5 lead (the bound).
const ERA5_LEAD_PEAK_MIB: f64 = 1024.0;

/// `cargo xtask bench era5`: writes the 0.25° stores with zarr-python, then runs the release
/// `era5_lead_rss` example in its own process (so that only scoring counts) and checks its
/// peak memory.
fn era5_lead_memory() -> Result<()> {
    let root = crate::workspace_root();
    let (_, dir) = arco_stores()?;
    crate::python::run(crate::cargo().args([
        "build",
        "--release",
        "-p",
        "wx-validator",
        "--example",
        "era5_lead_rss",
    ]))?;
    let out = std::process::Command::new(root.join("target/release/examples/era5_lead_rss"))
        .arg(&dir)
        .output()?;
    if !out.status.success() {
        bail!(
            "era5_lead_rss failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8(out.stdout)?;
    print!("{text}");
    // the example prints pretty JSON, one key per line
    let peak: f64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("\"peak_rss_mib\":"))
        .and_then(|v| v.trim().trim_end_matches(',').parse().ok())
        .unwrap_or(f64::INFINITY);
    println!(
        "peak RSS of scoring one ERA5 lead from the 0.25° ARCO layout: {peak:.0} MiB \
         (bound {ERA5_LEAD_PEAK_MIB:.0} MiB, {:.2} of it)",
        peak / ERA5_LEAD_PEAK_MIB
    );
    if peak > ERA5_LEAD_PEAK_MIB {
        bail!("scoring one ERA5 lead peaked at {peak:.0} MiB, above {ERA5_LEAD_PEAK_MIB:.0} MiB");
    }
    Ok(())
}

/// The Python of `target/bench-venv`, the benchmarks' venv (xarray, zarr-python, dask, numpy,
/// xskillscore; pinned in `testdata/gen/bench-requirements.txt`), created when missing or stale.
fn bench_venv(root: &std::path::Path) -> Result<PathBuf> {
    crate::python::ensure_venv(
        root,
        "bench-venv",
        &root.join("testdata/gen/bench-requirements.txt"),
        "python3",
    )
}

/// The bench venv's Python (created from `testdata/gen/bench-requirements.txt`) and
/// `target/bench-era5`: full-size 0.25° stores in the public ARCO layout, a WeatherBench2
/// climatology and a miner store, written once by `testdata/gen/make_arco_bench_stores.py`.
pub fn arco_stores() -> Result<(PathBuf, PathBuf)> {
    let root = crate::workspace_root();
    let python = bench_venv(&root)?;
    let dir = root.join("target/bench-era5");
    if !dir.join("stores.json").is_file() {
        eprintln!(
            "writing the 0.25° stores into {} (about 900 MB)",
            dir.display()
        );
        crate::python::run(
            std::process::Command::new(&python)
                .arg(root.join("testdata/gen/make_arco_bench_stores.py"))
                .arg(&dir),
        )?;
    }
    Ok((python, dir))
}
