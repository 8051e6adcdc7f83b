//! Summary tests: metric and submetric order, display values, trend stat
//! selection, checks, errors and the overflow note.

use std::time::Duration;

use super::*;
use crate::metrics::judge;
use crate::metrics::recorder::{Recorder, RecorderOptions};
use crate::metrics::sample::{ErrorKind, Sample};
use crate::metrics::tests::fixture::{
    self, API, CHECK_MAIN_OK, CHECK_OPEN_OK, CHECK_TOKEN, HOME, LOGIN, MAIN, threshold,
};
use crate::plan::{Aggregation, Op, Threshold};

const ELAPSED: Duration = Duration::from_secs(4);

fn thresholds() -> Vec<Threshold> {
    vec![
        threshold(
            "http_req_duration",
            &[("scenario", "main")],
            Aggregation::Percentile(95.0),
            Op::Lt,
            600.0,
        ),
        threshold(
            "http_req_duration",
            &[("expected_response", "true")],
            Aggregation::Max,
            Op::Lt,
            1.0,
        ),
        threshold(
            "http_req_duration",
            &[("status", "418")],
            Aggregation::Avg,
            Op::Lt,
            1.0,
        ),
        threshold(
            "http_req_duration",
            &[("scenario", "main")],
            Aggregation::Avg,
            Op::Lt,
            600.0,
        ),
        threshold(
            "checks",
            &[("check", "has token")],
            Aggregation::Rate,
            Op::Gt,
            0.5,
        ),
        threshold(
            "group_duration",
            &[("group", "::nowhere")],
            Aggregation::Max,
            Op::Lt,
            1.0,
        ),
    ]
}

fn record(r: &mut Recorder) {
    for ms in [10, 20, 30, 40] {
        r.record(&fixture::ok(HOME, ms));
    }
    r.record_all(&[
        fixture::http(LOGIN, 503, None, 500),
        fixture::http(LOGIN, 503, None, 500),
        fixture::http(API, 0, Some(ErrorKind::Timeout), 1000),
        fixture::http(API, 404, None, 5),
        Sample::Check {
            check: CHECK_MAIN_OK,
            ok: true,
        },
        Sample::Check {
            check: CHECK_OPEN_OK,
            ok: false,
        },
        Sample::Check {
            check: CHECK_OPEN_OK,
            ok: true,
        },
        Sample::Check {
            check: CHECK_TOKEN,
            ok: false,
        },
        Sample::Iteration {
            scenario: MAIN,
            duration: Duration::from_millis(700),
            interrupted: false,
        },
        Sample::Vus { active: 2, max: 4 },
    ]);
}

fn build(stats: Vec<TrendStat>) -> Summary {
    let plan = fixture::plan_with(thresholds(), stats);
    let mut r = Recorder::new(&plan, RecorderOptions::default());
    record(&mut r);
    let mut agg = Aggregate::new();
    agg.add_interval(&r.take_interval(0, ELAPSED))
        .expect("valid");
    let outcomes = judge::evaluate(&plan.thresholds, &agg, ELAPSED);
    Summary::build(&agg, &plan, ELAPSED, outcomes)
}

#[test]
fn metrics_sorted_by_name_with_submetrics_after_their_parent() {
    let s = build(TrendStat::k6_defaults());
    let keys: Vec<String> = s.metrics.iter().map(MetricSummary::key).collect();
    assert_eq!(
        keys,
        [
            "checks",
            "checks{check:has token}",
            "data_received",
            "data_sent",
            "group_duration",
            "group_duration{group:::nowhere}",
            "http_req_blocked",
            "http_req_connecting",
            "http_req_duration",
            "http_req_duration{expected_response:true}",
            "http_req_duration{scenario:main}",
            "http_req_duration{status:418}",
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
        ]
    );
    // No data for group_duration at all, but a threshold names it: both it
    // and its submetric show, at zero, as in k6's export.
    assert!(matches!(
        s.metric("group_duration{group:::nowhere}")
            .map(|m| &m.values),
        Some(MetricValues::Trend { count: 0, .. })
    ));
    assert_eq!(s.duration, ELAPSED);
    assert!(s.breakdown.is_empty());
    assert!(s.notes.is_empty());
}

