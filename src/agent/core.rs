//! The agent's brain: the `api::Agent` implementation the HTTP API and the
//! LoadTest controller call. Fleet messages from peers reach it through
//! `router`; peer trust is in `trust`, the fleet-wide test list in `listing`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;

use super::config::{AgentSettings, ClockPolicy};
use super::views;
use crate::api::{
    self, AbortResponse, ApiError, MemberView, PromSnapshot, SubmitRequest, SubmitResponse,
    SummaryView, TestBrief, TestView,
};
use crate::clock::unix_ms_now;
use crate::fleet::identity::IdentityBook;
use crate::fleet::keys::{AgentState, Announcement};
use crate::fleet::membership::{GossipStats, Member, Membership, Reject};
use crate::fleet::origin::{Origin, Submission};
use crate::fleet::participant::{self, Participant};
use crate::fleet::protocol::{self, Message, PlanBundle, Response};
use crate::fleet::selector;
use crate::fleet::selector::Candidate;
use crate::fleet::store::{Store, TestPhase};
use crate::fleet::transport::{ClockSample, ClockVerdict, Transport, describe_clock, judge_clock};
use crate::plan::admission::{self, Demand, Limits, MachineLimits};
use crate::plan::{self, Plan, format_duration};

/// What the core is built from.
pub struct Handles {
    pub settings: AgentSettings,
    /// What the gossip socket counts (dropped datagrams by reason), for `/metrics`.
    pub gossip_stats: Arc<GossipStats>,
    pub membership: Arc<Membership>,
    pub transport: Arc<dyn Transport>,
    pub origin: Arc<Origin>,
    pub participant: Arc<Participant>,
    pub store: Arc<Store>,
    pub api_addr: std::net::SocketAddr,
    /// What plans may ask of this agent (its memory and CPUs, or its
    /// settings); scaled to the selected agents at submit.
    pub limits: MachineLimits,
}

pub struct AgentCore {
    pub(super) h: Handles,
    /// Clock offset and RTT to each peer, by node id (NTP-style over QUIC).
    pub(super) clocks: Mutex<BTreeMap<String, ClockSample>>,
    /// Peers whose mutual TLS handshake failed at the last contact (another
    /// fleet's CA, an expired certificate), by node id: why.
    pub(super) refused: Mutex<BTreeMap<String, String>>,
    /// Whether each gossip incarnation proved its node id over QUIC.
    pub(super) identities: IdentityBook,
    draining: AtomicBool,
    started: Instant,
    /// How late an always-running probe wakes up (for `/metrics`).
    pub(super) lags: Arc<crate::engine::saturation::LagCounts>,
}

impl AgentCore {
    pub fn new(h: Handles) -> Arc<AgentCore> {
        Arc::new(AgentCore {
            h,
            clocks: Mutex::new(BTreeMap::new()),
            refused: Mutex::new(BTreeMap::new()),
            identities: IdentityBook::default(),
            draining: AtomicBool::new(false),
            started: Instant::now(),
            lags: Arc::default(),
        })
    }

    /// Takes no new test, stops this agent's load (the origin hands its
    /// share to the others) and says so in gossip.
    pub async fn drain(&self, reason: &str) {
        if self.draining.swap(true, Ordering::SeqCst) {
            return;
        }
        let _ = self
            .h
            .membership
            .publish(|me| me.state = AgentState::Draining)
            .await;
        self.h.participant.stop_all(reason);
    }

    /// True while this agent takes part in a test.
    pub fn busy(&self) -> bool {
        self.h.participant.current().is_some()
    }

    pub async fn close(&self) {
        self.h.membership.announce(None).await.ok();
    }

    pub(super) fn me(&self) -> &str {
        &self.h.settings.node_id
    }

    async fn member(&self, node: &str) -> Option<Member> {
        self.h
            .membership
            .members()
            .await
            .into_iter()
            .find(|m| m.node_id == node)
    }

    /// The API client of another agent, to forward a request to it.
    async fn peer_api(&self, node: &str) -> Result<api::ApiClient, ApiError> {
        let member = self
            .member(node)
            .await
            .ok_or_else(|| ApiError::Unavailable {
                message: format!(
                    "agent {node} (which coordinates this test) is not a live member now"
                ),
            })?;
        let info = member.usable().ok_or_else(|| ApiError::Unavailable {
            message: format!("agent {node} publishes no usable API address"),
        })?;
        api::ApiClient::new(&format!("http://{}", info.api), None).map_err(|e| ApiError::Internal {
            message: e.to_string(),
        })
    }

