//! A fake [`Agent`] with canned fleet data that records every call, so the
//! API can be tested alone.
//!
//! The fleet it pretends to be: test `t-1` is running, `t-2` passed, and
//! submits create `t-3`, `t-4`, ... The submit outcome is switchable
//! ([`SubmitMode`]) to exercise every error the agent can answer with.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use volley::api::{
    AbortResponse, Agent, AgentState, AllocationEntry, ApiError, BoxFuture, Ending, LiveMetrics,
    MemberView, PromSnapshot, ScenarioFigures, ShareFigures, SubmitRequest, SubmitResponse,
    SummaryView, TestBrief, TestView,
};
use volley::metrics::{CheckSummary, MetricSummary, MetricValues, Summary, ThresholdOutcome};
use volley::plan::TrendStat;

/// Unix ms of the canned tests' start.
pub(crate) const T1_START: u64 = 1_740_830_400_000;
pub(crate) const T2_END: u64 = 1_740_830_460_000;

/// What `submit` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubmitMode {
    Accept,
    Busy,
    TooFewAgents,
    Draining,
    /// Never answers (for the request timeout).
    Hang,
    /// Panics (the API must answer 500 and keep serving).
    Panic,
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Call {
    Submit(Box<SubmitRequest>),
    ListTests,
    GetTest(String),
    GetSummary(String),
    Abort(String),
    Members,
    Ready,
    Prometheus,
}

pub(crate) struct FakeAgent {
    calls: Mutex<Vec<Call>>,
    mode: Mutex<SubmitMode>,
    ready: AtomicBool,
    next_id: AtomicU32,
    /// Ids aborted so far, with when, so a second abort is refused.
    aborted: Mutex<BTreeMap<String, u64>>,
}

