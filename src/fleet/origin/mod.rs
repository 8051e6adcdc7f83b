//! The origin: the agent that accepted a test coordinates it.
//!
//! It snapshots the matching members, splits the load by capacity, picks a
//! wall-clock start, prepares every agent (plan over mutual TLS, digest
//! checked), commits the final allocation (agents that were not ready are
//! dropped before the start), merges every agent's intervals, judges the
//! thresholds on the fleet-wide numbers, reallocates a lost agent's share
//! to the survivors, and seals the summary. When the origin dies, a
//! successor adopts the test (`adopt`) and coordinates the rest of it.
//!
//! This file holds the state and the API-facing calls; `start` prepares and
//! commits, `supervise` runs a started test to its end (`iterations`: what
//! a lost agent's iteration-based scenarios still owe), `seal` ends it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

mod adopt;
mod iterations;
mod outputs;
mod seal;
mod start;
mod supervise;

pub use outputs::FleetOutputs;
pub use seal::requests_and_failures;
use seal::start_spread;

use super::allocation::{Allocation, AllocationError};
use super::merge::combine::Combined;
use super::merge::{FleetResults, Ingest};
use super::protocol::{self, Message, PlanBundle, Response};
pub use super::selector::Candidate;
use super::store::{Store, TestMeta, TestPhase, results_deadline_ms};
use super::transport::Transport;
use crate::clock::WallClock;
use crate::metrics::snapshot::Snapshot;
use crate::metrics::{Summary, ThresholdOutcome};
use crate::plan::Plan;
use crate::sync::lock;

/// Agents must be prepared this long before the start, or they are dropped.
const COMMIT_MARGIN: Duration = Duration::from_millis(400);
/// How often the origin looks at the fleet while a test runs (lost agents
/// are noticed within this much of gossip declaring them dead).
const TICK: Duration = Duration::from_millis(250);
/// Thresholds are judged on the fleet-wide numbers this often (k6: 2 s).
const JUDGE_EVERY: Duration = Duration::from_secs(2);
/// A reallocation takes effect this long after it is decided, so that
/// every survivor has it before it applies.
const REALLOC_LEAD: Duration = Duration::from_millis(300);
/// An adopted test hands out the lost agents' shares this long after the
/// takeover: agents that had already finished their share send their `Done`
/// again first (they watch the coordinator as often as the others), so no
/// iterations go to an agent that will not run them.
const ADOPT_GRACE: Duration = Duration::from_secs(1);
/// An agent that did not answer an abort or a reallocation (cut off for a
/// moment, its answer lost) is sent it again this often until it answers,
/// finishes or is lost: one that missed the abort would run its share to
/// the end, one that missed the reallocation its old share.
const RESEND: Duration = Duration::from_secs(1);
/// After the plan's hard end, wait this long for the last results.
const RESULTS_GRACE: Duration = Duration::from_secs(10);

/// A submission, validated by the caller (the plan already loaded).
#[derive(Debug)]
pub struct Submission {
    pub name: String,
    pub bundle: PlanBundle,
    pub plan: Arc<Plan>,
    pub min_agents: usize,
    pub lead: Duration,
    /// Where the fleet's merged intervals go, opened by the caller.
    pub outputs: FleetOutputs,
}

/// Why a submission was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("{found} agent(s) match the selector, the test needs at least {needed}")]
    TooFewAgents { found: usize, needed: usize },
    #[error("{0}")]
    Allocation(#[from] AllocationError),
}

/// What the API shows of one agent in a test.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentProgress {
    pub agent: String,
    pub region: Option<String>,
    /// `preparing`, `ready`, `running`, `done`, `lost`, `dropped`.
    pub state: String,
    pub share: Option<String>,
    pub started_unix_us: Option<u64>,
    pub requests: u64,
    pub failed: u64,
    pub rps: f64,
    pub intervals: u64,
    /// The relay that brought the agent's latest interval (tree merging).
    pub relayed_by: Option<String>,
}

impl AgentProgress {
    /// An agent that is still preparing, with no results yet.
    fn new(agent: &str, labels: &BTreeMap<String, String>) -> AgentProgress {
        AgentProgress {
            agent: agent.to_owned(),
            region: labels.get("region").cloned(),
            state: "preparing".into(),
            share: None,
            started_unix_us: None,
            requests: 0,
            failed: 0,
            rps: 0.0,
            intervals: 0,
            relayed_by: None,
        }
    }
}

