//! Structured logs with tracing: human-readable by default, JSON lines with `--log-json`.

use tracing_subscriber::EnvFilter;

/// The log filter of a command: `quiet` without `-v`, debug with `-v`, trace with `-vv`;
/// HTTP client internals stay at warn. `RUST_LOG` overrides it.
pub fn filter(verbose: u8, quiet: &str) -> EnvFilter {
    let default = match verbose {
        0 => quiet,
        1 => "debug",
        _ => "trace",
    };
    EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default},hyper=warn,reqwest=warn,h2=warn")))
}

/// Installs the global subscriber (info by default).
pub fn init(verbose: u8, json: bool) {
    let filter = filter(verbose, "info");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
