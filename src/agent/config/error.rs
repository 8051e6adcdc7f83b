//! Errors of the agent settings: each names the setting (as the person spelled it), the offending
//! value (never a secret) and the expected form; [`ConfigErrors`] reports all of them at once.

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::fleet::ca::CaError;
use crate::plan::format_duration;

use super::names::Name;

/// Values longer than this are cut in messages, so a pasted file does not flood the terminal.
const MAX_SHOWN_VALUE: usize = 120;

/// One problem with the agent settings.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value does not have the expected form.
    #[error("{name}: {value:?} is not {expected}")]
    Invalid {
        /// The setting and where the value came from.
        name: Name,
        /// The value as given (cut to a readable length). Never a secret.
        value: String,
        /// What would have been accepted, with an example.
        expected: Cow<'static, str>,
    },
    /// A required setting has no value and no usable default.
    #[error("{name} is not set: {hint}")]
    Missing {
        /// The setting.
        name: Name,
        /// Why it is needed and how to set it.
        hint: Cow<'static, str>,
    },
    /// Two settings that exclude each other are both set.
    #[error("{first} and {second} cannot both be set: {why}")]
    Conflict {
        /// One setting.
        first: Name,
        /// The other.
        second: Name,
        /// Why they exclude each other and which to keep.
        why: &'static str,
    },
    /// Two values are each well-formed but do not fit together.
    #[error("{first} and {second} do not fit together: {detail}")]
    Inconsistent {
        /// One setting.
        first: Name,
        /// The other.
        second: Name,
        /// Both values and the rule they break.
        detail: String,
    },
    /// `--no-auth` with an API reachable from other machines.
    #[error(
        "--no-auth is refused because {name} is {listen}, which is not a loopback address: \
         without a token, anyone who can reach the API could start load tests from every agent of \
         the fleet (for a local demo listen on 127.0.0.1 or [::1]; otherwise set --token-file / \
         VOLLEY_TOKEN_FILE)"
    )]
    NoAuthNotLoopback {
        /// The API listen setting.
        name: Name,
        /// Its value.
        listen: SocketAddr,
    },
    /// Neither way of getting a TLS identity is configured.
    #[error(
        "no TLS identity for the fleet's mutual TLS: either set --ca-cert / VOLLEY_CA_CERT and \
         --ca-key / VOLLEY_CA_KEY (the agent issues itself short-lived certificates from the \
         fleet CA), or --cert / VOLLEY_CERT and --key / VOLLEY_KEY with --ca-cert / \
         VOLLEY_CA_CERT as the trust bundle (a certificate issued for this agent)"
    )]
    NoTlsIdentity,
    /// A file named by a setting cannot be read.
    #[error("{name}: cannot read {}: {source}", path.display())]
    Read {
        /// The setting that names the file.
        name: Name,
        /// The file.
        path: PathBuf,
        /// Why reading failed.
        source: io::Error,
    },
    /// The API token file's content is unusable. The token itself is never shown.
    #[error("{name}: the token in {} {problem}", path.display())]
    Token {
        /// The token file setting.
        name: Name,
        /// The token file.
        path: PathBuf,
        /// What is wrong with the content.
        problem: &'static str,
    },
    /// The gossip secret file's content is too short. The secret itself is never shown.
    #[error(
        "{name}: the secret in {} has {len} bytes after trimming whitespace; at least {min} are \
         needed, the same on every agent (e.g. `head -c 32 /dev/urandom | base64 > FILE`)",
        path.display()
    )]
    GossipSecret {
        /// The gossip secret file setting.
        name: Name,
        /// The file.
        path: PathBuf,
        /// Bytes it holds.
        len: usize,
        /// Bytes needed.
        min: usize,
    },
    /// A certificate, key or trust bundle does not load.
    #[error("{name}: {source}")]
    Tls {
        /// The setting whose file is at fault.
        name: Name,
        /// What the fleet CA code rejected (names the file; never key material).
        source: CaError,
    },
    /// A given agent certificate is no longer valid.
    #[error(
        "{name}: the certificate in {} expired {} ago; issue a new one with the fleet CA or let \
         the agent issue its own with --ca-key / VOLLEY_CA_KEY",
        path.display(), format_duration(Duration::from_secs(ago.as_secs()))
    )]
    CertificateExpired {
        /// The certificate setting.
        name: Name,
        /// The certificate file.
        path: PathBuf,
        /// How long ago it expired.
        ago: Duration,
    },
    /// The data directory cannot be created or written.
    #[error(
        "{name}: {} is not a writable directory ({source}); the agent keeps finished tests' \
         results there until they are sealed: mount a writable volume there or point the setting \
         elsewhere",
        path.display()
    )]
    DataDir {
        /// The data directory setting.
        name: Name,
        /// The directory.
        path: PathBuf,
        /// What failed (creating it, writing or removing the probe file).
        source: io::Error,
    },
}

// === impl ConfigError ===

impl ConfigError {
    /// An [`ConfigError::Invalid`] with the value cut to a readable length.
    pub(crate) fn invalid(
        name: Name,
        value: &str,
        expected: impl Into<Cow<'static, str>>,
    ) -> ConfigError {
        ConfigError::Invalid {
            name,
            value: shorten(value),
            expected: expected.into(),
        }
    }

    /// The setting this error is about (the first one, for errors about two).
    pub fn name(&self) -> Option<&Name> {
        match self {
            ConfigError::Invalid { name, .. }
            | ConfigError::Missing { name, .. }
            | ConfigError::NoAuthNotLoopback { name, .. }
            | ConfigError::Read { name, .. }
            | ConfigError::Token { name, .. }
            | ConfigError::GossipSecret { name, .. }
            | ConfigError::Tls { name, .. }
            | ConfigError::CertificateExpired { name, .. }
            | ConfigError::DataDir { name, .. } => Some(name),
            ConfigError::Conflict { first, .. } | ConfigError::Inconsistent { first, .. } => {
                Some(first)
            }
            ConfigError::NoTlsIdentity => None,
        }
    }
}

fn shorten(value: &str) -> String {
    match value.char_indices().nth(MAX_SHOWN_VALUE) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_owned(),
    }
}

/// Every problem found in the agent settings, so a person can fix them all in one go. Displays one
/// problem per line.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

// === impl ConfigErrors ===

impl ConfigErrors {
    /// The problems, in the order the settings were checked.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    /// How many problems there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none (never the case for an error returned by `load`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}
