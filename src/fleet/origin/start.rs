//! Starting a test: prepare every allocated agent (plan over mutual TLS,
//! digest checked), drop the agents that were not ready, commit the final
//! allocation and the start instant.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::{COMMIT_MARGIN, Origin, Test, lock};
use crate::fleet::merge::tree::{self, Layout};
use crate::fleet::protocol::{self, MergeTree, Message, Response};
use crate::fleet::store::TestPhase;

impl Origin {
    /// The merge tree of a test's committed agents (the origin itself
    /// receives, so it is left out), or `None` when every agent sends
    /// straight here: a fleet within the fan-out, or outputs broken down
    /// by agent or region (a relay's merged snapshot mixes its agents).
    fn merge_tree(&self, t: &Test) -> Option<MergeTree> {
        if !t.results.tree_exact() {
            return None;
        }
        let agents = t.allocation.agents().filter(|a| *a != self.me);
        let layout = Layout::new(agents, merge_fanout());
        if layout.is_flat() {
            return None;
        }
        let relays = t
            .allocation
            .agents()
            .filter(|a| !layout.children(a).is_empty())
            .filter_map(|a| t.candidates.get(a).map(|c| (a.to_owned(), c.quic)))
            .collect();
        Some(MergeTree {
            fanout: layout.fanout(),
            relays,
        })
    }

