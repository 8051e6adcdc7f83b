//! The agent's face: the `api::Agent` implementation the HTTP API and the
//! LoadTest controller call. It turns API requests into calls of the
//! coordination service ([`crate::fleet::service`]), loads and checks what
//! is submitted (plan, script, egress, outputs, setup), and forwards reads
//! of a test to the agent that coordinates it. The fleet-wide test list is
//! in `listing`.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::time::Instant;

use super::config::AgentSettings;
use super::views;
use crate::api::{
    self, AbortResponse, ApiError, MemberView, PromSnapshot, SubmitRequest, SubmitResponse,
    SummaryView, TestBrief, TestView,
};
use crate::fleet::identity::Verdict;
use crate::fleet::membership::{GossipStats, Membership, Reject};
use crate::fleet::origin::Submission;
use crate::fleet::participant;
use crate::fleet::protocol::PlanBundle;
use crate::fleet::service::{Refusal, Service, Want};
use crate::fleet::store::{Store, TestPhase};
use crate::plan::{self, format_duration};

/// What the core is built from.
pub struct Handles {
    pub settings: AgentSettings,
    /// What the gossip socket counts (dropped datagrams by reason), for `/metrics`.
    pub gossip_stats: Arc<GossipStats>,
    pub membership: Arc<Membership>,
    pub service: Arc<Service>,
    pub store: Arc<Store>,
    pub api_addr: std::net::SocketAddr,
}

pub struct AgentCore {
    pub(super) h: Handles,
    started: Instant,
    /// How late an always-running probe wakes up (for `/metrics`).
    pub(super) lags: Arc<crate::engine::saturation::LagCounts>,
}

impl AgentCore {
    pub fn new(h: Handles) -> Arc<AgentCore> {
        Arc::new(AgentCore {
            h,
            started: Instant::now(),
            lags: Arc::default(),
        })
    }

    /// Takes no new test, stops this agent's load (the origin hands its
    /// share to the others) and says so in gossip.
    pub async fn drain(&self, reason: &str) {
        self.h.service.drain(reason).await;
    }

    /// True while this agent takes part in a test.
    pub fn busy(&self) -> bool {
        self.h.service.busy()
    }

    pub async fn close(&self) {
        self.h.service.close().await;
    }

    pub(super) fn me(&self) -> &str {
        &self.h.settings.node_id
    }

    /// The API client of another agent, to forward a request to it.
    async fn peer_api(&self, node: &str) -> Result<api::ApiClient, ApiError> {
        let member =
            self.h
                .service
                .live_member(node)
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
        let want = Want {
            selector: &req.selector,
            match_expressions: &req.match_expressions,
            min_agents: req.min_agents.unwrap_or(1) as usize,
        };
        let service = &self.h.service;
        let candidates = service.select(&want).await.map_err(api_error)?;
        service.admit(&plan, &candidates).await.map_err(api_error)?;
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
        let (meta, allocation) = service
            .start(
                Submission {
                    name,
                    bundle: bundle.clone(),
                    plan: Arc::new(plan.clone()),
                    min_agents: want.min_agents,
                    lead,
                    outputs,
                },
                candidates,
            )
            .await
            .map_err(api_error)?;
        let start = meta.started_unix_ms.unwrap_or_default();
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
                Arc::clone(service.origin()),
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

    async fn get_test_inner(&self, id: &str) -> Result<TestView, ApiError> {
        if let Some(s) = self.h.service.origin().snapshot(id) {
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
        if let Some(origin) = self.h.service.origin_from_gossip(id).await {
            let client = self.peer_api(&origin).await?;
            return client.get_test(id).await.map_err(views::client_error);
        }
        Err(self.not_found(id))
    }

    async fn get_summary_inner(&self, id: &str) -> Result<SummaryView, ApiError> {
        if let Some(sealed) = self.h.service.origin().sealed(id) {
            let aborted = self
                .h
                .service
                .origin()
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
        if let Some(s) = self.h.service.origin().snapshot(id) {
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
            _ => self.h.service.origin_from_gossip(id).await,
        };
        if let Some(origin) = origin {
            let client = self.peer_api(&origin).await?;
            return client.get_summary(id).await.map_err(views::client_error);
        }
        Err(self.not_found(id))
    }

    /// `/v1/members`: the view, each member with its clock, its identity
    /// verdict and any problem; then the live incarnations rejected as
    /// impostors (or superseded), so operators see them.
    async fn member_views(&self) -> Vec<MemberView> {
        let service = &self.h.service;
        let (clocks, refused) = (service.clocks(), service.refused());
        let members = self.h.membership.members().await;
        let mut views: Vec<MemberView> = members
            .iter()
            .map(|m| {
                let verdict = if m.is_self {
                    Some(Verdict::Verified)
                } else {
                    service.identities().get(&m.node_id, m.generation)
                };
                views::member_view(
                    m,
                    clocks.get(&m.node_id),
                    refused.get(&m.node_id).map(String::as_str),
                    verdict.as_ref(),
                )
            })
            .collect();
        let live = self.h.membership.live_incarnations().await;
        views.extend(
            service
                .identities()
                .rejected(&live)
                .iter()
                .map(views::rejected_view),
        );
        views
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
            for id in self.h.service.origin().ids() {
                if let Some(s) = self.h.service.origin().snapshot(&id) {
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
        Box::pin(async move {
            let aborted = self.h.service.abort(&id).await.map_err(api_error)?;
            Ok(AbortResponse {
                id,
                aborted_at_unix_ms: aborted.at_unix_ms,
                already_ended: false,
            })
        })
    }

    fn members(&self) -> BoxFuture<'_, Vec<MemberView>> {
        Box::pin(self.member_views())
    }

    fn ready(&self) -> bool {
        !self.h.service.is_draining()
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
            let share = self
                .h
                .service
                .participant()
                .share()
                .map(|s| api::ShareFigures {
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
                identity_mismatches: self.h.service.identities().impostors_found(),
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

/// The API's answer to a refusal of the coordination service.
fn api_error(refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::Unavailable(message) => ApiError::Unavailable { message },
        Refusal::Conflict(message) => ApiError::Conflict { message },
        Refusal::Unprocessable(message) => ApiError::Unprocessable { message },
        Refusal::UnknownTest(id) => ApiError::unknown_test(&id),
        Refusal::AlreadyOver {
            id,
            aborted,
            at_unix_ms,
        } => ApiError::AlreadyDone {
            id,
            ending: if aborted {
                api::Ending::Aborted
            } else {
                api::Ending::Ended
            },
            at_unix_ms,
        },
    }
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
