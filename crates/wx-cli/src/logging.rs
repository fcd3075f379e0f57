//! Logs on stderr: human-readable text or JSON lines.
//!
//! Colour (ANSI escapes) only when stderr is a terminal and `NO_COLOR` is unset or empty
//! (<https://no-color.org>), so that log files and journald get plain text. The filter is
//! `WX_LOG`, else `RUST_LOG`, else the level chosen by `-v`; HTTP client internals stay at
//! `warn` unless a filter says otherwise.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Environment variable holding a log filter (`info`, `wx_steps=debug,info`, …).
pub const LOG_FILTER_ENV: &str = "WX_LOG";
/// Environment variable that switches JSON logs on (`1`, `true`), as `--log-json` does.
pub const LOG_JSON_ENV: &str = "WX_LOG_JSON";

/// How a program logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// The level for each `-v` count: `levels[0]` without `-v`, the last one for more.
    /// `"off"` logs nothing.
    pub levels: Vec<&'static str>,
    /// Number of `-v`.
    pub verbose: u8,
    /// JSON lines instead of text.
    pub json: bool,
}

impl LogSettings {
    /// The filter: `WX_LOG`, else `RUST_LOG`, else the `-v` level.
    pub fn filter(&self) -> EnvFilter {
        let from_env = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .and_then(|v| EnvFilter::try_new(v).ok())
        };
        from_env(LOG_FILTER_ENV)
            .or_else(|| from_env("RUST_LOG"))
            .unwrap_or_else(|| {
                let index = usize::from(self.verbose).min(self.levels.len().saturating_sub(1));
                let level = self.levels.get(index).copied().unwrap_or("info");
                EnvFilter::new(format!("{level},hyper=warn,reqwest=warn,h2=warn"))
            })
    }
}

/// Whether to colour output written to a stream: only on a terminal, and not when `NO_COLOR`
/// holds a non-empty value.
pub fn use_colour(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Whether stderr gets colour in this process.
pub fn stderr_colour() -> bool {
    use_colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

/// Installs the global subscriber writing to stderr (no-op if one is installed already).
pub fn init(settings: &LogSettings) {
    init_with_writer(settings, std::io::stderr);
}

/// Installs the global subscriber writing through `writer` (e.g. one that suspends progress
/// bars); colour follows stderr.
pub fn init_with_writer<W>(settings: &LogSettings, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(settings.filter())
        .with_writer(writer);
    let _ = if settings.json {
        builder.json().with_ansi(false).try_init()
    } else {
        builder.with_ansi(stderr_colour()).try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(!use_colour(false, None), "files and pipes get no colour");
        assert!(!use_colour(true, Some(OsStr::new("1"))), "NO_COLOR wins");
        assert!(
            use_colour(true, Some(OsStr::new(""))),
            "an empty NO_COLOR is unset (no-color.org)"
        );
    }
}
