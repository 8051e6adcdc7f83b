//! HTTP/2 on hyper's per-connection client: one connection per origin per
//! VU, its driver spawned as a task, `ready()` before every request.
//!
//! The connection's bytes are counted under hyper by `Counted`, so
//! `bytes_sent`/`bytes_received` are real (HPACK-compressed) frame bytes.
//!
//! Timings: handing a request to hyper only queues it; the connection's
//! task writes it, as flow control allows. So `sending` (from getting the
//! connection) ends at the first flush after which the connection has
//! written at least the request's least possible size (frame headers, one
//! byte of header block, the body): the request's last bytes reached the
//! socket then (k6: `WroteRequest`). The response's first byte is the read
//! that brings the first HEADERS frame of a stream, seen by scanning the
//! frame headers of what is read (k6: `GotFirstResponseByte`, noted as the
//! frame is read, not when the head reaches the VU through hyper's tasks).
//! `waiting` runs between the two, `receiving` to the body's end.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::error::{RequestError, is_tls_error};
use super::h1::{ExchangeError, Phase, PhaseClock};
use super::stream::Stream;
use super::url::{Target, UrlError};
use super::{OutRequest, Response};
use crate::metrics::ErrorKind;
use crate::plan::HttpOptions;

/// Size of an HTTP/2 frame header (RFC 9113 §4.1).
const FRAME_HEADER: u64 = 9;

/// "Not yet" for [`Counters::sent_ns`], "nothing awaited" for
/// [`Counters::target`].
const UNSET: u64 = u64::MAX;

/// Bytes moved on one connection, read by the VU around each request, and
/// the instant the current request was written.
#[derive(Debug)]
struct Counters {
    read: AtomicU64,
    written: AtomicU64,
    /// The `written` count at which the current request is on the socket.
    target: AtomicU64,
    /// When a flush first reached `target`, in nanoseconds since `base`.
    sent_ns: AtomicU64,
    /// When the awaited request's first response frame was read.
    first_ns: AtomicU64,
    base: Instant,
}

impl Counters {
    fn new() -> Self {
        Counters {
            read: AtomicU64::new(0),
            written: AtomicU64::new(0),
            target: AtomicU64::new(UNSET),
            sent_ns: AtomicU64::new(UNSET),
            first_ns: AtomicU64::new(UNSET),
            base: Instant::now(),
        }
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(UNSET - 1)
    }

    /// Awaits the request just queued: it is written once `written`
    /// reaches `target`. Already there (the connection's task was quicker
    /// than this call): written now.
    fn await_request(&self, target: u64) {
        self.target.store(UNSET, Ordering::SeqCst);
        self.sent_ns.store(UNSET, Ordering::SeqCst);
        self.first_ns.store(UNSET, Ordering::SeqCst);
        self.target.store(target, Ordering::SeqCst);
        self.stamp_if_written();
    }

    /// Notes the instant if the awaited request is written and not yet
    /// noted (the connection's task and the VU may both try).
    fn stamp_if_written(&self) {
        if self.written.load(Ordering::SeqCst) >= self.target.load(Ordering::SeqCst) {
            let _ = self.sent_ns.compare_exchange(
                UNSET,
                self.now_ns(),
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
        }
    }

    /// A response head frame was just read: the first byte of the awaited
    /// request's response, unless one came already (or nothing is awaited).
    fn stamp_first_byte(&self) {
        if self.target.load(Ordering::SeqCst) != UNSET {
            let _ = self.first_ns.compare_exchange(
                UNSET,
                self.now_ns(),
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
        }
    }

    fn instant(&self, ns: &AtomicU64) -> Option<Instant> {
        match ns.load(Ordering::SeqCst) {
            UNSET => None,
            ns => Some(self.base + std::time::Duration::from_nanos(ns)),
        }
    }

    /// When the awaited request reached the socket, if it has.
    fn sent(&self) -> Option<Instant> {
        self.instant(&self.sent_ns)
    }

    /// When its response's first frame was read, if it has been.
    fn first_byte(&self) -> Option<Instant> {
        self.instant(&self.first_ns)
    }
}

/// Finds frame boundaries in the bytes a connection reads (after TLS),
/// to see where a HEADERS frame of a stream begins. A server sends only
/// frames (no preface), each a 9-byte header and its payload.
#[derive(Debug, Default)]
struct FrameScan {
    header: [u8; FRAME_HEADER as usize],
    /// Header bytes collected so far.
    have: usize,
    /// Payload bytes of the current frame still to pass.
    skip: u64,
}

impl FrameScan {
    /// HTTP/2's HEADERS frame type (RFC 9113 §6.2).
    const HEADERS: u8 = 0x1;

    /// Scans `bytes`; true when a HEADERS frame on a stream began in them.
    fn headers_in(&mut self, mut bytes: &[u8]) -> bool {
        let mut seen = false;
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len() as u64);
                self.skip -= n;
                bytes = &bytes[n as usize..];
                continue;
            }
            let n = (self.header.len() - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have == self.header.len() {
                let h = self.header;
                self.have = 0;
                self.skip = u64::from(h[0]) << 16 | u64::from(h[1]) << 8 | u64::from(h[2]);
                let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
                seen |= h[3] == Self::HEADERS && stream != 0;
            }
        }
        seen
    }
}

