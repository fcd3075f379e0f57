//! `cargo xtask test`: the whole test suite, on SQLite and PostgreSQL, then the Python
//! package's pytest suite.

use crate::postgres::Postgres;
use anyhow::{Result, bail};
use std::time::Instant;

/// Runs `cargo test --workspace` with `WX_TEST_PG_URL` pointing at a PostgreSQL server, then
/// the wx-scoring-py tests (see `python_tests`); prints how long each part took.
pub fn run(extra: &[String]) -> Result<()> {
    // fail before the long cargo run when the Python tests cannot run
    crate::python_tests::base_python()?;
    let start = Instant::now();
    let pg = Postgres::provide()?;
    let mut cmd = crate::cargo();
    cmd.args(["test", "--workspace", "--all-features"])
        .args(extra)
        .env("WX_TEST_PG_URL", &pg.url);
    eprintln!(
        "xtask: cargo test --workspace --all-features {}",
        extra.join(" ")
    );
    let status = cmd.status()?;
    drop(pg);
    if !status.success() {
        bail!("tests failed");
    }
    let cargo_tests = start.elapsed();
    eprintln!("xtask: the Python package's tests (crates/wx-scoring-py)");
    let py = crate::python_tests::run_suite(&crate::workspace_root())?;
    eprintln!(
        "xtask: cargo test {:.0} s; Python package {:.0} s (venv {:.0} s, build + install {:.0} \
         s, pytest {:.0} s)",
        cargo_tests.as_secs_f64(),
        (py.venv + py.install + py.pytest).as_secs_f64(),
        py.venv.as_secs_f64(),
        py.install.as_secs_f64(),
        py.pytest.as_secs_f64()
    );
    Ok(())
}
