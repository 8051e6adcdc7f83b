//! [`QuicTransport`]: the fleet transport over QUIC. One quinn endpoint (one UDP socket) both
//! accepts and dials; every connection is mutually authenticated under the fleet CA. Outgoing
//! requests reuse one cached connection per peer (re-dialled once closed) and each use their own
//! bidirectional stream: request frame, finish; reply frame, finish.

mod errors;
mod server;
mod stream;
mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use quinn::{Connection, Endpoint, VarInt, WriteError};
use tokio::task::JoinHandle;

use self::stream::{ReadFailure, ResetOnDrop, read_frame, write_frame};
use super::dispatch::{self, Dispatcher};
use super::envelope::{Reply, Request};
use super::error::TransportError;
use super::frame::{Payload, frame_limit};
use super::{Handler, Limits, PeerId, Transport};
use crate::fleet::ca::{AGENT_SAN, Identity, TrustBundle};

/// How long [`QuicTransport::shutdown`] waits for connections to close cleanly.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// The cached outgoing connection to one peer; the async mutex makes concurrent first requests
/// share a single dial.
type Slot = Arc<tokio::sync::Mutex<Option<Connection>>>;

/// The QUIC fleet transport of one agent.
pub struct QuicTransport {
    /// The UDP socket, server and client at once.
    endpoint: Endpoint,
    /// Bound address (resolved when binding port 0).
    local_addr: SocketAddr,
    /// Our node id, for logs.
    node_id: PeerId,
    /// Limits for outgoing requests and incoming replies.
    limits: Limits,
    /// Outgoing connections by peer address.
    slots: Mutex<HashMap<SocketAddr, Slot>>,
    /// What new outgoing connections present and trust (replaced by
    /// [`QuicTransport::renew`]).
    client_config: Mutex<quinn::ClientConfig>,
    /// The CAs peers must chain to, for renewed configurations.
    trust: Box<TrustBundle>,
    /// The task accepting incoming connections.
    accept_task: JoinHandle<()>,
}

impl QuicTransport {
    /// Binds a QUIC endpoint at `addr` that answers requests with `handler` and sends requests
    /// presenting `identity`, trusting peers whose certificates chain to `trust`.
    pub async fn bind(
        addr: SocketAddr,
        identity: &Identity,
        trust: &TrustBundle,
        handler: Arc<dyn Handler>,
        limits: Limits,
    ) -> Result<Self, TransportError> {
        limits.validate()?;
        let (server_config, client_config) = tls::configs(identity, trust, &limits)?;
        let endpoint = Endpoint::server(server_config, addr).map_err(|e| TransportError::Bind {
            addr,
            reason: e.to_string(),
        })?;
        let local_addr = endpoint.local_addr().map_err(|e| TransportError::Bind {
            addr,
            reason: format!("cannot read the bound address: {e}"),
        })?;
        let dispatcher = Arc::new(Dispatcher::new(handler, &limits));
        let accept_task = tokio::spawn(server::accept_loop(endpoint.clone(), dispatcher));
        if identity.not_after() <= std::time::SystemTime::now() {
            tracing::warn!(
                node = identity.node_id(),
                "our agent certificate has expired: peers will refuse every connection until it is renewed"
            );
        }
        tracing::info!(addr = %local_addr, node = identity.node_id(), "fleet transport listening");
        Ok(QuicTransport {
            endpoint,
            local_addr,
            node_id: identity.node_id().to_owned(),
            limits,
            slots: Mutex::new(HashMap::new()),
            client_config: Mutex::new(client_config),
            trust: Box::new(trust.clone()),
            accept_task,
        })
    }

    /// Presents `identity` from now on (a renewed certificate for the same
    /// node): connections opened afterwards, both ways, use it; open ones
    /// keep the certificate they were established with.
    pub fn renew(&self, identity: &Identity) -> Result<(), TransportError> {
        let (server_config, client_config) = tls::configs(identity, &self.trust, &self.limits)?;
        self.endpoint.set_server_config(Some(server_config));
        *self
            .client_config
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = client_config;
        tracing::info!(
            node = identity.node_id(),
            "fleet transport presents a renewed certificate"
        );
        Ok(())
    }

