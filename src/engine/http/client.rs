//! The per-VU client: one connection per origin, reused unless
//! `noConnectionReuse`, re-dialled when the server closed it; the request
//! timeout; the one retry of the keep-alive race; the `blocked` timing.
//!
//! The keep-alive race: a server may close an idle connection just as the
//! VU writes its next request on it. An idle connection is first checked
//! without waiting (a close seen there costs nothing but a new dial). If
//! the request still fails before any response byte because the peer
//! closed the connection, it is retried once on a fresh connection when
//! the server cannot have acted on it: the write itself failed, or the
//! method is idempotent (RFC 9110 §9.2.2). A POST whose bytes were sent is
//! not repeated, as in k6. Nothing is retried after response bytes arrived.

// Some functions here return an `async move` block instead of being an
// `async fn`: an `async fn` moves its arguments into locals and its future
// then holds them twice (ARCHITECTURE.md, invariant 19).
#![allow(clippy::manual_async_fn)]

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Uri, header};
use tokio::time::Instant;

use super::error::RequestError;
use super::h1::{self, Phase, PhaseClock, Scratch};
use super::h2::{self, H2Conn};
use super::stream::{self, DnsCache, IdleState, Stream};
use super::url::{Scheme, Target};
use super::{HttpClientConfig, OutRequest, Response};
use crate::metrics::Timings;

/// Origins a VU keeps state for; beyond this the oldest is forgotten.
const MAX_ORIGINS: usize = 64;

/// One VU's HTTP client (k6 semantics: each VU keeps its own connections).
///
/// What only a request needs (the parsed URL, the buffers, the phase clock)
/// is in its `Work`, made on the first request and dropped by
/// [`VuClient::release_buffers`]: a sleeping VU keeps its connections and
/// little else.
#[derive(Debug)]
pub struct VuClient {
    config: Arc<HttpClientConfig>,
    origins: Vec<Origin>,
    work: Option<Box<Work>>,
    /// This VU's source address (`localIPs`).
    local_ip: Option<std::net::IpAddr>,
    /// The size its last read buffer reached, for the next one
    /// ([`Scratch::read_size`]).
    read_size: u32,
}

/// A client's state while it sends requests.
#[derive(Debug)]
struct Work {
    /// The URL last parsed into `target`, so a static URL is parsed once.
    url: String,
    /// False when `target` does not describe `url` (after a parse error).
    url_ok: bool,
    target: Target,
    /// HTTP/2 URI of `target`, built on first use (boxed: few requests
    /// speak HTTP/2, and every VU at work has a `Work`).
    h2_uri: Option<Box<Uri>>,
    scratch: Scratch,
    /// Where the current request is and since when: for charging a
    /// timeout, and for phases that end where the next begins.
    clock: PhaseClock,
}

impl Work {
    fn new(read_size: u32) -> Box<Work> {
        Box::new(Work {
            url: String::new(),
            url_ok: false,
            target: Target::default(),
            h2_uri: None,
            scratch: Scratch::with_read_size(read_size as usize),
            clock: PhaseClock::start(Instant::now()),
        })
    }
}

/// Everything a VU keeps per `scheme://host:port`.
#[derive(Debug)]
struct Origin {
    scheme: Scheme,
    host: String,
    port: u16,
    dns: DnsCache,
    /// The connection, if any: idle, or in use by the request under way.
    conn: Option<Conn>,
    /// A request is using `conn`. Still set when the next request starts,
    /// the last one was cut (its future dropped) mid-exchange, and the
    /// connection is discarded.
    busy: bool,
}

#[derive(Debug)]
enum Conn {
    H1 {
        stream: Stream,
        peer: std::net::SocketAddr,
    },
    H2 {
        /// Boxed: every VU keeps an `Origin`, few speak HTTP/2.
        conn: Box<H2Conn>,
        peer: std::net::SocketAddr,
        tls: Option<super::tls::TlsInfo>,
    },
}

