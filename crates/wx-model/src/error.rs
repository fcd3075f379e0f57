//! Sanitized step errors, as stored in `weather_forecast_steps.error_json` and mirrored into
//! `weather_forecast_stats.forecast_error_msg`.

use crate::text_enum;
use serde::{Deserialize, Serialize};

text_enum! {
    /// Who caused a failure. Miner failures count against the miner; infrastructure failures
    /// (GFS/ERA5 source down, disk full, database) do not.
    pub enum Blame ("blame") {
        /// The miner: unreachable store, bad manifest, corrupt data, wrong layout.
        Miner => "miner",
        /// Our side or an upstream data source.
        Infrastructure => "infrastructure",
    }
}

text_enum! {
    /// What kind of failure, coarse enough to count and alert on.
    pub enum ErrorKind ("error kind") {
        /// Could not connect, DNS failure, connection reset.
        Network => "network",
        /// A connect or read timed out.
        Timeout => "timeout",
        /// 401/403 from the store.
        Unauthorized => "unauthorized",
        /// The address is refused by the SSRF guard.
        Forbidden => "forbidden",
        /// Manifest hash, signature or a file hash did not verify.
        Integrity => "integrity",
        /// The store's layout, metadata or data cannot be used (missing variable, bad shape...).
        Format => "format",
        /// A response exceeded a size limit.
        TooLarge => "too_large",
        /// Too few finite points, extreme values, NaN injection.
        Quality => "quality",
        /// Truth, reference or climatology data is not available (yet).
        SourceUnavailable => "source_unavailable",
        /// Local disk or cache failure.
        Cache => "cache",
        /// Database failure.
        Database => "database",
        /// The lease was lost while the step ran (the worker stopped or stalled).
        LeaseLost => "lease_lost",
        /// The store's manifest was not frozen within the run's submission window
        /// (docs/operating.md, "Fair play").
        Late => "late",
        /// The uid no longer belongs to the hotkey the run seeded (removed, or another hotkey
        /// registered): the run stops scoring it.
        Identity => "identity",
        /// A bug or an unexpected condition in wx itself.
        Internal => "internal",
    }
}

/// A failure of one attempt of one sub-step, safe to store and show: no token, no
/// Authorization header, no URL query string, bounded length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Who caused it.
    pub blame: Blame,
    /// Human-readable, sanitized message.
    pub message: String,
}

/// Longest message kept, in characters.
pub const MAX_ERROR_MESSAGE_CHARS: usize = 1000;

impl StepError {
    /// A sanitized error. `secrets` are strings (tokens) removed wherever they appear.
    pub fn new(kind: ErrorKind, blame: Blame, message: &str, secrets: &[&str]) -> Self {
        StepError {
            kind,
            blame,
            message: sanitize_message(message, secrets),
        }
    }

    /// The error as the JSON text stored in `error_json`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("StepError serializes")
    }

    /// Whether the miner caused it.
    pub fn is_miner_fault(&self) -> bool {
        self.blame == Blame::Miner
    }
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.kind, self.blame, self.message)
    }
}

/// Removes secrets from a message: the given secret strings, `Authorization:` header values,
/// `Bearer` tokens, URL query strings and fragments, and user-info in URLs; then bounds the
/// length to [`MAX_ERROR_MESSAGE_CHARS`].
pub fn sanitize_message(message: &str, secrets: &[&str]) -> String {
    let mut s = message.to_owned();
    for secret in secrets.iter().filter(|x| x.len() >= 4) {
        s = s.replace(secret, "[redacted]");
    }
    s = redact_after_marker(&s, "authorization:");
    s = redact_after_marker(&s, "bearer ");
    s = strip_url_secrets(&s);
    if s.chars().count() > MAX_ERROR_MESSAGE_CHARS {
        let cut: String = s.chars().take(MAX_ERROR_MESSAGE_CHARS - 1).collect();
        s = format!("{cut}…");
    }
    s
}

