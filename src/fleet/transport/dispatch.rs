//! The request/reply logic shared by every transport, on both sides of a request: the answering
//! side turns a request payload into a reply payload (TIME stamps, handler call, refusals), the
//! requesting side checks sizes before sending and turns a reply payload into a result.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt;

use super::envelope::{self, Fault, PeerStamps, Reply, ReplyError, Request};
use super::error::{Oversize, TransportError};
use super::frame::{FrameError, Payload, frame_limit};
use super::{Handler, Limits, PeerId};
use crate::clock::WallClock;

/// The answering side of a transport.
pub(crate) struct Dispatcher {
    /// The agent's application handler for APP requests.
    handler: Arc<dyn Handler>,
    /// This side's message limit, applied to incoming requests and outgoing responses.
    max_message: usize,
    /// Stamps the answers to TIME requests.
    clock: WallClock,
}

impl Dispatcher {
    pub(crate) fn new(handler: Arc<dyn Handler>, limits: &Limits) -> Self {
        Dispatcher {
            handler,
            max_message: limits.max_message,
            clock: WallClock::system(),
        }
    }

    /// This dispatcher, stamping TIME answers with `clock`.
    pub(crate) fn with_clock(mut self, clock: WallClock) -> Self {
        self.clock = clock;
        self
    }

    /// The largest request frame payload this side reads.
    pub(crate) fn frame_limit(&self) -> usize {
        frame_limit(self.max_message)
    }

    /// Answers one request payload from `from`, received at `received` (ns since the epoch).
    pub(crate) async fn answer(&self, from: PeerId, payload: Bytes, received: i128) -> Payload {
        let request = match envelope::decode_request(payload) {
            Ok(request) => request,
            Err(fault) => {
                tracing::warn!(peer = %from, "refusing malformed request: {fault:?}");
                return envelope::encode_fault(&fault);
            }
        };
        match request {
            Request::Time => envelope::encode_reply(Reply::Time(PeerStamps {
                received,
                sent: self.clock.now_ns(),
            })),
            Request::App(body) if body.len() > self.max_message => {
                envelope::encode_fault(&Fault::RequestTooLarge {
                    size: body.len(),
                    limit: self.max_message,
                })
            }
            Request::App(body) => {
                let call = AssertUnwindSafe(self.handler.handle(from.clone(), body));
                match call.catch_unwind().await {
                    Ok(response) if response.len() > self.max_message => {
                        tracing::warn!(
                            peer = %from,
                            size = response.len(),
                            limit = self.max_message,
                            "handler response exceeds the message limit; not sent"
                        );
                        envelope::encode_fault(&Fault::ResponseTooLarge {
                            size: response.len(),
                            limit: self.max_message,
                        })
                    }
                    Ok(response) => envelope::encode_reply(Reply::App(response)),
                    Err(_) => {
                        tracing::error!(peer = %from, "handler panicked while answering a request");
                        envelope::encode_fault(&Fault::HandlerFailed(
                            "the peer's handler panicked".to_owned(),
                        ))
                    }
                }
            }
        }
    }

    /// The reply to a request whose frame could not be read.
    pub(crate) fn refuse_frame(&self, from: &str, err: &FrameError) -> Payload {
        tracing::warn!(peer = %from, "refusing request: {err}");
        let fault = match err {
            FrameError::TooLarge { declared, .. } => Fault::RequestTooLarge {
                size: declared.saturating_sub(1),
                limit: self.max_message,
            },
            other => Fault::Protocol(format!("bad request framing: {other}")),
        };
        envelope::encode_fault(&fault)
    }
}

/// The instant `timeout` from now; an absurdly long timeout means "about never", not a panic.
pub(crate) fn deadline_after(timeout: std::time::Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + std::time::Duration::from_secs(100 * 365 * 24 * 3600))
}

/// Checks an outgoing request against our limit and encodes it; returns its kind and payload.
pub(crate) fn prepare(
    peer: SocketAddr,
    request: Request,
    limits: &Limits,
) -> Result<(u8, Payload), TransportError> {
    let size = request.body_len();
    if size > limits.max_message {
        return Err(TransportError::TooLarge {
            peer,
            size,
            limit: limits.max_message,
            what: Oversize::Request,
        });
    }
    Ok((request.kind(), request.into_payload()))
}

/// The error for a response frame that could not be read.
pub(crate) fn response_frame_error(
    peer: SocketAddr,
    err: &FrameError,
    limits: &Limits,
) -> TransportError {
    match err {
        FrameError::TooLarge { declared, .. } => TransportError::TooLarge {
            peer,
            size: declared.saturating_sub(1),
            limit: limits.max_message,
            what: Oversize::Response,
        },
        other => TransportError::Protocol {
            peer,
            reason: format!("bad response framing: {other}"),
        },
    }
}

