//! The API's wire types: what clients send and what the agent answers, in
//! JSON with camelCase names. Requests are strict (`deny_unknown_fields`, so
//! a typo like `minagents` is an error, not a silently ignored option);
//! answers are lenient, so an older client still reads a newer agent.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::metrics::{Summary, ThresholdOutcome};

/// `POST /v1/tests`: a plan to run on the fleet, with its run options.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubmitRequest {
    /// The plan text, YAML or JSON, exactly as `volley run plan.yaml` reads it.
    pub plan: String,
    /// How to read `plan`; absent means sniffed (see [`PlanFormat::sniff`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<PlanFormat>,
    /// Values for `${env.NAME}`, like k6's `-e KEY=VALUE`; they win over the
    /// plan's own `env`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Data files the plan references, by the path written in the plan, so
    /// a plan submitted from a laptop runs on agents that lack the files.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
    /// Files of `multipart:` file parts, base64, by the path written in
    /// the plan (binary files cannot travel in `files`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub uploads: BTreeMap<String, String>,
    /// Agent labels an agent must carry to take part; empty selects all.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
    /// Set-based label requirements (`In`, `NotIn`, `Exists`,
    /// `DoesNotExist`), as a Kubernetes selector's `matchExpressions`; an
    /// agent must meet them and `selector`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<crate::fleet::selector::Requirement>,
    /// Refuse (422) unless at least this many matching agents are ready, so
    /// a half-started fleet cannot silently run a smaller test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_agents: Option<u32>,
    /// How far ahead the agents agree on the shared start (k6 duration, e.g.
    /// `3s`); absent means the agent's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_time: Option<String>,
    /// A name for people; the id stays the fleet's handle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A k6 script with its local modules and opened files (then `plan`
    /// is empty): `setup()` runs once on the accepting agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<Box<crate::script::bundle::ScriptBundle>>,
    /// Where the origin writes the fleet's merged intervals, as `--out`
    /// values (`influxdb=http://HOST:8086/DB?…`); empty means the agent's
    /// default (`--out` on the agent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<String>,
    /// How the outputs break the fleet down: `fleet` (default), `region`
    /// or `agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs_by: Option<String>,
}

/// The text format of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlanFormat {
    Yaml,
    Json,
}

/// `201 Created` answer to a submit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitResponse {
    /// Fleet-wide id of the run (`GET /v1/tests/{id}`).
    pub id: String,
    /// The shared start instant the agents agreed on (Unix ms).
    pub start_unix_ms: u64,
    /// Human form of the wait before the start (`2.0s`).
    pub starts_in: String,
    /// Which agents run which share of the load.
    pub allocation: Vec<AllocationEntry>,
    /// Revision of the fleet's test record, bumped on every change.
    pub revision: u32,
    /// Node id of the agent that coordinates the run.
    pub origin: String,
}

/// One agent's part of a test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllocationEntry {
    pub agent: String,
    /// k6 execution-segment style fraction, `2/5`.
    pub share: String,
    /// The same share as a number in 0..=1, for sorting and charts.
    pub weight: f64,
    /// VUs this agent runs, for closed-model executors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vus: Option<u64>,
}

/// `GET /v1/tests`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestList {
    pub tests: Vec<TestBrief>,
}

/// One line of the test list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestBrief {
    pub id: String,
    pub name: String,
    /// `pending`, `starting`, `running`, `passed`, `failed`, `aborted`, `error`.
    pub phase: String,
    /// Node id of the coordinating agent.
    pub origin: String,
    pub start_unix_ms: u64,
    /// Absent while the test runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_unix_ms: Option<u64>,
    /// Agents taking part.
    pub agents: u32,
    /// The threshold verdict; absent until the test ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed: Option<bool>,
    /// Sealed by an agent that took over without a majority of the test's
    /// agents live (its incidents say why); the origin's own summary
    /// replaces it if one turns up. Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
}

