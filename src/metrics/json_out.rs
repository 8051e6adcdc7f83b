//! The `--out volley-json=FILE` line format: one JSON object per series per
//! interval, written as JSON Lines by the report module.
//!
//! ```json
//! {"type":"Interval","metric":"http_req_duration","time":"2026-11-23T17:00:01.000Z",
//!  "duration_ms":1000,"tags":{"status":"200"},
//!  "values":{"count":12,"avg":3.1,"min":1.2,"med":2.9,"max":9.8,"p(90)":5.0,"p(95)":6.1,"p(99)":9.8}}
//! ```
//!
//! Values by type: counter `count` and `rate` (per second of the
//! interval); gauge `value`, `min`, `max`; rate `rate`, `passes`, `fails`;
//! trend `count` and `avg`, `min`, `med`, `max`, `p(90)`, `p(95)`, `p(99)`
//! in milliseconds. `time` is the interval's start, UTC, RFC 3339, with
//! milliseconds when they are not zero.

use serde_json::{Map, Value as Json, json};
use time::OffsetDateTime;

use super::aggregate::{
    trend_avg_ms, trend_count, trend_max_ms, trend_med_ms, trend_min_ms, trend_percentile_ms,
};
use super::snapshot::Snapshot;
use super::value::Value;

/// One JSON object per series of the snapshot, in key order.
pub fn interval_lines(s: &Snapshot) -> Vec<Json> {
    let time = rfc3339_utc(s.start_unix_ms);
    let duration_ms = if s.duration.subsec_nanos().is_multiple_of(1_000_000) {
        json!(u64::try_from(s.duration.as_millis()).unwrap_or(u64::MAX))
    } else {
        json!(s.duration.as_secs_f64() * 1000.0)
    };
    let seconds = s.duration.as_secs_f64();
    s.series
        .iter()
        .map(|(key, value)| {
            let tags: Map<String, Json> = key
                .tags
                .iter()
                .map(|(k, v)| (k.to_string(), Json::String(v.to_string())))
                .collect();
            json!({
                "type": "Interval",
                "metric": key.metric.name(),
                "time": time,
                "duration_ms": duration_ms,
                "tags": tags,
                "values": values(value, seconds),
            })
        })
        .collect()
}

fn values(v: &Value, seconds: f64) -> Json {
    match v {
        Value::Counter(c) => json!({
            "count": c,
            "rate": if seconds > 0.0 { c / seconds } else { 0.0 },
        }),
        Value::Gauge { value, min, max } => json!({ "value": value, "min": min, "max": max }),
        Value::Rate { trues, total } => json!({
            "rate": if *total > 0 { *trues as f64 / *total as f64 } else { 0.0 },
            "passes": trues,
            "fails": total.saturating_sub(*trues),
        }),
        Value::Trend(h) => json!({
            "count": trend_count(h),
            "avg": trend_avg_ms(h),
            "min": trend_min_ms(h),
            "med": trend_med_ms(h),
            "max": trend_max_ms(h),
            "p(90)": trend_percentile_ms(h, 90.0),
            "p(95)": trend_percentile_ms(h, 95.0),
            "p(99)": trend_percentile_ms(h, 99.0),
        }),
    }
}

