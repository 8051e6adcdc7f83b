//! Gossip over a UDP socket that is bound before chitchat starts and lets
//! only authenticated datagrams through.
//!
//! Two jobs:
//! - **Bind first.** chitchat's [`UdpTransport`](chitchat::transport::UdpTransport)
//!   binds inside `spawn_chitchat`, but the advertised address is part of the
//!   node's identity and, with port 0, only known after binding. [`bind_udp`]
//!   binds, reads the bound address, and hands the socket to chitchat when it
//!   opens the transport.
//! - **Authenticate every datagram** ([`super::auth`]). Outgoing chitchat
//!   messages are sealed with the fleet's gossip key; incoming datagrams are
//!   opened before chitchat sees them, and those that fail are dropped,
//!   counted by reason ([`GossipStats`]) and summarised in at most one log
//!   line per [`REJECT_LOG_INTERVAL`] ([`RejectLog`]), never one per packet.
//!
//! chitchat 0.13 does not export its message codec (`ChitchatEnvelope`'s
//! `serialize`/`deserialize` are crate-private); only its `UdpSocket` turns
//! envelopes into bytes and back. So the codec is reached through two private
//! loopback pairs: to send, chitchat's socket writes the envelope to our `tap`
//! socket, whose bytes we seal and send from the public socket; to receive, an
//! opened payload is written from our `feed` socket to a chitchat socket that
//! decodes it. Only bytes from the paired socket are taken on each side. The
//! wire format stays chitchat's own, and nothing unauthenticated reaches its
//! decoder. The detour costs two loopback datagrams per gossip message (a few
//! per second per agent).

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use chitchat::ChitchatEnvelope;
use chitchat::transport::{RecvOutcome, SendOutcome, Socket, Transport, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::MembershipError;
use super::auth::{GossipKey, OVERHEAD};
use super::stats::{GossipStats, REJECT_LOG_INTERVAL, RejectLog};
use crate::clock::unix_ms_now;

/// Largest UDP payload over IPv4; chitchat sizes its messages to this.
const MAX_DATAGRAM: usize = 65_507;
/// How long a loopback codec hop may take before the message is given up.
const CODEC_TIMEOUT: Duration = Duration::from_secs(1);
/// Decoded messages waiting for chitchat's loop; beyond this they are
/// dropped, as a full socket buffer would drop them.
const QUEUE: usize = 256;

/// The socket and codec, made by [`bind_udp`] and given to chitchat once.
struct Parts {
    public: Arc<tokio::net::UdpSocket>,
    key: GossipKey,
    /// chitchat's encoder: sends envelopes (as bytes) to `tap`.
    encoder: UdpSocket,
    /// Receives the encoder's bytes.
    tap: tokio::net::UdpSocket,
    /// Sends opened payloads to `decoder`.
    feed: tokio::net::UdpSocket,
    /// chitchat's decoder: turns `feed`'s bytes into envelopes.
    decoder: UdpSocket,
}

/// A gossip socket bound ahead of `spawn_chitchat` that authenticates every
/// datagram; it can be opened once.
pub struct AuthUdpTransport {
    /// The address asked for (possibly port 0); chitchat opens with the
    /// configured listen address, which may be this or the bound one.
    requested: SocketAddr,
    /// The address the socket is actually bound to.
    bound: SocketAddr,
    /// What the socket counts; shared with `/metrics`.
    stats: Arc<GossipStats>,
    /// Taken by the first `open`.
    parts: Mutex<Option<Parts>>,
}

impl std::fmt::Debug for AuthUdpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthUdpTransport")
            .field("requested", &self.requested)
            .field("bound", &self.bound)
            .finish_non_exhaustive()
    }
}