/// Turns a response payload for a request of `kind` into the reply or the peer's refusal.
pub(crate) fn finish(
    peer: SocketAddr,
    kind: u8,
    payload: Bytes,
    limits: &Limits,
) -> Result<Reply, TransportError> {
    match envelope::decode_reply(kind, payload) {
        Ok(Reply::App(body)) if body.len() > limits.max_message => Err(TransportError::TooLarge {
            peer,
            size: body.len(),
            limit: limits.max_message,
            what: Oversize::Response,
        }),
        Ok(reply) => Ok(reply),
        Err(ReplyError::Malformed(reason)) => Err(TransportError::Protocol {
            peer,
            reason: format!("malformed reply: {reason}"),
        }),
        Err(ReplyError::Remote(fault)) => Err(match fault {
            Fault::Protocol(reason) => TransportError::Protocol {
                peer,
                reason: format!("peer rejected the request: {reason}"),
            },
            Fault::HandlerFailed(reason) => TransportError::Protocol {
                peer,
                reason: format!("peer could not answer: {reason}"),
            },
            Fault::RequestTooLarge { size, limit } => TransportError::TooLarge {
                peer,
                size,
                limit,
                what: Oversize::RequestRefusedByPeer,
            },
            Fault::ResponseTooLarge { size, limit } => TransportError::TooLarge {
                peer,
                size,
                limit,
                what: Oversize::ResponseRefusedByPeer,
            },
        }),
    }
}

/// Extracts the APP body from a reply to an APP request.
pub(crate) fn app_body(peer: SocketAddr, reply: Reply) -> Result<Bytes, TransportError> {
    match reply {
        Reply::App(body) => Ok(body),
        Reply::Time(_) => Err(TransportError::Protocol {
            peer,
            reason: "TIME reply to an APP request".to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::transport::clock::now_ns;
    use crate::fleet::transport::envelope::{KIND_APP, KIND_TIME};
    use crate::fleet::transport::handler_fn;

    fn peer() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 9))
    }

    fn flat(p: Payload) -> Bytes {
        let mut v = p.head;
        v.extend_from_slice(&p.body);
        Bytes::from(v)
    }

    fn limits(max_message: usize) -> Limits {
        Limits {
            max_message,
            ..Limits::default()
        }
    }

    fn echo() -> Dispatcher {
        let handler = handler_fn(|from: PeerId, body: Bytes| async move {
            let mut out = from.into_bytes();
            out.extend_from_slice(&body);
            Bytes::from(out)
        });
        Dispatcher::new(handler, &limits(16))
    }

    #[tokio::test]
    async fn app_requests_reach_the_handler_with_the_sender() {
        let (kind, payload) = prepare(
            peer(),
            Request::App(Bytes::from_static(b"-hi")),
            &limits(16),
        )
        .expect("fits");
        let reply = echo().answer("node".into(), flat(payload), 0).await;
        let reply = finish(peer(), kind, flat(reply), &limits(16)).expect("answered");
        assert_eq!(reply, Reply::App(Bytes::from_static(b"node-hi")));
    }

    #[tokio::test]
    async fn time_requests_are_stamped_by_the_transport() {
        let before = now_ns();
        let reply = echo()
            .answer("node".into(), Bytes::from_static(&[KIND_TIME]), 42)
            .await;
        let Ok(Reply::Time(stamps)) = finish(peer(), KIND_TIME, flat(reply), &limits(16)) else {
            panic!("expected a TIME reply");
        };
        assert_eq!(stamps.received, 42);
        assert!(stamps.sent >= before);
    }

    #[tokio::test]
    async fn unknown_kinds_and_oversized_messages_are_refused_with_reasons() {
        let reply = echo()
            .answer("node".into(), Bytes::from_static(&[0x09]), 0)
            .await;
        let err = finish(peer(), KIND_APP, flat(reply), &limits(16)).expect_err("refused");
        assert!(
            matches!(err, TransportError::Protocol { ref reason, .. } if reason.contains("unknown message kind 0x09")),
            "{err:?}"
        );
        let big = Bytes::from(vec![KIND_APP; 18]);
        let reply = echo().answer("node".into(), big, 0).await;
        let err = finish(peer(), KIND_APP, flat(reply), &limits(64)).expect_err("refused");
        assert!(
            matches!(
                err,
                TransportError::TooLarge {
                    size: 17,
                    limit: 16,
                    what: Oversize::RequestRefusedByPeer,
                    ..
                }
            ),
            "{err:?}"
        );
        let reply = echo()
            .answer("a-long-node-id".into(), Bytes::from_static(b"\x02abc"), 0)
            .await;
        let err = finish(peer(), KIND_APP, flat(reply), &limits(64)).expect_err("refused");
        assert!(
            matches!(
                err,
                TransportError::TooLarge {
                    size: 17,
                    limit: 16,
                    what: Oversize::ResponseRefusedByPeer,
                    ..
                }
            ),
            "{err:?}"
        );
        let err = prepare(peer(), Request::App(Bytes::from(vec![0; 17])), &limits(16))
            .expect_err("not sent");
        assert!(matches!(
            err,
            TransportError::TooLarge {
                what: Oversize::Request,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn a_panicking_handler_becomes_an_error_reply() {
        let handler = handler_fn(|_: PeerId, body: Bytes| async move {
            if body.is_empty() {
                panic!("handler bug");
            }
            body
        });
        let dispatcher = Dispatcher::new(handler, &limits(16));
        let reply = dispatcher
            .answer("node".into(), Bytes::from_static(&[KIND_APP]), 0)
            .await;
        let err = finish(peer(), KIND_APP, flat(reply), &limits(16)).expect_err("failed");
        assert!(
            matches!(err, TransportError::Protocol { ref reason, .. } if reason.contains("panicked")),
            "{err:?}"
        );
    }
}
