//! The participant side of a fleet test: every agent that runs a share.
//!
//! Prepare (load the plan from the bundle, check the digest, wait), Commit
//! (start the engine at the announced instant with this agent's share),
//! stream every interval to the coordinator (`deliver`), Reallocate (take
//! over a lost agent's arrivals), Abort, and Done. When the coordinator
//! dies, a successor takes the test over ([`succession`]). An agent runs one
//! test at a time. Whatever happens to the network, the engine's own hard
//! deadline ends the load; an agent that cannot deliver results for
//! `orphan_timeout` stops its load too. Its [`Guard`] refuses a share
//! beyond this agent's own limits at prepare and commit, and stops a
//! running share whose memory passes the ceiling ([`guard`]).

mod bundle;
mod deliver;
pub mod guard;
mod mirror;
mod records;
pub mod relay;
mod run;
pub mod succession;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use self::bundle::{BundleError, load_bundle, load_bundle_with_script};
pub use self::guard::Guard;
pub use self::records::{SealRule, seal_rule};
use self::run::RunJob;
pub use self::succession::{Orphan, Succession};
use super::allocation::Allocation;
use super::protocol::{self, Message, PlanBundle, Response};
use super::store::{Store, StoreError, TestMeta, TestPhase, results_deadline_ms};
use super::transport::Transport;
use crate::clock::WallClock;
use crate::engine::{Realloc, RunOptions};
use crate::plan::Plan;
use crate::sync::lock;

/// A prepared test not committed this long after its start never starts
/// here (the origin dropped this agent, or died before committing).
const UNCOMMITTED_GRACE: Duration = Duration::from_secs(2);
/// How long forwarding a script's abort to the coordinator may take per try.
const ABORT_SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// What the rest of the agent learns about the participant's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activity {
    Idle,
    Preparing { test_id: String },
    Running { test_id: String },
}

/// This agent's own share of its latest test, since the share started, for
/// `/metrics`: kept after the test ends (so the last scrape sees the final
/// totals) until the next test's first interval replaces it.
#[derive(Debug, Clone)]
pub struct ShareTotals {
    pub test_id: String,
    /// Whether the share still runs.
    pub running: bool,
    /// VUs at work at the last interval.
    pub vus: u64,
    pub scenarios: BTreeMap<String, crate::metrics::exposition::ScenarioTotals>,
}

/// The agent that coordinates a test: its origin, or the origin's successor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coordinator {
    pub node: String,
    /// Its QUIC address, where results go.
    pub addr: SocketAddr,
}

/// A test this agent prepared or runs.
struct Active {
    test_id: String,
    name: String,
    coordinator: watch::Sender<Coordinator>,
    /// Shared: the watch on the coordinator reads it every tick, uses it once.
    bundle: Arc<PlanBundle>,
    plan: Arc<Plan>,
    /// The script the VUs run, when the plan comes from one.
    script: Option<crate::script::Script>,
    /// The latest allocation received (Commit, then Reallocate).
    allocation: Allocation,
    start_unix_ms: u64,
    stop: CancellationToken,
    realloc_tx: watch::Sender<Option<Realloc>>,
    running: bool,
}

/// What [`succession`] needs to know of the running test.
struct Coordination {
    coordinator: Coordinator,
    name: String,
    bundle: Arc<PlanBundle>,
    plan: Arc<Plan>,
    allocation: Allocation,
    start_unix_ms: u64,
}

