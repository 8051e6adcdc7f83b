//! HTTP/2 on hyper's per-connection client: one connection per origin per
//! VU, its driver spawned as a task, `ready()` before every request.
//!
//! The connection's bytes are counted under hyper by `Counted`, so
//! `bytes_sent`/`bytes_received` are real (HPACK-compressed) frame bytes.
//! Timings: `sending` is the time to hand the request to the connection,
//! `waiting` runs until the response head, `receiving` over the body
//! frames.

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
use super::h1::{ExchangeError, Phase};
use super::stream::Stream;
use super::url::{Target, UrlError};
use super::{OutRequest, Response};
use crate::metrics::ErrorKind;
use crate::plan::HttpOptions;

/// Bytes moved on one connection, read by the VU around each request.
#[derive(Debug, Default)]
struct Counters {
    read: AtomicU64,
    written: AtomicU64,
}

/// A stream that counts what passes through it.
struct Counted {
    inner: Stream,
    counters: Arc<Counters>,
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
            this.counters.written.fetch_add(n as u64, Ordering::Relaxed);
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
            this.counters.written.fetch_add(n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
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
        let counters = Arc::new(Counters::default());
        let io = TokioIo::new(Counted {
            inner: stream,
            counters: Arc::clone(&counters),
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
        phase: &mut Phase,
    ) -> Result<bool, ExchangeError> {
        let peer = self.peer;
        *phase = Phase::Sending;
        let send_start = Instant::now();
        if let Err(e) = self.sender.ready().await {
            // Nothing was sent: always safe to retry elsewhere.
            return Err(ExchangeError {
                error: h2_error(peer, e),
                closed_before_response: true,
                write_failed: true,
            });
        }
        let request = build_request(uri, req, target, opts)?;
        let read_before = self.counters.read.load(Ordering::Relaxed);
        let written_before = self.counters.written.load(Ordering::Relaxed);
        let pending = self.sender.send_request(request);
        let sent = Instant::now();
        out.timings.sending = sent - send_start;
        *phase = Phase::Waiting;
        let response = pending.await.map_err(|e| ExchangeError {
            closed_before_response: e.is_canceled() || e.is_closed(),
            write_failed: false,
            error: h2_error(peer, e),
        })?;
        let head_at = Instant::now();
        out.timings.waiting = head_at - sent;
        *phase = Phase::Receiving;
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
        out.timings.receiving = head_at.elapsed();
        out.bytes_sent += self.counters.written.load(Ordering::Relaxed) - written_before;
        out.bytes_received += self.counters.read.load(Ordering::Relaxed) - read_before;
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
