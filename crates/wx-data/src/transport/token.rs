//! The miner's bearer token, kept out of every log line, error, `Debug` output and panic.

use std::fmt;

/// A bearer access token for a miner store.
///
/// `Debug` and `Display` print `[redacted]`; the only way to the secret is
/// [`BearerToken::expose_secret`], used when building the `Authorization` header (which is then
/// marked sensitive so that `http`'s own `Debug` hides it too) and by callers that need to scrub
/// foreign text with [`wx_model::sanitize_message`].
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

/// A token that cannot be sent in an HTTP header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the access token is not a valid header value (empty, or contains whitespace or control characters); ask the miner for a new token"
)]
pub struct InvalidToken;

impl BearerToken {
    /// Wraps a token; it must be non-empty visible ASCII (what a JWT or an opaque token is).
    pub fn new(token: impl Into<String>) -> Result<BearerToken, InvalidToken> {
        let token = token.into();
        let valid = !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic());
        if valid {
            Ok(BearerToken(token))
        } else {
            Err(InvalidToken)
        }
    }

    /// The secret itself. Never format it into a message.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The `Authorization: Bearer …` header value, marked sensitive.
    pub fn header_value(&self) -> http::HeaderValue {
        let mut value = http::HeaderValue::from_str(&format!("Bearer {}", self.0))
            .expect("validated as visible ASCII in BearerToken::new");
        value.set_sensitive(true);
        value
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken([redacted])")
    }
}

impl fmt::Display for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_display_and_header_debug_redact() {
        let token = BearerToken::new("s3cr3t-Token.value").unwrap();
        assert_eq!(format!("{token:?}"), "BearerToken([redacted])");
        assert_eq!(token.to_string(), "[redacted]");
        let header = token.header_value();
        assert!(header.is_sensitive());
        assert!(!format!("{header:?}").contains("s3cr3t"));
        assert_eq!(header.to_str().unwrap(), "Bearer s3cr3t-Token.value");
    }

    #[test]
    fn rejects_tokens_that_would_corrupt_a_header() {
        assert_eq!(BearerToken::new(""), Err(InvalidToken));
        assert_eq!(BearerToken::new("a b"), Err(InvalidToken));
        assert_eq!(BearerToken::new("a\r\nX-Evil: 1"), Err(InvalidToken));
        assert!(!InvalidToken.to_string().contains("X-Evil"));
    }
}