/// The participant: shared by the transport handler and the agent.
pub struct Participant {
    me: String,
    transport: Arc<dyn Transport>,
    store: Option<Arc<Store>>,
    orphan_timeout: Duration,
    active: Mutex<Option<Active>>,
    activity_tx: watch::Sender<Activity>,
    /// Set when the agent drains: its running share ends as `drained`, which
    /// tells the origin to hand it to the others.
    draining: std::sync::atomic::AtomicBool,
    /// Set when the agent halts (see [`Participant::halt`]).
    halted: std::sync::atomic::AtomicBool,
    /// How to take a test over when its coordinator dies; without it, an
    /// orphaned test stops after `orphan_timeout`.
    succession: OnceLock<Arc<dyn Succession>>,
    /// This agent's limits and memory ceiling (set once at start); without
    /// them shares are not checked here (in-process tests).
    guard: OnceLock<Guard>,
    /// This agent's share of its latest test (see [`ShareTotals`]).
    share: Mutex<Option<ShareTotals>>,
    /// This agent's `region` label: the `region` tag of a plan with
    /// `targets` (set once; without it, `local`).
    region: OnceLock<String>,
    /// The merge tree of the latest committed test, if it has one: kept
    /// after this agent's share ends, for children still reporting.
    relay: Mutex<Option<Arc<relay::Relay>>>,
    /// This agent's wall clock (its transport's): start instants and
    /// deadlines are read on it.
    clock: WallClock,
    /// Tests whose share ended here but whose summary is not sealed yet:
    /// their coordinator is still watched, and if it dies, their intervals
    /// and `Done` go again to its successor (or this agent takes over).
    /// Kept until the sealed summary arrives or the results deadline.
    lingering: Mutex<BTreeMap<String, Active>>,
}

impl Participant {
    pub fn new(
        me: String,
        transport: Arc<dyn Transport>,
        store: Option<Arc<Store>>,
        orphan_timeout: Duration,
    ) -> Arc<Participant> {
        let (activity_tx, _) = watch::channel(Activity::Idle);
        Arc::new(Participant {
            me,
            clock: transport.wall_clock(),
            transport,
            store,
            orphan_timeout,
            active: Mutex::new(None),
            activity_tx,
            draining: std::sync::atomic::AtomicBool::new(false),
            halted: std::sync::atomic::AtomicBool::new(false),
            succession: OnceLock::new(),
            guard: OnceLock::new(),
            share: Mutex::new(None),
            region: OnceLock::new(),
            relay: Mutex::new(None),
            lingering: Mutex::new(BTreeMap::new()),
        })
    }

    /// Checks every share against this agent's limits and watches its
    /// memory while one runs (set once).
    pub fn set_guard(&self, guard: Guard) {
        let _ = self.guard.set(guard);
    }

    /// The region this agent sends from (its `region` label), set once.
    pub fn set_region(&self, region: String) {
        let _ = self.region.set(region);
    }

    /// Lets this agent take over tests whose coordinator died (set once).
    pub fn set_succession(&self, succession: Arc<dyn Succession>) {
        let _ = self.succession.set(succession);
    }

    /// Changes of what this agent is doing (for gossip and `/readyz`).
    pub fn activity(&self) -> watch::Receiver<Activity> {
        self.activity_tx.subscribe()
    }

