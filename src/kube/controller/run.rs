//! One `LoadTest`'s run, owned by the agent that claimed it: read the plan,
//! submit it to the fleet through the agent API seam, write progress into
//! the status every few seconds, and the verdict at the end.
//!
//! Status writes here are JSON merge patches (`application/merge-patch+json`)
//! of the fields that changed; the claim itself was a resourceVersion-guarded
//! replace (see the parent module). A run never writes after it was stopped:
//! a deleted `LoadTest` has no status left to write, and a yielded one
//! belongs to another agent.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use super::ControllerConfig;
use super::conditions::{Reason, conditions};
use super::decide::{
    fleet_phase, generation, object_ref, rfc3339_from_unix_ms, summary_line, threshold_statuses,
};
use super::env;
use super::events::Events;
use super::source::{PlanText, Source, plan_from_configmap, script_bundle};
use crate::api::{Agent, ApiError, SubmitRequest, SummaryView, TestView};
use crate::kube::crd::{Condition, LoadTest, LoadTestStatus, Phase, PlanOrigin};
use crate::kube::error::{Call, KubeError, Refusals, classify};
use crate::metrics::{Metric, MetricValues};

/// Why a run was told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The `LoadTest` was deleted: abort the fleet's test.
    Abort,
    /// Another agent holds the claim now: leave the test to it.
    Yield,
}

/// How a run ended, reported to the controller loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    /// The status holds a terminal phase.
    Finished(Phase),
    /// Stopped by the controller.
    Stopped(StopReason),
    /// The object disappeared under the run.
    Gone,
    /// The service account may not write the status.
    Forbidden {
        verb: &'static str,
        resource: &'static str,
    },
}

/// Whether the run starts from scratch or continues an earlier claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// A fresh claim: read the plan and submit.
    Fresh,
    /// A resumed or taken-over claim: follow the recorded test if there is
    /// one, else start as `Fresh`.
    Resume,
}

/// Everything a run needs.
pub struct Run {
    agent: Arc<dyn Agent>,
    loadtests: Api<LoadTest>,
    configmaps: Api<ConfigMap>,
    secrets: Api<Secret>,
    events: Events,
    config: Arc<ControllerConfig>,
    refusals: Arc<Refusals>,
    stop: watch::Receiver<Option<StopReason>>,
    /// The object as claimed.
    lt: LoadTest,
    /// The conditions as last written: a condition whose status stays
    /// keeps its `lastTransitionTime`.
    conditions: Vec<Condition>,
    /// The phase last written, for one Event per change.
    phase: Option<Phase>,
    /// The fleet's test, once submitted or found recorded.
    test_id: Option<String>,
}

/// A status write that could not be made.
enum WriteError {
    Gone,
    Forbidden(&'static str, &'static str),
    Other(KubeError),
}

/// Attempts of the final status write before giving up on it.
const FINAL_WRITE_ATTEMPTS: u32 = 5;

