//! `cargo xtask bench …`: benchmarks that print their figures.

use crate::postgres::Postgres;
use anyhow::{Result, bail};

/// The benchmarks.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
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
}

/// Runs one benchmark.
pub fn run(which: Which) -> Result<()> {
    if let Which::Data = which {
        read_against_python()?;
    }
    let (package, bench, features): (&str, &str, &[&str]) = match which {
        Which::Queue => ("wx-store", "queue", &["--features", "testing"]),
        Which::Scoring => ("wx-scoring", "kernel", &[]),
        Which::Data => ("wx-data", "zarr_decode", &[]),
        Which::Pipeline => ("wx-validator", "pipeline", &[]),
        Which::Python => return python_against_rust(),
    };
    let pg = Postgres::provide()?;
    run_bench(package, bench, features, &pg.url)?;
    if let Which::Queue = which {
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
    let python = crate::python::ensure_venv(
        &root,
        "bench-venv",
        &root.join("testdata/gen/bench-requirements.txt"),
        "python3",
    )?;
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
