//! TLS to PostgreSQL with libpq's sslmode meanings, on rustls + ring:
//! prefer/require encrypt without verifying the certificate, verify-ca checks
//! the chain against sslrootcert, verify-full also the host name. Never
//! weakens verify-ca / verify-full to "accept anything".

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::inventory::SslMode;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// `sslmode=require`/`prefer`: encrypt, accept any certificate (libpq's
/// meaning). Handshake signatures are still checked, so the session key
/// belongs to whoever holds the certificate's key.
#[derive(Debug)]
struct AcceptAnyCert {
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// `sslmode=verify-ca`: the full WebPKI chain check against the CA, except
/// that a certificate for another host name is accepted.
#[derive(Debug)]
struct VerifyChainOnly {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for VerifyChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
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

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read sslrootcert '{path}': {reason}")]
    RootCert { path: String, reason: String },
    #[error("sslrootcert '{path}' holds no usable CA certificate: {reason}")]
    NoRoots { path: String, reason: String },
    #[error("sslmode '{0}' needs 'sslrootcert' (the CA certificate file)")]
    NeedsRootCert(&'static str),
    #[error("TLS setup: {0}")]
    Rustls(String),
}

fn load_roots(path: &Path) -> Result<RootCertStore, TlsSetupError> {
    let p = path.display().to_string();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsSetupError::RootCert {
            path: p.clone(),
            reason: e.to_string(),
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsSetupError::RootCert {
            path: p.clone(),
            reason: e.to_string(),
        })?;
    let mut store = RootCertStore::empty();
    let (added, ignored) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(TlsSetupError::NoRoots {
            path: p,
            reason: format!("{ignored} certificate(s) could not be parsed"),
        });
    }
    Ok(store)
}

/// The TLS connector for `mode` (also built for `disable`, where it is never used).
pub fn make_connector(
    mode: SslMode,
    rootcert: Option<&Path>,
) -> Result<MakeRustlsConnect, TlsSetupError> {
    let prov = provider();
    let builder = ClientConfig::builder_with_provider(prov.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsSetupError::Rustls(e.to_string()))?;
    let config = match mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert {
                algs: prov.signature_verification_algorithms,
            }))
            .with_no_client_auth(),
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let name = if mode == SslMode::VerifyCa {
                "verify-ca"
            } else {
                "verify-full"
            };
            let path = rootcert.ok_or(TlsSetupError::NeedsRootCert(name))?;
            let roots = Arc::new(load_roots(path)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, prov.clone())
                .build()
                .map_err(|e| TlsSetupError::Rustls(e.to_string()))?;
            if mode == SslMode::VerifyFull {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(webpki)
                    .with_no_client_auth()
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(VerifyChainOnly { inner: webpki }))
                    .with_no_client_auth()
            }
        }
    };
    Ok(MakeRustlsConnect::new(config))
}

/// tokio-postgres's sslmode for ours: prefer stays prefer, disable stays
/// disable, the rest require TLS (verification is in the connector).
pub fn pg_ssl_mode(mode: SslMode, unix_socket: bool) -> tokio_postgres::config::SslMode {
    use tokio_postgres::config::SslMode as P;
    if unix_socket {
        // PostgreSQL has no TLS on Unix sockets; libpq ignores sslmode there.
        return P::Disable;
    }
    match mode {
        SslMode::Disable => P::Disable,
        SslMode::Prefer => P::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => P::Require,
    }
}
