//! A ground-truth HTTP server for request phase timings: every request says
//! in its query how long the server waits before the response head, between
//! the head and the body, and between the pieces of a chunked body, so a
//! client's `waiting` and `receiving` can be held against known delays.
//!
//! `GET /?head=MICROS&body=MICROS&chunks=N&gap=MICROS&drain=MICROS`:
//!
//! 1. the request is read whole (head and `Content-Length` body); with
//!    `drain`, the server waits that long before it starts reading the
//!    body, so a large upload blocks the client's writes (`sending`);
//! 2. `head` later the response head is written and flushed;
//! 3. `body` later the body (or its first chunk) is written;
//! 4. with `chunks=N` (N ≥ 1) the body is chunked: N chunks of
//!    [`CHUNK`], `gap` apart, then the last chunk.
//!
//! HTTP/1.1 (plain or TLS) is served by a thread per connection with
//! blocking sockets and `std::thread::sleep` (nanosleep: exact to tens of
//! microseconds, and never early). HTTP/2 (TLS with ALPN `h2`, or h2c) is
//! served by hyper on a runtime of its own thread, waiting on tokio's timer
//! (never early; up to about a millisecond late). Either way nothing the
//! client's runtime does can shorten a delay. Certificates are made at
//! start with rcgen; every listener is on `127.0.0.1:0`.
// Each test binary that includes this file uses a different part of it.
#![allow(dead_code)]

use std::convert::Infallible;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Body of every chunk (and of a body sent with `Content-Length`).
pub const CHUNK: &[u8] = b"phase-timing-chunk\n";

/// How long a connection may stay silent before its thread gives up.
const IDLE: Duration = Duration::from_secs(30);

/// How the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// HTTP/1.1 over TCP.
    H1,
    /// HTTP/1.1 over TLS (ALPN `http/1.1`).
    H1Tls,
    /// HTTP/2 over TLS (ALPN `h2`).
    H2Tls,
    /// HTTP/2 over TCP by prior knowledge.
    H2c,
}

impl Proto {
    pub fn tls(self) -> bool {
        matches!(self, Proto::H1Tls | Proto::H2Tls)
    }

    pub fn h2(self) -> bool {
        matches!(self, Proto::H2Tls | Proto::H2c)
    }
}

/// What one request asks the server to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delays {
    /// Before the response head.
    pub head: Duration,
    /// Between the head and the body.
    pub body: Duration,
    /// Chunks of the body (0: a `Content-Length` body of one [`CHUNK`]).
    pub chunks: u32,
    /// Between two chunks.
    pub gap: Duration,
    /// Before the server starts reading a request body.
    pub drain: Duration,
}

impl Delays {
    /// The request target that asks for these delays.
    pub fn path(&self) -> String {
        format!(
            "/?head={}&body={}&chunks={}&gap={}&drain={}",
            self.head.as_micros(),
            self.body.as_micros(),
            self.chunks,
            self.gap.as_micros(),
            self.drain.as_micros()
        )
    }

    /// The least time between the first response byte and the last.
    pub fn receiving(&self) -> Duration {
        self.body + self.gap * self.chunks.saturating_sub(1)
    }

    fn parse(target: &str) -> Delays {
        let mut d = Delays::default();
        let query = target.split_once('?').map_or("", |(_, q)| q);
        for pair in query.split('&') {
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            let Ok(n) = value.parse::<u64>() else {
                continue;
            };
            let us = Duration::from_micros(n);
            match key {
                "head" => d.head = us,
                "body" => d.body = us,
                "chunks" => d.chunks = n.min(1000) as u32,
                "gap" => d.gap = us,
                "drain" => d.drain = us,
                _ => {}
            }
        }
        d
    }
}

/// A running ground-truth server; stops accepting when dropped.
pub struct PhasedServer {
    pub addr: SocketAddr,
    pub proto: Proto,
    stop: Arc<AtomicBool>,
    accepts: Arc<AtomicUsize>,
}

