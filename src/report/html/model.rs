//! The data behind the HTML report and the live pages: a serializable view
//! of a test (header, time series, thresholds, checks, metric table,
//! breakdowns, a fleet's start spread and incidents) built from the
//! [`Summary`] and from the run's interval points ([`super::timeline`]).
//! Pure: no I/O, nothing rendered here.

use serde::Serialize;

use crate::metrics::summary::{MetricValues, ScopeKind, Summary};

use super::timeline::Point;

/// Everything a report page shows, as JSON (camelCase) for its script.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportData {
    pub meta: Meta,
    /// One point per interval (or per bucket of intervals on a long test).
    pub timeline: Vec<Point>,
    /// Scenario names, in the plan's order: the order of each point's
    /// `scenarioRps`.
    pub scenarios: Vec<String>,
    /// The end-of-test results (live: the results so far).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<SummaryData>,
    /// A fleet test's agents, start spread and incidents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetData>,
}

/// The test header.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// The plan or script as given (`plan.yaml`, `script.js`, a URL).
    pub source: String,
    /// `local` or `fleet`.
    pub execution: String,
    /// A fleet test's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_id: Option<String>,
    pub start_unix_ms: u64,
    /// Wall time so far (live) or in all (ended).
    pub duration_ms: f64,
    /// The most VUs that were initialised (k6's `vus_max`).
    pub vus_max: u64,
    /// `running`, `passed`, `failed` (a threshold failed), `aborted`.
    pub status: String,
    /// When the page's data was made, Unix ms.
    pub generated_unix_ms: u64,
}

/// The summary's parts, flattened for display.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryData {
    pub thresholds: Vec<ThresholdRow>,
    pub checks: Vec<CheckRow>,
    pub metrics: Vec<MetricRow>,
    pub scenarios: Vec<ScenarioRow>,
    /// Failed requests by class, most frequent first.
    pub errors: Vec<(String, u64)>,
    /// Per agent and per region (fleet tests).
    pub breakdown: Vec<BreakdownRow>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdRow {
    /// `http_req_duration{scenario:main}`.
    pub metric: String,
    /// `p(95)<200`.
    pub source: String,
    pub observed: Option<f64>,
    pub ok: bool,
    pub aborted: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckRow {
    pub name: String,
    pub group: String,
    pub passes: u64,
    pub fails: u64,
}

/// One line of the metric table: its statistics in display units (trends
/// in milliseconds), in the summary's order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricRow {
    /// `name` or `name{k:v}`.
    pub key: String,
    /// `counter`, `gauge`, `rate` or `trend`.
    pub kind: String,
    pub values: Vec<(String, f64)>,
}

/// One scenario's totals.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioRow {
    pub name: String,
    pub requests: f64,
    pub rps: f64,
    pub iterations: f64,
    /// `http_req_failed`'s rate.
    pub failed_rate: Option<f64>,
    pub p95_ms: Option<f64>,
    pub checks_passed: u64,
    pub checks_failed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BreakdownRow {
    /// `agent` or a label such as `region`.
    pub dimension: String,
    pub value: String,
    pub requests: u64,
    pub failed: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

/// What only a fleet test has.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetData {
    /// How far apart the agents started.
    pub start_spread_ms: Option<f64>,
    /// What went wrong along the way, oldest first.
    pub incidents: Vec<String>,
    pub agents: Vec<AgentRow>,
}

/// One agent's part of a fleet test.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentRow {
    pub agent: String,
    pub region: Option<String>,
    pub share: String,
    pub state: String,
    pub started_unix_ms: Option<u64>,
    pub requests: u64,
    pub failed: u64,
}

/// The status word of a test from its verdict.
pub fn status(ended: bool, passed: bool, aborted: bool) -> &'static str {
    match (ended, aborted, passed) {
        (false, _, _) => "running",
        (true, true, _) => "aborted",
        (true, false, true) => "passed",
        (true, false, false) => "failed",
    }
}

// === impl SummaryData ===

impl SummaryData {
    /// The summary's parts as the page shows them.
    pub fn from_summary(s: &Summary) -> SummaryData {
        SummaryData {
            thresholds: s
                .thresholds
                .iter()
                .map(|t| ThresholdRow {
                    metric: t.key.clone(),
                    source: t.source.clone(),
                    observed: t.observed.filter(|v| v.is_finite()),
                    ok: t.ok,
                    aborted: t.aborted,
                })
                .collect(),
            checks: s
                .checks
                .iter()
                .map(|c| CheckRow {
                    name: c.name.clone(),
                    group: c.group.clone(),
                    passes: c.passes,
                    fails: c.fails,
                })
                .collect(),
            metrics: s.metrics.iter().map(metric_row).collect(),
            scenarios: s
                .scopes
                .iter()
                .filter(|scope| scope.kind == ScopeKind::Scenario)
                .map(|scope| {
                    let find = |name: &str| scope.metrics.iter().find(|m| m.name == name);
                    let (requests, rps) = match find("http_reqs").map(|m| &m.values) {
                        Some(MetricValues::Counter { count, rate }) => (*count, *rate),
                        _ => (0.0, 0.0),
                    };
                    let iterations = match find("iterations").map(|m| &m.values) {
                        Some(MetricValues::Counter { count, .. }) => *count,
                        _ => 0.0,
                    };
                    let failed_rate = match find("http_req_failed").map(|m| &m.values) {
                        Some(MetricValues::Rate { rate, .. }) => Some(*rate),
                        _ => None,
                    };
                    let p95_ms = find("http_req_duration")
                        .filter(|m| m.tags.is_empty())
                        .and_then(|m| m.stat("p(95)"));
                    ScenarioRow {
                        name: scope.name.clone(),
                        requests,
                        rps,
                        iterations,
                        failed_rate,
                        p95_ms,
                        checks_passed: scope.checks.iter().map(|c| c.passes).sum(),
                        checks_failed: scope.checks.iter().map(|c| c.fails).sum(),
                    }
                })
                .collect(),
            errors: s.errors.clone(),
            breakdown: s
                .breakdown
                .iter()
                .map(|b| BreakdownRow {
                    dimension: b.dimension.clone(),
                    value: b.value.clone(),
                    requests: b.requests,
                    failed: b.failed,
                    rps: b.rps,
                    p50_ms: b.p50_ms,
                    p95_ms: b.p95_ms,
                    p99_ms: b.p99_ms,
                })
                .collect(),
            notes: s.notes.clone(),
        }
    }
}

