//! Test support for wx: [`TestServer`], a static-file HTTP/1.1 server on 127.0.0.1 that stands in
//! for a miner's store server in tests, end-to-end runs and the demo.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use wx_testkit::{Fault, Faults, TestServer};
//! let server = TestServer::start("testdata/stores", Some("token-1"), Faults::new()).await?;
//! let store_url = server.url_for("miner_v2_blosc_zstd"); // http://127.0.0.1:PORT/miner_v2_blosc_zstd/
//! server.set_fault("miner_v2_blosc_zstd/2t/0.0.0", Fault::Tamper);
//! // ... fetch ...
//! assert_eq!(server.stats("miner_v2_blosc_zstd/2t/0.0.0").requests, 1);
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! * `GET`/`HEAD` of `/<relative path>` serve the file under the root directory (single
//!   `Range: bytes=a-b` supported); paths with `..`, `%`, or a backslash are refused (400);
//!   directories and missing files are 404. Other methods are 405.
//! * With a token, every request needs `Authorization: Bearer <token>`, otherwise 401;
//!   [`TestServer::start_with_auth`] can instead require an `Authorization` header that starts
//!   with a given prefix (e.g. an AWS SigV4 `Credential=<key id>/`: a stand-in for a private S3
//!   mirror that only lets signed requests through).
//! * [`Fault`]s, keyed by the relative path, can be set at start or at any time
//!   ([`TestServer::set_fault`], [`TestServer::clear_faults`]): a redirect, an oversized body, a
//!   stall before or after the headers, a truncated body, tampered bytes, replacement bytes,
//!   failing statuses then success, a fixed status, a slow body, a delayed answer; and a delay
//!   before every answer ([`TestServer::set_response_delay`]).
//! * [`TestServer::stats`] counts requests, body bytes handed to the socket and bodies the client
//!   abandoned before the end, per path.
//! * The binary `wx-test-server --root DIR [--port N] [--token T]` serves a directory the same way
//!   (benchmarks, manual checks).

#![deny(unsafe_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Empty, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// A misbehaviour for one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer `302 Found` with this `Location`.
    RedirectTo(String),
    /// Serve this many bytes of filler (with an honest `Content-Length`) instead of the file.
    Oversize {
        /// Body size.
        bytes: u64,
    },
    /// Read the request and never answer.
    StallBeforeHeaders,
    /// Send the headers (with the file's length) and then never send the body.
    StallAfterHeaders,
    /// Declare the file's full length, send only this many bytes, then close the connection.
    Truncate {
        /// Bytes actually sent.
        send: u64,
    },
    /// Serve the file with one byte changed (the middle byte XOR 0x01).
    Tamper,
    /// Serve these bytes instead of the file (which need not exist).
    Replace(Bytes),
    /// Answer with this status (empty body) for the first `times` requests, then normally.
    FailThenOk {
        /// The failing status (e.g. 500).
        status: u16,
        /// How many requests fail.
        times: u32,
    },
    /// Always answer with this status and an empty body.
    Status(u16),
    /// Answer normally, but only after this delay (a slow but valid server).
    Delay(Duration),
    /// Serve the body at this rate, in 16 KiB pieces.
    Slow {
        /// Rate.
        bytes_per_second: u64,
    },
}

/// Faults keyed by relative path (`store/2t/0.0.0`), for [`TestServer::start`].
#[derive(Debug, Clone, Default)]
pub struct Faults(HashMap<String, Fault>);

impl Faults {
    /// No faults.
    pub fn new() -> Faults {
        Faults::default()
    }

    /// Adds a fault for `path` (relative to the served root, no leading `/`).
    pub fn with(mut self, path: &str, fault: Fault) -> Faults {
        self.0.insert(normalize(path), fault);
        self
    }
}

/// What the server saw for one path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathStats {
    /// Requests received (including refused ones).
    pub requests: u64,
    /// Requests refused with 401.
    pub unauthorized: u64,
    /// Body bytes handed to the connection.
    pub body_bytes_sent: u64,
    /// Bodies dropped before their end (the client closed the connection early, or a fault cut
    /// them).
    pub bodies_abandoned: u64,
}

#[derive(Debug, Default)]
struct State {
    faults: HashMap<String, Fault>,
    response_delay: Duration,
    fail_counts: HashMap<String, u32>,
    stats: HashMap<String, PathStats>,
}

type Shared = Arc<Mutex<State>>;

fn normalize(path: &str) -> String {
    path.trim_start_matches('/').to_owned()
}

