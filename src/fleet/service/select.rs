//! Which live members a submitted test may run on: the trusted, compatible,
//! idle members its selector picks, less those that refused mutual TLS,
//! with clocks close enough for the barrier; and whether the plan fits
//! them. An agent still publishing a test that is already over (its `Idle`
//! has not gossiped here yet) is waited for, briefly, instead of refusing
//! the submit as busy; so is one whose test this agent ran a share of that
//! has stopped (the verdict reaches participants just after the seal).

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::{ClockPolicy, Refusal, Service};
use crate::fleet::keys::AgentState;
use crate::fleet::selector::{self, Candidate, Requirement};
use crate::fleet::transport::{ClockVerdict, describe_clock, judge_clock};
use crate::plan::Plan;
use crate::plan::admission::{self, Demand, Limits};
use crate::sync::lock;

/// How many of this agent's gossip intervals an agent finishing an ended
/// test may take to say it is idle before the submit is refused...
const SETTLE_INTERVALS: u32 = 6;

/// ...and at least this long, since peers may gossip more slowly.
const SETTLE_AT_LEAST: Duration = Duration::from_secs(5);

/// The agents a submitted test asks for.
#[derive(Debug, Clone, Copy)]
pub struct Want<'a> {
    /// Equality labels every selected agent has.
    pub selector: &'a BTreeMap<String, String>,
    pub match_expressions: &'a [Requirement],
    /// Fewer selected agents refuse the test.
    pub min_agents: usize,
}

impl Want<'_> {
    fn describe(&self) -> String {
        selector::describe(self.selector, self.match_expressions)
    }
}

impl Service {
    /// The members `want` selects that may take part, or why the test
    /// cannot start (this agent draining, busy members, too few proven ones,
    /// clocks off by more than the tolerance).
    pub async fn select(&self, want: &Want<'_>) -> Result<Vec<Candidate>, Refusal> {
        if self.is_draining() {
            return Err(Refusal::Unavailable(format!(
                "agent {} is draining; submit to another agent",
                self.me
            )));
        }
        let (mut candidates, unproven) = self.settled(want).await?;
        self.exclude_refused(&mut candidates, want.min_agents, &unproven)?;
        self.check_clocks(&candidates)?;
        if candidates.len() < want.min_agents.max(1) {
            return Err(Refusal::Unprocessable(format!(
                "{} agent(s) match the selector, the test needs at least {} (selector {})",
                candidates.len(),
                want.min_agents.max(1),
                want.describe()
            )));
        }
        Ok(candidates)
    }

    /// Refuses a plan that asks for more than the candidates can hold,
    /// before its setup runs and before anything is allocated for it. Only
    /// this agent's limits are known here: they are scaled by the
    /// candidates' capacity weights, and each agent checks its exact share
    /// against its own limits again at prepare.
    pub async fn admit(&self, plan: &Plan, candidates: &[Candidate]) -> Result<(), Refusal> {
        if candidates.is_empty() {
            return Ok(());
        }
        let weights: Vec<f64> = candidates.iter().map(|c| c.capacity).collect();
        let this_weight = self.roster.info().await.capacity;
        let limits = Limits::fleet(self.policy.limits.clone(), &self.me, this_weight, &weights);
        admission::check(&Demand::of(plan), &limits).map_err(|refusal| {
            Refusal::Unprocessable(format!(
                "the plan asks for more than the fleet can run, nothing was started: {refusal}"
            ))
        })
    }

    /// The selected idle members and those left out as unproven, or
    /// `Conflict` naming the busy ones. Busy members whose test this agent
    /// knows has ended are given up to [`SETTLE_INTERVALS`] gossip intervals
    /// (at least [`SETTLE_AT_LEAST`]) to publish `Idle`.
    async fn settled(&self, want: &Want<'_>) -> Result<(Vec<Candidate>, Vec<String>), Refusal> {
        let interval = self.policy.gossip_interval;
        let deadline = Instant::now() + (interval * SETTLE_INTERVALS).max(SETTLE_AT_LEAST);
        loop {
            let scan = self.scan(want).await;
            if scan.busy.is_empty() {
                return Ok((scan.candidates, scan.unproven));
            }
            let settling = scan.busy.iter().all(|(_, test)| self.has_ended(test));
            if !settling || Instant::now() >= deadline {
                let busy: Vec<String> = scan
                    .busy
                    .iter()
                    .map(|(node, test)| format!("{node} runs test {test}"))
                    .collect();
                return Err(Refusal::Conflict(format!(
                    "agents are busy ({}); Volley runs one test at a time on an agent: wait \
                     for it to end or abort it (DELETE /v1/tests/ID), then submit again",
                    busy.join("; ")
                )));
            }
            tokio::time::sleep(poll_step(interval)).await;
        }
    }

