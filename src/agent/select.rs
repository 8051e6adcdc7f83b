//! Which live members a submitted test may run on: the trusted, compatible,
//! idle members its selector picks. An agent still publishing a test that
//! is already over (its `Idle` has not gossiped here yet) is waited for,
//! briefly, instead of refusing the submit as busy.

use std::time::Duration;

use tokio::time::Instant;

use super::core::AgentCore;
use crate::api::{ApiError, SubmitRequest};
use crate::fleet::keys::AgentState;
use crate::fleet::selector;
use crate::fleet::selector::Candidate;

/// How many of this agent's gossip intervals an agent finishing an ended
/// test may take to say it is idle before the submit is refused...
const SETTLE_INTERVALS: u32 = 6;

/// ...and at least this long, since peers may gossip more slowly.
const SETTLE_AT_LEAST: Duration = Duration::from_secs(5);

/// The members a test may run on, and those left out as unproven.
pub(super) struct Selection {
    pub candidates: Vec<Candidate>,
    pub unproven: Vec<String>,
}

impl AgentCore {
    /// The selected idle members, or `Conflict` naming the busy ones. Busy
    /// members whose test this agent knows has ended are given up to
    /// [`SETTLE_INTERVALS`] gossip intervals (at least [`SETTLE_AT_LEAST`])
    /// to publish `Idle`.
    pub(super) async fn select(&self, req: &SubmitRequest) -> Result<Selection, ApiError> {
        let settle = (self.h.settings.gossip_interval * SETTLE_INTERVALS).max(SETTLE_AT_LEAST);
        let deadline = Instant::now() + settle;
        loop {
            let scan = self.scan(req).await;
            if scan.busy.is_empty() {
                return Ok(Selection {
                    candidates: scan.candidates,
                    unproven: scan.unproven,
                });
            }
            let settling = scan.busy.iter().all(|(_, test)| self.has_ended(test));
            if !settling || Instant::now() >= deadline {
                let busy: Vec<String> = scan
                    .busy
                    .iter()
                    .map(|(node, test)| format!("{node} runs test {test}"))
                    .collect();
                return Err(ApiError::Conflict {
                    message: format!(
                        "agents are busy ({}); Volley runs one test at a time on an agent: wait \
                         for it to end or abort it (DELETE /v1/tests/ID), then submit again",
                        busy.join("; ")
                    ),
                });
            }
            tokio::time::sleep(poll_step(self.h.settings.gossip_interval)).await;
        }
    }

    async fn scan(&self, req: &SubmitRequest) -> Scan {
        // Only members whose QUIC certificate proved their gossiped node id.
        let (members, unproven) = self.trusted_members().await;
        let mut scan = Scan {
            candidates: Vec::new(),
            busy: Vec::new(),
            unproven,
        };
        for m in &members {
            let Some(info) = m.usable() else { continue };
            if !m.compatible {
                continue;
            }
            let labels = info.labels.as_map();
            if !selector::selects(&req.selector, &req.match_expressions, labels, &m.node_id) {
                continue;
            }
            match info.state {
                AgentState::Idle => scan.candidates.push(Candidate {
                    node_id: m.node_id.clone(),
                    quic: info.quic,
                    capacity: info.capacity,
                    labels: labels.clone(),
                }),
                AgentState::Draining => {}
                _ => scan.busy.push((
                    m.node_id.clone(),
                    info.test.clone().unwrap_or_else(|| "?".to_owned()),
                )),
            }
        }
        scan
    }

    /// Whether `test` is over as far as this agent knows: sealed or ended
    /// here, as its origin or as a participant.
    fn has_ended(&self, test: &str) -> bool {
        if let Some(s) = self.h.origin.snapshot(test) {
            return s.meta.phase.is_terminal();
        }
        if self
            .h
            .participant
            .current()
            .is_some_and(|(id, _)| id == test)
        {
            return false;
        }
        self.h
            .store
            .meta(test)
            .is_ok_and(|meta| meta.phase.is_terminal())
    }
}

struct Scan {
    candidates: Vec<Candidate>,
    /// Busy members and the test each publishes.
    busy: Vec<(String, String)>,
    unproven: Vec<String>,
}

/// How often the view is looked at again while agents settle.
fn poll_step(gossip_interval: Duration) -> Duration {
    (gossip_interval / 4).clamp(Duration::from_millis(10), Duration::from_millis(250))
}