/// A running server; dropping it without [`TestServer::shutdown`] also stops it.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    state: Shared,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Serves `root` on `127.0.0.1` at a free port. `token`: the required bearer token, or
    /// `None` for no authentication.
    pub async fn start(
        root: impl Into<PathBuf>,
        token: Option<&str>,
        faults: Faults,
    ) -> io::Result<TestServer> {
        TestServer::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), root, token, faults).await
    }

    /// Serves `root` like [`TestServer::start`], requiring every request's `Authorization`
    /// header to start with `prefix` (401 otherwise).
    pub async fn start_with_auth(
        root: impl Into<PathBuf>,
        prefix: &str,
        faults: Faults,
    ) -> io::Result<TestServer> {
        TestServer::start_inner(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            root.into(),
            Auth::Prefix(prefix.to_owned()),
            faults,
        )
        .await
    }

    /// Like [`TestServer::start`] on a given address (port 0 = any free port).
    pub async fn start_on(
        addr: SocketAddr,
        root: impl Into<PathBuf>,
        token: Option<&str>,
        faults: Faults,
    ) -> io::Result<TestServer> {
        let auth = match token {
            Some(t) => Auth::Exact(format!("Bearer {t}")),
            None => Auth::None,
        };
        TestServer::start_inner(addr, root.into(), auth, faults).await
    }

    async fn start_inner(
        addr: SocketAddr,
        root: PathBuf,
        auth: Auth,
        faults: Faults,
    ) -> io::Result<TestServer> {
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} is not a directory", root.display()),
            ));
        }
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state: Shared = Arc::new(Mutex::new(State {
            faults: faults.0,
            ..State::default()
        }));
        let (stop, stopped) = watch::channel(false);
        let config = Arc::new(Config { root, auth });
        let task = tokio::spawn(accept_loop(listener, config, Arc::clone(&state), stopped));
        Ok(TestServer {
            addr,
            state,
            stop,
            task: Some(task),
        })
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// `http://127.0.0.1:PORT/<relative>/` (a store URL).
    pub fn url_for(&self, relative: &str) -> String {
        format!("http://{}/{}/", self.addr, relative.trim_matches('/'))
    }

    /// Sets (or replaces) the fault for `path`.
    pub fn set_fault(&self, path: &str, fault: Fault) {
        let mut state = self.state.lock().expect("not poisoned");
        let path = normalize(path);
        state.fail_counts.remove(&path);
        state.faults.insert(path, fault);
    }

    /// Answers every request (any path, faults included) only after `delay`: a slow but valid
    /// server, e.g. a miner whose every chunk takes seconds. `Duration::ZERO` turns it off.
    pub fn set_response_delay(&self, delay: Duration) {
        self.state.lock().expect("not poisoned").response_delay = delay;
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        let mut state = self.state.lock().expect("not poisoned");
        state.faults.clear();
        state.fail_counts.clear();
    }

    /// What the server saw for `path`.
    pub fn stats(&self, path: &str) -> PathStats {
        self.state
            .lock()
            .expect("not poisoned")
            .stats
            .get(&normalize(path))
            .copied()
            .unwrap_or_default()
    }

    /// Total requests received.
    pub fn total_requests(&self) -> u64 {
        let state = self.state.lock().expect("not poisoned");
        state.stats.values().map(|s| s.requests).sum()
    }

    /// Stops accepting, closes every connection (stalled ones too) and waits for that.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// What a request's `Authorization` header must be.
#[derive(Debug)]
enum Auth {
    None,
    Exact(String),
    Prefix(String),
}

#[derive(Debug)]
struct Config {
    root: PathBuf,
    auth: Auth,
}

async fn accept_loop(
    listener: TcpListener,
    config: Arc<Config>,
    state: Shared,
    mut stopped: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let config = Arc::clone(&config);
                let state = Arc::clone(&state);
                let mut stop = stopped.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| {
                        let config = Arc::clone(&config);
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(handle(req, &config, &state).await) }
                    });
                    let connection = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = connection => {}
                        _ = stop.changed() => {}
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

type Body = UnsyncBoxBody<Bytes, io::Error>;

fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

fn status(code: StatusCode) -> Response<Body> {
    let mut response = Response::new(empty());
    *response.status_mut() = code;
    response.headers_mut().insert(
        header::CONTENT_LENGTH,
        header::HeaderValue::from_static("0"),
    );
    response
}