impl Run {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        agent: Arc<dyn Agent>,
        loadtests: Api<LoadTest>,
        configmaps: Api<ConfigMap>,
        secrets: Api<Secret>,
        events: Events,
        config: Arc<ControllerConfig>,
        refusals: Arc<Refusals>,
        stop: watch::Receiver<Option<StopReason>>,
        lt: LoadTest,
    ) -> Run {
        let status = lt.status.as_ref();
        let conditions = status.map(|s| s.conditions.clone()).unwrap_or_default();
        let phase = status.and_then(|s| s.phase);
        let test_id = status.and_then(|s| s.test_id.clone());
        Run {
            agent,
            loadtests,
            configmaps,
            secrets,
            events,
            config,
            refusals,
            stop,
            lt,
            conditions,
            phase,
            test_id,
        }
    }

    fn name(&self) -> String {
        self.lt.name_any()
    }

    /// Runs to the end. Never panics and never loops without a wait.
    pub async fn run(mut self, start: Start) -> RunEnd {
        let recorded = self.lt.status.as_ref().and_then(|s| s.test_id.clone());
        let test_id = match (start, recorded) {
            (Start::Resume, Some(id)) => {
                tracing::info!(loadtest = %object_ref(&self.lt), test = %id, "kube: following the recorded test");
                id
            }
            _ => match self.start_test().await {
                Ok(id) => id,
                Err(end) => return end,
            },
        };
        self.test_id = Some(test_id.clone());
        self.follow(&test_id).await
    }

    /// The stop signal, if one was given.
    fn stopped(&self) -> Option<StopReason> {
        *self.stop.borrow()
    }

    /// Waits `d`, or less when stopped; returns the stop reason if any.
    async fn pause(&mut self, d: Duration) -> Option<StopReason> {
        if let Some(reason) = self.stopped() {
            return Some(reason);
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => None,
            changed = self.stop.changed() => match changed {
                Ok(()) => self.stopped(),
                // The controller is gone: nobody will ever stop us, and
                // nobody will look at the result either.
                Err(_) => Some(StopReason::Yield),
            },
        }
    }

    /// Reads the plan and submits it; the fleet's test id on success.
    async fn start_test(&mut self) -> Result<String, RunEnd> {
        let (plan, script) = match self.plan_text().await {
            Ok(Source::Plan(plan)) => (plan, None),
            Ok(Source::Script(bundle)) => (PlanText::inline(""), Some(bundle)),
            Err((reason, message)) => return Err(self.fail(Phase::Error, reason, message).await),
        };
        let namespace = self.lt.namespace().unwrap_or_default();
        let sources = env::Sources {
            secrets: &self.secrets,
            configmaps: &self.configmaps,
            refusals: &self.refusals,
            namespace: &namespace,
        };
        let env = match env::resolve(&self.lt.spec, &sources).await {
            Ok(env) => env,
            Err((reason, message)) => return Err(self.fail(Phase::Error, reason, message).await),
        };
        let pending_timeout = match self.lt.spec.wait_for_agents.as_deref() {
            None => self.config.pending_timeout,
            Some(text) => match crate::plan::parse_duration(text) {
                Ok(d) => d,
                Err(e) => {
                    let message = format!("spec.waitForAgents: {e}");
                    return Err(self.fail(Phase::Error, Reason::InvalidSpec, message).await);
                }
            },
        };
        let spec = &self.lt.spec;
        let match_expressions = match spec.selector.requirements() {
            Ok(reqs) => reqs,
            Err(e) => {
                return Err(self
                    .fail(Phase::Error, Reason::InvalidSpec, e.to_string())
                    .await);
            }
        };
        let request = SubmitRequest {
            plan: plan.text,
            format: None,
            env,
            files: plan.files,
            uploads: plan.uploads,
            selector: spec.selector.match_labels.clone(),
            match_expressions,
            min_agents: spec.min_agents,
            lead_time: spec.lead_time.clone(),
            name: Some(self.name()),
            script,
            outputs: spec.outputs.clone(),
            outputs_by: spec.outputs_by.clone(),
        };

        let waiting_since = Instant::now();
        let mut announced = false;
        let response = loop {
            // The submit is not raced against a stop: once sent, the fleet
            // may start the test, and only its id lets us abort it.
            match self.agent.submit(request.clone()).await {
                Ok(response) => break response,
                Err(
                    ApiError::Unprocessable { message }
                    | ApiError::Conflict { message }
                    | ApiError::Unavailable { message },
                ) => {
                    let waited = waiting_since.elapsed();
                    if waited >= pending_timeout {
                        let message = if announced {
                            format!(
                                "gave up after waiting {}: {message}",
                                crate::plan::format_duration(pending_timeout)
                            )
                        } else {
                            message
                        };
                        return Err(self
                            .fail(Phase::Error, Reason::AgentsUnavailable, message)
                            .await);
                    }
                    if !announced {
                        announced = true;
                        let status = LoadTestStatus {
                            phase: Some(Phase::Pending),
                            message: Some(format!(
                                "waiting: {message} (retrying every {}, giving up after {})",
                                crate::plan::format_duration(self.config.pending_retry),
                                crate::plan::format_duration(pending_timeout)
                            )),
                            ..LoadTestStatus::default()
                        };
                        self.write(&status, Reason::WaitingForAgents).await?;
                    }
                    if let Some(reason) = self.pause(self.config.pending_retry).await {
                        return Err(RunEnd::Stopped(reason));
                    }
                }
                Err(err @ ApiError::BadRequest { .. }) => {
                    return Err(self
                        .fail(Phase::Error, Reason::SubmitRefused, err.to_string())
                        .await);
                }
                Err(other) => {
                    return Err(self
                        .fail(Phase::Error, Reason::TestError, other.to_string())
                        .await);
                }
            }
        };

        let id = response.id.clone();
        if let Some(reason) = self.stopped() {
            if reason == StopReason::Abort {
                self.abort(&id).await;
            }
            return Err(RunEnd::Stopped(reason));
        }
        let start = rfc3339_from_unix_ms(response.start_unix_ms);
        let agents = u32::try_from(response.allocation.len()).unwrap_or(u32::MAX);
        tracing::info!(
            loadtest = %object_ref(&self.lt),
            test = %id,
            agents,
            origin = %response.origin,
            "kube: submitted the LoadTest's plan to the fleet"
        );
        let status = LoadTestStatus {
            phase: Some(Phase::Starting),
            test_id: Some(id.clone()),
            start_time: start.clone(),
            agents: Some(agents),
            message: Some(format!(
                "test {id} starts on {agents} agent(s) at {} (in {}), coordinated by {}",
                start.as_deref().unwrap_or("an unknown time"),
                response.starts_in,
                response.origin
            )),
            ..LoadTestStatus::default()
        };
        if let Err(end) = self.write(&status, Reason::Starting).await {
            if end == RunEnd::Gone {
                self.abort(&id).await;
            }
            return Err(end);
        }
        Ok(id)
    }

    /// The plan text or the script, or the reason and message the status
    /// shows when there is none.
    async fn plan_text(&self) -> Result<Source, (Reason, String)> {
        let invalid = |e: crate::kube::crd::CrdError| (Reason::InvalidSpec, e.to_string());
        self.lt.spec.validate().map_err(invalid)?;
        let (name, key) = match self.lt.spec.plan_source().map_err(invalid)? {
            PlanOrigin::Inline(text) => return Ok(Source::Plan(PlanText::inline(text))),
            PlanOrigin::ConfigMap { name, key } => (name, key),
            PlanOrigin::Script { name, file } => {
                let cm = self.configmap(name, "spec.script.configMap").await?;
                return script_bundle(&cm, name, file)
                    .map(|b| Source::Script(Box::new(b)))
                    .map_err(|m| (Reason::ReferenceNotFound, m));
            }
        };
        let cm = self
            .configmap(name, "spec.planFrom.configMapKeyRef")
            .await?;
        plan_from_configmap(&cm, name, key).map(Source::Plan)
    }

    /// ConfigMap `name` of the test's namespace; `field` names the spec
    /// field in messages.
    async fn configmap(&self, name: &str, field: &str) -> Result<ConfigMap, (Reason, String)> {
        let namespace = self.lt.namespace().unwrap_or_default();
        self.configmaps.get(name).await.map_err(|e| {
            let err = classify(
                Call {
                    verb: "get",
                    resource: "configmaps",
                    name,
                    namespace: Some(&namespace),
                },
                e,
            );
            let forbidden = self
                .refusals
                .report_if_forbidden(&err, "plans from ConfigMaps (inline plans still work)");
            let message = if forbidden {
                format!(
                    "{field}: the agents' service account may not get configmaps in namespace \
                     {namespace:?} (403); put the plan in spec.plan or grant get on configmaps"
                )
            } else if err.is_not_found() {
                format!(
                    "{field}.name: ConfigMap {name:?} not found in namespace {namespace:?}; the \
                     ConfigMap must be in the LoadTest's own namespace"
                )
            } else {
                format!("{field}: cannot read ConfigMap {name:?}: {err}")
            };
            let reason = if forbidden {
                Reason::ReferenceForbidden
            } else {
                Reason::ReferenceNotFound
            };
            (reason, message)
        })
    }

    /// Follows the fleet's test until it ends, writing progress.
    async fn follow(&mut self, id: &str) -> RunEnd {
        let mut tick = tokio::time::interval(self.config.progress_every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_written: Option<LoadTestStatus> = None;
        // A taken-over test may already show Running; never go back.
        let mut running = self.lt.status.as_ref().and_then(|s| s.phase) == Some(Phase::Running);
        let mut failing_since: Option<Instant> = None;
        loop {
            if let Some(reason) = self.stopped() {
                return self.stop_with(reason, id).await;
            }
            tokio::select! {
                _ = tick.tick() => {}
                changed = self.stop.changed() => {
                    let reason = match changed {
                        Ok(()) => self.stopped().unwrap_or(StopReason::Yield),
                        Err(_) => StopReason::Yield,
                    };
                    return self.stop_with(reason, id).await;
                }
            }
            let view = match self.agent.get_test(id).await {
                Ok(view) => {
                    failing_since = None;
                    view
                }
                Err(ApiError::NotFound { .. }) => {
                    let message = format!(
                        "test {id} is no longer known to the fleet (its coordinating agent may \
                         have left); apply the LoadTest again with a changed spec to rerun it"
                    );
                    return self.fail(Phase::Error, Reason::TestLost, message).await;
                }
                Err(err) => {
                    if failing_since.is_none() {
                        tracing::warn!(loadtest = %object_ref(&self.lt), test = %id, "kube: cannot read the test's progress: {err}; retrying");
                        failing_since = Some(Instant::now());
                    }
                    continue;
                }
            };
            if ended(&view) {
                return self.finish(id, &view).await;
            }
            let progress = progress_status(&view, running);
            running = progress.phase == Some(Phase::Running);
            if last_written.as_ref() != Some(&progress) {
                let reason = Reason::of_phase(progress.phase.unwrap_or(Phase::Running));
                match self.write(&progress, reason).await {
                    Ok(()) => last_written = Some(progress),
                    Err(end @ (RunEnd::Gone | RunEnd::Forbidden { .. })) => {
                        // Without a LoadTest, nobody is left to watch the test.
                        if end == RunEnd::Gone {
                            self.abort(id).await;
                        }
                        return end;
                    }
                    Err(_) => {}
                }
            }
        }
    }

    async fn stop_with(&self, reason: StopReason, id: &str) -> RunEnd {
        if reason == StopReason::Abort {
            self.abort(id).await;
        }
        RunEnd::Stopped(reason)
    }

    async fn abort(&self, id: &str) {
        match self.agent.abort(id).await {
            Ok(_) => {
                tracing::info!(loadtest = %object_ref(&self.lt), test = %id, "kube: LoadTest deleted; aborted its test")
            }
            Err(ApiError::AlreadyDone { .. }) => {}
            Err(err) => {
                tracing::warn!(loadtest = %object_ref(&self.lt), test = %id, "kube: LoadTest deleted, but aborting its test failed: {err}")
            }
        }
    }

    /// Writes the verdict of an ended test.
    async fn finish(&mut self, id: &str, view: &TestView) -> RunEnd {
        let reported = fleet_phase(&view.brief.phase);
        let status = match self.agent.get_summary(id).await {
            Ok(summary) => final_status(id, reported, &summary),
            Err(err) => {
                let phase = match (reported, view.brief.passed) {
                    (Some(p), _) if p.is_terminal() => p,
                    (_, Some(true)) => Phase::Passed,
                    (_, Some(false)) => Phase::Failed,
                    _ => Phase::Error,
                };
                let live = view.live.as_ref();
                LoadTestStatus {
                    phase: Some(phase),
                    req_per_sec: live.map(|l| l.rps),
                    p95_ms: live.map(|l| l.p95_ms),
                    thresholds: live.map_or_else(Vec::new, |l| threshold_statuses(&l.thresholds)),
                    message: Some(format!(
                        "test {id} ended, but its summary is not available: {err}"
                    )),
                    ..LoadTestStatus::default()
                }
            }
        };
        let phase = status.phase.unwrap_or(Phase::Error);
        self.write_final(status, Reason::of_phase(phase))
            .await
            .unwrap_or(RunEnd::Finished(phase))
    }

    /// Ends the run with `phase`, `reason` and `message` (a run that could
    /// not start, or lost its test).
    async fn fail(&mut self, phase: Phase, reason: Reason, message: String) -> RunEnd {
        tracing::warn!(loadtest = %object_ref(&self.lt), reason = reason.as_str(), "kube: LoadTest {phase:?}: {message}");
        let status = LoadTestStatus {
            phase: Some(phase),
            message: Some(message),
            ..LoadTestStatus::default()
        };
        self.write_final(status, reason)
            .await
            .unwrap_or(RunEnd::Finished(phase))
    }

    /// The last write, retried a few times: a lost verdict would leave the
    /// LoadTest looking like it still runs. `Some` when the run ends
    /// differently than with the verdict (gone, forbidden, stopped).
    async fn write_final(&mut self, mut status: LoadTestStatus, reason: Reason) -> Option<RunEnd> {
        status.observed_generation = Some(generation(&self.lt));
        let mut backoff = Duration::from_millis(500);
        for attempt in 1..=FINAL_WRITE_ATTEMPTS {
            if let Some(reason) = self.stopped() {
                return Some(RunEnd::Stopped(reason));
            }
            match self.try_write(&status, reason).await {
                Ok(()) => return None,
                Err(WriteError::Gone) => return Some(RunEnd::Gone),
                Err(WriteError::Forbidden(verb, resource)) => {
                    return Some(RunEnd::Forbidden { verb, resource });
                }
                Err(WriteError::Other(err)) if attempt < FINAL_WRITE_ATTEMPTS => {
                    tracing::warn!(loadtest = %object_ref(&self.lt), "kube: writing the final status failed (attempt {attempt}): {err}; retrying");
                    if let Some(reason) = self.pause(backoff).await {
                        return Some(RunEnd::Stopped(reason));
                    }
                    backoff *= 2;
                }
                Err(WriteError::Other(err)) => {
                    tracing::error!(loadtest = %object_ref(&self.lt), "kube: giving up writing the final status: {err}");
                }
            }
        }
        None
    }

    /// One progress write; a transient failure is logged and skipped.
    async fn write(&mut self, status: &LoadTestStatus, reason: Reason) -> Result<(), RunEnd> {
        match self.try_write(status, reason).await {
            Ok(()) => Ok(()),
            Err(WriteError::Gone) => Err(RunEnd::Gone),
            Err(WriteError::Forbidden(verb, resource)) => Err(RunEnd::Forbidden { verb, resource }),
            Err(WriteError::Other(err)) => {
                tracing::warn!(loadtest = %object_ref(&self.lt), "kube: status update failed: {err}; the next one may succeed");
                Ok(())
            }
        }
    }

    /// Merge-patches the set fields of `status` into the object's status,
    /// with the conditions of its phase for `reason` (and, for a final
    /// phase, the completion time and exit code); writes an Event when the
    /// phase changed.
    async fn try_write(
        &mut self,
        status: &LoadTestStatus,
        reason: Reason,
    ) -> Result<(), WriteError> {
        let name = self.name();
        let mut status = status.clone();
        if let Some(phase) = status.phase {
            let now = self.config.clock.rfc3339();
            let message = status
                .message
                .clone()
                .unwrap_or_else(|| phase_message(phase, self.test_id.as_deref()));
            status.conditions = conditions(
                &self.conditions,
                phase,
                reason,
                &message,
                generation(&self.lt),
                &now,
            );
            if phase.is_terminal() {
                status.completion_time = Some(now);
                status.exit_code = reason.exit_code(phase);
            }
        }
        let body = json!({ "status": status });
        match self
            .loadtests
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&body))
            .await
        {
            Ok(_) => {
                if let Some(phase) = status.phase {
                    self.conditions = std::mem::take(&mut status.conditions);
                    if self.phase != Some(phase) {
                        self.phase = Some(phase);
                        let message = self
                            .conditions
                            .first()
                            .map(|c| c.message.clone())
                            .unwrap_or_default();
                        self.events.phase(&self.lt, phase, reason, &message).await;
                    }
                }
                Ok(())
            }
            Err(e) => {
                let namespace = self.lt.namespace();
                let err = classify(
                    Call {
                        verb: "patch",
                        resource: "loadtests/status",
                        name: &name,
                        namespace: namespace.as_deref(),
                    },
                    e,
                );
                match err {
                    KubeError::NotFound { .. } => Err(WriteError::Gone),
                    KubeError::Forbidden { verb, resource, .. } => {
                        self.refusals
                            .report(verb, resource, "the LoadTest controller");
                        Err(WriteError::Forbidden(verb, resource))
                    }
                    other => Err(WriteError::Other(other)),
                }
            }
        }
    }
}

