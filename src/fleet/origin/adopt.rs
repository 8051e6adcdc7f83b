//! Adopting a test whose origin died.
//!
//! This agent is the successor the participants agreed on
//! ([`crate::fleet::participant::succession`]). It rebuilds the coordinator's
//! state from what every participant holds (plan bundle, latest allocation,
//! start instant), starts with empty results that fill up as the agents send
//! their kept intervals again, and supervises the rest of the test like an
//! origin: the dead agent is noticed as lost and its share reallocated, then
//! thresholds, abort and the sealed summary work as before.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::{AgentProgress, Candidate, Origin, Test, lock};
use crate::fleet::participant::Orphan;
use crate::fleet::store::{TestMeta, TestPhase, results_deadline_ms};

impl Origin {
    /// Takes over the coordination of `orphan`; false when this agent
    /// coordinates it already.
    pub fn adopt(self: &Arc<Self>, orphan: Orphan) -> bool {
        if self.halted.is_cancelled() {
            return false;
        }
        let Orphan {
            test_id,
            name,
            previous,
            bundle,
            plan,
            allocation,
            start_unix_ms,
            members,
        } = orphan;
        let mut tests = lock(&self.tests);
        if tests.contains_key(&test_id) {
            return false;
        }
        let agents: Vec<String> = allocation.agents().map(str::to_owned).collect();
        let stored = self.store.as_ref().and_then(|s| s.meta(&test_id).ok());
        let meta = TestMeta {
            origin: self.me.clone(),
            phase: TestPhase::Running,
            allocation: serde_json::to_value(&allocation).unwrap_or_default(),
            agents: agents.clone(),
            deadline_unix_ms: Some(results_deadline_ms(start_unix_ms, plan.max_duration())),
            note: None,
            ..stored.unwrap_or_else(|| TestMeta {
                id: test_id.clone(),
                name,
                origin: previous.clone(),
                submitted_unix_ms: start_unix_ms,
                started_unix_ms: Some(start_unix_ms),
                ended_unix_ms: None,
                phase: TestPhase::Running,
                allocation: serde_json::Value::Null,
                passed: None,
                agents: Vec::new(),
                deadline_unix_ms: None,
                note: None,
            })
        };
        let candidates: BTreeMap<String, Candidate> = members
            .into_iter()
            .map(|c| (c.node_id.clone(), c))
            .collect();
        let labels: Vec<(String, BTreeMap<String, String>)> = agents
            .iter()
            .map(|a| {
                let labels = candidates.get(a).map(|c| c.labels.clone());
                (a.clone(), labels.unwrap_or_default())
            })
            .collect();
        let progress = labels
            .iter()
            .map(|(agent, labels)| {
                let p = AgentProgress {
                    state: if candidates.contains_key(agent) {
                        "running"
                    } else {
                        "lost"
                    }
                    .into(),
                    share: allocation.fraction(agent),
                    ..AgentProgress::new(agent, labels)
                };
                (agent.clone(), p)
            })
            .collect();
        let lost_results = if agents.contains(&previous) {
            String::from("; the share it ran itself and its results are lost with it")
        } else {
            String::new()
        };
        let incident = format!(
            "origin {previous} was lost; {} took the test over and rebuilt the results from the \
             intervals the other agents kept{lost_results}",
            self.me
        );
        tracing::warn!(test = %test_id, "{incident}");
        let test = Arc::new(Mutex::new(Test {
            incidents: vec![incident],
            ..Test::new(
                meta, plan, bundle, allocation, candidates, progress, &labels,
            )
        }));
        tests.insert(test_id.clone(), test.clone());
        drop(tests);
        if let Some(store) = &self.store {
            let bundle = crate::fleet::redact::bundle_at_rest(&lock(&test).bundle);
            if let Err(e) = store.put_bundle(&test_id, &bundle) {
                tracing::debug!(test = %test_id, "bundle not kept: {e}");
            }
        }
        self.persist_meta(&test);
        tokio::spawn(
            self.clone()
                .supervise(test, self.clock.instant_at(start_unix_ms)),
        );
        true
    }
}