/// A body stream that counts what it hands out and notices being dropped early.
struct Counted<S> {
    inner: S,
    path: String,
    state: Shared,
    expected: u64,
    sent: u64,
    finished: bool,
}

impl<S: Stream<Item = io::Result<Bytes>> + Unpin> Stream for Counted<S> {
    type Item = io::Result<Frame<Bytes>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                this.sent += bytes.len() as u64;
                let mut state = this.state.lock().expect("not poisoned");
                state
                    .stats
                    .entry(this.path.clone())
                    .or_default()
                    .body_bytes_sent += bytes.len() as u64;
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => {
                this.finished = this.sent >= this.expected;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S> Drop for Counted<S> {
    fn drop(&mut self) {
        if !self.finished {
            let mut state = self.state.lock().expect("not poisoned");
            state
                .stats
                .entry(self.path.clone())
                .or_default()
                .bodies_abandoned += 1;
        }
    }
}

fn streamed<S>(inner: S, path: &str, state: &Shared, expected: u64) -> Body
where
    S: Stream<Item = io::Result<Bytes>> + Unpin + Send + 'static,
{
    let counted = Counted {
        inner,
        path: path.to_owned(),
        state: Arc::clone(state),
        expected,
        sent: 0,
        finished: false,
    };
    BodyExt::boxed_unsync(StreamBody::new(counted))
}

const PIECE: usize = 64 * 1024;

/// `bytes` split into pieces.
fn pieces(bytes: Bytes, piece: usize) -> impl Stream<Item = io::Result<Bytes>> + Unpin {
    let mut offset = 0;
    futures::stream::poll_fn(move |_| {
        if offset >= bytes.len() {
            return Poll::Ready(None);
        }
        let end = (offset + piece).min(bytes.len());
        let out = bytes.slice(offset..end);
        offset = end;
        Poll::Ready(Some(Ok(out)))
    })
}

fn safe_relative(path: &str) -> Option<PathBuf> {
    if path.contains(['%', '\\', '\0']) {
        return None;
    }
    let mut out = PathBuf::new();
    for part in path.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return None;
        }
        out.push(part);
    }
    Some(out)
}

fn parse_range(value: &str, len: u64) -> Option<(u64, u64)> {
    let spec = value.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            (len.saturating_sub(n), len.checked_sub(1)?)
        }
        (start, "") => (start.parse().ok()?, len.checked_sub(1)?),
        (start, end) => (
            start.parse().ok()?,
            end.parse::<u64>().ok()?.min(len.checked_sub(1)?),
        ),
    };
    (start <= end && end < len).then_some((start, end))
}

