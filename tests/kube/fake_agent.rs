//! A fake `volley::api::Agent` for the controller tests: it records every
//! call and holds fleet tests whose life the test drives by hand
//! (`set_running`, `finish`), so each status transition happens when the
//! test says so.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use volley::api::{
    AbortResponse, Agent, AllocationEntry, ApiError, BoxFuture, Ending, LiveMetrics, MemberView,
    PromSnapshot, SubmitRequest, SubmitResponse, SummaryView, TestBrief, TestView,
};
use volley::metrics::{MetricSummary, MetricValues, Summary, ThresholdOutcome};
use volley::plan::TrendStat;

/// The shared start instant of every fake test: 2026-01-01T00:00:02Z.
pub const START_UNIX_MS: u64 = 1_767_225_602_000;

#[derive(Default)]
struct State {
    submits: Vec<SubmitRequest>,
    aborts: Vec<String>,
    /// Every submit fails with this, when set.
    submit_error: Option<ApiError>,
    tests: BTreeMap<String, (TestView, Option<SummaryView>)>,
}

/// One fake agent (and its view of the fleet).
pub struct FakeAgent {
    node: String,
    state: Mutex<State>,
}

impl FakeAgent {
    pub fn new(node: &str) -> Arc<FakeAgent> {
        Arc::new(FakeAgent {
            node: node.to_string(),
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes every submit fail with `err`.
    pub fn fail_submits(&self, err: ApiError) {
        self.state().submit_error = Some(err);
    }

    pub fn submits(&self) -> Vec<SubmitRequest> {
        self.state().submits.clone()
    }

    pub fn aborts(&self) -> Vec<String> {
        self.state().aborts.clone()
    }

    /// Registers a fleet test that another agent started (for take-overs).
    pub fn add_test(&self, id: &str, origin: &str) {
        let view = view(id, "starting", origin);
        self.state().tests.insert(id.to_string(), (view, None));
    }

    /// The test generates load: live numbers appear.
    pub fn set_running(&self, id: &str, rps: f64, p95_ms: f64) {
        let mut st = self.state();
        let (view, _) = st.tests.get_mut(id).expect("known test");
        view.brief.phase = "running".into();
        view.live = Some(LiveMetrics {
            elapsed_ms: 1000,
            vus: 10,
            rps,
            p50_ms: p95_ms / 2.0,
            p95_ms,
            p99_ms: p95_ms * 2.0,
            requests: 100,
            failed: 0,
            iterations: 100,
            thresholds: vec![],
            recent: Vec::new(),
        });
    }

    /// The test ends with these threshold outcomes.
    pub fn finish(&self, id: &str, requests: u64, thresholds: Vec<ThresholdOutcome>) {
        let mut st = self.state();
        let (view, summary) = st.tests.get_mut(id).expect("known test");
        let passed = thresholds.iter().all(|t| t.ok);
        view.brief.phase = if passed { "passed" } else { "failed" }.into();
        view.brief.end_unix_ms = Some(START_UNIX_MS + 10_000);
        view.brief.passed = Some(passed);
        *summary = Some(SummaryView {
            id: id.to_string(),
            text: "k6-style text".into(),
            summary: summary_of(requests, thresholds),
            k6_export: serde_json::json!({}),
            passed,
        });
    }
}

fn view(id: &str, phase: &str, origin: &str) -> TestView {
    TestView {
        brief: TestBrief {
            id: id.to_string(),
            name: id.to_string(),
            phase: phase.to_string(),
            origin: origin.to_string(),
            start_unix_ms: START_UNIX_MS,
            end_unix_ms: None,
            agents: 2,
            passed: None,
            partial: false,
        },
        revision: 1,
        agent_states: vec![],
        live: None,
        incidents: vec![],
        start_spread_ms: None,
    }
}

fn summary_of(requests: u64, thresholds: Vec<ThresholdOutcome>) -> Summary {
    Summary {
        duration: Duration::from_secs(10),
        metrics: vec![
            MetricSummary {
                name: "http_req_duration".into(),
                tags: vec![],
                values: MetricValues::Trend {
                    count: requests,
                    stats: vec![("avg".into(), 6.0), ("p(95)".into(), 12.34)],
                },
            },
            MetricSummary {
                name: "http_req_failed".into(),
                tags: vec![],
                values: MetricValues::Rate {
                    rate: 0.0,
                    passes: 0,
                    fails: requests,
                },
            },
            MetricSummary {
                name: "http_reqs".into(),
                tags: vec![],
                values: MetricValues::Counter {
                    count: requests as f64,
                    rate: requests as f64 / 10.0,
                },
            },
        ],
        thresholds,
        checks: vec![],
        errors: vec![],
        trend_stats: TrendStat::k6_defaults(),
        breakdown: vec![],
        notes: vec![],
        matrix: Vec::new(),
        scopes: Vec::new(),
    }
}

/// A threshold outcome for [`FakeAgent::finish`].
pub fn threshold(key: &str, source: &str, ok: bool, observed: f64) -> ThresholdOutcome {
    ThresholdOutcome {
        key: key.into(),
        source: source.into(),
        aggregation: source.split(['<', '>', '=']).next().unwrap_or("").into(),
        observed: Some(observed),
        ok,
        aborted: false,
    }
}

impl Agent for FakeAgent {
    fn submit(&self, req: SubmitRequest) -> BoxFuture<'_, Result<SubmitResponse, ApiError>> {
        Box::pin(async move {
            let mut st = self.state();
            st.submits.push(req);
            if let Some(err) = st.submit_error.clone() {
                return Err(err);
            }
            let id = format!("t-{}", st.submits.len());
            st.tests
                .insert(id.clone(), (view(&id, "pending", &self.node), None));
            Ok(SubmitResponse {
                id,
                start_unix_ms: START_UNIX_MS,
                starts_in: "2.0s".into(),
                allocation: ["node-a", "node-b"]
                    .into_iter()
                    .map(|agent| AllocationEntry {
                        agent: agent.into(),
                        share: "1/2".into(),
                        weight: 0.5,
                        vus: None,
                    })
                    .collect(),
                revision: 1,
                origin: self.node.clone(),
            })
        })
    }

    fn list_tests(&self) -> BoxFuture<'_, Vec<TestBrief>> {
        Box::pin(async move {
            let st = self.state();
            st.tests.values().map(|(v, _)| v.brief.clone()).collect()
        })
    }

    fn get_test(&self, id: &str) -> BoxFuture<'_, Result<TestView, ApiError>> {
        let id = id.to_string();
        Box::pin(async move {
            let st = self.state();
            match st.tests.get(&id) {
                Some((view, _)) => Ok(view.clone()),
                None => Err(ApiError::unknown_test(&id)),
            }
        })
    }

