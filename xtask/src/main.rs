//! `cargo xtask …`: project automation in Rust (the xtask pattern).
//!
//! - `cargo xtask test [-- <cargo test args>]` runs the whole test suite on both backends,
//!   with a PostgreSQL from `DATABASE_URL` or a private throwaway cluster, then the Python
//!   package's pytest suite in a throwaway virtualenv.
//! - `cargo xtask bench <queue|scoring|data|pipeline|python|era5|e2e>` runs a benchmark and prints
//!   its figures (`cargo xtask bench e2e --help` for the end-to-end one's options).
//! - `cargo xtask reference-values` recomputes wx-scoring's Python cross-check values.
//! - `cargo xtask deploy-config` regenerates `deploy/wx.example.toml`.

#![deny(unsafe_code)]

mod bench;
mod bench_e2e;
mod deploy_config;
mod postgres;
mod python;
mod python_tests;
mod reference_values;
mod test;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "wx project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every test on SQLite and PostgreSQL (DATABASE_URL, or a private cluster), then the
    /// Python package's tests (needs python3 and PyPI).
    Test {
        /// Extra arguments for `cargo test` (after `--`).
        #[arg(last = true)]
        cargo_args: Vec<String>,
    },
    /// Recompute wx-scoring's cross-check values with xskillscore/numpy (creates target/xtask-venv).
    ReferenceValues(reference_values::Args),
    /// Regenerate deploy/wx.example.toml from `wx-validator config show --defaults`.
    DeployConfig,
    /// Run a benchmark.
    Bench {
        /// Which benchmark.
        #[command(subcommand)]
        which: bench::Which,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Test { cargo_args } => test::run(&cargo_args),
        Command::Bench { which } => bench::run(which),
        Command::ReferenceValues(a) => reference_values::main(a),
        Command::DeployConfig => deploy_config::run(),
    }
}

/// The workspace root (xtask lives one level below it).
pub(crate) fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent")
        .to_path_buf()
}

/// `cargo`, as the invoking cargo named it.
pub(crate) fn cargo() -> std::process::Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.current_dir(workspace_root());
    cmd
}
