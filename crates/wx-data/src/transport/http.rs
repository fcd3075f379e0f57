//! The hardened HTTP(S) transport for miner stores.
//!
//! [`connect_miner_store`] builds an `object_store` [`HttpStore`] whose HTTP client is ours
//! ([`object_store::client::HttpService`] over `reqwest`), so that every request of the store
//! goes through the same checks:
//!
//! * only `GET`/`HEAD` to the store's own origin (scheme, host, port) leave the process: no
//!   WebDAV `PROPFIND` listing, no writes, nothing to another host;
//! * `Authorization: Bearer <token>` is added here, marked sensitive;
//! * the host is resolved by [`GuardedResolver`] and the connection goes to the vetted address
//!   only (IP-literal hosts are vetted here because they skip the resolver); no proxy is used
//!   (`HTTP_PROXY` would bypass the guard);
//! * **no redirects at all** (`redirect::Policy::none()`); a 3xx becomes
//!   [`TransportError::Redirect`]. A miner store serves its keys itself;
//! * connect, read (per socket read, so a stalled body is caught) and per-request timeouts,
//!   and a minimum throughput per body ([`ThroughputRule`], enforced while streaming);
//! * 5xx/429/408 and dropped connections are retried by `object_store` at most
//!   [`HttpStoreConfig::max_retries`] times with exponential backoff (not its default of 10);
//!   other 4xx are not retried;
//! * error-status bodies are dropped unread (a 404 with a 1 GB body costs nothing), so no
//!   miner-written text reaches our errors.
//!
//! Size limits and the byte budget are enforced while streaming, in
//! [`super::StoreHandle::get_limited`].

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http_body_util::BodyExt;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse,
    HttpResponseBody, HttpService,
};
use object_store::http::{HttpBuilder, HttpStore};
use object_store::{BackoffConfig, ClientOptions, RetryConfig};
use url::Url;

use super::error::TransportError;
use super::guard::{AddressPolicy, AddressRefused, GuardedResolver};
use super::handle::{StoreHandle, StoreKind};
use super::limits::{SizeLimits, ThroughputRule};
use super::no_list::ReadOnlyStore;
use super::token::BearerToken;

/// Settings of the hardened HTTP transport. `Default` is the production policy (public
/// addresses only, HTTPS only, certificates verified).
#[derive(Debug, Clone)]
pub struct HttpStoreConfig {
    /// Which addresses may be connected to.
    pub address_policy: AddressPolicy,
    /// Accept `http://` store URLs (tests and the demo on 127.0.0.1).
    pub allow_plain_http: bool,
    /// Accept self-signed or otherwise invalid TLS certificates. Integrity comes from the signed
    /// manifest and per-key hashes, but the token travels over this connection: keep `false`
    /// unless the deployment decides miners may use self-signed certificates.
    pub accept_invalid_certs: bool,
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    /// Longest silence on the socket (waiting for headers or for the next body bytes).
    pub read_timeout: Duration,
    /// Longest single request, headers and body.
    pub request_timeout: Duration,
    /// Longest fetch of one key including retries and backoff.
    pub fetch_deadline: Duration,
    /// Retries after a transient failure (5xx, 429, 408, connection dropped, timeout).
    pub max_retries: usize,
    /// First backoff; doubles up to 8× this.
    pub initial_backoff: Duration,
    /// Size limits and byte budget of the store handle.
    pub limits: SizeLimits,
    /// The minimum throughput of every body (docs/data.md §1.3).
    pub min_throughput: ThroughputRule,
}

impl Default for HttpStoreConfig {
    fn default() -> Self {
        HttpStoreConfig {
            address_policy: AddressPolicy::public_only(),
            allow_plain_http: false,
            accept_invalid_certs: false,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(300),
            fetch_deadline: Duration::from_secs(600),
            max_retries: 2,
            initial_backoff: Duration::from_millis(250),
            limits: SizeLimits::default(),
            min_throughput: ThroughputRule::default(),
        }
    }
}

impl HttpStoreConfig {
    /// The configuration for miners on this machine (tests, demo): loopback allowed, plain HTTP
    /// allowed, everything else as in production.
    pub fn local_testing() -> Self {
        HttpStoreConfig {
            address_policy: AddressPolicy::public_only().allow_loopback(),
            allow_plain_http: true,
            ..HttpStoreConfig::default()
        }
    }
}

/// The origin (scheme, host, port) every request must go to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    fn of(url: &Url) -> Option<Origin> {
        Some(Origin {
            scheme: url.scheme().to_owned(),
            host: url.host_str()?.to_owned(),
            port: url.port_or_known_default()?,
        })
    }
}

