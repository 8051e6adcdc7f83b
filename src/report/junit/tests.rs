//! JUnit documents: suites, counts, failures, escaping.

use std::time::Duration;

use super::*;
use crate::metrics::{CheckSummary, ThresholdOutcome};

fn summary(thresholds: Vec<ThresholdOutcome>, checks: Vec<CheckSummary>) -> Summary {
    Summary {
        duration: Duration::from_millis(10_002),
        metrics: Vec::new(),
        thresholds,
        checks,
        errors: Vec::new(),
        trend_stats: Vec::new(),
        breakdown: Vec::new(),
        notes: Vec::new(),
        matrix: Vec::new(),
        scopes: Vec::new(),
    }
}

fn threshold(key: &str, source: &str, observed: Option<f64>, ok: bool) -> ThresholdOutcome {
    ThresholdOutcome {
        key: key.into(),
        source: source.into(),
        aggregation: source
            .split(['<', '>', '=', '!'])
            .next()
            .unwrap_or("")
            .into(),
        observed,
        ok,
        aborted: false,
    }
}

#[test]
fn thresholds_and_checks_as_test_cases() {
    let xml = junit_xml(&summary(
        vec![
            threshold("http_req_duration", "p(95)<200", Some(612.3149), false),
            threshold("http_req_failed", "rate<0.01", Some(0.0), true),
        ],
        vec![
            CheckSummary {
                name: "status is 200".into(),
                group: "::shop".into(),
                passes: 37,
                fails: 3,
            },
            CheckSummary {
                name: "body".into(),
                group: String::new(),
                passes: 40,
                fails: 0,
            },
        ],
    ));
    assert_eq!(
        xml,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="volley" tests="4" failures="2" errors="0" time="10.002">
  <testsuite name="thresholds" tests="2" failures="1" errors="0" skipped="0" time="10.002">
    <testcase name="http_req_duration - p(95)&lt;200" classname="thresholds.http_req_duration" time="0">
      <failure type="threshold" message="p(95)=612.3149 does not meet p(95)&lt;200"/>
    </testcase>
    <testcase name="http_req_failed - rate&lt;0.01" classname="thresholds.http_req_failed" time="0"/>
  </testsuite>
  <testsuite name="checks" tests="2" failures="1" errors="0" skipped="0" time="10.002">
    <testcase name="::shop / status is 200" classname="checks.shop" time="0">
      <failure type="check" message="3 of 40 failed"/>
    </testcase>
    <testcase name="body" classname="checks" time="0"/>
  </testsuite>
</testsuites>
"#
    );
}

#[test]
fn empty_suites_and_odd_names() {
    let mut aborted = threshold(
        "http_req_duration{url:http://h/?a=1&b=\"2\"}",
        "max<1",
        None,
        false,
    );
    aborted.aborted = true;
    let xml = junit_xml(&summary(vec![aborted], Vec::new()));
    assert!(
        xml.contains(
            r#"name="http_req_duration{url:http://h/?a=1&amp;b=&quot;2&quot;} - max&lt;1""#
        )
    );
    assert!(xml.contains(
        r#"message="max: no data does not meet max&lt;1; it stopped the test (abortOnFail)""#
    ));
    assert!(xml.contains(r#"<testsuite name="checks" tests="0" failures="0""#));
    assert_eq!(escape("a\u{1}b\nc"), "a b&#10;c");
}
