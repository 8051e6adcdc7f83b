//! HTTP/1.1 on one connection: the request head written into a reused
//! buffer, the response read into a reused buffer, its head parsed with
//! `httparse`, its body framed by Content-Length, chunked coding or the
//! end of the connection.
//!
//! No pipelining: one request at a time, so bytes left over after a
//! response on a kept-alive connection can only be a server error.

// Some functions here return an `async move` block instead of being an
// `async fn`: an `async fn` moves its arguments into locals and its future
// then holds them twice (ARCHITECTURE.md, invariant 19).
#![allow(clippy::manual_async_fn)]

use std::io::{self, Write as _};
use std::net::SocketAddr;

use futures::FutureExt as _;
use http::{Method, header};
use std::task::{Poll, ready};

use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;

use super::chunked::ChunkedDecoder;
use super::error::{ProtocolViolation, RequestError, is_closed_by_peer};
use super::proxy::Proxy;
use super::stream::Stream;
use super::url::Target;
use super::{OutRequest, Response};
use crate::plan::HttpOptions;
pub(crate) use head::is_session_header;
use head::{Framing, has_token, parse_head};

/// Read buffer size a VU starts with: a typical response head fits; it
/// doubles (up to `MAX_READ_BUFFER`) for bigger responses, and the VU's
/// next buffer starts at the size its last one reached
/// ([`Scratch::read_size`]). Kept small because every VU at work has one,
/// and memory per VU is what limits large-VU tests.
pub const INITIAL_READ_BUFFER: usize = 1024;
/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// The read buffer grows up to this size for large bodies.
const MAX_READ_BUFFER: usize = 64 * 1024;
/// Bodies up to this size are copied behind the head: one write.
const INLINE_BODY: usize = 16 * 1024;
/// A single write of a small request takes a system call's time, a few
/// microseconds; a clock reading later than this after its start means the
/// thread was away, not writing.
const AWAY: std::time::Duration = std::time::Duration::from_millis(1);
/// Largest body allocation made up front from a Content-Length.
const MAX_BODY_RESERVE: u64 = 16 * 1024 * 1024;

/// Buffers a VU reuses for every HTTP/1.1 request. Both start empty: the
/// head grows to the size of the requests sent, the read buffer is
/// allocated when the response starts to arrive (on a plain socket, once it
/// is readable), so a VU waiting for a connection or a response holds no
/// read buffer.
#[derive(Debug, Default)]
pub struct Scratch {
    /// The request head (and a small body behind it).
    pub head: Vec<u8>,
    /// The response bytes; `buf.len()` is the usable size.
    pub buf: Vec<u8>,
    /// The size to make `buf` with: what the VU's responses needed before
    /// (0 for [`INITIAL_READ_BUFFER`]), so a VU whose responses are large
    /// does not grow its buffer again after each sleep.
    pub read_size: usize,
    start: usize,
    end: usize,
}

impl Scratch {
    /// Empty buffers; the read buffer will be made `read_size` bytes
    /// (within the bounds) when the response arrives.
    pub fn with_read_size(read_size: usize) -> Scratch {
        Scratch {
            read_size,
            ..Scratch::default()
        }
    }
}

/// What the request head says about the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestShape {
    /// The request asked the server to close the connection.
    pub close: bool,
    /// The body was copied behind the head.
    pub body_inline: bool,
}