/// A request refused before it left the process.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("request refused: {0}")]
pub(crate) struct RequestRefused(pub(crate) &'static str);

/// A 3xx answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("redirect (HTTP {0}) refused")]
pub(crate) struct RedirectRefused(pub(crate) u16);

/// A non-success, non-redirect status; the body was dropped unread.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("HTTP {0}")]
pub(crate) struct UpstreamStatus(pub(crate) u16);

/// A transport-level failure of `reqwest`, with the URL stripped.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ClientFailure(reqwest::Error);

/// The `object_store` HTTP service for one miner store.
struct GuardedService {
    client: reqwest::Client,
    token: Option<BearerToken>,
    policy: AddressPolicy,
    origin: Origin,
}

impl fmt::Debug for GuardedService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedService")
            .field("origin", &self.origin)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

fn failure_kind(e: &reqwest::Error) -> HttpErrorKind {
    if e.is_timeout() {
        HttpErrorKind::Timeout
    } else if e.is_connect() {
        HttpErrorKind::Connect
    } else if e.is_decode() {
        HttpErrorKind::Decode
    } else {
        // request sent but the connection broke, or the body broke mid-way
        HttpErrorKind::Interrupted
    }
}

/// Finds an error of type `T` anywhere in a source chain.
pub(crate) fn find_in_chain<'a, T: std::error::Error + 'static>(
    mut error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    loop {
        if let Some(found) = error.downcast_ref::<T>() {
            return Some(found);
        }
        error = error.source()?;
    }
}

impl GuardedService {
    fn refuse(reason: &'static str) -> HttpError {
        HttpError::new(HttpErrorKind::Unknown, RequestRefused(reason))
    }

    fn check_request(&self, req: &HttpRequest) -> Result<Url, HttpError> {
        if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
            return Err(Self::refuse("only GET and HEAD are sent to miner stores"));
        }
        let url = Url::parse(&req.uri().to_string())
            .map_err(|_| Self::refuse("the request URL does not parse"))?;
        if Origin::of(&url).as_ref() != Some(&self.origin) {
            return Err(Self::refuse(
                "the request is not for the store's own origin",
            ));
        }
        if let Some(host) = url.host() {
            let literal: Option<IpAddr> = match host {
                url::Host::Ipv4(ip) => Some(ip.into()),
                url::Host::Ipv6(ip) => Some(ip.into()),
                url::Host::Domain(_) => None,
            };
            if let Some(ip) = literal {
                self.policy.check(ip).map_err(|reason| {
                    HttpError::new(
                        HttpErrorKind::Unknown,
                        AddressRefused {
                            host: self.origin.host.clone(),
                            ip,
                            reason,
                        },
                    )
                })?;
            }
        }
        Ok(url)
    }
}

#[async_trait]
impl HttpService for GuardedService {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let url = self.check_request(&req)?;
        let (parts, _body) = req.into_parts();
        let mut request = reqwest::Request::new(parts.method, url);
        *request.headers_mut() = parts.headers;
        if let Some(token) = &self.token {
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, token.header_value());
        }
        let response = match self.client.execute(request).await {
            Ok(response) => response,
            Err(e) => {
                if let Some(refused) = find_in_chain::<AddressRefused>(&e) {
                    return Err(HttpError::new(HttpErrorKind::Unknown, refused.clone()));
                }
                let kind = failure_kind(&e);
                return Err(HttpError::new(kind, ClientFailure(e.without_url())));
            }
        };
        let status = response.status();
        if status.is_redirection() {
            return Err(HttpError::new(
                HttpErrorKind::Unknown,
                RedirectRefused(status.as_u16()),
            ));
        }
        if !status.is_success() {
            let transient = status.is_server_error()
                || status == http::StatusCode::TOO_MANY_REQUESTS
                || status == http::StatusCode::REQUEST_TIMEOUT;
            let kind = if transient {
                HttpErrorKind::Request
            } else {
                HttpErrorKind::Unknown
            };
            // the body is dropped unread with the response
            return Err(HttpError::new(kind, UpstreamStatus(status.as_u16())));
        }
        let response: http::Response<reqwest::Body> = response.into();
        let (parts, body) = response.into_parts();
        let body = HttpResponseBody::new(body.map_err(|e| {
            let kind = failure_kind(&e);
            HttpError::new(kind, ClientFailure(e.without_url()))
        }));
        Ok(HttpResponse::from_parts(parts, body))
    }
}

/// Hands our prepared service to `object_store`.
#[derive(Debug)]
struct GuardedConnector(Arc<GuardedService>);

#[derive(Debug)]
struct SharedService(Arc<GuardedService>);

#[async_trait]
impl HttpService for SharedService {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        self.0.call(req).await
    }
}

impl HttpConnector for GuardedConnector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(SharedService(Arc::clone(&self.0))))
    }
}

