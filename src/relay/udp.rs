//! UDP through the relay: every client address is a flow with an upstream socket of its own
//! (connected to the destination, so the destination's replies come back to that flow), a
//! [`DelayLine`] per direction and an idle timer. The listening loop stamps each datagram as it
//! arrives and hands it to its flow; a flow task sends what is due both ways and ends when
//! nothing moved for [`Limits::udp_idle`](super::Limits::udp_idle). Beyond the caps (flows,
//! queued bytes, the hand-over queue) datagrams are dropped and counted.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::schedule::{DelayLine, Schedule, flow_seed};
use super::tcp::sleep_until_some;
use super::{RelayConfig, RelayStats};

/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;
/// Datagrams handed from the listening loop to one flow and not yet taken.
const HANDOVER: usize = 256;

type Arrival = (Instant, Bytes);

pub(super) async fn serve(
    socket: UdpSocket,
    config: Arc<RelayConfig>,
    stats: Arc<RelayStats>,
    shutdown: CancellationToken,
) {
    let socket = Arc::new(socket);
    let mut flows: HashMap<SocketAddr, mpsc::Sender<Arrival>> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut flow_number = 0u64;
    loop {
        let received = tokio::select! {
            _ = shutdown.cancelled() => return,
            received = socket.recv_from(&mut buf) => received,
        };
        let (len, client) = match received {
            Ok(r) => r,
            // An ICMP error for an earlier reply to a client that went away.
            Err(e) => {
                tracing::debug!("relay: UDP receive: {e}");
                continue;
            }
        };
        let arrival = (Instant::now(), Bytes::copy_from_slice(&buf[..len]));
        let live = flows.get(&client).filter(|tx| !tx.is_closed()).cloned();
        let tx = match live {
            Some(tx) => tx,
            None => {
                if flows.len() >= config.limits.max_udp_flows {
                    flows.retain(|_, tx| !tx.is_closed());
                }
                if flows.len() >= config.limits.max_udp_flows && !flows.contains_key(&client) {
                    RelayStats::add(&stats.udp_dropped);
                    continue;
                }
                let upstream = match open_upstream(config.to).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(to = %config.to, "relay: no upstream UDP socket: {e}");
                        RelayStats::add(&stats.udp_dropped);
                        continue;
                    }
                };
                flow_number += 1;
                let (tx, rx) = mpsc::channel(HANDOVER);
                let max = config.limits.max_queued_bytes;
                let flow = Flow {
                    client,
                    listener: Arc::clone(&socket),
                    upstream,
                    forward: DelayLine::new(
                        Schedule::new(config.forward, flow_seed(config.seed, flow_number, 0)),
                        max,
                    ),
                    back: DelayLine::new(
                        Schedule::new(config.back, flow_seed(config.seed, flow_number, 1)),
                        max,
                    ),
                    stats: Arc::clone(&stats),
                };
                tokio::spawn(flow.run(rx, config.limits.udp_idle, shutdown.child_token()));
                flows.insert(client, tx.clone());
                tx
            }
        };
        if tx.try_send(arrival).is_err() {
            RelayStats::add(&stats.udp_dropped);
        }
    }
}

/// A socket of the destination's family on any port, connected to it.
async fn open_upstream(to: SocketAddr) -> std::io::Result<UdpSocket> {
    let any: SocketAddr = if to.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(any).await?;
    socket.connect(to).await?;
    Ok(socket)
}

/// One client address's traffic.
struct Flow {
    client: SocketAddr,
    /// The relay's listening socket: replies leave from the address the client sent to.
    listener: Arc<UdpSocket>,
    upstream: UdpSocket,
    forward: DelayLine,
    back: DelayLine,
    stats: Arc<RelayStats>,
}

impl Flow {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Arrival>,
        idle: std::time::Duration,
        shutdown: CancellationToken,
    ) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut last = Instant::now();
        loop {
            let next = [self.forward.next_due(), self.back.next_due()]
                .into_iter()
                .flatten()
                .min();
            let quiet = next.is_none();
            tokio::select! {
                _ = shutdown.cancelled() => return,
                arrival = rx.recv() => {
                    let Some((at, data)) = arrival else { return };
                    last = at;
                    if self.forward.push(at, data).is_err() {
                        RelayStats::add(&self.stats.udp_dropped);
                    }
                }
                received = self.upstream.recv(&mut buf) => match received {
                    Ok(n) => {
                        let now = Instant::now();
                        last = now;
                        if self.back.push(now, Bytes::copy_from_slice(&buf[..n])).is_err() {
                            RelayStats::add(&self.stats.udp_dropped);
                        }
                    }
                    // The destination is unreachable (ICMP): what was sent is lost, as on a link.
                    Err(e) => tracing::debug!(client = %self.client, "relay: upstream UDP: {e}"),
                },
                _ = sleep_until_some(next), if next.is_some() => self.send_due().await,
                _ = tokio::time::sleep_until(last + idle), if quiet => return,
            }
        }
    }

    async fn send_due(&mut self) {
        let now = Instant::now();
        while let Some(data) = self.forward.pop_due(now) {
            match self.upstream.send(&data).await {
                Ok(_) => RelayStats::add(&self.stats.udp_datagrams),
                Err(_) => RelayStats::add(&self.stats.udp_dropped),
            }
        }
        while let Some(data) = self.back.pop_due(now) {
            match self.listener.send_to(&data, self.client).await {
                Ok(_) => RelayStats::add(&self.stats.udp_datagrams),
                Err(_) => RelayStats::add(&self.stats.udp_dropped),
            }
        }
    }
}
