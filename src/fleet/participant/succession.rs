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
//! A successor takes over fully while a majority of the allocation is live,
//! and it checks that majority itself over QUIC before adopting: gossip
//! declares peers dead one at a time, so an agent cut off from all the
//! others may still see some of them as live. With exactly half live (the
//! survivor of a two-agent fleet) it takes over partially: it finishes the
//! test and seals a summary marked partial, which the origin's own replaces
//! if the origin was only cut off. With fewer, an agent cannot tell a dead
//! origin from its own isolation: instead of coordinating a fleet of one,
//! it lets the orphan timeout stop its load.
//!
//! The watch runs from the commit until the test is sealed here (or its
//! results deadline), so an agent whose share already ended still sends its
//! results to a successor.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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
    /// The agents of the allocation that are live now.
    pub members: Vec<Candidate>,
    /// Set when no majority of the test's agents was live: why the summary
    /// this agent seals is partial ([`Takeover::Partial`]).
    pub partial: Option<String>,
}

/// Who takes a test over when its coordinators in `lost` are gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takeover<'a> {
    /// A majority of the test's agents is live: this one coordinates the
    /// rest of the test.
    Full(&'a str),
    /// Exactly half of the agents is live (a two-agent fleet that lost its
    /// origin): this one finishes the test and seals a summary marked
    /// partial, since a cut-off origin looks the same as a dead one.
    Partial(&'a str),
    /// Fewer than half: this side cannot tell a dead origin from its own
    /// isolation, and nobody takes over.
    Nobody,
}

impl<'a> Takeover<'a> {
    /// The agent that takes over, if any.
    pub fn agent(self) -> Option<&'a str> {
        match self {
            Takeover::Full(a) | Takeover::Partial(a) => Some(a),
            Takeover::Nobody => None,
        }
    }
}

/// What `live` agents out of `total` allow, the lowest live id being
/// `lowest`.
pub fn takeover_by(lowest: &str, live: usize, total: usize) -> Takeover<'_> {
    if live == 0 || live * 2 < total {
        Takeover::Nobody
    } else if live * 2 == total {
        Takeover::Partial(lowest)
    } else {
        Takeover::Full(lowest)
    }
}

/// The successor of the coordinators in `lost`: the lowest id among
/// `agents` that is `me` or live, and whether those live agents are a
/// majority of `agents` ([`Takeover`]).
pub fn successor<'a>(
    agents: &[&'a str],
    lost: &BTreeSet<String>,
    me: &str,
    is_live: impl Fn(&str) -> bool,
) -> Takeover<'a> {
    let live: Vec<&'a str> = agents
        .iter()
        .copied()
        .filter(|a| !lost.contains(*a) && (*a == me || is_live(a)))
        .collect();
    match live.iter().min() {
        Some(lowest) => takeover_by(lowest, live.len(), agents.len()),
        None => Takeover::Nobody,
    }
}

/// The agent that would succeed `me`, a coordinator, if it died now: the
/// lowest live id of `agents` other than `me`. The coordinator's own
/// intervals are kept there as they are produced
/// ([`crate::fleet::protocol::Message::Keep`]).
pub fn designated<'a>(
    agents: &[&'a str],
    me: &str,
    is_live: impl Fn(&str) -> bool,
) -> Option<&'a str> {
    agents
        .iter()
        .copied()
        .filter(|a| *a != me && is_live(a))
        .min()
}

