//! `volley relay`: a forwarder that adds latency, for emulating a link between regions where
//! the kernel has no `netem` (and for trying how a test behaves across an ocean).
//!
//! A relay listens on one address and forwards to another: TCP per connection, both directions
//! delayed on their own ([`RelayConfig::forward`], [`RelayConfig::back`]) with a half-close
//! passed on once what preceded it has left; UDP per client address (a flow with its own
//! upstream socket, so replies find their way back), datagrams delayed per direction, idle
//! flows expired. When each piece leaves is decided by the pure [`schedule`]: `delay ± jitter`
//! from a seeded generator, never reordering a flow. Memory is bounded: a cap on queued bytes
//! per direction of every flow (TCP stops reading, UDP drops, as a congested link does), on UDP
//! flows and on TCP connections ([`Limits`]).
//!
//! What is not emulated: the TCP handshake completes with the relay at once (its round trip is
//! not delayed, the data's is), and nothing is lost unless a queue is full.

pub mod schedule;
mod tcp;
mod udp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use schedule::Delay;

/// What a relay forwards where, and how late.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Where clients connect (TCP) or send (UDP). Port 0 picks a free one; with both protocols
    /// UDP takes the port TCP got.
    pub listen: SocketAddr,
    /// Where everything is forwarded.
    pub to: SocketAddr,
    /// Client → `to`.
    pub forward: Delay,
    /// `to` → client.
    pub back: Delay,
    pub tcp: bool,
    pub udp: bool,
    /// Seeds every flow's jitter: the same seed replays the same delays for the same traffic.
    pub seed: u64,
    pub limits: Limits,
}

/// The relay's memory bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes queued in one direction of one flow before TCP stops reading or UDP drops.
    pub max_queued_bytes: usize,
    /// UDP flows (client addresses) at once; datagrams of further clients are dropped.
    pub max_udp_flows: usize,
    /// A UDP flow with nothing in either direction for this long is forgotten.
    pub udp_idle: Duration,
    /// TCP connections at once; further ones are closed at accept.
    pub max_tcp_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_queued_bytes: 256 * 1024,
            max_udp_flows: 256,
            udp_idle: Duration::from_secs(60),
            max_tcp_connections: 512,
        }
    }
}

/// What a relay could not do at start.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("the relay forwards neither TCP nor UDP: expected --tcp, --udp or both")]
    NoProtocol,
    #[error("cannot listen on {addr} ({protocol}): {source}")]
    Bind {
        protocol: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What a relay dropped, refused and carried, for its operator.
#[derive(Debug, Default)]
pub struct RelayStats {
    /// TCP connections accepted and connected upstream.
    pub tcp_connections: AtomicU64,
    /// TCP connections closed at accept (over the cap) or whose upstream connect failed.
    pub tcp_refused: AtomicU64,
    /// UDP datagrams forwarded, both directions.
    pub udp_datagrams: AtomicU64,
    /// UDP datagrams dropped: a full queue, too many flows, or an unreachable upstream.
    pub udp_dropped: AtomicU64,
}

impl RelayStats {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A one-line account.
    pub fn describe(&self) -> String {
        format!(
            "{} TCP connections ({} refused), {} UDP datagrams ({} dropped)",
            self.tcp_connections.load(Ordering::Relaxed),
            self.tcp_refused.load(Ordering::Relaxed),
            self.udp_datagrams.load(Ordering::Relaxed),
            self.udp_dropped.load(Ordering::Relaxed),
        )
    }
}

/// A running relay; dropping it stops it (connections and flows in flight are cut).
#[derive(Debug)]
pub struct RelayHandle {
    /// Where TCP is accepted, when it is relayed.
    pub tcp_addr: Option<SocketAddr>,
    /// Where UDP is received, when it is relayed.
    pub udp_addr: Option<SocketAddr>,
    pub stats: Arc<RelayStats>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl RelayHandle {
    /// Stops the relay and waits until its listeners are closed.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Binds the listeners and starts forwarding on the current runtime.
pub async fn spawn(config: RelayConfig) -> Result<RelayHandle, RelayError> {
    if !config.tcp && !config.udp {
        return Err(RelayError::NoProtocol);
    }
    let mut listen = config.listen;
    let tcp = if config.tcp {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| RelayError::Bind {
                protocol: "TCP",
                addr: listen,
                source,
            })?;
        listen = listener.local_addr().map_err(|source| RelayError::Bind {
            protocol: "TCP",
            addr: listen,
            source,
        })?;
        Some(listener)
    } else {
        None
    };
    let udp = if config.udp {
        let socket = UdpSocket::bind(listen)
            .await
            .map_err(|source| RelayError::Bind {
                protocol: "UDP",
                addr: listen,
                source,
            })?;
        Some(socket)
    } else {
        None
    };
    let config = Arc::new(config);
    let stats = Arc::new(RelayStats::default());
    let shutdown = CancellationToken::new();
    let mut handle = RelayHandle {
        tcp_addr: tcp.as_ref().and_then(|l| l.local_addr().ok()),
        udp_addr: udp.as_ref().and_then(|s| s.local_addr().ok()),
        stats: Arc::clone(&stats),
        shutdown: shutdown.clone(),
        tasks: Vec::new(),
    };
    if let Some(listener) = tcp {
        handle.tasks.push(tokio::spawn(tcp::accept_loop(
            listener,
            Arc::clone(&config),
            Arc::clone(&stats),
            shutdown.clone(),
        )));
    }
    if let Some(socket) = udp {
        handle.tasks.push(tokio::spawn(udp::serve(
            socket,
            Arc::clone(&config),
            Arc::clone(&stats),
            shutdown.clone(),
        )));
    }
    Ok(handle)
}