/// Writes `METHOD target HTTP/1.1`, the headers and (when small) the body
/// into `head`. Adds Host, User-Agent and Authorization unless given, and
/// frames the body with Content-Length. Through a proxy (`via`), the
/// target is in absolute form and `Proxy-Authorization` is added.
pub fn build_head(
    head: &mut Vec<u8>,
    req: &OutRequest<'_>,
    target: &Target,
    opts: &HttpOptions,
    via: Option<&Proxy>,
) -> Result<RequestShape, RequestError> {
    head.clear();
    let mut shape = RequestShape {
        close: opts.no_connection_reuse,
        body_inline: false,
    };
    let (mut has_host, mut has_agent, mut has_auth, mut has_connection) =
        (false, false, false, false);
    for (name, value) in req.headers {
        if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err(RequestError::InvalidHeader {
                name: name.clone(),
                value: value.clone(),
            });
        }
        if *name == header::HOST {
            has_host = true;
        } else if *name == header::USER_AGENT {
            has_agent = true;
        } else if *name == header::AUTHORIZATION {
            has_auth = true;
        } else if *name == header::CONNECTION {
            has_connection = true;
            shape.close |= has_token(value.as_bytes(), b"close");
        }
    }
    head.extend_from_slice(req.method.as_str().as_bytes());
    head.push(b' ');
    if via.is_some() {
        head.extend_from_slice(b"http://");
        head.extend_from_slice(target.authority.as_bytes());
    }
    head.extend_from_slice(target.path.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    if !has_host {
        line(head, b"Host", target.authority.as_bytes());
    }
    for (name, value) in req.headers {
        if *name == header::CONTENT_LENGTH || *name == header::TRANSFER_ENCODING {
            continue;
        }
        write_canonical(head, name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if !has_agent && !opts.user_agent.is_empty() {
        line(head, b"User-Agent", opts.user_agent.as_bytes());
    }
    if !has_auth && !target.authorization.is_empty() {
        line(head, b"Authorization", target.authorization.as_bytes());
    }
    if let Some(p) = via.filter(|p| !p.authorization().is_empty()) {
        line(head, b"Proxy-Authorization", p.authorization().as_bytes());
    }
    if !req.body.is_empty() || expects_body(req.method) {
        // Writing to a Vec cannot fail.
        let _ = write!(head, "Content-Length: {}\r\n", req.body.len());
    }
    if opts.no_connection_reuse && !has_connection {
        line(head, b"Connection", b"close");
    }
    head.extend_from_slice(b"\r\n");
    if req.body.len() <= INLINE_BODY {
        head.extend_from_slice(req.body);
        shape.body_inline = true;
    }
    Ok(shape)
}

fn line(head: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    head.extend_from_slice(name);
    head.extend_from_slice(b": ");
    head.extend_from_slice(value);
    head.extend_from_slice(b"\r\n");
}

/// `content-type` → `Content-Type`, as Go's client sends names.
fn write_canonical(head: &mut Vec<u8>, name: &[u8]) {
    let mut upper = true;
    for &b in name {
        head.push(if upper { b.to_ascii_uppercase() } else { b });
        upper = b == b'-';
    }
}

/// Methods that carry a body by convention send `Content-Length: 0` even
/// when it is empty, as Go's client does.
fn expects_body(method: &Method) -> bool {
    *method == Method::POST || *method == Method::PUT || *method == Method::PATCH
}

/// Why an exchange failed, and whether it may be retried.
#[derive(Debug)]
pub struct ExchangeError {
    pub error: RequestError,
    /// The peer closed the connection before any response byte arrived.
    pub closed_before_response: bool,
    /// Writing the request failed, so the server cannot have acted on it.
    pub write_failed: bool,
}

impl ExchangeError {
    fn fatal(error: RequestError) -> Self {
        ExchangeError {
            error,
            closed_before_response: false,
            write_failed: false,
        }
    }
}

impl From<RequestError> for ExchangeError {
    fn from(error: RequestError) -> Self {
        ExchangeError::fatal(error)
    }
}

/// The phase an exchange is in, so that a timeout can charge the time it
/// cut short to the right timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    #[default]
    Blocked,
    Sending,
    Waiting,
    Receiving,
    /// The last response byte has been read.
    Done,
}

/// Where a request is and the instant its current phase began (k6's
/// boundaries: connection got, request written, first response byte,
/// last response byte). Each phase ends at the very instant the next one
/// begins, so `blocked + sending + waiting + receiving` is exactly the
/// time from asking for a connection to the last byte; separate clock
/// readings would lose the time between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhaseClock {
    pub phase: Phase,
    pub since: Instant,
}

