//! Failures are data: a stalled target counted as timeouts (and visible in
//! the latency from the intended start), refused connections, connections
//! dropped mid-response and failed TLS handshakes are classified, counted
//! and never stop a run.

mod common;

use std::time::Duration;

use common::{
    base, base_tls, check_counts, counter, max_ms, percentile_ms, rate, run_yaml, start_target,
    start_target_with, summary_errors, trend_count,
};
use volley::engine::EndReason;
use volley::metrics::Metric;
use volley::target::{Route, TargetConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_target_is_counted_as_timeouts_and_seen_from_the_intended_start() {
    let target = start_target().await;
    // 50 arrivals/s for 2 s with at most 3 VUs; every request hangs until
    // its 300 ms timeout, so 3 VUs serve about 10 arrivals/s and the rest
    // are dropped for want of a free VU.
    let yaml = format!(
        r#"
scenarios:
  main:
    executor: constant-arrival-rate
    rate: 50
    timeUnit: 1s
    duration: 2s
    preAllocatedVUs: 3
    maxVUs: 3
flow:
  - get:
      url: "{}/stall"
      timeout: 300ms
"#,
        base(&target)
    );
    let r = run_yaml(&yaml).await;
    assert_eq!(r.end, EndReason::Completed);
    let reqs = counter(&r, Metric::HttpReqs);
    let iterations = counter(&r, Metric::Iterations);
    let dropped = counter(&r, Metric::DroppedIterations);
    let timeouts = summary_errors(&r, "timeout");
    let p99_intended = percentile_ms(&r, Metric::HttpReqDurationIntended, 99.0);
    let p50_intended = percentile_ms(&r, Metric::HttpReqDurationIntended, 50.0);
    let max_duration = max_ms(&r, Metric::HttpReqDuration);
    println!(
        "stall: http_reqs {reqs}, timeouts {timeouts}, iterations {iterations}, dropped {dropped}, \
         http_req_duration max {max_duration:.1} ms, http_req_duration_intended p50 \
         {p50_intended:.1} ms p99 {p99_intended:.1} ms ({} samples), errors {:?}",
        trend_count(&r, Metric::HttpReqDurationIntended),
        r.summary.errors
    );

    assert!(reqs >= 10.0, "3 VUs × ~6 timeouts each: {reqs}");
    assert_eq!(timeouts as f64, reqs, "every request timed out");
    assert_eq!(
        r.summary.errors.len(),
        1,
        "no other error class: {:?}",
        r.summary.errors
    );
    let (failed, total) = rate(&r, Metric::HttpReqFailed);
    assert_eq!(
        (failed, total),
        (reqs as u64, reqs as u64),
        "http_req_failed is 1"
    );
    assert!(dropped > 0.0, "arrivals found no free VU");
    assert_eq!(
        iterations + dropped,
        100.0,
        "every arrival either ran (its request failing) or was dropped"
    );
    assert_eq!(target.stats.route(Route::Stall) as f64, reqs);
    // A request lasts its timeout, no more.
    assert!(
        (295.0..=400.0).contains(&max_duration),
        "http_req_duration max {max_duration} ms, expected ≈ the 300 ms timeout"
    );
    // From the intended start, the dropped arrivals waited for a VU and
    // then would have hung like the others: the stall shows beyond the timeout.
    assert_eq!(
        trend_count(&r, Metric::HttpReqDurationIntended) as f64,
        reqs + dropped,
        "every arrival has a latency from its intended start"
    );
    assert!(
        p99_intended >= 400.0,
        "http_req_duration_intended p99 {p99_intended} ms should be clearly above the timeout"
    );
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_classified_and_the_run_completes() {
    // A port nobody listens on, held for the whole test.
    let (_held, port) = common::refusing_port();
    let yaml = format!(
        r#"
scenarios:
  main:
    executor: per-vu-iterations
    vus: 2
    iterations: 3
flow:
  - get:
      url: "http://127.0.0.1:{port}/"
      check:
        - status: 200
"#
    );
    let r = run_yaml(&yaml).await;
    assert_eq!(r.end, EndReason::Completed);
    assert_eq!(counter(&r, Metric::Iterations), 6.0);
    assert_eq!(summary_errors(&r, "connect_refused"), 6);
    assert_eq!(rate(&r, Metric::HttpReqFailed), (6, 6));
    assert_eq!(
        check_counts(&r, "status is 200"),
        (0, 6),
        "no response fails its checks"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_mid_body_is_a_reset() {
    let target = start_target().await;
    let yaml = format!(
        r#"
scenarios:
  main:
    executor: per-vu-iterations
    vus: 1
    iterations: 3
flow:
  - get: "{base}/drop"
  - get: "{base}/"
"#,
        base = base(&target)
    );
    let r = run_yaml(&yaml).await;
    assert_eq!(r.end, EndReason::Completed);
    assert_eq!(counter(&r, Metric::Iterations), 3.0);
    let broken = summary_errors(&r, "reset") + summary_errors(&r, "protocol");
    println!("drop: errors {:?}", r.summary.errors);
    assert_eq!(broken, 3, "errors: {:?}", r.summary.errors);
    assert_eq!(
        rate(&r, Metric::HttpReqFailed),
        (3, 6),
        "the request after each drop succeeds on a new connection"
    );
    assert_eq!(target.stats.route(Route::Drop), 3);
    assert_eq!(target.stats.route(Route::Root), 3);
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_connection_reuse_opens_one_connection_per_request() {
    let target = start_target().await;
    let yaml = format!(
        r#"
noConnectionReuse: true
scenarios:
  main:
    executor: shared-iterations
    vus: 2
    iterations: 20
flow:
  - get: "{}/"
"#,
        base(&target)
    );
    let r = run_yaml(&yaml).await;
    assert_eq!(counter(&r, Metric::HttpReqs), 20.0);
    assert_eq!(rate(&r, Metric::HttpReqFailed), (0, 20));
    assert_eq!(target.stats.requests(), 20);
    assert_eq!(
        target.stats.connections(),
        20,
        "a new connection per request"
    );
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_uses_one_connection_per_vu() {
    let target = start_target().await;
    let yaml = format!(
        r#"
scenarios:
  main:
    executor: per-vu-iterations
    vus: 3
    iterations: 5
flow:
  - get: "{base}/"
  - get: "{base}/bytes/2048"
"#,
        base = base(&target)
    );
    let r = run_yaml(&yaml).await;
    assert_eq!(counter(&r, Metric::HttpReqs), 30.0);
    assert_eq!(rate(&r, Metric::HttpReqFailed), (0, 30));
    assert_eq!(target.stats.requests(), 30);
    assert_eq!(
        target.stats.connections(),
        3,
        "each VU keeps its connection"
    );
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_with_prior_knowledge_works() {
    let target = start_target().await;
    // HTTP/1.1 sends a Host header; HTTP/2 carries `:authority` instead,
    // which the target's /headers does not list as `host`.
    let yaml = format!(
        r#"
http2PriorKnowledge: true
scenarios:
  main:
    executor: per-vu-iterations
    vus: 2
    iterations: 4
flow:
  - get:
      url: "{base}/headers"
      check:
        - status: 200
        - json: {{pointer: /host}}
  - post:
      url: "{base}/echo"
      body: "over h2"
      check:
        - {{bodyContains: "over h2"}}
"#,
        base = base(&target)
    );
    let r = run_yaml(&yaml).await;
    println!(
        "h2c: errors {:?}, checks {:?}",
        r.summary.errors, r.summary.checks
    );
    assert_eq!(rate(&r, Metric::HttpReqFailed), (0, 16));
    assert_eq!(check_counts(&r, "status is 200"), (8, 0));
    assert_eq!(check_counts(&r, "body contains \"over h2\""), (8, 0));
    assert_eq!(
        check_counts(&r, "json /host exists"),
        (0, 8),
        "requests went over HTTP/2"
    );
    assert_eq!(
        target.stats.connections(),
        2,
        "one multiplexed connection per VU"
    );
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_works_when_verification_is_skipped_and_fails_as_tls_otherwise() {
    let config = TargetConfig {
        tls: true,
        ..TargetConfig::default()
    };
    let target = start_target_with(config).await;
    let flow = format!(
        r#"
scenarios:
  main:
    executor: per-vu-iterations
    vus: 2
    iterations: 3
flow:
  - get:
      url: "{}/json"
      check:
        - status: 200
"#,
        base_tls(&target)
    );
    let r = run_yaml(&format!("insecureSkipTLSVerify: true\n{flow}")).await;
    assert_eq!(rate(&r, Metric::HttpReqFailed), (0, 6));
    assert_eq!(check_counts(&r, "status is 200"), (6, 0));
    assert_eq!(target.stats.route(Route::Json), 6);
    assert!(
        percentile_ms(&r, Metric::HttpReqTlsHandshaking, 100.0) > 0.0,
        "handshakes were timed"
    );

    // The target's certificate is self-signed: without the option, every
    // handshake fails and no request reaches a route.
    let r = run_yaml(&flow).await;
    assert_eq!(r.end, EndReason::Completed);
    println!("tls without skip: errors {:?}", r.summary.errors);
    assert_eq!(
        summary_errors(&r, "tls"),
        6,
        "errors: {:?}",
        r.summary.errors
    );
    assert_eq!(rate(&r, Metric::HttpReqFailed), (6, 6));
    assert_eq!(
        target.stats.route(Route::Json),
        6,
        "no new request was routed"
    );
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_shorter_than_the_answer_cuts_the_request() {
    let target = start_target().await;
    let yaml = format!(
        r#"
scenarios:
  main:
    executor: per-vu-iterations
    vus: 1
    iterations: 2
flow:
  - get:
      url: "{base}/delay/1000"
      timeout: 100ms
  - get: "{base}/"
"#,
        base = base(&target)
    );
    let r = run_yaml(&yaml).await;
    assert_eq!(summary_errors(&r, "timeout"), 2);
    assert_eq!(rate(&r, Metric::HttpReqFailed), (2, 4));
    let max = max_ms(&r, Metric::HttpReqDuration);
    assert!(
        max < 300.0,
        "cut at the timeout, not at the answer: {max} ms"
    );
    assert!(
        r.elapsed < Duration::from_millis(1_500),
        "two iterations of ~100 ms took {:?}",
        r.elapsed
    );
    target.shutdown().await;
}

/// The timeout covers the whole redirect chain, as k6's does: four hops of
/// 300 ms each fit no 700 ms timeout, though each would alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_covers_the_whole_redirect_chain() {
    let target = start_target_with(TargetConfig {
        added_latency: Duration::from_millis(300),
        ..TargetConfig::default()
    })
    .await;
    let yaml = format!(
        r#"
iterations: 1
flow:
  - get:
      url: "{base}/redirect/3"
      timeout: 700ms
  - batch:
      - url: "{base}/redirect/3"
        timeout: 700ms
"#,
        base = base(&target)
    );
    let r = run_yaml(&yaml).await;
    // Per request: two 302s, then the third hop cut with 100 ms left.
    assert_eq!(summary_errors(&r, "timeout"), 2, "{:?}", r.summary.errors);
    assert_eq!(counter(&r, Metric::HttpReqs), 6.0);
    target.shutdown().await;
}