async fn handle(req: Request<Incoming>, config: &Config, state: &Shared) -> Response<Body> {
    let path = normalize(req.uri().path());
    let (fault, delay) = {
        let mut s = state.lock().expect("not poisoned");
        s.stats.entry(path.clone()).or_default().requests += 1;
        (s.faults.get(&path).cloned(), s.response_delay)
    };
    let delay = match &fault {
        Some(Fault::Delay(by)) => delay + *by,
        _ => delay,
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    let refused = match &config.auth {
        Auth::None => false,
        Auth::Exact(expected) => given != Some(expected.as_bytes()),
        Auth::Prefix(prefix) => !given.is_some_and(|v| v.starts_with(prefix.as_bytes())),
    };
    if refused {
        let mut s = state.lock().expect("not poisoned");
        s.stats.entry(path.clone()).or_default().unauthorized += 1;
        return status(StatusCode::UNAUTHORIZED);
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return status(StatusCode::METHOD_NOT_ALLOWED);
    }
    let head_only = req.method() == Method::HEAD;

    // faults that do not need the file
    match &fault {
        Some(Fault::RedirectTo(location)) => {
            let mut response = status(StatusCode::FOUND);
            if let Ok(value) = header::HeaderValue::from_str(location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            return response;
        }
        Some(Fault::Status(code)) => {
            return status(
                StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            );
        }
        Some(Fault::FailThenOk {
            status: code,
            times,
        }) => {
            let mut s = state.lock().expect("not poisoned");
            let count = s.fail_counts.entry(path.clone()).or_default();
            if *count < *times {
                *count += 1;
                return status(
                    StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                );
            }
        }
        Some(Fault::StallBeforeHeaders) => {
            futures::future::pending::<()>().await;
        }
        Some(Fault::Oversize { bytes }) => {
            let total = *bytes;
            let mut remaining = total;
            let filler = Bytes::from(vec![b' '; PIECE]);
            let stream = futures::stream::poll_fn(move |_| {
                if remaining == 0 {
                    return Poll::Ready(None);
                }
                let n = remaining.min(PIECE as u64);
                remaining -= n;
                Poll::Ready(Some(Ok(filler.slice(..n as usize))))
            });
            return ok_response(
                if head_only {
                    empty()
                } else {
                    streamed(stream, &path, state, total)
                },
                total,
            );
        }
        _ => {}
    }

    let bytes = match &fault {
        Some(Fault::Replace(bytes)) => bytes.clone(),
        _ => {
            let Some(relative) = safe_relative(&path) else {
                return status(StatusCode::BAD_REQUEST);
            };
            match read_file(&config.root.join(relative)).await {
                Some(bytes) => bytes,
                None => return status(StatusCode::NOT_FOUND),
            }
        }
    };
    let bytes = match &fault {
        Some(Fault::Tamper) if !bytes.is_empty() => {
            let mut copy = bytes.to_vec();
            let middle = copy.len() / 2;
            copy[middle] ^= 0x01;
            Bytes::from(copy)
        }
        _ => bytes,
    };
    let len = bytes.len() as u64;
    if head_only {
        return ok_response(empty(), len);
    }
    match fault {
        Some(Fault::StallAfterHeaders) => {
            let stream = futures::stream::pending::<io::Result<Bytes>>();
            ok_response(streamed(stream, &path, state, len), len)
        }
        Some(Fault::Truncate { send }) => {
            // send the head and the first bytes, give the socket time to flush them, then fail
            // the body so that hyper closes the connection short of Content-Length
            let cut = bytes.slice(..(send.min(len) as usize));
            let stream = Box::pin(futures::stream::unfold(0u8, move |step| {
                let cut = cut.clone();
                async move {
                    match step {
                        0 => Some((Ok(cut), 1)),
                        1 => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            Some((
                                Err(io::Error::new(
                                    io::ErrorKind::ConnectionAborted,
                                    "truncated on purpose",
                                )),
                                2,
                            ))
                        }
                        _ => None,
                    }
                }
            }));
            ok_response(streamed(stream, &path, state, len), len)
        }
        Some(Fault::Slow { bytes_per_second }) => {
            let piece = 16 * 1024;
            let delay = Duration::from_secs_f64(piece as f64 / bytes_per_second.max(1) as f64);
            let stream = Box::pin(futures::stream::unfold(
                (bytes, 0usize),
                move |(bytes, offset)| async move {
                    if offset >= bytes.len() {
                        return None;
                    }
                    tokio::time::sleep(delay).await;
                    let end = (offset + piece).min(bytes.len());
                    Some((Ok(bytes.slice(offset..end)), (bytes, end)))
                },
            ));
            ok_response(streamed(stream, &path, state, len), len)
        }
        _ => {
            if let Some((start, end)) = req
                .headers()
                .get(header::RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_range(v, len))
            {
                let part = bytes.slice(start as usize..=end as usize);
                let part_len = part.len() as u64;
                let mut response = ok_response(
                    streamed(pieces(part, PIECE), &path, state, part_len),
                    part_len,
                );
                *response.status_mut() = StatusCode::PARTIAL_CONTENT;
                if let Ok(value) =
                    header::HeaderValue::from_str(&format!("bytes {start}-{end}/{len}"))
                {
                    response.headers_mut().insert(header::CONTENT_RANGE, value);
                }
                return response;
            }
            ok_response(streamed(pieces(bytes, PIECE), &path, state, len), len)
        }
    }
}

fn ok_response(body: Body, len: u64) -> Response<Body> {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, header::HeaderValue::from(len));
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(
        header::ACCEPT_RANGES,
        header::HeaderValue::from_static("bytes"),
    );
    response
}

async fn read_file(path: &Path) -> Option<Bytes> {
    let metadata = tokio::fs::metadata(path).await.ok()?;
    if !metadata.is_file() {
        return None;
    }
    tokio::fs::read(path).await.ok().map(Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=50-500", 100), Some((50, 99)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
    }

    #[test]
    fn unsafe_paths_are_refused() {
        assert!(safe_relative("store/2t/0.0.0").is_some());
        assert!(safe_relative("store/../etc/passwd").is_none());
        assert!(safe_relative("store//x").is_none());
        assert!(safe_relative("a%2e%2e/b").is_none());
        assert!(safe_relative("").is_none());
    }
}
