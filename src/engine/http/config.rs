//! What all VUs of a run share: the options and the rustls client
//! configurations (built in [`super::tls`]).

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

use super::proxy::Proxies;
use super::tls::TlsConfigs;
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
    /// `HTTP_PROXY`/`HTTPS_PROXY` or the `proxy` option is unusable.
    #[error(transparent)]
    Proxy(#[from] super::proxy::ProxyError),
    /// A `tlsAuth` certificate or key that rustls cannot use.
    #[error("tlsAuth[{index}]: {reason}")]
    ClientCertificate { index: usize, reason: String },
}

/// Shared by all VUs of a run: TLS config and options.
#[derive(Debug, Clone)]
pub struct HttpClientConfig {
    /// Built once per run, so the provider, roots and client
    /// certificates are loaded once.
    pub(crate) tls: TlsConfigs,
    /// The `proxy` option, or the environment's proxies.
    pub(crate) proxies: Proxies,
    /// The `rps` cap, shared by every VU of the run.
    pub(crate) rps: Option<Arc<super::rps::RpsLimiter>>,
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
        Ok(HttpClientConfig {
            tls: TlsConfigs::build(opts, roots)?,
            proxies: Proxies::new(opts.net.proxy.as_ref(), |name| std::env::var(name).ok())?,
            rps: opts
                .rps
                .and_then(|r| super::rps::RpsLimiter::new(r as f64))
                .map(Arc::new),
            opts: opts.clone(),
        })
    }

    /// This process's part of the `rps` cap: `share` of it (a fleet
    /// agent's share of the load; 1 for a local run).
    pub fn with_rps_share(mut self, share: f64) -> Self {
        self.rps = self
            .opts
            .rps
            .and_then(|r| super::rps::RpsLimiter::new(r as f64 * share))
            .map(Arc::new);
        self
    }

    pub fn options(&self) -> &HttpOptions {
        &self.opts
    }

    /// The TLS configuration for a connection to `host`.
    pub fn tls_config(&self, host: &str) -> &Arc<ClientConfig> {
        self.tls.for_host(host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> HttpOptions {
        HttpOptions::for_tests()
    }

    #[test]
    fn offers_h2_and_http11() {
        let config = HttpClientConfig::new(&options()).unwrap();
        assert_eq!(
            config.tls_config("localhost").alpn_protocols,
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
