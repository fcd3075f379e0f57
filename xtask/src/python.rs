//! Python virtual environments for the tasks that compare wx with the Python stack.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs a command; an unsuccessful exit is an error naming it.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// Creates `target/<name>` from `requirements` (once, and again whenever the pinned
/// requirements change); returns its Python interpreter.
pub fn ensure_venv(
    root: &Path,
    name: &str,
    requirements: &Path,
    base_python: &str,
) -> Result<PathBuf> {
    let venv = root.join("target").join(name);
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
        .arg(&venv))
    .context("creating a Python venv (is python3 with the venv module installed?)")?;
    run(Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "-r"])
        .arg(requirements))
    .context("installing the pinned Python packages (PyPI must be reachable)")?;
    std::fs::write(&stamp, wanted)?;
    Ok(python)
}
