//! `cargo xtask test`: the whole test suite, on SQLite and PostgreSQL.

use crate::postgres::Postgres;
use anyhow::{Result, bail};

/// Runs `cargo test --workspace` with `WX_TEST_PG_URL` pointing at a PostgreSQL server.
pub fn run(extra: &[String]) -> Result<()> {
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
    Ok(())
}
