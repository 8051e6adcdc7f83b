//! The engine's HTTP client: what a VU sends its requests with.
//!
//! Volley has to cost close to wrk per request, so HTTP/1.1 is a lean
//! hand-written client over tokio sockets: the request head is built into
//! a reused buffer, the response is read into a reused buffer and its head
//! parsed with `httparse`, and nothing is allocated per request unless the
//! caller keeps headers or body. HTTP/2 (ALPN `h2` over TLS, or h2c by prior
//! knowledge) runs on hyper's per-connection client.
//!
//! k6 semantics: each VU ([`VuClient`]) keeps its own connections, one per
//! origin, reuses them unless `noConnectionReuse`, and re-dials when the
//! server closed one. A failed request is data, never an `Err`: its class
//! lands in [`Response::error`] and its detail in [`Response::failure`].
//!
//! - [`config`]: what every VU of a run shares: options, TLS, proxies.
//! - [`tls`]: rustls configurations: versions, suites, client certificates.
//! - [`proxy`]: which requests go through which proxy (`NO_PROXY`).
//! - [`rps`]: the `rps` cap shared by every VU of a run.
//! - [`url`]: absolute URLs taken apart (cached per VU).
//! - [`stream`]: DNS, connect (source address, proxy tunnel), TLS, the
//!   byte stream.
//! - [`h1`]: HTTP/1.1 request heads and response framing.
//! - [`chunked`]: the chunked transfer-coding decoder.
//! - [`h2`]: HTTP/2 over hyper.
//! - [`client`]: the per-VU client: pool, retry, timeout, timings.
//! - [`cookies`]: the VU's cookie jar (RFC 6265).
//! - [`encoding`]: gzip, deflate, br and zstd, for request and response
//!   bodies.
//! - [`digest`]: HTTP Digest authentication.
//! - [`debug`]: `--http-debug` dumps, secrets redacted.
//! - [`redirect`]: which redirects are followed and how.
//! - [`follow`]: one request with its cookies and redirect hops.
//! - [`batch`]: several requests of a VU in parallel (`batch`, `batchPerHost`).

pub mod batch;
pub mod chunked;
pub mod client;
pub mod config;
pub mod cookies;
pub mod debug;
pub mod digest;
pub mod encoding;
pub mod error;
pub mod follow;
pub mod h1;
pub mod h2;
pub mod proxy;
pub mod redirect;
pub mod rps;
pub mod stream;
pub mod tls;
pub mod url;

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};

pub use client::VuClient;
pub use config::{HttpClientConfig, HttpConfigError};
pub use error::{ProtocolViolation, RequestError};
pub use url::UrlError;

use crate::metrics::{ErrorKind, Timings};

/// One request, already rendered by the VU.
#[derive(Debug, Clone, Copy)]
pub struct OutRequest<'a> {
    pub method: &'a Method,
    /// Absolute `http://` or `https://` URL.
    pub url: &'a str,
    /// Rendered headers. `Host`, `User-Agent` (from the options unless
    /// present) and `Content-Length` are added by the client; a
    /// `Content-Length` or `Transfer-Encoding` given here is ignored, since
    /// the client frames the body itself.
    pub headers: &'a [(HeaderName, String)],
    pub body: &'a [u8],
    /// The whole request, from asking for a connection to the end of the
    /// body. On expiry the connection is dropped.
    pub timeout: Duration,
    /// False: the body is read and counted but not kept.
    pub keep_body: bool,
    /// False: response headers are not copied.
    pub keep_headers: bool,
}

impl<'a> OutRequest<'a> {
    /// A `GET` of `url` without headers or body, whose response is counted
    /// and not kept, cut after `timeout`.
    pub fn get(url: &'a str, timeout: Duration) -> OutRequest<'a> {
        OutRequest {
            method: &Method::GET,
            url,
            headers: &[],
            body: &[],
            timeout,
            keep_body: false,
            keep_headers: false,
        }
    }
}

/// The outcome of one request. The VU reuses one `Response` for all its
/// requests: [`clear`](Response::clear) keeps the buffers' capacity.
#[derive(Debug, Default)]
pub struct Response {
    /// Status code of the final response; 0 when none arrived.
    pub status: u16,
    /// The failure's class, for metrics; `None` on success.
    pub error: Option<ErrorKind>,
    /// The failure with its context, for logs and users.
    pub failure: Option<RequestError>,
    pub timings: Timings,
    /// From asking for a connection to the last response byte (or the
    /// failure): `blocked` plus `duration`, exactly, since each phase
    /// ends at the instant the next begins.
    pub elapsed: Duration,
    /// Response headers in arrival order, when the request asked for them;
    /// `Location` and `Set-Cookie` always.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The decoded body (chunked framing removed), when asked for.
    pub body: Vec<u8>,
    /// Bytes written for this request (head and body; plaintext under TLS).
    pub bytes_sent: u64,
    /// Bytes read for this request (heads, framing, body).
    pub bytes_received: u64,
    /// True when the request went over a connection used before.
    pub reused: bool,
    pub http_version: http::Version,
    /// The address the request was sent to (a proxy's, through one).
    pub remote: Option<std::net::SocketAddr>,
    /// What the TLS handshake agreed on, for `https://`.
    pub tls: Option<tls::TlsInfo>,
}

impl Response {
    /// Resets every field, keeping the header and body allocations.
    pub fn clear(&mut self) {
        self.status = 0;
        self.error = None;
        self.failure = None;
        self.timings = Timings::default();
        self.elapsed = Duration::ZERO;
        self.headers.clear();
        self.body.clear();
        self.bytes_sent = 0;
        self.bytes_received = 0;
        self.reused = false;
        self.http_version = http::Version::HTTP_11;
        self.remote = None;
        self.tls = None;
    }

    /// The response's HTTP version for samples: 10, 11, 20; 0 when no
    /// response arrived.
    pub fn proto_code(&self) -> u8 {
        if self.status == 0 {
            return 0;
        }
        match self.http_version {
            http::Version::HTTP_2 => 20,
            http::Version::HTTP_10 => 10,
            _ => 11,
        }
    }

    /// The connection's TLS version for samples: 12, 13, or 0.
    pub fn tls_code(&self) -> u8 {
        match self.tls.map(|t| t.version) {
            Some(crate::plan::net::TlsVersion::Tls13) => 13,
            Some(_) => 12,
            None => 0,
        }
    }

    /// The first value of header `name` (any case) that is valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.as_str().eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.to_str().ok())
    }

    pub(crate) fn fail(&mut self, failure: RequestError) {
        self.error = Some(failure.kind());
        self.failure = Some(failure);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lookup_ignores_case() {
        let mut r = Response::default();
        r.headers.push((
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain"),
        ));
        r.headers.push((
            HeaderName::from_static("x-id"),
            HeaderValue::from_static("7"),
        ));
        assert_eq!(r.header("Content-Type"), Some("text/plain"));
        assert_eq!(r.header("X-ID"), Some("7"));
        assert_eq!(r.header("missing"), None);
    }

    #[test]
    fn clear_keeps_capacity() {
        let mut r = Response::default();
        r.body.extend_from_slice(&[1; 100]);
        r.status = 500;
        r.error = Some(ErrorKind::Reset);
        r.reused = true;
        r.clear();
        assert!(r.body.is_empty());
        assert!(r.body.capacity() >= 100);
        assert_eq!(r.status, 0);
        assert_eq!(r.error, None);
        assert!(!r.reused);
    }
}
