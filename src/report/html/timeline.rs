//! The time series of a report: the run's interval snapshots folded into
//! points (requests per second, VUs, latency percentiles, failures), one
//! per interval, or one per bucket of intervals on a long test so the
//! page stays small. A bucket's percentiles come from the merged
//! histograms of its intervals, never from averaged percentiles.
//!
//! Memory is bounded: the bucket width is chosen from the test's expected
//! length so it holds at most [`TARGET_POINTS`]; a test that runs far past
//! it doubles the width (for later points) each time another
//! [`EXTRA_POINTS`] have been added.

use std::time::Duration;

use serde::Serialize;

use crate::metrics::aggregate::trend_percentile_ms;
use crate::metrics::{Aggregate, Metric, Snapshot, Value};

/// Points a test of its expected length gets at most.
pub const TARGET_POINTS: usize = 1200;
/// Points added past the target before the bucket width doubles again.
pub const EXTRA_POINTS: usize = 300;
/// An interval shorter than this right after a bucket closed (the run's
/// last, cut short at its end) joins that bucket: a few requests over a
/// few milliseconds would chart as a spike of requests per second.
pub const SHORT_TAIL: Duration = Duration::from_millis(250);

/// One point of the time series: what happened in `[tMs - spanMs, tMs]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Point {
    /// End of the span, milliseconds since the test's start.
    pub t_ms: f64,
    pub span_ms: f64,
    /// `http_reqs` per second over the span.
    pub rps: f64,
    /// Active VUs and initialised VUs at the end of the span.
    pub vus: u64,
    pub vus_max: u64,
    /// `http_req_duration` percentiles (every series) in milliseconds;
    /// `None` in a span without requests.
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub requests: f64,
    /// Failed requests (`http_req_failed`'s true samples).
    pub failed: u64,
    /// Their share of the span's requests.
    pub failed_rate: Option<f64>,
    pub iterations: f64,
    pub checks_failed: u64,
    /// `http_reqs` per second of each scenario, in the report's order.
    pub scenario_rps: Vec<f64>,
}

/// The intervals of a bucket not yet closed.
#[derive(Debug)]
struct Open {
    agg: Aggregate,
    span: Duration,
    end: Duration,
    vus: u64,
    vus_max: u64,
}

/// Builds the time series as intervals arrive.
#[derive(Debug)]
pub struct Timeline {
    scenarios: Vec<String>,
    points: Vec<Point>,
    bucket: Duration,
    /// Points after which the bucket doubles next.
    cap: usize,
    open: Option<Open>,
    /// The bucket behind the last point, for a short tail to join.
    last: Option<Open>,
}

// === impl Timeline ===

impl Timeline {
    /// A timeline for a test expected to last about `expected` (the plan's
    /// nominal length), with these scenarios' names.
    pub fn new(expected: Duration, scenarios: Vec<String>) -> Timeline {
        let per_point = expected.as_secs_f64() / TARGET_POINTS as f64;
        Timeline {
            scenarios,
            points: Vec::new(),
            // Whole seconds; 0 means every interval is a point.
            bucket: Duration::from_secs(per_point.ceil() as u64),
            cap: TARGET_POINTS,
            open: None,
            last: None,
        }
    }

    pub fn scenarios(&self) -> &[String] {
        &self.scenarios
    }

    /// Folds in one interval that ended `elapsed` after the start, with
    /// the VU gauges read at its end.
    pub fn push(&mut self, snapshot: &Snapshot, elapsed: Duration, vus: u64, vus_max: u64) {
        if snapshot.duration < SHORT_TAIL
            && self.open.is_none()
            && let Some(mut last) = self.last.take()
        {
            let _ = last.agg.add_interval(snapshot);
            last.span += snapshot.duration;
            last.end = elapsed;
            // The VUs of the longer span stand: a run's cut-short last
            // interval reads them after they stopped.
            last.vus_max = last.vus_max.max(vus_max);
            let point = self.point_of(&last);
            if let Some(slot) = self.points.last_mut() {
                *slot = point;
            }
            self.last = Some(last);
            return;
        }
        let open = self.open.get_or_insert_with(|| Open {
            agg: Aggregate::default(),
            span: Duration::ZERO,
            end: elapsed,
            vus,
            vus_max,
        });
        // A snapshot that fails validation is left out of the picture; the
        // summary, built elsewhere, still says what it says.
        let _ = open.agg.add_interval(snapshot);
        open.span += snapshot.duration;
        open.end = elapsed;
        open.vus = vus;
        open.vus_max = open.vus_max.max(vus_max);
        if open.span >= self.bucket {
            self.close();
        }
    }

