//! k6's CSV output (`--out csv=FILE`): a header, then one row per sample
//! with k6 1.1's columns:
//!
//! ```text
//! metric_name,timestamp,metric_value,check,error,error_code,expected_response,group,method,name,proto,scenario,service,status,subproto,tls_version,url,extra_tags,metadata
//! http_reqs,1796564470,1.000000,,,,true,,GET,http://h/,HTTP/1.1,default,,200,,,http://h/,,
//! ```
//!
//! The tag columns are k6's default indexable system tags, sorted; any
//! other tag of the series goes to `extra_tags` as `k=v` pairs joined
//! with `&` (sorted, where k6's order is random). `metadata` stays empty:
//! Volley records no per-sample metadata (`vu`, `iter`). Values are
//! written with six decimals, as Go's `%f`.

use super::{PointEncoder, rfc3339_nano};
use crate::metrics::recorder::Point;
use crate::metrics::snapshot::SeriesKey;

/// The tag columns, in order.
pub const TAG_COLUMNS: [&str; 14] = [
    "check",
    "error",
    "error_code",
    "expected_response",
    "group",
    "method",
    "name",
    "proto",
    "scenario",
    "service",
    "status",
    "subproto",
    "tls_version",
    "url",
];

/// How the `timestamp` column is written (k6's `timeFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeFormat {
    /// Whole seconds since the Unix epoch (k6's default).
    #[default]
    Unix,
    UnixMilli,
    UnixMicro,
    UnixNano,
    /// `2026-12-06T13:41:10Z`.
    Rfc3339,
    /// `2026-12-06T13:41:10.441485349Z`.
    Rfc3339Nano,
}

impl TimeFormat {
    /// k6's names: `unix`, `unix_milli`, `unix_micro`, `unix_nano`,
    /// `rfc3339`, `rfc3339_nano`.
    pub fn parse(s: &str) -> Option<TimeFormat> {
        Some(match s {
            "unix" => TimeFormat::Unix,
            "unix_milli" => TimeFormat::UnixMilli,
            "unix_micro" => TimeFormat::UnixMicro,
            "unix_nano" => TimeFormat::UnixNano,
            "rfc3339" => TimeFormat::Rfc3339,
            "rfc3339_nano" => TimeFormat::Rfc3339Nano,
            _ => return None,
        })
    }

    fn format(self, unix_ns: u128) -> String {
        match self {
            TimeFormat::Unix => (unix_ns / 1_000_000_000).to_string(),
            TimeFormat::UnixMilli => (unix_ns / 1_000_000).to_string(),
            TimeFormat::UnixMicro => (unix_ns / 1_000).to_string(),
            TimeFormat::UnixNano => unix_ns.to_string(),
            TimeFormat::Rfc3339 => rfc3339_nano(unix_ns / 1_000_000_000 * 1_000_000_000),
            TimeFormat::Rfc3339Nano => rfc3339_nano(unix_ns),
        }
    }
}

/// Encoder of k6's CSV rows.
pub struct K6Csv {
    time_format: TimeFormat,
    /// Per series id: the metric name cell, and the cells after the value.
    series: Vec<(Vec<u8>, Vec<u8>)>,
}

impl K6Csv {
    pub fn new(time_format: TimeFormat) -> K6Csv {
        K6Csv {
            time_format,
            series: Vec::new(),
        }
    }
}

impl PointEncoder for K6Csv {
    fn start(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"metric_name,timestamp,metric_value,");
        out.extend_from_slice(TAG_COLUMNS.join(",").as_bytes());
        out.extend_from_slice(b",extra_tags,metadata\n");
    }

    fn add_series(&mut self, key: &SeriesKey, out: &mut Vec<u8>) {
        let _ = out;
        let mut rest = Vec::new();
        for column in TAG_COLUMNS {
            rest.push(b',');
            cell(key.tags.get(column).unwrap_or(""), &mut rest);
        }
        let extra: Vec<String> = key
            .tags
            .iter()
            .filter(|(k, _)| !TAG_COLUMNS.contains(k))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        rest.push(b',');
        cell(&extra.join("&"), &mut rest);
        rest.extend_from_slice(b",\n");
        let mut name = Vec::new();
        cell(key.metric.name(), &mut name);
        self.series.push((name, rest));
    }

    fn write(&mut self, time_unix_ns: u128, points: &[Point], out: &mut Vec<u8>) {
        let time = self.time_format.format(time_unix_ns);
        for p in points {
            let Some((name, rest)) = self.series.get(p.series as usize) else {
                continue;
            };
            out.extend_from_slice(name);
            out.push(b',');
            out.extend_from_slice(time.as_bytes());
            out.push(b',');
            out.extend_from_slice(format!("{:.6}", p.value).as_bytes());
            out.extend_from_slice(rest);
        }
    }
}

/// One CSV cell, quoted as Go's `encoding/csv` does when it holds a comma,
/// a quote, a line break or starts with a space.
fn cell(s: &str, out: &mut Vec<u8>) {
    let quote = s.contains([',', '"', '\n', '\r']) || s.starts_with([' ', '\t']);
    if !quote {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    out.push(b'"');
    out.extend_from_slice(s.replace('"', "\"\"").as_bytes());
    out.push(b'"');
}

#[cfg(test)]
mod tests;