/// What a phase means, for conditions written without a message.
fn phase_message(phase: Phase, test_id: Option<&str>) -> String {
    let test = test_id.map_or_else(String::new, |id| format!("test {id} "));
    match phase {
        Phase::Pending => "waiting for enough matching, idle agents".to_string(),
        Phase::Claimed => "claimed by an agent".to_string(),
        Phase::Starting => format!("{test}starting: the agents agreed on a start instant"),
        Phase::Running => format!("{test}running: load is being generated"),
        Phase::Passed => format!("{test}passed"),
        Phase::Failed => format!("{test}failed its thresholds"),
        Phase::Aborted => format!("{test}was aborted"),
        Phase::Error => format!("{test}ended in error"),
    }
}

/// True once the fleet says the test is over.
fn ended(view: &TestView) -> bool {
    view.brief.end_unix_ms.is_some()
        || fleet_phase(&view.brief.phase).is_some_and(Phase::is_terminal)
}

/// The progress fields of a running test; `was_running` keeps the phase
/// from going back to `Starting`.
fn progress_status(view: &TestView, was_running: bool) -> LoadTestStatus {
    let phase = match fleet_phase(&view.brief.phase) {
        Some(Phase::Running) => Phase::Running,
        _ if was_running || view.live.is_some() => Phase::Running,
        _ => Phase::Starting,
    };
    LoadTestStatus {
        phase: Some(phase),
        agents: Some(view.brief.agents),
        req_per_sec: view.live.as_ref().map(|l| round(l.rps, 1)),
        p95_ms: view.live.as_ref().map(|l| round(l.p95_ms, 2)),
        ..LoadTestStatus::default()
    }
}

