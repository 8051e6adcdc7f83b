//! Connections: name resolution (with a per-origin cache and the `dns`
//! option's `ttl`, `select` and `policy`), TCP connect with `TCP_NODELAY`
//! (from a `localIPs` source address, through a proxy's `CONNECT` tunnel),
//! the TLS handshake with ALPN, and the byte stream both HTTP versions run
//! on, plain or TLS.
//!
//! Each phase is timed here, because only here is it known where one ends
//! and the next begins.

// Some functions here return an `async move` block instead of being an
// `async fn`: an `async fn` moves its arguments into locals and its future
// then holds them twice (ARCHITECTURE.md, invariant 19).
#![allow(clippy::manual_async_fn)]

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::ServerName;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;

use super::HttpClientConfig;
use super::error::{RequestError, connect_error};
use super::proxy::Proxy;
use super::url::{Scheme, Target};
use crate::metrics::Timings;
use crate::plan::net::{DnsOptions, DnsSelect};

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
    /// Any byte read here makes the connection untrustworthy, so a few
    /// bytes of the caller's frame are enough to look.
    pub async fn idle_state(&mut self) -> IdleState {
        let mut probe = [0u8; 8];
        std::future::poll_fn(|cx| {
            let mut buf = ReadBuf::new(&mut probe);
            Poll::Ready(match Pin::new(&mut *self).poll_read(cx, &mut buf) {
                Poll::Pending => IdleState::Open,
                Poll::Ready(Ok(())) if buf.filled().is_empty() => IdleState::Closed,
                Poll::Ready(Ok(())) => IdleState::Unsolicited,
                Poll::Ready(Err(_)) => IdleState::Closed,
            })
        })
        .await
    }

    /// Ready when a read can make progress, without holding a buffer: a
    /// plain socket once it is readable; a TLS stream at once (its session
    /// may hold decrypted bytes the socket no longer shows). A poll, not a
    /// future: the socket keeps the waker, so the caller's future holds no
    /// waiter of its own.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Plain(s) => s.poll_read_ready(cx),
            Stream::Tls(_) => Poll::Ready(Ok(())),
        }
    }

    /// The TLS version and suite, for `https://`.
    pub fn tls_info(&self) -> Option<super::tls::TlsInfo> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls(s) => super::tls::TlsInfo::of(s.get_ref().1),
        }
    }

    /// The ALPN protocol agreed in the TLS handshake, if any.
    pub fn negotiated_h2(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(s) => s.get_ref().1.alpn_protocol() == Some(b"h2"),
        }
    }
}

/// Resolved addresses of one origin (or of its proxy), kept for the
/// `dns` option's `ttl`.
#[derive(Debug, Default)]
pub struct DnsCache {
    addrs: Vec<SocketAddr>,
    resolved_at: Option<Instant>,
    /// Set by the `hosts` option: never looked up.
    pinned: bool,
    /// The next address for `select: roundRobin`.
    next: usize,
}

impl DnsCache {
    /// Always answers `addr` (the `hosts` option).
    pub fn pin(&mut self, addr: SocketAddr) {
        self.addrs.clear();
        self.addrs.reserve_exact(1);
        self.addrs.push(addr);
        self.pinned = true;
    }