/// A point-in-time view of a test for the API.
#[derive(Debug, Clone)]
pub struct TestSnapshot {
    pub meta: TestMeta,
    pub revision: u32,
    pub agents: Vec<AgentProgress>,
    pub live: Option<super::merge::LiveView>,
    /// The latest sealed intervals while the test runs, oldest first.
    pub recent: Vec<super::merge::IntervalPoint>,
    pub outcomes: Vec<ThresholdOutcome>,
    pub incidents: Vec<String>,
    pub start_spread: Option<Duration>,
    pub elapsed: Duration,
}

/// A sealed test's results.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub summary: Summary,
    pub text: String,
    pub export: serde_json::Value,
}

struct Test {
    meta: TestMeta,
    plan: Arc<Plan>,
    bundle: PlanBundle,
    min_agents: usize,
    allocation: Allocation,
    candidates: BTreeMap<String, Candidate>,
    progress: BTreeMap<String, AgentProgress>,
    done: BTreeSet<String>,
    lost: BTreeSet<String>,
    /// Agents that drained mid-test; their share goes to the others.
    handover: Vec<String>,
    results: FleetResults,
    outcomes: Vec<ThresholdOutcome>,
    threshold_abort: bool,
    incidents: Vec<String>,
    abort: CancellationToken,
    sealed: Option<Sealed>,
    /// Iterations of lost agents taken over by the others.
    extra_iterations: iterations::Extra,
    /// The test's outputs, until they are closed at the end.
    outputs: Vec<Box<dyn crate::outputs::IntervalOutput>>,
    /// What the outputs said when they were closed, for the summary.
    output_notes: Vec<String>,
    /// Adopted without a majority of the test's agents live: why the
    /// summary is partial ([`TestMeta::partial`]).
    partial: Option<String>,
    /// When this agent took the test over, if it did.
    adopted: Option<tokio::time::Instant>,
}

impl Test {
    /// A test about to start (or just adopted): no results, no incidents yet.
    fn new(
        meta: TestMeta,
        plan: Arc<Plan>,
        bundle: PlanBundle,
        allocation: Allocation,
        candidates: BTreeMap<String, Candidate>,
        progress: BTreeMap<String, AgentProgress>,
        labels: &[(String, BTreeMap<String, String>)],
    ) -> Test {
        Test {
            meta,
            plan,
            bundle,
            min_agents: 1,
            allocation,
            candidates,
            progress,
            done: BTreeSet::new(),
            lost: BTreeSet::new(),
            handover: Vec::new(),
            results: FleetResults::new(labels),
            outcomes: Vec::new(),
            threshold_abort: false,
            incidents: Vec::new(),
            abort: CancellationToken::new(),
            sealed: None,
            extra_iterations: iterations::Extra::new(),
            outputs: Vec::new(),
            output_notes: Vec::new(),
            partial: None,
            adopted: None,
        }
    }
}

/// The coordinator of every test this agent accepted.
pub struct Origin {
    me: String,
    my_quic: SocketAddr,
    transport: Arc<dyn Transport>,
    store: Option<Arc<Store>>,
    tests: Mutex<BTreeMap<String, Arc<Mutex<Test>>>>,
    /// Says whether a node id is still a live member (gossip).
    is_alive: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    /// This agent's wall clock (its transport's): start instants and
    /// deadlines are read on it.
    clock: WallClock,
    /// Cancelled when the agent halts: every test stops being coordinated.
    halted: CancellationToken,
}

impl Origin {
    pub fn new(
        me: String,
        my_quic: SocketAddr,
        transport: Arc<dyn Transport>,
        store: Option<Arc<Store>>,
        is_alive: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    ) -> Arc<Origin> {
        Arc::new(Origin {
            me,
            my_quic,
            transport: transport.clone(),
            store,
            tests: Mutex::new(BTreeMap::new()),
            is_alive,
            clock: transport.wall_clock(),
            halted: CancellationToken::new(),
        })
    }

    /// Stops coordinating every test at once, sealing nothing and telling
    /// no one: what a process that dies does (in-process fleets: the
    /// simulator). Nothing is adopted afterwards.
    pub fn halt(&self) {
        self.halted.cancel();
    }

