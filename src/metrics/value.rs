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
//! Trends are HDR histograms of whole microseconds with three significant
//! digits (0.1 % relative precision) that resize themselves to the largest
//! value seen, so a histogram of millisecond latencies stays small.

use std::time::Duration;

use hdrhistogram::Histogram;
use thiserror::Error;

use super::catalog::MetricKind;

/// Significant decimal digits of every trend histogram.
pub const TREND_SIGFIG: u8 = 3;

/// Largest duration a trend records, in microseconds (2^40 µs, about 12.7
/// days). Longer durations are clamped to it; no plan runs that long.
pub const TREND_MAX_US: u64 = 1 << 40;

/// What one series collected.
#[derive(Debug, Clone)]
pub enum Value {
    /// A sum.
    Counter(f64),
    /// The last value and the extremes seen.
    Gauge { value: f64, min: f64, max: f64 },
    /// How many of `total` samples were true.
    Rate { trues: u64, total: u64 },
    /// A distribution of microseconds. Boxed: a histogram is large and most
    /// values are not trends.
    Trend(Box<Histogram<u64>>),
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

/// A new, empty trend histogram: 1 µs resolution at the low end, growing
/// on demand.
pub fn new_trend() -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, 2, TREND_SIGFIG)
        .expect("invariant: bounds 1..2 with 3 significant digits are valid");
    h.auto(true);
    h
}

/// A duration as whole microseconds for a trend: rounded to the nearest
/// microsecond, clamped to [`TREND_MAX_US`]. Sub-microsecond durations
/// round to 0, which the histogram keeps as a real zero (k6 shows reused
/// connections as `http_req_connecting` = 0s, and so does Volley).
pub fn duration_to_us(d: Duration) -> u64 {
    let us = d.as_nanos().saturating_add(500) / 1000;
    u64::try_from(us).unwrap_or(u64::MAX).min(TREND_MAX_US)
}

/// Records one microsecond value into a trend histogram.
pub fn record_us(h: &mut Histogram<u64>, us: u64) {
    let us = us.min(TREND_MAX_US);
    if h.record(us).is_err() {
        // Only reachable when the histogram cannot grow (auto-resize off or
        // an address-space limit): keep the sample, clamped to the range.
        h.saturating_record(us);
    }
}

impl Value {
    /// A trend holding one duration.
    pub fn trend_of(d: Duration) -> Value {
        let mut h = new_trend();
        record_us(&mut h, duration_to_us(d));
        Value::Trend(Box::new(h))
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

    /// The histogram, for trends.
    pub fn as_trend(&self) -> Option<&Histogram<u64>> {
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
            Value::Trend(h) => h.len() as f64,
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
            (Value::Trend(a), Value::Trend(b)) => {
                // Histograms built elsewhere may have auto-resize off; ours
                // must be able to grow to the other's range.
                a.auto(true);
                a.add(&**b).map_err(|e| MergeError::Histogram {
                    reason: e.to_string(),
                })
            }
            (_, other) => Err(MergeError::KindMismatch {
                left,
                right: other.kind(),
            }),
        }
    }
}

/// Equality by content: trends compare their recorded (value, count)
/// buckets, not the size of their counts arrays, which depends on the
/// order in which a histogram grew.
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
            (Value::Trend(a), Value::Trend(b)) => histograms_equal(a, b),
            _ => false,
        }
    }
}

/// True when two histograms hold the same samples at the same precision.
pub fn histograms_equal(a: &Histogram<u64>, b: &Histogram<u64>) -> bool {
    let buckets = |h: &Histogram<u64>| {
        h.iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect::<Vec<_>>()
    };
    a.low() == b.low() && a.sigfig() == b.sigfig() && a.len() == b.len() && buckets(a) == buckets(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trend(us: &[u64]) -> Value {
        let mut h = new_trend();
        for &v in us {
            record_us(&mut h, v);
        }
        Value::Trend(Box::new(h))
    }

    #[test]
    fn microsecond_conversion_rounds_and_clamps() {
        assert_eq!(duration_to_us(Duration::from_nanos(499)), 0);
        assert_eq!(duration_to_us(Duration::from_nanos(500)), 1);
        assert_eq!(duration_to_us(Duration::from_micros(1234)), 1234);
        assert_eq!(duration_to_us(Duration::from_millis(3)), 3000);
        assert_eq!(duration_to_us(Duration::MAX), TREND_MAX_US);
    }

    #[test]
    fn zero_is_a_real_sample() {
        let v = Value::trend_of(Duration::ZERO);
        let h = v.as_trend().expect("trend");
        assert_eq!(h.len(), 1);
        assert_eq!(h.max(), 0);
        assert_eq!(h.min(), 0);
    }

    #[test]
    fn trends_grow_to_large_values_and_keep_precision() {
        let v = trend(&[1, 500, 60_000_000, TREND_MAX_US]);
        let h = v.as_trend().expect("trend");
        assert_eq!(h.len(), 4);
        assert!(h.equivalent(h.max(), TREND_MAX_US));
        let p50 = h.value_at_quantile(0.5);
        assert_eq!(p50, 500);
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

            let mut t = trend(&[10, 20]);
            merge(&mut t, &trend(&[30, 1_000_000])).expect("same kind");
            assert_eq!(t, trend(&[10, 20, 30, 1_000_000]));
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
    fn merging_into_a_fixed_range_histogram_still_grows_it() {
        let mut fixed = Histogram::<u64>::new_with_bounds(1, 1000, 3).expect("valid bounds");
        fixed.record(10).expect("in range");
        let mut v = Value::Trend(Box::new(fixed));
        v.merge_sources(&trend(&[5_000_000])).expect("grows");
        assert_eq!(v.as_trend().expect("trend").len(), 2);
    }

    #[test]
    fn content_equality_ignores_growth_history() {
        // `a` grew to a large range before; `b` never did. Same samples.
        let mut a = trend(&[5, 7]);
        if let Value::Trend(h) = &mut a {
            let mut big = new_trend();
            record_us(&mut big, 1 << 30);
            h.add(&big).expect("grows");
        }
        let b = trend(&[5, 7, 1 << 30]);
        assert_eq!(a, b);
        assert_ne!(trend(&[5]), trend(&[6]));
        assert_ne!(trend(&[5]), trend(&[5, 5]));
        assert_ne!(Value::Counter(1.0), Value::rate_of(true));
    }
}
