//! `wx-step`: one-shot wx commands, as a library so that the binary stays thin and the tests
//! call the same code.
//!
//! - [`score`]: score a forecast store ad hoc against a truth store and a climatology, with the
//!   validator's alignment and metrics (`wx-step score`);
//! - [`run`]: re-run one miner's steps in the foreground through the daemon's pipeline and the
//!   queue's fencing (`wx-step run`);
//! - [`cli`]: the command line.

#![recursion_limit = "256"]
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod csv_out;
pub mod run;
pub mod score;