    async fn submit_inner(&self, req: SubmitRequest) -> Result<SubmitResponse, ApiError> {
        if self.draining.load(Ordering::SeqCst) {
            return Err(ApiError::Unavailable {
                message: format!("agent {} is draining; submit to another agent", self.me()),
            });
        }
        let format = match req.format {
            _ if req.script.is_some() => "js",
            Some(api::PlanFormat::Json) => "json",
            Some(api::PlanFormat::Yaml) => "yaml",
            None if req.plan.trim_start().starts_with('{') => "json",
            None => "yaml",
        };
        let mut bundle = PlanBundle {
            plan: req.plan.clone(),
            format: format.to_owned(),
            env: req.env.clone(),
            files: req.files.clone(),
            uploads: req.uploads.clone(),
            script: req.script.as_deref().cloned(),
            setup_values: None,
        };
        if let Some(sb) = &mut bundle.script {
            // Never trust a submitted setup result: setup() runs here.
            sb.setup_data = None;
        }
        // A script's init runs here (bounded by its time limit): off the
        // async threads, which also serve gossip and the transport.
        let to_load = bundle.clone();
        let (mut plan, script) =
            tokio::task::spawn_blocking(move || participant::load_bundle_with_script(&to_load))
                .await
                .map_err(|e| ApiError::Internal {
                    message: format!("loading the plan stopped: {e}"),
                })?
                .map_err(|e| ApiError::BadRequest {
                    message: format!("invalid plan: {e}"),
                })?;
        // The hosts the plan names literally, against this agent's egress
        // policy; setup and teardown run here with it too.
        let egress = &self.h.settings.egress;
        egress
            .check_plan(&plan)
            .map_err(|refusal| ApiError::Unprocessable {
                message: format!("{refusal} (agent {})", self.me()),
            })?;
        plan.http.net.egress = egress.clone();
        let outputs = super::outputs::check(&req, &self.h.settings.outputs, egress, self.me())?;

        let lead = match &req.lead_time {
            Some(t) => plan::parse_duration(t).map_err(|e| ApiError::BadRequest {
                message: format!("leadTime: {e}"),
            })?,
            None => self.h.settings.lead_time,
        };
        let min_agents = req.min_agents.unwrap_or(1) as usize;
        let selection = self.select(&req).await?;
        let (mut candidates, unproven) = (selection.candidates, selection.unproven);
        self.exclude_refused(&mut candidates, min_agents, &unproven)?;
        self.check_clocks(&candidates)?;
        self.admit(&plan, &candidates).await?;
        if let Some(script) = &script {
            // Once for the whole fleet, before the barrier (as k6 runs it
            // once before any VU); its data travels in the bundle.
            let data = crate::script::fleet::setup(script.clone(), Arc::new(plan.clone()))
                .await
                .map_err(|e| ApiError::Unprocessable {
                    message: format!("setup() failed, nothing was started: {e}"),
                })?;
            if let Some(sb) = &mut bundle.script {
                sb.setup_data = data;
                // Measured as it travels: JSON escaping grows setup data.
                let wire = serde_json::to_vec(&*sb).map_or(usize::MAX, |v| v.len());
                if wire > crate::script::bundle::MAX_BUNDLE_BYTES {
                    return Err(ApiError::Unprocessable {
                        message: format!(
                            "setup() returned {} bytes of data; with the script the test would carry {} bytes, over the fleet's {} (return less, or read it in each VU)",
                            sb.setup_data.as_ref().map_or(0, String::len),
                            wire,
                            crate::script::bundle::MAX_BUNDLE_BYTES
                        ),
                    });
                }
            }
        }
        if script.is_none() && (plan.setup.is_some() || plan.teardown.is_some()) {
            // A plan's setup, once for the whole fleet before the barrier as
            // for a script; its values travel in the bundle, and the other
            // agents run neither setup nor teardown.
            let values = crate::engine::lifecycle::setup_once(Arc::new(plan.clone()))
                .await
                .map_err(|e| ApiError::Unprocessable {
                    message: format!("{e}"),
                })?;
            let size: usize = values.iter().map(|(k, v)| k.len() + v.len()).sum();
            if size > crate::script::bundle::MAX_BUNDLE_BYTES {
                return Err(ApiError::Unprocessable {
                    message: format!(
                        "setup captured {size} bytes of values, over the fleet's {} (capture less)",
                        crate::script::bundle::MAX_BUNDLE_BYTES
                    ),
                });
            }
            bundle.setup_values = Some(values);
        }
        let name = req.name.clone().unwrap_or_else(|| "test".into());
        let outputs = outputs.open()?;
        let (meta, allocation) = self
            .h
            .origin
            .submit(
                Submission {
                    name,
                    bundle: bundle.clone(),
                    plan: Arc::new(plan.clone()),
                    min_agents,
                    lead,
                    outputs,
                },
                candidates,
            )
            .map_err(|e| ApiError::Unprocessable {
                message: format!(
                    "{e} (selector {})",
                    selector::describe(&req.selector, &req.match_expressions)
                ),
            })?;
        let start = meta.started_unix_ms.unwrap_or_default();
        let announcement = Announcement {
            id: meta.id.clone(),
            digest: bundle.digest(),
            origin: self.me().to_owned(),
            start_ms: start,
            rev: u64::from(allocation.revision),
        };
        if let Err(e) = self.h.membership.announce(Some(&announcement)).await {
            tracing::warn!("cannot announce test {} in gossip: {e}", meta.id);
        }
        let teardown = match (script, &bundle.setup_values) {
            (Some(script), _) => {
                let data = bundle.script.as_ref().and_then(|b| b.setup_data.clone());
                Some(Teardown::Script(script, data))
            }
            (None, Some(values)) if plan.teardown.is_some() => Some(Teardown::Plan(values.clone())),
            (None, _) => None,
        };
        if let Some(teardown) = teardown {
            tokio::spawn(teardown_when_over(
                Arc::clone(&self.h.origin),
                meta.id.clone(),
                Arc::new(plan.clone()),
                teardown,
            ));
        }
        let max_vus: u64 = plan.scenarios.iter().map(|s| s.executor.max_vus()).sum();
        Ok(SubmitResponse {
            id: meta.id.clone(),
            start_unix_ms: start,
            starts_in: format_duration(lead),
            allocation: allocation
                .shares
                .iter()
                .map(|s| api::AllocationEntry {
                    agent: s.agent.clone(),
                    share: allocation.fraction(&s.agent).unwrap_or_default(),
                    weight: s.weight as f64 / 100.0,
                    vus: allocation
                        .tuple_for(&s.agent)
                        .ok()
                        .flatten()
                        .map(|t| t.scale(max_vus)),
                })
                .collect(),
            revision: allocation.revision,
            origin: self.me().to_owned(),
        })
    }

