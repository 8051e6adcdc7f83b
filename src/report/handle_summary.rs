//! The `data` a script's `handleSummary(data)` receives: k6 1.1's layout
//! (K6-JS-REFERENCE §1.4), derived from the `--summary-export` document,
//! which holds the same numbers in k6's older shape.

use serde_json::{Map, Value, json};

use crate::metrics::{Metric, MetricKind, Unit};

/// What `handleSummary` sees besides the metrics.
#[derive(Debug, Clone)]
pub struct SummaryContext {
    pub trend_stats: Vec<String>,
    pub no_color: bool,
    pub stdout_tty: bool,
    pub stderr_tty: bool,
    pub duration_ms: f64,
    /// `setup()`'s result as JSON, when it returned one.
    pub setup_data: Option<String>,
}

/// k6's `handleSummary` data from a `--summary-export` document.
pub fn data(export: &Value, cx: &SummaryContext) -> Value {
    let mut metrics = Map::new();
    if let Some(m) = export["metrics"].as_object() {
        for (name, flat) in m {
            metrics.insert(name.clone(), metric(name, flat));
        }
    }
    let mut out = json!({
        "root_group": group(&export["root_group"]),
        "options": {
            "summaryTrendStats": cx.trend_stats,
            "summaryTimeUnit": "",
            "noColor": cx.no_color,
        },
        "state": {
            "isStdOutTTY": cx.stdout_tty,
            "isStdErrTTY": cx.stderr_tty,
            "testRunDurationMs": cx.duration_ms,
        },
        "metrics": metrics,
    });
    if let Some(setup) = cx
        .setup_data
        .as_deref()
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
    {
        out["setup_data"] = setup;
    }
    out
}

/// `{type, contains, values, thresholds}` from an export's flat metric.
fn metric(name: &str, flat: &Value) -> Value {
    let base = name.split('{').next().unwrap_or(name);
    let catalog = Metric::from_name(base);
    let kind = catalog.map(Metric::kind);
    let kind_name = match kind {
        Some(MetricKind::Counter) => "counter",
        Some(MetricKind::Gauge) => "gauge",
        Some(MetricKind::Rate) => "rate",
        _ => "trend",
    };
    let contains = match catalog.map(Metric::unit) {
        Some(Unit::Time) => "time",
        Some(Unit::Data) => "data",
        _ => "default",
    };
    let mut values = Map::new();
    let mut thresholds = Map::new();
    if let Some(obj) = flat.as_object() {
        for (k, v) in obj {
            match k.as_str() {
                "thresholds" => {
                    // The export says `true` for a failed threshold.
                    for (expr, failed) in v.as_object().into_iter().flatten() {
                        let ok = !failed.as_bool().unwrap_or(false);
                        thresholds.insert(expr.clone(), json!({ "ok": ok }));
                    }
                }
                "value" if kind == Some(MetricKind::Rate) => {
                    values.insert("rate".into(), v.clone());
                }
                _ => {
                    values.insert(k.clone(), v.clone());
                }
            }
        }
    }
    let mut m = json!({ "type": kind_name, "contains": contains, "values": values });
    if !thresholds.is_empty() {
        m["thresholds"] = Value::Object(thresholds);
    }
    m
}

/// A group with its `groups` and `checks` as arrays, as k6 passes them.
fn group(g: &Value) -> Value {
    let list = |v: &Value, f: &dyn Fn(&Value) -> Value| -> Vec<Value> {
        v.as_object()
            .map(|m| m.values().map(f).collect())
            .unwrap_or_default()
    };
    json!({
        "name": g["name"],
        "path": g["path"],
        "id": g["id"],
        "groups": list(&g["groups"], &group),
        "checks": list(&g["checks"], &|c: &Value| c.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_becomes_k6_handle_summary_layout() {
        let export = json!({
            "root_group": {
                "name": "", "path": "", "id": "d41d8cd98f00b204e9800998ecf8427e",
                "groups": { "g": { "name": "g", "path": "::g", "id": "x", "groups": {},
                    "checks": { "ok": { "name": "ok", "path": "::g::ok", "id": "y", "passes": 2, "fails": 0 } } } },
                "checks": {}
            },
            "metrics": {
                "http_req_failed": { "passes": 0, "fails": 3, "value": 0.0, "thresholds": { "rate<0.01": false } },
                "http_req_duration": { "avg": 1.5, "p(95)": 2.0 },
                "http_reqs": { "count": 3, "rate": 1.5 },
            }
        });
        let cx = SummaryContext {
            trend_stats: vec!["avg".into(), "p(95)".into()],
            no_color: true,
            stdout_tty: false,
            stderr_tty: false,
            duration_ms: 2000.0,
            setup_data: Some(r#"{"token":"t"}"#.into()),
        };
        let d = data(&export, &cx);
        let failed = &d["metrics"]["http_req_failed"];
        assert_eq!(failed["type"], "rate");
        assert_eq!(failed["values"]["rate"], 0.0);
        assert_eq!(failed["thresholds"]["rate<0.01"]["ok"], true);
        assert_eq!(d["metrics"]["http_req_duration"]["contains"], "time");
        assert_eq!(d["metrics"]["http_reqs"]["type"], "counter");
        assert_eq!(d["root_group"]["groups"][0]["checks"][0]["passes"], 2);
        assert_eq!(d["setup_data"]["token"], "t");
        assert_eq!(d["state"]["testRunDurationMs"], 2000.0);
    }
}