fn metric_row(m: &crate::metrics::summary::MetricSummary) -> MetricRow {
    let (kind, values) = match &m.values {
        MetricValues::Counter { count, rate } => (
            "counter",
            vec![("count".to_owned(), *count), ("rate".to_owned(), *rate)],
        ),
        MetricValues::Gauge { value, min, max } => (
            "gauge",
            vec![
                ("value".to_owned(), *value),
                ("min".to_owned(), *min),
                ("max".to_owned(), *max),
            ],
        ),
        MetricValues::Rate {
            rate,
            passes,
            fails,
        } => (
            "rate",
            vec![
                ("rate".to_owned(), *rate),
                ("passes".to_owned(), *passes as f64),
                ("fails".to_owned(), *fails as f64),
            ],
        ),
        MetricValues::Trend { count, stats } => {
            let mut values = vec![("count".to_owned(), *count as f64)];
            values.extend(stats.iter().cloned());
            ("trend", values)
        }
    };
    MetricRow {
        key: m.key(),
        kind: kind.to_owned(),
        // JSON has no NaN or infinity; a statistic without data shows as 0.
        values: values
            .into_iter()
            .map(|(k, v)| (k, if v.is_finite() { v } else { 0.0 }))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::metrics::summary::{CheckSummary, MetricSummary, SummaryScope, ThresholdOutcome};

    fn summary() -> Summary {
        Summary {
            duration: Duration::from_secs(2),
            metrics: vec![
                MetricSummary {
                    name: "http_reqs".into(),
                    tags: vec![],
                    values: MetricValues::Counter {
                        count: 10.0,
                        rate: 5.0,
                    },
                },
                MetricSummary {
                    name: "http_req_duration".into(),
                    tags: vec![("expected_response".into(), "true".into())],
                    values: MetricValues::Trend {
                        count: 10,
                        stats: vec![("avg".into(), 1.5), ("p(95)".into(), f64::NAN)],
                    },
                },
            ],
            thresholds: vec![ThresholdOutcome {
                key: "http_req_duration".into(),
                source: "p(95)<200".into(),
                aggregation: "p(95)".into(),
                observed: Some(3.0),
                ok: true,
                aborted: false,
            }],
            checks: vec![CheckSummary {
                name: "is 200".into(),
                group: String::new(),
                passes: 9,
                fails: 1,
            }],
            errors: vec![("status 500".into(), 1)],
            trend_stats: Vec::new(),
            breakdown: Vec::new(),
            notes: vec!["a note".into()],
            matrix: Vec::new(),
            scopes: vec![SummaryScope {
                kind: ScopeKind::Scenario,
                name: "main".into(),
                depth: 0,
                metrics: vec![MetricSummary {
                    name: "http_reqs".into(),
                    tags: vec![],
                    values: MetricValues::Counter {
                        count: 10.0,
                        rate: 5.0,
                    },
                }],
                checks: vec![CheckSummary {
                    name: "is 200".into(),
                    group: String::new(),
                    passes: 9,
                    fails: 1,
                }],
            }],
        }
    }

    #[test]
    fn the_summary_is_flattened_with_its_own_numbers() {
        let data = SummaryData::from_summary(&summary());
        assert_eq!(data.metrics[0].key, "http_reqs");
        assert_eq!(
            data.metrics[0].values,
            vec![("count".into(), 10.0), ("rate".into(), 5.0)]
        );
        assert_eq!(
            data.metrics[1].key,
            "http_req_duration{expected_response:true}"
        );
        assert_eq!(data.metrics[1].kind, "trend");
        // count first, then the stats; NaN becomes 0 (JSON cannot hold it).
        assert_eq!(
            data.metrics[1].values,
            vec![
                ("count".into(), 10.0),
                ("avg".into(), 1.5),
                ("p(95)".into(), 0.0)
            ]
        );
        assert_eq!(data.thresholds[0].observed, Some(3.0));
        assert_eq!(data.checks[0].fails, 1);
        assert_eq!(data.scenarios[0].name, "main");
        assert_eq!(data.scenarios[0].requests, 10.0);
        assert_eq!(data.scenarios[0].checks_failed, 1);
        assert_eq!(data.scenarios[0].failed_rate, None);
        assert_eq!(data.errors, vec![("status 500".to_owned(), 1)]);
    }

    #[test]
    fn status_words() {
        assert_eq!(status(false, false, false), "running");
        assert_eq!(status(true, true, false), "passed");
        assert_eq!(status(true, false, false), "failed");
        assert_eq!(status(true, true, true), "aborted");
    }
}