    /// Accepts a test: allocation, start instant, and the coordinating task.
    pub fn submit(
        self: &Arc<Self>,
        sub: Submission,
        candidates: Vec<Candidate>,
    ) -> Result<(TestMeta, Allocation), SubmitError> {
        if candidates.len() < sub.min_agents.max(1) {
            return Err(SubmitError::TooFewAgents {
                found: candidates.len(),
                needed: sub.min_agents.max(1),
            });
        }
        let weights: Vec<(String, f64)> = candidates
            .iter()
            .map(|c| (c.node_id.clone(), c.capacity))
            .collect();
        let allocation = Allocation::new(1, &weights)?;
        let now = self.clock.unix_ms();
        let id = new_test_id(now);
        let start = now + u64::try_from(sub.lead.as_millis()).unwrap_or(u64::MAX);
        let meta = TestMeta {
            id: id.clone(),
            name: sub.name.clone(),
            origin: self.me.clone(),
            submitted_unix_ms: now,
            started_unix_ms: Some(start),
            ended_unix_ms: None,
            phase: TestPhase::Pending,
            allocation: serde_json::to_value(&allocation).unwrap_or_default(),
            passed: None,
            agents: allocation.agents().map(str::to_owned).collect(),
            deadline_unix_ms: Some(results_deadline_ms(start, sub.plan.max_duration())),
            note: None,
            partial: false,
        };
        let labels: Vec<(String, BTreeMap<String, String>)> = candidates
            .iter()
            .map(|c| (c.node_id.clone(), c.labels.clone()))
            .collect();
        let progress = candidates
            .iter()
            .map(|c| {
                let p = AgentProgress {
                    share: allocation.fraction(&c.node_id),
                    ..AgentProgress::new(&c.node_id, &c.labels)
                };
                (c.node_id.clone(), p)
            })
            .collect();
        if let Some(store) = &self.store {
            if let Err(e) = store.create_test(&meta) {
                tracing::warn!(test = %id, "cannot record the test on disk: {e}");
            }
            let _ = store.put_bundle(&id, &crate::fleet::redact::bundle_at_rest(&sub.bundle));
        }
        let with_outputs = !sub.outputs.outputs.is_empty();
        let mut test = Test {
            min_agents: sub.min_agents.max(1),
            outputs: sub.outputs.outputs,
            ..Test::new(
                meta.clone(),
                sub.plan,
                sub.bundle,
                allocation.clone(),
                candidates
                    .into_iter()
                    .map(|c| (c.node_id.clone(), c))
                    .collect(),
                progress,
                &labels,
            )
        };
        if with_outputs {
            test.results = FleetResults::new(&labels).with_outputs(sub.outputs.by);
        }
        let test = Arc::new(Mutex::new(test));
        lock(&self.tests).insert(id, test.clone());
        tokio::spawn(self.clone().coordinate(test));
        Ok((meta, allocation))
    }

