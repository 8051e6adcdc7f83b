//! One interval (one sequence number) merged across the agents that
//! reported it, and the live view over the latest intervals: what the
//! progress line and the live API show while a fleet test runs.

use std::time::Duration;

use crate::metrics::Snapshot;
use crate::metrics::aggregate::trend_percentile_ms;
use crate::metrics::catalog::Metric;
use crate::metrics::trend::Trend;
use crate::metrics::value::{MergeError, Value};

/// The fleet's latest complete interval(s), merged across agents.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveView {
    /// Sequence numbers of the oldest and the newest interval merged;
    /// `None` until the first interval is complete.
    pub seqs: Option<(u64, u64)>,
    /// How many intervals were merged (at most the window asked for).
    pub intervals: usize,
    /// Wall time the merged intervals cover (sum of each interval's span).
    pub covered: Duration,
    /// Requests per second over `covered`.
    pub rps: f64,
    /// Percentiles of `http_req_duration` (every series), in milliseconds,
    /// from the merged histograms.
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Active VUs: the sum of every agent's latest `vus` gauge.
    pub vus: f64,
    /// `http_reqs` in the merged intervals.
    pub requests: u64,
    /// `http_req_failed` true samples (failed requests) in them.
    pub failed: u64,
    /// Completed `iterations` in them.
    pub iterations: u64,
}

/// One sequence number's data, as far as it has arrived.
#[derive(Debug)]
pub struct Interval {
    pub seq: u64,
    /// Agents (by their index in the test) whose report was applied.
    pub reporters: Vec<usize>,
    /// How many of `reporters` are not lost: the interval is complete
    /// when every agent still in the test reported.
    pub active_reports: usize,
    /// Earliest start and latest end of the reports (Unix ms).
    pub start_unix_ms: u64,
    pub end_unix_ms: u64,
    /// `http_reqs` summed over every series and agent.
    pub requests: f64,
    /// `http_req_failed` true samples.
    pub failed: u64,
    /// `iterations` summed.
    pub iterations: f64,
    /// Every `http_req_duration` series of every agent in one histogram:
    /// the live percentiles need nothing finer.
    pub durations: Trend,
    /// The gauge series of every report, summed across agents
    /// ([`Snapshot::merge_sources`]); folded into the fleet totals in
    /// sequence order when the interval is sealed, then emptied.
    pub gauges: Snapshot,
    /// The fleet's `vus` in this interval (every agent's summed), kept
    /// when the gauges are emptied at sealing.
    pub vus: Option<f64>,
}

