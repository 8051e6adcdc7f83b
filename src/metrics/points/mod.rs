//! What outputs write, as pure encoders into byte buffers: every value the
//! recorder takes in, as k6 writes it (`--out json`, `--out csv`, and
//! `--out influxdb` with `layout=samples`), and per-interval aggregates
//! (`influx_interval`, `--out influxdb`'s default). The files, writer
//! threads and queues live in the `outputs` module.
//!
//! An encoder learns series as the recorder creates them
//! ([`PointEncoder::add_series`], in id order) and then encodes points by
//! series id, so tags are escaped once per series, never per sample.

use super::catalog::{Metric, MetricKind, Unit};
use super::recorder::Point;
use super::snapshot::SeriesKey;

pub mod influx;
pub mod influx_interval;
pub mod k6_csv;
pub mod k6_json;

/// Encodes points for one per-sample output.
pub trait PointEncoder: Send {
    /// What the output starts with (a header row).
    fn start(&mut self, _out: &mut Vec<u8>) {}

    /// The next series (ids are given in order, from 0).
    fn add_series(&mut self, key: &SeriesKey, out: &mut Vec<u8>);

    /// Points of series already added, all taken in at `time_unix_ns`.
    fn write(&mut self, time_unix_ns: u128, points: &[Point], out: &mut Vec<u8>);
}

/// k6's type name of a metric.
pub fn type_name(metric: Metric) -> &'static str {
    match metric.kind() {
        MetricKind::Counter => "counter",
        MetricKind::Gauge => "gauge",
        MetricKind::Rate => "rate",
        MetricKind::Trend => "trend",
    }
}

/// k6's `contains` of a metric: what its values are.
pub fn contains_name(metric: Metric) -> &'static str {
    match metric.unit() {
        Unit::Default => "default",
        Unit::Time => "time",
        Unit::Data => "data",
    }
}

/// Go's `time.RFC3339Nano` in UTC: `2026-12-06T13:41:10.441485349Z`, the
/// fraction without trailing zeros (none at all on a whole second).
/// Instants past the year 9999 are clamped to its last nanosecond.
pub fn rfc3339_nano(unix_ns: u128) -> String {
    let t = i128::try_from(unix_ns)
        .ok()
        .and_then(|ns| time::OffsetDateTime::from_unix_timestamp_nanos(ns).ok())
        .filter(|t| t.year() <= 9999)
        .unwrap_or_else(|| {
            time::OffsetDateTime::new_utc(
                time::Date::from_calendar_date(9999, time::Month::December, 31)
                    .expect("invariant: a valid calendar date"),
                time::Time::from_hms_nano(23, 59, 59, 999_999_999)
                    .expect("invariant: a valid time"),
            )
        });
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    );
    let nanos = t.nanosecond();
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// A number as Go's `encoding/json` writes a float64: whole numbers
/// without a fraction (`1`, not `1.0`), others in their shortest form;
/// values JSON cannot hold are written as 0.
pub fn json_number(x: f64, out: &mut Vec<u8>) {
    if !x.is_finite() {
        out.push(b'0');
    } else if x.fract() == 0.0 && x.abs() < 1e21 {
        out.extend_from_slice(format!("{x:.0}").as_bytes());
    } else {
        out.extend_from_slice(
            serde_json::Number::from_f64(x)
                .map_or_else(|| "0".to_owned(), |n| n.to_string())
                .as_bytes(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_nano_as_go_writes_it() {
        assert_eq!(rfc3339_nano(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_nano(1_796_564_470_441_485_349),
            "2026-12-06T13:41:10.441485349Z"
        );
        assert_eq!(
            rfc3339_nano(1_796_564_470_441_000_000),
            "2026-12-06T13:41:10.441Z"
        );
        assert_eq!(rfc3339_nano(u128::MAX), "9999-12-31T23:59:59.999999999Z");
    }

    #[test]
    fn numbers_as_go_writes_them() {
        let s = |x: f64| {
            let mut out = Vec::new();
            json_number(x, &mut out);
            String::from_utf8(out).expect("ascii")
        };
        assert_eq!(s(1.0), "1");
        assert_eq!(s(-0.0), "-0");
        assert_eq!(s(447.0), "447");
        assert_eq!(s(1.07472), "1.07472");
        assert_eq!(s(0.012345), "0.012345");
        assert_eq!(s(f64::NAN), "0");
    }
}