/// Watches the coordinator of `test_id` while this agent runs its share
/// and, after it, until the test is sealed here; when it is lost, redirects
/// this agent's results to the successor (adopting the test when the
/// successor is this agent).
pub(super) async fn watch_coordinator(p: Arc<Participant>, test_id: String) {
    let Some(succession) = p.succession.get().cloned() else {
        return;
    };
    let mut lost = BTreeSet::new();
    let mut told_no_majority = false;
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
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
        let takeover = successor(&agents, &lost, &p.me, |a| succession.member(a).is_some());
        let Some(next) = takeover.agent() else {
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
            let partial = match takeover_by(&p.me, answering + 1, agents.len()) {
                Takeover::Full(_) => None,
                Takeover::Partial(_) => Some(partial_reason(&current, answering + 1, agents.len())),
                Takeover::Nobody => {
                    if !told_no_majority {
                        told_no_majority = true;
                        tracing::warn!(test = %test_id, coordinator = %current,
                            "the coordinator is gone and only {answering} other agent(s) of {} answer: \
                             not taking over; the load stops after the orphan timeout", agents.len());
                    }
                    continue;
                }
            };
            tracing::warn!(test = %test_id, lost = %current, partial = partial.is_some(),
                "the coordinator is gone: taking the test over");
            succession.adopt(Orphan {
                test_id: test_id.clone(),
                name: view.name,
                previous: current,
                bundle: PlanBundle::clone(&view.bundle),
                plan: view.plan,
                start_unix_ms: view.start_unix_ms,
                members: agents.iter().filter_map(|a| succession.member(a)).collect(),
                allocation: view.allocation,
                partial,
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

/// Why a summary sealed by a successor without a majority is partial.
pub fn partial_reason(lost: &str, live: usize, total: usize) -> String {
    format!(
        "partial summary: origin {lost} was lost and only {live} of the test's {total} agents \
         were live, no majority to prove it dead (a network partition looks the same); the \
         origin's own summary replaces this one if it sealed one"
    )
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
            assert_eq!(
                successor(&agents, &lost(&["a"]), me, live),
                Takeover::Full("b")
            );
        }
    }

    #[test]
    fn a_lost_successor_passes_the_test_on() {
        let agents = ["a", "b", "c", "d", "e"];
        let live = |a: &str| a != "a" && a != "b";
        assert_eq!(
            successor(&agents, &lost(&["a", "b"]), "e", live),
            Takeover::Full("c")
        );
    }

    #[test]
    fn nobody_takes_over_without_half_of_the_agents() {
        let agents = ["a", "b", "c"];
        // Cut off from everyone: only this agent is live.
        assert_eq!(
            successor(&agents, &lost(&["a"]), "b", |_| false),
            Takeover::Nobody
        );
        // Two of three live is a majority.
        assert_eq!(
            successor(&agents, &lost(&["a"]), "c", |a| a == "b"),
            Takeover::Full("b")
        );
        // One of four is not even half.
        assert_eq!(
            successor(&["a", "b", "c", "d"], &lost(&["a"]), "d", |_| false),
            Takeover::Nobody
        );
    }

    #[test]
    fn the_survivor_of_two_agents_takes_over_partially() {
        // Two agents, one gone: a dead peer and a partition look the same.
        assert_eq!(
            successor(&["a", "b"], &lost(&["a"]), "b", |_| false),
            Takeover::Partial("b")
        );
        // Half of four agents is no majority either, whoever computes it.
        let agents = ["a", "b", "c", "d"];
        for me in ["c", "d"] {
            let live = |x: &str| x == "c" || x == "d";
            assert_eq!(
                successor(&agents, &lost(&["a"]), me, live),
                Takeover::Partial("c")
            );
        }
        assert_eq!(takeover_by("b", 1, 2), Takeover::Partial("b"));
        assert_eq!(takeover_by("b", 2, 3), Takeover::Full("b"));
        assert_eq!(takeover_by("b", 0, 0), Takeover::Nobody);
    }

    #[test]
    fn the_agent_itself_counts_as_live() {
        let agents = ["a", "b", "c"];
        assert_eq!(
            successor(&agents, &lost(&["a"]), "b", |a| a == "c"),
            Takeover::Full("b")
        );
    }

    #[test]
    fn a_coordinator_keeps_its_intervals_where_its_successor_would_be() {
        let agents = ["a", "b", "c"];
        // The origin is "a": its successor would be the lowest live other agent.
        assert_eq!(designated(&agents, "a", |_| true), Some("b"));
        assert_eq!(designated(&agents, "a", |x| x != "b"), Some("c"));
        // A successor that took over keeps its own intervals at the next one.
        assert_eq!(designated(&agents, "b", |x| x != "a"), Some("c"));
        // The same choice as the successor the others compute when "a" dies.
        let live = |x: &str| x != "a";
        assert_eq!(
            successor(&agents, &lost(&["a"]), "c", live).agent(),
            designated(&agents, "a", live)
        );
        assert_eq!(designated(&["a"], "a", |_| true), None);
    }

    #[test]
    fn a_partial_summary_says_why() {
        let reason = partial_reason("agent-0", 1, 2);
        assert!(reason.starts_with("partial summary: origin agent-0 was lost"));
        assert!(reason.contains("only 1 of the test's 2 agents"));
        assert!(reason.contains("partition"));
    }
}