    /// Results from a participant.
    pub fn on_message(&self, msg: Message, payload: Bytes) -> Response {
        match msg {
            Message::Interval {
                test_id,
                agent,
                seq,
                ..
            } => {
                let Some(test) = self.test(&test_id) else {
                    return self.unknown(test_id);
                };
                let snapshot = match Snapshot::decode(&payload) {
                    Ok(s) => s,
                    Err(e) => {
                        return err(format!("interval {seq} of {agent} is corrupt: {e}"));
                    }
                };
                let mut t = lock(&test);
                match t.results.ingest(&agent, seq, snapshot) {
                    Ingest::UnknownAgent => {
                        err(format!("agent {agent} is not part of test {test_id}"))
                    }
                    _ => {
                        outputs::write_sealed(&mut t);
                        if let Some(p) = t.progress.get_mut(&agent) {
                            p.intervals += 1;
                            p.relayed_by = None;
                            if p.state == "ready" || p.state == "preparing" {
                                p.state = "running".into();
                            }
                        }
                        Response::Ok
                    }
                }
            }
            Message::Merged {
                test_id,
                relay,
                seq,
                agents,
                digests,
                ..
            } => {
                let Some(test) = self.test(&test_id) else {
                    return self.unknown(test_id);
                };
                let combined = match Combined::decode(seq, &agents, &digests, &payload) {
                    Ok(c) => c,
                    Err(e) => {
                        return err(format!("interval {seq} merged by {relay} is corrupt: {e}"));
                    }
                };
                let mut t = lock(&test);
                match t.results.ingest_merged(combined) {
                    Ingest::UnknownAgent => err(format!(
                        "interval {seq} merged by {relay} covers an agent that is not part of test {test_id}"
                    )),
                    Ingest::Overlap(agents) => Response::Overlap { agents },
                    Ingest::Invalid(e) => {
                        err(format!("interval {seq} merged by {relay} is invalid: {e}"))
                    }
                    _ => {
                        outputs::write_sealed(&mut t);
                        for agent in &agents {
                            if let Some(p) = t.progress.get_mut(agent) {
                                p.intervals += 1;
                                p.relayed_by = Some(relay.clone());
                                if p.state == "ready" || p.state == "preparing" {
                                    p.state = "running".into();
                                }
                            }
                        }
                        Response::Ok
                    }
                }
            }
            Message::Done {
                test_id,
                agent,
                started_unix_us,
                end,
                intervals,
                saturated,
            } => {
                let Some(test) = self.test(&test_id) else {
                    return self.unknown(test_id);
                };
                let mut t = lock(&test);
                t.done.insert(agent.clone());
                t.results.agent_finished(&agent, intervals);
                if let Some(p) = t.progress.get_mut(&agent) {
                    p.state = "done".into();
                    if started_unix_us > 0 {
                        p.started_unix_us = Some(started_unix_us);
                    }
                }
                if end.starts_with("failed") || end == "orphaned" {
                    t.incidents.push(format!("agent {agent} ended: {end}"));
                }
                if let Some(warning) = saturated {
                    t.incidents.push(format!("agent {agent}: {warning}"));
                }
                if end == protocol::DRAINED && !t.abort.is_cancelled() {
                    // Its node is draining: the others take over its share.
                    t.handover.push(agent.clone());
                }
                Response::Ok
            }
            Message::Abort { test_id, reason } => match self.abort(&test_id, &reason) {
                Some(false) => Response::Ok,
                Some(true) => {
                    let (aborted, at_unix_ms) = self
                        .ending(&test_id)
                        .unwrap_or((false, self.clock.unix_ms()));
                    Response::AlreadyOver {
                        test_id,
                        aborted,
                        at_unix_ms,
                    }
                }
                None => err(format!("no test {test_id} on origin {}", self.me)),
            },
            _ => err("not an origin message".into()),
        }
    }

    /// Aborts a test of this origin; `Some(already_over)` if the test exists.
    pub fn abort(&self, test_id: &str, reason: &str) -> Option<bool> {
        let test = self.test(test_id)?;
        let mut t = lock(&test);
        let over = t.meta.phase.is_terminal() || t.abort.is_cancelled();
        if !over {
            t.incidents.push(format!("aborted: {reason}"));
            t.abort.cancel();
        }
        Some(over)
    }

    /// How a test that is over ended: `(aborted, when)`; `when` is now while it winds down.
    pub fn ending(&self, test_id: &str) -> Option<(bool, u64)> {
        let test = self.test(test_id)?;
        let t = lock(&test);
        let aborted = t.abort.is_cancelled() || t.meta.phase == TestPhase::Aborted;
        Some((
            aborted,
            t.meta.ended_unix_ms.unwrap_or_else(|| self.clock.unix_ms()),
        ))
    }

    /// Tests this origin coordinates (live and sealed since it started).
    pub fn ids(&self) -> Vec<String> {
        lock(&self.tests).keys().cloned().collect()
    }

    pub fn snapshot(&self, test_id: &str) -> Option<TestSnapshot> {
        let test = self.test(test_id)?;
        let t = lock(&test);
        let elapsed = t.results.elapsed();
        let mut agents: Vec<AgentProgress> = t.progress.values().cloned().collect();
        for a in &mut agents {
            if let Some(agg) = t.results.agent(&a.agent) {
                let (requests, failed) = requests_and_failures(agg);
                a.requests = requests;
                a.failed = failed;
                let secs = elapsed.as_secs_f64();
                a.rps = if secs > 0.0 {
                    requests as f64 / secs
                } else {
                    0.0
                };
            }
        }
        Some(TestSnapshot {
            meta: t.meta.clone(),
            revision: t.allocation.revision,
            start_spread: start_spread(&agents),
            agents,
            live: (!t.meta.phase.is_terminal()).then(|| t.results.live(1)),
            recent: if t.meta.phase.is_terminal() {
                Vec::new()
            } else {
                t.results.recent()
            },
            outcomes: t.outcomes.clone(),
            incidents: t.incidents.clone(),
            elapsed,
        })
    }

