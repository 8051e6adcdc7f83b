//! What a participant records for others in its data directory: the
//! intervals of the coordinator it would succeed ([`Message::Keep`], see
//! `mirror`), and every sealed summary, where the origin's own replaces a
//! partial one ([`TestMeta::partial`]) and never the other way.

use bytes::Bytes;

use super::{Participant, error, kind, lock};
use crate::fleet::protocol::{Message, Response};
use crate::fleet::store::TestMeta;

impl Participant {
    /// Keeps interval `seq` of `agent`, the coordinator of `test_id`, in
    /// the data directory: this agent would succeed it (see
    /// [`super::succession::designated`]).
    pub async fn keep(&self, msg: Message, payload: Bytes) -> Response {
        let Message::Keep {
            test_id,
            agent,
            seq,
        } = msg
        else {
            return error(format!("{} is not a keep message", kind(&msg)));
        };
        let Some(store) = self.store.clone() else {
            return error(format!("agent {} has no data directory", self.me));
        };
        let me = self.me.clone();
        let kept = tokio::task::spawn_blocking(move || {
            let meta = store.meta(&test_id).map_err(|e| e.to_string())?;
            if agent == me || !meta.agents.contains(&agent) {
                return Err(format!(
                    "agent {agent} is not another agent of test {test_id} on agent {me}"
                ));
            }
            store
                .append_interval(&test_id, &agent, seq, &payload)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
        match kept {
            Ok(()) => Response::Ok,
            Err(e) => error(e),
        }
    }

    /// Records a sealed test's verdict and summary in this agent's data
    /// directory (its intervals stay until the test is pruned).
    pub(super) fn sealed(
        &self,
        meta: &TestMeta,
        summary: &serde_json::Value,
        text: &str,
    ) -> Response {
        lock(&self.lingering).remove(&meta.id);
        let Some(store) = &self.store else {
            return Response::Ok;
        };
        let held = store.meta(&meta.id).ok();
        let held_sealed = held.is_some() && matches!(store.summary(&meta.id), Ok(Some(_)));
        let recorded = match seal_rule(held.as_ref(), held_sealed, meta) {
            SealRule::Keep => return Response::Ok,
            SealRule::Replace => store
                .update_meta(meta)
                .and_then(|()| store.replace_partial_seal(&meta.id, summary, text)),
            SealRule::Record => match held {
                Some(_) => store.update_meta(meta),
                None => store.create_test(meta),
            }
            .and_then(|()| store.seal(&meta.id, summary, text)),
        };
        match recorded {
            Ok(()) => {
                store.prune_history();
                Response::Ok
            }
            Err(e) => error(format!(
                "agent {} cannot record sealed test {}: {e}",
                self.me, meta.id
            )),
        }
    }
}

/// What a sealed summary that arrives does to the one this agent holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealRule {
    /// Record it (nothing sealed here yet, or the same seal again).
    Record,
    /// The origin's own summary replaces a partial one.
    Replace,
    /// A partial summary never replaces the origin's own.
    Keep,
}

/// The rule for a sealed summary `incoming` when this agent holds `held`
/// (sealed when `held_sealed`).
pub fn seal_rule(held: Option<&TestMeta>, held_sealed: bool, incoming: &TestMeta) -> SealRule {
    match held {
        Some(h) if held_sealed && h.partial && !incoming.partial => SealRule::Replace,
        Some(h) if held_sealed && !h.partial && incoming.partial => SealRule::Keep,
        _ => SealRule::Record,
    }
}
