//! Volley's summary export against a real k6 1.1.0 `--summary-export`
//! (`tests/fixtures/k6-1.1.0-summary-export.json`: 2 VUs for 2 s against a
//! local server, with a group, three checks, thresholds with and without a
//! tag filter, two of them failing).
//!
//! The Summary below holds the same results as that run, so the export
//! must have the same keys and value types at every level, and the same
//! values (ids included: k6 derives them from paths).

use std::time::Duration;

use serde_json::Value;
use volley::metrics::{CheckSummary, MetricSummary, MetricValues, Summary, ThresholdOutcome};
use volley::plan::TrendStat;
use volley::report::{ExportContext, k6_summary_export};

const FIXTURE: &str = include_str!("fixtures/k6-1.1.0-summary-export.json");

fn counter(name: &str, count: f64, rate: f64) -> MetricSummary {
    MetricSummary {
        name: name.into(),
        tags: vec![],
        values: MetricValues::Counter { count, rate },
    }
}

fn gauge(name: &str, value: f64, min: f64, max: f64) -> MetricSummary {
    MetricSummary {
        name: name.into(),
        tags: vec![],
        values: MetricValues::Gauge { value, min, max },
    }
}

fn rate(name: &str, passes: u64, fails: u64, rate: f64) -> MetricSummary {
    MetricSummary {
        name: name.into(),
        tags: vec![],
        values: MetricValues::Rate {
            rate,
            passes,
            fails,
        },
    }
}

fn trend(name: &str, tags: &[(&str, &str)], values: [f64; 6]) -> MetricSummary {
    let labels = ["avg", "min", "med", "max", "p(90)", "p(95)"];
    MetricSummary {
        name: name.into(),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        values: MetricValues::Trend {
            count: 76,
            stats: labels.iter().map(|l| l.to_string()).zip(values).collect(),
        },
    }
}

fn threshold(
    key: &str,
    source: &str,
    aggregation: &str,
    observed: f64,
    ok: bool,
) -> ThresholdOutcome {
    ThresholdOutcome {
        key: key.into(),
        source: source.into(),
        aggregation: aggregation.into(),
        observed: Some(observed),
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

/// The k6 run's results as a Volley Summary.
fn fixture_run() -> Summary {
    let metrics = vec![
        rate("checks", 76, 38, 0.6666666666666666),
        counter("data_received", 38836.0, 18931.343620715605),
        counter("data_sent", 5662.0, 2760.049118871453),
        trend(
            "group_duration",
            &[],
            [
                3.736778289473685,
                1.17214,
                3.226427,
                11.987102,
                7.094883700000003,
                8.219661699999998,
            ],
        ),
        trend(
            "http_req_blocked",
            &[],
            [
                0.6841402631578947,
                0.122461,
                0.371498,
                4.261486,
                1.5894055,
                1.996957,
            ],
        ),
        trend(
            "http_req_connecting",
            &[],
            [
                0.5761595131578948,
                0.073604,
                0.288253,
                4.186554,
                1.3967565,
                1.90580425,
            ],
        ),
        trend(
            "http_req_duration",
            &[],
            [
                2.6847418815789474,
                0.51387,
                1.683624,
                15.89335,
                5.522242,
                8.5883465,
            ],
        ),
        trend(
            "http_req_duration",
            &[("expected_response", "true")],
            [
                2.761783710526316,
                0.649415,
                2.2742025,
                11.716431,
                5.921081200000006,
                7.380066599999998,
            ],
        ),
        trend(
            "http_req_duration",
            &[("status", "200")],
            [
                2.761783710526316,
                0.649415,
                2.2742025,
                11.716431,
                5.921081200000006,
                7.380066599999998,
            ],
        ),
        rate("http_req_failed", 38, 38, 0.5),
        trend(
            "http_req_receiving",
            &[],
            [
                0.22715623684210529,
                0.032969,
                0.1380915,
                1.149566,
                0.5782185,
                0.7418097499999999,
            ],
        ),
        trend(
            "http_req_sending",
            &[],
            [
                0.0860035657894737,
                0.027956,
                0.068631,
                0.622745,
                0.1376965,
                0.157645,
            ],
        ),
        trend("http_req_tls_handshaking", &[], [0.0; 6]),
        trend(
            "http_req_waiting",
            &[],
            [
                2.371582078947368,
                0.290234,
                1.29404,
                15.743413,
                5.230115,
                8.3612925,
            ],
        ),
        counter("http_reqs", 76.0, 37.047639179482594),
        trend(
            "iteration_duration",
            &[],
            [
                107.7561659473684,
                103.593811,
                106.2062925,
                126.580263,
                112.3914043,
                116.68988044999998,
            ],
        ),
        counter("iterations", 38.0, 18.523819589741297),
        gauge("vus", 2.0, 2.0, 2.0),
        gauge("vus_max", 2.0, 2.0, 2.0),
    ];
    Summary {
        duration: Duration::from_millis(2051),
        metrics,
        thresholds: vec![
            threshold("http_req_duration", "p(95)<1500", "p(95)", 8.5883465, true),
            threshold(
                "http_req_duration",
                "avg<0.0001",
                "avg",
                2.6847418815789474,
                false,
            ),
            threshold(
                "http_req_duration{status:200}",
                "p(90)<2000",
                "p(90)",
                5.921081200000006,
                true,
            ),
            threshold("http_req_failed", "rate<0.01", "rate", 0.5, false),
            threshold("checks", "rate>0.5", "rate", 0.6666666666666666, true),
            threshold("http_reqs", "count>1", "count", 76.0, true),
            threshold("vus", "value>0", "value", 2.0, true),
        ],
        checks: vec![
            check("status is 200", "::front page", 38, 0),
            check("body is huge", "::front page", 0, 38),
            check("missing is 404", "", 38, 0),
        ],
        errors: vec![("status 404".into(), 38)],
        trend_stats: TrendStat::k6_defaults(),
        breakdown: vec![],
        notes: vec![],
        matrix: Vec::new(),
        scopes: Vec::new(),
    }
}

/// The JSON type of every leaf, keeping object keys: the shape of a value.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
    }
}

