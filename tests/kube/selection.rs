//! `spec.selector` with `matchExpressions` end to end: three real agents in
//! this process (one fleet CA, labels `region=eu|eu|us`, gossip on
//! loopback), the `LoadTest` controller of one of them against the fake API
//! server, and the built-in target as the load's destination. The fleet
//! itself picks the agents, so the test shows which ones ran the load.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use volley::agent::RunningAgent;
use volley::agent::config::{AgentArgs, AgentSettings, MapSource, OsFiles};
use volley::api::Agent;
use volley::fleet::ca::FleetCa;
use volley::kube::KubeContext;

use super::controller::{config, loadtest, phase, phase_within, status};
use super::fake_api::{FakeApi, NAMESPACE};
use super::support::{PATIENCE, eventually};

/// How long a whole test (claim, lead time, 1 s of load, seal) may take.
const RUN_PATIENCE: Duration = Duration::from_secs(40);

fn settings(dir: &Path, name: &str, region: &str, seed: Option<SocketAddr>) -> AgentSettings {
    let ca = dir.join("ca");
    let mut env: BTreeMap<String, String> = [
        ("VOLLEY_NODE_ID", name.to_owned()),
        ("VOLLEY_GOSSIP_LISTEN", "127.0.0.1:0".into()),
        ("VOLLEY_QUIC_LISTEN", "127.0.0.1:0".into()),
        ("VOLLEY_API_LISTEN", "127.0.0.1:0".into()),
        ("VOLLEY_CAPACITY", "1".into()),
        ("VOLLEY_LABELS", format!("region={region},pool=load")),
        ("VOLLEY_CA_CERT", ca.join("ca.crt").display().to_string()),
        ("VOLLEY_CA_KEY", ca.join("ca.key").display().to_string()),
        ("VOLLEY_DATA_DIR", dir.join(name).display().to_string()),
        ("VOLLEY_GOSSIP_INTERVAL", "100ms".into()),
        // The origin gives its prepares the lead time less a 400 ms commit margin: as the fleet
        // harness, enough for a busy machine (500 ms left ~100 ms, and prepares timed out).
        ("VOLLEY_LEAD_TIME", "1500ms".into()),
        ("VOLLEY_KUBE", "off".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(seed) = seed {
        env.insert("VOLLEY_SEEDS".into(), seed.to_string());
    }
    let args = AgentArgs {
        no_auth: true,
        ..AgentArgs::default()
    };
    AgentSettings::load(&args, &MapSource(env), &OsFiles).expect("valid agent settings")
}

/// Three agents that see each other idle: `eu-1`, `eu-2` (region eu) and
/// `us-1` (region us).
async fn fleet(dir: &Path) -> Vec<RunningAgent> {
    let ca = FleetCa::generate("volley selection test CA").expect("CA");
    ca.write_to_dir(&dir.join("ca"), true).expect("CA files");
    let mut agents: Vec<RunningAgent> = Vec::new();
    for (name, region) in [("eu-1", "eu"), ("eu-2", "eu"), ("us-1", "us")] {
        let seed = agents.first().map(|a| a.gossip_addr);
        let agent = volley::agent::start(settings(dir, name, region, seed))
            .await
            .expect("agent starts");
        agents.push(agent);
    }
    // Every agent must see the other two: the controller submits through
    // `us-1`, and a submit selects among the members its entry agent knows.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let mut members = Vec::new();
        for agent in &agents {
            members.push(agent.api().members().await);
        }
        let converged = members
            .iter()
            .all(|seen| seen.iter().filter(|m| m.state == "idle").count() == 3);
        if converged {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the fleet did not form: {members:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    agents
}

fn plan(target: SocketAddr) -> String {
    format!(
        "scenarios:\n  main:\n    executor: constant-vus\n    vus: 4\n    duration: 1s\n\
         flow:\n  - request:\n      url: http://{target}/\n  - sleep: 50ms\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn match_expressions_run_only_on_matching_agents_and_wait_when_none_match() {
    let dir = tempfile::tempdir().expect("temp dir");
    let target = volley::target::spawn(
        "127.0.0.1:0".parse().expect("address"),
        volley::target::TargetConfig::default(),
    )
    .await
    .expect("target starts");
    let agents = fleet(dir.path()).await;
    let api = FakeApi::start().await;
    // The controller of us-1: the test is claimed by an agent it excludes.
    let entry: Arc<dyn Agent> = agents[2].api();
    let ctx = KubeContext::new(api.client(), NAMESPACE);
    let mut cfg = config("us-1");
    cfg.pending_timeout = Duration::from_secs(30);
    let controller = ctx.spawn_controller_with(cfg, entry.clone(), Arc::new(|_: &str| true));

    let mut lt = loadtest("eu-only", &plan(target.addr));
    lt["spec"]["selector"] = json!({
        "matchLabels": {"pool": "load"},
        "matchExpressions": [
            {"key": "region", "operator": "In", "values": ["eu"]},
            {"key": "gpu", "operator": "DoesNotExist"},
        ],
    });
    api.create_loadtest(NAMESPACE, lt);
    let passed = phase_within(&api, "eu-only", "Passed", RUN_PATIENCE).await;
    assert_eq!(passed["agents"], 2, "{passed}");
    let id = passed["testId"].as_str().expect("a test id").to_owned();
    let view = entry.get_test(&id).await.expect("the fleet knows the test");
    let mut ran: Vec<&str> = view.agent_states.iter().map(|a| a.agent.as_str()).collect();
    ran.sort_unstable();
    assert_eq!(ran, ["eu-1", "eu-2"], "only the eu agents take part");

    // Nothing matches: Pending with the fleet's reason, the selector in its
    // Kubernetes string form, then Error once waitForAgents is over.
    let mut none = loadtest("ap-only", &plan(target.addr));
    none["spec"]["selector"] = json!({
        "matchExpressions": [{"key": "region", "operator": "In", "values": ["ap"]}],
    });
    none["spec"]["waitForAgents"] = json!("2s");
    api.create_loadtest(NAMESPACE, none);
    let pending = eventually("ap-only pending with a reason", || {
        let s = status(&api, "ap-only");
        (s["phase"] == "Pending").then_some(s)
    })
    .await;
    let message = pending["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("0 agent(s) match the selector") && message.contains("region in (ap)"),
        "{pending}"
    );
    let waiting = pending["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["reason"] == "WaitingForAgents"));
    assert!(waiting.is_some(), "{pending}");
    let error = phase(&api, "ap-only", "Error").await;
    assert!(
        error["message"].as_str().is_some_and(
            |m| m.starts_with("gave up after waiting 2s") && m.contains("region in (ap)")
        ),
        "{error}"
    );

    controller.abort();
    for agent in agents {
        agent.shutdown().await;
    }
    target.shutdown().await;
}
