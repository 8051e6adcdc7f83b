//! Unit tests of the controller's pure decisions and status values.

use std::time::Duration;

use serde_json::json;

use super::conditions::{COMPLETE, Reason, SUCCEEDED, conditions, find};
use super::decide::*;
use crate::kube::crd::{ConditionStatus, LoadTest, LoadTestSpec, LoadTestStatus, Phase};
use crate::metrics::{MetricSummary, MetricValues, Summary, ThresholdOutcome};
use crate::plan::TrendStat;

const ME: &str = "node-a";

fn lt(generation: i64, status: Option<LoadTestStatus>) -> LoadTest {
    let mut lt = LoadTest::new("smoke", LoadTestSpec::inline("scenarios: {}"));
    lt.metadata.namespace = Some("volley".into());
    lt.metadata.generation = Some(generation);
    lt.status = status;
    lt
}

fn status(phase: Phase, claimed_by: Option<&str>, observed: i64) -> Option<LoadTestStatus> {
    Some(LoadTestStatus {
        phase: Some(phase),
        claimed_by: claimed_by.map(str::to_string),
        observed_generation: Some(observed),
        ..LoadTestStatus::default()
    })
}

fn nobody_gone(_: &str) -> bool {
    false
}

#[test]
fn new_and_unclaimed_tests_are_claimed() {
    assert_eq!(decide(&lt(1, None), ME, false, &nobody_gone), Action::Claim);
    let pending = status(Phase::Pending, None, 1);
    assert_eq!(
        decide(&lt(1, pending), ME, false, &nobody_gone),
        Action::Claim
    );
    let empty = Some(LoadTestStatus::default());
    assert_eq!(
        decide(&lt(1, empty), ME, false, &nobody_gone),
        Action::Claim
    );
}

#[test]
fn finished_tests_rerun_only_after_a_spec_change() {
    for phase in [Phase::Passed, Phase::Failed, Phase::Aborted, Phase::Error] {
        let done = status(phase, Some("node-b"), 1);
        assert_eq!(
            decide(&lt(1, done.clone()), ME, false, &nobody_gone),
            Action::Nothing
        );
        assert_eq!(decide(&lt(2, done), ME, false, &nobody_gone), Action::Claim);
    }
}

#[test]
fn claimed_tests_belong_to_their_claimer_while_it_lives() {
    let theirs = status(Phase::Running, Some("node-b"), 1);
    assert_eq!(
        decide(&lt(1, theirs.clone()), ME, false, &nobody_gone),
        Action::Nothing
    );
    let gone = |id: &str| id == "node-b";
    assert_eq!(
        decide(&lt(1, theirs), ME, false, &gone),
        Action::TakeOver {
            from: "node-b".into()
        }
    );
    let mine = status(Phase::Running, Some(ME), 1);
    assert_eq!(
        decide(&lt(1, mine.clone()), ME, false, &nobody_gone),
        Action::Resume
    );
    assert_eq!(
        decide(&lt(1, mine), ME, true, &nobody_gone),
        Action::Nothing
    );
}

#[test]
fn a_running_task_yields_to_a_new_claimer() {
    let taken = status(Phase::Running, Some("node-b"), 1);
    assert_eq!(decide(&lt(1, taken), ME, true, &nobody_gone), Action::Yield);
}

#[test]
fn objects_being_deleted_are_left_alone() {
    let mut deleting = lt(1, None);
    deleting.metadata.deletion_timestamp =
        serde_json::from_value(json!("2026-01-01T00:00:00Z")).ok();
    assert!(deleting.metadata.deletion_timestamp.is_some());
    assert_eq!(decide(&deleting, ME, false, &nobody_gone), Action::Nothing);
}