/// The verdict status from the fleet's summary.
fn final_status(id: &str, reported: Option<Phase>, view: &SummaryView) -> LoadTestStatus {
    let phase = match reported {
        Some(p @ (Phase::Aborted | Phase::Error)) => p,
        _ if view.passed => Phase::Passed,
        _ => Phase::Failed,
    };
    let summary = &view.summary;
    let rps = match summary.metric(Metric::HttpReqs.name()).map(|m| &m.values) {
        Some(MetricValues::Counter { rate, .. }) => Some(round(*rate, 1)),
        _ => None,
    };
    let p95 = summary
        .metric(Metric::HttpReqDuration.name())
        .and_then(|m| m.stat("p(95)"))
        .map(|v| round(v, 2));
    let line = summary_line(summary);
    let verdict = match phase {
        Phase::Passed => "passed",
        Phase::Failed => "failed its thresholds",
        Phase::Aborted => "was aborted",
        _ => "ended in error",
    };
    LoadTestStatus {
        phase: Some(phase),
        req_per_sec: rps,
        p95_ms: p95,
        thresholds: threshold_statuses(&summary.thresholds),
        regions: super::decide::region_statuses(&summary.matrix),
        summary: Some(line),
        message: Some(format!(
            "test {id} {verdict}{}",
            saturation_note(&summary.notes)
        )),
        ..LoadTestStatus::default()
    }
}