/// `2026-11-23T17:00:01.250Z`: always with milliseconds, so every line has
/// the same shape for tools that parse a fixed format. Instants past the
/// year 9999 cannot be written in RFC 3339 and are clamped to its last
/// millisecond.
pub fn rfc3339_utc(unix_ms: u64) -> String {
    let nanos = i128::from(unix_ms) * 1_000_000;
    let t = OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or_else(|_| {
        OffsetDateTime::new_utc(
            time::Date::from_calendar_date(9999, time::Month::December, 31)
                .expect("invariant: a valid calendar date"),
            time::Time::from_hms_milli(23, 59, 59, 999).expect("invariant: a valid time"),
        )
    });
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::metrics::recorder::{Recorder, RecorderOptions};
    use crate::metrics::sample::Sample;
    use crate::metrics::tests::fixture::{self, CHECK_MAIN_OK, HOME};

    #[test]
    fn rfc3339_formatting() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_utc(1_795_453_201_000), "2026-11-23T17:00:01.000Z");
        assert_eq!(rfc3339_utc(1_795_453_201_250), "2026-11-23T17:00:01.250Z");
        assert_eq!(rfc3339_utc(u64::MAX), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn one_line_per_series_with_typed_values() {
        let mut r = Recorder::new(&fixture::plan(), RecorderOptions::default());
        for ms in [10, 20, 30, 40] {
            r.record(&fixture::ok(HOME, ms));
        }
        r.record(&Sample::Check {
            check: CHECK_MAIN_OK,
            ok: false,
        });
        r.record(&Sample::Vus { active: 3, max: 5 });
        let s = r.take_interval(1_795_453_201_000, Duration::from_secs(2));
        let lines = interval_lines(&s);
        assert_eq!(lines.len(), s.series.len());

        let find = |metric: &str| {
            lines
                .iter()
                .find(|l| l["metric"] == metric)
                .unwrap_or_else(|| panic!("{metric} line"))
        };
        let d = find("http_req_duration");
        assert_eq!(d["type"], "Interval");
        assert_eq!(d["time"], "2026-11-23T17:00:01.000Z");
        assert_eq!(d["duration_ms"], 2000);
        assert_eq!(d["tags"]["status"], "200");
        assert_eq!(d["tags"]["group"], "");
        assert_eq!(d["values"]["count"], 4);
        // Exact, in milliseconds with their fraction.
        assert_eq!(d["values"]["max"], 40.0);
        assert_eq!(d["values"]["min"], 10.0);
        assert_eq!(d["values"]["avg"], 25.0);
        for stat in ["avg", "min", "med", "p(90)", "p(95)", "p(99)"] {
            assert!(d["values"][stat].is_f64(), "{stat}");
        }

        let reqs = find("http_reqs");
        assert_eq!(reqs["values"]["count"], 4.0);
        assert_eq!(reqs["values"]["rate"], 2.0);
        let checks = find("checks");
        assert_eq!(checks["values"]["rate"], 0.0);
        assert_eq!(checks["values"]["fails"], 1);
        let vus = find("vus");
        assert_eq!(vus["values"]["value"], 3.0);
        assert_eq!(vus["tags"], json!({}));
    }

    #[test]
    fn sub_microsecond_parts_are_kept() {
        let mut r = Recorder::new(&fixture::plan(), RecorderOptions::default());
        for ns in [12_345, 7_500, 3_250] {
            let Sample::Http(mut h) = fixture::ok(HOME, 10) else {
                unreachable!("fixture::ok is an HTTP sample")
            };
            h.timings.sending = Duration::from_nanos(ns);
            r.record(&Sample::Http(h));
        }
        let lines = interval_lines(&r.take_interval(0, Duration::from_secs(1)));
        let sending = lines
            .iter()
            .find(|l| l["metric"] == "http_req_sending")
            .expect("a sending line");
        assert_eq!(sending["values"]["min"], 0.00325);
        assert_eq!(sending["values"]["max"], 0.012345);
        assert_eq!(sending["values"]["p(99)"], 0.012345);
    }

    #[test]
    fn fractional_interval_lengths_stay_exact() {
        let s = Snapshot::empty(0, Duration::from_micros(1500));
        assert!(interval_lines(&s).is_empty());
        let mut r = Recorder::new(&fixture::plan(), RecorderOptions::default());
        r.record(&Sample::Vus { active: 1, max: 1 });
        let s = r.take_interval(0, Duration::from_micros(1500));
        assert_eq!(interval_lines(&s)[0]["duration_ms"], 1.5);
    }
}
