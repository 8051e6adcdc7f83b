//! In-process transport for testing fleet logic: transports bound on one [`MemoryNetwork`] reach
//! each other by address. Requests and replies are encoded into the same frames and envelopes as
//! on QUIC and decoded with each side's own limits; links can be cut and healed.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use tokio::sync::{oneshot, watch};

use super::clock::now_ns;
use super::dispatch::{self, Dispatcher};
use super::envelope::{Reply, Request};
use super::error::TransportError;
use super::frame::{self, frame_limit};
use super::{Handler, Limits, PeerId, Transport};

/// One bound transport as the network sees it.
struct Node {
    /// Node id presented to the peers this node sends to.
    peer_id: PeerId,
    /// Answers requests addressed to this node.
    dispatcher: Dispatcher,
    /// Flipped to `true` on shutdown so in-flight requests end at once.
    shutdown: watch::Sender<bool>,
}

impl Node {
    /// Answers one request frame the way a QUIC stream task would.
    async fn serve(&self, from: PeerId, wire: Bytes) -> Bytes {
        let received = now_ns();
        let reply = match frame::decode(&wire, self.dispatcher.frame_limit()) {
            Ok(payload) => self.dispatcher.answer(from, payload, received).await,
            Err(err) => self.dispatcher.refuse_frame(&from, &err),
        };
        reply.into_wire()
    }
}

#[derive(Default)]
struct State {
    /// Bound transports by address.
    nodes: HashMap<SocketAddr, Arc<Node>>,
    /// Cut links, stored with the smaller address first.
    cuts: HashSet<(SocketAddr, SocketAddr)>,
    /// Next port handed out for binds to port 0.
    next_port: u16,
}

fn link(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    if a <= b { (a, b) } else { (b, a) }
}

/// A simulated network that [`MemoryTransport`]s bind to. Cloning shares the network.
#[derive(Clone, Default)]
pub struct MemoryNetwork {
    state: Arc<Mutex<State>>,
}

impl MemoryNetwork {
    /// An empty network.
    pub fn new() -> Self {
        MemoryNetwork::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another test thread panicked while holding it; the map is
        // still consistent because every critical section is a single insert/remove/lookup.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Binds a transport at `addr` (port 0 picks a free port) that presents itself as `peer_id`
    /// and answers with `handler` under `limits`.
    pub fn bind(
        &self,
        addr: SocketAddr,
        peer_id: impl Into<PeerId>,
        handler: Arc<dyn Handler>,
        limits: Limits,
    ) -> Result<MemoryTransport, TransportError> {
        limits.validate()?;
        let mut state = self.state();
        let mut addr = addr;
        if addr.port() == 0 {
            let mut assigned = None;
            for _ in 0..=u16::MAX {
                state.next_port = state.next_port.wrapping_add(1).max(1);
                let candidate = SocketAddr::new(addr.ip(), state.next_port);
                if !state.nodes.contains_key(&candidate) {
                    assigned = Some(candidate);
                    break;
                }
            }
            addr = assigned.ok_or_else(|| TransportError::Bind {
                addr,
                reason: "every port of this address is in use on the memory network".to_owned(),
            })?;
        } else if state.nodes.contains_key(&addr) {
            return Err(TransportError::Bind {
                addr,
                reason: "address already in use on the memory network".to_owned(),
            });
        }
        let (shutdown, _) = watch::channel(false);
        let node = Arc::new(Node {
            peer_id: peer_id.into(),
            dispatcher: Dispatcher::new(handler, &limits),
            shutdown,
        });
        state.nodes.insert(addr, Arc::clone(&node));
        Ok(MemoryTransport {
            network: self.clone(),
            node,
            addr,
            limits,
        })
    }

    /// Cuts the link between `a` and `b` in both directions: new requests fail as unreachable and
    /// replies still in flight are lost.
    pub fn partition(&self, a: SocketAddr, b: SocketAddr) {
        self.state().cuts.insert(link(a, b));
    }

    /// Restores a link cut by [`MemoryNetwork::partition`].
    pub fn heal(&self, a: SocketAddr, b: SocketAddr) {
        self.state().cuts.remove(&link(a, b));
    }

    fn is_cut(&self, a: SocketAddr, b: SocketAddr) -> bool {
        self.state().cuts.contains(&link(a, b))
    }

    fn lookup(&self, from: SocketAddr, to: SocketAddr) -> Result<Arc<Node>, TransportError> {
        let state = self.state();
        if state.cuts.contains(&link(from, to)) {
            return Err(TransportError::Unreachable {
                peer: to,
                reason: "the link is cut (simulated partition)".to_owned(),
            });
        }
        state
            .nodes
            .get(&to)
            .cloned()
            .ok_or_else(|| TransportError::Unreachable {
                peer: to,
                reason: "no transport is bound at this address".to_owned(),
            })
    }

    fn remove(&self, addr: SocketAddr, node: &Arc<Node>) {
        let mut state = self.state();
        if state.nodes.get(&addr).is_some_and(|n| Arc::ptr_eq(n, node)) {
            state.nodes.remove(&addr);
        }
    }
}

/// A transport bound on a [`MemoryNetwork`]. Dropping it unbinds it.
pub struct MemoryTransport {
    /// The network it is bound on.
    network: MemoryNetwork,
    /// Its own entry (identity, handler, shutdown signal).
    node: Arc<Node>,
    /// Its address on the network.
    addr: SocketAddr,
    /// Its limits, applied to outgoing requests and incoming replies.
    limits: Limits,
}

impl MemoryTransport {
    /// The node id this transport presents.
    pub fn peer_id(&self) -> &str {
        &self.node.peer_id
    }

