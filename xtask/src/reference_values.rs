//! `cargo xtask reference-values`: recompute the wx-scoring cross-check values.
//!
//! Creates (once, and again whenever the pinned requirements change) a Python
//! venv under `target/xtask-venv` from `crates/wx-scoring/reference/requirements.txt`,
//! optionally regenerates the fixture fields, then runs
//! `crates/wx-scoring/reference/reference_values.py`, which writes
//! `crates/wx-scoring/tests/fixtures/reference_values.json`. The fixtures and
//! the JSON are committed, so `cargo test` never needs Python.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

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

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Create or refresh the venv; returns its Python interpreter.
fn ensure_venv(root: &Path, requirements: &Path, base_python: &str) -> Result<PathBuf> {
    let venv = root.join("target/xtask-venv");
    let python = venv.join("bin/python");
    let stamp = venv.join(".requirements.txt");
    let wanted = std::fs::read_to_string(requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(python);
    }
    eprintln!(
        "creating {} from {}",
        venv.display(),
        requirements.display()
    );
    run(Command::new(base_python)
        .args(["-m", "venv", "--clear"])
        .arg(&venv))?;
    run(Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "-r"])
        .arg(requirements))?;
    std::fs::write(&stamp, wanted)?;
    Ok(python)
}

/// Run the subcommand.
pub fn main(args: Args) -> Result<()> {
    let root = workspace_root();
    let crate_dir = root.join("crates/wx-scoring");
    let reference = crate_dir.join("reference");
    let python = ensure_venv(&root, &reference.join("requirements.txt"), &args.python)?;
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
