//! The secret-bearing settings: the API token (kept in a redacting newtype) and the TLS material
//! for the fleet's mutual TLS, loaded through the [`Files`](super::Files) seam with `fleet::ca` so
//! a bad certificate or key is reported before anything is bound.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::fleet::ca::{CaError, FleetCa, Identity, Origin, TrustBundle};
use crate::fleet::membership::{GossipKey, MIN_SECRET_BYTES};

use super::TlsSettings;
use super::error::ConfigError;
use super::load::Loader;
use super::names::{Name, Setting};

/// The API bearer token. `Debug` prints `<redacted>`; only [`ApiToken::expose`] reveals it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

// === impl ApiToken ===

impl ApiToken {
    /// A token from a token file's text: trimmed, non-empty, visible ASCII only (what an HTTP
    /// `Authorization: Bearer` header can carry). The error never contains the token.
    pub fn parse(text: &str) -> Result<ApiToken, &'static str> {
        let token = text.trim();
        if token.is_empty() {
            return Err("is empty (after trimming whitespace)");
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(
                "contains a space, control or non-ASCII character, which an HTTP Authorization \
                 header cannot carry",
            );
        }
        Ok(ApiToken(token.to_owned()))
    }

    /// The token itself, for the one place that compares or sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is the token, in time that does not depend on where they differ.
    pub fn matches(&self, presented: &str) -> bool {
        let (ours, theirs) = (self.0.as_bytes(), presented.as_bytes());
        let differ = ours
            .iter()
            .zip(theirs)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        differ == 0 && ours.len() == theirs.len()
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How API clients authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiAuth {
    /// Every request carries this bearer token.
    Token {
        /// The token.
        token: ApiToken,
        /// The file it was read from, for messages.
        file: PathBuf,
    },
    /// No token (`--no-auth`); only ever with a loopback API address.
    Disabled,
}

/// A path setting's value and name.
type PathSetting = (PathBuf, Name);

// === impl Loader: secrets ===

impl Loader<'_> {
    /// The token file, or `--no-auth` on a loopback API address.
    pub(super) fn auth(&mut self, api_listen: Option<&(SocketAddr, Name)>) -> Option<ApiAuth> {
        let token_file = self.path(Setting::TOKEN_FILE, self.args.token_file.as_ref());
        match (self.args.no_auth, token_file) {
            (true, Some((_, name))) => {
                self.errors.push(ConfigError::Conflict {
                    first: Name::flag(Setting::NO_AUTH),
                    second: name,
                    why: "--no-auth turns the API token off; keep one of them",
                });
                None
            }
            (true, None) => {
                let (listen, name) = api_listen?;
                if listen.ip().to_canonical().is_loopback() {
                    Some(ApiAuth::Disabled)
                } else {
                    self.errors.push(ConfigError::NoAuthNotLoopback {
                        name: name.clone(),
                        listen: *listen,
                    });
                    None
                }
            }
            (false, Some((path, name))) => {
                let text = self.read(&path, &name)?;
                match ApiToken::parse(&text) {
                    Ok(token) => Some(ApiAuth::Token { token, file: path }),
                    Err(problem) => {
                        self.errors.push(ConfigError::Token {
                            name,
                            path,
                            problem,
                        });
                        None
                    }
                }
            }
            (false, None) => {
                self.errors.push(ConfigError::Missing {
                    name: Name::unset(Setting::TOKEN_FILE),
                    hint: "the API needs a bearer token: point this at a file holding it (e.g. a \
                           mounted Secret), or pass --no-auth for a demo on a loopback address"
                        .into(),
                });
                None
            }
        }
    }

    /// The TLS identity: the fleet CA (certificate + key), or a given certificate + key with the
    /// CA certificate as trust bundle. Exactly one way; files are loaded and checked here.
    pub(super) fn tls(&mut self, node_id: Option<&(String, Name)>) -> Option<TlsSettings> {
        let args = self.args;
        let ca_cert = self.path(Setting::CA_CERT, args.ca_cert.as_ref());
        let ca_key = self.path(Setting::CA_KEY, args.ca_key.as_ref());
        let cert = self.path(Setting::CERT, args.cert.as_ref());
        let key = self.path(Setting::KEY, args.key.as_ref());
        let missing = |setting: Setting, hint: String| ConfigError::Missing {
            name: Name::unset(setting),
            hint: hint.into(),
        };
        match (ca_key, cert, key) {
            (Some(ca_key), None, None) => match ca_cert {
                Some(ca_cert) => self.self_issued(ca_cert, ca_key),
                None => {
                    self.errors.push(missing(
                        Setting::CA_CERT,
                        format!(
                            "{} is set, and the fleet CA's key needs the CA's certificate",
                            ca_key.1
                        ),
                    ));
                    None
                }
            },
            (None, Some(cert), Some(key)) => match ca_cert {
                Some(ca_cert) => self.given(cert, key, ca_cert, node_id),
                None => {
                    self.errors.push(missing(
                        Setting::CA_CERT,
                        format!(
                            "{} is set, and a given certificate needs the fleet CA certificate as \
                             the trust bundle peers are checked against",
                            cert.1
                        ),
                    ));
                    None
                }
            },
            (Some((_, ca_key)), Some((_, other)), _)
            | (Some((_, ca_key)), None, Some((_, other))) => {
                self.errors.push(ConfigError::Conflict {
                    first: ca_key,
                    second: other,
                    why: "choose one way to get this agent's certificate: the fleet CA key (the \
                          agent issues its own) or a certificate and key issued for it",
                });
                None
            }
            (None, Some((_, cert)), None) => {
                self.errors.push(missing(
                    Setting::KEY,
                    format!("{cert} is set, and a certificate needs its private key"),
                ));
                None
            }
            (None, None, Some((_, key))) => {
                self.errors.push(missing(
                    Setting::CERT,
                    format!("{key} is set, and a private key needs the certificate it belongs to"),
                ));
                None
            }
            (None, None, None) => {
                self.errors.push(ConfigError::NoTlsIdentity);
                None
            }
        }
    }

    /// The gossip key: from the gossip secret file when one is set, else derived from the fleet
    /// CA key (which every agent of a self-issuing fleet already holds, so no extra secret needs
    /// distributing). Agents given their certificates hold no CA key and need the file.
    pub(super) fn gossip_key(&mut self, tls: Option<&TlsSettings>) -> Option<GossipKey> {
        let file = self.path(
            Setting::GOSSIP_SECRET_FILE,
            self.args.gossip_secret_file.as_ref(),
        );
        if let Some((path, name)) = file {
            let text = self.read(&path, &name)?;
            let secret = text.trim();
            return match GossipKey::derive(secret.as_bytes()) {
                Ok(key) => Some(key),
                Err(short) => {
                    self.errors.push(ConfigError::GossipSecret {
                        name,
                        path,
                        len: short.len,
                        min: MIN_SECRET_BYTES,
                    });
                    None
                }
            };
        }
        match tls? {
            TlsSettings::SelfIssued { ca } => GossipKey::derive(&ca.shared_secret()).ok(),
            TlsSettings::Given { .. } => {
                self.errors.push(ConfigError::Missing {
                    name: Name::unset(Setting::GOSSIP_SECRET_FILE),
                    hint: "every gossip datagram is authenticated with a secret all agents share; \
                           agents that hold the fleet CA key derive it from that key, but this \
                           agent is given its certificate: point this at a file holding the \
                           fleet's gossip secret (the same on every agent, at least 16 bytes)"
                        .into(),
                });
                None
            }
        }
    }

    fn self_issued(
        &mut self,
        (cert_path, cert_name): PathSetting,
        (key_path, key_name): PathSetting,
    ) -> Option<TlsSettings> {
        let cert_pem = self.read(&cert_path, &cert_name);
        let key_pem = self.read(&key_path, &key_name);
        let (cert_pem, key_pem) = (cert_pem?, key_pem?);
        // The certificate first on its own, so its problems name its file.
        if let Err(source) = TrustBundle::from_pem_at(&cert_pem, &Origin::File(cert_path.clone())) {
            self.errors.push(ConfigError::Tls {
                name: cert_name,
                source,
            });
            return None;
        }
        match FleetCa::from_pem(&cert_pem, &key_pem) {
            Ok(ca) => Some(TlsSettings::SelfIssued { ca }),
            Err(error) => {
                let source = at_files(error, &cert_path, &key_path);
                let name = if is_about(&source, &key_path) {
                    key_name
                } else {
                    cert_name
                };
                self.errors.push(ConfigError::Tls { name, source });
                None
            }
        }
    }

    fn given(
        &mut self,
        (cert_path, cert_name): PathSetting,
        (key_path, key_name): PathSetting,
        (ca_path, ca_name): PathSetting,
        node_id: Option<&(String, Name)>,
    ) -> Option<TlsSettings> {
        let cert_pem = self.read(&cert_path, &cert_name);
        let key_pem = self.read(&key_path, &key_name);
        let ca_pem = self.read(&ca_path, &ca_name);
        let identity = match (cert_pem, key_pem) {
            (Some(cert_pem), Some(key_pem)) => {
                let cert_origin = Origin::File(cert_path.clone());
                let key_origin = Origin::File(key_path.clone());
                match Identity::from_pem_at(&cert_pem, &key_pem, &cert_origin, &key_origin) {
                    Ok(identity) => Some(identity),
                    Err(source) => {
                        let name = if is_about(&source, &key_path) {
                            key_name
                        } else {
                            cert_name.clone()
                        };
                        self.errors.push(ConfigError::Tls { name, source });
                        None
                    }
                }
            }
            _ => None,
        };
        let trust = ca_pem.and_then(|ca_pem| {
            match TrustBundle::from_pem_at(&ca_pem, &Origin::File(ca_path)) {
                Ok(trust) => Some(trust),
                Err(source) => {
                    self.errors.push(ConfigError::Tls {
                        name: ca_name,
                        source,
                    });
                    None
                }
            }
        });
        let identity = identity?;
        if let Some((id, id_name)) = node_id
            && identity.node_id() != id
        {
            self.errors.push(ConfigError::Inconsistent {
                first: cert_name.clone(),
                second: id_name.clone(),
                detail: format!(
                    "the certificate in {} is for node {:?} (its common name) but this agent's \
                     node id is {id:?}; peers know a sender by its certificate, so issue one for \
                     {id:?} or use {:?} as the node id",
                    cert_path.display(),
                    identity.node_id(),
                    identity.node_id()
                ),
            });
            return None;
        }
        if let Ok(ago) = SystemTime::now().duration_since(identity.not_after()) {
            self.errors.push(ConfigError::CertificateExpired {
                name: cert_name,
                path: cert_path,
                ago,
            });
            return None;
        }
        Some(TlsSettings::Given {
            identity,
            trust: trust?,
            files: Some((cert_path, key_path)),
        })
    }
}