    /// The address a new connection to `target` uses: the pinned one,
    /// the IP literal, or one of the (cached or fresh) answer's addresses
    /// chosen by the `dns` option's `policy` and `select`, as k6 does.
    fn pick(
        &mut self,
        target: &Target,
        opts: &DnsOptions,
    ) -> impl Future<Output = Result<SocketAddr, RequestError>> {
        async move {
            if self.pinned && !self.addrs.is_empty() {
                return Ok(self.addrs[0]);
            }
            if let Some(ip) = target.ip {
                return Ok(SocketAddr::new(ip, target.port));
            }
            let fresh = !self.addrs.is_empty()
                && self
                    .resolved_at
                    .is_some_and(|at| opts.ttl.is_none_or(|ttl| at.elapsed() < ttl));
            if !fresh {
                // Boxed: most dials find the address cached or literal, and
                // a lookup's future would make every dial's future larger.
                let found = Box::pin(tokio::net::lookup_host((target.host.as_str(), target.port)))
                    .await
                    .map_err(|source| RequestError::Dns {
                        host: target.host.clone(),
                        source,
                    })?;
                self.addrs.clear();
                self.addrs.extend(found);
                // Kept for the TTL by every VU: no spare capacity.
                self.addrs.shrink_to_fit();
                let answered = !self.addrs.is_empty();
                opts.policy.filter(&mut self.addrs);
                if self.addrs.is_empty() {
                    let why = if answered {
                        format!("no address allowed by dns policy {:?}", opts.policy)
                    } else {
                        "no addresses".to_owned()
                    };
                    return Err(RequestError::Dns {
                        host: target.host.clone(),
                        source: io::Error::new(io::ErrorKind::NotFound, why),
                    });
                }
                self.resolved_at = Some(Instant::now());
            }
            let i = match opts.select {
                DnsSelect::First => 0,
                DnsSelect::Random => fastrand::usize(..self.addrs.len()),
                DnsSelect::RoundRobin => {
                    self.next = self.next.wrapping_add(1);
                    self.next.wrapping_sub(1) % self.addrs.len()
                }
            };
            Ok(self.addrs[i])
        }
    }
}

/// A new connection, ready for HTTP.
#[derive(Debug)]
pub struct Dialed {
    pub stream: Stream,
    /// The address connected to (the proxy's, through a proxy).
    pub peer: SocketAddr,
}

/// Resolves, connects (from `local_ip`, through the run's proxy for this
/// target, if any) and, for https, does the TLS handshake, recording
/// `connecting` (which includes a proxy's `CONNECT`) and `tls_handshaking`
/// in `timings`.
pub fn dial(
    target: &Target,
    dns: &mut DnsCache,
    config: &HttpClientConfig,
    local_ip: Option<IpAddr>,
    timings: &mut Timings,
) -> impl Future<Output = Result<Dialed, RequestError>> {
    async move {
        let proxy = config.proxies.for_target(target);
        let to = proxy.map_or(target, |p| &p.target);
        // The egress policy: the names first (no lookup of a denied name; a
        // proxied target is resolved by the proxy, so its name is all there
        // is), then the address DNS or `hosts` gave.
        let egress = &config.opts.net.egress;
        allowed(egress, proxy, &target.host, target.ip)?;
        if proxy.is_some() {
            allowed(egress, proxy, &to.host, to.ip)?;
        }
        let addr = dns.pick(to, &config.opts.net.dns).await?;
        allowed(egress, proxy, &to.host, Some(addr.ip()))?;
        let connect_start = Instant::now();
        let tcp = connect(addr, local_ip)?;
        // The connect is over when the socket turns writable; its pending
        // error (if any) says how it ended.
        std::future::poll_fn(|cx| tcp.poll_write_ready(cx))
            .await
            .and_then(|()| tcp.take_error())
            .map_err(|e| connect_error(addr, e))?
            .map_or(Ok(()), |e| Err(connect_error(addr, e)))?;
        // Without this, Nagle + delayed ACK add ~40 ms to small exchanges.
        tcp.set_nodelay(true)
            .map_err(|source| RequestError::Connect { addr, source })?;
        let stream = match target.scheme {
            Scheme::Http => {
                timings.connecting = connect_start.elapsed();
                Stream::Plain(tcp)
            }
            // Boxed: the tunnel and the handshake are large futures, and a
            // plain connection should not carry their space while it connects.
            Scheme::Https => {
                Box::pin(secure(
                    tcp,
                    proxy,
                    target,
                    addr,
                    config,
                    connect_start,
                    timings,
                ))
                .await?
            }
        };
        Ok(Dialed { stream, peer: addr })
    }
}

