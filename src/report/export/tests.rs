use std::time::Duration;

use serde_json::json;

use super::*;

fn metric(name: &str, tags: &[(&str, &str)], values: MetricValues) -> MetricSummary {
    MetricSummary {
        name: name.into(),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        values,
    }
}

fn check(name: &str, group: &str, passes: u64, fails: u64) -> CheckSummary {
    CheckSummary {
        name: name.into(),
        group: group.into(),
        passes,
        fails,
    }
}

fn outcome(key: &str, source: &str, ok: bool) -> ThresholdOutcome {
    ThresholdOutcome {
        key: key.into(),
        source: source.into(),
        aggregation: "x".into(),
        observed: Some(1.0),
        ok,
        aborted: false,
    }
}

fn summary(
    metrics: Vec<MetricSummary>,
    thresholds: Vec<ThresholdOutcome>,
    checks: Vec<CheckSummary>,
) -> Summary {
    Summary {
        duration: Duration::from_secs(10),
        metrics,
        thresholds,
        checks,
        errors: vec![],
        trend_stats: TrendStat::k6_defaults(),
        breakdown: vec![],
        notes: vec![],
        matrix: Vec::new(),
        scopes: Vec::new(),
    }
}

fn trend_stats(pairs: &[(&str, f64)]) -> MetricValues {
    MetricValues::Trend {
        count: 7,
        stats: pairs.iter().map(|(l, v)| (l.to_string(), *v)).collect(),
    }
}

#[test]
fn each_metric_type_has_k6s_keys() {
    let s = summary(
        vec![
            metric(
                "http_reqs",
                &[],
                MetricValues::Counter {
                    count: 45.0,
                    rate: 4.5,
                },
            ),
            metric(
                "vus",
                &[],
                MetricValues::Gauge {
                    value: 3.0,
                    min: 1.0,
                    max: 5.0,
                },
            ),
            metric(
                "http_req_failed",
                &[],
                MetricValues::Rate {
                    rate: 0.25,
                    passes: 1,
                    fails: 3,
                },
            ),
        ],
        vec![],
        vec![],
    );
    let export = k6_summary_export(&s, &ExportContext::default());
    assert_eq!(
        export["metrics"],
        json!({
            "http_reqs": {"count": 45, "rate": 4.5},
            "vus": {"value": 3, "min": 1, "max": 5},
            "http_req_failed": {"passes": 1, "fails": 3, "value": 0.25},
        })
    );
    assert_eq!(
        export.as_object().map(|o| o.len()),
        Some(2),
        "only root_group and metrics"
    );
}

#[test]
fn trends_list_exactly_the_requested_stats() {
    let values = trend_stats(&[
        ("avg", 2.5),
        ("min", 1.0),
        ("med", 2.0),
        ("max", 9.0),
        ("p(90)", 8.0),
        ("p(95)", 8.5),
        ("p(99.9)", 8.9),
    ]);
    let s = summary(
        vec![metric("http_req_duration", &[], values)],
        vec![],
        vec![],
    );
    let ctx = ExportContext {
        trend_stats: vec![
            TrendStat::Med,
            TrendStat::Count,
            TrendStat::Percentile(99.9),
            TrendStat::Percentile(99.0),
        ],
    };
    let export = k6_summary_export(&s, &ctx);
    // p(99) was not computed, so it is left out rather than invented.
    assert_eq!(
        export["metrics"]["http_req_duration"],
        json!({"med": 2, "count": 7, "p(99.9)": 8.9})
    );
}

#[test]
fn threshold_booleans_are_true_when_the_threshold_failed() {
    let s = summary(
        vec![
            metric("http_req_duration", &[], trend_stats(&[("p(95)", 30.0)])),
            metric(
                "http_req_duration",
                &[("scenario", "main")],
                trend_stats(&[("p(95)", 30.0)]),
            ),
        ],
        vec![
            outcome("http_req_duration", "p(95)<20", false),
            outcome("http_req_duration", "p(95)<200", true),
            // Written with spaces: still this submetric's threshold.
            outcome("http_req_duration{ scenario: main }", "p(95)<50", true),
        ],
        vec![],
    );
    let export = k6_summary_export(&s, &ExportContext::default());
    let metrics = &export["metrics"];
    assert_eq!(
        metrics["http_req_duration"]["thresholds"],
        json!({"p(95)<20": true, "p(95)<200": false})
    );
    assert_eq!(
        metrics["http_req_duration{scenario:main}"]["thresholds"],
        json!({"p(95)<50": false})
    );
}

