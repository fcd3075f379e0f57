//! Exit codes, and how an error becomes one.
//!
//! The codes follow BSD `sysexits.h` where one fits, so that supervisors can tell a
//! configuration mistake (do not restart) from an outage (restart later):
//!
//! | code | meaning |
//! |------|---------|
//! | 0  | success (also when the reader of stdout went away, e.g. `… \| head -1`) |
//! | 1  | the command failed for another reason; the message says why |
//! | 2  | `wx-step` only: the command ran and its work failed (a step failed, was busy or lost its lease; `score`: every variable of every lead failed) |
//! | 64 | usage: the command line is wrong |
//! | 65 | input data refused (e.g. bad rows in a miners file; nothing was imported) |
//! | 69 | the database cannot be reached (server down, connection refused, timeout) |
//! | 70 | internal error: a bug in wx (please report it) |
//! | 78 | configuration: config file, `WX_*` variable, database URL or TLS settings, a missing database, or a schema that is not this version's (run `wx-validator migrate`) |

use std::panic::UnwindSafe;
use wx_steps::config::ConfigError;
use wx_store::StoreError;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0.
    Success,
    /// 1: failed for a reason the other codes do not cover.
    Failure,
    /// 2: the work ran and failed (`wx-step`).
    WorkFailed,
    /// 64: bad command line.
    Usage,
    /// 65: input data refused.
    DataRefused,
    /// 69: the database cannot be reached.
    DatabaseUnavailable,
    /// 70: a bug.
    Internal,
    /// 78: the configuration (or the database it names) is wrong.
    Config,
}

impl ExitStatus {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::WorkFailed => 2,
            ExitStatus::Usage => 64,
            ExitStatus::DataRefused => 65,
            ExitStatus::DatabaseUnavailable => 69,
            ExitStatus::Internal => 70,
            ExitStatus::Config => 78,
        }
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> Self {
        std::process::ExitCode::from(status.code())
    }
}

/// The exit codes, for `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
   0  success (also when the reader of the output goes away, e.g. `| head`)
   1  failed for another reason (the message says why)
   2  wx-step: the work ran and failed (a step failed; score: nothing could be scored)
  64  usage: the command line is wrong
  65  input data refused (e.g. bad rows in a miners file; nothing was imported)
  69  the database cannot be reached
  70  internal error: a bug in wx (please report it)
  78  configuration: config file, WX_* variable, database URL or TLS settings, missing
      database, or a schema that is not this version's (run `wx-validator migrate`)";

/// An error that ends the program with a given status (for outcomes no library error type
/// carries, e.g. refused import rows).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// The exit status.
    pub status: ExitStatus,
    /// What went wrong and what to do.
    pub message: String,
}

impl Failure {
    /// A failure with `status`.
    pub fn new(status: ExitStatus, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
        }
    }
}

fn store_status(e: &StoreError) -> ExitStatus {
    match e {
        StoreError::Connect { .. } | StoreError::Pool(_) => ExitStatus::DatabaseUnavailable,
        StoreError::UnsupportedUrl(_)
        | StoreError::Settings { .. }
        | StoreError::Tls { .. }
        | StoreError::DatabaseMissing { .. }
        | StoreError::NotMigrated { .. }
        | StoreError::SchemaBehind { .. }
        | StoreError::SchemaAhead { .. } => ExitStatus::Config,
        StoreError::Invalid(_) => ExitStatus::DataRefused,
        StoreError::NotFound(_) => ExitStatus::Failure,
        e if e.is_transient() => ExitStatus::DatabaseUnavailable,
        StoreError::Migration { .. } => ExitStatus::Failure,
        StoreError::Query(_) | StoreError::Corrupt { .. } => ExitStatus::Internal,
    }
}

/// The exit status an error calls for: the first error in its chain that says (a [`Failure`],
/// a store or configuration error, a closed stdout); [`ExitStatus::Failure`] otherwise.
pub fn classify(error: &anyhow::Error) -> ExitStatus {
    for e in error.chain() {
        if let Some(f) = e.downcast_ref::<Failure>() {
            return f.status;
        }
        if let Some(s) = e.downcast_ref::<StoreError>() {
            return store_status(s);
        }
        if e.downcast_ref::<ConfigError>().is_some() {
            return ExitStatus::Config;
        }
        if e.downcast_ref::<clap::Error>().is_some() {
            return ExitStatus::Usage;
        }
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        {
            return ExitStatus::Success;
        }
    }
    ExitStatus::Failure
}

/// The error and its causes on one line (`outer: inner: …`, repeats dropped), with every
/// secret replaced by `[redacted]`.
pub fn one_line(error: &anyhow::Error, secrets: &[&str]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in error.chain() {
        let text = e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    let mut line = parts.join(": ");
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        line = line.replace(secret, "[redacted]");
    }
    line
}

/// Parses the command line; help and version end the program with 0, a usage error with 64
/// (clap's own default is 2, which `wx-step` uses for failed work).
pub fn parse_args<C: clap::Parser>() -> Result<C, std::process::ExitCode> {
    C::try_parse().map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            ExitStatus::Usage.into()
        } else {
            ExitStatus::Success.into()
        }
    })
}

/// Runs a command's body and turns its outcome into the exit code: an error is printed as one
/// `error: …` line on stderr (secrets removed) and classified; a panic is an internal error.
pub fn run_main<F>(secrets: &[&str], body: F) -> std::process::ExitCode
where
    F: FnOnce() -> anyhow::Result<ExitStatus> + UnwindSafe,
{
    match std::panic::catch_unwind(body) {
        Ok(Ok(status)) => status.into(),
        Ok(Err(error)) => {
            let status = classify(&error);
            if status != ExitStatus::Success {
                eprintln!("error: {}", one_line(&error, secrets));
            }
            status.into()
        }
        Err(_) => {
            eprintln!(
                "error: internal error: wx stopped on a bug (the panic message above says where); please report it"
            );
            ExitStatus::Internal.into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrapped(inner: impl std::error::Error + Send + Sync + 'static) -> anyhow::Error {
        anyhow::Error::new(inner).context("while doing something")
    }

    #[test]
    fn errors_map_to_their_codes_through_context() {
        let cases: Vec<(anyhow::Error, u8)> = vec![
            (
                wrapped(StoreError::Connect {
                    url: "u".into(),
                    message: "refused".into(),
                }),
                69,
            ),
            (
                wrapped(StoreError::SchemaBehind {
                    url: "u".into(),
                    pending: vec!["1".into()],
                }),
                78,
            ),
            (wrapped(ConfigError::Invalid("x".into())), 78),
            (
                wrapped(Failure::new(ExitStatus::DataRefused, "bad rows")),
                65,
            ),
            (
                wrapped(std::io::Error::from(std::io::ErrorKind::BrokenPipe)),
                0,
            ),
            (anyhow::Error::new(std::io::Error::other("disk")), 1),
        ];
        for (error, code) in cases {
            assert_eq!(classify(&error).code(), code, "{error:#}");
        }
    }

    #[test]
    fn one_line_joins_causes_and_removes_secrets() {
        let e = wrapped(std::io::Error::other("token s3cret\nrefused"));
        assert_eq!(
            one_line(&e, &["s3cret"]),
            "while doing something: token [redacted] refused"
        );
    }
}
