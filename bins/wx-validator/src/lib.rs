//! The wx validator as a library: the daemon, the registry import and the status report, so
//! that the binary stays thin and the end-to-end tests and the demo run the very same code.
#![warn(missing_docs)]

pub mod daemon;
pub mod logging;
pub mod miners;
pub mod operator;
pub mod status;
