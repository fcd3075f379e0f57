//! The wx validator as a library: the daemon and its operator endpoints, the registry import,
//! the runs, the status and the report of a run, the retention (`prune`), the chain weights,
//! simulated deployments (`simulate`), the demo and the end-to-end benchmark, so that the binary stays thin and the
//! end-to-end tests and the demo run the very
//! same code. (Logging, exit codes and configuration loading are `wx-cli`'s, shared with
//! `wx-step`.)

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod config_show;
pub mod daemon;
pub mod demo;
pub mod e2e_bench;
pub mod miners;
pub mod operator;
pub mod prune;
pub mod report;
pub mod runs;
pub mod simulate;
pub mod simulation;
pub mod status;
pub mod weights;
