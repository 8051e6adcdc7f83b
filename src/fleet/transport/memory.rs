//! In-process transport for testing fleet logic: transports bound on one [`MemoryNetwork`] reach
//! each other by address. Requests and replies are encoded into the same frames and envelopes as
//! on QUIC and decoded with each side's own limits; links can be cut and healed, and given a
//! one-way delay, jitter and loss ([`LinkModel`], drawn from a seeded generator so a run
//! replays). Each transport stamps clock measurements with its own [`WallClock`], so clock skew
//! can be simulated too.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use tokio::sync::{oneshot, watch};

use super::dispatch::{self, Dispatcher};
use super::envelope::{Reply, Request};
use super::error::TransportError;
use super::frame::{self, frame_limit};
use super::{Handler, Limits, PeerId, Transport};
use crate::clock::WallClock;

/// One bound transport as the network sees it.
struct Node {
    /// Node id presented to the peers this node sends to.
    peer_id: PeerId,
    /// Answers requests addressed to this node.
    dispatcher: Dispatcher,
    /// Flipped to `true` on shutdown so in-flight requests end at once.
    shutdown: watch::Sender<bool>,
    /// This node's wall clock (stamps clock measurements).
    clock: WallClock,
}

impl Node {
    /// Answers one request frame the way a QUIC stream task would.
    async fn serve(&self, from: PeerId, wire: Bytes) -> Bytes {
        let received = self.clock.now_ns();
        let reply = match frame::decode(&wire, self.dispatcher.frame_limit()) {
            Ok(payload) => self.dispatcher.answer(from, payload, received).await,
            Err(err) => self.dispatcher.refuse_frame(&from, &err),
        };
        reply.into_wire()
    }
}

/// How messages travel one way between two addresses.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LinkModel {
    /// Time every message takes.
    pub delay: Duration,
    /// Up to this much more, drawn uniformly per message.
    pub jitter: Duration,
    /// Probability (0 to 1) that a transmission is lost. As on QUIC's
    /// reliable streams, a lost message is sent again after a
    /// retransmission timeout ([`LinkModel::rto`]), and again while the
    /// draws say lost: loss delays a message, and only a loss outlasting
    /// the request's timeout fails it. (Messages that never arrive are a
    /// partition: [`MemoryNetwork::partition`].)
    pub loss: f64,
}

impl LinkModel {
    /// The wait before a lost transmission is sent again: three one-way
    /// delays, at least 200 ms (QUIC's probe timeout is of that order).
    pub fn rto(&self) -> Duration {
        (self.delay * 3).max(Duration::from_millis(200))
    }
}

/// What a message drew on its way: when it arrives (`None`: it is
/// retransmitted so often that it would never arrive in time).
type Passage = Option<Duration>;

/// Retransmissions after which a message is given up as lost for good.
const MAX_RETRANSMISSIONS: u32 = 16;

struct State {
    /// Bound transports by address.
    nodes: HashMap<SocketAddr, Arc<Node>>,
    /// Cut links, stored with the smaller address first.
    cuts: HashSet<(SocketAddr, SocketAddr)>,
    /// Next port handed out for binds to port 0.
    next_port: u16,
    /// Links with a model of their own, by (from, to).
    links: HashMap<(SocketAddr, SocketAddr), LinkModel>,
    /// The model of every other link (none: instant and lossless).
    default_link: LinkModel,
    /// Draws delays and losses; seeded, so a run replays.
    rng: fastrand::Rng,
}

impl Default for State {
    fn default() -> Self {
        State {
            nodes: HashMap::new(),
            cuts: HashSet::new(),
            next_port: 0,
            links: HashMap::new(),
            default_link: LinkModel::default(),
            rng: fastrand::Rng::with_seed(0),
        }
    }
}

impl State {
    fn passage(&mut self, from: SocketAddr, to: SocketAddr) -> Passage {
        let model = self
            .links
            .get(&(from, to))
            .copied()
            .unwrap_or(self.default_link);
        let mut resent = Duration::ZERO;
        let mut tries = 0;
        while model.loss > 0.0 && self.rng.f64() < model.loss {
            tries += 1;
            if tries > MAX_RETRANSMISSIONS {
                return None;
            }
            resent += model.rto();
        }
        let jitter = if model.jitter.is_zero() {
            Duration::ZERO
        } else {
            model.jitter.mul_f64(self.rng.f64())
        };
        Some(resent + model.delay + jitter)
    }
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

    /// A network whose delays and losses are drawn from `seed`.
    pub fn seeded(seed: u64) -> Self {
        let network = MemoryNetwork::default();
        network.state().rng = fastrand::Rng::with_seed(seed);
        network
    }

    /// Gives every link without a model of its own `model`.
    pub fn set_default_link(&self, model: LinkModel) {
        self.state().default_link = model;
    }

    /// Gives the link from `from` to `to` (that direction only) `model`.
    pub fn set_link(&self, from: SocketAddr, to: SocketAddr, model: LinkModel) {
        self.state().links.insert((from, to), model);
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
        self.bind_clocked(addr, peer_id, handler, limits, WallClock::system())
    }

