//! Adopting a test whose origin died.
//!
//! This agent is the successor the participants agreed on
//! ([`crate::fleet::participant::succession`]). It rebuilds the coordinator's
//! state from what every participant holds (plan bundle, latest allocation,
//! start instant), starts from the dead origin's own intervals (kept here as
//! the origin produced them, `participant::mirror`), fills up as the agents
//! send their kept intervals again (those that already finished too), and
//! supervises the rest of the test like an origin: the dead agent is noticed
//! as lost and its share reallocated, then thresholds, abort and the sealed
//! summary work as before. Without a majority of the test's agents live, the
//! summary it seals is marked partial.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::{AgentProgress, Candidate, Origin, Test, lock};
use crate::fleet::merge::Ingest;
use crate::fleet::participant::Orphan;
use crate::fleet::store::{TestMeta, TestPhase, results_deadline_ms};
use crate::metrics::snapshot::Snapshot;

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
            partial,
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
            partial: partial.is_some(),
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
                partial: false,
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
        let mut test = Test {
            partial: partial.clone(),
            adopted: Some(tokio::time::Instant::now()),
            ..Test::new(
                meta, plan, bundle, allocation, candidates, progress, &labels,
            )
        };
        let own = if agents.contains(&previous) {
            match self.ingest_kept(&mut test, &test_id, &previous) {
                0 => String::from("; none of the intervals of its own share reached this agent"),
                n => format!(
                    " and the {n} interval(s) of its own share it had kept at {}",
                    self.me
                ),
            }
        } else {
            String::new()
        };
        let incident = format!(
            "origin {previous} was lost; {} took the test over and rebuilt the results from the \
             intervals the other agents kept{own}",
            self.me
        );
        tracing::warn!(test = %test_id, "{incident}");
        test.incidents.push(incident);
        test.incidents.extend(partial);
        let test = Arc::new(Mutex::new(test));
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

    /// Merges the intervals of `agent` (the dead origin) that this agent
    /// kept for it; how many.
    fn ingest_kept(&self, test: &mut Test, test_id: &str, agent: &str) -> u64 {
        let Some(store) = &self.store else {
            return 0;
        };
        let kept = match store.read_intervals(test_id, agent) {
            Ok(kept) => kept,
            Err(e) => {
                tracing::warn!(test = %test_id, "cannot read the intervals kept for {agent}: {e}");
                return 0;
            }
        };
        let mut ingested = 0;
        for (seq, bytes) in kept {
            let snapshot = match Snapshot::decode(&bytes) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(test = %test_id, "interval {seq} kept for {agent} is corrupt: {e}");
                    continue;
                }
            };
            if matches!(
                test.results.ingest(agent, seq, snapshot),
                Ingest::Applied | Ingest::OutOfOrder
            ) {
                ingested += 1;
                if let Some(p) = test.progress.get_mut(agent) {
                    p.intervals += 1;
                }
            }
        }
        ingested
    }
}
