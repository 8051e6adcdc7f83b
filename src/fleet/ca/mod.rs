//! The fleet certificate authority: one self-signed ECDSA P-256 CA per fleet that issues
//! short-lived agent certificates (CN = node id, SAN `volley-agent`, EKU server + client auth), its
//! on-disk form (`ca.crt`, `ca.key`) and its Kubernetes `Secret` form. Agents without the CA key
//! run with a [`TrustBundle`] (`ca.crt`) and their own [`Identity`].

mod error;
mod files;
mod identity;
mod secret;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

pub use error::{CaError, Origin};
pub use identity::{Identity, TrustBundle, node_id_from_cert};

/// File name of the CA certificate inside a CA directory.
pub const CA_CERT_FILE: &str = "ca.crt";
/// File name of the CA private key inside a CA directory.
pub const CA_KEY_FILE: &str = "ca.key";
/// The DNS name every agent certificate carries and every client dials, so peers can be addressed
/// by IP while the certificate check stays a fixed-name check.
pub const AGENT_SAN: &str = "volley-agent";
/// Default lifetime of an agent certificate: short, so a leaked key is useful only briefly.
pub const DEFAULT_LEAF_VALIDITY: Duration = Duration::from_secs(24 * 3600);
/// Shortest agent certificate lifetime accepted by [`FleetCa::issue`].
pub const MIN_LEAF_VALIDITY: Duration = Duration::from_secs(60);
/// Longest agent certificate lifetime accepted by [`FleetCa::issue`].
pub const MAX_LEAF_VALIDITY: Duration = Duration::from_secs(366 * 24 * 3600);
/// Lifetime of a generated CA certificate (about ten years): rotating it means re-issuing everything.
pub const CA_VALIDITY: Duration = Duration::from_secs(3650 * 24 * 3600);
/// How far in the past `not_before` is set, so peers whose clocks lag still accept new certificates.
pub const CLOCK_SKEW_ALLOWANCE: Duration = Duration::from_secs(5 * 60);
/// Longest node id: the longest Kubernetes node name (a DNS subdomain).
pub const MAX_NODE_ID_LEN: usize = 253;

/// The fleet CA: its certificate and the key that signs agent certificates.
pub struct FleetCa {
    /// The CA's common name, for messages and `Debug`.
    name: String,
    /// CA certificate, PEM (what `ca.crt` holds and what agents trust).
    cert_pem: String,
    /// CA certificate, DER (for the trust bundle).
    cert_der: CertificateDer<'static>,
    /// CA private key, PEM (what `ca.key` holds). Never printed.
    key_pem: String,
    /// Signing state: the CA's subject, key identifier and key.
    issuer: Issuer<'static, KeyPair>,
}

fn generate_error(action: &'static str) -> impl FnOnce(rcgen::Error) -> CaError {
    move |e| CaError::Generate {
        action,
        reason: e.to_string(),
    }
}

/// Converts a wall-clock time for a certificate field; times X.509 tooling cannot express (before
/// the epoch, or absurdly far ahead) are an error rather than a panic.
fn to_offset(t: SystemTime) -> Result<OffsetDateTime, CaError> {
    let out_of_range = || CaError::Generate {
        action: "compute the validity window",
        reason: format!("time {t:?} is outside the range a certificate can express"),
    };
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| out_of_range())?
        .as_secs();
    let secs = i64::try_from(secs).map_err(|_| out_of_range())?;
    OffsetDateTime::from_unix_timestamp(secs).map_err(|_| out_of_range())
}

/// `t + d`, saturating at the latest time X.509 can express in a sane way.
fn add_duration(t: SystemTime, d: Duration) -> SystemTime {
    t.checked_add(d).unwrap_or(t)
}

fn check_text(value: &str, max_len: usize) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("must not be empty");
    }
    if value.len() > max_len {
        return Err("too long (at most 253 bytes)");
    }
    if value.trim() != value {
        return Err("must not start or end with whitespace");
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    Ok(())
}

/// True when `name` is a syntactically valid DNS name that can go into a DNS SAN.
fn is_dns_name(name: &str) -> bool {
    rustls_pki_types::DnsName::try_from(name).is_ok() && name.parse::<IpAddr>().is_err()
}

