//! Agent identities (certificate chain + private key + node id) and the trust bundle (fleet CA
//! certificates), plus the PEM/X.509 inspection both need. Key material is never shown in `Debug`
//! output or errors.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::RootCertStore;
use rustls::crypto::ring as ring_provider;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::error::{CaError, Origin};
use super::files;

/// What Volley needs to know about one parsed certificate.
#[derive(Debug, Clone)]
pub(crate) struct CertInfo {
    /// Subject distinguished name, for messages.
    pub(crate) subject: String,
    /// First subject common name, which is the node id for agent certificates.
    pub(crate) common_name: Option<String>,
    /// Whether basicConstraints says CA:TRUE.
    pub(crate) is_ca: bool,
    /// End of validity, so agents can renew before it lapses.
    pub(crate) not_after: SystemTime,
}

/// Parses a DER certificate far enough to know its subject, CN, CA flag and expiry.
pub(crate) fn inspect(
    der: &CertificateDer<'_>,
    origin: &Origin,
    index: usize,
) -> Result<CertInfo, CaError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| CaError::BadCertificate {
            origin: origin.clone(),
            index,
            reason: e.to_string(),
        })?;
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    let not_after = cert.validity().not_after.timestamp();
    let not_after = if not_after >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(not_after.unsigned_abs())
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(not_after.unsigned_abs())
    };
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        common_name,
        is_ca: cert.is_ca(),
        not_after,
    })
}

/// The node id (subject CN) of a certificate, if it parses and has one. Used by the transport on
/// certificates that the TLS layer has already verified.
pub fn node_id_from_cert(der: &CertificateDer<'_>) -> Option<String> {
    inspect(der, &Origin::Memory("peer certificate"), 0)
        .ok()
        .and_then(|info| info.common_name)
}

/// Describes a PEM syntax problem without echoing any of its content (it may be a key).
fn describe_pem_error(err: &pem::Error) -> String {
    match err {
        pem::Error::MissingSectionEnd { .. } => "a PEM section has no END line".to_owned(),
        pem::Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed".to_owned(),
        pem::Error::Base64Decode(_) => "a PEM section holds invalid base64".to_owned(),
        pem::Error::Io(e) => format!("read error: {e}"),
        pem::Error::NoItemsFound => "no PEM section of the expected kind".to_owned(),
        pem::Error::SectionTooLarge => "a PEM section is larger than 256 MB".to_owned(),
        _ => "malformed PEM".to_owned(),
    }
}

/// Parses every `CERTIFICATE` block of `pem_text` (at least one) and inspects each.
pub(crate) fn parse_certs(
    pem_text: &str,
    origin: &Origin,
) -> Result<Vec<(CertificateDer<'static>, CertInfo)>, CaError> {
    let mut out = Vec::new();
    for (index, item) in CertificateDer::pem_slice_iter(pem_text.as_bytes()).enumerate() {
        let der = item.map_err(|e| CaError::BadCertificate {
            origin: origin.clone(),
            index,
            reason: describe_pem_error(&e),
        })?;
        let info = inspect(&der, origin, index)?;
        out.push((der, info));
    }
    if out.is_empty() {
        return Err(CaError::NotPem {
            origin: origin.clone(),
            expected: "CERTIFICATE",
        });
    }
    Ok(out)
}

/// Parses the first private key of `pem_text` (PKCS#8, SEC1 or PKCS#1 block).
pub(crate) fn parse_key(
    pem_text: &str,
    origin: &Origin,
) -> Result<PrivateKeyDer<'static>, CaError> {
    PrivateKeyDer::from_pem_slice(pem_text.as_bytes()).map_err(|e| match e {
        pem::Error::NoItemsFound => CaError::NotPem {
            origin: origin.clone(),
            expected: "PRIVATE KEY",
        },
        other => CaError::BadKey {
            origin: origin.clone(),
            reason: describe_pem_error(&other),
        },
    })
}

/// Checks that `key` can sign with the ring provider and belongs to the leaf `cert`.
pub(crate) fn check_key_matches(
    cert: &CertificateDer<'static>,
    key: &PrivateKeyDer<'static>,
    cert_origin: &Origin,
    key_origin: &Origin,
) -> Result<(), CaError> {
    let provider = ring_provider::default_provider();
    match rustls::sign::CertifiedKey::from_der(vec![cert.clone()], key.clone_key(), &provider) {
        Ok(_) => Ok(()),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(CaError::KeyMismatch {
                cert: cert_origin.clone(),
                key: key_origin.clone(),
            })
        }
        Err(other) => Err(CaError::BadKey {
            origin: key_origin.clone(),
            reason: other.to_string(),
        }),
    }
}

/// One agent's TLS identity: its certificate chain (leaf first), private key and node id (the
/// leaf's CN). The same certificate serves both as QUIC server and client certificate.
pub struct Identity {
    /// Node id taken from the leaf's CN: peers see this as the sender of every request.
    node_id: String,
    /// The chain as given, so it can be written back out unchanged.
    cert_chain_pem: String,
    /// The key as given, so it can be written back out unchanged.
    key_pem: String,
    /// Parsed chain handed to rustls.
    chain: Vec<CertificateDer<'static>>,
    /// Parsed key handed to rustls.
    key: PrivateKeyDer<'static>,
    /// Leaf expiry, for renewal decisions.
    not_after: SystemTime,
}

impl Identity {
    /// Builds an identity from a PEM certificate chain (leaf first) and a PEM private key, checking
    /// that the leaf is not a CA, has a CN (the node id) and matches the key.
    pub fn from_pem(cert_chain_pem: &str, key_pem: &str) -> Result<Identity, CaError> {
        Identity::from_pem_at(
            cert_chain_pem,
            key_pem,
            &Origin::Memory("agent certificate"),
            &Origin::Memory("agent private key"),
        )
    }

