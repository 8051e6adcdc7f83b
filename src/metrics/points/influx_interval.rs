//! Volley's per-interval InfluxDB layout (`--out influxdb`, the default):
//! one point per series per interval, whatever the request rate, so a
//! backend pays the same at 100k req/s as at 10 req/s.
//!
//! The measurement is the metric's name and the tags are the series' tags
//! (every one of them: a tag written as a field would make two series of
//! one interval overwrite each other), plus the caller's (a fleet test's
//! `testid`). The time is the interval's start. Fields by metric type:
//!
//! | type | fields |
//! |---|---|
//! | counter | `value` (the interval's sum: `sum(value)` is the run's total), `rate` (per second) |
//! | gauge | `value` (last), `min`, `max` |
//! | rate | `value` (fraction true), `passes`, `fails` (integers: `sum(passes)` is exact) |
//! | trend | `count` (integer), `sum`, `mean`, `min`, `med`, `max`, `p90`, `p95`, `p99` (ms for times) |
//!
//! ```text
//! http_req_duration,method=GET,name=http://h/,status=200 count=98i,sum=201.5,mean=2.05,min=0.9,med=1.8,max=9.1,p90=3.2,p95=4.4,p99=8 1796564470000000000
//! ```
//!
//! The quantiles are exact for the interval (its HDR histogram); across
//! intervals they cannot be combined, which is why the fleet's and the
//! run's own percentiles come from the summary, not from the backend.

use super::influx::escape;
use crate::metrics::aggregate::{
    trend_avg_ms, trend_count, trend_max_ms, trend_med_ms, trend_min_ms, trend_percentile_ms,
};
use crate::metrics::snapshot::Snapshot;
use crate::metrics::value::Value;

/// Appends one line per series of `snapshot` to `out`; returns how many.
/// `extra_tags` are added to every line (after the series' own, which win
/// on a name clash); tags with an empty value are left out, as k6 does.
pub fn write_interval(snapshot: &Snapshot, extra_tags: &[(&str, &str)], out: &mut Vec<u8>) -> u64 {
    let time_ns = u128::from(snapshot.start_unix_ms) * 1_000_000;
    let seconds = snapshot.duration.as_secs_f64();
    let mut lines = 0;
    let mut fields = String::new();
    for (key, value) in &snapshot.series {
        fields.clear();
        if !fields_of(value, seconds, &mut fields) {
            continue;
        }
        escape(key.metric.name(), b", ", out);
        for (k, v) in key.tags.iter() {
            tag(k, v, out);
        }
        for &(k, v) in extra_tags {
            if !key.tags.iter().any(|(own, _)| own == k) {
                tag(k, v, out);
            }
        }
        out.push(b' ');
        out.extend_from_slice(fields.as_bytes());
        out.push(b' ');
        out.extend_from_slice(time_ns.to_string().as_bytes());
        out.push(b'\n');
        lines += 1;
    }
    lines
}

fn tag(k: &str, v: &str, out: &mut Vec<u8>) {
    if v.is_empty() {
        return;
    }
    out.push(b',');
    escape(k, b",= ", out);
    out.push(b'=');
    escape(v, b",= ", out);
}