impl PhaseClock {
    /// A request asking for its connection at `at`.
    pub fn start(at: Instant) -> PhaseClock {
        PhaseClock {
            phase: Phase::Blocked,
            since: at,
        }
    }

    /// Ends the current phase now and begins `next`; returns how long the
    /// ended phase took.
    pub fn next(&mut self, next: Phase) -> std::time::Duration {
        self.next_at(next, Instant::now())
    }

    /// Ends the current phase at `at` (never before it began) and begins
    /// `next` there.
    pub fn next_at(&mut self, next: Phase, at: Instant) -> std::time::Duration {
        let at = at.max(self.since);
        let took = at - self.since;
        self.phase = next;
        self.since = at;
        took
    }
}

/// One request/response exchange on `stream`. The head (and small body)
/// must already be in `scratch.head`. Returns whether the connection may
/// be used again.
pub fn exchange(
    stream: &mut Stream,
    peer: SocketAddr,
    scratch: &mut Scratch,
    req: &OutRequest<'_>,
    shape: RequestShape,
    out: &mut Response,
    clock: &mut PhaseClock,
) -> impl Future<Output = Result<bool, ExchangeError>> {
    async move {
        // `sending` began when the connection was got (k6: `GotConn`); the
        // client set the clock then.
        let write_start = Instant::now();
        let mut polls = 0u32;
        let written = {
            let mut writing = std::pin::pin!(write_request(stream, &scratch.head, req, shape));
            std::future::poll_fn(|cx| {
                polls += 1;
                writing.as_mut().poll(cx)
            })
            .await
        };
        if let Err(e) = written {
            let closed = is_closed_by_peer(&e);
            return Err(ExchangeError {
                error: RequestError::io(peer, e),
                closed_before_response: closed,
                write_failed: closed,
            });
        }
        out.bytes_sent +=
            (scratch.head.len() + if shape.body_inline { 0 } else { req.body.len() }) as u64;
        let written_at = Instant::now();
        scratch.start = 0;
        scratch.end = 0;
        // One write that the kernel took at once puts the request on the wire
        // within microseconds of its start. If the clock reading after it is
        // late (more than `AWAY`), or the response is already there at the
        // first look, this thread was away in between (a busy machine; on
        // loopback, the server's thread running in its place as the write
        // woke it), and that time is the server's: `waiting`, not `sending`.
        let single = shape.body_inline && polls == 1;
        let mut first_read = if single {
            fill(stream, scratch, MAX_HEAD).now_or_never()
        } else {
            None
        };
        let answered = matches!(first_read, Some(Ok(n)) if n > 0);
        let sent = if single && (answered || written_at - write_start > AWAY) {
            write_start
        } else {
            written_at
        };
        out.timings.sending = clock.next_at(Phase::Waiting, sent);

        let is_head = *req.method == Method::HEAD;
        let head = loop {
            if scratch.end > scratch.start {
                let parsed = parse_head(
                    &scratch.buf[scratch.start..scratch.end],
                    is_head,
                    req.keep_headers,
                    out,
                )
                .map_err(|v| RequestError::protocol(peer, v))?;
                if let Some(head) = parsed {
                    scratch.start += head.len;
                    // Interim responses (100 Continue, 103 Early Hints) are
                    // skipped; 101 ends HTTP on this connection.
                    if (100..200).contains(&head.status) && head.status != 101 {
                        continue;
                    }
                    break head;
                }
                if scratch.start == 0 && scratch.end >= MAX_HEAD {
                    return Err(RequestError::protocol(
                        peer,
                        ProtocolViolation::HeadTooLarge { limit: MAX_HEAD },
                    )
                    .into());
                }
            }
            let read = match first_read.take() {
                Some(read) => read,
                None => fill(stream, scratch, MAX_HEAD).await,
            };
            let n = match read {
                Ok(n) => n,
                Err(e) => {
                    let closed = clock.phase == Phase::Waiting && is_closed_by_peer(&e);
                    return Err(ExchangeError {
                        error: RequestError::io(peer, e),
                        closed_before_response: closed,
                        write_failed: false,
                    });
                }
            };
            if n == 0 {
                return Err(ExchangeError {
                    error: RequestError::eof(peer),
                    closed_before_response: clock.phase == Phase::Waiting,
                    write_failed: false,
                });
            }
            out.bytes_received += n as u64;
            if clock.phase == Phase::Waiting {
                // The read that brought the first bytes may hold the whole
                // head, or the whole response: the first byte came with it.
                out.timings.waiting = clock.next(Phase::Receiving);
            }
        };
        out.status = head.status;
        out.http_version = head.version;
        let mut reusable = head.keep_alive && !shape.close && head.status != 101;
        match head.framing {
            Framing::Empty => {}
            Framing::Length(len) => {
                read_length(stream, peer, scratch, len, req.keep_body, out).await?
            }
            Framing::Chunked(decoder) => {
                read_chunked(stream, peer, scratch, decoder, req.keep_body, out).await?
            }
            Framing::UntilClose => {
                reusable = false;
                read_to_close(stream, peer, scratch, req.keep_body, out).await?;
            }
        }
        out.timings.receiving = clock.next(Phase::Done);
        if reusable && scratch.end > scratch.start {
            return Err(RequestError::protocol(
                peer,
                ProtocolViolation::ExtraBytes {
                    count: scratch.end - scratch.start,
                },
            )
            .into());
        }
        Ok(reusable)
    }
}

