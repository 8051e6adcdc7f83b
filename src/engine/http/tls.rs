//! rustls client configurations from the plan's TLS options: the versions
//! and TLS 1.2 suites offered (`tlsVersion`, `tlsCipherSuites`), the
//! server verifier (webpki roots and extra CAs, or any certificate with
//! `insecureSkipTLSVerify`) and client certificates (`tlsAuth`).
//!
//! rustls chooses a client certificate without knowing the server's name,
//! so a certificate restricted to some `domains` gets a configuration of
//! its own, picked per connection by [`TlsConfigs::for_host`]. Among the
//! certificates a configuration holds, the first one issued by a CA the
//! server names (and signing with a scheme it accepts) is presented, as
//! Go's client does for k6.
//!
//! Every configuration is built with an explicit ring provider, never the
//! process default, so it works whatever else in the process installed one.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WantsClientCert};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, ring};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{
    ClientConfig, ConfigBuilder, DigitallySignedStruct, RootCertStore, SignatureScheme,
    SupportedCipherSuite,
};

use super::config::HttpConfigError;
use crate::plan::HttpOptions;
use crate::plan::net::{CipherSuite, TlsAuth, TlsVersion};

/// The version and suite a connection's handshake agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsInfo {
    pub version: TlsVersion,
    /// The IANA code of the cipher suite.
    pub suite: u16,
}

impl TlsInfo {
    /// From an established rustls client connection.
    pub fn of(conn: &rustls::ClientConnection) -> Option<TlsInfo> {
        let version = match conn.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_3 => TlsVersion::Tls13,
            _ => TlsVersion::Tls12,
        };
        let suite = u16::from(conn.negotiated_cipher_suite()?.suite());
        Some(TlsInfo { version, suite })
    }

    /// The suite's name as k6 (Go's `tls.CipherSuiteName`) writes it.
    pub fn suite_name(&self) -> &'static str {
        match self.suite {
            0x1301 => "TLS_AES_128_GCM_SHA256",
            0x1302 => "TLS_AES_256_GCM_SHA384",
            0x1303 => "TLS_CHACHA20_POLY1305_SHA256",
            0xc02b => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            0xc02c => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            0xcca9 => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            0xc02f => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            0xc030 => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            0xcca8 => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            _ => "unknown",
        }
    }
}

/// The configurations of a run: one for hosts no `tlsAuth` domain names,
/// one per `tlsAuth` entry with domains.
#[derive(Debug, Clone)]
pub struct TlsConfigs {
    default: Arc<ClientConfig>,
    /// Index into `tlsAuth`, and the configuration presenting that entry.
    by_domain: Vec<(usize, Arc<ClientConfig>)>,
    auth: Vec<TlsAuth>,
}

impl TlsConfigs {
    pub fn build(opts: &HttpOptions, roots: RootCertStore) -> Result<TlsConfigs, HttpConfigError> {
        let provider = Arc::new(provider(opts));
        let net = &opts.net;
        let keys = net
            .tls_auth
            .iter()
            .enumerate()
            .map(|(i, a)| certified_key(i, a, &provider))
            .collect::<Result<Vec<_>, _>>()?;
        // Certificates without domains go to any host that asks.
        let anywhere: Vec<Arc<CertifiedKey>> = net
            .tls_auth
            .iter()
            .zip(&keys)
            .filter(|(a, _)| a.domains.is_empty())
            .map(|(_, k)| Arc::clone(k))
            .collect();
        let roots = Arc::new(roots);
        let one = |certs: Vec<Arc<CertifiedKey>>| -> Result<Arc<ClientConfig>, HttpConfigError> {
            let builder = verifier(opts, &provider, Arc::clone(&roots))?;
            let mut tls = if certs.is_empty() {
                builder.with_no_client_auth()
            } else {
                builder.with_client_cert_resolver(Arc::new(ClientCerts { certs }))
            };
            tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            // k6 (Go's client) does a full handshake on every new
            // connection; resumption would make `tls_handshaking`
            // incomparable.
            tls.resumption = rustls::client::Resumption::disabled();
            Ok(Arc::new(tls))
        };
        let mut by_domain = Vec::new();
        for (i, (a, key)) in net.tls_auth.iter().zip(&keys).enumerate() {
            if !a.domains.is_empty() {
                let mut certs = vec![Arc::clone(key)];
                certs.extend(anywhere.iter().cloned());
                by_domain.push((i, one(certs)?));
            }
        }
        Ok(TlsConfigs {
            default: one(anywhere)?,
            by_domain,
            auth: net.tls_auth.clone(),
        })
    }