/// `GET /v1/tests/{id}`: everything about one test, live while it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestView {
    /// The list fields, inline in the JSON object.
    #[serde(flatten)]
    pub brief: TestBrief,
    pub revision: u32,
    /// Each agent's part. Not `agents`: the flattened brief already has
    /// `agents`, the count.
    pub agent_states: Vec<AgentState>,
    /// Merged numbers so far; absent before the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveMetrics>,
    /// What went wrong along the way (an agent lost, a late start), oldest first.
    #[serde(default)]
    pub incidents: Vec<String>,
    /// How far apart the agents actually started, once all reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_spread_ms: Option<f64>,
}

/// One agent's view of its part in a test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentState {
    pub agent: String,
    /// The agent's phase in this test (`ready`, `running`, `done`, `lost`).
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Its share, `2/5`.
    pub share: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_unix_ms: Option<u64>,
    pub rps: f64,
    pub requests: u64,
    pub failed: u64,
    /// How long ago the agent last reported, so a stalled one stands out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_ms: Option<u64>,
    /// The relay whose combined interval brought the agent's latest
    /// results (tree merging); absent when they came straight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relayed_by: Option<String>,
}

/// Merged live numbers of a running test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveMetrics {
    pub elapsed_ms: u64,
    pub vus: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub requests: u64,
    pub failed: u64,
    pub iterations: u64,
    /// Thresholds evaluated on the merged data so far.
    pub thresholds: Vec<ThresholdOutcome>,
    /// The fleet's latest intervals (up to a minute), oldest first: what
    /// a chart opened mid-test starts from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent: Vec<LivePoint>,
}

/// One interval of a running test, merged across agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LivePoint {
    /// End of the interval, Unix ms.
    pub end_unix_ms: u64,
    pub span_ms: f64,
    pub requests: u64,
    pub failed: u64,
    pub iterations: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vus: Option<f64>,
    /// `http_req_duration` percentiles; absent without requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
}

/// `GET /v1/tests/{id}/summary`: the end-of-test results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryView {
    pub id: String,
    /// k6-style text summary, as `volley run` prints it.
    pub text: String,
    /// The summary model the text was rendered from.
    pub summary: Summary,
    /// k6's `--summary-export` JSON document.
    pub k6_export: serde_json::Value,
    /// Whether every threshold held.
    pub passed: bool,
}

/// `DELETE /v1/tests/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AbortResponse {
    pub id: String,
    pub aborted_at_unix_ms: u64,
    /// True when the test had already ended on its own before the abort.
    pub already_ended: bool,
}

/// `GET /v1/members`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberList {
    pub members: Vec<MemberView>,
}

/// One fleet member as this agent sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    pub node_id: String,
    /// Incarnation (process start), to tell a restarted agent from its ghost.
    pub generation: u64,
    pub gossip_addr: SocketAddr,
    /// Absent until the member published it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_addr: Option<SocketAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quic_addr: Option<SocketAddr>,
    pub labels: BTreeMap<String, String>,
    /// Capacity weight: its share of every test is proportional to this.
    pub capacity: f64,
    /// `ready`, `busy`, `draining`, `dead`, ...
    pub state: String,
    /// The test it is busy with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<String>,
    pub version: String,
    /// Whether its protocol version lets it take part in this agent's tests.
    pub compatible: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// True for the agent that answered.
    pub is_self: bool,
    /// Whether its QUIC certificate proved the node id it gossips:
    /// `verified`, `unverified` (not checked yet, or unreachable),
    /// `impostor` (another node's certificate answers for it) or
    /// `superseded` (another incarnation answers). Only verified members
    /// take part in tests.
    #[serde(default = "unverified")]
    pub identity: String,
    /// Why it cannot take part, when it cannot (shown by `volley members`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

fn unverified() -> String {
    "unverified".to_owned()
}

/// `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadyView {
    pub ready: bool,
}

// === impl SubmitRequest ===

impl SubmitRequest {
    /// A request for `plan` with every option at its default.
    pub fn new(plan: impl Into<String>) -> Self {
        Self {
            plan: plan.into(),
            ..Self::default()
        }
    }

    /// The format to read the plan with: the given one, else sniffed.
    pub fn plan_format(&self) -> PlanFormat {
        self.format.unwrap_or_else(|| PlanFormat::sniff(&self.plan))
    }
}

// === impl PlanFormat ===

