//! A plan's flows flattened for the VU loop: a linear list of ops per
//! scenario (no recursion, no boxing per group) and, per request, whatever
//! can be rendered once (static URL, headers, body).

use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;

use crate::plan::{CaptureSource, GroupId, MetricValue, Plan, Request, ResponseValue, Sleep, Step};

/// One instruction of a flattened flow.
#[derive(Debug, Clone)]
pub enum Op {
    Request(Arc<Prepared>),
    Sleep(Sleep),
    GroupStart(GroupId),
    GroupEnd(GroupId),
    /// Requests sent in parallel.
    Batch(Vec<Arc<Prepared>>),
    /// A value added to a custom metric's series (of the plan's dynamic
    /// catalog).
    Metric {
        series: u32,
        value: MetricValue,
    },
}

/// A request plus its pre-rendered static parts.
#[derive(Debug)]
pub struct Prepared {
    pub request: Arc<Request>,
    /// The URL when it has no placeholders.
    pub static_url: Option<String>,
    /// All headers, when none has placeholders.
    pub static_headers: Option<Vec<(HeaderName, String)>>,
    /// The body when it has no placeholders.
    pub static_body: Option<Vec<u8>>,
    /// Response headers must be kept (a header check or capture).
    pub keep_headers: bool,
    /// The response body must be kept.
    pub keep_body: bool,
    /// A check or capture parses the body as JSON.
    pub parse_json: bool,
    /// Custom metric series fed from the final response, and with what.
    pub metrics: Vec<(u32, ResponseValue)>,
}

/// Flattened flows, indexed like `Plan::scenarios`.
#[derive(Debug)]
pub struct Program {
    pub scenarios: Vec<Vec<Op>>,
    /// The plan's `setup` and `teardown` flows (empty without one).
    pub setup: Vec<Op>,
    pub teardown: Vec<Op>,
}

impl Program {
    pub fn new(plan: &Plan) -> Program {
        let scenarios = plan
            .scenarios
            .iter()
            .map(|s| {
                let mut ops = Vec::new();
                flatten(&s.flow.steps, plan, &mut ops);
                ops
            })
            .collect();
        let lifecycle = |flow: &Option<Arc<crate::plan::Flow>>| {
            let mut ops = Vec::new();
            if let Some(f) = flow {
                flatten(&f.steps, plan, &mut ops);
            }
            ops
        };
        Program {
            scenarios,
            setup: lifecycle(&plan.setup),
            teardown: lifecycle(&plan.teardown),
        }
    }
}

fn flatten(steps: &[Step], plan: &Plan, ops: &mut Vec<Op>) {
    for step in steps {
        match step {
            Step::Request(r) => ops.push(Op::Request(Arc::new(prepare(r, plan)))),
            Step::Sleep(s) => ops.push(Op::Sleep(*s)),
            Step::Metric(m) => {
                let mut tags = m.tags.clone();
                tags.sort();
                ops.push(Op::Metric {
                    series: plan
                        .dynamic
                        .series_id(m.metric.name(), m.scenario, &m.group, &tags),
                    value: m.value.clone(),
                });
            }
            Step::Batch(rs) => ops.push(Op::Batch(
                rs.iter().map(|r| Arc::new(prepare(r, plan))).collect(),
            )),
            Step::Group(g) => {
                ops.push(Op::GroupStart(g.id));
                flatten(&g.steps, plan, ops);
                ops.push(Op::GroupEnd(g.id));
            }
        }
    }
}

fn prepare(r: &Arc<Request>, plan: &Plan) -> Prepared {
    let static_headers = r
        .headers
        .iter()
        .map(|(k, v)| v.as_static().map(|v| (k.clone(), v.to_owned())))
        .collect::<Option<Vec<_>>>();
    let keep_headers = r.checks.iter().any(|c| c.kind.reads_headers())
        || r.captures
            .iter()
            .any(|c| matches!(c.source, CaptureSource::Header(_)));
    let parse_json = r.checks.iter().any(|c| c.kind.parses_json())
        || r.captures
            .iter()
            .any(|c| matches!(c.source, CaptureSource::JsonPointer(_)));
    Prepared {
        static_url: r.url.as_static().map(str::to_owned),
        static_headers,
        static_body: match (&r.body, &r.compression) {
            (None, _) => Some(Vec::new()),
            (Some(b), None) => b.as_static(),
            // Compressed once, sent by every iteration.
            (Some(b), Some(c)) => b
                .as_static()
                .and_then(|s| super::http::encoding::compress(c, &s).ok()),
        },
        keep_headers,
        keep_body: r.needs_body || !plan.http.discard_response_bodies,
        parse_json,
        metrics: r
            .metrics
            .iter()
            .map(|m| {
                let series = plan
                    .dynamic
                    .series_id(m.metric.name(), r.scenario, &r.group, &[]);
                (series, m.value)
            })
            .collect(),
        request: r.clone(),
    }
}

/// A pause of `sleep`, drawn uniformly when it is a range.
pub fn sleep_duration(sleep: Sleep) -> Duration {
    match sleep {
        Sleep::Fixed(d) => d,
        Sleep::Uniform { min, max } => {
            let (lo, hi) = (min.as_nanos(), max.as_nanos());
            if hi <= lo {
                return min;
            }
            let span = u64::try_from(hi - lo).unwrap_or(u64::MAX);
            min + Duration::from_nanos(fastrand::u64(0..=span))
        }
    }
}