    fn get_summary(&self, id: &str) -> BoxFuture<'_, Result<SummaryView, ApiError>> {
        let id = id.to_string();
        Box::pin(async move {
            let st = self.state();
            match st.tests.get(&id) {
                Some((_, Some(summary))) => Ok(summary.clone()),
                Some((_, None)) => Err(ApiError::Conflict {
                    message: format!("test {id} still runs"),
                }),
                None => Err(ApiError::unknown_test(&id)),
            }
        })
    }

    fn abort(&self, id: &str) -> BoxFuture<'_, Result<AbortResponse, ApiError>> {
        let id = id.to_string();
        Box::pin(async move {
            let mut st = self.state();
            st.aborts.push(id.clone());
            let Some((view, _)) = st.tests.get_mut(&id) else {
                return Err(ApiError::unknown_test(&id));
            };
            if let Some(at) = view.brief.end_unix_ms {
                return Err(ApiError::AlreadyDone {
                    id,
                    ending: Ending::Ended,
                    at_unix_ms: at,
                });
            }
            view.brief.phase = "aborted".into();
            view.brief.end_unix_ms = Some(START_UNIX_MS + 5_000);
            Ok(AbortResponse {
                id,
                aborted_at_unix_ms: START_UNIX_MS + 5_000,
                already_ended: false,
            })
        })
    }

    fn members(&self) -> BoxFuture<'_, Vec<MemberView>> {
        Box::pin(async move {
            let addr: SocketAddr = "127.0.0.1:7946".parse().expect("literal address");
            vec![MemberView {
                node_id: self.node.clone(),
                generation: 1,
                gossip_addr: addr,
                api_addr: None,
                quic_addr: None,
                labels: BTreeMap::new(),
                capacity: 1.0,
                state: "ready".into(),
                test: None,
                version: env!("CARGO_PKG_VERSION").into(),
                compatible: true,
                clock_offset_ms: None,
                rtt_ms: None,
                is_self: true,
                identity: "verified".into(),
                problem: None,
            }]
        })
    }

    fn ready(&self) -> bool {
        true
    }

    fn prometheus(&self) -> BoxFuture<'_, PromSnapshot> {
        Box::pin(async move {
            PromSnapshot {
                members_live: 1,
                members_dead: 0,
                tests_by_phase: BTreeMap::new(),
                agent_state: "ready".into(),
                capacity: 1.0,
                uptime: Duration::from_secs(1),
                version: env!("CARGO_PKG_VERSION").into(),
                ..PromSnapshot::default()
            }
        })
    }
}