    /// Closes every connection (peers see an orderly close) and stops accepting. Requests made
    /// afterwards fail as closed.
    pub async fn shutdown(&self) {
        self.endpoint.close(
            VarInt::from_u32(errors::CLOSE_SHUTDOWN),
            b"volley agent shutting down",
        );
        self.slots().clear();
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.endpoint.wait_idle()).await;
        self.accept_task.abort();
        tracing::info!(addr = %self.local_addr, node = %self.node_id, "fleet transport shut down");
    }

    /// Number of open QUIC connections (incoming and outgoing), for diagnostics.
    pub fn open_connections(&self) -> usize {
        self.endpoint.open_connections()
    }

    fn slots(&self) -> MutexGuard<'_, HashMap<SocketAddr, Slot>> {
        // Every critical section is a single map operation, so a poisoned map is still consistent.
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The open connection to `peer`, dialling if there is none or it has closed.
    async fn connection(&self, peer: SocketAddr) -> Result<Connection, TransportError> {
        let slot = Arc::clone(self.slots().entry(peer).or_default());
        let mut cached = slot.lock().await;
        if let Some(conn) = cached.as_ref().filter(|c| c.close_reason().is_none()) {
            return Ok(conn.clone());
        }
        *cached = None;
        let config = self
            .client_config
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let connecting = self
            .endpoint
            .connect_with(config, peer, AGENT_SAN)
            .map_err(|e| errors::connect(peer, &e))?;
        let conn = connecting
            .await
            .map_err(|e| errors::connection(peer, &e, false))?;
        tracing::debug!(peer = %peer, node = %self.node_id, "fleet connection established");
        *cached = Some(conn.clone());
        Ok(conn)
    }

    async fn exchange_inner(
        &self,
        peer: SocketAddr,
        request: Request,
        timeout: Duration,
    ) -> Result<Reply, TransportError> {
        let deadline = dispatch::deadline_after(timeout);
        let (kind, payload) = dispatch::prepare(peer, request, &self.limits)?;
        let conn = match tokio::time::timeout_at(deadline, self.connection(peer)).await {
            Ok(conn) => conn?,
            Err(_) => {
                return Err(TransportError::Unreachable {
                    peer,
                    reason: format!("no QUIC connection could be established within {timeout:?}"),
                });
            }
        };
        match tokio::time::timeout_at(deadline, self.round_trip(&conn, peer, kind, payload)).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout {
                peer,
                after: timeout,
            }),
        }
    }

    /// One request on its own stream of `conn`.
    async fn round_trip(
        &self,
        conn: &Connection,
        peer: SocketAddr,
        kind: u8,
        payload: Payload,
    ) -> Result<Reply, TransportError> {
        let (send, mut recv) = conn
            .open_bi()
            .await
            .map_err(|e| errors::connection(peer, &e, true))?;
        let mut send = ResetOnDrop::new(send);
        if let Some(stream) = send.get() {
            match write_frame(stream, payload).await {
                // Stopped: the peer refused the request (too large); its reply says so.
                Ok(()) | Err(WriteError::Stopped(_)) => send.finish(),
                Err(err) => return Err(errors::write(peer, &err)),
            }
        }
        let reply = read_frame(&mut recv, frame_limit(self.limits.max_message))
            .await
            .map_err(|failure| match failure {
                ReadFailure::Frame(err) => {
                    let _ = recv.stop(VarInt::from_u32(errors::STREAM_TOO_LARGE));
                    dispatch::response_frame_error(peer, &err, &self.limits)
                }
                ReadFailure::Early { got, expected } => TransportError::Protocol {
                    peer,
                    reason: format!("reply stream ended after {got} of {expected} expected bytes"),
                },
                ReadFailure::Stream(err) => errors::read(peer, &err),
            })?;
        dispatch::finish(peer, kind, reply, &self.limits)
    }
}

impl Transport for QuicTransport {
    fn exchange(
        &self,
        peer: SocketAddr,
        request: Request,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Reply, TransportError>> {
        Box::pin(self.exchange_inner(peer, request, timeout))
    }

    fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    fn peer_id(
        &self,
        peer: SocketAddr,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<PeerId, TransportError>> {
        Box::pin(async move {
            let conn = tokio::time::timeout(timeout, self.connection(peer))
                .await
                .map_err(|_| TransportError::Unreachable {
                    peer,
                    reason: format!("no QUIC connection could be established within {timeout:?}"),
                })??;
            tls::peer_id(&conn).ok_or_else(|| TransportError::Protocol {
                peer,
                reason: "the peer's certificate names no node (no common name)".to_owned(),
            })
        })
    }
}

impl std::fmt::Debug for QuicTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicTransport")
            .field("local_addr", &self.local_addr)
            .field("node_id", &self.node_id)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Drop for QuicTransport {
    fn drop(&mut self) {
        self.endpoint.close(
            VarInt::from_u32(errors::CLOSE_SHUTDOWN),
            b"volley agent shutting down",
        );
        self.accept_task.abort();
    }
}
