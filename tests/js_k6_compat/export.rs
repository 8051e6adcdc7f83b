//! Reading k6's `--summary-export` format: counts, checks through groups,
//! custom metrics, threshold verdicts, and where two exports differ in
//! values or in shape.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// `metrics.<name>.count` (0 when the metric is absent).
pub fn count(doc: &Value, metric: &str) -> f64 {
    doc["metrics"][metric]["count"].as_f64().unwrap_or(0.0)
}

/// k6's built-in metric names: every other metric in an export is the
/// script's own.
const BUILT_IN: &[&str] = &[
    "checks",
    "data_received",
    "data_sent",
    "dropped_iterations",
    "group_duration",
    "http_req_blocked",
    "http_req_connecting",
    "http_req_duration",
    "http_req_failed",
    "http_req_receiving",
    "http_req_sending",
    "http_req_tls_handshaking",
    "http_req_waiting",
    "http_reqs",
    "iteration_duration",
    "iterations",
    "vus",
    "vus_max",
];

/// The exact numbers of every custom metric (and its sub-metrics) that do
/// not depend on timing: a counter's count, a rate's passes and fails, a
/// gauge's last value. Trends are compared by presence only (their values
/// are durations or depend on them).
pub fn custom_counts(doc: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(metrics) = doc["metrics"].as_object() else {
        return out;
    };
    for (name, m) in metrics {
        let base = name.split('{').next().unwrap_or(name);
        if BUILT_IN.contains(&base) {
            continue;
        }
        let shown = if let Some(c) = m.get("count").filter(|_| m.get("rate").is_some()) {
            format!("count {c}")
        } else if let (Some(p), Some(f)) = (m.get("passes"), m.get("fails")) {
            format!("passes {p} fails {f}")
        } else if m.get("avg").is_some() {
            "trend".to_owned()
        } else if let Some(v) = m.get("value") {
            format!("value {v}")
        } else {
            "?".to_owned()
        };
        out.insert(name.clone(), shown);
    }
    out
}

/// `metrics.checks.value`: the share of passing checks (`None` without checks).
pub fn check_ratio(doc: &Value) -> Option<f64> {
    doc["metrics"]["checks"]["value"].as_f64()
}

/// Every check in `root_group`, through nested groups, by path
/// (`::group::check`) → `(passes, fails)`.
pub fn checks(doc: &Value) -> BTreeMap<String, (u64, u64)> {
    fn walk(group: &Value, path: &str, out: &mut BTreeMap<String, (u64, u64)>) {
        if let Some(checks) = group["checks"].as_object() {
            for (name, check) in checks {
                let counts = (
                    check["passes"].as_u64().unwrap_or(u64::MAX),
                    check["fails"].as_u64().unwrap_or(u64::MAX),
                );
                out.insert(format!("{path}::{name}"), counts);
            }
        }
        if let Some(groups) = group["groups"].as_object() {
            for (name, inner) in groups {
                walk(inner, &format!("{path}::{name}"), out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&doc["root_group"], "", &mut out);
    out
}

/// Every threshold verdict: metric (with its tag filter) → expression →
/// failed (`true` means failed, as in k6's export).
pub fn thresholds(doc: &Value) -> BTreeMap<String, BTreeMap<String, bool>> {
    let mut out = BTreeMap::new();
    if let Some(metrics) = doc["metrics"].as_object() {
        for (metric, body) in metrics {
            if let Some(verdicts) = body["thresholds"].as_object() {
                let verdicts = verdicts
                    .iter()
                    .map(|(expr, failed)| (expr.clone(), failed.as_bool().unwrap_or(true)))
                    .collect();
                out.insert(metric.clone(), verdicts);
            }
        }
    }
    out
}

/// Lines describing how two maps differ (empty when equal).
pub fn map_diff<V: PartialEq + std::fmt::Debug>(
    k6: &BTreeMap<String, V>,
    volley: &BTreeMap<String, V>,
) -> Vec<String> {
    let keys: BTreeSet<&String> = k6.keys().chain(volley.keys()).collect();
    keys.into_iter()
        .filter_map(|key| match (k6.get(key), volley.get(key)) {
            (Some(a), Some(b)) if a == b => None,
            (Some(a), Some(b)) => Some(format!("{key:?}: k6 {a:?}, volley {b:?}")),
            (Some(a), None) => Some(format!("{key:?}: k6 {a:?}, missing in volley")),
            (None, Some(b)) => Some(format!("{key:?}: missing in k6, volley {b:?}")),
            (None, None) => None,
        })
        .collect()
}

/// Where two JSON documents differ in shape: keys present on one side only,
/// or values of different JSON types. Values themselves are ignored.
pub fn shape_diff(path: &str, k6: &Value, volley: &Value, out: &mut Vec<String>) {
    match (k6, volley) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let at = format!("{path}/{key}");
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => shape_diff(&at, x, y, out),
                    (Some(_), None) => out.push(format!("{at}: in k6's export only")),
                    (None, Some(_)) => out.push(format!("{at}: in Volley's export only")),
                    (None, None) => {}
                }
            }
        }
        (a, b) if json_type(a) != json_type(b) => out.push(format!(
            "{path}: k6 has a {}, Volley a {}",
            json_type(a),
            json_type(b)
        )),
        _ => {}
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