fn loopback() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// Binds the gossip socket on `addr` (port 0 lets the OS choose), with the
/// loopback codec sockets, and returns it with the address it is bound to.
/// Datagrams are sealed and opened with `key`.
pub async fn bind_udp(
    addr: SocketAddr,
    key: GossipKey,
) -> Result<(AuthUdpTransport, SocketAddr), MembershipError> {
    let bind_error = |addr: SocketAddr| {
        move |error: &dyn std::fmt::Display| MembershipError::Bind {
            addr,
            reason: error.to_string(),
        }
    };
    let public = tokio::net::UdpSocket::bind(addr)
        .await
        .map_err(|e| bind_error(addr)(&e))?;
    let bound = public.local_addr().map_err(|e| bind_error(addr)(&e))?;
    let codec_error = |e: &dyn std::fmt::Display| MembershipError::Bind {
        addr: loopback(),
        reason: format!("gossip codec socket: {e}"),
    };
    let encoder = UdpSocket::open(loopback())
        .await
        .map_err(|e| codec_error(&format!("{e:#}")))?;
    let tap = tokio::net::UdpSocket::bind(loopback())
        .await
        .map_err(|e| codec_error(&e))?;
    let feed = tokio::net::UdpSocket::bind(loopback())
        .await
        .map_err(|e| codec_error(&e))?;
    let decoder = UdpSocket::open(loopback())
        .await
        .map_err(|e| codec_error(&format!("{e:#}")))?;
    let transport = AuthUdpTransport {
        requested: addr,
        bound,
        stats: Arc::new(GossipStats::default()),
        parts: Mutex::new(Some(Parts {
            public: Arc::new(public),
            key,
            encoder,
            tap,
            feed,
            decoder,
        })),
    };
    Ok((transport, bound))
}

impl AuthUdpTransport {
    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.bound
    }

    /// The socket's counters (dropped datagrams by reason, accepted, failed sends).
    pub fn stats(&self) -> Arc<GossipStats> {
        Arc::clone(&self.stats)
    }

    fn take(&self, listen_addr: SocketAddr) -> anyhow::Result<Box<dyn Socket>> {
        if listen_addr != self.requested && listen_addr != self.bound {
            anyhow::bail!(
                "the gossip socket is bound to {} (asked for {}), not to the listen address {listen_addr}",
                self.bound,
                self.requested
            );
        }
        // A poisoned lock only means another open panicked mid-take; the
        // Option is still consistent, so keep going.
        let mut slot = self
            .parts
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let Some(parts) = slot.take() else {
            anyhow::bail!(
                "the gossip socket bound to {} was already given to a gossip server",
                self.bound
            );
        };
        let encoder_addr = parts.encoder.local_addr()?;
        let tap_addr = parts.tap.local_addr()?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let receiver = tokio::spawn(run_receiver(
            Receiver {
                public: Arc::clone(&parts.public),
                key: parts.key.clone(),
                decoder_addr: parts.decoder.local_addr()?,
                feed_addr: parts.feed.local_addr()?,
                feed: parts.feed,
                decoder: parts.decoder,
                decoder_dirty: false,
                stats: Arc::clone(&self.stats),
            },
            tx,
        ));
        Ok(Box::new(AuthSocket {
            public: parts.public,
            bound: self.bound,
            key: parts.key,
            encoder: parts.encoder,
            encoder_addr,
            tap: parts.tap,
            tap_addr,
            tap_dirty: false,
            buf: vec![0; MAX_DATAGRAM],
            sealed: Vec::with_capacity(MAX_DATAGRAM + OVERHEAD),
            rx,
            stats: Arc::clone(&self.stats),
            last_send_warning: None,
            _receiver: AbortOnDrop(receiver),
        }))
    }
}

// `Transport` is declared with `#[async_trait]`; this is the signature that
// macro expands to, written out so Volley needs no extra dependency.
impl Transport for AuthUdpTransport {
    fn open<'life0, 'async_trait>(
        &'life0 self,
        listen_addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = anyhow::Result<Box<dyn Socket>>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let result = self.take(listen_addr);
        Box::pin(async move { result })
    }
}

/// Aborts the receive task when chitchat drops its socket.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The socket chitchat uses: seals what it sends, yields what the receive
/// task opened and decoded.
struct AuthSocket {
    public: Arc<tokio::net::UdpSocket>,
    bound: SocketAddr,
    key: GossipKey,
    encoder: UdpSocket,
    encoder_addr: SocketAddr,
    tap: tokio::net::UdpSocket,
    tap_addr: SocketAddr,
    /// An encoding timed out: its bytes may still arrive, so drain the tap first.
    tap_dirty: bool,
    /// Encoded envelope as read from `tap`.
    buf: Vec<u8>,
    /// The sealed datagram.
    sealed: Vec<u8>,
    /// Decoded, authenticated messages from the receive task.
    rx: mpsc::Receiver<RecvOutcome>,
    stats: Arc<GossipStats>,
    /// When a failed send was last logged (rate limit).
    last_send_warning: Option<Instant>,
    /// Held so the receive task ends with this socket.
    _receiver: AbortOnDrop,
}

