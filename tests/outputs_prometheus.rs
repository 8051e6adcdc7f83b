//! `--out experimental-prometheus-rw` against a real Prometheus (Debian's
//! `prometheus`, installed by `scripts/test`) started per test with its
//! remote-write receiver on a free loopback port and a temporary data
//! directory: k6's series names, totals equal to the summary's exactly,
//! trend statistics in seconds, one sample per series per push (not per
//! request), stale markers when asked, and an unreachable backend costs
//! the test nothing but a note in the summary.

mod common;
mod fleet;

use std::time::{Duration, Instant};

use common::backends::{Prometheus, tls_proxy};
use common::outputs::{THREE_SECONDS, run_with_outputs};

/// Runs the shared 3-second plan with `--out OUT` and the variables; the
/// summary export's metrics, once the run passed with every sample
/// delivered.
async fn run_with_prom(out: String, vars: &[(&str, &str)]) -> serde_json::Value {
    let run = run_with_outputs(THREE_SECONDS, &[out], vars).await;
    let text = run.passed();
    assert!(!text.contains("not delivered"), "{text}");
    run.metrics
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k6_series_give_the_summary_totals() {
    let prom = Prometheus::start();
    let m = &run_with_prom(
        "experimental-prometheus-rw".to_owned(),
        &[
            ("K6_PROMETHEUS_RW_SERVER_URL", &prom.write_url()),
            ("K6_PROMETHEUS_RW_PUSH_INTERVAL", "1s"),
            (
                "K6_PROMETHEUS_RW_TREND_STATS",
                "min,max,avg,med,p(95),p(99.9),count,sum",
            ),
        ],
    )
    .await;
    let reqs = m["http_reqs"]["count"].as_f64().expect("http_reqs");
    assert!(reqs >= 4.0, "{reqs}");

    // Cumulative values: the last sample of each series is its total.
    let last = |q: &str| prom.scalar(&format!("sum(last_over_time({q}[1h]))"));
    assert_eq!(last("k6_http_reqs_total"), reqs);
    assert_eq!(last("k6_http_reqs_total{status=\"404\"}"), reqs / 2.0);
    assert_eq!(
        last("k6_iterations_total"),
        m["iterations"]["count"].as_f64().expect("iterations")
    );
    assert_eq!(
        last("k6_data_received_total"),
        m["data_received"]["count"].as_f64().expect("data_received")
    );
    assert_eq!(last("k6_http_req_duration_count"), reqs);
    assert_eq!(
        prom.scalar("max(last_over_time(k6_http_req_failed_rate{status=\"404\"}[1h]))"),
        1.0
    );
    assert_eq!(
        prom.scalar("max(last_over_time(k6_http_req_failed_rate{status=\"200\"}[1h]))"),
        0.0
    );
    // Trends in seconds: the max over every series is the summary's max.
    let max_s = prom.scalar("max(last_over_time(k6_http_req_duration_max[1h]))");
    let max_ms = m["http_req_duration"]["max"].as_f64().expect("max");
    assert!(
        (max_s * 1000.0 - max_ms).abs() <= max_ms * 1e-9 + 1e-9,
        "{max_s} s vs {max_ms} ms"
    );
    let sum_s = last("k6_http_req_duration_sum");
    let avg_ms = m["http_req_duration"]["avg"].as_f64().expect("avg");
    assert!(
        (sum_s * 1000.0 / reqs - avg_ms).abs() <= avg_ms * 1e-6,
        "{sum_s} s over {reqs} vs avg {avg_ms} ms"
    );
    for name in [
        "k6_http_req_duration_min",
        "k6_http_req_duration_avg",
        "k6_http_req_duration_med",
        "k6_http_req_duration_p95",
        "k6_http_req_duration_p999",
        "k6_http_req_waiting_p95",
        "k6_iteration_duration_p95",
        "k6_vus",
        "k6_vus_max",
        "k6_checks_rate",
        "k6_data_sent_total",
    ] {
        let r = prom.query(&format!("last_over_time({name}[1h])"), None);
        assert!(!r.is_empty(), "{name} was written");
    }
    // k6's labels: tags with a value, as label names.
    let r = prom.query(
        "last_over_time(k6_http_reqs_total{status=\"200\"}[1h])",
        None,
    );
    let labels = &r[0]["metric"];
    for key in [
        "method",
        "name",
        "scenario",
        "status",
        "url",
        "expected_response",
    ] {
        assert!(labels.get(key).is_some(), "{key} in {labels}");
    }
    assert_eq!(labels["scenario"], "main");
    // Aggregates, not samples: a series has about one sample per push
    // (a 3 s test, 1 s pushes), whatever the request count.
    let samples = prom.scalar("max(count_over_time(k6_http_reqs_total[1h]))");
    assert!(
        (1.0..=8.0).contains(&samples) && samples < reqs / 2.0,
        "{samples} samples for {reqs} requests"
    );
}

/// `K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM=true`: a trend is one
/// native histogram series (Prometheus with native histograms on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trends_as_native_histograms_when_asked() {
    let prom = Prometheus::start_native();
    let m = &run_with_prom(
        format!("experimental-prometheus-rw={}", prom.write_url()),
        &[
            ("K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM", "true"),
            ("K6_PROMETHEUS_RW_PUSH_INTERVAL", "1s"),
        ],
    )
    .await;
    let reqs = m["http_reqs"]["count"].as_f64().expect("http_reqs");
    let d = "k6_http_req_duration_seconds";
    assert_eq!(prom.scalar(&format!("sum(histogram_count({d}))")), reqs);
    let sum_s = prom.scalar(&format!("sum(histogram_sum({d}))"));
    let avg_ms = m["http_req_duration"]["avg"].as_f64().expect("avg");
    assert!(
        (sum_s * 1000.0 / reqs - avg_ms).abs() <= avg_ms * 1e-6,
        "{sum_s} s over {reqs} vs avg {avg_ms} ms"
    );
    // Buckets about 9 % wide: the median within them.
    let med_s = prom.scalar(&format!("histogram_quantile(0.5, sum({d}))"));
    let med_ms = m["http_req_duration"]["med"].as_f64().expect("med");
    assert!(
        med_s * 1000.0 > med_ms * 0.85 && med_s * 1000.0 < med_ms * 1.15,
        "{med_s} s vs med {med_ms} ms"
    );
    // No statistics series beside the histogram.
    assert!(prom.query("k6_http_req_duration_p99", None).is_empty());
    assert_eq!(prom.scalar("sum(k6_http_reqs_total)"), reqs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_markers_end_the_series_when_asked() {
    let prom = Prometheus::start();
    run_with_prom(
        format!("experimental-prometheus-rw={}", prom.write_url()),
        &[("K6_PROMETHEUS_RW_STALE_MARKERS", "true")],
    )
    .await;
    // Marked stale: gone from instant queries, still in range queries.
    assert!(prom.query("k6_http_reqs_total", None).is_empty());
    assert!(prom.scalar("sum(last_over_time(k6_http_reqs_total[1h]))") >= 4.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_backend_never_fails_the_test() {
    let (_held, port) = common::refusing_port();
    let url = format!("http://127.0.0.1:{port}/api/v1/write");
    let started = Instant::now();
    let run = run_with_outputs(
        THREE_SECONDS,
        &["experimental-prometheus-rw".to_owned()],
        &[
            ("K6_PROMETHEUS_RW_SERVER_URL", &url),
            ("K6_PROMETHEUS_RW_PUSH_INTERVAL", "500ms"),
        ],
    )
    .await;
    let text = run.passed();
    assert!(text.contains("http_reqs"), "the summary: {text}");
    let note = run
        .notes("experimental-prometheus-rw (http://127.0.0.1:")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("a note on the lost samples: {text}"));
    assert!(
        note.contains("samples not delivered: cannot reach") && note.contains("refused"),
        "{note}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(45),
        "the final flush has a time limit: {:?}",
        started.elapsed()
    );
}

/// `https://` through a TLS proxy with a self-signed certificate and
/// `K6_PROMETHEUS_RW_INSECURE_SKIP_TLS_VERIFY=true`: the totals arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_endpoint_is_written_when_verification_is_skipped() {
    let prom = Prometheus::start();
    let (proxy, _ca) = tls_proxy(prom.port).await;
    let m = &run_with_prom(
        format!(
            "experimental-prometheus-rw=https://localhost:{}/api/v1/write",
            proxy.port
        ),
        &[("K6_PROMETHEUS_RW_INSECURE_SKIP_TLS_VERIFY", "true")],
    )
    .await;
    let reqs = m["http_reqs"]["count"].as_f64().expect("http_reqs");
    assert_eq!(
        prom.scalar("sum(last_over_time(k6_http_reqs_total[1h]))"),
        reqs
    );
}

/// A 3-agent fleet test with remote write (its options in the argument, as
/// a fleet test's output travels): the origin pushes the fleet's merged
/// totals once, labelled with the test id, and Prometheus's total is the
/// fleet summary's exactly; with `outputsBy: agent`, one series per agent
/// adding up to the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_test_writes_one_merged_stream() {
    let prom = Prometheus::start();
    let target = fleet::target().await;
    let fleet = fleet::outputs::start().await;
    for by in [None, Some("agent")] {
        let output = format!(
            "experimental-prometheus-rw=url={}&pushInterval=500ms",
            prom.write_url()
        );
        let (id, _) = fleet
            .run_with_outputs(target.addr, vec![output], by, "not delivered")
            .await;
        let series = format!("k6_http_reqs_total{{testid=\"{id}\"}}");
        let last = prom.query(&format!("last_over_time({series}[1h])"), None);
        let total: f64 = last
            .iter()
            .filter_map(|s| s["value"][1].as_str()?.parse::<f64>().ok())
            .sum();
        assert_eq!(total, 300.0, "{last:?}");
        let agents: Vec<&str> = last
            .iter()
            .filter_map(|s| s["metric"]["agent"].as_str())
            .collect();
        match by {
            None => assert!(agents.is_empty(), "one fleet stream: {last:?}"),
            Some(_) => {
                let mut distinct = agents.clone();
                distinct.sort_unstable();
                distinct.dedup();
                assert_eq!(distinct, ["agent-0", "agent-1", "agent-2"], "{last:?}");
            }
        }
    }
}
