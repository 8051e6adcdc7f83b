//! A running test: thresholds judged on the fleet-wide numbers, lost
//! agents noticed and their shares (arrivals, VUs, unfinished iterations)
//! reallocated, aborts broadcast, then the seal.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::{
    ADOPT_GRACE, JUDGE_EVERY, Origin, REALLOC_LEAD, RESEND, RESULTS_GRACE, TICK, Test, iterations,
    lock,
};
use crate::fleet::protocol::{self, Message};
use crate::fleet::store::TestPhase;
use crate::metrics::judge;

impl Origin {
    /// Runs a started test to its end: thresholds, lost agents, abort, seal.
    pub(super) async fn supervise(self: Arc<Self>, test: Arc<Mutex<Test>>, start: Instant) {
        let id = lock(&test).meta.id.clone();
        self.set_phase(&test, TestPhase::Running);
        let (max_end, abort) = {
            let t = lock(&test);
            (
                start + t.plan.max_duration() + RESULTS_GRACE,
                t.abort.clone(),
            )
        };
        let mut next_judge = Instant::now() + JUDGE_EVERY;
        let mut aborted_sent = false;
        // Agents the abort, or the latest allocation, has not reached yet,
        // and when to try them again.
        let mut unaborted: Vec<String> = Vec::new();
        let mut next_abort = Instant::now();
        let mut unallocated: Vec<String> = Vec::new();
        let mut next_allocation = Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = abort.cancelled(), if !aborted_sent => {}
                () = self.halted.cancelled() => return,
            }
            let judge_now = Instant::now() >= next_judge;
            if judge_now {
                next_judge += JUDGE_EVERY;
            }
            if abort.is_cancelled() && !aborted_sent {
                aborted_sent = true;
                unaborted = self.broadcast_abort(&test, "aborted").await;
                next_abort = Instant::now() + RESEND;
            } else if !unaborted.is_empty() && Instant::now() >= next_abort {
                unaborted = self.resend_abort(&test, unaborted).await;
                next_abort = Instant::now() + RESEND;
            }
            let (all_done, lost_now) = self.look_at_fleet(&test, start, judge_now);
            if !lost_now.is_empty() {
                unallocated = self.reallocate(&test, &lost_now).await;
                next_allocation = Instant::now() + RESEND;
            } else if !unallocated.is_empty() && !aborted_sent && Instant::now() >= next_allocation
            {
                unallocated = self.resend_allocation(&test, unallocated).await;
                next_allocation = Instant::now() + RESEND;
            }
            if all_done {
                break;
            }
            if Instant::now() > max_end {
                lock(&test)
                    .incidents
                    .push("some agents sent no final results before the hard deadline".into());
                break;
            }
        }
        self.finish_outputs(&test).await;
        self.seal(&test, start);
        self.broadcast_sealed(&test).await;
        tracing::info!(test = %id, "sealed");
    }

    /// Judges thresholds and notices lost agents; returns (all done, newly lost).
    pub(super) fn look_at_fleet(
        &self,
        test: &Arc<Mutex<Test>>,
        start: Instant,
        judge_now: bool,
    ) -> (bool, Vec<String>) {
        let mut t = lock(test);
        let elapsed = Instant::now().saturating_duration_since(start);
        if judge_now && !t.plan.thresholds.is_empty() {
            t.outcomes = judge::evaluate(&t.plan.thresholds, t.results.fleet(), elapsed);
            if judge::should_abort(&t.plan.thresholds, &t.outcomes, elapsed)
                && !t.abort.is_cancelled()
            {
                t.threshold_abort = true;
                t.incidents
                    .push("a threshold with abortOnFail failed: stopping the fleet".into());
                t.abort.cancel();
            }
        }
        // An adopted test first hears again from the agents that had
        // finished: given iterations, they would never run them.
        if t.adopted.is_some_and(|at| at.elapsed() < ADOPT_GRACE) {
            return (false, Vec::new());
        }
        let mut lost: Vec<String> = std::mem::take(&mut t.handover);
        for agent in &lost {
            t.results.agent_lost(agent);
        }
        let agents: Vec<String> = t.allocation.agents().map(str::to_owned).collect();
        for agent in agents {
            if !t.done.contains(&agent) && !t.lost.contains(&agent) && !(self.is_alive)(&agent) {
                lost.push(agent.clone());
                t.lost.insert(agent.clone());
                // Its intervals are no longer awaited before later ones count.
                t.results.agent_lost(&agent);
                if let Some(p) = t.progress.get_mut(&agent) {
                    p.state = "lost".into();
                }
            }
        }
        super::outputs::write_sealed(&mut t);
        let all_done = t
            .allocation
            .agents()
            .chain(t.lost.iter().map(String::as_str))
            .all(|a| t.done.contains(a) || t.lost.contains(a));
        (all_done, lost)
    }

    /// Gives the lost agents' shares to the survivors from the next second;
    /// returns the survivors that did not answer.
    pub(super) async fn reallocate(&self, test: &Arc<Mutex<Test>>, lost: &[String]) -> Vec<String> {
        let survivors = {
            let mut t = lock(test);
            let next = match t.allocation.without(lost) {
                Ok(a) => a,
                Err(e) => {
                    t.incidents.push(format!(
                        "lost {} and nobody is left to take over: {e}",
                        lost.join(", ")
                    ));
                    return Vec::new();
                }
            };
            t.incidents.push(format!(
                "lost agent(s) {}: survivors take over their share (allocation revision {})",
                lost.join(", "),
                next.revision
            ));
            for p in t.progress.values_mut() {
                if !lost.contains(&p.agent) && p.state != "dropped" {
                    p.share = next.fraction(&p.agent);
                }
            }
            // Iterations: what the lost agents had not done goes to those still running.
            // `None` when every other agent is done: nobody runs the iterations.
            let running = next
                .without(&t.done.iter().cloned().collect::<Vec<_>>())
                .ok();
            let Test {
                plan,
                allocation,
                results,
                extra_iterations,
                incidents,
                ..
            } = &mut *t;
            for agent in lost {
                incidents.extend(iterations::take_over(
                    plan,
                    allocation,
                    agent,
                    results.agent(agent),
                    running.as_ref(),
                    extra_iterations,
                ));
            }
            t.meta.allocation = serde_json::to_value(&next).unwrap_or_default();
            let survivors: Vec<String> = next.agents().map(str::to_owned).collect();
            t.allocation = next;
            survivors
        };
        self.send_allocation(test, survivors).await
    }

    /// Sends the current allocation again to those of `agents` that did not
    /// answer it and are still running: an agent that missed it would run
    /// its old share and leave the lost agents' share undone. Returns those
    /// that still did not answer.
    pub(super) async fn resend_allocation(
        &self,
        test: &Arc<Mutex<Test>>,
        agents: Vec<String>,
    ) -> Vec<String> {
        let revision = lock(test).allocation.revision;
        tracing::info!(test = %lock(test).meta.id, "sending allocation revision {revision} again to {}", agents.join(", "));
        self.send_allocation(test, agents).await
    }

    /// Sends the current allocation to those of `agents` still in it and
    /// running, effective [`REALLOC_LEAD`] from now; returns those that did
    /// not answer.
    async fn send_allocation(&self, test: &Arc<Mutex<Test>>, agents: Vec<String>) -> Vec<String> {
        let (msg, targets) = {
            let t = lock(test);
            let targets: Vec<(String, SocketAddr)> = agents
                .into_iter()
                .filter(|a| t.allocation.agents().any(|b| b == a))
                .filter(|a| !t.done.contains(a) && !t.lost.contains(a))
                .filter_map(|a| t.candidates.get(&a).map(|c| (a, c.quic)))
                .collect();
            let effective =
                self.clock.unix_ms() + u64::try_from(REALLOC_LEAD.as_millis()).unwrap_or(1000);
            let msg = Message::Reallocate {
                test_id: t.meta.id.clone(),
                allocation: t.allocation.clone(),
                effective_unix_ms: effective,
                extra_iterations: t.extra_iterations.clone(),
            };
            (protocol::encode(&msg, &[]), targets)
        };
        self.unanswered(msg, targets, Duration::from_secs(2)).await
    }

    /// Tells every agent of the test to stop; returns those that did not
    /// answer.
    pub(super) async fn broadcast_abort(
        &self,
        test: &Arc<Mutex<Test>>,
        reason: &str,
    ) -> Vec<String> {
        let agents: Vec<String> = lock(test).candidates.keys().cloned().collect();
        self.send_abort(test, reason, agents).await
    }

    /// Sends the abort again to those of `agents` that have neither
    /// finished nor been lost since; returns those that still did not
    /// answer.
    pub(super) async fn resend_abort(
        &self,
        test: &Arc<Mutex<Test>>,
        agents: Vec<String>,
    ) -> Vec<String> {
        let agents: Vec<String> = {
            let t = lock(test);
            agents
                .into_iter()
                .filter(|a| !t.done.contains(a) && !t.lost.contains(a))
                .collect()
        };
        if agents.is_empty() {
            return agents;
        }
        tracing::info!(test = %lock(test).meta.id, "sending the abort again to {}", agents.join(", "));
        self.send_abort(test, "aborted", agents).await
    }

    async fn send_abort(
        &self,
        test: &Arc<Mutex<Test>>,
        reason: &str,
        agents: Vec<String>,
    ) -> Vec<String> {
        let (msg, targets) = {
            let t = lock(test);
            let msg = Message::Abort {
                test_id: t.meta.id.clone(),
                reason: reason.to_owned(),
            };
            let targets: Vec<(String, SocketAddr)> = agents
                .into_iter()
                .filter_map(|a| t.candidates.get(&a).map(|c| (a, c.quic)))
                .collect();
            (protocol::encode(&msg, &[]), targets)
        };
        self.unanswered(msg, targets, Duration::from_millis(800))
            .await
    }

    /// Sends `msg` to every target at once; returns the agents whose
    /// answer did not come back within `timeout`.
    async fn unanswered(
        &self,
        msg: bytes::Bytes,
        targets: Vec<(String, SocketAddr)>,
        timeout: Duration,
    ) -> Vec<String> {
        let answers = futures::future::join_all(targets.into_iter().map(|(agent, addr)| {
            let msg = msg.clone();
            async move { (agent, self.call(addr, msg, timeout).await) }
        }))
        .await;
        answers
            .into_iter()
            .filter_map(|(agent, answer)| answer.is_err().then_some(agent))
            .collect()
    }
}