impl FakeAgent {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            calls: Mutex::new(Vec::new()),
            mode: Mutex::new(SubmitMode::Accept),
            ready: AtomicBool::new(true),
            next_id: AtomicU32::new(3),
            aborted: Mutex::new(BTreeMap::new()),
        })
    }

    pub(crate) fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("fake lock").clone()
    }

    pub(crate) fn submits(&self) -> Vec<SubmitRequest> {
        self.calls()
            .into_iter()
            .filter_map(|call| match call {
                Call::Submit(request) => Some(*request),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn set_mode(&self, mode: SubmitMode) {
        *self.mode.lock().expect("fake lock") = mode;
    }

    pub(crate) fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    fn record(&self, call: Call) {
        self.calls.lock().expect("fake lock").push(call);
    }

    fn known() -> Vec<String> {
        vec!["t-1".into(), "t-2".into()]
    }
}

pub(crate) fn brief(id: &str) -> Option<TestBrief> {
    match id {
        "t-1" => Some(TestBrief {
            id: "t-1".into(),
            name: "checkout soak".into(),
            phase: "running".into(),
            origin: "node-a".into(),
            start_unix_ms: T1_START,
            end_unix_ms: None,
            agents: 2,
            passed: None,
            partial: false,
        }),
        "t-2" => Some(TestBrief {
            id: "t-2".into(),
            name: "smoke".into(),
            phase: "passed".into(),
            origin: "node-b".into(),
            start_unix_ms: T1_START - 120_000,
            end_unix_ms: Some(T2_END),
            agents: 1,
            passed: Some(true),
            partial: false,
        }),
        _ => None,
    }
}

pub(crate) fn threshold() -> ThresholdOutcome {
    ThresholdOutcome {
        key: "http_req_duration".into(),
        source: "p(95)<300".into(),
        aggregation: "p(95)".into(),
        observed: Some(212.5),
        ok: true,
        aborted: false,
    }
}

pub(crate) fn view(id: &str) -> Option<TestView> {
    let brief = brief(id)?;
    let running = brief.end_unix_ms.is_none();
    Some(TestView {
        brief,
        revision: 4,
        agent_states: vec![
            AgentState {
                agent: "node-a".into(),
                state: if running { "running" } else { "done" }.into(),
                region: Some("eu".into()),
                share: "1/2".into(),
                started_unix_ms: Some(T1_START + 1),
                rps: 750.0,
                requests: 45_000,
                failed: 3,
                last_seen_ms: Some(400),
                relayed_by: None,
            },
            AgentState {
                agent: "node-b".into(),
                state: if running { "running" } else { "done" }.into(),
                region: None,
                share: "1/2".into(),
                started_unix_ms: None,
                rps: 749.5,
                requests: 44_970,
                failed: 0,
                last_seen_ms: None,
                relayed_by: None,
            },
        ],
        live: running.then(|| LiveMetrics {
            elapsed_ms: 60_000,
            vus: 40,
            rps: 1499.5,
            p50_ms: 120.0,
            p95_ms: 212.5,
            p99_ms: 280.0,
            requests: 89_970,
            failed: 3,
            iterations: 89_970,
            thresholds: vec![threshold()],
            recent: Vec::new(),
        }),
        incidents: vec!["node-c left the fleet before the start".into()],
        start_spread_ms: Some(1.25),
    })
}

pub(crate) fn summary_view() -> SummaryView {
    let summary = Summary {
        duration: Duration::from_secs(60),
        metrics: vec![
            MetricSummary {
                name: "http_req_duration".into(),
                tags: Vec::new(),
                values: MetricValues::Trend {
                    count: 1000,
                    stats: vec![("avg".into(), 100.0), ("p(95)".into(), 212.5)],
                },
            },
            MetricSummary {
                name: "http_reqs".into(),
                tags: Vec::new(),
                values: MetricValues::Counter {
                    count: 1000.0,
                    rate: 16.6,
                },
            },
        ],
        thresholds: vec![threshold()],
        checks: vec![CheckSummary {
            name: "status is 200".into(),
            group: String::new(),
            passes: 1000,
            fails: 0,
        }],
        errors: vec![("status 503".into(), 2)],
        trend_stats: TrendStat::k6_defaults(),
        breakdown: Vec::new(),
        notes: vec!["start spread 1.25 ms".into()],
        matrix: Vec::new(),
        scopes: Vec::new(),
    };
    SummaryView {
        id: "t-2".into(),
        text: "     ✓ http_req_duration..: avg=100ms p(95)=212.5ms\n".into(),
        passed: summary.passed(),
        summary,
        k6_export: serde_json::json!({"metrics": {"http_reqs": {"count": 1000}}}),
    }
}

pub(crate) fn members() -> Vec<MemberView> {
    vec![
        MemberView {
            node_id: "node-a".into(),
            generation: 1_740_830_000_000,
            gossip_addr: "10.0.0.1:7280".parse().expect("addr"),
            api_addr: Some("10.0.0.1:7070".parse().expect("addr")),
            quic_addr: Some("10.0.0.1:7281".parse().expect("addr")),
            labels: BTreeMap::from([("region".into(), "eu".into())]),
            capacity: 2.0,
            state: "busy".into(),
            test: Some("t-1".into()),
            version: "0.1.0".into(),
            compatible: true,
            clock_offset_ms: None,
            rtt_ms: None,
            is_self: true,
            identity: "verified".into(),
            problem: None,
        },
        MemberView {
            node_id: "node-c".into(),
            generation: 7,
            gossip_addr: "10.0.0.3:7280".parse().expect("addr"),
            api_addr: None,
            quic_addr: None,
            labels: BTreeMap::new(),
            capacity: 1.0,
            state: "ready".into(),
            test: None,
            version: "0.0.9".into(),
            compatible: false,
            clock_offset_ms: Some(-3.5),
            rtt_ms: Some(0.8),
            is_self: false,
            identity: "verified".into(),
            problem: Some("protocol version 0 is older than this fleet's 1".into()),
        },
    ]
}

pub(crate) fn prom_snapshot() -> PromSnapshot {
    PromSnapshot {
        members_live: 2,
        members_dead: 1,
        tests_by_phase: BTreeMap::from([("passed".into(), 1), ("running".into(), 1)]),
        share: Some(ShareFigures {
            test_id: "t-1".into(),
            running: true,
            vus: 20,
            scenarios: vec![ScenarioFigures {
                scenario: "default".into(),
                requests: 45_000,
                failed: 3,
                ..ScenarioFigures::default()
            }],
        }),
        agent_state: "busy".into(),
        capacity: 2.0,
        uptime: Duration::from_secs(3600),
        version: "0.1.0".into(),
        ..PromSnapshot::default()
    }
}

impl Agent for FakeAgent {
    fn submit(&self, req: SubmitRequest) -> BoxFuture<'_, Result<SubmitResponse, ApiError>> {
        self.record(Call::Submit(Box::new(req)));
        let mode = *self.mode.lock().expect("fake lock");
        async move {
            match mode {
                SubmitMode::Accept => {
                    let n = self.next_id.fetch_add(1, Ordering::SeqCst);
                    Ok(SubmitResponse {
                        id: format!("t-{n}"),
                        start_unix_ms: T1_START + 600_000,
                        starts_in: "2.0s".into(),
                        allocation: vec![
                            AllocationEntry {
                                agent: "node-a".into(),
                                share: "2/3".into(),
                                weight: 2.0 / 3.0,
                                vus: Some(20),
                            },
                            AllocationEntry {
                                agent: "node-b".into(),
                                share: "1/3".into(),
                                weight: 1.0 / 3.0,
                                vus: None,
                            },
                        ],
                        revision: 1,
                        origin: "node-a".into(),
                    })
                }
                SubmitMode::Busy => Err(ApiError::Conflict {
                    message: "agents node-a and node-b are busy with test t-1".into(),
                }),
                SubmitMode::TooFewAgents => Err(ApiError::Unprocessable {
                    message: "minAgents is 3 but only 2 agents match selector region=eu".into(),
                }),
                SubmitMode::Draining => Err(ApiError::Unavailable {
                    message: "this agent is draining".into(),
                }),
                SubmitMode::Hang => futures::future::pending().await,
                SubmitMode::Panic => panic!("fake agent fault"),
            }
        }
        .boxed()
    }

    fn list_tests(&self) -> BoxFuture<'_, Vec<TestBrief>> {
        self.record(Call::ListTests);
        async { Self::known().iter().filter_map(|id| brief(id)).collect() }.boxed()
    }

    fn get_test(&self, id: &str) -> BoxFuture<'_, Result<TestView, ApiError>> {
        self.record(Call::GetTest(id.to_owned()));
        let result = view(id).ok_or_else(|| ApiError::unknown_test(id));
        async move { result }.boxed()
    }

    fn get_summary(&self, id: &str) -> BoxFuture<'_, Result<SummaryView, ApiError>> {
        self.record(Call::GetSummary(id.to_owned()));
        let result = match id {
            "t-1" => Err(ApiError::Conflict {
                message: "test \"t-1\" is still running; its summary is ready when it ends".into(),
            }),
            "t-2" => Ok(summary_view()),
            _ => Err(ApiError::unknown_test(id)),
        };
        async move { result }.boxed()
    }

    fn abort(&self, id: &str) -> BoxFuture<'_, Result<AbortResponse, ApiError>> {
        self.record(Call::Abort(id.to_owned()));
        let id = id.to_owned();
        async move {
            match id.as_str() {
                "t-1" => {
                    let mut aborted = self.aborted.lock().expect("fake lock");
                    if let Some(at) = aborted.get(&id) {
                        return Err(ApiError::AlreadyDone {
                            id,
                            ending: Ending::Aborted,
                            at_unix_ms: *at,
                        });
                    }
                    let at = T1_START + 90_000;
                    aborted.insert(id.clone(), at);
                    Ok(AbortResponse {
                        id,
                        aborted_at_unix_ms: at,
                        already_ended: false,
                    })
                }
                "t-2" => Err(ApiError::AlreadyDone {
                    id,
                    ending: Ending::Ended,
                    at_unix_ms: T2_END,
                }),
                _ => Err(ApiError::unknown_test(&id)),
            }
        }
        .boxed()
    }

    fn members(&self) -> BoxFuture<'_, Vec<MemberView>> {
        self.record(Call::Members);
        async { members() }.boxed()
    }

    fn ready(&self) -> bool {
        self.record(Call::Ready);
        self.ready.load(Ordering::SeqCst)
    }

    fn prometheus(&self) -> BoxFuture<'_, PromSnapshot> {
        self.record(Call::Prometheus);
        async { prom_snapshot() }.boxed()
    }
}
