//! [`StoreHandle`]: one opened store, with size-capped streaming reads and a byte budget.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use object_store::client::{HttpError, HttpErrorKind};
use object_store::path::Path;
use object_store::{GetOptions, GetResultPayload, ObjectStore};

use super::error::TransportError;
use super::file_range::read_file_range;
use super::guard::AddressRefused;
use super::http::{RedirectRefused, RequestRefused, UpstreamStatus, find_in_chain};
use super::limits::{SizeLimits, ThroughputRule};
use super::token::BearerToken;
use super::trusted::TrustedStorage;

/// Applies a [`ThroughputRule`] to one body: consecutive windows after the grace period.
struct ThroughputMeter {
    rule: ThroughputRule,
    /// End of the current window (`None`: no rule).
    window_end: Option<tokio::time::Instant>,
    /// Bytes received since the current window began (before the grace ends: not counted).
    in_window: u64,
}

impl ThroughputMeter {
    fn start(rule: ThroughputRule) -> ThroughputMeter {
        let window_end = rule
            .is_active()
            .then(|| tokio::time::Instant::now() + rule.grace + rule.window);
        ThroughputMeter {
            rule,
            window_end,
            in_window: 0,
        }
    }

    fn window_end(&self) -> Option<tokio::time::Instant> {
        self.window_end
    }

    fn add(&mut self, bytes: u64) {
        if let Some(end) = self.window_end
            && tokio::time::Instant::now() + self.rule.window >= end
        {
            // inside a measured window (the grace is over)
            self.in_window = self.in_window.saturating_add(bytes);
        }
    }

    /// At or after a window's end: the window's rate if it is below the minimum (`Err`),
    /// otherwise the next window begins. Before the end: nothing to judge.
    fn check(&mut self) -> Result<(), u64> {
        let Some(end) = self.window_end else {
            return Ok(());
        };
        let now = tokio::time::Instant::now();
        if now < end {
            return Ok(());
        }
        if self.in_window < self.rule.window_minimum() {
            let rate = self.in_window as f64 / self.rule.window.as_secs_f64();
            return Err(rate as u64);
        }
        self.in_window = 0;
        self.window_end = Some(now + self.rule.window);
        Ok(())
    }
}

/// Where a store lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// A local directory.
    LocalDir,
    /// A miner's HTTP(S) store (hardened, never listed).
    MinerHttp,
    /// An S3 bucket read anonymously.
    S3,
    /// A GCS bucket read anonymously.
    Gcs,
    /// A public HTTP(S) server that is not a miner (no token).
    PublicHttp,
}

/// An opened store: an `Arc<dyn ObjectStore>` plus its label for messages, size limits and a
/// byte counter shared by all clones of the handle.
#[derive(Clone)]
pub struct StoreHandle {
    store: Arc<dyn ObjectStore>,
    label: Arc<str>,
    kind: StoreKind,
    limits: SizeLimits,
    fetch_deadline: Option<Duration>,
    throughput: ThroughputRule,
    fetched: Arc<AtomicU64>,
    secret: Option<BearerToken>,
}

impl fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreHandle")
            .field("label", &self.label)
            .field("kind", &self.kind)
            .field("bytes_fetched", &self.bytes_fetched())
            .finish_non_exhaustive()
    }
}

impl StoreHandle {
    /// Wraps an object store. `label` is how messages name the store (no secrets in it).
    pub fn new(
        store: Arc<dyn ObjectStore>,
        label: impl Into<String>,
        kind: StoreKind,
        limits: SizeLimits,
        fetch_deadline: Option<Duration>,
    ) -> StoreHandle {
        StoreHandle {
            store,
            label: label.into().into(),
            kind,
            limits,
            fetch_deadline,
            throughput: ThroughputRule::OFF,
            fetched: Arc::new(AtomicU64::new(0)),
            secret: None,
        }
    }

    /// The same handle with a minimum-throughput rule on every body it streams (miner stores;
    /// see [`ThroughputRule`]).
    pub fn with_throughput(mut self, rule: ThroughputRule) -> StoreHandle {
        self.throughput = rule;
        self
    }

    /// The minimum-throughput rule of this handle ([`ThroughputRule::OFF`] unless set).
    pub fn throughput(&self) -> ThroughputRule {
        self.throughput
    }

    /// Remembers a secret that is scrubbed from any error text as a last line of defence.
    pub(crate) fn with_secret(mut self, secret: Option<BearerToken>) -> StoreHandle {
        self.secret = secret;
        self
    }

    /// The same handle reporting a different [`StoreKind`].
    pub(crate) fn with_kind(mut self, kind: StoreKind) -> StoreHandle {
        self.kind = kind;
        self
    }

    /// How messages name this store.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Where the store lives.
    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// The size limits of this handle.
    pub fn limits(&self) -> &SizeLimits {
        &self.limits
    }

    /// Bytes received through this handle (and its clones) so far.
    pub fn bytes_fetched(&self) -> u64 {
        self.fetched.load(Ordering::Relaxed)
    }