impl Conn {
    /// Dials a new connection: HTTP/2 when ALPN chose `h2`, or over plain
    /// TCP with `http2PriorKnowledge`.
    fn open(
        target: &Target,
        dns: &mut DnsCache,
        config: &HttpClientConfig,
        local_ip: Option<std::net::IpAddr>,
        timings: &mut Timings,
    ) -> impl Future<Output = Result<Conn, RequestError>> {
        async move {
            let proxied = config.proxies.for_target(target).is_some();
            if !proxied && let Some(addr) = config.opts.host_override(&target.host, target.port) {
                dns.pin(addr);
            }
            let dialed = stream::dial(target, dns, config, local_ip, timings).await?;
            // h2c by prior knowledge would speak HTTP/2 to the proxy itself.
            let h2c =
                target.scheme == Scheme::Http && config.opts.http2_prior_knowledge && !proxied;
            if h2c || dialed.stream.negotiated_h2() {
                let tls = dialed.stream.tls_info();
                Ok(Conn::H2 {
                    // Boxed, as the TLS handshake is: rare, and large.
                    conn: Box::new(Box::pin(H2Conn::handshake(dialed.stream, dialed.peer)).await?),
                    peer: dialed.peer,
                    tls,
                })
            } else {
                Ok(Conn::H1 {
                    stream: dialed.stream,
                    peer: dialed.peer,
                })
            }
        }
    }

    async fn is_usable(&mut self) -> bool {
        match self {
            Conn::H1 { stream, .. } => stream.idle_state().await == IdleState::Open,
            Conn::H2 { conn, .. } => conn.is_open(),
        }
    }
}

impl VuClient {
    /// The client of VU `vu` (1-based): its `localIPs` source address.
    pub fn for_vu(config: Arc<HttpClientConfig>, vu: u64) -> Self {
        let local_ip = config.opts.net.local_ips.for_vu(vu);
        VuClient {
            local_ip,
            ..VuClient::new(config)
        }
    }

    /// Another client of the same VU (parallel requests of a batch).
    pub fn sibling(&self) -> Self {
        VuClient {
            local_ip: self.local_ip,
            ..VuClient::new(Arc::clone(&self.config))
        }
    }

    pub fn new(config: Arc<HttpClientConfig>) -> Self {
        VuClient {
            local_ip: None,
            config,
            origins: Vec::new(),
            work: None,
            read_size: 0,
        }
    }

    pub fn config(&self) -> &Arc<HttpClientConfig> {
        &self.config
    }

    /// Sends one request and fills `out` (cleared first). Never fails:
    /// failures land in `out.error` / `out.failure`.
    pub fn send(&mut self, req: &OutRequest<'_>, out: &mut Response) -> impl Future<Output = ()> {
        async move {
            if let Some(limiter) = &self.config.rps {
                limiter.wait().await;
            }
            match self.config.opts.http_debug {
                None => self.send_plain(req, out).await,
                // Boxed: rare, and its copy of the request would otherwise be
                // part of every request's future.
                Some(level) => Box::pin(self.send_shown(req, out, level)).await,
            }
        }
    }

    /// Sends with everything kept, then shows it (`--http-debug`).
    async fn send_shown(
        &mut self,
        req: &OutRequest<'_>,
        out: &mut Response,
        level: crate::plan::HttpDebug,
    ) {
        let mut shown = *req;
        shown.keep_headers = true;
        shown.keep_body |= level == crate::plan::HttpDebug::Full;
        self.send_plain(&shown, out).await;
        eprint!("{}", super::debug::dump(&shown, out, level));
    }

