//! Project automation (`cargo xtask <command>`).

use clap::{Parser, Subcommand};

mod reference_values;

#[derive(Parser)]
#[command(name = "xtask", about = "wx project automation")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Recompute wx-scoring's cross-check values with xskillscore/numpy (creates target/xtask-venv).
    ReferenceValues(reference_values::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::ReferenceValues(a) => reference_values::main(a),
    }
}
