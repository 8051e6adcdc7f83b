//! A YAML plan's `setup:`, `teardown:` and custom metrics on a fleet of
//! real `volley agent` processes on loopback: setup runs once, on the
//! agent that accepted the test, before the shared start, and what it
//! captured reaches every agent's VUs; teardown runs once after the seal;
//! a custom counter merges exactly and its threshold is judged on the
//! fleet's total. A plan's data file and upload files travel with it from
//! `volley run --agent`.

mod common;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_and_upload_files_travel_with_the_plan_from_the_command_line() {
    let checker = common::servers::multipart_checker().await;
    let fleet = Fleet::start(2, FleetOptions::default())
        .await
        .expect("fleet forms");
    let dir = fleet.dir().join("plan");
    std::fs::create_dir_all(dir.join("files")).expect("plan directory");
    let logo: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    std::fs::write(dir.join("files/logo.bin"), &logo).expect("upload file");
    std::fs::write(dir.join("users.csv"), "user\nann\nbob\n").expect("data file");
    let plan = dir.join("upload.yaml");
    std::fs::write(
        &plan,
        format!(
            r#"
thresholds:
  checks: ["rate==1"]
data: {{file: users.csv}}
scenarios:
  main: {{executor: shared-iterations, vus: 2, iterations: 8, maxDuration: 30s}}
flow:
  - post:
      url: "{url}/upload"
      multipart:
        user: "${{data.user}}"
        logo: {{file: files/logo.bin, contentType: image/png}}
      check:
        - {{json: {{pointer: /parts/0/size, equals: 3000}}, name: logo arrived}}
"#,
            url = checker.url()
        ),
    )
    .expect("plan written");
    let cli = fleet.run_cli([plan.display().to_string()]);
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), cli.wait_with_output())
        .await
        .expect("volley run --agent ends")
        .expect("its output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}\n{}", fleet.logs());
    let log = checker.log().await;
    assert_eq!(log.len(), 8, "{log:?}");
    let mut users: Vec<&str> = log
        .iter()
        .filter_map(|answer| answer["parts"][1]["text"].as_str())
        .collect();
    users.sort_unstable();
    users.dedup();
    assert_eq!(users, ["ann", "bob"], "the data file reached the agents");
    let sha = |b: &[u8]| {
        let d = ring::digest::digest(&ring::digest::SHA256, b);
        d.as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    for answer in &log {
        assert_eq!(
            answer["parts"][0]["sha256"].as_str(),
            Some(sha(&logo).as_str())
        );
    }
    // What the agents keep at rest names the files but holds none of their content.
    let mut bundles = 0;
    for agent in &fleet.agents {
        for test in std::fs::read_dir(agent.data_dir.join("tests"))
            .into_iter()
            .flatten()
        {
            let path = test.expect("entry").path().join("bundle.json");
            if let Ok(kept) = std::fs::read_to_string(&path) {
                bundles += 1;
                assert!(
                    kept.contains("users.csv") && !kept.contains("bob"),
                    "{kept}"
                );
            }
        }
    }
    assert!(bundles > 0, "the origin keeps the bundle");
}
