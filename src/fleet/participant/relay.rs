//! This agent's place in a test's merge tree: where its own intervals go,
//! and, when it has children, the relay that merges their intervals of
//! each seq with its own and forwards one combined interval upwards.
//!
//! A delivery is answered only once the origin took it, so a child whose
//! relay is lost or late learns it from a failed or timed-out request and
//! sends to the next ancestor, or the origin, instead ([`Relay::skip`]):
//! nothing a child sent is lost with its relay. A seq is forwarded once
//! every child and this agent reported it, or [`RELAY_WAIT`] after the
//! first report, whichever comes first.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::fleet::merge::combine::{Combined, MAX_COVERS};
use crate::fleet::merge::tree::Layout;
use crate::fleet::protocol::{self, MergeTree, Message, Response};
use crate::fleet::transport::Transport;
use crate::sync::lock;

/// How long a relay holds a seq for the children that have not reported.
pub const RELAY_WAIT: Duration = Duration::from_secs(1);

/// How long one delivery to the origin may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(3);

/// What a delivery to a relay may take beyond the relays' waits: a relay
/// that does not answer within it is skipped, and a lost relay costs its
/// children about two seconds, well within the origin's seal lag.
const HOP_TIMEOUT: Duration = Duration::from_secs(1);

/// Where an interval goes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Straight to the origin.
    Origin,
    /// This agent relays: merged here with its children's.
    Here,
    /// To this relay.
    Relay { agent: String, addr: SocketAddr },
}

/// One test's tree as this agent sees it.
pub struct Relay {
    test_id: String,
    me: String,
    /// The coordinator the tree leads to; another one (a successor) gets
    /// every interval straight.
    origin: String,
    origin_addr: SocketAddr,
    layout: Layout,
    tree: MergeTree,
    transport: Arc<dyn Transport>,
    /// Children and this agent: a seq they all reported is complete.
    expected: BTreeSet<String>,
    pending: Mutex<BTreeMap<u64, Vec<Part>>>,
    /// Ancestors that did not answer: skipped for the rest of the test.
    skipped: Mutex<BTreeSet<String>>,
}

/// A report waiting to be forwarded, and who waits for the answer.
struct Part {
    combined: Combined,
    reply: oneshot::Sender<Response>,
}