    fn send_plain(&mut self, req: &OutRequest<'_>, out: &mut Response) -> impl Future<Output = ()> {
        async move {
            out.clear();
            let start = Instant::now();
            let read_size = self.read_size;
            let work = self.work.get_or_insert_with(|| Work::new(read_size));
            work.clock = PhaseClock::start(start);
            let parts = Parts {
                config: &self.config,
                origins: &mut self.origins,
                work,
                local_ip: self.local_ip,
            };
            let sent = tokio::time::timeout(req.timeout, parts.send(req, out, start)).await;
            let clock = self
                .work
                .as_ref()
                .map_or(PhaseClock::start(start), |w| w.clock);
            match sent {
                Ok(Ok(())) => {
                    out.elapsed = clock.since - start;
                    decode_body(out);
                }
                Ok(Err(failure)) => {
                    out.elapsed = start.elapsed();
                    out.fail(failure);
                }
                Err(_elapsed) => {
                    // The cut request's connection is closed now, not when
                    // the VU's next request finds it busy.
                    for origin in self.origins.iter_mut().filter(|o| o.busy) {
                        origin.conn = None;
                        origin.busy = false;
                    }
                    out.elapsed = start.elapsed();
                    charge_cut_phase(&mut out.timings, clock.phase, out.elapsed);
                    out.fail(RequestError::Timeout {
                        timeout: req.timeout,
                    });
                }
            }
        }
    }

    /// Frees what a sleeping VU does not need: the request's state and
    /// buffers (connections stay open).
    pub fn release_buffers(&mut self) {
        if let Some(work) = self.work.take()
            && !work.scratch.buf.is_empty()
        {
            self.read_size = u32::try_from(work.scratch.buf.len()).unwrap_or(u32::MAX);
        }
    }

    /// Closes every connection of this VU.
    pub fn close_all(&mut self) {
        for origin in &mut self.origins {
            origin.conn = None;
        }
    }
}

/// A client's parts that one request uses, borrowed apart.
struct Parts<'a> {
    config: &'a Arc<HttpClientConfig>,
    origins: &'a mut Vec<Origin>,
    work: &'a mut Work,
    local_ip: Option<std::net::IpAddr>,
}

impl Parts<'_> {
    /// The fields are used in place, never moved into locals: an `async
    /// fn` keeps its arguments for its whole life, and a copy of them in
    /// locals would be held across every await of every request.
    fn send(
        self,
        req: &OutRequest<'_>,
        out: &mut Response,
        start: Instant,
    ) -> impl Future<Output = Result<(), RequestError>> {
        async move {
            let work = &mut *self.work;
            if !work.url_ok || work.url != req.url {
                work.url_ok = false;
                work.h2_uri = None;
                work.target
                    .parse_into(req.url)
                    .map_err(|reason| RequestError::InvalidUrl {
                        url: req.url.to_owned(),
                        reason,
                    })?;
                work.url.clear();
                work.url.push_str(req.url);
                work.url_ok = true;
            }
            let opts = &self.config.opts;
            let target = &work.target;
            // Also validates the headers, whichever version ends up used.
            let via = self
                .config
                .proxies
                .for_target(target)
                .filter(|_| target.scheme == Scheme::Http);
            let shape = h1::build_head(&mut work.scratch.head, req, target, opts, via)?;
            let origin = origin_for(self.origins, target);
            // A connection left in use by a request whose future was dropped
            // (its timeout) is in an unknown state.
            if origin.busy || opts.no_connection_reuse {
                origin.conn = None;
            }
            if let Some(idle) = &mut origin.conn
                && !idle.is_usable().await
            {
                origin.conn = None;
            }
            let mut reused = origin.conn.is_some();
            let mut retried = false;
            loop {
                // The connection stays in its origin while it is used, so a
                // request's future holds a reference to it, not the
                // connection; `busy` tells a cut request's leftover apart.
                let current = match &mut origin.conn {
                    Some(conn) => conn,
                    // Inline: the request's future is boxed already, and a
                    // dial shares its space with the exchange that follows
                    // (its TLS half and an h2 handshake are boxed in turn).
                    None => origin.conn.insert(
                        Conn::open(
                            &work.target,
                            &mut origin.dns,
                            self.config,
                            self.local_ip,
                            &mut out.timings,
                        )
                        .await?,
                    ),
                };
                // `blocked` ends at the instant `sending` starts: the phases
                // share their boundaries, so they add up to the request's time.
                out.timings.blocked = work.clock.next(Phase::Sending);
                out.reused = reused;
                origin.busy = true;
                let result = match current {
                    Conn::H1 { stream, peer } => {
                        out.remote = Some(*peer);
                        out.tls = stream.tls_info();
                        let (scratch, clock) = (&mut work.scratch, &mut work.clock);
                        h1::exchange(stream, *peer, scratch, req, shape, out, clock).await
                    }
                    Conn::H2 { conn, peer, tls } => {
                        out.remote = Some(*peer);
                        out.tls = *tls;
                        let uri = uri_for(&mut work.h2_uri, &work.target, req)?;
                        Box::pin(conn.exchange(&uri, req, &work.target, opts, out, &mut work.clock))
                            .await
                    }
                };
                origin.busy = false;
                match result {
                    Ok(reusable) => {
                        if !reusable || opts.no_connection_reuse {
                            origin.conn = None;
                        }
                        return Ok(());
                    }
                    Err(e) => {
                        origin.conn = None;
                        let retry = reused
                            && !retried
                            && e.closed_before_response
                            && (e.write_failed || is_idempotent(req.method));
                        if !retry {
                            return Err(e.error);
                        }
                        retried = true;
                        reused = false;
                        // The failed attempt's time stays in `blocked`: it was
                        // spent waiting for a usable connection.
                        out.timings = Timings::default();
                        work.clock = PhaseClock::start(start);
                    }
                }
            }
        }
    }
}

