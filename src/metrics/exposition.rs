//! What an agent's `/metrics` says about its own share of a test, in
//! Prometheus' terms (pure; the text is rendered by `api::prom`): totals per
//! scenario, and `http_req_duration` as a classic histogram whose bucket
//! counts come from the share's HDR histogram, so that Prometheus can add
//! the buckets of every agent (`sum by (le) (rate(..._bucket[1m]))`) and
//! read fleet-wide quantiles from them (`histogram_quantile`).
//!
//! # Bucket counts
//!
//! The HDR histogram keeps every sample rounded up to a whole microsecond,
//! in buckets at most 0.1 % wide. A sample counts under the smallest bound
//! at or above the highest value of its HDR bucket: never under a bound
//! below its value, and under the next bound up only when it lies within
//! 0.1 % (and 1 µs) below a bound. `_count` and `_sum` are exact.

use std::collections::BTreeMap;

use super::aggregate::Aggregate;
use super::catalog::Metric;
use super::snapshot::SeriesKey;
use super::trend::Trend;
use super::value::Value;

/// Default upper bounds of the latency buckets, in seconds: from 1 ms (a
/// service next door) to 30 s (a timeout), about three per decade.
pub const DEFAULT_BUCKETS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0,
];

/// One scenario's totals in one agent's share since its start.
#[derive(Debug, Clone, Default)]
pub struct ScenarioTotals {
    pub requests: u64,
    pub failed: u64,
    pub iterations: u64,
    pub data_sent: u64,
    pub data_received: u64,
    pub duration: Trend,
}

/// A histogram in Prometheus' form.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Buckets {
    /// Upper bounds in seconds, ascending (`+Inf` is implied).
    pub bounds: Vec<f64>,
    /// Samples at or below each bound (cumulative), one per bound.
    pub cumulative: Vec<u64>,
    pub count: u64,
    pub sum_seconds: f64,
}

/// Every scenario's totals, by scenario name (`""` for samples outside
/// any scenario, such as `setup`).
pub fn by_scenario(total: &Aggregate) -> BTreeMap<String, ScenarioTotals> {
    let mut out = BTreeMap::new();
    add_series(&mut out, total.series());
    out
}

/// Adds series (an interval's, or a running total's) to `out`: a share's
/// totals kept up to date one interval at a time cost only what the
/// interval saw.
pub fn add_series<'a>(
    out: &mut BTreeMap<String, ScenarioTotals>,
    series: impl Iterator<Item = (&'a SeriesKey, &'a Value)>,
) {
    for (key, value) in series {
        let scenario = key.tags.get("scenario").unwrap_or("");
        let counter = |v: &Value| match v {
            Value::Counter(c) => c.max(0.0).round() as u64,
            _ => 0,
        };
        if !matches!(
            key.metric,
            Metric::HttpReqs
                | Metric::Iterations
                | Metric::DataSent
                | Metric::DataReceived
                | Metric::HttpReqFailed
                | Metric::HttpReqDuration
        ) {
            continue;
        }
        let entry = out.entry(scenario.to_owned()).or_default();
        match (key.metric, value) {
            (Metric::HttpReqs, v) => entry.requests += counter(v),
            (Metric::Iterations, v) => entry.iterations += counter(v),
            (Metric::DataSent, v) => entry.data_sent += counter(v),
            (Metric::DataReceived, v) => entry.data_received += counter(v),
            (Metric::HttpReqFailed, Value::Rate { trues, .. }) => entry.failed += trues,
            (Metric::HttpReqDuration, Value::Trend(t)) => {
                // Only a histogram that cannot grow fails; it keeps what
                // it holds.
                let _ = entry.duration.add(t);
            }
            _ => {}
        }
    }
}

/// A time trend's samples as cumulative bucket counts over `bounds`
/// (seconds, ascending).
pub fn buckets(t: &Trend, bounds: &[f64]) -> Buckets {
    let mut per_bucket = vec![0u64; bounds.len()];
    for v in t.histogram().iter_recorded() {
        // Microseconds: the highest value of the sample's HDR bucket.
        let top_s = t.histogram().highest_equivalent(v.value_iterated_to()) as f64 / 1e6;
        if let Some(i) = bounds.iter().position(|b| top_s <= *b) {
            per_bucket[i] += v.count_at_value();
        }
    }
    let mut running = 0;
    let cumulative = per_bucket
        .into_iter()
        .map(|n| {
            running += n;
            running
        })
        .collect();
    Buckets {
        bounds: bounds.to_vec(),
        cumulative,
        count: t.count(),
        sum_seconds: t.sum_ns() as f64 / 1e9,
    }
}

