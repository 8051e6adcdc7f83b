//! TLS for the target: a self-signed certificate generated at start and the
//! rustls server configuration that presents it.
//!
//! The certificate is its own trust anchor: clients add [`TlsIdentity::cert_pem`]
//! to their roots. It names `localhost`, `127.0.0.1` and `::1` plus any extra
//! names the user gives (a pod IP, a service name). The server offers ALPN
//! `h2` and `http/1.1`; the connection layer detects the protocol from the
//! client preface either way. The ring provider is passed explicitly, so no
//! process-wide default provider is needed.

use std::sync::Arc;

use rcgen::{CertificateParams, DnType, KeyPair};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio_rustls::TlsAcceptor;

use super::TargetError;

/// Names every target certificate carries.
const DEFAULT_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Common name of the certificate, to recognise it in a trust store.
const COMMON_NAME: &str = "Volley target";

/// How long the certificate is valid: generated at every start, so a year is
/// plenty; it starts a day in the past to tolerate clock skew.
const VALIDITY_DAYS: i64 = 365;

/// A self-signed certificate and its private key.
pub struct TlsIdentity {
    /// The certificate in PEM, for clients to trust.
    cert_pem: String,
    /// The same certificate in DER, for rustls.
    cert_der: CertificateDer<'static>,
    /// The PKCS#8 private key for `cert_der`.
    key_der: PrivatePkcs8KeyDer<'static>,
    /// The subject alternative names, defaults first, without duplicates.
    names: Vec<String>,
}

impl std::fmt::Debug for TlsIdentity {
    // The private key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// Generates a fresh ECDSA P-256 key and a self-signed certificate for
    /// `localhost`, `127.0.0.1`, `::1` and `extra_names` (DNS names or IP
    /// addresses).
    pub fn self_signed(extra_names: &[String]) -> Result<Self, TargetError> {
        let mut names: Vec<String> = DEFAULT_NAMES.iter().map(|n| (*n).to_owned()).collect();
        for name in extra_names {
            ServerName::try_from(name.as_str()).map_err(|source| TargetError::TlsName {
                name: name.clone(),
                source,
            })?;
            if !names.contains(name) {
                names.push(name.clone());
            }
        }

        let mut params = CertificateParams::new(names.clone())?;
        params
            .distinguished_name
            .push(DnType::CommonName, COMMON_NAME);
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(VALIDITY_DAYS);

        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            key_der: PrivatePkcs8KeyDer::from(key.serialize_der()),
            names,
        })
    }

    /// The certificate in PEM: add it to a client's roots to trust the target.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The names the certificate is valid for.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// A TLS acceptor presenting this certificate with ALPN `h2`, `http/1.1`.
    pub(crate) fn acceptor(&self) -> Result<TlsAcceptor, TargetError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![self.cert_der.clone()],
                PrivateKeyDer::Pkcs8(self.key_der.clone_key()),
            )?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;

    #[test]
    fn names_include_defaults_and_extras_once() {
        let extras = vec![
            "volley-target.default.svc".to_owned(),
            "10.1.2.3".to_owned(),
            "localhost".to_owned(),
        ];
        let identity = TlsIdentity::self_signed(&extras).unwrap();
        assert_eq!(
            identity.names(),
            [
                "localhost",
                "127.0.0.1",
                "::1",
                "volley-target.default.svc",
                "10.1.2.3"
            ]
        );
    }

    #[test]
    fn pem_decodes_to_the_served_certificate() {
        let identity = TlsIdentity::self_signed(&[]).unwrap();
        assert!(
            identity
                .cert_pem()
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        let der = CertificateDer::from_pem_slice(identity.cert_pem().as_bytes()).unwrap();
        assert_eq!(der, identity.cert_der);
        // The key matches the certificate: rustls checks that when building.
        identity.acceptor().unwrap();
    }

    #[test]
    fn invalid_extra_name_is_reported_with_the_name() {
        let err = TlsIdentity::self_signed(&["bad name!".to_owned()]).unwrap_err();
        match &err {
            TargetError::TlsName { name, .. } => assert_eq!(name, "bad name!"),
            other => panic!("unexpected error {other:?}"),
        }
        assert!(err.to_string().contains("bad name!"), "{err}");
    }

    #[test]
    fn debug_hides_the_key() {
        let identity = TlsIdentity::self_signed(&[]).unwrap();
        let shown = format!("{identity:?}");
        assert!(
            shown.contains("localhost") && !shown.contains("key"),
            "{shown}"
        );
    }
}