    /// Refuses (422) a plan that asks for more than the candidates can hold,
    /// before its setup runs and before anything is allocated for it. Only
    /// this agent's limits are known here: they are scaled by the
    /// candidates' capacity weights, and each agent checks its exact share
    /// against its own limits again at prepare.
    async fn admit(&self, plan: &Plan, candidates: &[Candidate]) -> Result<(), ApiError> {
        if candidates.is_empty() {
            // The origin refuses it, naming the selector.
            return Ok(());
        }
        let weights: Vec<f64> = candidates.iter().map(|c| c.capacity).collect();
        let this_weight = self.h.membership.info().await.capacity;
        let limits = Limits::fleet(self.h.limits.clone(), self.me(), this_weight, &weights);
        admission::check(&Demand::of(plan), &limits).map_err(|refusal| ApiError::Unprocessable {
            message: format!(
                "the plan asks for more than the fleet can run, nothing was started: {refusal}"
            ),
        })
    }

    /// Leaves out candidates that refused mutual TLS at the last contact: they
    /// would be dropped at prepare anyway. Refuses the test (422) when that
    /// leaves fewer than `min_agents`, naming them and why.
    fn exclude_refused(
        &self,
        candidates: &mut Vec<Candidate>,
        min_agents: usize,
        unproven: &[String],
    ) -> Result<(), ApiError> {
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
            return Err(ApiError::Unprocessable {
                message: format!(
                    "{} agent(s) can take part, the test needs at least {}: {} could not prove \
                     their identity over mutual TLS; give every agent a certificate of this \
                     fleet's CA for its own node id",
                    candidates.len(),
                    min_agents.max(1),
                    left_out.join(", ")
                ),
            });
        }
        Ok(())
    }

    /// The barrier is only as good as the clocks: refuse (or warn, by policy) when a
    /// candidate's clock is provably off by more than the tolerance (its measured offset beyond
    /// it by more than the error bound, half the round trip), and warn when it may be.
    fn check_clocks(&self, candidates: &[Candidate]) -> Result<(), ApiError> {
        let tolerance = self.h.settings.clock_tolerance;
        let (mut beyond, mut unproven, mut loose) = (Vec::new(), Vec::new(), false);
        {
            let clocks = lock(&self.clocks);
            for c in candidates.iter().filter(|c| c.node_id != self.me()) {
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
        match self.h.settings.clock_policy {
            ClockPolicy::Refuse => Err(ApiError::Unprocessable { message }),
            ClockPolicy::Warn => {
                tracing::warn!("{message}");
                Ok(())
            }
        }
    }

    async fn get_test_inner(&self, id: &str) -> Result<TestView, ApiError> {
        if let Some(s) = self.h.origin.snapshot(id) {
            return Ok(views::test_view(&s));
        }
        if let Ok(meta) = self.h.store.meta(id) {
            if meta.origin != self.me()
                && let Ok(client) = self.peer_api(&meta.origin).await
                && let Ok(view) = client.get_test(id).await
            {
                return Ok(view);
            }
            return Ok(views::view_from_meta(&meta));
        }
        if let Some(origin) = self.origin_from_gossip(id).await {
            let client = self.peer_api(&origin).await?;
            return client.get_test(id).await.map_err(views::client_error);
        }
        Err(self.not_found(id))
    }

    async fn get_summary_inner(&self, id: &str) -> Result<SummaryView, ApiError> {
        if let Some(sealed) = self.h.origin.sealed(id) {
            let aborted = self
                .h
                .origin
                .snapshot(id)
                .is_some_and(|s| s.meta.phase == TestPhase::Aborted);
            return Ok(views::summary_view(
                id,
                &sealed.summary,
                &sealed.text,
                sealed.export,
                aborted,
            ));
        }
        if let Some(s) = self.h.origin.snapshot(id) {
            if s.meta.phase.is_terminal() {
                return Err(ApiError::Conflict {
                    message: format!(
                        "test {id} ended in phase {} before it started, so it has no summary: {}",
                        s.meta.phase.as_str(),
                        s.incidents.join("; ")
                    ),
                });
            }
            return Err(ApiError::Conflict {
                message: format!("test {id} is still running; its summary is sealed when it ends"),
            });
        }
        if let Ok(Some((value, text))) = self.h.store.summary(id)
            && let Ok(summary) = serde_json::from_value::<crate::metrics::Summary>(value)
        {
            {
                let export = crate::report::export::k6_summary_export(
                    &summary,
                    &crate::report::export::ExportContext::default(),
                );
                let aborted = self
                    .h
                    .store
                    .meta(id)
                    .is_ok_and(|m| m.phase == TestPhase::Aborted);
                return Ok(views::summary_view(id, &summary, &text, export, aborted));
            }
        }
        let origin = match self.h.store.meta(id) {
            Ok(meta) if meta.origin != self.me() => Some(meta.origin),
            _ => self.origin_from_gossip(id).await,
        };
        if let Some(origin) = origin {
            let client = self.peer_api(&origin).await?;
            return client.get_summary(id).await.map_err(views::client_error);
        }
        Err(self.not_found(id))
    }

    async fn abort_inner(&self, id: &str) -> Result<AbortResponse, ApiError> {
        if let Some(already) = self.h.origin.abort(id, "aborted through the API") {
            self.h.participant.handle(Message::Abort {
                test_id: id.to_owned(),
                reason: "aborted through the API".into(),
            });
            if already {
                let (aborted, at) = self.h.origin.ending(id).unwrap_or((false, unix_ms_now()));
                return Err(already_done(id, aborted, at));
            }
            return Ok(AbortResponse {
                id: id.to_owned(),
                aborted_at_unix_ms: unix_ms_now(),
                already_ended: false,
            });
        }
        // Not ours: stop our own part at once, then tell the origin.
        let origin = match self.h.participant.current() {
            Some((test, origin)) if test == id => {
                self.h.participant.handle(Message::Abort {
                    test_id: id.to_owned(),
                    reason: "aborted through the API".into(),
                });
                Some(origin)
            }
            _ => match self.h.store.meta(id) {
                Ok(meta) => Some(meta.origin),
                Err(_) => self.origin_from_gossip(id).await,
            },
        };
        let Some(origin) = origin else {
            return Err(self.not_found(id));
        };
        if origin == self.me() {
            // We coordinated it, yet our origin does not know it: this agent
            // restarted since, so nothing runs it any more.
            let phase = self
                .h
                .store
                .meta(id)
                .map_or_else(|_| "unknown".to_owned(), |m| m.phase.as_str().to_owned());
            return Err(not_running(id, self.me(), &phase));
        }
        let member = self
            .member(&origin)
            .await
            .and_then(|m| m.usable().map(|i| i.quic));
        let Some(quic) = member else {
            return Err(ApiError::Unavailable {
                message: format!(
                    "agent {origin} coordinates test {id} but is not reachable; this agent stopped \
                     its own part, and every agent stops at the test's hard deadline"
                ),
            });
        };
        let body = protocol::encode(
            &Message::Abort {
                test_id: id.to_owned(),
                reason: format!("aborted through agent {}", self.me()),
            },
            &[],
        );
        match self
            .h
            .transport
            .request(quic, body, Duration::from_secs(2))
            .await
        {
            Ok(reply) => match protocol::decode::<Response>(&reply) {
                Ok((Response::Error { message }, _)) => Err(ApiError::Conflict { message }),
                Ok((
                    Response::AlreadyOver {
                        aborted,
                        at_unix_ms,
                        ..
                    },
                    _,
                )) => Err(already_done(id, aborted, at_unix_ms)),
                _ => Ok(AbortResponse {
                    id: id.to_owned(),
                    aborted_at_unix_ms: unix_ms_now(),
                    already_ended: false,
                }),
            },
            Err(e) => Err(ApiError::Unavailable {
                message: format!("cannot reach agent {origin} to abort test {id}: {e}"),
            }),
        }
    }

    async fn origin_from_gossip(&self, id: &str) -> Option<String> {
        self.h.membership.members().await.into_iter().find_map(|m| {
            let a = m.usable()?.announcement.as_ref()?;
            (a.id == id).then(|| a.origin.clone())
        })
    }

    /// No test `id` here. The known ids are not listed: a 404 must not
    /// enumerate the fleet's tests to whoever guesses a URL.
    fn not_found(&self, id: &str) -> ApiError {
        ApiError::unknown_test(id)
    }
}

impl api::Agent for AgentCore {
    fn submit(&self, req: SubmitRequest) -> BoxFuture<'_, Result<SubmitResponse, ApiError>> {
        Box::pin(self.submit_inner(req))
    }

    fn list_tests(&self) -> BoxFuture<'_, Vec<TestBrief>> {
        Box::pin(async move {
            let mut out: BTreeMap<String, TestBrief> = BTreeMap::new();
            if let Ok(list) = self.h.store.list() {
                for meta in list {
                    out.insert(meta.id.clone(), views::brief(&meta));
                }
            }
            for id in self.h.origin.ids() {
                if let Some(s) = self.h.origin.snapshot(&id) {
                    out.insert(id, views::brief(&s.meta));
                }
            }
            let mut list: Vec<TestBrief> = out.into_values().collect();
            list.sort_by_key(|t| std::cmp::Reverse(t.start_unix_ms));
            list
        })
    }

    fn list_fleet_tests(&self) -> BoxFuture<'_, Vec<TestBrief>> {
        Box::pin(self.fleet_tests())
    }

    fn get_test(&self, id: &str) -> BoxFuture<'_, Result<TestView, ApiError>> {
        let id = id.to_owned();
        Box::pin(async move { self.get_test_inner(&id).await })
    }

    fn get_summary(&self, id: &str) -> BoxFuture<'_, Result<SummaryView, ApiError>> {
        let id = id.to_owned();
        Box::pin(async move { self.get_summary_inner(&id).await })
    }

    fn abort(&self, id: &str) -> BoxFuture<'_, Result<AbortResponse, ApiError>> {
        let id = id.to_owned();
        Box::pin(async move { self.abort_inner(&id).await })
    }

    fn members(&self) -> BoxFuture<'_, Vec<MemberView>> {
        Box::pin(self.member_views())
    }

    fn ready(&self) -> bool {
        !self.draining.load(Ordering::SeqCst)
    }

    fn prometheus(&self) -> BoxFuture<'_, PromSnapshot> {
        Box::pin(async move {
            let members = self.h.membership.members().await;
            let dead = self.h.membership.dead().await;
            let mut by_phase = BTreeMap::new();
            if let Ok(list) = self.h.store.list() {
                for m in list {
                    *by_phase.entry(m.phase.as_str().to_owned()).or_insert(0) += 1;
                }
            }
            let info = self.h.membership.info().await;
            let bounds = &self.h.settings.metrics_buckets;
            let share = self.h.participant.share().map(|s| api::ShareFigures {
                test_id: s.test_id,
                running: s.running,
                vus: s.vus,
                scenarios: s
                    .scenarios
                    .into_iter()
                    .map(|(scenario, t)| api::ScenarioFigures {
                        scenario,
                        requests: t.requests,
                        failed: t.failed,
                        iterations: t.iterations,
                        data_sent: t.data_sent,
                        data_received: t.data_received,
                        duration: crate::metrics::exposition::buckets(&t.duration, bounds),
                    })
                    .collect(),
            });
            let generator = api::GeneratorFigures {
                cpu_seconds: crate::os::process_cpu_time().map(|d| d.as_secs_f64()),
                cpus: std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64),
                lag: self.lags.buckets(),
            };
            let gossip = self.h.gossip_stats.counts();
            PromSnapshot {
                gossip_rejected: Reject::ALL
                    .iter()
                    .map(|r| (r.as_str().to_owned(), gossip.rejected(*r)))
                    .collect(),
                gossip_accepted: gossip.accepted,
                gossip_send_failed: gossip.send_failed,
                identity_mismatches: self.identities.impostors_found(),
                members_live: members.len() as u64,
                members_dead: dead.len() as u64,
                tests_by_phase: by_phase,
                share,
                generator,
                agent_state: info.state.as_str().to_owned(),
                capacity: info.capacity,
                uptime: self.started.elapsed(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
            }
        })
    }
}