    async fn scan(&self, want: &Want<'_>) -> Scan {
        // Only members whose QUIC certificate proved their gossiped node id.
        let (members, unproven) = self.trusted_members().await;
        let mut scan = Scan {
            candidates: Vec::new(),
            busy: Vec::new(),
            unproven,
        };
        for m in &members {
            let Some(info) = m.usable() else { continue };
            if !m.compatible {
                continue;
            }
            let labels = info.labels.as_map();
            if !selector::selects(want.selector, want.match_expressions, labels, &m.node_id) {
                continue;
            }
            match info.state {
                AgentState::Idle => scan.candidates.push(Candidate {
                    node_id: m.node_id.clone(),
                    quic: info.quic,
                    capacity: info.capacity,
                    labels: labels.clone(),
                }),
                AgentState::Draining => {}
                _ => scan.busy.push((
                    m.node_id.clone(),
                    info.test.clone().unwrap_or_else(|| "?".to_owned()),
                )),
            }
        }
        scan
    }

    /// Whether `test` is over, or ending, as far as this agent knows: sealed
    /// or ended here, as its origin or as a participant, or this agent's own
    /// load for it stopped. The origin seals once every share is done and
    /// only then sends each agent the verdict, so a submit that follows the
    /// seal through a participant may come before the verdict does.
    fn has_ended(&self, test: &str) -> bool {
        if let Some(s) = self.origin.snapshot(test) {
            return s.meta.phase.is_terminal();
        }
        if self.participant.share_stopped(test) {
            return true;
        }
        if self.participant.current().is_some_and(|(id, _)| id == test) {
            return false;
        }
        self.store
            .as_ref()
            .is_some_and(|s| s.meta(test).is_ok_and(|meta| meta.phase.is_terminal()))
    }

    /// Leaves out candidates that refused mutual TLS at the last contact:
    /// they would be dropped at prepare anyway. Refuses the test when that
    /// leaves fewer than `min_agents`, naming them and why.
    fn exclude_refused(
        &self,
        candidates: &mut Vec<Candidate>,
        min_agents: usize,
        unproven: &[String],
    ) -> Result<(), Refusal> {
        let refused = lock(&self.refused);
        let mut left_out = unproven.to_vec();
        candidates.retain(|c| match refused.get(&c.node_id) {
            Some(why) => {
                left_out.push(format!("{} ({why})", c.node_id));
                false
            }
            None => true,
        });
        if left_out.is_empty() {
            return Ok(());
        }
        tracing::warn!(
            "left out of the test, identity not proved over mutual TLS: {}",
            left_out.join("; ")
        );
        if candidates.len() < min_agents.max(1) {
            return Err(Refusal::Unprocessable(format!(
                "{} agent(s) can take part, the test needs at least {}: {} could not prove \
                 their identity over mutual TLS; give every agent a certificate of this \
                 fleet's CA for its own node id",
                candidates.len(),
                min_agents.max(1),
                left_out.join(", ")
            )));
        }
        Ok(())
    }

    /// The barrier is only as good as the clocks: refuse (or warn, by
    /// policy) when a candidate's clock is provably off by more than the
    /// tolerance (its measured offset beyond it by more than the error
    /// bound, half the round trip), and warn when it may be.
    fn check_clocks(&self, candidates: &[Candidate]) -> Result<(), Refusal> {
        let tolerance = self.policy.clock_tolerance;
        let (mut beyond, mut unproven, mut loose) = (Vec::new(), Vec::new(), false);
        {
            let clocks = lock(&self.clocks);
            for c in candidates.iter().filter(|c| c.node_id != self.me) {
                let Some(s) = clocks.get(&c.node_id) else {
                    continue;
                };
                match judge_clock(s, tolerance) {
                    ClockVerdict::Within => {}
                    ClockVerdict::Unproven { loose: l } => {
                        loose |= l;
                        unproven.push(describe_clock(&c.node_id, s));
                    }
                    ClockVerdict::Beyond => beyond.push(describe_clock(&c.node_id, s)),
                }
            }
        }
        let tolerance_ms = tolerance.as_millis();
        if !unproven.is_empty() {
            tracing::warn!(
                "clock offsets that may exceed the {tolerance_ms} ms tolerance (offset ± error \
                 bound): {}; {}",
                unproven.join(", "),
                if loose {
                    "an error bound above the tolerance means the start spread is only promised \
                     within that bound"
                } else {
                    "check that the clocks are synchronised (NTP/chrony)"
                }
            );
        }
        if beyond.is_empty() {
            return Ok(());
        }
        let message = format!(
            "clock offsets above the {tolerance_ms} ms tolerance by more than their error bound \
             (offset ± half the round trip): {}; synchronise the clocks (NTP/chrony) or set \
             VOLLEY_CLOCK_POLICY=warn",
            beyond.join(", ")
        );
        match self.policy.clock_policy {
            ClockPolicy::Refuse => Err(Refusal::Unprocessable(message)),
            ClockPolicy::Warn => {
                tracing::warn!("{message}");
                Ok(())
            }
        }
    }
}

struct Scan {
    candidates: Vec<Candidate>,
    /// Busy members and the test each publishes.
    busy: Vec<(String, String)>,
    unproven: Vec<String>,
}

/// How often the view is looked at again while agents settle.
fn poll_step(gossip_interval: Duration) -> Duration {
    (gossip_interval / 4).clamp(Duration::from_millis(10), Duration::from_millis(250))
}
