//! Taking over a test whose origin died.
//!
//! While a test runs, every participant watches its coordinator in gossip.
//! When gossip declares it dead, the participants agree without a word: the
//! successor is the lowest node id of the test's allocation that is still
//! live. The successor adopts the test (its origin side rebuilds the results
//! from the intervals every agent sends it again from its data directory and
//! hands the dead agent's share to the others), and every participant
//! redirects its results to it.
//!
//! A successor takes over only while a majority of the allocation is live,
//! and it checks that majority itself over QUIC before adopting: gossip
//! declares peers dead one at a time, so an agent cut off from all the
//! others may still see some of them as live. Such an agent cannot tell a
//! dead origin from its own isolation: instead of coordinating a fleet of
//! one, it lets the orphan timeout stop its load.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Coordinator, Participant};
use crate::fleet::allocation::Allocation;
use crate::fleet::protocol::PlanBundle;
use crate::fleet::selector::Candidate;
use crate::fleet::transport::{Request, Transport};
use crate::plan::Plan;

/// How often a running participant looks at its coordinator in gossip.
const WATCH_EVERY: Duration = Duration::from_millis(250);
/// How long a peer has to answer the successor's liveness check.
const PING_TIMEOUT: Duration = Duration::from_millis(750);

/// What a participant needs from the rest of the agent to take a test over.
pub trait Succession: Send + Sync {
    /// The live member `node` (this agent included), or `None` when gossip
    /// does not know it or declared it dead.
    fn member(&self, node: &str) -> Option<Candidate>;
    /// This agent is the successor: coordinate `orphan` from now on.
    fn adopt(&self, orphan: Orphan);
}

/// A running test whose coordinator was lost, as its successor knows it.
#[derive(Debug, Clone)]
pub struct Orphan {
    pub test_id: String,
    pub name: String,
    /// The coordinator that was lost.
    pub previous: String,
    pub bundle: PlanBundle,
    pub plan: Arc<Plan>,
    /// The latest allocation this agent received.
    pub allocation: Allocation,
    pub start_unix_ms: u64,
    /// The allocation's agents that are live now.
    pub members: Vec<Candidate>,
}

/// The successor of the coordinators in `lost`: the lowest id among
/// `agents` that is `me` or live, provided those live agents are more than
/// half of `agents`.
pub fn successor<'a>(
    agents: &[&'a str],
    lost: &BTreeSet<String>,
    me: &str,
    is_live: impl Fn(&str) -> bool,
) -> Option<&'a str> {
    let live: Vec<&'a str> = agents
        .iter()
        .copied()
        .filter(|a| !lost.contains(*a) && (*a == me || is_live(a)))
        .collect();
    if live.len() * 2 <= agents.len() {
        return None;
    }
    live.into_iter().min()
}

/// Watches the coordinator of `test_id` until `done`; when it is lost,
/// redirects this agent's results to the successor (adopting the test when
/// the successor is this agent).
pub(super) async fn watch_coordinator(
    p: Arc<Participant>,
    test_id: String,
    done: CancellationToken,
) {
    let Some(succession) = p.succession.get().cloned() else {
        return;
    };
    let mut lost = BTreeSet::new();
    let mut told_no_majority = false;
    loop {
        tokio::select! {
            _ = done.cancelled() => return,
            _ = tokio::time::sleep(WATCH_EVERY) => {}
        }
        let Some(view) = p.coordination(&test_id) else {
            return;
        };
        let current = view.coordinator.node.clone();
        if current == p.me || succession.member(&current).is_some() {
            continue;
        }
        lost.insert(current.clone());
        let agents: Vec<String> = view.allocation.agents().map(str::to_owned).collect();
        let agents: Vec<&str> = agents.iter().map(String::as_str).collect();
        let Some(next) = successor(&agents, &lost, &p.me, |a| succession.member(a).is_some())
        else {
            if !told_no_majority {
                told_no_majority = true;
                tracing::warn!(test = %test_id, coordinator = %current,
                    "the coordinator is gone and most of the test's agents are unreachable: \
                     nobody takes over; the load stops after the orphan timeout");
            }
            continue;
        };
        let Some(member) = succession.member(next) else {
            continue;
        };
        let next = next.to_owned();
        if next == p.me {
            // Gossip may still count peers that are gone: only peers that answer make a majority.
            let others: Vec<SocketAddr> = agents
                .iter()
                .filter(|a| **a != p.me && !lost.contains(**a))
                .filter_map(|a| succession.member(a).map(|c| c.quic))
                .collect();
            let answering = answering(p.transport.as_ref(), &others).await;
            if (answering + 1) * 2 <= agents.len() {
                if !told_no_majority {
                    told_no_majority = true;
                    tracing::warn!(test = %test_id, coordinator = %current,
                        "the coordinator is gone and only {answering} other agent(s) of {} answer: \
                         not taking over; the load stops after the orphan timeout", agents.len());
                }
                continue;
            }
            tracing::warn!(test = %test_id, lost = %current, "the coordinator is gone: taking the test over");
            succession.adopt(Orphan {
                test_id: test_id.clone(),
                name: view.name,
                previous: current,
                bundle: PlanBundle::clone(&view.bundle),
                plan: view.plan,
                start_unix_ms: view.start_unix_ms,
                members: agents.iter().filter_map(|a| succession.member(a)).collect(),
                allocation: view.allocation,
            });
        } else {
            tracing::warn!(test = %test_id, lost = %current, successor = %next,
                "the coordinator is gone: {next} takes the test over");
        }
        p.redirect(
            &test_id,
            Coordinator {
                node: next,
                addr: member.quic,
            },
        );
    }
}

/// How many of `peers` answer a QUIC round trip within [`PING_TIMEOUT`].
async fn answering(transport: &dyn Transport, peers: &[SocketAddr]) -> usize {
    let pings = peers
        .iter()
        .map(|addr| transport.exchange(*addr, Request::Time, PING_TIMEOUT));
    futures::future::join_all(pings)
        .await
        .iter()
        .filter(|r| r.is_ok())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lost(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_lowest_live_agent_succeeds_whoever_computes_it() {
        let agents = ["a", "b", "c", "d"];
        let live = |a: &str| a != "a";
        for me in ["b", "c", "d"] {
            assert_eq!(successor(&agents, &lost(&["a"]), me, live), Some("b"));
        }
    }

    #[test]
    fn a_lost_successor_passes_the_test_on() {
        let agents = ["a", "b", "c", "d", "e"];
        let live = |a: &str| a != "a" && a != "b";
        assert_eq!(successor(&agents, &lost(&["a", "b"]), "e", live), Some("c"));
    }

    #[test]
    fn nobody_takes_over_without_a_majority() {
        let agents = ["a", "b", "c"];
        // Cut off from everyone: only this agent is live.
        assert_eq!(successor(&agents, &lost(&["a"]), "b", |_| false), None);
        // Two agents, one gone: a dead peer and a partition look the same.
        assert_eq!(successor(&["a", "b"], &lost(&["a"]), "b", |_| false), None);
        // Two of three live is a majority.
        assert_eq!(
            successor(&agents, &lost(&["a"]), "c", |a| a == "b"),
            Some("b")
        );
    }

    #[test]
    fn the_agent_itself_counts_as_live() {
        let agents = ["a", "b", "c"];
        assert_eq!(
            successor(&agents, &lost(&["a"]), "b", |a| a == "c"),
            Some("b")
        );
    }
}
