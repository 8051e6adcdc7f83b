//! The open model's precision: a constant-arrival-rate run against the
//! built-in target starts exactly `rate × duration` iterations and achieves
//! the requested rate within 1 %.
//!
//! Alone in its own test binary so that no other test competes for the CPU
//! while the rate is measured.

mod common;

use std::time::Duration;

use common::{base, counter, run_yaml, start_target, summary_count};
use volley::metrics::{Metric, MetricValues};
use volley::target::Route;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constant_arrival_rate_is_count_exact_and_within_one_percent() {
    let target = start_target().await;
    let yaml = format!(
        r#"
scenarios:
  main:
    executor: constant-arrival-rate
    rate: 200
    timeUnit: 1s
    duration: 5s
    preAllocatedVUs: 20
    maxVUs: 100
flow:
  - get: "{}/"
"#,
        base(&target)
    );
    let r = run_yaml(&yaml).await;

    let iterations = counter(&r, Metric::Iterations);
    let reqs = counter(&r, Metric::HttpReqs);
    let dropped = counter(&r, Metric::DroppedIterations);
    let secs = r.elapsed.as_secs_f64();
    let achieved = reqs / secs;
    println!(
        "constant-arrival-rate 200/s × 5s: iterations {iterations}, http_reqs {reqs}, \
         dropped {dropped}, target saw {}, elapsed {secs:.4}s, achieved {achieved:.2}/s",
        target.stats.requests()
    );

    assert_eq!(
        iterations, 1000.0,
        "open model: exactly rate × duration iterations"
    );
    assert_eq!(reqs, 1000.0, "one request per iteration");
    assert_eq!(
        dropped, 0.0,
        "a fast target never leaves an arrival without a VU"
    );
    assert_eq!(
        target.stats.route(Route::Root),
        1000,
        "the target counted every request the engine reported"
    );
    assert_eq!(target.stats.requests(), 1000);
    assert!(
        (achieved - 200.0).abs() <= 2.0,
        "achieved {achieved:.2}/s over {secs:.4}s, not within 1% of 200/s"
    );
    assert!(
        r.elapsed >= Duration::from_millis(4_995),
        "the last arrival is due at 4.995 s; the run ended at {:?}",
        r.elapsed
    );
    // The summary reports the same count, and its rate is per second of the run.
    assert_eq!(summary_count(&r, "http_reqs"), 1000.0);
    match r.summary.metric("http_reqs").map(|m| &m.values) {
        Some(MetricValues::Counter { rate, .. }) => {
            assert!((rate - achieved).abs() < 1e-6, "summary rate {rate}")
        }
        other => panic!("http_reqs in the summary: {other:?}"),
    }
    let (failed, total) = common::rate(&r, Metric::HttpReqFailed);
    assert_eq!((failed, total), (0, 1000), "no request failed");
    target.shutdown().await;
}
