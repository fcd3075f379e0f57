//! [`TransportError`]: why a fetch failed, naming the store and the key, never the token.

use std::time::Duration;

use wx_model::ErrorKind;

use super::guard::AddressRefused;
use super::token::InvalidToken;

/// A failed transport operation. Every message names the store (its URL without query string
/// or credentials) and the key, and says what to do next; none contains a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The store URL cannot be used (bad syntax, scheme, credentials or query in it).
    #[error("store URL {url} is not usable: {reason}")]
    InvalidUrl {
        /// The URL, sanitized.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The access token cannot be sent.
    #[error(transparent)]
    InvalidToken(#[from] InvalidToken),
    /// The HTTP client or object store could not be built.
    #[error("store {store}: cannot build the client: {detail}")]
    Client {
        /// The store.
        store: String,
        /// Why.
        detail: String,
    },
    /// The key is not a valid relative object path.
    #[error("store {store}: key {key:?} is not a valid relative object path")]
    InvalidKey {
        /// The store.
        store: String,
        /// The key (sanitized).
        key: String,
    },
    /// The SSRF guard refused the address of the store's host.
    #[error("store {store}, key {key}: {refused}")]
    Forbidden {
        /// The store.
        store: String,
        /// The key being fetched.
        key: String,
        /// The refused address and why.
        refused: AddressRefused,
    },
    /// The server answered with a redirect; redirects are never followed for miner stores.
    #[error(
        "store {store}, key {key}: the server answered HTTP {status} (redirect); redirects are never followed, the store must serve the key itself"
    )]
    Redirect {
        /// The store.
        store: String,
        /// The key.
        key: String,
        /// The 3xx status.
        status: u16,
    },
    /// 401 or 403: the token was refused.
    #[error(
        "store {store}, key {key}: HTTP {status}, the access token was refused; request a fresh token from the miner"
    )]
    Unauthorized {
        /// The store.
        store: String,
        /// The key.
        key: String,
        /// 401 or 403.
        status: u16,
    },
    /// 404.
    #[error("store {store}, key {key}: not found (HTTP 404)")]
    NotFound {
        /// The store.
        store: String,
        /// The key.
        key: String,
    },
    /// Any other non-success status (after the bounded retries for 5xx).
    #[error(
        "store {store}, key {key}: HTTP {status} (after the configured retries for server errors)"
    )]
    Status {
        /// The store.
        store: String,
        /// The key.
        key: String,
        /// The status code.
        status: u16,
    },
    /// A connect, read or whole-fetch timeout.
    #[error("store {store}, key {key}: timed out{}", after.map(|d| format!(" after {:.1} s", d.as_secs_f64())).unwrap_or_default())]
    Timeout {
        /// The store.
        store: String,
        /// The key.
        key: String,
        /// The deadline that expired, when it was the whole-fetch deadline.
        after: Option<Duration>,
    },
    /// The body arrived slower than the minimum throughput over a whole window
    /// ([`super::ThroughputRule`]); the download was aborted. The miner's failure: its store
    /// must serve at least the minimum rate.
    #[error(
        "store {store}, key {key}: too slow: {bytes_per_second} bytes/s, below the minimum {minimum} bytes/s (measured over {window_seconds} s); download aborted, the store must be served faster"
    )]
    TooSlow {
        /// The store.
        store: String,
        /// The key.
        key: String,
        /// The rate measured over the window that failed.
        bytes_per_second: u64,
        /// The configured minimum.
        minimum: u64,
        /// The window's length, seconds.
        window_seconds: u64,
    },
    /// Connecting failed or the connection broke before a response.
    #[error("store {store}, key {key}: connection failed: {detail}")]
    Connect {
        /// The store.
        store: String,
        /// The key.
        key: String,
        /// The underlying error, sanitized.
        detail: String,
    },
    /// The body ended before its declared length.
    #[error(
        "store {store}, key {key}: body truncated, received {received} of {declared} declared bytes"
    )]
    Truncated {
        /// The store.
        store: String,
        /// The key.
        key: String,
        /// Bytes received before the body ended or broke.
        received: u64,
        /// `Content-Length`.
        declared: u64,
    },
    /// The object is larger than allowed for this key; the download was aborted.
    #[error(
        "store {store}, key {key}: object exceeds the size limit of {limit} bytes ({}); download aborted",
        match declared { Some(d) => format!("declared {d} bytes"), None => format!("more than {received} bytes received") }
    )]
    TooLarge {
        /// The store.
        store: String,
        /// The key.
        key: String,
        /// The limit for this key.
        limit: u64,
        /// The size the server declared, when that alone exceeded the limit.
        declared: Option<u64>,
        /// Bytes received before aborting.
        received: u64,
    },
    /// The store's byte budget is used up.
    #[error(
        "store {store}, key {key}: the store's byte budget of {budget} bytes is exhausted ({used} bytes fetched so far); the store is larger than any valid forecast"
    )]
    BudgetExceeded {
        /// The store.
        store: String,
        /// The key that would exceed the budget.
        key: String,
        /// The budget.
        budget: u64,
        /// Bytes fetched before this key.
        used: u64,
    },
    /// An operation this store handle never performs (listing or writing a miner store).
    #[error("store {store}: {operation} is not allowed on this store")]
    NotAllowed {
        /// The store.
        store: String,
        /// The refused operation.
        operation: String,
    },
    /// Anything else, sanitized.
    #[error("store {store}, key {key}: {detail}")]
    Other {
        /// The store.
        store: String,
        /// The key.
        key: String,
        /// What happened, sanitized.
        detail: String,
    },
}

impl TransportError {
    /// The coarse kind, for error_json and metrics.
    pub fn kind(&self) -> ErrorKind {
        match self {
            TransportError::InvalidUrl { .. } | TransportError::InvalidKey { .. } => {
                ErrorKind::Format
            }
            TransportError::InvalidToken(_) | TransportError::Unauthorized { .. } => {
                ErrorKind::Unauthorized
            }
            TransportError::Client { .. } => ErrorKind::Internal,
            TransportError::Forbidden { .. }
            | TransportError::Redirect { .. }
            | TransportError::NotAllowed { .. } => ErrorKind::Forbidden,
            TransportError::NotFound { .. } => ErrorKind::Format,
            TransportError::Status { .. }
            | TransportError::Connect { .. }
            | TransportError::Truncated { .. }
            | TransportError::Other { .. } => ErrorKind::Network,
            TransportError::Timeout { .. } | TransportError::TooSlow { .. } => ErrorKind::Timeout,
            TransportError::TooLarge { .. } | TransportError::BudgetExceeded { .. } => {
                ErrorKind::TooLarge
            }
        }
    }

    /// Whether retrying later could help (network trouble, 5xx, timeouts), as opposed to a
    /// definite answer (404, 401, too large, forbidden).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            TransportError::Status { .. }
                | TransportError::Connect { .. }
                | TransportError::Timeout { .. }
                | TransportError::TooSlow { .. }
                | TransportError::Truncated { .. }
        )
    }
}