    /// Handles a test message addressed to this agent as a participant.
    pub fn handle(self: &Arc<Self>, msg: Message) -> Response {
        if self.halted.load(std::sync::atomic::Ordering::SeqCst) {
            return Response::Error {
                message: format!("agent {} has stopped", self.me),
            };
        }
        match msg {
            Message::Prepare {
                test_id,
                origin,
                digest,
                bundle,
                allocation,
                start_unix_ms,
                protocol: version,
                origin_addr,
                name,
            } => {
                if version != protocol::PROTOCOL_VERSION {
                    return error(format!(
                        "agent {} speaks fleet protocol {}, the origin {version}; upgrade the fleet to one version",
                        self.me,
                        protocol::PROTOCOL_VERSION
                    ));
                }
                self.prepare(
                    test_id,
                    name,
                    origin,
                    origin_addr,
                    digest,
                    bundle,
                    allocation,
                    start_unix_ms,
                )
            }
            Message::Commit {
                test_id,
                allocation,
                start_unix_ms,
                merge,
            } => {
                let answer = self.commit(&test_id, &allocation, start_unix_ms);
                if answer == Response::Ok {
                    self.set_tree(&test_id, &allocation, merge);
                }
                answer
            }
            Message::Reallocate {
                test_id,
                allocation,
                effective_unix_ms,
                extra_iterations,
            } => {
                let extra = extra_iterations.get(&self.me).cloned().unwrap_or_default();
                self.reallocate(&test_id, &allocation, effective_unix_ms, &extra)
            }
            Message::Abort { test_id, reason } => self.abort(&test_id, &reason),
            Message::Sealed {
                meta,
                summary,
                text,
            } => self.sealed(&meta, &summary, &text),
            other => error(format!("{} is not a participant message", kind(&other))),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn prepare(
        self: &Arc<Self>,
        test_id: String,
        name: String,
        origin: String,
        origin_addr: SocketAddr,
        digest: String,
        bundle: PlanBundle,
        allocation: Allocation,
        start_unix_ms: u64,
    ) -> Response {
        if bundle.digest() != digest {
            return error(format!(
                "plan digest mismatch for test {test_id}: the bundle was altered in transit or by a bad peer"
            ));
        }
        // Loaded before the lock: a script's init may take a while, and
        // the other messages must not wait for it.
        let (mut plan, script) = match load_bundle_with_script(&bundle) {
            Ok(p) => p,
            Err(e) => return error(format!("cannot load the plan: {e}")),
        };
        if let Some(region) = self.region.get() {
            plan.set_agent_region(region);
        }
        // Before anything is allocated for it.
        if let Some(guard) = self.guard.get() {
            if let Err(refusal) = guard.admit(&self.me, &plan, &allocation) {
                return error(refusal);
            }
            // This agent's policy, whatever the accepting agent's was.
            plan.http.net.egress = guard.egress.clone();
        }
        let mut active = lock(&self.active);
        if let Some(a) = active.as_ref() {
            if a.test_id == test_id {
                return Response::Prepared {
                    agent: self.me.clone(),
                };
            }
            return error(format!("agent {} is busy with test {}", self.me, a.test_id));
        }
        if allocation.index_of(&self.me).is_none() {
            return error(format!(
                "agent {} is not in the allocation of test {test_id}",
                self.me
            ));
        }
        if self.clock.unix_ms() > start_unix_ms {
            return error(format!(
                "test {test_id} was to start before it reached agent {}",
                self.me
            ));
        }
        if let Some(store) = &self.store {
            // The origin's own store already has it; others record it here
            // so that their intervals can be kept until the summary is sealed.
            let meta = TestMeta {
                id: test_id.clone(),
                name: name.clone(),
                origin: origin.clone(),
                submitted_unix_ms: self.clock.unix_ms(),
                started_unix_ms: Some(start_unix_ms),
                ended_unix_ms: None,
                phase: TestPhase::Pending,
                allocation: serde_json::to_value(&allocation).unwrap_or_default(),
                passed: None,
                agents: allocation.agents().map(str::to_owned).collect(),
                deadline_unix_ms: Some(results_deadline_ms(start_unix_ms, plan.max_duration())),
                note: None,
                partial: false,
            };
            match store.create_test(&meta) {
                Ok(()) | Err(StoreError::AlreadyExists { .. }) => {}
                Err(e) => tracing::warn!(test = %test_id, "cannot record the test on disk: {e}"),
            }
        }
        let (realloc_tx, _) = watch::channel(None);
        let (coordinator, _) = watch::channel(Coordinator {
            node: origin,
            addr: origin_addr,
        });
        *active = Some(Active {
            test_id: test_id.clone(),
            name,
            coordinator,
            bundle: Arc::new(bundle),
            allocation,
            start_unix_ms,
            plan: Arc::new(plan),
            script,
            stop: CancellationToken::new(),
            realloc_tx,
            running: false,
        });
        self.activity_tx.send_replace(Activity::Preparing {
            test_id: test_id.clone(),
        });
        let p = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(p.clock.instant_at(start_unix_ms) + UNCOMMITTED_GRACE).await;
            p.expire_uncommitted(&test_id);
        });
        Response::Prepared {
            agent: self.me.clone(),
        }
    }