/// The TLS half of [`dial`]: the proxy's tunnel (if any), then the
/// handshake, timed.
async fn secure(
    mut tcp: TcpStream,
    proxy: Option<&Proxy>,
    target: &Target,
    addr: SocketAddr,
    config: &HttpClientConfig,
    connect_start: Instant,
    timings: &mut Timings,
) -> Result<Stream, RequestError> {
    if let Some(p) = proxy {
        tunnel(&mut tcp, p, target).await?;
    }
    timings.connecting = connect_start.elapsed();
    let tls_start = Instant::now();
    let stream = handshake(target, tcp, addr, config.tls_config(&target.host)).await;
    timings.tls_handshaking = tls_start.elapsed();
    Ok(Stream::Tls(Box::new(stream?)))
}

/// `host` (at `ip`, when known) under the egress policy; a denial names
/// the proxy the request would have gone through.
fn allowed(
    egress: &crate::plan::egress::EgressPolicy,
    proxy: Option<&Proxy>,
    host: &str,
    ip: Option<IpAddr>,
) -> Result<(), RequestError> {
    egress
        .check(Some(host), ip)
        .map_err(|denial| RequestError::Egress {
            denial: Box::new(denial),
            via: proxy.map(|p| format!("{}:{}", p.target.host, p.target.port)),
        })
}

/// Starts a TCP connection to `addr`, from `local_ip` when `localIPs` gives
/// one, and returns its stream while the handshake is under way ([`dial`]
/// waits for it). A connect started by hand, not tokio's
/// `TcpSocket::connect`: that future (with a readiness waiter of its own)
/// would be part of every request's future, where waiting with a poll
/// function costs a reference.
fn connect(addr: SocketAddr, local_ip: Option<IpAddr>) -> Result<TcpStream, RequestError> {
    let failed = |source| RequestError::Connect { addr, source };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .and_then(|s| s.set_nonblocking(true).map(|()| s))
        .map_err(|e| connect_error(addr, e))?;
    if let Some(ip) = local_ip {
        if ip.is_ipv4() != addr.is_ipv4() {
            return Err(failed(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "source address {ip} (localIPs) cannot reach {addr}: another address family"
                ),
            )));
        }
        socket.bind(&SocketAddr::new(ip, 0).into()).map_err(|e| {
            failed(io::Error::new(
                e.kind(),
                format!("cannot use source address {ip} (localIPs): {e}"),
            ))
        })?;
    }
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if crate::os::connect_in_progress(&e) => {}
        Err(e) => return Err(connect_error(addr, e)),
    }
    TcpStream::from_std(socket.into()).map_err(|e| connect_error(addr, e))
}

/// Longest proxy answer to a `CONNECT` read before giving up on it.
const MAX_CONNECT_RESPONSE: usize = 16 * 1024;