/// `FleetCa::from_pem` labels its inputs as in-memory PEM; the files they came from say more.
fn at_files(error: CaError, cert: &Path, key: &Path) -> CaError {
    let place = |origin: Origin| match origin {
        Origin::Memory("CA certificate") => Origin::File(cert.to_path_buf()),
        Origin::Memory("CA private key") => Origin::File(key.to_path_buf()),
        other => other,
    };
    match error {
        CaError::NotPem { origin, expected } => CaError::NotPem {
            origin: place(origin),
            expected,
        },
        CaError::BadCertificate {
            origin,
            index,
            reason,
        } => CaError::BadCertificate {
            origin: place(origin),
            index,
            reason,
        },
        CaError::NotCa { origin, subject } => CaError::NotCa {
            origin: place(origin),
            subject,
        },
        CaError::BadKey { origin, reason } => CaError::BadKey {
            origin: place(origin),
            reason,
        },
        CaError::KeyMismatch { cert, key } => CaError::KeyMismatch {
            cert: place(cert),
            key: place(key),
        },
        other => other,
    }
}

/// Whether a CA error is about the key file (so the key's setting is named) rather than the
/// certificate's.
fn is_about(error: &CaError, key: &Path) -> bool {
    match error {
        CaError::KeyMismatch { .. } => true,
        CaError::NotPem { origin, .. } | CaError::BadKey { origin, .. } => {
            matches!(origin, Origin::File(path) if path == key)
        }
        _ => false,
    }
}