#[test]
fn values_in_display_units() {
    let s = build(TrendStat::k6_defaults());
    assert_eq!(
        s.metric("http_reqs").map(|m| &m.values),
        Some(&MetricValues::Counter {
            count: 8.0,
            rate: 2.0
        })
    );
    assert_eq!(
        s.metric("http_req_failed").map(|m| &m.values),
        Some(&MetricValues::Rate {
            rate: 0.5,
            passes: 4,
            fails: 4
        })
    );
    assert_eq!(
        s.metric("vus").map(|m| &m.values),
        Some(&MetricValues::Gauge {
            value: 2.0,
            min: 2.0,
            max: 2.0
        })
    );
    let ok = s
        .metric("http_req_duration{expected_response:true}")
        .expect("shown");
    // Exact, not a bucket edge (39.936 ms or 40.959 ms).
    assert_eq!(ok.stat("max"), Some(40.0));
    assert_eq!(ok.stat("min"), Some(10.0));
    assert_eq!(ok.stat("avg"), Some(25.0));
    // Each request's sending phase is 100 µs.
    assert_eq!(
        s.metric("http_req_sending").and_then(|m| m.stat("min")),
        Some(0.1)
    );
    let MetricValues::Trend { count, stats } = &ok.values else {
        panic!("trend expected");
    };
    assert_eq!(*count, 4);
    let labels: Vec<&str> = stats.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(labels, ["avg", "min", "med", "max", "p(90)", "p(95)"]);
    let empty = s
        .metric("http_req_duration{status:418}")
        .expect("shown with zeros");
    assert!(matches!(empty.values, MetricValues::Trend { count: 0, .. }));
    assert_eq!(empty.stat("p(95)"), Some(0.0));
    let main = s
        .metric("http_req_duration{scenario:main}")
        .expect("thresholded");
    assert!(matches!(main.values, MetricValues::Trend { count: 6, .. }));
}

#[test]
fn plan_trend_stats_come_first_and_defaults_are_always_computed() {
    let shown = vec![
        TrendStat::Percentile(99.0),
        TrendStat::Avg,
        TrendStat::Count,
    ];
    let s = build(shown.clone());
    assert_eq!(s.trend_stats, shown);
    let d = s.metric("http_req_duration").expect("shown");
    let MetricValues::Trend { stats, .. } = &d.values else {
        panic!("trend expected");
    };
    let labels: Vec<&str> = stats.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        labels,
        [
            "p(99)", "avg", "count", "min", "med", "max", "p(90)", "p(95)"
        ]
    );
    assert_eq!(d.stat("count"), Some(8.0));
    let empty_plan_stats = build(Vec::new());
    assert_eq!(empty_plan_stats.trend_stats, TrendStat::k6_defaults());
}

#[test]
fn checks_by_name_and_group_in_plan_order() {
    let s = build(TrendStat::k6_defaults());
    assert_eq!(
        s.checks,
        [
            CheckSummary {
                name: "status is 200".into(),
                group: String::new(),
                passes: 2,
                fails: 1
            },
            CheckSummary {
                name: "has token".into(),
                group: "::auth".into(),
                passes: 0,
                fails: 1
            },
        ]
    );
}

#[test]
fn errors_by_class_and_unexpected_status_most_frequent_first() {
    let s = build(TrendStat::k6_defaults());
    assert_eq!(
        s.errors,
        [
            ("status 503".to_string(), 2),
            ("status 404".to_string(), 1),
            ("timeout".to_string(), 1),
        ]
    );
}

#[test]
fn thresholds_are_carried_in_plan_order() {
    let s = build(TrendStat::k6_defaults());
    assert_eq!(s.thresholds.len(), thresholds().len());
    assert!(!s.passed(), "max<1 on expected responses fails");
    assert!(s.thresholds[0].ok);
    assert!(!s.thresholds[1].ok);
    assert_eq!(s.thresholds[2].observed, None, "no 418s: passes");
    assert!(s.thresholds[2].ok);
}

#[test]
fn overflow_leaves_a_note_and_totals_stay_complete() {
    let plan = fixture::plan();
    let opts = RecorderOptions {
        max_series: 1,
        extra_tags: Vec::new(),
    };
    let mut r = Recorder::new(&plan, opts);
    record(&mut r);
    let mut agg = Aggregate::new();
    agg.add_interval(&r.take_interval(0, ELAPSED))
        .expect("valid");
    let s = Summary::build(&agg, &plan, ELAPSED, Vec::new());
    assert_eq!(s.notes.len(), 1);
    assert!(s.notes[0].contains("http_reqs"), "{}", s.notes[0]);
    assert!(s.notes[0].contains("overflow:true"), "{}", s.notes[0]);
    assert_eq!(
        s.metric("http_reqs").map(|m| &m.values),
        Some(&MetricValues::Counter {
            count: 8.0,
            rate: 2.0
        })
    );
}

#[test]
fn a_thresholded_metric_without_samples_still_shows_at_zero() {
    // `dropped_iterations{scenario:main}` with no drops: k6 exports the
    // parent metric at zero, and the sub-metric beside it.
    let mut plan = fixture::plan();
    plan.thresholds = vec![threshold(
        "dropped_iterations",
        &[("scenario", "main")],
        Aggregation::Count,
        Op::Lt,
        1.0,
    )];
    let agg = Aggregate::new();
    let s = Summary::build(&agg, &plan, ELAPSED, Vec::new());
    let zero = MetricValues::Counter {
        count: 0.0,
        rate: 0.0,
    };
    assert_eq!(
        s.metric("dropped_iterations").map(|m| &m.values),
        Some(&zero)
    );
    assert_eq!(
        s.metric("dropped_iterations{scenario:main}")
            .map(|m| &m.values),
        Some(&zero)
    );
    assert!(
        s.metric("iterations").is_none(),
        "no threshold, no samples: not shown"
    );
}
