//! The `LoadTest` controller against the fake API server and fake agents:
//! claim race, a whole test's status, bad plans, too few agents, delete,
//! ConfigMap plans, take-over, rerun after a spec edit.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use volley::api::ApiError;
use volley::kube::{ControllerConfig, ControllerExit, KubeContext};

use super::fake_agent::{FakeAgent, threshold};
use super::fake_api::{FakeApi, NAMESPACE};
use super::support::{PATIENCE, eventually};

pub const PLAN: &str = "scenarios:\n  main:\n    executor: constant-vus\n    vus: 2\n    duration: 10s\nflow:\n  - request:\n      url: http://127.0.0.1:1/\n";

pub fn loadtest(name: &str, plan: &str) -> Value {
    json!({
        "apiVersion": "volley.dev/v1alpha1",
        "kind": "LoadTest",
        "metadata": {"name": name},
        "spec": {"plan": plan},
    })
}

/// Fast settings so the tests take fractions of a second.
pub fn config(node: &str) -> ControllerConfig {
    config_in(NAMESPACE, node)
}

/// [`config`] for the controller of another namespace.
pub fn config_in(namespace: &str, node: &str) -> ControllerConfig {
    let mut c = ControllerConfig::new(namespace, node);
    c.progress_every = Duration::from_millis(50);
    c.pending_retry = Duration::from_millis(50);
    c.pending_timeout = Duration::from_secs(60);
    c.takeover_after = Duration::from_millis(100);
    c.rescan_every = Duration::from_millis(50);
    c
}

/// A running controller, aborted when the test ends.
pub struct Controller(JoinHandle<ControllerExit>);