#[test]
fn claim_clears_the_last_run_and_records_the_generation() {
    let old = LoadTestStatus {
        phase: Some(Phase::Failed),
        test_id: Some("t-1".into()),
        summary: Some("old".into()),
        observed_generation: Some(1),
        ..LoadTestStatus::default()
    };
    let mut test = lt(2, Some(old));
    test.spec.run_id = Some("ci-41".into());
    let s = claim_status(&test, ME, "2026-01-01T00:00:09Z");
    assert_eq!(s.phase, Some(Phase::Claimed));
    assert_eq!(s.claimed_by.as_deref(), Some(ME));
    assert_eq!(s.observed_generation, Some(2));
    assert_eq!(s.run_id.as_deref(), Some("ci-41"));
    assert_eq!(s.test_id, None);
    assert_eq!(s.summary, None);
    assert_eq!(s.completion_time, None);
    assert_eq!(s.exit_code, None);
    // The conditions say "not ended" for the new generation at once.
    let complete = find(&s.conditions, COMPLETE).expect("Complete");
    assert_eq!(complete.status, ConditionStatus::False);
    assert_eq!(complete.reason, "Claimed");
    assert_eq!(complete.observed_generation, Some(2));
    assert_eq!(complete.last_transition_time, "2026-01-01T00:00:09Z");
    let succeeded = find(&s.conditions, SUCCEEDED).expect("Succeeded");
    assert_eq!(succeeded.status, ConditionStatus::Unknown);
}

fn finished(ttl: Option<u32>, completed: Option<&str>, observed: i64) -> LoadTest {
    let mut test = lt(
        2,
        Some(LoadTestStatus {
            phase: Some(Phase::Passed),
            completion_time: completed.map(str::to_string),
            observed_generation: Some(observed),
            ..LoadTestStatus::default()
        }),
    );
    test.spec.ttl_seconds_after_finished = ttl;
    test
}

#[test]
fn finished_tests_expire_ttl_seconds_after_completion() {
    let at = |s: &str| {
        s.parse::<k8s_openapi::jiff::Timestamp>()
            .expect("timestamp")
    };
    let done = "2026-01-01T00:00:00Z";
    assert_eq!(
        expires_at(&finished(Some(300), Some(done), 2)),
        Some(at("2026-01-01T00:05:00Z"))
    );
    assert_eq!(
        expires_at(&finished(Some(0), Some(done), 2)),
        Some(at(done))
    );
    // No TTL, no completion time, or a spec edited since (it runs again).
    assert_eq!(expires_at(&finished(None, Some(done), 2)), None);
    assert_eq!(expires_at(&finished(Some(300), None, 2)), None);
    assert_eq!(expires_at(&finished(Some(300), Some(done), 1)), None);
    assert_eq!(expires_at(&finished(Some(300), Some("yesterday"), 2)), None);
    // Still running.
    let mut running = finished(Some(0), Some(done), 2);
    if let Some(s) = running.status.as_mut() {
        s.phase = Some(Phase::Running);
    }
    assert_eq!(expires_at(&running), None);
    // An older agent's status: the Complete condition's time counts.
    let mut old = finished(Some(60), None, 2);
    if let Some(s) = old.status.as_mut() {
        s.conditions = conditions(
            &[],
            Phase::Passed,
            Reason::Passed,
            "passed",
            2,
            "2026-01-01T00:10:00Z",
        );
    }
    assert_eq!(expires_at(&old), Some(at("2026-01-01T00:11:00Z")));
}

#[test]
fn takeover_keeps_the_run() {
    let old = LoadTestStatus {
        phase: Some(Phase::Running),
        claimed_by: Some("node-b".into()),
        test_id: Some("t-9".into()),
        observed_generation: Some(1),
        ..LoadTestStatus::default()
    };
    let s = takeover_status(&lt(1, Some(old)), ME, "node-b");
    assert_eq!(s.claimed_by.as_deref(), Some(ME));
    assert_eq!(s.test_id.as_deref(), Some("t-9"));
    assert_eq!(s.phase, Some(Phase::Running));
    assert!(s.message.as_deref().is_some_and(|m| m.contains("node-b")));
}

#[test]
fn fleet_phases_map() {
    assert_eq!(fleet_phase("pending"), Some(Phase::Starting));
    assert_eq!(fleet_phase("Running"), Some(Phase::Running));
    assert_eq!(fleet_phase("passed"), Some(Phase::Passed));
    assert_eq!(fleet_phase("failed"), Some(Phase::Failed));
    assert_eq!(fleet_phase("aborted"), Some(Phase::Aborted));
    assert_eq!(fleet_phase("error"), Some(Phase::Error));
    assert_eq!(fleet_phase("later"), None);
}