impl FleetCa {
    /// Generates a new self-signed fleet CA named `name` (ECDSA P-256, CA:TRUE with path length 0,
    /// key usages certificate and CRL signing, valid for [`CA_VALIDITY`]).
    pub fn generate(name: &str) -> Result<FleetCa, CaError> {
        check_text(name, MAX_NODE_ID_LEN).map_err(|reason| CaError::InvalidName {
            name: name.to_owned(),
            reason,
        })?;
        let now = SystemTime::now();
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        dn.push(DnType::OrganizationName, "Volley fleet");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = to_offset(now.checked_sub(CLOCK_SKEW_ALLOWANCE).unwrap_or(now))?;
        params.not_after = to_offset(add_duration(now, CA_VALIDITY))?;
        let key = KeyPair::generate().map_err(generate_error("generate the CA key"))?;
        let cert = params
            .self_signed(&key)
            .map_err(generate_error("self-sign the CA certificate"))?;
        let key_pem = key.serialize_pem();
        Ok(FleetCa {
            name: name.to_owned(),
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            key_pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// Rebuilds a CA from its certificate and key PEM, checking that the certificate is a CA and
    /// that the key belongs to it.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<FleetCa, CaError> {
        FleetCa::from_pem_at(
            cert_pem,
            key_pem,
            &Origin::Memory("CA certificate"),
            &Origin::Memory("CA private key"),
        )
    }

    fn from_pem_at(
        cert_pem: &str,
        key_pem: &str,
        cert_origin: &Origin,
        key_origin: &Origin,
    ) -> Result<FleetCa, CaError> {
        let mut parsed = identity::parse_certs(cert_pem, cert_origin)?;
        let (cert_der, info) = parsed.swap_remove(0);
        if !info.is_ca {
            return Err(CaError::NotCa {
                origin: cert_origin.clone(),
                subject: info.subject,
            });
        }
        let key_der = identity::parse_key(key_pem, key_origin)?;
        identity::check_key_matches(&cert_der, &key_der, cert_origin, key_origin)?;
        let key = KeyPair::try_from(&key_der).map_err(|e| CaError::BadKey {
            origin: key_origin.clone(),
            reason: e.to_string(),
        })?;
        let issuer =
            Issuer::from_ca_cert_der(&cert_der, key).map_err(|e| CaError::BadCertificate {
                origin: cert_origin.clone(),
                index: 0,
                reason: e.to_string(),
            })?;
        Ok(FleetCa {
            name: info.common_name.unwrap_or(info.subject),
            cert_pem: cert_pem.to_owned(),
            cert_der,
            key_pem: key_pem.to_owned(),
            issuer,
        })
    }

    /// Loads `ca.crt` and `ca.key` from `dir`.
    pub fn load_from_dir(dir: &Path) -> Result<FleetCa, CaError> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let cert_pem = files::read_text(&cert_path)?;
        let key_pem = files::read_text(&key_path)?;
        FleetCa::from_pem_at(
            &cert_pem,
            &key_pem,
            &Origin::File(cert_path),
            &Origin::File(key_path),
        )
    }

    /// Writes `ca.crt` (0644) and `ca.key` (0600) into `dir`, creating it if needed. Without
    /// `force`, nothing is written when either file already exists.
    pub fn write_to_dir(&self, dir: &Path, force: bool) -> Result<(), CaError> {
        files::ensure_dir(dir)?;
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        files::write_all(
            &[
                files::Output::public(&cert_path, &self.cert_pem),
                files::Output::secret(&key_path, &self.key_pem),
            ],
            force,
        )
    }

    /// The CA's common name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The CA certificate in PEM (the content of `ca.crt`).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key in PEM (the content of `ca.key`). Handle with care.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The fleet's shared secret for keys other than TLS (the gossip key is derived from it): the
    /// CA private key's DER bytes, which every agent holding `ca.key` reads alike whatever the
    /// PEM's line breaks. Handle with care.
    pub fn shared_secret(&self) -> Vec<u8> {
        match identity::parse_key(&self.key_pem, &Origin::Memory("CA private key")) {
            Ok(der) => der.secret_der().to_vec(),
            // Parsed when the CA was built, so this does not happen; the PEM is as secret.
            Err(_) => self.key_pem.as_bytes().to_vec(),
        }
    }

    /// The trust bundle agents verify peers against: this CA's certificate.
    pub fn trust_bundle(&self) -> TrustBundle {
        TrustBundle::single(
            self.cert_pem.clone(),
            self.cert_der.clone(),
            self.name.clone(),
        )
    }

    /// A Kubernetes `Secret` manifest (type Opaque, keys `ca.crt` and `ca.key`, base64) named
    /// `name` in `namespace`, for `volley ca init --k8s-secret`.
    pub fn secret_yaml(&self, name: &str, namespace: &str) -> String {
        secret::render(name, namespace, &self.cert_pem, &self.key_pem)
    }

    /// Issues an agent certificate for `node_id`, valid from now (minus
    /// [`CLOCK_SKEW_ALLOWANCE`]) for `validity` (see [`DEFAULT_LEAF_VALIDITY`]).
    ///
    /// SANs: [`AGENT_SAN`], `node_id` when it is a DNS name, then `extra_sans` (IP addresses become
    /// IP SANs, other values must be DNS names). EKUs: server and client authentication.
    pub fn issue(
        &self,
        node_id: &str,
        extra_sans: &[String],
        validity: Duration,
    ) -> Result<Identity, CaError> {
        self.issue_at(node_id, extra_sans, SystemTime::now(), validity)
    }

    /// [`FleetCa::issue`] with an explicit "now", for renewal planning and for tests that need
    /// certificates valid in another time window (e.g. already expired).
    pub fn issue_at(
        &self,
        node_id: &str,
        extra_sans: &[String],
        now: SystemTime,
        validity: Duration,
    ) -> Result<Identity, CaError> {
        check_text(node_id, MAX_NODE_ID_LEN).map_err(|reason| CaError::InvalidNodeId {
            node_id: node_id.to_owned(),
            reason,
        })?;
        if !(MIN_LEAF_VALIDITY..=MAX_LEAF_VALIDITY).contains(&validity) {
            return Err(CaError::InvalidValidity {
                validity,
                min: MIN_LEAF_VALIDITY,
                max: MAX_LEAF_VALIDITY,
            });
        }
        let sans = subject_alt_names(node_id, extra_sans)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, node_id);
        dn.push(DnType::OrganizationName, "Volley fleet");
        params.distinguished_name = dn;
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.not_before = to_offset(now.checked_sub(CLOCK_SKEW_ALLOWANCE).unwrap_or(now))?;
        params.not_after = to_offset(add_duration(now, validity))?;

        let key = KeyPair::generate().map_err(generate_error("generate an agent key"))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(generate_error("sign the agent certificate"))?;
        Identity::from_pem_at(
            &cert.pem(),
            &key.serialize_pem(),
            &Origin::Memory("freshly issued agent certificate"),
            &Origin::Memory("freshly generated agent key"),
        )
    }
}

