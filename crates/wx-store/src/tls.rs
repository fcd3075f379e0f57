//! TLS to PostgreSQL: the `sslmode` / `sslrootcert` settings of a database URL (libpq's names
//! and meanings) turned into a rustls client configuration.
//!
//! | `sslmode`        | encrypted            | certificate checked                              |
//! |------------------|----------------------|--------------------------------------------------|
//! | `disable`        | no                   | –                                                |
//! | `prefer` (default) | if the server offers it | no                                        |
//! | `require`        | yes                  | no; with `sslrootcert`, the chain (as verify-ca) |
//! | `verify-ca`      | yes                  | chain up to a CA of `sslrootcert`                |
//! | `verify-full`    | yes                  | chain, and the certificate names the host        |
//!
//! `sslrootcert` is a PEM file of CA certificates, or `system` for the operating system's trust
//! store (which, as in libpq, requires `verify-full`).

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::path::PathBuf;
use std::sync::Arc;

/// How a connection to PostgreSQL uses TLS (libpq's `sslmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, without checking its certificate (libpq's default).
    Prefer,
    /// TLS or no connection; the certificate is checked only when a CA is given.
    Require,
    /// TLS, and the server's certificate must chain up to a CA of `sslrootcert`.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host connected to.
    VerifyFull,
}

impl SslMode {
    /// Parses libpq's names.
    pub fn parse(text: &str) -> Result<SslMode, TlsSettingsError> {
        match text {
            "disable" => Ok(SslMode::Disable),
            "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            other => Err(format!(
                "unknown sslmode `{other}`: use disable, prefer, require, verify-ca or verify-full"
            )
            .into()),
        }
    }

    /// libpq's name.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Where the trusted CA certificates come from (libpq's `sslrootcert`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCerts {
    /// A PEM file of CA certificates.
    File(PathBuf),
    /// The operating system's trust store (`sslrootcert=system`).
    System,
}

impl RootCerts {
    /// Parses the `sslrootcert` value.
    pub fn parse(text: &str) -> RootCerts {
        if text == "system" {
            RootCerts::System
        } else {
            RootCerts::File(PathBuf::from(text))
        }
    }
}

impl std::fmt::Display for RootCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RootCerts::File(path) => write!(f, "{}", path.display()),
            RootCerts::System => f.write_str("system"),
        }
    }
}

/// A `sslmode`/`sslrootcert` setting that cannot work, or a CA file that cannot be used; the
/// message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TlsSettingsError(pub String);

impl From<String> for TlsSettingsError {
    fn from(message: String) -> Self {
        TlsSettingsError(message)
    }
}

impl From<&str> for TlsSettingsError {
    fn from(message: &str) -> Self {
        TlsSettingsError(message.to_owned())
    }
}

/// Checks that `mode` and `roots` go together; the error says what to change.
pub fn check_combination(mode: SslMode, roots: Option<&RootCerts>) -> Result<(), TlsSettingsError> {
    match (mode, roots) {
        (SslMode::Disable | SslMode::Prefer, Some(_)) => Err(format!(
            "sslrootcert is not used with sslmode={}: use sslmode=verify-full (or verify-ca) to check the server's certificate, or drop sslrootcert",
            mode.as_str()
        ).into()),
        (SslMode::VerifyCa | SslMode::VerifyFull, None) => Err(format!(
            "sslmode={} needs sslrootcert=/path/to/ca.pem (the CA that signed the server's certificate) or sslrootcert=system (the operating system's trust store)",
            mode.as_str()
        ).into()),
        (SslMode::Require | SslMode::VerifyCa, Some(RootCerts::System)) => Err(format!(
            "sslrootcert=system needs sslmode=verify-full (a public CA vouches for names, so the name must be checked), got sslmode={}",
            mode.as_str()
        ).into()),
        _ => Ok(()),
    }
}

