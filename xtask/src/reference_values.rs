//! `cargo xtask reference-values`: recompute the wx-scoring cross-check values.
//!
//! Creates (once, and again whenever the pinned requirements change) a Python
//! venv under `target/xtask-venv` from `crates/wx-scoring/reference/requirements.txt`,
//! optionally regenerates the fixture fields, then runs
//! `crates/wx-scoring/reference/reference_values.py`, which writes
//! `crates/wx-scoring/tests/fixtures/reference_values.json`. The fixtures and
//! the JSON are committed, so `cargo test` never needs Python.

use std::process::Command;

use crate::python::{ensure_venv, run};
use anyhow::Result;

/// Options of the `reference-values` subcommand.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Regenerate the fixture fields (deterministic) before computing the values.
    #[arg(long)]
    pub regenerate_fixtures: bool,
    /// Base Python interpreter used to create the venv.
    #[arg(long, default_value = "python3")]
    pub python: String,
}

/// Run the subcommand.
pub fn main(args: Args) -> Result<()> {
    let root = crate::workspace_root();
    let crate_dir = root.join("crates/wx-scoring");
    let reference = crate_dir.join("reference");
    let python = ensure_venv(
        &root,
        "xtask-venv",
        &reference.join("requirements.txt"),
        &args.python,
    )?;
    if args.regenerate_fixtures {
        run(Command::new(&python)
            .arg(reference.join("make_fixtures.py"))
            .arg("tests/fixtures")
            .current_dir(&crate_dir))?;
    }
    run(Command::new(&python)
        .arg(reference.join("reference_values.py"))
        .arg("tests/fixtures")
        .current_dir(&crate_dir))?;
    println!(
        "wrote {}",
        crate_dir
            .join("tests/fixtures/reference_values.json")
            .display()
    );
    Ok(())
}
