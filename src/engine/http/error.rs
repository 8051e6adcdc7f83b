//! Why a request failed, with the context a person needs to act on it, and
//! the mapping from each failure to its k6-style [`ErrorKind`].
//!
//! These errors never escape [`VuClient::send`](super::VuClient::send) as
//! `Err`: a failed request is data. They land in
//! [`Response::failure`](super::Response::failure), next to the
//! [`ErrorKind`] the metrics use. Nothing here is built on the success path.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use http::HeaderName;

use super::chunked::ChunkedError;
use super::url::UrlError;
use crate::metrics::ErrorKind;

/// One failed request: what went wrong and with whom.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The URL cannot be sent (scheme, host, port).
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: UrlError },
    /// A rendered header value would break the request head.
    #[error(
        "header {name}: value {value:?} contains CR, LF or NUL; header values must be one line"
    )]
    InvalidHeader { name: HeaderName, value: String },
    /// Name resolution failed or returned nothing.
    #[error("DNS lookup of {host:?} failed: {source}")]
    Dns { host: String, source: io::Error },
    /// Every address of the host refused the connection.
    #[error("connection to {addr} refused (is the target listening on that port?)")]
    ConnectRefused { addr: SocketAddr },
    /// Connecting failed for another reason (unreachable, no route).
    #[error("connecting to {addr} failed: {source}")]
    Connect { addr: SocketAddr, source: io::Error },
    /// The proxy refused or broke the `CONNECT` tunnel.
    #[error("proxy {proxy} did not open a tunnel to {target}: {reason}")]
    Proxy {
        proxy: String,
        target: String,
        reason: String,
    },
    /// The TLS handshake failed: certificate, protocol or a non-TLS peer.
    #[error("TLS handshake with {host:?} ({addr}) failed: {source}")]
    Tls {
        host: String,
        addr: SocketAddr,
        source: io::Error,
    },
    /// A TLS record failed after the handshake (decryption, alert).
    #[error("TLS session with {peer} failed: {source}")]
    TlsSession { peer: SocketAddr, source: io::Error },
    /// The request did not complete in time; the connection was dropped.
    #[error("request did not complete within its timeout of {timeout:?}")]
    Timeout { timeout: Duration },
    /// The peer reset the connection or closed it before a full response.
    #[error("connection to {peer} lost before the response was complete: {source}")]
    Reset { peer: SocketAddr, source: io::Error },
    /// The peer's answer broke HTTP.
    #[error("HTTP protocol error from {peer}: {violation}")]
    Protocol {
        peer: SocketAddr,
        violation: ProtocolViolation,
    },
    /// A redirect could not be followed (its `Location`); the 3xx is the
    /// final response.
    #[error("{0}")]
    Redirect(#[from] super::redirect::RedirectError),
    /// The response body did not decode by its `Content-Encoding`.
    #[error("cannot decode the response body: {reason}")]
    Decode { reason: String },
    /// The egress policy refuses the destination: nothing was sent (a
    /// proxy names the proxy it would have gone through).
    #[error("{denial}{}", via.as_ref().map(|p| format!(" (through proxy {p})")).unwrap_or_default())]
    Egress {
        /// Boxed: rare, and the error travels in every response.
        denial: Box<crate::plan::egress::Denial>,
        via: Option<String>,
    },
    /// The HTTP/2 connection or stream failed.
    #[error("HTTP/2 exchange with {peer} failed: {source}")]
    H2 {
        peer: SocketAddr,
        kind: ErrorKind,
        source: hyper::Error,
    },
}