/// Builds the SAN list: the fixed agent name, the node id if it is a DNS name, then the extras
/// (deduplicated, IPs as IP SANs).
fn subject_alt_names(node_id: &str, extra_sans: &[String]) -> Result<Vec<SanType>, CaError> {
    let dns = |name: &str| -> Result<SanType, CaError> {
        let ia5 = name
            .to_owned()
            .try_into()
            .map_err(|_| CaError::InvalidSan {
                value: name.to_owned(),
            })?;
        Ok(SanType::DnsName(ia5))
    };
    let mut sans = vec![dns(AGENT_SAN)?];
    if is_dns_name(node_id) && !node_id.eq_ignore_ascii_case(AGENT_SAN) {
        sans.push(dns(node_id)?);
    }
    for extra in extra_sans {
        let extra = extra.trim();
        let san = if let Ok(ip) = extra.parse::<IpAddr>() {
            SanType::IpAddress(ip)
        } else if is_dns_name(extra) {
            dns(extra)?
        } else {
            return Err(CaError::InvalidSan {
                value: extra.to_owned(),
            });
        };
        if !sans.contains(&san) {
            sans.push(san);
        }
    }
    Ok(sans)
}

impl fmt::Debug for FleetCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetCa")
            .field("name", &self.name)
            .field("key", &"<redacted>")
            .finish()
    }
}
