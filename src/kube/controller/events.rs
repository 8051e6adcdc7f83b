//! Events on `LoadTest`s (`events.k8s.io/v1`), one per phase change, so
//! `kubectl describe lt` and `kubectl get events` tell a test's story.
//!
//! An Event is a courtesy: a failed write is logged (a 403 once, through the
//! shared [`Refusals`]) and never stops a run.

use std::sync::Arc;

use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};

use super::conditions::{Reason, is_warning};
use super::decide::object_ref;
use crate::kube::crd::{LoadTest, Phase};
use crate::kube::error::{Call, Refusals, classify};

/// The `reportingController` of every Event the agents write.
pub const CONTROLLER: &str = "volley.dev/loadtest-controller";

/// The largest Event note the API server accepts (1 KiB).
const MAX_NOTE: usize = 1024;

/// Writes Events about `LoadTest`s, as this agent.
#[derive(Clone)]
pub struct Events {
    recorder: Recorder,
    refusals: Arc<Refusals>,
}

impl Events {
    /// Events reported by agent `node_id` (the `reportingInstance`).
    pub fn new(client: Client, node_id: &str, refusals: Arc<Refusals>) -> Self {
        let reporter = Reporter {
            controller: CONTROLLER.to_string(),
            instance: Some(node_id.to_string()),
        };
        Events {
            recorder: Recorder::new(client, reporter),
            refusals,
        }
    }

    /// The Event of `lt` entering `phase` for `reason`.
    pub async fn phase(&self, lt: &LoadTest, phase: Phase, reason: Reason, message: &str) {
        let type_ = if is_warning(phase) {
            EventType::Warning
        } else {
            EventType::Normal
        };
        self.publish(lt, type_, reason.as_str(), &format!("{phase:?}"), message)
            .await;
    }

    /// One Event about `lt`.
    pub async fn publish(
        &self,
        lt: &LoadTest,
        type_: EventType,
        reason: &str,
        action: &str,
        note: &str,
    ) {
        let event = Event {
            type_,
            reason: reason.to_string(),
            note: Some(truncate(note, MAX_NOTE).to_string()),
            action: action.to_string(),
            secondary: None,
        };
        let reference = lt.object_ref(&());
        if let Err(e) = self.recorder.publish(&event, &reference).await {
            let namespace = reference.namespace.clone();
            let err = classify(
                Call {
                    verb: "create",
                    resource: "events",
                    name: "",
                    namespace: namespace.as_deref(),
                },
                e,
            );
            if !self
                .refusals
                .report_if_forbidden(&err, "Events on LoadTests (the status still tells)")
            {
                tracing::warn!(loadtest = %object_ref(lt), "kube: writing a {reason} Event failed: {err}");
            }
        }
    }
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn notes_are_cut_on_a_character_boundary() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("abcdef", 3), "abc");
        // "é" is two bytes: a cut inside it keeps the character out.
        assert_eq!(truncate("aé", 2), "a");
    }
}