    /// Unbinds the transport: requests in flight to it fail as closed, new ones as unreachable.
    pub async fn shutdown(&self) {
        self.close();
    }

    fn close(&self) {
        self.network.remove(self.addr, &self.node);
        self.node.shutdown.send_replace(true);
    }

    async fn exchange_inner(
        &self,
        peer: SocketAddr,
        request: Request,
        timeout: Duration,
    ) -> Result<Reply, TransportError> {
        let deadline = dispatch::deadline_after(timeout);
        let (kind, payload) = dispatch::prepare(peer, request, &self.limits)?;
        if *self.node.shutdown.borrow() {
            return Err(TransportError::Closed {
                peer,
                reason: "this transport has been shut down".to_owned(),
            });
        }
        let target = self.network.lookup(self.addr, peer)?;
        let mut target_down = target.shutdown.subscribe();
        if *target_down.borrow_and_update() {
            return Err(TransportError::Unreachable {
                peer,
                reason: "the peer has shut down".to_owned(),
            });
        }
        let (mut reply_tx, reply_rx) = oneshot::channel();
        let from = self.node.peer_id.clone();
        let wire = payload.into_wire();
        tokio::spawn(async move {
            let reply = tokio::select! {
                reply = target.serve(from, wire) => reply,
                // The peer went away mid-request: drop the reply channel, the requester sees it.
                _ = target_down.wait_for(|down| *down) => return,
                // The requester gave up (timeout): stop working on its behalf.
                () = reply_tx.closed() => return,
            };
            let _ = reply_tx.send(reply);
        });
        let wire = match tokio::time::timeout_at(deadline, reply_rx).await {
            Err(_) => {
                return Err(TransportError::Timeout {
                    peer,
                    after: timeout,
                });
            }
            Ok(Err(_)) => {
                return Err(TransportError::Closed {
                    peer,
                    reason: "the peer shut down before answering".to_owned(),
                });
            }
            Ok(Ok(wire)) => wire,
        };
        if self.network.is_cut(self.addr, peer) {
            return Err(TransportError::Unreachable {
                peer,
                reason: "the link was cut before the reply arrived (simulated partition)"
                    .to_owned(),
            });
        }
        let payload = frame::decode(&wire, frame_limit(self.limits.max_message))
            .map_err(|err| dispatch::response_frame_error(peer, &err, &self.limits))?;
        dispatch::finish(peer, kind, payload, &self.limits)
    }
}

impl Transport for MemoryTransport {
    fn exchange(
        &self,
        peer: SocketAddr,
        request: Request,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Reply, TransportError>> {
        Box::pin(self.exchange_inner(peer, request, timeout))
    }

    fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    fn peer_id(
        &self,
        peer: SocketAddr,
        _timeout: Duration,
    ) -> BoxFuture<'_, Result<PeerId, TransportError>> {
        let found = self
            .network
            .lookup(self.addr, peer)
            .map(|node| node.peer_id.clone());
        Box::pin(async move { found })
    }
}

impl std::fmt::Debug for MemoryTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTransport")
            .field("addr", &self.addr)
            .field("peer_id", &self.node.peer_id)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Drop for MemoryTransport {
    fn drop(&mut self) {
        self.close();
    }
}