    fn commit(
        self: &Arc<Self>,
        test_id: &str,
        allocation: &Allocation,
        start_unix_ms: u64,
    ) -> Response {
        let mut guard = lock(&self.active);
        let Some(active) = guard.as_mut().filter(|a| a.test_id == test_id) else {
            return error(format!("agent {} has not prepared test {test_id}", self.me));
        };
        if active.running {
            return Response::Ok;
        }
        let tuple = match allocation.tuple_for(&self.me) {
            Ok(Some(t)) => t,
            Ok(None) => {
                // Dropped from the final allocation (too slow to prepare).
                *guard = None;
                self.activity_tx.send_replace(Activity::Idle);
                return Response::Ok;
            }
            Err(e) => return error(format!("bad allocation: {e}")),
        };
        // Agents dropped at prepare leave bigger shares to the others.
        let refused = self
            .guard
            .get()
            .and_then(|g| g.admit(&self.me, &active.plan, allocation).err());
        if let Some(refusal) = refused {
            active.stop.cancel();
            // Done at once, so that the coordinator awaits nothing from here.
            let done = Message::Done {
                test_id: test_id.to_owned(),
                agent: self.me.clone(),
                started_unix_us: 0,
                end: format!("failed: {refusal}"),
                intervals: 0,
                saturated: None,
            };
            let addr = active.coordinator.borrow().addr;
            let transport = self.transport.clone();
            tokio::spawn(async move {
                let body = protocol::encode(&done, &[]);
                if let Err(e) = transport.request(addr, body, ABORT_SEND_TIMEOUT).await {
                    tracing::warn!(%addr, "cannot tell the coordinator this share does not run: {e}");
                }
            });
            *guard = None;
            self.activity_tx.send_replace(Activity::Idle);
            return error(refusal);
        }
        let script = match &active.script {
            Some(script) => {
                let data = active
                    .bundle
                    .script
                    .as_ref()
                    .and_then(|b| b.setup_data.clone());
                match crate::script::fleet::share_run(
                    script.clone(),
                    active.plan.clone(),
                    active.stop.clone(),
                    data,
                ) {
                    Ok(run) => Some(run),
                    Err(e) => return error(format!("cannot start the script workers: {e}")),
                }
            }
            None => None,
        };
        active.running = true;
        active.allocation = allocation.clone();
        let start_at = self.clock.instant_at(start_unix_ms);
        let opts = RunOptions {
            tuple,
            start_at: Some(start_at),
            realloc: Some(active.realloc_tx.subscribe()),
            script,
            setup_values: active.bundle.setup_values.clone(),
            ..RunOptions::default()
        };
        let job = RunJob {
            participant: self.clone(),
            test_id: test_id.to_string(),
            coordinator: active.coordinator.subscribe(),
            plan: active.plan.clone(),
            stop: active.stop.clone(),
            start_at,
        };
        self.activity_tx.send_replace(Activity::Running {
            test_id: test_id.to_string(),
        });
        tokio::spawn(job.run(opts));
        Response::Ok
    }