/// `--metrics-buckets`: comma-separated upper bounds in seconds, or
/// durations (`5ms,10ms,1s`), ascending and positive.
pub fn parse_buckets(text: &str) -> Result<Vec<f64>, String> {
    let mut out: Vec<f64> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let secs = match item.parse::<f64>() {
            Ok(s) => s,
            Err(_) => crate::plan::parse_duration(item)
                .map_err(|_| format!("{item:?} is neither seconds (0.25) nor a duration (250ms)"))?
                .as_secs_f64(),
        };
        if !(secs.is_finite() && secs > 0.0) {
            return Err(format!("{item:?}: bounds must be positive"));
        }
        if out.last().is_some_and(|last| *last >= secs) {
            return Err(format!("{item:?}: bounds must be in ascending order"));
        }
        out.push(secs);
    }
    if out.is_empty() {
        return Err("no bounds; expected e.g. 0.005,0.01,0.05,0.1,0.5,1,5".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::metrics::snapshot::Snapshot;
    use crate::metrics::tags::TagSet;

    #[test]
    fn buckets_are_cumulative_and_exact_on_round_bounds() {
        let mut t = Trend::new();
        for ms in [1, 3, 3, 40, 700, 12_000] {
            t.record(Duration::from_millis(ms));
        }
        t.record(Duration::from_micros(999));
        let b = buckets(&t, &[0.001, 0.005, 0.05, 1.0, 10.0]);
        assert_eq!(b.cumulative, [2, 4, 5, 6, 6]);
        assert_eq!(b.count, 7);
        assert!(
            (b.sum_seconds - 12.747999).abs() < 1e-9,
            "{}",
            b.sum_seconds
        );
        // A sample just above a bound is never counted under it.
        let t = Trend::of(Duration::from_micros(5001));
        assert_eq!(buckets(&t, &[0.005, 0.01]).cumulative, [0, 1]);
    }

    #[test]
    fn totals_by_scenario() {
        let key = |m: Metric, s: &str| {
            SeriesKey::new(m, TagSet::from_pairs([("scenario", s), ("status", "200")]))
        };
        let mut snap = Snapshot {
            start_unix_ms: 0,
            duration: Duration::from_secs(1),
            series: vec![
                (key(Metric::HttpReqs, "a"), Value::Counter(3.0)),
                (key(Metric::HttpReqs, "b"), Value::Counter(2.0)),
                (
                    key(Metric::HttpReqFailed, "a"),
                    Value::Rate { trues: 1, total: 3 },
                ),
                (
                    key(Metric::HttpReqDuration, "a"),
                    Value::trend_of(Duration::from_millis(20)),
                ),
                (key(Metric::Iterations, "b"), Value::Counter(1.0)),
            ],
        };
        snap.series.sort_by(|x, y| x.0.cmp(&y.0));
        let mut total = Aggregate::default();
        total.add_interval(&snap).expect("valid");
        let s = by_scenario(&total);
        // The same, one interval at a time.
        let mut again = BTreeMap::new();
        add_series(&mut again, snap.series.iter().map(|(k, v)| (k, v)));
        add_series(&mut again, snap.series.iter().map(|(k, v)| (k, v)));
        assert_eq!(again["a"].requests, 6);
        assert_eq!(again["a"].duration.count(), 2);
        assert_eq!(s["a"].requests, 3);
        assert_eq!(s["a"].failed, 1);
        assert_eq!(s["a"].duration.count(), 1);
        assert_eq!(s["b"].requests, 2);
        assert_eq!(s["b"].iterations, 1);
    }

    #[test]
    fn bucket_bounds_from_text() {
        assert_eq!(
            parse_buckets("0.005, 10ms,1s,2").expect("valid"),
            [0.005, 0.01, 1.0, 2.0]
        );
        assert!(
            parse_buckets("1,0.5")
                .expect_err("order")
                .contains("ascending")
        );
        assert!(parse_buckets("0").expect_err("zero").contains("positive"));
        assert!(
            parse_buckets("soon")
                .expect_err("text")
                .contains("neither seconds")
        );
        assert!(parse_buckets("").is_err());
    }
}