    /// The configuration for a connection to `host` (lower-case): the
    /// first `tlsAuth` entry whose domains name it, else the default.
    pub fn for_host(&self, host: &str) -> &Arc<ClientConfig> {
        self.by_domain
            .iter()
            .find(|(i, _)| self.auth.get(*i).is_some_and(|a| a.is_for(host)))
            .map_or(&self.default, |(_, c)| c)
    }
}

/// The ring provider, with only the TLS 1.2 suites `tlsCipherSuites`
/// names (TLS 1.3 suites are not configurable, as in Go).
fn provider(opts: &HttpOptions) -> CryptoProvider {
    let mut p = ring::default_provider();
    if let Some(wanted) = &opts.net.tls12_cipher_suites {
        p.cipher_suites.retain(|s| match s {
            SupportedCipherSuite::Tls13(_) => true,
            SupportedCipherSuite::Tls12(_) => wanted.iter().any(|w| rustls_suite(*w) == *s),
        });
    }
    p
}

fn rustls_suite(s: CipherSuite) -> SupportedCipherSuite {
    use ring::cipher_suite as c;
    match s {
        CipherSuite::EcdheEcdsaAes128Gcm => c::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        CipherSuite::EcdheEcdsaAes256Gcm => c::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        CipherSuite::EcdheEcdsaChacha20 => c::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        CipherSuite::EcdheRsaAes128Gcm => c::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        CipherSuite::EcdheRsaAes256Gcm => c::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        CipherSuite::EcdheRsaChacha20 => c::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    }
}

/// The builder up to the server verifier, with `tlsVersion`'s versions.
fn verifier(
    opts: &HttpOptions,
    provider: &Arc<CryptoProvider>,
    roots: Arc<RootCertStore>,
) -> Result<ConfigBuilder<ClientConfig, WantsClientCert>, HttpConfigError> {
    let range = opts.net.tls_versions;
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| range.offers(*v))
    .map(|(_, r)| r)
    .collect();
    let builder = ClientConfig::builder_with_provider(Arc::clone(provider))
        .with_protocol_versions(&versions)?;
    Ok(if opts.insecure_skip_tls_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert {
                algorithms: provider.signature_verification_algorithms,
            }))
    } else {
        builder.with_root_certificates(roots)
    })
}

fn certified_key(
    index: usize,
    auth: &TlsAuth,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, HttpConfigError> {
    let bad = |reason: String| HttpConfigError::ClientCertificate { index, reason };
    let chain = CertificateDer::pem_slice_iter(auth.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("cert: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(auth.key_pem.as_bytes())
        .map_err(|e| bad(format!("key: {e}")))?;
    let signer = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| bad(format!("key: {e}")))?;
    let key = CertifiedKey::new(chain, signer);
    // A key that is not the certificate's would fail every handshake.
    match key.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(e) => {
            return Err(bad(format!(
                "the key does not belong to the certificate ({e})"
            )));
        }
    }
    Ok(Arc::new(key))
}

/// Presents the first certificate the server can accept.
#[derive(Debug)]
struct ClientCerts {
    certs: Vec<Arc<CertifiedKey>>,
}

impl ResolvesClientCert for ClientCerts {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let signs = |k: &&Arc<CertifiedKey>| k.key.choose_scheme(sigschemes).is_some();
        let named = |k: &&Arc<CertifiedKey>| {
            root_hint_subjects.is_empty()
                || issuer(k)
                    .is_some_and(|name| root_hint_subjects.iter().any(|h| same_name(h, &name)))
        };
        self.certs
            .iter()
            .find(|k| signs(k) && named(k))
            .or_else(|| self.certs.iter().find(signs))
            .cloned()
    }

    fn has_certs(&self) -> bool {
        !self.certs.is_empty()
    }
}

/// The issuer name of a chain's end-entity certificate, DER.
fn issuer(key: &CertifiedKey) -> Option<Vec<u8>> {
    use x509_parser::prelude::FromDer;
    let der = key.end_entity_cert().ok()?;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der).ok()?;
    Some(cert.issuer().as_raw().to_vec())
}

/// A hint may come with or without the outer SEQUENCE of the name.
fn same_name(hint: &[u8], name: &[u8]) -> bool {
    hint == name
        || name.ends_with(hint) && name.len() - hint.len() <= 4 && name.first() == Some(&0x30)
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