    fn reallocate(
        &self,
        test_id: &str,
        allocation: &Allocation,
        effective_unix_ms: u64,
        extra_iterations: &BTreeMap<String, u64>,
    ) -> Response {
        let mut guard = lock(&self.active);
        let Some(active) = guard.as_mut().filter(|a| a.test_id == test_id) else {
            return error(format!("agent {} does not run test {test_id}", self.me));
        };
        if active.allocation == *allocation {
            // Sent again because the answer was lost: already applied.
            return Response::Ok;
        }
        active.allocation = allocation.clone();
        match allocation.tuple_for(&self.me) {
            Ok(Some(tuple)) => {
                // Scenario names to the engine's indexes.
                let scenarios = &active.plan.scenarios;
                let extra_iterations = extra_iterations
                    .iter()
                    .filter_map(|(name, n)| {
                        let index = scenarios.iter().position(|s| &s.name == name)?;
                        Some((index, *n))
                    })
                    .collect();
                active.realloc_tx.send_replace(Some(Realloc {
                    tuple,
                    effective: self.clock.instant_at(effective_unix_ms),
                    extra_iterations,
                }));
                Response::Ok
            }
            Ok(None) => {
                active.stop.cancel();
                Response::Ok
            }
            Err(e) => error(format!("bad allocation: {e}")),
        }
    }

    fn abort(&self, test_id: &str, reason: &str) -> Response {
        let mut guard = lock(&self.active);
        match guard.as_ref() {
            Some(a) if a.test_id == test_id => {
                tracing::info!(test = test_id, reason, "aborting");
                a.stop.cancel();
                if !a.running {
                    *guard = None;
                    self.activity_tx.send_replace(Activity::Idle);
                }
                Response::Ok
            }
            _ => Response::Ok,
        }
    }

    /// Forgets a prepared test that was never committed, so the agent is
    /// free for the next one.
    fn expire_uncommitted(&self, test_id: &str) {
        let mut guard = lock(&self.active);
        if guard
            .as_ref()
            .is_some_and(|a| a.test_id == test_id && !a.running)
        {
            tracing::warn!(test = %test_id, "prepared, but no commit came by the start: the test does not run here");
            *guard = None;
            self.activity_tx.send_replace(Activity::Idle);
        }
    }

    /// Stops the running test's load now (draining, shutdown); the origin
    /// hands this agent's share to the others.
    pub fn stop_all(&self, reason: &str) {
        self.draining
            .store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(a) = lock(&self.active).as_ref() {
            tracing::info!(test = %a.test_id, reason, "stopping load");
            a.stop.cancel();
        }
    }

    /// Stops the running share and takes no message any more: what a
    /// process that dies does (in-process fleets: the simulator).
    pub fn halt(&self) {
        self.halted.store(true, std::sync::atomic::Ordering::SeqCst);
        self.stop_all("halted");
    }

    /// Whether this agent's load for `test_id` has stopped: its engine
    /// returned (its `Done` may still be on the way), or its `Done` was
    /// delivered and the test lingers here until its verdict arrives.
    pub fn share_stopped(&self, test_id: &str) -> bool {
        if lock(&self.lingering).contains_key(test_id) {
            return true;
        }
        lock(&self.share)
            .as_ref()
            .is_some_and(|s| s.test_id == test_id && !s.running)
    }

    /// The test this agent takes part in and its coordinator, if any.
    pub fn current(&self) -> Option<(String, String)> {
        lock(&self.active)
            .as_ref()
            .map(|a| (a.test_id.clone(), a.coordinator.borrow().node.clone()))
    }

    fn coordination(&self, test_id: &str) -> Option<Coordination> {
        let guard = lock(&self.active);
        let lingering = lock(&self.lingering);
        let a = guard
            .as_ref()
            .filter(|a| a.test_id == test_id)
            .or_else(|| lingering.get(test_id))?;
        Some(Coordination {
            coordinator: a.coordinator.borrow().clone(),
            name: a.name.clone(),
            bundle: a.bundle.clone(),
            plan: a.plan.clone(),
            allocation: a.allocation.clone(),
            start_unix_ms: a.start_unix_ms,
        })
    }

