//! The running total of a test: every series' value from the start until
//! the last interval folded in, and the queries thresholds and the summary
//! ask of it (a metric or a submetric's merged value, trend statistics in
//! milliseconds).
//!
//! # Precision
//!
//! `min`, `max` and `avg` are exact: each trend keeps its samples' smallest,
//! largest and sum in nanoseconds, and merges keep them exact. Percentiles
//! come from the HDR histogram beside them (three significant digits): the
//! highest value of the bucket that holds the percentile, clamped into
//! [min, max], never below the sample at that rank and at most 0.1 % + 0.5 µs
//! above it (see [`super::trend`]). k6 sorts every sample and interpolates
//! between the two nearest; on very few samples the two can also differ by
//! the gap between neighbours. In exchange, memory does not grow with the
//! number of samples and merged histograms are exact: the percentile of
//! merged histograms equals the percentile of one histogram fed every
//! sample.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::catalog::Metric;
use super::snapshot::{SeriesKey, Snapshot};
use super::tags::TagSet;
use super::trend::Trend;
use super::value::{MergeError, Value};
use crate::plan::TrendStat;

/// Running totals keyed by series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Aggregate {
    /// Sorted, so queries and summaries iterate deterministically and one
    /// metric's series are a contiguous range.
    series: BTreeMap<SeriesKey, Value>,
}

impl Aggregate {
    pub fn new() -> Aggregate {
        Aggregate::default()
    }