/// The least number of bytes a request with a body of `body` bytes takes
/// on the wire: a HEADERS frame with at least one byte of header block,
/// and a DATA frame header with the body when there is one. Frames of the
/// connection (SETTINGS, WINDOW_UPDATE) only make the count pass sooner,
/// by a few bytes.
fn least_request_bytes(body: usize) -> u64 {
    let data = if body == 0 {
        0
    } else {
        FRAME_HEADER + body as u64
    };
    FRAME_HEADER + 1 + data
}

/// A stream that counts what passes through it and notes when the
/// awaited request reached the socket.
struct Counted {
    inner: Stream,
    counters: Arc<Counters>,
    /// Bytes were written since the last flush.
    unflushed: bool,
    frames: FrameScan,
}

impl Counted {
    fn wrote(&mut self, n: usize) {
        if n > 0 {
            self.counters.written.fetch_add(n as u64, Ordering::SeqCst);
            self.unflushed = true;
        }
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        this.counters.read.fetch_add(n as u64, Ordering::Relaxed);
        if n > 0 && this.frames.headers_in(&buf.filled()[before..]) {
            this.counters.stamp_first_byte();
        }
        polled
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            this.wrote(n);
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled {
            this.wrote(n);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        // TLS encrypts on write and sends on flush; hyper flushes on every
        // turn of the connection, written or not.
        if this.unflushed && matches!(polled, Poll::Ready(Ok(()))) {
            this.unflushed = false;
            this.counters.stamp_if_written();
        }
        polled
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// One HTTP/2 connection of a VU.
#[derive(Debug)]
pub struct H2Conn {
    sender: SendRequest<Full<Bytes>>,
    peer: SocketAddr,
    counters: Arc<Counters>,
    /// The connection driver; aborted when the VU drops the connection,
    /// so that a timed-out connection really goes away.
    driver: JoinHandle<()>,
}

impl Drop for H2Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl H2Conn {
    /// Does the HTTP/2 handshake on a connected stream.
    pub async fn handshake(stream: Stream, peer: SocketAddr) -> Result<H2Conn, RequestError> {
        let counters = Arc::new(Counters::new());
        let io = TokioIo::new(Counted {
            inner: stream,
            counters: Arc::clone(&counters),
            unflushed: false,
            frames: FrameScan::default(),
        });
        let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake(io)
            .await
            .map_err(|e| h2_error(peer, e))?;
        let driver = tokio::spawn(async move {
            // The error, if any, reaches the VU through its next request.
            let _ = connection.await;
        });
        Ok(H2Conn {
            sender,
            peer,
            counters,
            driver,
        })
    }

    /// False once the connection is closed or failed.
    pub fn is_open(&self) -> bool {
        !self.sender.is_closed()
    }

    /// One request/response exchange. Returns whether the connection can
    /// be used again.
    pub async fn exchange(
        &mut self,
        uri: &Uri,
        req: &OutRequest<'_>,
        target: &Target,
        opts: &HttpOptions,
        out: &mut Response,
        clock: &mut PhaseClock,
    ) -> Result<bool, ExchangeError> {
        let peer = self.peer;
        // `sending` began when the connection was got; the client set the
        // clock then.
        if let Err(e) = self.sender.ready().await {
            // Nothing was sent: always safe to retry elsewhere.
            return Err(ExchangeError {
                error: h2_error(peer, e),
                closed_before_response: true,
                write_failed: true,
            });
        }
        let request = build_request(uri, req, target, opts)?;
        let read_before = self.counters.read.load(Ordering::SeqCst);
        let written_before = self.counters.written.load(Ordering::SeqCst);
        let pending = self.sender.send_request(request);
        self.counters
            .await_request(written_before + least_request_bytes(req.body.len()));
        // Until the head arrives it is not known here when the request was
        // written; a timeout meanwhile charges `waiting` with the rest.
        clock.phase = Phase::Waiting;
        let response = pending.await.map_err(|e| ExchangeError {
            closed_before_response: e.is_canceled() || e.is_closed(),
            write_failed: false,
            error: h2_error(peer, e),
        })?;
        let head_at = Instant::now();
        let first = self
            .counters
            .first_byte()
            .map_or(head_at, |at| at.min(head_at));
        // A server may answer before it has read the whole request.
        let sent = self.counters.sent().map_or(first, |at| at.min(first));
        out.timings.sending = clock.next_at(Phase::Waiting, sent);
        out.timings.waiting = clock.next_at(Phase::Receiving, first);
        out.status = response.status().as_u16();
        out.http_version = http::Version::HTTP_2;
        let (parts, mut body) = response.into_parts();
        out.headers.extend(
            parts
                .headers
                .iter()
                .filter(|(name, _)| {
                    req.keep_headers || super::h1::is_session_header(name.as_str().as_bytes())
                })
                .map(|(name, value)| (name.clone(), value.clone())),
        );
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| h2_error(peer, e))?;
            if let (true, Some(data)) = (req.keep_body, frame.data_ref()) {
                out.body.extend_from_slice(data);
            }
        }
        out.timings.receiving = clock.next(Phase::Done);
        out.bytes_sent += self.counters.written.load(Ordering::SeqCst) - written_before;
        out.bytes_received += self.counters.read.load(Ordering::SeqCst) - read_before;
        Ok(self.is_open())
    }
}

/// The request URI for `target`, as hyper needs it for `:scheme`,
/// `:authority` and `:path`.
pub fn request_uri(target: &Target, authority_override: Option<&str>) -> Result<Uri, UrlError> {
    let text = match authority_override {
        None => target.uri_string(),
        Some(authority) => format!("{}://{}{}", target.scheme.as_str(), authority, target.path),
    };
    Uri::try_from(text.as_str()).map_err(|e| UrlError::NotAUri(format!("{text}: {e}")))
}

fn build_request(
    uri: &Uri,
    req: &OutRequest<'_>,
    target: &Target,
    opts: &HttpOptions,
) -> Result<http::Request<Full<Bytes>>, RequestError> {
    let mut headers = HeaderMap::with_capacity(req.headers.len() + 3);
    for (name, value) in req.headers {
        let connection_specific = *name == header::CONNECTION
            || *name == header::TRANSFER_ENCODING
            || *name == header::UPGRADE
            || *name == header::HOST
            || *name == header::CONTENT_LENGTH
            || name.as_str() == "keep-alive"
            || name.as_str() == "proxy-connection";
        if connection_specific {
            continue;
        }
        let value = HeaderValue::from_str(value).map_err(|_| RequestError::InvalidHeader {
            name: name.clone(),
            value: value.clone(),
        })?;
        headers.append(name.clone(), value);
    }
    if !headers.contains_key(header::USER_AGENT)
        && !opts.user_agent.is_empty()
        && let Ok(agent) = HeaderValue::from_str(&opts.user_agent)
    {
        headers.insert(header::USER_AGENT, agent);
    }
    if !headers.contains_key(header::AUTHORIZATION)
        && !target.authorization.is_empty()
        && let Ok(auth) = HeaderValue::from_str(&target.authorization)
    {
        headers.insert(header::AUTHORIZATION, auth);
    }
    let has_body_method =
        *req.method == Method::POST || *req.method == Method::PUT || *req.method == Method::PATCH;
    if !req.body.is_empty() || has_body_method {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(req.body.len()));
    }
    let mut request = http::Request::new(Full::new(Bytes::copy_from_slice(req.body)));
    *request.method_mut() = req.method.clone();
    *request.uri_mut() = uri.clone();
    *request.version_mut() = http::Version::HTTP_2;
    *request.headers_mut() = headers;
    Ok(request)
}

/// Classifies a hyper error: lost connections are `Reset`, TLS record
/// failures `Tls`, anything else (h2 protocol errors, GOAWAY with an
/// error, refused streams) `Protocol`.
fn h2_error(peer: SocketAddr, source: hyper::Error) -> RequestError {
    let kind = match io_source(&source) {
        Some(io) if is_tls_error(io) => ErrorKind::Tls,
        Some(_) => ErrorKind::Reset,
        None if source.is_timeout() => ErrorKind::Timeout,
        None if source.is_canceled() || source.is_closed() || source.is_incomplete_message() => {
            ErrorKind::Reset
        }
        None => ErrorKind::Protocol,
    };
    RequestError::H2 { peer, kind, source }
}

fn io_source(err: &hyper::Error) -> Option<&io::Error> {
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return Some(io);
        }
        source = e.source();
    }
    None
}
