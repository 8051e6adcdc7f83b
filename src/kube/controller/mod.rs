//! The `LoadTest` controller every agent runs: `kubectl apply` starts a test
//! on the fleet, `kubectl delete` aborts it, and the status tells how it
//! goes.
//!
//! Every agent watches the `LoadTest`s of its namespace. Exactly one agent
//! runs each test, by **claiming** it: it replaces the status (`PUT
//! …/status`) with `claimedBy` set, sending the `metadata.resourceVersion`
//! it saw. When two agents race, the API server takes the first write and
//! answers the second with 409 Conflict, because the resourceVersion moved;
//! the loser leaves the test to the winner. The winner runs the test through
//! the agent API seam ([`crate::api::Agent`]) and merge-patches progress and
//! the verdict into the status (see `run`).
//!
//! Decisions are pure ([`mod@decide`]); this file is the event loop:
//!
//! - watch events (`kube::runtime::watcher`, errors logged and retried with
//!   backoff, never fatal except a 403);
//! - deletions: a `Delete` event, an object with a `deletionTimestamp`, or
//!   an object missing from a re-list (a deletion that happened while the
//!   watch was down) stop the run, which aborts the fleet's test. No
//!   finalizer is added: an uninstalled fleet must not leave `LoadTest`s
//!   that cannot be deleted;
//! - a periodic rescan of the cached objects: claims that failed for a
//!   transient reason are retried, and a test whose claimer has left the
//!   fleet (the `is_alive` callback said no for `takeover_after`) is taken
//!   over by a resourceVersion-guarded replace like a claim; the new owner
//!   follows the recorded test id, or submits afresh if there was none;
//! - a finished run makes the loop look at its object again, so a spec
//!   edited during the run (a newer `metadata.generation` than the
//!   `observedGeneration` the run recorded) runs again. `spec.runId` exists
//!   for that: changing it is the explicit way to run an unchanged test
//!   again. Re-applying an unchanged object changes nothing on the server,
//!   so it runs nothing, and its status keeps describing the earlier run
//!   (`observedGeneration`, `runId`, `completionTime` say which);
//! - every phase written also sets the `Complete`, `Succeeded` and `Failed`
//!   conditions ([`mod@conditions`]) and writes an Event ([`mod@events`]);
//! - a finished test with `spec.ttlSecondsAfterFinished` is deleted by its
//!   claimer (or by any agent once the claimer left the fleet) when that
//!   many seconds have passed since `status.completionTime`, checked at
//!   every rescan, with the object's uid as a precondition.
//!
//! An agent restarted with the same node id resumes the tests it had
//! claimed. One gap remains: an agent that dies after its submit but before
//! recording `testId` leaves a test the next owner submits again.

pub mod conditions;
pub mod decide;
pub mod env;
pub mod events;
mod run;
mod source;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use kube::runtime::events::EventType;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, MissedTickBehavior};

use self::conditions::Reason;
use self::decide::{Action, claim_status, decide, expires_at, object_ref, serves, takeover_status};
use self::events::Events;
use self::run::{Run, RunEnd, Start, StopReason};
use crate::api::Agent;
use crate::kube::crd::{LoadTest, LoadTestStatus, Phase};
use crate::kube::error::{Call, KubeError, Refusals, classify};

/// "Is this agent a live fleet member?", answered from gossip membership.
pub type IsAlive = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// The wall clock the controller reads for `lastTransitionTime`,
/// `completionTime` and `ttlSecondsAfterFinished`; tests give their own.
#[derive(Clone)]
pub struct WallClock(Arc<dyn Fn() -> Timestamp + Send + Sync>);

impl WallClock {
    /// The system's clock.
    pub fn system() -> Self {
        WallClock(Arc::new(Timestamp::now))
    }

    /// A clock that reads `now`.
    pub fn new(now: impl Fn() -> Timestamp + Send + Sync + 'static) -> Self {
        WallClock(Arc::new(now))
    }

    pub fn now(&self) -> Timestamp {
        (self.0)()
    }

    /// Now as RFC 3339 in whole seconds (`metav1.Time`'s precision).
    pub fn rfc3339(&self) -> String {
        let now = self.now();
        Timestamp::from_second(now.as_second())
            .unwrap_or(now)
            .to_string()
    }
}

impl fmt::Debug for WallClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WallClock({})", self.now())
    }
}

