//! Keeping the agent's certificate valid for as long as the agent runs (a
//! DaemonSet's agents run for months; their certificates last a day, or
//! what cert-manager gives them):
//! - an agent holding the fleet CA issues itself a new certificate at half
//!   the validity of the current one;
//! - an agent given its certificate as files reads them again when they
//!   change (cert-manager's CSI driver renews them in place) and presents
//!   the new one, if it still names this node.
//!
//! Connections opened afterwards present the new certificate; open ones
//! keep theirs (TLS checks a certificate when a connection is made).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::config::TlsSettings;
use crate::fleet::ca::{DEFAULT_LEAF_VALIDITY, FleetCa, Identity};
use crate::fleet::transport::QuicTransport;

/// How often given certificate files are looked at.
const FILE_CHECK_EVERY: Duration = Duration::from_secs(60);
/// The wait before trying again after a failed renewal.
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// Where a renewed certificate comes from.
enum Source {
    Ca { ca: Box<FleetCa>, sans: Vec<String> },
    Files { cert: PathBuf, key: PathBuf },
}

/// The renewal of one agent's certificate.
pub struct Renewal {
    source: Source,
    node_id: String,
    not_after: SystemTime,
    transport: Arc<QuicTransport>,
}

impl Renewal {
    /// `None` when there is nothing to renew from (a certificate given
    /// without its files).
    pub fn new(
        tls: &TlsSettings,
        sans: &[String],
        current: &Identity,
        transport: Arc<QuicTransport>,
    ) -> Option<Renewal> {
        let source = match tls {
            // The CA holds a private key and is not `Clone`: a copy from its PEM.
            TlsSettings::SelfIssued { ca } => {
                match FleetCa::from_pem(ca.cert_pem(), ca.key_pem()) {
                    Ok(ca) => Source::Ca {
                        ca: Box::new(ca),
                        sans: sans.to_vec(),
                    },
                    Err(e) => {
                        tracing::warn!("the agent certificate will not be renewed: {e}");
                        return None;
                    }
                }
            }
            TlsSettings::Given {
                files: Some((cert, key)),
                ..
            } => Source::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            TlsSettings::Given { files: None, .. } => return None,
        };
        Some(Renewal {
            source,
            node_id: current.node_id().to_owned(),
            not_after: current.not_after(),
            transport,
        })
    }

    /// Renews until `stop`.
    pub async fn run(mut self, stop: CancellationToken) {
        loop {
            let wait = self.next_wait();
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            if let Err(e) = self.renew_once() {
                tracing::warn!(node = %self.node_id, "cannot renew the agent certificate: {e}");
            }
        }
    }

    fn next_wait(&self) -> Duration {
        match &self.source {
            Source::Ca { .. } => {
                let left = self
                    .not_after
                    .duration_since(SystemTime::now())
                    .unwrap_or_default();
                // Half of what is left (half the validity for a new one),
                // never in a tight loop.
                (left / 2).max(RETRY_AFTER)
            }
            Source::Files { .. } => FILE_CHECK_EVERY,
        }
    }

    /// One renewal: a new certificate if one is due or available.
    fn renew_once(&mut self) -> Result<(), String> {
        let identity = match &self.source {
            Source::Ca { ca, sans } => ca
                .issue(&self.node_id, sans, DEFAULT_LEAF_VALIDITY)
                .map_err(|e| e.to_string())?,
            Source::Files { cert, key } => {
                let identity = Identity::load(cert, key).map_err(|e| e.to_string())?;
                if identity.not_after() == self.not_after {
                    return Ok(());
                }
                if identity.node_id() != self.node_id {
                    return Err(format!(
                        "{} now names node {:?}, not this agent ({:?}); keeping the current one",
                        cert.display(),
                        identity.node_id(),
                        self.node_id
                    ));
                }
                identity
            }
        };
        self.transport.renew(&identity).map_err(|e| e.to_string())?;
        self.not_after = identity.not_after();
        tracing::info!(node = %self.node_id, "agent certificate renewed");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::transport::{Limits, handler_fn};

    async fn transport(ca: &FleetCa, id: &Identity) -> Arc<QuicTransport> {
        let handler = handler_fn(|_, body| async move { body });
        let addr = "127.0.0.1:0".parse().expect("an address");
        Arc::new(
            QuicTransport::bind(addr, id, &ca.trust_bundle(), handler, Limits::default())
                .await
                .expect("binds"),
        )
    }

    #[tokio::test]
    async fn a_ca_holder_issues_itself_a_new_certificate_before_half_is_left() {
        let ca = FleetCa::generate("fleet").expect("CA");
        let old = ca
            .issue_at(
                "agent-0",
                &[],
                SystemTime::now() - Duration::from_secs(20 * 3600),
                DEFAULT_LEAF_VALIDITY,
            )
            .expect("id");
        let tls = TlsSettings::SelfIssued {
            ca: FleetCa::from_pem(ca.cert_pem(), ca.key_pem()).expect("CA copy"),
        };
        let mut r = Renewal::new(&tls, &[], &old, transport(&ca, &old).await).expect("renews");
        // 4 h left of 24: renewed in 2 h.
        let wait = r.next_wait();
        assert!(
            wait > Duration::from_secs(7000) && wait <= Duration::from_secs(7200),
            "{wait:?}"
        );
        r.renew_once().expect("renewed");
        assert!(r.not_after > old.not_after() + Duration::from_secs(19 * 3600));
        assert!(r.next_wait() > Duration::from_secs(11 * 3600));
    }

    #[tokio::test]
    async fn given_files_are_read_again_when_they_change() {
        let ca = FleetCa::generate("fleet").expect("CA");
        let dir = tempfile::tempdir().expect("a directory");
        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        let write = |id: &Identity| {
            std::fs::write(&cert, id.cert_chain_pem()).expect("cert");
            std::fs::write(&key, id.key_pem()).expect("key");
        };
        let first = ca
            .issue("agent-0", &[], Duration::from_secs(3600))
            .expect("id");
        write(&first);
        let tls = TlsSettings::Given {
            identity: Identity::load(&cert, &key).expect("loads"),
            trust: ca.trust_bundle(),
            files: Some((cert.clone(), key.clone())),
        };
        let mut r = Renewal::new(&tls, &[], &first, transport(&ca, &first).await).expect("renews");
        assert_eq!(r.next_wait(), FILE_CHECK_EVERY);
        r.renew_once().expect("unchanged files: nothing to do");
        assert_eq!(r.not_after, first.not_after());

        let other = ca.issue("agent-9", &[], DEFAULT_LEAF_VALIDITY).expect("id");
        write(&other);
        let e = r.renew_once().expect_err("another node's certificate");
        assert!(e.contains("names node \"agent-9\""), "{e}");
        assert_eq!(r.not_after, first.not_after(), "the current one is kept");

        let renewed = ca.issue("agent-0", &[], DEFAULT_LEAF_VALIDITY).expect("id");
        write(&renewed);
        r.renew_once().expect("renewed");
        assert_eq!(r.not_after, renewed.not_after());
    }
}