    /// From now on, results of `test_id` go to `to` (the successor of a lost
    /// coordinator); the data directory records it as the test's origin.
    fn redirect(&self, test_id: &str, to: Coordinator) {
        {
            let guard = lock(&self.active);
            let lingering = lock(&self.lingering);
            let Some(a) = guard
                .as_ref()
                .filter(|a| a.test_id == test_id)
                .or_else(|| lingering.get(test_id))
            else {
                return;
            };
            a.coordinator.send_replace(to.clone());
        }
        if let Some(store) = &self.store
            && let Ok(mut meta) = store.meta(test_id)
        {
            meta.origin = to.node;
            if let Err(e) = store.update_meta(&meta) {
                tracing::warn!(test = %test_id, "cannot record the new coordinator on disk: {e}");
            }
        }
    }

    /// Lays out the merge tree of a committed test (or forgets the last
    /// one when the test has none).
    fn set_tree(&self, test_id: &str, allocation: &Allocation, tree: Option<protocol::MergeTree>) {
        let coordinator = lock(&self.active)
            .as_ref()
            .filter(|a| a.test_id == test_id)
            .map(|a| a.coordinator.borrow().clone());
        let relay = match (tree, coordinator) {
            (Some(tree), Some(c)) if allocation.index_of(&self.me).is_some() => {
                Some(Arc::new(relay::Relay::new(
                    test_id,
                    &self.me,
                    &c.node,
                    c.addr,
                    allocation.agents().map(str::to_owned),
                    tree,
                    self.transport.clone(),
                )))
            }
            _ => None,
        };
        *lock(&self.relay) = relay;
    }

    /// The merge tree of `test_id`, if it has one.
    fn tree(&self, test_id: &str) -> Option<Arc<relay::Relay>> {
        lock(&self.relay)
            .as_ref()
            .filter(|r| r.test_id() == test_id)
            .cloned()
    }

    /// A child's interval (or a child relay's combined one), answered once
    /// it reached the origin.
    pub async fn relay(&self, msg: Message, payload: Bytes) -> Response {
        let tree = lock(&self.relay).clone();
        relay::receive(tree, &self.me, msg, payload).await
    }

    /// This agent's share of its latest test, if it ran one.
    pub fn share(&self) -> Option<ShareTotals> {
        lock(&self.share).clone()
    }

    fn set_share(&self, share: ShareTotals) {
        *lock(&self.share) = Some(share);
    }

    /// This agent's load for `test_id` stopped (its engine returned): the
    /// share no longer counts as running. Called before the `Done` goes out,
    /// so a summary sealed on it never meets a share still shown running.
    fn share_ended(&self, test_id: &str) {
        if let Some(s) = lock(&self.share).as_mut().filter(|s| s.test_id == test_id) {
            s.running = false;
            s.vus = 0;
        }
    }

    /// This agent's share of `test_id` ended: the agent is free for the
    /// next test, and the test lingers until it is sealed.
    fn finished(self: &Arc<Self>, test_id: &str) {
        self.share_ended(test_id);
        let mut guard = lock(&self.active);
        if guard.as_ref().is_some_and(|a| a.test_id == test_id) {
            if let Some(a) = guard.take() {
                let deadline = results_deadline_ms(a.start_unix_ms, a.plan.max_duration());
                lock(&self.lingering).insert(test_id.to_owned(), a);
                let (p, id) = (self.clone(), test_id.to_owned());
                tokio::spawn(async move {
                    tokio::time::sleep_until(p.clock.instant_at(deadline)).await;
                    lock(&p.lingering).remove(&id);
                });
            }
            self.activity_tx.send_replace(Activity::Idle);
        }
    }
}

fn error(message: String) -> Response {
    Response::Error { message }
}

fn kind(m: &Message) -> &'static str {
    match m {
        Message::Prepare { .. } => "prepare",
        Message::Commit { .. } => "commit",
        Message::Reallocate { .. } => "reallocate",
        Message::Abort { .. } => "abort",
        Message::Interval { .. } => "interval",
        Message::Merged { .. } => "merged interval",
        Message::Done { .. } => "done",
        Message::Sealed { .. } => "sealed",
        Message::Identify => "identify",
        Message::Keep { .. } => "keep",
    }
}
