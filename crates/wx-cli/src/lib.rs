//! What `wx-validator` and `wx-step` share as command-line programs, so that both behave the
//! same for an operator:
//!
//! - [`exit`]: the documented exit codes, the classification of an error into one, and the
//!   one-line `error: …` report (secrets removed);
//! - [`logging`]: text or JSON logs on stderr, colour only on a terminal and never with
//!   `NO_COLOR`, `WX_LOG` / `RUST_LOG` filters;
//! - [`config`]: loading the configuration (file, `WX_*` variables, `--database-url`);
//! - [`allocator`]: the options both binaries give mimalloc, their global allocator.
//!
//! Output on stdout is written with `writeln!` (never `println!`): a reader that goes away
//! (`wx-validator miners list | head -1`) turns into a `BrokenPipe` error, which [`exit`]
//! treats as a normal end.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod allocator;
pub mod config;
pub mod exit;
pub mod logging;

pub use exit::{ExitStatus, Failure};