/// A URL for messages: scheme, host, port and path; no credentials, query or fragment.
pub fn display_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// Parses and checks a store URL; returns it without a trailing `/`.
fn parse_store_url(url: &str, config: &HttpStoreConfig) -> Result<Url, TransportError> {
    let shown = || wx_model::sanitize_message(url, &[]);
    let invalid = |reason: &str| TransportError::InvalidUrl {
        url: shown(),
        reason: reason.to_owned(),
    };
    let mut parsed = Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
    match parsed.scheme() {
        "https" => {}
        "http" if config.allow_plain_http => {}
        "http" => {
            return Err(invalid(
                "plain http is not allowed for miner stores; use https",
            ));
        }
        _ => return Err(invalid("the scheme must be https")),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid(
            "credentials in the URL are not allowed; the token is sent as a header",
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid("a query string or fragment is not allowed"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the URL has no host"));
    }
    // object_store appends the key's segments to the URL's: no trailing slash, or the request
    // path would contain `//`
    let trimmed = parsed.path().trim_end_matches('/').to_owned();
    parsed.set_path(&trimmed);
    Ok(parsed)
}

/// Opens a miner store at `url` (`https://host:port/forecasts/<name>.zarr`) with the bearer
/// token and every safeguard of this module. No request is sent yet.
///
/// IP-literal hosts are checked against the address policy here already; host names are
/// checked at connect time.
pub fn connect_miner_store(
    url: &str,
    token: Option<BearerToken>,
    config: &HttpStoreConfig,
) -> Result<StoreHandle, TransportError> {
    let parsed = parse_store_url(url, config)?;
    let label = display_url(&parsed);
    let client_error = |detail: String| TransportError::Client {
        store: label.clone(),
        detail,
    };
    let origin = Origin::of(&parsed).ok_or_else(|| TransportError::InvalidUrl {
        url: label.clone(),
        reason: "no host or port".to_owned(),
    })?;
    if let Ok(ip) = origin.host.trim_matches(['[', ']']).parse::<IpAddr>() {
        config
            .address_policy
            .check(ip)
            .map_err(|reason| TransportError::Forbidden {
                store: label.clone(),
                key: String::new(),
                refused: AddressRefused {
                    host: origin.host.clone(),
                    ip,
                    reason,
                },
            })?;
    }
    let client = reqwest::Client::builder()
        .dns_resolver(GuardedResolver::new(config.address_policy.clone()))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(config.connect_timeout)
        .read_timeout(config.read_timeout)
        .timeout(config.request_timeout)
        .https_only(!config.allow_plain_http)
        .tls_danger_accept_invalid_certs(config.accept_invalid_certs)
        .user_agent(concat!("wx-data/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| client_error(e.without_url().to_string()))?;
    let service = Arc::new(GuardedService {
        client,
        token: token.clone(),
        policy: config.address_policy.clone(),
        origin,
    });
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: config.initial_backoff,
            max_backoff: config.initial_backoff * 8,
            base: 2.0,
        },
        max_retries: config.max_retries,
        retry_timeout: config.fetch_deadline,
    };
    let store: HttpStore = HttpBuilder::new()
        .with_url(parsed.as_str())
        .with_retry(retry)
        .with_client_options(ClientOptions::new().with_allow_http(config.allow_plain_http))
        .with_http_connector(GuardedConnector(service))
        .build()
        .map_err(|e| client_error(wx_model::sanitize_message(&e.to_string(), &[])))?;
    Ok(StoreHandle::new(
        Arc::new(ReadOnlyStore::new(store)),
        label,
        StoreKind::MinerHttp,
        config.limits,
        Some(config.fetch_deadline),
    )
    .with_throughput(config.min_throughput)
    .with_secret(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_are_checked() {
        let prod = HttpStoreConfig::default();
        assert!(matches!(
            parse_store_url("http://example.org/forecasts/a.zarr", &prod),
            Err(TransportError::InvalidUrl { .. })
        ));
        assert!(matches!(
            parse_store_url("ftp://example.org/a", &prod),
            Err(TransportError::InvalidUrl { .. })
        ));
        let err = parse_store_url("https://u:pw@example.org/a.zarr", &prod).unwrap_err();
        assert!(!err.to_string().contains("pw@"), "{err}");
        let err = parse_store_url("https://example.org/a.zarr?token=abcdef", &prod).unwrap_err();
        assert!(!err.to_string().contains("abcdef"), "{err}");
        let ok = parse_store_url("https://example.org:8443/forecasts/a.zarr/", &prod).unwrap();
        assert_eq!(ok.as_str(), "https://example.org:8443/forecasts/a.zarr");
        // what object_store does with it: the key's segments appended, no `//`
        for (base, expected) in [
            (
                "https://example.org/forecasts/a.zarr/",
                "https://example.org/forecasts/a.zarr/2t/0.0.0",
            ),
            ("https://example.org/", "https://example.org/2t/0.0.0"),
            ("https://example.org", "https://example.org/2t/0.0.0"),
        ] {
            let mut url = parse_store_url(base, &prod).unwrap();
            url.path_segments_mut().unwrap().extend(["2t", "0.0.0"]);
            assert_eq!(url.as_str(), expected);
        }
    }

    #[test]
    fn literal_private_hosts_are_refused_at_build_time() {
        let prod = HttpStoreConfig::default();
        for url in [
            "https://127.0.0.1/a.zarr",
            "https://169.254.169.254/latest/",
            "https://[::1]:8443/a.zarr",
            "https://[::ffff:10.0.0.1]/a.zarr",
        ] {
            let err = connect_miner_store(url, None, &prod).unwrap_err();
            assert!(
                matches!(err, TransportError::Forbidden { .. }),
                "{url}: {err}"
            );
        }
        let local = HttpStoreConfig::local_testing();
        assert!(connect_miner_store("http://127.0.0.1:9/a.zarr", None, &local).is_ok());
    }
}
