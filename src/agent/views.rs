//! Turning the origin's and the store's records into the API's wire types.

use crate::api::{self, ApiError, MemberView, SummaryView, TestBrief, TestView};
use crate::fleet::identity::{Rejected, Verdict};
use crate::fleet::membership::Member;
use crate::fleet::origin::TestSnapshot;
use crate::fleet::store::TestMeta;
use crate::fleet::transport::ClockSample;
use crate::metrics::Summary;

pub fn brief(meta: &TestMeta) -> TestBrief {
    TestBrief {
        id: meta.id.clone(),
        name: meta.name.clone(),
        phase: meta.phase.as_str().to_owned(),
        origin: meta.origin.clone(),
        start_unix_ms: meta.started_unix_ms.unwrap_or(meta.submitted_unix_ms),
        end_unix_ms: meta.ended_unix_ms,
        agents: u32::try_from(meta.agents.len()).unwrap_or(u32::MAX),
        passed: meta.passed,
        partial: meta.partial,
    }
}

pub fn test_view(s: &TestSnapshot) -> TestView {
    TestView {
        brief: brief(&s.meta),
        revision: s.revision,
        agent_states: s
            .agents
            .iter()
            .map(|a| api::AgentState {
                agent: a.agent.clone(),
                state: a.state.clone(),
                region: a.region.clone(),
                share: a.share.clone().unwrap_or_else(|| "0".into()),
                started_unix_ms: a.started_unix_us.map(|us| us / 1000),
                rps: a.rps,
                requests: a.requests,
                failed: a.failed,
                last_seen_ms: None,
                relayed_by: a.relayed_by.clone(),
            })
            .collect(),
        live: s.live.as_ref().map(|l| api::LiveMetrics {
            elapsed_ms: u64::try_from(s.elapsed.as_millis()).unwrap_or(u64::MAX),
            vus: l.vus.max(0.0) as u64,
            rps: l.rps,
            p50_ms: l.p50_ms,
            p95_ms: l.p95_ms,
            p99_ms: l.p99_ms,
            requests: l.requests,
            failed: l.failed,
            iterations: l.iterations,
            thresholds: s.outcomes.clone(),
            recent: s
                .recent
                .iter()
                .map(|p| api::LivePoint {
                    end_unix_ms: p.end_unix_ms,
                    span_ms: p.span.as_secs_f64() * 1000.0,
                    requests: p.requests,
                    failed: p.failed,
                    iterations: p.iterations,
                    vus: p.vus,
                    p50_ms: p.p50_ms,
                    p95_ms: p.p95_ms,
                    p99_ms: p.p99_ms,
                })
                .collect(),
        }),
        incidents: s.incidents.clone(),
        start_spread_ms: s.start_spread.map(|d| d.as_secs_f64() * 1000.0),
    }
}

/// A test known only from the data directory (history, or another origin's).
pub fn view_from_meta(meta: &TestMeta) -> TestView {
    TestView {
        brief: brief(meta),
        revision: 0,
        agent_states: Vec::new(),
        live: None,
        incidents: meta.note.iter().cloned().collect(),
        start_spread_ms: None,
    }
}

/// `aborted`: the test was aborted, so it did not pass whatever its thresholds say.
pub fn summary_view(
    id: &str,
    summary: &Summary,
    text: &str,
    export: serde_json::Value,
    aborted: bool,
) -> SummaryView {
    SummaryView {
        id: id.to_owned(),
        text: text.to_owned(),
        summary: summary.clone(),
        k6_export: export,
        // Aborted, or stopped by an agent's memory watchdog (see `seal`):
        // not the test that was asked for.
        passed: summary.passed()
            && !aborted
            && !summary
                .notes
                .iter()
                .any(|n| crate::fleet::protocol::stopped_by_memory_ceiling(n)),
    }
}

/// `refused`: why this agent's last mutual TLS handshake with `m` failed;
/// `verdict`: whether `m` proved its node id (`None`: not checked yet).
pub fn member_view(
    m: &Member,
    clock: Option<&ClockSample>,
    refused: Option<&str>,
    verdict: Option<&Verdict>,
) -> MemberView {
    let info = m.usable();
    MemberView {
        node_id: m.node_id.clone(),
        generation: m.generation,
        gossip_addr: m.gossip_addr,
        api_addr: info.map(|i| i.api),
        quic_addr: info.map(|i| i.quic),
        labels: info.map(|i| i.labels.as_map().clone()).unwrap_or_default(),
        capacity: info.map_or(0.0, |i| i.capacity),
        state: info.map_or_else(|| "unknown".into(), |i| i.state.as_str().to_owned()),
        test: info.and_then(|i| i.test.clone()),
        version: info.map(|i| i.version.clone()).unwrap_or_default(),
        compatible: m.compatible,
        clock_offset_ms: clock.map(|c| c.offset as f64 / 1e6),
        rtt_ms: clock.map(|c| c.rtt.as_secs_f64() * 1000.0),
        is_self: m.is_self,
        identity: verdict.map_or("unverified", Verdict::label).to_owned(),
        problem: match &m.info {
            Err(e) => Some(e.to_string()),
            Ok(_) if !m.compatible => Some("incompatible protocol version".into()),
            Ok(_) => refused
                .map(|why| format!("mutual TLS refused: {why}"))
                .or_else(|| {
                    verdict
                        .and_then(Verdict::reason)
                        .map(|why| format!("identity not verified: {why}"))
                }),
        },
    }
}

/// A live incarnation rejected as an impostor (or superseded): shown, never used.
pub fn rejected_view(r: &Rejected) -> MemberView {
    MemberView {
        node_id: r.node_id.clone(),
        generation: r.generation,
        gossip_addr: r.gossip_addr,
        api_addr: None,
        quic_addr: None,
        labels: Default::default(),
        capacity: 0.0,
        state: "rejected".to_owned(),
        test: None,
        version: String::new(),
        compatible: false,
        clock_offset_ms: None,
        rtt_ms: None,
        is_self: false,
        identity: r.verdict.label().to_owned(),
        problem: r.verdict.reason().map(str::to_owned),
    }
}

/// A forwarded call's failure, as this agent's answer.
pub fn client_error(e: api::ClientError) -> ApiError {
    match e.status().map(|s| s.as_u16()) {
        Some(404) => ApiError::NotFound {
            what: e.to_string(),
        },
        Some(409) => ApiError::Conflict {
            message: e.to_string(),
        },
        _ => ApiError::Unavailable {
            message: e.to_string(),
        },
    }
}