    /// [`MemoryNetwork::bind`], with `clock` as the transport's wall clock.
    pub fn bind_clocked(
        &self,
        addr: SocketAddr,
        peer_id: impl Into<PeerId>,
        handler: Arc<dyn Handler>,
        limits: Limits,
        clock: WallClock,
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
            dispatcher: Dispatcher::new(handler, &limits).with_clock(clock.clone()),
            shutdown,
            clock,
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

    /// What a request from `from` to `to` and its reply draw: each one's
    /// delay, or that it is lost.
    fn passages(&self, from: SocketAddr, to: SocketAddr) -> (Passage, Passage) {
        let mut state = self.state();
        let there = state.passage(from, to);
        let back = state.passage(to, from);
        (there, back)
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
        let (there, back) = self.network.passages(self.addr, peer);
        tokio::spawn(async move {
            let exchange = async {
                // A request lost for good never reaches the peer.
                tokio::time::sleep(there?).await;
                let reply = target.serve(from, wire).await;
                // A reply lost for good is answered but never arrives.
                tokio::time::sleep(back?).await;
                Some(reply)
            };
            let reply = tokio::select! {
                reply = exchange => reply,
                // The peer went away mid-request: drop the reply channel, the requester sees it.
                _ = target_down.wait_for(|down| *down) => return,
                // The requester gave up (timeout): stop working on its behalf.
                () = reply_tx.closed() => return,
            };
            match reply {
                Some(reply) => {
                    let _ = reply_tx.send(reply);
                }
                // Lost: hold the channel so the requester waits for its deadline.
                None => reply_tx.closed().await,
            }
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

    fn wall_clock(&self) -> WallClock {
        self.node.clock.clone()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::transport::handler_fn;

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, last], 7000))
    }

    fn echo_at(network: &MemoryNetwork, at: SocketAddr, id: &str) -> MemoryTransport {
        network
            .bind(
                at,
                id,
                handler_fn(|_, body| async move { body }),
                Limits::default(),
            )
            .expect("binds on the memory network")
    }

    #[tokio::test(start_paused = true)]
    async fn a_link_delays_each_way_by_its_own_model() {
        let network = MemoryNetwork::seeded(7);
        let (a, b) = (
            echo_at(&network, addr(1), "a"),
            echo_at(&network, addr(2), "b"),
        );
        let one_way = |ms| LinkModel {
            delay: Duration::from_millis(ms),
            ..LinkModel::default()
        };
        network.set_link(addr(1), addr(2), one_way(30));
        network.set_link(addr(2), addr(1), one_way(10));
        let before = tokio::time::Instant::now();
        let reply = a
            .request(addr(2), Bytes::from_static(b"hi"), Duration::from_secs(1))
            .await
            .expect("answered");
        assert_eq!(reply, Bytes::from_static(b"hi"));
        assert_eq!(before.elapsed(), Duration::from_millis(40));
        drop(b);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_transmission_is_resent_after_the_rto_and_the_same_seed_loses_the_same_ones() {
        async fn outcomes(seed: u64) -> Vec<bool> {
            let network = MemoryNetwork::seeded(seed);
            let (a, _b) = (
                echo_at(&network, addr(1), "a"),
                echo_at(&network, addr(2), "b"),
            );
            network.set_default_link(LinkModel {
                delay: Duration::from_millis(5),
                jitter: Duration::from_millis(5),
                loss: 0.3,
            });
            let mut answered = Vec::new();
            for _ in 0..40 {
                let reply = a
                    .request(
                        addr(2),
                        Bytes::from_static(b"x"),
                        Duration::from_millis(100),
                    )
                    .await;
                if let Err(e) = &reply {
                    assert!(matches!(e, TransportError::Timeout { .. }), "{e}");
                }
                answered.push(reply.is_ok());
            }
            answered
        }
        let first = outcomes(11).await;
        let network = MemoryNetwork::seeded(3);
        let (a, _b) = (
            echo_at(&network, addr(1), "a"),
            echo_at(&network, addr(2), "b"),
        );
        network.set_default_link(LinkModel {
            delay: Duration::from_millis(10),
            jitter: Duration::ZERO,
            loss: 0.5,
        });
        let mut slow = 0;
        for _ in 0..20 {
            let before = tokio::time::Instant::now();
            a.request(addr(2), Bytes::from_static(b"x"), Duration::from_secs(30))
                .await
                .expect("a long enough timeout outlasts the retransmissions");
            let took = before.elapsed();
            assert_eq!(
                took.as_millis() % 200,
                20,
                "two 10 ms trips plus whole RTOs: {took:?}"
            );
            slow += usize::from(took > Duration::from_millis(20));
        }
        assert!(slow > 0, "some exchanges were resent");
        let lost = first.iter().filter(|ok| !**ok).count();
        // A loss delays by 200 ms, past the 100 ms timeout: each exchange
        // fails with 1 - 0.7² = 51 %, some, not all.
        assert!((5..35).contains(&lost), "{lost} of 40 lost");
        assert_eq!(outcomes(11).await, first, "a seed replays its losses");
        assert_ne!(outcomes(12).await, first, "another seed loses others");
    }

    #[tokio::test(start_paused = true)]
    async fn clock_measurements_see_a_simulated_skew() {
        let network = MemoryNetwork::new();
        let handler = || handler_fn(|_, body| async move { body });
        let clock = |ahead| WallClock::simulated(1_000_000, Duration::from_millis(25), ahead);
        let a = network
            .bind_clocked(addr(1), "a", handler(), Limits::default(), clock(false))
            .expect("binds");
        let _b = network
            .bind_clocked(addr(2), "b", handler(), Limits::default(), clock(true))
            .expect("binds");
        network.set_default_link(LinkModel {
            delay: Duration::from_millis(20),
            ..LinkModel::default()
        });
        let sample = crate::fleet::transport::measure_clock_offset(&a, addr(2), 3)
            .await
            .expect("measured");
        assert_eq!(sample.offset, 50_000_000, "b is 50 ms ahead of a");
        assert_eq!(sample.rtt, Duration::from_millis(40));
    }
}
