//! Threshold tests: every aggregation with both outcomes, submetric
//! filters, k6's no-data rules and the abort decision.

use std::time::Duration;

use super::*;
use crate::metrics::recorder::{Recorder, RecorderOptions};
use crate::metrics::sample::{ErrorKind, Sample};
use crate::metrics::tests::fixture::{self, API, CHECK_MAIN_OK, HOME, LOGIN, threshold};
use crate::plan::Op;

const ELAPSED: Duration = Duration::from_secs(10);

/// 13 requests: `home` 10..=100 ms (ok), `login` 2 × 500 ms (503), `api`
/// 1000 ms (timeout); 3 of 4 checks pass; 4 VUs.
fn aggregate() -> Aggregate {
    let mut r = Recorder::new(&fixture::plan(), RecorderOptions::default());
    for i in 1..=10 {
        r.record(&fixture::ok(HOME, i * 10));
    }
    r.record(&fixture::http(LOGIN, 503, None, 500));
    r.record(&fixture::http(LOGIN, 503, None, 500));
    r.record(&fixture::http(API, 0, Some(ErrorKind::Timeout), 1000));
    for ok in [true, true, false, true] {
        r.record(&Sample::Check {
            check: CHECK_MAIN_OK,
            ok,
        });
    }
    r.record(&Sample::Vus { active: 4, max: 6 });
    let mut agg = Aggregate::new();
    agg.add_interval(&r.take_interval(0, ELAPSED))
        .expect("valid");
    agg
}

fn judge(t: Threshold, agg: &Aggregate) -> ThresholdOutcome {
    evaluate(std::slice::from_ref(&t), agg, ELAPSED).remove(0)
}

/// Observes `expected` (within HDR's 0.1 %), and passes or fails depending
/// on the side of the bound.
fn assert_observes(metric: &str, tags: &[(&str, &str)], a: Aggregation, expected: f64) {
    let agg = aggregate();
    let margin = expected * 0.002 + 1e-9;
    let pass = judge(threshold(metric, tags, a, Op::Lt, expected + margin), &agg);
    let observed = pass.observed.expect("observed a value");
    assert!(
        (observed - expected).abs() <= expected * 0.001 + 1e-9,
        "{metric}{tags:?} {a:?}: observed {observed}, expected {expected}"
    );
    assert!(pass.ok, "{metric} {a:?} < {}", expected + margin);
    let fail = judge(threshold(metric, tags, a, Op::Gt, expected + margin), &agg);
    assert!(!fail.ok, "{metric} {a:?} > {}", expected + margin);
    assert_eq!(fail.observed, pass.observed);
}

#[test]
fn trend_aggregations_in_milliseconds() {
    let d = "http_req_duration";
    assert_observes(d, &[], Aggregation::Min, 10.0);
    assert_observes(d, &[], Aggregation::Max, 1000.0);
    assert_observes(d, &[], Aggregation::Avg, 2550.0 / 13.0);
    assert_observes(d, &[], Aggregation::Med, 70.0);
    assert_observes(d, &[], Aggregation::Percentile(90.0), 500.0);
    assert_observes(d, &[], Aggregation::Count, 13.0);
}

#[test]
fn submetric_filters_select_series_by_tag() {
    let d = "http_req_duration";
    let expected = [("expected_response", "true")];
    assert_observes(d, &expected, Aggregation::Percentile(95.0), 100.0);
    assert_observes(d, &expected, Aggregation::Max, 100.0);
    assert_observes(d, &[("status", "503")], Aggregation::Count, 2.0);
    assert_observes(d, &[("error", "timeout")], Aggregation::Min, 1000.0);
    assert_observes(
        d,
        &[("scenario", "main"), ("name", "login")],
        Aggregation::Avg,
        500.0,
    );
    assert_observes(
        "http_reqs",
        &[("scenario", "main")],
        Aggregation::Count,
        12.0,
    );
}

#[test]
fn counter_rate_and_gauge_aggregations() {
    assert_observes("http_reqs", &[], Aggregation::Count, 13.0);
    assert_observes("http_reqs", &[], Aggregation::Rate, 1.3);
    assert_observes("http_req_failed", &[], Aggregation::Rate, 3.0 / 13.0);
    assert_observes("checks", &[], Aggregation::Rate, 0.75);
    assert_observes("vus", &[], Aggregation::Value, 4.0);
    assert_observes("data_sent", &[], Aggregation::Count, 1300.0);
}