    /// Adds a point made elsewhere (a fleet's live view, sampled); one
    /// closer than the bucket width to the last is left out.
    pub fn push_point(&mut self, point: Point) {
        let min_gap = self.bucket.as_secs_f64() * 1000.0;
        if self
            .points
            .last()
            .is_some_and(|last| point.t_ms <= last.t_ms || point.t_ms - last.t_ms < min_gap)
        {
            return;
        }
        self.points.push(point);
        self.grow_if_full();
    }

    /// Every point, the open bucket's included.
    pub fn points(&self) -> Vec<Point> {
        let mut out = self.points.clone();
        if let Some(open) = &self.open {
            out.push(self.point_of(open));
        }
        out
    }

    fn close(&mut self) {
        if let Some(open) = self.open.take() {
            let point = self.point_of(&open);
            self.points.push(point);
            self.last = Some(open);
            self.grow_if_full();
        }
    }

    fn grow_if_full(&mut self) {
        if self.points.len() >= self.cap {
            self.bucket = (self.bucket * 2).max(Duration::from_secs(1));
            self.cap += EXTRA_POINTS;
        }
    }

    fn point_of(&self, open: &Open) -> Point {
        let agg = &open.agg;
        let secs = open.span.as_secs_f64();
        let per_sec = |n: f64| if secs > 0.0 { n / secs } else { 0.0 };
        let counter = |m: Metric, filter: &[(String, String)]| match agg.metric_value(m, filter) {
            Some(Value::Counter(c)) => c,
            _ => 0.0,
        };
        let requests = counter(Metric::HttpReqs, &[]);
        let (failed, failed_rate) = match agg.metric_value(Metric::HttpReqFailed, &[]) {
            Some(Value::Rate { trues, total }) if total > 0 => {
                (trues, Some(trues as f64 / total as f64))
            }
            _ => (0, None),
        };
        let checks_failed = match agg.metric_value(Metric::Checks, &[]) {
            Some(Value::Rate { trues, total }) => total.saturating_sub(trues),
            _ => 0,
        };
        let durations = agg.metric_value(Metric::HttpReqDuration, &[]);
        let p = |q: f64| {
            durations
                .as_ref()
                .and_then(Value::as_trend)
                .filter(|h| !h.is_empty())
                .map(|h| trend_percentile_ms(h, q))
                .filter(|v| v.is_finite())
        };
        Point {
            t_ms: open.end.as_secs_f64() * 1000.0,
            span_ms: secs * 1000.0,
            rps: per_sec(requests),
            vus: open.vus,
            vus_max: open.vus_max,
            p50_ms: p(50.0),
            p95_ms: p(95.0),
            p99_ms: p(99.0),
            requests,
            failed,
            failed_rate,
            iterations: counter(Metric::Iterations, &[]),
            checks_failed,
            scenario_rps: self
                .scenarios
                .iter()
                .map(|name| {
                    per_sec(counter(
                        Metric::HttpReqs,
                        &[("scenario".to_owned(), name.clone())],
                    ))
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{SeriesKey, TagSet};

    /// An interval of `secs` whose requests (scenario `main`) took these
    /// milliseconds, none failed.
    fn snapshot(latencies_ms: &[u64], secs: u64) -> Snapshot {
        let tags = TagSet::from_pairs([("scenario", "main")]);
        let key = |m| SeriesKey::new(m, tags.clone());
        let mut series = Vec::new();
        if let Some((first, rest)) = latencies_ms.split_first() {
            let mut trend = Value::trend_of(Duration::from_millis(*first));
            for ms in rest {
                trend
                    .merge_sources(&Value::trend_of(Duration::from_millis(*ms)))
                    .expect("same kind");
            }
            let n = latencies_ms.len() as u64;
            series.push((key(Metric::HttpReqs), Value::Counter(n as f64)));
            series.push((key(Metric::HttpReqDuration), trend));
            series.push((
                key(Metric::HttpReqFailed),
                Value::Rate { trues: 0, total: n },
            ));
        }
        series.sort_by(|a, b| a.0.cmp(&b.0));
        Snapshot {
            start_unix_ms: 0,
            duration: Duration::from_secs(secs),
            series,
        }
    }

    #[test]
    fn one_point_per_interval_on_a_short_test() {
        let mut t = Timeline::new(Duration::from_secs(10), vec!["main".into()]);
        t.push(
            &snapshot(&[10, 20, 30, 40], 1),
            Duration::from_secs(1),
            3,
            5,
        );
        t.push(&snapshot(&[], 1), Duration::from_secs(2), 0, 5);
        let points = t.points();
        assert_eq!(points.len(), 2);
        assert_eq!(points[0].t_ms, 1000.0);
        assert_eq!(points[0].requests, 4.0);
        assert_eq!(points[0].rps, 4.0);
        assert_eq!(points[0].vus, 3);
        assert_eq!(points[0].p99_ms, Some(40.0));
        assert_eq!(points[0].failed_rate, Some(0.0));
        assert_eq!(points[1].requests, 0.0);
        assert_eq!(points[1].p95_ms, None);
        assert_eq!(points[1].failed_rate, None);
    }

    #[test]
    fn a_short_last_interval_joins_the_point_before() {
        let mut t = Timeline::new(Duration::from_secs(10), Vec::new());
        t.push(&snapshot(&[10, 20], 1), Duration::from_secs(1), 2, 2);
        let mut tail = snapshot(&[30, 40], 0);
        tail.duration = Duration::from_millis(5);
        t.push(&tail, Duration::from_millis(1005), 0, 2);
        let points = t.points();
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].requests, 4.0);
        assert!((points[0].span_ms - 1005.0).abs() < 1e-6);
        assert!((points[0].t_ms - 1005.0).abs() < 1e-6);
        assert_eq!(points[0].vus, 2);
        assert_eq!(points[0].p99_ms, Some(40.0));
    }

    #[test]
    fn a_long_test_gets_buckets_whose_percentiles_come_from_merged_histograms() {
        // 2400 s expected: 2 s per point.
        let mut t = Timeline::new(Duration::from_secs(2400), Vec::new());
        t.push(&snapshot(&[1, 1, 1], 1), Duration::from_secs(1), 1, 1);
        assert_eq!(t.points().len(), 1, "the open bucket shows");
        t.push(&snapshot(&[100], 1), Duration::from_secs(2), 1, 1);
        t.push(&snapshot(&[5], 1), Duration::from_secs(3), 1, 1);
        let points = t.points();
        assert_eq!(points.len(), 2);
        assert_eq!(points[0].requests, 4.0);
        assert_eq!(points[0].rps, 2.0);
        assert_eq!(points[0].p99_ms, Some(100.0));
        assert_eq!(points[0].p50_ms, Some(1.0));
        assert_eq!(points[0].span_ms, 2000.0);
    }

    #[test]
    fn memory_stays_bounded_past_the_expected_length() {
        let mut t = Timeline::new(Duration::from_secs(10), Vec::new());
        let empty = Snapshot::empty(0, Duration::from_secs(1));
        for s in 1..=20_000u64 {
            t.push(&empty, Duration::from_secs(s), 0, 0);
        }
        let n = t.points().len();
        assert!(n < TARGET_POINTS + 10 * EXTRA_POINTS, "{n} points");
    }

    #[test]
    fn sampled_points_only_move_forward() {
        let mut t = Timeline::new(Duration::from_secs(10), Vec::new());
        let point = |t_ms: f64| Point {
            t_ms,
            span_ms: 1000.0,
            rps: 1.0,
            vus: 1,
            vus_max: 1,
            p50_ms: None,
            p95_ms: None,
            p99_ms: None,
            requests: 1.0,
            failed: 0,
            failed_rate: None,
            iterations: 1.0,
            checks_failed: 0,
            scenario_rps: Vec::new(),
        };
        t.push_point(point(1000.0));
        t.push_point(point(1000.0));
        t.push_point(point(2000.0));
        assert_eq!(t.points().len(), 2);
        // Bounded too: past the cap, points thin out.
        for s in 3..20_000u64 {
            t.push_point(point(s as f64 * 1000.0));
        }
        let n = t.points().len();
        assert!(n < TARGET_POINTS + 10 * EXTRA_POINTS, "{n} points");
    }
}
