//! The transport handler of an agent: routes fleet messages from peers to
//! the origin or the participant side, and answers identity requests.

use std::sync::{Arc, OnceLock, Weak};

use bytes::Bytes;
use futures::future::BoxFuture;

use super::{Service, not_running};
use crate::fleet::protocol::{self, Message, Response};
use crate::fleet::transport::{Handler, PeerId};

/// Routes fleet messages; attached to the service once it exists (the
/// transport must be bound before the service can be built).
pub struct Router {
    service: OnceLock<Weak<Service>>,
    /// The incarnation answered to identity requests.
    generation: u64,
}

impl Router {
    /// A router answering `Identify` with this incarnation.
    pub fn new(generation: u64) -> Router {
        Router {
            service: OnceLock::new(),
            generation,
        }
    }

    pub fn attach(&self, service: &Arc<Service>) {
        let _ = self.service.set(Arc::downgrade(service));
    }
}

impl Handler for Router {
    fn handle(&self, from: PeerId, body: Bytes) -> BoxFuture<'static, Bytes> {
        let service = self.service.get().and_then(Weak::upgrade);
        let generation = self.generation;
        Box::pin(async move {
            let Some(service) = service else {
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
            reply(&service.route(msg, payload, generation).await)
        })
    }
}

impl Service {
    async fn route(&self, msg: Message, payload: Bytes, generation: u64) -> Response {
        match msg {
            Message::Identify => Response::Identity {
                node_id: self.me.clone(),
                generation,
            },
            Message::Interval { to_relay: true, .. } | Message::Merged { to_relay: true, .. } => {
                self.participant.relay(msg, payload).await
            }
            Message::Interval { .. } | Message::Merged { .. } | Message::Done { .. } => {
                self.origin.on_message(msg, payload)
            }
            Message::Keep { .. } => self.participant.keep(msg, payload).await,
            Message::Sealed { ref meta, .. } => {
                // The origin's own summary replaces one this agent sealed partially.
                self.origin.superseded(meta);
                self.participant.handle(msg)
            }
            Message::Abort { ref test_id, .. } => {
                let runs_it = self
                    .participant
                    .current()
                    .is_some_and(|(test, _)| test == *test_id);
                let local = self.participant.handle(msg.clone());
                if self.origin.snapshot(test_id).is_some() {
                    self.origin.on_message(msg, payload)
                } else if runs_it {
                    local
                } else {
                    let phase = self.recorded_phase(test_id);
                    Response::Error {
                        message: not_running(test_id, &self.me, &phase).to_string(),
                    }
                }
            }
            other => self.participant.handle(other),
        }
    }
}

fn reply(r: &Response) -> Bytes {
    protocol::encode(r, &[])
}