    /// Prepares every allocated agent, then commits the agents that are ready.
    pub(super) async fn prepare_and_commit(
        &self,
        test: &Arc<Mutex<Test>>,
        start: Instant,
        start_ms: u64,
    ) -> Result<(), String> {
        let (id, prepare, targets, min_agents) = {
            let t = lock(test);
            let msg = Message::Prepare {
                test_id: t.meta.id.clone(),
                name: t.meta.name.clone(),
                origin: self.me.clone(),
                digest: t.bundle.digest(),
                bundle: t.bundle.clone(),
                allocation: t.allocation.clone(),
                start_unix_ms: start_ms,
                protocol: protocol::PROTOCOL_VERSION,
                origin_addr: self.my_quic,
            };
            let targets: Vec<(String, SocketAddr)> = t
                .allocation
                .agents()
                .filter_map(|a| t.candidates.get(a).map(|c| (a.to_owned(), c.quic)))
                .collect();
            (
                t.meta.id.clone(),
                protocol::encode(&msg, &[]),
                targets,
                t.min_agents,
            )
        };
        let deadline = start.checked_sub(COMMIT_MARGIN).unwrap_or(start);
        let timeout = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(50));
        let replies = futures::future::join_all(targets.iter().map(|(agent, addr)| {
            let body = prepare.clone();
            async move { (agent.clone(), self.call(*addr, body, timeout).await) }
        }))
        .await;
        let mut not_ready = Vec::new();
        {
            let mut t = lock(test);
            for (agent, reply) in &replies {
                match reply {
                    Ok(Response::Prepared { .. }) => {
                        if let Some(p) = t.progress.get_mut(agent) {
                            p.state = "ready".into();
                        }
                    }
                    Ok(Response::Error { message }) => {
                        t.incidents
                            .push(format!("agent {agent} refused the test: {message}"));
                        not_ready.push(agent.clone());
                    }
                    Ok(other) => {
                        t.incidents
                            .push(format!("agent {agent} answered {other:?} to prepare"));
                        not_ready.push(agent.clone());
                    }
                    Err(e) => {
                        t.incidents
                            .push(format!("agent {agent} was not ready in time: {e}"));
                        not_ready.push(agent.clone());
                    }
                }
            }
            for agent in &not_ready {
                if let Some(p) = t.progress.get_mut(agent) {
                    p.state = "dropped".into();
                    p.share = None;
                }
            }
            let ready = targets.len() - not_ready.len();
            if ready < min_agents {
                return Err(format!(
                    "only {ready} of {} agents were ready before the start; the test needs {min_agents}",
                    targets.len()
                ));
            }
            if !not_ready.is_empty() {
                match t.allocation.without(&not_ready) {
                    Ok(a) => {
                        for p in t.progress.values_mut() {
                            if p.state != "dropped" {
                                p.share = a.fraction(&p.agent);
                            }
                        }
                        t.allocation = a;
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
            t.meta.phase = TestPhase::Starting;
            t.meta.allocation = serde_json::to_value(&t.allocation).unwrap_or_default();
            t.meta.agents = t.allocation.agents().map(str::to_owned).collect();
        }
        let (commit, ready_targets) = {
            let t = lock(test);
            let msg = Message::Commit {
                test_id: id.clone(),
                allocation: t.allocation.clone(),
                start_unix_ms: start_ms,
                merge: self.merge_tree(&t),
            };
            let ready: Vec<(String, SocketAddr)> = targets
                .iter()
                .filter(|(a, _)| !not_ready.contains(a))
                .cloned()
                .collect();
            (protocol::encode(&msg, &[]), ready)
        };
        let replies = futures::future::join_all(ready_targets.iter().map(|(agent, addr)| {
            let body = commit.clone();
            async move {
                (
                    agent.clone(),
                    *addr,
                    self.commit_one(*addr, body, start).await,
                )
            }
        }))
        .await;
        let mut unconfirmed = Vec::new();
        {
            let mut t = lock(test);
            for (agent, addr, reply) in replies {
                if !matches!(reply, Ok(Response::Ok)) {
                    t.incidents.push(format!(
                        "agent {agent} did not confirm the start, its share goes to the others: \
                         {reply:?}"
                    ));
                    // Handed over at the first tick, like a drained agent's;
                    // nothing more is awaited from it.
                    t.lost.insert(agent.clone());
                    if let Some(p) = t.progress.get_mut(&agent) {
                        p.state = "lost".into();
                    }
                    t.handover.push(agent);
                    unconfirmed.push(addr);
                }
            }
        }
        // It may have started after all (only its answer was lost): stop it.
        let abort = protocol::encode(
            &Message::Abort {
                test_id: id.clone(),
                reason: "the start was not confirmed in time; the others run this share".into(),
            },
            &[],
        );
        futures::future::join_all(
            unconfirmed
                .into_iter()
                .map(|addr| self.call(addr, abort.clone(), COMMIT_MARGIN)),
        )
        .await;
        Ok(())
    }
}

impl Origin {
    /// Sends one agent the commit, with all the time left before the start
    /// (the transport retransmits what is lost), and again if the exchange
    /// failed early (a broken connection), until the start comes. A commit is
    /// idempotent: an agent that has it answers `Ok` again.
    async fn commit_one(
        &self,
        addr: SocketAddr,
        body: bytes::Bytes,
        start: Instant,
    ) -> Result<Response, String> {
        loop {
            let left = start.saturating_duration_since(Instant::now());
            let reply = self
                .call(addr, body.clone(), left.max(COMMIT_TRY_AT_LEAST))
                .await;
            if matches!(reply, Ok(Response::Ok)) || Instant::now() + COMMIT_TRY_AT_LEAST > start {
                return reply;
            }
        }
    }
}

/// The shortest wait for one commit's answer.
const COMMIT_TRY_AT_LEAST: Duration = Duration::from_millis(50);

/// The fan-out of this origin's merge trees: [`tree::FANOUT_ENV`] when it
/// is set (a bad value is logged and the default used), else
/// [`tree::DEFAULT_FANOUT`].
fn merge_fanout() -> usize {
    match std::env::var(tree::FANOUT_ENV) {
        Ok(v) => tree::parse_fanout(&v).unwrap_or_else(|e| {
            tracing::warn!("{e}; using {}", tree::DEFAULT_FANOUT);
            tree::DEFAULT_FANOUT
        }),
        Err(_) => tree::DEFAULT_FANOUT,
    }
}