impl Relay {
    /// The tree of `test_id` committed with `tree` over `agents` (the
    /// allocation's), leading to `origin` at `origin_addr`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        test_id: &str,
        me: &str,
        origin: &str,
        origin_addr: SocketAddr,
        agents: impl Iterator<Item = String>,
        tree: MergeTree,
        transport: Arc<dyn Transport>,
    ) -> Relay {
        let layout = Layout::new(agents.filter(|a| a != origin), tree.fanout);
        let mut expected: BTreeSet<String> = layout.children(me).iter().cloned().collect();
        expected.insert(me.to_owned());
        Relay {
            test_id: test_id.to_owned(),
            me: me.to_owned(),
            origin: origin.to_owned(),
            origin_addr,
            layout,
            tree,
            transport,
            expected,
            pending: Mutex::new(BTreeMap::new()),
            skipped: Mutex::new(BTreeSet::new()),
        }
    }

    pub fn test_id(&self) -> &str {
        &self.test_id
    }

    /// The coordinator this tree leads to.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Whether other agents send here.
    pub fn has_children(&self) -> bool {
        !self.layout.children(&self.me).is_empty()
    }

    /// Where `agent`'s intervals go (this agent's, or a child's forwarded
    /// combined intervals): its nearest ancestor not skipped.
    fn route_of(&self, agent: &str) -> Route {
        let skipped = lock(&self.skipped);
        match self.layout.parent_avoiding(agent, |a| skipped.contains(a)) {
            None => Route::Origin,
            Some(parent) => match self.tree.relays.get(parent) {
                Some(addr) => Route::Relay {
                    agent: parent.to_owned(),
                    addr: *addr,
                },
                None => Route::Origin,
            },
        }
    }

    /// Where this agent's own intervals go.
    pub fn route(&self) -> Route {
        if self.has_children() {
            Route::Here
        } else {
            self.route_of(&self.me)
        }
    }

    /// A relay that did not answer: skipped from now on.
    pub fn skip(&self, agent: &str) {
        if lock(&self.skipped).insert(agent.to_owned()) {
            tracing::warn!(test = %self.test_id, relay = agent,
                "relay did not answer; sending to the next level up");
        }
    }

    /// How long a delivery to a relay may take: it holds each seq up to
    /// [`RELAY_WAIT`], and so may every relay above it.
    pub fn relay_timeout(&self) -> Duration {
        let levels = u32::try_from(self.layout.depth(&self.me)).unwrap_or(u32::MAX);
        HOP_TIMEOUT + RELAY_WAIT * levels.saturating_add(1)
    }

    /// A report of one seq (a child's interval, a child relay's combined
    /// interval, or this agent's own), answered once it reached the
    /// origin, with the origin's answer.
    pub async fn offer(self: &Arc<Self>, combined: Combined) -> Response {
        let seq = combined.seq;
        let (reply, answer) = oneshot::channel();
        let (first, complete) = {
            let mut pending = lock(&self.pending);
            let parts = pending.entry(seq).or_default();
            let first = parts.is_empty();
            parts.push(Part { combined, reply });
            let covered: BTreeSet<&str> = parts
                .iter()
                .flat_map(|p| p.combined.covers.iter().map(|c| c.agent.as_str()))
                .collect();
            let complete = self.expected.iter().all(|a| covered.contains(a.as_str()));
            (first, complete)
        };
        if complete {
            tokio::spawn(self.clone().flush(seq));
        } else if first {
            let relay = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(RELAY_WAIT).await;
                relay.flush(seq).await;
            });
        }
        answer.await.unwrap_or_else(|_| Response::Error {
            message: format!("relay {} stopped before forwarding interval {seq}", self.me),
        })
    }

    /// Forwards what arrived of `seq` (nothing if it went already).
    async fn flush(self: Arc<Self>, seq: u64) {
        let Some(parts) = lock(&self.pending).remove(&seq) else {
            return;
        };
        let mut chunks: Vec<Vec<Part>> = Vec::new();
        let mut covers = 0;
        for part in parts {
            let n = part.combined.covers.len();
            if chunks.is_empty() || covers + n > MAX_COVERS {
                chunks.push(Vec::new());
                covers = 0;
            }
            covers += n;
            if let Some(chunk) = chunks.last_mut() {
                chunk.push(part);
            }
        }
        for chunk in chunks {
            self.forward(chunk).await;
        }
    }

    /// Sends parts merged into one; when the origin already has some of
    /// the agents they cover, each part on its own.
    async fn forward(&self, mut parts: Vec<Part>) {
        let merged = merge_all(parts.iter().map(|p| &p.combined));
        let answer = match merged {
            Ok(c) => self.send_up(&c).await,
            Err(message) => Response::Error { message },
        };
        if matches!(answer, Response::Overlap { .. }) && parts.len() > 1 {
            for part in parts.drain(..) {
                let answer = self.send_up(&part.combined).await;
                let _ = part.reply.send(answer);
            }
            return;
        }
        for part in parts {
            let _ = part.reply.send(answer.clone());
        }
    }

    /// One combined interval to the nearest ancestor that answers, or the
    /// origin.
    async fn send_up(&self, combined: &Combined) -> Response {
        let (payload, digests) = combined.encode();
        loop {
            let (addr, to_relay, timeout, relay) = match self.route_of(&self.me) {
                Route::Relay { agent, addr } => (addr, true, self.relay_timeout(), Some(agent)),
                _ => (self.origin_addr, false, SEND_TIMEOUT, None),
            };
            let message = Message::Merged {
                test_id: self.test_id.clone(),
                relay: self.me.clone(),
                seq: combined.seq,
                agents: combined.agents(),
                digests: digests.clone(),
                to_relay,
            };
            let body = protocol::encode(&message, &payload);
            let failure = match self.transport.request(addr, body, timeout).await {
                Ok(reply) => match protocol::decode::<Response>(&reply) {
                    Ok((Response::Error { message }, _)) if relay.is_some() => message,
                    Ok((answer, _)) => return answer,
                    Err(e) => e.to_string(),
                },
                Err(e) => e.to_string(),
            };
            match relay {
                Some(agent) => {
                    tracing::debug!(test = %self.test_id, %agent, "relay failed: {failure}");
                    self.skip(&agent);
                }
                None => {
                    return Response::Error {
                        message: format!(
                            "the origin did not take interval {}: {failure}",
                            combined.seq
                        ),
                    };
                }
            }
        }
    }
}

/// Every part merged into one combined interval.
fn merge_all<'a>(mut parts: impl Iterator<Item = &'a Combined>) -> Result<Combined, String> {
    let mut merged = parts
        .next()
        .cloned()
        .ok_or_else(|| "nothing to forward".to_owned())?;
    for part in parts {
        merged.absorb(part.clone())?;
    }
    Ok(merged)
}

/// A relay's answer to a child's delivery (`Message::Interval` or
/// `Message::Merged` with `to_relay`), once it reached the origin.
pub async fn receive(
    relay: Option<Arc<Relay>>,
    me: &str,
    msg: Message,
    payload: Bytes,
) -> Response {
    let (test_id, combined) = match msg {
        Message::Interval {
            test_id,
            agent,
            seq,
            ..
        } => {
            let combined = crate::metrics::Snapshot::decode(&payload)
                .map_err(|e| e.to_string())
                .and_then(|s| Combined::of(&agent, seq, s).map_err(|e| e.to_string()));
            (
                test_id,
                combined.map_err(|e| format!("interval {seq} of {agent}: {e}")),
            )
        }
        Message::Merged {
            test_id,
            relay,
            seq,
            agents,
            digests,
            ..
        } => (
            test_id,
            Combined::decode(seq, &agents, &digests, &payload)
                .map_err(|e| format!("interval {seq} merged by {relay}: {e}")),
        ),
        _ => return error("not a relay message".into()),
    };
    let Some(relay) = relay.filter(|r| r.test_id() == test_id && r.has_children()) else {
        return error(format!("agent {me} relays no intervals of test {test_id}"));
    };
    match combined {
        Ok(c) => relay.offer(c).await,
        Err(message) => error(message),
    }
}

fn error(message: String) -> Response {
    Response::Error { message }
}
