//! What the participant does, mirrored into gossip (`volley.state`,
//! `volley.test`), so that submits elsewhere see this agent busy or idle.

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::fleet::keys::AgentState;
use crate::fleet::membership::Roster;
use crate::fleet::participant::Activity;

/// Publishes every change of `activity` until `shutdown`; a draining agent
/// stays `draining`.
pub(super) async fn publish(
    roster: Arc<dyn Roster>,
    mut activity: watch::Receiver<Activity>,
    shutdown: CancellationToken,
) {
    loop {
        let current = activity.borrow_and_update().clone();
        let (state, test) = match current {
            Activity::Idle => (AgentState::Idle, None),
            Activity::Preparing { test_id } => (AgentState::Preparing, Some(test_id)),
            Activity::Running { test_id } => (AgentState::Running, Some(test_id)),
        };
        let result = roster
            .publish(Box::new(move |me| {
                if me.state != AgentState::Draining {
                    me.state = state;
                }
                me.test = test;
            }))
            .await;
        if let Err(e) = result {
            tracing::warn!("cannot publish the agent state: {e}");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = activity.changed() => if changed.is_err() { return },
        }
    }
}
