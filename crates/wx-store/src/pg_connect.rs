//! Connecting to PostgreSQL: the URL parsed once (driver settings, `sslmode`, `sslrootcert`),
//! then every connection — the migration connection and each pooled one — made through
//! tokio-postgres with rustls, so that TLS and its checks apply to all of them.

use crate::error::{StoreError, redact_url};
use crate::tls::{self, RootCerts, SslMode};
use diesel_async::AsyncPgConnection;
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq TLS parameters wx does not implement: refused rather than ignored. (`sslmode` and
/// `sslrootcert` are taken out of the URL here; every other parameter goes to tokio-postgres.)
const UNSUPPORTED_PARAMETERS: [&str; 6] = [
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcrl",
    "sslcrldir",
    "sslcompression",
];

/// A PostgreSQL database to connect to, with its TLS policy.
#[derive(Clone)]
pub(crate) struct PgTarget {
    config: tokio_postgres::Config,
    tls: Option<MakeRustlsConnect>,
    roots: Option<RootCerts>,
    shown: String,
}

impl PgTarget {
    /// Parses `postgres://…?sslmode=…&sslrootcert=…` and prepares the TLS configuration (the CA
    /// file is read here, so a wrong path fails before any connection is tried).
    pub(crate) fn parse(url: &str) -> Result<PgTarget, StoreError> {
        let shown = redact_url(url);
        let settings = |message: String| StoreError::Settings {
            url: shown.clone(),
            message,
        };
        let (base, query) = match url.split_once('?') {
            Some((base, query)) => (base, query),
            None => (url, ""),
        };
        let mut mode = SslMode::Prefer;
        let mut roots = None;
        let mut passed_on = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value);
            if UNSUPPORTED_PARAMETERS.contains(&key) {
                return Err(settings(format!(
                    "`{key}` is not supported (client certificates and CRLs are not implemented); remove it"
                )));
            }
            match key {
                "sslmode" => mode = SslMode::parse(&value).map_err(|e| settings(e.to_string()))?,
                "sslrootcert" => roots = Some(RootCerts::parse(&value)),
                _ => passed_on.push(pair),
            }
        }
        let driver_url = if passed_on.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", passed_on.join("&"))
        };
        let mut config =
            tokio_postgres::Config::from_str(&driver_url).map_err(|e| settings(format!("{e}")))?;
        let tls = match mode {
            SslMode::Disable => {
                tls::check_combination(mode, roots.as_ref())
                    .map_err(|e| settings(e.to_string()))?;
                None
            }
            _ => Some(MakeRustlsConnect::new(
                tls::client_config(mode, roots.as_ref()).map_err(|e| settings(e.to_string()))?,
            )),
        };
        config.ssl_mode(match mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        Ok(PgTarget {
            config,
            tls,
            roots,
            shown,
        })
    }

    /// The URL without its password, for messages.
    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }

    /// Opens one connection, within `timeout`.
    pub(crate) async fn connect(&self, timeout: Duration) -> Result<AsyncPgConnection, StoreError> {
        match tokio::time::timeout(timeout, self.connect_unbounded()).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Connect {
                url: self.shown.clone(),
                message: format!("no answer within {} s", timeout.as_secs_f64()),
            }),
        }
    }

    async fn connect_unbounded(&self) -> Result<AsyncPgConnection, StoreError> {
        let connected = match &self.tls {
            None => match self.config.connect(tokio_postgres::NoTls).await {
                Ok((client, connection)) => {
                    AsyncPgConnection::try_from_client_and_connection(client, connection).await
                }
                Err(e) => return Err(self.connect_error(&e)),
            },
            Some(tls) => match self.config.connect(tls.clone()).await {
                Ok((client, connection)) => {
                    AsyncPgConnection::try_from_client_and_connection(client, connection).await
                }
                Err(e) => return Err(self.connect_error(&e)),
            },
        };
        connected.map_err(|e| StoreError::Connect {
            url: self.shown.clone(),
            message: e.to_string(),
        })
    }

    /// Sorts a connection failure: a missing database, a TLS problem, or an unreachable server.
    fn connect_error(&self, e: &tokio_postgres::Error) -> StoreError {
        let url = self.shown.clone();
        if e.code() == Some(&SqlState::INVALID_CATALOG_NAME) {
            let name = self.config.get_dbname().unwrap_or("(default)");
            return StoreError::DatabaseMissing {
                url,
                message: format!(
                    "database `{name}` does not exist on the server; create it (CREATE DATABASE {name}) or fix the name in the URL"
                ),
            };
        }
        let host = self
            .config
            .get_hosts()
            .iter()
            .find_map(|h| match h {
                tokio_postgres::config::Host::Tcp(name) => Some(name.clone()),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(_) => None,
            })
            .unwrap_or_default();
        if let Some(message) = tls::explain_handshake_failure(e, &host, self.roots.as_ref()) {
            return StoreError::Tls { url, message };
        }
        let text = error_chain(e);
        if text.contains("server does not support TLS") {
            return StoreError::Tls {
                url,
                message: "the server does not offer TLS (ssl = off): enable ssl on the server, or use sslmode=prefer or disable".to_owned(),
            };
        }
        StoreError::Connect { url, message: text }
    }
}

/// The error and its causes, `: `-separated, without repeats.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

/// Decodes `%XX` escapes of a query value (paths with spaces, `%2F`).
fn percent_decode(value: &str) -> String {
    percent_encoding::percent_decode_str(value)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_taken_out_of_the_driver_url() {
        let t = PgTarget::parse(
            "postgres://wx:pw@db.example:5433/wx?application_name=wx&sslmode=require",
        )
        .unwrap();
        assert_eq!(t.config.get_dbname(), Some("wx"));
        assert_eq!(t.config.get_application_name(), Some("wx"));
        assert_eq!(
            t.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        assert!(t.tls.is_some());
        assert!(!t.shown().contains("pw"));
        let plain = PgTarget::parse("postgres://wx@db/wx?sslmode=disable").unwrap();
        assert!(plain.tls.is_none());
        let default = PgTarget::parse("postgres://wx@db/wx").unwrap();
        assert_eq!(
            default.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Prefer
        );
    }

    #[test]
    fn bad_tls_settings_are_settings_errors() {
        for (url, expected) in [
            ("postgres://db/wx?sslmode=verify-full", "sslrootcert"),
            ("postgres://db/wx?sslmode=maybe", "unknown sslmode"),
            ("postgres://db/wx?sslcert=/c.pem", "not supported"),
            (
                "postgres://db/wx?sslmode=verify-ca&sslrootcert=%2Fnonexistent%2Fca.pem",
                "/nonexistent/ca.pem",
            ),
        ] {
            let e = PgTarget::parse(url).err().expect(url);
            assert!(matches!(e, StoreError::Settings { .. }), "{url}: {e:?}");
            assert!(e.to_string().contains(expected), "{url}: {e}");
        }
    }

    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(percent_decode("%2Fetc%2Fwx%20ca.pem"), "/etc/wx ca.pem");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("a%zz"), "a%zz");
    }
}
