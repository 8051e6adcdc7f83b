use std::time::Duration;

use super::*;
use crate::plan::TrendStat;

fn m(name: &str, tags: &[(&str, &str)], values: MetricValues) -> MetricSummary {
    MetricSummary {
        name: name.into(),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        values,
    }
}

fn counter(name: &str, count: f64, rate: f64) -> MetricSummary {
    m(name, &[], MetricValues::Counter { count, rate })
}

fn gauge(name: &str, value: f64, min: f64, max: f64) -> MetricSummary {
    m(name, &[], MetricValues::Gauge { value, min, max })
}

fn rate(name: &str, rate: f64, passes: u64, fails: u64) -> MetricSummary {
    m(
        name,
        &[],
        MetricValues::Rate {
            rate,
            passes,
            fails,
        },
    )
}

fn trend(name: &str, tags: &[(&str, &str)], v: [f64; 6]) -> MetricSummary {
    let labels = ["avg", "min", "med", "max", "p(90)", "p(95)"];
    m(
        name,
        tags,
        MetricValues::Trend {
            count: 45,
            stats: labels.iter().map(|l| l.to_string()).zip(v).collect(),
        },
    )
}

/// The results of k6's documented example summary.
fn docs_example() -> Summary {
    Summary {
        duration: Duration::from_secs_f64(45.0 / 6.56109),
        metrics: vec![
            rate("checks", 1.0, 90, 0),
            counter("data_received", 519_000.0, 76_000.0),
            counter("data_sent", 4_900.0, 718.0),
            trend("http_req_blocked", &[], [1.0, 0.0, 0.0, 40.0, 0.0, 0.0]),
            trend(
                "http_req_duration",
                &[],
                [140.36, 119.08, 140.96, 154.63, 146.88, 148.21],
            ),
            trend(
                "http_req_duration",
                &[("expected_response", "true")],
                [140.36, 119.08, 140.96, 154.63, 146.88, 148.21],
            ),
            rate("http_req_failed", 0.0, 0, 45),
            counter("http_reqs", 45.0, 6.56109),
            trend(
                "iteration_duration",
                &[],
                [152.38, 119.37, 141.27, 684.62, 147.11, 148.391],
            ),
            counter("iterations", 45.0, 6.56109),
            gauge("vus", 1.0, 1.0, 1.0),
            gauge("vus_max", 1.0, 1.0, 1.0),
        ],
        thresholds: vec![
            outcome(
                "http_req_duration",
                "p(95)<1500",
                "p(95)",
                Some(148.21),
                true,
            ),
            outcome(
                "http_req_duration",
                "p(90)<2000",
                "p(90)",
                Some(146.88),
                true,
            ),
            outcome("http_req_failed", "rate<0.01", "rate", Some(0.0), true),
        ],
        checks: vec![
            check("test-api.k6.io is up", "", 45, 0),
            check("status is 200", "", 45, 0),
        ],
        errors: vec![],
        trend_stats: TrendStat::k6_defaults(),
        breakdown: vec![],
        notes: vec![],
        matrix: Vec::new(),
        scopes: Vec::new(),
    }
}

