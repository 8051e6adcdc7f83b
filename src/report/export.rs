//! k6's `--summary-export` JSON, reproduced key for key so that anything
//! that reads k6's export (dashboards, CI scripts, Volley's own benchmark
//! harness) reads Volley's.
//!
//! The shape, checked against a real k6 1.1.0 export
//! (`tests/fixtures/k6-1.1.0-summary-export.json`):
//!
//! ```text
//! { "root_group": { "name": "", "path": "", "id": md5(path),
//!                   "groups": { name: group, ... },
//!                   "checks": { name: { name, path, id, passes, fails }, ... } },
//!   "metrics": { "http_reqs": { "count", "rate" },                 // counter
//!                "vus": { "value", "min", "max" },                 // gauge
//!                "http_req_failed": { "passes", "fails", "value" },// rate
//!                "http_req_duration": { "avg", "min", "med", "max",
//!                                       "p(90)", "p(95)" },         // trend, ms
//!                "http_req_duration{status:200}": { ... },
//!                ... } }
//! ```
//!
//! A metric with thresholds also carries `"thresholds": { source: bool }`,
//! where **`true` means the threshold failed** (was crossed), as in k6.
//! Trends carry exactly the summary trend stats (`count` included when
//! asked for). Rates: `passes` counts true samples, so for
//! `http_req_failed` it is the number of failed requests. Group and check
//! ids are the MD5 of their path (`::group::check`). Unlike k6's
//! `handleSummary` data, the export has no `options` or `state` object.
//! A plan with `targets` adds Volley's `"matrix"`: one object per agent
//! region x target region (`region`, `target_region`, `requests`,
//! `failed`, `p50_ms`, `p95_ms`, `p99_ms` and, beside the in-region cell,
//! `p50_delta_ms`, `p95_delta_ms`, `p99_delta_ms`).

use serde_json::{Map, Value, json};

use super::lookup::MetricKey;
use crate::metrics::{
    CheckSummary, Metric, MetricKind, MetricSummary, MetricValues, Summary, ThresholdOutcome,
};
use crate::plan::TrendStat;

/// What the export needs beyond the summary itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportContext {
    /// `summaryTrendStats`: the statistics each trend lists, in order.
    pub trend_stats: Vec<TrendStat>,
}

impl Default for ExportContext {
    fn default() -> Self {
        ExportContext {
            trend_stats: TrendStat::k6_defaults(),
        }
    }
}

/// The k6 summary export of `summary`.
pub fn k6_summary_export(summary: &Summary, ctx: &ExportContext) -> Value {
    let mut export = json!({
        "root_group": root_group(&summary.checks),
        "metrics": metrics(summary, ctx),
    });
    // Volley's own key, only for a plan with `targets`.
    if !summary.matrix.is_empty()
        && let (Some(obj), Ok(cells)) = (
            export.as_object_mut(),
            serde_json::to_value(&summary.matrix),
        )
    {
        obj.insert("matrix".into(), cells);
    }
    export
}

// === root_group ===

/// A group and what it holds, before conversion to JSON.
#[derive(Debug, Default)]
struct Group {
    name: String,
    path: String,
    groups: Vec<Group>,
    /// `(name, passes, fails)`, repeated names merged.
    checks: Vec<(String, u64, u64)>,
}

fn root_group(checks: &[CheckSummary]) -> Value {
    let mut root = Group::default();
    for check in checks {
        let group = root.descend(&check.group);
        match group
            .checks
            .iter_mut()
            .find(|(name, _, _)| *name == check.name)
        {
            Some((_, passes, fails)) => {
                *passes = passes.saturating_add(check.passes);
                *fails = fails.saturating_add(check.fails);
            }
            None => group
                .checks
                .push((check.name.clone(), check.passes, check.fails)),
        }
    }
    root.to_json()
}

impl Group {
    /// The group at `path` (`""`, `"::a::b"`; a missing leading `::` is
    /// tolerated), created on the way down as needed.
    fn descend(&mut self, path: &str) -> &mut Group {
        let mut node = self;
        for name in path.split("::").filter(|s| !s.is_empty()) {
            let at = match node.groups.iter().position(|g| g.name == name) {
                Some(at) => at,
                None => {
                    node.groups.push(Group {
                        name: name.to_owned(),
                        path: format!("{}::{name}", node.path),
                        ..Group::default()
                    });
                    node.groups.len() - 1
                }
            };
            node = &mut node.groups[at];
        }
        node
    }

