//! Connections: name resolution (with a per-origin cache), TCP connect with
//! `TCP_NODELAY`, the TLS handshake with ALPN, and the byte stream both
//! HTTP versions run on, plain or TLS.
//!
//! Each phase is timed here, because only here is it known where one ends
//! and the next begins.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;

use super::error::{RequestError, connect_error};
use super::url::{Scheme, Target};
use crate::metrics::Timings;

/// How long resolved addresses are reused, as k6's default DNS `ttl=5m`.
const DNS_TTL: Duration = Duration::from_secs(300);

/// A connected byte stream, plain or TLS.
#[derive(Debug)]
pub enum Stream {
    Plain(TcpStream),
    /// Boxed: a TLS session is large and most connections are plain.
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// What an idle kept-alive connection looks like just before reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleState {
    /// Nothing to read: usable.
    Open,
    /// The peer closed it (or it failed): dial a new one.
    Closed,
    /// The peer sent bytes nobody asked for: not trustworthy, dial anew.
    Unsolicited,
}

impl Stream {
    /// Looks at an idle connection without waiting, as Go's client does
    /// with its background read: a server that closed the connection since
    /// the last response is noticed here, before a request is written.
    /// Costs nothing extra on Linux: the `EAGAIN` read it does would
    /// otherwise happen right after the request is written.
    pub async fn idle_state(&mut self, scratch: &mut [u8]) -> IdleState {
        std::future::poll_fn(|cx| {
            let mut buf = ReadBuf::new(scratch);
            Poll::Ready(match Pin::new(&mut *self).poll_read(cx, &mut buf) {
                Poll::Pending => IdleState::Open,
                Poll::Ready(Ok(())) if buf.filled().is_empty() => IdleState::Closed,
                Poll::Ready(Ok(())) => IdleState::Unsolicited,
                Poll::Ready(Err(_)) => IdleState::Closed,
            })
        })
        .await
    }

    /// The ALPN protocol agreed in the TLS handshake, if any.
    pub fn negotiated_h2(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(s) => s.get_ref().1.alpn_protocol() == Some(b"h2"),
        }
    }
}

/// Resolved addresses of one origin, kept for `DNS_TTL`.
#[derive(Debug, Default)]
pub struct DnsCache {
    addrs: Vec<SocketAddr>,
    resolved_at: Option<Instant>,
    /// Set by the `hosts` option: never looked up.
    pinned: bool,
}

impl DnsCache {
    /// Always answers `addr` (the `hosts` option).
    pub fn pin(&mut self, addr: SocketAddr) {
        self.addrs.clear();
        self.addrs.push(addr);
        self.pinned = true;
    }

    /// The addresses to try, in order: the IP literal, the cached answer,
    /// or a fresh lookup.
    async fn addresses(&mut self, target: &Target) -> Result<&[SocketAddr], RequestError> {
        if self.pinned {
            return Ok(&self.addrs);
        }
        if let Some(ip) = target.ip {
            self.addrs.clear();
            self.addrs.push(SocketAddr::new(ip, target.port));
            return Ok(&self.addrs);
        }
        let fresh = self
            .resolved_at
            .is_some_and(|at| at.elapsed() < DNS_TTL && !self.addrs.is_empty());
        if !fresh {
            let found = tokio::net::lookup_host((target.host.as_str(), target.port))
                .await
                .map_err(|source| RequestError::Dns {
                    host: target.host.clone(),
                    source,
                })?;
            self.addrs.clear();
            self.addrs.extend(found);
            if self.addrs.is_empty() {
                return Err(RequestError::Dns {
                    host: target.host.clone(),
                    source: io::Error::new(io::ErrorKind::NotFound, "no addresses"),
                });
            }
            self.resolved_at = Some(Instant::now());
        }
        Ok(&self.addrs)
    }
}

/// A new connection, ready for HTTP.
#[derive(Debug)]
pub struct Dialed {
    pub stream: Stream,
    pub peer: SocketAddr,
}