/// Decodes a kept body sent with `Content-Encoding` (gzip, deflate, br, zstd),
/// as k6 does (the data counters keep the wire size). A body that does
/// not decode fails the request.
fn decode_body(out: &mut Response) {
    if out.body.is_empty() {
        return;
    }
    let Some(coding) = out.header("content-encoding") else {
        return;
    };
    match super::encoding::decode(coding, &out.body, super::encoding::MAX_DECODED) {
        Ok(Some(decoded)) => out.body = decoded,
        Ok(None) => {}
        Err(reason) => out.fail(RequestError::Decode { reason }),
    }
}

/// The VU's state for the target's origin, created on first use.
fn origin_for<'a>(origins: &'a mut Vec<Origin>, target: &Target) -> &'a mut Origin {
    let found = origins
        .iter()
        .position(|o| o.port == target.port && o.scheme == target.scheme && o.host == target.host);
    let index = match found {
        Some(i) => i,
        None => {
            if origins.len() >= MAX_ORIGINS {
                origins.remove(0);
            }
            // Every VU keeps these: no spare capacity.
            origins.reserve_exact(1);
            origins.push(Origin {
                scheme: target.scheme,
                host: target.host.clone(),
                port: target.port,
                dns: DnsCache::default(),
                conn: None,
                busy: false,
            });
            origins.len() - 1
        }
    };
    &mut origins[index]
}

/// The HTTP/2 URI: cached for the URL, or built for a `Host` override.
fn uri_for(
    cache: &mut Option<Box<Uri>>,
    target: &Target,
    req: &OutRequest<'_>,
) -> Result<Uri, RequestError> {
    let invalid = |reason| RequestError::InvalidUrl {
        url: target.uri_string(),
        reason,
    };
    if let Some((_, host)) = req.headers.iter().find(|(n, _)| *n == header::HOST) {
        return h2::request_uri(target, Some(host)).map_err(invalid);
    }
    if let Some(uri) = cache {
        return Ok(Uri::clone(uri));
    }
    let uri = h2::request_uri(target, None).map_err(invalid)?;
    *cache = Some(Box::new(uri.clone()));
    Ok(uri)
}

