//! Which peers the agent trusts, and how it finds out: every few seconds it
//! measures each live peer's clock over the transport and checks that the
//! peer's certificate proves the node id it gossips
//! ([`crate::fleet::identity`]); a submit uses only members that proved it
//! (checking the others first).

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use tokio_util::sync::CancellationToken;

use super::Service;
use crate::fleet::identity::{self, Verdict};
use crate::fleet::membership::Member;
use crate::fleet::transport::{TransportError, measure_clock_offset};
use crate::sync::lock;

/// Time between two rounds of clock measurement and identity checks.
const ROUND: Duration = Duration::from_secs(5);
/// Rounds of "check, drop impostors, look again" a submit makes at most: a
/// dropped impostor can uncover the genuine incarnation, which is checked too.
const SUBMIT_CHECKS: usize = 3;

impl Service {
    /// The members a test may use: this agent and every peer whose identity
    /// is verified (peers not verified yet are checked now). Also returns
    /// the peers left out, each with why, for the submitter.
    pub(super) async fn trusted_members(&self) -> (Vec<Member>, Vec<String>) {
        let mut members = self.roster.members().await;
        for _ in 0..SUBMIT_CHECKS {
            let verdicts = self.check_all(&members).await;
            if !verdicts.iter().any(Verdict::is_rejected) {
                let mut left_out = Vec::new();
                let trusted = members
                    .into_iter()
                    .zip(verdicts)
                    .filter_map(|(m, verdict)| match verdict.reason() {
                        None => Some(m),
                        Some(why) => {
                            left_out.push(format!("{} ({why})", m.node_id));
                            None
                        }
                    })
                    .collect();
                return (trusted, left_out);
            }
            // Impostors were dropped from the view: look at it again.
            members = self.roster.members().await;
        }
        let left_out = members
            .iter()
            .filter(|m| !m.is_self)
            .map(|m| format!("{} (its identity keeps changing)", m.node_id))
            .collect();
        (
            members.into_iter().filter(|m| m.is_self).collect(),
            left_out,
        )
    }

    async fn check_all(&self, members: &[Member]) -> Vec<Verdict> {
        join_all(members.iter().map(|m| {
            identity::check_member(
                &self.identities,
                self.roster.as_ref(),
                self.transport.as_ref(),
                m,
            )
        }))
        .await
    }

    /// One round: every live peer's clock offset, and its identity.
    async fn check_peers(&self) {
        let members = self.roster.members().await;
        for m in members.iter().filter(|m| !m.is_self) {
            let Some(info) = m.usable() else { continue };
            match measure_clock_offset(self.transport.as_ref(), info.quic, 3).await {
                Ok(sample) => {
                    lock(&self.clocks).insert(m.node_id.clone(), sample);
                    lock(&self.refused).remove(&m.node_id);
                }
                Err(e @ TransportError::Refused { .. }) => {
                    tracing::warn!(peer = %m.node_id, "mutual TLS refused: {e}");
                    lock(&self.refused).insert(m.node_id.clone(), e.to_string());
                    continue;
                }
                Err(e) => tracing::debug!(peer = %m.node_id, "clock offset not measured: {e}"),
            }
            identity::check_member(
                &self.identities,
                self.roster.as_ref(),
                self.transport.as_ref(),
                m,
            )
            .await;
        }
        let live = self.roster.live_incarnations().await;
        self.identities.retain_live(&live);
    }
}

/// Checks every live peer's clock and identity every [`ROUND`].
pub(super) async fn rounds(service: Arc<Service>, shutdown: CancellationToken) {
    loop {
        service.check_peers().await;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(ROUND) => {}
        }
    }
}