#[test]
fn no_data_passes_trends_and_counts_zero_elsewhere() {
    let agg = aggregate();
    let none = [("status", "418")];
    let t = judge(
        threshold(
            "http_req_duration",
            &none,
            Aggregation::Percentile(95.0),
            Op::Lt,
            1.0,
        ),
        &agg,
    );
    assert_eq!((t.observed, t.ok), (None, true));
    let t = judge(
        threshold("group_duration", &[], Aggregation::Max, Op::Lt, 0.0),
        &agg,
    );
    assert_eq!((t.observed, t.ok), (None, true));
    let t = judge(
        threshold("http_reqs", &none, Aggregation::Count, Op::Ge, 1.0),
        &agg,
    );
    assert_eq!((t.observed, t.ok), (Some(0.0), false));
    let t = judge(
        threshold("dropped_iterations", &[], Aggregation::Count, Op::Eq, 0.0),
        &agg,
    );
    assert_eq!((t.observed, t.ok), (Some(0.0), true));
    let t = judge(
        threshold(
            "checks",
            &[("check", "nope")],
            Aggregation::Rate,
            Op::Gt,
            0.9,
        ),
        &agg,
    );
    assert_eq!((t.observed, t.ok), (Some(0.0), false));
    let t = judge(
        threshold("vus_max", &none, Aggregation::Value, Op::Lt, 1.0),
        &agg,
    );
    assert_eq!((t.observed, t.ok), (Some(0.0), true));
}

#[test]
fn counter_rate_with_no_elapsed_time_is_zero() {
    let agg = aggregate();
    let t = threshold("http_reqs", &[], Aggregation::Rate, Op::Gt, 0.0);
    let out = evaluate(&[t], &agg, Duration::ZERO).remove(0);
    assert_eq!((out.observed, out.ok), (Some(0.0), false));
}

#[test]
fn unknown_metrics_and_foreign_aggregations_fail() {
    let agg = aggregate();
    for t in [
        threshold("nope", &[], Aggregation::Count, Op::Ge, 0.0),
        threshold("http_reqs", &[], Aggregation::Percentile(95.0), Op::Ge, 0.0),
        threshold("checks", &[], Aggregation::Value, Op::Ge, 0.0),
        threshold("http_req_duration", &[], Aggregation::Rate, Op::Ge, 0.0),
        threshold("vus", &[], Aggregation::Avg, Op::Ge, 0.0),
    ] {
        let key = t.key.clone();
        let out = judge(t, &agg);
        assert_eq!((out.observed, out.ok), (None, false), "{key}");
    }
}

#[test]
fn outcomes_keep_plan_order_and_labels() {
    let agg = aggregate();
    let ts = vec![
        threshold("http_req_failed", &[], Aggregation::Rate, Op::Lt, 0.01),
        threshold(
            "http_req_duration",
            &[],
            Aggregation::Percentile(99.9),
            Op::Lt,
            2000.0,
        ),
    ];
    let out = evaluate(&ts, &agg, ELAPSED);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].key, "http_req_failed");
    assert_eq!(out[0].source, "rate<0.01");
    assert_eq!(out[0].aggregation, "rate");
    assert!(!out[0].ok);
    assert_eq!(out[1].aggregation, "p(99.9)");
    assert!(out[1].ok);
    assert!(out.iter().all(|o| !o.aborted));
}

#[test]
fn abort_needs_a_failure_abort_on_fail_and_the_delay_passed() {
    let agg = aggregate();
    let mut failing = threshold("http_req_failed", &[], Aggregation::Rate, Op::Lt, 0.01);
    failing.abort_on_fail = true;
    failing.delay_abort_eval = Duration::from_secs(30);
    let mut passing = threshold("http_reqs", &[], Aggregation::Count, Op::Gt, 1.0);
    passing.abort_on_fail = true;
    let quiet = threshold("checks", &[], Aggregation::Rate, Op::Gt, 0.99);
    let ts = vec![failing, passing, quiet];
    let mut out = evaluate(&ts, &agg, ELAPSED);
    assert!(!out[2].ok, "fails, but without abortOnFail");

    assert!(!should_abort(&ts, &out, Duration::from_secs(29)));
    assert!(should_abort(&ts, &out, Duration::from_secs(30)));
    assert!(!mark_aborts(&ts, &mut out, Duration::from_secs(29)));
    assert!(out.iter().all(|o| !o.aborted));
    assert!(mark_aborts(&ts, &mut out, Duration::from_secs(31)));
    let aborted: Vec<bool> = out.iter().map(|o| o.aborted).collect();
    assert_eq!(aborted, [true, false, false]);
}