impl AuthSocket {
    /// Waits for the encoder's bytes on the tap, within [`CODEC_TIMEOUT`].
    async fn read_tap(&mut self) -> anyhow::Result<usize> {
        let deadline = Instant::now() + CODEC_TIMEOUT;
        loop {
            let (len, from) = tokio::time::timeout_at(deadline, self.tap.recv_from(&mut self.buf))
                .await
                .context("encoding a gossip message timed out")?
                .context("reading an encoded gossip message")?;
            if from == self.encoder_addr {
                return Ok(len);
            }
        }
    }

    async fn send_inner(
        &mut self,
        to: SocketAddr,
        envelope: ChitchatEnvelope,
    ) -> anyhow::Result<SendOutcome> {
        if self.tap_dirty {
            // Bytes of an earlier, timed-out encoding must not be taken for this one.
            while self.tap.try_recv_from(&mut self.buf).is_ok() {}
            self.tap_dirty = false;
        }
        self.encoder
            .send(self.tap_addr, envelope)
            .await
            .context("encoding a gossip message")?;
        let len = match self.tap.try_recv_from(&mut self.buf) {
            // Loopback delivers within the send: the common case takes no reactor turn.
            Ok((len, from)) if from == self.encoder_addr => len,
            _ => match self.read_tap().await {
                Ok(len) => len,
                Err(error) => {
                    self.tap_dirty = true;
                    return Err(error);
                }
            },
        };
        self.sealed.clear();
        self.key
            .seal(unix_ms_now(), &self.buf[..len], &mut self.sealed);
        if self.sealed.len() > MAX_DATAGRAM {
            self.stats.send_failed();
            let now = Instant::now();
            if self
                .last_send_warning
                .is_none_or(|last| now.duration_since(last) >= REJECT_LOG_INTERVAL)
            {
                self.last_send_warning = Some(now);
                tracing::warn!(
                    to = %to,
                    bytes = self.sealed.len(),
                    "a gossip message is too large for one UDP datagram once authenticated; not sent"
                );
            }
            // Not a broken socket: chitchat sends a smaller message next round.
            return Ok(SendOutcome { num_bytes_sent: 0 });
        }
        match self.public.send_to(&self.sealed, to).await {
            Ok(sent) => Ok(SendOutcome {
                num_bytes_sent: sent,
            }),
            Err(error) => {
                self.stats.send_failed();
                Err(error).with_context(|| format!("failed to send a gossip datagram to {to}"))
            }
        }
    }
}

// `Socket` is declared with `#[async_trait]`; these are the expanded signatures.
impl Socket for AuthSocket {
    fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.bound)
    }

    fn send<'life0, 'async_trait>(
        &'life0 mut self,
        to: SocketAddr,
        envelope: ChitchatEnvelope,
    ) -> Pin<Box<dyn Future<Output = anyhow::Result<SendOutcome>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.send_inner(to, envelope))
    }

    fn recv<'life0, 'async_trait>(
        &'life0 mut self,
    ) -> Pin<Box<dyn Future<Output = anyhow::Result<RecvOutcome>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        // Cancel-safe: chitchat races this against its gossip timer.
        Box::pin(async move {
            self.rx
                .recv()
                .await
                .context("the gossip receive loop ended (the socket failed)")
        })
    }
}

/// What the receive task owns.
struct Receiver {
    public: Arc<tokio::net::UdpSocket>,
    key: GossipKey,
    feed: tokio::net::UdpSocket,
    feed_addr: SocketAddr,
    decoder: UdpSocket,
    decoder_addr: SocketAddr,
    /// A decode timed out: its message may still come out of the decoder.
    decoder_dirty: bool,
    stats: Arc<GossipStats>,
}

