//! The chart's `helm test` hook, run for real: the two commands of
//! `chart/volley/templates/tests/fleet-test.yaml` (read from the template,
//! with the pod's paths mapped to local files and the API Service to an
//! agent's address) against a fleet of real `volley agent` processes. Both
//! must exit 0: the members listing, and the chart's plan
//! (`chart/volley/files/helm-test-plan.yaml`) run on every agent to a pass.

mod fleet;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fleet::{Fleet, FleetOptions, TOKEN};

const TEMPLATE: &str = include_str!("../chart/volley/templates/tests/fleet-test.yaml");

fn chart_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The `args:` of the container whose `- name:` line is `name`, with the
/// template's `$agent` replaced and the pod's paths mapped to local ones.
fn args_of(name: &str, agent: &str, token: &Path, plan: &Path) -> Vec<String> {
    let after = TEMPLATE
        .split_once(&format!("- name: {name}\n"))
        .unwrap_or_else(|| panic!("no container {name} in the template"))
        .1;
    let line = after
        .lines()
        .find_map(|l| l.trim().strip_prefix("args: "))
        .unwrap_or_else(|| panic!("container {name} has no args line"));
    let json = line.replace("{{ $agent | quote }}", &format!("{agent:?}"));
    let args: Vec<String> = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("args of {name} are not a flat list ({e}): {line}"));
    args.into_iter()
        .map(|a| match a.as_str() {
            "/etc/volley/token/token" => token.display().to_string(),
            "/etc/volley/test/smoke.yaml" => plan.display().to_string(),
            _ => a,
        })
        .collect()
}

async fn run(args: &[String]) -> (Option<i32>, String) {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_volley"))
        .args(args)
        .env_clear()
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("volley starts");
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("volley {args:?} did not end within 60 s"))
        .expect("volley's output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_charts_helm_test_passes_against_a_fleet() {
    let fleet = Fleet::start(2, FleetOptions::default())
        .await
        .expect("the fleet forms");
    let token = fleet.dir().join("helm-test-token");
    std::fs::write(&token, format!("{TOKEN}\n")).expect("token file");
    let plan = chart_file("chart/volley/files/helm-test-plan.yaml");
    let agent = format!("http://{}", fleet.agents[0].api);

    let members = args_of("members", &agent, &token, &plan);
    assert_eq!(members[0], "members");
    let (code, out) = run(&members).await;
    assert_eq!(code, Some(0), "volley {members:?}:\n{out}");
    assert!(out.contains("agent-0") && out.contains("agent-1"), "{out}");

    let smoke = args_of("smoke", &agent, &token, &plan);
    assert_eq!(smoke[0], "run");
    let (code, out) = run(&smoke).await;
    assert_eq!(code, Some(0), "volley {smoke:?}:\n{out}");

    // The hook's test ran on every agent.
    let tests = fleet.client(0).list_tests().await.expect("tests listed");
    assert_eq!(tests.len(), 1, "{tests:?}");
    assert_eq!(tests[0].agents, 2, "{tests:?}");

    // A wrong token fails the hook (reads are open, the submit is not).
    std::fs::write(&token, "not-the-token\n").expect("token file");
    let (code, out) = run(&smoke).await;
    assert_ne!(code, Some(0), "a wrong token passed:\n{out}");
    assert_eq!(
        fleet
            .client(0)
            .list_tests()
            .await
            .expect("tests listed")
            .len(),
        1,
        "nothing ran with the wrong token"
    );
}