/// How the controller behaves; [`ControllerConfig::new`] has the defaults.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// The namespace whose `LoadTest`s (and plan ConfigMaps) it serves.
    pub namespace: String,
    /// This agent's node id, written as `status.claimedBy`.
    pub node_id: String,
    /// This agent's fleet (its cluster id): `LoadTest`s whose `spec.fleet`
    /// names another are left alone. `None` serves every `LoadTest`.
    pub fleet: Option<String>,
    /// How often a running test's live numbers are written to the status;
    /// often enough for `kubectl get -w`, rare enough for the API server.
    pub progress_every: Duration,
    /// How long a test may wait in `Pending` for enough matching, idle
    /// agents before it ends in `Error` with the fleet's reason.
    pub pending_timeout: Duration,
    /// How often a pending test asks the fleet again.
    pub pending_retry: Duration,
    /// How long a claimer must be out of the fleet before another agent
    /// takes its tests over; longer than a gossip hiccup or a restart.
    pub takeover_after: Duration,
    /// How often cached objects are looked at again (take-overs, claims
    /// that failed for a transient reason, expired finished tests).
    pub rescan_every: Duration,
    /// The time written into the status and compared with TTLs.
    pub clock: WallClock,
}

impl ControllerConfig {
    /// Defaults: progress every 2 s, pending up to 5 min (asking every 5 s),
    /// take-over after 30 s, rescan every 5 s.
    pub fn new(namespace: impl Into<String>, node_id: impl Into<String>) -> Self {
        ControllerConfig {
            namespace: namespace.into(),
            node_id: node_id.into(),
            fleet: None,
            progress_every: Duration::from_secs(2),
            pending_timeout: Duration::from_secs(300),
            pending_retry: Duration::from_secs(5),
            takeover_after: Duration::from_secs(30),
            rescan_every: Duration::from_secs(5),
            clock: WallClock::system(),
        }
    }
}

/// Why the controller stopped (it otherwise runs until its task is aborted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControllerExit {
    /// RBAC refused a call the controller cannot work without; logged once.
    Forbidden {
        verb: &'static str,
        resource: &'static str,
    },
}

/// Starts the controller. Abort the handle to stop it (running tests'
/// status writes stop with it; another agent takes them over once this one
/// has left the fleet).
pub fn spawn_controller(
    client: Client,
    config: ControllerConfig,
    agent: Arc<dyn Agent>,
    is_alive: IsAlive,
    refusals: Arc<Refusals>,
) -> JoinHandle<ControllerExit> {
    let controller = Controller {
        loadtests: Api::namespaced(client.clone(), &config.namespace),
        configmaps: Api::namespaced(client.clone(), &config.namespace),
        secrets: Api::namespaced(client.clone(), &config.namespace),
        events: Events::new(client, &config.node_id, refusals.clone()),
        config: Arc::new(config),
        agent,
        is_alive,
        refusals,
        cache: BTreeMap::new(),
        relisted: None,
        running: HashMap::new(),
        tasks: JoinSet::new(),
        gone_since: HashMap::new(),
        ended: HashMap::new(),
        ttl_forbidden: false,
    };
    tokio::spawn(controller.run())
}

/// A run in progress on this agent.
struct Running {
    /// The object's uid: a deleted and re-created `LoadTest` of the same
    /// name is another test.
    uid: Option<String>,
    stop: watch::Sender<Option<StopReason>>,
    task: tokio::task::Id,
}

struct Controller {
    config: Arc<ControllerConfig>,
    loadtests: Api<LoadTest>,
    configmaps: Api<ConfigMap>,
    secrets: Api<Secret>,
    events: Events,
    agent: Arc<dyn Agent>,
    is_alive: IsAlive,
    refusals: Arc<Refusals>,
    /// The latest version of every `LoadTest`, by name.
    cache: BTreeMap<String, LoadTest>,
    /// Objects seen since the watcher started a re-list, to find the ones
    /// deleted while the watch was down.
    relisted: Option<BTreeMap<String, LoadTest>>,
    /// Runs of this agent, by name.
    running: HashMap<String, Running>,
    tasks: JoinSet<(String, RunEnd)>,
    /// When each claimer was first seen out of the fleet.
    gone_since: HashMap<String, Instant>,
    /// Runs that ended here, by name, with the object's uid, until the
    /// watch shows their final status. Until then the cached object may
    /// still say "claimed by this agent, running", which must not look like
    /// a claim to resume after a restart.
    ended: HashMap<String, Option<String>>,
    /// RBAC refused deleting a LoadTest: TTLs are not enforced (logged once).
    ttl_forbidden: bool,
}