fn is_transient(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::OutOfMemory
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// Reads the public socket until it fails or chitchat goes away: opens each
/// datagram, drops and counts the ones that fail, decodes the others with
/// chitchat's codec and queues them for chitchat's loop.
async fn run_receiver(mut rx: Receiver, tx: mpsc::Sender<RecvOutcome>) {
    let mut buf = vec![0u8; 65_535];
    let mut log = RejectLog::new(REJECT_LOG_INTERVAL);
    let mut tick = tokio::time::interval(REJECT_LOG_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let received = tokio::select! {
            received = rx.public.recv_from(&mut buf) => received,
            _ = tick.tick() => {
                if let Some(summary) = log.due(Instant::now()) {
                    tracing::warn!("{summary}");
                }
                continue;
            }
            () = tx.closed() => return,
        };
        let (len, from) = match received {
            Ok(received) => received,
            Err(error) if is_transient(&error) => continue,
            Err(error) => {
                tracing::error!(error = %error, "gossip socket failed; gossip stops");
                return;
            }
        };
        let payload = match rx.key.open(unix_ms_now(), &buf[..len]) {
            Ok(payload) => payload,
            Err(reason) => {
                rx.stats.reject(reason);
                if let Some(summary) = log.record(reason, from, Instant::now()) {
                    tracing::warn!("{summary}");
                }
                continue;
            }
        };
        match rx.decode(payload).await {
            Ok(envelope) => {
                rx.stats.accept();
                let outcome = RecvOutcome {
                    from_addr: from,
                    envelope,
                    num_bytes_received: len,
                };
                if tx.try_send(outcome).is_err() {
                    tracing::debug!(from = %from, "gossip queue full; message dropped");
                }
            }
            Err(error) => {
                tracing::debug!(from = %from, "authenticated gossip datagram not decoded: {error:#}");
            }
        }
    }
}

impl Receiver {
    /// Decodes an authenticated payload with chitchat's own decoder.
    async fn decode(&mut self, payload: &[u8]) -> anyhow::Result<ChitchatEnvelope> {
        if self.decoder_dirty {
            // A message whose decoding timed out may have been decoded since: not this one.
            while let Ok(Ok(_)) = tokio::time::timeout(Duration::ZERO, self.decoder.recv()).await {}
            self.decoder_dirty = false;
        }
        self.feed
            .send_to(payload, self.decoder_addr)
            .await
            .context("handing a gossip message to the decoder")?;
        let deadline = Instant::now() + CODEC_TIMEOUT;
        loop {
            let Ok(outcome) = tokio::time::timeout_at(deadline, self.decoder.recv()).await else {
                // Invalid (chitchat's decoder skipped it) or slow: either way not decoded.
                self.decoder_dirty = true;
                anyhow::bail!("not decoded within {CODEC_TIMEOUT:?}: not a valid chitchat message");
            };
            let outcome = outcome?;
            if outcome.from_addr == self.feed_addr {
                return Ok(outcome.envelope);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &str) -> GossipKey {
        GossipKey::derive(secret.as_bytes()).expect("key")
    }

    #[tokio::test]
    async fn binds_port_zero_and_opens_once() {
        let requested: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let (transport, bound) = bind_udp(requested, key("a fleet secret of some length"))
            .await
            .expect("bind");
        assert_ne!(bound.port(), 0);
        assert_eq!(transport.local_addr(), bound);

        let wrong: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let error = transport
            .open(wrong)
            .await
            .err()
            .expect("wrong listen address");
        assert!(
            error.to_string().contains("not to the listen address"),
            "{error:#}"
        );

        let socket = transport.open(requested).await.expect("first open");
        assert_eq!(socket.local_addr().expect("addr"), bound);
        let error = transport.open(bound).await.err().expect("second open");
        assert!(error.to_string().contains("already given"), "{error:#}");
    }

    #[tokio::test]
    async fn bind_errors_name_the_address() {
        let (_first, bound) = bind_udp(
            "127.0.0.1:0".parse().expect("addr"),
            key("a fleet secret of some length"),
        )
        .await
        .expect("bind");
        let error = bind_udp(bound, key("a fleet secret of some length"))
            .await
            .expect_err("port in use");
        assert!(matches!(error, MembershipError::Bind { addr, .. } if addr == bound));
        assert!(error.to_string().contains(&bound.to_string()), "{error}");
    }
}