/// Methods a server may receive twice without harm (RFC 9110 §9.2.2).
fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// Gives the time a timeout cut short to the phase it interrupted, so the
/// phases still add up to the time the request took.
fn charge_cut_phase(t: &mut Timings, phase: Phase, elapsed: Duration) {
    match phase {
        Phase::Blocked => t.blocked = elapsed,
        Phase::Sending => t.sending = elapsed.saturating_sub(t.blocked),
        Phase::Waiting => t.waiting = elapsed.saturating_sub(t.blocked + t.sending),
        // A timeout after the last byte cannot cut anything; should one be
        // seen there, the rest still goes to `receiving`.
        Phase::Receiving | Phase::Done => {
            t.receiving = elapsed.saturating_sub(t.blocked + t.sending + t.waiting);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_phase_gets_the_rest() {
        let ms = Duration::from_millis;
        let mut t = Timings {
            blocked: ms(1),
            sending: ms(2),
            ..Timings::default()
        };
        charge_cut_phase(&mut t, Phase::Waiting, ms(100));
        assert_eq!(t.waiting, ms(97));
        assert_eq!(t.blocked + t.sending + t.waiting, ms(100));
        let mut blocked = Timings::default();
        charge_cut_phase(&mut blocked, Phase::Blocked, ms(50));
        assert_eq!(blocked.blocked, ms(50));
    }

    /// A loopback server answering its connection's requests with bodies
    /// of `sizes`, in order.
    async fn server(sizes: Vec<usize>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            for size in sizes {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if conn.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let mut response =
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n").into_bytes();
                response.resize(response.len() + size, b'x');
                if conn.write_all(&response).await.is_err() {
                    return;
                }
            }
        });
        format!("http://{addr}/")
    }

    #[tokio::test]
    async fn a_vu_makes_its_next_read_buffer_the_size_its_last_one_reached() {
        let url = server(vec![20_000, 10]).await;
        let config = HttpClientConfig::new(&crate::plan::HttpOptions::for_tests()).expect("config");
        let mut client = VuClient::new(Arc::new(config));
        let req = OutRequest::get(&url, Duration::from_secs(10));
        let read_size = |c: &VuClient| c.work.as_ref().map(|w| w.scratch.buf.len());
        let mut out = Response::default();
        client.send(&req, &mut out).await;
        assert_eq!((out.status, out.error), (200, None), "{:?}", out.failure);
        let grown = read_size(&client).expect("a read buffer");
        assert!(grown > h1::INITIAL_READ_BUFFER, "{grown}");
        // A sleep frees it; the next response, a small one, is read into a
        // buffer of the size the large one needed, made at once.
        client.release_buffers();
        assert_eq!(read_size(&client), None);
        client.send(&req, &mut out).await;
        assert_eq!((out.status, out.error), (200, None), "{:?}", out.failure);
        assert!(out.reused);
        assert_eq!(read_size(&client), Some(grown));
    }

    #[test]
    fn only_idempotent_methods_are_retried_after_sending() {
        assert!(is_idempotent(&Method::GET));
        assert!(is_idempotent(&Method::PUT));
        assert!(!is_idempotent(&Method::POST));
        assert!(!is_idempotent(&Method::PATCH));
    }

    #[test]
    fn origins_are_shared_per_scheme_host_port() {
        let mut origins = Vec::new();
        let mut t = Target::default();
        t.parse_into("http://a.test/x").unwrap();
        origin_for(&mut origins, &t);
        t.parse_into("http://A.test:80/y").unwrap();
        origin_for(&mut origins, &t);
        assert_eq!(origins.len(), 1);
        t.parse_into("https://a.test/").unwrap();
        origin_for(&mut origins, &t);
        t.parse_into("http://a.test:8080/").unwrap();
        origin_for(&mut origins, &t);
        assert_eq!(origins.len(), 3);
        for i in 0..MAX_ORIGINS + 5 {
            t.parse_into(&format!("http://h{i}.test/")).unwrap();
            origin_for(&mut origins, &t);
        }
        assert_eq!(origins.len(), MAX_ORIGINS);
    }
}