    /// The origin's own summary `meta` was sealed elsewhere: a partial one
    /// this agent holds for the same test is forgotten (the data directory
    /// records the origin's, see `participant::seal_rule`).
    pub fn superseded(&self, meta: &TestMeta) {
        if meta.partial {
            return;
        }
        let Some(test) = self.test(&meta.id) else {
            return;
        };
        if lock(&test).partial.is_none() {
            return;
        }
        tracing::warn!(test = %meta.id, origin = %meta.origin,
            "the origin sealed the test after all: its summary replaces the partial one");
        lock(&self.tests).remove(&meta.id);
    }

    pub fn sealed(&self, test_id: &str) -> Option<Sealed> {
        let test = self.test(test_id)?;
        let t = lock(&test);
        t.sealed.clone()
    }

    fn unknown(&self, test_id: String) -> Response {
        Response::UnknownTest {
            message: format!("agent {} does not coordinate test {test_id}", self.me),
            test_id,
        }
    }

    fn test(&self, id: &str) -> Option<Arc<Mutex<Test>>> {
        lock(&self.tests).get(id).cloned()
    }

    async fn coordinate(self: Arc<Self>, test: Arc<Mutex<Test>>) {
        let start_ms = lock(&test)
            .meta
            .started_unix_ms
            .unwrap_or_else(|| self.clock.unix_ms());
        let start = self.clock.instant_at(start_ms);
        if let Err(reason) = self.prepare_and_commit(&test, start, start_ms).await {
            let mut unaborted = self.fail(&test, TestPhase::Error, reason).await;
            // An agent that had the commit but missed the abort would run its
            // share for no one: keep telling it, until the share's end at most.
            let until =
                tokio::time::Instant::now() + lock(&test).plan.max_duration() + RESULTS_GRACE;
            while !unaborted.is_empty() && tokio::time::Instant::now() < until {
                tokio::select! {
                    _ = tokio::time::sleep(RESEND) => {}
                    () = self.halted.cancelled() => return,
                }
                unaborted = self.resend_abort(&test, unaborted).await;
            }
            return;
        }
        self.supervise(test, start).await;
    }

    /// Marks a test that could not start and tells its agents; returns
    /// those that did not answer.
    async fn fail(&self, test: &Arc<Mutex<Test>>, phase: TestPhase, reason: String) -> Vec<String> {
        tracing::warn!("test failed to start: {reason}");
        {
            let mut t = lock(test);
            t.incidents.push(reason);
            t.meta.phase = phase;
            t.meta.ended_unix_ms = Some(self.clock.unix_ms());
            t.meta.passed = Some(false);
        }
        let unanswered = self.broadcast_abort(test, "the test could not start").await;
        self.persist_meta(test);
        unanswered
    }

    fn set_phase(&self, test: &Arc<Mutex<Test>>, phase: TestPhase) {
        lock(test).meta.phase = phase;
        self.persist_meta(test);
    }

    fn persist_meta(&self, test: &Arc<Mutex<Test>>) {
        if let Some(store) = &self.store {
            let meta = lock(test).meta.clone();
            if let Err(e) = store.update_meta(&meta) {
                tracing::warn!(test = %meta.id, "cannot update the test on disk: {e}");
            }
        }
    }

    async fn call(
        &self,
        addr: SocketAddr,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Response, String> {
        let reply = self
            .transport
            .request(addr, body, timeout)
            .await
            .map_err(|e| e.to_string())?;
        protocol::decode::<Response>(&reply)
            .map(|(r, _)| r)
            .map_err(|e| e.to_string())
    }
}

/// A sortable, unique-enough test id: `t-<ms in base 36>-<random>`.
fn new_test_id(now_ms: u64) -> String {
    format!("t-{}-{:04x}", base36(now_ms), fastrand::u16(..))
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

fn err(message: String) -> Response {
    Response::Error { message }
}
