//! A fleet test's report (`volley run --agent … --report FILE`): its time
//! series from the fleet's merged intervals, which each poll of the live
//! view brings (the latest minute of them; the follower polls every
//! second), its
//! agents, start spread and incidents from the latest views that had them,
//! its results from the sealed summary.

use std::time::Duration;

use crate::api::{SummaryView, TestView};
use crate::report::html::{
    AgentRow, FleetData, Meta, Point, ReportData, SummaryData, Timeline, model,
};

use super::now_unix_ms;

/// A fleet test's report, from the live views the follower polls and the
/// sealed summary.
pub struct FleetPictures {
    source: String,
    timeline: Timeline,
    last: Option<TestView>,
    vus_max: u64,
    /// The latest of each that a view had: an ended test's last view may
    /// come from an agent's store, which keeps neither.
    start_spread_ms: Option<f64>,
    agents: Vec<AgentRow>,
    incidents: Vec<String>,
}

impl FleetPictures {
    pub fn new(source: String) -> FleetPictures {
        FleetPictures {
            source,
            // A fleet's length is not known here; the timeline's bound
            // holds whatever it is.
            timeline: Timeline::new(Duration::ZERO, Vec::new()),
            last: None,
            vus_max: 0,
            start_spread_ms: None,
            agents: Vec::new(),
            incidents: Vec::new(),
        }
    }

    /// One poll of the test: the merged intervals it brings that are
    /// newer than the last point become points.
    pub fn observe(&mut self, view: &TestView) {
        let start = view.brief.start_unix_ms;
        for p in view.live.iter().flat_map(|l| &l.recent) {
            let vus = p.vus.map_or(0, |v| v.max(0.0).round() as u64);
            self.vus_max = self.vus_max.max(vus);
            let secs = p.span_ms / 1000.0;
            self.timeline.push_point(Point {
                t_ms: p.end_unix_ms.saturating_sub(start) as f64,
                span_ms: p.span_ms,
                rps: if secs > 0.0 {
                    p.requests as f64 / secs
                } else {
                    0.0
                },
                vus,
                vus_max: self.vus_max,
                p50_ms: p.p50_ms,
                p95_ms: p.p95_ms,
                p99_ms: p.p99_ms,
                requests: p.requests as f64,
                failed: p.failed,
                failed_rate: (p.requests > 0).then(|| p.failed as f64 / p.requests as f64),
                iterations: p.iterations as f64,
                checks_failed: 0,
                scenario_rps: Vec::new(),
            });
        }
        if view.start_spread_ms.is_some() {
            self.start_spread_ms = view.start_spread_ms;
        }
        if !view.agent_states.is_empty() {
            self.agents = view
                .agent_states
                .iter()
                .map(|a| AgentRow {
                    agent: a.agent.clone(),
                    region: a.region.clone(),
                    share: a.share.clone(),
                    state: a.state.clone(),
                    started_unix_ms: a.started_unix_ms,
                    requests: a.requests,
                    failed: a.failed,
                })
                .collect();
        }
        for incident in &view.incidents {
            if !self.incidents.contains(incident) {
                self.incidents.push(incident.clone());
            }
        }
        self.last = Some(view.clone());
    }

    /// The report's data once the summary is sealed.
    pub fn finish(&self, id: &str, summary: &SummaryView) -> ReportData {
        let view = self.last.as_ref();
        let aborted = view.is_some_and(|v| v.brief.phase == "aborted");
        ReportData {
            meta: Meta {
                source: self.source.clone(),
                execution: "fleet".to_owned(),
                test_id: Some(id.to_owned()),
                start_unix_ms: view.map_or(0, |v| v.brief.start_unix_ms),
                duration_ms: summary.summary.duration.as_secs_f64() * 1000.0,
                vus_max: self.vus_max,
                status: model::status(true, summary.passed, aborted).to_owned(),
                generated_unix_ms: now_unix_ms(),
            },
            timeline: self.timeline.points(),
            scenarios: Vec::new(),
            summary: Some(SummaryData::from_summary(&summary.summary)),
            fleet: Some(FleetData {
                start_spread_ms: self.start_spread_ms,
                incidents: self.incidents.clone(),
                agents: self.agents.clone(),
            }),
        }
    }
}