/// `; the load generator was saturated on a-1, a-2 (…)` when the summary's
/// notes say so: the latencies then include waiting for the generator.
fn saturation_note(notes: &[String]) -> String {
    use crate::engine::saturation::SATURATED;
    let agents: Vec<&str> = notes
        .iter()
        .filter_map(|n| n.strip_prefix("agent "))
        .filter_map(|n| n.split_once(": "))
        .filter(|(_, warning)| warning.starts_with(SATURATED))
        .map(|(agent, _)| agent)
        .collect();
    if agents.is_empty() {
        return String::new();
    }
    format!(
        "; {SATURATED} on {} (its latencies include waiting for the generator; see the summary's notes)",
        agents.join(", ")
    )
}

/// Rounds for display in `kubectl get` (and to skip writes of noise).
fn round(value: f64, decimals: i32) -> f64 {
    if !value.is_finite() {
        return 0.0;
    }
    let factor = 10f64.powi(decimals);
    (value * factor).round() / factor
}

#[cfg(test)]
mod saturation_tests {
    use super::saturation_note;

    #[test]
    fn the_status_names_the_saturated_agents() {
        let notes = [
            "start spread across 3 agents: 0.40 ms".to_owned(),
            "agent a-1: the load generator was saturated: it used 97 % of its 2 CPU(s)".to_owned(),
            "agent a-2 ended: failed: boom".to_owned(),
            "agent a-3: the load generator was saturated: it used 99 %".to_owned(),
        ];
        let note = saturation_note(&notes);
        assert!(
            note.starts_with("; the load generator was saturated on a-1, a-3 ("),
            "{note}"
        );
        assert_eq!(saturation_note(&notes[..1]), "");
    }
}
