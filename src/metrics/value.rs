//! The value of one series, and the two ways values combine.
//!
//! A [`Value`] is what one series collected over one interval (or, in an
//! aggregate, over the whole test so far). Values combine in two ways that
//! differ only for gauges:
//!
//! - [`Value::merge_sources`]: the same interval seen by different agents.
//!   Everything adds, gauges too (fleet-wide `vus` is the sum of every
//!   agent's). Commutative and associative, so a fleet may merge in any
//!   order and any tree shape.
//! - [`Value::accumulate`]: the same source, a later interval. Counters,
//!   rates and trends add; a gauge takes the later value and widens its
//!   min/max.
//!
//! Trends are [`Trend`]s: an HDR histogram of whole microseconds with the
//! exact minimum, maximum and sum beside it (see [`super::trend`]).

use std::time::Duration;

use thiserror::Error;

use super::catalog::MetricKind;
use super::trend::Trend;

/// What one series collected.
#[derive(Debug, Clone)]
pub enum Value {
    /// A sum.
    Counter(f64),
    /// The last value and the extremes seen.
    Gauge { value: f64, min: f64, max: f64 },
    /// How many of `total` samples were true.
    Rate { trues: u64, total: u64 },
    /// A distribution of durations. Boxed: a histogram is large and most
    /// values are not trends.
    Trend(Box<Trend>),
}

/// Two values could not be combined.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MergeError {
    /// The values are of different metric types: a series key's metric
    /// decides its type, so this means two sources disagree about a metric.
    #[error("cannot combine a {right:?} value into a {left:?} value")]
    KindMismatch { left: MetricKind, right: MetricKind },
    /// hdrhistogram refused the addition (only when its counts array would
    /// not fit in memory addresses).
    #[error("trend histograms could not be added: {reason}")]
    Histogram { reason: String },
    /// A snapshot's series are not strictly ascending by key (snapshots
    /// from the recorder and the decoder always are).
    #[error("series are not strictly ascending by key at {series}")]
    Unsorted { series: String },
    /// One of the errors above, in the named series.
    #[error("series {series}: {source}")]
    InSeries {
        series: String,
        #[source]
        source: Box<MergeError>,
    },
}

impl MergeError {
    /// Attaches the series (`metric{k:v}`) the error happened in.
    pub fn in_series(self, series: impl Into<String>) -> MergeError {
        MergeError::InSeries {
            series: series.into(),
            source: Box::new(self),
        }
    }
}

impl Value {
    /// A trend holding one duration.
    pub fn trend_of(d: Duration) -> Value {
        Value::Trend(Box::new(Trend::of(d)))
    }

    /// A gauge that saw one value.
    pub fn gauge_of(v: f64) -> Value {
        Value::Gauge {
            value: v,
            min: v,
            max: v,
        }
    }

    /// A rate that saw one sample.
    pub fn rate_of(ok: bool) -> Value {
        Value::Rate {
            trues: u64::from(ok),
            total: 1,
        }
    }

    /// The metric type this value belongs to.
    pub fn kind(&self) -> MetricKind {
        match self {
            Value::Counter(_) => MetricKind::Counter,
            Value::Gauge { .. } => MetricKind::Gauge,
            Value::Rate { .. } => MetricKind::Rate,
            Value::Trend(_) => MetricKind::Trend,
        }
    }

    /// The trend, for trends.
    pub fn as_trend(&self) -> Option<&Trend> {
        match self {
            Value::Trend(h) => Some(h),
            _ => None,
        }
    }

    /// How many samples (or, for counters, how much) this value holds; used
    /// to tell whether a series saw anything.
    pub fn samples(&self) -> f64 {
        match self {
            Value::Counter(c) => *c,
            Value::Gauge { .. } => 1.0,
            Value::Rate { total, .. } => *total as f64,
            Value::Trend(t) => t.count() as f64,
        }
    }

    /// Combines `other`, the same interval from another source (agent):
    /// everything adds, gauges included.
    pub fn merge_sources(&mut self, other: &Value) -> Result<(), MergeError> {
        let left = self.kind();
        match (self, other) {
            (
                Value::Gauge { value, min, max },
                Value::Gauge {
                    value: v2,
                    min: min2,
                    max: max2,
                },
            ) => {
                *value += v2;
                *min += min2;
                *max += max2;
                Ok(())
            }
            (this, other) => this.add_common(other, left),
        }
    }

    /// Combines `later`, the next interval from the same source: gauges
    /// take the later value and widen min/max; everything else adds.
    pub fn accumulate(&mut self, later: &Value) -> Result<(), MergeError> {
        let left = self.kind();
        match (self, later) {
            (
                Value::Gauge { value, min, max },
                Value::Gauge {
                    value: v2,
                    min: min2,
                    max: max2,
                },
            ) => {
                *value = *v2;
                *min = min.min(*min2);
                *max = max.max(*max2);
                Ok(())
            }
            (this, later) => this.add_common(later, left),
        }
    }