impl PlanFormat {
    /// JSON when the first non-blank character is `{` (a JSON plan is an
    /// object), YAML otherwise (YAML plans are block mappings). A leading
    /// byte-order mark is skipped.
    pub fn sniff(text: &str) -> Self {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        match text.trim_start().chars().next() {
            Some('{') => PlanFormat::Json,
            _ => PlanFormat::Yaml,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PlanFormat::Yaml => "yaml",
            PlanFormat::Json => "json",
        }
    }

    /// Parses the query-string form (`yaml`, `json`, any case).
    pub fn parse(text: &str) -> Option<Self> {
        if text.eq_ignore_ascii_case("yaml") || text.eq_ignore_ascii_case("yml") {
            Some(PlanFormat::Yaml)
        } else if text.eq_ignore_ascii_case("json") {
            Some(PlanFormat::Json)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn submit_request_is_camel_case_and_defaults_everything_but_the_plan() {
        let parsed: SubmitRequest =
            serde_json::from_value(json!({"plan": "scenarios: {}"})).expect("minimal request");
        assert_eq!(parsed, SubmitRequest::new("scenarios: {}"));

        let full = json!({
            "plan": "{}", "format": "json", "env": {"K": "V"}, "files": {"users.csv": "a\n"},
            "selector": {"region": "eu"}, "minAgents": 2, "leadTime": "3s", "name": "smoke"
        });
        let parsed: SubmitRequest = serde_json::from_value(full.clone()).expect("full request");
        assert_eq!(parsed.min_agents, Some(2));
        assert_eq!(parsed.format, Some(PlanFormat::Json));
        assert_eq!(serde_json::to_value(&parsed).expect("serialises"), full);
    }

    #[test]
    fn submit_request_rejects_unknown_fields() {
        let error = serde_json::from_value::<SubmitRequest>(json!({"plan": "x", "minagents": 2}))
            .expect_err("typo must not pass");
        assert!(error.to_string().contains("minagents"), "{error}");
    }

    #[test]
    fn sniffing_picks_json_only_for_objects() {
        assert_eq!(PlanFormat::sniff("  \n{\"a\":1}"), PlanFormat::Json);
        assert_eq!(PlanFormat::sniff("\u{feff}{}"), PlanFormat::Json);
        assert_eq!(PlanFormat::sniff("scenarios:\n  a: {}"), PlanFormat::Yaml);
        assert_eq!(PlanFormat::sniff(""), PlanFormat::Yaml);
        let forced = SubmitRequest {
            format: Some(PlanFormat::Yaml),
            ..SubmitRequest::new("{}")
        };
        assert_eq!(forced.plan_format(), PlanFormat::Yaml);
        assert_eq!(PlanFormat::parse("JSON"), Some(PlanFormat::Json));
        assert_eq!(PlanFormat::parse("xml"), None);
    }

    #[test]
    fn test_view_flattens_the_brief() {
        let view = TestView {
            brief: TestBrief {
                id: "t-1".into(),
                name: "smoke".into(),
                phase: "running".into(),
                origin: "node-a".into(),
                start_unix_ms: 5,
                end_unix_ms: None,
                agents: 2,
                passed: None,
                partial: false,
            },
            revision: 3,
            agent_states: vec![AgentState {
                agent: "node-a".into(),
                state: "running".into(),
                region: None,
                share: "1/2".into(),
                started_unix_ms: Some(5),
                rps: 10.0,
                requests: 100,
                failed: 0,
                last_seen_ms: Some(200),
                relayed_by: None,
            }],
            live: None,
            incidents: vec!["agent node-b lost".into()],
            start_spread_ms: Some(1.5),
        };
        let json = serde_json::to_value(&view).expect("serialises");
        assert_eq!(json["id"], "t-1");
        assert_eq!(json["startUnixMs"], 5);
        assert_eq!(json["startSpreadMs"], 1.5);
        assert_eq!(json["agents"], 2);
        assert_eq!(json["agentStates"][0]["lastSeenMs"], 200);
        assert!(json.get("endUnixMs").is_none());
        let back: TestView = serde_json::from_value(json).expect("round trip");
        assert_eq!(back, view);
    }
}
