//! Issue 9's YAML steps end to end against the built-in target: timing,
//! regex, negated and JSON-comparing checks; batches; custom metrics;
//! setup and teardown flows.

mod common;

use common::{base, check_counts, counter, counter_where, max_ms, rate, run_yaml, start_target};
use volley::engine::EndReason;
use volley::metrics::Metric;
use volley::target::Route;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timing_regex_negated_and_json_checks_pass_and_fail_exactly() {
    let target = start_target().await;
    // Bodies are discarded unless a check reads them: the regex and JSON
    // checks must still see theirs.
    let yaml = format!(
        r#"
discardResponseBodies: true
scenarios:
  main:
    executor: per-vu-iterations
    vus: 1
    iterations: 3
flow:
  - get:
      url: "{base}/json"
      check:
        - json: {{pointer: /id, gt: 40, lt: 43}}
        - {{json: {{pointer: /id, lt: 42}}, name: id below 42}}
        - json: {{pointer: /name, contains: oll}}
        - json: {{pointer: /items, contains: {{id: 2, name: beta}}}}
        - bodyMatches: "\"token\":\"tok-\\d+\""
        - header: {{name: Content-Type, matches: "^application/json$"}}
        - not: {{status: 200}}
        - not: {{bodyContains: error}}
  - get:
      url: "{base}/delay/60"
      check:
        - duration: ">=60ms"
        - {{duration: "<5ms", name: fast}}
        - waiting: ">=60ms"
  - get:
      url: "http://127.0.0.1:1/"
      timeout: 2s
      check:
        - {{not: {{status: 500}}, name: no answer is no pass}}
"#,
        base = base(&target)
    );
    let r = run_yaml(&yaml).await;
    assert_eq!(r.end, EndReason::Completed);
    assert_eq!(counter(&r, Metric::Iterations), 3.0);
    assert_eq!(check_counts(&r, "json /id > 40 and < 43"), (3, 0));
    assert_eq!(check_counts(&r, "id below 42"), (0, 3));
    assert_eq!(check_counts(&r, "json /name contains \"oll\""), (3, 0));
    assert_eq!(
        check_counts(&r, r#"json /items contains {"id":2,"name":"beta"}"#),
        (3, 0)
    );
    assert_eq!(
        check_counts(&r, r#"body matches /"token":"tok-\d+"/"#),
        (3, 0)
    );
    assert_eq!(
        check_counts(&r, "header Content-Type matches /^application/json$/"),
        (3, 0)
    );
    assert_eq!(check_counts(&r, "not (status is 200)"), (0, 3));
    assert_eq!(check_counts(&r, "not (body contains \"error\")"), (3, 0));
    assert_eq!(check_counts(&r, "duration >= 60ms"), (3, 0));
    assert_eq!(check_counts(&r, "fast"), (0, 3));
    assert_eq!(check_counts(&r, "waiting >= 60ms"), (3, 0));
    assert_eq!(check_counts(&r, "no answer is no pass"), (0, 3));
    assert_eq!(rate(&r, Metric::Checks), (24, 36));
    assert_eq!(target.stats.route(Route::Json), 3);
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_runs_in_parallel_lanes_with_redirects_cookies_checks_and_captures() {
    let target = start_target().await;
    // Six requests to one host with batchPerHost 3: three lanes, so three
    // connections for the whole run (each lane keeps its own), and the two
    // 400 ms delays land in different lanes (in parallel).
    let yaml = format!(
        r#"
batchPerHost: 3
scenarios:
  main:
    executor: per-vu-iterations
    vus: 1
    iterations: 2
flow:
  - batch:
      - {{url: "{base}/json", name: b-json, capture: [{{var: token, json: /token}}]}}
      - {{url: "{base}/redirect/2", name: b-redirect, check: [{{status: 200}}]}}
      - {{method: POST, url: "{base}/echo", body: "batched", name: b-echo, check: [{{bodyContains: batched}}]}}
      - {{url: "{base}/cookies/set?k=v", name: b-cookie, check: [{{json: {{pointer: /k, equals: v}}, name: cookie carried}}]}}
      - {{url: "{base}/delay/400", name: b-delay}}
      - {{url: "{base}/delay/400", name: b-delay}}
  - post:
      url: "{base}/echo"
      name: after
      body: "got ${{token}}"
      check:
        - {{bodyMatches: "^got tok-\\d+$", name: batch capture used}}
"#,
        base = base(&target)
    );
    let r = run_yaml(&yaml).await;
    assert_eq!(r.end, EndReason::Completed);
    assert_eq!(counter(&r, Metric::Iterations), 2.0);
    // Per iteration: json 1, redirect/2 3 hops, echo 1, cookies/set 2 hops,
    // delays 2, then the request after: 10.
    assert_eq!(counter(&r, Metric::HttpReqs), 20.0);
    let named = |name: &str| counter_where(&r, Metric::HttpReqs, &[("name", name)]);
    assert_eq!(named("b-redirect"), 6.0, "every hop is a request");
    assert_eq!(named("b-cookie"), 4.0);
    assert_eq!(named("b-delay"), 4.0);
    assert_eq!(check_counts(&r, "status is 200"), (2, 0));
    assert_eq!(check_counts(&r, "body contains \"batched\""), (2, 0));
    assert_eq!(check_counts(&r, "cookie carried"), (2, 0));
    assert_eq!(check_counts(&r, "batch capture used"), (2, 0));
    assert_eq!(target.stats.route(Route::Redirect), 6);
    assert_eq!(target.stats.connections(), 3, "one per lane, reused");
    assert!(
        max_ms(&r, Metric::IterationDuration) < 780.0,
        "the two 400 ms delays ran side by side: {} ms",
        max_ms(&r, Metric::IterationDuration)
    );
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_limits_bound_the_lanes_for_plans_and_scripts() {
    // (batch, batchPerHost, requests) -> connections the run opens.
    for (batch, per_host, n, lanes) in [(2, 6, 5, 2), (20, 0, 8, 8), (20, 6, 8, 6)] {
        let target = start_target().await;
        let requests: Vec<String> = (0..n)
            .map(|i| format!("{{url: \"{}/status/20{}\"}}", base(&target), i % 4))
            .collect();
        let yaml = format!(
            "batch: {batch}\nbatchPerHost: {per_host}\niterations: 1\nflow:\n  - batch: [{}]\n",
            requests.join(", ")
        );
        let r = run_yaml(&yaml).await;
        assert_eq!(counter(&r, Metric::HttpReqs), n as f64);
        assert_eq!(
            target.stats.connections(),
            lanes,
            "batch {batch}, batchPerHost {per_host}, {n} requests"
        );
        target.shutdown().await;
    }
    // A script's `batchPerHost` is the same option.
    let target = start_target().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = dir.path().join("batch.js");
    std::fs::write(
        &script,
        format!(
            "import http from 'k6/http';\n\
             export const options = {{ iterations: 1, batchPerHost: 2 }};\n\
             export default function () {{\n\
               http.batch(['{b}/status/200', '{b}/status/201', '{b}/status/202', '{b}/status/203', '{b}/status/204']);\n\
             }}\n",
            b = base(&target)
        ),
    )
    .expect("the script is written");
    let out = common::volley_async(
        vec![
            "run".into(),
            "-q".into(),
            script.to_string_lossy().into_owned(),
        ],
        std::time::Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("left out"),
        "batchPerHost is an option scripts have now"
    );
    assert_eq!(target.stats.route(Route::Status), 5);
    assert_eq!(target.stats.connections(), 2);
    target.shutdown().await;
}

/// A custom metric's whole-run value, looked up by name.
fn custom(r: &volley::engine::RunResult, name: &str) -> volley::metrics::Value {
    let metric = Metric::from_name(name).unwrap_or_else(|| panic!("{name} is registered"));
    r.total
        .metric_value(metric, &[])
        .unwrap_or_else(|| panic!("{name} has samples"))
}

/// `volley run --quiet PLAN ARGS` with `yaml` written to `dir`.
async fn volley_run(dir: &tempfile::TempDir, yaml: &str, args: &[&str]) -> std::process::Output {
    let plan = dir.path().join("plan.yaml");
    std::fs::write(&plan, yaml).expect("plan written");
    let mut all = vec![
        "run".to_string(),
        "--quiet".into(),
        plan.display().to_string(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    common::volley_async(all, std::time::Duration::from_secs(30)).await
}

const METRICS_PLAN: &str = r#"
metrics:
  es_orders: counter
  es_login_time: {type: trend, isTime: true}
  es_ok: rate
  es_last_status: gauge
  es_price: trend
thresholds:
  es_orders: ["count==6"]
  es_login_time: ["p(95)<10000"]
  es_ok: ["rate>0.9"]
scenarios:
  main:
    executor: per-vu-iterations
    vus: 1
    iterations: 3
flow:
  - get:
      url: "BASE/json"
      check: [{status: 200}]
      capture: [{var: id, json: /id}]
      metrics:
        - {name: es_login_time, value: duration}
        - {name: es_ok, value: checks}
        - {name: es_last_status, value: status}
  - metric: {name: es_orders, add: 2}
  - metric: {name: es_price, add: "${id}"}
  - get:
      url: "BASE/status/500"
      check: [{status: 200}]
      metrics: [{name: es_ok, value: checks}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_metrics_are_fed_by_steps_and_requests_and_judged() {
    use volley::metrics::Value;
    let target = start_target().await;
    let r = run_yaml(&METRICS_PLAN.replace("BASE", &base(&target))).await;
    assert_eq!(r.end, EndReason::Completed);
    assert!(matches!(custom(&r, "es_orders"), Value::Counter(c) if c == 6.0));
    assert!(
        matches!(custom(&r, "es_ok"), Value::Rate { trues: 3, total: 6 }),
        "{:?}",
        custom(&r, "es_ok")
    );
    assert!(matches!(custom(&r, "es_last_status"), Value::Gauge { value, .. } if value == 200.0));
    match custom(&r, "es_login_time") {
        Value::Trend(t) => assert_eq!(t.count(), 3),
        other => panic!("es_login_time is a trend: {other:?}"),
    }
    match custom(&r, "es_price") {
        Value::Trend(h) => {
            assert_eq!(h.count(), 3);
            let p50 = volley::metrics::aggregate::trend_percentile_ms(&h, 50.0);
            // HDR keeps 3 significant digits.
            assert!((p50 - 42.0).abs() < 0.05, "the captured id: {p50}");
            // Minimum and maximum are exact.
            assert_eq!((h.min_ms(), h.max_ms()), (42.0, 42.0));
        }
        other => panic!("es_price is a trend: {other:?}"),
    }
    let verdict = |key: &str| {
        r.outcomes
            .iter()
            .find(|o| o.key == key)
            .unwrap_or_else(|| panic!("no outcome for {key}"))
            .ok
    };
    assert!(verdict("es_orders"));
    assert!(verdict("es_login_time"));
    assert!(!verdict("es_ok"), "3 of 6 is not above 0.9");
    let shown: Vec<&str> = r.summary.metrics.iter().map(|m| m.name.as_str()).collect();
    for name in [
        "es_orders",
        "es_login_time",
        "es_ok",
        "es_last_status",
        "es_price",
    ] {
        assert!(shown.contains(&name), "{name} in the summary: {shown:?}");
    }
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_metrics_reach_the_export_and_fail_the_exit_code() {
    let target = start_target().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let export = dir.path().join("summary.json");
    let out = volley_run(
        &dir,
        &METRICS_PLAN.replace("BASE", &base(&target)),
        &["--summary-export", &export.display().to_string()],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(99),
        "es_ok's threshold fails:\n{stdout}"
    );
    assert!(stdout.contains("es_orders"), "{stdout}");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&export).expect("the summary export exists"))
            .expect("the summary export is JSON");
    assert_eq!(doc["metrics"]["es_orders"]["count"], 6, "{doc:#}");
    assert_eq!(doc["metrics"]["es_ok"]["passes"], 3, "{doc:#}");
    assert_eq!(doc["metrics"]["es_ok"]["fails"], 3, "{doc:#}");
    assert_eq!(
        doc["metrics"]["es_ok"]["thresholds"]["rate>0.9"], true,
        "k6 marks a failed threshold true: {doc:#}"
    );
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_runs_once_before_the_vus_and_teardown_once_after() {
    let target = start_target().await;
    // /json hands out tok-1, tok-2, ... in order: setup's is tok-1, and
    // every VU reads that one. Setup's request to a closed port has no
    // check, so it is data (a failed request), not a stop.
    let yaml = format!(
        r#"
setup:
  - get: {{url: "{base}/json", name: login, check: [{{status: 200}}], capture: [{{var: token, json: /token}}]}}
  - get: {{url: "http://127.0.0.1:1/", name: unreachable, timeout: 2s}}
teardown:
  - post: {{url: "{base}/headers", name: logout, body: "${{token}}", check: [{{status: 200, name: logged out}}]}}
scenarios:
  main:
    executor: per-vu-iterations
    vus: 2
    iterations: 2
flow:
  - post:
      url: "{base}/echo"
      name: use
      body: "token=${{token}};"
      check:
        - {{bodyContains: "token=tok-1;", name: setup token}}
"#,
        base = base(&target)
    );
    let r = run_yaml(&yaml).await;
    assert_eq!(r.end, EndReason::Completed);
    assert_eq!(
        counter(&r, Metric::Iterations),
        4.0,
        "setup is no iteration"
    );
    assert_eq!(target.stats.route(Route::Json), 1, "setup ran once");
    assert_eq!(target.stats.route(Route::Headers), 1, "teardown ran once");
    assert_eq!(check_counts(&r, "setup token"), (4, 0));
    assert_eq!(check_counts(&r, "status is 200"), (1, 0));
    assert_eq!(check_counts(&r, "logged out"), (1, 0));
    let in_group = |g: &str| counter_where(&r, Metric::HttpReqs, &[("group", g)]);
    assert_eq!(in_group("::setup"), 2.0);
    assert_eq!(in_group("::teardown"), 1.0);
    assert_eq!(counter(&r, Metric::HttpReqs), 7.0);
    assert_eq!(
        rate(&r, Metric::HttpReqFailed),
        (1, 7),
        "setup's failure counts"
    );
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_setup_check_stops_the_test_with_107_and_no_vu_starts() {
    let target = start_target().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plan = format!(
        r#"
setup:
  - get: {{url: "{base}/status/503", check: [{{status: 200}}]}}
  - get: "{base}/headers"
teardown:
  - get: "{base}/headers"
iterations: 3
flow:
  - get: "{base}/json"
"#,
        base = base(&target)
    );
    let out = volley_run(&dir, &plan, &[]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(107), "{stderr}");
    assert!(
        stderr.contains("setup failed: check \"status is 200\" did not pass"),
        "{stderr}"
    );
    assert_eq!(target.stats.route(Route::Status), 1);
    assert_eq!(
        target.stats.route(Route::Headers),
        0,
        "setup stopped at its failed check, and no teardown after a failed setup (as k6)"
    );
    assert_eq!(target.stats.route(Route::Json), 0, "no VU started");
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_runs_after_a_threshold_abort() {
    let target = start_target().await;
    let yaml = format!(
        r#"
teardown:
  - get: "{base}/headers"
thresholds:
  http_req_failed: [{{threshold: "rate<0.5", abortOnFail: true}}]
scenarios:
  main:
    executor: constant-vus
    vus: 1
    duration: 10s
flow:
  - get: "{base}/status/500"
  - sleep: 100ms
"#,
        base = base(&target)
    );
    let r = run_yaml(&yaml).await;
    assert_eq!(r.end, EndReason::ThresholdAbort);
    assert_eq!(target.stats.route(Route::Headers), 1, "teardown ran");
    assert_eq!(
        counter_where(&r, Metric::HttpReqs, &[("group", "::teardown")]),
        1.0
    );
    target.shutdown().await;
}
