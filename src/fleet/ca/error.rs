//! Errors of the fleet CA tooling: every variant names where the material came from (a file path or
//! an in-memory PEM) and what was expected, and none of them ever carries key material.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Where a piece of PEM came from, so an error can point a person at the right file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Read from this file.
    File(PathBuf),
    /// Passed in memory; the label says what it was meant to be (e.g. "CA certificate").
    Memory(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Memory(what) => write!(f, "{what} (in-memory PEM)"),
        }
    }
}

/// Everything that can go wrong creating, loading, storing or using the fleet CA and identities.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The text holds no PEM block of the expected kind.
    #[error(
        "{origin}: no PEM `{expected}` block found; expected text starting with `-----BEGIN {expected}-----`"
    )]
    NotPem {
        /// Where the text came from.
        origin: Origin,
        /// The PEM label that was looked for (e.g. `CERTIFICATE`, `PRIVATE KEY`).
        expected: &'static str,
    },
    /// A PEM block was found but its content is not a usable X.509 certificate.
    #[error("{origin}: certificate #{index} is not valid X.509: {reason}")]
    BadCertificate {
        /// Where the certificate came from.
        origin: Origin,
        /// Position of the certificate in the file (0 = first).
        index: usize,
        /// What the parser rejected.
        reason: String,
    },
    /// A CA certificate was expected but this one may not sign others.
    #[error(
        "{origin}: certificate `{subject}` is not a CA (basicConstraints CA:TRUE missing); expected the fleet CA certificate (ca.crt), not an agent certificate"
    )]
    NotCa {
        /// Where the certificate came from.
        origin: Origin,
        /// Its subject, to tell which certificate was given.
        subject: String,
    },
    /// An agent (leaf) certificate was expected but this one is a CA.
    #[error(
        "{origin}: certificate `{subject}` is a CA certificate; expected an agent certificate issued by the fleet CA"
    )]
    UnexpectedCa {
        /// Where the certificate came from.
        origin: Origin,
        /// Its subject.
        subject: String,
    },
    /// The private key could not be decoded or is of an unsupported type.
    #[error(
        "{origin}: private key unusable: {reason}; expected a PKCS#8 ECDSA P-256 key as written by `volley ca init`"
    )]
    BadKey {
        /// Where the key came from.
        origin: Origin,
        /// Why it was rejected (never includes key bytes).
        reason: String,
    },
    /// The private key is valid but belongs to another certificate.
    #[error("private key {key} does not match the certificate {cert}")]
    KeyMismatch {
        /// Where the certificate came from.
        cert: Origin,
        /// Where the key came from.
        key: Origin,
    },
    /// The certificate has no common name, so no node id can be derived from it.
    #[error(
        "{origin}: certificate has no subject common name (CN); agent certificates carry the node id as CN"
    )]
    MissingNodeId {
        /// Where the certificate came from.
        origin: Origin,
    },
    /// The node id cannot be put in a certificate.
    #[error("invalid node id {node_id:?}: {reason}")]
    InvalidNodeId {
        /// The rejected node id.
        node_id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A CA name cannot be put in a certificate.
    #[error("invalid CA name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An extra subject alternative name is neither an IP address nor a DNS name.
    #[error(
        "invalid subject alternative name {value:?}: expected a DNS name (e.g. `agent-1.volley.svc`) or an IP address (e.g. `10.0.0.7`)"
    )]
    InvalidSan {
        /// The rejected value.
        value: String,
    },
    /// The requested validity is outside what Volley issues.
    #[error("invalid certificate validity {validity:?}: expected between {min:?} and {max:?}")]
    InvalidValidity {
        /// The requested validity.
        validity: Duration,
        /// Shortest accepted validity.
        min: Duration,
        /// Longest accepted validity.
        max: Duration,
    },
    /// A file exists and overwriting was not requested.
    #[error("{}: already exists; refusing to overwrite it (use --force to replace the fleet CA, which invalidates every issued agent certificate)", path.display())]
    Exists {
        /// The existing file.
        path: PathBuf,
    },
    /// A file system operation failed.
    #[error("{}: cannot {action}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// What was attempted ("read", "write", "create directory", ...).
        action: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Certificate generation or signing failed inside the X.509 library.
    #[error("cannot {action}: {reason}")]
    Generate {
        /// What was being generated.
        action: &'static str,
        /// The library's explanation.
        reason: String,
    },
}
