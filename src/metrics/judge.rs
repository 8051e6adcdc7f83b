//! Threshold evaluation: judges each parsed [`Threshold`] against the
//! running [`Aggregate`], k6's way.
//!
//! What each aggregation observes, in display units:
//!
//! | metric type | aggregation | observed | no data |
//! |---|---|---|---|
//! | trend | `avg` `min` `max` `med` `p(N)` | milliseconds | none: passes (as k6) |
//! | trend | `count` | samples | none: passes |
//! | counter | `count` | the sum | 0 |
//! | counter | `rate` | sum per second of `elapsed` | 0 |
//! | rate | `rate` | trues / total | 0 |
//! | gauge | `value` | last value | 0 |
//!
//! A threshold on an unknown metric, or an aggregation its metric type
//! does not have, observes nothing and fails: the plan parser refuses such
//! thresholds, so meeting one here means the plan and the catalogue
//! disagree, which must not pass silently.

use std::time::Duration;

use super::aggregate::{
    Aggregate, trend_avg_ms, trend_count, trend_max_ms, trend_med_ms, trend_min_ms,
    trend_percentile_ms,
};
use super::catalog::{Metric, MetricKind};
use super::summary::ThresholdOutcome;
use super::value::Value;
use crate::plan::{Aggregation, Threshold};

/// k6's label of an aggregation (`p(95)`, `rate`, ...).
pub fn aggregation_label(a: Aggregation) -> String {
    match a {
        Aggregation::Avg => "avg".into(),
        Aggregation::Min => "min".into(),
        Aggregation::Max => "max".into(),
        Aggregation::Med => "med".into(),
        Aggregation::Percentile(p) => format!("p({p})"),
        Aggregation::Rate => "rate".into(),
        Aggregation::Count => "count".into(),
        Aggregation::Value => "value".into(),
    }
}

/// Judges every threshold, in plan order. `elapsed` is the test time so
/// far (counters' `rate` is per second of it). No outcome is marked
/// `aborted`; see [`mark_aborts`].
pub fn evaluate(
    thresholds: &[Threshold],
    agg: &Aggregate,
    elapsed: Duration,
) -> Vec<ThresholdOutcome> {
    thresholds
        .iter()
        .map(|t| {
            let (observed, ok) = match observe(t, agg, elapsed) {
                Observation::Value(x) => (Some(x), t.op.holds(x, t.value)),
                Observation::NoTrendData => (None, true),
                Observation::Invalid => (None, false),
            };
            ThresholdOutcome {
                key: t.key.clone(),
                source: t.source.clone(),
                aggregation: aggregation_label(t.aggregation),
                observed,
                ok,
                aborted: false,
            }
        })
        .collect()
}

/// True when a failed threshold has `abortOnFail` and its
/// `delayAbortEval` has passed. `outcomes` are [`evaluate`]'s, in the same
/// order as `thresholds`.
pub fn should_abort(
    thresholds: &[Threshold],
    outcomes: &[ThresholdOutcome],
    elapsed: Duration,
) -> bool {
    thresholds
        .iter()
        .zip(outcomes)
        .any(|(t, o)| aborts(t, o, elapsed))
}

/// Marks the outcomes that stop the test (see [`should_abort`]) as
/// `aborted`, for the summary; returns whether any did.
pub fn mark_aborts(
    thresholds: &[Threshold],
    outcomes: &mut [ThresholdOutcome],
    elapsed: Duration,
) -> bool {
    let mut any = false;
    for (t, o) in thresholds.iter().zip(outcomes.iter_mut()) {
        if aborts(t, o, elapsed) {
            o.aborted = true;
            any = true;
        }
    }
    any
}

fn aborts(t: &Threshold, o: &ThresholdOutcome, elapsed: Duration) -> bool {
    !o.ok && t.abort_on_fail && elapsed >= t.delay_abort_eval
}

enum Observation {
    Value(f64),
    /// A trend (sub)metric without samples: k6 passes it.
    NoTrendData,
    /// Unknown metric or an aggregation its type does not have.
    Invalid,
}

fn observe(t: &Threshold, agg: &Aggregate, elapsed: Duration) -> Observation {
    let Some(metric) = Metric::from_name(&t.metric) else {
        return Observation::Invalid;
    };
    let value = agg.metric_value(metric, &t.tags);
    let seconds = elapsed.as_secs_f64();
    let observed = match (metric.kind(), t.aggregation, value) {
        (MetricKind::Trend, a, Some(Value::Trend(h))) if !h.is_empty() => match a {
            Aggregation::Avg => trend_avg_ms(&h),
            Aggregation::Min => trend_min_ms(&h),
            Aggregation::Max => trend_max_ms(&h),
            Aggregation::Med => trend_med_ms(&h),
            Aggregation::Percentile(p) => trend_percentile_ms(&h, p),
            Aggregation::Count => trend_count(&h) as f64,
            Aggregation::Rate | Aggregation::Value => return Observation::Invalid,
        },
        (MetricKind::Trend, Aggregation::Rate | Aggregation::Value, _) => {
            return Observation::Invalid;
        }
        (MetricKind::Trend, _, _) => return Observation::NoTrendData,
        (MetricKind::Counter, Aggregation::Count | Aggregation::Rate, v) => {
            let count = match v {
                Some(Value::Counter(c)) => c,
                _ => 0.0,
            };
            match t.aggregation {
                Aggregation::Count => count,
                _ if seconds > 0.0 => count / seconds,
                _ => 0.0,
            }
        }
        (MetricKind::Rate, Aggregation::Rate, v) => match v {
            Some(Value::Rate { trues, total }) if total > 0 => trues as f64 / total as f64,
            _ => 0.0,
        },
        (MetricKind::Gauge, Aggregation::Value, v) => match v {
            Some(Value::Gauge { value, .. }) => value,
            _ => 0.0,
        },
        _ => return Observation::Invalid,
    };
    Observation::Value(observed)
}

#[cfg(test)]
mod tests;