    /// The additive part shared by both merges (everything but gauges).
    fn add_common(&mut self, other: &Value, left: MetricKind) -> Result<(), MergeError> {
        match (self, other) {
            (Value::Counter(a), Value::Counter(b)) => {
                *a += b;
                Ok(())
            }
            (
                Value::Rate { trues, total },
                Value::Rate {
                    trues: t2,
                    total: n2,
                },
            ) => {
                *trues = trues.saturating_add(*t2);
                *total = total.saturating_add(*n2);
                Ok(())
            }
            (Value::Trend(a), Value::Trend(b)) => a.add(b),
            (_, other) => Err(MergeError::KindMismatch {
                left,
                right: other.kind(),
            }),
        }
    }
}

/// Equality by content: trends compare their samples (see [`Trend`]'s
/// equality), not the size of their counts arrays.
impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Counter(a), Value::Counter(b)) => a == b,
            (
                Value::Gauge { value, min, max },
                Value::Gauge {
                    value: v2,
                    min: min2,
                    max: max2,
                },
            ) => value == v2 && min == min2 && max == max2,
            (
                Value::Rate { trues, total },
                Value::Rate {
                    trues: t2,
                    total: n2,
                },
            ) => trues == t2 && total == n2,
            (Value::Trend(a), Value::Trend(b)) => a == b,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A trend of nanosecond values.
    fn trend(ns: &[u64]) -> Value {
        let mut t = Trend::new();
        for &v in ns {
            t.record_ns(v);
        }
        Value::Trend(Box::new(t))
    }

    #[test]
    fn counters_rates_and_trends_add_in_both_merges() {
        for merge in [Value::merge_sources, Value::accumulate] {
            let mut c = Value::Counter(2.0);
            merge(&mut c, &Value::Counter(3.0)).expect("same kind");
            assert_eq!(c, Value::Counter(5.0));

            let mut r = Value::Rate { trues: 1, total: 4 };
            merge(&mut r, &Value::Rate { trues: 2, total: 2 }).expect("same kind");
            assert_eq!(r, Value::Rate { trues: 3, total: 6 });

            let mut t = trend(&[10_400, 20_000]);
            merge(&mut t, &trend(&[30, 1_000_000_007])).expect("same kind");
            assert_eq!(t, trend(&[10_400, 20_000, 30, 1_000_000_007]));
            let t = t.as_trend().expect("trend");
            assert_eq!((t.min_ns(), t.max_ns()), (30, 1_000_000_007));
            assert_eq!(t.sum_ns(), 1_000_030_437);
        }
    }

    #[test]
    fn gauges_add_across_sources_but_follow_time_within_one() {
        let early = Value::Gauge {
            value: 5.0,
            min: 1.0,
            max: 9.0,
        };
        let later = Value::Gauge {
            value: 3.0,
            min: 2.0,
            max: 12.0,
        };

        let mut fleet = early.clone();
        fleet.merge_sources(&later).expect("same kind");
        assert_eq!(
            fleet,
            Value::Gauge {
                value: 8.0,
                min: 3.0,
                max: 21.0
            }
        );

        let mut run = early;
        run.accumulate(&later).expect("same kind");
        assert_eq!(
            run,
            Value::Gauge {
                value: 3.0,
                min: 1.0,
                max: 12.0
            }
        );
    }

    #[test]
    fn mismatched_kinds_are_refused_and_leave_the_value_alone() {
        let mut c = Value::Counter(1.0);
        let err = c
            .merge_sources(&Value::rate_of(true))
            .expect_err("kinds differ");
        assert_eq!(
            err,
            MergeError::KindMismatch {
                left: MetricKind::Counter,
                right: MetricKind::Rate
            }
        );
        assert_eq!(c, Value::Counter(1.0));
        let err = Value::gauge_of(1.0)
            .accumulate(&trend(&[1]))
            .expect_err("kinds differ")
            .in_series("vus{}");
        assert!(err.to_string().starts_with("series vus{}: cannot combine"));
    }

    #[test]
    fn values_compare_by_content() {
        assert_eq!(trend(&[5_000, 7_000]), trend(&[7_000, 5_000]));
        assert_ne!(trend(&[5_000]), trend(&[6_000]));
        assert_ne!(trend(&[5_000]), trend(&[5_000, 5_000]));
        // Same microsecond bucket, different exact values.
        assert_ne!(trend(&[5_000]), trend(&[5_001]));
        assert_ne!(Value::Counter(1.0), Value::rate_of(true));
    }
}
