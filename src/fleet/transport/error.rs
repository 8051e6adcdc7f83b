//! The transport's error type: every failure names the peer (or local address) involved and says
//! what went wrong in words an operator can act on.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Which message was too large, and who noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oversize {
    /// Our request exceeds our own limit; it was not sent.
    Request,
    /// The peer refused our request because it exceeds the peer's (lower) limit.
    RequestRefusedByPeer,
    /// The peer's response exceeds our limit; it was not read.
    Response,
    /// The peer's handler produced a response over the peer's own limit; the peer did not send it.
    ResponseRefusedByPeer,
}

impl fmt::Display for Oversize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Oversize::Request => "request not sent: it exceeds our message limit",
            Oversize::RequestRefusedByPeer => {
                "request refused by the peer: it exceeds the peer's message limit"
            }
            Oversize::Response => "response refused: it exceeds our message limit",
            Oversize::ResponseRefusedByPeer => {
                "the peer's response exceeds the peer's message limit and was not sent"
            }
        })
    }
}

/// Everything a request (or binding a transport) can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// No connection to the peer could be established (nothing bound there, no handshake answer,
    /// link cut).
    #[error("peer {peer} is unreachable: {reason}")]
    Unreachable {
        /// The peer's address.
        peer: SocketAddr,
        /// Why.
        reason: String,
    },
    /// The peer was reached but did not answer within the request timeout.
    #[error("request to {peer} timed out after {after:?} without a response")]
    Timeout {
        /// The peer's address.
        peer: SocketAddr,
        /// The timeout that elapsed.
        after: Duration,
    },
    /// The TLS handshake failed: a certificate was rejected (by us or by the peer) or the peers do
    /// not speak the same protocol.
    #[error("connection to {peer} refused: {reason}")]
    Refused {
        /// The peer's address.
        peer: SocketAddr,
        /// What was rejected and by whom.
        reason: String,
    },
    /// A message exceeds a size limit.
    #[error("message to/from {peer} too large ({what}): {size} bytes, limit {limit} bytes")]
    TooLarge {
        /// The peer's address.
        peer: SocketAddr,
        /// The size of the offending message body.
        size: usize,
        /// The limit it exceeded.
        limit: usize,
        /// Which message and who refused it.
        what: Oversize,
    },
    /// The connection or stream ended before the response arrived (peer shut down, restarted, reset
    /// the stream, or this transport was shut down).
    #[error("connection to {peer} closed before the response: {reason}")]
    Closed {
        /// The peer's address.
        peer: SocketAddr,
        /// What closed it.
        reason: String,
    },
    /// The peer sent something that is not valid Volley framing, or rejected ours as such.
    #[error("protocol error with {peer}: {reason}")]
    Protocol {
        /// The peer's address.
        peer: SocketAddr,
        /// What was malformed.
        reason: String,
    },
    /// The local address could not be bound.
    #[error("cannot bind the fleet transport to {addr}: {reason}")]
    Bind {
        /// The requested local address.
        addr: SocketAddr,
        /// Why it failed.
        reason: String,
    },
    /// The identity, trust bundle or limits cannot be used to build the transport.
    #[error("invalid fleet transport configuration: {reason}")]
    Config {
        /// What is wrong and the expected form.
        reason: String,
    },
}

impl TransportError {
    /// The peer the error concerns, when there is one.
    pub fn peer(&self) -> Option<SocketAddr> {
        match self {
            TransportError::Unreachable { peer, .. }
            | TransportError::Timeout { peer, .. }
            | TransportError::Refused { peer, .. }
            | TransportError::TooLarge { peer, .. }
            | TransportError::Closed { peer, .. }
            | TransportError::Protocol { peer, .. } => Some(*peer),
            TransportError::Bind { .. } | TransportError::Config { .. } => None,
        }
    }
}
