//! The QUIC handler of an agent: routes fleet messages from peers to the
//! origin or the participant side, and answers identity requests itself.

use std::sync::{Arc, OnceLock, Weak};

use bytes::Bytes;
use futures::future::BoxFuture;

use super::core::{AgentCore, not_running};
use crate::fleet::protocol::{self, Message, Response};
use crate::fleet::transport::{Handler, PeerId};

/// Routes fleet messages; attached to the core once it exists (the QUIC
/// endpoint must be bound before the core can be built).
#[derive(Default)]
pub struct Router {
    core: OnceLock<Weak<AgentCore>>,
}

impl Router {
    pub fn attach(&self, core: Arc<AgentCore>) {
        let _ = self.core.set(Arc::downgrade(&core));
    }
}

impl Handler for Router {
    fn handle(&self, from: PeerId, body: Bytes) -> BoxFuture<'static, Bytes> {
        let core = self.core.get().and_then(Weak::upgrade);
        Box::pin(async move {
            let Some(core) = core else {
                return reply(&Response::Error {
                    message: "agent is starting".into(),
                });
            };
            let (msg, payload) = match protocol::decode::<Message>(&body) {
                Ok(m) => m,
                Err(e) => {
                    tracing::debug!(peer = %from, "bad fleet message: {e}");
                    return reply(&Response::Error {
                        message: format!("bad message: {e}"),
                    });
                }
            };
            let response = match msg {
                Message::Identify => Response::Identity {
                    node_id: core.me().to_owned(),
                    generation: core.h.membership.self_id().generation_id,
                },
                Message::Interval { to_relay: true, .. }
                | Message::Merged { to_relay: true, .. } => {
                    core.h.participant.relay(msg, payload).await
                }
                Message::Interval { .. } | Message::Merged { .. } | Message::Done { .. } => {
                    core.h.origin.on_message(msg, payload)
                }
                Message::Keep { .. } => core.h.participant.keep(msg, payload).await,
                Message::Sealed { ref meta, .. } => {
                    // The origin's own summary replaces one this agent sealed partially.
                    core.h.origin.superseded(meta);
                    core.h.participant.handle(msg)
                }
                Message::Abort { ref test_id, .. } => {
                    let runs_it = core
                        .h
                        .participant
                        .current()
                        .is_some_and(|(test, _)| test == *test_id);
                    let local = core.h.participant.handle(msg.clone());
                    if core.h.origin.snapshot(test_id).is_some() {
                        core.h.origin.on_message(msg, payload)
                    } else if runs_it {
                        local
                    } else {
                        let phase = core
                            .h
                            .store
                            .meta(test_id)
                            .map_or_else(|_| "unknown".to_owned(), |m| m.phase.as_str().to_owned());
                        Response::Error {
                            message: not_running(test_id, core.me(), &phase).to_string(),
                        }
                    }
                }
                other => core.h.participant.handle(other),
            };
            reply(&response)
        })
    }
}

fn reply(r: &Response) -> Bytes {
    protocol::encode(r, &[])
}