/// The fields of one value; `false` when there is nothing to write (an
/// empty trend, a value InfluxDB cannot hold).
fn fields_of(value: &Value, seconds: f64, out: &mut String) -> bool {
    use std::fmt::Write as _;
    let per_second = |n: f64| if seconds > 0.0 { n / seconds } else { 0.0 };
    match value {
        Value::Counter(c) => {
            let _ = write!(out, "value={},rate={}", c, per_second(*c));
            c.is_finite()
        }
        Value::Gauge { value, min, max } => {
            let _ = write!(out, "value={value},min={min},max={max}");
            value.is_finite() && min.is_finite() && max.is_finite()
        }
        Value::Rate { trues, total } => {
            let fraction = if *total > 0 {
                *trues as f64 / *total as f64
            } else {
                0.0
            };
            let fails = total.saturating_sub(*trues);
            let _ = write!(out, "value={fraction},passes={trues}i,fails={fails}i");
            true
        }
        Value::Trend(h) => {
            let count = trend_count(h);
            if count == 0 {
                return false;
            }
            let mean = trend_avg_ms(h);
            let stats = [
                ("sum", mean * count as f64),
                ("mean", mean),
                ("min", trend_min_ms(h)),
                ("med", trend_med_ms(h)),
                ("max", trend_max_ms(h)),
                ("p90", trend_percentile_ms(h, 90.0)),
                ("p95", trend_percentile_ms(h, 95.0)),
                ("p99", trend_percentile_ms(h, 99.0)),
            ];
            let _ = write!(out, "count={count}i");
            for (name, v) in stats {
                if v.is_finite() {
                    let _ = write!(out, ",{name}={v}");
                }
            }
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::metrics::catalog::Metric;
    use crate::metrics::recorder::{Recorder, RecorderOptions};
    use crate::metrics::snapshot::SeriesKey;
    use crate::metrics::tags::TagSet;
    use crate::metrics::tests::fixture::{self, HOME};

    fn snapshot(series: Vec<(SeriesKey, Value)>) -> Snapshot {
        let mut s = Snapshot::empty(1_796_564_470_000, Duration::from_secs(2));
        s.series = series;
        s
    }

    fn text(s: &Snapshot, extra: &[(&str, &str)]) -> (u64, String) {
        let mut out = Vec::new();
        let n = write_interval(s, extra, &mut out);
        (n, String::from_utf8(out).expect("utf-8"))
    }

    #[test]
    fn counters_rates_and_gauges_one_line_per_series() {
        let tags = TagSet::from_pairs([("status", "200"), ("group", ""), ("name", "a b")]);
        let s = snapshot(vec![
            (
                SeriesKey::new(Metric::HttpReqs, tags.clone()),
                Value::Counter(10.0),
            ),
            (
                SeriesKey::new(Metric::HttpReqFailed, tags),
                Value::Rate { trues: 1, total: 4 },
            ),
            (
                SeriesKey::new(Metric::Vus, TagSet::default()),
                Value::Gauge {
                    value: 3.0,
                    min: 1.0,
                    max: 5.0,
                },
            ),
        ]);
        let (n, lines) = text(&s, &[("testid", "t-1"), ("status", "none")]);
        assert_eq!(n, 3);
        assert_eq!(
            lines,
            "http_reqs,name=a\\ b,status=200,testid=t-1 value=10,rate=5 1796564470000000000\n\
             http_req_failed,name=a\\ b,status=200,testid=t-1 value=0.25,passes=1i,fails=3i 1796564470000000000\n\
             vus,testid=t-1,status=none value=3,min=1,max=5 1796564470000000000\n"
        );
    }

    #[test]
    fn a_trend_carries_its_interval_statistics() {
        let mut rec = Recorder::new(&fixture::plan(), RecorderOptions::default());
        for ms in [1, 2, 3, 4, 100] {
            rec.record(&fixture::ok(HOME, ms));
        }
        let snap = rec.take_interval(1_796_564_470_000, Duration::from_secs(1));
        let trend = snap
            .series
            .iter()
            .find(|(k, _)| k.metric == Metric::HttpReqDuration)
            .cloned()
            .expect("a trend series");
        let (n, line) = text(&snapshot(vec![trend]), &[]);
        assert_eq!(n, 1);
        assert!(line.starts_with("http_req_duration,"), "{line}");
        for field in [
            " count=5i,sum=110,mean=22,",
            ",min=1,",
            ",max=100,",
            ",p95=",
            ",p99=",
        ] {
            assert!(line.contains(field), "{field} in {line}");
        }
    }

    #[test]
    fn empty_trends_and_values_influxdb_cannot_hold_are_left_out() {
        let s = snapshot(vec![(
            SeriesKey::new(Metric::HttpReqs, TagSet::default()),
            Value::Counter(f64::NAN),
        )]);
        assert_eq!(text(&s, &[]), (0, String::new()));
    }
}
