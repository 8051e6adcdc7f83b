//! Builds the end-of-test [`Summary`] from the running [`Aggregate`]: what
//! k6 prints under TOTAL RESULTS, as data.
//!
//! - Metrics: every metric with data, sorted by name; right after each, the
//!   submetrics the summary shows (`http_req_duration{expected_response:true}`
//!   first, then each distinct tag filter a threshold uses, in plan order).
//!   A submetric without data shows zeros; a metric without data shows
//!   nothing, submetrics included.
//! - Trend statistics: the plan's `summaryTrendStats` in its order, then any
//!   of k6's defaults it left out, so that `stats` always has avg, min, med,
//!   max, p(90) and p(95) for exports and the fleet.
//! - Checks: one line per check name and group, in plan order, summed over
//!   scenarios (a flow shared by two scenarios shows its checks once).
//! - Errors: failed requests by `error` tag, and unexpected responses by
//!   status (`status 503`), most frequent first.

use std::collections::BTreeMap;
use std::time::Duration;

use super::aggregate::{Aggregate, trend_stat_ms};
use super::catalog::{Metric, MetricKind};
use super::summary::{CheckSummary, MetricSummary, MetricValues, Summary, ThresholdOutcome};
use super::tags::key;
use super::value::Value;
use crate::plan::{CheckInfo, Plan, TrendStat};

impl Summary {
    /// The summary of everything in `agg`. `elapsed` is the test's wall
    /// time (counters' `rate` is per second of it); `outcomes` are the
    /// final threshold results, in plan order.
    pub fn build(
        agg: &Aggregate,
        plan: &Plan,
        elapsed: Duration,
        outcomes: Vec<ThresholdOutcome>,
    ) -> Summary {
        let trend_stats = if plan.summary_trend_stats.is_empty() {
            TrendStat::k6_defaults()
        } else {
            plan.summary_trend_stats.clone()
        };
        let computed = computed_stats(&trend_stats);
        let seconds = elapsed.as_secs_f64();

        // Built-ins, then a script's custom metrics: those that got
        // samples and those a threshold names (k6 shows them at zero).
        let mut by_name: Vec<Metric> = Metric::ALL.to_vec();
        for (k, _) in agg.series() {
            if k.metric.is_custom() && !by_name.contains(&k.metric) {
                by_name.push(k.metric);
            }
        }
        for t in &plan.thresholds {
            if let Some(m) = Metric::from_name(&t.metric).filter(|m| m.is_custom())
                && !by_name.contains(&m)
            {
                by_name.push(m);
            }
        }
        by_name.sort_by_key(|m| m.name());
        let mut metrics = Vec::new();
        for metric in by_name {
            // A metric without samples still shows (at zero) when a
            // threshold names it or one of its sub-metrics, as in k6.
            let thresholded = plan.thresholds.iter().any(|t| t.metric == metric.name());
            let whole = match agg.metric_value(metric, &[]) {
                Some(w) => Some(w),
                None if metric.is_custom() || thresholded => None,
                None => continue,
            };
            let Some(whole) = whole.or_else(|| empty_value(metric.kind())) else {
                continue;
            };
            metrics.push(MetricSummary {
                name: metric.name().to_string(),
                tags: Vec::new(),
                values: values_of(Some(&whole), metric.kind(), &computed, seconds),
            });
            for filter in submetric_filters(plan, metric) {
                let v = agg.metric_value(metric, &filter);
                metrics.push(MetricSummary {
                    name: metric.name().to_string(),
                    values: values_of(v.as_ref(), metric.kind(), &computed, seconds),
                    tags: filter,
                });
            }
        }

        let mut capped = false;
        let scope_metrics: Vec<Metric> = metrics
            .iter()
            .filter(|m| m.tags.is_empty())
            .filter_map(|m| m.metric())
            .collect();
        let scopes = scopes::scopes(agg, plan, &scope_metrics, &computed, seconds, &mut capped);
        let mut notes: Vec<String> = overflow_note(agg).into_iter().collect();
        if capped {
            notes.push(format!(
                "only the first {} scenarios and groups have a section of their own in the full summary",
                scopes::MAX_SCOPES
            ));
        }
        Summary {
            duration: elapsed,
            metrics,
            thresholds: outcomes,
            checks: checks(agg, plan),
            errors: errors(agg),
            trend_stats,
            breakdown: Vec::new(),
            notes,
            scopes,
            matrix: super::matrix::matrix(agg, &plan.targets),
        }
    }
}

/// The value of a metric that got no samples (a custom metric a
/// threshold names).
fn empty_value(kind: MetricKind) -> Option<Value> {
    Some(match kind {
        MetricKind::Counter => Value::Counter(0.0),
        MetricKind::Gauge => Value::gauge_of(0.0),
        MetricKind::Rate => Value::Rate { trues: 0, total: 0 },
        MetricKind::Trend => Value::Trend(Box::default()),
    })
}

/// The plan's statistics, then k6's defaults it lacks (by label).
fn computed_stats(shown: &[TrendStat]) -> Vec<TrendStat> {
    let mut all: Vec<TrendStat> = Vec::new();
    for s in shown.iter().chain(&TrendStat::k6_defaults()) {
        if !all.iter().any(|have| have.label() == s.label()) {
            all.push(*s);
        }
    }
    all
}