fn summary(thresholds: Vec<ThresholdOutcome>) -> Summary {
    Summary {
        duration: Duration::from_secs(10),
        metrics: vec![
            MetricSummary {
                name: "http_req_duration".into(),
                tags: vec![],
                values: MetricValues::Trend {
                    count: 1234,
                    stats: vec![("avg".into(), 5.0), ("p(95)".into(), 12.34)],
                },
            },
            MetricSummary {
                name: "http_req_failed".into(),
                tags: vec![],
                values: MetricValues::Rate {
                    rate: 0.0125,
                    passes: 15,
                    fails: 1219,
                },
            },
            MetricSummary {
                name: "http_reqs".into(),
                tags: vec![],
                values: MetricValues::Counter {
                    count: 1234.0,
                    rate: 123.4,
                },
            },
        ],
        thresholds,
        checks: vec![],
        errors: vec![],
        trend_stats: TrendStat::k6_defaults(),
        breakdown: vec![],
        notes: vec![],
        matrix: Vec::new(),
        scopes: Vec::new(),
    }
}

fn outcome(ok: bool, observed: Option<f64>) -> ThresholdOutcome {
    ThresholdOutcome {
        key: "http_req_duration".into(),
        source: "p(95)<300".into(),
        aggregation: "p(95)".into(),
        observed,
        ok,
        aborted: false,
    }
}

#[test]
fn summary_line_reads_like_the_example() {
    let s = summary(vec![outcome(true, Some(12.3)), outcome(false, Some(700.0))]);
    assert_eq!(
        summary_line(&s),
        "1234 requests, 1.25% failed, p95 12.3ms, 1/2 thresholds passed"
    );
    let mut empty = summary(vec![]);
    empty.metrics.clear();
    assert_eq!(
        summary_line(&empty),
        "0 requests, 0.00% failed, p95 -, no thresholds"
    );
}

#[test]
fn thresholds_drop_non_finite_observations() {
    let t = threshold_statuses(&[outcome(true, Some(f64::NAN)), outcome(false, Some(3.5))]);
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].observed, None);
    assert_eq!(t[1].observed, Some(3.5));
    assert!(!t[1].ok);
    assert_eq!(t[1].source, "p(95)<300");
}

#[test]
fn start_time_is_rfc3339_utc() {
    assert_eq!(
        rfc3339_from_unix_ms(1_767_225_602_000).as_deref(),
        Some("2026-01-01T00:00:02Z")
    );
    assert_eq!(rfc3339_from_unix_ms(u64::MAX), None);
}

#[test]
fn a_test_naming_a_fleet_is_served_by_that_fleet_only() {
    let mut test = lt(1, None);
    assert!(serves(&test, Some("perf")), "no fleet named: any fleet");
    assert!(serves(&test, None));
    test.spec.fleet = Some("perf".into());
    assert!(serves(&test, Some("perf")));
    assert!(!serves(&test, Some("staging")));
    assert!(
        serves(&test, None),
        "a controller without a fleet serves all"
    );
}

#[test]
fn the_status_holds_a_bounded_region_matrix_rounded_to_hundredths() {
    use crate::kube::crd::MAX_REGION_CELLS;
    use crate::metrics::MatrixCell;
    let cell = |region: &str, target: &str, p95: f64, delta: Option<f64>| MatrixCell {
        region: region.into(),
        target_region: target.into(),
        requests: 10,
        failed: 1,
        p50_ms: 1.234,
        p95_ms: p95,
        p99_ms: 3.0,
        p50_delta_ms: delta,
        p95_delta_ms: delta,
        p99_delta_ms: delta,
    };
    let cells = vec![
        cell("us", "us", 2.004, Some(0.0)),
        cell("us", "eu", 42.006, Some(40.002)),
        cell("eu", "us", 1.0, None),
    ];
    let status = region_statuses(&cells);
    assert_eq!(status.len(), 3);
    assert_eq!(status[1].target_region, "eu");
    assert_eq!(status[1].p95_ms, 42.01);
    assert_eq!(status[1].p95_delta_ms, Some(40.0));
    assert_eq!(status[0].p50_ms, 1.23);
    assert_eq!(status[2].p95_delta_ms, None);
    let json = serde_json::to_value(&status[2]).expect("serializes");
    assert_eq!(json["targetRegion"], "us");
    assert!(json.get("p95DeltaMs").is_none(), "{json}");

    let many: Vec<MatrixCell> = (0..40)
        .map(|i| cell(&format!("r{i}"), "t", 1.0, None))
        .collect();
    assert_eq!(region_statuses(&many).len(), MAX_REGION_CELLS);
}