/// Resolves, connects and (for https) does the TLS handshake, recording
/// `connecting` and `tls_handshaking` in `timings`.
pub async fn dial(
    target: &Target,
    dns: &mut DnsCache,
    tls: &Arc<rustls::ClientConfig>,
    timings: &mut Timings,
) -> Result<Dialed, RequestError> {
    let addrs = dns.addresses(target).await?;
    let connect_start = Instant::now();
    let mut last_error = None;
    let mut connected = None;
    for &addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(tcp) => {
                connected = Some((tcp, addr));
                break;
            }
            Err(e) => last_error = Some(connect_error(addr, e)),
        }
    }
    timings.connecting = connect_start.elapsed();
    let (tcp, peer) = match connected {
        Some(found) => found,
        None => {
            return Err(
                last_error.expect("invariant: a failed connect loop tried at least one address")
            );
        }
    };
    // Without this, Nagle + delayed ACK add ~40 ms to small exchanges.
    tcp.set_nodelay(true)
        .map_err(|source| RequestError::Connect { addr: peer, source })?;
    let stream = match target.scheme {
        Scheme::Http => Stream::Plain(tcp),
        Scheme::Https => {
            let tls_start = Instant::now();
            let stream = handshake(target, tcp, peer, tls).await;
            timings.tls_handshaking = tls_start.elapsed();
            Stream::Tls(Box::new(stream?))
        }
    };
    Ok(Dialed { stream, peer })
}

async fn handshake(
    target: &Target,
    tcp: TcpStream,
    peer: SocketAddr,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<TlsStream<TcpStream>, RequestError> {
    let name = ServerName::try_from(target.host.clone()).map_err(|e| RequestError::Tls {
        host: target.host.clone(),
        addr: peer,
        source: io::Error::new(io::ErrorKind::InvalidInput, e),
    })?;
    tokio_rustls::TlsConnector::from(Arc::clone(tls))
        .connect(name, tcp)
        .await
        .map_err(|source| RequestError::Tls {
            host: target.host.clone(),
            addr: peer,
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ErrorKind;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    fn target(url: &str) -> Target {
        let mut t = Target::default();
        t.parse_into(url).unwrap();
        t
    }

    fn tls() -> Arc<rustls::ClientConfig> {
        Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        )
    }

    #[tokio::test]
    async fn dials_ip_literals_and_sees_the_peer_close() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut timings = Timings::default();
        let mut dns = DnsCache::default();
        let url = format!("http://{addr}/");
        let mut dialed = dial(&target(&url), &mut dns, &tls(), &mut timings)
            .await
            .unwrap();
        assert_eq!(dialed.peer, addr);
        let (mut server, _) = listener.accept().await.unwrap();
        let mut scratch = [0u8; 64];
        assert_eq!(
            dialed.stream.idle_state(&mut scratch).await,
            IdleState::Open
        );
        server.write_all(b"x").await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while dialed.stream.idle_state(&mut scratch).await == IdleState::Open {
            assert!(Instant::now() < deadline, "unsolicited byte never seen");
            tokio::task::yield_now().await;
        }
        drop(server);
        let mut dialed = dial(&target(&url), &mut dns, &tls(), &mut timings)
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        drop(server);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match dialed.stream.idle_state(&mut scratch).await {
                IdleState::Closed => break,
                state => assert_eq!(state, IdleState::Open),
            }
            assert!(Instant::now() < deadline, "close never seen");
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn refused_port_is_connect_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let mut timings = Timings::default();
        let err = dial(
            &target(&format!("http://{addr}/")),
            &mut DnsCache::default(),
            &tls(),
            &mut timings,
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectRefused, "{err}");
    }

    #[tokio::test]
    async fn cached_addresses_skip_the_lookup() {
        let mut dns = DnsCache::default();
        let t = target("http://localhost:1/");
        let first = dns.addresses(&t).await.unwrap().to_vec();
        assert!(!first.is_empty());
        let at = dns.resolved_at;
        let second = dns.addresses(&t).await.unwrap().to_vec();
        assert_eq!(first, second);
        assert_eq!(dns.resolved_at, at, "no second lookup within the TTL");
    }
}
