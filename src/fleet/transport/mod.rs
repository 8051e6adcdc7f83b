//! Request/response messaging between agents. Fleet logic talks to a [`Transport`] and answers
//! through a [`Handler`]; two implementations exist and pass one conformance suite:
//!
//! - [`QuicTransport`]: QUIC over one UDP socket (server and client), mutual TLS under the fleet
//!   CA, ALPN [`ALPN`], one cached connection per peer, one bidirectional stream per request.
//! - [`MemoryTransport`] on a [`MemoryNetwork`]: in-process, with partitions, for testing fleet
//!   logic without sockets.
//!
//! Both carry the same bytes: a length-prefixed frame around an envelope
//! ([`envelope`]) whose first byte tells a TIME request (answered by the transport itself, used by
//! [`measure_clock_offset`]) from an APP request (passed to the handler).

mod clock;
mod dispatch;
pub mod envelope;
mod error;
pub(crate) mod frame;
mod memory;
mod quic;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;

pub use clock::{
    CLOCK_ROUND_TIMEOUT, ClockSample, ClockVerdict, describe_clock, judge_clock,
    measure_clock_offset, offset_from_samples,
};
pub use envelope::{PeerStamps, Reply, Request};
pub use error::{Oversize, TransportError};
pub use memory::{LinkModel, MemoryNetwork, MemoryTransport};
pub use quic::QuicTransport;

/// A peer's node id: the common name of its verified certificate.
pub type PeerId = String;

/// The QUIC application protocol both sides must announce.
pub const ALPN: &[u8] = b"volley/1";

/// Largest `max_message` accepted, so every frame length fits the `u32` prefix.
pub const MAX_MESSAGE_CEILING: usize = u32::MAX as usize - frame::MAX_HEAD;

/// Sends requests to peers. Implemented by [`QuicTransport`] and [`MemoryTransport`].
pub trait Transport: Send + Sync + 'static {
    /// Sends one enveloped request and waits for its reply, all within `timeout`.
    fn exchange(
        &self,
        peer: SocketAddr,
        request: Request,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Reply, TransportError>>;

    /// The address peers reach this transport at.
    fn local_addr(&self) -> SocketAddr;

    /// The agent's wall clock: clock measurements are stamped with it, and
    /// the origin and participant built on this transport read start
    /// instants and deadlines on it. The system's, except on a simulated
    /// network.
    fn wall_clock(&self) -> crate::clock::WallClock {
        crate::clock::WallClock::system()
    }

    /// The node id of the verified certificate the peer at `peer` presents (connecting first
    /// if needed, within `timeout`): who really answers at that address, whatever gossip says.
    fn peer_id(
        &self,
        peer: SocketAddr,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<PeerId, TransportError>>;

    /// Sends one application request and waits for its response (bounded by `timeout`).
    fn request(
        &self,
        peer: SocketAddr,
        body: Bytes,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Bytes, TransportError>> {
        Box::pin(async move {
            let reply = self.exchange(peer, Request::App(body), timeout).await?;
            dispatch::app_body(peer, reply)
        })
    }
}

/// Answers application requests. The agent implements this; `from` is the requester's node id.
pub trait Handler: Send + Sync + 'static {
    /// Produces the response to one request.
    fn handle(&self, from: PeerId, body: Bytes) -> BoxFuture<'static, Bytes>;
}

struct FnHandler<F>(F);

impl<F, Fut> Handler for FnHandler<F>
where
    F: Fn(PeerId, Bytes) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Bytes> + Send + 'static,
{
    fn handle(&self, from: PeerId, body: Bytes) -> BoxFuture<'static, Bytes> {
        Box::pin((self.0)(from, body))
    }
}

/// A [`Handler`] from an async closure.
pub fn handler_fn<F, Fut>(f: F) -> Arc<dyn Handler>
where
    F: Fn(PeerId, Bytes) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Bytes> + Send + 'static,
{
    Arc::new(FnHandler(f))
}

/// Size and liveness limits of a transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request or response body accepted or sent. Metric snapshots are a few kB to
    /// ~100 kB; plans can be larger. Default 8 MiB.
    pub max_message: usize,
    /// A QUIC connection with no traffic for this long is dropped (the effective value is the
    /// smaller of both peers'). Default 10 s.
    pub idle_timeout: Duration,
    /// Interval of QUIC keep-alive pings that hold idle connections open; must be shorter than
    /// `idle_timeout`. Default 2 s.
    pub keep_alive: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 8 * 1024 * 1024,
            idle_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(2),
        }
    }
}

impl Limits {
    /// Checks that the limits are usable, naming the field and the expected range.
    pub fn validate(&self) -> Result<(), TransportError> {
        let bad = |reason: String| Err(TransportError::Config { reason });
        if self.max_message == 0 || self.max_message > MAX_MESSAGE_CEILING {
            return bad(format!(
                "limits.max_message = {}: expected 1..={MAX_MESSAGE_CEILING} bytes",
                self.max_message
            ));
        }
        if self.idle_timeout.is_zero() || quinn::IdleTimeout::try_from(self.idle_timeout).is_err() {
            return bad(format!(
                "limits.idle_timeout = {:?}: expected a positive duration (e.g. 10s)",
                self.idle_timeout
            ));
        }
        if self.keep_alive.is_zero() || self.keep_alive >= self.idle_timeout {
            return bad(format!(
                "limits.keep_alive = {:?}: expected a positive duration shorter than idle_timeout ({:?})",
                self.keep_alive, self.idle_timeout
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_limits_are_valid_and_bad_ones_name_the_field() {
        Limits::default().validate().expect("defaults are valid");
        let cases = [
            (
                Limits {
                    max_message: 0,
                    ..Limits::default()
                },
                "max_message",
            ),
            (
                Limits {
                    keep_alive: Duration::from_secs(10),
                    ..Limits::default()
                },
                "keep_alive",
            ),
            (
                Limits {
                    idle_timeout: Duration::ZERO,
                    ..Limits::default()
                },
                "idle_timeout",
            ),
        ];
        for (limits, field) in cases {
            let err = limits.validate().expect_err("invalid");
            assert!(err.to_string().contains(field), "{err}");
        }
    }
}