/// Asks the proxy for a tunnel to `target` (`CONNECT host:port`) and reads
/// its answer; a 2xx opens the tunnel.
async fn tunnel(tcp: &mut TcpStream, proxy: &Proxy, target: &Target) -> Result<(), RequestError> {
    let authority = if target.ip.is_some_and(|ip| ip.is_ipv6()) {
        format!("[{}]:{}", target.host, target.port)
    } else {
        format!("{}:{}", target.host, target.port)
    };
    let fail = |reason: String| RequestError::Proxy {
        proxy: format!("{}:{}", proxy.target.host, proxy.target.port),
        target: authority.clone(),
        reason,
    };
    let mut head = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if !proxy.authorization().is_empty() {
        head.push_str("Proxy-Authorization: ");
        head.push_str(proxy.authorization());
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes())
        .await
        .map_err(|e| fail(format!("writing CONNECT: {e}")))?;
    // Read up to the end of the head only: the TLS handshake follows on
    // the same stream, and a proxy sends nothing more before it.
    let mut buf = Vec::with_capacity(512);
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if buf.len() >= MAX_CONNECT_RESPONSE {
            return Err(fail(format!(
                "no end of its answer in {MAX_CONNECT_RESPONSE} bytes"
            )));
        }
        match tcp.read(&mut byte).await {
            Ok(0) => return Err(fail("it closed the connection".into())),
            Ok(_) => buf.push(byte[0]),
            Err(e) => return Err(fail(e.to_string())),
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(&buf) {
        Ok(httparse::Status::Complete(_)) => match resp.code {
            Some(code) if (200..300).contains(&code) => Ok(()),
            Some(code) => Err(fail(format!(
                "it answered {code} {}",
                resp.reason.unwrap_or_default()
            ))),
            None => Err(fail("its answer has no status".into())),
        },
        _ => Err(fail("its answer is not HTTP".into())),
    }
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
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    fn target(url: &str) -> Target {
        let mut t = Target::default();
        t.parse_into(url).unwrap();
        t
    }

    fn config() -> HttpClientConfig {
        HttpClientConfig::new(&crate::plan::HttpOptions::for_tests()).unwrap()
    }

    #[tokio::test]
    async fn dials_ip_literals_and_sees_the_peer_close() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut timings = Timings::default();
        let mut dns = DnsCache::default();
        let url = format!("http://{addr}/");
        let mut dialed = dial(&target(&url), &mut dns, &config(), None, &mut timings)
            .await
            .unwrap();
        assert_eq!(dialed.peer, addr);
        let (mut server, _) = listener.accept().await.unwrap();
        assert_eq!(dialed.stream.idle_state().await, IdleState::Open);
        server.write_all(b"x").await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while dialed.stream.idle_state().await == IdleState::Open {
            assert!(Instant::now() < deadline, "unsolicited byte never seen");
            tokio::task::yield_now().await;
        }
        drop(server);
        let mut dialed = dial(&target(&url), &mut dns, &config(), None, &mut timings)
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        drop(server);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match dialed.stream.idle_state().await {
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
            &config(),
            None,
            &mut timings,
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectRefused, "{err}");
    }

    #[tokio::test]
    async fn cached_addresses_skip_the_lookup_within_the_ttl() {
        let mut dns = DnsCache::default();
        let t = target("http://localhost:1/");
        let opts = DnsOptions::default();
        let first = dns.pick(&t, &opts).await.unwrap();
        assert!(first.ip().is_ipv4(), "preferIPv4 picks {first}");
        let at = dns.resolved_at;
        assert_eq!(dns.pick(&t, &opts).await.unwrap(), first);
        assert_eq!(dns.resolved_at, at, "no second lookup within the TTL");
        let never = DnsOptions {
            ttl: Some(Duration::ZERO),
            ..opts
        };
        dns.pick(&t, &never).await.unwrap();
        assert_ne!(dns.resolved_at, at, "ttl=0 looks up every time");
    }

    #[tokio::test]
    async fn select_first_and_round_robin_walk_the_answer() {
        let addrs: Vec<SocketAddr> = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let mut dns = DnsCache {
            addrs: addrs.clone(),
            resolved_at: Some(Instant::now()),
            ..DnsCache::default()
        };
        let t = target("http://api.test/");
        let mut opts = DnsOptions {
            ttl: None,
            select: DnsSelect::RoundRobin,
            ..DnsOptions::default()
        };
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(dns.pick(&t, &opts).await.unwrap());
        }
        assert_eq!(got, [addrs[0], addrs[1], addrs[2], addrs[0]]);
        opts.select = DnsSelect::First;
        assert_eq!(dns.pick(&t, &opts).await.unwrap(), addrs[0]);
        opts.select = DnsSelect::Random;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            seen.insert(dns.pick(&t, &opts).await.unwrap());
        }
        assert_eq!(seen.len(), 3, "random reaches every address");
    }

    #[tokio::test]
    async fn a_source_address_is_used_and_a_wrong_family_is_an_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let url = format!("http://{addr}/");
        let mut timings = Timings::default();
        let source: IpAddr = "127.0.0.7".parse().unwrap();
        let _dialed = dial(
            &target(&url),
            &mut DnsCache::default(),
            &config(),
            Some(source),
            &mut timings,
        )
        .await
        .unwrap();
        let (_, from) = listener.accept().await.unwrap();
        assert_eq!(from.ip(), source);
        let v6: IpAddr = "::1".parse().unwrap();
        let err = dial(
            &target(&url),
            &mut DnsCache::default(),
            &config(),
            Some(v6),
            &mut timings,
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("another address family"), "{err}");
    }

    #[tokio::test]
    async fn a_proxy_that_refuses_the_tunnel_is_a_connect_error() {
        let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let paddr = proxy.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = proxy.accept().await.unwrap();
            let mut buf = vec![0u8; 1024];
            let n = s.read(&mut buf).await.unwrap();
            s.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        let mut opts = crate::plan::HttpOptions::for_tests();
        opts.net.proxy = Some(crate::plan::net::ProxyOption {
            http: None,
            https: Some(format!("http://u:pw@{paddr}")),
            no_proxy: String::new(),
        });
        let config = HttpClientConfig::new(&opts).unwrap();
        let mut timings = Timings::default();
        let err = dial(
            &target("https://api.test:8443/"),
            &mut DnsCache::default(),
            &config,
            None,
            &mut timings,
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
        assert!(err.to_string().contains("403 Forbidden"), "{err}");
        let sent = server.await.unwrap();
        assert!(
            sent.starts_with("CONNECT api.test:8443 HTTP/1.1\r\nHost: api.test:8443\r\n"),
            "{sent}"
        );
        assert!(
            sent.contains("Proxy-Authorization: Basic dTpwdw==\r\n"),
            "{sent}"
        );
    }

    #[tokio::test]
    async fn the_egress_policy_refuses_before_any_lookup_or_connection() {
        let dial_to = |url: &str, config: HttpClientConfig| {
            let url = url.to_owned();
            async move {
                let mut timings = Timings::default();
                dial(
                    &target(&url),
                    &mut DnsCache::default(),
                    &config,
                    None,
                    &mut timings,
                )
                .await
                .unwrap_err()
            }
        };
        // The compiled default: link-local and metadata denied.
        let err = dial_to("http://169.254.169.254/latest/", config()).await;
        assert_eq!(err.kind(), ErrorKind::BlockedIp, "{err}");
        assert!(err.to_string().contains("denied by egress policy"), "{err}");
        let err = dial_to("http://[::ffff:169.254.169.254]/", config()).await;
        assert_eq!(err.kind(), ErrorKind::BlockedIp, "{err}");
        // Refused by name: no DNS error, though the name does not resolve here.
        let err = dial_to("http://Metadata.Google.Internal./x", config()).await;
        assert_eq!(err.kind(), ErrorKind::BlockedHostname, "{err}");

        // The `hosts` option's address is checked like DNS's.
        let mut opts = crate::plan::HttpOptions::for_tests();
        opts.net.egress = std::sync::Arc::new(crate::plan::egress::EgressPolicy::new(
            Vec::new(),
            crate::plan::egress::Rule::parse_list("127.0.0.0/8").unwrap(),
            true,
        ));
        let config = HttpClientConfig::new(&opts).unwrap();
        let mut dns = DnsCache::default();
        dns.pin(SocketAddr::from(([127, 0, 0, 1], 9)));
        let mut timings = Timings::default();
        let err = dial(
            &target("http://api.test:9/"),
            &mut dns,
            &config,
            None,
            &mut timings,
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BlockedIp, "{err}");
        assert_eq!(
            err.to_string(),
            "api.test (127.0.0.1) is denied by egress policy (deny rule 127.0.0.0/8)"
        );

        // Through a proxy: the proxy's address, and the target's name.
        let mut opts = crate::plan::HttpOptions::for_tests();
        opts.net.proxy = Some(crate::plan::net::ProxyOption {
            http: Some("http://169.254.1.1:3128".into()),
            https: None,
            no_proxy: String::new(),
        });
        let err = dial_to("http://api.test/", HttpClientConfig::new(&opts).unwrap()).await;
        assert_eq!(err.kind(), ErrorKind::BlockedIp, "{err}");
        assert!(
            err.to_string()
                .ends_with("(through proxy 169.254.1.1:3128)"),
            "{err}"
        );
        opts.net.proxy = Some(crate::plan::net::ProxyOption {
            http: Some("http://127.0.0.1:9".into()),
            https: None,
            no_proxy: String::new(),
        });
        let err = dial_to("http://metadata/", HttpClientConfig::new(&opts).unwrap()).await;
        assert_eq!(err.kind(), ErrorKind::BlockedHostname, "{err}");
    }
}