    /// Folds in the next interval of the same source(s): gauges follow
    /// time, everything else adds (see [`Value::accumulate`]). A snapshot
    /// that fails [`Snapshot::validate`] is refused whole.
    pub fn add_interval(&mut self, s: &Snapshot) -> Result<(), MergeError> {
        s.validate()?;
        let mut first_err = None;
        for (key, value) in &s.series {
            match self.series.get_mut(key) {
                Some(total) => {
                    if let Err(e) = total.accumulate(value) {
                        first_err.get_or_insert(e.in_series(key.to_string()));
                    }
                }
                None => {
                    self.series.insert(key.clone(), value.clone());
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Combines another source's running total (same period): values add,
    /// gauges included (see [`Value::merge_sources`]). Every aggregate's
    /// values match their metrics (only validated snapshots get in), so
    /// only a histogram that cannot grow can fail here.
    pub fn merge_sources(&mut self, other: &Aggregate) -> Result<(), MergeError> {
        let mut first_err = None;
        for (key, value) in &other.series {
            match self.series.get_mut(key) {
                Some(total) => {
                    if let Err(e) = total.merge_sources(value) {
                        first_err.get_or_insert(e.in_series(key.to_string()));
                    }
                }
                None => {
                    self.series.insert(key.clone(), value.clone());
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Every series, in key order.
    pub fn series(&self) -> impl Iterator<Item = (&SeriesKey, &Value)> {
        self.series.iter()
    }

    /// The series of one metric, in tag order.
    pub fn series_of(&self, metric: Metric) -> impl Iterator<Item = (&SeriesKey, &Value)> {
        let from = SeriesKey::new(metric, TagSet::new());
        self.series
            .range((Bound::Included(from), Bound::Unbounded))
            .take_while(move |(k, _)| k.metric == metric)
    }

    /// The value of `metric` over every series whose tags include `filter`
    /// (all of them for an empty filter), merged as sources; `None` when no
    /// series matches.
    pub fn metric_value(&self, metric: Metric, filter: &[(String, String)]) -> Option<Value> {
        let mut merged: Option<Value> = None;
        for (_, v) in self
            .series_of(metric)
            .filter(|(k, _)| k.tags.matches(filter))
        {
            match merged.as_mut() {
                None => merged = Some(v.clone()),
                // Kinds were checked on the way in; a histogram that
                // cannot grow is the only failure left, and it keeps the
                // samples merged so far.
                Some(m) => {
                    let _ = m.merge_sources(v);
                }
            }
        }
        merged
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

/// Samples in a trend.
pub fn trend_count(t: &Trend) -> u64 {
    t.count()
}

/// Mean in milliseconds, exact (0 when empty).
pub fn trend_avg_ms(t: &Trend) -> f64 {
    t.avg_ms()
}

/// Smallest sample in milliseconds, exact.
pub fn trend_min_ms(t: &Trend) -> f64 {
    t.min_ms()
}

/// Largest sample in milliseconds, exact.
pub fn trend_max_ms(t: &Trend) -> f64 {
    t.max_ms()
}

/// Median in milliseconds.
pub fn trend_med_ms(t: &Trend) -> f64 {
    trend_percentile_ms(t, 50.0)
}

/// `p(N)` in milliseconds, N in [0, 100] (clamped), within [min, max].
pub fn trend_percentile_ms(t: &Trend, percentile: f64) -> f64 {
    t.percentile_ms(percentile)
}

/// One summary statistic; `count` as a plain number, the rest in ms.
pub fn trend_stat_ms(h: &Trend, stat: &TrendStat) -> f64 {
    match stat {
        TrendStat::Avg => trend_avg_ms(h),
        TrendStat::Min => trend_min_ms(h),
        TrendStat::Med => trend_med_ms(h),
        TrendStat::Max => trend_max_ms(h),
        TrendStat::Count => trend_count(h) as f64,
        TrendStat::Percentile(p) => trend_percentile_ms(h, *p),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn key(metric: Metric, tags: &[(&str, &str)]) -> SeriesKey {
        SeriesKey::new(metric, TagSet::from_pairs(tags.iter().copied()))
    }

    fn snap(series: Vec<(SeriesKey, Value)>) -> Snapshot {
        let mut s = Snapshot {
            start_unix_ms: 0,
            duration: Duration::from_secs(1),
            series,
        };
        s.series.sort_by(|a, b| a.0.cmp(&b.0));
        s
    }

    fn trend(us: &[u64]) -> Value {
        let mut t = Trend::new();
        for &v in us {
            t.record(Duration::from_micros(v));
        }
        Value::Trend(Box::new(t))
    }

    fn filter(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn intervals_accumulate_and_gauges_follow_time() {
        let mut agg = Aggregate::new();
        let reqs = key(Metric::HttpReqs, &[("status", "200")]);
        let vus = key(Metric::Vus, &[]);
        agg.add_interval(&snap(vec![
            (reqs.clone(), Value::Counter(10.0)),
            (vus.clone(), Value::gauge_of(5.0)),
        ]))
        .expect("valid");
        agg.add_interval(&snap(vec![
            (reqs.clone(), Value::Counter(7.0)),
            (vus.clone(), Value::gauge_of(2.0)),
        ]))
        .expect("valid");
        assert_eq!(
            agg.metric_value(Metric::HttpReqs, &[]),
            Some(Value::Counter(17.0))
        );
        assert_eq!(
            agg.metric_value(Metric::Vus, &[]),
            Some(Value::Gauge {
                value: 2.0,
                min: 2.0,
                max: 5.0
            })
        );
    }

    #[test]
    fn submetric_queries_merge_matching_series_only() {
        let mut agg = Aggregate::new();
        agg.add_interval(&snap(vec![
            (
                key(
                    Metric::HttpReqDuration,
                    &[("status", "200"), ("scenario", "a")],
                ),
                trend(&[1_000, 2_000]),
            ),
            (
                key(
                    Metric::HttpReqDuration,
                    &[("status", "200"), ("scenario", "b")],
                ),
                trend(&[3_000]),
            ),
            (
                key(
                    Metric::HttpReqDuration,
                    &[("status", "500"), ("scenario", "a")],
                ),
                trend(&[9_000]),
            ),
            (
                key(Metric::HttpReqs, &[("status", "200")]),
                Value::Counter(3.0),
            ),
        ]))
        .expect("valid");
        let ok = agg
            .metric_value(Metric::HttpReqDuration, &filter(&[("status", "200")]))
            .expect("matches");
        assert_eq!(ok, trend(&[1_000, 2_000, 3_000]));
        let all = agg
            .metric_value(Metric::HttpReqDuration, &[])
            .expect("matches");
        assert_eq!(all.as_trend().map(trend_count), Some(4));
        assert_eq!(
            agg.metric_value(Metric::HttpReqDuration, &filter(&[("status", "404")])),
            None
        );
        assert_eq!(agg.metric_value(Metric::Checks, &[]), None);
        assert_eq!(agg.series_of(Metric::HttpReqDuration).count(), 3);
        assert_eq!(agg.len(), 4);
    }

    #[test]
    fn merging_aggregates_adds_gauges() {
        let mut a = Aggregate::new();
        a.add_interval(&snap(vec![(key(Metric::Vus, &[]), Value::gauge_of(3.0))]))
            .expect("valid");
        let b = a.clone();
        a.merge_sources(&b).expect("valid");
        assert_eq!(a.metric_value(Metric::Vus, &[]), Some(Value::gauge_of(6.0)));
    }

    #[test]
    fn wrong_kinds_are_refused_without_changes() {
        let mut agg = Aggregate::new();
        let bad = Snapshot {
            start_unix_ms: 0,
            duration: Duration::from_secs(1),
            series: vec![(key(Metric::HttpReqs, &[]), Value::rate_of(true))],
        };
        assert!(agg.add_interval(&bad).is_err());
        assert!(agg.is_empty());
    }

    #[test]
    fn trend_statistics_in_milliseconds() {
        let v = trend(&(1..=100).map(|i| i * 1_000).collect::<Vec<_>>());
        let h = v.as_trend().expect("trend");
        assert_eq!(trend_count(h), 100);
        assert_eq!(trend_min_ms(h), 1.0);
        assert_eq!(trend_max_ms(h), 100.0);
        assert!(
            (trend_avg_ms(h) - 50.5).abs() <= 1e-9,
            "{}",
            trend_avg_ms(h)
        );
        assert!(
            (trend_med_ms(h) - 50.0).abs() <= 0.05,
            "{}",
            trend_med_ms(h)
        );
        assert!((trend_percentile_ms(h, 95.0) - 95.0).abs() <= 0.095);
        assert_eq!(trend_stat_ms(h, &TrendStat::Count), 100.0);
        assert_eq!(
            trend_stat_ms(h, &TrendStat::Percentile(100.0)),
            trend_max_ms(h)
        );
        let empty = Trend::new();
        assert_eq!(trend_avg_ms(&empty), 0.0);
        assert_eq!(trend_max_ms(&empty), 0.0);
        assert_eq!(trend_percentile_ms(&empty, 99.0), 0.0);
    }
}
