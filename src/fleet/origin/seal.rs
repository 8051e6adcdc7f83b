//! Ending a test: the fleet-wide summary (with the per-agent and
//! per-region breakdown, the start spread and the incidents), sealed in the
//! data directory and sent to every other agent of the test.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::{AgentProgress, Origin, Sealed, Test, lock};
use crate::fleet::participant::SealRule;
use crate::fleet::protocol::{self, Message, Response};
use crate::fleet::store::TestPhase;
use crate::metrics::{Summary, judge};
use crate::report;

/// How long a participant may take to record a sealed summary.
const SEALED_TIMEOUT: Duration = Duration::from_secs(2);

impl Origin {
    /// Builds the fleet-wide summary and seals it.
    pub(super) fn seal(&self, test: &Arc<Mutex<Test>>, start: Instant) {
        let mut t = lock(test);
        // Nothing more is awaited: seal every open interval (fleet gauges).
        t.results.finish();
        // The snapshots' own time span; without any, the wall time since the start.
        let elapsed = if t.results.elapsed().is_zero() {
            Instant::now().saturating_duration_since(start)
        } else {
            t.results.elapsed()
        };
        let mut outcomes = judge::evaluate(&t.plan.thresholds, t.results.fleet(), elapsed);
        if t.threshold_abort {
            for (f, o) in outcomes.iter_mut().zip(&t.outcomes) {
                if !o.ok {
                    *f = o.clone();
                    f.aborted = true;
                }
            }
        }
        let mut summary = Summary::build(t.results.fleet(), &t.plan, elapsed, outcomes.clone());
        summary.breakdown = t.results.breakdown(&["region", "zone"]);
        let agents: Vec<AgentProgress> = t.progress.values().cloned().collect();
        if let Some(spread) = start_spread(&agents) {
            summary.notes.push(format!(
                "start spread across {} agents: {:.2} ms",
                agents
                    .iter()
                    .filter(|a| a.started_unix_us.is_some())
                    .count(),
                spread.as_secs_f64() * 1000.0
            ));
        }
        summary.notes.extend(t.incidents.iter().cloned());
        summary.notes.extend(t.results.notes());
        summary.notes.extend(t.output_notes.iter().cloned());
        let text = report::text::render(
            &summary,
            &report::text::TextOptions {
                color: false,
                title: Some(format!(
                    "test {} on {} agents{}",
                    t.meta.id,
                    t.meta.agents.len(),
                    if t.partial.is_some() {
                        " (PARTIAL: sealed without a majority of the agents; see the notes)"
                    } else {
                        ""
                    }
                )),
                full: false,
            },
        );
        let export = report::export::k6_summary_export(
            &summary,
            &report::export::ExportContext {
                trend_stats: t.plan.summary_trend_stats.clone(),
            },
        );
        let aborted = t.abort.is_cancelled() && !t.threshold_abort;
        // An agent's memory watchdog stopped it: not the test that was
        // asked for, whatever the thresholds say.
        let memory_stop = t
            .incidents
            .iter()
            .any(|i| protocol::stopped_by_memory_ceiling(i));
        let passed = summary.passed() && !memory_stop;
        t.outcomes = outcomes;
        // An aborted test did not pass, whatever its thresholds said so far.
        t.meta.passed = Some(passed && !aborted);
        t.meta.ended_unix_ms = Some(self.clock.unix_ms());
        t.meta.phase = if memory_stop {
            TestPhase::Failed
        } else if aborted {
            TestPhase::Aborted
        } else if passed {
            TestPhase::Passed
        } else {
            TestPhase::Failed
        };
        t.meta.partial = t.partial.is_some();
        if let Some(store) = &self.store {
            let value = serde_json::to_value(&summary).unwrap_or_default();
            // A partial summary sealed here meanwhile (this origin was cut
            // off, not dead) gives way to this one; never the other way.
            let held = store.meta(&t.meta.id).ok();
            let held_sealed = matches!(store.summary(&t.meta.id), Ok(Some(_)));
            let rule = crate::fleet::participant::seal_rule(held.as_ref(), held_sealed, &t.meta);
            let written = match rule {
                SealRule::Keep => Ok(()),
                SealRule::Replace => store
                    .update_meta(&t.meta)
                    .and_then(|()| store.replace_partial_seal(&t.meta.id, &value, &text)),
                SealRule::Record => store
                    .update_meta(&t.meta)
                    .and_then(|()| store.seal(&t.meta.id, &value, &text)),
            };
            if let Err(e) = written {
                tracing::warn!(test = %t.meta.id, "cannot seal the summary on disk: {e}");
            }
            store.prune_history();
        }
        t.sealed = Some(Sealed {
            summary,
            text,
            export,
        });
    }
}

impl Origin {
    /// Tells every other agent of the test its verdict and summary, so each
    /// one's history (`GET /v1/tests`) and summary answer without the origin.
    pub(super) async fn broadcast_sealed(&self, test: &Arc<Mutex<Test>>) {
        let (msg, targets) = {
            let t = lock(test);
            let Some(sealed) = &t.sealed else {
                return;
            };
            let msg = Message::Sealed {
                meta: t.meta.clone(),
                summary: serde_json::to_value(&sealed.summary).unwrap_or_default(),
                text: sealed.text.clone(),
            };
            // The origin's own summary also goes to agents it lost (best
            // effort): one that was only cut off may have sealed a partial
            // summary, which this one replaces. A partial one never goes to
            // the agents it lost, the origin among them.
            let targets: Vec<(String, SocketAddr)> = t
                .candidates
                .values()
                .filter(|c| c.node_id != self.me)
                .filter(|c| t.partial.is_none() || !t.lost.contains(&c.node_id))
                .map(|c| (c.node_id.clone(), c.quic))
                .collect();
            (protocol::encode(&msg, &[]), targets)
        };
        let replies = futures::future::join_all(targets.iter().map(|(agent, addr)| {
            let body = msg.clone();
            async move { (agent, self.call(*addr, body, SEALED_TIMEOUT).await) }
        }))
        .await;
        for (agent, reply) in replies {
            if !matches!(reply, Ok(Response::Ok)) {
                tracing::debug!(%agent, "sealed summary not recorded there: {reply:?}");
            }
        }
    }
}

/// Max − min of the agents' actual start instants.
pub(super) fn start_spread(agents: &[AgentProgress]) -> Option<Duration> {
    let starts: Vec<u64> = agents.iter().filter_map(|a| a.started_unix_us).collect();
    let (min, max) = (starts.iter().min()?, starts.iter().max()?);
    Some(Duration::from_micros(max - min))
}

/// Completed requests and failed ones in an aggregate.
pub fn requests_and_failures(agg: &crate::metrics::aggregate::Aggregate) -> (u64, u64) {
    use crate::metrics::Metric;
    use crate::metrics::value::Value;
    let requests = match agg.metric_value(Metric::HttpReqs, &[]) {
        Some(Value::Counter(c)) => c as u64,
        _ => 0,
    };
    let failed = match agg.metric_value(Metric::HttpReqFailed, &[]) {
        Some(Value::Rate { trues, .. }) => trues,
        _ => 0,
    };
    (requests, failed)
}