/// Tag filters of the submetrics shown under `metric`, without repeats.
fn submetric_filters(plan: &Plan, metric: Metric) -> Vec<Vec<(String, String)>> {
    let mut filters: Vec<Vec<(String, String)>> = Vec::new();
    if metric == Metric::HttpReqDuration {
        filters.push(vec![(key::EXPECTED_RESPONSE.into(), "true".into())]);
    }
    for t in &plan.thresholds {
        if t.metric == metric.name() && !t.tags.is_empty() && !filters.contains(&t.tags) {
            filters.push(t.tags.clone());
        }
    }
    filters
}

/// Display values of a metric's merged value (zeros when there is none).
fn values_of(
    v: Option<&Value>,
    kind: MetricKind,
    stats: &[TrendStat],
    seconds: f64,
) -> MetricValues {
    let per_second = |count: f64| if seconds > 0.0 { count / seconds } else { 0.0 };
    match (v, kind) {
        (Some(Value::Counter(c)), _) => MetricValues::Counter {
            count: *c,
            rate: per_second(*c),
        },
        (Some(Value::Gauge { value, min, max }), _) => MetricValues::Gauge {
            value: *value,
            min: *min,
            max: *max,
        },
        (Some(Value::Rate { trues, total }), _) => MetricValues::Rate {
            rate: if *total > 0 {
                *trues as f64 / *total as f64
            } else {
                0.0
            },
            passes: *trues,
            fails: total.saturating_sub(*trues),
        },
        (Some(Value::Trend(h)), _) => MetricValues::Trend {
            count: h.count(),
            stats: stats
                .iter()
                .map(|s| (s.label(), trend_stat_ms(h, s)))
                .collect(),
        },
        (None, MetricKind::Counter) => MetricValues::Counter {
            count: 0.0,
            rate: 0.0,
        },
        (None, MetricKind::Gauge) => MetricValues::Gauge {
            value: 0.0,
            min: 0.0,
            max: 0.0,
        },
        (None, MetricKind::Rate) => MetricValues::Rate {
            rate: 0.0,
            passes: 0,
            fails: 0,
        },
        (None, MetricKind::Trend) => MetricValues::Trend {
            count: 0,
            stats: stats.iter().map(|s| (s.label(), 0.0)).collect(),
        },
    }
}

/// One line per (check name, group), in plan order (then the order a
/// script first ran them, then any other check the results hold: a fleet's
/// origin learns a script's checks from the agents' series), over every
/// scenario.
fn checks(agg: &Aggregate, plan: &Plan) -> Vec<CheckSummary> {
    let mut out: Vec<CheckSummary> = Vec::new();
    let known: Vec<(String, String)> = plan
        .checks
        .iter()
        .chain(&plan.dynamic.checks())
        .map(|c| (c.name.clone(), c.group.clone()))
        .collect();
    let seen = agg.series_of(Metric::Checks).filter_map(|(k, _)| {
        let name = k.tags.get(key::CHECK)?;
        Some((
            name.to_string(),
            k.tags.get(key::GROUP).unwrap_or("").to_string(),
        ))
    });
    let mut others: Vec<(String, String)> = seen.filter(|c| !known.contains(c)).collect();
    others.sort();
    for (name, group) in known.into_iter().chain(others) {
        if out.iter().any(|s| s.name == name && s.group == group) {
            continue;
        }
        let c = CheckInfo {
            name,
            scenario: 0,
            group,
        };
        let filter = [
            (key::CHECK.to_string(), c.name.clone()),
            (key::GROUP.to_string(), c.group.clone()),
        ];
        let (passes, fails) = match agg.metric_value(Metric::Checks, &filter) {
            Some(Value::Rate { trues, total }) => (trues, total.saturating_sub(trues)),
            _ => (0, 0),
        };
        out.push(CheckSummary {
            name: c.name.clone(),
            group: c.group.clone(),
            passes,
            fails,
        });
    }
    out
}

/// Failed requests by error class, and unexpected responses by status,
/// most frequent first (ties by label).
fn errors(agg: &Aggregate) -> Vec<(String, u64)> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for (k, v) in agg.series_of(Metric::HttpReqs) {
        let Value::Counter(n) = v else { continue };
        let label = match (k.tags.get(key::ERROR), k.tags.get(key::EXPECTED_RESPONSE)) {
            (Some(error), _) => error.to_string(),
            (None, Some("false")) => match k.tags.get(key::STATUS) {
                Some(status) => format!("status {status}"),
                None => continue,
            },
            _ => continue,
        };
        *counts.entry(label).or_default() += n.round() as u64;
    }
    let mut list: Vec<(String, u64)> = counts.into_iter().filter(|(_, n)| *n > 0).collect();
    list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    list
}

/// A note naming the metrics whose series hit the cardinality bound.
fn overflow_note(agg: &Aggregate) -> Option<String> {
    let mut folded: Vec<&str> = agg
        .series()
        .filter(|(k, _)| k.tags.get(key::OVERFLOW) == Some("true"))
        .map(|(k, _)| k.metric.name())
        .collect();
    folded.sort_unstable();
    folded.dedup();
    if folded.is_empty() {
        return None;
    }
    Some(format!(
        "series limit reached: samples with new tag combinations were folded into \
         {{overflow:true}} series of {}; totals are complete, but per-tag results \
         (submetrics, checks, errors) miss those samples. Use fewer distinct tag values \
         (give requests with variable URLs a `name`) or raise the series limit.",
        folded.join(", ")
    ))
}

mod scopes;

#[cfg(test)]
mod tests;