/// The answer to aborting a test nothing runs any more, though a record may
/// still call it `pending` or `running` (its coordinator restarted).
pub(super) fn not_running(id: &str, me: &str, phase: &str) -> ApiError {
    ApiError::Conflict {
        message: format!(
            "test {id} is not running: agent {me}, which coordinated it, neither coordinates nor \
             runs it now (it restarted since, or the test ended); its last recorded phase is \
             {phase}; nothing was aborted"
        ),
    }
}

/// The API's answer to aborting a test that is over.
fn already_done(id: &str, aborted: bool, at_unix_ms: u64) -> ApiError {
    ApiError::AlreadyDone {
        id: id.to_owned(),
        ending: if aborted {
            api::Ending::Aborted
        } else {
            api::Ending::Ended
        },
        at_unix_ms,
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What runs once a fleet test is over, on the agent that accepted it.
enum Teardown {
    /// A script's `teardown(data)`, with `setup()`'s data.
    Script(crate::script::Script, Option<String>),
    /// A plan's `teardown:` flow, with what its `setup:` captured.
    Plan(crate::engine::lifecycle::SetupValues),
}

/// Runs the test's teardown once it is sealed (or after a day, if it
/// never is).
async fn teardown_when_over(
    origin: Arc<crate::fleet::origin::Origin>,
    test_id: String,
    plan: Arc<crate::plan::Plan>,
    teardown: Teardown,
) {
    let give_up = tokio::time::Instant::now() + std::time::Duration::from_secs(24 * 3600);
    while origin.sealed(&test_id).is_none() && tokio::time::Instant::now() < give_up {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let failed = match teardown {
        Teardown::Script(script, data) => crate::script::fleet::teardown(script, plan, data)
            .await
            .err()
            .map(|e| e.to_string()),
        Teardown::Plan(values) => crate::engine::lifecycle::teardown_once(plan, &values)
            .await
            .err()
            .map(|e| e.to_string()),
    };
    if let Some(e) = failed {
        tracing::warn!(test = %test_id, "teardown failed: {e}");
    }
}
