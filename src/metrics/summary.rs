//! The end-of-test summary as data: what the report renders (k6 text, k6
//! JSON export) and what the fleet ships from the origin to clients.
//!
//! Built from recorded metrics by `Summary::build` (see `summary_build`);
//! values are already in display units (trends in milliseconds).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::catalog::{Metric, MetricKind};
use crate::plan::TrendStat;

/// A finished (or live) test's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Wall time from the test's start to its end (or to now, when live).
    pub duration: Duration,
    /// Whole metrics, then the submetrics the summary shows (thresholded
    /// ones and `http_req_duration{expected_response:true}`), each right
    /// after its parent; metrics sorted by name.
    pub metrics: Vec<MetricSummary>,
    /// One outcome per threshold, in plan order.
    pub thresholds: Vec<ThresholdOutcome>,
    /// Checks in the order they appear in the plan.
    pub checks: Vec<CheckSummary>,
    /// Failed requests by error class (`timeout`, `connect_refused`, ...) and
    /// by unexpected HTTP status (`status 503`), most frequent first.
    pub errors: Vec<(String, u64)>,
    /// Which trend statistics to show, in order.
    #[serde(skip, default = "TrendStat::k6_defaults")]
    pub trend_stats: Vec<TrendStat>,
    /// Per-source breakdown (fleet: per agent, per region); empty for a
    /// local run.
    pub breakdown: Vec<Breakdown>,
    /// Notes worth a user's attention (series cardinality capped, an agent
    /// lost mid-test, start spread), shown under the summary.
    pub notes: Vec<String>,
    /// Per-scenario and per-group results (`--summary-mode full`).
    #[serde(default)]
    pub scopes: Vec<SummaryScope>,
    /// Agent region x target region, for a plan with `targets`; empty
    /// otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matrix: Vec<MatrixCell>,
}

/// One cell of the in-region vs cross-region matrix: the requests sent
/// from agents of `region` to the target of `target_region`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixCell {
    pub region: String,
    pub target_region: String,
    pub requests: u64,
    /// Failed requests (`http_req_failed`).
    pub failed: u64,
    /// Percentiles of `http_req_duration`, in milliseconds.
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Each percentile minus the in-region cell's (`region` to itself) of
    /// the same agent region; `None` when that cell does not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_delta_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95_delta_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_delta_ms: Option<f64>,
}

/// The results of one scenario, or of one group within it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryScope {
    pub kind: ScopeKind,
    /// The scenario's name, or the group's own name (the last part of its
    /// path).
    pub name: String,
    /// 0 for a scenario, 1 for its top-level groups, 2 for theirs, ...
    pub depth: usize,
    pub metrics: Vec<MetricSummary>,
    pub checks: Vec<CheckSummary>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScopeKind {
    Scenario,
    Group,
}

/// The values of one metric or submetric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// `http_req_duration`.
    pub name: String,
    /// Submetric tag filter, empty for the whole metric.
    pub tags: Vec<(String, String)>,
    pub values: MetricValues,
}

/// Values by metric type, in display units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MetricValues {
    /// `count` and `rate` (per second over the test's duration).
    Counter {
        count: f64,
        rate: f64,
    },
    Gauge {
        value: f64,
        min: f64,
        max: f64,
    },
    /// `passes` = true samples (for `http_req_failed`: failures), as k6.
    Rate {
        rate: f64,
        passes: u64,
        fails: u64,
    },
    /// Trend statistics in milliseconds; `stats` follows the summary's
    /// `trend_stats` order and always holds avg, min, med, max, p(90), p(95).
    Trend {
        count: u64,
        stats: Vec<(String, f64)>,
    },
}

/// The result of one threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdOutcome {
    /// Metric key as written (`http_req_duration{scenario:main}`).
    pub key: String,
    /// Expression as written (`p(95)<200`).
    pub source: String,
    /// Aggregation label (`p(95)`, `rate`, `count`).
    pub aggregation: String,
    /// The observed value in display units; `None` when there was no data,
    /// which k6 counts as a pass for trends and a failure never.
    pub observed: Option<f64>,
    pub ok: bool,
    /// True when this failure stopped the test (`abortOnFail`).
    pub aborted: bool,
}

/// Totals of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSummary {
    pub name: String,
    /// Group path (`""` at the root).
    pub group: String,
    pub passes: u64,
    pub fails: u64,
}

/// Results of one source of load (an agent, a region) in a fleet test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Breakdown {
    /// `agent` or a label name (`region`).
    pub dimension: String,
    /// Agent id or label value.
    pub value: String,
    pub requests: u64,
    pub failed: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

impl MetricSummary {
    /// The built-in metric this summarises.
    pub fn metric(&self) -> Option<Metric> {
        Metric::from_name(&self.name)
    }

    pub fn kind(&self) -> Option<MetricKind> {
        self.metric().map(Metric::kind)
    }

    /// The summary label: `name` or `name{k:v,...}`.
    pub fn key(&self) -> String {
        if self.tags.is_empty() {
            return self.name.clone();
        }
        let tags: Vec<String> = self.tags.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        format!("{}{{{}}}", self.name, tags.join(","))
    }

    /// A trend statistic by its k6 label (`p(95)`), if computed.
    pub fn stat(&self, label: &str) -> Option<f64> {
        match &self.values {
            MetricValues::Trend { stats, .. } => {
                stats.iter().find(|(l, _)| l == label).map(|(_, v)| *v)
            }
            _ => None,
        }
    }
}

impl Summary {
    /// True when every threshold passed.
    pub fn passed(&self) -> bool {
        self.thresholds.iter().all(|t| t.ok)
    }

    pub fn metric(&self, key: &str) -> Option<&MetricSummary> {
        self.metrics.iter().find(|m| m.key() == key)
    }
}
