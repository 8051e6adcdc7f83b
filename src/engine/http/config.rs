//! What all VUs of a run share: the options and one rustls client config
//! (ring provider, ALPN `h2` + `http/1.1`, webpki roots or, with
//! `insecureSkipTLSVerify`, a verifier that accepts any certificate).
//!
//! The config is built with an explicit ring provider, never the process
//! default, so it works whatever else in the process installed one.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::plan::HttpOptions;

/// Why the client configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum HttpConfigError {
    /// The CA file is not PEM.
    #[error(
        "CA certificates: PEM section {index} is not valid PEM ({source}); expected -----BEGIN CERTIFICATE----- blocks"
    )]
    Pem {
        index: usize,
        source: rustls::pki_types::pem::Error,
    },
    /// The CA file holds no certificate.
    #[error("CA certificates: no -----BEGIN CERTIFICATE----- block found")]
    NoCertificates,
    /// A certificate could not be used as a trust anchor.
    #[error("CA certificate {index}: not usable as a trust anchor: {source}")]
    BadCertificate { index: usize, source: rustls::Error },
    /// rustls refused the protocol versions (a build without TLS support).
    #[error("TLS client configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// Shared by all VUs of a run: TLS config and options.
#[derive(Debug, Clone)]
pub struct HttpClientConfig {
    /// One config for every connection, so the provider and roots are
    /// loaded once per run.
    pub(crate) tls: Arc<ClientConfig>,
    pub(crate) opts: HttpOptions,
}

impl HttpClientConfig {
    /// Public webpki roots, or any certificate with
    /// `insecure_skip_tls_verify`.
    pub fn new(opts: &HttpOptions) -> Result<Self, HttpConfigError> {
        Self::build(
            opts,
            RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        )
    }

    /// Like [`new`](Self::new), but also trusts the CA certificates in
    /// `ca_pem` (a self-signed target, a private CA).
    pub fn with_extra_roots(opts: &HttpOptions, ca_pem: &[u8]) -> Result<Self, HttpConfigError> {
        let mut roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let mut found = 0;
        for (index, cert) in CertificateDer::pem_slice_iter(ca_pem).enumerate() {
            let cert = cert.map_err(|source| HttpConfigError::Pem { index, source })?;
            roots
                .add(cert)
                .map_err(|source| HttpConfigError::BadCertificate { index, source })?;
            found += 1;
        }
        if found == 0 {
            return Err(HttpConfigError::NoCertificates);
        }
        Self::build(opts, roots)
    }

    fn build(opts: &HttpOptions, roots: RootCertStore) -> Result<Self, HttpConfigError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let mut tls = if opts.insecure_skip_tls_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCert {
                    algorithms: provider.signature_verification_algorithms,
                }))
                .with_no_client_auth()
        } else {
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        // k6 (Go's client) does a full handshake on every new connection;
        // resumption would make `tls_handshaking` incomparable.
        tls.resumption = rustls::client::Resumption::disabled();
        Ok(HttpClientConfig {
            tls: Arc::new(tls),
            opts: opts.clone(),
        })
    }

    pub fn options(&self) -> &HttpOptions {
        &self.opts
    }

    pub fn tls_config(&self) -> &Arc<ClientConfig> {
        &self.tls
    }
}

/// `insecureSkipTLSVerify`: any certificate for any name is accepted, but
/// handshake signatures are still checked so the session is real TLS.
#[derive(Debug)]
struct AcceptAnyCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCert {
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn options() -> HttpOptions {
        HttpOptions {
            discard_response_bodies: false,
            insecure_skip_tls_verify: false,
            user_agent: "volley-test".into(),
            no_connection_reuse: false,
            http2_prior_knowledge: false,
            timeout: Duration::from_secs(5),
            max_redirects: 10,
            no_cookies_reset: false,
            expected_statuses: vec![(200, 399)],
            http_debug: None,
            hosts: Vec::new(),
            batch: crate::plan::DEFAULT_BATCH,
            batch_per_host: crate::plan::DEFAULT_BATCH_PER_HOST,
        }
    }

    #[test]
    fn offers_h2_and_http11() {
        let config = HttpClientConfig::new(&options()).unwrap();
        assert_eq!(
            config.tls.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        assert_eq!(config.options().user_agent, "volley-test");
    }

    #[test]
    fn extra_roots_accept_a_generated_ca() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let config = HttpClientConfig::with_extra_roots(&options(), cert.pem().as_bytes());
        assert!(config.is_ok(), "{config:?}");
    }

    #[test]
    fn extra_roots_reject_non_pem() {
        let err = HttpClientConfig::with_extra_roots(&options(), b"not a certificate").unwrap_err();
        assert!(matches!(err, HttpConfigError::NoCertificates), "{err}");
        let broken = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        let err = HttpClientConfig::with_extra_roots(&options(), broken).unwrap_err();
        assert!(
            matches!(err, HttpConfigError::Pem { index: 0, .. }),
            "{err}"
        );
        let garbage_der = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let err = HttpClientConfig::with_extra_roots(&options(), garbage_der).unwrap_err();
        assert!(
            matches!(err, HttpConfigError::BadCertificate { index: 0, .. }),
            "{err}"
        );
    }
}