impl Drop for PhasedServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

impl PhasedServer {
    pub fn start(proto: Proto) -> PhasedServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let addr = listener.local_addr().expect("a bound address");
        let stop = Arc::new(AtomicBool::new(false));
        let accepts = Arc::new(AtomicUsize::new(0));
        let tls = proto.tls().then(|| Arc::new(tls_config(proto.h2())));
        let (stop2, accepts2) = (Arc::clone(&stop), Arc::clone(&accepts));
        if proto.h2() {
            std::thread::spawn(move || serve_h2(listener, tls, stop2, accepts2));
        } else {
            std::thread::spawn(move || serve_h1(listener, tls, stop2, accepts2));
        }
        PhasedServer {
            addr,
            proto,
            stop,
            accepts,
        }
    }

    /// The URL of a request asking for `delays`.
    pub fn url(&self, delays: &Delays) -> String {
        let scheme = if self.proto.tls() { "https" } else { "http" };
        format!("{scheme}://{}{}", self.addr, delays.path())
    }

    /// Connections accepted so far.
    pub fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }
}

fn serve_h1(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: Arc<AtomicBool>,
    accepts: Arc<AtomicUsize>,
) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(tcp) = stream else { continue };
        accepts.fetch_add(1, Ordering::SeqCst);
        let tls = tls.clone();
        std::thread::spawn(move || {
            let _ = tcp.set_nodelay(true);
            let _ = tcp.set_read_timeout(Some(IDLE));
            match tls {
                None => serve_h1_conn(tcp),
                Some(config) => {
                    let Ok(conn) = rustls::ServerConnection::new(config) else {
                        return;
                    };
                    serve_h1_conn(rustls::StreamOwned::new(conn, tcp))
                }
            }
        });
    }
}

/// Requests on one HTTP/1.1 connection until the client closes it.
fn serve_h1_conn<S: Read + Write>(mut io: S) {
    let mut buf = Vec::with_capacity(4096);
    loop {
        let (head_len, target, body_len) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let body_len = req
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                        .and_then(|h| std::str::from_utf8(h.value).ok())
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    break (len, req.path.unwrap_or("/").to_owned(), body_len);
                }
                Ok(httparse::Status::Partial) => {}
                Err(_) => return,
            }
            if !read_more(&mut io, &mut buf) {
                return;
            }
        };
        let delays = Delays::parse(&target);
        if body_len > 0 && !delays.drain.is_zero() {
            std::thread::sleep(delays.drain);
        }
        while buf.len() < head_len + body_len {
            if !read_more(&mut io, &mut buf) {
                return;
            }
        }
        buf.drain(..head_len + body_len);
        if respond_h1(&mut io, &delays).is_err() {
            return;
        }
    }
}

fn read_more<S: Read>(io: &mut S, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 64 * 1024];
    match io.read(&mut chunk) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

fn respond_h1<S: Write>(io: &mut S, d: &Delays) -> io::Result<()> {
    sleep(d.head);
    if d.chunks == 0 {
        write!(
            io,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            CHUNK.len()
        )?;
        io.flush()?;
        sleep(d.body);
        io.write_all(CHUNK)?;
        return io.flush();
    }
    io.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n",
    )?;
    io.flush()?;
    sleep(d.body);
    for i in 0..d.chunks {
        if i > 0 {
            sleep(d.gap);
        }
        write!(io, "{:x}\r\n", CHUNK.len())?;
        io.write_all(CHUNK)?;
        io.write_all(b"\r\n")?;
        if i + 1 == d.chunks {
            io.write_all(b"0\r\n\r\n")?;
        }
        io.flush()?;
    }
    Ok(())
}

fn sleep(d: Duration) {
    if !d.is_zero() {
        std::thread::sleep(d);
    }
}

