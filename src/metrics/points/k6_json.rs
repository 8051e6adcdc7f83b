//! k6's JSON output (`--out json=FILE`): newline-delimited JSON, a
//! `Metric` line before a metric's first sample, then one `Point` line
//! per sample, with k6 1.1's key order:
//!
//! ```json
//! {"type":"Metric","data":{"name":"http_reqs","type":"counter","contains":"default","thresholds":[],"submetrics":null},"metric":"http_reqs"}
//! {"metric":"http_reqs","type":"Point","data":{"time":"2026-12-06T13:41:10.441485349Z","value":1,"tags":{"group":"","method":"GET","status":"200"}}}
//! ```
//!
//! A metric's `thresholds` are the plan's thresholds on the whole metric
//! (a string each, or `{threshold, abortOnFail, delayAbortEval}` with
//! `abortOnFail`); its `submetrics` those on tag-filtered submetrics, and
//! for `http_req_duration` then `{expected_response:true}`, which k6
//! declares for its summary. Times are UTC; k6 writes the machine's
//! offset, which names the same instant.

use std::collections::HashSet;

use serde_json::{Map, Value as Json};

use super::{PointEncoder, contains_name, json_number, rfc3339_nano, type_name};
use crate::metrics::catalog::Metric;
use crate::metrics::recorder::Point;
use crate::metrics::snapshot::SeriesKey;
use crate::plan::Threshold;

struct Series {
    metric: Metric,
    prefix: Vec<u8>,
    suffix: Vec<u8>,
    declared: bool,
}

/// Encoder of k6's JSON lines.
pub struct K6Json {
    thresholds: Vec<Threshold>,
    /// Metrics whose `Metric` line was written.
    declared: HashSet<Metric>,
    /// Per series id: its metric, the line up to the time and from the
    /// value on, and whether the metric's `Metric` line is written.
    series: Vec<Series>,
}

impl K6Json {
    /// An encoder declaring `thresholds` (the plan's) with their metrics.
    pub fn new(thresholds: &[Threshold]) -> K6Json {
        K6Json {
            thresholds: thresholds.to_vec(),
            declared: HashSet::new(),
            series: Vec::new(),
        }
    }

    /// The `Metric` line of `metric`, newline included.
    pub fn declaration(&self, metric: Metric) -> String {
        let name = metric.name();
        let mut thresholds = Vec::new();
        let mut submetrics: Vec<String> = Vec::new();
        let mut seen = HashSet::new();
        let mut submetric = |tags: &[(String, String)], submetrics: &mut Vec<String>| {
            let suffix = tags
                .iter()
                .map(|(k, v)| format!("{k}:{v}"))
                .collect::<Vec<_>>()
                .join(",");
            if seen.insert(suffix.clone()) {
                let tag_map: Map<String, Json> = tags
                    .iter()
                    .map(|(k, v)| (k.clone(), Json::String(v.clone())))
                    .collect();
                submetrics.push(format!(
                    "{{\"name\":{},\"suffix\":{},\"tags\":{}}}",
                    string(&format!("{name}{{{suffix}}}")),
                    string(&suffix),
                    Json::Object(tag_map),
                ));
            }
        };
        for t in self.thresholds.iter().filter(|t| t.metric == name) {
            if !t.tags.is_empty() {
                submetric(&t.tags, &mut submetrics);
            } else if t.abort_on_fail {
                let delay = if t.delay_abort_eval.is_zero() {
                    "null".to_owned()
                } else {
                    string(&crate::plan::format_go_duration(t.delay_abort_eval))
                };
                thresholds.push(format!(
                    "{{\"threshold\":{},\"abortOnFail\":true,\"delayAbortEval\":{delay}}}",
                    string(&t.source)
                ));
            } else {
                thresholds.push(string(&t.source));
            }
        }
        if metric == Metric::HttpReqDuration {
            // After the thresholds' own, as k6 adds it for its summary.
            let tags = [("expected_response".to_owned(), "true".to_owned())];
            submetric(&tags, &mut submetrics);
        }
        let submetrics = if submetrics.is_empty() {
            "null".to_owned()
        } else {
            format!("[{}]", submetrics.join(","))
        };
        format!(
            "{{\"type\":\"Metric\",\"data\":{{\"name\":{n},\"type\":\"{}\",\"contains\":\"{}\",\
             \"thresholds\":[{}],\"submetrics\":{submetrics}}},\"metric\":{n}}}\n",
            type_name(metric),
            contains_name(metric),
            thresholds.join(","),
            n = string(name),
        )
    }
}

/// A JSON string literal.
fn string(s: &str) -> String {
    Json::String(s.to_owned()).to_string()
}

impl PointEncoder for K6Json {
    fn add_series(&mut self, key: &SeriesKey, _out: &mut Vec<u8>) {
        let name = Json::String(key.metric.name().to_owned());
        let prefix = format!("{{\"metric\":{name},\"type\":\"Point\",\"data\":{{\"time\":\"");
        let tags: Map<String, Json> = key
            .tags
            .iter()
            .map(|(k, v)| (k.to_owned(), Json::String(v.to_owned())))
            .collect();
        let suffix = format!(",\"tags\":{}}}}}\n", Json::Object(tags));
        self.series.push(Series {
            metric: key.metric,
            prefix: prefix.into_bytes(),
            suffix: suffix.into_bytes(),
            declared: false,
        });
    }

    fn write(&mut self, time_unix_ns: u128, points: &[Point], out: &mut Vec<u8>) {
        let time = rfc3339_nano(time_unix_ns);
        for p in points {
            let Some(series) = self.series.get(p.series as usize) else {
                continue;
            };
            if !series.declared {
                // Before the metric's first point, as k6 writes it.
                let metric = series.metric;
                if self.declared.insert(metric) {
                    out.extend_from_slice(self.declaration(metric).as_bytes());
                }
                self.series[p.series as usize].declared = true;
            }
            let series = &self.series[p.series as usize];
            out.extend_from_slice(&series.prefix);
            out.extend_from_slice(time.as_bytes());
            out.extend_from_slice(b"\",\"value\":");
            json_number(p.value, out);
            out.extend_from_slice(&series.suffix);
        }
    }
}

#[cfg(test)]
mod tests;