/// Replaces the word following each case-insensitive `marker` with `[redacted]`.
fn redact_after_marker(s: &str, marker: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let mut out = String::with_capacity(s.len());
    let mut pos = 0;
    while let Some(found) = lower[pos..].find(marker) {
        let start = pos + found + marker.len();
        out.push_str(&s[pos..start]);
        // skip spaces, then a scheme word such as "Bearer", then the credential
        let rest = &s[start..];
        let trimmed = rest.trim_start();
        let mut consumed = rest.len() - trimmed.len();
        out.push_str(&rest[..consumed]);
        let word_end = |t: &str| {
            t.find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ',')
                .unwrap_or(t.len())
        };
        let first = &trimmed[..word_end(trimmed)];
        if first.eq_ignore_ascii_case("bearer") || first.eq_ignore_ascii_case("basic") {
            out.push_str(first);
            consumed += first.len();
            let after = &rest[consumed..];
            let t2 = after.trim_start();
            let spaces = after.len() - t2.len();
            out.push_str(&after[..spaces]);
            consumed += spaces + word_end(t2);
        } else {
            consumed += first.len();
        }
        out.push_str("[redacted]");
        pos = start + consumed;
    }
    out.push_str(&s[pos..]);
    out
}

/// Drops `?query` and `#fragment` parts and `user:pass@` from anything that looks like a URL.
fn strip_url_secrets(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        // copy up to and including the scheme separator
        out.push_str(&rest[..i + 3]);
        let after = &rest[i + 3..];
        let end = after
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '>' || c == ')')
            .unwrap_or(after.len());
        let url = &after[..end];
        let without_query = url.split(['?', '#']).next().unwrap_or("");
        let host_end = without_query.find('/').unwrap_or(without_query.len());
        let (authority, path) = without_query.split_at(host_end);
        let authority = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        out.push_str(authority);
        out.push_str(path);
        if without_query.len() < url.len() {
            out.push_str("?[redacted]");
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Declares an error that is a message in words (a reason an operator or a miner reads), with
/// `From<String>` and `From<&str>` so that a function's `format!`s and literals turn into it.
///
/// ```
/// wx_model::message_error! {
///     /// Why a thing could not be read.
///     pub struct ReadError;
/// }
/// let e: ReadError = "no such thing".into();
/// assert_eq!(e.to_string(), "no such thing");
/// ```
///
/// The crate that uses it must depend on `thiserror` (the derive is spelled `thiserror::Error`).
#[macro_export]
macro_rules! message_error {
    ($(#[$meta:meta])* $vis:vis struct $name:ident;) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
        #[error("{0}")]
        $vis struct $name(String);

        impl From<String> for $name {
            fn from(message: String) -> Self {
                $name(message)
            }
        }

        impl From<&str> for $name {
            fn from(message: &str) -> Self {
                $name(message.to_owned())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_headers_and_query_strings_are_removed() {
        let token = "s3cr3t-t0ken-value";
        let msg = format!(
            "GET https://user:pw@miner.example/forecasts/x.zarr/.zmetadata?token={token}&a=1 \
             failed; header Authorization: Bearer {token}; also bearer abcdef123"
        );
        let clean = sanitize_message(&msg, &[token]);
        assert!(!clean.contains(token), "{clean}");
        assert!(!clean.contains("abcdef123"), "{clean}");
        assert!(!clean.contains("pw@"), "{clean}");
        assert!(!clean.contains("a=1"), "{clean}");
        assert!(
            clean.contains("https://miner.example/forecasts/x.zarr/.zmetadata?[redacted]"),
            "{clean}"
        );
        assert!(clean.contains("failed"), "{clean}");
    }

    #[test]
    fn long_messages_are_bounded() {
        let clean = sanitize_message(&"x".repeat(10_000), &[]);
        assert_eq!(clean.chars().count(), MAX_ERROR_MESSAGE_CHARS);
    }

    #[test]
    fn error_json_round_trips() {
        let e = StepError::new(
            ErrorKind::Integrity,
            Blame::Miner,
            "hash mismatch for 2t/0.0.0",
            &[],
        );
        let back: StepError = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(back, e);
        assert!(e.to_json().contains("\"blame\":\"miner\""));
    }
}
