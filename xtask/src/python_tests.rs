//! The Python package's tests (`crates/wx-scoring-py`): a throwaway virtualenv under
//! `target/py-test-venv` with the pinned test requirements (maturin, numpy, xarray, pytest, …
//! from the package registry), the package built and installed into it by
//! `pip install ./crates/wx-scoring-py` (maturin as the build backend, release profile, the
//! workspace's target directory), then its pytest suite. Python is required: a machine without
//! it fails here with a message saying what to install, it never skips.

use crate::python::{ensure_venv, run};
use anyhow::{Context, Result, bail};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Wall time of each phase, for the CI budget.
pub struct Timings {
    /// Creating or refreshing the virtualenv.
    pub venv: Duration,
    /// Building and installing the package.
    pub install: Duration,
    /// The pytest suite.
    pub pytest: Duration,
}

/// The interpreter the venv is made from: `WX_PYTHON`, else `python3`; checked to run.
pub fn base_python() -> Result<String> {
    usable_python(std::env::var("WX_PYTHON").unwrap_or_else(|_| "python3".to_owned()))
}

/// `python` if it runs and is recent enough, else an error that says what to install.
fn usable_python(python: String) -> Result<String> {
    let ok = Command::new(&python)
        .args(["-c", "import sys, venv; assert sys.version_info >= (3, 10)"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        bail!(
            "the wx-scoring-py tests need Python >= 3.10 with the venv module, and `{python}` \
             is missing or unusable: install it (e.g. `apt-get install python3 python3-venv`) \
             or point WX_PYTHON at one"
        );
    }
    Ok(python)
}

/// The venv's interpreter with the package installed, and a `PATH` that starts with the
/// venv's `bin` (maturin's build hook looks for the `maturin` executable there).
pub struct Installed {
    /// The venv's `python`.
    pub python: PathBuf,
    /// `PATH` for commands run in the venv.
    pub path: OsString,
}

/// Creates the venv (once per requirements change) and builds the package into it with
/// `pip install ./crates/wx-scoring-py`; returns it and how long each part took.
pub fn install(root: &Path) -> Result<(Installed, Duration, Duration)> {
    let base = base_python()?;
    let crate_dir = root.join("crates/wx-scoring-py");
    let start = Instant::now();
    let python = ensure_venv(
        root,
        "py-test-venv",
        &crate_dir.join("tests/requirements.txt"),
        &base,
    )?;
    let venv_bin = python.parent().context("the venv's bin directory")?;
    let path = std::env::join_paths(std::iter::once(venv_bin.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))?;
    let venv = start.elapsed();

    let start = Instant::now();
    eprintln!("xtask: pip install ./crates/wx-scoring-py (maturin, release)");
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-build-isolation",
            "--no-deps",
            "--force-reinstall",
        ])
        .arg(&crate_dir)
        .env("PATH", &path)
        .current_dir(root))
    .context("building the Python package (needs the Rust toolchain and maturin in the venv)")?;
    Ok((Installed { python, path }, venv, start.elapsed()))
}

/// Builds the package into the venv and runs its tests. The Rust executables the tests
/// compare with (wx-step, the Rust reference example) are those `cargo test --workspace` built,
/// handed to pytest so that it compiles nothing again.
pub fn run_suite(root: &Path) -> Result<Timings> {
    let crate_dir = root.join("crates/wx-scoring-py");
    let (Installed { python, path }, venv, install) = install(root)?;
    let start = Instant::now();
    let target = root.join("target/debug");
    let mut pytest = Command::new(&python);
    pytest
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(crate_dir.join("tests"))
        .env("PATH", &path)
        .current_dir(root);
    for (var, exe) in [
        ("WX_STEP_BIN", target.join("wx-step")),
        (
            "WX_RUST_REFERENCE_BIN",
            target.join("examples/rust_reference"),
        ),
    ] {
        if exe.is_file() {
            pytest.env(var, exe);
        }
    }
    run(&mut pytest).context("the wx-scoring-py pytest suite failed")?;
    Ok(Timings {
        venv,
        install,
        pytest: start.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::usable_python;

    #[test]
    fn a_missing_python_is_an_error_that_says_what_to_install() {
        let err = usable_python("/nonexistent/python3".to_owned()).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("/nonexistent/python3"), "{message}");
        assert!(message.contains("apt-get install python3"), "{message}");
        assert!(message.contains("WX_PYTHON"), "{message}");
    }
}