/// Equal values, numbers within a relative 1e-12 (JSON float parsing may
/// differ from Rust literals in the last bit).
fn assert_close(ours: &Value, theirs: &Value, path: &str) {
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            let keys_a: Vec<_> = a.keys().collect();
            let keys_b: Vec<_> = b.keys().collect();
            assert_eq!(keys_a, keys_b, "keys at {path}");
            for (k, v) in a {
                assert_close(v, &b[k], &format!("{path}.{k}"));
            }
        }
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (
                a.as_f64().unwrap_or(f64::NAN),
                b.as_f64().unwrap_or(f64::NAN),
            );
            assert!(
                (a - b).abs() <= 1e-12 * a.abs().max(b.abs()),
                "{path}: {a} vs {b}"
            );
        }
        _ => assert_eq!(ours, theirs, "at {path}"),
    }
}

fn fixture() -> Value {
    serde_json::from_str(FIXTURE).expect("the fixture is valid JSON")
}

#[test]
fn export_has_the_shape_of_a_real_k6_export() {
    let ours = k6_summary_export(&fixture_run(), &ExportContext::default());
    assert_eq!(shape(&ours), shape(&fixture()));
}

#[test]
fn export_has_the_values_of_a_real_k6_export() {
    let ours = k6_summary_export(&fixture_run(), &ExportContext::default());
    assert_close(&ours, &fixture(), "$");
}

#[test]
fn integral_numbers_are_written_without_a_fraction_as_k6_does() {
    let ours = k6_summary_export(&fixture_run(), &ExportContext::default());
    let text = serde_json::to_string(&ours["metrics"]["http_reqs"]).expect("a Value serializes");
    assert!(text.contains("\"count\":76,"), "{text}");
    assert_eq!(ours["metrics"]["vus"]["value"], Value::from(2));
}

#[test]
fn bench_harness_reads_the_keys_it_parses_from_k6() {
    // shared/bench/summarize.py `parse_k6` reads exactly these, after
    // running `volley run --summary-trend-stats avg,min,med,max,p(50),p(90),p(99)`.
    let mut run = fixture_run();
    for m in &mut run.metrics {
        if let MetricValues::Trend { stats, .. } = &mut m.values {
            let med = stats
                .iter()
                .find(|(l, _)| l == "med")
                .map(|(_, v)| *v)
                .unwrap_or(0.0);
            stats.push(("p(50)".into(), med));
            stats.push(("p(99)".into(), med * 3.0));
        }
    }
    let ctx = ExportContext {
        trend_stats: vec![
            TrendStat::Avg,
            TrendStat::Min,
            TrendStat::Med,
            TrendStat::Max,
            TrendStat::Percentile(50.0),
            TrendStat::Percentile(90.0),
            TrendStat::Percentile(99.0),
        ],
    };
    let export = k6_summary_export(&run, &ctx);
    let m = &export["metrics"];
    assert_eq!(m["http_reqs"]["count"], Value::from(76));
    assert_eq!(m["http_reqs"]["rate"].as_f64(), Some(37.047639179482594));
    let duration = &m["http_req_duration"];
    assert_eq!(duration["p(50)"].as_f64(), Some(1.683624));
    assert_eq!(duration["med"].as_f64(), Some(1.683624));
    assert_eq!(duration["p(99)"].as_f64(), Some(1.683624 * 3.0));
    assert!(
        duration.get("p(95)").is_none(),
        "only the asked-for stats: {duration}"
    );
    // For a k6 Rate, passes counts true samples: failed requests.
    assert_eq!(m["http_req_failed"]["passes"], Value::from(38));
}