/// HTTP/2 on a current-thread runtime of this thread.
fn serve_h2(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: Arc<AtomicBool>,
    accepts: Arc<AtomicUsize>,
) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    rt.block_on(async move {
        let _ = listener.set_nonblocking(true);
        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
            return;
        };
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            if stop.load(Ordering::SeqCst) {
                return;
            }
            accepts.fetch_add(1, Ordering::SeqCst);
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor {
                    None => serve_h2_conn(tcp).await,
                    Some(a) => {
                        if let Ok(tls) = a.accept(tcp).await {
                            serve_h2_conn(tls).await;
                        }
                    }
                }
            });
        }
    });
}

async fn serve_h2_conn<I>(io: I)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let flushes = Flushes::default();
    let io = Flushed {
        inner: io,
        flushes: flushes.clone(),
        dirty: false,
    };
    let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
        let flushes = flushes.clone();
        async move {
            let delays = Delays::parse(req.uri().path_and_query().map_or("/", |pq| pq.as_str()));
            let mut body = req.into_body();
            if !delays.drain.is_zero() {
                server_sleep(delays.drain).await;
            }
            while let Some(frame) = body.frame().await {
                if frame.is_err() {
                    break;
                }
            }
            server_sleep(delays.head).await;
            // hyper writes the head (and each chunk) on its connection task,
            // later than it is handed over: each wait starts only once what
            // came before is on the socket, so no wait is shortened.
            let pieces = delays.chunks.max(1);
            let seen = flushes.count();
            let frames = futures::stream::unfold((0u32, seen), move |(i, seen)| {
                let flushes = flushes.clone();
                async move {
                    if i >= pieces {
                        return None;
                    }
                    flushes.after(seen).await;
                    server_sleep(if i == 0 { delays.body } else { delays.gap }).await;
                    let next = flushes.count();
                    Some((
                        Ok::<_, Infallible>(Frame::data(Bytes::from_static(CHUNK))),
                        (i + 1, next),
                    ))
                }
            });
            let response = http::Response::builder()
                .header("content-type", "text/plain")
                .body(StreamBody::new(frames))
                .expect("invariant: a static response head");
            Ok::<_, Infallible>(response)
        }
    });
    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), service)
        .await;
}

/// Counts a connection's flushes that carried bytes.
#[derive(Clone, Default)]
struct Flushes {
    count: Arc<std::sync::atomic::AtomicU64>,
    notify: Arc<tokio::sync::Notify>,
}

impl Flushes {
    fn count(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }

    /// Returns once a flush with bytes followed the `seen`th.
    async fn after(&self, seen: u64) {
        loop {
            let notified = self.notify.notified();
            if self.count() > seen {
                return;
            }
            notified.await;
        }
    }
}

/// A server stream that counts its flushes.
struct Flushed<I> {
    inner: I,
    flushes: Flushes,
    /// Bytes were written since the last flush.
    dirty: bool,
}

impl<I: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Flushed<I> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<I: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Flushed<I> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(polled, std::task::Poll::Ready(Ok(n)) if n > 0) {
            this.dirty = true;
        }
        polled
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.inner).poll_flush(cx);
        if this.dirty && matches!(polled, std::task::Poll::Ready(Ok(()))) {
            this.dirty = false;
            this.flushes.count.fetch_add(1, Ordering::SeqCst);
            this.flushes.notify.notify_waiters();
        }
        polled
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// tokio's timer: never early, up to a tick or two late. (Spinning to the
/// instant, as `volley::clock` does, would starve this runtime's
/// connection task and hold the response head back.)
async fn server_sleep(d: Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

fn tls_config(h2: bool) -> rustls::ServerConfig {
    let key = rcgen::KeyPair::generate().expect("a key pair");
    let cert = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("certificate names")
        .self_signed(&key)
        .expect("a self-signed certificate");
    let chain = vec![CertificateDer::from(cert.der().to_vec())];
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("the ring provider's protocol versions")
    .with_no_client_auth()
    .with_single_cert(chain, private)
    .expect("the certificate matches its key");
    config.alpn_protocols = if h2 {
        vec![b"h2".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    config
}