fn outcome(
    key: &str,
    source: &str,
    aggregation: &str,
    observed: Option<f64>,
    ok: bool,
) -> ThresholdOutcome {
    ThresholdOutcome {
        key: key.into(),
        source: source.into(),
        aggregation: aggregation.into(),
        observed,
        ok,
        aborted: false,
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

fn plain(summary: &Summary) -> String {
    render(summary, &TextOptions::default())
}

#[test]
fn k6_documented_example_renders_in_k6_layout() {
    // k6's own example (docs, end-of-test summary), value for value; the
    // trend columns are as wide as the values shown need.
    let expected = r#"  █ THRESHOLDS

    http_req_duration
    ✓ 'p(95)<1500' p(95)=148.21ms
    ✓ 'p(90)<2000' p(90)=146.88ms

    http_req_failed
    ✓ 'rate<0.01' rate=0.00%


  █ TOTAL RESULTS

    checks_total.......................: 90      13.12218/s
    checks_succeeded...................: 100.00% 90 out of 90
    checks_failed......................: 0.00%   0 out of 90

    ✓ test-api.k6.io is up
    ✓ status is 200

    HTTP
    http_req_duration..................: avg=140.36ms min=119.08ms med=140.96ms max=154.63ms p(90)=146.88ms p(95)=148.21ms
      { expected_response:true }.......: avg=140.36ms min=119.08ms med=140.96ms max=154.63ms p(90)=146.88ms p(95)=148.21ms
    http_req_failed....................: 0.00%  0 out of 45
    http_reqs..........................: 45     6.56109/s

    EXECUTION
    iteration_duration.................: avg=152.38ms min=119.37ms med=141.27ms max=684.62ms p(90)=147.11ms p(95)=148.39ms
    iterations.........................: 45     6.56109/s
    vus................................: 1      min=1       max=1
    vus_max............................: 1      min=1       max=1

    NETWORK
    data_received......................: 519 kB 76 kB/s
    data_sent..........................: 4.9 kB 718 B/s
"#;
    assert_eq!(plain(&docs_example()), expected);
}

/// A run that went wrong in every way the summary can show.
fn troubled_run() -> Summary {
    Summary {
        duration: Duration::from_secs(10),
        metrics: vec![
            rate("checks", 0.995, 1990, 10),
            counter("data_received", 1_234_567.0, 123_456.7),
            counter("data_sent", 45_000.0, 4_500.0),
            counter("dropped_iterations", 3.0, 0.3),
            trend(
                "http_req_duration",
                &[],
                [12.5, 0.742, 10.0, 1500.0, 20.25, 31.0],
            ),
            trend(
                "http_req_duration",
                &[("expected_response", "true")],
                [11.0, 0.742, 9.5, 900.0, 19.0, 25.0],
            ),
            trend(
                "http_req_duration",
                &[("scenario", "main")],
                [12.5, 0.742, 10.0, 1500.0, 20.25, 31.0],
            ),
            trend(
                "http_req_duration_intended",
                &[],
                [14.0, 1.0, 11.0, 62_000.0, 25.0, 40.0],
            ),
            rate("http_req_failed", 0.015, 15, 985),
            trend(
                "http_req_waiting",
                &[],
                [10.0, 0.5, 8.0, 1400.0, 18.0, 28.0],
            ),
            counter("http_reqs", 1000.0, 100.0),
            trend(
                "iteration_duration",
                &[],
                [13.0, 1.0, 10.5, 1501.0, 21.0, 32.0],
            ),
            counter("iterations", 1000.0, 100.0),
            gauge("vus", 10.0, 1.0, 10.0),
            gauge("vus_max", 10.0, 10.0, 10.0),
        ],
        thresholds: vec![
            outcome("http_req_duration", "p(95)<30", "p(95)", Some(31.0), false),
            ThresholdOutcome {
                aborted: true,
                ..outcome(
                    "http_req_duration{scenario:main}",
                    "p(99)<1000",
                    "p(99)",
                    Some(1400.0),
                    false,
                )
            },
            outcome("http_req_failed", " rate<0.01 ", "rate", Some(0.015), false),
            outcome(
                "http_req_waiting{ status: 200 }",
                "avg<5",
                "avg",
                None,
                true,
            ),
            outcome(
                "data_received",
                "count>1000000",
                "count",
                Some(1_234_567.0),
                true,
            ),
            outcome("dropped_iterations", "rate<1", "rate", Some(0.3), true),
        ],
        checks: vec![
            check("status is 200", "", 990, 10),
            check("body has token", "::login", 1000, 0),
        ],
        errors: vec![("status 503".into(), 10), ("timeout".into(), 5)],
        trend_stats: TrendStat::k6_defaults(),
        breakdown: vec![
            breakdown_row("agent", "a1", 600, 9, 60.0, [9.5, 30.0, 900.0]),
            breakdown_row("region", "eu-west", 1000, 15, 100.0, [10.0, 31.0, 1400.0]),
            breakdown_row("agent", "agent-2", 400, 0, 40.0, [10.5, 32.5, 1500.0]),
        ],
        notes: vec!["agent agent-2 started 1.2s late".into()],
        matrix: Vec::new(),
        scopes: Vec::new(),
    }
}

fn breakdown_row(
    dimension: &str,
    value: &str,
    requests: u64,
    failed: u64,
    rps: f64,
    p: [f64; 3],
) -> Breakdown {
    Breakdown {
        dimension: dimension.into(),
        value: value.into(),
        requests,
        failed,
        rps,
        p50_ms: p[0],
        p95_ms: p[1],
        p99_ms: p[2],
    }
}

#[test]
fn failures_submetrics_errors_breakdown_and_notes() {
    let expected = r#"  checkout.yaml

  █ THRESHOLDS

    data_received
    ✓ 'count>1000000' count=1.2 MB

    dropped_iterations
    ✓ 'rate<1' rate=0.3/s

    http_req_duration
    ✗ 'p(95)<30' p(95)=31ms

      {scenario:main}
      ✗ 'p(99)<1000' p(99)=1.4s  (abortOnFail: stopped the test)

    http_req_failed
    ✗ 'rate<0.01' rate=1.50%

    http_req_waiting{ status: 200 }
    ✓ 'avg<5' avg=no data


  █ TOTAL RESULTS

    checks_total.......................: 2000   200/s
    checks_succeeded...................: 99.50% 1990 out of 2000
    checks_failed......................: 0.50%  10 out of 2000

    ✗ status is 200
      ↳  99% — ✓ 990 / ✗ 10
    ✓ body has token

    HTTP
    http_req_duration..................: avg=12.5ms min=742µs med=10ms   max=1.5s  p(90)=20.25ms p(95)=31ms
      { expected_response:true }.......: avg=11ms   min=742µs med=9.5ms  max=900ms p(90)=19ms    p(95)=25ms
      { scenario:main }................: avg=12.5ms min=742µs med=10ms   max=1.5s  p(90)=20.25ms p(95)=31ms
    http_req_duration_intended.........: avg=14ms   min=1ms   med=11ms   max=1m2s  p(90)=25ms    p(95)=40ms
    http_req_failed....................: 1.50%  15 out of 1000
    http_reqs..........................: 1000   100/s

    EXECUTION
    dropped_iterations.................: 3      0.3/s
    iteration_duration.................: avg=13ms   min=1ms   med=10.5ms max=1.5s  p(90)=21ms    p(95)=32ms
    iterations.........................: 1000   100/s
    vus................................: 10     min=1          max=10
    vus_max............................: 10     min=10         max=10

    NETWORK
    data_received......................: 1.2 MB 124 kB/s
    data_sent..........................: 45 kB  4.5 kB/s

    ERRORS
    status 503.........................: 10 1.00% of requests
    timeout............................: 5  0.50% of requests


  █ BREAKDOWN

    agent    requests  failed  req/s     p50     p95    p99
    a1            600       9  60.00   9.5ms    30ms  900ms
    agent-2       400       0  40.00  10.5ms  32.5ms   1.5s

    region   requests  failed   req/s   p50   p95   p99
    eu-west     1,000      15  100.00  10ms  31ms  1.4s


  █ NOTES

    - agent agent-2 started 1.2s late
"#;
    let opts = TextOptions {
        color: false,
        title: Some("checkout.yaml".into()),
        ..TextOptions::default()
    };
    assert_eq!(render(&troubled_run(), &opts), expected);
}

/// Removes ANSI escape sequences.
fn strip_ansi(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn colour_changes_nothing_but_the_escapes() {
    for summary in [docs_example(), troubled_run()] {
        let colored = render(
            &summary,
            &TextOptions {
                color: true,
                title: Some("t".into()),
                ..TextOptions::default()
            },
        );
        let plain = render(
            &summary,
            &TextOptions {
                color: false,
                title: Some("t".into()),
                ..TextOptions::default()
            },
        );
        assert_ne!(colored, plain);
        assert_eq!(strip_ansi(&colored), plain);
    }
}

#[test]
fn colours_follow_k6s_palette() {
    let out = render(
        &troubled_run(),
        &TextOptions {
            color: true,
            title: None,
            ..TextOptions::default()
        },
    );
    let has = |needle: &str| assert!(out.contains(needle), "missing {needle:?} in\n{out}");
    has("  █ \x1b[1mTHRESHOLDS\x1b[0m");
    has(
        "    \x1b[32m✓\x1b[0m \x1b[37m'count>1000000'\x1b[0m \x1b[37mcount\x1b[0m=\x1b[36m1.2 MB\x1b[0m",
    );
    has("    \x1b[31m✗\x1b[0m \x1b[37m'p(95)<30'\x1b[0m");
    has("    \x1b[31m✗ status is 200\x1b[0m\n      \x1b[31m↳  99% — ✓ 990 / ✗ 10\x1b[0m");
    has("    \x1b[32m✓ body has token\x1b[0m");
    has("    \x1b[1mHTTP\x1b[0m");
    has(
        "    http_reqs\x1b[2;37m..........................:\x1b[0m \x1b[36m1000\x1b[0m   \x1b[2;36m100/s\x1b[0m",
    );
    has("avg=\x1b[36m12.5ms\x1b[0m min=");
}

#[test]
fn trend_columns_follow_the_summary_trend_stats() {
    let mut summary = docs_example();
    summary.thresholds.clear();
    summary.checks.clear();
    summary
        .metrics
        .retain(|m| m.name == "http_req_duration" && m.tags.is_empty());
    if let MetricValues::Trend { stats, .. } = &mut summary.metrics[0].values {
        stats.push(("p(99.9)".into(), 153.999));
    }
    summary.trend_stats = vec![
        TrendStat::Percentile(99.9),
        TrendStat::Count,
        TrendStat::Med,
        TrendStat::Percentile(99.0),
    ];
    assert_eq!(
        plain(&summary),
        "  █ TOTAL RESULTS\n\n    HTTP\n    http_req_duration..................: p(99.9)=153.99ms count=45 med=140.96ms p(99)=n/a\n"
    );
}

#[test]
fn compact_mode_hides_phase_trends_but_keeps_their_thresholds() {
    let summary = troubled_run();
    let out = plain(&summary);
    let total = &out[out.find("█ TOTAL RESULTS").unwrap_or(0)..];
    assert!(!total.contains("http_req_waiting"), "{total}");
    assert!(
        !total.contains("checks....."),
        "the checks rate shows as checks_*: {total}"
    );
    assert!(
        out.contains("    http_req_waiting{ status: 200 }\n    ✓ 'avg<5' avg=no data\n"),
        "{out}"
    );
}

#[test]
fn no_checks_and_no_thresholds_leave_only_the_metrics() {
    let summary = Summary {
        duration: Duration::from_secs(2),
        metrics: vec![
            counter("http_reqs", 1.0, 0.5),
            counter("data_sent", 5.0, 2.5),
        ],
        thresholds: vec![],
        checks: vec![],
        errors: vec![],
        trend_stats: TrendStat::k6_defaults(),
        breakdown: vec![],
        notes: vec![],
        matrix: Vec::new(),
        scopes: Vec::new(),
    };
    assert_eq!(
        plain(&summary),
        "  █ TOTAL RESULTS\n\n    HTTP\n    http_reqs..........................: 1   0.5/s\n\n    NETWORK\n    data_sent..........................: 5 B 2.5 B/s\n"
    );
}

#[test]
fn checks_without_a_checks_metric_are_totalled_from_the_checks() {
    let summary = Summary {
        duration: Duration::from_secs(4),
        metrics: vec![],
        thresholds: vec![],
        checks: vec![check("a", "", 3, 1), check("b", "::g", 4, 0)],
        errors: vec![],
        trend_stats: TrendStat::k6_defaults(),
        breakdown: vec![],
        notes: vec![],
        matrix: Vec::new(),
        scopes: Vec::new(),
    };
    let out = plain(&summary);
    assert!(
        out.contains("checks_total.......................: 8      2/s\n"),
        "{out}"
    );
    assert!(
        out.contains("checks_succeeded...................: 87.50% 7 out of 8\n"),
        "{out}"
    );
    assert!(
        out.contains("    ✗ a\n      ↳  75% — ✓ 3 / ✗ 1\n    ✓ b\n"),
        "{out}"
    );
}

#[test]
fn long_submetric_names_widen_the_name_column() {
    let mut summary = docs_example();
    summary.metrics.push(trend(
        "http_req_duration",
        &[("scenario", "checkout_with_a_long_name"), ("status", "200")],
        [1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
    ));
    let out = plain(&summary);
    assert!(
        out.contains("    checks_total..........................................: 90"),
        "{out}"
    );
    assert!(
        out.contains("      { scenario:checkout_with_a_long_name,status:200 }...: avg=1ms"),
        "{out}"
    );
}

mod arbitrary;

#[test]
fn full_mode_adds_a_section_per_scenario_with_nested_groups() {
    let mut summary = docs_example();
    let scoped = || vec![counter("http_reqs", 3.0, 1.0)];
    summary.scopes = vec![
        crate::metrics::SummaryScope {
            kind: crate::metrics::ScopeKind::Scenario,
            name: "buy".into(),
            depth: 0,
            metrics: scoped(),
            checks: vec![check("paid", "::cart::pay", 3, 0)],
        },
        crate::metrics::SummaryScope {
            kind: crate::metrics::ScopeKind::Group,
            name: "cart".into(),
            depth: 1,
            metrics: Vec::new(),
            checks: Vec::new(),
        },
        crate::metrics::SummaryScope {
            kind: crate::metrics::ScopeKind::Group,
            name: "pay".into(),
            depth: 2,
            metrics: scoped(),
            checks: vec![check("paid", "::cart::pay", 3, 0)],
        },
    ];
    let compact = plain(&summary);
    assert!(!compact.contains("SCENARIO"), "{compact}");
    let full = render(
        &summary,
        &TextOptions {
            full: true,
            ..TextOptions::default()
        },
    );
    let scenario = full
        .find("  █ SCENARIO: buy\n")
        .expect("a scenario section");
    let cart = full.find("\n    ↳ GROUP: cart\n").expect("a group heading");
    let pay = full
        .find("\n      ↳ GROUP: pay\n")
        .expect("a nested group heading");
    assert!(scenario < cart && cart < pay, "{full}");
    assert!(full[pay..].contains("\n        ✓ paid\n"), "{full}");
    assert!(full[pay..].contains("\n        http_reqs"), "{full}");
    // Full mode lists the request phases that compact mode leaves out.
    assert!(full.contains("\n    http_req_blocked"), "{full}");
    assert!(!compact.contains("\n    http_req_blocked"), "{compact}");
    assert!(full.lines().all(|l| !l.ends_with(' ')));
}
