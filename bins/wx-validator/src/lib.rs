//! The wx validator as a library: the daemon and its operator endpoints, logging, the registry
//! import, the status and the report of a run, simulated deployments and the demo, so that the
//! binary stays thin and the end-to-end tests and the demo run the very same code.
#![warn(missing_docs)]

pub mod config_show;
pub mod daemon;
pub mod demo;
pub mod logging;
pub mod miners;
pub mod operator;
pub mod report;
pub mod simulation;
pub mod status;
