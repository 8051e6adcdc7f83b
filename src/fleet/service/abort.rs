//! Aborting a test from any agent: the origin aborts it at once; any other
//! agent stops its own part first, then tells the origin over the transport.

use std::time::Duration;

use super::{Refusal, Service, not_running};
use crate::clock::unix_ms_now;
use crate::fleet::protocol::{self, Message, Response};

/// How long the origin may take to answer an abort.
const ABORT_TIMEOUT: Duration = Duration::from_secs(2);

/// An abort that took effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aborted {
    pub at_unix_ms: u64,
}

impl Service {
    /// Aborts test `id`, wherever it is coordinated.
    pub async fn abort(&self, id: &str) -> Result<Aborted, Refusal> {
        const REASON: &str = "aborted through the API";
        if let Some(already) = self.origin.abort(id, REASON) {
            self.participant.handle(Message::Abort {
                test_id: id.to_owned(),
                reason: REASON.into(),
            });
            if already {
                let (aborted, at_unix_ms) =
                    self.origin.ending(id).unwrap_or((false, unix_ms_now()));
                return Err(Refusal::AlreadyOver {
                    id: id.to_owned(),
                    aborted,
                    at_unix_ms,
                });
            }
            return Ok(Aborted {
                at_unix_ms: unix_ms_now(),
            });
        }
        // Not ours: stop our own part at once, then tell the origin.
        let origin = match self.participant.current() {
            Some((test, origin)) if test == id => {
                self.participant.handle(Message::Abort {
                    test_id: id.to_owned(),
                    reason: REASON.into(),
                });
                Some(origin)
            }
            _ => match self.store.as_ref().and_then(|s| s.meta(id).ok()) {
                Some(meta) => Some(meta.origin),
                None => self.origin_from_gossip(id).await,
            },
        };
        let Some(origin) = origin else {
            return Err(Refusal::UnknownTest(id.to_owned()));
        };
        if origin == self.me {
            // We coordinated it, yet our origin does not know it: this agent
            // restarted since, so nothing runs it any more.
            return Err(not_running(id, &self.me, &self.recorded_phase(id)));
        }
        let quic = self
            .live_member(&origin)
            .await
            .and_then(|m| m.usable().map(|i| i.quic));
        let Some(quic) = quic else {
            return Err(Refusal::Unavailable(format!(
                "agent {origin} coordinates test {id} but is not reachable; this agent stopped \
                 its own part, and every agent stops at the test's hard deadline"
            )));
        };
        let body = protocol::encode(
            &Message::Abort {
                test_id: id.to_owned(),
                reason: format!("aborted through agent {}", self.me),
            },
            &[],
        );
        let reply = self
            .transport
            .request(quic, body, ABORT_TIMEOUT)
            .await
            .map_err(|e| {
                Refusal::Unavailable(format!(
                    "cannot reach agent {origin} to abort test {id}: {e}"
                ))
            })?;
        match protocol::decode::<Response>(&reply) {
            Ok((Response::Error { message }, _)) => Err(Refusal::Conflict(message)),
            Ok((
                Response::AlreadyOver {
                    aborted,
                    at_unix_ms,
                    ..
                },
                _,
            )) => Err(Refusal::AlreadyOver {
                id: id.to_owned(),
                aborted,
                at_unix_ms,
            }),
            _ => Ok(Aborted {
                at_unix_ms: unix_ms_now(),
            }),
        }
    }
}