async fn write_request(
    stream: &mut Stream,
    head: &[u8],
    req: &OutRequest<'_>,
    shape: RequestShape,
) -> io::Result<()> {
    stream.write_all(head).await?;
    if !shape.body_inline {
        stream.write_all(req.body).await?;
    }
    stream.flush().await
}

/// Reads more bytes behind `scratch.end`, first compacting the buffer or
/// growing it up to `limit`. Returns 0 at the end of the stream.
///
/// A poll function, not an `async fn`: every HTTP/1.1 exchange waits here
/// for its response, and a future that held a readiness waiter and a read
/// future of its own (about 170 bytes) would hold them in every VU at work.
fn fill<'a>(
    stream: &'a mut Stream,
    scratch: &'a mut Scratch,
    limit: usize,
) -> impl Future<Output = io::Result<usize>> + 'a {
    std::future::poll_fn(move |cx| poll_fill(stream, scratch, limit, cx))
}

fn poll_fill(
    stream: &mut Stream,
    scratch: &mut Scratch,
    limit: usize,
    cx: &mut std::task::Context<'_>,
) -> Poll<io::Result<usize>> {
    if scratch.start == scratch.end {
        scratch.start = 0;
        scratch.end = 0;
    }
    if scratch.buf.is_empty() {
        // The buffer is made when bytes are there to read, not while the
        // VU waits for them.
        ready!(stream.poll_read_ready(cx))?;
        let size = scratch
            .read_size
            .clamp(INITIAL_READ_BUFFER, MAX_READ_BUFFER);
        scratch.buf.resize(size, 0);
    }
    if scratch.end == scratch.buf.len() {
        if scratch.start > 0 {
            scratch.buf.copy_within(scratch.start..scratch.end, 0);
            scratch.end -= scratch.start;
            scratch.start = 0;
        } else {
            let size = (scratch.buf.len() * 2).min(limit.max(scratch.buf.len()));
            scratch.buf.resize(size, 0);
        }
    }
    let mut free = ReadBuf::new(&mut scratch.buf[scratch.end..]);
    ready!(std::pin::Pin::new(&mut *stream).poll_read(cx, &mut free))?;
    let n = free.filled().len();
    scratch.end += n;
    Poll::Ready(Ok(n))
}