#[test]
fn metrics_without_thresholds_have_no_thresholds_key() {
    let s = summary(
        vec![metric(
            "http_reqs",
            &[],
            MetricValues::Counter {
                count: 1.0,
                rate: 0.1,
            },
        )],
        vec![outcome("vus", "value>0", true)],
        vec![],
    );
    let export = k6_summary_export(&s, &ExportContext::default());
    assert!(export["metrics"]["http_reqs"].get("thresholds").is_none());
}

#[test]
fn thresholded_metrics_without_samples_are_exported_as_zeros() {
    let s = summary(
        vec![],
        vec![
            outcome("http_req_duration{status:500}", "p(95)<100", true),
            outcome("http_req_failed{status:500}", "rate<0.5", true),
            outcome("dropped_iterations", "count<1", true),
            outcome("not_a_metric", "count<1", true),
        ],
        vec![],
    );
    let export = k6_summary_export(&s, &ExportContext::default());
    // As k6 1.1.0 exports them.
    assert_eq!(
        export["metrics"],
        json!({
            "http_req_duration{status:500}": {
                "avg": 0, "min": 0, "med": 0, "max": 0, "p(90)": 0, "p(95)": 0,
                "thresholds": {"p(95)<100": false},
            },
            "http_req_failed{status:500}": {
                "passes": 0, "fails": 0, "value": 0, "thresholds": {"rate<0.5": false},
            },
            "dropped_iterations": {"count": 0, "rate": 0, "thresholds": {"count<1": false}},
        })
    );
}

#[test]
fn checks_nest_in_groups_with_md5_ids() {
    let s = summary(
        vec![],
        vec![],
        vec![
            check("root check", "", 3, 1),
            check("inner", "::outer::inner", 2, 0),
            check("outer check", "::outer", 1, 1),
            // The same check reported twice (two requests) is one check.
            check("outer check", "::outer", 4, 0),
            // A path without the leading `::` is the same group.
            check("also outer", "outer", 5, 0),
        ],
    );
    let root = &k6_summary_export(&s, &ExportContext::default())["root_group"];
    assert_eq!(root["name"], "");
    assert_eq!(root["path"], "");
    assert_eq!(root["id"], "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(
        root["checks"]["root check"],
        json!({
            "name": "root check",
            "path": "::root check",
            "id": crate::report::md5_hex(b"::root check"),
            "passes": 3,
            "fails": 1,
        })
    );
    let outer = &root["groups"]["outer"];
    assert_eq!(outer["path"], "::outer");
    assert_eq!(outer["id"], crate::report::md5_hex(b"::outer"));
    assert_eq!(outer["checks"]["outer check"]["passes"], 5);
    assert_eq!(outer["checks"]["outer check"]["fails"], 1);
    assert_eq!(outer["checks"]["also outer"]["path"], "::outer::also outer");
    let inner = &outer["groups"]["inner"];
    assert_eq!(inner["path"], "::outer::inner");
    assert_eq!(inner["checks"]["inner"]["path"], "::outer::inner::inner");
    assert_eq!(inner["groups"], json!({}));
}

#[test]
fn an_empty_run_still_has_k6s_top_level_shape() {
    let export = k6_summary_export(&summary(vec![], vec![], vec![]), &ExportContext::default());
    assert_eq!(
        export,
        json!({
            "root_group": {
                "name": "", "path": "", "id": "d41d8cd98f00b204e9800998ecf8427e",
                "groups": {}, "checks": {},
            },
            "metrics": {},
        })
    );
}

#[test]
fn numbers_follow_gos_encoding() {
    assert_eq!(number(76.0).to_string(), "76");
    assert_eq!(number(-3.0).to_string(), "-3");
    assert_eq!(number(2.5).to_string(), "2.5");
    assert_eq!(number(1e300).to_string(), "1e+300");
    assert_eq!(number(f64::NAN), Value::Null);
    assert_eq!(number(f64::INFINITY), Value::Null);
}