    /// Loads an identity from a certificate file and a key file (e.g. a mounted Secret).
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Identity, CaError> {
        let cert_pem = files::read_text(cert_path)?;
        let key_pem = files::read_text(key_path)?;
        Identity::from_pem_at(
            &cert_pem,
            &key_pem,
            &Origin::File(cert_path.to_path_buf()),
            &Origin::File(key_path.to_path_buf()),
        )
    }

    pub(crate) fn from_pem_at(
        cert_chain_pem: &str,
        key_pem: &str,
        cert_origin: &Origin,
        key_origin: &Origin,
    ) -> Result<Identity, CaError> {
        let parsed = parse_certs(cert_chain_pem, cert_origin)?;
        let (leaf, leaf_info) = &parsed[0];
        if leaf_info.is_ca {
            return Err(CaError::UnexpectedCa {
                origin: cert_origin.clone(),
                subject: leaf_info.subject.clone(),
            });
        }
        let node_id = leaf_info
            .common_name
            .clone()
            .ok_or_else(|| CaError::MissingNodeId {
                origin: cert_origin.clone(),
            })?;
        let key = parse_key(key_pem, key_origin)?;
        check_key_matches(leaf, &key, cert_origin, key_origin)?;
        let not_after = leaf_info.not_after;
        Ok(Identity {
            node_id,
            cert_chain_pem: cert_chain_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            chain: parsed.into_iter().map(|(der, _)| der).collect(),
            key,
            not_after,
        })
    }

    /// Writes the certificate chain and the key (mode 0600) to two files; refuses to overwrite
    /// existing files unless `force`.
    pub fn write_files(
        &self,
        cert_path: &Path,
        key_path: &Path,
        force: bool,
    ) -> Result<(), CaError> {
        files::write_all(
            &[
                files::Output::public(cert_path, &self.cert_chain_pem),
                files::Output::secret(key_path, &self.key_pem),
            ],
            force,
        )
    }

    /// The node id (leaf CN).
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The certificate chain in PEM (leaf first).
    pub fn cert_chain_pem(&self) -> &str {
        &self.cert_chain_pem
    }

    /// The private key in PEM. Handle with care: this is the secret.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The certificate chain in DER (leaf first), as rustls wants it.
    pub fn cert_chain_der(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// A copy of the private key in DER, as rustls wants it.
    pub fn private_key_der(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }

    /// When the leaf certificate stops being valid.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            node_id: self.node_id.clone(),
            cert_chain_pem: self.cert_chain_pem.clone(),
            key_pem: self.key_pem.clone(),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            not_after: self.not_after,
        }
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("node_id", &self.node_id)
            .field("chain_len", &self.chain.len())
            .field("not_after", &self.not_after)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The certificates an agent trusts: the fleet CA certificate(s). Agents that do not hold the CA
/// key get this (`ca.crt`) plus their own [`Identity`].
#[derive(Clone)]
pub struct TrustBundle {
    /// The bundle as given, for writing back out.
    pem: String,
    /// Parsed CA certificates.
    certs: Vec<CertificateDer<'static>>,
    /// Their subjects, for `Debug` and messages.
    subjects: Vec<String>,
}

impl TrustBundle {
    /// Parses one or more CA certificates; every one must be a CA (a leaf here is a mistake that
    /// would silently trust only that one certificate).
    pub fn from_pem(pem_text: &str) -> Result<TrustBundle, CaError> {
        TrustBundle::from_pem_at(pem_text, &Origin::Memory("trust bundle"))
    }

    /// Loads a trust bundle file (usually `ca.crt`).
    pub fn load(path: &Path) -> Result<TrustBundle, CaError> {
        let text = files::read_text(path)?;
        TrustBundle::from_pem_at(&text, &Origin::File(path.to_path_buf()))
    }

    /// A bundle of one CA certificate that has already been checked to be a CA.
    pub(crate) fn single(
        pem: String,
        der: CertificateDer<'static>,
        subject: String,
    ) -> TrustBundle {
        TrustBundle {
            pem,
            certs: vec![der],
            subjects: vec![subject],
        }
    }

    pub(crate) fn from_pem_at(pem_text: &str, origin: &Origin) -> Result<TrustBundle, CaError> {
        let parsed = parse_certs(pem_text, origin)?;
        let mut certs = Vec::with_capacity(parsed.len());
        let mut subjects = Vec::with_capacity(parsed.len());
        for (der, info) in parsed {
            if !info.is_ca {
                return Err(CaError::NotCa {
                    origin: origin.clone(),
                    subject: info.subject,
                });
            }
            certs.push(der);
            subjects.push(info.subject);
        }
        Ok(TrustBundle {
            pem: pem_text.to_owned(),
            certs,
            subjects,
        })
    }

    /// The bundle in PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The CA certificates in DER.
    pub fn certificates(&self) -> &[CertificateDer<'static>] {
        &self.certs
    }

    /// A rustls root store holding every CA of the bundle.
    pub fn root_store(&self) -> Result<Arc<RootCertStore>, CaError> {
        let mut store = RootCertStore::empty();
        for (index, der) in self.certs.iter().enumerate() {
            store
                .add(der.clone())
                .map_err(|e| CaError::BadCertificate {
                    origin: Origin::Memory("trust bundle"),
                    index,
                    reason: e.to_string(),
                })?;
        }
        Ok(Arc::new(store))
    }
}

impl fmt::Debug for TrustBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustBundle")
            .field("subjects", &self.subjects)
            .finish()
    }
}
