//! Issue 9's YAML steps end to end against the built-in target: timing,
//! regex, negated and JSON-comparing checks; batches; custom metrics;
//! setup and teardown flows.

mod common;

use common::{base, check_counts, counter, rate, run_yaml, start_target};
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