/// The rustls configuration for `mode` (not called for `Disable`). Reads the CA file.
pub fn client_config(
    mode: SslMode,
    roots: Option<&RootCerts>,
) -> Result<ClientConfig, TlsSettingsError> {
    check_combination(mode, roots)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    let verifier: Arc<dyn ServerCertVerifier> = match roots {
        None => Arc::new(AcceptAnyCertificate { provider }),
        Some(roots) => {
            let store = Arc::new(load_roots(roots)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(store, provider)
                .build()
                .map_err(|e| format!("sslrootcert {roots}: {e}"))?;
            if mode == SslMode::VerifyFull {
                webpki
            } else {
                Arc::new(ChainOnly { inner: webpki })
            }
        }
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

fn load_roots(roots: &RootCerts) -> Result<RootCertStore, TlsSettingsError> {
    let mut store = RootCertStore::empty();
    match roots {
        RootCerts::File(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("cannot read sslrootcert {}: {e}", path.display()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("sslrootcert {} is not valid PEM: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "sslrootcert {} contains no PEM certificate (-----BEGIN CERTIFICATE-----)",
                    path.display()
                )
                .into());
            }
            for cert in certs {
                store.add(cert).map_err(|e| {
                    format!("sslrootcert {}: unusable certificate: {e}", path.display())
                })?;
            }
        }
        RootCerts::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(
                    "sslrootcert=system: the operating system's trust store has no usable certificate (install ca-certificates, or give a CA file)"
                        .to_owned().into(),
                );
            }
        }
    }
    Ok(store)
}

/// Encryption without authentication (`prefer`, `require` without a CA), as libpq does: the
/// handshake signatures are still checked, the certificate is not.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `verify-ca`: the full WebPKI check except that the certificate need not name the host.
#[derive(Debug)]
struct ChainOnly {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Explains a failed TLS handshake in words an operator can act on; `None` if `error` holds no
/// rustls error.
pub fn explain_handshake_failure(
    error: &(dyn std::error::Error + 'static),
    host: &str,
    roots: Option<&RootCerts>,
) -> Option<String> {
    let tls = find_rustls_error(error)?;
    let ca = roots
        .map(|r| format!("sslrootcert={r}"))
        .unwrap_or_else(|| "sslrootcert".to_owned());
    Some(match tls {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
            "the server's certificate is not signed by a CA in {ca}: give the CA that issued the server's certificate"
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "the server's certificate is not valid for the host name `{host}`: connect with a name the certificate lists, or use sslmode=verify-ca to check the CA only"
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "the server's certificate has expired: renew it on the server".to_owned(),
        other => format!("TLS handshake failed: {other}"),
    })
}

fn find_rustls_error<'a>(
    mut error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    loop {
        if let Some(found) = error.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        // io::Error::source() skips the error it wraps: look inside it
        if let Some(found) = error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(found);
        }
        error = error.source()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_by_libpq_names() {
        for mode in [
            SslMode::Disable,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ] {
            assert_eq!(SslMode::parse(mode.as_str()), Ok(mode));
        }
        assert!(
            SslMode::parse("allow")
                .unwrap_err()
                .to_string()
                .contains("verify-full")
        );
    }

    #[test]
    fn inconsistent_settings_say_what_to_change() {
        let file = RootCerts::File("/etc/wx/ca.pem".into());
        assert!(
            check_combination(SslMode::VerifyFull, None)
                .unwrap_err()
                .to_string()
                .contains("sslrootcert=")
        );
        assert!(check_combination(SslMode::Disable, Some(&file)).is_err());
        assert!(check_combination(SslMode::Require, Some(&RootCerts::System)).is_err());
        check_combination(SslMode::Require, Some(&file)).unwrap();
        check_combination(SslMode::VerifyFull, Some(&RootCerts::System)).unwrap();
        check_combination(SslMode::Prefer, None).unwrap();
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let missing = RootCerts::File("/nonexistent/ca.pem".into());
        let e = client_config(SslMode::VerifyFull, Some(&missing))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = client_config(SslMode::VerifyFull, Some(&RootCerts::File(empty)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
    }
}