fn take_body(scratch: &mut Scratch, max: u64, keep: bool, out: &mut Response) -> u64 {
    let available = (scratch.end - scratch.start) as u64;
    let take = available.min(max) as usize;
    if keep {
        out.body
            .extend_from_slice(&scratch.buf[scratch.start..scratch.start + take]);
    }
    scratch.start += take;
    take as u64
}

/// Reads more body bytes; the end of the stream here is an error.
fn fill_body(
    stream: &mut Stream,
    peer: SocketAddr,
    scratch: &mut Scratch,
    out: &mut Response,
) -> impl Future<Output = Result<(), ExchangeError>> {
    async move {
        let n = fill(stream, scratch, MAX_READ_BUFFER)
            .await
            .map_err(|e| RequestError::io(peer, e))?;
        if n == 0 {
            return Err(RequestError::eof(peer).into());
        }
        out.bytes_received += n as u64;
        grow_for_bulk(scratch, n);
        Ok(())
    }
}

/// A read that filled the whole buffer suggests a large body: grow the
/// buffer so it takes fewer reads.
fn grow_for_bulk(scratch: &mut Scratch, n: usize) {
    if n == scratch.buf.len() && scratch.buf.len() < MAX_READ_BUFFER {
        let size = (scratch.buf.len() * 2).min(MAX_READ_BUFFER);
        scratch.buf.resize(size, 0);
    }
}

fn read_length(
    stream: &mut Stream,
    peer: SocketAddr,
    scratch: &mut Scratch,
    len: u64,
    keep: bool,
    out: &mut Response,
) -> impl Future<Output = Result<(), ExchangeError>> {
    async move {
        if keep {
            out.body.reserve(len.min(MAX_BODY_RESERVE) as usize);
        }
        let mut remaining = len - take_body(scratch, len, keep, out);
        while remaining > 0 {
            fill_body(stream, peer, scratch, out).await?;
            remaining -= take_body(scratch, remaining, keep, out);
        }
        Ok(())
    }
}

fn read_chunked(
    stream: &mut Stream,
    peer: SocketAddr,
    scratch: &mut Scratch,
    mut decoder: ChunkedDecoder,
    keep: bool,
    out: &mut Response,
) -> impl Future<Output = Result<(), ExchangeError>> {
    async move {
        loop {
            if scratch.end > scratch.start {
                let body = &mut out.body;
                let progress = decoder
                    .decode(&scratch.buf[scratch.start..scratch.end], |data| {
                        if keep {
                            body.extend_from_slice(data);
                        }
                    })
                    .map_err(|e| RequestError::protocol(peer, ProtocolViolation::Chunked(e)))?;
                scratch.start += progress.consumed;
                if progress.done {
                    return Ok(());
                }
            }
            fill_body(stream, peer, scratch, out).await?;
        }
    }
}

fn read_to_close(
    stream: &mut Stream,
    peer: SocketAddr,
    scratch: &mut Scratch,
    keep: bool,
    out: &mut Response,
) -> impl Future<Output = Result<(), ExchangeError>> {
    async move {
        take_body(scratch, u64::MAX, keep, out);
        loop {
            match fill(stream, scratch, MAX_READ_BUFFER).await {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    out.bytes_received += n as u64;
                    grow_for_bulk(scratch, n);
                    take_body(scratch, u64::MAX, keep, out);
                }
                // Many TLS servers close without close_notify; for a body that
                // ends with the connection, that is its end.
                Err(e)
                    if matches!(stream, Stream::Tls(_))
                        && e.kind() == io::ErrorKind::UnexpectedEof =>
                {
                    return Ok(());
                }
                Err(e) => return Err(RequestError::io(peer, e).into()),
            }
        }
    }
}

mod head;

#[cfg(test)]
mod tests;