impl RequestError {
    /// The k6-style class of this failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RequestError::InvalidUrl { .. }
            | RequestError::InvalidHeader { .. }
            | RequestError::Redirect(_) => ErrorKind::InvalidUrl,
            RequestError::Dns { .. } => ErrorKind::Dns,
            RequestError::ConnectRefused { .. } => ErrorKind::ConnectRefused,
            RequestError::Connect { .. } | RequestError::Proxy { .. } => ErrorKind::Connect,
            RequestError::Tls { .. } | RequestError::TlsSession { .. } => ErrorKind::Tls,
            RequestError::Timeout { .. } => ErrorKind::Timeout,
            RequestError::Reset { .. } => ErrorKind::Reset,
            RequestError::Protocol { .. } | RequestError::Decode { .. } => ErrorKind::Protocol,
            RequestError::H2 { kind, .. } => *kind,
            RequestError::Egress { denial, .. } => match denial.rule {
                Some(crate::plan::egress::Rule::Host(_)) => ErrorKind::BlockedHostname,
                Some(crate::plan::egress::Rule::Net(_)) => ErrorKind::BlockedIp,
                None if denial.address.is_some() => ErrorKind::BlockedIp,
                None => ErrorKind::BlockedHostname,
            },
        }
    }

    /// Classifies an I/O error on an established connection: a rustls
    /// error is `Tls` (rustls errors are TLS failures wherever they occur),
    /// anything else means the connection was lost (`Reset`).
    pub(crate) fn io(peer: SocketAddr, source: io::Error) -> RequestError {
        if is_tls_error(&source) {
            return RequestError::TlsSession { peer, source };
        }
        RequestError::Reset { peer, source }
    }

    /// An unexpected end of stream from `peer`.
    pub(crate) fn eof(peer: SocketAddr) -> RequestError {
        RequestError::Reset {
            peer,
            source: io::Error::new(io::ErrorKind::UnexpectedEof, "peer closed the connection"),
        }
    }

    pub(crate) fn protocol(peer: SocketAddr, violation: ProtocolViolation) -> RequestError {
        RequestError::Protocol { peer, violation }
    }
}

/// True when an I/O error carries a rustls error (tokio-rustls wraps them
/// as `InvalidData` with the rustls error inside).
pub(crate) fn is_tls_error(err: &io::Error) -> bool {
    err.get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
}

/// How a response broke HTTP/1.1.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolViolation {
    /// The status line or a header could not be parsed.
    #[error("malformed response head ({0}); the peer may not speak HTTP")]
    Head(httparse::Error),
    /// The head did not end within the limit.
    #[error("response head larger than {limit} bytes")]
    HeadTooLarge { limit: usize },
    /// `Content-Length` is not a decimal number.
    #[error("invalid Content-Length {value:?}: expected a decimal byte count")]
    ContentLength { value: String },
    /// Two `Content-Length` headers disagree.
    #[error("conflicting Content-Length headers {first} and {second}")]
    ConflictingContentLength { first: u64, second: u64 },
    /// The chunked body is malformed.
    #[error("malformed chunked body: {0}")]
    Chunked(#[from] ChunkedError),
    /// Bytes followed the response on a connection meant to stay open.
    #[error("{count} unexpected bytes after the end of the response on a kept-alive connection")]
    ExtraBytes { count: usize },
}

/// Maps a connect error to its class (refused vs any other failure).
pub(crate) fn connect_error(addr: SocketAddr, source: io::Error) -> RequestError {
    if source.kind() == io::ErrorKind::ConnectionRefused {
        RequestError::ConnectRefused { addr }
    } else {
        RequestError::Connect { addr, source }
    }
}

/// True for the errors a server closing an idle connection produces.
pub(crate) fn is_closed_by_peer(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::NotConnected
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 80))
    }

    #[test]
    fn kinds_follow_the_failure() {
        let refused = connect_error(peer(), io::Error::from(io::ErrorKind::ConnectionRefused));
        assert_eq!(refused.kind(), ErrorKind::ConnectRefused);
        let other = connect_error(peer(), io::Error::from(io::ErrorKind::HostUnreachable));
        assert_eq!(other.kind(), ErrorKind::Connect);
        let reset = RequestError::io(peer(), io::Error::from(io::ErrorKind::ConnectionReset));
        assert_eq!(reset.kind(), ErrorKind::Reset);
        let tls_record = RequestError::io(
            peer(),
            io::Error::new(io::ErrorKind::InvalidData, rustls::Error::DecryptError),
        );
        assert_eq!(tls_record.kind(), ErrorKind::Tls);
        assert_eq!(RequestError::eof(peer()).kind(), ErrorKind::Reset);
    }

    #[test]
    fn messages_name_the_peer_and_value() {
        let err = RequestError::protocol(
            peer(),
            ProtocolViolation::ContentLength {
                value: "12a".into(),
            },
        );
        let text = err.to_string();
        assert!(text.contains("127.0.0.1:80"), "{text}");
        assert!(text.contains("\"12a\""), "{text}");
    }
}