    fn to_json(&self) -> Value {
        let groups: Map<String, Value> = self
            .groups
            .iter()
            .map(|g| (g.name.clone(), g.to_json()))
            .collect();
        let checks: Map<String, Value> = self
            .checks
            .iter()
            .map(|(name, passes, fails)| {
                let path = format!("{}::{name}", self.path);
                let check = json!({
                    "name": name,
                    "path": path,
                    "id": crate::report::md5_hex(path.as_bytes()),
                    "passes": passes,
                    "fails": fails,
                });
                (name.clone(), check)
            })
            .collect();
        json!({
            "name": self.name,
            "path": self.path,
            "id": crate::report::md5_hex(self.path.as_bytes()),
            "groups": groups,
            "checks": checks,
        })
    }
}

// === metrics ===

fn metrics(summary: &Summary, ctx: &ExportContext) -> Map<String, Value> {
    let mut out = Map::new();
    for metric in &summary.metrics {
        let mut entry = values(&metric.values, metric, ctx);
        let key = MetricKey::of(metric);
        let outcomes = summary
            .thresholds
            .iter()
            .filter(|t| MetricKey::parse(&t.key) == key);
        add_thresholds(&mut entry, outcomes);
        out.insert(metric.key(), Value::Object(entry));
    }
    // k6 exports a thresholded metric even when it saw no sample, with
    // zero values; do the same for thresholds the summary has no metric for.
    for outcome in &summary.thresholds {
        let key = MetricKey::parse(&outcome.key);
        if summary.metrics.iter().any(|m| MetricKey::of(m) == key) {
            continue;
        }
        let Some(kind) = Metric::from_name(&key.name).map(Metric::kind) else {
            continue;
        };
        let empty = MetricSummary {
            name: key.name.clone(),
            tags: key.tags.clone(),
            values: zero_values(kind),
        };
        let name = empty.key();
        if out.contains_key(&name) {
            continue;
        }
        let mut entry = values(&empty.values, &empty, ctx);
        add_thresholds(
            &mut entry,
            summary
                .thresholds
                .iter()
                .filter(|t| MetricKey::parse(&t.key) == key),
        );
        out.insert(name, Value::Object(entry));
    }
    out
}

fn zero_values(kind: MetricKind) -> MetricValues {
    match kind {
        MetricKind::Counter => MetricValues::Counter {
            count: 0.0,
            rate: 0.0,
        },
        MetricKind::Gauge => MetricValues::Gauge {
            value: 0.0,
            min: 0.0,
            max: 0.0,
        },
        MetricKind::Rate => MetricValues::Rate {
            rate: 0.0,
            passes: 0,
            fails: 0,
        },
        MetricKind::Trend => MetricValues::Trend {
            count: 0,
            stats: Vec::new(),
        },
    }
}

fn values(
    values: &MetricValues,
    metric: &MetricSummary,
    ctx: &ExportContext,
) -> Map<String, Value> {
    let mut entry = Map::new();
    match values {
        MetricValues::Counter { count, rate } => {
            entry.insert("count".into(), number(*count));
            entry.insert("rate".into(), number(*rate));
        }
        MetricValues::Gauge { value, min, max } => {
            entry.insert("value".into(), number(*value));
            entry.insert("min".into(), number(*min));
            entry.insert("max".into(), number(*max));
        }
        MetricValues::Rate {
            rate,
            passes,
            fails,
        } => {
            entry.insert("passes".into(), json!(passes));
            entry.insert("fails".into(), json!(fails));
            entry.insert("value".into(), number(*rate));
        }
        MetricValues::Trend { count, stats } => {
            for stat in &ctx.trend_stats {
                let label = stat.label();
                let value = match metric.stat(&label) {
                    Some(v) => Some(v),
                    None if label == "count" => Some(*count as f64),
                    // No sample: k6 reports zeros.
                    None if *count == 0 && stats.is_empty() => Some(0.0),
                    None => None,
                };
                if let Some(v) = value {
                    entry.insert(label, number(v));
                }
            }
        }
    }
    entry
}

fn add_thresholds<'a>(
    entry: &mut Map<String, Value>,
    outcomes: impl Iterator<Item = &'a ThresholdOutcome>,
) {
    let map: Map<String, Value> = outcomes
        .map(|t| (t.source.clone(), Value::Bool(!t.ok)))
        .collect();
    if !map.is_empty() {
        entry.insert("thresholds".into(), Value::Object(map));
    }
}

/// A JSON number as Go's encoder writes a float64: integral values without
/// a fraction (`76`, not `76.0`). Non-finite values, which JSON cannot
/// hold, become `null`.
fn number(value: f64) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if value.is_finite() && value.fract() == 0.0 && value.abs() < EXACT {
        // Integral and within ±2^53: the conversion is exact.
        json!(value as i64)
    } else {
        serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests;