    /// The underlying object store. For a miner store it refuses listing and writes and has the
    /// guarded HTTP client, but it does not enforce size limits: read miner data through
    /// [`StoreHandle::get_limited`] or [`crate::verified::VerifiedStore`].
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.store)
    }

    /// An unverified, unbounded `zarrs` async storage over this store (trusted sources: ERA5,
    /// WB2, local mirrors); a local directory's files are read without zero-filling (see
    /// [`TrustedStorage`]). Miner stores are read through [`crate::verified::VerifiedStore`],
    /// other untrusted ones through [`super::LimitedStorage`].
    pub fn zarr_storage(&self) -> Arc<TrustedStorage> {
        Arc::new(TrustedStorage::new(
            Arc::clone(&self.store),
            self.kind == StoreKind::LocalDir,
        ))
    }

    /// Fetches `key` whole, refusing it as soon as it is known to exceed `max_bytes` (from the
    /// declared length, or while streaming) or the store's byte budget. The body is streamed
    /// into one buffer of at most `max_bytes`; nothing larger is ever buffered.
    pub async fn get_limited(&self, key: &str, max_bytes: u64) -> Result<Bytes, TransportError> {
        self.get_limited_inspect(key, max_bytes, &mut |_| {}).await
    }

    /// [`StoreHandle::get_limited`], showing every piece of the body to `inspect` as it is
    /// appended to the returned buffer (to hash it while it is still in cache). The pieces are
    /// exactly the returned bytes, in order; after an error they are meaningless.
    pub async fn get_limited_inspect(
        &self,
        key: &str,
        max_bytes: u64,
        inspect: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<Bytes, TransportError> {
        let fetch = self.fetch(key, max_bytes, inspect);
        match self.fetch_deadline {
            Some(deadline) => match tokio::time::timeout(deadline, fetch).await {
                Ok(result) => result,
                Err(_) => Err(TransportError::Timeout {
                    store: self.label.to_string(),
                    key: key.to_owned(),
                    after: Some(deadline),
                }),
            },
            None => fetch.await,
        }
    }

    fn parse_key(&self, key: &str) -> Result<Path, TransportError> {
        let invalid = || TransportError::InvalidKey {
            store: self.label.to_string(),
            key: wx_model::sanitize_message(key, &[]),
        };
        let bad_char = |c: char| c.is_control() || matches!(c, '\\' | '?' | '#' | '%');
        if key.is_empty() || key.starts_with('/') || key.contains(bad_char) {
            return Err(invalid());
        }
        let path = Path::parse(key).map_err(|_| invalid())?;
        if path.as_ref() != key {
            return Err(invalid());
        }
        Ok(path)
    }

    async fn fetch(
        &self,
        key: &str,
        max_bytes: u64,
        inspect: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<Bytes, TransportError> {
        let path = self.parse_key(key)?;
        let result = self
            .store
            .get_opts(&path, GetOptions::default())
            .await
            .map_err(|e| self.classify(key, &e, None))?;
        let declared = result.meta.size;
        if declared > max_bytes {
            return Err(TransportError::TooLarge {
                store: self.label.to_string(),
                key: key.to_owned(),
                limit: max_bytes,
                declared: Some(declared),
                received: 0,
            });
        }
        let used = self.bytes_fetched();
        if used.saturating_add(declared) > self.limits.store_budget_bytes {
            return Err(self.budget_exceeded(key, used));
        }
        let capacity = usize::try_from(declared).unwrap_or(0);
        // allocated at the first frame that is not the whole object
        let mut buffer = BytesMut::new();
        // a body that arrives as one frame of exactly the declared size is kept as it is
        let mut whole: Option<Bytes> = None;
        let mut stream = match result.payload {
            // a local file is read in one piece on the blocking pool, straight into the buffer
            // that is returned (object_store's stream zero-fills 8 MiB pieces and the loop below
            // copied them)
            GetResultPayload::File(file, path) => {
                // one byte past the declared size: a file that has grown since its size was
                // read shows it, and is refused below as larger than declared
                let range = result.range.start..result.range.end.saturating_add(1);
                futures::stream::once(async move {
                    tokio::task::spawn_blocking(move || read_file_range(&file, &path, range))
                        .await
                        .map_err(|e| object_store::Error::Generic {
                            store: "LocalFileSystem",
                            source: Box::new(e),
                        })?
                })
                .boxed()
            }
            GetResultPayload::Stream(stream) => stream,
        };
        let mut received: u64 = 0;
        let mut meter = ThroughputMeter::start(self.throughput);
        loop {
            let next = match meter.window_end() {
                Some(end) => match tokio::time::timeout_at(end, stream.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        // the window closed with the body still running: judge it now
                        meter.check().map_err(|rate| self.too_slow(key, rate))?;
                        continue;
                    }
                },
                None => stream.next().await,
            };
            let Some(frame) = next else { break };
            let frame = frame.map_err(|e| self.classify(key, &e, Some((received, declared))))?;
            let len = frame.len() as u64;
            received += len;
            meter.add(len);
            meter.check().map_err(|rate| self.too_slow(key, rate))?;
            let used = self.fetched.fetch_add(len, Ordering::Relaxed) + len;
            if received > max_bytes || received > declared {
                return Err(TransportError::TooLarge {
                    store: self.label.to_string(),
                    key: key.to_owned(),
                    limit: max_bytes.min(declared),
                    declared: None,
                    received,
                });
            }
            if used > self.limits.store_budget_bytes {
                return Err(self.budget_exceeded(key, used - len));
            }
            inspect(&frame);
            if received == declared && whole.is_none() && buffer.is_empty() {
                whole = Some(frame);
                continue;
            }
            if let Some(first) = whole.take() {
                buffer.reserve(capacity);
                buffer.extend_from_slice(&first);
            } else if buffer.is_empty() {
                buffer.reserve(capacity);
            }
            buffer.extend_from_slice(&frame);
        }
        if let Some(whole) = whole {
            return Ok(whole);
        }
        if received < declared {
            return Err(TransportError::Truncated {
                store: self.label.to_string(),
                key: key.to_owned(),
                received,
                declared,
            });
        }
        Ok(buffer.freeze())
    }

    fn too_slow(&self, key: &str, bytes_per_second: u64) -> TransportError {
        TransportError::TooSlow {
            store: self.label.to_string(),
            key: key.to_owned(),
            bytes_per_second,
            minimum: self.throughput.min_bytes_per_second,
            window_seconds: self.throughput.window.as_secs(),
        }
    }

    fn budget_exceeded(&self, key: &str, used: u64) -> TransportError {
        TransportError::BudgetExceeded {
            store: self.label.to_string(),
            key: key.to_owned(),
            budget: self.limits.store_budget_bytes,
            used,
        }
    }

    fn sanitize(&self, text: &str) -> String {
        let secrets: Vec<&str> = self.secret.iter().map(|s| s.expose_secret()).collect();
        wx_model::sanitize_message(text, &secrets)
    }

    /// Maps an `object_store` error to a [`TransportError`]. `body` is `(received, declared)`
    /// when the error happened while streaming the body.
    pub(crate) fn classify(
        &self,
        key: &str,
        error: &object_store::Error,
        body: Option<(u64, u64)>,
    ) -> TransportError {
        let store = self.label.to_string();
        let key = key.to_owned();
        let chain: &(dyn std::error::Error + 'static) = error;
        if let Some(refused) = find_in_chain::<AddressRefused>(chain) {
            return TransportError::Forbidden {
                store,
                key,
                refused: refused.clone(),
            };
        }
        if let Some(RedirectRefused(status)) = find_in_chain(chain) {
            return TransportError::Redirect {
                store,
                key,
                status: *status,
            };
        }
        if let Some(UpstreamStatus(status)) = find_in_chain(chain) {
            return match *status {
                401 | 403 => TransportError::Unauthorized {
                    store,
                    key,
                    status: *status,
                },
                404 => TransportError::NotFound { store, key },
                status => TransportError::Status { store, key, status },
            };
        }
        if let Some(RequestRefused(reason)) = find_in_chain(chain) {
            return TransportError::NotAllowed {
                store,
                operation: (*reason).to_owned(),
            };
        }
        match error {
            object_store::Error::NotFound { .. } => {
                return TransportError::NotFound { store, key };
            }
            object_store::Error::Unauthenticated { .. } => {
                return TransportError::Unauthorized {
                    store,
                    key,
                    status: 401,
                };
            }
            object_store::Error::PermissionDenied { .. } => {
                return TransportError::Unauthorized {
                    store,
                    key,
                    status: 403,
                };
            }
            object_store::Error::NotImplemented { operation, .. } => {
                return TransportError::NotAllowed {
                    store,
                    operation: operation.clone(),
                };
            }
            _ => {}
        }
        let http_kind = find_in_chain::<HttpError>(chain).map(HttpError::kind);
        if http_kind == Some(HttpErrorKind::Timeout) {
            return TransportError::Timeout {
                store,
                key,
                after: None,
            };
        }
        if let Some((received, declared)) = body
            && received < declared
        {
            return TransportError::Truncated {
                store,
                key,
                received,
                declared,
            };
        }
        let detail = self.sanitize(&error_chain_text(chain));
        match http_kind {
            Some(HttpErrorKind::Connect | HttpErrorKind::Request | HttpErrorKind::Interrupted) => {
                TransportError::Connect { store, key, detail }
            }
            _ => TransportError::Other { store, key, detail },
        }
    }
}

/// The innermost two messages of an error chain (the outer ones repeat the URL and method).
fn error_chain_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut messages = vec![error.to_string()];
    let mut current = error;
    while let Some(source) = current.source() {
        messages.push(source.to_string());
        current = source;
    }
    let n = messages.len();
    messages[n.saturating_sub(2)..].join(": ")
}