impl Controller {
    async fn run(mut self) -> ControllerExit {
        tracing::info!(namespace = %self.config.namespace, node = %self.config.node_id, "kube: watching LoadTests");
        let stream = watcher(
            self.loadtests.clone(),
            watcher::Config::default().any_semantic(),
        )
        .default_backoff();
        futures::pin_mut!(stream);
        let mut rescan = tokio::time::interval(self.config.rescan_every);
        rescan.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                item = stream.next() => match item {
                    Some(Ok(event)) => {
                        failing = false;
                        if let Some(exit) = self.on_event(event).await {
                            return exit;
                        }
                    }
                    Some(Err(err)) => {
                        if let Some((verb, resource)) = forbidden(&err) {
                            self.refusals.report(verb, resource, "the LoadTest controller");
                            return ControllerExit::Forbidden { verb, resource };
                        }
                        if expired(&err) {
                            // Normal after a compaction or an API server
                            // restart: the watcher re-lists by itself.
                            tracing::debug!("kube: LoadTest watch expired ({err}); re-listing");
                        } else if failing {
                            tracing::debug!("kube: LoadTest watch still failing: {err}");
                        } else {
                            failing = true;
                            tracing::warn!("kube: LoadTest watch failed: {err}; retrying with backoff");
                        }
                    }
                    None => {
                        // The watcher never ends; if it ever does, start over.
                        tracing::warn!("kube: LoadTest watch ended; restarting it");
                        return Box::pin(self.run()).await;
                    }
                },
                _ = rescan.tick() => {
                    if let Some(exit) = self.rescan().await {
                        return exit;
                    }
                }
                Some(joined) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    if let Some(exit) = self.on_run_end(joined).await {
                        return exit;
                    }
                }
            }
        }
    }

    async fn on_event(&mut self, event: watcher::Event<LoadTest>) -> Option<ControllerExit> {
        match event {
            watcher::Event::Init => {
                self.relisted = Some(BTreeMap::new());
                None
            }
            watcher::Event::InitApply(lt) => {
                if let Some(seen) = self.relisted.as_mut() {
                    seen.insert(lt.name_any(), lt.clone());
                }
                self.applied(lt).await
            }
            watcher::Event::InitDone => {
                if let Some(seen) = self.relisted.take() {
                    let vanished: Vec<LoadTest> = self
                        .cache
                        .iter()
                        .filter(|(name, _)| !seen.contains_key(*name))
                        .map(|(_, lt)| lt.clone())
                        .collect();
                    for lt in vanished {
                        self.deleted(&lt);
                    }
                    self.cache = seen;
                }
                None
            }
            watcher::Event::Apply(lt) => self.applied(lt).await,
            watcher::Event::Delete(lt) => {
                self.deleted(&lt);
                None
            }
        }
    }

    async fn applied(&mut self, lt: LoadTest) -> Option<ControllerExit> {
        self.cache.insert(lt.name_any(), lt.clone());
        self.consider(lt).await
    }

    fn deleted(&mut self, lt: &LoadTest) {
        let name = lt.name_any();
        self.cache.remove(&name);
        self.ended.remove(&name);
        if let Some(running) = self.running.get(&name)
            && running.uid == lt.uid()
        {
            tracing::info!(loadtest = %object_ref(lt), "kube: LoadTest deleted; aborting its run");
            let _ = running.stop.send(Some(StopReason::Abort));
        }
    }

    /// Acts on the latest version of one object.
    async fn consider(&mut self, lt: LoadTest) -> Option<ControllerExit> {
        let name = lt.name_any();
        if !serves(&lt, self.config.fleet.as_deref()) && !self.running.contains_key(&name) {
            return None;
        }
        if lt.metadata.deletion_timestamp.is_some() {
            self.deleted(&lt);
            return None;
        }
        // A run of an earlier object with this name: that object is gone.
        if let Some(running) = self.running.get(&name)
            && running.uid != lt.uid()
        {
            let _ = running.stop.send(Some(StopReason::Abort));
        }
        let running_here = self.running.get(&name).is_some_and(|r| r.uid == lt.uid());
        let claimer = lt.status.as_ref().and_then(|s| s.claimed_by.clone());
        let unfinished_here = claimer.as_deref() == Some(self.config.node_id.as_str())
            && !lt
                .status
                .as_ref()
                .and_then(|s| s.phase)
                .is_some_and(|p| p.is_terminal());
        if !unfinished_here {
            self.ended.remove(&name);
        }
        let claimer_gone = match &claimer {
            Some(c) if c != &self.config.node_id => self.claimer_gone(c),
            _ => false,
        };
        match decide(&lt, &self.config.node_id, running_here, &|_| claimer_gone) {
            Action::Nothing => {
                let mine = match claimer.as_deref() {
                    None => true,
                    Some(c) => c == self.config.node_id || claimer_gone,
                };
                if mine && !running_here {
                    self.expire_if_due(&lt).await;
                }
                None
            }
            Action::Claim => {
                let status = claim_status(&lt, &self.config.node_id, &self.config.clock.rfc3339());
                self.claim(lt, status, Start::Fresh).await
            }
            Action::TakeOver { from } => {
                let status = takeover_status(&lt, &self.config.node_id, &from);
                tracing::info!(loadtest = %object_ref(&lt), from = %from, "kube: taking over a LoadTest whose claimer left the fleet");
                self.claim(lt, status, Start::Resume).await
            }
            Action::Resume if self.ended.get(&name) == Some(&lt.uid()) => {
                // This agent's run just ended; the watch has not yet
                // delivered the status it wrote last.
                None
            }
            Action::Resume => {
                tracing::info!(loadtest = %object_ref(&lt), "kube: resuming a LoadTest this agent had claimed");
                self.spawn(lt, Start::Resume);
                None
            }
            Action::Yield => {
                if let Some(running) = self.running.get(&name) {
                    tracing::info!(loadtest = %object_ref(&lt), claimer = ?claimer, "kube: another agent claimed this LoadTest; leaving it");
                    let _ = running.stop.send(Some(StopReason::Yield));
                }
                None
            }
        }
    }

    /// True once `claimer` has been out of the fleet for `takeover_after`.
    fn claimer_gone(&mut self, claimer: &str) -> bool {
        if (self.is_alive)(claimer) {
            self.gone_since.remove(claimer);
            return false;
        }
        let since = *self
            .gone_since
            .entry(claimer.to_string())
            .or_insert_with(Instant::now);
        since.elapsed() >= self.config.takeover_after
    }

    /// Replaces the status with `status`, guarded by the resourceVersion
    /// this agent saw; on success the run starts.
    async fn claim(
        &mut self,
        lt: LoadTest,
        status: LoadTestStatus,
        start: Start,
    ) -> Option<ControllerExit> {
        let name = lt.name_any();
        let mut claimed = lt.clone();
        claimed.status = Some(status);
        match self
            .loadtests
            .replace_status(&name, &PostParams::default(), &claimed)
            .await
        {
            Ok(updated) => {
                tracing::info!(loadtest = %object_ref(&updated), "kube: claimed the LoadTest");
                let me = &self.config.node_id;
                match start {
                    Start::Fresh => {
                        let message = format!("claimed by agent {me}");
                        self.events
                            .phase(&updated, Phase::Claimed, Reason::Claimed, &message)
                            .await;
                    }
                    Start::Resume => {
                        let message = updated
                            .status
                            .as_ref()
                            .and_then(|s| s.message.clone())
                            .unwrap_or_else(|| format!("taken over by agent {me}"));
                        self.events
                            .publish(
                                &updated,
                                EventType::Normal,
                                "TakenOver",
                                "TakeOver",
                                &message,
                            )
                            .await;
                    }
                }
                self.cache.insert(name, updated.clone());
                self.spawn(updated, start);
                None
            }
            Err(e) => {
                let namespace = lt.namespace();
                let err = classify(
                    Call {
                        verb: "update",
                        resource: "loadtests/status",
                        name: &name,
                        namespace: namespace.as_deref(),
                    },
                    e,
                );
                match err {
                    KubeError::Conflict { .. } => {
                        tracing::debug!(loadtest = %object_ref(&lt), "kube: another agent claimed the LoadTest first");
                        None
                    }
                    KubeError::NotFound { .. } => None,
                    KubeError::Forbidden { verb, resource, .. } => {
                        self.refusals
                            .report(verb, resource, "the LoadTest controller");
                        Some(ControllerExit::Forbidden { verb, resource })
                    }
                    other => {
                        tracing::warn!(loadtest = %object_ref(&lt), "kube: claiming the LoadTest failed: {other}; will retry");
                        None
                    }
                }
            }
        }
    }

    fn spawn(&mut self, lt: LoadTest, start: Start) {
        let name = lt.name_any();
        let (stop, stop_rx) = watch::channel(None);
        let run = Run::new(
            self.agent.clone(),
            self.loadtests.clone(),
            self.configmaps.clone(),
            self.secrets.clone(),
            self.events.clone(),
            self.config.clone(),
            self.refusals.clone(),
            stop_rx,
            lt.clone(),
        );
        let task_name = name.clone();
        let handle = self
            .tasks
            .spawn(async move { (task_name, run.run(start).await) });
        self.ended.remove(&name);
        self.running.insert(
            name,
            Running {
                uid: lt.uid(),
                stop,
                task: handle.id(),
            },
        );
    }

    async fn on_run_end(
        &mut self,
        joined: Result<(tokio::task::Id, (String, RunEnd)), tokio::task::JoinError>,
    ) -> Option<ControllerExit> {
        let (id, name, end) = match joined {
            Ok((id, (name, end))) => (id, name, end),
            Err(err) => {
                let id = err.id();
                tracing::error!("kube: a LoadTest run failed: {err}");
                self.running.retain(|_, r| r.task != id);
                return None;
            }
        };
        if let Some(running) = self.running.remove(&name) {
            if running.task == id {
                self.ended.insert(name.clone(), running.uid);
            } else {
                // A newer run of the same name; keep it.
                self.running.insert(name.clone(), running);
            }
        }
        tracing::debug!(loadtest = %name, end = ?end, "kube: LoadTest run ended");
        if let RunEnd::Forbidden { verb, resource } = end {
            return Some(ControllerExit::Forbidden { verb, resource });
        }
        // The spec may have changed while it ran.
        let latest = self.cache.get(&name).cloned()?;
        self.consider(latest).await
    }

    /// Deletes a finished `lt` whose `ttlSecondsAfterFinished` has passed.
    async fn expire_if_due(&mut self, lt: &LoadTest) {
        if self.ttl_forbidden {
            return;
        }
        let Some(due) = expires_at(lt) else {
            return;
        };
        if self.config.clock.now() < due {
            return;
        }
        let name = lt.name_any();
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: lt.uid(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match self.loadtests.delete(&name, &params).await {
            Ok(_) => {
                tracing::info!(loadtest = %object_ref(lt), "kube: deleted the finished LoadTest (ttlSecondsAfterFinished passed)");
            }
            Err(e) => {
                let namespace = lt.namespace();
                let err = classify(
                    Call {
                        verb: "delete",
                        resource: "loadtests",
                        name: &name,
                        namespace: namespace.as_deref(),
                    },
                    e,
                );
                match err {
                    // Already gone, or replaced by a new object of the name.
                    KubeError::NotFound { .. } | KubeError::Conflict { .. } => {}
                    KubeError::Forbidden { .. } => {
                        self.ttl_forbidden = true;
                        self.refusals
                            .report_if_forbidden(&err, "ttlSecondsAfterFinished");
                    }
                    other => {
                        tracing::warn!(loadtest = %object_ref(lt), "kube: deleting the expired LoadTest failed: {other}; will retry");
                    }
                }
            }
        }
    }

    async fn rescan(&mut self) -> Option<ControllerExit> {
        let cached: Vec<LoadTest> = self.cache.values().cloned().collect();
        for lt in cached {
            if let Some(exit) = self.consider(lt).await {
                return Some(exit);
            }
        }
        None
    }
}

/// True for 410 Gone/Expired: the watch's resourceVersion is too old.
fn expired(err: &watcher::Error) -> bool {
    match err {
        watcher::Error::WatchError(status) => status.code == 410,
        watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status.code == 410,
        _ => false,
    }
}

/// The verb and resource of a watcher error that is an RBAC refusal.
fn forbidden(err: &watcher::Error) -> Option<(&'static str, &'static str)> {
    let is_forbidden = |e: &kube::Error| match e {
        kube::Error::Api(status) => status.code == 403 || status.is_forbidden(),
        _ => false,
    };
    match err {
        watcher::Error::InitialListFailed(e) if is_forbidden(e) => Some(("list", "loadtests")),
        watcher::Error::WatchStartFailed(e) | watcher::Error::WatchFailed(e) if is_forbidden(e) => {
            Some(("watch", "loadtests"))
        }
        watcher::Error::WatchError(status) if status.code == 403 || status.is_forbidden() => {
            Some(("watch", "loadtests"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
