//! A YAML plan's `setup:`, `teardown:` and custom metrics on a fleet of
//! real `volley agent` processes on loopback: setup runs once, on the
//! agent that accepted the test, before the shared start, and what it
//! captured reaches every agent's VUs; teardown runs once after the seal;
//! a custom counter merges exactly and its threshold is judged on the
//! fleet's total.

mod fleet;

use fleet::plans::submit;
use fleet::{Fleet, FleetOptions, results, target};
use volley::target::Route;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_values_reach_every_agent_and_custom_metrics_merge_exactly() {
    let target = target().await;
    let fleet = Fleet::start(3, FleetOptions::default())
        .await
        .expect("fleet forms");
    let base = format!("http://{}", target.addr);
    let plan = format!(
        r#"
metrics:
  fleet_steps_orders: counter
thresholds:
  fleet_steps_orders: ["count==120"]
  checks: ["rate==1"]
setup:
  - get: {{url: "{base}/json", check: [{{status: 200}}], capture: [{{var: token, json: /token}}]}}
teardown:
  - get: "{base}/status/204"
scenarios:
  main:
    executor: shared-iterations
    vus: 6
    iterations: 60
    maxDuration: 30s
flow:
  - get:
      url: "{base}/headers"
      headers: {{Authorization: "Bearer ${{token}}"}}
      check:
        - {{json: {{pointer: /authorization, equals: "Bearer tok-1"}}, name: setup token sent}}
  - metric: {{name: fleet_steps_orders, add: 2}}
"#
    );
    // Submitted to the second agent: it runs setup and teardown.
    let view = fleet.run_to_seal(1, &submit(plan)).await;
    assert!(view.passed, "{}", view.text);
    assert_eq!(
        results::root_check(&view.k6_export, "setup token sent"),
        (60, 0),
        "{}",
        view.text
    );
    assert_eq!(
        view.k6_export["metrics"]["fleet_steps_orders"]["count"], 120,
        "{}",
        view.k6_export
    );
    assert_eq!(target.stats.route(Route::Json), 1, "setup ran once");
    assert_eq!(target.stats.route(Route::Headers), 60);
    results::assert_every_agent_sent(&view.summary, 3);
    fleet
        .wait_route_once("teardown ran", &target.stats, Route::Status)
        .await
        .expect("teardown runs once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_setup_check_refuses_the_fleet_test_before_any_agent_starts() {
    let target = target().await;
    let fleet = Fleet::start(2, FleetOptions::default())
        .await
        .expect("fleet forms");
    let base = format!("http://{}", target.addr);
    let plan = format!(
        r#"
setup:
  - get: {{url: "{base}/status/503", check: [{{status: 200}}]}}
teardown:
  - get: "{base}/headers"
iterations: 10
flow:
  - get: "{base}/json"
"#
    );
    let refused = fleet
        .client(0)
        .submit(&submit(plan))
        .await
        .expect_err("setup's failed check refuses the test");
    assert_eq!(refused.status().map(|s| s.as_u16()), Some(422), "{refused}");
    assert!(
        refused
            .to_string()
            .contains("setup failed: check \"status is 200\" did not pass"),
        "{refused}"
    );
    assert_eq!(target.stats.route(Route::Status), 1, "setup ran once");
    assert_eq!(target.stats.route(Route::Json), 0, "no VU started");
    assert_eq!(target.stats.route(Route::Headers), 0, "no teardown");
}
