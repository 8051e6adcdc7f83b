//! What the fleet tells its users, with real `volley agent` processes on loopback: the exit code
//! and verdict of a test aborted through the API, `abort` of a test nothing runs any more,
//! `volley tests` listing the whole fleet's tests, and 404 answers that enumerate nothing. Each
//! test takes 4–12 s.

mod fleet;

use std::process::Stdio;
use std::time::Duration;

use fleet::{Fleet, FleetOptions, TOKEN, plans, target};
use volley::api::{ApiClient, SubmitRequest};

/// Waits until agent `i` lists test `id` as running.
async fn wait_running(fleet: &Fleet, i: usize, id: &str) {
    let client = fleet.client(i);
    fleet
        .wait_for(
            &format!("test {id} runs"),
            Duration::from_secs(15),
            || async {
                let view = client.get_test(id).await.map_err(|e| e.to_string())?;
                if view.brief.phase == "running" {
                    Ok(Some(()))
                } else {
                    Err(format!("phase {}", view.brief.phase))
                }
            },
        )
        .await
        .expect("the test runs");
}

/// The id of the one test agent `i` knows, once it knows one.
async fn only_test(fleet: &Fleet, client: &ApiClient) -> String {
    fleet
        .wait_for("a test is listed", Duration::from_secs(15), || async {
            let list = client.list_tests().await.map_err(|e| e.to_string())?;
            Ok(list.first().map(|t| t.id.clone()))
        })
        .await
        .expect("the submitted test is listed")
}

/// A test aborted through the API used to make `volley run --agent` exit 0 with `passed: true`.
/// Stopped through its REST API, k6 exits 103 (`ScriptStoppedFromRESTAPI`); the verdict is
/// `passed: false` everywhere it shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_aborted_through_the_api_exits_103_and_did_not_pass() {
    let target = target().await;
    let fleet = Fleet::start(1, FleetOptions::default())
        .await
        .expect("fleet forms");
    let plan = fleet.dir().join("long.yaml");
    std::fs::write(
        &plan,
        plans::constant_vus(
            target.addr,
            2,
            Duration::from_secs(20),
            Duration::from_millis(50),
        ),
    )
    .expect("plan written");
    let cli = fleet.run_cli([plan.as_os_str(), "--quiet".as_ref()]);
    let client = fleet.client(0);
    let id = only_test(&fleet, &client).await;
    wait_running(&fleet, 0, &id).await;
    client.abort(&id).await.expect("the abort is accepted");

    let out = tokio::time::timeout(Duration::from_secs(30), cli.wait_with_output())
        .await
        .expect("the CLI ends")
        .expect("the CLI ran");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(103), "stderr:\n{stderr}");
    let summary = client.get_summary(&id).await.expect("the summary");
    assert!(!summary.passed, "an aborted test did not pass");
    let listed = client.list_tests().await.expect("list");
    let brief = listed.iter().find(|t| t.id == id).expect("listed");
    assert_eq!(
        (brief.phase.as_str(), brief.passed),
        ("aborted", Some(false))
    );
}

/// After its coordinator is killed and restarted, a test's record may still say `running`
/// though nothing runs it: `volley abort` used to print "aborted" and exit 0. It says the test
/// is not running and exits non-zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_of_a_test_nothing_runs_says_so_and_fails() {
    let target = target().await;
    let mut fleet = Fleet::start(2, FleetOptions::default())
        .await
        .expect("fleet forms");
    let plan = plans::constant_vus(
        target.addr,
        2,
        Duration::from_secs(30),
        Duration::from_millis(50),
    );
    let accepted = fleet
        .client(0)
        .submit(&SubmitRequest {
            min_agents: Some(2),
            ..plans::submit(plan)
        })
        .await
        .expect("accepted");
    wait_running(&fleet, 0, &accepted.id).await;
    fleet.restart(0).await.expect("agent-0 restarts");

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_volley"))
        .args(["abort", &accepted.id, "--agent"])
        .arg(format!("http://{}", fleet.agents[0].api))
        .env("VOLLEY_TOKEN", TOKEN)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("volley abort runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stderr.contains("is not running") && stderr.contains("nothing was aborted"),
        "{stderr}"
    );
    assert!(!stdout.contains("aborted test"), "{stdout}");
}

/// `volley tests` is documented as the fleet's tests but listed only the tests the queried agent
/// took part in. Any agent now lists every member's tests; `?scope=local` keeps the agent's
/// own. A 404 names the id asked for and no other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_agent_lists_the_fleets_tests_and_a_404_lists_none() {
    let target = target().await;
    let fleet = Fleet::start(2, FleetOptions::default())
        .await
        .expect("fleet forms");
    // Only agent-0 takes part: agent-1 never hears of the test over QUIC.
    let request = SubmitRequest {
        selector: [("agent".to_owned(), "agent-0".to_owned())].into(),
        ..plans::submit(plans::arrival_rate(
            target.addr,
            20,
            Duration::from_millis(500),
            "/",
        ))
    };
    let summary = fleet.run_to_seal(0, &request).await;
    let id = summary.id.clone();

    let own = fleet
        .client(1)
        .list_local_tests()
        .await
        .expect("agent-1's own tests");
    assert!(
        own.iter().all(|t| t.id != id),
        "agent-1 took no part: {own:?}"
    );
    let fleet_wide = fleet
        .client(1)
        .list_tests()
        .await
        .expect("the fleet's tests");
    let brief = fleet_wide
        .iter()
        .find(|t| t.id == id)
        .unwrap_or_else(|| panic!("agent-1 lists agent-0's test: {fleet_wide:?}"));
    assert_eq!(
        (brief.origin.as_str(), brief.phase.as_str()),
        ("agent-0", "passed")
    );

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_volley"))
        .args(["tests", "--agent"])
        .arg(format!("http://{}", fleet.agents[1].api))
        .stdin(Stdio::null())
        .output()
        .await
        .expect("volley tests runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&id),
        "volley tests through agent-1:\n{stdout}"
    );

    let missing = fleet
        .client(0)
        .get_test("t-does-not-exist")
        .await
        .expect_err("no such test");
    assert_eq!(missing.status().map(|s| s.as_u16()), Some(404));
    let message = missing.to_string();
    assert!(message.contains("t-does-not-exist"), "{message}");
    assert!(!message.contains(&id), "a 404 lists no test ids: {message}");
}