/// One sealed interval's numbers, for charts over time (the live API's
/// recent points, the fleet report's time series).
#[derive(Debug, Clone, PartialEq)]
pub struct IntervalPoint {
    /// End of the interval (the latest report's end), Unix ms.
    pub end_unix_ms: u64,
    pub span: Duration,
    pub requests: u64,
    pub failed: u64,
    pub iterations: u64,
    pub vus: Option<f64>,
    /// `http_req_duration` percentiles from the merged histograms; `None`
    /// without requests.
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl Interval {
    pub fn new(seq: u64, start_unix_ms: u64, duration: Duration) -> Interval {
        Interval {
            seq,
            reporters: Vec::new(),
            active_reports: 0,
            start_unix_ms,
            end_unix_ms: start_unix_ms,
            requests: 0.0,
            failed: 0,
            iterations: 0.0,
            durations: Trend::new(),
            gauges: Snapshot::empty(start_unix_ms, duration),
            vus: None,
        }
    }

    /// This interval's numbers for a chart.
    pub fn point(&self) -> IntervalPoint {
        let p = |q| (!self.durations.is_empty()).then(|| trend_percentile_ms(&self.durations, q));
        IntervalPoint {
            end_unix_ms: self.end_unix_ms,
            span: self.span(),
            requests: count(self.requests),
            failed: self.failed,
            iterations: count(self.iterations),
            vus: self.vus,
            p50_ms: p(50.0),
            p95_ms: p(95.0),
            p99_ms: p(99.0),
        }
    }

    /// Adds the report of agent `reporter` (`active` unless it was lost):
    /// `rest` holds its non-gauge series, `gauges` the others (both
    /// validated). Errors only when a histogram cannot grow; everything
    /// else is still added.
    pub fn add(
        &mut self,
        reporter: usize,
        active: bool,
        rest: &Snapshot,
        gauges: &Snapshot,
    ) -> Result<(), MergeError> {
        self.add_from(&[(reporter, active)], rest, gauges)
    }

    /// Adds the combined report of several agents (`(index, active)`
    /// each), as [`Interval::add`] does for one.
    pub fn add_from(
        &mut self,
        reporters: &[(usize, bool)],
        rest: &Snapshot,
        gauges: &Snapshot,
    ) -> Result<(), MergeError> {
        for &(reporter, active) in reporters {
            self.reporters.push(reporter);
            self.active_reports += usize::from(active);
        }
        self.start_unix_ms = self.start_unix_ms.min(rest.start_unix_ms);
        self.end_unix_ms = self.end_unix_ms.max(rest.end_unix_ms());
        let mut first_err = self.gauges.merge_sources(gauges).err();
        for (key, value) in &rest.series {
            match (key.metric, value) {
                (Metric::HttpReqs, Value::Counter(n)) => self.requests += n,
                (Metric::Iterations, Value::Counter(n)) => self.iterations += n,
                (Metric::HttpReqFailed, Value::Rate { trues, .. }) => {
                    self.failed = self.failed.saturating_add(*trues);
                }
                (Metric::HttpReqDuration, Value::Trend(t)) => {
                    if let Err(e) = self.durations.add(t) {
                        first_err.get_or_insert(e.in_series(key.to_string()));
                    }
                }
                _ => {}
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Wall time this interval covers.
    pub fn span(&self) -> Duration {
        Duration::from_millis(self.end_unix_ms.saturating_sub(self.start_unix_ms))
    }
}

impl LiveView {
    /// The view over `intervals` (oldest first) with `vus` active VUs.
    pub fn over<'a>(intervals: impl Iterator<Item = &'a Interval>, vus: f64) -> LiveView {
        let mut durations = Trend::new();
        let mut view = LiveView {
            seqs: None,
            intervals: 0,
            covered: Duration::ZERO,
            rps: 0.0,
            p50_ms: 0.0,
            p95_ms: 0.0,
            p99_ms: 0.0,
            vus,
            requests: 0,
            failed: 0,
            iterations: 0,
        };
        let mut requests = 0.0;
        let mut iterations = 0.0;
        for i in intervals {
            view.seqs = Some(
                view.seqs
                    .map_or((i.seq, i.seq), |(first, _)| (first, i.seq)),
            );
            view.intervals += 1;
            view.covered += i.span();
            requests += i.requests;
            iterations += i.iterations;
            view.failed = view.failed.saturating_add(i.failed);
            // A histogram that cannot grow keeps what it holds: the live
            // view is an estimate, the totals report the error.
            let _ = durations.add(&i.durations);
        }
        view.requests = count(requests);
        view.iterations = count(iterations);
        let secs = view.covered.as_secs_f64();
        view.rps = if secs > 0.0 { requests / secs } else { 0.0 };
        view.p50_ms = trend_percentile_ms(&durations, 50.0);
        view.p95_ms = trend_percentile_ms(&durations, 95.0);
        view.p99_ms = trend_percentile_ms(&durations, 99.0);
        view
    }
}

/// A counter's sum as a whole count (counters of events are whole; the
/// rounding only absorbs float error). Negative or NaN sums count as 0.
pub fn count(sum: f64) -> u64 {
    // `as` saturates: NaN → 0, negatives → 0, huge → u64::MAX.
    sum.round() as u64
}