impl Drop for Controller {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub fn start(api: &FakeApi, agent: Arc<FakeAgent>, config: ControllerConfig) -> Controller {
    let ctx = KubeContext::new(api.client(), NAMESPACE);
    let alive = Arc::new(|node: &str| node != "node-dead");
    Controller(ctx.spawn_controller_with(config, agent, alive))
}

pub fn status(api: &FakeApi, name: &str) -> Value {
    api.loadtest(NAMESPACE, name)
        .map(|lt| lt["status"].clone())
        .unwrap_or(Value::Null)
}

/// Waits until the status has `phase` and returns it.
pub async fn phase(api: &FakeApi, name: &str, phase: &str) -> Value {
    phase_within(api, name, phase, PATIENCE).await
}

/// [`phase`] with a time limit of its own; on timeout it shows the last status seen.
pub async fn phase_within(api: &FakeApi, name: &str, phase: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let s = status(api, name);
        if s["phase"] == phase {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {name} in phase {phase}; its status: {s}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The phases the object went through, without repeats.
pub fn phases(api: &FakeApi, name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in api.versions(NAMESPACE, name) {
        if let Some(p) = v["status"]["phase"].as_str()
            && out.last().map(String::as_str) != Some(p)
        {
            out.push(p.to_string());
        }
    }
    out
}

#[tokio::test]
async fn claim_race_between_two_agents_has_one_winner() {
    let api = FakeApi::start().await;
    api.create_loadtest(NAMESPACE, loadtest("race", PLAN));
    // Both claims reach the server before either is served: they carry the
    // same resourceVersion, so the second must get 409 Conflict.
    api.gate_status_puts(2);
    let a = FakeAgent::new("node-a");
    let b = FakeAgent::new("node-b");
    let _ca = start(&api, a.clone(), config("node-a"));
    let _cb = start(&api, b.clone(), config("node-b"));

    let claimed = phase(&api, "race", "Starting").await;
    let winner = claimed["claimedBy"].as_str().expect("claimed").to_string();
    let (won, lost) = if winner == "node-a" {
        (&a, &b)
    } else {
        (&b, &a)
    };

    let puts: Vec<u16> = api
        .requests()
        .iter()
        .filter(|r| r.method == Method::PUT && r.path.ends_with("/race/status"))
        .map(|r| r.status)
        .collect();
    // The loser may look again (a rescan) before the winner's claim is all it sees, and
    // conflict once more: what matters is one success and nothing but conflicts besides.
    let wins = puts.iter().filter(|s| **s == 200).count();
    let conflicts = puts.iter().filter(|s| **s == 409).count();
    assert!(
        wins == 1 && conflicts >= 1 && wins + conflicts == puts.len(),
        "one claim wins, the others conflict: {puts:?}"
    );

    // Run the test to its end; the loser's rescans keep looking meanwhile.
    won.set_running("t-1", 10.0, 5.0);
    phase(&api, "race", "Running").await;
    won.finish("t-1", 100, vec![]);
    let done = phase(&api, "race", "Passed").await;
    assert_eq!(done["claimedBy"], winner.as_str());
    assert_eq!(won.submits().len(), 1, "the winner submits once");
    assert!(lost.submits().is_empty(), "the loser never submits");
}

#[tokio::test]
async fn status_follows_a_whole_test_to_passed() {
    let api = FakeApi::start().await;
    let mut lt = loadtest("smoke", PLAN);
    lt["spec"]["env"] = json!({"TARGET_URL": "http://127.0.0.1:1"});
    lt["spec"]["selector"] = json!({
        "matchLabels": {"pool": "load"},
        "matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["eu-c"]}],
    });
    lt["spec"]["minAgents"] = json!(2);
    lt["spec"]["leadTime"] = json!("3s");
    lt["spec"]["outputs"] = json!(["influxdb=http://influxdb.monitoring:8086/k6"]);
    lt["spec"]["outputsBy"] = json!("region");
    api.create_loadtest(NAMESPACE, lt);
    let agent = FakeAgent::new("node-a");
    let _c = start(&api, agent.clone(), config("node-a"));

    let s = phase(&api, "smoke", "Starting").await;
    assert_eq!(s["testId"], "t-1");
    assert_eq!(s["claimedBy"], "node-a");
    assert_eq!(s["startTime"], "2026-01-01T00:00:02Z");
    assert_eq!(s["agents"], 2);
    assert_eq!(s["observedGeneration"], 1);

    let submitted = agent.submits();
    assert_eq!(submitted.len(), 1);
    let req = &submitted[0];
    assert_eq!(req.plan, PLAN);
    assert_eq!(req.name.as_deref(), Some("smoke"));
    assert_eq!(
        req.env.get("TARGET_URL").map(String::as_str),
        Some("http://127.0.0.1:1")
    );
    assert_eq!(req.selector.get("pool").map(String::as_str), Some("load"));
    assert_eq!(
        serde_json::to_value(&req.match_expressions).expect("serializes"),
        json!([{"key": "zone", "operator": "NotIn", "values": ["eu-c"]}])
    );
    assert_eq!(req.min_agents, Some(2));
    assert_eq!(req.lead_time.as_deref(), Some("3s"));
    assert_eq!(req.outputs, ["influxdb=http://influxdb.monitoring:8086/k6"]);
    assert_eq!(req.outputs_by.as_deref(), Some("region"));

    agent.set_running("t-1", 1234.56, 45.678);
    let s = phase(&api, "smoke", "Running").await;
    assert_eq!(s["reqPerSec"], 1234.6);
    assert_eq!(s["p95Ms"], 45.68);

    agent.finish(
        "t-1",
        1234,
        vec![
            threshold("http_req_duration", "p(95)<300", true, 12.3),
            threshold("http_req_failed", "rate<0.01", true, 0.0),
        ],
    );
    let s = phase(&api, "smoke", "Passed").await;
    assert_eq!(
        s["thresholds"],
        json!([
            {"key": "http_req_duration", "source": "p(95)<300", "ok": true, "observed": 12.3},
            {"key": "http_req_failed", "source": "rate<0.01", "ok": true, "observed": 0.0},
        ])
    );
    assert_eq!(
        s["summary"],
        "1234 requests, 0.00% failed, p95 12.3ms, 2/2 thresholds passed"
    );
    assert_eq!(s["reqPerSec"], 123.4);
    assert_eq!(s["p95Ms"], 12.34);
    assert_eq!(s["testId"], "t-1");
    assert_eq!(s["observedGeneration"], 1);
    assert_eq!(
        phases(&api, "smoke"),
        ["Claimed", "Starting", "Running", "Passed"]
    );

    // The claim is a guarded replace; progress goes by merge patch.
    let reqs = api.requests();
    let status_writes: Vec<_> = reqs
        .iter()
        .filter(|r| r.path.ends_with("/smoke/status"))
        .collect();
    assert_eq!(status_writes[0].method, Method::PUT);
    assert!(status_writes[1..].iter().all(|r| {
        r.method == Method::PATCH
            && r.content_type.as_deref() == Some("application/merge-patch+json")
    }));
    assert!(agent.aborts().is_empty());
}

#[tokio::test]
async fn failed_thresholds_end_in_failed() {
    let api = FakeApi::start().await;
    api.create_loadtest(NAMESPACE, loadtest("slow", PLAN));
    let agent = FakeAgent::new("node-a");
    let _c = start(&api, agent.clone(), config("node-a"));
    phase(&api, "slow", "Starting").await;
    agent.finish(
        "t-1",
        50,
        vec![threshold("http_req_duration", "p(95)<10", false, 12.34)],
    );
    let s = phase(&api, "slow", "Failed").await;
    assert_eq!(s["thresholds"][0]["ok"], false);
    assert_eq!(
        s["summary"],
        "50 requests, 0.00% failed, p95 12.3ms, 0/1 thresholds passed"
    );
}

#[tokio::test]
async fn invalid_plan_is_an_error_with_the_field_path_and_reruns_only_after_an_edit() {
    let api = FakeApi::start().await;
    api.create_loadtest(NAMESPACE, loadtest("bad", PLAN));
    let agent = FakeAgent::new("node-a");
    agent.fail_submits(ApiError::BadRequest {
        message: "scenarios.main.vus: expected a positive integer, got -1".into(),
    });
    let _c = start(&api, agent.clone(), config("node-a"));

    let s = phase(&api, "bad", "Error").await;
    assert_eq!(
        s["message"],
        "scenarios.main.vus: expected a positive integer, got -1"
    );
    assert_eq!(s["observedGeneration"], 1);
    assert_eq!(agent.submits().len(), 1);

    // Not retried as is; a spec edit (new generation) runs it again.
    let mut spec = api.loadtest(NAMESPACE, "bad").expect("exists")["spec"].clone();
    spec["env"] = json!({"FIXED": "yes"});
    api.set_spec(NAMESPACE, "bad", spec);
    let s = eventually("the edited spec to run and fail again", || {
        let s = status(&api, "bad");
        (s["phase"] == "Error" && s["observedGeneration"] == 2).then_some(s)
    })
    .await;
    assert!(
        s["message"]
            .as_str()
            .is_some_and(|m| m.contains("scenarios.main.vus"))
    );
    assert_eq!(agent.submits().len(), 2, "one submit per generation");
}

#[tokio::test]
async fn spec_without_a_plan_is_an_error_without_submitting() {
    let api = FakeApi::start().await;
    let mut lt = loadtest("empty", PLAN);
    lt["spec"] = json!({"minAgents": 1});
    api.create_loadtest(NAMESPACE, lt);
    let agent = FakeAgent::new("node-a");
    let _c = start(&api, agent.clone(), config("node-a"));
    let s = phase(&api, "empty", "Error").await;
    assert!(
        s["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("spec: no plan given")),
        "{s}"
    );
    assert!(agent.submits().is_empty());
}

#[tokio::test]
async fn a_bad_match_expression_is_an_error_naming_the_field_without_submitting() {
    let api = FakeApi::start().await;
    let mut lt = loadtest("typo", PLAN);
    lt["spec"]["selector"] = json!({
        "matchExpressions": [
            {"key": "region", "operator": "In", "values": ["eu"]},
            {"key": "gpu", "operator": "Exist"},
        ],
    });
    api.create_loadtest(NAMESPACE, lt);
    let agent = FakeAgent::new("node-a");
    let _c = start(&api, agent.clone(), config("node-a"));
    let s = phase(&api, "typo", "Error").await;
    assert_eq!(
        s["message"],
        "spec.selector.matchExpressions[1].operator: got \"Exist\", expected one of In, NotIn, \
         Exists, DoesNotExist"
    );
    assert_eq!(s["exitCode"], 104);
    assert!(agent.submits().is_empty(), "nothing is submitted");
}

#[tokio::test]
async fn more_agents_than_the_fleet_has_waits_then_fails_with_the_reason() {
    let api = FakeApi::start().await;
    let mut lt = loadtest("big", PLAN);
    lt["spec"]["minAgents"] = json!(5);
    api.create_loadtest(NAMESPACE, lt);
    let agent = FakeAgent::new("node-a");
    let reason = "minAgents is 5, but only 2 matching agents are ready (node-a, node-b)";
    agent.fail_submits(ApiError::Unprocessable {
        message: reason.into(),
    });
    let mut cfg = config("node-a");
    cfg.pending_timeout = Duration::from_millis(300);
    let _c = start(&api, agent.clone(), cfg);

    let s = phase(&api, "big", "Error").await;
    assert_eq!(
        s["message"],
        format!("gave up after waiting 300ms: {reason}")
    );
    assert_eq!(phases(&api, "big"), ["Claimed", "Pending", "Error"]);
    let pending = api
        .versions(NAMESPACE, "big")
        .into_iter()
        .find(|v| v["status"]["phase"] == "Pending")
        .expect("a Pending version");
    assert!(
        pending["status"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("waiting: minAgents is 5")),
        "{pending}"
    );
    // Asked again every 50 ms for 300 ms: a bounded number of submits.
    let n = agent.submits().len();
    assert!((2..=10).contains(&n), "{n} submits");
}

#[tokio::test]
async fn delete_aborts_the_test() {
    let api = FakeApi::start().await;
    api.create_loadtest(NAMESPACE, loadtest("doomed", PLAN));
    let agent = FakeAgent::new("node-a");
    let _c = start(&api, agent.clone(), config("node-a"));
    phase(&api, "doomed", "Starting").await;
    agent.set_running("t-1", 50.0, 3.0);
    phase(&api, "doomed", "Running").await;

    assert!(api.delete_loadtest(NAMESPACE, "doomed"));
    eventually("the test to be aborted", || {
        (agent.aborts() == ["t-1"]).then_some(())
    })
    .await;
}

#[tokio::test]
async fn deletion_missed_during_a_watch_outage_still_aborts() {
    let api = FakeApi::start().await;
    api.create_loadtest(NAMESPACE, loadtest("missed", PLAN));
    let agent = FakeAgent::new("node-a");
    let _c = start(&api, agent.clone(), config("node-a"));
    phase(&api, "missed", "Starting").await;
    agent.set_running("t-1", 50.0, 3.0);
    phase(&api, "missed", "Running").await;

    // No DELETED event reaches the controller: it must re-list and notice.
    assert!(api.delete_while_disconnected(NAMESPACE, "missed"));
    eventually("the test to be aborted after the re-list", || {
        (agent.aborts() == ["t-1"]).then_some(())
    })
    .await;
    let lists = api
        .requests()
        .iter()
        .filter(|r| {
            r.method == Method::GET
                && r.path.ends_with("/loadtests")
                && !r.query.contains("watch=true")
        })
        .count();
    assert!(lists >= 2, "the controller re-listed ({lists} lists)");
}

#[tokio::test]
async fn plan_from_a_configmap_key() {
    let api = FakeApi::start().await;
    api.put_configmap(
        NAMESPACE,
        json!({"metadata": {"name": "plans"}, "data": {"ramp.yaml": PLAN, "other.yaml": "x"}}),
    );
    let mut good = loadtest("from-cm", PLAN);
    good["spec"] = json!({"planFrom": {"configMapKeyRef": {"name": "plans", "key": "ramp.yaml"}}});
    api.create_loadtest(NAMESPACE, good);
    let mut bad = loadtest("bad-key", PLAN);
    bad["spec"] = json!({"planFrom": {"configMapKeyRef": {"name": "plans", "key": "nope.yaml"}}});
    api.create_loadtest(NAMESPACE, bad);
    let mut missing = loadtest("no-cm", PLAN);
    missing["spec"] = json!({"planFrom": {"configMapKeyRef": {"name": "absent", "key": "a"}}});
    api.create_loadtest(NAMESPACE, missing);

    let agent = FakeAgent::new("node-a");
    let _c = start(&api, agent.clone(), config("node-a"));

    phase(&api, "from-cm", "Starting").await;
    assert_eq!(agent.submits()[0].plan, PLAN);
    let s = phase(&api, "bad-key", "Error").await;
    assert_eq!(
        s["message"],
        "spec.planFrom.configMapKeyRef.key: ConfigMap \"plans\" has no key \"nope.yaml\" \
         (its keys: other.yaml, ramp.yaml)"
    );
    let s = phase(&api, "no-cm", "Error").await;
    assert!(
        s["message"]
            .as_str()
            .is_some_and(|m| m.contains("ConfigMap \"absent\" not found in namespace \"volley\"")),
        "{s}"
    );
    assert_eq!(agent.submits().len(), 1);
}

#[tokio::test]
async fn a_test_whose_claimer_left_the_fleet_is_taken_over() {
    let api = FakeApi::start().await;
    api.create_loadtest(NAMESPACE, loadtest("orphan", PLAN));
    // An agent that has since died claimed it and started test t-7.
    let lt = api.loadtest(NAMESPACE, "orphan").expect("exists");
    let client = api.client();
    let lts: kube::Api<volley::kube::crd::LoadTest> = kube::Api::namespaced(client, NAMESPACE);
    let mut claimed: volley::kube::crd::LoadTest = serde_json::from_value(lt).expect("a LoadTest");
    claimed.status = Some(volley::kube::crd::LoadTestStatus {
        phase: Some(volley::kube::crd::Phase::Running),
        claimed_by: Some("node-dead".into()),
        test_id: Some("t-7".into()),
        observed_generation: Some(1),
        ..Default::default()
    });
    lts.replace_status("orphan", &Default::default(), &claimed)
        .await
        .expect("status written");

    let agent = FakeAgent::new("node-a");
    agent.add_test("t-7", "node-dead");
    let _c = start(&api, agent.clone(), config("node-a"));

    let s = eventually("node-a to take over", || {
        let s = status(&api, "orphan");
        (s["claimedBy"] == "node-a").then_some(s)
    })
    .await;
    assert_eq!(s["testId"], "t-7");
    assert!(
        s["message"]
            .as_str()
            .is_some_and(|m| m.contains("node-dead")),
        "{s}"
    );
    // Progress of the followed test keeps the phase it had.
    eventually("a progress write after the take-over", || {
        api.requests()
            .iter()
            .any(|r| r.method == Method::PATCH && r.path.ends_with("/orphan/status"))
            .then_some(())
    })
    .await;
    agent.finish("t-7", 10, vec![threshold("checks", "rate>0.9", true, 1.0)]);
    assert!(
        !phases(&api, "orphan").contains(&"Starting".to_string()),
        "a running test does not go back to Starting: {:?}",
        phases(&api, "orphan")
    );
    phase(&api, "orphan", "Passed").await;
    assert!(
        agent.submits().is_empty(),
        "the recorded test is followed, not resubmitted"
    );
}

#[tokio::test]
async fn a_live_claimer_keeps_its_test() {
    let api = FakeApi::start().await;
    api.create_loadtest(NAMESPACE, loadtest("held", PLAN));
    let a = FakeAgent::new("node-a");
    let _ca = start(&api, a.clone(), config("node-a"));
    phase(&api, "held", "Starting").await;
    // A second agent arrives later; node-a is alive, so it must leave the
    // test alone through many rescans while the test runs to its end.
    let b = FakeAgent::new("node-b");
    let _cb = start(&api, b.clone(), config("node-b"));
    a.set_running("t-1", 1.0, 1.0);
    phase(&api, "held", "Running").await;
    a.finish("t-1", 1, vec![]);
    let s = phase(&api, "held", "Passed").await;
    assert_eq!(s["claimedBy"], "node-a");
    assert!(b.submits().is_empty());
}

/// A k6-operator user's test: `spec.script.configMap {name, file}` with the
/// script's module and data file as other keys of the same ConfigMap.
#[tokio::test]
async fn a_k6_script_from_a_configmap_as_k6_operator_gives_it() {
    let api = FakeApi::start().await;
    api.put_configmap(
        NAMESPACE,
        json!({"metadata": {"name": "k6-test"}, "data": {
            "test.js": "import { pick } from './lib.js';\nconst users = JSON.parse(open('./users.json'));\nexport const options = { vus: users.length, duration: '5s' };\nexport default function () { pick(users); }\n",
            "lib.js": "export function pick(list) { return list[0]; }\n",
            "users.json": "[\"alice\", \"bob\", \"carol\"]",
        }}),
    );
    let mut lt = loadtest("k6-script", PLAN);
    lt["spec"] = json!({"script": {"configMap": {"name": "k6-test", "file": "test.js"}}});
    api.create_loadtest(NAMESPACE, lt);
    let mut wrong = loadtest("wrong-file", PLAN);
    wrong["spec"] = json!({"script": {"configMap": {"name": "k6-test", "file": "main.js"}}});
    api.create_loadtest(NAMESPACE, wrong);
    let mut both = loadtest("both", PLAN);
    both["spec"]["script"] = json!({"configMap": {"name": "k6-test", "file": "test.js"}});
    api.create_loadtest(NAMESPACE, both);

    let agent = FakeAgent::new("node-a");
    let _c = start(&api, agent.clone(), config("node-a"));
    phase(&api, "k6-script", "Starting").await;
    let s = phase(&api, "wrong-file", "Error").await;
    assert_eq!(
        s["message"],
        "spec.script.configMap.file: ConfigMap \"k6-test\" has no text key \"main.js\" \
         (its keys: lib.js, test.js, users.json)"
    );
    let s = phase(&api, "both", "Error").await;
    assert!(
        s["message"]
            .as_str()
            .is_some_and(|m| m.contains("both spec.script") && m.contains("keep exactly one")),
        "{s}"
    );
    let submits = agent.submits();
    assert_eq!(submits.len(), 1);
    let bundle = submits[0]
        .script
        .as_deref()
        .expect("the script travels as a bundle");
    assert_eq!(bundle.main, "/test/test.js");
    assert!(submits[0].plan.is_empty());
    // What the agents will do with it: the import and the opened file
    // resolve among the ConfigMap's keys, and the options become the plan.
    let script = bundle
        .load(Default::default())
        .expect("the bundle loads as on an agent");
    assert_eq!(script.options["vus"], 3);
    let (plan, _) = volley::script::options::plan(&script, &Default::default())
        .expect("its options make a plan");
    assert_eq!(plan.scenarios[0].executor.max_vus(), 3);
}

/// Two fleets (two chart releases) in one namespace: a `LoadTest` naming a
/// fleet in `spec.fleet` is claimed by that fleet only, whatever the race.
#[tokio::test]
async fn two_fleets_in_one_namespace_claim_only_their_own_tests() {
    let api = FakeApi::start().await;
    let mut for_b = loadtest("for-b", PLAN);
    for_b["spec"]["fleet"] = json!("fleet-b");
    api.create_loadtest(NAMESPACE, for_b);
    let mut for_a = loadtest("for-a", PLAN);
    for_a["spec"]["fleet"] = json!("fleet-a");
    api.create_loadtest(NAMESPACE, for_a);
    let a = FakeAgent::new("node-a");
    let b = FakeAgent::new("node-b");
    let mut cfg_a = config("node-a");
    cfg_a.fleet = Some("fleet-a".into());
    let mut cfg_b = config("node-b");
    cfg_b.fleet = Some("fleet-b".into());
    let _ca = start(&api, a.clone(), cfg_a);
    let _cb = start(&api, b.clone(), cfg_b);

    assert_eq!(
        phase(&api, "for-b", "Starting").await["claimedBy"],
        "node-b"
    );
    assert_eq!(
        phase(&api, "for-a", "Starting").await["claimedBy"],
        "node-a"
    );
    let names = |agent: &FakeAgent| -> Vec<String> {
        agent
            .submits()
            .iter()
            .filter_map(|s| s.name.clone())
            .collect()
    };
    assert_eq!(names(&a), ["for-a"]);
    assert_eq!(names(&b), ["for-b"]);
    let claims = |name: &str| {
        api.requests()
            .iter()
            .filter(|r| r.method == Method::PUT && r.path.ends_with(&format!("/{name}/status")))
            .count()
    };
    assert_eq!((claims("for-a"), claims("for-b")), (1, 1), "no claim race");
}

/// A plan in a ConfigMap finds its data files among the ConfigMap's other
/// keys, by the name the plan writes, as the agents load it.
#[tokio::test]
async fn a_configmap_plan_brings_its_data_files() {
    let api = FakeApi::start().await;
    let plan = "vus: 1\nduration: 1s\ndata:\n  file: users.csv\nflow:\n  - request:\n      url: http://127.0.0.1:1/${data.user}\n";
    api.put_configmap(
        NAMESPACE,
        json!({"metadata": {"name": "data-plans"}, "data": {
            "login.yaml": plan,
            "users.csv": "user\nalice\nbob\n",
        }}),
    );
    let mut lt = loadtest("with-data", PLAN);
    lt["spec"] =
        json!({"planFrom": {"configMapKeyRef": {"name": "data-plans", "key": "login.yaml"}}});
    api.create_loadtest(NAMESPACE, lt);
    let agent = FakeAgent::new("node-a");
    let _c = start(&api, agent.clone(), config("node-a"));
    phase(&api, "with-data", "Starting").await;

    let submit = agent.submits().remove(0);
    assert_eq!(submit.plan, plan);
    let files: Vec<(&str, &str)> = submit
        .files
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(files, [("users.csv", "user\nalice\nbob\n")]);
    // What each agent does with it: the plan loads with its data.
    let bundle = volley::fleet::protocol::PlanBundle {
        plan: submit.plan.clone(),
        format: "yaml".into(),
        env: submit.env.clone(),
        files: submit.files.clone(),
        uploads: submit.uploads.clone(),
        script: None,
        setup_values: None,
    };
    volley::fleet::participant::load_bundle(&bundle).expect("the plan loads with its data file");
}
